//! What changes while the collector runs: the writer's commit notifications (one broadcast
//! channel feeding every `GET /api/v1/stream`, filtered per stream in memory), in-memory
//! ingest and load metrics (`GET /metrics`), and the caps on streams, exports, connections.

use std::collections::HashMap;
use std::convert::Infallible;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{RawQuery, State};
use axum::http::header;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use tokio::sync::broadcast;

use super::auth::Principal;
use super::error::ApiError;
use super::params::Params;
use super::AppState;
use crate::config::Limits;
use crate::read::clients::DayRow;
use crate::read::devices::{DeviceFilter, DeviceRow};
use crate::read::names::{Directory, Names as Clients};
use crate::read::sessions::{self, Now};
use crate::read::status::{self, OrgStatus};
use crate::timefmt::{now_ms, rfc3339_ms};
use crate::writer::{Changed, Notice, OnCommit};

/// Notifications buffered for all subscribers (one ring, shared): a subscriber more than this
/// many behind is dropped with a final `overflow` event.
const CHANNEL: usize = 256;

/// Upper bounds of the commit latency histogram, seconds.
const BUCKETS: [f64; 11] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
];

/// Sessions of these devices changed in one commit (or by a refresh).
#[derive(Debug, Clone)]
pub struct Change {
    /// The devices (sorted by id, unique).
    pub devices: Vec<ChangedDevice>,
    /// When it was committed, ms since the epoch.
    pub at_ms: i64,
}

/// One device of a [`Change`], as every stream may send it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChangedDevice {
    /// Device id.
    pub id: String,
    /// Its organization in effect after the commit (a scoped stream's filter).
    pub organization: Option<String>,
    /// Its changed session rows, serialised once for every stream: the JSON objects of
    /// [`crate::read::sessions::SessionRow`], comma-separated; `None` when the notice left them out
    /// ([`crate::writer::NOTICE_ROWS`]): readers query that device instead.
    pub rows: Option<String>,
}

impl ChangedDevice {
    /// The device of a commit notice, its rows as the API shows them at `now` (client names
    /// and vendors from `clients`).
    pub fn of(c: &Changed, now: Now, clients: &Directory) -> ChangedDevice {
        let rows = c.sessions.as_ref().map(|rows| {
            let mut out = String::new();
            for s in rows {
                if !out.is_empty() {
                    out.push(',');
                }
                let row = sessions::from_session(s, &c.names, clients, now);
                out.push_str(&serde_json::to_string(&row).unwrap_or_else(|_| "null".into()));
            }
            out
        });
        ChangedDevice {
            id: c.id.clone(),
            organization: c.names.organization.clone(),
            rows,
        }
    }
}

#[derive(Default)]
struct Histogram {
    counts: [u64; BUCKETS.len()],
    count: u64,
    sum: f64,
}

/// The hub: one change feed for every event stream, counters since start, and the caps on
/// streams, exports and connections.
pub struct Live {
    tx: broadcast::Sender<Arc<Change>>,
    /// Turns true at shutdown: every event stream ends, so the server can stop gracefully.
    shutdown: tokio::sync::watch::Receiver<bool>,
    /// MQTT messages committed since start.
    messages: AtomicU64,
    commit_seconds: Mutex<Histogram>,
    /// Open event streams per token (`None`: no tokens configured) and in all.
    streams: Mutex<(HashMap<Option<usize>, usize>, usize)>,
    /// `[limits] streams`, `streams_per_token`.
    max_streams: (usize, usize),
    /// CSV exports running (permits of `csv_exports`).
    pub exports: Arc<tokio::sync::Semaphore>,
    /// `[limits] csv_exports`.
    max_exports: usize,
    /// Open HTTP connections (kept by the server's accept loop).
    pub connections: AtomicUsize,
    /// Requests refused by a cap since start: connections, streams, exports.
    pub refused: [AtomicU64; 3],
}

/// Index of [`Live::refused`].
pub const REFUSED_CONNECTION: usize = 0;
/// Index of [`Live::refused`].
pub const REFUSED_STREAM: usize = 1;
/// Index of [`Live::refused`].
pub const REFUSED_EXPORT: usize = 2;

/// An open event stream, counted until dropped.
pub struct StreamSlot {
    live: Arc<Live>,
    token: Option<usize>,
}

impl Drop for StreamSlot {
    fn drop(&mut self) {
        if let Ok(mut s) = self.live.streams.lock() {
            if let Some(n) = s.0.get_mut(&self.token) {
                *n = n.saturating_sub(1);
            }
            s.1 = s.1.saturating_sub(1);
        }
    }
}

impl Live {
    /// A hub without subscribers, with the configured caps.
    pub fn new(shutdown: tokio::sync::watch::Receiver<bool>, limits: &Limits) -> Arc<Live> {
        Arc::new(Live {
            tx: broadcast::channel(CHANNEL).0,
            shutdown,
            messages: AtomicU64::new(0),
            commit_seconds: Mutex::new(Histogram::default()),
            streams: Mutex::new((HashMap::new(), 0)),
            max_streams: (limits.streams, limits.streams_per_token),
            exports: Arc::new(tokio::sync::Semaphore::new(limits.csv_exports)),
            max_exports: limits.csv_exports,
            connections: AtomicUsize::new(0),
            refused: Default::default(),
        })
    }

    /// The writer's hook: counts and times the commit (group commits of messages only, not
    /// the expiry job's), then tells the subscribers, with the changed rows as the API shows
    /// them (`dangling_ms`: `dangling_minutes` in ms), serialised here once for all streams.
    /// It runs on the writer's thread: with no stream open nothing is built, and client names
    /// come from the directory the readers last loaded (no file is looked at here).
    pub fn hook(self: &Arc<Self>, dangling_ms: i64, clients: Arc<Clients>) -> OnCommit {
        let me = Arc::clone(self);
        Box::new(move |c: &Notice| {
            me.messages.fetch_add(c.messages as u64, Ordering::Relaxed);
            if c.messages > 0 {
                if let Ok(mut h) = me.commit_seconds.lock() {
                    let s = c.latency.as_secs_f64();
                    for (i, b) in BUCKETS.iter().enumerate() {
                        if s <= *b {
                            h.counts[i] += 1;
                        }
                    }
                    h.count += 1;
                    h.sum += s;
                }
            }
            if me.tx.receiver_count() == 0 {
                return;
            }
            let now = Now {
                now_ms: c.at_ms,
                dangling_ms,
            };
            let dir = clients.loaded();
            let devices = c
                .devices
                .iter()
                .map(|d| ChangedDevice::of(d, now, &dir))
                .collect();
            me.notify(devices, c.at_ms);
        })
    }

    /// Tells subscribers that sessions of `devices` changed.
    pub fn notify(&self, mut devices: Vec<ChangedDevice>, at_ms: i64) {
        if devices.is_empty() {
            return;
        }
        devices.sort_by(|a, b| a.id.cmp(&b.id));
        devices.dedup_by(|a, b| a.id == b.id);
        let _ = self.tx.send(Arc::new(Change { devices, at_ms }));
    }

    /// A new subscriber.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<Change>> {
        self.tx.subscribe()
    }

    /// Open event streams now.
    pub fn streams(&self) -> usize {
        self.streams.lock().map(|s| s.1).unwrap_or(0)
    }

    /// A slot for one more event stream of `token`.
    ///
    /// # Errors
    /// 429 when the token has its cap of streams open, 503 when the collector has.
    pub fn open_stream(self: &Arc<Self>, token: Option<usize>) -> Result<StreamSlot, ApiError> {
        let mut s = self
            .streams
            .lock()
            .map_err(|_| ApiError::internal("stream counts poisoned"))?;
        let (all, per) = self.max_streams;
        let mine = s.0.get(&token).copied().unwrap_or(0);
        let refused = if s.1 >= all {
            Some(ApiError::busy(format!(
                "too many event streams open ({all}); try again later"
            )))
        } else if mine >= per {
            Some(ApiError::too_many(format!(
                "this token has {per} event streams open already (limits.streams_per_token)"
            )))
        } else {
            None
        };
        if let Some(e) = refused {
            self.refused[REFUSED_STREAM].fetch_add(1, Ordering::Relaxed);
            return Err(e);
        }
        *s.0.entry(token).or_insert(0) += 1;
        s.1 += 1;
        Ok(StreamSlot {
            live: Arc::clone(self),
            token,
        })
    }
}

/// What one event stream shows: the devices of `change` that pass its filters.
fn visible<'a>(c: &'a Change, only: &[String], org: Option<&str>) -> Vec<&'a ChangedDevice> {
    c.devices
        .iter()
        .filter(|d| only.is_empty() || only.contains(&d.id))
        .filter(|d| org.is_none_or(|o| d.organization.as_deref() == Some(o)))
        .collect()
}

/// The data of a `change` event for `devs`: `{"device_ids": [...], "at": "...",
/// "sessions": [rows...], "refetch": [ids whose rows were left out]}`. The rows were
/// serialised once by the hook; a stream only joins them.
fn change_data(devs: &[&ChangedDevice], at_ms: i64) -> String {
    let ids: Vec<&str> = devs.iter().map(|d| d.id.as_str()).collect();
    let refetch: Vec<&str> = devs
        .iter()
        .filter(|d| d.rows.is_none())
        .map(|d| d.id.as_str())
        .collect();
    let rows: Vec<&str> = devs
        .iter()
        .filter_map(|d| d.rows.as_deref())
        .filter(|r| !r.is_empty())
        .collect();
    let len = rows.iter().map(|r| r.len() + 1).sum::<usize>() + 64 + 24 * ids.len();
    let mut out = String::with_capacity(len);
    let json = |v: &[&str]| serde_json::to_string(v).unwrap_or_else(|_| "[]".into());
    let _ = write!(
        out,
        "{{\"device_ids\":{},\"at\":\"{}\",\"sessions\":[{}],\"refetch\":{}}}",
        json(&ids),
        rfc3339_ms(at_ms),
        rows.join(","),
        json(&refetch)
    );
    out
}

/// What one stream does with what its receiver got.
#[derive(Debug, PartialEq, Eq)]
enum Frame {
    /// Nothing this stream shows.
    Skip,
    /// Send an event (name, data).
    Send(&'static str, String),
    /// Send a last event, then end the stream.
    Last(&'static str, String),
    /// End the stream.
    End,
}

fn frame(
    got: Result<Arc<Change>, broadcast::error::RecvError>,
    only: &[String],
    org: Option<&str>,
) -> Frame {
    match got {
        Ok(c) => {
            let devs = visible(&c, only, org);
            if devs.is_empty() {
                return Frame::Skip;
            }
            Frame::Send("change", change_data(&devs, c.at_ms))
        }
        // Fell behind by more than the feed keeps: a last word, and the stream ends (the
        // client reconnects and reloads); it never holds more than the shared ring.
        Err(broadcast::error::RecvError::Lagged(n)) => Frame::Last(
            "overflow",
            serde_json::json!({
                "missed": n,
                "error": "this stream fell too far behind and is closed; reconnect and reload"
            })
            .to_string(),
        ),
        Err(broadcast::error::RecvError::Closed) => Frame::End,
    }
}

/// `GET /api/v1/stream`: server-sent events. `change` events carry the device ids whose
/// sessions changed and the changed rows (`{"device_ids": [...], "at": "...", "sessions":
/// [SessionRow...], "refetch": [...]}`: past [`crate::writer::NOTICE_ROWS`] rows in a
/// commit, the devices left out are listed in `refetch`), limited to the token's
/// organization and to the `device` / `organization` parameters, filtered in memory from the
/// one change feed (the writer's notice carries each device's organization). A reader more
/// than the feed's buffer behind gets a final `overflow` event and the stream ends (the
/// client reconnects and reloads). Streams are capped per token and in all (429 / 503).
pub async fn stream(
    State(st): State<AppState>,
    who: Principal,
    RawQuery(q): RawQuery,
) -> Result<Response, ApiError> {
    let mut p = Params::new(q.as_deref());
    let org = who.scope_org(p.get("organization"))?;
    let only: Vec<String> = p.all("device");
    p.finish()?;
    let slot = st.live.open_stream(who.token)?;
    let rx = st.live.subscribe();
    let stop = st.live.shutdown.clone();
    let hello = Event::default()
        .event("hello")
        .data(serde_json::json!({ "at": rfc3339_ms(now_ms()) }).to_string());
    struct S {
        rx: broadcast::Receiver<Arc<Change>>,
        org: Option<String>,
        only: Vec<String>,
        hello: Option<Event>,
        stop: tokio::sync::watch::Receiver<bool>,
        done: bool,
        _slot: StreamSlot,
    }
    let state = S {
        rx,
        org,
        only,
        hello: Some(hello),
        stop,
        done: false,
        _slot: slot,
    };
    let events = futures_util::stream::unfold(state, |mut s| async move {
        if let Some(h) = s.hello.take() {
            return Some((Ok::<_, Infallible>(h), s));
        }
        if s.done {
            return None;
        }
        loop {
            let got = tokio::select! {
                r = s.rx.recv() => r,
                _ = s.stop.wait_for(|v| *v) => return None,
            };
            let ev = match frame(got, &s.only, s.org.as_deref()) {
                Frame::Skip => continue,
                Frame::End => return None,
                Frame::Last(name, data) => {
                    s.done = true;
                    Event::default().event(name).data(data)
                }
                Frame::Send(name, data) => Event::default().event(name).data(data),
            };
            return Some((Ok(ev), s));
        }
    });
    Ok(Sse::new(events)
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
        .into_response())
}

/// Ingest progress (`crate::health`) and the API's own load: collector-wide gauges.
fn load_metrics(o: &mut String, st: &AppState) {
    let h = st.health.snapshot();
    let now = now_ms();
    let live = &st.live;
    let gauges: [(&str, &str, &str, String); 9] = [
        (
            "wifisess_ingest_lag_seconds",
            "gauge",
            "Age of the oldest message waiting for the writer (0: none waits).",
            format!("{}", h.lag_ms(now) as f64 / 1000.0),
        ),
        (
            "wifisess_ingest_backlog_messages",
            "gauge",
            "Messages received and waiting for the writer's commit.",
            h.waiting.to_string(),
        ),
        (
            "wifisess_ingest_backlog_bytes",
            "gauge",
            "Payload bytes of the messages waiting for the writer.",
            h.waiting_bytes.to_string(),
        ),
        (
            "wifisess_ingest_connected",
            "gauge",
            "1 while connected to the broker.",
            i64::from(h.connected).to_string(),
        ),
        (
            "wifisess_writer_transaction_seconds",
            "gauge",
            "How long the writer's running transaction has run (0: idle).",
            format!(
                "{}",
                h.txn_started_ms.map_or(0, |t| (now - t).max(0)) as f64 / 1000.0
            ),
        ),
        (
            "wifisess_messages_oversize_total",
            "counter",
            "Publishes over the wire limit read, rejected and acknowledged since start.",
            h.oversize.to_string(),
        ),
        (
            "wifisess_http_connections",
            "gauge",
            "Open HTTP connections.",
            live.connections.load(Ordering::Relaxed).to_string(),
        ),
        (
            "wifisess_sse_clients",
            "gauge",
            "Open event streams (GET /api/v1/stream).",
            live.streams().to_string(),
        ),
        (
            "wifisess_csv_exports",
            "gauge",
            "CSV exports running.",
            live.max_exports
                .saturating_sub(live.exports.available_permits())
                .to_string(),
        ),
    ];
    for (name, kind, help, v) in gauges {
        head(o, name, kind, help);
        line(o, name, "", v);
    }
    head(
        o,
        "wifisess_http_refused_total",
        "counter",
        "Requests refused by a cap since start, by cap: connections, streams, exports.",
    );
    for (i, reason) in ["connections", "streams", "exports"].iter().enumerate() {
        line(
            o,
            "wifisess_http_refused_total",
            &format!("reason=\"{reason}\""),
            live.refused[i].load(Ordering::Relaxed),
        );
    }
}

fn line(out: &mut String, name: &str, labels: &str, v: impl std::fmt::Display) {
    if labels.is_empty() {
        let _ = writeln!(out, "{name} {v}");
    } else {
        let _ = writeln!(out, "{name}{{{labels}}} {v}");
    }
}

fn head(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

fn label(v: Option<&str>) -> String {
    v.unwrap_or("")
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// Failed joins and roams of the last 24 hours per device (the device rows' counts), and
/// today's sessions started, distinct clients, roams and failed joins per device and SSID
/// (the daily aggregates, as far as the derive step has got): no per-client labels, and no
/// scan of the sessions.
fn derived_metrics(o: &mut String, devices: &[DeviceRow], today: &[DayRow]) {
    let dev = |d: &DeviceRow| {
        format!(
            "device=\"{}\",organization=\"{}\"",
            label(Some(&d.id)),
            label(d.organization.as_deref())
        )
    };
    head(
        o,
        "wifisess_failed_joins_24h",
        "gauge",
        "Stations that associated but never authorized, last 24 hours. Per device.",
    );
    for d in devices {
        line(o, "wifisess_failed_joins_24h", &dev(d), d.failed_joins_24h);
    }
    head(
        o,
        "wifisess_roams_24h",
        "gauge",
        "Roams of the last 24 hours that arrived at (in) or left (out) the device. Per device.",
    );
    for d in devices {
        let l = dev(d);
        line(
            o,
            "wifisess_roams_24h",
            &format!("{l},direction=\"in\""),
            d.roams_in_24h,
        );
        line(
            o,
            "wifisess_roams_24h",
            &format!("{l},direction=\"out\""),
            d.roams_out_24h,
        );
    }
    type Get = fn(&DayRow) -> i64;
    let per_ssid: [(&str, &str, Get); 4] = [
        (
            "wifisess_sessions_started_today",
            "Sessions started today (UTC).",
            |r| r.sessions,
        ),
        (
            "wifisess_clients_today",
            "Distinct clients today (UTC); a client on two SSIDs of a device counts in both.",
            |r| r.clients,
        ),
        (
            "wifisess_roams_in_today",
            "Roams that arrived today (UTC).",
            |r| r.roams,
        ),
        (
            "wifisess_failed_joins_today",
            "Failed joins today (UTC).",
            |r| r.failed_joins,
        ),
    ];
    for (name, help, f) in per_ssid {
        head(o, name, "gauge", &format!("{help} Per device and SSID."));
        for r in today {
            let labels = format!(
                "device=\"{}\",organization=\"{}\",ssid=\"{}\"",
                label(Some(&r.device_id)),
                label(r.organization.as_deref()),
                label(Some(&r.ssid))
            );
            line(o, name, &labels, f(r));
        }
    }
}

/// `GET /metrics`: Prometheus text format. A token scoped to an organization gets only that
/// organization's gauges (the ingest counters are collector-wide and left out).
pub async fn metrics(State(st): State<AppState>, who: Principal) -> Result<Response, ApiError> {
    let now = st.now(now_ms());
    let scope = DeviceFilter {
        organization: who.organization.clone(),
        ..DeviceFilter::default()
    };
    let limits_cfg = st.cfg.max_open_sessions.clone();
    let (report, counters, today) = st
        .reader
        .run(move |db| {
            let report = status::status(db, &scope, now, &limits_cfg)?;
            let counters = if scope.organization.is_none() {
                crate::read::counters(db)?
            } else {
                Vec::new()
            };
            let today =
                crate::read::clients::day_rows(db, now.now_ms, scope.organization.as_deref())?;
            Ok((report, counters, today))
        })
        .await?;
    let orgs = &report.organizations;
    let mut o = String::with_capacity(4096);
    if who.organization.is_none() {
        let get = |n: &str| counters.iter().find(|c| c.0 == n).map_or(0, |c| c.1);
        head(
            &mut o,
            "wifisess_messages_ingested_total",
            "counter",
            "MQTT messages committed since the collector started.",
        );
        line(
            &mut o,
            "wifisess_messages_ingested_total",
            "",
            st.live.messages.load(Ordering::Relaxed),
        );
        head(
            &mut o,
            "wifisess_events_ingested_total",
            "counter",
            "Session events merged (all time, from the database).",
        );
        line(&mut o, "wifisess_events_ingested_total", "", get("events"));
        head(
            &mut o,
            "wifisess_messages_rejected_total",
            "counter",
            "Messages rejected, by reason (all time).",
        );
        for (name, v) in &counters {
            let reason = match name.as_str() {
                "rejected_topic" => "topic",
                "rejected_spoofed" => "spoofed",
                "store_rejected" => "store",
                n if n.starts_with("undecodable_") => n,
                _ => continue,
            };
            line(
                &mut o,
                "wifisess_messages_rejected_total",
                &format!("reason=\"{}\"", label(Some(reason))),
                v,
            );
        }
        head(
            &mut o,
            "wifisess_events_rejected_total",
            "counter",
            "Events inside accepted messages that were skipped, by reason.",
        );
        line(
            &mut o,
            "wifisess_events_rejected_total",
            "reason=\"bad_time\"",
            get("events_bad_time"),
        );
        line(
            &mut o,
            "wifisess_events_rejected_total",
            "reason=\"unknown_kind\"",
            get("events_unknown_kind"),
        );
        head(
            &mut o,
            "wifisess_commit_seconds",
            "histogram",
            "Time to merge and commit one group of messages.",
        );
        let h = st
            .live
            .commit_seconds
            .lock()
            .map(|h| (h.counts, h.count, h.sum))
            .unwrap_or_default();
        for (i, b) in BUCKETS.iter().enumerate() {
            line(
                &mut o,
                "wifisess_commit_seconds_bucket",
                &format!("le=\"{b}\""),
                h.0[i],
            );
        }
        line(&mut o, "wifisess_commit_seconds_bucket", "le=\"+Inf\"", h.1);
        line(&mut o, "wifisess_commit_seconds_sum", "", h.2);
        line(&mut o, "wifisess_commit_seconds_count", "", h.1);
        load_metrics(&mut o, &st);
    }
    type Get = fn(&OrgStatus) -> i64;
    let gauges: [(&str, &str, Get); 6] = [
        (
            "wifisess_seq_gaps",
            "Event sequence numbers never received, summed over devices.",
            |c| c.seq_gaps,
        ),
        ("wifisess_open_sessions", "Open sessions.", |c| {
            c.open_sessions
        }),
        (
            "wifisess_dangling_sessions",
            "Open sessions without client activity for dangling_minutes.",
            |c| c.dangling_sessions,
        ),
        ("wifisess_devices", "Devices known.", |c| c.devices),
        (
            "wifisess_devices_online",
            "Devices whose agent is connected.",
            |c| c.devices_online,
        ),
        (
            "wifisess_devices_dropping_events",
            "Devices whose agent dropped events (outbox overflow) in its current run.",
            |c| c.devices_dropping,
        ),
    ];
    for (name, help, f) in gauges {
        head(&mut o, name, "gauge", &format!("{help} Per organization."));
        for c in orgs.iter().filter(|c| c.devices > 0) {
            line(
                &mut o,
                name,
                &format!("organization=\"{}\"", label(c.organization.as_deref())),
                f(c),
            );
        }
    }
    let limited: Vec<&OrgStatus> = orgs
        .iter()
        .filter(|l| l.max_open_sessions.is_some())
        .collect();
    head(
        &mut o,
        "wifisess_organization_over_limit",
        "gauge",
        "1 when an organization has more open sessions than its max_open_sessions.",
    );
    for l in &limited {
        let labels = format!("organization=\"{}\"", label(l.organization.as_deref()));
        line(
            &mut o,
            "wifisess_organization_over_limit",
            &labels,
            i64::from(l.over_limit),
        );
    }
    head(
        &mut o,
        "wifisess_organizations_over_limit",
        "gauge",
        "Organizations over their max_open_sessions.",
    );
    line(
        &mut o,
        "wifisess_organizations_over_limit",
        "",
        limited.iter().filter(|l| l.over_limit).count() as i64,
    );
    // The agents' own health (SPEC §5.5), per device: no per-client labels.
    type Health = fn(&crate::read::devices::Health) -> i64;
    let health: [(&str, &str, &str, Health); 9] = [
        (
            "wifisess_agent_published",
            "counter",
            "Events the broker acknowledged, this agent run.",
            |h| h.published,
        ),
        (
            "wifisess_agent_dropped",
            "counter",
            "Events the agent dropped (outbox overflow), this agent run.",
            |h| h.dropped,
        ),
        (
            "wifisess_agent_reconnects",
            "counter",
            "Broker reconnects, this agent run.",
            |h| h.reconnects,
        ),
        (
            "wifisess_agent_outbox_depth",
            "gauge",
            "Events waiting in the agent's outbox at its last status.",
            |h| h.outbox_depth,
        ),
        (
            "wifisess_agent_failed_joins",
            "counter",
            "Stations that associated but never authorized, this agent run.",
            |h| h.failed_joins,
        ),
        (
            "wifisess_agent_dropped_updates",
            "counter",
            "Interim updates the agent dropped (outbox overflow), this agent run.",
            |h| h.dropped_updates,
        ),
        (
            "wifisess_agent_dropped_starts_stops",
            "counter",
            "Starts, stops and syncs the agent dropped (session records lost), this agent run.",
            |h| h.dropped_starts_stops,
        ),
        (
            "wifisess_agent_spool_restored",
            "gauge",
            "Events restored from the agent's spool when its current run started.",
            |h| h.spool_restored,
        ),
        (
            "wifisess_agent_drops_events",
            "gauge",
            "1 when the agent dropped events in its current run (its history has holes).",
            |h| i64::from(h.drops_events),
        ),
    ];
    for (name, kind, help, f) in health {
        head(&mut o, name, kind, &format!("{help} Per device."));
        for d in &report.device_status {
            let labels = format!(
                "device=\"{}\",organization=\"{}\"",
                label(Some(&d.id)),
                label(d.organization.as_deref())
            );
            line(&mut o, name, &labels, f(&d.health));
        }
    }
    derived_metrics(&mut o, &report.device_status, &today);
    Ok((
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        o,
    )
        .into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::core::device::Names;

    /// A device of a commit notice, without rows.
    fn changed(id: &str, org: Option<&str>) -> Changed {
        Changed {
            id: id.into(),
            names: Names {
                organization: org.map(str::to_owned),
                ..Names::default()
            },
            sessions: None,
        }
    }

    /// A device of the change feed, with no rows changed.
    fn dev(id: &str, org: Option<&str>) -> ChangedDevice {
        ChangedDevice {
            id: id.into(),
            organization: org.map(str::to_owned),
            rows: Some(String::new()),
        }
    }

    fn ids(v: Vec<&ChangedDevice>) -> Vec<&str> {
        v.iter().map(|d| d.id.as_str()).collect()
    }

    /// A scoped stream sees only its organization's devices, from the notice alone.
    #[test]
    fn streams_filter_by_organization_and_device_in_memory() {
        let c = Change {
            devices: vec![
                dev("ap1", Some("acme")),
                dev("ap2", Some("beta")),
                dev("ap3", None),
            ],
            at_ms: 1,
        };
        assert_eq!(ids(visible(&c, &[], None)), vec!["ap1", "ap2", "ap3"]);
        assert_eq!(ids(visible(&c, &[], Some("acme"))), vec!["ap1"]);
        assert_eq!(
            ids(visible(&c, &["ap2".into()], Some("acme"))),
            Vec::<&str>::new()
        );
        assert_eq!(
            ids(visible(&c, &["ap2".into(), "ap3".into()], None)),
            vec!["ap2", "ap3"]
        );
    }

    /// A reader more than the feed's buffer behind gets `overflow` and its stream ends.
    #[test]
    fn a_reader_that_falls_behind_gets_overflow_and_is_dropped() {
        let live = Live::new(tokio::sync::watch::channel(false).1, &Limits::default());
        let mut rx = live.subscribe();
        for i in 0..CHANNEL + 10 {
            live.notify(vec![dev("ap1", Some("acme"))], i as i64);
        }
        match frame(
            rx.try_recv().map_err(|e| match e {
                broadcast::error::TryRecvError::Lagged(n) => broadcast::error::RecvError::Lagged(n),
                _ => broadcast::error::RecvError::Closed,
            }),
            &[],
            Some("acme"),
        ) {
            Frame::Last(name, data) => {
                assert_eq!(name, "overflow");
                assert!(data.contains("\"missed\":10"), "{data}");
            }
            other => panic!("{other:?}"),
        }
        let c = Arc::new(Change {
            devices: vec![dev("ap2", Some("beta"))],
            at_ms: 5,
        });
        assert_eq!(frame(Ok(c.clone()), &[], Some("acme")), Frame::Skip);
        assert!(matches!(frame(Ok(c), &[], None), Frame::Send("change", d) if d.contains("ap2")));
    }

    #[test]
    fn streams_are_capped_per_token_and_in_all() {
        let limits = Limits {
            streams: 3,
            streams_per_token: 2,
            ..Limits::default()
        };
        let live = Live::new(tokio::sync::watch::channel(false).1, &limits);
        let a1 = live.open_stream(Some(0)).unwrap();
        let _a2 = live.open_stream(Some(0)).unwrap();
        let e = live.open_stream(Some(0)).err().unwrap();
        assert_eq!(e.status, axum::http::StatusCode::TOO_MANY_REQUESTS);
        let _b1 = live.open_stream(Some(1)).unwrap();
        let e = live.open_stream(Some(1)).err().unwrap();
        assert_eq!(e.status, axum::http::StatusCode::SERVICE_UNAVAILABLE);
        drop(a1);
        assert_eq!(live.streams(), 2);
        assert!(live.open_stream(Some(0)).is_ok());
        assert_eq!(live.refused[REFUSED_STREAM].load(Ordering::Relaxed), 2);
    }

    /// An expiry in `run` reaches the stream through the same hook as merged events, but is
    /// not a group commit for the metrics.
    #[test]
    fn job_commits_notify_without_counting_as_message_commits() {
        let live = Live::new(tokio::sync::watch::channel(false).1, &Limits::default());
        let mut rx = live.subscribe();
        let mut hook = live.hook(60_000, Clients::none());
        hook(&Notice {
            messages: 0,
            devices: vec![changed("ap2", Some("beta"))],
            latency: Duration::from_millis(3),
            at_ms: 7,
        });
        let c = rx.try_recv().unwrap();
        assert_eq!(
            (c.devices.clone(), c.at_ms),
            (
                vec![ChangedDevice {
                    rows: None,
                    ..dev("ap2", Some("beta"))
                }],
                7
            )
        );
        assert_eq!(live.messages.load(Ordering::Relaxed), 0);
        assert_eq!(live.commit_seconds.lock().unwrap().count, 0);
        hook(&Notice {
            messages: 2,
            devices: vec![changed("ap1", None)],
            latency: Duration::from_millis(3),
            at_ms: 8,
        });
        assert_eq!(
            rx.try_recv().unwrap().devices,
            vec![ChangedDevice {
                rows: None,
                ..dev("ap1", None)
            }]
        );
        assert_eq!(live.messages.load(Ordering::Relaxed), 2);
        assert_eq!(live.commit_seconds.lock().unwrap().count, 1);
    }

    /// A `change` event carries the changed rows as the API shows them, each device's once,
    /// and lists the devices whose rows the notice left out; a scoped stream gets neither
    /// rows nor ids of other organizations.
    #[test]
    fn change_events_carry_the_rows_and_what_to_refetch() {
        use crate::core::Session;
        let names = Names {
            name: Some("Lab AP".into()),
            organization: Some("acme".into()),
            group: Some("lab".into()),
        };
        let mut s = Session::new("ap1", wifisess_wire::SessionId(0x11), "b", (1, 1), 1_000);
        s.mac = Some("02:00:00:00:10:01".into());
        s.ssid = Some("campus".into());
        s.signal = Some(((1, 1), -48));
        let with_rows = Changed {
            id: "ap1".into(),
            names: names.clone(),
            sessions: Some(vec![s.clone()]),
        };
        let live = Live::new(tokio::sync::watch::channel(false).1, &Limits::default());
        let mut rx = live.subscribe();
        let mut hook = live.hook(60_000, Clients::none());
        hook(&Notice {
            messages: 1,
            devices: vec![with_rows, changed("ap2", Some("beta"))],
            latency: Duration::from_millis(1),
            at_ms: 91_000,
        });
        let c = rx.try_recv().unwrap();
        let Frame::Send("change", data) = frame(Ok(c.clone()), &[], None) else {
            panic!("no change event")
        };
        let v: serde_json::Value = serde_json::from_str(&data).unwrap();
        assert_eq!(v["device_ids"], serde_json::json!(["ap1", "ap2"]));
        assert_eq!(v["refetch"], serde_json::json!(["ap2"]));
        let now = Now {
            now_ms: 91_000,
            dangling_ms: 60_000,
        };
        let want = serde_json::to_value(sessions::from_session(
            &s,
            &names,
            &Directory::default(),
            now,
        ))
        .unwrap();
        assert_eq!(v["sessions"], serde_json::json!([want]));
        assert_eq!(v["sessions"][0]["dangling"], serde_json::json!(true));
        assert_eq!(v["sessions"][0]["duration_s"], serde_json::json!(90));
        let Frame::Send("change", data) = frame(Ok(c.clone()), &[], Some("beta")) else {
            panic!("no change event")
        };
        let v: serde_json::Value = serde_json::from_str(&data).unwrap();
        assert_eq!(v["device_ids"], serde_json::json!(["ap2"]));
        assert_eq!(v["sessions"], serde_json::json!([]));
        assert!(!data.contains("ap1"), "{data}");
    }
}
