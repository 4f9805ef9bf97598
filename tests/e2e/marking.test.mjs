// Marked goods in the window (docs/contract.md §12, issue 21): kkt-adapterd in demo mode with
// `[marking] mode = "permissive"` (the built-in simulator answers the test codes of README
// "Marked goods"). A till checks codes while scanning and sells one; the «Маркировка» view lists
// each check with its verdict and reason in words, and the receipt's slip marks the code [М+].
import { test } from "node:test";
import assert from "node:assert/strict";
import { join } from "node:path";
import { copyFileSync } from "node:fs";
import { ROOT, OUT, waitFor, startDaemon, TOKEN, useChromium } from "./harness.mjs";

const code = (serial) => `010463000000000121${serial}\u001d93TEST`;
const browser = useChromium();

test("each check of a marking code is listed with its verdict in words, and the sold code is marked on its slip", async (t) => {
  const daemon = await startDaemon(null, TOKEN, `[marking]\nmode = "permissive"\n`);
  t.after(() => daemon.stop());
  const check = (c) => fetch(`${daemon.base}/v1/kkt/marking/check`, {
    method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ code: c, operation: "sale" }),
  }).then((r) => r.json());
  const ok = await check(code("OK0000001"));
  assert.equal(ok.verdict, "allowed");
  const banned = await check(code("BLOCKED01"));
  assert.equal(banned.verdict, "refused");
  const sale = await daemon.receipt("marked-1", {
    pos_id: "POS-1", type: "sale", payments: [{ type: "card", amount: 89.9 }],
    items: [{ name: "Кефир 2.5%", price: 89.9, qty: 1, payment_object: "commodity_marked", marking_code: code("OK0000001"), marking_check_id: ok.check_id }],
  });
  assert.equal(sale.status, "printed", JSON.stringify(sale));

  const context = await browser().newContext({ viewport: { width: 1280, height: 1300 }, locale: "ru-RU" });
  await context.addInitScript((tok) => { sessionStorage.setItem("kkt-admin-token", tok); localStorage.setItem("kkt-lang", "ru"); }, TOKEN);
  const page = await context.newPage();
  await page.goto(`${daemon.base}/ui/`);
  const view = page.locator('[data-testid="marking"]');
  await waitFor("the marking view", async () => (await page.locator('[data-testid="marking-row"]').count()) === 2);
  assert.match(await page.locator('[data-testid="marking-counts"]').innerText(), /разрешено 1 · отказано 1 · не проверено 0/);
  const rows = await view.innerText();
  assert.match(rows, /отказ\s+продажа товара запрещена решением органа власти/);
  assert.match(rows, /разрешён\s+проверен в ГИС МТ: продажа разрешена\s+ГИС МТ \(ТС ПИоТ\)/);
  await view.scrollIntoViewIfNeeded();
  await page.screenshot({ path: join(OUT, "window-marking.png"), fullPage: true });
  copyFileSync(join(OUT, "window-marking.png"), join(ROOT, "docs", "screenshots", "window-marking.png"));

  await page.locator('[data-testid="receipt-search"]').fill(String(sale.fiscal_doc.fiscal_doc_number));
  await page.locator("#lookup-form button[type=submit]").click();
  await waitFor("the receipt's slip", async () => (await page.locator('[data-testid="receipt-detail"]').innerText()).includes("[М+]"));
  assert.match(await page.locator('[data-testid="receipt-detail"]').innerText(), /КМ: продажа разрешена \(разрешительный режим\)/);
  await context.close();
});
