// The dead-letter queue: each receipt with its reason in words, the OFD's raw answer folded away,
// and Retry.
import { t, has } from "./i18n.js";
import { $, cell, rub, when, moneyLine } from "./format.js";

export function reasonText(e) {
  const key = `r-${e.reason}`;
  return has(key) ? t(key, { n: e.retry_count }) : t("r-other", { reason: e.reason });
}

/** Draws the DLQ; `open(id)` opens a receipt's panel, `retry(id)` retries one entry. */
export function renderDlq(list, { open, retry }) {
  const rows = $("dlq-rows");
  rows.replaceChildren();
  for (const e of list.entries) {
    const tr = document.createElement("tr");
    const link = document.createElement("button");
    link.type = "button";
    link.className = "link";
    link.textContent = `№${e.fiscal_doc_number}`;
    link.title = e.receipt_id;
    link.addEventListener("click", () => open(e.receipt_id));
    cell(tr, link);
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
    b.addEventListener("click", () => retry(e.receipt_id));
    cell(tr, b);
    rows.appendChild(tr);
  }
  $("dlq-empty").hidden = list.entries.length > 0;
  $("dlq-retry-all").disabled = list.entries.length === 0;
}
