// Receipts that need the manager's decision (docs/contract.md §10.5): the register may hold them
// and cannot tell. Each is shown with the FN documents that may be it, and three decisions —
// "this document is it" (attach), "register it now", "void it" — each confirmed, with the
// manager's words kept in the event log.
import { t, lang, onLanguage } from "./i18n.js";
import { $, setText, rub, when, showResult } from "./format.js";
import { getJson, needToken, adminPost } from "./api.js";
import { lastStatus } from "./status.js";

let openReceipt = () => {};
let shown = "";
onLanguage(() => { shown = ""; });

async function decide(entry, action, number, comment) {
  if (!window.confirm(t(`review-confirm-${action}`, { n: number, sum: rub(entry.total) }))) return;
  if (needToken()) return;
  const body = { action, comment };
  if (action === "attach") body.fiscal_doc_number = number;
  showResult(t("busy"), "busy");
  try {
    const r = await adminPost(`/v1/kkt/receipt/${encodeURIComponent(entry.receipt_id)}/resolve`, body);
    if (r.ok) showResult(t(`review-done-${action}`, { n: number }), "ok");
  } catch (e) {
    showResult(`${t("error")}: ${e.message}`, "bad");
  }
  pollReview();
}

function button(testid, text, onClick) {
  const b = document.createElement("button");
  b.type = "button";
  b.dataset.testid = testid;
  b.textContent = text;
  b.addEventListener("click", onClick);
  return b;
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
    const facts = [c.operation ? t(c.operation) : null, c.total != null ? rub(c.total) : null, c.datetime ? when(c.datetime) : null]
      .filter(Boolean).join(" · ");
    item.append(
      button("review-attach", t("review-attach", { n: c.fiscal_doc_number }), () => decide(entry, "attach", c.fiscal_doc_number, say())),
      ` ${facts} — ${c.why}`,
    );
    list.appendChild(item);
  }
  const lead = document.createElement("p");
  lead.textContent = entry.candidates.length ? t("review-candidates") : t("review-none");
  const actions = document.createElement("div");
  actions.className = "review-actions";
  actions.append(comment, ...["register", "void"].map((a) => button(`review-${a}`, t(`review-${a}`), () => decide(entry, a, null, say()))));
  li.append(head, reason, lead, list, actions);
  return li;
}

function renderReview(v) {
  const section = $("review");
  const banner = $("review-banner");
  section.hidden = v.count === 0;
  banner.hidden = v.count === 0;
  if (v.count) setText(banner, t("review-banner", { n: v.count }));
  // Rebuilt only when the list changed: never under the manager's typing.
  const key = JSON.stringify(v.receipts.map((r) => [r.receipt_id, r.candidates.length])) + lang;
  if (key === shown) return;
  shown = key;
  $("review-list").replaceChildren(...v.receipts.map(reviewItem));
}

export async function pollReview() {
  try {
    const s = lastStatus();
    if (!s || s.needs_review > 0 || !$("review").hidden) renderReview(await getJson("/v1/kkt/review"));
  } catch (e) {
    /* the connection label already says the adapter is unreachable */
  }
}

/** Polls every 2 s (only while there is something to show); `open(id)` opens a receipt. */
export function startReview(open) {
  openReceipt = open;
  (function loop() {
    pollReview().finally(() => setTimeout(loop, 2000));
  })();
}
