// The «Смена» panel (docs/contract.md §11, issue 20) in Debian's chromium (playwright-core),
// against the real kkt-adapterd on the ATOL driver and a real mock-atol process: the manager
// opens the shift with the cashier, puts the float in, the tills sell (and refund one), the
// X-report and the evening's collection, then the Z-report — each confirmed, each answered in
// words — and the register's alarms (no paper) appear in the panel. Every operation is done on
// the register once (mock-atol's own log).
import { test } from "node:test";
import assert from "node:assert/strict";
import { join } from "node:path";
import { copyFileSync } from "node:fs";
import { ROOT, OUT, waitFor, startAtol, startAtolDaemon, TOKEN, useChromium } from "./harness.mjs";

const BREAD = { pos_id: "POS-A", type: "sale", items: [{ name: "Хлеб", price: 60, qty: 2 }], payments: [{ type: "cash", amount: 120 }] };
const CARD = { pos_id: "POS-A", type: "sale", items: [{ name: "Кофе", price: 250, qty: 1 }], payments: [{ type: "card", amount: 250 }] };
const REFUND = { ...BREAD, type: "sale_refund", items: [{ name: "Хлеб", price: 60, qty: 1 }], payments: [{ type: "cash", amount: 60 }] };
const browser = useChromium();

test("a day in the shift panel: open with the cashier, cash in, X, cash out, Z — each in words, each once", async (t) => {
  const atol = await startAtol(t);
  const daemon = await startAtolDaemon(t, atol.url, TOKEN, BREAD, "watch_ms = 300\n");
  const context = await browser().newContext({ viewport: { width: 1280, height: 1000 }, locale: "ru-RU" });
  await context.addInitScript((tok) => { sessionStorage.setItem("kkt-admin-token", tok); localStorage.setItem("kkt-lang", "ru"); }, TOKEN);
  const page = await context.newPage();
  const dialogs = [];
  page.on("dialog", (d) => { dialogs.push(d.message()); d.accept(); });
  await page.goto(`${daemon.base}/ui/`);
  const result = page.locator('[data-testid="shift-result"]');
  const state = page.locator('[data-testid="shift-state"]');
  await waitFor("the register's state", async () => (await state.innerText()).includes("Смена закрыта"));

  await page.locator('[data-testid="shift-cashier"]').fill("Иванова А.А.");
  await page.locator('[data-testid="shift-inn"]').fill("500100732259");
  await page.locator('[data-testid="shift-open"]').click();
  await waitFor("the shift opened", async () => (await result.innerText()).includes("Смена № 1 открыта. Кассир: Иванова А.А."));
  assert.match(dialogs.at(-1), /Открыть смену\? Кассир: Иванова А\.А\./, "confirmed first");
  await waitFor("the state says so", async () => (await state.innerText()).includes("Смена № 1 открыта"));

  await page.locator('[data-testid="shift-amount"]').fill("1000");
  await page.locator('[data-testid="shift-cash-in"]').click();
  await waitFor("the float in", async () => (await result.innerText()).includes("Внесено 1000.00 ₽. В ящике: 1000.00 ₽."));
  assert.match(dialogs.at(-1), /Внести в кассу 1000\.00 ₽\?/);

  for (const [key, body] of [["s1", BREAD], ["s2", CARD], ["r1", REFUND]]) {
    assert.equal((await daemon.receipt(key, body)).status, 200);
  }
  await page.locator('[data-testid="shift-x"]').click();
  await waitFor("the X-report in words", async () => (await result.innerText()).includes("X-отчёт смены № 1"));
  const x = await result.innerText();
  assert.match(x, /приход: 2 на 370\.00 ₽/, x);
  assert.match(x, /возврат прихода: 1 на 60\.00 ₽/, x);
  assert.match(x, /внесено 1000\.00 ₽, выплачено 0\.00 ₽, в ящике 1060\.00 ₽/, x);
  await waitFor("the drawer's sum", async () => (await page.locator('[data-testid="shift-drawer"]').innerText()).includes("1060.00 ₽"));

  await page.locator('[data-testid="shift-amount"]').fill("1060");
  await page.locator('[data-testid="shift-cash-out"]').click();
  await waitFor("the collection", async () => (await result.innerText()).includes("Выплачено 1060.00 ₽. В ящике: 0.00 ₽."));

  // The register runs out of paper: its own sensor, read by the adapter, in the panel.
  await atol.control({ paper_out: true });
  await waitFor("the paper alarm", async () => (await page.locator('[data-testid="shift-alarms"]').innerText()).includes("В ККТ нет бумаги"));
  await page.screenshot({ path: join(OUT, "window-shift.png"), fullPage: false });
  copyFileSync(join(OUT, "window-shift.png"), join(ROOT, "docs", "screenshots", "window-shift.png"));
  await atol.control({ paper_out: false });
  await waitFor("the alarm gone", async () => (await page.locator('[data-testid="shift-alarms"]').innerText()) === "");

  await page.locator('[data-testid="shift-close"]').click();
  await waitFor("the Z-report in words", async () => (await result.innerText()).includes("Смена № 1 закрыта, Z-отчёт"));
  const z = await result.innerText();
  assert.match(z, /приход: 2 на 370\.00 ₽; возврат прихода: 1 на 60\.00 ₽/, z);
  assert.match(z, /внесено 1000\.00 ₽, выплачено 1060\.00 ₽, в ящике 0\.00 ₽/, z);
  assert.match(dialogs.at(-1), /Закрыть смену и напечатать Z-отчёт\?/);
  await waitFor("the state closed", async () => (await state.innerText()).includes("Смена закрыта"));

  const stats = await atol.stats();
  const ran = (task) => stats.executed.filter((e) => e.task === task).length;
  assert.deepEqual([ran("cashIn"), ran("cashOut"), ran("reportX")], [1, 1, 1], "each operation once on the register");
  const docs = (kind) => stats.documents.filter((d) => d.kind === kind).length;
  assert.deepEqual([docs("openShift"), docs("closeShift"), docs("receipt")], [1, 1, 3]);
  await context.close();
});
