// KKT Adapter window: polls the local API every second and renders the one status snapshot.
// Works the same in the desktop window (the shell supplies the admin token) and in a browser
// at /ui/ (the manager enters the token once per session).
"use strict";

const POLL_MS = 1000;
const T = {
  ru: {
    version: "Версия",
    demo: "ДЕМО", connecting: "Подключение…", connected: "на связи", disconnected: "нет связи с адаптером",
    pending: "Ожидают отправки", syncing: "отправляются", synced: "Доставлены в ОФД", "last-sync": "последняя доставка",
    dlq: "Не доставлены (DLQ)", total: "всего чеков", ofd: "Связь с ОФД", breaker: "автомат",
    oldest: "Самый старый неотправленный", seconds: "с", "fn-limit": "ФН блокируется через 30 дней",
    "sync-now": "Синхронизировать сейчас",
    "token-label": "Токен администратора (для синхронизации и повтора DLQ):", save: "Сохранить",
    "token-hint": "Хранится только в этой вкладке. Файл admin_token в каталоге настроек.",
    "dlq-title": "Очередь недоставленных (DLQ)", "retry-all": "Повторить все", retry: "Повторить",
    "col-receipt": "Чек", "col-pos": "Касса", "col-total": "Сумма", "col-type": "Тип", "col-paid": "Оплата · НДС", "col-reason": "Причина", "col-attempts": "Попыток",
    "col-error": "Последняя ошибка", "dlq-empty": "Пусто — все чеки доставлены или ждут отправки.",
    lookup: "Найти чек", find: "Найти", events: "Последние события", none: "нет",
    online: "в сети", degraded: "с перебоями", offline: "нет связи",
    closed: "замкнут", open: "разомкнут", half_open: "пробный режим", "probe-in": "проба через",
    busy: "Выполняется…", "sync-done": "Готово: доставлено {synced}, ошибок {failed}, пропущено {skipped}", "device-ready": "ККТ готова", kkt: "ККТ",
    "sync-running": "Синхронизация №{cycle} идёт: доставлено {synced}, ошибок {failed}…",
    "sync-queued": "Синхронизация №{cycle} начнётся, как только закончится текущая отправка…",
    "retry-done": "Возвращено в очередь: {n}", "need-token": "Нужен токен администратора — введите его ниже.",
    "bad-token": "Неверный токен администратора.", "error": "Ошибка", "not-found": "Чек не найден",
    "fn-warning": "Внимание: чек ждёт отправки в ОФД уже {age}. ФН заблокируется через 30 дней без подтверждения ОФД.",
    "fn-critical": "КРИТИЧНО: чек не подтверждён ОФД уже {age}. ФН заблокируется на 30-й день — проверьте связь с ОФД!",
    "fn-blocked": "ФН ЗАБЛОКИРОВАН: чек ждёт подтверждения ОФД {age} (30 дней). Касса не принимает чеки, пока связь с ОФД не восстановлена.",
    misconfigured: "ОФД отвечает HTTP {code}: проверьте адрес ОФД и токен в настройках.",
    storage: "Чеки не сохраняются — ошибка записи на диск ({error}). Касса получает отказ: освободите место на диске.",
    ago: "назад", just: "только что", d: "д", h: "ч", m: "мин", s: "с",
    status: "Статус", attempts: "попыток", created: "создан", paid: "Оплата", vat: "НДС", change: "сдача",
    sale: "приход", sale_refund: "возврат прихода", buy: "расход", buy_refund: "возврат расхода",
    sale_correction: "коррекция прихода", sale_refund_correction: "коррекция возврата прихода",
    buy_correction: "коррекция расхода", buy_refund_correction: "коррекция возврата расхода", refund: "возврат прихода", correction: "коррекция прихода",
    cash: "наличными", card: "безналичными", prepaid: "аванс", credit: "в кредит", other: "иное",
  },
  en: {
    version: "Version", demo: "DEMO", connecting: "Connecting…", connected: "connected", disconnected: "adapter unreachable",
    pending: "Waiting to send", syncing: "sending", synced: "Delivered to the OFD", "last-sync": "last delivery",
    dlq: "Not delivered (DLQ)", total: "receipts in all", ofd: "OFD connection", breaker: "breaker",
    oldest: "Oldest unsent receipt", seconds: "s", "fn-limit": "the FN blocks after 30 days",
    "sync-now": "Sync now",
    "token-label": "Admin token (for sync and DLQ retries):", save: "Save",
    "token-hint": "Kept in this tab only. It is the admin_token file in the config directory.",
    "dlq-title": "Dead-letter queue (DLQ)", "retry-all": "Retry all", retry: "Retry",
    "col-receipt": "Receipt", "col-pos": "POS", "col-total": "Total", "col-type": "Type", "col-paid": "Paid · VAT", "col-reason": "Reason", "col-attempts": "Attempts",
    "col-error": "Last error", "dlq-empty": "Empty — every receipt is delivered or waiting to be sent.",
    lookup: "Find a receipt", find: "Find", events: "Recent events", none: "none",
    online: "online", degraded: "degraded", offline: "offline",
    closed: "closed", open: "open", half_open: "half-open", "probe-in": "probe in",
    busy: "Working…", "sync-done": "Done: delivered {synced}, failed {failed}, skipped {skipped}", "device-ready": "register ready", kkt: "Register",
    "sync-running": "Sync #{cycle} running: delivered {synced}, failed {failed}…",
    "sync-queued": "Sync #{cycle} starts as soon as the current send is done…",
    "retry-done": "Returned to the queue: {n}", "need-token": "The admin token is needed — enter it below.",
    "bad-token": "Wrong admin token.", "error": "Error", "not-found": "Receipt not found",
    "fn-warning": "Warning: a receipt has waited {age} for the OFD. The FN blocks after 30 days without OFD confirmation.",
    "fn-critical": "CRITICAL: a receipt has waited {age} for OFD confirmation. The FN blocks on day 30 — check the OFD connection!",
    "fn-blocked": "FN BLOCKED: a receipt has waited {age} (30 days) for OFD confirmation. No receipts are taken until the OFD connection is back.",
    misconfigured: "The OFD answers HTTP {code}: check the OFD URL and token in the settings.",
    storage: "Receipts are not being stored — disk write error ({error}). The tills are refused: free some disk space.",
    ago: "ago", just: "just now", d: "d", h: "h", m: "min", s: "s",
    status: "Status", attempts: "attempts", created: "created", paid: "Paid", vat: "VAT", change: "change",
    sale: "sale", sale_refund: "sale refund", buy: "purchase", buy_refund: "purchase refund",
    sale_correction: "sale correction", sale_refund_correction: "sale refund correction",
    buy_correction: "purchase correction", buy_refund_correction: "purchase refund correction", refund: "sale refund", correction: "sale correction",
    cash: "cash", card: "card", prepaid: "prepaid", credit: "credit", other: "other",
  },
};

let lang = localStorage.getItem("kkt-lang") || "ru";
let last = null;
const $ = (id) => document.getElementById(id);
const t = (key, vars = {}) => (T[lang][key] || key).replace(/\{(\w+)\}/g, (_, k) => vars[k] ?? "");

// The desktop shell hands the admin token over in the URL fragment (never sent to the server);
// keep it for this session and take it out of the address at once.
(function takeTokenFromFragment() {
  const m = location.hash.match(/(?:^#|&)token=([^&]+)/);
  if (m) {
    sessionStorage.setItem("kkt-admin-token", decodeURIComponent(m[1]));
    history.replaceState(null, "", location.pathname + location.search);
  }
})();

function token() {
  return window.__KKT_ADMIN_TOKEN__ || sessionStorage.getItem("kkt-admin-token") || "";
}

function applyLanguage() {
  document.documentElement.lang = lang;
  document.querySelectorAll("[data-i18n]").forEach((el) => { el.textContent = t(el.dataset.i18n); });
  $("lang").textContent = lang === "ru" ? "English" : "Русский";
  if (last) render(last);
}

function human(seconds) {
  if (seconds == null) return "–";
  const s = Math.max(0, Math.floor(seconds));
  if (s < 60) return `${s} ${t("s")}`;
  const d = Math.floor(s / 86400), h = Math.floor((s % 86400) / 3600), m = Math.floor((s % 3600) / 60);
  if (d) return `${d} ${t("d")} ${h} ${t("h")}`;
  if (h) return `${h} ${t("h")} ${m} ${t("m")}`;
  return `${m} ${t("m")}`;
}

function since(iso) {
  if (!iso) return t("none");
  const secs = (Date.now() - Date.parse(iso)) / 1000;
  return secs < 5 ? t("just") : `${human(secs)} ${t("ago")}`;
}

function setText(el, text) {
  if (el.textContent !== String(text)) el.textContent = String(text);
}

function render(s) {
  last = s;
  setText(document.querySelector('[data-testid="pending-count"]'), s.pending);
  setText(document.querySelector('[data-testid="synced-count"]'), s.synced);
  setText(document.querySelector('[data-testid="dlq-count"]'), s.dlq_size);
  setText(document.querySelector('[data-testid="breaker-state"]'), s.breaker.state);
  setText(document.querySelector('[data-testid="network-status"]'), s.network_status);
  setText(document.querySelector('[data-testid="oldest-pending-age"]'), s.oldest_pending_age_seconds ?? "");
  setText($("syncing-count"), s.syncing);
  setText($("total-count"), s.total_receipts);
  setText($("last-sync"), since(s.last_sync_at));
  setText($("breaker-label"), `(${t(s.breaker.state)})`);
  setText($("network-label"), `(${t(s.network_status)})`);
  $("oldest-seconds").hidden = s.oldest_pending_age_seconds == null;
  setText($("next-probe"), s.breaker.next_probe_in_seconds != null ? `· ${t("probe-in")} ${Math.ceil(s.breaker.next_probe_in_seconds)} ${t("s")}` : "");
  setText($("oldest-human"), s.oldest_pending_age_seconds == null ? t("none") : human(s.oldest_pending_age_seconds));
  const net = document.querySelector('[data-testid="network-status"]');
  net.className = `net-${s.network_status}`;
  $("dlq-value").className = s.dlq_size > 0 ? "value bad" : "value";
  $("mode-badge").hidden = s.mode !== "demo";
  const fn = s.fn_age;
  const banner = $("fn-banner");
  banner.hidden = fn.level === "ok";
  banner.className = `banner ${fn.level === "warning" ? "warning" : "critical"}`;
  if (fn.level !== "ok") setText(banner, t(`fn-${fn.level}`, { age: human(fn.oldest_unsynced_age_seconds) }));
  $("misconfig-banner").hidden = !s.ofd_misconfigured;
  if (s.ofd_misconfigured) setText($("misconfig-banner"), t("misconfigured", { code: s.ofd_misconfigured }));
  const device = document.querySelector('[data-testid="device-state"]');
  if (device && s.device) {
    setText(device, s.device.ready ? t("device-ready") : s.device.problem);
    device.className = s.device.ready ? "device ok" : "device bad";
  }
  $("storage-banner").hidden = !s.storage_error;
  if (s.storage_error) setText($("storage-banner"), t("storage", { error: s.storage_error }));
}

// "наличными 100.00 ₽, безналичными 22.00 ₽ · НДС 22% 18.03 ₽"
function moneyLine(payments, vat) {
  const paid = (payments || []).map((p) => `${t(p.type)} ${Number(p.amount).toFixed(2)} ₽`).join(", ");
  const taxes = (vat || []).filter((v) => v.vat !== "none").map((v) => `${v.vat.replace("vat", "").replace("_", "/")}% ${Number(v.amount).toFixed(2)} ₽`);
  return taxes.length ? `${paid} · ${t("vat")} ${taxes.join(", ")}` : paid;
}

function renderDlq(list) {
  const rows = $("dlq-rows");
  rows.replaceChildren();
  for (const e of list.entries) {
    const tr = document.createElement("tr");
    const cells = [e.receipt_id.slice(0, 8) + "… №" + e.fiscal_doc_number, e.pos_id, t(e.type), `${e.total.toFixed(2)} ₽`,
      moneyLine(e.payments, e.vat), e.reason, e.retry_count, e.last_error || ""];
    for (const c of cells) {
      const td = document.createElement("td");
      td.textContent = c;
      tr.appendChild(td);
    }
    tr.firstChild.title = e.receipt_id;
    const td = document.createElement("td");
    const b = document.createElement("button");
    b.type = "button";
    b.dataset.testid = "dlq-retry";
    b.textContent = t("retry");
    b.addEventListener("click", () => admin(`/v1/kkt/dlq/${encodeURIComponent(e.receipt_id)}/retry`, (r) => t("retry-done", { n: r.retried })));
    td.appendChild(b);
    tr.appendChild(td);
    rows.appendChild(tr);
  }
  $("dlq-empty").hidden = list.entries.length > 0;
  $("dlq-retry-all").disabled = list.entries.length === 0;
}

function renderEvents(page) {
  const ol = $("events");
  ol.replaceChildren();
  for (const e of page.events.slice().reverse()) {
    const li = document.createElement("li");
    const time = new Date(e.created_at).toLocaleTimeString(lang === "ru" ? "ru-RU" : "en-GB");
    li.textContent = `${time} ${e.event_type}${e.receipt_id ? " " + e.receipt_id.slice(0, 8) : ""}`;
    ol.appendChild(li);
  }
}

// The token (when known) goes with every call: in LAN mode the DLQ, events and receipt lookup
// need it; on loopback it is simply ignored by the read-only calls.
function authHeaders() {
  return token() ? { Authorization: `Bearer ${token()}` } : {};
}

async function getJson(path) {
  const r = await fetch(path, { cache: "no-store", headers: authHeaders() });
  if (r.status === 401) $("token-box").hidden = false;
  if (!r.ok) throw new Error(`${path}: HTTP ${r.status}`);
  return r.json();
}

async function poll() {
  try {
    render(await getJson("/v1/kkt/buffer/status"));
    const [dlq, events] = await Promise.allSettled([getJson("/v1/kkt/dlq"), getJson("/v1/kkt/buffer/events?latest=15")]);
    if (dlq.status === "fulfilled") renderDlq(dlq.value);
    if (events.status === "fulfilled") renderEvents(events.value);
    setText($("conn"), t("connected"));
    $("conn").className = "conn ok";
  } catch (e) {
    setText($("conn"), t("disconnected"));
    $("conn").className = "conn bad";
  } finally {
    setTimeout(poll, POLL_MS);
  }
}

function showResult(text, kind) {
  const el = $("action-result");
  el.textContent = text;
  el.className = `result ${kind}`;
}

async function admin(path, describe) {
  if (!token()) {
    $("token-box").hidden = false;
    showResult(t("need-token"), "bad");
    $("token").focus();
    return;
  }
  document.querySelectorAll("button").forEach((b) => { b.disabled = true; });
  showResult(t("busy"), "busy");
  try {
    const r = await fetch(path, { method: "POST", headers: { Authorization: `Bearer ${token()}` } });
    const body = await r.json().catch(() => ({}));
    if (r.status === 401) {
      $("token-box").hidden = false;
      showResult(t("bad-token"), "bad");
    } else if (!r.ok) {
      showResult(`${t("error")} ${r.status}: ${body.message || ""}`, "bad");
    } else if (r.status === 202 && body.cycle) {
      await followSync(body.cycle);
    } else {
      showResult(describe(body), "ok");
    }
  } catch (e) {
    showResult(`${t("error")}: ${e.message}`, "bad");
  } finally {
    document.querySelectorAll("button").forEach((b) => { b.disabled = false; });
    if (last) renderDlq(await getJson("/v1/kkt/dlq").catch(() => ({ entries: [] })));
  }
}

// A manual sync that outlasts the call's one second: show its progress until its result is in.
async function followSync(cycle) {
  const deadline = Date.now() + 15 * 60 * 1000;
  while (Date.now() < deadline) {
    const w = await getJson("/v1/kkt/worker/status").catch(() => null);
    if (w && w.last_manual_sync && w.last_manual_sync.cycle >= cycle) {
      showResult(t("sync-done", w.last_manual_sync), "ok");
      return;
    }
    if (w && !w.running) break;
    const c = w && w.current_cycle && w.current_cycle.cycle === cycle ? w.current_cycle : null;
    showResult(c ? t("sync-running", c) : t("sync-queued", { cycle }), "busy");
    await new Promise((done) => setTimeout(done, 500));
  }
  showResult(`${t("error")}: ${t("disconnected")}`, "bad");
}

async function lookup(ev) {
  ev.preventDefault();
  const id = $("lookup-id").value.trim();
  const out = $("lookup-result");
  out.replaceChildren();
  if (!id) return;
  const r = await fetch(`/v1/kkt/receipt/${encodeURIComponent(id)}`, { headers: authHeaders() });
  if (r.status === 404) { out.textContent = t("not-found"); return; }
  if (r.status === 401) { $("token-box").hidden = false; out.textContent = t("need-token"); return; }
  const v = await r.json().catch(() => ({}));
  if (!r.ok) { out.textContent = `${t("error")} ${r.status}: ${v.message || ""}`; return; }
  const lines = [
    `${t("status")}: ${v.status} · ${v.retry_count} ${t("attempts")}`,
    `${t("created")}: ${v.created_at}`,
    v.fiscal_doc ? `${t(v.type)} · ФД №${v.fiscal_doc.fiscal_doc_number} · ФП ${v.fiscal_doc.fiscal_sign} · ${v.total.toFixed(2)} ₽` : `${t(v.type)} · ${v.total.toFixed(2)} ₽`,
    `${t("paid")}: ${moneyLine(v.request.payments, (v.request.items || []).reduce((acc, i) => {
      const s = acc.find((a) => a.vat === i.vat);
      if (s) s.amount += Number(i.vat_amount || 0); else acc.push({ vat: i.vat, amount: Number(i.vat_amount || 0) });
      return acc;
    }, []))}${Number(v.request.change) > 0 ? ` · ${t("change")} ${Number(v.request.change).toFixed(2)} ₽` : ""}`,
    v.last_error ? `${t("col-error")}: ${v.last_error}` : "",
  ].filter(Boolean);
  for (const l of lines) {
    const p = document.createElement("div");
    p.textContent = l;
    out.appendChild(p);
  }
}

$("lang").addEventListener("click", () => {
  lang = lang === "ru" ? "en" : "ru";
  localStorage.setItem("kkt-lang", lang);
  applyLanguage();
});
$("sync-now").addEventListener("click", () => {
  admin("/v1/kkt/buffer/sync", (r) => t("sync-done", r));
});
$("dlq-retry-all").addEventListener("click", () => admin("/v1/kkt/dlq/retry", (r) => t("retry-done", { n: r.retried })));
$("token-save").addEventListener("click", () => {
  sessionStorage.setItem("kkt-admin-token", $("token").value.trim());
  $("token").value = "";
  showResult("✓", "ok");
});
$("lookup-form").addEventListener("submit", lookup);
$("token-box").hidden = Boolean(token());
applyLanguage();
poll();
// The program's version (the workspace's, from Cargo.toml), once: it cannot change while the page lives.
// /v1/health answers 503 with the same body when something is unhealthy, so its status is not checked.
fetch("/v1/health", { cache: "no-store" }).then((r) => r.json()).then((h) => setText($("app-version"), h.version)).catch(() => {});
