//! Lifecycle jobs on the store (SPEC §5.2): retention (old closed sessions deleted in bounded
//! batches), expiry (open sessions of silent devices closed at the device's last-seen time),
//! the operator's forced close, and the schedule `run` follows. No clock: `now_ms` is passed in.

use rusqlite::{params, Connection, TransactionBehavior};
use serde::Serialize;

use crate::merge;

/// Most sessions deleted per retention transaction. Each deleted row costs an entry in
/// every sessions index (~10), so a batch of 5 000 held the write lock for ~0.4 s on a
/// loaded 2-core machine (docs/BENCHMARKS.md, retention stall): the batches are sized by
/// [`BatchSizer`] to take about [`PRUNE_STEP_MS`] instead, up to this bound.
pub const PRUNE_BATCH: u32 = 5_000;
/// Fewest sessions per retention transaction (so a pass always progresses).
pub const PRUNE_BATCH_MIN: u32 = 50;
/// What one retention transaction should take, ms: ingest waits at most about this long
/// for the writer (one step runs between group commits).
pub const PRUNE_STEP_MS: u64 = 40;
/// How often `run` looks for silent devices.
pub const EXPIRE_EVERY_MS: i64 = 5 * 60_000;
/// How often `run` applies retention.
pub const RETAIN_EVERY_MS: i64 = 24 * 3_600_000;

const PRUNE_PLAN_SQL: &str = "SELECT count(*), min(stop_ms), max(stop_ms) FROM sessions
         WHERE stop_ms IS NOT NULL AND stop_ms < ?1";
const PRUNE_BATCH_SQL: &str = "DELETE FROM sessions WHERE rowid IN (
               SELECT rowid FROM sessions WHERE stop_ms IS NOT NULL AND stop_ms < ?1 LIMIT ?2)
             RETURNING stop_ms";
const EXPIRE_PLAN_SQL: &str =
    "SELECT d.id, count(*), max(coalesce(d.last_seen_ms, 0), max(s.last_seen_ms))
         FROM devices d JOIN sessions s ON s.device_id = d.id AND s.stop_ms IS NULL
         WHERE coalesce(d.last_seen_ms, 0) <= ?1 GROUP BY d.id ORDER BY d.id";
const FORCE_PLAN_SQL: &str = "SELECT s.device_id, count(*), max(?1, max(s.last_seen_ms))
         FROM sessions s WHERE s.stop_ms IS NULL GROUP BY s.device_id ORDER BY s.device_id";

/// The statements above with the name `EXPLAIN QUERY PLAN` checks give them (query tests).
#[cfg(test)]
pub(crate) const PLANNED_SQL: [(&str, &str); 4] = [
    ("prune dry run", PRUNE_PLAN_SQL),
    ("prune batch", PRUNE_BATCH_SQL),
    ("expire plan", EXPIRE_PLAN_SQL),
    ("force plan", FORCE_PLAN_SQL),
];

/// What retention deletes (dry run) or deleted: closed sessions that stopped before a cutoff.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct PruneReport {
    /// Sessions.
    pub sessions: u64,
    /// Earliest stop among them, ms since the epoch.
    pub oldest_stop_ms: Option<i64>,
    /// Latest stop among them, ms.
    pub newest_stop_ms: Option<i64>,
}

impl PruneReport {
    fn add(&mut self, o: PruneReport) {
        self.sessions += o.sessions;
        self.oldest_stop_ms = opt(self.oldest_stop_ms, o.oldest_stop_ms, i64::min);
        self.newest_stop_ms = opt(self.newest_stop_ms, o.newest_stop_ms, i64::max);
    }
}

fn opt(a: Option<i64>, b: Option<i64>, f: fn(i64, i64) -> i64) -> Option<i64> {
    match (a, b) {
        (Some(x), Some(y)) => Some(f(x, y)),
        (x, y) => x.or(y),
    }
}

/// The retention cutoff: sessions that stopped before it are deleted.
pub fn retention_cutoff(now_ms: i64, days: u32) -> i64 {
    now_ms - i64::from(days) * 86_400_000
}

/// What [`prune`] with the same cutoff would delete; changes nothing.
///
/// # Errors
/// SQLite errors.
pub fn prune_plan(conn: &Connection, cutoff_ms: i64) -> rusqlite::Result<PruneReport> {
    conn.query_row(PRUNE_PLAN_SQL, [cutoff_ms], |r| {
        Ok(PruneReport {
            sessions: r.get::<_, i64>(0)? as u64,
            oldest_stop_ms: r.get(1)?,
            newest_stop_ms: r.get(2)?,
        })
    })
}

/// Deletes at most `limit` sessions that stopped before `cutoff_ms`, in one transaction.
///
/// # Errors
/// SQLite errors (the batch is rolled back).
pub fn prune_batch(
    conn: &mut Connection,
    cutoff_ms: i64,
    limit: u32,
) -> rusqlite::Result<PruneReport> {
    let tx = conn.transaction()?;
    let mut rep = PruneReport::default();
    {
        let mut st = tx.prepare_cached(PRUNE_BATCH_SQL)?;
        let mut rows = st.query(params![cutoff_ms, limit])?;
        while let Some(r) = rows.next()? {
            let ms: i64 = r.get(0)?;
            rep.add(PruneReport {
                sessions: 1,
                oldest_stop_ms: Some(ms),
                newest_stop_ms: Some(ms),
            });
        }
    }
    tx.commit()?;
    Ok(rep)
}

/// Sizes retention batches so that each transaction takes about [`PRUNE_STEP_MS`]: after
/// each batch the next size is scaled by target / measured time (at most doubling, within
/// [`PRUNE_BATCH_MIN`] ..= [`PRUNE_BATCH`]). Pure: the caller measures and reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchSizer {
    limit: u32,
}

impl Default for BatchSizer {
    /// Starts at the smallest batch: the first one runs on a cold page cache (500 sessions
    /// took ~97 ms there against ~40 for the ~250 the sizer settles on; docs/BENCHMARKS.md),
    /// and doubling reaches the settled size in a few transactions.
    fn default() -> Self {
        BatchSizer {
            limit: PRUNE_BATCH_MIN,
        }
    }
}

impl BatchSizer {
    /// Sessions to delete in the next transaction.
    pub fn limit(&self) -> u32 {
        self.limit
    }

    /// A batch of `limit()` rows took `took_ms`: sizes the next one.
    pub fn took(&mut self, took_ms: u64) {
        let scaled = u64::from(self.limit) * PRUNE_STEP_MS / took_ms.max(1);
        let capped = scaled.min(u64::from(self.limit) * 2);
        self.limit = capped.clamp(u64::from(PRUNE_BATCH_MIN), u64::from(PRUNE_BATCH)) as u32;
    }
}

/// Deletes every session that stopped before `cutoff_ms`, in transactions sized by a
/// [`BatchSizer`] (the `prune` command may run while `run` ingests on another connection:
/// each transaction holds the write lock for about [`PRUNE_STEP_MS`]).
///
/// # Errors
/// SQLite errors; batches committed before the error stay deleted.
pub fn prune(conn: &mut Connection, cutoff_ms: i64) -> rusqlite::Result<PruneReport> {
    let mut total = PruneReport::default();
    let mut sizer = BatchSizer::default();
    loop {
        let limit = sizer.limit();
        let began = std::time::Instant::now();
        let b = prune_batch(conn, cutoff_ms, limit)?;
        sizer.took(began.elapsed().as_millis() as u64);
        total.add(b);
        if b.sessions < u64::from(limit) {
            return Ok(total);
        }
    }
}

/// Open sessions of one device that expiry or a forced close closes, and at what time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CloseItem {
    /// Device id.
    pub device_id: String,
    /// Open sessions of the device.
    pub sessions: u64,
    /// The stop time they get, ms since the epoch.
    pub at_ms: i64,
}

/// Devices silent for `hours` (collector receive time at or before `now_ms − hours`) that
/// have open sessions; each closes at its last-seen time. The stop is the later of the
/// device's last receive time and the newest event time of its open sessions, so an agent
/// clock running ahead of the collector's cannot keep a session open.
///
/// # Errors
/// SQLite errors.
pub fn expire_plan(conn: &Connection, now_ms: i64, hours: u32) -> rusqlite::Result<Vec<CloseItem>> {
    let silent_since = now_ms - i64::from(hours) * 3_600_000;
    close_plan(conn, EXPIRE_PLAN_SQL, silent_since)
}

/// Every device with open sessions; each closes at `now_ms` (or the newest event time of its
/// open sessions, if an agent clock is ahead).
///
/// # Errors
/// SQLite errors.
pub fn force_plan(conn: &Connection, now_ms: i64) -> rusqlite::Result<Vec<CloseItem>> {
    close_plan(conn, FORCE_PLAN_SQL, now_ms)
}

fn close_plan(conn: &Connection, sql: &str, arg: i64) -> rusqlite::Result<Vec<CloseItem>> {
    let mut st = conn.prepare_cached(sql)?;
    let rows = st.query_map([arg], |r| {
        Ok(CloseItem {
            device_id: r.get(0)?,
            sessions: r.get::<_, i64>(1)? as u64,
            at_ms: r.get(2)?,
        })
    })?;
    rows.collect()
}

/// Closes what [`expire_plan`] lists (reason `expired`, provisional), in one transaction.
/// Returns what it closed. Used by `run`'s schedule, the `expire` command and
/// `POST /api/v1/sessions/refresh`.
///
/// The transaction is `IMMEDIATE` (it takes the write lock before reading the plan): the
/// command and the HTTP refresh write on their own connection while `run`'s writer thread
/// owns another, and a deferred read-then-write transaction would fail with `SQLITE_BUSY`
/// (no busy wait) if the other connection committed in between.
///
/// # Errors
/// SQLite errors (nothing is changed).
pub fn expire(conn: &mut Connection, now_ms: i64, hours: u32) -> rusqlite::Result<Vec<CloseItem>> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let plan = expire_plan(&tx, now_ms, hours)?;
    let done = apply_close(&tx, plan, merge::expire_device)?;
    tx.commit()?;
    Ok(done)
}

/// Closes every open session now (reason `forced`, provisional), in one transaction
/// (`IMMEDIATE`, see [`expire`]). Returns what it closed.
///
/// # Errors
/// SQLite errors (nothing is changed).
pub fn force(conn: &mut Connection, now_ms: i64) -> rusqlite::Result<Vec<CloseItem>> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let plan = force_plan(&tx, now_ms)?;
    let done = apply_close(&tx, plan, merge::force_device)?;
    tx.commit()?;
    Ok(done)
}

fn apply_close(
    tx: &rusqlite::Transaction,
    plan: Vec<CloseItem>,
    close: fn(&rusqlite::Transaction, &str, i64) -> Result<usize, merge::StoreError>,
) -> rusqlite::Result<Vec<CloseItem>> {
    let mut done = Vec::with_capacity(plan.len());
    for item in plan {
        let n = close(tx, &item.device_id, item.at_ms)?;
        done.push(CloseItem {
            sessions: n as u64,
            ..item
        });
    }
    Ok(done)
}

/// One unit of lifecycle work for the writer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Job {
    /// Close the open sessions of silent devices.
    Expire,
    /// Delete one batch of sessions that stopped before the cutoff.
    Prune {
        /// Stop-time cutoff, ms.
        cutoff_ms: i64,
        /// Sessions to delete in this transaction at most.
        limit: u32,
    },
}

/// When `run` does lifecycle work: expiry every [`EXPIRE_EVERY_MS`], retention every
/// [`RETAIN_EVERY_MS`] as a series of batches sized by a [`BatchSizer`] that the writer
/// interleaves with ingest. Both run first at start. `0` days / hours disables a job.
#[derive(Debug, Clone)]
pub struct Schedule {
    retention_days: u32,
    expire_hours: u32,
    next_expire_ms: i64,
    next_retain_ms: i64,
    /// A retention pass in progress: its cutoff and what it deleted so far.
    pruning: Option<(i64, PruneReport)>,
    /// Sizes of the retention batches.
    sizer: BatchSizer,
}

impl Schedule {
    /// A schedule whose first expiry and retention are due at `now_ms`.
    pub fn new(retention_days: u32, expire_hours: u32, now_ms: i64) -> Schedule {
        Schedule {
            retention_days,
            expire_hours,
            next_expire_ms: now_ms,
            next_retain_ms: now_ms,
            pruning: None,
            sizer: BatchSizer::default(),
        }
    }

    /// True while a retention pass has batches left: the writer should not block waiting
    /// for messages.
    pub fn busy(&self) -> bool {
        self.pruning.is_some()
    }

    /// Milliseconds until the next job is due (0 if one is due or a pass is in progress).
    pub fn wait_ms(&self, now_ms: i64) -> i64 {
        if self.busy() {
            return 0;
        }
        let mut next = i64::MAX;
        if self.expire_hours > 0 {
            next = next.min(self.next_expire_ms);
        }
        if self.retention_days > 0 {
            next = next.min(self.next_retain_ms);
        }
        next.saturating_sub(now_ms).max(0)
    }

    /// The job due at `now_ms`, if any (expiry before retention).
    pub fn due(&mut self, now_ms: i64) -> Option<Job> {
        if self.expire_hours > 0 && now_ms >= self.next_expire_ms {
            self.next_expire_ms = now_ms + EXPIRE_EVERY_MS;
            return Some(Job::Expire);
        }
        if self.pruning.is_none() && self.retention_days > 0 && now_ms >= self.next_retain_ms {
            self.next_retain_ms = now_ms + RETAIN_EVERY_MS;
            self.pruning = Some((
                retention_cutoff(now_ms, self.retention_days),
                PruneReport::default(),
            ));
        }
        let limit = self.sizer.limit();
        self.pruning
            .map(|(cutoff_ms, _)| Job::Prune { cutoff_ms, limit })
    }

    /// Records a finished retention batch of at most `limit` sessions that took `took_ms`;
    /// returns the pass's total when it is complete (the batch came back short).
    pub fn pruned(&mut self, batch: PruneReport, limit: u32, took_ms: u64) -> Option<PruneReport> {
        let (_, total) = self.pruning.as_mut()?;
        total.add(batch);
        let total = *total;
        self.sizer.took(took_ms);
        if batch.sessions < u64::from(limit) {
            self.pruning = None;
            return Some(total);
        }
        None
    }

    /// Runs the job due at `now_ms`, if any: at most one transaction. Failures are logged and
    /// the job retried at its next turn; ingest goes on. Returns the devices whose sessions
    /// an expiry closed (for the writer's commit hook; empty otherwise).
    pub fn run_due(&mut self, conn: &mut Connection, now_ms: i64) -> Vec<String> {
        match self.due(now_ms) {
            None => {}
            Some(Job::Expire) => match expire(conn, now_ms, self.expire_hours) {
                Ok(done) => {
                    for d in done.iter().filter(|d| d.sessions > 0) {
                        log::info!(
                            "expiry: device {} silent for {} h: closed {} sessions at {}",
                            d.device_id,
                            self.expire_hours,
                            d.sessions,
                            crate::timefmt::rfc3339_ms(d.at_ms)
                        );
                    }
                    return done
                        .into_iter()
                        .filter(|d| d.sessions > 0)
                        .map(|d| d.device_id)
                        .collect();
                }
                Err(e) => log::error!("expiry failed (retried in 5 minutes): {e}"),
            },
            Some(Job::Prune { cutoff_ms, limit }) => {
                // The step's duration sizes the next one (the only clock read here: I/O side).
                let began = std::time::Instant::now();
                let r = prune_batch(conn, cutoff_ms, limit);
                let took_ms = began.elapsed().as_millis() as u64;
                match r {
                    Ok(b) => {
                        if let Some(t) = self.pruned(b, limit, took_ms) {
                            if t.sessions > 0 {
                                log::info!(
                                    "retention: deleted {} sessions that stopped before {} \
                                 (stops from {} to {})",
                                    t.sessions,
                                    crate::timefmt::rfc3339_ms(cutoff_ms),
                                    t.oldest_stop_ms
                                        .map(crate::timefmt::rfc3339_ms)
                                        .unwrap_or_default(),
                                    t.newest_stop_ms
                                        .map(crate::timefmt::rfc3339_ms)
                                        .unwrap_or_default(),
                                );
                            }
                        }
                    }
                    Err(e) => {
                        self.pruning = None;
                        self.next_retain_ms = now_ms + EXPIRE_EVERY_MS;
                        log::error!("retention failed (retried in 5 minutes): {e}");
                    }
                }
            }
        }
        Vec::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedule_runs_both_at_start_then_on_their_periods() {
        let mut s = Schedule::new(180, 4, 1_000);
        assert_eq!(s.wait_ms(1_000), 0);
        assert_eq!(s.due(1_000), Some(Job::Expire));
        let cutoff = retention_cutoff(1_000, 180);
        let first = BatchSizer::default().limit();
        assert_eq!(
            s.due(1_000),
            Some(Job::Prune {
                cutoff_ms: cutoff,
                limit: first
            })
        );
        assert!(s.busy());
        let full = PruneReport {
            sessions: u64::from(first),
            oldest_stop_ms: Some(5),
            newest_stop_ms: Some(9),
        };
        // A fast batch: the next one may be twice as large.
        assert_eq!(s.pruned(full, first, 1), None);
        assert_eq!(
            s.due(1_001),
            Some(Job::Prune {
                cutoff_ms: cutoff,
                limit: first * 2
            })
        );
        let last = PruneReport {
            sessions: 1,
            oldest_stop_ms: Some(3),
            newest_stop_ms: Some(7),
        };
        let total = s.pruned(last, first * 2, 1).unwrap();
        assert_eq!(total.sessions, u64::from(first) + 1);
        assert_eq!(
            (total.oldest_stop_ms, total.newest_stop_ms),
            (Some(3), Some(9))
        );
        assert!(!s.busy());
        assert_eq!(s.due(1_002), None);
        assert_eq!(s.wait_ms(1_000), EXPIRE_EVERY_MS);
        assert_eq!(s.due(1_000 + EXPIRE_EVERY_MS), Some(Job::Expire));
        assert_eq!(s.due(1_000 + EXPIRE_EVERY_MS), None);
    }

    /// Regression (docs/BENCHMARKS.md, retention stall): fixed batches of 5 000 sessions held
    /// the writer ~0.4 s on a loaded machine; batches are sized to take about PRUNE_STEP_MS.
    #[test]
    fn retention_batches_are_sized_by_their_duration() {
        let mut z = BatchSizer::default();
        assert_eq!(z.limit(), PRUNE_BATCH_MIN);
        z.took(PRUNE_STEP_MS / 10);
        assert_eq!(z.limit(), PRUNE_BATCH_MIN * 2, "at most doubling");
        z.took(PRUNE_STEP_MS / 2);
        assert_eq!(z.limit(), PRUNE_BATCH_MIN * 4);
        z.took(PRUNE_STEP_MS * 4);
        assert_eq!(z.limit(), PRUNE_BATCH_MIN);
        z.took(PRUNE_STEP_MS);
        assert_eq!(z.limit(), PRUNE_BATCH_MIN);
        for _ in 0..20 {
            z.took(0);
        }
        assert_eq!(z.limit(), PRUNE_BATCH);
        for _ in 0..20 {
            z.took(10_000);
        }
        assert_eq!(z.limit(), PRUNE_BATCH_MIN);
    }

    #[test]
    fn zero_disables_a_job() {
        let mut s = Schedule::new(0, 0, 1_000);
        assert_eq!(s.due(i64::MAX / 2), None);
        assert_eq!(s.wait_ms(0), i64::MAX);
    }
}
