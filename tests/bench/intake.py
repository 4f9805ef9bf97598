#!/usr/bin/env python3
"""Intake benchmark: `kkt-adapterd` (release) under 32 concurrent POS connections (wrk), with
the disk's fsync rate measured in the same data directory in the same run.

Target (issue 2): throughput >= 3x the fsync rate, p99 < 25 ms, zero non-2xx.
Usage: python3 tests/bench/intake.py [--seconds 15] [--connections 32]
Needs: wrk (apt-get install wrk), a release build (built here if missing).
"""
import argparse, json, os, re, shutil, subprocess, sys, tempfile, time, urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

def fsync_rate(directory, seconds=3.0):
    """Appends 512 bytes and fsyncs, repeatedly: the rate a durable commit can reach at best."""
    path = os.path.join(directory, "fsync-probe")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    n, start = 0, time.monotonic()
    while time.monotonic() - start < seconds:
        os.write(fd, b"x" * 512)
        os.fsync(fd)
        n += 1
    elapsed = time.monotonic() - start
    os.close(fd)
    os.unlink(path)
    return n / elapsed

def wait_listening(proc):
    deadline = time.time() + 30
    for line in proc.stderr:
        m = re.search(r"listening on http://(\S+)", line)
        if m:
            return m.group(1)
        if time.time() > deadline:
            break
    sys.exit("daemon did not start")

def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0

def metric(addr, name):
    text = urllib.request.urlopen(f"http://{addr}/metrics").read().decode()
    m = re.search(rf"^{name} (\S+)$", text, re.M)
    return float(m.group(1)) if m else 0.0

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=int, default=15)
    ap.add_argument("--connections", type=int, default=32)
    a = ap.parse_args()
    if not shutil.which("wrk"):
        sys.exit("wrk is missing: apt-get install -y wrk")
    subprocess.run(["cargo", "build", "--release", "--quiet", "--bin", "kkt-adapterd"], cwd=ROOT, check=True)
    daemon = os.path.join(ROOT, "target", "release", "kkt-adapterd")
    data = tempfile.mkdtemp(prefix="kkt-bench-", dir=os.environ.get("BENCH_DIR", "/var/tmp"))
    cfg = os.path.join(data, "config.toml")
    open(cfg, "w").write("[kkt]\nwrite_slips = true\n")
    fsyncs = fsync_rate(data)
    proc = subprocess.Popen([daemon, "--data-dir", data, "--listen", "127.0.0.1:0", "--config", cfg],
                            stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True, env={**os.environ, "KKT_LOG": "warn,kkt_core::app=info"})
    try:
        addr = wait_listening(proc)
        rss_idle = rss_kib(proc.pid)
        commits0, stored0 = metric(addr, "kkt_buffer_commits_total"), metric(addr, "kkt_buffer_receipts_stored_total")
        out = subprocess.run(["wrk", "-t2", f"-c{a.connections}", f"-d{a.seconds}s", "--latency", "-s",
                              os.path.join(ROOT, "tests", "bench", "intake.lua"), f"http://{addr}"],
                             capture_output=True, text=True, check=True).stdout
        m = dict(re.findall(r"(\w+)=(\d+)", out.split("RESULT", 1)[1]))
        rss_after = rss_kib(proc.pid)
        commits = metric(addr, "kkt_buffer_commits_total") - commits0
        stored = metric(addr, "kkt_buffer_receipts_stored_total") - stored0
        status = json.load(urllib.request.urlopen(f"http://{addr}/v1/kkt/buffer/status"))
    finally:
        proc.terminate()
        proc.wait(timeout=60)
    reqs, secs = int(m["requests"]), int(m["duration_us"]) / 1e6
    rps = reqs / secs
    ms = lambda k: int(m[k]) / 1000
    rows = [
        ("fsync rate of the data disk (512 B append + fsync)", f"{fsyncs:,.0f} /s"),
        (f"receipts accepted ({a.connections} connections, {a.seconds} s)", f"{reqs:,}"),
        ("throughput", f"{rps:,.0f} receipts/s"),
        ("throughput / fsync rate", f"{rps / fsyncs:.1f}x  (target >= 3x)"),
        ("latency p50 / p90 / p99 / max", f"{ms('p50_us'):.2f} / {ms('p90_us'):.2f} / {ms('p99_us'):.2f} / {ms('max_us'):.2f} ms  (target p99 < 25 ms)"),
        ("writer commits (each one WAL fsync) / per second", f"{commits:,.0f} / {commits / secs:,.0f} per s"),
        ("new receipts per commit (intake has 2 commits each)", f"{stored / max(commits, 1):.1f}  → {2 * commits / max(stored, 1):.2f} fsyncs per receipt"),
        ("non-2xx answers / socket errors", f"{m['non2xx']} / {m['errors']}  (target 0)"),
        ("receipts in the buffer afterwards (total / synced)", f"{status['total_receipts']:,} / {status['synced']:,}"),
        ("daemon RSS idle / after the run", f"{rss_idle / 1024:.1f} MiB / {rss_after / 1024:.1f} MiB"),
    ]
    width = max(len(r[0]) for r in rows)
    print(f"| {'measure':<{width}} | value |\n|{'-' * (width + 2)}|-------|")
    for k, v in rows:
        print(f"| {k:<{width}} | {v} |")
    ok = rps >= 3 * fsyncs and ms("p99_us") < 25 and m["non2xx"] == "0" and m["errors"] == "0"
    print("\nRESULT:", "targets met" if ok else "TARGETS MISSED")
    shutil.rmtree(data, ignore_errors=True)

if __name__ == "__main__":
    main()
