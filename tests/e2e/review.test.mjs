// Receipts the register cannot account for (docs/contract.md §10.5), in the manager's window:
// Debian's chromium (playwright-core) against the real kkt-adapterd with the ATOL driver and a
// real mock-atol process. The FN gives short documents, the sale's job hangs after the FN wrote
// it, another program prints a receipt of the same total, and the web server forgets its jobs:
// the adapter cannot tell which document is the sale's. The window names it in words, lists
// both documents, and the manager attaches the right one — the till then gets its final answer.
import { test } from "node:test";
import assert from "node:assert/strict";
import { join } from "node:path";
import { copyFileSync } from "node:fs";
import { ROOT, OUT, waitFor, startAtol, startAtolDaemon, TOKEN, useChromium } from "./harness.mjs";

const COFFEE = { pos_id: "POS-A", type: "sale", items: [{ name: "Кофе", price: 150, qty: 1 }], payments: [{ type: "cash", amount: 150 }] };
const browser = useChromium();

test("a receipt the register cannot account for is named in words, and the manager attaches its document", async (t) => {
  const atol = await startAtol(t);
  const daemon = await startAtolDaemon(t, atol.url, TOKEN, COFFEE);
  await atol.control({ hang_after_write: true, short_documents: true });
  const first = await daemon.receipt("review-1");
  assert.equal(first.status, 202, JSON.stringify(first.body));
  const id = first.body.receipt_id;
  await atol.foreign({ type: "sell", total: 150 });
  await atol.control({ forget_jobs: true, hang_after_write: false });
  await waitFor("the receipt in review", async () => (await daemon.status()).needs_review === 1);
  const own = (await atol.stats()).documents.find((d) => d.uuid === id && d.kind === "receipt").number;

  const context = await browser().newContext({ viewport: { width: 1200, height: 1100 }, locale: "ru-RU" });
  await context.addInitScript((tok) => { sessionStorage.setItem("kkt-admin-token", tok); localStorage.setItem("kkt-lang", "ru"); }, TOKEN);
  const page = await context.newPage();
  await page.goto(`${daemon.base}/ui/`);
  const banner = page.locator('[data-testid="review-banner"]');
  await waitFor("the red banner", async () => (await banner.isVisible()) && (await banner.innerText()).includes("требующих решения: 1"));
  const item = page.locator('[data-testid="review-item"]');
  await waitFor("the receipt listed", async () => (await item.count()) === 1);
  const words = await item.innerText();
  assert.match(words, /POS-A · приход · 150\.00 ₽/);
  assert.match(words, /не может сказать точно/, "why, in words");
  const attach = item.locator('[data-testid="review-attach"]');
  assert.equal(await attach.count(), 2, "both documents are shown: the sale's and the other program's");
  assert.match(words, /короткий документ/);
  await page.screenshot({ path: join(OUT, "window-review.png"), fullPage: true });
  copyFileSync(join(OUT, "window-review.png"), join(ROOT, "docs", "screenshots", "window-review.png"));

  await item.locator('[data-testid="review-comment"]').fill("сверено с кассовой лентой");
  page.once("dialog", (d) => {
    assert.match(d.message(), new RegExp(`документ ФН №${own}`));
    d.accept();
  });
  await item.locator(`[data-testid="review-attach"]:has-text("ФД №${own}")`).click();
  await waitFor("the decision's result in words", async () => (await page.locator("#action-result").innerText()).includes(`Чек записан за документом ФН №${own}.`));
  await waitFor("the panel gone", async () => !(await page.locator('[data-testid="review"]').isVisible()));
  await waitFor("the decision in the events", async () =>
    (await page.locator('[data-testid="events"]').innerText()).includes(`записан за документом ФН №${own} («сверено с кассовой лентой»)`));
  const final = await daemon.receipt("review-1");
  assert.equal(final.status, 200);
  assert.equal(final.body.fiscal_doc.fiscal_doc_number, own, "the till gets the attached document");
  await context.close();
});
