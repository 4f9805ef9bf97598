// The web window in a real browser (Debian's chromium via playwright-core) against the real
// kkt-adapterd and mock-ofd. Each test saves a screenshot to tests/out/.
import { test } from "node:test";
import assert from "node:assert/strict";
import { join } from "node:path";
import { readFileSync } from "node:fs";
import { OUT, waitFor, startMockOfd, startDaemon, TOKEN, useChromium } from "./harness.mjs";

const browser = useChromium();

const text = (page, id) => page.locator(`[data-testid="${id}"]`).first().innerText();

async function open(daemon, { token } = {}) {
  const context = await browser().newContext({ viewport: { width: 1200, height: 900 }, locale: "ru-RU" });
  if (token) await context.addInitScript((t) => sessionStorage.setItem("kkt-admin-token", t), token);
  const page = await context.newPage();
  await page.goto(`${daemon.base}/ui/`);
  return page;
}

async function setup(t, faults) {
  const ofd = await startMockOfd();
  if (faults) await ofd.control(faults);
  const daemon = await startDaemon(ofd.url, TOKEN);
  t.after(async () => {
    await daemon.stop();
    await ofd.stop();
  });
  return { ofd, daemon };
}

test("the counts on the page match the API and update without a reload", async (t) => {
  const { ofd, daemon } = await setup(t, { down: true });
  for (let i = 0; i < 3; i++) await daemon.receipt(`counts-${i}`);
  const page = await open(daemon);
  const s = await daemon.status();
  await waitFor("pending on the page", async () => (await text(page, "pending-count")) === String(s.pending + s.syncing) || (await text(page, "pending-count")) === String(s.pending), 5000);
  assert.equal(await text(page, "synced-count"), String(s.synced));
  assert.equal(await text(page, "dlq-count"), "0");
  await waitFor("breaker open on the page", async () => (await text(page, "breaker-state")) === "open");
  assert.equal(await text(page, "network-status"), "offline");
  assert.match(await text(page, "oldest-pending-age"), /^\d+$/);
  assert.equal(await text(page, "device-state"), "ККТ готова", "the mock register is always ready");
  // The version shown is the workspace's (Cargo.toml), the one the packages carry.
  const cargo = readFileSync(join(import.meta.dirname, "..", "..", "Cargo.toml"), "utf8");
  const version = cargo.match(/\[workspace\.package\][^[]*?\nversion = "([^"]+)"/)[1];
  await waitFor("the version on the page", async () => (await text(page, "app-version")) === version);
  await page.screenshot({ path: join(OUT, "browser-counts.png"), fullPage: true });
  // The OFD comes back: the page follows without a reload.
  await ofd.control({ down: false });
  await waitFor("synced on the page", async () => (await text(page, "synced-count")) === "3", 20000);
  assert.equal(await text(page, "pending-count"), "0");
});

test("Sync now delivers waiting receipts after the OFD recovers", async (t) => {
  const { ofd, daemon } = await setup(t, { down: true });
  for (let i = 0; i < 4; i++) await daemon.receipt(`sync-${i}`);
  const page = await open(daemon);
  await waitFor("receipts waiting", async () => (await text(page, "pending-count")) === "4");
  await ofd.control({ down: false });
  // In a plain browser the manager enters the admin token once per session.
  await page.click('[data-testid="sync-now"]');
  await page.waitForSelector("#token-box:not([hidden])");
  await page.fill("#token", TOKEN);
  await page.click("#token-save");
  // No "force" box any more: a manual sync probes an open breaker by itself.
  await page.click('[data-testid="sync-now"]');
  await waitFor("synced after Sync now", async () => (await text(page, "synced-count")) === "4", 20000);
  await waitFor("feedback", async () => /4|Готово|Done/.test(await page.locator("#action-result").innerText()));
  assert.equal((await ofd.stats()).stats.unique_keys, 4);
  await page.screenshot({ path: join(OUT, "browser-sync-now.png"), fullPage: true });
});

test("a long Sync now shows its progress, then its result", async (t) => {
  // 0.3 s an answer, 8 at a time: 120 receipts are ~5 s of work, far past the call's 1 s.
  const { ofd, daemon } = await setup(t, { down: true });
  for (let i = 0; i < 120; i++) await daemon.receipt(`long-${i}`);
  await ofd.control({ down: false, latency_ms: 300 });
  const page = await open(daemon, { token: TOKEN });
  await page.click('[data-testid="sync-now"]');
  await waitFor("progress shown", async () => /идёт|начнётся|running|starts/.test(await page.locator("#action-result").innerText()), 5000);
  await page.screenshot({ path: join(OUT, "browser-sync-progress.png"), fullPage: true });
  await waitFor("result shown", async () => /Готово|Done/.test(await page.locator("#action-result").innerText()), 30000);
  assert.equal(await text(page, "pending-count"), "0");
  assert.equal((await ofd.stats()).stats.unique_keys, 120);
});

test("a DLQ row's Retry and Retry all bring receipts back and they are delivered", async (t) => {
  const { ofd, daemon } = await setup(t, { reject_pos_ids: ["POS-001"] });
  for (let i = 0; i < 3; i++) await daemon.receipt(`dlq-${i}`);
  const page = await open(daemon, { token: TOKEN });
  await waitFor("three in the DLQ", async () => (await text(page, "dlq-count")) === "3");
  await waitFor("three rows", async () => (await page.locator('[data-testid="dlq-retry"]').count()) === 3);
  await page.screenshot({ path: join(OUT, "browser-dlq.png"), fullPage: true });
  await ofd.control({ reject_pos_ids: [] });
  await page.locator('[data-testid="dlq-retry"]').first().click();
  await waitFor("one retried", async () => (await text(page, "dlq-count")) === "2");
  await waitFor("one delivered", async () => (await text(page, "synced-count")) === "1");
  await page.click('[data-testid="dlq-retry-all"]');
  await waitFor("DLQ empty", async () => (await text(page, "dlq-count")) === "0");
  await waitFor("all delivered", async () => (await text(page, "synced-count")) === "3");
  await page.screenshot({ path: join(OUT, "browser-dlq-retried.png"), fullPage: true });
});

test("a wrong admin token shows an error and changes nothing", async (t) => {
  const { daemon } = await setup(t, { reject_pos_ids: ["POS-001"] });
  await daemon.receipt("wrong-token");
  const page = await open(daemon, { token: "not-the-token" });
  await waitFor("in the DLQ", async () => (await text(page, "dlq-count")) === "1");
  await page.click('[data-testid="dlq-retry-all"]');
  await waitFor("error text", async () => /Неверный токен|Wrong admin token/.test(await page.locator("#action-result").innerText()));
  assert.equal(await text(page, "dlq-count"), "1");
  await page.screenshot({ path: join(OUT, "browser-wrong-token.png"), fullPage: true });
});

test("the page runs under its Content Security Policy: nothing it does is refused, inline script is", async (t) => {
  const { daemon } = await setup(t);
  await daemon.receipt("csp-1");
  const context = await browser().newContext({ viewport: { width: 1200, height: 900 }, locale: "ru-RU" });
  await context.addInitScript((tok) => {
    sessionStorage.setItem("kkt-admin-token", tok);
    window.__violations = [];
    document.addEventListener("securitypolicyviolation", (e) => window.__violations.push(`${e.violatedDirective} ${e.blockedURI}`));
  }, TOKEN);
  const page = await context.newPage();
  const answer = await page.goto(`${daemon.base}/ui/`);
  assert.match(answer.headers()["content-security-policy"], /default-src 'none'; script-src 'self'/);
  await waitFor("the counts on the page", async () => (await text(page, "synced-count")) !== "");
  // An inline script (what an injected value would become) does not run.
  const ran = await page.evaluate(() => {
    const s = document.createElement("script");
    s.textContent = "window.__inline = true";
    document.body.append(s);
    return window.__inline === true;
  });
  assert.equal(ran, false, "an inline script ran despite the CSP");
  const violations = await page.evaluate(() => window.__violations);
  assert.deepEqual(violations.filter((v) => !v.startsWith("script-src inline") && !v.startsWith("script-src-elem inline")), [],
    "the page's own work was refused by its CSP");
  assert.ok(violations.length >= 1, "the inline script was refused and reported");
  await context.close();
});
