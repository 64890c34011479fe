//! Watches a running collector's database from outside (its own read connection; WAL lets it
//! read while the collector writes): the committed-event counter (`counters.events`, written
//! in the same transaction as the rows) is polled every few ms. On PostgreSQL the same
//! counter is the `counters` view (the sum of every collector's shard), so one monitor sees
//! what all the collectors of a share group committed.
//!
//! - **Done**: the first poll that sees the expected number of events committed since the
//!   monitor started: the end of the ingest benchmark.
//! - **Stall**: the longest interval between two polls that saw the counter advance, i.e. how
//!   long no ingest transaction committed. Meaningful while the load is steady (paced) and
//!   below what the collector sustains, so that in normal operation commits follow each other
//!   within a few ms; resolution = the poll interval plus one read.
//! - **Retention**: with a cutoff, also polls the oldest stop time (`min(stop_ms)`, one index
//!   seek on `sessions_stop`); retention is running while it is below the cutoff. Stalls are
//!   split into those that overlap the retention pass and the others.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use rusqlite::{Connection, OpenFlags, OptionalExtension};
use wifisess_collector::store::postgres::schema::{self as pg_schema, is_url};

use crate::now_ms;

/// What to watch.
#[derive(Debug, Clone)]
pub struct MonitorConfig {
    /// The collector's database: an SQLite file or a `postgres://` URL.
    pub db: PathBuf,
    /// Stop when `counters.events` grew by this much since the first poll.
    pub expect_events: u64,
    /// Poll interval.
    pub interval: Duration,
    /// Give up after this long.
    pub timeout: Duration,
    /// Retention cutoff (ms): sessions stopped before it are being deleted.
    pub retention_cutoff_ms: Option<i64>,
    /// Give up when the counter has not advanced for this long after the first commit
    /// (the collector stopped ingesting); the report says so (`stuck`).
    pub stuck_after: Duration,
}

/// What was seen.
#[derive(Debug, Clone, Default)]
pub struct MonitorReport {
    /// Events committed since the first poll.
    pub events: u64,
    /// The counter at the first poll.
    pub base: u64,
    /// Wall ms of the first poll that saw events committed.
    pub first_commit_ms: i64,
    /// Wall ms of the first poll that saw the expected count.
    pub done_ms: i64,
    /// Longest interval without the counter advancing, ms (between first commit and done).
    pub max_gap_ms: i64,
    /// When that interval ended (wall ms).
    pub max_gap_end_ms: i64,
    /// Longest such interval overlapping the retention pass, ms.
    pub max_gap_retention_ms: i64,
    /// Longest such interval outside the retention pass, ms.
    pub max_gap_other_ms: i64,
    /// Wall ms when retention was first seen finished (0: no cutoff or never).
    pub retention_done_ms: i64,
    /// Oldest stop at the first poll (ms), with a cutoff.
    pub oldest_stop_at_start_ms: Option<i64>,
    /// Polls made.
    pub polls: u64,
    /// Longest single poll, µs (the measurement's own resolution).
    pub max_poll_us: u64,
    /// Wall ms of the last advance of the counter.
    pub last_change_ms: i64,
    /// The counter stopped advancing for `stuck_after` before the expected count.
    pub stuck: bool,
    /// PostgreSQL: CPU seconds of the monitor's own backend (its polls), to subtract from the
    /// server's CPU; none on SQLite or when `/proc` of the server is not readable.
    pub backend_cpu_s: Option<f64>,
}

fn open_sqlite(db: &PathBuf, deadline: Instant) -> anyhow::Result<Connection> {
    loop {
        if db.exists() {
            let c = Connection::open_with_flags(
                db,
                OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
            )
            .with_context(|| format!("opening {}", db.display()))?;
            c.busy_timeout(Duration::from_secs(5))?;
            let ready: bool = c
                .query_row(
                    "SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE name = 'counters')",
                    [],
                    |r| r.get(0),
                )
                .unwrap_or(false);
            if ready {
                return Ok(c);
            }
        }
        if Instant::now() > deadline {
            bail!("{} has no collector schema yet", db.display());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn open_postgres(url: &str, deadline: Instant) -> anyhow::Result<postgres::Client> {
    loop {
        let mut c = pg_schema::connect(url, true)
            .with_context(|| format!("connecting to {}", pg_schema::redact(url)))?;
        let ready: bool = c
            .query_one("SELECT to_regclass('counters') IS NOT NULL", &[])?
            .get(0);
        if ready {
            return Ok(c);
        }
        if Instant::now() > deadline {
            bail!("{} has no collector schema yet", pg_schema::redact(url));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The two readings, on either engine.
enum Source {
    Sqlite(Connection),
    Postgres {
        client: postgres::Client,
        count: postgres::Statement,
        oldest: postgres::Statement,
        backend_pid: i32,
    },
}

impl Source {
    fn open(db: &PathBuf, deadline: Instant) -> anyhow::Result<Source> {
        match db.to_str().filter(|s| is_url(s)) {
            Some(url) => {
                let mut client = open_postgres(url, deadline)?;
                let count = client.prepare("SELECT value FROM counters WHERE name = 'events'")?;
                let oldest = client.prepare("SELECT min(stop_ms) FROM sessions_closed")?;
                let backend_pid: i32 = client.query_one("SELECT pg_backend_pid()", &[])?.get(0);
                Ok(Source::Postgres {
                    client,
                    count,
                    oldest,
                    backend_pid,
                })
            }
            None => Ok(Source::Sqlite(open_sqlite(db, deadline)?)),
        }
    }

    fn events(&mut self) -> anyhow::Result<u64> {
        let v: Option<i64> = match self {
            Source::Sqlite(c) => c
                .prepare_cached("SELECT value FROM counters WHERE name = 'events'")?
                .query_row([], |r| r.get(0))
                .optional()?,
            Source::Postgres { client, count, .. } => {
                client.query_opt(&*count, &[])?.map(|r| r.get(0))
            }
        };
        Ok(v.unwrap_or(0) as u64)
    }

    fn oldest_stop(&mut self) -> anyhow::Result<Option<i64>> {
        Ok(match self {
            Source::Sqlite(c) => c
                .prepare_cached("SELECT min(stop_ms) FROM sessions WHERE stop_ms IS NOT NULL")?
                .query_row([], |r| r.get(0))?,
            Source::Postgres { client, oldest, .. } => client.query_one(&*oldest, &[])?.get(0),
        })
    }

    /// CPU seconds (user + system) of this monitor's own PostgreSQL backend so far, if its
    /// `/proc` entry is readable (same machine): a benchmark subtracts it from the server's.
    fn backend_cpu_s(&self) -> Option<f64> {
        let Source::Postgres { backend_pid, .. } = self else {
            return None;
        };
        proc_cpu_s(*backend_pid)
    }
}

/// utime + stime of a process, seconds (`/proc/PID/stat`, fields 14 and 15).
pub fn proc_cpu_s(pid: i32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may hold spaces: count from the closing parenthesis.
    let rest = &stat[stat.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks: u64 = f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?;
    // USER_HZ is 100 on every Linux ABI this runs on.
    Some(ticks as f64 / 100.0)
}

/// Polls until the expected count is committed.
///
/// # Errors
/// Timeout, or the database cannot be read.
pub fn run(cfg: &MonitorConfig) -> anyhow::Result<MonitorReport> {
    let deadline = Instant::now() + cfg.timeout;
    let mut src = Source::open(&cfg.db, deadline)?;
    let mut rep = MonitorReport::default();
    let mut last_change_ms = 0i64;
    let mut retaining = cfg.retention_cutoff_ms.is_some();
    loop {
        let t0 = Instant::now();
        let raw = src.events()?;
        if rep.polls == 0 {
            rep.base = raw;
        }
        let v = raw.saturating_sub(rep.base);
        if let (true, Some(cut)) = (retaining, cfg.retention_cutoff_ms) {
            let o = src.oldest_stop()?;
            if rep.polls == 0 {
                rep.oldest_stop_at_start_ms = o;
            }
            if o.is_none_or(|o| o >= cut) {
                retaining = false;
                rep.retention_done_ms = now_ms();
            }
        }
        rep.max_poll_us = rep.max_poll_us.max(t0.elapsed().as_micros() as u64);
        rep.polls += 1;
        let now = now_ms();
        if v != rep.events {
            if rep.first_commit_ms == 0 {
                rep.first_commit_ms = now;
            } else {
                let gap = now - last_change_ms;
                if gap > rep.max_gap_ms {
                    rep.max_gap_ms = gap;
                    rep.max_gap_end_ms = now;
                }
                // A gap overlaps the pass if the pass was still running when it began.
                let during = cfg.retention_cutoff_ms.is_some()
                    && (rep.retention_done_ms == 0 || rep.retention_done_ms > last_change_ms);
                if during {
                    rep.max_gap_retention_ms = rep.max_gap_retention_ms.max(gap);
                } else {
                    rep.max_gap_other_ms = rep.max_gap_other_ms.max(gap);
                }
            }
            last_change_ms = now;
            rep.events = v;
        }
        if v >= cfg.expect_events {
            rep.done_ms = now;
            rep.last_change_ms = last_change_ms;
            rep.backend_cpu_s = src.backend_cpu_s();
            return Ok(rep);
        }
        if rep.first_commit_ms > 0 && now - last_change_ms > cfg.stuck_after.as_millis() as i64 {
            rep.stuck = true;
            rep.last_change_ms = last_change_ms;
            rep.backend_cpu_s = src.backend_cpu_s();
            return Ok(rep);
        }
        if Instant::now() > deadline {
            bail!(
                "timed out after {:?}: {} of {} events committed",
                cfg.timeout,
                v,
                cfg.expect_events
            );
        }
        std::thread::sleep(cfg.interval);
    }
}
