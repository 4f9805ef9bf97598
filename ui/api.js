// The window's calls to the adapter. The admin token (when known) goes with every call: in LAN
// mode the DLQ, events and receipt lookup need it; on loopback the read-only calls ignore it.
import { t } from "./i18n.js";
import { $, showResult } from "./format.js";

// The desktop shell hands the admin token over in the URL fragment (never sent to the server);
// keep it for this session and take it out of the address at once.
(function takeTokenFromFragment() {
  const m = location.hash.match(/(?:^#|&)token=([^&]+)/);
  if (m) {
    sessionStorage.setItem("kkt-admin-token", decodeURIComponent(m[1]));
    history.replaceState(null, "", location.pathname + location.search);
  }
})();

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
