//! Lifecycle jobs (SPEC §5.2): retention (old closed sessions, failed joins and roams deleted
//! in bounded batches; trends after `aggregate_retention_days`), expiry (open sessions of
//! silent devices closed at the device's last-seen time), the operator's forced close, and
//! the schedule `run` follows, which also runs the derive steps ([`crate::derive`]). They
//! write through the [`Writer`]; no clock: `now_ms` is passed in.

use crate::core::derived::DAY_MS;
use crate::derive::DeriveConfig;
use crate::store::{Closable, PruneReport, Store, StoreError};
use crate::writer::{Committed, Writer};

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

/// The retention cutoff: sessions that stopped before it are deleted.
pub fn retention_cutoff(now_ms: i64, days: u32) -> i64 {
    now_ms - i64::from(days) * 86_400_000
}

/// How far before a pending mark's earliest instant retention stops: a derive step reads
/// sessions up to a roam window and a day before the instants a mark names.
pub const MARK_MARGIN_MS: i64 = 2 * DAY_MS;

/// The cutoff retention really uses: `cutoff_ms`, or earlier while a pending mark still
/// needs rows of before it (retention never deletes the rows a trend bucket or a roam is
/// still to be derived from; docs/collector.md, "Derived data").
///
/// # Errors
/// Store errors.
pub fn effective_cutoff(s: &mut dyn Store, cutoff_ms: i64) -> Result<i64, StoreError> {
    Ok(match s.marks_floor()? {
        Some(floor) => cutoff_ms.min(floor.saturating_sub(MARK_MARGIN_MS)),
        None => cutoff_ms,
    })
}

/// How often `run` applies the aggregate retention.
pub const AGGREGATE_RETAIN_EVERY_MS: i64 = RETAIN_EVERY_MS;

/// How long an idle writer waits before it looks for marks again (another collector's, or
/// the `expire` command's).
pub const DERIVE_POLL_MS: i64 = 2_000;

/// The expiry's silence threshold: devices last heard at or before it are silent.
pub fn silent_since(now_ms: i64, hours: u32) -> i64 {
    now_ms - i64::from(hours) * 3_600_000
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
/// [`BatchSizer`] (the `prune` command may run while `run` ingests: each transaction holds
/// the write lock for about [`PRUNE_STEP_MS`]).
///
/// # Errors
/// Store errors; batches committed before the error stay deleted.
pub fn prune(w: &mut Writer, cutoff_ms: i64) -> Result<PruneReport, StoreError> {
    let cutoff_ms = w.in_transaction(|s| effective_cutoff(s, cutoff_ms))?;
    let mut total = PruneReport::default();
    let mut sizer = BatchSizer::default();
    loop {
        let limit = sizer.limit();
        let began = std::time::Instant::now();
        let b = w.prune_batch(cutoff_ms, limit)?;
        sizer.took(began.elapsed().as_millis() as u64);
        total.add(b);
        if !b.full(limit) {
            return Ok(total);
        }
    }
}

/// Deletes every trend row (hourly, daily, day sets) of before `cutoff_ms`, in bounded
/// batches; returns how many went.
///
/// # Errors
/// Store errors; batches committed before the error stay deleted.
pub fn prune_aggregates(w: &mut Writer, cutoff_ms: i64) -> Result<u64, StoreError> {
    let mut total = 0;
    loop {
        let n = w.in_transaction(|s| s.prune_aggregates_batch(cutoff_ms, PRUNE_BATCH))?;
        total += n;
        if n < u64::from(PRUNE_BATCH) {
            return Ok(total);
        }
    }
}

/// Closes the open sessions of devices silent for `hours` at each one's last-seen time
/// (reason `expired`, provisional), in one transaction. Used by `run`'s schedule, the
/// `expire` command and `POST /api/v1/sessions/refresh`. The last-seen time is the later of
/// the device's last receive time and the newest event of its open sessions, so an agent clock
/// ahead of the collector's cannot keep a session open.
///
/// # Errors
/// Store errors (nothing is changed).
pub fn expire(
    w: &mut Writer,
    now_ms: i64,
    hours: u32,
) -> Result<(Vec<Closable>, Committed), StoreError> {
    let since = silent_since(now_ms, hours);
    w.close_planned(|s| s.expire_plan(since), false)
}

/// [`expire`] as `run`'s schedule does it: once per fleet. The transaction first claims the
/// job ([`crate::store::Store::claim_job`]); if another collector of the same database ran it
/// less than [`EXPIRE_EVERY_MS`] ago, it closes nothing.
///
/// # Errors
/// Store errors (nothing is changed).
pub fn expire_claimed(
    w: &mut Writer,
    now_ms: i64,
    hours: u32,
) -> Result<(Vec<Closable>, Committed), StoreError> {
    let since = silent_since(now_ms, hours);
    w.close_planned(
        |s| {
            if s.claim_job("expire", now_ms, EXPIRE_EVERY_MS)? {
                s.expire_plan(since)
            } else {
                Ok(Vec::new())
            }
        },
        false,
    )
}

/// Closes every open session now (reason `forced`, provisional), in one transaction.
///
/// # Errors
/// Store errors (nothing is changed).
pub fn force(w: &mut Writer, now_ms: i64) -> Result<(Vec<Closable>, Committed), StoreError> {
    w.close_planned(|s| s.force_plan(now_ms), true)
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
    /// Delete one batch of trend rows of before the cutoff.
    PruneAggregates {
        /// Cutoff, ms.
        cutoff_ms: i64,
    },
    /// One derive step.
    Derive,
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
    /// Whether the pass in progress was claimed for the fleet (first batch not run yet:
    /// false).
    pass_claimed: bool,
    /// Sizes of the retention batches.
    sizer: BatchSizer,
    /// `aggregate_retention_days` (0: kept forever).
    aggregate_days: u32,
    next_aggregate_ms: i64,
    /// An aggregate retention pass in progress: its cutoff and the rows deleted so far.
    pruning_aggregates: Option<(i64, u64)>,
    /// The derive step's settings; `None`: no derive steps (tests of the other jobs).
    derive: Option<DeriveConfig>,
    /// Marks may be waiting (a commit since the last idle step).
    derive_pending: bool,
    /// When an idle writer looks for marks again.
    next_derive_ms: i64,
    /// The last step taken was a derive step (derive and retention take turns).
    derived_last: bool,
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
            pass_claimed: false,
            sizer: BatchSizer::default(),
            aggregate_days: 0,
            next_aggregate_ms: now_ms,
            pruning_aggregates: None,
            derive: None,
            derive_pending: false,
            next_derive_ms: now_ms,
            derived_last: false,
        }
    }

    /// Also runs derive steps with `cfg` (first at `now_ms`), and the aggregate retention of
    /// `aggregate_days` (0: never).
    pub fn with_derive(mut self, cfg: DeriveConfig, aggregate_days: u32) -> Schedule {
        self.derive = Some(cfg);
        self.derive_pending = true;
        self.aggregate_days = aggregate_days;
        self
    }

    /// A commit may have left marks: derive steps run until one finds nothing.
    pub fn derive_soon(&mut self) {
        if self.derive.is_some() {
            self.derive_pending = true;
        }
    }

    /// True while a retention pass has batches left or marks wait: the writer should not
    /// block waiting for messages.
    pub fn busy(&self) -> bool {
        self.pruning.is_some() || self.pruning_aggregates.is_some() || self.derive_pending
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
        if self.aggregate_days > 0 {
            next = next.min(self.next_aggregate_ms);
        }
        if self.derive.is_some() {
            next = next.min(self.next_derive_ms);
        }
        next.saturating_sub(now_ms).max(0)
    }

    /// The job due at `now_ms`, if any: expiry first; then derive steps and retention
    /// batches take turns (neither starves the other under load), the aggregate retention
    /// last.
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
            self.pass_claimed = false;
        }
        if self.pruning_aggregates.is_none()
            && self.aggregate_days > 0
            && now_ms >= self.next_aggregate_ms
        {
            self.next_aggregate_ms = now_ms + AGGREGATE_RETAIN_EVERY_MS;
            self.pruning_aggregates = Some((retention_cutoff(now_ms, self.aggregate_days), 0));
        }
        if self.derive.is_some() && now_ms >= self.next_derive_ms {
            self.derive_pending = true;
        }
        let derive = self.derive_pending && self.derive.is_some();
        let limit = self.sizer.limit();
        let prune = self
            .pruning
            .map(|(cutoff_ms, _)| Job::Prune { cutoff_ms, limit });
        let job = match (derive, prune) {
            (true, Some(p)) if self.derived_last => Some(p),
            (true, _) => Some(Job::Derive),
            (false, Some(p)) => Some(p),
            (false, None) => self
                .pruning_aggregates
                .map(|(cutoff_ms, _)| Job::PruneAggregates { cutoff_ms }),
        };
        self.derived_last = job == Some(Job::Derive);
        job
    }

    /// Records a derive step: an idle one (nothing marked) ends the run of steps until the
    /// next commit or poll; a failed one backs off.
    pub fn derived(&mut self, idle_or_failed: bool, now_ms: i64) {
        if idle_or_failed {
            self.derive_pending = false;
            self.next_derive_ms = now_ms + DERIVE_POLL_MS;
        }
    }

    /// Records a finished retention batch of at most `limit` sessions that took `took_ms`;
    /// returns the pass's total when it is complete (the batch came back short).
    pub fn pruned(&mut self, batch: PruneReport, limit: u32, took_ms: u64) -> Option<PruneReport> {
        let (_, total) = self.pruning.as_mut()?;
        total.add(batch);
        let total = *total;
        self.sizer.took(took_ms);
        if !batch.full(limit) {
            self.pruning = None;
            return Some(total);
        }
        None
    }

    /// Runs the job due at `now_ms`, if any: at most one transaction. Failures are logged and
    /// the job retried at its next turn; ingest goes on. Returns what an expiry committed
    /// (for the writer's commit notice), if it closed anything.
    pub fn run_due(&mut self, w: &mut Writer, now_ms: i64) -> Option<Committed> {
        match self.due(now_ms)? {
            Job::Derive => {
                let cfg = self.derive.unwrap_or_default();
                match crate::derive::step(w, &cfg, now_ms) {
                    Ok(r) => {
                        if !r.is_idle() {
                            log::debug!(
                                "derive: {} clients, {} hours, {} roams",
                                r.clients,
                                r.hours,
                                r.roams
                            );
                        }
                        self.derived(r.is_idle(), now_ms);
                    }
                    Err(e) => {
                        log::error!("derive step failed (retried in 2 s): {e}");
                        self.derived(true, now_ms);
                    }
                }
                None
            }
            Job::PruneAggregates { cutoff_ms } => {
                match w.in_transaction(|s| s.prune_aggregates_batch(cutoff_ms, PRUNE_BATCH)) {
                    Ok(n) => {
                        if let Some((_, total)) = self.pruning_aggregates.as_mut() {
                            *total += n;
                            if n < u64::from(PRUNE_BATCH) {
                                if *total > 0 {
                                    log::info!(
                                        "aggregate retention: deleted {total} trend rows of \
                                         before {}",
                                        crate::timefmt::rfc3339_ms(cutoff_ms)
                                    );
                                }
                                self.pruning_aggregates = None;
                            }
                        }
                    }
                    Err(e) => {
                        self.pruning_aggregates = None;
                        self.next_aggregate_ms = now_ms + EXPIRE_EVERY_MS;
                        log::error!("aggregate retention failed (retried in 5 minutes): {e}");
                    }
                }
                None
            }
            Job::Expire => match expire_claimed(w, now_ms, self.expire_hours) {
                Ok((done, committed)) => {
                    for d in done.iter().filter(|d| d.sessions > 0) {
                        log::info!(
                            "expiry: device {} silent for {} h: closed {} sessions at {}",
                            d.device_id,
                            self.expire_hours,
                            d.sessions,
                            crate::timefmt::rfc3339_ms(d.at_ms)
                        );
                    }
                    (!committed.devices.is_empty()).then_some(committed)
                }
                Err(e) => {
                    log::error!("expiry failed (retried in 5 minutes): {e}");
                    None
                }
            },
            Job::Prune { cutoff_ms, limit } => {
                // Once per fleet: a pass another collector of the same database started less
                // than a day ago is left to it. The claimed pass keeps the rows pending marks
                // still need (its cutoff may move earlier, never later).
                let mut cutoff_ms = cutoff_ms;
                if !self.pass_claimed {
                    let claimed = w
                        .claim_job("retention", now_ms, RETAIN_EVERY_MS)
                        .and_then(|c| {
                            if c {
                                w.in_transaction(|s| effective_cutoff(s, cutoff_ms))
                                    .map(Some)
                            } else {
                                Ok(None)
                            }
                        });
                    match claimed {
                        Ok(Some(eff)) => {
                            self.pass_claimed = true;
                            if eff < cutoff_ms {
                                log::info!(
                                    "retention: keeping rows from {} on until their roams and \
                                     trends are derived",
                                    crate::timefmt::rfc3339_ms(eff)
                                );
                            }
                            cutoff_ms = eff;
                            if let Some(p) = self.pruning.as_mut() {
                                p.0 = eff;
                            }
                        }
                        Ok(None) => {
                            log::debug!("retention: another collector runs it today");
                            self.pruning = None;
                            return None;
                        }
                        Err(e) => {
                            self.pruning = None;
                            self.next_retain_ms = now_ms + EXPIRE_EVERY_MS;
                            log::error!("retention failed (retried in 5 minutes): {e}");
                            return None;
                        }
                    }
                }
                // The step's duration sizes the next one (the only clock read here: I/O side).
                let began = std::time::Instant::now();
                let r = w.prune_batch(cutoff_ms, limit);
                let took_ms = began.elapsed().as_millis() as u64;
                match r {
                    Ok(b) => {
                        if let Some(t) = self.pruned(b, limit, took_ms) {
                            if t.sessions + t.failed_joins + t.roams > 0 {
                                log::info!(
                                    "retention: deleted {} sessions that stopped before {} \
                                     (stops from {} to {}), {} failed joins, {} roams",
                                    t.sessions,
                                    crate::timefmt::rfc3339_ms(cutoff_ms),
                                    t.oldest_stop_ms
                                        .map(crate::timefmt::rfc3339_ms)
                                        .unwrap_or_default(),
                                    t.newest_stop_ms
                                        .map(crate::timefmt::rfc3339_ms)
                                        .unwrap_or_default(),
                                    t.failed_joins,
                                    t.roams,
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
                None
            }
        }
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
            ..PruneReport::default()
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
            ..PruneReport::default()
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
