// The live dashboard: polls the worker's JSON API every two seconds and redraws.
"use strict";

const POLL_MS = 2000;
const TOP_LIMIT = 10;
const ALERT_LIMIT = 100;
const state = { metric: "views", token: null, seenAlerts: new Set(), firstAlertDraw: true };

const $ = (id) => document.getElementById(id);

function readToken() {
  const params = new URLSearchParams(window.location.search);
  const given = params.get("token");
  if (given) {
    sessionStorage.setItem("clickstream-token", given);
    params.delete("token");
    const rest = params.toString();
    history.replaceState(null, "", window.location.pathname + (rest ? "?" + rest : ""));
  }
  state.token = sessionStorage.getItem("clickstream-token");
}

class HttpError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

async function getJson(path) {
  const headers = state.token ? { Authorization: "Bearer " + state.token } : {};
  const response = await fetch(path, { headers, cache: "no-store" });
  let body = null;
  try {
    body = await response.json();
  } catch (_) {
    body = null;
  }
  if (!response.ok) {
    throw new HttpError(response.status, (body && body.error) || response.statusText);
  }
  return body;
}

function fmtTime(iso) {
  if (!iso) return "–";
  return iso.slice(11, 16);
}

function fmtNumber(value) {
  return Number(value).toLocaleString("en-US", { maximumFractionDigits: 1 });
}

function fmtIn(iso) {
  const minutes = Math.max(0, Math.round((Date.parse(iso) - Date.now()) / 60000));
  const hours = Math.floor(minutes / 60);
  return hours ? `in ${hours} h ${minutes % 60} min` : `in ${minutes} min`;
}

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (key === "class") node.className = value;
    else if (key.startsWith("data-")) node.setAttribute(key, value);
    else node[key] = value;
  }
  for (const child of children) {
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
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
  $("window").textContent = top.window_start ? `${fmtTime(top.window_start)}–${fmtTime(top.window_end)} UTC` : "–";
  $("watermark").textContent = top.watermark ? `watermark ${top.watermark.replace("T", " ").slice(0, 19)} UTC` : "";
  const maxViews = Math.max(0, ...top.products.map((p) => p.views));
  const maxPurchases = Math.max(0, ...top.products.map((p) => p.purchases));
  for (const p of top.products) {
    body.append(
      el("tr", { "data-product-id": p.product_id },
        el("td", { class: "rank" }, p.rank),
        el("td", { class: "product" }, p.product_id),
        el("td", {}, bar("views", p.views, maxViews)),
        el("td", {}, bar("purchases", p.purchases, maxPurchases)),
        el("td", { class: "num" }, fmtNumber(p.add_to_cart))));
  }
  $("top-empty").hidden = top.products.length > 0;
  $("top-empty").textContent = top.window_start ? "No product has any in this window." : "No window has closed yet.";
}

function drawAlerts(feed) {
  const list = $("alert-feed");
  list.replaceChildren();
  for (const a of feed.alerts) {
    const fresh = !state.firstAlertDraw && !state.seenAlerts.has(a.alert_id);
    state.seenAlerts.add(a.alert_id);
    list.append(
      el("li", { class: fresh ? "new" : "", "data-alert-id": a.alert_id, "data-product-id": a.product_id },
        el("div", { class: "what" }, el("code", {}, a.product_id),
          ` · ${fmtNumber(a.views)} views, ${fmtNumber(a.purchases)} purchases`),
        el("div", { class: "when" },
          `window ${fmtTime(a.window_start)}–${fmtTime(a.window_end)} UTC · detected ${a.detected_at.replace("T", " ").slice(0, 19)} UTC`)));
  }
  state.firstAlertDraw = false;
  $("alerts-empty").hidden = feed.alerts.length > 0;
  $("alert-count").textContent = feed.count ? `${feed.count} newest` : "";
}

function setPill(stateName, text) {
  const pill = $("status-pill");
  pill.dataset.state = stateName;
  pill.textContent = text;
}

async function refresh() {
  const tasks = [
    getJson("/api/status").then(drawStatus),
    getJson(`/api/top?metric=${state.metric}&limit=${TOP_LIMIT}`).then(drawTop),
    getJson(`/api/alerts?limit=${ALERT_LIMIT}`).then(drawAlerts),
  ];
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

function init() {
  readToken();
  for (const button of document.querySelectorAll("#metric-buttons button")) {
    button.addEventListener("click", () => {
      state.metric = button.dataset.metric;
      for (const b of document.querySelectorAll("#metric-buttons button")) {
        b.setAttribute("aria-pressed", String(b === button));
      }
      refresh();
    });
  }
  $("token-form").addEventListener("submit", (event) => {
    event.preventDefault();
    sessionStorage.setItem("clickstream-token", $("token-input").value.trim());
    state.token = sessionStorage.getItem("clickstream-token");
    $("token-form").hidden = true;
    refresh();
  });
  loop();
}

document.addEventListener("DOMContentLoaded", init);
