#!/usr/bin/env python3
"""Soak: 100 000 receipts through the release daemon against a flaky mock OFD (not in CI).

Tills post at a steady pace (each retrying its key until answered); the OFD fails 20 % of calls
and goes down for 5 s every 30 s. Every 10 s the script prints the daemon's RSS, open files,
database and WAL size and the counts. Retention is the shortest allowed (1 day), so within the
run nothing is purged: the database grows by what 100 000 receipts take, and the WAL stays
bounded. At the end: every receipt delivered, the OFD holding each once, nothing lost.

Build first:  cargo build --release --bin kkt-adapterd --bin mock-ofd
Usage:        python3 tests/bench/soak.py [N] [rate_per_s]     (defaults 100000, 800)
"""
import http.client, json, os, re, shutil, signal, socket, subprocess, sys, tempfile, threading, time, urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BIN = os.path.join(ROOT, "target", "release")
N = int(sys.argv[1]) if len(sys.argv) > 1 else 100_000
RATE = float(sys.argv[2]) if len(sys.argv) > 2 else 800.0
TILLS = 8


def free_port():
    s = socket.socket(); s.bind(("127.0.0.1", 0)); p = s.getsockname()[1]; s.close(); return p


def get(addr, path):
    return json.load(urllib.request.urlopen(f"http://{addr}{path}", timeout=10))


def control(addr, patch):
    req = urllib.request.Request(f"http://{addr}/ofd/v1/_control", data=json.dumps(patch).encode(), method="POST")
    urllib.request.urlopen(req, timeout=10).read()


def body(i):
    k = 100 + i % 9000
    price = f"{k // 100}.{k % 100:02d}"
    return json.dumps({"pos_id": f"POS-{i % TILLS}", "type": "sale",
                       "items": [{"name": f"Товар {i}", "price": price, "qty": 1}],
                       "payments": [{"type": "card", "amount": price}]}).encode()


failures = []


def till(addr, index, acked, retries, stop):
    host, port = addr.split(":")
    conn = None
    per_till = RATE / TILLS
    start = time.monotonic()
    n = 0
    for i in range(index, N, TILLS):
        if stop.is_set():
            return
        # Steady pace: the i-th receipt of this till leaves at start + n / rate.
        delay = start + n / per_till - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        n += 1
        key, payload = f"soak-{i}", body(i)
        while True:
            try:
                if conn is None:
                    conn = http.client.HTTPConnection(host, int(port), timeout=30)
                conn.request("POST", "/v1/kkt/receipt", payload,
                             {"Content-Type": "application/json", "Idempotency-Key": key})
                r = conn.getresponse(); r.read()
                if r.status == 200:
                    acked[i] = True
                    break
                if r.status not in (409, 503):
                    failures.append(f"{key}: unexpected {r.status}")
                    stop.set()
                    return
            except (OSError, http.client.HTTPException):
                conn = None
            retries[index] += 1
            time.sleep(0.05)


def proc_figures(pid, data):
    rss = 0
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS:"):
            rss = int(line.split()[1]) / 1024
    fds = len(os.listdir(f"/proc/{pid}/fd"))
    size = lambda p: os.path.getsize(p) / 2**20 if os.path.exists(p) else 0.0
    db = os.path.join(data, "buffer.db")
    return rss, fds, size(db), size(db + "-wal")


PROCS = []


def main():
    try:
        run()
    finally:
        for p in PROCS:
            if p.poll() is None:
                p.kill()
                p.wait()


def run():
    for b in ("kkt-adapterd", "mock-ofd"):
        if not os.path.exists(os.path.join(BIN, b)):
            sys.exit(f"build first: cargo build --release --bin kkt-adapterd --bin mock-ofd ({b} missing)")
    data = tempfile.mkdtemp(prefix="kkt-soak-", dir="/var/tmp")
    ofd_port, ctl_port = free_port(), free_port()
    ofd = subprocess.Popen([os.path.join(BIN, "mock-ofd"), "--listen", f"127.0.0.1:{ofd_port}", "--control-listen",
                            f"127.0.0.1:{ctl_port}", "--latency-ms", "2"],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    PROCS.append(ofd)
    ctl = f"127.0.0.1:{ctl_port}"
    for _ in range(200):
        try:
            get(ctl, "/ofd/v1/_stats"); break
        except OSError:
            time.sleep(0.02)
    control(ctl, {"failure_rate": 0.2, "failure_status": 503})
    cfg = os.path.join(data, "config.toml")
    open(cfg, "w").write("[buffer]\nretention_days = 1\npurge_interval_secs = 10\n"
                         "[sync]\nbackoff_base_secs = 1\nbackoff_max_secs = 10\n"
                         "[breaker]\nopen_secs = 5\n[kkt]\nwrite_slips = false\n")
    d = subprocess.Popen([os.path.join(BIN, "kkt-adapterd"), "--data-dir", data, "--listen", "127.0.0.1:0",
                          "--config", cfg, "--ofd-url", f"http://127.0.0.1:{ofd_port}"],
                         stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True,
                         env={**os.environ, "KKT_LOG": "warn,kkt_core::app=info"})
    PROCS.append(d)
    addr = None
    for line in d.stderr:
        m = re.search(r"listening on http://(\S+)", line)
        if m:
            addr = m.group(1); break
    threading.Thread(target=lambda: [None for _ in d.stderr], daemon=True).start()
    acked, retries, stop = [False] * N, [0] * TILLS, threading.Event()
    tills = [threading.Thread(target=till, args=(addr, i, acked, retries, stop)) for i in range(TILLS)]
    t0 = time.monotonic()
    for t in tills:
        t.start()
    rows, outages, next_outage, last_sample = [], 0, t0 + 30, 0.0
    print(f"soak: {N} receipts at {RATE:.0f}/s, OFD fails 20 % and is down 5 s every 30 s; pid {d.pid}, data {data}")
    print(f"{'t (s)':>6} {'acked':>7} {'synced':>7} {'pending':>7} {'purged':>7} {'RSS MiB':>8} {'fds':>4} "
          f"{'db MiB':>7} {'WAL MiB':>8} breaker")
    drained_at = None
    while True:
        now = time.monotonic()
        if now >= next_outage and now - t0 < N / RATE:
            control(ctl, {"down": True}); time.sleep(5); control(ctl, {"down": False})
            outages += 1; next_outage = time.monotonic() + 30
            continue
        if now - last_sample >= 10:
            last_sample = now
            s = get(addr, "/v1/kkt/buffer/status")
            rss, fds, db, wal = proc_figures(d.pid, data)
            done = sum(acked)
            purged = done - s["total_receipts"]
            row = {"t": round(now - t0), "acked": done, "synced": s["synced"], "pending": s["pending"] + s["syncing"],
                   "purged": purged, "rss_mib": round(rss, 1), "fds": fds, "db_mib": round(db, 1),
                   "wal_mib": round(wal, 1), "breaker": s["breaker"]["state"]}
            rows.append(row)
            print(f"{row['t']:>6} {done:>7} {s['synced']:>7} {row['pending']:>7} {purged:>7} {rss:>8.1f} {fds:>4} "
                  f"{db:>7.1f} {wal:>8.1f} {row['breaker']}", flush=True)
            if done == N and s["pending"] + s["syncing"] + s["failed"] == 0:
                drained_at = now - t0
                break
            if now - t0 > N / RATE * 4 + 600:
                print("not drained in time"); break
            if failures:
                print("a till failed:", failures[0]); break
        time.sleep(0.2)
    stop.set()
    for t in tills:
        t.join()
    stats = get(ctl, "/ofd/v1/_stats")
    final = proc_figures(d.pid, data)
    d.send_signal(signal.SIGTERM); code = d.wait(timeout=60)
    ofd.terminate(); ofd.wait()
    summary = {"receipts": N, "acknowledged": sum(acked), "lost": N - sum(acked),
               "ofd_unique": stats["stats"]["unique_keys"], "ofd_max_deliveries_per_key": stats["max_deliveries_per_key"],
               "ofd_repeat_sends_deduplicated": stats["stats"]["duplicates"],
               "ofd_failures_injected": stats["stats"]["injected_failures"], "outages": outages,
               "till_retries": sum(retries), "drained_in_s": round(drained_at or -1, 1),
               "final_rss_mib": round(final[0], 1), "final_fds": final[1], "final_db_mib": round(final[2], 1),
               "final_wal_mib": round(final[3], 1), "max_rss_mib": max(r["rss_mib"] for r in rows),
               "max_db_mib": max(r["db_mib"] for r in rows), "max_wal_mib": max(r["wal_mib"] for r in rows),
               "exit_code": code}
    print(json.dumps(summary, indent=1))
    os.makedirs(os.path.join(ROOT, "tests", "out"), exist_ok=True)
    json.dump({"summary": summary, "samples": rows}, open(os.path.join(ROOT, "tests", "out", "soak.json"), "w"), indent=1)
    shutil.rmtree(data, ignore_errors=True)
    ok = summary["lost"] == 0 and summary["ofd_unique"] == N and code == 0 and not failures
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
