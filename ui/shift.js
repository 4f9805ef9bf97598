// The «Смена» panel (docs/contract.md §11): the manager opens and closes the shift with the
// cashier, prints the X-report, puts cash in and takes it out, and sees the register's own
// state and alarms. Each action is confirmed first and sent under an Idempotency-Key of its
// own; if the register is not ready (202), the same key is sent again until its result is in —
// the adapter does it on the register exactly once however often the window asks.
import { t, onLanguage } from "./i18n.js";
import { $, setText, rub, when } from "./format.js";
import { token, needToken, getJson } from "./api.js";
import { lastStatus } from "./status.js";

const CASHIER = "kkt-cashier";
let device = null;

function cashier() {
  const name = $("shift-cashier").value.trim();
  const inn = $("shift-inn").value.trim();
  sessionStorage.setItem(CASHIER, JSON.stringify({ name, inn }));
  if (!name) return undefined;
  return inn ? { name, inn } : { name };
}

function say(text, kind) {
  const el = $("shift-result");
  el.textContent = text;
  el.className = `result ${kind}`;
}

/** Sends an operation; repeats the same key while the register is not ready (bounded). */
async function operate(path, body) {
  const key = crypto.randomUUID();
  const deadline = Date.now() + 120 * 1000;
  for (;;) {
    const r = await fetch(path, {
      method: "POST",
      headers: { Authorization: `Bearer ${token()}`, "Content-Type": "application/json", "Idempotency-Key": key },
      body: JSON.stringify(body),
    });
    const answer = await r.json().catch(() => ({}));
    // 202: stored, not done yet; 409 in progress: its first request is still with the register.
    const pending = r.status === 202 || (r.status === 409 && answer.code === "idempotency_request_in_progress");
    if (!pending || Date.now() > deadline) return { status: r.status, answer };
    say(t("shift-waiting", { reason: answer.reason || answer.message || "" }), "busy");
    await new Promise((done) => setTimeout(done, 1000));
  }
}

function totals(r) {
  const kinds = (r.operations || []).map((o) => t("shift-op-line", { type: t(o.type), count: o.count, total: rub(o.total) }));
  return [
    kinds.length ? kinds.join("; ") : t("shift-no-receipts"),
    t("shift-cash-line", { in: rub(r.cash_in.sum), out: rub(r.cash_out.sum), drawer: r.cash_in_drawer != null ? rub(r.cash_in_drawer) : "–" }),
  ].join(". ");
}

const words = {
  shift_open: (r) => t("shift-opened", { n: r.shift_number, who: r.cashier ? r.cashier.name : "—" }),
  report_x: (r) => t("shift-x-done", { n: r.shift_number, totals: totals(r) }),
  cash: (r) => t(r.direction === "in" ? "shift-cash-in-done" : "shift-cash-out-done", { sum: rub(r.amount), drawer: rub(r.cash_in_drawer) }),
  shift_close: (r) => t("shift-z", { n: r.shift_number, fd: r.fiscal_doc_number, totals: totals(r) }),
};

async function act(action, path, body, confirmText) {
  if (!window.confirm(confirmText)) return;
  if (needToken()) return;
  const buttons = document.querySelectorAll("#shift button");
  buttons.forEach((b) => { b.disabled = true; });
  say(t("busy"), "busy");
  try {
    const { status, answer } = await operate(path, body);
    if (status === 200) say(words[action](answer), "ok");
    else if (status === 202) say(t("shift-still-waiting"), "bad");
    else say(`${t("error")} ${status}: ${answer.message || ""}`, "bad");
  } catch (e) {
    say(`${t("error")}: ${e.message}`, "bad");
  } finally {
    buttons.forEach((b) => { b.disabled = false; });
    refreshDevice();
  }
}

function amount() {
  const value = Number($("shift-amount").value.replace(",", "."));
  return Number.isFinite(value) && value > 0 ? Math.round(value * 100) / 100 : null;
}

function cash(direction) {
  const sum = amount();
  if (sum == null) {
    say(t("shift-amount-needed"), "bad");
    $("shift-amount").focus();
    return;
  }
  act("cash", "/v1/kkt/cash", { direction, amount: sum, cashier: cashier() },
    t(direction === "in" ? "shift-confirm-in" : "shift-confirm-out", { sum: rub(sum) }));
}

/** The register now (`GET /v1/kkt/device`): shift, FN, paper, the drawer. */
export async function refreshDevice() {
  if (!token()) return;
  device = await getJson("/v1/kkt/device").catch(() => null);
  renderDevice();
}

function renderDevice() {
  const d = device;
  const state = $("shift-state");
  if (!d) {
    setText(state, t("shift-unknown"));
    return;
  }
  setText(state, t(`shift-state-${d.shift}`, { n: d.shift_number }));
  state.className = `value small ${d.shift === "expired" ? "bad" : d.shift === "open" ? "ok" : ""}`;
  setText($("shift-drawer"), d.cash_in_drawer != null ? rub(d.cash_in_drawer) : "–");
  const fn = [d.model, `${t("shift-fn")} ${d.fn_number}`];
  if (d.fn_valid_until) fn.push(t("shift-fn-valid", { date: when(d.fn_valid_until) }));
  if (d.paper_present === false) fn.push(t("shift-no-paper"));
  if (d.fn_unsent) fn.push(t("shift-unsent", { n: d.fn_unsent }));
  setText($("shift-device"), fn.join(" · "));
}

/** The register's alarms from the status snapshot (the adapter polls the register). */
export function renderAlarms() {
  const s = lastStatus();
  const alarms = (s && s.device && s.device.watch && s.device.watch.alarms) || [];
  const list = $("shift-alarms");
  const key = JSON.stringify(alarms);
  if (list.dataset.key === key) return;
  list.dataset.key = key;
  list.replaceChildren(...alarms.map((a) => {
    const li = document.createElement("li");
    li.className = a.level === "critical" ? "bad" : "warn";
    li.dataset.testid = "shift-alarm";
    li.textContent = a.text;
    return li;
  }));
}

export function startShift() {
  const saved = JSON.parse(sessionStorage.getItem(CASHIER) || "{}");
  $("shift-cashier").value = saved.name || "";
  $("shift-inn").value = saved.inn || "";
  $("shift-open").addEventListener("click", () =>
    act("shift_open", "/v1/kkt/shift/open", { cashier: cashier() }, t("shift-confirm-open", { who: $("shift-cashier").value.trim() || "—" })));
  $("shift-x").addEventListener("click", () => act("report_x", "/v1/kkt/report/x", { cashier: cashier() }, t("shift-confirm-x")));
  $("shift-cash-in").addEventListener("click", () => cash("in"));
  $("shift-cash-out").addEventListener("click", () => cash("out"));
  $("shift-close").addEventListener("click", () =>
    act("shift_close", "/v1/kkt/shift/close", { cashier: cashier() }, t("shift-confirm-close")));
  $("shift-refresh").addEventListener("click", refreshDevice);
  onLanguage(renderDevice);
  refreshDevice();
  setInterval(refreshDevice, 15000);
}
