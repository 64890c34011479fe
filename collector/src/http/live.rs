//! What changes while the collector runs: the writer's commit notifications (a broadcast
//! channel feeding `GET /api/v1/stream`) and in-memory ingest metrics (`GET /metrics`).

use std::convert::Infallible;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
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
use crate::read::devices::{self, DeviceFilter};
use crate::read::status::{self, OrgStatus};
use crate::timefmt::{now_ms, rfc3339_ms};
use crate::writer::{Notice, OnCommit};

/// Notifications buffered per subscriber; a slower one gets a `resync` event instead.
const CHANNEL: usize = 256;

/// Upper bounds of the commit latency histogram, seconds.
const BUCKETS: [f64; 11] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
];

/// Sessions of these devices changed in one commit (or by a refresh).
#[derive(Debug, Clone)]
pub struct Change {
    /// Device ids, sorted, unique.
    pub devices: Vec<String>,
    /// When it was committed, ms since the epoch.
    pub at_ms: i64,
}

#[derive(Default)]
struct Histogram {
    counts: [u64; BUCKETS.len()],
    count: u64,
    sum: f64,
}

/// The hub: notifications and counters since start.
pub struct Live {
    tx: broadcast::Sender<Arc<Change>>,
    /// Turns true at shutdown: every event stream ends, so the server can stop gracefully.
    shutdown: tokio::sync::watch::Receiver<bool>,
    /// MQTT messages committed since start.
    messages: AtomicU64,
    commit_seconds: Mutex<Histogram>,
}

impl Live {
    /// A hub without subscribers.
    pub fn new(shutdown: tokio::sync::watch::Receiver<bool>) -> Arc<Live> {
        Arc::new(Live {
            tx: broadcast::channel(CHANNEL).0,
            shutdown,
            messages: AtomicU64::new(0),
            commit_seconds: Mutex::new(Histogram::default()),
        })
    }

    /// The writer's hook: counts and times the commit (group commits of messages only, not
    /// the expiry job's), then tells the subscribers.
    pub fn hook(self: &Arc<Self>) -> OnCommit {
        let me = Arc::clone(self);
        Box::new(move |c: &Notice| {
            me.messages.fetch_add(c.messages as u64, Ordering::Relaxed);
            if c.messages == 0 {
                me.notify(c.devices.clone(), c.at_ms);
                return;
            }
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
            me.notify(c.devices.clone(), c.at_ms);
        })
    }

    /// Tells subscribers that sessions of `devices` changed.
    pub fn notify(&self, mut devices: Vec<String>, at_ms: i64) {
        if devices.is_empty() {
            return;
        }
        devices.sort();
        devices.dedup();
        let _ = self.tx.send(Arc::new(Change { devices, at_ms }));
    }

    /// A new subscriber.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<Change>> {
        self.tx.subscribe()
    }
}

/// `GET /api/v1/stream`: server-sent events. `change` events carry the device ids whose
/// sessions changed (`{"device_ids": [...], "at": "..."}`), limited to the token's
/// organization and to the `device` / `organization` parameters; `resync` when events were
/// dropped for a slow reader (reload everything).
pub async fn stream(
    State(st): State<AppState>,
    who: Principal,
    RawQuery(q): RawQuery,
) -> Result<Response, ApiError> {
    let mut p = Params::new(q.as_deref());
    let org = who.scope_org(p.get("organization"))?;
    let only: Vec<String> = p.all("device");
    p.finish()?;
    let rx = st.live.subscribe();
    let stop = st.live.shutdown.clone();
    let hello = Event::default()
        .event("hello")
        .data(serde_json::json!({ "at": rfc3339_ms(now_ms()) }).to_string());
    let state = (rx, st, org, only, Some(hello), stop);
    let events = futures_util::stream::unfold(
        state,
        |(mut rx, st, org, only, hello, mut stop)| async move {
            if let Some(h) = hello {
                return Some((Ok::<_, Infallible>(h), (rx, st, org, only, None, stop)));
            }
            loop {
                let got = tokio::select! {
                    r = rx.recv() => r,
                    _ = stop.wait_for(|s| *s) => return None,
                };
                let ev = match got {
                    Ok(c) => {
                        let mut devs: Vec<String> = c
                            .devices
                            .iter()
                            .filter(|d| only.is_empty() || only.contains(d))
                            .cloned()
                            .collect();
                        if let Some(o) = &org {
                            let ids = devs.clone();
                            let orgs = st
                                .reader
                                .run(move |db| Ok(devices::organizations(db, &ids)?))
                                .await
                                .unwrap_or_default();
                            devs.retain(|d| orgs.get(d).and_then(|x| x.as_deref()) == Some(o));
                        }
                        if devs.is_empty() {
                            continue;
                        }
                        Event::default().event("change").data(
                            serde_json::json!({ "device_ids": devs, "at": rfc3339_ms(c.at_ms) })
                                .to_string(),
                        )
                    }
                    Err(broadcast::error::RecvError::Lagged(n)) => Event::default()
                        .event("resync")
                        .data(serde_json::json!({ "missed": n }).to_string()),
                    Err(broadcast::error::RecvError::Closed) => return None,
                };
                return Some((Ok(ev), (rx, st, org, only, None, stop)));
            }
        },
    );
    Ok(Sse::new(events)
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
        .into_response())
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

/// `GET /metrics`: Prometheus text format. A token scoped to an organization gets only that
/// organization's gauges (the ingest counters are collector-wide and left out).
pub async fn metrics(State(st): State<AppState>, who: Principal) -> Result<Response, ApiError> {
    let now = st.now(now_ms());
    let scope = DeviceFilter {
        organization: who.organization.clone(),
        ..DeviceFilter::default()
    };
    let limits_cfg = st.cfg.max_open_sessions.clone();
    let (report, counters) = st
        .reader
        .run(move |db| {
            let report = status::status(db, &scope, now, &limits_cfg)?;
            let counters = if scope.organization.is_none() {
                crate::read::counters(db)?
            } else {
                Vec::new()
            };
            Ok((report, counters))
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

    /// An expiry in `run` reaches the stream through the same hook as merged events, but is
    /// not a group commit for the metrics.
    #[test]
    fn job_commits_notify_without_counting_as_message_commits() {
        let live = Live::new(tokio::sync::watch::channel(false).1);
        let mut rx = live.subscribe();
        let mut hook = live.hook();
        hook(&Notice {
            messages: 0,
            devices: vec!["ap2".into()],
            latency: Duration::from_millis(3),
            at_ms: 7,
        });
        let c = rx.try_recv().unwrap();
        assert_eq!((c.devices.clone(), c.at_ms), (vec!["ap2".to_owned()], 7));
        assert_eq!(live.messages.load(Ordering::Relaxed), 0);
        assert_eq!(live.commit_seconds.lock().unwrap().count, 0);
        hook(&Notice {
            messages: 2,
            devices: vec!["ap1".into()],
            latency: Duration::from_millis(3),
            at_ms: 8,
        });
        assert_eq!(rx.try_recv().unwrap().devices, vec!["ap1".to_owned()]);
        assert_eq!(live.messages.load(Ordering::Relaxed), 2);
        assert_eq!(live.commit_seconds.lock().unwrap().count, 1);
    }
}
