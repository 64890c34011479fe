// wifisess dashboard: plain JavaScript, no build step, no external resources.
// Talks to /api/v1/* and follows /api/v1/stream (server-sent events) for live updates.
"use strict";

const $ = (sel) => document.querySelector(sel);
const TOKEN_KEY = "wifisess.token";
const BASE_FILTERS = ["organization", "group", "device", "ssid", "mac"];
const RANGE_FILTERS = ["start_after", "start_before", "stop_after", "stop_before"];

const state = { view: "now", deviceId: null, histCursor: null, reloadTimer: null, source: null };

// ---- API access -------------------------------------------------------------------------

function token() { return sessionStorage.getItem(TOKEN_KEY) || ""; }

function askToken() {
  return new Promise((resolve) => {
    const dlg = $("#token-dialog");
    const form = $("#token-form");
    form.onsubmit = () => {
      sessionStorage.setItem(TOKEN_KEY, $("#token-input").value.trim());
      resolve();
    };
    if (!dlg.open) dlg.showModal();
  });
}

async function api(path) {
  for (;;) {
    const headers = token() ? { Authorization: "Bearer " + token() } : {};
    const r = await fetch(path, { headers });
    if (r.status === 401) {
      sessionStorage.removeItem(TOKEN_KEY);
      await askToken();
      connectStream();
      continue;
    }
    const body = await r.json().catch(() => ({ error: r.statusText }));
    if (!r.ok) throw new Error(body.error || ("HTTP " + r.status));
    return body;
  }
}

function query(params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) {
    if (Array.isArray(v)) v.forEach((x) => q.append(k, x));
    else if (v !== undefined && v !== null && v !== "") q.append(k, v);
  }
  const s = q.toString();
  return s ? "?" + s : "";
}

function filters(withRanges) {
  const f = {};
  const form = $("#filters");
  for (const k of BASE_FILTERS.concat(withRanges ? RANGE_FILTERS : [])) {
    const v = form.elements[k].value.trim();
    if (v) f[k] = v;
  }
  return f;
}

// ---- formatting -------------------------------------------------------------------------

function esc(s) {
  return String(s ?? "").replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c]));
}
function when(t) {
  if (!t) return "";
  const d = new Date(t);
  const sameDay = d.toDateString() === new Date().toDateString();
  return sameDay ? d.toLocaleTimeString() : d.toLocaleString();
}
function duration(s) {
  s = Math.max(0, Math.floor(s));
  const d = Math.floor(s / 86400), h = Math.floor((s % 86400) / 3600), m = Math.floor((s % 3600) / 60);
  if (d) return `${d}d ${h}h`;
  if (h) return `${h}h ${m}m`;
  if (m) return `${m}m ${s % 60}s`;
  return `${s}s`;
}
function ago(t) {
  if (!t) return "";
  return duration((Date.now() - new Date(t).getTime()) / 1000) + " ago";
}
function bytes(n) {
  const u = ["B", "kB", "MB", "GB", "TB"];
  let i = 0;
  while (n >= 1000 && i < u.length - 1) { n /= 1000; i++; }
  return (i ? n.toFixed(1) : n) + " " + u[i];
}
function traffic(s) { return `<span class="num">↓ ${bytes(s.tx_bytes)} · ↑ ${bytes(s.rx_bytes)}</span>`; }
function signal(dbm) {
  if (dbm === null || dbm === undefined) return "";
  const q = dbm >= -55 ? "good" : dbm >= -70 ? "fair" : "poor";
  return `<span class="sig ${q}">${dbm} dBm</span>`;
}
function devLink(s) {
  const name = s.device_name || s.device_id;
  return `<a href="#/device/${encodeURIComponent(s.device_id)}">${esc(name)}</a>`;
}
function client(s) {
  const flag = s.dangling ? ' <span class="badge warn" title="open, but no client activity for a while">dangling</span>' : "";
  return `<span class="mono">${esc(s.mac || "unknown")}</span>${flag}`;
}
function liveDuration(s) {
  return s.stop ? duration(s.duration_s) : `<span data-since="${esc(s.start)}">${duration((Date.now() - new Date(s.start)) / 1000)}</span>`;
}
function setRows(table, html, emptyText, cols) {
  $(table + " tbody").innerHTML = html.length ? html.join("") : `<tr class="none"><td colspan="${cols}">${esc(emptyText)}</td></tr>`;
}
function showError(e) {
  const el = $("#error");
  if (e) { el.textContent = String(e.message || e); el.hidden = false; } else { el.hidden = true; }
}

// ---- views ------------------------------------------------------------------------------

async function loadCards() {
  const f = filters(false);
  const st = await api("/api/v1/status" + query({ organization: f.organization, group: f.group }));
  $("#c-open").textContent = st.open_sessions;
  $("#c-online").textContent = `${st.devices_online} / ${st.devices}`;
  $("#c-dangling").textContent = st.dangling_sessions;
  $("#c-updated").textContent = new Date().toLocaleTimeString();
}

async function loadNow() {
  const body = await api("/api/v1/sessions" + query({ ...filters(false), open: "true", limit: 1000 }));
  const rows = body.sessions;
  $("#now-count").textContent = rows.length + (body.next_cursor ? "+" : "");
  setRows("#now-table", rows.map((s) => `<tr data-session-id="${esc(s.id)}" class="${s.dangling ? "dangling" : ""}">
    <td>${client(s)}</td><td>${esc(s.ssid)}</td><td>${devLink(s)}</td>
    <td>${esc(s.organization)}<span class="muted">${s.group ? " / " + esc(s.group) : ""}</span></td>
    <td>${esc(when(s.start))}</td><td>${liveDuration(s)}</td><td>${esc(ago(s.last_activity || s.last_seen))}</td>
    <td>${signal(s.signal_avg)}</td><td>${traffic(s)}</td></tr>`), "Nobody is connected.", 9);
  const per = new Map();
  for (const s of rows) {
    const k = s.device_id;
    const e = per.get(k) || { s, n: 0, dangling: 0 };
    e.n++; if (s.dangling) e.dangling++;
    per.set(k, e);
  }
  const list = [...per.values()].sort((a, b) => b.n - a.n);
  setRows("#per-device", list.map((e) => `<tr data-device-id="${esc(e.s.device_id)}"><td>${devLink(e.s)}</td>
    <td class="num">${e.n}${e.dangling ? ` <span class="badge warn">${e.dangling}</span>` : ""}</td></tr>`), "–", 2);
}

function histRow(s) {
  return `<tr data-session-id="${esc(s.id)}"><td>${client(s)}</td><td>${esc(s.ssid)}</td><td>${devLink(s)}</td>
    <td>${esc(when(s.start))}</td><td>${s.stop ? esc(when(s.stop)) : '<span class="badge ok">open</span>'}</td>
    <td>${liveDuration(s)}</td><td>${esc(s.stop_reason || "")}${s.stop_inferred ? ' <span class="muted">(inferred)</span>' : ""}</td>
    <td>${traffic(s)}</td></tr>`;
}

async function loadHistory(more) {
  const f = filters(true);
  const csv = "/api/v1/sessions" + query({ ...f, format: "csv", access_token: token() || undefined });
  $("#csv").href = csv;
  const body = await api("/api/v1/sessions" + query({ ...f, limit: 100, cursor: more ? state.histCursor : undefined }));
  const html = body.sessions.map(histRow);
  if (more) {
    $("#hist-table tbody").insertAdjacentHTML("beforeend", html.join(""));
  } else {
    setRows("#hist-table", html, "No sessions match.", 8);
  }
  state.histCursor = body.next_cursor;
  $("#hist-more").hidden = !body.next_cursor;
  $("#hist-count").textContent = $("#hist-table tbody").querySelectorAll("tr[data-session-id]").length + (body.next_cursor ? "+" : "");
}

async function loadDevices() {
  const f = filters(false);
  const body = await api("/api/v1/devices" + query({ organization: f.organization, group: f.group, device: f.device }));
  $("#dev-count").textContent = body.devices.length;
  setRows("#dev-table", body.devices.map((d) => `<tr data-device-id="${esc(d.id)}">
    <td><a href="#/device/${encodeURIComponent(d.id)}">${esc(d.name || d.id)}</a> <span class="muted mono">${d.name ? esc(d.id) : ""}</span></td>
    <td>${d.online ? '<span class="badge ok">online</span>' : '<span class="badge off">offline</span>'}</td>
    <td>${esc(d.organization)}</td><td>${esc(d.group)}</td><td class="num">${d.open_sessions}</td>
    <td class="num">${d.dangling_sessions ? `<span class="badge warn">${d.dangling_sessions}</span>` : "0"}</td>
    <td>${esc(ago(d.last_seen))}</td><td class="muted">${esc(d.agent_version)}</td></tr>`), "No devices.", 8);
}

async function loadDevice(id) {
  const body = await api("/api/v1/devices/" + encodeURIComponent(id));
  const d = body.device;
  $("#devpage-title").innerHTML = `${esc(d.name || d.id)} ${d.online ? '<span class="badge ok">online</span>' : '<span class="badge off">offline</span>'}`;
  const facts = [["Id", d.id], ["Organization", d.organization], ["Group", d.group], ["Last seen", d.last_seen ? `${when(d.last_seen)} (${ago(d.last_seen)})` : ""],
    ["Agent", d.agent_version], ["Boot", d.boot_id], ["Sequence gaps", d.seq_gaps]];
  $("#devpage-facts").innerHTML = facts.map(([k, v]) => `<dt>${esc(k)}</dt><dd>${esc(v)}</dd>`).join("");
  $("#devpage-open-count").textContent = body.open_sessions.length;
  setRows("#devpage-open", body.open_sessions.map((s) => `<tr data-session-id="${esc(s.id)}" class="${s.dangling ? "dangling" : ""}">
    <td>${client(s)}</td><td>${esc(s.ssid)}</td><td>${esc(when(s.start))}</td><td>${liveDuration(s)}</td>
    <td>${esc(ago(s.last_activity || s.last_seen))}</td><td>${signal(s.signal_avg)}</td><td>${traffic(s)}</td></tr>`), "Nobody is connected.", 7);
  setRows("#devpage-recent", body.recent_sessions.map((s) => `<tr data-session-id="${esc(s.id)}"><td>${client(s)}</td><td>${esc(s.ssid)}</td>
    <td>${esc(when(s.start))}</td><td>${esc(when(s.stop))}</td><td>${duration(s.duration_s)}</td>
    <td>${esc(s.stop_reason || "")}</td><td>${traffic(s)}</td></tr>`), "No closed sessions yet.", 7);
}

async function reload() {
  try {
    const cards = loadCards();
    if (state.view === "now") await loadNow();
    else if (state.view === "history") await loadHistory(false);
    else if (state.view === "devices") await loadDevices();
    else if (state.view === "device") await loadDevice(state.deviceId);
    await cards;
    showError(null);
    document.body.dataset.loaded = String(Date.now());
  } catch (e) {
    showError(e);
  }
}

function scheduleReload() {
  clearTimeout(state.reloadTimer);
  state.reloadTimer = setTimeout(reload, 250);
}

function route() {
  const h = location.hash.replace(/^#\/?/, "");
  const [view, arg] = h.split("/");
  state.view = ["now", "history", "devices", "device"].includes(view) ? view : "now";
  state.deviceId = arg ? decodeURIComponent(arg) : null;
  for (const v of ["now", "history", "devices", "device"]) $("#view-" + v).hidden = v !== state.view;
  document.querySelectorAll("nav a").forEach((a) => a.classList.toggle("active", a.dataset.view === state.view));
  document.querySelectorAll(".hist").forEach((e) => (e.hidden = state.view !== "history"));
  $("#filters").hidden = state.view === "device";
  reload();
}

// ---- live updates -----------------------------------------------------------------------

function setLive(ok, text) {
  $("#live").classList.toggle("on", ok);
  $("#live-text").textContent = text;
}

function connectStream() {
  if (state.source) state.source.close();
  const src = new EventSource("/api/v1/stream" + query({ access_token: token() || undefined }));
  state.source = src;
  src.addEventListener("hello", () => setLive(true, "live"));
  src.addEventListener("change", () => { setLive(true, "live"); scheduleReload(); });
  // The server ended a stream that fell behind: EventSource reconnects by itself; reload
  // everything, since changes were missed.
  src.addEventListener("overflow", scheduleReload);
  src.onerror = () => setLive(false, "reconnecting…");
}

setInterval(() => {
  document.querySelectorAll("[data-since]").forEach((el) => {
    el.textContent = duration((Date.now() - new Date(el.dataset.since)) / 1000);
  });
}, 1000);

$("#filters").addEventListener("submit", (e) => { e.preventDefault(); reload(); });
$("#filters").addEventListener("change", () => reload());
$("#clear").addEventListener("click", () => { $("#filters").reset(); reload(); });
$("#hist-more").addEventListener("click", () => loadHistory(true).catch(showError));
window.addEventListener("hashchange", route);

(async () => {
  // Ask for a token first if the API wants one, so the stream connects with it.
  try { await api("/api/v1/status"); } catch (e) { showError(e); }
  connectStream();
  route();
})();
