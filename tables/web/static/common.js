// Shared by the dashboard and the product page: the token, JSON calls, formatting, elements.
"use strict";

const $ = (id) => document.getElementById(id);
const auth = { token: null };

function readToken() {
  const params = new URLSearchParams(window.location.search);
  const given = params.get("token");
  if (given) {
    sessionStorage.setItem("clickstream-token", given);
    params.delete("token");
    const rest = params.toString();
    history.replaceState(null, "", window.location.pathname + (rest ? "?" + rest : ""));
  }
  auth.token = sessionStorage.getItem("clickstream-token");
}

class HttpError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

// Every data call goes through here, so it carries the token whenever one is set.
async function getJson(path) {
  const headers = auth.token ? { Authorization: "Bearer " + auth.token } : {};
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

// A read-only file behind the token (a daily report): fetched with it, opened as a blob.
async function openWithToken(path) {
  const headers = auth.token ? { Authorization: "Bearer " + auth.token } : {};
  const response = await fetch(path, { headers, cache: "no-store" });
  const blob = new Blob([await response.arrayBuffer()], { type: "text/html" });
  window.open(URL.createObjectURL(blob), "_blank", "noopener");
}

const fmtTime = (iso) => (iso ? iso.slice(11, 16) : "–");
const fmtStamp = (iso) => (iso ? iso.replace("T", " ").slice(0, 19) + " UTC" : "–");
const fmtNumber = (value) => Number(value).toLocaleString("en-US", { maximumFractionDigits: 1 });
const epochSeconds = (iso) => Date.parse(iso) / 1000;

function fmtDuration(seconds) {
  const minutes = Math.floor(seconds / 60);
  if (minutes < 1) return `${Math.round(seconds)} s`;
  const hours = Math.floor(minutes / 60);
  return hours ? `${hours} h ${minutes % 60} min` : `${minutes} min`;
}

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (key === "class") node.className = value;
    else if (key.startsWith("data-") || key.startsWith("aria-")) node.setAttribute(key, value);
    else node[key] = value;
  }
  for (const child of children) {
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

function productLink(productId) {
  return el("a", { class: "product-link", href: "/products/" + encodeURIComponent(productId) },
    el("code", {}, productId));
}
