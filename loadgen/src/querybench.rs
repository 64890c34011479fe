//! The query benchmark: the collector's own query functions (the ones behind
//! `wifisess-collector sessions/status/presence` and the HTTP API) on a bulk-loaded
//! database, each query `runs` times with a different random device, group, client or day,
//! on one read-only connection opened as the CLI and the HTTP API open theirs (one read side:
//! `read::ReadDb`, SQLite or PostgreSQL). Reports p50, p99 and max per query.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Instant;

use anyhow::Context as _;
use wifisess_collector::read::devices::DeviceFilter;
use wifisess_collector::read::presence::{presence, PresenceQuery};
use wifisess_collector::read::sessions::{list as list_sessions, SessionFilter};
use wifisess_collector::read::status::status;
use wifisess_collector::read::{Now, ReadDb};
use wifisess_collector::store::DbLocator;

use crate::bulk::{mac_of, Shape};
use crate::sim::{device_id, Rng};

/// The figures of one query.
#[derive(Debug, Clone)]
pub struct QueryStats {
    /// Query name.
    pub name: &'static str,
    /// Runs.
    pub runs: usize,
    /// Median, ms.
    pub p50_ms: f64,
    /// 99th percentile (nearest rank), ms.
    pub p99_ms: f64,
    /// Slowest, ms.
    pub max_ms: f64,
    /// Mean rows (or clients, or open sessions) returned.
    pub mean_rows: f64,
}

/// The queries, in report order.
pub const QUERIES: [&str; 5] = [
    "open sessions of one device",
    "history of one group over one day",
    "sessions of one MAC over 30 days",
    "status of a group",
    "presence of a group over one day",
];

fn pct(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// Runs every query `runs` times on `db` (an SQLite file or a `postgres://` URL, shaped like
/// `shape`) at `now_ms`.
///
/// # Errors
/// Database errors.
pub fn run(db: &Path, shape: &Shape, runs: usize, now_ms: i64) -> anyhow::Result<Vec<QueryStats>> {
    let loc = DbLocator::parse(db);
    let conn = ReadDb::open(&loc).with_context(|| format!("opening {}", loc.display()))?;
    let end_ms: i64 = conn
        .query_one("SELECT max(start_ms) FROM sessions", &[])?
        .and_then(|r| r.opt_int(0).ok().flatten())
        .context("the database has no sessions (run bulk-load first)")?;
    let devices: i64 = conn
        .query_one("SELECT count(*) FROM devices", &[])?
        .map_or(Ok(0), |r| r.int(0))?;
    let now = Now {
        now_ms,
        dangling_ms: 60 * 60_000,
    };
    let groups = shape.groups.max(1) as u64;
    let days = shape.days.max(2) as i64;
    let limits = BTreeMap::new();
    let labels = BTreeMap::new();
    let mut rng = Rng::new(shape.seed ^ 0x9e3779b9);
    let mut out = Vec::new();
    for (qi, name) in QUERIES.iter().enumerate() {
        let mut times = Vec::with_capacity(runs);
        let mut rows = 0usize;
        for _ in 0..runs {
            let device = device_id(
                &shape.device_prefix,
                rng.below(devices.max(1) as u64) as usize,
            );
            let group = format!("group-{:03}", rng.below(groups));
            let mac = mac_of(rng.below(shape.macs.max(1)));
            // A whole day inside the data (the last day holds the open sessions).
            let day0 = end_ms - (1 + rng.below(days as u64 - 1) as i64) * 86_400_000;
            let t = Instant::now();
            rows += match qi {
                0 => list_sessions(
                    &conn,
                    &SessionFilter {
                        open: Some(true),
                        devices: vec![device],
                        ..SessionFilter::default()
                    },
                    now,
                )?
                .len(),
                1 => list_sessions(
                    &conn,
                    &SessionFilter {
                        group: Some(group),
                        start_after_ms: Some(day0),
                        start_before_ms: Some(day0 + 86_400_000),
                        ..SessionFilter::default()
                    },
                    now,
                )?
                .len(),
                2 => list_sessions(
                    &conn,
                    &SessionFilter {
                        mac: Some(mac),
                        start_after_ms: Some(end_ms - 30 * 86_400_000),
                        ..SessionFilter::default()
                    },
                    now,
                )?
                .len(),
                3 => {
                    status(
                        &conn,
                        &DeviceFilter {
                            group: Some(group),
                            ..DeviceFilter::default()
                        },
                        now,
                        &limits,
                    )?
                    .open_sessions as usize
                }
                _ => presence(
                    &conn,
                    &PresenceQuery {
                        group,
                        organization: None,
                        from_ms: day0,
                        to_ms: day0 + 86_400_000,
                        min_minutes: 30,
                    },
                    now_ms,
                    &labels,
                )?
                .len(),
            };
            times.push(t.elapsed().as_secs_f64() * 1000.0);
        }
        times.sort_by(f64::total_cmp);
        out.push(QueryStats {
            name,
            runs,
            p50_ms: pct(&times, 50.0),
            p99_ms: pct(&times, 99.0),
            max_ms: times.last().copied().unwrap_or(0.0),
            mean_rows: rows as f64 / runs.max(1) as f64,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let v: Vec<f64> = (1..=200).map(f64::from).collect();
        assert_eq!(pct(&v, 50.0), 100.0);
        assert_eq!(pct(&v, 99.0), 198.0);
        assert_eq!(pct(&[3.0], 99.0), 3.0);
    }
}
