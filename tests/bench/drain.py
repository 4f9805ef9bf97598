#!/usr/bin/env python3
"""Drain benchmark: how fast buffered receipts reach an OFD that answers in 20 ms.

For each scenario: receipts are taken while the OFD is unreachable (a breaker with threshold 1
keeps them waiting), the daemon is stopped, `mock-ofd --latency-ms 20` is started, and the daemon
is started again against it; the clock runs from its "listening" line to `synced == N`.
Targets (issue 3): 1 000 receipts at >= 200/s (4x a one-at-a-time sender), 50 in < 0.5 s.
Usage: python3 tests/bench/drain.py
"""
import concurrent.futures, json, os, re, shutil, signal, socket, subprocess, sys, tempfile, time, urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BIN = os.path.join(ROOT, "target", "release")
BODY = json.dumps({"pos_id": "POS-BENCH", "type": "sale", "items": [{"name": "Test", "price": 100, "qty": 1}],
                   "payments": [{"type": "cash", "amount": 100}]}).encode()

def free_port():
    s = socket.socket(); s.bind(("127.0.0.1", 0)); p = s.getsockname()[1]; s.close(); return p

def start_daemon(data, cfg, ofd_url):
    p = subprocess.Popen([os.path.join(BIN, "kkt-adapterd"), "--data-dir", data, "--listen", "127.0.0.1:0", "--config", cfg,
                          "--ofd-url", ofd_url], stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True,
                         env={**os.environ, "KKT_LOG": "warn,kkt_core::app=info"})
    for line in p.stderr:
        m = re.search(r"listening on http://(\S+)", line)
        if m:
            return p, m.group(1), time.monotonic()
    sys.exit("daemon did not start")

def get(addr, path):
    return json.load(urllib.request.urlopen(f"http://{addr}{path}", timeout=10))

def post(addr, key):
    req = urllib.request.Request(f"http://{addr}/v1/kkt/receipt", data=BODY, method="POST",
                                 headers={"Content-Type": "application/json", "Idempotency-Key": key})
    return urllib.request.urlopen(req, timeout=30).status

def rss_mib(pid):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0

def scenario(n, concurrency):
    data = tempfile.mkdtemp(prefix="kkt-drain-", dir="/var/tmp")
    cfg = os.path.join(data, "config.toml")
    open(cfg, "w").write(f"[sync]\nconcurrency = {concurrency}\nbackoff_base_secs = 0\n"
                         "[breaker]\nfailure_threshold = 1\nopen_secs = 3600\n[kkt]\nwrite_slips = false\n")
    dead = f"http://127.0.0.1:{free_port()}"
    d, addr, _ = start_daemon(data, cfg, dead)
    rss_idle = rss_mib(d.pid)
    with concurrent.futures.ThreadPoolExecutor(16) as pool:
        codes = list(pool.map(lambda i: post(addr, f"drain-{n}-{concurrency}-{i}"), range(n)))
    assert all(c == 200 for c in codes)
    d.send_signal(signal.SIGTERM); d.wait(timeout=60)
    port = free_port()
    ofd = subprocess.Popen([os.path.join(BIN, "mock-ofd"), "--listen", f"127.0.0.1:{port}", "--latency-ms", "20"],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(200):
            try:
                get(f"127.0.0.1:{port}", "/ofd/v1/health"); break
            except OSError:
                time.sleep(0.02)
        d, addr, t0 = start_daemon(data, cfg, f"http://127.0.0.1:{port}")
        while True:
            s = get(addr, "/v1/kkt/buffer/status")
            if s["synced"] >= n:
                elapsed = time.monotonic() - t0
                break
            if time.monotonic() - t0 > 120:
                sys.exit(f"not drained: {s}")
            time.sleep(0.005)
        stats = get(f"127.0.0.1:{port}", "/ofd/v1/_stats")["stats"]
        rss_after = rss_mib(d.pid)
        d.send_signal(signal.SIGTERM); d.wait(timeout=60)
    finally:
        ofd.terminate(); ofd.wait()
        shutil.rmtree(data, ignore_errors=True)
    return {"n": n, "c": concurrency, "secs": elapsed, "rate": n / elapsed, "unique": stats["unique_keys"],
            "dups": stats["duplicates"], "rss_idle": rss_idle, "rss_after": rss_after}

def main():
    subprocess.run(["cargo", "build", "--release", "--quiet", "--bin", "kkt-adapterd", "--bin", "mock-ofd"], cwd=ROOT, check=True)
    runs = [scenario(1000, 8), scenario(1000, 1), scenario(50, 8)]
    print("| receipts | concurrency | drain time | rate | OFD got (unique / duplicates) | daemon RSS idle → after |")
    print("|---:|---:|---:|---:|---|---|")
    for r in runs:
        print(f"| {r['n']:,} | {r['c']} | {r['secs']:.3f} s | {r['rate']:,.0f} /s | {r['unique']} / {r['dups']} | "
              f"{r['rss_idle']:.1f} MiB → {r['rss_after']:.1f} MiB |")
    fast, slow, fifty = runs
    print(f"\nspeed-up over one-at-a-time: {fast['rate'] / slow['rate']:.1f}x")
    ok = fast["rate"] >= 200 and fast["rate"] >= 4 * slow["rate"] * 0.99 and fifty["secs"] < 0.5 and all(r["dups"] == 0 and r["unique"] == r["n"] for r in runs)
    print("RESULT:", "targets met" if ok else "TARGETS MISSED")

if __name__ == "__main__":
    main()
