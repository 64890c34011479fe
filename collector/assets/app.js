// wifisess dashboard: plain JavaScript, no build step, no external resources (the one library,
// uPlot, is vendored and served by the collector). Talks to /api/v1/* only, and follows
// /api/v1/stream: each `change` event carries the changed session rows, which are merged into
// the tables (throttled, never debounced: a steady stream of changes is applied at least every
// THROTTLE_MS); the view is re-read only when the stream says so (`refetch`, `overflow`) or the
// filters change. Every filter and sort order is in the URL (#/view?param=...).
"use strict";

const $ = (sel, root = document) => root.querySelector(sel);
const $$ = (sel, root = document) => [...root.querySelectorAll(sel)];
const TOKEN_KEY = "wifisess.token";
/** Changes are applied at most this long after they arrive (a throttle: the timer is never restarted). */
const THROTTLE_MS = 250;
/** The cards and the device list are re-read at most this often while changes arrive. */
const STATUS_EVERY_MS = 3000;
/** More devices to re-read than this in one go: the view is re-read instead. */
const MAX_REFETCH = 8;
/** Rows of the "Connected now" view at most (pages of 1000). */
const NOW_PAGES = 5;
/** Recent sessions kept on a device page. */
const RECENT = 50;

const VIEWS = ["now", "history", "devices", "device", "charts"];
/** The URL parameters (filters) of each view, in URL order. */
const VIEW_FILTERS = {
  now: ["organization", "group", "device", "ssid", "mac"],
  history: ["organization", "group", "device", "ssid", "mac", "start_after", "start_before", "stop_after", "stop_before"],
  devices: ["organization", "group"],
  device: [],
  charts: ["organization", "group", "device", "ssid", "range"],
};
/** Filters the navigation carries from one view to another. */
const SHARED = ["organization", "group", "device", "ssid", "mac"];
/** Sort parameters of each view (table id → URL parameter, default order). */
const SORTS = {
  "now-table": ["sort", "-start"],
  "per-device": ["psort", "-clients"],
  "hist-table": ["sort", "-start"],
  "dev-table": ["sort", "device"],
  "devpage-radios": ["rsort", "ifname"],
  "devpage-open": ["osort", "-start"],
  "devpage-recent": ["hsort", "-stop"],
  "devpage-fj": ["fsort", "-associated"],
  "devpage-roams": ["msort", "-at"],
  "roam-pairs": ["qsort", "-roams"],
};

const state = {
  view: "now",
  arg: null,
  params: new URLSearchParams(),
  /** Device rows by id (GET /api/v1/devices, within the token's scope). */
  devices: new Map(),
  /** How many devices bear each name (a shared name is shown with the id). */
  nameCount: new Map(),
  /** SSIDs from the devices' radios and the sessions seen. */
  ssids: new Set(),
  /** "Connected now": open sessions by key. */
  now: new Map(),
  nowMore: false,
  /** History: loaded sessions by key, and the cursor of the next page. */
  hist: new Map(),
  histCursor: null,
  /** The device page: {id, device, open: Map, recent: Map}. */
  devpage: null,
  /** uPlot instances of the charts view. */
  charts: [],
  source: null,
  /** Bumped by every route: loads for an older route are dropped. */
  gen: 0,
};

/** The live pump: changes queued with their arrival number, applied in order. */
const live = {
  seq: 0,
  queue: [],
  timer: null,
  busy: false,
  again: false,
  reload: false,
  statusDue: false,
  statusTimer: null,
  lastAt: null,
  hellos: 0,
  devicesAsked: 0,
};

// ---- API access -------------------------------------------------------------------------

function token() { return sessionStorage.getItem(TOKEN_KEY) || ""; }

function askToken() {
  return new Promise((resolve) => {
    const dlg = $("#token-dialog");
    $("#token-form").onsubmit = () => {
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
    if (!r.ok) {
      const e = new Error(body.error || ("HTTP " + r.status));
      e.status = r.status;
      throw e;
    }
    return body;
  }
}

/** A route an older collector lacks (roams, failed joins, trends): null when it answers 404. */
async function optional(path) {
  try {
    return await api(path);
  } catch (e) {
    if (e.status === 404) return null;
    throw e;
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

/** The current view's filters from the URL, as API parameters. */
function filters(names) {
  const f = {};
  for (const k of names || VIEW_FILTERS[state.view] || []) {
    const v = (state.params.get(k) || "").trim();
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
function traffic(s) {
  return `<span class="num traffic"><span title="sent to the client">↓ ${bytes(s.tx_bytes)}</span> <span title="received from the client">↑ ${bytes(s.rx_bytes)}</span></span>`;
}
function signal(dbm) {
  if (dbm === null || dbm === undefined) return "";
  const q = dbm >= -55 ? "good" : dbm >= -70 ? "fair" : "poor";
  return `<span class="sig ${q}">${dbm} dBm</span>`;
}
/** Band (GHz) and channel of a frequency, as the collector computes them for radios. */
function radioOf(f) {
  if (!f) return null;
  if (f >= 2412 && f <= 2484) return { band: "2.4", channel: f === 2484 ? 14 : (f - 2407) / 5 };
  if (f >= 5955 && f <= 7115) return { band: "6", channel: (f - 5950) / 5 };
  if (f >= 5150 && f <= 5895) return { band: "5", channel: (f - 5000) / 5 };
  return null;
}
function bandTag(f) {
  const r = radioOf(f);
  return r ? ` <span class="tag" title="${f} MHz">${r.band} GHz · ch ${r.channel}</span>` : "";
}
function sessionKey(s) { return s.device_id + "/" + s.id; }
function durationOf(s) { return s.stop ? s.duration_s : (Date.now() - Date.parse(s.start)) / 1000; }

/** A device's name, unambiguous: with its id when another device has the same name. */
function devName(id, fallback) {
  const d = state.devices.get(id);
  const name = (d && d.name) || fallback;
  if (!name) return { text: id, html: `<span class="mono">${esc(id)}</span>` };
  if ((state.nameCount.get(name) || 0) > 1) {
    return { text: `${name} (${id})`, html: `${esc(name)} <span class="devid mono">${esc(id)}</span>` };
  }
  return { text: name, html: esc(name) };
}
function devLink(id, fallback) {
  return `<a href="#/device/${encodeURIComponent(id)}" class="dev">${devName(id, fallback).html}</a>`;
}
function client(s) {
  const flag = s.dangling ? ' <span class="badge warn" title="open, but no client activity for a while">dangling</span>' : "";
  // A name when the collector knows one (labels file, DHCP hostname; issue 20), and the vendor.
  const name = s.label || s.hostname;
  const who = name ? ` <span class="cname">${esc(name)}</span>` : "";
  const vendor = s.vendor ? ` <span class="muted small">${esc(s.vendor)}</span>` : "";
  const rnd = s.randomized ? ' <span class="tag" title="locally administered (randomised) MAC">random</span>' : "";
  return `<span class="mono">${esc(s.mac || "unknown")}</span>${who}${vendor}${rnd}${flag}`;
}
function liveDuration(s) {
  return s.stop ? duration(s.duration_s) : `<span data-since="${esc(s.start)}">${duration(durationOf(s))}</span>`;
}
function reason(s) {
  return s.stop ? `${esc(s.stop_reason || "")}${s.stop_inferred ? ' <span class="muted">(inferred)</span>' : ""}` : '<span class="badge ok">open</span>';
}
function showError(e) {
  const el = $("#error");
  if (e) { el.textContent = String(e.message || e); el.hidden = false; } else { el.hidden = true; }
}

// ---- sortable tables --------------------------------------------------------------------

/** Columns of the session tables: key (the URL's sort value), label, cell, sort value. */
const COL = {
  client: { key: "client", label: "Client", cls: "wrap", cell: client, sort: (r) => r.mac },
  ssid: { key: "ssid", label: "SSID", cell: (r) => esc(r.ssid) + bandTag(r.freq_mhz), sort: (r) => r.ssid },
  device: { key: "device", label: "Device", cell: (r) => devLink(r.device_id, r.device_name), sort: (r) => devName(r.device_id, r.device_name).text.toLowerCase() },
  org: { key: "org", label: "Organization / group", cls: "wrap", sort: (r) => (r.organization || "") + "/" + (r.group || ""),
    cell: (r) => `${esc(r.organization)}<span class="muted">${r.group ? " / " + esc(r.group) : ""}</span>` },
  since: { key: "start", label: "Since", cell: (r) => esc(when(r.start)), sort: (r) => r.start, desc: true },
  start: { key: "start", label: "Start", cell: (r) => esc(when(r.start)), sort: (r) => r.start, desc: true },
  stop: { key: "stop", label: "Stop", cell: (r) => (r.stop ? esc(when(r.stop)) : '<span class="badge ok">open</span>'), sort: (r) => r.stop || "~", desc: true },
  duration: { key: "duration", label: "Duration", cell: liveDuration, sort: durationOf, desc: true, cls: "num" },
  activity: { key: "activity", label: "Last activity", cell: (r) => esc(ago(r.last_activity || r.last_seen)), sort: (r) => r.last_activity || r.last_seen, desc: true },
  signal: { key: "signal", label: "Signal", cell: (r) => signal(r.signal_avg), sort: (r) => r.signal_avg, desc: true },
  radio: { key: "radio", label: "Radio", cell: (r) => `${esc(r.ifname)}${bandTag(r.freq_mhz)}`, sort: (r) => r.freq_mhz },
  reason: { key: "reason", label: "Reason", cell: reason, sort: (r) => r.stop_reason },
  traffic: { key: "traffic", label: "Traffic", cell: traffic, sort: (r) => r.rx_bytes + r.tx_bytes, desc: true },
};

function parseSort(spec) {
  return spec.startsWith("-") ? [spec.slice(1), -1] : [spec, 1];
}

function compare(a, b) {
  if (typeof a === "number" && typeof b === "number") return a - b;
  return String(a).localeCompare(String(b), undefined, { numeric: true });
}

/** `rows` ordered by the column `spec` names (`key` or `-key`); empty values last. */
function sortRows(rows, cols, spec) {
  const [key, dir] = parseSort(spec);
  const col = cols.find((c) => c.key === key) || cols[0];
  const v = rows.map((r) => [col.sort(r), r]);
  v.sort((x, y) => {
    const a = x[0], b = y[0];
    const na = a === null || a === undefined || a === "", nb = b === null || b === undefined || b === "";
    if (na || nb) return na === nb ? 0 : na ? 1 : -1;
    return dir * compare(a, b);
  });
  return v.map((x) => x[1]);
}

/** The sort order of table `id` from the URL. */
function sortOf(id) {
  const [param, dflt] = SORTS[id];
  return state.params.get(param) || dflt;
}

/** Renders `rows` into the table `id`: a header of sort buttons, cells labelled for the phone layout. */
function renderTable(id, cols, rows, empty, attrs) {
  const table = document.getElementById(id);
  const spec = sortOf(id);
  const [key, dir] = parseSort(spec);
  const head = cols.map((c) => {
    const s = c.key === key ? (dir < 0 ? "descending" : "ascending") : "none";
    return `<th aria-sort="${s}" class="${c.cls || ""}"><button type="button" class="sort" data-sort="${c.key}">${esc(c.label)}</button></th>`;
  }).join("");
  const sorted = sortRows(rows, cols, spec);
  const body = sorted.length
    ? sorted.map((r) => `<tr ${attrs ? attrs(r) : ""}>${cols.map((c) => `<td data-label="${esc(c.label)}" class="${c.cls || ""}"><span class="v">${c.cell(r)}</span></td>`).join("")}</tr>`).join("")
    : `<tr class="none"><td colspan="${cols.length}">${esc(empty)}</td></tr>`;
  table.innerHTML = `<thead><tr>${head}</tr></thead><tbody>${body}</tbody>`;
}

function sessionAttrs(s) {
  return `data-session-id="${esc(s.id)}" data-key="${esc(sessionKey(s))}" data-device-id="${esc(s.device_id)}" class="${s.dangling && !s.stop ? "dangling" : ""}"`;
}

/** A click on a column header: that column, or the other direction of it; into the URL. */
function onSortClick(e) {
  const b = e.target.closest("button.sort");
  if (!b) return;
  const table = b.closest("table");
  const [param, dflt] = SORTS[table.id];
  const cur = state.params.get(param) || dflt;
  const [key, dir] = parseSort(cur);
  const col = (TABLE_COLS[table.id] || []).find((c) => c.key === b.dataset.sort);
  let next;
  if (key === b.dataset.sort) next = dir < 0 ? key : "-" + key;
  else next = (col && col.desc ? "-" : "") + b.dataset.sort;
  const p = new URLSearchParams(state.params);
  if (next === dflt) p.delete(param); else p.set(param, next);
  go(state.view, state.arg, p);
}

// ---- the URL ----------------------------------------------------------------------------

function parseHash() {
  const h = location.hash.replace(/^#\/?/, "");
  const i = h.indexOf("?");
  const path = i < 0 ? h : h.slice(0, i);
  const params = new URLSearchParams(i < 0 ? "" : h.slice(i + 1));
  const [view, arg] = path.split("/");
  return { view: VIEWS.includes(view) ? view : "now", arg: arg ? decodeURIComponent(arg) : null, params };
}

function hashFor(view, arg, params) {
  // One spelling per state: the view's filters in their order, then the sort orders.
  const q = new URLSearchParams();
  const keep = [...new Set((VIEW_FILTERS[view] || []).concat(Object.values(SORTS).map((s) => s[0])))];
  for (const k of keep) if (params.get(k)) q.set(k, params.get(k));
  const s = q.toString();
  return `#/${view}${arg ? "/" + encodeURIComponent(arg) : ""}${s ? "?" + s : ""}`;
}

/** Shows `view` with `params`: a new history entry (back and forward work), or a reload if unchanged. */
function go(view, arg, params) {
  const h = hashFor(view, arg, params);
  if (h === location.hash) requestReload();
  else location.hash = h;
}

/** The filter form's values into the URL. */
function applyForm() {
  const form = $("#filters");
  const p = new URLSearchParams(state.params);
  for (const k of VIEW_FILTERS[state.view] || []) {
    const el = form.elements[k];
    if (!el) continue;
    const v = el.value.trim();
    if (v) p.set(k, v); else p.delete(k);
  }
  go(state.view, state.arg, p);
}

function route() {
  const r = parseHash();
  state.gen++;
  state.view = r.view;
  state.arg = r.arg;
  state.params = r.params;
  if (state.view === "device" && !state.arg) state.view = "devices";
  for (const v of VIEWS) $("#view-" + v).hidden = v !== state.view;
  document.body.dataset.view = state.view;
  const shown = new Set(VIEW_FILTERS[state.view]);
  const form = $("#filters");
  form.hidden = state.view === "device";
  for (const el of form.elements) {
    if (!el.name) continue;
    el.closest("label").hidden = !shown.has(el.name);
    if (el.tagName === "SELECT") continue;
    el.value = state.params.get(el.name) || "";
  }
  $$(".f-hist").forEach((e) => (e.hidden = state.view !== "history"));
  fillPickLists();
  // The navigation keeps the filters that the other views share.
  const shared = new URLSearchParams();
  for (const k of SHARED) if (state.params.get(k)) shared.set(k, state.params.get(k));
  $$("nav a").forEach((a) => {
    a.classList.toggle("active", a.dataset.view === state.view || (a.dataset.view === "devices" && state.view === "device"));
    a.setAttribute("href", hashFor(a.dataset.view, null, shared));
  });
  requestReload();
}

// ---- pick-lists -------------------------------------------------------------------------

/** Sets a select's options (`[value, label]`), keeping `current` even if it is not among them. */
function setOptions(select, values, current) {
  const opts = [["", "any"], ...values];
  if (current && !values.some((v) => v[0] === current)) opts.push([current, current]);
  const html = opts.map(([v, l]) => `<option value="${esc(v)}">${esc(l)}</option>`).join("");
  if (select.dataset.html !== html) {
    select.innerHTML = html;
    select.dataset.html = html;
  }
  select.value = current || "";
}

function fillPickLists() {
  const form = $("#filters");
  const p = state.params;
  const org = p.get("organization") || "", grp = p.get("group") || "";
  const devs = [...state.devices.values()];
  const uniq = (xs) => [...new Set(xs.filter((x) => x))].sort(compare);
  setOptions(form.elements.organization, uniq(devs.map((d) => d.organization)).map((o) => [o, o]), org);
  const inOrg = devs.filter((d) => !org || d.organization === org);
  setOptions(form.elements.group, uniq(inOrg.map((d) => d.group)).map((g) => [g, g]), grp);
  const inGroup = inOrg.filter((d) => !grp || d.group === grp);
  const devOpts = inGroup.map((d) => [d.id, devName(d.id).text]).sort((a, b) => compare(a[1].toLowerCase(), b[1].toLowerCase()));
  setOptions(form.elements.device, devOpts, p.get("device") || "");
  setOptions(form.elements.ssid, [...state.ssids].sort(compare).map((s) => [s, s]), p.get("ssid") || "");
  form.elements.range.value = p.get("range") || "24h";
}

/** Every device of the token's scope: names, pick-lists, the devices view. */
async function loadDeviceList() {
  const body = await api("/api/v1/devices");
  state.devices = new Map(body.devices.map((d) => [d.id, d]));
  state.nameCount = new Map();
  for (const d of body.devices) {
    if (d.name) state.nameCount.set(d.name, (state.nameCount.get(d.name) || 0) + 1);
    for (const r of d.radios || []) if (r.ssid) state.ssids.add(r.ssid);
  }
  fillPickLists();
}

function noteRow(s) {
  if (s.ssid && !state.ssids.has(s.ssid)) {
    state.ssids.add(s.ssid);
    live.pickDirty = true;
  }
  if (!state.devices.has(s.device_id) && Date.now() - live.devicesAsked > STATUS_EVERY_MS) {
    live.devicesAsked = Date.now();
    loadDeviceList().catch(() => {});
  }
}

// ---- views ------------------------------------------------------------------------------

async function loadCards() {
  const f = filters(["organization", "group"]);
  const st = await api("/api/v1/status" + query(f));
  $("#c-open").textContent = st.open_sessions;
  $("#c-online").textContent = `${st.devices_online} / ${st.devices}`;
  $("#c-dangling").textContent = st.dangling_sessions;
}

/** Whether a session row passes the view's filters (as the API would filter it). */
function matches(s, f) {
  if (f.organization && s.organization !== f.organization) return false;
  if (f.group && s.group !== f.group) return false;
  if (f.device && s.device_id !== f.device && s.device_name !== f.device) return false;
  if (f.ssid && s.ssid !== f.ssid) return false;
  if (f.mac && (s.mac || "") !== f.mac.toLowerCase()) return false;
  return true;
}

const NOW_COLS = [COL.client, COL.ssid, COL.device, COL.org, COL.since, COL.duration, COL.activity, COL.signal, COL.traffic];
const PER_DEV_COLS = [
  { key: "device", label: "Device", cell: (e) => devLink(e.id, e.name), sort: (e) => devName(e.id, e.name).text.toLowerCase() },
  { key: "clients", label: "Clients", cls: "num", desc: true, sort: (e) => e.n,
    cell: (e) => `${e.n}${e.dangling ? ` <span class="badge warn" title="dangling">${e.dangling}</span>` : ""}` },
];

async function openSessions(extra) {
  const rows = [];
  let cursor, pages = 0;
  do {
    const body = await api("/api/v1/sessions" + query({ ...filters(VIEW_FILTERS.now), ...extra, open: "true", limit: 1000, cursor }));
    rows.push(...body.sessions);
    cursor = body.next_cursor;
  } while (cursor && ++pages < NOW_PAGES);
  return { rows, more: !!cursor };
}

async function loadNow() {
  const { rows, more } = await openSessions({});
  state.now = new Map(rows.map((s) => [sessionKey(s), s]));
  state.nowMore = more;
  rows.forEach(noteRow);
  renderNow();
}

function renderNow() {
  const rows = [...state.now.values()];
  $("#now-count").textContent = rows.length + (state.nowMore ? "+" : "");
  renderTable("now-table", NOW_COLS, rows, "Nobody is connected.", sessionAttrs);
  const per = new Map();
  for (const s of rows) {
    const e = per.get(s.device_id) || { id: s.device_id, name: s.device_name, n: 0, dangling: 0 };
    e.n++;
    if (s.dangling) e.dangling++;
    per.set(s.device_id, e);
  }
  renderTable("per-device", PER_DEV_COLS, [...per.values()], "–", (e) => `data-device-id="${esc(e.id)}"`);
}

const HIST_COLS = [COL.client, COL.ssid, COL.device, COL.start, COL.stop, COL.duration, COL.reason, COL.traffic];

async function loadHistory(more) {
  const f = filters();
  $("#csv").href = "/api/v1/sessions" + query({ ...f, format: "csv", access_token: token() || undefined });
  const body = await api("/api/v1/sessions" + query({ ...f, limit: 100, cursor: more ? state.histCursor : undefined }));
  if (!more) state.hist = new Map();
  for (const s of body.sessions) { state.hist.set(sessionKey(s), s); noteRow(s); }
  state.histCursor = body.next_cursor;
  renderHistory();
}

function renderHistory() {
  $("#hist-more").hidden = !state.histCursor;
  $("#hist-count").textContent = state.hist.size + (state.histCursor ? "+" : "");
  renderTable("hist-table", HIST_COLS, [...state.hist.values()], "No sessions match.", sessionAttrs);
}

const DEV_COLS = [
  { key: "device", label: "Device", sort: (d) => devName(d.id).text.toLowerCase(),
    cell: (d) => `${devLink(d.id)}${d.name && (state.nameCount.get(d.name) || 0) < 2 ? ` <span class="muted mono small">${esc(d.id)}</span>` : ""}` },
  { key: "state", label: "State", sort: (d) => (d.online ? 0 : 1) * 2 + (d.health && d.health.drops_events ? 0 : 1),
    cell: (d) => (d.online ? '<span class="badge ok">online</span>' : '<span class="badge off">offline</span>') + dropsBadge(d) },
  { key: "org", label: "Organization", sort: (d) => d.organization, cell: (d) => esc(d.organization) },
  { key: "group", label: "Group", sort: (d) => d.group, cell: (d) => esc(d.group) },
  { key: "radios", label: "Radios", cls: "wrap", sort: (d) => (d.radios || []).length, desc: true,
    cell: (d) => (d.radios || []).map((r) => `<span class="tag" title="${esc(r.ifname)} ${esc(r.bssid)}">${esc(r.ssid)} · ${r.band ? esc(r.band) + " GHz" : "?"}${r.channel ? " ch " + r.channel : ""}</span>`).join(" ") },
  { key: "open", label: "Open sessions", cls: "num", desc: true, sort: (d) => d.open_sessions, cell: (d) => String(d.open_sessions) },
  { key: "dangling", label: "Dangling", cls: "num", desc: true, sort: (d) => d.dangling_sessions,
    cell: (d) => (d.dangling_sessions ? `<span class="badge warn">${d.dangling_sessions}</span>` : "0") },
  { key: "seen", label: "Last seen", desc: true, sort: (d) => d.last_seen, cell: (d) => esc(ago(d.last_seen)) },
  { key: "agent", label: "Agent", sort: (d) => d.agent_version, cell: (d) => `<span class="muted">${esc(d.agent_version)}</span>` },
];

function dropsBadge(d) {
  return d.health && d.health.drops_events
    ? ` <span class="badge bad" title="the agent dropped ${d.health.dropped} events this run: its history has holes">drops events</span>`
    : "";
}

async function loadDevices() {
  await loadDeviceList();
  renderDevices();
}

function renderDevices() {
  const f = filters();
  const rows = [...state.devices.values()].filter((d) => (!f.organization || d.organization === f.organization) && (!f.group || d.group === f.group));
  $("#dev-count").textContent = rows.length;
  renderTable("dev-table", DEV_COLS, rows, "No devices.", (d) => `data-device-id="${esc(d.id)}"`);
}

const RADIO_COLS = [
  { key: "ifname", label: "Interface", sort: (r) => r.ifname, cell: (r) => `<span class="mono">${esc(r.ifname)}</span>` },
  { key: "band", label: "Band", sort: (r) => (r.band ? parseFloat(r.band) : null), cell: (r) => (r.band ? `${esc(r.band)} GHz` : '<span class="muted">?</span>') },
  { key: "channel", label: "Channel", cls: "num", sort: (r) => r.channel, cell: (r) => esc(r.channel ?? "") },
  { key: "freq", label: "Frequency", cls: "num", sort: (r) => r.freq_mhz, cell: (r) => (r.freq_mhz ? `${r.freq_mhz} MHz` : "") },
  { key: "bssid", label: "BSSID", sort: (r) => r.bssid, cell: (r) => `<span class="mono">${esc(r.bssid)}</span>` },
  { key: "ssid", label: "SSID", sort: (r) => r.ssid, cell: (r) => esc(r.ssid) },
  { key: "clients", label: "Clients now", cls: "num", desc: true, sort: (r) => radioClients(r), cell: (r) => String(radioClients(r)) },
];
const DEVPAGE_OPEN_COLS = [COL.client, COL.ssid, COL.radio, COL.since, COL.duration, COL.activity, COL.signal, COL.traffic];
const DEVPAGE_RECENT_COLS = [COL.client, COL.ssid, COL.radio, COL.start, COL.stop, COL.duration, COL.reason, COL.traffic];

function radioClients(r) {
  if (!state.devpage) return 0;
  let n = 0;
  for (const s of state.devpage.open.values()) if (s.ifname === r.ifname || (s.bssid && s.bssid === r.bssid)) n++;
  return n;
}

/** A client as the roams and failed joins list it: MAC, then its label or vendor. */
function clientOf(r) {
  const who = r.label || r.vendor;
  const rnd = r.randomized ? ' <span class="tag" title="locally administered (randomised) MAC">random</span>' : "";
  return `<span class="mono">${esc(r.mac)}</span>${who ? ` <span class="muted">${esc(who)}</span>` : ""}${rnd}`;
}
function gap(ms) {
  if (ms < 0) return `<span title="the old AP reported the client gone ${-ms} ms after the new one saw it join">${(ms / 1000).toFixed(1)} s overlap</span>`;
  return `${(ms / 1000).toFixed(1)} s`;
}
/** One end of a roam: device (linked, unless it is the page's own), interface, band, SSID. */
function roamEnd(dev, name, ifname, band, ssid) {
  const here = state.devpage && state.devpage.id === dev;
  const d = here ? '<span class="muted">this device</span>' : devLink(dev, name);
  return `${d} <span class="mono small">${esc(ifname)}</span>${band ? ` <span class="tag">${esc(band)} GHz</span>` : ""} ${esc(ssid)}`;
}

const FJ_COLS = [
  { key: "associated", label: "Associated", desc: true, sort: (r) => r.associated, cell: (r) => esc(when(r.associated)) },
  { key: "client", label: "Client", sort: (r) => r.mac, cell: clientOf },
  { key: "ssid", label: "SSID", sort: (r) => r.ssid, cell: (r) => esc(r.ssid) },
  { key: "ifname", label: "Interface", sort: (r) => r.ifname, cell: (r) => `<span class="mono">${esc(r.ifname)}</span>` },
  { key: "bssid", label: "BSSID", sort: (r) => r.bssid, cell: (r) => `<span class="mono">${esc(r.bssid)}</span>` },
  { key: "gave_up", label: "Given up", desc: true, sort: (r) => r.gave_up, cell: (r) => esc(when(r.gave_up)) },
];
const ROAM_COLS = [
  { key: "at", label: "Arrived", desc: true, sort: (r) => r.at, cell: (r) => esc(when(r.at)) },
  { key: "client", label: "Client", sort: (r) => r.mac, cell: clientOf },
  { key: "from", label: "From", cls: "wrap", sort: (r) => devName(r.from_device, r.from_name).text.toLowerCase(),
    cell: (r) => roamEnd(r.from_device, r.from_name, r.from_ifname, r.from_band, r.from_ssid) },
  { key: "to", label: "To", cls: "wrap", sort: (r) => devName(r.to_device, r.to_name).text.toLowerCase(),
    cell: (r) => roamEnd(r.to_device, r.to_name, r.to_ifname, r.to_band, r.to_ssid) },
  { key: "gap", label: "Gap", cls: "num", sort: (r) => r.gap_ms, cell: (r) => gap(r.gap_ms) },
];
/** Rows of the device page's failed joins and roams. */
const DEVPAGE_EXTRA = 50;

/** The device page's failed joins and roams (null: this collector has no such route). */
async function loadDeviceExtras(id) {
  const dev = { device: id, limit: DEVPAGE_EXTRA };
  const [fj, roams] = await Promise.all([
    optional("/api/v1/failed-joins" + query(dev)).catch((e) => ({ error: e.message })),
    optional("/api/v1/roams" + query(dev)).catch((e) => ({ error: e.message })),
  ]);
  return { fj, roams };
}

async function loadDevice(id) {
  const [body, extras] = await Promise.all([
    api("/api/v1/devices/" + encodeURIComponent(id) + query({ history: RECENT })),
    loadDeviceExtras(id),
  ]);
  state.devpage = {
    id: body.device.id,
    device: body.device,
    open: new Map(body.open_sessions.map((s) => [sessionKey(s), s])),
    recent: new Map(body.recent_sessions.map((s) => [sessionKey(s), s])),
    fj: extras.fj,
    roams: extras.roams,
  };
  state.devices.set(body.device.id, body.device);
  renderDevice();
}

function renderDevice() {
  const { device: d, open, recent } = state.devpage;
  const name = devName(d.id, d.name);
  $("#devpage-title").innerHTML = `${name.html} ${d.online ? '<span class="badge ok">online</span>' : '<span class="badge off">offline</span>'}${dropsBadge(d)}`;
  const h = d.health || {};
  const drops = $("#devpage-drops");
  drops.hidden = !h.drops_events;
  if (h.drops_events) {
    drops.textContent = `This agent drops events: ${h.dropped} dropped in its current run (${h.dropped_starts_stops} starts, stops or syncs; ${h.dropped_updates} interim updates)` +
      (h.tracker_overflow ? `, and ${h.tracker_overflow} stations it had no room for` : "") +
      ". Its session history has holes; see docs/OPERATIONS.md (agent outbox).";
  }
  const facts = [["Id", `<span class="mono">${esc(d.id)}</span>`], ["Name", esc(d.name)], ["Organization", esc(d.organization)], ["Group", esc(d.group)],
    ["Last seen", d.last_seen ? `${esc(when(d.last_seen))} (${esc(ago(d.last_seen))})` : ""], ["Agent", esc(d.agent_version)],
    ["Boot", `<span class="mono small">${esc(d.boot_id)}</span>`], ["Sequence gaps", esc(d.seq_gaps)]];
  if (d.failed_joins_24h !== undefined) {
    facts.push(["Last 24 h", `${d.failed_joins_24h} failed joins · ${d.roams_in_24h} roams in · ${d.roams_out_24h} roams out`]);
  }
  $("#devpage-facts").innerHTML = facts.map(([k, v]) => `<dt>${esc(k)}</dt><dd>${v}</dd>`).join("");
  const health = [["Published", h.published], ["Dropped", h.dropped ? `<span class="bad-text">${h.dropped}</span>` : h.dropped],
    ["Of which starts/stops", h.dropped_starts_stops], ["Of which updates", h.dropped_updates], ["Reconnects", h.reconnects],
    ["Outbox depth", h.outbox_depth], ["Failed joins", h.failed_joins], ["No room for", h.tracker_overflow], ["Spool restored", h.spool_restored]];
  $("#devpage-health").innerHTML = health.map(([k, v]) => `<dt>${esc(k)}</dt><dd class="num">${v ?? ""}</dd>`).join("");
  const radios = d.radios || [];
  $("#devpage-radio-count").textContent = radios.length;
  renderTable("devpage-radios", RADIO_COLS, radios, "The agent announced no radios.", (r) => `data-ifname="${esc(r.ifname)}"`);
  $("#devpage-open-count").textContent = open.size;
  renderTable("devpage-open", DEVPAGE_OPEN_COLS, [...open.values()], "Nobody is connected.", sessionAttrs);
  $("#devpage-recent-count").textContent = recent.size;
  renderTable("devpage-recent", DEVPAGE_RECENT_COLS, [...recent.values()], "No closed sessions yet.", sessionAttrs);
  const p = state.devpage;
  renderOptional("devpage-fj", FJ_COLS, p.fj, "failed_joins", "No failed joins.", "/api/v1/failed-joins");
  renderOptional("devpage-roams", ROAM_COLS, p.roams, "roams", "No roams to or from this device.", "/api/v1/roams");
}

/** A table of an optional route's rows: its rows, "not available" (404), or the error. */
function renderOptional(id, cols, body, field, empty, route) {
  const count = $("#" + id + "-count");
  const table = document.getElementById(id);
  table.dataset.state = !body ? "unavailable" : body.error ? "error" : "ok";
  if (!body || body.error) {
    count.textContent = "";
    const msg = body ? `Could not load ${route}: ${body.error}` : `Not available: this collector has no ${route} (an older build).`;
    table.innerHTML = `<tbody><tr class="none unavailable"><td>${esc(msg)}</td></tr></tbody>`;
    return;
  }
  const rows = body[field] || [];
  count.textContent = rows.length + (rows.length >= DEVPAGE_EXTRA && field !== "pairs" ? "+" : "");
  renderTable(id, cols, rows, empty);
}

// ---- charts (uPlot, vendored) -----------------------------------------------------------

const RANGES = { "24h": [24 * 3600, 900], "7d": [7 * 86400, 3600], "30d": [30 * 86400, 6 * 3600] };

/** Sessions overlapping the last `secs` (open ones and those stopped since), up to 10 pages. */
async function sessionsSince(f, secs) {
  const rows = [];
  let capped = false;
  for (const extra of [{ open: "true" }, { stop_after: `-${Math.round(secs / 3600)}h` }]) {
    let cursor, pages = 0;
    do {
      const body = await api("/api/v1/sessions" + query({ ...f, ...extra, limit: 1000, cursor }));
      rows.push(...body.sessions);
      cursor = body.next_cursor;
    } while (cursor && ++pages < 5);
    if (cursor) capped = true;
  }
  return { rows, capped };
}

const PAIR_COLS = [
  { key: "from", label: "From", sort: (r) => devName(r.from_device, r.from_name).text.toLowerCase(), cell: (r) => devLink(r.from_device, r.from_name) },
  { key: "to", label: "To", sort: (r) => devName(r.to_device, r.to_name).text.toLowerCase(), cell: (r) => devLink(r.to_device, r.to_name) },
  { key: "roams", label: "Roams", desc: true, cls: "barcell", sort: (r) => r.roams,
    cell: (r) => `<span class="bar" style="width:${Math.max(2, Math.round((100 * r.roams) / (state.pairMax || 1)))}%"></span><span class="num">${r.roams}</span>` },
  { key: "clients", label: "Clients", cls: "num", desc: true, sort: (r) => r.clients, cell: (r) => String(r.clients) },
  { key: "gap", label: "Median gap", cls: "num", sort: (r) => r.median_gap_ms, cell: (r) => gap(r.median_gap_ms) },
  { key: "last", label: "Last", desc: true, sort: (r) => r.last, cell: (r) => esc(when(r.last)) },
];
/** AP pairs shown at most (the busiest). */
const PAIRS = 25;

/** Roams per AP pair of the scope: a table with bars. */
async function loadPairs(f) {
  const body = await optional("/api/v1/roams/pairs" + query(f)).catch((e) => ({ error: e.message }));
  if (body && body.pairs) {
    body.pairs = [...body.pairs].sort((a, b) => b.roams - a.roams).slice(0, PAIRS);
    state.pairMax = body.pairs.length ? body.pairs[0].roams : 1;
  }
  renderOptional("roam-pairs", PAIR_COLS, body, "pairs", "No roams between access points.", "/api/v1/roams/pairs");
}

async function loadCharts() {
  const f = filters(["organization", "group", "device", "ssid"]);
  const scope = filters(["organization", "group", "device"]);
  const [secs] = RANGES[state.params.get("range")] || RANGES["24h"];
  const period = secs > 7 * 86400 ? "day" : "hour";
  const step = period === "day" ? 86400 : 3600;
  const toMs = Date.now();
  const fromMs = Math.floor((toMs - secs * 1000) / (step * 1000)) * step * 1000;
  const pairs = loadPairs({ ...scope, ssid: f.ssid, from: new Date(fromMs).toISOString() });
  const trends = await optional("/api/v1/trends" + query({ ...f, period, from: new Date(fromMs).toISOString(), to: new Date(toMs).toISOString() }));
  if (trends) {
    const byTime = new Map();
    for (const p of trends.points) {
      const t = Date.parse(p.time) / 1000;
      const e = byTime.get(t) || { clients: 0, sessions: 0 };
      e.clients += p.clients;
      e.sessions += p.sessions;
      byTime.set(t, e);
    }
    const xs = [];
    for (let t = fromMs / 1000; t < toMs / 1000; t += step) xs.push(t);
    const at = (t, k) => (byTime.get(t) || {})[k] || 0;
    $("#charts-note").textContent = `From /api/v1/trends (${period === "day" ? "daily" : "hourly"} aggregates, kept longer than sessions).`;
    $("#chart-clients-title").textContent = period === "day" ? "Clients per day" : "Clients per hour";
    drawCharts([[xs, xs.map((t) => at(t, "clients"))], [xs, xs.map((t) => at(t, "sessions"))]], step);
  } else {
    $("#chart-clients-title").textContent = "Clients over time";
    await chartsFromSessions(f, secs);
  }
  await pairs;
}

/** An older collector without /api/v1/trends: the same charts computed from the sessions. */
async function chartsFromSessions(f, secs) {
  const step = RANGES[state.params.get("range")] ? RANGES[state.params.get("range")][1] : RANGES["24h"][1];
  const now = Date.now() / 1000;
  const from = Math.floor((now - secs) / step) * step;
  const n = Math.ceil((now - from) / step);
  const { rows, capped } = await sessionsSince(f, secs);
  const xs = Array.from({ length: n }, (_, i) => from + i * step);
  const clients = xs.map(() => new Set());
  const hour = secs > 7 * 86400 ? 86400 : 3600;
  const hFrom = Math.floor((now - secs) / hour) * hour;
  const hx = Array.from({ length: Math.ceil((now - hFrom) / hour) }, (_, i) => hFrom + i * hour);
  const starts = hx.map(() => 0);
  for (const s of rows) {
    const a = Date.parse(s.start) / 1000, b = s.stop ? Date.parse(s.stop) / 1000 : now;
    for (let i = Math.max(0, Math.floor((a - from) / step)); i < n && xs[i] <= b; i++) clients[i].add(s.mac || s.id);
    const j = Math.floor((a - hFrom) / hour);
    if (j >= 0 && j < starts.length) starts[j]++;
  }
  $("#charts-note").textContent = `/api/v1/trends is not available on this collector: computed in the browser from ${rows.length} sessions${capped ? " (capped: the oldest are left out)" : ""}.`;
  drawCharts([[xs, clients.map((c) => c.size)], [hx, starts]], hour);
}

function drawCharts(data, hour) {
  const step = data[1][0].length > 1 ? data[1][0][1] - data[1][0][0] : hour;
  state.charts.forEach((c) => c.destroy());
  state.charts = [];
  if (typeof uPlot === "undefined") return;
  const mk = (el, label, d, bars) => {
    const width = Math.max(260, el.clientWidth || el.parentElement.clientWidth - 32);
    const opts = {
      width, height: 220,
      legend: { show: true },
      // Bars are centred on their period's start: half a period of room at both ends.
      scales: { x: { time: true, range: (u, lo, hi) => (bars ? [lo - step / 2, hi + step / 2] : [lo, hi]) }, y: { range: (u, lo, hi) => [0, Math.max(1, hi)] } },
      axes: [{}, { size: 46 }],
      series: [{}, bars
        ? { label, stroke: "#1f6feb", fill: "rgba(31,111,235,.35)", paths: uPlot.paths.bars({ size: [0.8, 40] }), points: { show: false } }
        : { label, stroke: "#1a7f37", width: 2, fill: "rgba(26,127,55,.12)", points: { show: false } }],
    };
    state.charts.push(new uPlot(opts, d, el));
  };
  $("#chart-clients").innerHTML = "";
  $("#chart-starts").innerHTML = "";
  mk($("#chart-clients"), "clients", data[0], false);
  mk($("#chart-starts"), hour === 3600 ? "sessions per hour" : "sessions per day", data[1], true);
  $("#chart-starts-title").textContent = hour === 3600 ? "Sessions started per hour" : "Sessions started per day";
}

window.addEventListener("resize", () => {
  for (const c of state.charts) {
    const w = c.root.parentElement.clientWidth;
    if (w && Math.abs(w - c.width) > 4) c.setSize({ width: w, height: 220 });
  }
});

/** The columns of each sortable table (a header click finds its column's default direction). */
const TABLE_COLS = {
  "now-table": NOW_COLS,
  "per-device": PER_DEV_COLS,
  "hist-table": HIST_COLS,
  "dev-table": DEV_COLS,
  "devpage-radios": RADIO_COLS,
  "devpage-open": DEVPAGE_OPEN_COLS,
  "devpage-recent": DEVPAGE_RECENT_COLS,
  "devpage-fj": FJ_COLS,
  "devpage-roams": ROAM_COLS,
  "roam-pairs": PAIR_COLS,
};

// ---- loading and live updates -----------------------------------------------------------

async function loadView() {
  const gen = state.gen;
  const cards = loadCards();
  if (state.view === "now") await loadNow();
  else if (state.view === "history") await loadHistory(false);
  else if (state.view === "devices") await loadDevices();
  else if (state.view === "device") await loadDevice(state.arg);
  else if (state.view === "charts") await loadCharts();
  await cards;
  if (gen === state.gen) {
    showError(null);
    document.body.dataset.loaded = String(Date.now());
  }
}

/** Re-reads what one device's changes touched (the stream left its rows out). */
async function refetchDevice(id) {
  if (state.view === "now") {
    const { rows } = await openSessions({ device: id });
    for (const [k, s] of state.now) if (s.device_id === id) state.now.delete(k);
    for (const s of rows) state.now.set(sessionKey(s), s);
  } else if (state.view === "history") {
    const body = await api("/api/v1/sessions" + query({ ...filters(), device: id, limit: 100 }));
    for (const s of body.sessions) if (state.hist.has(sessionKey(s)) || !hasRange()) state.hist.set(sessionKey(s), s);
  } else if (state.view === "device" && state.devpage && state.devpage.id === id) {
    await loadDevice(id);
  }
}

function hasRange() {
  return ["start_after", "start_before", "stop_after", "stop_before"].some((k) => state.params.get(k));
}

/** Merges one changed row into what the view shows; true if the view changed. */
function applyRow(s) {
  noteRow(s);
  const k = sessionKey(s);
  if (state.view === "now") {
    if (!s.stop && matches(s, filters())) { state.now.set(k, s); return true; }
    return state.now.delete(k);
  }
  if (state.view === "history") {
    if (state.hist.has(k) || (!hasRange() && matches(s, filters()))) { state.hist.set(k, s); return true; }
    return false;
  }
  if (state.view === "device" && state.devpage && s.device_id === state.devpage.id) {
    const p = state.devpage;
    if (!s.stop) { p.open.set(k, s); p.recent.delete(k); return true; }
    p.open.delete(k);
    p.recent.set(k, s);
    if (p.recent.size > RECENT) {
      const oldest = [...p.recent.values()].sort((a, b) => compare(a.stop, b.stop))[0];
      p.recent.delete(sessionKey(oldest));
    }
    return true;
  }
  return false;
}

function render() {
  if (state.view === "now") renderNow();
  else if (state.view === "history") renderHistory();
  else if (state.view === "device" && state.devpage) renderDevice();
}

/** Applies the queued changes: re-reads the devices the stream left out, then merges rows in order. */
async function applyQueued() {
  const items = live.queue;
  live.queue = [];
  const relevant = ["now", "history", "device"].includes(state.view);
  const ids = relevant ? [...new Set(items.filter((i) => i.refetch).map((i) => i.refetch))] : [];
  if (state.view === "device") ids.splice(0, ids.length, ...ids.filter((id) => state.devpage && id === state.devpage.id));
  if (ids.length > MAX_REFETCH) { live.reload = true; return; }
  const gen = state.gen;
  let mark = -1;
  if (ids.length) {
    mark = live.seq;
    await Promise.all(ids.map(refetchDevice));
    if (gen !== state.gen) return;
  }
  // Rows of a re-read device that arrived before the read are in it; later ones are applied.
  const reread = new Set(ids);
  let changed = ids.length > 0;
  for (const i of items) {
    if (!i.row || (i.seq <= mark && reread.has(i.row.device_id))) continue;
    if (applyRow(i.row)) changed = true;
  }
  if (changed) render();
  if (live.pickDirty) { live.pickDirty = false; fillPickLists(); }
  if (live.lastAt) $("#c-updated").textContent = new Date(live.lastAt).toLocaleTimeString();
  document.body.dataset.applied = String(Date.now());
}

/** Runs loads and merges one at a time, until nothing is left to do. */
async function pump() {
  if (live.busy) { live.again = true; return; }
  live.busy = true;
  try {
    do {
      live.again = false;
      if (live.reload) {
        live.reload = false;
        // Changes that arrived before this read are in it.
        const mark = live.seq;
        await loadView();
        live.queue = live.queue.filter((i) => i.seq > mark);
      }
      if (live.queue.length) await applyQueued();
      if (live.statusDue) refreshStatus();
    } while (live.again || live.reload);
  } catch (e) {
    showError(e);
  } finally {
    live.busy = false;
  }
}

/** At most every THROTTLE_MS while changes arrive: the first change starts the timer, later ones join it. */
function schedule() {
  if (live.timer === null) live.timer = setTimeout(() => { live.timer = null; pump(); }, THROTTLE_MS);
}

function requestReload() {
  live.reload = true;
  pump();
}

/** The cards (and the devices view's counts) while changes arrive: at most every STATUS_EVERY_MS. */
function refreshStatus() {
  if (live.statusTimer) return;
  live.statusDue = false;
  loadCards().catch(() => {});
  if (state.view === "devices") loadDevices().catch(() => {});
  live.statusTimer = setTimeout(() => {
    live.statusTimer = null;
    if (live.statusDue) pump();
  }, STATUS_EVERY_MS);
}

function setLive(ok, text) {
  $("#live").classList.toggle("on", ok);
  $("#live-text").textContent = text;
}

function connectStream() {
  if (state.source) state.source.close();
  const src = new EventSource("/api/v1/stream" + query({ access_token: token() || undefined }));
  state.source = src;
  src.addEventListener("hello", () => {
    setLive(true, "live");
    // A reconnect: what changed meanwhile was missed.
    if (live.hellos++ > 0) requestReload();
  });
  src.addEventListener("change", (ev) => {
    let d;
    try { d = JSON.parse(ev.data); } catch (e) { return; }
    const seq = ++live.seq;
    for (const row of d.sessions || []) live.queue.push({ seq, row });
    for (const id of d.refetch || []) live.queue.push({ seq, refetch: id });
    live.lastAt = d.at;
    live.statusDue = true;
    schedule();
  });
  // The server ended a stream that fell behind: EventSource reconnects by itself (and the
  // hello reloads); reload now too.
  src.addEventListener("overflow", requestReload);
  src.onerror = () => setLive(false, "reconnecting…");
}

setInterval(() => {
  $$("[data-since]").forEach((el) => {
    el.textContent = duration((Date.now() - new Date(el.dataset.since)) / 1000);
  });
}, 1000);

$("#filters").addEventListener("submit", (e) => { e.preventDefault(); applyForm(); });
$("#filters").addEventListener("change", (e) => {
  const form = $("#filters");
  // A narrower organization or group: drop a group or device outside it.
  if (e.target.name === "organization" || e.target.name === "group") {
    const org = form.elements.organization.value, grp = form.elements.group.value;
    const inScope = (d) => (!org || d.organization === org) && (!grp || d.group === grp);
    if (grp && ![...state.devices.values()].some((d) => d.group === grp && inScope(d))) form.elements.group.value = "";
    const dev = state.devices.get(form.elements.device.value);
    if (dev && !inScope(dev)) form.elements.device.value = "";
  }
  applyForm();
});
$("#clear").addEventListener("click", () => {
  const p = new URLSearchParams(state.params);
  for (const k of VIEW_FILTERS[state.view] || []) p.delete(k);
  go(state.view, state.arg, p);
});
$("#hist-more").addEventListener("click", () => loadHistory(true).catch(showError));
document.addEventListener("click", (e) => { if (e.target.closest("table") && e.target.closest("button.sort")) onSortClick(e); });
window.addEventListener("hashchange", route);

(async () => {
  // Ask for a token first if the API wants one, so the stream connects with it; the device
  // list first, so names are unambiguous from the first rows on.
  try { await loadDeviceList(); } catch (e) { showError(e); }
  connectStream();
  route();
})();
