#!/usr/bin/env python3
"""Fleet monitoring end to end (issue 13): the alert rules pass `promtool check` and their unit
tests, and a real Prometheus (Debian's package) scraping a running kkt-adapterd sees its metrics
with the shop/till labels and fires an alert when the adapter has something in its DLQ.

Usage: python3 tests/e2e/prometheus.py   (after the debug build of kkt-adapterd and mock-ofd)
"""
import json, os, re, shutil, subprocess, tempfile
from checks import BIN, ROOT, check, finish, free_port, get_json as get, request, wait

RULES = os.path.join(ROOT, "deploy", "prometheus", "kkt-adapter.rules.yml")


def post(url, body, headers):
    return request("POST", url, body, headers)[0]


def main():
    procs = []
    work = tempfile.mkdtemp(prefix="kkt-prom-")
    try:
        # 1. The rules: syntax and unit tests.
        r = subprocess.run(["promtool", "check", "rules", RULES], capture_output=True, text=True)
        check("promtool check rules", r.returncode == 0, r.stdout + r.stderr)
        r = subprocess.run(["promtool", "test", "rules", "kkt-adapter.rules.test.yml"], capture_output=True, text=True,
                           cwd=os.path.dirname(RULES))
        check("promtool test rules", r.returncode == 0, r.stdout + r.stderr)
        try:
            board = json.load(open(os.path.join(ROOT, "deploy", "grafana", "kkt-adapter-fleet.json")))
            exprs = [t["expr"] for p in board["panels"] for t in p.get("targets", [])]
            exprs.append(open(RULES).read())
            # Every metric the board and the rules query is one the adapter defines.
            # (The names live in metrics.rs and its leaf, counters.rs.)
            defined = "".join(open(os.path.join(ROOT, "core", "src", f)).read() for f in ("metrics.rs", "counters.rs"))
            used = {re.sub(r"_(bucket|count|sum)$", "", m) for e in exprs for m in re.findall(r"kkt_[a-z_]+", e)}
            unknown = sorted(m for m in used if f'"{m}"' not in defined)
            problem = f"unknown metrics: {unknown}" if unknown or len(exprs) < 2 else ""
        except (ValueError, KeyError) as e:
            problem = str(e)
        check("the Grafana board is JSON and it and the rules query only metrics the adapter has", not problem, problem)

        # 2. A daemon whose OFD rejects this till's receipts (so one lands in the DLQ).
        ofd_port, ctl_port, api_port, prom_port = free_port(), free_port(), free_port(), free_port()
        procs.append(subprocess.Popen([os.path.join(BIN, "mock-ofd"), "--listen", f"127.0.0.1:{ofd_port}",
                                       "--control-listen", f"127.0.0.1:{ctl_port}"],
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        wait("mock-ofd", lambda: get(f"http://127.0.0.1:{ctl_port}/ofd/v1/_stats"))
        post(f"http://127.0.0.1:{ctl_port}/ofd/v1/_control", '{"reject_pos_ids":["POS-PROM"]}',
             {"Content-Type": "application/json"})
        data = os.path.join(work, "data"); os.mkdir(data)
        cfg = os.path.join(work, "kkt.toml")
        open(cfg, "w").write("[kkt]\nwrite_slips = false\n")
        procs.append(subprocess.Popen([os.path.join(BIN, "kkt-adapterd"), "--data-dir", data, "--config", cfg,
                                       "--listen", f"127.0.0.1:{api_port}", "--ofd-url", f"http://127.0.0.1:{ofd_port}",
                                       "--admin-token", "prom-admin-token-0123456789abcdef-012"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        api = f"http://127.0.0.1:{api_port}"
        wait("kkt-adapterd", lambda: get(f"{api}/v1/health"))

        # 3. Prometheus scraping it every second with the fleet's rules, labelled like a shop.
        shutil.copy(RULES, os.path.join(work, "kkt-adapter.rules.yml"))
        open(os.path.join(work, "prometheus.yml"), "w").write(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
            "rule_files:\n  - kkt-adapter.rules.yml\n"
            "scrape_configs:\n  - job_name: kkt-adapter\n    static_configs:\n"
            f"      - targets: ['127.0.0.1:{api_port}']\n        labels: {{shop: 'test-shop', till: '7'}}\n")
        procs.append(subprocess.Popen(["prometheus", f"--config.file={work}/prometheus.yml",
                                       f"--storage.tsdb.path={work}/tsdb", f"--web.listen-address=127.0.0.1:{prom_port}"],
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        prom = f"http://127.0.0.1:{prom_port}"
        series = wait("the adapter's metrics in Prometheus", lambda: get(
            f"{prom}/api/v1/query?query=kkt_receipts%7Bshop%3D%22test-shop%22%7D")["data"]["result"])
        check("Prometheus scrapes kkt_receipts with the shop and till labels",
              any(s["metric"].get("till") == "7" for s in series), json.dumps(series))

        # 4. A receipt the OFD rejects: the DLQ is not empty, the alert fires.
        body = ('{"pos_id":"POS-PROM","type":"sale","items":[{"name":"Test","price":100,"qty":1}],'
                '"payments":[{"type":"cash","amount":100}]}')
        post(f"{api}/v1/kkt/receipt", body, {"Content-Type": "application/json", "Idempotency-Key": "prom-1"})
        alert = wait("KktDlqNotEmpty firing", lambda: [a for a in get(f"{prom}/api/v1/alerts")["data"]["alerts"]
                                                     if a["labels"]["alertname"] == "KktDlqNotEmpty" and a["state"] == "firing"])
        check("KktDlqNotEmpty fires for the till with its labels",
              alert[0]["labels"].get("shop") == "test-shop" and alert[0]["labels"].get("till") == "7", json.dumps(alert))
        # The other rules wait minutes before firing: none may even be pending.
        quiet = [a["labels"]["alertname"] for a in get(f"{prom}/api/v1/alerts")["data"]["alerts"]
                 if a["labels"]["alertname"] != "KktDlqNotEmpty"]
        check("no other alert is pending or firing for a healthy adapter", not quiet, str(quiet))
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                p.kill()
        shutil.rmtree(work, ignore_errors=True)
    finish("prometheus")


if __name__ == "__main__":
    main()
