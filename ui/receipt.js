// Finding a receipt (by fiscal number, id, key, or a day, an amount, a till), the day's CSV, and
// the receipt panel: the slip as printed and its QR code as an image, with the receipt's facts.
import { t } from "./i18n.js";
import { $, setText, rub, when, fdn } from "./format.js";
import { authHeaders } from "./api.js";
import { reasonText } from "./dlq.js";

/** " · через АТОЛ" for a receipt a vendor front took (§13); nothing for our own API's. */
function viaFront(front) {
  return front && front !== "api" ? ` · ${t(`via-${front}`)}` : "";
}

function todayInShop() {
  const d = new Date();
  return `${d.getFullYear()}-${String(d.getMonth() + 1).padStart(2, "0")}-${String(d.getDate()).padStart(2, "0")}`;
}

export function updateDayExport() {
  const day = $("f-date").value || todayInShop();
  $("day-export").href = `/v1/kkt/receipts.csv?date=${encodeURIComponent(day)}`;
  $("day-export").setAttribute("download", `kkt-receipts-${day}.csv`);
}

export async function lookup(ev) {
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
    b.textContent = `№${fdn(row.fiscal_doc_number)} · ${when(row.created_at)} · ${row.pos_id}${viaFront(row.front)} · ${t(row.type)} · ${rub(row.total)} · ${t(`st-${row.status}`)}`;
    b.addEventListener("click", () => openReceipt(row.receipt_id));
    li.appendChild(b);
    out.appendChild(li);
  }
  if (v.receipts.length === 1) openReceipt(v.receipts[0].receipt_id);
}

let panelReturn = null;
let panelSeq = 0;
export async function openReceipt(id) {
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
    // Fetched with the token (an <img src> cannot carry one) and shown as a data: image.
    const svg = await fetch(`/v1/kkt/receipt/${encodeURIComponent(id)}/qr.svg`, { headers: authHeaders() });
    if (svg.ok) qr.src = `data:image/svg+xml;base64,${btoa(unescape(encodeURIComponent(await svg.text())))}`;
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
  fact("k-front", t(`front-${v.front || "api"}`));
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

export function closeReceipt() {
  $("receipt-panel").hidden = true;
  if (panelReturn && document.contains(panelReturn)) panelReturn.focus();
}
