//! Derived data and the dirty marks that keep it current (docs/collector.md, "Derived data").
//!
//! Roams cross devices and trends cross clients, so neither can be merged inside one device's
//! transaction. Instead, when the writer writes session rows whose start, stop, MAC or
//! existence changed (or whose report time moved into another hour), the same transaction
//! leaves *dirty marks*: the client `(organization, MAC)` with the instants it touched, and the
//! `(device, hour)` buckets whose totals may have changed. A derive step of the writer thread
//! later takes marks, recomputes what they name from the stored rows and deletes them. This
//! module says which marks a write leaves; [`super::roams`] and [`super::trends`] compute the
//! derived rows. Pure: no SQL, no clock.

use std::collections::{BTreeMap, BTreeSet};

use super::failed_join::FailedJoin;
use super::merge::DeviceTx;
use super::session::Session;

/// One hour, ms.
pub const HOUR_MS: i64 = 3_600_000;
/// One day, ms.
pub const DAY_MS: i64 = 24 * HOUR_MS;
/// A row's range of hours is marked whole up to this length; a longer one (a session open for
/// more than a month, or a bogus clock) only this much at each end, so no single row can make
/// the derive recompute years of buckets.
pub const MAX_MARK_SPAN_MS: i64 = 31 * DAY_MS;

/// The start of the UTC hour holding `ms`.
pub fn hour_of(ms: i64) -> i64 {
    ms.saturating_sub(ms.rem_euclid(HOUR_MS))
}

/// The start of the UTC day holding `ms`.
pub fn day_of(ms: i64) -> i64 {
    ms.saturating_sub(ms.rem_euclid(DAY_MS))
}

/// A stored session as the derived data sees it: the rows a derive step loads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Span {
    /// Device id.
    pub device_id: String,
    /// Session id (as stored).
    pub id: i64,
    /// Client MAC (sessions without one are never loaded).
    pub mac: String,
    /// SSID (`""` if unknown).
    pub ssid: String,
    /// AP interface (`""` if unknown).
    pub ifname: String,
    /// Frequency, MHz.
    pub freq_mhz: Option<i64>,
    /// Start, ms.
    pub start_ms: i64,
    /// Stop, ms; `None` while open.
    pub stop_ms: Option<i64>,
    /// Latest report, ms.
    pub last_seen_ms: i64,
    /// Bytes received from the client.
    pub rx_bytes: i64,
    /// Bytes sent to the client.
    pub tx_bytes: i64,
}

/// The end of a session's time on the air as the derived data counts it: its stop; while it
/// is open, the start of the hour of its latest report (so a report within the same hour
/// changes no bucket and needs no mark, and an hour is complete once a report after it
/// arrived); never before its start.
pub fn counted_end(start_ms: i64, stop_ms: Option<i64>, last_seen_ms: i64) -> i64 {
    stop_ms.unwrap_or(hour_of(last_seen_ms)).max(start_ms)
}

impl Span {
    /// Its counted end ([`counted_end`]).
    pub fn end_ms(&self) -> i64 {
        counted_end(self.start_ms, self.stop_ms, self.last_seen_ms)
    }

    /// Its position among a client's sessions: (start, device, id).
    pub fn order(&self) -> (i64, &str, i64) {
        (self.start_ms, self.device_id.as_str(), self.id)
    }
}

/// Marks left by one transaction.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Marks {
    /// Clients whose roams and per-day client sets must be recomputed: MAC → the instants
    /// touched (lo, hi), ms. Not per organization: a device's organization may change (its
    /// first status often comes after its first events), and derived data that depended on
    /// it would depend on that order; organizations are applied when reading.
    pub clients: BTreeMap<String, (i64, i64)>,
    /// (device, hour start) buckets whose hourly totals must be recomputed.
    pub buckets: BTreeSet<(String, i64)>,
}

impl Marks {
    /// Nothing marked.
    pub fn is_empty(&self) -> bool {
        self.clients.is_empty() && self.buckets.is_empty()
    }

    /// Marks client `mac` over [lo, hi] (widening an earlier mark).
    pub fn client(&mut self, mac: &str, lo: i64, hi: i64) {
        let (lo, hi) = (lo.min(hi), lo.max(hi));
        self.clients
            .entry(mac.to_owned())
            .and_modify(|r| *r = (r.0.min(lo), r.1.max(hi)))
            .or_insert((lo, hi));
    }

    /// Marks every hour of `device` from the one holding `lo` to the one holding `hi` (at most
    /// [`MAX_MARK_SPAN_MS`] at each end of a longer range).
    pub fn hours(&mut self, device: &str, lo: i64, hi: i64) {
        let (lo, hi) = (lo.min(hi), lo.max(hi));
        let ranges = if hi - lo > 2 * MAX_MARK_SPAN_MS {
            vec![(lo, lo + MAX_MARK_SPAN_MS), (hi - MAX_MARK_SPAN_MS, hi)]
        } else {
            vec![(lo, hi)]
        };
        for (a, b) in ranges {
            let mut h = hour_of(a);
            while h <= b {
                self.buckets.insert((device.to_owned(), h));
                h += HOUR_MS;
            }
        }
    }

    /// Adds every mark of `other`.
    pub fn merge(&mut self, other: &Marks) {
        for (mac, (lo, hi)) in &other.clients {
            self.client(mac, *lo, *hi);
        }
        self.buckets.extend(other.buckets.iter().cloned());
    }
}

/// What a row contributes to the derived data: whether anything it is counted by changed.
struct Facts<'a> {
    mac: Option<&'a str>,
    identity: (Option<&'a str>, Option<&'a str>, Option<i64>),
    start: i64,
    stop: Option<i64>,
    end: i64,
    bytes: (i64, i64),
}

fn facts(s: &Session) -> Facts<'_> {
    Facts {
        mac: s.mac.as_deref(),
        identity: (s.ssid.as_deref(), s.ifname.as_deref(), s.freq_mhz),
        start: s.start_ms,
        stop: s.stop_ms,
        end: counted_end(s.start_ms, s.stop_ms, s.last_seen_ms),
        bytes: (s.rx_bytes, s.tx_bytes),
    }
}

/// The marks of one changed session row of `device`: `now` as written, `was` as stored
/// before (`None`: a new row).
///
/// - A new row, or one whose MAC, SSID, interface or frequency changed: the client(s) over
///   the old and the new time on the air, and every hour of both.
/// - Otherwise, when its start or its stop changed (opened or closed included): the client
///   over its whole time on the air (a roam into it depends on its start and stop); the hours
///   between its old and new start and between its old and new end.
/// - An open row whose latest report moved into another hour (its counted end moved): those
///   hours; into another day: the client too (its per-day client set). A report within the
///   same hour changes nothing derived and leaves no mark.
/// - A closed row whose byte counters changed: the hour of its stop (where bytes count).
pub fn session_marks(m: &mut Marks, device: &str, now: &Session, was: Option<&Session>) {
    let n = facts(now);
    let w = was.map(facts);
    let same = w
        .as_ref()
        .is_some_and(|w| w.mac == n.mac && w.identity == n.identity);
    if !same {
        for f in w.iter().chain(std::iter::once(&n)) {
            if let Some(mac) = f.mac {
                m.client(mac, f.start, f.end);
                m.hours(device, f.start, f.end);
            }
        }
        return;
    }
    let (Some(w), Some(mac)) = (w, n.mac) else {
        return;
    };
    let start_changed = w.start != n.start;
    let stop_changed = w.stop != n.stop;
    if start_changed || stop_changed {
        m.client(mac, w.start.min(n.start), w.end.max(n.end));
    } else if day_of(w.end) != day_of(n.end) {
        m.client(mac, w.end, n.end);
    }
    if start_changed {
        m.hours(device, w.start, n.start);
    }
    if stop_changed || hour_of(w.end) != hour_of(n.end) {
        m.hours(device, w.end, n.end);
    }
    if let Some(stop) = n.stop {
        if w.bytes != n.bytes {
            m.hours(device, stop, stop);
        }
    }
}

/// The marks of a failed join: the hour it associated in.
pub fn failed_join_marks(m: &mut Marks, f: &FailedJoin) {
    m.hours(&f.device_id, f.assoc_ms, f.assoc_ms);
}

/// Every mark a device's transaction leaves.
pub fn of_device(tx: &DeviceTx) -> Marks {
    let mut m = Marks::default();
    for (now, was) in tx.changed_rows() {
        session_marks(&mut m, &tx.state.id, now, was);
    }
    for f in tx.new_failed_joins.values() {
        failed_join_marks(&mut m, f);
    }
    m
}

#[cfg(test)]
mod tests {
    use super::*;
    use wifisess_wire::SessionId;

    fn sess(start: i64, stop: Option<i64>, last_seen: i64) -> Session {
        let mut s = Session::new("ap1", SessionId(1), "b", (1, 1), start);
        s.mac = Some("02:00:00:00:00:01".into());
        s.ssid = Some("lab".into());
        s.start_ms = start;
        s.stop_ms = stop;
        s.last_seen_ms = last_seen;
        s
    }

    fn hours(m: &Marks) -> Vec<i64> {
        m.buckets.iter().map(|b| b.1 / HOUR_MS).collect()
    }

    #[test]
    fn a_new_row_marks_its_client_and_every_hour_it_covers() {
        let mut m = Marks::default();
        let s = sess(10 * HOUR_MS + 5, Some(12 * HOUR_MS + 1), 12 * HOUR_MS);
        session_marks(&mut m, "ap1", &s, None);
        assert_eq!(hours(&m), [10, 11, 12]);
        assert_eq!(
            m.clients["02:00:00:00:00:01"],
            (10 * HOUR_MS + 5, 12 * HOUR_MS + 1)
        );
    }

    #[test]
    fn an_open_rows_report_within_the_hour_marks_nothing() {
        let was = sess(10 * HOUR_MS, None, 10 * HOUR_MS + 60_000);
        let mut now = was.clone();
        now.last_seen_ms += 300_000;
        now.rx_bytes = 99;
        let mut m = Marks::default();
        session_marks(&mut m, "ap1", &now, Some(&was));
        assert!(m.is_empty(), "{m:?}");
        // Into the next hour: the hour left behind and the new one; no client mark (same day).
        now.last_seen_ms = 11 * HOUR_MS + 10;
        session_marks(&mut m, "ap1", &now, Some(&was));
        assert_eq!(hours(&m), [10, 11]);
        assert!(m.clients.is_empty());
    }

    #[test]
    fn a_stop_marks_the_client_over_the_whole_session_and_the_hours_it_moved() {
        let was = sess(10 * HOUR_MS, None, 13 * HOUR_MS + 5);
        let mut now = was.clone();
        now.stop_ms = Some(11 * HOUR_MS + 5);
        let mut m = Marks::default();
        session_marks(&mut m, "ap1", &now, Some(&was));
        assert_eq!(hours(&m), [11, 12, 13]);
        assert_eq!(
            m.clients.values().next(),
            Some(&(10 * HOUR_MS, 13 * HOUR_MS))
        );
    }

    #[test]
    fn a_long_range_is_marked_at_both_ends_only() {
        let mut m = Marks::default();
        m.hours("d", 0, 1_000 * DAY_MS);
        assert_eq!(m.buckets.len() as i64, 2 * (31 * 24 + 1));
        assert!(m.buckets.contains(&("d".into(), 1_000 * DAY_MS)));
    }
}
