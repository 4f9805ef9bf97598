#!/usr/bin/env python3
"""Intake side by side with the original adapter (issue 18), in one run on this machine.

The original is the Python/FastAPI adapter the seed was written for (GitHub bozzyk44/OpticsERP,
`kkt_adapter/`). It is not part of this repository: pass its git directory (the search tool's
`fetch` leaves one under /work/.mirror) or a checkout. This script exports `kkt_adapter/` into a
temp dir, installs the original's own requirements into a venv (PyPI), starts it with uvicorn as
its Dockerfile does (without --reload), and starts `kkt-adapterd` (release) on its defaults.
Each gets the same load: `wrk -t2 -c32 -d<seconds>s`, every request a new sale in the original's
body shape (tests/bench/versus.lua), `rounds` times alternately. Prints a table.

Usage: python3 tests/bench/versus.py --original /work/.mirror/bozzyk44+OpticsERP/repo
                                     [--seconds 10] [--rounds 2] [--bins target/release]
                                     [--also before=/path/to/older/release/bins]

`--also NAME=DIR` adds another `kkt-adapterd` build (an older commit's) to the same run, so
before/after figures come from one sitting on one machine.
Needs: wrk, python3-venv (or python3 with venv), network to PyPI the first time.
"""
import argparse, os, re, shutil, socket, statistics, subprocess, sys, tempfile, time, urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
LUA = os.path.join(ROOT, "tests", "bench", "versus.lua")


def platform():
    try:
        model = next(l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name"))
    except (OSError, StopIteration):
        model = "unknown CPU"
    return f"{model}; wrk on the same cores"


def free_port():
    s = socket.socket(); s.bind(("127.0.0.1", 0)); p = s.getsockname()[1]; s.close(); return p


def wait_http(url, limit=60):
    deadline = time.time() + limit
    while time.time() < deadline:
        try:
            urllib.request.urlopen(url, timeout=2)
            return
        except urllib.error.HTTPError:
            return  # it answers
        except OSError:
            time.sleep(0.2)
    sys.exit(f"{url} did not answer")


def original(src, work):
    """Exports the original adapter and installs its requirements; returns (cwd, python)."""
    dest = os.path.join(work, "original")
    os.makedirs(dest)
    # The app and the schema it reads at start (bootstrap/kkt_adapter_skeleton/schema.sql,
    # found relative to the app's folder).
    parts = ["kkt_adapter", "bootstrap/kkt_adapter_skeleton"]
    if os.path.isdir(os.path.join(src, "kkt_adapter")):
        for part in parts:
            shutil.copytree(os.path.join(src, part), os.path.join(dest, part))
    else:
        tar = subprocess.run(["git", f"--git-dir={src}", "archive", "HEAD", *parts], check=True, capture_output=True).stdout
        subprocess.run(["tar", "-x", "-C", dest], input=tar, check=True)
    venv = os.path.join(work, "venv")
    subprocess.run([sys.executable, "-m", "venv", venv], check=True)
    py = os.path.join(venv, "bin", "python")
    subprocess.run([py, "-m", "pip", "install", "--quiet", "-r", os.path.join(dest, "kkt_adapter", "requirements.txt")], check=True)
    return os.path.join(dest, "kkt_adapter", "app"), py


def sane(name, base):
    """One sale first: a server that answers errors would be measured answering errors."""
    body = re.search(r"local body = '(.*)'", open(LUA, encoding="utf-8").read()).group(1).encode()
    req = urllib.request.Request(f"{base}/v1/kkt/receipt", data=body, method="POST",
                                 headers={"Content-Type": "application/json", "Idempotency-Key": f"sane-{time.time_ns()}"})
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            if r.status // 100 == 2:
                return
            sys.exit(f"{name} answered {r.status} to the benchmark's sale")
    except urllib.error.HTTPError as e:
        sys.exit(f"{name} answered {e.code} to the benchmark's sale: {e.read()[:300]!r}")


def wrk(base, seconds):
    out = subprocess.run(["wrk", "-t2", "-c32", f"-d{seconds}s", "-s", LUA, base], capture_output=True, text=True).stdout
    m = re.search(r"RESULT (.*)", out)
    if not m:
        sys.exit(f"wrk said: {out}")
    r = {k: int(v) for k, v in (kv.split("=") for kv in m.group(1).split())}
    # Receipts taken: answers that are not 2xx (a full buffer's 503) are not receipts.
    r["rps"] = (r["requests"] - r["non2xx"]) / (r["duration_us"] / 1e6)
    return r


# The original's mock register sleeps 200-500 ms per receipt (kkt_driver.print_receipt,
# time.sleep(random.uniform(0.2, 0.5))) on the event loop, so as shipped it takes ~3 receipts/s.
# Its buffer also holds 200 receipts (its `config` table's `buffer_capacity`), then answers 503
# until the OFD takes some: a 10 s run fills it in a fraction of a second. To compare the intake
# machinery itself, the second variant replaces that module's `time` with one whose sleep returns
# at once and sets `buffer_capacity` to 100,000 (kkt-adapterd's default) through the original's
# own config row, before it starts — nothing else of the original is touched.
NO_PRINT_DELAY = """
import os, sqlite3, sys, time, types, uvicorn
import buffer, kkt_driver
kkt_driver.time = types.SimpleNamespace(**{k: getattr(time, k) for k in dir(time) if not k.startswith("__")})
kkt_driver.time.sleep = lambda _s: None
buffer.init_buffer_db(os.environ["BUFFER_DB_PATH"]).close()
with sqlite3.connect(os.environ["BUFFER_DB_PATH"]) as c:
    c.execute("UPDATE config SET value = '100000' WHERE key = 'buffer_capacity'")
uvicorn.run("main:app", host="127.0.0.1", port=int(sys.argv[1]), log_level="warning")
"""


def start_original(app_dir, py, work, print_delay=True):
    port = free_port()
    db = os.path.join(work, f"original-buffer-{port}.db")
    env = {**os.environ, "BUFFER_DB_PATH": db, "PYTHONUNBUFFERED": "1"}
    if print_delay:
        cmd = [py, "-m", "uvicorn", "main:app", "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"]
    else:
        cmd = [py, "-c", NO_PRINT_DELAY, str(port)]
    p = subprocess.Popen(cmd, cwd=app_dir, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    wait_http(f"{base}/v1/kkt/buffer/status")
    return p, base


def start_ours(bins, work):
    data = tempfile.mkdtemp(dir=work)
    cfg = os.path.join(data, "config.toml")
    open(cfg, "w").write("")
    port = free_port()
    p = subprocess.Popen([os.path.join(bins, "kkt-adapterd"), "--data-dir", data, "--config", cfg, "--listen", f"127.0.0.1:{port}"],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env={**os.environ, "KKT_LOG": "warn"})
    base = f"http://127.0.0.1:{port}"
    wait_http(f"{base}/v1/health")
    return p, base


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--original", required=True, help="the original adapter's git directory or checkout")
    ap.add_argument("--seconds", type=int, default=10)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--bins", default=os.path.join(ROOT, "target", "release"))
    ap.add_argument("--also", action="append", default=[], metavar="NAME=DIR",
                    help="another kkt-adapterd build to measure in the same run")
    a = ap.parse_args()
    builds = {"kkt-adapterd": a.bins}
    for spec in a.also:
        name, _, path = spec.partition("=")
        builds[f"kkt-adapterd ({name})"] = path
    if not shutil.which("wrk"):
        sys.exit("wrk is missing: apt-get install -y wrk")
    if a.bins == os.path.join(ROOT, "target", "release"):
        subprocess.run(["cargo", "build", "--release", "--quiet", "--bin", "kkt-adapterd"], cwd=ROOT, check=True)
    work = tempfile.mkdtemp(prefix="kkt-versus-", dir=os.environ.get("BENCH_DIR", "/var/tmp"))
    try:
        app_dir, py = original(a.original, work)
        originals = {"original (as shipped)": True, "original, no print delay, capacity 100k": False}
        rows = {**{name: [] for name in originals}, **{name: [] for name in builds}}
        for _ in range(a.rounds):
            for name in rows:
                if name in originals:
                    p, base = start_original(app_dir, py, work, originals[name])
                else:
                    p, base = start_ours(builds[name], work)
                try:
                    sane(name, base)
                    rows[name].append(wrk(base, a.seconds))
                finally:
                    p.terminate(); p.wait(timeout=30)
        print(f"wrk -t2 -c32 -d{a.seconds}s, a new sale per request (tests/bench/versus.lua), {a.rounds} rounds each, alternating\n")
        print("| adapter | receipts/s (each round) | p50–p99 ms (each round, / between rounds) | non-2xx | socket errors |")
        print("|---|---|---|---:|---:|")
        for name, rs in rows.items():
            rps = " / ".join(f"{r['rps']:,.0f}" for r in rs)
            lat = " / ".join(f"{r['p50_us']/1000:.1f}–{r['p99_us']/1000:.1f}" for r in rs)
            print(f"| {name} | {rps} | {lat} | {sum(r['non2xx'] for r in rs)} | {sum(r['errors'] for r in rs)} |")
        print()
        for base_name in originals:
            theirs = statistics.mean(r["rps"] for r in rows[base_name])
            for name in builds:
                ours = statistics.mean(r["rps"] for r in rows[name])
                print(f"{name} / {base_name}: {ours / theirs:,.1f}x (mean of the rounds)")
        print(f"\nmachine: {os.cpu_count()} cores; {platform()}")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
