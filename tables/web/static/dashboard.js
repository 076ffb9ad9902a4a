// The live dashboard: polls the worker's JSON API and redraws (panels.js draws the rest).
"use strict";

const POLL_MS = 2000;
const SLOW_POLL_MS = 10000;
const TOP_LIMIT = 10;
const state = { metric: "views", window: "open", lastSlow: 0 };

function fmtIn(iso) {
  const minutes = Math.max(0, Math.round((Date.parse(iso) - Date.now()) / 60000));
  const hours = Math.floor(minutes / 60);
  return hours ? `in ${hours} h ${minutes % 60} min` : `in ${minutes} min`;
}

function bar(kind, value, max) {
  const width = max > 0 ? Math.max(2, Math.round((value / max) * 140)) : 2;
  const fill = el("span", { class: "fill" });
  fill.style.width = width + "px";
  return el("div", { class: "bar " + kind }, fill, el("span", { class: "value" }, fmtNumber(value)));
}

function drawStatus(status) {
  $("events-per-second").textContent = fmtNumber(status.events_per_second);
  $("workers").textContent =
    `${status.workers} worker${status.workers === 1 ? "" : "s"}` + (status.partial ? " (some not answering)" : "");
  const lag = status.consumer_lag;
  if (lag) {
    const total = Object.values(lag).reduce((a, b) => a + b, 0);
    $("lag-total").textContent = fmtNumber(total);
    $("lag-detail").textContent = Object.entries(lag).map(([k, v]) => `${k} ${fmtNumber(v)}`).join(" · ");
  } else {
    $("lag-total").textContent = "–";
    $("lag-detail").textContent = status.broker_reachable === false ? "broker unreachable" : "checking…";
  }
  $("next-report").textContent = status.next_report_local.slice(11, 16) + " " + status.report_timezone;
  $("next-report-detail").textContent = `${status.next_report_at.slice(0, 10)} · ${fmtIn(status.next_report_at)}`;
  const t = status.thresholds;
  $("rule").textContent =
    `A ${t.window_seconds / 60}-minute window alerts when views > ${t.views_above} ` +
    `and purchases < ${t.purchases_below} (windows every ${t.step_seconds} s).`;
}

function drawTop(top) {
  const body = $("top-products").querySelector("tbody");
  body.replaceChildren();
  const open = top.window === "open";
  $("window-title").textContent = open ? "Open window (still counting)" : "Latest complete window";
  $("window").textContent = top.window_start ? `${fmtTime(top.window_start)}–${fmtTime(top.window_end)} UTC` : "–";
  $("watermark").textContent = top.watermark ? `watermark ${fmtStamp(top.watermark)}` : "";
  const maxViews = Math.max(0, ...top.products.map((p) => p.views));
  const maxPurchases = Math.max(0, ...top.products.map((p) => p.purchases));
  for (const p of top.products) {
    body.append(
      el("tr", { "data-product-id": p.product_id },
        el("td", { class: "rank" }, p.rank),
        el("td", { class: "product" }, productLink(p.product_id)),
        el("td", {}, bar("views", p.views, maxViews)),
        el("td", {}, bar("purchases", p.purchases, maxPurchases)),
        el("td", { class: "num" }, fmtNumber(p.add_to_cart))));
  }
  $("top-empty").hidden = top.products.length > 0;
  if (!top.window_start) {
    $("top-empty").textContent = "No events have been counted yet (no watermark: nothing has arrived).";
  } else if (open) {
    $("top-empty").textContent = "No product has any in the open window yet.";
  } else {
    $("top-empty").textContent = "No product has any in the latest complete window.";
  }
}

function setPill(stateName, text) {
  const pill = $("status-pill");
  pill.dataset.state = stateName;
  pill.textContent = text;
}

async function refresh() {
  const tasks = [
    getJson("/api/status").then(drawStatus),
    getJson(`/api/top?metric=${state.metric}&limit=${TOP_LIMIT}&window=${state.window}`).then(drawTop),
    getJson("/api/pipeline").then(drawPipeline),
    refreshAlertPanel(),
  ];
  if (Date.now() - state.lastSlow > SLOW_POLL_MS) {
    state.lastSlow = Date.now();
    tasks.push(getJson("/api/shop/series").then(drawShop), getJson("/api/reports").then(drawReports));
  }
  const results = await Promise.allSettled(tasks);
  const failed = results.filter((r) => r.status === "rejected").map((r) => r.reason);
  if (failed.some((e) => e instanceof HttpError && e.status === 401)) {
    $("token-form").hidden = false;
    setPill("error", "token needed");
  } else if (failed.length === 0) {
    setPill("live", "live");
  } else if (failed.every((e) => e instanceof HttpError && e.status === 503)) {
    setPill("waiting", "waiting: " + failed[0].message);
  } else {
    setPill("error", "error: " + failed[0].message);
  }
  $("updated").textContent = "updated " + new Date().toISOString().slice(11, 19) + " UTC";
}

async function loop() {
  try {
    await refresh();
  } finally {
    setTimeout(loop, POLL_MS);
  }
}

function segmented(groupId, key) {
  for (const button of document.querySelectorAll(`#${groupId} button`)) {
    button.addEventListener("click", () => {
      state[key] = button.dataset[key];
      for (const b of document.querySelectorAll(`#${groupId} button`)) {
        b.setAttribute("aria-pressed", String(b === button));
      }
      refresh();
    });
  }
}

function init() {
  readToken();
  segmented("metric-buttons", "metric");
  segmented("window-buttons", "window");
  $("per-window-toggle").addEventListener("change", () => {
    panels.perWindow = $("per-window-toggle").checked;
    refresh();
  });
  $("token-form").addEventListener("submit", (event) => {
    event.preventDefault();
    sessionStorage.setItem("clickstream-token", $("token-input").value.trim());
    auth.token = sessionStorage.getItem("clickstream-token");
    $("token-form").hidden = true;
    state.lastSlow = 0;
    refresh();
  });
  loop();
}

document.addEventListener("DOMContentLoaded", init);
