// Charts drawn as SVG by the dashboard itself: clicks per day as bars, and the top values
// of a breakdown as a ranked list with proportional bars. Colours come from the style
// sheet, so they follow the light or dark theme.

import { h } from "./ui.js";

const SVG = "http://www.w3.org/2000/svg";
const WIDTH = 720;
const HEIGHT = 200;
const PAD_LEFT = 36;
const PAD_BOTTOM = 22;

function s(tag, attrs = {}, ...children) {
  const el = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, String(v));
  for (const c of children) el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return el;
}

function shortDate(day) {
  const [y, m, d] = day.split("-").map(Number);
  return new Date(y, m - 1, d).toLocaleDateString(undefined, { month: "short", day: "numeric" });
}

/** Clicks per day: `days` is the API's `clicks_by_day` (every day, zeros included). */
export function dayChart(days, label) {
  const max = Math.max(1, ...days.map((d) => d.clicks));
  const total = days.reduce((n, d) => n + d.clicks, 0);
  const plotW = WIDTH - PAD_LEFT;
  const plotH = HEIGHT - PAD_BOTTOM - 8;
  const step = plotW / Math.max(1, days.length);
  const gap = step > 6 ? Math.min(4, step * 0.2) : 0;
  const svg = s("svg", {
    viewBox: `0 0 ${WIDTH} ${HEIGHT}`,
    class: "chart",
    role: "img",
    "aria-label": `${label}: ${total} clicks in all, at most ${max === 1 && total === 0 ? 0 : max} on one day.`,
  });
  // Whole numbers only: a middle line when there is a whole number to put there.
  const marks = max >= 4 ? [0, Math.round(max / 2), max] : [0, max];
  for (const mark of marks) {
    const y = 8 + plotH * (1 - mark / max);
    svg.append(s("line", { x1: PAD_LEFT, x2: WIDTH, y1: y, y2: y, class: "grid-line" }));
    svg.append(s("text", { x: PAD_LEFT - 6, y: y + 4, "text-anchor": "end", class: "axis" }, String(mark)));
  }
  days.forEach((d, i) => {
    const bh = (d.clicks / max) * plotH;
    const x = PAD_LEFT + i * step + gap / 2;
    const bar = s("rect", { x, y: 8 + plotH - bh, width: Math.max(1, step - gap), height: Math.max(d.clicks ? 2 : 0, bh), class: "bar" });
    bar.append(s("title", {}, `${shortDate(d.date)}: ${d.clicks} ${d.clicks === 1 ? "click" : "clicks"}`));
    svg.append(bar);
  });
  const ticks = days.length <= 7 ? days.map((_, i) => i) : [0, Math.floor(days.length / 2), days.length - 1];
  for (const i of ticks) {
    const x = PAD_LEFT + i * step + step / 2;
    const anchor = i === 0 ? "start" : i === days.length - 1 ? "end" : "middle";
    svg.append(s("text", { x: anchor === "start" ? PAD_LEFT : anchor === "end" ? WIDTH : x, y: HEIGHT - 4, "text-anchor": anchor, class: "axis" }, shortDate(days[i].date)));
  }
  const table = h(
    "details",
    { class: "chart-table" },
    h("summary", {}, "Show the numbers"),
    h(
      "table",
      {},
      h("thead", {}, h("tr", {}, h("th", { scope: "col" }, "Day"), h("th", { scope: "col" }, "Clicks"))),
      h("tbody", {}, days.map((d) => h("tr", {}, h("td", {}, shortDate(d.date)), h("td", {}, String(d.clicks))))),
    ),
  );
  return h("figure", { class: "day-chart" }, h("figcaption", {}, label), svg, table);
}

/** The top values of a breakdown (`[{value, count}]`) with bars relative to the first. */
export function breakdown(title, items) {
  const max = Math.max(1, ...items.map((i) => i.count));
  return h(
    "div",
    { class: "breakdown" },
    h("h3", {}, title),
    items.length
      ? h(
          "ol",
          {},
          items.map((i) => {
            const bar = h("span", { class: "meter" });
            bar.style.width = `${Math.max(2, (i.count / max) * 100)}%`;
            return h("li", {}, h("span", { class: "value" }, i.value), h("span", { class: "count" }, String(i.count)), h("span", { class: "track", "aria-hidden": "true" }, bar));
          }),
        )
      : h("p", { class: "hint" }, "No clicks in this period."),
  );
}
