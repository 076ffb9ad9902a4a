// Dashboard panels besides the top products: pipeline strip, shop chart, incidents, reports.
"use strict";

const INCIDENT_LIMIT = 20;
const ALERT_LIMIT = 100;
const SPARK_FRESH_MS = 10000;
const panels = { perWindow: false, incidents: [], seenAlerts: new Set(), firstAlertDraw: true, sparks: {} };
const STAGE_NAMES = { ingest: "Ingest", windows: "Windows", alert_sink: "Alert sink", parquet_sink: "Parquet sink" };

function drawPipeline(pipeline) {
  const strip = $("pipeline-strip");
  strip.replaceChildren();
  for (const s of pipeline.stages) {
    const facts = [el("div", {}, "lag " + (s.lag === null ? "unknown" : fmtNumber(s.lag) + " records"))];
    if (s.events_per_second !== null) facts.push(el("div", {}, `${fmtNumber(s.events_per_second)} events/s`));
    if (s.dead_letters_last_hour) {
      const d = s.dead_letters_last_hour;
      const reasons = Object.entries(d.by_reason).map(([r, n]) => `${r} ${n}`).join(", ");
      facts.push(el("div", { class: "dead-letters", "data-total": d.total },
        `dead letters, last hour: ${d.total}` + (reasons ? ` (${reasons})` : "")));
      if (d.newest) facts.push(el("div", { class: "muted newest-dead-letter" }, `newest: ${d.newest.reason} at ${fmtStamp(d.newest.at)}`));
    }
    if (s.late_events !== undefined) facts.push(el("div", { class: "late-events" }, `late events: ${fmtNumber(s.late_events)} (this worker, since start)`));
    if (s.last_durable_write !== undefined) {
      facts.push(el("div", {}, "last durable write: " + (s.last_durable_write ? fmtStamp(s.last_durable_write) : "none since start")));
    }
    strip.append(el("div", { class: "stage", "data-stage": s.stage, "data-status": s.status },
      el("div", { class: "stage-head" }, STAGE_NAMES[s.stage] || s.stage, el("span", { class: "pill", "data-state": s.status }, s.status)),
      ...facts));
  }
  $("pipeline-empty").hidden = pipeline.stages.length > 0;
  $("pipeline-checked").textContent = "checked " + fmtStamp(pipeline.checked_at);
}

function incidentBands(u) {
  const ctx = u.ctx;
  ctx.save();
  ctx.fillStyle = "rgba(210, 69, 47, 0.12)";
  for (const i of panels.incidents) {
    const x0 = u.valToPos(epochSeconds(i.first_window_start), "x", true);
    const x1 = u.valToPos(epochSeconds(i.latest_window_end), "x", true);
    const left = Math.max(u.bbox.left, x0), right = Math.min(u.bbox.left + u.bbox.width, x1);
    if (right > left) ctx.fillRect(left, u.bbox.top, right - left, u.bbox.height);
  }
  ctx.restore();
}

function drawShop(shop) {
  const b = shop.buckets;
  $("shop-empty").hidden = b.length > 0;
  const holder = $("shop-chart");
  holder.dataset.points = String(b.filter((x) => x.views + x.add_to_cart + x.purchases > 0).length);
  if (!b.length) return;
  const xs = b.map((x) => epochSeconds(x.start));
  timeChart(holder, "shop", xs, [b.map((x) => x.views), b.map((x) => x.add_to_cart), b.map((x) => x.purchases)],
    [{ label: "views", color: COLORS.views }, { label: "add to cart", color: COLORS.add_to_cart },
     { label: "purchases", color: COLORS.purchases }],
    `events per ${shop.bucket_seconds} s`, { hooks: { draw: [incidentBands] } });
}

async function sparkValues(productId) {
  const known = panels.sparks[productId];
  if (known && Date.now() - known.at < SPARK_FRESH_MS) return known.values;
  try {
    const series = await getJson("/api/products/" + encodeURIComponent(productId) + "/series");
    panels.sparks[productId] = { at: Date.now(), values: series.buckets.map((b) => b.views) };
  } catch (e) {
    if (!(e instanceof HttpError && e.status === 404)) throw e;
    panels.sparks[productId] = { at: Date.now(), values: [] };
  }
  return panels.sparks[productId].values;
}

async function drawIncidents(feed) {
  panels.incidents = feed.incidents;
  const items = [];
  for (const i of feed.incidents) {
    const values = await sparkValues(i.product_id);
    const spark = values.length ? sparkline(values, `${i.product_id}: views per minute`)
      : el("span", { class: "muted" }, "no events held");
    items.push(el("li", { class: "incident", "data-incident-id": i.incident_id, "data-product-id": i.product_id, "data-status": i.status },
      el("div", { class: "what" }, productLink(i.product_id),
        el("span", { class: "pill", "data-state": i.status === "open" ? "error" : "live" }, i.status),
        ` · peak ${fmtNumber(i.peak_views)} views against ${fmtNumber(i.purchases)} purchases`),
      el("div", { class: "when" },
        `${i.status === "open" ? "open for" : "lasted"} ${fmtDuration(i.duration_seconds)} · ${i.windows} window${i.windows === 1 ? "" : "s"} ` +
        `${fmtTime(i.first_window_start)}–${fmtTime(i.latest_window_end)} UTC` +
        (i.resolution ? ` · resolved (${i.resolution})` : "")),
      el("div", { class: "spark" }, spark)));
  }
  $("incident-feed").replaceChildren(...items);
  $("incidents-empty").hidden = items.length > 0;
}

function drawAlerts(feed) {
  const list = $("alert-feed");
  list.replaceChildren();
  for (const a of feed.alerts) {
    const fresh = !panels.firstAlertDraw && !panels.seenAlerts.has(a.alert_id);
    panels.seenAlerts.add(a.alert_id);
    list.append(
      el("li", { class: fresh ? "new" : "", "data-alert-id": a.alert_id, "data-product-id": a.product_id },
        el("div", { class: "what" }, productLink(a.product_id),
          ` · ${fmtNumber(a.views)} views, ${fmtNumber(a.purchases)} purchases`),
        el("div", { class: "when" },
          `window ${fmtTime(a.window_start)}–${fmtTime(a.window_end)} UTC · detected ${fmtStamp(a.detected_at)}`)));
  }
  panels.firstAlertDraw = false;
  $("alerts-empty").hidden = !panels.perWindow || feed.alerts.length > 0;
}

async function refreshAlertPanel() {
  const per = panels.perWindow;
  $("alerts-title").textContent = per ? "Flash-sale alerts (per window)" : "Flash-sale incidents";
  $("incident-feed").hidden = per;
  $("alert-feed").hidden = !per;
  if (per) {
    $("incidents-empty").hidden = true;
    drawAlerts(await getJson(`/api/alerts?limit=${ALERT_LIMIT}`));
  } else {
    $("alerts-empty").hidden = true;
    await drawIncidents(await getJson(`/api/incidents?limit=${INCIDENT_LIMIT}`));
  }
}

const STATUS_TEXT = { sent: "sent", partial: "refused for some recipients", failed: "failed", no_data: "no data",
  written: "written, not emailed", pending: "pending" };

function drawReports(reports) {
  const body = $("report-runs").querySelector("tbody");
  body.replaceChildren();
  for (const d of reports.days) {
    const who = [...d.delivered_to, ...d.refused_by.map((a) => a + " (refused)")].join(", ") || "–";
    const link = d.html ? el("a", { href: d.html, class: "report-link" }, "HTML report") : el("span", { class: "muted" }, "–");
    if (d.html) link.addEventListener("click", (e) => { if (auth.token) { e.preventDefault(); openWithToken(d.html); } });
    body.append(el("tr", { "data-day": d.day, "data-status": d.status },
      el("td", {}, d.day), el("td", {}, STATUS_TEXT[d.status] || d.status), el("td", {}, who), el("td", {}, link)));
  }
  $("reports-next").textContent = `next run ${reports.next_report_local.slice(0, 16).replace("T", " ")} ${reports.report_timezone}`;
  const none = reports.days.every((d) => d.status === "pending");
  $("reports-empty").hidden = !none;
  $("reports-empty").textContent = "No report has run in these days (the scheduler, `clickstream scheduler`, writes the run records).";
}
