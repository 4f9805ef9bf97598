// The window's words, in Russian and English: ui/locales/{ru,en}.json, loaded once; `t(key, vars)`
// fills `{name}` placeholders. Elements with `data-i18n` are translated by `applyLanguage()`,
// and every module that draws text registers a redraw with `onLanguage`.

const table = {};
const redraws = [];
export let lang = localStorage.getItem("kkt-lang") || "ru";

export async function load() {
  const [ru, en] = await Promise.all(
    ["ru", "en"].map((l) => fetch(`/ui/locales/${l}.json`, { cache: "no-cache" }).then((r) => r.json())),
  );
  table.ru = ru;
  table.en = en;
}

export const has = (key) => Boolean(table[lang] && key in table[lang]);
export const t = (key, vars = {}) =>
  ((table[lang] && table[lang][key]) || key).replace(/\{(\w+)\}/g, (_, k) => vars[k] ?? "");
export const locale = () => (lang === "ru" ? "ru-RU" : "en-GB");

/** Runs `redraw` whenever the language changes. */
export function onLanguage(redraw) {
  redraws.push(redraw);
}

export function applyLanguage() {
  document.documentElement.lang = lang;
  document.querySelectorAll("[data-i18n]").forEach((el) => { el.textContent = t(el.dataset.i18n); });
  const button = document.getElementById("lang");
  button.textContent = lang === "ru" ? "English" : "Русский";
  button.lang = lang === "ru" ? "en" : "ru";
  redraws.forEach((r) => r());
}

export function switchLanguage() {
  lang = lang === "ru" ? "en" : "ru";
  localStorage.setItem("kkt-lang", lang);
  applyLanguage();
}
