// Helpers for the desktop tests (run under Xvfb and dbus-run-session): screenshots of the X
// screen, and memory (RSS, PSS) of a process with all its descendants (WebKit's processes).
import { execFileSync } from "node:child_process";
import { readFileSync, readdirSync } from "node:fs";

/** Saves the whole X screen as PNG and returns the standard deviation of its pixels (0 = blank). */
export function screenshot(path) {
  execFileSync("/usr/bin/import", ["-window", "root", path]);
  const sd = execFileSync("/usr/bin/convert", [path, "-colorspace", "gray", "-format", "%[fx:standard_deviation]", "info:"]).toString();
  return Number(sd);
}

function children() {
  const map = new Map();
  for (const name of readdirSync("/proc")) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, "utf8");
      const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
      if (!map.has(ppid)) map.set(ppid, []);
      map.get(ppid).push(Number(name));
    } catch { /* gone */ }
  }
  return map;
}

export function tree(pid) {
  const map = children();
  const out = [pid];
  for (let i = 0; i < out.length; i++) out.push(...(map.get(out[i]) || []));
  return out;
}

/** Sum of RSS and PSS (KiB) over `pid` and its descendants, with the process names. */
export function memory(pid) {
  let rss = 0, pss = 0;
  const names = [];
  for (const p of tree(pid)) {
    try {
      const rollup = readFileSync(`/proc/${p}/smaps_rollup`, "utf8");
      rss += Number(/^Rss:\s+(\d+)/m.exec(rollup)[1]);
      pss += Number(/^Pss:\s+(\d+)/m.exec(rollup)[1]);
      names.push(readFileSync(`/proc/${p}/comm`, "utf8").trim());
    } catch { /* gone */ }
  }
  return { rssMiB: rss / 1024, pssMiB: pss / 1024, processes: names };
}

/** `memory(pid)` once it has settled: two readings 500 ms apart within 2 % PSS (at most 20 s). */
export async function settledMemory(pid) {
  let last = memory(pid);
  for (let i = 0; i < 40; i++) {
    await new Promise((resolve) => setTimeout(resolve, 500));
    const next = memory(pid);
    if (Math.abs(next.pssMiB - last.pssMiB) <= 0.02 * last.pssMiB) return next;
    last = next;
  }
  return last;
}
