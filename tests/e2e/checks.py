"""What the Python end-to-end suites share (prometheus.py, wine.py, packages.py): named checks
that are counted and reported TAP-like, free loopback ports, HTTP calls that return error
answers instead of raising, and waiting on a condition with a deadline (never a fixed sleep)."""
import json, os, socket, sys, time, urllib.error, urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BIN = os.environ.get("KKT_BIN_DIR", os.path.join(ROOT, "target", "debug"))
SEED = ('{"pos_id":"POS-001","type":"sale","items":[{"name":"Test","price":100,"qty":1}],'
        '"payments":[{"type":"cash","amount":100}]}')
results = []


def check(name, ok, detail=""):
    results.append(bool(ok))
    print(f"{'ok' if ok else 'FAILED'} - {name}{(': ' + str(detail)) if detail and not ok else ''}", flush=True)


def keep_if_failed(work):
    """Deletes a suite's work directory, or keeps it (and says where) when a check failed."""
    import shutil
    if all(results):
        shutil.rmtree(work, ignore_errors=True)
    else:
        print(f"# kept for a look: {work}")


def free_disk():
    """The space left where the suites write (the checkout's target/ and the temp directory), for a
    failure's report: a full disk fails installers and builds in ways that look like product bugs
    (an NSIS setup.exe that cannot write a file exits 2, "aborted")."""
    import shutil, tempfile
    places = {"checkout": ROOT, "temp": tempfile.gettempdir()}
    return ", ".join(f"{name} {shutil.disk_usage(path).free / 2**30:.1f} GiB free" for name, path in places.items())


def finish(suite):
    """Prints the tally and exits non-zero if anything failed (or nothing was checked)."""
    failed = results.count(False)
    if failed:
        print(f"# disk: {free_disk()}")
    print(f"{suite}: {len(results) - failed} passed, {failed} failed")
    sys.exit(1 if failed or not results else 0)


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def request(method, url, body=None, headers=None, timeout=15):
    """(status, headers, body bytes) for any answer, error statuses included."""
    data = body.encode() if isinstance(body, str) else body
    req = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, r.headers, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers, e.read()


def get_json(url):
    return json.loads(request("GET", url)[2])


def receipt(api, body=SEED, key=None, ctype="application/json"):
    headers = {"Content-Type": ctype}
    if key is not None:
        headers["Idempotency-Key"] = key
    return request("POST", f"{api}/v1/kkt/receipt", body, headers)


def healthy(api):
    return lambda: request("GET", f"{api}/v1/health", timeout=2)[0] == 200


def wait(what, f, seconds=60, fatal=True):
    """Polls `f` until it returns something true and returns that. At the deadline: stops the
    suite (`fatal`) or returns None."""
    deadline = time.monotonic() + seconds
    last = None
    while time.monotonic() < deadline:
        try:
            last = f()
            if last:
                return last
        except (OSError, ValueError) as e:
            last = e
        time.sleep(0.3)
    if fatal:
        raise SystemExit(f"timed out waiting for {what}: {last}")
    print(f"# timed out waiting for {what}: {last}")
    return None
