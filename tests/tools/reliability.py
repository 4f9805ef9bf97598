#!/usr/bin/env python3
"""Renders the figures the reliability tests recorded (tests/out/reliability/*.json) as the
Markdown table of RELIABILITY.md.

  python3 tests/tools/reliability.py            # print the table
  python3 tests/tools/reliability.py --write    # replace the table between the markers in RELIABILITY.md
"""
import glob, json, os, sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OUT = os.path.join(ROOT, "tests", "out", "reliability")
BEGIN, END = "<!-- figures:begin -->", "<!-- figures:end -->"
STEPS_BEGIN, STEPS_END = "<!-- steps:begin -->", "<!-- steps:end -->"


def load():
    figures = {}
    for path in sorted(glob.glob(os.path.join(OUT, "*.json"))):
        figures[os.path.basename(path)[:-5]] = json.load(open(path))
    return figures


def row(name, f):
    if f.get("skipped"):
        return f"| {name} | SKIPPED: {f.get('why', '')} | | | | |"
    ack = f.get("acknowledged", f.get("acknowledged_before_full", f.get("receipts", f.get("delivered", ""))))
    lost = f.get("lost", 0)
    twice = f.get("issued_twice", 0)
    if name == "crash_sigkill_loop":
        faults = f"{f['kills']} SIGKILLs, {f['ofd_failures_injected']} OFD failures"
        other = (f"{f['tills']} tills, {f['client_retries']} till retries, fiscal numbers 2..{f['acknowledged'] + 1} gap-free (1: the shift opening), "
                 f"{f['ofd_repeat_sends_deduplicated']} repeat sends de-duplicated by the OFD, {f['seconds']} s")
    elif name == "atol_sigkill_loop":
        ack = f["sales_acknowledged"]
        twice = f["registered_twice"]
        faults = f"{f['kills']} SIGKILLs of the adapter, {f.get('lost_job_faults_fired', f['lost_job_faults_armed'])} jobs lost by the web server after the FN registered them"
        other = (f"ATOL driver against mock-atol: {f['tills']} tills, {f['client_retries']} till retries, "
                 f"{f['sales_on_the_device']} sales on the device, each with the number its till got, {f['seconds']} s")
    elif name == "crash_during_dlq_retry":
        faults = f"{f['kills']} SIGKILLs during `POST /v1/kkt/dlq/retry`"
        other = "; ".join(f"kill +{r['delay_ms']} ms: answered {r['answered']}, {r['left_in_dlq']} left in DLQ"
                          for r in f["rounds"])
    elif name.startswith("ofd_fault_"):
        faults = f"{f['fault']} for {f['window_s']} s"
        opened = sum(1 for t in f["breaker_transitions"] if t == "circuit_opened")
        other = (f"{f['classified_as']}; `{f['last_error'][:48]}`; {f['calls_in_window']} calls in {f['window_s']} s "
                 f"(breaker open {f['open_for_ms']} ms, opened {opened}×); recovered in {f['recovered_in_ms']} ms; "
                 f"{f['ofd_repeat_sends_deduplicated']} repeats de-duplicated")
    elif name.startswith("dlq_after_20"):
        faults = "OFD always 503"
        other = (f"{f['attempts_counted']} attempts counted, {f['calls_reaching_ofd']} calls reached the OFD, "
                 f"breaker opened {f['breaker_openings']}×")
        ack = 1
    elif name.startswith("storage_"):
        faults = f.get("fs", f.get("cap", ""))
        faults = f"disk full ({faults})" if name == "storage_disk_full" else f"database cap {faults}"
        held = (f"{f['awaiting_device_202']} answered 202 awaiting_device (the register's memory full first)"
                if f.get("awaiting_device_202") else f"{f['refused_with_503']} refused with 503 storage_unavailable")
        other = f"{held}, then accepted after space returned; numbers gap-free"
    elif name == "hostile_input":
        faults = f"{f['requests']} hostile requests"
        other = f"5xx: {f['server_errors']}, crashes: {f['crashes']}, valid-but-hostile stored: {f['stored_valid']}"
        ack = f["stored_valid"]
    elif name == "fuzz":
        faults = f"{f['cases']} fuzzed bodies"
        other = f"5xx: {f['server_errors']}, crashes: {f['crashes']}, {f['seconds']:.1f} s"
        ack = ""
    elif name == "idle_sockets":
        faults = f"{f['idle_sockets']} idle sockets (silent, slowloris, kept alive) against a cap of {f['cap']}"
        other = (f"a till's sale answered in {f['till_answer_ms']} ms meanwhile; every idle socket closed "
                 f"{f['closed_within_s']:.1f} s after it was opened (limit 15 s)")
        ack = 1
    else:
        faults, other = "", json.dumps(f, ensure_ascii=False)
    return f"| {name} | {faults} | {ack} | {lost} | {twice} | {other} |"


def table(figures):
    lines = ["| scenario | faults injected | acknowledged | lost | issued twice | other figures |",
             "|---|---|---|---|---|---|"]
    lines += [row(n, f) for n, f in figures.items() if n != "atol_steps"]
    return "\n".join(lines)


def steps_table(f):
    """The kill-at-every-step test of the ATOL path (core/tests/atol_steps.rs)."""
    lines = ["| the adapter stopped at | the FN held then | the FN holds | the adapter recorded | the till was told | in the end | doubles | lost |",
             "|---|---|---|---|---|---|---|---|"]
    for r in f["steps"]:
        lines.append(f"| {r['step']} | {r['fn_at_stop']} | {r['fn_holds']} | {r['adapter_recorded']} | "
                     f"{r['till_told_first']} | {r['till_told_finally']} | {r['doubles']} | {r['lost']} |")
    return "\n".join(lines)


def splice(doc, begin, end, text):
    head, rest = doc.split(begin, 1)
    _, tail = rest.split(end, 1)
    return f"{head}{begin}\n{text}\n{end}{tail}"


def main():
    figures = load()
    if not figures:
        sys.exit(f"no figures in {OUT}: run the test suite first")
    text = table(figures)
    steps = steps_table(figures["atol_steps"]) if "atol_steps" in figures else None
    if "--write" in sys.argv:
        path = os.path.join(ROOT, "RELIABILITY.md")
        doc = splice(open(path).read(), BEGIN, END, text)
        if steps:
            doc = splice(doc, STEPS_BEGIN, STEPS_END, steps)
        open(path, "w").write(doc)
        print(f"wrote {len(figures)} scenarios into RELIABILITY.md")
    else:
        print(text)
        if steps:
            print()
            print(steps)


if __name__ == "__main__":
    main()
