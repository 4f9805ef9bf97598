// KKT Adapter window: polls the local API every second and renders the one status snapshot.
// Works the same in the desktop window (the shell supplies the admin token) and in a browser
// at /ui/ (the manager enters the token once per session). ES modules, no build step: words in
// locales/, one module per part of the page.
import { load, t, applyLanguage, switchLanguage } from "./i18n.js";
import { $, setText, showResult } from "./format.js";
import { token, saveToken, getJson, needToken, adminPost, authHeaders, wireDownloads } from "./api.js";
import { render, lastStatus } from "./status.js";
import { renderDlq } from "./dlq.js";
import { renderEvents } from "./events.js";
import { pollChart } from "./chart.js";
import { lookup, openReceipt, closeReceipt, updateDayExport } from "./receipt.js";
import { startReview } from "./review.js";
import { startShift, renderAlarms } from "./shift.js";
import { startMarking } from "./marking.js";

const POLL_MS = 1000;
const dlqActions = {
  open: openReceipt,
  retry: (id) => admin(`/v1/kkt/dlq/${encodeURIComponent(id)}/retry`, (r) => t("retry-done", { n: r.retried })),
};

async function poll() {
  try {
    render(await getJson("/v1/kkt/buffer/status"));
    renderAlarms();
    const [dlq, events] = await Promise.allSettled([getJson("/v1/kkt/dlq"), getJson("/v1/kkt/buffer/events?latest=15")]);
    if (dlq.status === "fulfilled") renderDlq(dlq.value, dlqActions);
    if (events.status === "fulfilled") renderEvents(events.value, openReceipt);
    setText($("conn"), t("connected"));
    $("conn").className = "conn ok";
  } catch (e) {
    setText($("conn"), t("disconnected"));
    $("conn").className = "conn bad";
  } finally {
    setTimeout(poll, POLL_MS);
  }
}

async function admin(path, describe) {
  if (needToken()) return;
  document.querySelectorAll("button").forEach((b) => { b.disabled = true; });
  showResult(t("busy"), "busy");
  try {
    const r = await adminPost(path);
    if (r.ok && r.status === 202 && r.answer.cycle) await followSync(r.answer.cycle);
    else if (r.ok) showResult(describe(r.answer), "ok");
  } catch (e) {
    showResult(`${t("error")}: ${e.message}`, "bad");
  } finally {
    document.querySelectorAll("button").forEach((b) => { b.disabled = false; });
    if (lastStatus()) renderDlq(await getJson("/v1/kkt/dlq").catch(() => ({ entries: [] })), dlqActions);
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

$("lang").addEventListener("click", switchLanguage);
$("sync-now").addEventListener("click", () => admin("/v1/kkt/buffer/sync", (r) => t("sync-done", r)));
$("dlq-retry-all").addEventListener("click", () => admin("/v1/kkt/dlq/retry", (r) => t("retry-done", { n: r.retried })));
$("token-save").addEventListener("click", () => {
  saveToken($("token").value.trim());
  $("token").value = "";
  showResult("✓", "ok");
  showPosToken();
});
$("lookup-form").addEventListener("submit", lookup);
$("receipt-close").addEventListener("click", closeReceipt);
$("receipt-panel").addEventListener("keydown", (k) => { if (k.key === "Escape") closeReceipt(); });
$("f-date").addEventListener("change", updateDayExport);
updateDayExport();
$("token-box").hidden = Boolean(token());
wireDownloads();

/** The POS token for the tills' set-up, when intake needs one (admin token only). */
async function showPosToken() {
  if (!token()) return;
  const r = await fetch("/v1/kkt/pos-token", { cache: "no-store", headers: authHeaders() }).catch(() => null);
  if (!r || !r.ok) return;
  const p = await r.json();
  $("pos-token-box").hidden = !p.required;
  setText($("pos-token-value"), p.shared || t("pos-token-per-till"));
  setText($("pos-token-tills"), p.tills.length ? t("pos-token-tills", { tills: p.tills.join(", ") }) : "");
}

await load();
applyLanguage();
poll();
pollChart();
startReview(openReceipt);
startShift();
startMarking();
showPosToken();
// The program's version (the workspace's, from Cargo.toml), once: it cannot change while the page lives.
// /v1/health answers 503 with the same body when something is unhealthy, so its status is not checked.
fetch("/v1/health", { cache: "no-store" }).then((r) => r.json()).then((h) => setText($("app-version"), h.version)).catch(() => {});
