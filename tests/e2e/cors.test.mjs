// A web POS page calling the vendor fronts from the till's browser (docs/contract.md §13, README
// "Use your existing POS", `[compat] allowed_origins`): Chromium's own CORS enforcement decides,
// not ours. kkt-adapterd names one page origin; a page served from it sends a check the way
// KkmServer.js does (Muraveiko/kkmserver, src/kkmserver.js: an XMLHttpRequest POST to
// `Execute/sync` with only `Authorization: Basic` set, so the JSON goes as text/plain and the
// browser sends a preflight first) and an ATOL Web Requests job with fetch; a page of another
// origin is stopped by the browser and prints nothing.
import { test } from "node:test";
import assert from "node:assert/strict";
import http from "node:http";
import { waitFor, startDaemon, TOKEN, useChromium } from "./harness.mjs";

const browser = useChromium();

/** A web page's own server (another origin than the adapter's): one empty page. */
async function pageServer(t) {
  const server = http.createServer((_, res) => {
    res.writeHead(200, { "Content-Type": "text/html; charset=utf-8" });
    res.end("<!doctype html><title>Web POS</title><p>Web POS</p>");
  });
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  t.after(() => new Promise((resolve) => server.close(resolve)));
  return `http://127.0.0.1:${server.address().port}`;
}

// K3's recorded check, as a web POS would build it.
const check = (id) => ({
  Command: "RegisterCheck", NumDevice: 0, IdCommand: id, Timeout: 30, IsFiscalCheck: true, TypeCheck: 0,
  CashierName: "Иванова А.А.", Cash: 0, ElectronicPayment: 301.5,
  CheckStrings: [{ Register: { Name: "Сапоги женские DF-3099-1", Quantity: 3, Price: 100.5, Amount: 301.5, Tax: 22,
    SignMethodCalculation: 4, SignCalculationObject: 1 } }],
});

/** In the page: KkmServer.js' way of sending a command; `{ error: true }` when the browser refuses. */
function kkmServerJs({ base, command }) {
  return new Promise((resolve) => {
    const r = new XMLHttpRequest();
    r.open("POST", `${base}/Execute/sync`, true);
    r.responseType = "json";
    r.setRequestHeader("Authorization", `Basic ${btoa("Admin:")}`);
    r.onload = () => resolve({ status: r.status, body: r.response });
    r.onerror = () => resolve({ error: true });
    r.send(JSON.stringify(command));
  });
}

test("a web POS page of the allowed origin prints through both fronts; a page of another origin is stopped by the browser", async (t) => {
  const allowed = await pageServer(t);
  const other = await pageServer(t);
  const daemon = await startDaemon(null, TOKEN, `[compat]\nallowed_origins = ["${allowed}"]\n`);
  t.after(() => daemon.stop());
  const context = await browser().newContext();
  t.after(() => context.close());
  const page = await context.newPage();

  await page.goto(`${allowed}/`);
  const kkm = await page.evaluate(kkmServerJs, { base: daemon.base, command: check("web-pos-1") });
  assert.equal(kkm.status, 200, JSON.stringify(kkm));
  assert.equal(kkm.body.Status, 0, JSON.stringify(kkm.body));
  assert.ok(kkm.body.CheckNumber > 0, JSON.stringify(kkm.body));
  // The same IdCommand again from the page: the stored answer, not a second check.
  const again = await page.evaluate(kkmServerJs, { base: daemon.base, command: check("web-pos-1") });
  assert.equal(again.body.CheckNumber, kkm.body.CheckNumber);

  const atol = await page.evaluate(async (base) => {
    const uuid = crypto.randomUUID();
    const job = { uuid, request: [{ type: "sell", operator: { name: "Иванов" }, taxationType: "osn",
      items: [{ type: "position", name: "Кефир", price: 48.45, quantity: 1, amount: 48.45, tax: { type: "vat10" } }],
      payments: [{ type: "electronically", sum: 48.45 }] }] };
    const posted = await fetch(`${base}/api/v2/requests`, { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(job) });
    const results = await fetch(`${base}/api/v2/requests/${uuid}`).then((r) => r.json());
    return { posted: posted.status, results };
  }, daemon.base);
  assert.equal(atol.posted, 201);
  assert.equal(atol.results.results[0].status, "ready", JSON.stringify(atol.results));

  await page.goto(`${other}/`);
  const refused = await page.evaluate(kkmServerJs, { base: daemon.base, command: check("web-pos-2") });
  assert.deepEqual(refused, { error: true });
  const fetchRefused = await page.evaluate((base) => fetch(`${base}/VersionJSON`).then(() => "read", () => "refused"), daemon.base);
  assert.equal(fetchRefused, "refused");
  // The page's browser hides why; the adapter's log tells the manager.
  await waitFor("the refusal in the log", async () => daemon.log().includes(`origin="${other}"`) && daemon.log().includes("allowed_origins"));

  // What reached the register: one check from the kkmserver page, one sale from the ATOL job.
  const receipts = await waitFor("the two receipts", async () => {
    const r = await fetch(`${daemon.base}/v1/kkt/receipts`, { headers: { Authorization: `Bearer ${TOKEN}` } }).then((r) => r.json());
    return r.receipts.length === 2 && r.receipts;
  });
  assert.deepEqual(receipts.map((r) => r.front).sort(), ["atol", "kkmserver"]);
});
