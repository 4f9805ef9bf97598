// KKT Adapter window: polls the local API every second and renders the one status snapshot.
// Works the same in the desktop window (the shell supplies the admin token) and in a browser
// at /ui/ (the manager enters the token once per session).
"use strict";

const POLL_MS = 1000;
const T = {
  ru: {
    version: "Версия",
    "api-link": "Связь окна с адаптером", "chart-title": "Последние 24 часа",
    taken: "приняты", delivered: "доставлены", failed: "не доставлены", outage: "ОФД недоступен",
    "chart-summary": "За 24 часа принято {taken}, доставлено {delivered}, не доставлено {failed}; перерывов связи с ОФД: {outages}.",
    "chart-bar": "{from}: принято {taken}, доставлено {delivered}, не доставлено {failed}",
    "dlq-export": "Скачать CSV", "col-sold": "Время продажи", "col-action": "Действие",
    "search-label": "Номер ФД, ID чека или ключ", "f-date": "Дата", "f-amount": "Сумма, ₽", "f-pos": "Касса",
    "day-export": "Чеки за день (CSV)", close: "Закрыть", found: "Найдено чеков: {n}", "found-none": "Ничего не найдено",
    "search-empty": "Введите номер ФД, ID или ключ либо выберите дату, сумму или кассу.",
    "receipt-title": "Чек ФД №{n}", "receipt-unnumbered": "Чек (ещё не зарегистрирован в ККТ)", "qr-alt": "QR-код чека ФД №{n}",
    "no-slip": "Чек ещё не напечатан.", "raw-answer": "Ответ ОФД",
    "st-fiscalizing": "в ККТ", "st-pending": "ждёт отправки", "st-syncing": "отправляется", "st-synced": "доставлен в ОФД",
    "st-failed": "не доставлен (DLQ)", "st-refused": "отказ ККТ",
    "r-rejected_by_ofd": "ОФД отклонил чек: в документе ошибка. Проверьте данные чека; при необходимости пробейте чек коррекции.",
    "r-max_retries_exceeded": "ОФД не принял чек за {n} попыток. Проверьте связь с ОФД и нажмите «Повторить».",
    "r-other": "Не доставлен: {reason}",
    "k-status": "Статус", "k-sold": "Продан", "k-pos": "Касса", "k-total": "Сумма", "k-synced": "Доставлен в ОФД", "k-id": "ID чека", "k-key": "Ключ",
    "ev-receipt_added": "Чек ФД №{n} на {sum} принят от кассы {pos}",
    "ev-receipt_synced": "Чек ФД №{n} на {sum} доставлен в ОФД",
    "ev-receipt_failed": "Чек ФД №{n}: попытка {attempt} отправки в ОФД не удалась",
    "ev-receipt_dlq": "Чек ФД №{n} на {sum} не доставлен — в очереди недоставленных",
    "ev-dlq_retried": "Чек ФД №{n} возвращён в очередь отправки",
    "ev-lease_recovered": "Отправка чека ФД №{n}, прерванная перезапуском, возобновлена",
    "ev-sync_released": "Отправка чека ФД №{n} отложена",
    "ev-sync_started": "Чек ФД №{n} отправляется в ОФД",
    "ev-circuit_opened": "Связь с ОФД потеряна — отправка приостановлена",
    "ev-circuit_half_open": "Проверка связи с ОФД",
    "ev-circuit_closed": "Связь с ОФД восстановлена",
    "ev-sync_cycle_completed": "Отправка в ОФД: доставлено {synced}, ошибок {failed}",
    "ev-ofd_misconfigured": "ОФД отвечает HTTP {code}: проверьте адрес ОФД и токен",
    "ev-buffer_purged": "Из буфера удалены старые доставленные чеки: {count}",
    "ev-backoff_cleared": "Все ожидающие чеки отправляются сейчас",
    "ev-receipt_refused": "ККТ отказала в регистрации чека на {sum}",
    "ev-other": "Событие: {type}",
    demo: "ДЕМО", connecting: "подключение…", connected: "на связи", disconnected: "нет связи с адаптером",
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
    "api-link": "Window's link to the adapter", "chart-title": "Last 24 hours",
    taken: "taken", delivered: "delivered", failed: "failed", outage: "OFD unreachable",
    "chart-summary": "In 24 hours: {taken} taken, {delivered} delivered, {failed} failed; OFD outages: {outages}.",
    "chart-bar": "{from}: {taken} taken, {delivered} delivered, {failed} failed",
    "dlq-export": "Download CSV", "col-sold": "Sold at", "col-action": "Action",
    "search-label": "Fiscal document number, receipt id or key", "f-date": "Date", "f-amount": "Amount, ₽", "f-pos": "Till",
    "day-export": "The day's receipts (CSV)", close: "Close", found: "Receipts found: {n}", "found-none": "Nothing found",
    "search-empty": "Enter a fiscal document number, id or key, or pick a date, an amount or a till.",
    "receipt-title": "Receipt FD #{n}", "receipt-unnumbered": "Receipt (not registered by the register yet)", "qr-alt": "QR code of receipt FD #{n}",
    "no-slip": "The receipt is not printed yet.", "raw-answer": "The OFD's answer",
    "st-fiscalizing": "at the register", "st-pending": "waiting to be sent", "st-syncing": "being sent", "st-synced": "delivered to the OFD",
    "st-failed": "not delivered (DLQ)", "st-refused": "refused by the register",
    "r-rejected_by_ofd": "The OFD rejected the receipt: the document has an error. Check the receipt's data; issue a correction receipt if needed.",
    "r-max_retries_exceeded": "The OFD did not accept the receipt in {n} attempts. Check the OFD connection and press Retry.",
    "r-other": "Not delivered: {reason}",
    "k-status": "Status", "k-sold": "Sold", "k-pos": "Till", "k-total": "Total", "k-synced": "Delivered to the OFD", "k-id": "Receipt id", "k-key": "Key",
    "ev-receipt_added": "Receipt FD #{n} for {sum} taken from till {pos}",
    "ev-receipt_synced": "Receipt FD #{n} for {sum} delivered to the OFD",
    "ev-receipt_failed": "Receipt FD #{n}: sending attempt {attempt} to the OFD failed",
    "ev-receipt_dlq": "Receipt FD #{n} for {sum} not delivered — moved to the DLQ",
    "ev-dlq_retried": "Receipt FD #{n} returned to the sending queue",
    "ev-lease_recovered": "Sending of receipt FD #{n}, cut by a restart, resumed",
    "ev-sync_released": "Sending of receipt FD #{n} postponed",
    "ev-sync_started": "Receipt FD #{n} is being sent to the OFD",
    "ev-circuit_opened": "Lost the OFD — sending paused",
    "ev-circuit_half_open": "Checking the OFD connection",
    "ev-circuit_closed": "The OFD connection is back",
    "ev-sync_cycle_completed": "Sending to the OFD: {synced} delivered, {failed} failed",
    "ev-ofd_misconfigured": "The OFD answers HTTP {code}: check the OFD URL and token",
    "ev-buffer_purged": "Old delivered receipts removed from the buffer: {count}",
    "ev-backoff_cleared": "Every waiting receipt is being sent now",
    "ev-receipt_refused": "The register refused a receipt for {sum}",
    "ev-other": "Event: {type}",
    version: "Version", demo: "DEMO", connecting: "connecting…", connected: "connected", disconnected: "adapter unreachable",
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
  $("lang").lang = lang === "ru" ? "en" : "ru";
  if (last) render(last);
  if (lastActivity) drawChart(lastActivity);
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
  setText($("breaker-label"), t(s.breaker.state));
  setText($("network-label"), t(s.network_status));
  $("oldest-seconds").hidden = s.oldest_pending_age_seconds == null;
  setText($("next-probe"), s.breaker.next_probe_in_seconds != null ? `· ${t("probe-in")} ${Math.ceil(s.breaker.next_probe_in_seconds)} ${t("s")}` : "");
  setText($("oldest-human"), s.oldest_pending_age_seconds == null ? t("none") : human(s.oldest_pending_age_seconds));
  const net = document.querySelector('[data-testid="network-status"]');
  net.className = `raw net-${s.network_status}`;
  $("network-label").className = `net-${s.network_status}`;
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

const rub = (x) => `${Number(x).toFixed(2)} ₽`;
const when = (iso) => (iso ? new Date(iso).toLocaleString(lang === "ru" ? "ru-RU" : "en-GB") : "–");
const fdn = (n) => (n == null ? "–" : n);

function reasonText(e) {
  const key = `r-${e.reason}`;
  return T[lang][key] ? t(key, { n: e.retry_count }) : t("r-other", { reason: e.reason });
}

function cell(tr, content) {
  const td = document.createElement("td");
  if (content instanceof Node) td.appendChild(content); else td.textContent = content;
  tr.appendChild(td);
  return td;
}

function renderDlq(list) {
  const rows = $("dlq-rows");
  rows.replaceChildren();
  for (const e of list.entries) {
    const tr = document.createElement("tr");
    const open = document.createElement("button");
    open.type = "button";
    open.className = "link";
    open.textContent = `№${e.fiscal_doc_number}`;
    open.title = e.receipt_id;
    open.addEventListener("click", () => openReceipt(e.receipt_id));
    cell(tr, open);
    cell(tr, when(e.created_at));
    cell(tr, e.pos_id);
    cell(tr, t(e.type));
    cell(tr, rub(e.total)).className = "num";
    cell(tr, moneyLine(e.payments, e.vat));
    // The reason in words; the OFD's raw answer behind a disclosure, for support.
    const why = document.createElement("div");
    const words = document.createElement("div");
    words.className = "reason";
    words.textContent = reasonText(e);
    why.appendChild(words);
    if (e.last_error) {
      const details = document.createElement("details");
      const summary = document.createElement("summary");
      summary.textContent = t("raw-answer");
      const pre = document.createElement("pre");
      pre.textContent = e.last_error;
      details.append(summary, pre);
      why.appendChild(details);
    }
    cell(tr, why);
    cell(tr, e.retry_count).className = "num";
    const b = document.createElement("button");
    b.type = "button";
    b.dataset.testid = "dlq-retry";
    b.textContent = t("retry");
    b.setAttribute("aria-label", `${t("retry")} №${e.fiscal_doc_number}`);
    b.addEventListener("click", () => admin(`/v1/kkt/dlq/${encodeURIComponent(e.receipt_id)}/retry`, (r) => t("retry-done", { n: r.retried })));
    cell(tr, b);
    rows.appendChild(tr);
  }
  $("dlq-empty").hidden = list.entries.length > 0;
  $("dlq-retry-all").disabled = list.entries.length === 0;
}

// One event as a sentence in the page's language, naming receipts by their fiscal number and sum.
function eventText(e) {
  const d = e.details || {};
  const vars = {
    n: fdn(e.fiscal_doc_number ?? d.fiscal_doc_number), sum: e.total != null ? rub(e.total) : d.total != null ? rub(d.total) : "–",
    pos: d.pos_id || "", attempt: d.attempt ?? "", synced: d.synced ?? 0, failed: d.failed ?? 0,
    code: d.http_status ?? "", count: d.receipts ?? 0, type: e.event_type,
  };
  const key = `ev-${e.event_type}`;
  return T[lang][key] ? t(key, vars) : t("ev-other", vars);
}

function renderEvents(page) {
  const list = $("events");
  list.replaceChildren();
  for (const e of page.events.slice().reverse()) {
    const li = document.createElement("li");
    const time = document.createElement("time");
    time.dateTime = e.created_at;
    time.textContent = new Date(e.created_at).toLocaleTimeString(lang === "ru" ? "ru-RU" : "en-GB");
    li.append(time, " ", eventText(e));
    li.className = `ev ev-${e.event_type}`;
    if (e.receipt_id && e.fiscal_doc_number != null) {
      li.tabIndex = 0;
      li.setAttribute("role", "button");
      li.addEventListener("click", () => openReceipt(e.receipt_id));
      li.addEventListener("keydown", (k) => { if (k.key === "Enter" || k.key === " ") { k.preventDefault(); openReceipt(e.receipt_id); } });
    }
    list.appendChild(li);
  }
}

// The 24-hour chart: bars of receipts taken / delivered / failed per interval, OFD outages shaded.
const SVG = "http://www.w3.org/2000/svg";
function svg(name, attrs, text) {
  const el = document.createElementNS(SVG, name);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, v);
  if (text != null) el.textContent = text;
  return el;
}

let lastActivity = null;
function drawChart(a) {
  lastActivity = a;
  const chart = $("chart");
  const W = 960, H = 180, top = 10, bottom = 22, left = 34;
  const from = Date.parse(a.from), to = Date.parse(a.to), span = to - from;
  const x = (ms) => left + ((ms - from) / span) * (W - left - 4);
  const max = Math.max(1, ...a.intervals.map((i) => Math.max(i.taken, i.delivered, i.failed)));
  const y = (n) => H - bottom - (n / max) * (H - top - bottom);
  const nodes = [];
  // Outages go over the bars, translucent, at least 6 px wide so a short one still shows.
  const outages = a.outages.map((o) => {
    const x0 = x(Date.parse(o.from)), w = Math.max(6, x(Date.parse(o.to)) - x0);
    const r = svg("rect", { x: Math.min(x0, W - 4 - w), y: top, width: w, height: H - top - bottom, class: "outage" });
    r.appendChild(svg("title", {}, `${t("outage")}: ${when(o.from)} – ${o.ongoing ? "…" : when(o.to)}`));
    return r;
  });
  nodes.push(svg("line", { x1: left, x2: W - 4, y1: H - bottom, y2: H - bottom, class: "axis" }));
  nodes.push(svg("text", { x: left - 6, y: top + 8, class: "tick", "text-anchor": "end" }, max));
  nodes.push(svg("text", { x: left - 6, y: H - bottom, class: "tick", "text-anchor": "end" }, 0));
  const slot = (W - left - 4) / a.intervals.length;
  const bw = Math.max(1, (slot - 3) / 3);
  a.intervals.forEach((i, n) => {
    const x0 = left + n * slot + 1.5;
    const g = svg("g", {});
    [["taken", i.taken], ["delivered", i.delivered], ["failed", i.failed]].forEach(([kind, v], k) => {
      if (v > 0) g.appendChild(svg("rect", { x: x0 + k * bw, y: y(v), width: bw, height: H - bottom - y(v), class: kind }));
    });
    g.appendChild(svg("title", {}, t("chart-bar", { from: when(i.start), ...i })));
    nodes.push(g);
    const start = new Date(i.start);
    if (start.getHours() % 3 === 0 && start.getMinutes() === 0) {
      nodes.push(svg("text", { x: x0, y: H - 6, class: "tick" }, `${String(start.getHours()).padStart(2, "0")}:00`));
    }
  });
  chart.replaceChildren(...nodes, ...outages);
  const sum = (k) => a.intervals.reduce((acc, i) => acc + i[k], 0);
  setText($("chart-summary"), t("chart-summary", { taken: sum("taken"), delivered: sum("delivered"), failed: sum("failed"), outages: a.outages.length }));
}

async function pollChart() {
  try {
    drawChart(await getJson("/v1/kkt/activity?hours=24&interval_minutes=60"));
  } catch (e) {
    /* the connection label already says the adapter is unreachable */
  } finally {
    setTimeout(pollChart, 30000);
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

function todayInShop() {
  const d = new Date();
  return `${d.getFullYear()}-${String(d.getMonth() + 1).padStart(2, "0")}-${String(d.getDate()).padStart(2, "0")}`;
}

function updateDayExport() {
  const day = $("f-date").value || todayInShop();
  $("day-export").href = `/v1/kkt/receipts.csv?date=${encodeURIComponent(day)}`;
  $("day-export").setAttribute("download", `kkt-receipts-${day}.csv`);
}

async function lookup(ev) {
  ev.preventDefault();
  const q = $("lookup-id").value.trim();
  const params = new URLSearchParams();
  if (q) params.set("q", q);
  if ($("f-date").value) params.set("date", $("f-date").value);
  if ($("f-amount").value.trim()) params.set("amount", $("f-amount").value.trim());
  if ($("f-pos").value.trim()) params.set("pos_id", $("f-pos").value.trim());
  const out = $("search-results");
  out.replaceChildren();
  if (![...params.keys()].length) { setText($("search-status"), t("search-empty")); return; }
  const r = await fetch(`/v1/kkt/receipts?${params}`, { headers: authHeaders() });
  if (r.status === 401) { $("token-box").hidden = false; setText($("search-status"), t("need-token")); return; }
  const v = await r.json().catch(() => ({}));
  if (!r.ok) { setText($("search-status"), `${t("error")} ${r.status}: ${v.message || ""}`); return; }
  setText($("search-status"), v.receipts.length ? t("found", { n: v.receipts.length }) : t("found-none"));
  for (const row of v.receipts) {
    const li = document.createElement("li");
    const b = document.createElement("button");
    b.type = "button";
    b.className = "result-row";
    b.textContent = `№${fdn(row.fiscal_doc_number)} · ${when(row.created_at)} · ${row.pos_id} · ${t(row.type)} · ${rub(row.total)} · ${t(`st-${row.status}`)}`;
    b.addEventListener("click", () => openReceipt(row.receipt_id));
    li.appendChild(b);
    out.appendChild(li);
  }
  if (v.receipts.length === 1) openReceipt(v.receipts[0].receipt_id);
}

// The receipt panel: the slip as printed and its QR code as an image, with the receipt's facts.
let panelReturn = null;
let panelSeq = 0;
async function openReceipt(id) {
  const panel = $("receipt-panel");
  const seq = ++panelSeq;
  const from = document.activeElement;
  panelReturn = from;
  const r = await fetch(`/v1/kkt/receipt/${encodeURIComponent(id)}`, { headers: authHeaders() });
  if (r.status === 401) { $("token-box").hidden = false; setText($("search-status"), t("need-token")); return; }
  if (!r.ok) { setText($("search-status"), t("not-found")); return; }
  const v = await r.json();
  const slip = await fetch(`/v1/kkt/receipt/${encodeURIComponent(id)}/slip`, { headers: authHeaders() });
  const slipText = slip.ok ? await slip.text() : t("no-slip");
  if (seq !== panelSeq) return; // a later request for another receipt wins
  const n = v.fiscal_doc ? v.fiscal_doc.fiscal_doc_number : null;
  setText($("receipt-title"), n != null ? t("receipt-title", { n }) : t("receipt-unnumbered"));
  $("receipt-slip").textContent = slipText;
  const qr = $("receipt-qr");
  qr.hidden = n == null;
  if (n != null) {
    qr.src = `/v1/kkt/receipt/${encodeURIComponent(id)}/qr.svg`;
    qr.alt = t("qr-alt", { n });
    qr.title = v.fiscal_doc.qr_code_data;
  }
  const facts = $("receipt-facts");
  facts.replaceChildren();
  const fact = (k, val) => {
    const dt = document.createElement("dt"); dt.textContent = t(k);
    const dd = document.createElement("dd"); dd.textContent = val;
    facts.append(dt, dd);
  };
  fact("k-status", t(`st-${v.status}`));
  fact("k-sold", when(v.created_at));
  fact("k-pos", v.pos_id);
  fact("k-total", `${rub(v.total)} · ${t(v.type)}`);
  if (v.registered_as) fact("k-registered-as", `${t(v.registered_as)} — ${t("late-note")}`);
  if (v.synced_at) fact("k-synced", when(v.synced_at));
  if (v.dlq) fact("col-reason", reasonText(v.dlq));
  fact("k-id", v.receipt_id);
  panel.hidden = false;
  panel.dataset.receipt = v.receipt_id;
  // Take the focus only if it is still where the request came from: never from someone typing.
  if (document.activeElement === from || document.activeElement === document.body) {
    panel.focus();
    panel.scrollIntoView({ block: "nearest" });
  }
}

function closeReceipt() {
  $("receipt-panel").hidden = true;
  if (panelReturn && document.contains(panelReturn)) panelReturn.focus();
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
$("receipt-close").addEventListener("click", closeReceipt);
$("receipt-panel").addEventListener("keydown", (k) => { if (k.key === "Escape") closeReceipt(); });
$("f-date").addEventListener("change", updateDayExport);
updateDayExport();
$("token-box").hidden = Boolean(token());
applyLanguage();
poll();
pollChart();
// The program's version (the workspace's, from Cargo.toml), once: it cannot change while the page lives.
// /v1/health answers 503 with the same body when something is unhealthy, so its status is not checked.
fetch("/v1/health", { cache: "no-store" }).then((r) => r.json()).then((h) => setText($("app-version"), h.version)).catch(() => {});
