// The real window through WebDriver: tauri-driver (crates.io) with Debian's WebKitWebDriver
// drives the built kkt-adapter under Xvfb and dbus-run-session.
import { test } from "node:test";
import assert from "node:assert/strict";
import { join } from "node:path";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { execFileSync } from "node:child_process";
import { BIN, OUT, run, freePort, waitFor, startMockOfd, FAST_CONFIG, SEED } from "./harness.mjs";

async function wd(base, method, path, body) {
  const r = await fetch(`${base}${path}`, { method, headers: { "Content-Type": "application/json" }, body: body && JSON.stringify(body) });
  const v = await r.json();
  if (!r.ok) throw new Error(`${method} ${path}: ${JSON.stringify(v)}`);
  return v.value;
}

test("the real window renders the counts, and Sync now in it triggers a sync", async (t) => {
  const ofd = await startMockOfd();
  await ofd.control({ down: true });
  const dir = mkdtempSync(join(tmpdir(), "kkt-wd-"));
  writeFileSync(join(dir, "config.toml"), FAST_CONFIG);
  const port = await freePort();
  const api = `http://127.0.0.1:${port}`;
  const driverPort = await freePort();
  const nativePort = await freePort();
  const wdBase = `http://127.0.0.1:${driverPort}`;
  const driver = run("tauri-driver", ["--port", String(driverPort), "--native-port", String(nativePort)], /./);
  let sid;
  t.after(async () => {
    // In this order: ending the session closes the app; then the driver; then the mock OFD.
    if (sid) await fetch(`${wdBase}/session/${sid}`, { method: "DELETE" }).catch(() => {});
    // Whatever happened above, no app of this test may outlive it (it holds the driver's stdout).
    try {
      execFileSync("pkill", ["-f", `kkt-adapter --data-dir ${dir}`]);
    } catch {
      /* none left: the usual case */
    }
    await driver.stop();
    await ofd.stop();
  });
  await waitFor("tauri-driver", async () => (await fetch(`${wdBase}/status`)).ok, 30000);
  const session = await wd(wdBase, "POST", "/session", {
    capabilities: {
      alwaysMatch: {
        "tauri:options": {
          application: join(BIN, "kkt-adapter"),
          // WebDriver drives the webview of the process it started: keep the window in it.
          args: ["--window-in-process", "--data-dir", dir, "--config", join(dir, "config.toml"), "--listen", `127.0.0.1:${port}`, "--ofd-url", ofd.url],
        },
      },
    },
  });
  sid = session.sessionId;
  for (let i = 0; i < 3; i++) {
    await fetch(`${api}/v1/kkt/receipt`, { method: "POST", headers: { "Content-Type": "application/json", "Idempotency-Key": `wd-${i}` }, body: JSON.stringify(SEED) });
  }
  const textOf = async (id) => {
    const el = await wd(wdBase, "POST", `/session/${sid}/element`, { using: "css selector", value: `[data-testid="${id}"]` });
    return wd(wdBase, "GET", `/session/${sid}/element/${Object.values(el)[0]}/text`);
  };
  await waitFor("3 pending in the window", async () => (await textOf("pending-count")) === "3", 30000);
  assert.equal(await textOf("dlq-count"), "0");
  await ofd.control({ down: false });
  // The shell handed the admin token to the page: no prompt, the click syncs.
  const button = await wd(wdBase, "POST", `/session/${sid}/element`, { using: "css selector", value: '[data-testid="sync-now"]' });
  await wd(wdBase, "POST", `/session/${sid}/element/${Object.values(button)[0]}/click`, {});
  await waitFor("synced in the window", async () => (await textOf("synced-count")) === "3", 30000);
  const stats = await ofd.stats();
  assert.equal(stats.stats.unique_keys, 3);
  const png = await wd(wdBase, "GET", `/session/${sid}/screenshot`);
  writeFileSync(join(OUT, "desktop-webdriver.png"), Buffer.from(png, "base64"));
});
