#!/usr/bin/env python3
"""Recovery benchmark (issue 9): how soon a backlog is delivered once the OFD is back, with no button.

The daemon runs on its default policy (breaker: 5 failures, open 5 s doubling to 60 s; backoff
5 s doubling to 5 min; 5 s tick) against a real mock-ofd. The OFD goes down, 1 000 receipts are
taken, the OFD stays down for 30 s in all, then comes back answering in 20 ms. The clock runs
from the OFD's return to the first delivery and to `synced == 1000`. Target: all delivered
within 15 s. Nobody presses "Sync now".

Usage: python3 tests/bench/recovery.py [--down SECS[,SECS…]] [--receipts N] [--target SECS] [BIN_DIR ...]
(default: a 30 s outage, 1 000 receipts, target 15 s; BIN_DIR: target/release, built first).
Issue 17's short outage: `--down 4.6,4.8,5,5.2,5.4,5.6 --receipts 100 --target 3` (all delivered
<= 3 s after an outage of about 5 s, whatever its exact length). Each BIN_DIR is measured in turn, so an older build can be set beside the current one;
the first is the one judged against the target.
"""
import argparse, concurrent.futures, json, os, re, shutil, socket, subprocess, sys, tempfile, time, urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
N, DOWN_SECS, LATENCY_MS, TARGET_SECS = 1000, 30, 20, 15
BODY = json.dumps({"pos_id": "POS-BENCH", "type": "sale", "items": [{"name": "Test", "price": 100, "qty": 1}],
                   "payments": [{"type": "cash", "amount": 100}]}).encode()


def free_port():
    s = socket.socket(); s.bind(("127.0.0.1", 0)); p = s.getsockname()[1]; s.close(); return p


def call(url, body=None, headers=None, timeout=30):
    req = urllib.request.Request(url, data=body, method="POST" if body is not None else "GET", headers=headers or {})
    with urllib.request.urlopen(req, timeout=timeout) as r:
        return json.load(r)


def ofd_control(ctl, **faults):
    call(f"{ctl}/ofd/v1/_control", json.dumps(faults).encode(), {"Content-Type": "application/json"})


def scenario(bin_dir, down_secs):
    data = tempfile.mkdtemp(prefix="kkt-recovery-", dir="/var/tmp")
    cfg = os.path.join(data, "config.toml")
    open(cfg, "w").write("[kkt]\nwrite_slips = false\n")
    port, ctl_port = free_port(), free_port()
    ofd = subprocess.Popen([os.path.join(bin_dir, "mock-ofd"), "--listen", f"127.0.0.1:{port}",
                            "--control-listen", f"127.0.0.1:{ctl_port}"],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    ctl = f"http://127.0.0.1:{ctl_port}"
    daemon = None
    try:
        for _ in range(200):
            try:
                call(f"{ctl}/ofd/v1/_stats"); break
            except OSError:
                time.sleep(0.02)
        daemon = subprocess.Popen([os.path.join(bin_dir, "kkt-adapterd"), "--data-dir", data, "--config", cfg,
                                   "--listen", "127.0.0.1:0", "--ofd-url", f"http://127.0.0.1:{port}"],
                                  stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True,
                                  env={**os.environ, "KKT_LOG": "warn,kkt_core::app=info"})
        addr = None
        for line in daemon.stderr:
            m = re.search(r"listening on http://(\S+)", line)
            if m:
                addr = m.group(1); break
        if not addr:
            sys.exit("daemon did not start")
        base = f"http://{addr}"
        ofd_control(ctl, down=True)
        down_at = time.monotonic()
        post = lambda i: call(f"{base}/v1/kkt/receipt", BODY,
                              {"Content-Type": "application/json", "Idempotency-Key": f"recovery-{i}"})
        with concurrent.futures.ThreadPoolExecutor(16) as pool:
            answers = list(pool.map(post, range(N)))
        assert all(a["status"] == "printed" for a in answers)
        time.sleep(max(0.0, down_secs - (time.monotonic() - down_at)))
        before = call(f"{base}/v1/kkt/buffer/status")
        ofd_control(ctl, down=False, latency_ms=LATENCY_MS)
        back = time.monotonic()
        first = None
        while True:
            s = call(f"{base}/v1/kkt/buffer/status")
            if first is None and s["synced"] > 0:
                first = time.monotonic() - back
            if s["synced"] >= N:
                done = time.monotonic() - back
                break
            if time.monotonic() - back > 600:
                sys.exit(f"not delivered in 10 min: {s}")
            time.sleep(0.01)
        stats = call(f"{ctl}/ofd/v1/_stats")["stats"]
        return {"bin": os.path.relpath(bin_dir, ROOT), "down": down_secs, "first": first, "done": done, "breaker": before["breaker"]["state"],
                "retrying": before["retrying"], "unique": stats["unique_keys"], "dups": stats["duplicates"]}
    finally:
        if daemon:
            daemon.terminate(); daemon.wait(timeout=60)
        ofd.terminate(); ofd.wait()
        shutil.rmtree(data, ignore_errors=True)


def main():
    global N, DOWN_SECS, TARGET_SECS
    ap = argparse.ArgumentParser()
    ap.add_argument("--down", default=str(DOWN_SECS),
                    help="outage length in seconds; a comma-separated list sweeps it (where the breaker's probes fall against the OFD's return depends on it: the worst counts)")
    ap.add_argument("--receipts", type=int, default=N)
    ap.add_argument("--target", type=float, default=TARGET_SECS)
    ap.add_argument("bins", nargs="*")
    a = ap.parse_args()
    N, TARGET_SECS = a.receipts, a.target
    downs = [float(d) for d in a.down.split(",")]
    bins = a.bins
    if not bins:
        subprocess.run(["cargo", "build", "--release", "--quiet", "--bin", "kkt-adapterd", "--bin", "mock-ofd"],
                       cwd=ROOT, check=True)
        bins = [os.path.join(ROOT, "target", "release")]
    runs = [scenario(b, d) for b in bins for d in downs]
    print(f"{N} receipts, then the OFD down as given, then up at {LATENCY_MS} ms; default policy; no button pressed\n")
    print("| build | OFD down | breaker at the OFD's return | receipts in backoff | first delivery after | all delivered after | OFD got (unique / duplicates) |")
    print("|---|---:|---|---:|---:|---:|---|")
    for r in runs:
        print(f"| {r['bin']} | {r['down']:.1f} s | {r['breaker']} | {r['retrying']} | {r['first']:.1f} s | {r['done']:.1f} s | {r['unique']} / {r['dups']} |")
    for b in bins:
        worst = max(r["done"] for r in runs if r["bin"] == os.path.relpath(b, ROOT))
        print(f"worst, {os.path.relpath(b, ROOT)}: all delivered {worst:.1f} s after the OFD's return")
    first_bin = os.path.relpath(bins[0], ROOT)
    ok = max(r["done"] for r in runs if r["bin"] == first_bin) <= TARGET_SECS and all(r["dups"] == 0 and r["unique"] == N for r in runs)
    print("\nRESULT:", f"target met (<= {TARGET_SECS} s)" if ok else "TARGET MISSED")


if __name__ == "__main__":
    main()
