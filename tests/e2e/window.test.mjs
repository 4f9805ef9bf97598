// The manager's window's hooks of docs/contract.md §9, in Debian's chromium (playwright-core)
// against the real kkt-adapterd and mock-ofd: events in the page's language with fiscal numbers,
// search and the receipt panel (slip + QR image, decoded by an independent QR reader, jsQR),
// the 24-hour chart with the outage shaded, the DLQ's readable reasons and CSV export, the page's
// own link labelled, keyboard-only use and a complete English page. Screenshots go to tests/out/.
import { test } from "node:test";
import assert from "node:assert/strict";
import { join } from "node:path";
import { readFileSync } from "node:fs";
import jsQR from "jsqr";
import { OUT, waitFor, startMockOfd, startDaemon, TOKEN, useChromium } from "./harness.mjs";

const browser = useChromium();

const hook = (page, id) => page.locator(`[data-testid="${id}"]`).first();
const text = (page, id) => hook(page, id).innerText();
const sale = (pos, name, rubles) => ({
  pos_id: pos, type: "sale", items: [{ name, price: rubles, qty: 1 }], payments: [{ type: "cash", amount: rubles }],
});

async function open(daemon, { token = TOKEN, lang = "ru" } = {}) {
  const context = await browser().newContext({ viewport: { width: 1200, height: 1000 }, locale: "ru-RU", acceptDownloads: true });
  await context.addInitScript(([t, l]) => {
    if (t) sessionStorage.setItem("kkt-admin-token", t);
    localStorage.setItem("kkt-lang", l);
  }, [token || "", lang]);
  const page = await context.newPage();
  await page.goto(`${daemon.base}/ui/`);
  return page;
}

async function setup(t, faults) {
  const ofd = await startMockOfd();
  if (faults) await ofd.control(faults);
  const daemon = await startDaemon(ofd.url, TOKEN);
  t.after(async () => {
    await daemon.stop().catch(() => {});
    await ofd.stop();
  });
  return { ofd, daemon };
}

test("events read as sentences with fiscal numbers and sums, in Russian and in English", async (t) => {
  const { daemon } = await setup(t);
  const r = await daemon.receipt("ev-1", sale("POS-7", "Молоко", 89.9));
  const fd = r.fiscal_doc.fiscal_doc_number;
  const page = await open(daemon);
  await waitFor("the delivery event", async () => (await text(page, "events")).includes(`Чек ФД №${fd} на 89.90 ₽ доставлен в ОФД`));
  const events = await text(page, "events");
  assert.match(events, new RegExp(`Чек ФД №${fd} на 89.90 ₽ принят от кассы POS-7`));
  assert.doesNotMatch(events, /[0-9a-f]{8}-|receipt_|sync_/, "no UUIDs or raw codes");
  await page.click("#lang");
  await waitFor("English events", async () => (await text(page, "events")).includes(`Receipt FD #${fd} for 89.90 ₽ delivered to the OFD`));
  // The whole page in English: no Russian word left (the ruble sign is not a letter), but for the
  // button that switches back, which names its language in that language.
  assert.equal(await page.locator("#lang").innerText(), "Русский");
  const body = (await page.locator("body").innerText()).replace("Русский", "");
  assert.doesNotMatch(body, /[А-Яа-яЁё]/, `Russian left on the English page: ${body.match(/.{0,30}[А-Яа-яЁё]+.{0,30}/)?.[0]}`);
  await page.screenshot({ path: join(OUT, "window-events-en.png"), fullPage: true });
});

test("a receipt is found by fiscal number, key, id or filters; its panel shows the slip and a QR that decodes", async (t) => {
  const { daemon } = await setup(t);
  const a = await daemon.receipt("find-a", sale("POS-1", "Хлеб бородинский", 55));
  const b = await daemon.receipt("till2-0042", sale("POS-2", "Сыр", 420.5));
  const page = await open(daemon);
  const search = hook(page, "receipt-search");

  await search.fill(String(b.fiscal_doc.fiscal_doc_number));
  await search.press("Enter");
  await waitFor("the slip", async () => (await text(page, "receipt-detail")).includes("Сыр"));
  const slip = await text(page, "receipt-detail");
  for (const part of ["420.50", b.fiscal_doc.fiscal_sign, "POS-2"]) assert.ok(slip.includes(part), `${part} in:\n${slip}`);
  const qr = hook(page, "receipt-qr");
  await waitFor("the QR image loaded", async () => qr.evaluate((img) => img.complete && img.naturalWidth > 0));
  // Fetched with the token and shown as a data: image (an <img src> cannot carry a token).
  assert.match(await qr.getAttribute("src"), /^data:image\/svg\+xml;base64,/);
  assert.match(await qr.getAttribute("alt"), new RegExp(`№${b.fiscal_doc.fiscal_doc_number}`));
  // Decode what the browser drew with an independent reader.
  const pixels = await qr.evaluate((img) => {
    const c = document.createElement("canvas");
    c.width = 400; c.height = 400;
    const g = c.getContext("2d");
    g.fillStyle = "#fff"; g.fillRect(0, 0, 400, 400);
    g.drawImage(img, 0, 0, 400, 400);
    return Array.from(g.getImageData(0, 0, 400, 400).data);
  });
  const decoded = jsQR(Uint8ClampedArray.from(pixels), 400, 400);
  assert.equal(decoded?.data, b.fiscal_doc.qr_code_data, "the QR image carries the receipt's FNS QR data");
  await page.screenshot({ path: join(OUT, "window-receipt.png"), fullPage: true });

  // Escape closes the panel; by key and by the id's first 8 characters.
  await page.keyboard.press("Escape");
  assert.equal(await page.locator("#receipt-panel").isHidden(), true);
  await search.fill("till2-0042");
  await search.press("Enter");
  await waitFor("found by key", async () => (await page.locator("#search-results li").count()) === 1);
  await search.fill(a.receipt_id.slice(0, 8));
  await search.press("Enter");
  await waitFor("found by id prefix", async () => (await page.locator("#search-results").innerText()).includes(`№${a.fiscal_doc.fiscal_doc_number}`));
  await waitFor("its panel", async () => (await page.locator("#receipt-panel").getAttribute("data-receipt")) === a.receipt_id);
  // Filters: amount with a comma, and a till.
  await search.fill("");
  await page.fill("#f-amount", "420,50");
  await page.click("#lookup-form button[type=submit]");
  await waitFor("found by amount", async () => (await page.locator("#search-status").innerText()) === "Найдено чеков: 1")
    .catch(async (e) => { throw new Error(`${e.message}: ${await page.locator("#search-status").innerText()}`); });
  await page.fill("#f-amount", "");
  await page.fill("#f-pos", "POS-1");
  await page.click("#lookup-form button[type=submit]");
  await waitFor("found by till", async () => (await page.locator("#search-results").innerText()).includes("POS-1"));
  assert.equal(await page.locator("#search-results li").count(), 1);

  // A sale a kkmserver client made (§13): the list and the panel say which front it came through.
  const k = await fetch(`${daemon.base}/Execute`, {
    method: "POST", headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ Command: "RegisterCheck", IdCommand: "kkm-window-1", Cash: 70, TypeCheck: 0,
      CheckStrings: [{ Register: { Name: "Кефир", Quantity: 1, Price: 70, Amount: 70, Tax: 10, SignMethodCalculation: 4, SignCalculationObject: 1 } }] }),
  }).then((r) => r.json());
  assert.equal(k.Status, 0, JSON.stringify(k));
  await page.fill("#f-pos", "kkmserver");
  await page.click("#lookup-form button[type=submit]");
  await waitFor("the kkmserver sale", async () => (await page.locator("#search-results").innerText()).includes("kkmserver"));
  await page.locator("#search-results li button").first().click();
  await waitFor("its front in the panel", async () => (await page.locator("#receipt-facts").innerText()).includes("Принят через"));
  assert.match(await page.locator("#receipt-facts").innerText(), /Принят через\s+kkmserver/);
});

test("the 24-hour chart shows receipts taken, delivered and failed, and shades the OFD outage", async (t) => {
  const { ofd, daemon } = await setup(t, { down: true });
  for (let i = 0; i < 4; i++) await daemon.receipt(`chart-${i}`);
  await waitFor("the breaker open", async () => (await daemon.status()).breaker.state !== "closed");
  await ofd.control({ down: false, reject_pos_ids: ["POS-BAD"] });
  await daemon.receipt("chart-bad", sale("POS-BAD", "Брак", 10));
  await waitFor("delivered and one rejected", async () => {
    const s = await daemon.status();
    return s.synced === 4 && s.dlq_size === 1;
  });
  const page = await open(daemon);
  const chart = hook(page, "chart-24h");
  await waitFor("bars", async () => (await chart.locator("rect.delivered").count()) > 0);
  assert.equal(await chart.evaluate((el) => el.tagName.toLowerCase()), "svg");
  assert.ok((await chart.locator("rect.taken").count()) > 0);
  assert.ok((await chart.locator("rect.failed").count()) > 0);
  assert.equal(await chart.locator("rect.outage").count(), 1, "the outage is shaded");
  const activity = await fetch(`${daemon.base}/v1/kkt/activity?hours=24&interval_minutes=60`).then((r) => r.json());
  const sum = (k) => activity.intervals.reduce((acc, i) => acc + i[k], 0);
  assert.deepEqual([sum("taken"), sum("delivered"), sum("failed")], [5, 4, 1]);
  assert.equal(await page.locator("#chart-summary").innerText(),
    "За 24 часа принято 5, доставлено 4, не доставлено 1; перерывов связи с ОФД: 1.");
  await chart.scrollIntoViewIfNeeded();
  await page.screenshot({ path: join(OUT, "window-chart.png"), clip: await page.locator("section[aria-labelledby=chart-title]").boundingBox() });
});

test("DLQ rows read in words with the raw answer behind a disclosure; CSV downloads", async (t) => {
  const { daemon } = await setup(t, { reject_pos_ids: ["POS-001"] });
  const r = await daemon.receipt("dlq-words");
  const page = await open(daemon, { token: TOKEN });
  await waitFor("a DLQ row", async () => (await page.locator("#dlq-rows tr").count()) === 1);
  const row = page.locator("#dlq-rows tr").first();
  const rowText = await row.innerText();
  assert.match(rowText, new RegExp(`№${r.fiscal_doc.fiscal_doc_number}`));
  assert.match(rowText, /100\.00 ₽/);
  assert.match(rowText, /\d{2}\.\d{2}\.\d{4}, \d{2}:\d{2}:\d{2}/, "the sale time");
  assert.match(rowText, /приход/);
  assert.match(rowText, /ОФД отклонил чек: в документе ошибка/);
  const details = row.locator("details");
  assert.equal(await details.evaluate((d) => d.open), false, "the raw answer is folded away");
  assert.equal(await details.locator("pre").isVisible(), false);
  await details.locator("summary").click();
  assert.equal(await details.locator("pre").isVisible(), true);
  assert.ok((await details.locator("pre").innerText()).length > 0);
  await page.screenshot({ path: join(OUT, "window-dlq.png"), fullPage: true });

  const [download] = await Promise.all([page.waitForEvent("download"), hook(page, "dlq-export").click()]);
  const csv = readFileSync(await download.path(), "utf8");
  assert.equal(download.suggestedFilename(), "kkt-dlq.csv");
  assert.ok(csv.startsWith("\ufeffФД №;Время продажи;Касса;Тип;Сумма, ₽"), csv.slice(0, 80));
  assert.match(csv, new RegExp(`\\n${r.fiscal_doc.fiscal_doc_number};[^\\n]*;POS-001;sale;100,00;наличными 100,00;rejected_by_ofd;`));
  const [day] = await Promise.all([page.waitForEvent("download"), page.click("#day-export")]);
  const dayCsv = readFileSync(await day.path(), "utf8");
  assert.equal(dayCsv.trim().split("\n").length, 2, dayCsv);
});

test("the header names the page's own link to the adapter and says when it is lost", async (t) => {
  const { daemon } = await setup(t);
  const page = await open(daemon);
  await waitFor("connected", async () => (await text(page, "api-connection")) === "Связь окна с адаптером: на связи");
  await daemon.stop();
  await waitFor("lost", async () => (await text(page, "api-connection")) === "Связь окна с адаптером: нет связи с адаптером", 10000);
});

test("keyboard only: Sync now, the announced result, search and the panel; focus is visible", async (t) => {
  const { daemon } = await setup(t);
  await daemon.receipt("kbd-1");
  const page = await open(daemon, { token: TOKEN });
  await waitFor("loaded", async () => (await text(page, "synced-count")) !== "–");
  // Tab from the top until Sync now has the focus.
  let steps = 0;
  while (!(await page.evaluate(() => document.activeElement?.dataset?.testid === "sync-now")) && steps++ < 30) await page.keyboard.press("Tab");
  assert.ok(steps < 30, "Sync now is reachable with Tab");
  const outline = await page.evaluate(() => getComputedStyle(document.activeElement).outlineStyle);
  assert.notEqual(outline, "none", "the focused control shows a focus ring");
  await page.keyboard.press("Enter");
  const live = page.locator("#action-result");
  assert.equal(await live.getAttribute("aria-live"), "polite");
  await waitFor("the sync result announced", async () => /Готово: доставлено/.test(await live.innerText()));
  // Search with the keyboard; the panel takes the focus and Escape gives it back.
  await hook(page, "receipt-search").focus();
  await page.keyboard.type("2");
  await page.keyboard.press("Enter");
  await waitFor("the panel focused", async () => page.evaluate(() => document.activeElement?.id === "receipt-panel"));
  await page.keyboard.press("Escape");
  await waitFor("focus back", async () => page.evaluate(() => document.activeElement?.dataset?.testid === "receipt-search"));
});

test("text meets WCAG AA contrast (4.5:1, large text 3:1) in the states a manager sees", async (t) => {
  const { daemon } = await setup(t, { reject_pos_ids: ["POS-001"] });
  await daemon.receipt("contrast-1");
  const page = await open(daemon, { token: TOKEN });
  await waitFor("a DLQ row", async () => (await page.locator("#dlq-rows tr").count()) === 1);
  await hook(page, "receipt-search").fill("2");
  await hook(page, "receipt-search").press("Enter");
  await waitFor("the panel", async () => page.locator("#receipt-panel").isVisible());
  // WCAG 2.1 relative luminance and contrast ratio, against the nearest opaque background.
  const failures = await page.evaluate(() => {
    const rgb = (c) => (c.match(/[\d.]+/g) || []).map(Number);
    const lum = ([r, g, b]) => {
      const f = (v) => { v /= 255; return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; };
      return 0.2126 * f(r) + 0.7152 * f(g) + 0.0722 * f(b);
    };
    const background = (el) => {
      for (let e = el; e; e = e.parentElement) {
        const c = rgb(getComputedStyle(e).backgroundColor);
        if (c.length === 3 || (c.length === 4 && c[3] > 0.9)) return c.slice(0, 3);
      }
      return [255, 255, 255];
    };
    const out = [];
    for (const el of document.querySelectorAll("body *")) {
      const own = [...el.childNodes].some((n) => n.nodeType === 3 && n.textContent.trim());
      const box = el.getBoundingClientRect();
      const st = getComputedStyle(el);
      if (!own || box.width < 2 || box.height < 2 || st.visibility === "hidden" || el.closest("[hidden]")) continue;
      if (el.closest("button:disabled")) continue; // WCAG exempts inactive controls
      const fg = rgb(st.color).slice(0, 3), bg = background(el);
      const [a, b] = [lum(fg), lum(bg)].sort((x, y) => y - x);
      const ratio = (a + 0.05) / (b + 0.05);
      const size = parseFloat(st.fontSize), bold = Number(st.fontWeight) >= 700;
      const need = size >= 24 || (bold && size >= 18.66) ? 3 : 4.5;
      if (ratio < need) out.push(`${el.tagName}#${el.id}.${el.className} "${el.textContent.trim().slice(0, 30)}" ${ratio.toFixed(2)} < ${need}`);
    }
    return out;
  });
  assert.deepEqual(failures, []);
});
