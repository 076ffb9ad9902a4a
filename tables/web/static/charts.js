// Charts: uPlot when its file loaded, otherwise a note (the tables beside them still show).
// Sparklines are plain SVG and need no library.
"use strict";

const COLORS = { views: "#3b6fd8", add_to_cart: "#c98a00", purchases: "#1f9d6a", alert: "#d2452f" };
const charts = {};

function chartsAvailable() {
  return typeof window.uPlot === "function";
}

// One time-series chart in `holder`, redrawn in place. `series`: [{label, color, dash, points}].
function timeChart(holder, key, xs, ys, series, yLabel, options) {
  if (!chartsAvailable()) {
    holder.replaceChildren(el("p", { class: "empty" }, "Charts are unavailable (the chart library did not load); the numbers are in the tables."));
    return null;
  }
  const data = [xs, ...ys];
  const old = charts[key];
  if (old && old.series.length === series.length + 1) {
    old.setData(data);
    return old;
  }
  if (old) old.destroy();
  holder.replaceChildren();
  const opts = {
    width: Math.max(320, holder.clientWidth || 640),
    height: (options && options.height) || 220,
    tzDate: (ts) => uPlot.tzDate(new Date(ts * 1000), "Etc/UTC"),
    scales: { x: { time: true } },
    axes: [
      { label: "event time (UTC)", stroke: "#6b7384",
        values: (u, splits) => splits.map((t) => new Date(t * 1000).toISOString().slice(11, 16)) },
      { label: yLabel, stroke: "#6b7384", size: 60 },
    ],
    series: [{ label: "time (UTC)" }, ...series.map((s) => ({
      label: s.label,
      stroke: s.color,
      width: s.points ? 0 : 2,
      dash: s.dash,
      paths: s.points ? () => null : undefined,
      points: s.points ? { show: true, size: 10, fill: s.color, stroke: s.color } : { show: false },
      spanGaps: !s.points,
    }))],
    hooks: (options && options.hooks) || {},
  };
  charts[key] = new uPlot(opts, data, holder);
  return charts[key];
}

function sparkline(values, label) {
  const width = 120, height = 28;
  const ns = "http://www.w3.org/2000/svg";
  const svg = document.createElementNS(ns, "svg");
  svg.setAttribute("width", width);
  svg.setAttribute("height", height);
  svg.setAttribute("class", "sparkline");
  svg.setAttribute("role", "img");
  svg.setAttribute("aria-label", label);
  svg.dataset.values = values.join(",");
  const max = Math.max(1, ...values);
  const step = values.length > 1 ? width / (values.length - 1) : 0;
  const points = values.map((v, i) => `${(i * step).toFixed(1)},${(height - 2 - (v / max) * (height - 4)).toFixed(1)}`);
  const line = document.createElementNS(ns, "polyline");
  line.setAttribute("points", points.join(" "));
  line.setAttribute("fill", "none");
  line.setAttribute("stroke", COLORS.views);
  line.setAttribute("stroke-width", "1.5");
  svg.append(line);
  return svg;
}
