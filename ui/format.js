// Small shared helpers: elements, text that changes only when it must, times, money, table cells.
import { t, locale } from "./i18n.js";

export const $ = (id) => document.getElementById(id);

export function setText(el, text) {
  if (el.textContent !== String(text)) el.textContent = String(text);
}

export function human(seconds) {
  if (seconds == null) return "–";
  const s = Math.max(0, Math.floor(seconds));
  if (s < 60) return `${s} ${t("s")}`;
  const d = Math.floor(s / 86400), h = Math.floor((s % 86400) / 3600), m = Math.floor((s % 3600) / 60);
  if (d) return `${d} ${t("d")} ${h} ${t("h")}`;
  if (h) return `${h} ${t("h")} ${m} ${t("m")}`;
  return `${m} ${t("m")}`;
}

export function since(iso) {
  if (!iso) return t("none");
  const secs = (Date.now() - Date.parse(iso)) / 1000;
  return secs < 5 ? t("just") : `${human(secs)} ${t("ago")}`;
}

export const rub = (x) => `${Number(x).toFixed(2)} ₽`;
export const when = (iso) => (iso ? new Date(iso).toLocaleString(locale()) : "–");
export const fdn = (n) => (n == null ? "–" : n);

// "наличными 100.00 ₽, безналичными 22.00 ₽ · НДС 22% 18.03 ₽"
export function moneyLine(payments, vat) {
  const paid = (payments || []).map((p) => `${t(p.type)} ${Number(p.amount).toFixed(2)} ₽`).join(", ");
  const taxes = (vat || []).filter((v) => v.vat !== "none").map((v) => `${v.vat.replace("vat", "").replace("_", "/")}% ${Number(v.amount).toFixed(2)} ₽`);
  return taxes.length ? `${paid} · ${t("vat")} ${taxes.join(", ")}` : paid;
}

export function cell(tr, content) {
  const td = document.createElement("td");
  if (content instanceof Node) td.appendChild(content); else td.textContent = content;
  tr.appendChild(td);
  return td;
}

/** The result line of the last action, announced to screen readers. */
export function showResult(text, kind) {
  const el = $("action-result");
  el.textContent = text;
  el.className = `result ${kind}`;
}
