// The product page: one call to /api/products/{id}/series, drawn as two charts and tables.
"use strict";

const POLL_MS = 5000;
const productId = decodeURIComponent(window.location.pathname.split("/")[2] || "");

function drawBuckets(s) {
  const b = s.buckets;
  $("bucket-note").textContent = `counted events per ${s.bucket_seconds} s, event time`;
  $("buckets-empty").hidden = b.length > 0;
  $("buckets-empty").textContent = `No events for this product in the stored history (about the last hour of event time).`;
  if (!b.length) return;
  timeChart($("bucket-chart"), "buckets", b.map((x) => epochSeconds(x.start)),
    [b.map((x) => x.views), b.map((x) => x.add_to_cart), b.map((x) => x.purchases)],
    [{ label: "views", color: COLORS.views }, { label: "add to cart", color: COLORS.add_to_cart },
     { label: "purchases", color: COLORS.purchases }],
    `events per ${s.bucket_seconds} s`);
}

function drawWindows(s) {
  const w = s.windows;
  $("rule").textContent = `alerts when views > ${s.views_threshold} and purchases < ${s.purchases_threshold} in a ${s.window_seconds / 60}-minute window`;
  const body = $("windows").querySelector("tbody");
  body.replaceChildren();
  for (const x of [...w].reverse()) {
    const a = x.alerted;
    const alerted = a ? (a.views === null ? "yes (counts no longer held)" : `yes: ${a.views} views, ${a.purchases} purchases at ${fmtStamp(a.detected_at)}`) : "no";
    body.append(el("tr", { class: a ? "alerted" : "", "data-window-start": x.window_start, "data-alerted": a ? "true" : "false" },
      el("td", {}, `${fmtTime(x.window_start)}–${fmtTime(x.window_end)}`), el("td", { class: "num" }, fmtNumber(x.views)),
      el("td", { class: "num" }, fmtNumber(x.add_to_cart)), el("td", { class: "num" }, fmtNumber(x.purchases)),
      el("td", {}, x.qualifies_now ? "yes" : "no"), el("td", {}, alerted)));
  }
  $("windows-empty").hidden = w.length > 0;
  $("windows-empty").textContent = "No live window of this product holds events (windows expire an hour after they close).";
  if (!w.length) return;
  const xs = w.map((x) => epochSeconds(x.window_start));
  timeChart($("window-chart"), "windows", xs,
    [w.map((x) => x.views), w.map((x) => x.purchases), w.map(() => s.views_threshold), w.map(() => s.purchases_threshold),
     w.map((x) => (x.alerted ? (x.alerted.views === null ? x.views : x.alerted.views) : null))],
    [{ label: "views", color: COLORS.views }, { label: "purchases", color: COLORS.purchases },
     { label: `views threshold (${s.views_threshold})`, color: COLORS.views, dash: [6, 4] },
     { label: `purchases threshold (${s.purchases_threshold})`, color: COLORS.purchases, dash: [6, 4] },
     { label: "alerted window (views at alert)", color: COLORS.alert, points: true }],
    "events per window", { height: 260 });
}

function drawHistory(s) {
  const incidents = s.incidents.map((i) => el("li", { class: "incident", "data-incident-id": i.incident_id, "data-status": i.status },
    el("div", { class: "what" }, `incident ${i.status} · peak ${fmtNumber(i.peak_views)} views against ${fmtNumber(i.purchases)} purchases`),
    el("div", { class: "when" }, `opened ${fmtStamp(i.opened_at)} · ${i.windows} windows ${fmtTime(i.first_window_start)}–${fmtTime(i.latest_window_end)} UTC` +
      (i.resolved_at ? ` · resolved ${fmtStamp(i.resolved_at)} (${i.resolution})` : ""))));
  const alerts = s.alerts.map((a) => el("li", { "data-alert-id": a.alert_id },
    el("div", { class: "what" }, `alert · ${fmtNumber(a.views)} views, ${fmtNumber(a.purchases)} purchases`),
    el("div", { class: "when" }, `window ${fmtTime(a.window_start)}–${fmtTime(a.window_end)} UTC · detected ${fmtStamp(a.detected_at)}`)));
  $("product-incidents").replaceChildren(...incidents);
  $("product-alerts").replaceChildren(...alerts);
  $("product-alerts-empty").hidden = incidents.length + alerts.length > 0;
}

async function refresh() {
  const pill = $("status-pill");
  try {
    const s = await getJson("/api/products/" + encodeURIComponent(productId) + "/series");
    $("page-error").hidden = true;
    drawWindows(s);
    drawHistory(s);
    drawBuckets(s);
    pill.dataset.state = "live";
    pill.textContent = "live";
  } catch (e) {
    $("page-error").hidden = false;
    $("page-error").textContent = e instanceof HttpError && e.status === 404
      ? `No events for this product in the last hour, and no alert: ${e.message}.`
      : `The worker did not answer: ${e.message}`;
    pill.dataset.state = e instanceof HttpError && e.status === 404 ? "waiting" : "error";
    pill.textContent = e instanceof HttpError && e.status === 401 ? "token needed (open the dashboard with ?token=)" : "no data";
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

document.addEventListener("DOMContentLoaded", () => {
  readToken();
  $("product-id").textContent = productId;
  document.title = "Clickstream · " + productId;
  loop();
});
