// The 24-hour chart: bars of receipts taken / delivered / failed per interval, OFD outages shaded
// (from `GET /v1/kkt/activity`), with a summary sentence that doubles as its text alternative.
import { t, onLanguage } from "./i18n.js";
import { $, setText, when } from "./format.js";
import { getJson } from "./api.js";

const SVG = "http://www.w3.org/2000/svg";
function svg(name, attrs, text) {
  const el = document.createElementNS(SVG, name);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, v);
  if (text != null) el.textContent = text;
  return el;
}

let lastActivity = null;
onLanguage(() => lastActivity && drawChart(lastActivity));

export function drawChart(a) {
  lastActivity = a;
  const chart = $("chart");
  const W = 960, H = 180, top = 10, bottom = 22, left = 34;
  const from = Date.parse(a.from), to = Date.parse(a.to), span = to - from;
  const x = (ms) => left + ((ms - from) / span) * (W - left - 4);
  const max = Math.max(1, ...a.intervals.map((i) => Math.max(i.taken, i.delivered, i.failed)));
  const y = (n) => H - bottom - (n / max) * (H - top - bottom);
  const nodes = [];
  // Outages go over the bars, translucent, at least 6 px wide so a short one still shows.
  const outages = a.outages.map((o) => {
    const x0 = x(Date.parse(o.from)), w = Math.max(6, x(Date.parse(o.to)) - x0);
    const r = svg("rect", { x: Math.min(x0, W - 4 - w), y: top, width: w, height: H - top - bottom, class: "outage" });
    r.appendChild(svg("title", {}, `${t("outage")}: ${when(o.from)} – ${o.ongoing ? "…" : when(o.to)}`));
    return r;
  });
  nodes.push(svg("line", { x1: left, x2: W - 4, y1: H - bottom, y2: H - bottom, class: "axis" }));
  nodes.push(svg("text", { x: left - 6, y: top + 8, class: "tick", "text-anchor": "end" }, max));
  nodes.push(svg("text", { x: left - 6, y: H - bottom, class: "tick", "text-anchor": "end" }, 0));
  const slot = (W - left - 4) / a.intervals.length;
  const bw = Math.max(1, (slot - 3) / 3);
  a.intervals.forEach((i, n) => {
    const x0 = left + n * slot + 1.5;
    const g = svg("g", {});
    [["taken", i.taken], ["delivered", i.delivered], ["failed", i.failed]].forEach(([kind, v], k) => {
      if (v > 0) g.appendChild(svg("rect", { x: x0 + k * bw, y: y(v), width: bw, height: H - bottom - y(v), class: kind }));
    });
    g.appendChild(svg("title", {}, t("chart-bar", { from: when(i.start), ...i })));
    nodes.push(g);
    const start = new Date(i.start);
    if (start.getHours() % 3 === 0 && start.getMinutes() === 0) {
      nodes.push(svg("text", { x: x0, y: H - 6, class: "tick" }, `${String(start.getHours()).padStart(2, "0")}:00`));
    }
  });
  chart.replaceChildren(...nodes, ...outages);
  const sum = (k) => a.intervals.reduce((acc, i) => acc + i[k], 0);
  setText($("chart-summary"), t("chart-summary", { taken: sum("taken"), delivered: sum("delivered"), failed: sum("failed"), outages: a.outages.length }));
}

export async function pollChart() {
  try {
    drawChart(await getJson("/v1/kkt/activity?hours=24&interval_minutes=60"));
  } catch (e) {
    /* the connection label already says the adapter is unreachable */
  } finally {
    setTimeout(pollChart, 30000);
  }
}
