#!/usr/bin/env python3
"""The Windows build of the daemon, run as a shop would run it, under Wine (issue 12).

The same `kkt-adapterd.exe` that goes into the Windows installer is started with `wine64` on a temp
data directory and a fresh WINEPREFIX; `mock-ofd` runs natively. Checked: the seed's receipt, every
intake error code, a replay across a restart (same bytes, `Idempotent-Replayed: true`), numbering
across a restart, delivery to the OFD, an OFD outage (the counter does not wait, the buffer fills
up to its capacity and says so) and recovery with no receipt sent twice, Ctrl+C as an orderly stop
(exit 0), one instance per data directory, the default data and config directories under
%APPDATA%, and `mock-ofd.exe` itself.

Wine 8.0 lacks bcryptprimitives.dll, which Rust's std needs on Windows 10+ (ProcessPrng): the
test's copy gets a stand-in built from tests/wine/bcryptprimitives.c. It is never shipped.

Not checkable under Wine and only built: Ctrl+Break, console close, logoff and system shutdown
(core/src/signals.rs) — Wine turns a Unix SIGINT into CTRL_C_EVENT, and has no way to raise the
others from outside; the desktop kkt-adapter.exe (no WebView2 in Wine).

Usage: python3 tests/e2e/wine.py   (after `bash scripts/package.sh`, which puts the shipped .exe files
in dist/windows/, and the debug build of mock-ofd; KKT_WIN_BIN_DIR points elsewhere)
"""
import getpass, json, os, shutil, signal, subprocess, tempfile, threading, time, uuid
from checks import BIN, ROOT, SEED, check, finish, free_port, keep_if_failed, receipt, request, wait

WIN_BIN = os.environ.get("KKT_WIN_BIN_DIR", os.path.join(ROOT, "dist", "windows"))
WINE = os.environ.get("WINE", "/usr/lib/wine/wine64")
ADMIN = "wine-test-admin-token-0123456789abcdef"


def winpath(path):
    """Wine maps the Unix root to drive Z:."""
    return "Z:" + path.replace("/", "\\")


def code_of(answer):
    try:
        return json.loads(answer[2]).get("code")
    except ValueError:
        return None


class Wine:
    def __init__(self, work):
        self.work = work
        self.env = dict(os.environ, WINEPREFIX=os.path.join(work, "prefix"), WINEDEBUG="-all", WINEDLLOVERRIDES="mscoree,mshtml=")
        self.procs = []

    def boot(self):
        subprocess.run([WINE, "wineboot", "-i"], env=self.env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                       timeout=180, check=True)

    def start(self, exe, args, log):
        p = subprocess.Popen([WINE, os.path.join(self.work, exe), *args], cwd=self.work, env=self.env,
                             stdin=subprocess.DEVNULL, stdout=open(log, "a"), stderr=subprocess.STDOUT)
        self.procs.append(p)
        return p

    def appdata(self):
        return os.path.join(self.work, "prefix", "drive_c", "users", getpass.getuser(), "AppData", "Roaming")

    def stop_all(self):
        for p in self.procs:
            if p.poll() is None:
                p.kill()
        subprocess.run([os.path.join(os.path.dirname(WINE), "wineserver"), "-k"], env=self.env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def ctrl_c(proc, seconds=20):
    """Wine turns SIGINT into CTRL_C_EVENT for the console program."""
    proc.send_signal(signal.SIGINT)
    try:
        return proc.wait(seconds)
    except subprocess.TimeoutExpired:
        proc.kill()
        return "still running"


def main():
    for exe in ("kkt-adapterd.exe", "mock-ofd.exe"):
        if not os.path.isfile(os.path.join(WIN_BIN, exe)):
            raise SystemExit(f"{exe} is not in {WIN_BIN}: run bash scripts/package.sh")
    work = tempfile.mkdtemp(prefix="kkt-wine-")
    wine = Wine(work)
    native = []
    try:
        for exe in ("kkt-adapterd.exe", "mock-ofd.exe"):
            shutil.copy(os.path.join(WIN_BIN, exe), work)
        subprocess.run(["x86_64-w64-mingw32-gcc", "-O2", "-shared", "-o", os.path.join(work, "bcryptprimitives.dll"),
                        os.path.join(ROOT, "tests", "wine", "bcryptprimitives.c"), "-ladvapi32"], check=True)
        t = time.monotonic()
        wine.boot()
        print(f"# fresh WINEPREFIX in {time.monotonic() - t:.1f} s", flush=True)

        ofd_port, ctl_port, api_port = free_port(), free_port(), free_port()
        native.append(subprocess.Popen([os.path.join(BIN, "mock-ofd"), "--listen", f"127.0.0.1:{ofd_port}",
                                        "--control-listen", f"127.0.0.1:{ctl_port}"],
                                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        ctl = f"http://127.0.0.1:{ctl_port}/ofd/v1"
        report = lambda: json.loads(request("GET", f"{ctl}/_stats")[2])
        stats = lambda: report()["stats"]
        wait("mock-ofd", report)
        control = lambda body: request("POST", f"{ctl}/_control", json.dumps(body), {"Content-Type": "application/json"})

        data = os.path.join(work, "data"); os.mkdir(data)
        config = os.path.join(work, "config.toml")
        # A small capacity to see buffer_full; a register slow enough to catch a request in flight;
        # a short open period so recovery is quick.
        open(config, "w").write("[buffer]\ncapacity = 5\n[kkt]\nprint_latency_ms = 400\n"
                                "[sync]\ninterval_secs = 1\nbackoff_base_secs = 1\nbackoff_max_secs = 2\n"
                                "[breaker]\nopen_initial_secs = 1\nopen_secs = 2\n")
        api = f"http://127.0.0.1:{api_port}"
        args = ["--data-dir", winpath(data), "--config", winpath(config), "--listen", f"127.0.0.1:{api_port}",
                "--ofd-url", f"http://127.0.0.1:{ofd_port}", "--admin-token", ADMIN]
        log = os.path.join(work, "kkt-adapterd.log")
        status = lambda: json.loads(request("GET", f"{api}/v1/kkt/buffer/status")[2])

        # 1. Start, the seed's receipt, delivery.
        t = time.monotonic()
        d = wine.start("kkt-adapterd.exe", args, log)
        wait("kkt-adapterd.exe to answer", lambda: request("GET", f"{api}/v1/health")[0] == 200)
        print(f"# kkt-adapterd.exe answering {time.monotonic() - t:.1f} s after start", flush=True)
        seed_key = str(uuid.uuid4())
        first = receipt(api, SEED, seed_key)
        doc = json.loads(first[2]) if first[0] == 200 else {}
        check("the seed's receipt is printed (200, status printed)", first[0] == 200 and doc.get("status") == "printed",
              first[:1] + (first[2][:300],))
        fdn = doc.get("fiscal_doc", {}).get("fiscal_doc_number")
        check("its fiscal document number is 2 (1 is the shift opening)", fdn == 2, fdn)
        wait("delivery to mock-ofd", lambda: stats()["unique_keys"] == 1 and status()["synced"] == 1, 30)
        check("it is delivered to the OFD once", stats()["unique_keys"] == 1)

        # 2. Every intake error code.
        body = lambda total: SEED.replace("100", str(total))
        check("no Idempotency-Key: 400", receipt(api, SEED)[0] == 400)
        bad_key = receipt(api, SEED, "key with spaces")
        check("a key that is not visible ASCII: 400", bad_key[0] == 400, bad_key[:1])
        check("wrong content type: 415", receipt(api, SEED, str(uuid.uuid4()), "text/plain")[0] == 415)
        big = receipt(api, '{"pad":"' + "x" * (1024 * 1024 + 10) + '"}', str(uuid.uuid4()))
        check("a body over 1 MiB: 413", big[0] == 413, big[:1])
        check("not JSON: 400 or 422", receipt(api, "{nope", str(uuid.uuid4()))[0] in (400, 422))
        invalid = receipt(api, '{"pos_id":"POS-001","type":"sale","items":[],"payments":[{"type":"cash","amount":1}]}',
                          str(uuid.uuid4()))
        check("no items: 422 validation", invalid[0] == 422, invalid[:1] + (invalid[2][:200],))
        sale20 = SEED.replace('"qty":1', '"qty":1,"vat":"vat20"')
        check("20 % VAT on a 2026 sale: 422", receipt(api, sale20, str(uuid.uuid4()))[0] == 422)
        reused = receipt(api, body(200), seed_key)
        check("same key, different body: 422 idempotency_key_reused",
              reused[0] == 422 and code_of(reused) == "idempotency_key_reused", reused[:1] + (reused[2][:200],))
        key = str(uuid.uuid4())
        answers = []
        racer = threading.Thread(target=lambda: answers.append(receipt(api, body(150), key)))
        racer.start(); time.sleep(0.15)
        answers.append(receipt(api, body(150), key)); racer.join()
        codes = sorted(a[0] for a in answers)
        check("same key while the first is at the register: 409 idempotency_request_in_progress",
              codes == [200, 409] and any(code_of(a) == "idempotency_request_in_progress" for a in answers), codes)
        wait("the second receipt delivered", lambda: stats()["unique_keys"] == 2, 30)

        # 3. An OFD outage: the counter does not wait; the buffer fills up to its capacity.
        control({"down": True})
        slowest, printed = 0.0, []
        for i in range(5):
            t = time.monotonic()
            a = receipt(api, body(10 + i), str(uuid.uuid4()))
            slowest = max(slowest, time.monotonic() - t)
            printed.append(a[0] == 200 and json.loads(a[2])["status"] == "printed")
        check("with the OFD down, 5 receipts are printed (200) at once", all(printed), printed)
        check("each answer came within 2 s (register latency 0.4 s)", slowest < 2.0, f"{slowest:.2f} s")
        full = receipt(api, body(20), str(uuid.uuid4()))
        check("the 6th unsynced receipt: 503 buffer_full with Retry-After",
              full[0] == 503 and code_of(full) == "buffer_full" and full[1].get("Retry-After"), full[:1] + (full[2][:200],))
        s = status()
        check("status shows 5 pending while the OFD is down", s["pending"] + s.get("syncing", 0) == 5, s)

        # 4. Ctrl+C: the orderly stop.
        rc = ctrl_c(d)
        text = open(log, encoding="utf-8", errors="replace").read()
        check("Ctrl+C: orderly stop, exit code 0", rc == 0 and "stopped" in text, rc)

        # 5. Restart: replay and numbering survive; recovery delivers everything once.
        control({"down": False})
        d = wine.start("kkt-adapterd.exe", args, log)
        wait("kkt-adapterd.exe after restart", lambda: request("GET", f"{api}/v1/health")[0] == 200)
        again = receipt(api, SEED, seed_key)
        check("replay after a restart: the same bytes with Idempotent-Replayed: true",
              again[0] == 200 and again[2] == first[2] and again[1].get("Idempotent-Replayed") == "true",
              again[:1] + (again[2][:200],))
        sync = request("POST", f"{api}/v1/kkt/buffer/sync", "", {"Authorization": f"Bearer {ADMIN}"})
        check("manual sync is accepted (200 or 202)", sync[0] in (200, 202), sync[:1] + (sync[2][:200],))
        wait("recovery: all 7 receipts at the OFD", lambda: status()["synced"] == 7, 60)
        st = report()
        check("after recovery the OFD holds 7 receipts, none delivered twice",
              st["stats"]["unique_keys"] == 7 and st["max_deliveries_per_key"] == 1, st)
        nxt = receipt(api, body(30), str(uuid.uuid4()))
        n = json.loads(nxt[2]).get("fiscal_doc", {}).get("fiscal_doc_number") if nxt[0] == 200 else None
        check("numbering continues across the restart (document 9 after 8)", n == 9, (nxt[0], n))

        # 6. One instance per data directory.
        second = wine.start("kkt-adapterd.exe", args[:-6] + ["--listen", f"127.0.0.1:{free_port()}"], log + ".second")
        try:
            rc2 = second.wait(60)
        except subprocess.TimeoutExpired:
            second.kill(); rc2 = "still running"
        text2 = open(log + ".second", encoding="utf-8", errors="replace").read()
        check("a second instance on the same data directory refuses to start",
              rc2 not in (0, "still running") and "another KKT Adapter instance" in text2, (rc2, text2[-300:]))
        check("Ctrl+C after the restart: exit code 0", ctrl_c(d) == 0)

        # 7. Defaults: data and config under %APPDATA%, the admin token made there.
        port = free_port()
        d = wine.start("kkt-adapterd.exe", ["--listen", f"127.0.0.1:{port}"], os.path.join(work, "defaults.log"))
        wait("kkt-adapterd.exe on its defaults", lambda: request("GET", f"http://127.0.0.1:{port}/v1/health")[0] == 200)
        home = os.path.join(wine.appdata(), "KKT Adapter", "kkt-adapter")
        a = receipt(f"http://127.0.0.1:{port}", SEED, str(uuid.uuid4()))
        check("on its defaults: data in %APPDATA%\\KKT Adapter\\kkt-adapter\\data (buffer.db)",
              a[0] == 200 and os.path.isfile(os.path.join(home, "data", "buffer.db")), os.listdir(wine.appdata()))
        token = os.path.join(home, "config", "admin_token")
        check("the admin token is generated in %APPDATA%\\KKT Adapter\\kkt-adapter\\config",
              os.path.isfile(token) and len(open(token).read().strip()) == 64)
        check("Ctrl+C on defaults: exit code 0", ctrl_c(d) == 0)

        # 8. mock-ofd.exe (shipped for demos and a shop's own checks) answers under Wine.
        port = free_port()
        m = wine.start("mock-ofd.exe", ["--listen", f"127.0.0.1:{port}"], os.path.join(work, "mock-ofd.log"))
        ok = wait("mock-ofd.exe", lambda: request("GET", f"http://127.0.0.1:{port}/ofd/v1/health")[0] == 200)
        check("mock-ofd.exe answers its health check", bool(ok))
        check("mock-ofd.exe stops on Ctrl+C", ctrl_c(m) == 0)
    finally:
        wine.stop_all()
        for p in native:
            p.kill()
        keep_if_failed(work)
    finish("wine")


if __name__ == "__main__":
    main()
