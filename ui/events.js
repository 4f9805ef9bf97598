// The event list: each event as a sentence in the page's language, naming receipts by their
// fiscal number and sum (never a UUID); an event of a registered receipt opens it.
import { t, has, locale } from "./i18n.js";
import { $, rub, fdn } from "./format.js";

export function eventText(e) {
  const d = e.details || {};
  const sum = e.total != null ? rub(e.total) : d.total != null ? rub(d.total) : "–";
  switch (e.event_type) {
    case "receipt_resolved": {
      const action = t(`act-${d.action}`, { n: d.fiscal_doc_number ?? "" });
      return t("ev-receipt_resolved", { sum, action, comment: d.comment ? ` («${d.comment}»)` : "" });
    }
    case "receipt_held":
    case "receipt_needs_review":
      return t(`ev-${e.event_type}`, { sum, reason: d.reason || "" });
    default: {
      const vars = {
        n: fdn(e.fiscal_doc_number ?? d.fiscal_doc_number), sum,
        pos: d.pos_id || "", attempt: d.attempt ?? "", synced: d.synced ?? 0, failed: d.failed ?? 0,
        code: d.http_status ?? "", count: d.receipts ?? 0, type: e.event_type, what: d.what || "",
      };
      const key = `ev-${e.event_type}`;
      return has(key) ? t(key, vars) : t("ev-other", vars);
    }
  }
}

export function renderEvents(page, open) {
  const list = $("events");
  list.replaceChildren();
  for (const e of page.events.slice().reverse()) {
    const li = document.createElement("li");
    const time = document.createElement("time");
    time.dateTime = e.created_at;
    time.textContent = new Date(e.created_at).toLocaleTimeString(locale());
    li.append(time, " ", eventText(e));
    li.className = `ev ev-${e.event_type}`;
    if (e.receipt_id && e.fiscal_doc_number != null) {
      li.tabIndex = 0;
      li.setAttribute("role", "button");
      li.addEventListener("click", () => open(e.receipt_id));
      li.addEventListener("keydown", (k) => { if (k.key === "Enter" || k.key === " ") { k.preventDefault(); open(e.receipt_id); } });
    }
    list.appendChild(li);
  }
}
