//! The derive step (docs/collector.md, "Derived data"): the writer thread keeps roams and
//! trends current from the dirty marks its transactions leave ([`crate::core::derived`]).
//! One step is one transaction of bounded work: it takes the oldest client marks, recomputes
//! each client's roams and per-day client sets over the instants its mark names (± the roam
//! window) from the stored sessions, marks the hours whose roams or day sets changed, then
//! takes the oldest hour marks and recomputes those hourly rows and their days' daily rows,
//! and deletes the marks it processed (only those not marked again meanwhile). A step run
//! twice, or by two collectors, gives the same rows: everything is recomputed from stored
//! rows, never added up from events. No clock: `now_ms` is passed in.

use std::collections::{BTreeMap, BTreeSet};

use crate::core::derived::{day_of, Marks, DAY_MS, HOUR_MS};
use crate::core::roams::{roams_into, Roam};
use crate::core::trends::{client_days, hourly};
use crate::store::{Store, StoreError};
use crate::writer::Writer;

/// The default `roam_window_s`: a session on another AP starting this long after the last
/// one stopped is a roam.
pub const ROAM_WINDOW_S: u32 = 10;

/// Client marks one step takes at most.
pub const CLIENT_MARKS_PER_STEP: u32 = 256;

/// Hour marks one step takes at most.
pub const BUCKET_MARKS_PER_STEP: u32 = 256;

/// What a derive step needs from the configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeriveConfig {
    /// `roam_window_s`, ms.
    pub roam_window_ms: i64,
}

impl Default for DeriveConfig {
    fn default() -> Self {
        DeriveConfig {
            roam_window_ms: i64::from(ROAM_WINDOW_S) * 1000,
        }
    }
}

/// What one step did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StepReport {
    /// Client marks processed.
    pub clients: usize,
    /// Hour marks processed.
    pub hours: usize,
    /// Roams written.
    pub roams: usize,
}

impl StepReport {
    /// Nothing was marked: the derived data is current.
    pub fn is_idle(&self) -> bool {
        self.clients == 0 && self.hours == 0
    }
}

/// The first whole day at or after `ms`.
fn ceil_day(ms: i64) -> i64 {
    let d = day_of(ms);
    if d == ms {
        d
    } else {
        d.saturating_add(DAY_MS)
    }
}

/// One step: up to [`CLIENT_MARKS_PER_STEP`] client marks, then up to
/// [`BUCKET_MARKS_PER_STEP`] hour marks (those the clients just left included), in one
/// transaction.
///
/// # Errors
/// Store errors (rolled back: the marks stay for the next step).
pub fn step(w: &mut Writer, cfg: &DeriveConfig, now_ms: i64) -> Result<StepReport, StoreError> {
    w.in_transaction(|s| step_in(s, cfg, now_ms))
}

/// Steps until nothing is marked (tests, and a freshly migrated database); returns the sum.
///
/// # Errors
/// Store errors.
pub fn until_idle(
    w: &mut Writer,
    cfg: &DeriveConfig,
    now_ms: i64,
) -> Result<StepReport, StoreError> {
    let mut total = StepReport::default();
    loop {
        let r = step(w, cfg, now_ms)?;
        if r.is_idle() {
            return Ok(total);
        }
        total.clients += r.clients;
        total.hours += r.hours;
        total.roams += r.roams;
    }
}

/// [`step`] inside a transaction the caller opened.
///
/// # Errors
/// Store errors.
pub fn step_in(
    s: &mut dyn Store,
    cfg: &DeriveConfig,
    now_ms: i64,
) -> Result<StepReport, StoreError> {
    // Rows before the retention horizon are gone: what was derived from them is final.
    let horizon = s.pruned_before()?.unwrap_or(i64::MIN);
    let mut rep = StepReport::default();
    let (clients, roams) = derive_clients(s, cfg, horizon, now_ms)?;
    rep.clients = clients;
    rep.roams = roams;
    rep.hours = derive_hours(s, horizon)?;
    Ok(rep)
}

/// Recomputes the roams and day sets of the oldest marked clients; returns (clients, roams
/// written).
fn derive_clients(
    s: &mut dyn Store,
    cfg: &DeriveConfig,
    horizon: i64,
    now_ms: i64,
) -> Result<(usize, usize), StoreError> {
    let marks = s.take_client_marks(CLIENT_MARKS_PER_STEP)?;
    let w = cfg.roam_window_ms;
    let mut hours = Marks::default();
    let mut written = 0;
    for m in &marks {
        // Roams into the sessions that start in [lo, hi]: those whose start or stop the
        // mark covers, and those that may have had a session of the mark as candidate.
        let lo = m.lo_ms.max(horizon.saturating_add(w));
        let hi = m.hi_ms.saturating_add(w);
        let day_lo = day_of(m.lo_ms).max(ceil_day(horizon));
        let day_hi = day_of(m.hi_ms);
        if lo > hi && day_lo > day_hi {
            continue;
        }
        let load_lo = lo.saturating_sub(w).min(day_lo);
        let load_hi = hi.max(day_hi.saturating_add(DAY_MS - 1));
        let spans = s.client_spans(&m.mac, load_lo, load_hi)?;
        if lo <= hi {
            let new = roams_into(&spans, w, lo, hi);
            let old = s.replace_roams(&m.mac, lo, hi, &new)?;
            written += new.len();
            for r in changed(&old, &new) {
                hours.hours(&r.to.device_id, r.at_ms, r.at_ms);
            }
        }
        if day_lo <= day_hi {
            let days = client_days(&spans, day_lo, day_hi);
            for (day, dev) in s.replace_client_days(&m.mac, day_lo, day_hi, &days)? {
                hours.hours(&dev, day, day);
            }
        }
    }
    s.mark(&hours, now_ms)?;
    s.finish_client_marks(&marks)?;
    Ok((marks.len(), written))
}

/// The roams in one list and not in the other (either way).
fn changed<'a>(old: &'a [Roam], new: &'a [Roam]) -> impl Iterator<Item = &'a Roam> {
    old.iter()
        .filter(|r| !new.contains(r))
        .chain(new.iter().filter(|r| !old.contains(r)))
}

/// Recomputes the oldest marked hours (per device and day: its hourly rows of those hours,
/// then the day's daily rows); returns how many hour marks it processed.
fn derive_hours(s: &mut dyn Store, horizon: i64) -> Result<usize, StoreError> {
    let marks = s.take_bucket_marks(BUCKET_MARKS_PER_STEP)?;
    let mut groups: BTreeMap<(String, i64), BTreeSet<i64>> = BTreeMap::new();
    for m in marks.iter().filter(|m| m.hour_ms >= horizon) {
        groups
            .entry((m.device_id.clone(), day_of(m.hour_ms)))
            .or_default()
            .insert(m.hour_ms);
    }
    for ((dev, _), hours) in groups {
        let (Some(&lo), Some(&last)) = (hours.first(), hours.last()) else {
            continue;
        };
        let hi = last + HOUR_MS;
        let spans = s.device_spans(&dev, lo, hi)?;
        let (roams, failed) = s.device_events(&dev, lo, hi)?;
        let rows = hourly(&dev, &hours, &spans, &roams, &failed);
        s.replace_hours(&dev, &hours, &rows)?;
    }
    s.finish_bucket_marks(&marks)?;
    Ok(marks.len())
}
