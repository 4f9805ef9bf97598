// The «Маркировка» view (docs/contract.md §12): today's checks of marking codes — allowed,
// refused, unknown — each with its reason in words and where the verdict came from (ГИС МТ
// through ТС ПИоТ, the local module ЛМ ЧЗ offline, the FN). Shown when checks are on.
import { t, locale, onLanguage } from "./i18n.js";
import { $, setText } from "./format.js";
import { getJson, token } from "./api.js";

let last = null;
onLanguage(() => last && render(last));

function render(v) {
  last = v;
  const section = $("marking");
  section.hidden = v.mode === "off" && v.checks.length === 0;
  if (section.hidden) return;
  setText($("marking-counts"), t("mk-counts", v.counts));
  const key = JSON.stringify(v.checks.map((c) => c.check_id));
  const rows = $("marking-rows");
  if (rows.dataset.key === key) return;
  rows.dataset.key = key;
  rows.replaceChildren(...v.checks.slice().reverse().map((c) => {
    const tr = document.createElement("tr");
    tr.dataset.testid = "marking-row";
    tr.className = `mk-${c.verdict}`;
    const source = c.permissive.source === "none" ? (c.fn ? t("mk-src-fn") : "—") : t(`mk-src-${c.permissive.source}`);
    for (const text of [
      new Date(c.checked_at).toLocaleTimeString(locale()), c.code, t(`mk-op-${c.operation}`),
      t(`mk-${c.verdict}`), c.reason, source,
    ]) {
      const td = document.createElement("td");
      td.textContent = text;
      tr.appendChild(td);
    }
    return tr;
  }));
  $("marking-empty").hidden = v.checks.length > 0;
}

async function poll() {
  try {
    if (token()) render(await getJson("/v1/kkt/marking/checks"));
  } catch (e) {
    /* the connection label already says the adapter is unreachable */
  }
}

export function startMarking() {
  (function loop() {
    poll().finally(() => setTimeout(loop, 3000));
  })();
}
