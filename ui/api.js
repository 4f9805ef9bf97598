// The window's calls to the adapter. The admin token (when known) goes with every call: the
// DLQ, events, receipts, slips and CSVs need it (SECURITY.md "Who reads what").
// In the desktop window the shell sets window.__KKT_ADMIN_TOKEN__ (read-only, on this origin
// only); in a plain browser the manager types it once and it stays in this tab's sessionStorage.
import { t } from "./i18n.js";
import { $, showResult } from "./format.js";

export function token() {
  return window.__KKT_ADMIN_TOKEN__ || sessionStorage.getItem("kkt-admin-token") || "";
}

export function saveToken(value) {
  sessionStorage.setItem("kkt-admin-token", value);
}

export function authHeaders() {
  return token() ? { Authorization: `Bearer ${token()}` } : {};
}

export async function getJson(path) {
  const r = await fetch(path, { cache: "no-store", headers: authHeaders() });
  if (r.status === 401) $("token-box").hidden = false;
  if (!r.ok) throw new Error(`${path}: HTTP ${r.status}`);
  return r.json();
}

/** True when the admin token is there; otherwise asks for it. */
export function needToken() {
  if (token()) return false;
  $("token-box").hidden = false;
  showResult(t("need-token"), "bad");
  $("token").focus();
  return true;
}

/** An admin POST (JSON body optional): its status and answer; a 401 opens the token box. */
export async function adminPost(path, body) {
  const headers = { Authorization: `Bearer ${token()}` };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const r = await fetch(path, { method: "POST", headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const answer = await r.json().catch(() => ({}));
  if (r.status === 401) {
    $("token-box").hidden = false;
    showResult(t("bad-token"), "bad");
  } else if (!r.ok) {
    showResult(`${t("error")} ${r.status}: ${answer.message || ""}`, "bad");
  }
  return { status: r.status, ok: r.ok, answer };
}

/** Downloads `path` with the token (a plain link cannot carry one) under the link's file name. */
export async function download(link) {
  const r = await fetch(link.getAttribute("href"), { cache: "no-store", headers: authHeaders() });
  if (r.status === 401) { $("token-box").hidden = false; showResult(t("need-token"), "bad"); return; }
  if (!r.ok) { showResult(`${t("error")} ${r.status}`, "bad"); return; }
  const url = URL.createObjectURL(await r.blob());
  const a = document.createElement("a");
  a.href = url;
  a.download = link.getAttribute("download") || "export.csv";
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10000);
}

/** Every link with data-auth-download fetches with the token instead of navigating. */
export function wireDownloads() {
  for (const link of document.querySelectorAll("a[data-auth-download]")) {
    link.addEventListener("click", (ev) => { ev.preventDefault(); download(link); });
  }
}
