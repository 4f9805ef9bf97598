// Starts real programs for end-to-end tests: mock-ofd and kkt-adapterd on free loopback ports
// with a temp data directory, and waits on conditions with deadlines (never fixed sleeps).
import { spawn } from "node:child_process";
import { mkdtempSync, writeFileSync, mkdirSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, dirname } from "node:path";
import { fileURLToPath } from "node:url";
import net from "node:net";
import { before, after } from "node:test";
import { chromium } from "playwright-core";

export const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..", "..");
export const BIN = process.env.KKT_BIN_DIR || join(ROOT, "target", "debug");
export const OUT = join(ROOT, "tests", "out");
mkdirSync(OUT, { recursive: true });
export const SEED = { pos_id: "POS-001", type: "sale", items: [{ name: "Test", price: 100, qty: 1 }], payments: [{ type: "cash", amount: 100 }] };

export function freePort() {
  return new Promise((resolve) => {
    const s = net.createServer();
    s.listen(0, "127.0.0.1", () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

export async function waitFor(what, check, limitMs = 20000) {
  const deadline = Date.now() + limitMs;
  for (;;) {
    const v = await check().catch(() => undefined);
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Runs a program until `stop()`; `ready` resolves with the first stderr/stdout line matching `pattern`. */
export function run(cmd, args, pattern, env = {}) {
  const child = spawn(cmd, args, { env: { ...process.env, ...env }, stdio: ["ignore", "pipe", "pipe"] });
  let log = "";
  const ready = new Promise((resolve, reject) => {
    const onData = (d) => {
      log += d.toString();
      const m = log.match(pattern);
      if (m) resolve(m);
    };
    child.stdout.on("data", onData);
    child.stderr.on("data", onData);
    child.on("exit", (code) => reject(new Error(`${cmd} exited with ${code}:\n${log}`)));
  });
  const exited = new Promise((resolve) => child.on("exit", (code, signal) => resolve({ code, signal })));
  return { child, ready, exited, log: () => log, stop: async (sig = "SIGTERM") => { child.kill(sig); return exited; } };
}

export async function startMockOfd() {
  const port = await freePort();
  const controlPort = await freePort();
  // Faults are switched through the always-up control port: the main one resets everything while `down`.
  const p = run(join(BIN, "mock-ofd"), ["--listen", `127.0.0.1:${port}`, "--control-listen", `127.0.0.1:${controlPort}`], /control on (http:\/\/\S+)/);
  await p.ready;
  const url = `http://127.0.0.1:${port}`;
  const control = `http://127.0.0.1:${controlPort}`;
  return {
    url,
    stop: p.stop,
    control: (faults) => fetch(`${control}/ofd/v1/_control`, { method: "POST", body: JSON.stringify(faults) }).then((r) => r.json()),
    stats: () => fetch(`${control}/ofd/v1/_stats`).then((r) => r.json()),
  };
}

/** A fast policy so outages and recoveries fit in a test (same shape as the defaults). */
export const FAST_CONFIG = `[sync]\ninterval_secs = 0.5\nbackoff_base_secs = 0.2\nbackoff_max_secs = 1\n[breaker]\nopen_secs = 1\n`;

export async function startDaemon(ofdUrl, token, extraConfig = "") {
  const dir = mkdtempSync(join(tmpdir(), "kkt-e2e-"));
  writeFileSync(join(dir, "config.toml"), FAST_CONFIG + extraConfig);
  const args = ["--data-dir", dir, "--config", join(dir, "config.toml"), "--listen", "127.0.0.1:0", "--admin-token", token];
  if (ofdUrl) args.push("--ofd-url", ofdUrl);
  const p = run(join(BIN, "kkt-adapterd"), args, /listening on (http:\/\/\S+)/);
  const m = await p.ready;
  const base = m[1];
  const api = {
    base,
    dir,
    stop: p.stop,
    log: p.log,
    status: () => fetch(`${base}/v1/kkt/buffer/status`).then((r) => r.json()),
    receipt: (key, body = SEED) =>
      fetch(`${base}/v1/kkt/receipt`, {
        method: "POST",
        headers: { "Content-Type": "application/json", "Idempotency-Key": key },
        body: JSON.stringify(body),
      }).then((r) => r.json()),
  };
  return api;
}

export const CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
  "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic"];

/** A real mock-atol process on a free port: its URL, faults (`control`), another program's receipt (`foreign`), stats. */
export async function startAtol(t) {
  const port = await freePort();
  const p = run(join(BIN, "mock-atol"), ["--listen", `127.0.0.1:${port}`], /listening on (http:\/\/\S+)/);
  const url = (await p.ready)[1];
  t.after(() => p.stop());
  const post = (path, body) => fetch(`${url}${path}`, { method: "POST", body: JSON.stringify(body) }).then((r) => r.json());
  return { url, control: (f) => post("/mock/control", f), foreign: (d) => post("/mock/foreign", d), stats: () => fetch(`${url}/mock/stats`).then((r) => r.json()) };
}

/** kkt-adapterd on the ATOL driver against `atolUrl` (fast timings, `extra` lines added to `[kkt]`);
 * `receipt(key, body)` posts a sale (`sale` by default). */
export async function startAtolDaemon(t, atolUrl, token, sale, extra = "") {
  const dir = mkdtempSync(join(tmpdir(), "kkt-e2e-atol-"));
  writeFileSync(join(dir, "config.toml"),
    `[kkt]\ndriver = "atol"\nwrite_slips = false\nanswer_within_ms = 1500\nretry_ms = 100\n${extra}[kkt.atol]\nurl = "${atolUrl}"\njob_bound_ms = 1000\npoll_ms = 10\n`);
  const p = run(join(BIN, "kkt-adapterd"), ["--data-dir", dir, "--config", join(dir, "config.toml"), "--listen", "127.0.0.1:0", "--admin-token", token],
    /listening on (http:\/\/\S+)/);
  const base = (await p.ready)[1];
  t.after(() => p.stop().catch(() => {}));
  const receipt = (key, body = sale) => fetch(`${base}/v1/kkt/receipt`, {
    method: "POST", headers: { "Content-Type": "application/json", "Idempotency-Key": key }, body: JSON.stringify(body),
  }).then(async (r) => ({ status: r.status, body: await r.json() }));
  return { base, receipt, status: () => fetch(`${base}/v1/kkt/buffer/status`).then((r) => r.json()) };
}

/** The admin token the browser tests start kkt-adapterd with. */
export const TOKEN = "e2e-admin-token-0123456789abcdef-0123";

/** Debian's chromium for a test file (never a downloaded browser): launched before its tests and
 * closed after them; the returned function gives it. */
export function useChromium() {
  let browser;
  before(async () => {
    browser = await chromium.launch({ executablePath: "/usr/bin/chromium", args: CHROMIUM_FLAGS });
  });
  after(async () => {
    await browser?.close();
  });
  return () => browser;
}
