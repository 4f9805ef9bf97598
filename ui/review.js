// Receipts that need the manager's decision (docs/contract.md §10.5): the register may hold them
// and cannot tell. Each is shown with the FN documents that may be it, and three decisions —
// "this document is it" (attach), "register it now", "void it" — each confirmed, with the
// manager's words kept in the event log. Loaded after app.js, whose helpers it uses.
"use strict";

Object.assign(T.ru, {
  "review-title": "Требуют решения",
  "review-intro": "ККТ не может сказать, пробит ли чек. Сверьте с кассовой лентой или отчётом ФН и решите: какой документ ФН — этот чек, пробить его заново или аннулировать.",
  "review-banner": "Чеков, требующих решения: {n}. ККТ не может сказать, пробиты ли они — откройте раздел «Требуют решения».",
  "review-candidates": "Документы ФН, которые могут быть этим чеком:",
  "review-none": "В ФН не найдено подходящих документов.",
  "review-attach": "Это он — ФД №{n}", "review-register": "Пробить заново", "review-void": "Аннулировать",
  "review-comment": "Комментарий (что проверено)",
  "review-confirm-attach": "Записать за чеком на {sum} документ ФН №{n}? Это окончательно.",
  "review-confirm-register": "Пробить чек на {sum} заново? Если он уже есть в ФН, получится второй документ.",
  "review-confirm-void": "Аннулировать чек на {sum}? Он не будет пробит, касса получит отказ.",
  "review-done-attach": "Чек записан за документом ФН №{n}.", "review-done-register": "Чек отправлен в ККТ заново.",
  "review-done-void": "Чек аннулирован.",
  "st-needs_review": "требует решения", "st-voided": "аннулирован",
  "ev-receipt_held": "Чек на {sum} ждёт ККТ: {reason}",
  "ev-receipt_needs_review": "Чек на {sum} требует решения: {reason}",
  "ev-receipt_resolved": "Решение по чеку на {sum}: {action}{comment}",
  "act-attach": "записан за документом ФН №{n}", "act-register": "пробит заново", "act-void": "аннулирован",
  "k-registered-as": "Пробит как", "late-note": "пробит с опозданием как чек коррекции (расчёт без ККТ, 54-ФЗ ст. 4.3)",
});
Object.assign(T.en, {
  "review-title": "Need a decision",
  "review-intro": "The register cannot tell whether these receipts were registered. Check the register's tape or the FN report and decide: which FN document is the receipt, register it again, or void it.",
  "review-banner": "Receipts needing a decision: {n}. The register cannot tell whether they were registered — see «Need a decision».",
  "review-candidates": "FN documents that may be this receipt:",
  "review-none": "No matching document found in the FN.",
  "review-attach": "This is it — FD #{n}", "review-register": "Register again", "review-void": "Void",
  "review-comment": "Comment (what was checked)",
  "review-confirm-attach": "Record FN document #{n} as the receipt for {sum}? This is final.",
  "review-confirm-register": "Register the receipt for {sum} again? If the FN already has it, there will be a second document.",
  "review-confirm-void": "Void the receipt for {sum}? It will not be registered; the till gets a refusal.",
  "review-done-attach": "The receipt now has FN document #{n}.", "review-done-register": "The receipt went to the register again.",
  "review-done-void": "The receipt is voided.",
  "st-needs_review": "needs a decision", "st-voided": "voided",
  "ev-receipt_held": "Receipt for {sum} waits for the register: {reason}",
  "ev-receipt_needs_review": "Receipt for {sum} needs a decision: {reason}",
  "ev-receipt_resolved": "Decision on the receipt for {sum}: {action}{comment}",
  "act-attach": "given FN document #{n}", "act-register": "registered again", "act-void": "voided",
  "k-registered-as": "Registered as", "late-note": "registered late as a correction receipt (a settlement without the register, 54-FZ art. 4.3)",
});

// app.js translated the page before these words were here.
applyLanguage();

// The event texts of these events need their own words (action, reason, comment).
const baseEventText = eventText;
// eslint-disable-next-line no-global-assign
eventText = function (e) {
  const d = e.details || {};
  const sum = e.total != null ? rub(e.total) : d.total != null ? rub(d.total) : "–";
  if (e.event_type === "receipt_resolved") {
    const action = t(`act-${d.action}`, { n: d.fiscal_doc_number ?? "" });
    return t("ev-receipt_resolved", { sum, action, comment: d.comment ? ` («${d.comment}»)` : "" });
  }
  if (e.event_type === "receipt_held" || e.event_type === "receipt_needs_review") {
    return t(`ev-${e.event_type}`, { sum, reason: d.reason || "" });
  }
  return baseEventText(e);
};

async function decide(entry, action, number, comment) {
  const sum = rub(entry.total);
  if (!window.confirm(t(`review-confirm-${action}`, { n: number, sum }))) return;
  if (!token()) {
    $("token-box").hidden = false;
    showResult(t("need-token"), "bad");
    return;
  }
  const body = { action, comment };
  if (action === "attach") body.fiscal_doc_number = number;
  showResult(t("busy"), "busy");
  try {
    const r = await fetch(`/v1/kkt/receipt/${encodeURIComponent(entry.receipt_id)}/resolve`, {
      method: "POST",
      headers: { "Content-Type": "application/json", Authorization: `Bearer ${token()}` },
      body: JSON.stringify(body),
    });
    const v = await r.json().catch(() => ({}));
    if (r.status === 401) {
      $("token-box").hidden = false;
      showResult(t("bad-token"), "bad");
    } else if (!r.ok) {
      showResult(`${t("error")} ${r.status}: ${v.message || ""}`, "bad");
    } else {
      showResult(t(`review-done-${action}`, { n: number }), "ok");
    }
  } catch (e) {
    showResult(`${t("error")}: ${e.message}`, "bad");
  }
  pollReview();
}

function reviewItem(entry) {
  const li = document.createElement("li");
  li.className = "review-item";
  li.dataset.testid = "review-item";
  const head = document.createElement("button");
  head.type = "button";
  head.className = "link";
  head.textContent = `${when(entry.created_at)} · ${entry.pos_id} · ${t(entry.type)} · ${rub(entry.total)}`;
  head.addEventListener("click", () => openReceipt(entry.receipt_id));
  const reason = document.createElement("p");
  reason.className = "reason";
  reason.textContent = entry.reason || "";
  const comment = document.createElement("input");
  comment.type = "text";
  comment.maxLength = 500;
  comment.placeholder = t("review-comment");
  comment.setAttribute("aria-label", t("review-comment"));
  comment.dataset.testid = "review-comment";
  const say = () => comment.value.trim();
  const list = document.createElement("ul");
  list.className = "candidates";
  for (const c of entry.candidates) {
    const item = document.createElement("li");
    const b = document.createElement("button");
    b.type = "button";
    b.dataset.testid = "review-attach";
    b.textContent = t("review-attach", { n: c.fiscal_doc_number });
    b.addEventListener("click", () => decide(entry, "attach", c.fiscal_doc_number, say()));
    const facts = [c.operation ? t(c.operation) : null, c.total != null ? rub(c.total) : null, c.datetime ? when(c.datetime) : null]
      .filter(Boolean).join(" · ");
    item.append(b, ` ${facts} — ${c.why}`);
    list.appendChild(item);
  }
  const lead = document.createElement("p");
  lead.textContent = entry.candidates.length ? t("review-candidates") : t("review-none");
  const actions = document.createElement("div");
  actions.className = "review-actions";
  for (const action of ["register", "void"]) {
    const b = document.createElement("button");
    b.type = "button";
    b.dataset.testid = `review-${action}`;
    b.textContent = t(`review-${action}`);
    b.addEventListener("click", () => decide(entry, action, null, say()));
    actions.appendChild(b);
  }
  actions.prepend(comment);
  li.append(head, reason, lead, list, actions);
  return li;
}

let reviewShown = "";
function renderReview(v) {
  const section = $("review");
  const banner = $("review-banner");
  section.hidden = v.count === 0;
  banner.hidden = v.count === 0;
  if (v.count) setText(banner, t("review-banner", { n: v.count }));
  // Rebuilt only when the list changed: never under the manager's typing.
  const key = JSON.stringify(v.receipts.map((r) => [r.receipt_id, r.candidates.length])) + lang;
  if (key === reviewShown) return;
  reviewShown = key;
  $("review-list").replaceChildren(...v.receipts.map(reviewItem));
}

async function pollReview() {
  try {
    if (!last || last.needs_review > 0 || !$("review").hidden) renderReview(await getJson("/v1/kkt/review"));
  } catch (e) {
    /* the connection label already says the adapter is unreachable */
  }
}

(function loop() {
  pollReview().finally(() => setTimeout(loop, 2000));
})();
