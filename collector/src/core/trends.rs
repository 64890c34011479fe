//! Trends (SPEC §7, aggregates): hourly totals per device and SSID, and the set of clients
//! each device saw on each SSID per day (exact distinct counts across devices, which per-device
//! counts cannot be summed into). Computed from stored sessions, roams and failed joins only,
//! so a bucket is a function of the stored rows: the same whatever order the events came in.
//! Pure: no SQL, no clock.
//!
//! What a session contributes (UTC hours):
//! - `sessions`: 1 to the hour it started in;
//! - `clients`: its MAC to every hour its time on the air `[start, end]` meets, where `end` is
//!   its stop, or while it is open the start of the hour of its latest report
//!   ([`super::derived::counted_end`]: an hour is complete once a report after it arrived;
//!   the current hour counts an open session's client, not yet its connected time);
//! - `connected_ms`: the part of `[start, end]` inside the hour;
//! - `rx_bytes` / `tx_bytes`: its counters, to the hour it stopped in (counters are
//!   cumulative: when within a session the bytes went is not known; an open session's bytes
//!   count once it ends).
//!
//! Roams count in the hour they arrive (at their destination device and SSID), failed joins
//! in the hour they associated.

use std::collections::{BTreeMap, BTreeSet};

use super::derived::{day_of, Span, DAY_MS, HOUR_MS};

/// The totals of one device, SSID and hour.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HourRow {
    /// Device id.
    pub device_id: String,
    /// SSID.
    pub ssid: String,
    /// Start of the UTC hour, ms.
    pub hour_ms: i64,
    /// Sessions started in it.
    pub sessions: i64,
    /// Distinct client MACs connected in it.
    pub clients: i64,
    /// Time connected in it, summed over sessions, ms.
    pub connected_ms: i64,
    /// Bytes received from clients whose session stopped in it.
    pub rx_bytes: i64,
    /// Bytes sent to clients whose session stopped in it.
    pub tx_bytes: i64,
    /// Roams that arrived in it.
    pub roams: i64,
    /// Failed joins that associated in it.
    pub failed_joins: i64,
}

impl HourRow {
    fn is_empty(&self) -> bool {
        self.sessions == 0
            && self.clients == 0
            && self.connected_ms == 0
            && self.rx_bytes == 0
            && self.tx_bytes == 0
            && self.roams == 0
            && self.failed_joins == 0
    }
}

/// The hourly rows of `device` for each hour start in `hours`. `spans`: its sessions whose
/// time on the air meets those hours (more do no harm); `roams`: (SSID, arrival ms) of the
/// roams into it; `failed_joins`: (SSID, association ms) of its failed joins. Hours with
/// nothing in them get no row.
pub fn hourly(
    device: &str,
    hours: &BTreeSet<i64>,
    spans: &[Span],
    roams: &[(String, i64)],
    failed_joins: &[(String, i64)],
) -> Vec<HourRow> {
    let mut out = Vec::new();
    for &h in hours {
        let e = h + HOUR_MS;
        let mut per: BTreeMap<&str, (HourRow, BTreeSet<&str>)> = BTreeMap::new();
        for s in spans.iter().filter(|s| s.device_id == device) {
            let (a, b) = (s.start_ms, s.end_ms());
            let meets = a < e && b >= h;
            let started = (h..e).contains(&a);
            let stopped = s.stop_ms.filter(|t| (h..e).contains(t));
            if !(meets || started || stopped.is_some()) {
                continue;
            }
            let (r, macs) = per.entry(s.ssid.as_str()).or_default();
            if started {
                r.sessions += 1;
            }
            if meets {
                macs.insert(s.mac.as_str());
                r.connected_ms += (b.min(e) - a.max(h)).max(0);
            }
            if stopped.is_some() {
                r.rx_bytes = r.rx_bytes.saturating_add(s.rx_bytes);
                r.tx_bytes = r.tx_bytes.saturating_add(s.tx_bytes);
            }
        }
        for (ssid, at) in roams {
            if (h..e).contains(at) {
                per.entry(ssid.as_str()).or_default().0.roams += 1;
            }
        }
        for (ssid, at) in failed_joins {
            if (h..e).contains(at) {
                per.entry(ssid.as_str()).or_default().0.failed_joins += 1;
            }
        }
        for (ssid, (mut r, macs)) in per {
            r.device_id = device.to_owned();
            r.ssid = ssid.to_owned();
            r.hour_ms = h;
            r.clients = macs.len() as i64;
            if !r.is_empty() {
                out.push(r);
            }
        }
    }
    out
}

/// Most days of one session a client's day set considers (the last ones): a session open for
/// more than a year is a broken clock, not a client.
pub const MAX_SPAN_DAYS: i64 = 366;

/// The days (UTC day start, ms) in [lo_day, hi_day] on which one client was connected, with
/// the device and SSID: `spans` are its sessions (one MAC); each counts on every day its time
/// on the air `[start, end]` meets.
pub fn client_days(spans: &[Span], lo_day: i64, hi_day: i64) -> BTreeSet<(i64, String, String)> {
    let mut out = BTreeSet::new();
    for s in spans {
        let last = day_of(s.end_ms()).min(hi_day);
        let first = day_of(s.start_ms)
            .max(lo_day)
            .max(last - (MAX_SPAN_DAYS - 1) * DAY_MS);
        let mut d = first;
        while d <= last {
            out.insert((d, s.device_id.clone(), s.ssid.clone()));
            d += DAY_MS;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn span(id: i64, mac: &str, ssid: &str, start: i64, stop: Option<i64>, seen: i64) -> Span {
        Span {
            device_id: "ap1".into(),
            id,
            mac: mac.into(),
            ssid: ssid.into(),
            ifname: "w0".into(),
            freq_mhz: Some(2412),
            start_ms: start,
            stop_ms: stop,
            last_seen_ms: seen,
            rx_bytes: 100,
            tx_bytes: 10,
        }
    }

    const H: i64 = HOUR_MS;

    #[test]
    fn a_session_counts_where_it_started_covers_and_stopped() {
        let spans = [
            span(
                1,
                "a",
                "lab",
                10 * H + 30 * 60_000,
                Some(12 * H + 6 * 60_000),
                0,
            ),
            span(2, "a", "lab", 11 * H, Some(11 * H + 60_000), 0),
            span(3, "b", "guest", 11 * H + 5, None, 11 * H + 65),
        ];
        let hours: BTreeSet<i64> = [10 * H, 11 * H, 12 * H, 13 * H].into();
        let rows = hourly(
            "ap1",
            &hours,
            &spans,
            &[("lab".into(), 11 * H)],
            &[("guest".into(), 12 * H + 1)],
        );
        let get = |h: i64, ssid: &str| {
            rows.iter()
                .find(|r| r.hour_ms == h * H && r.ssid == ssid)
                .cloned()
        };
        let r10 = get(10, "lab").unwrap();
        assert_eq!(
            (r10.sessions, r10.clients, r10.connected_ms, r10.rx_bytes),
            (1, 1, 30 * 60_000, 0)
        );
        let r11 = get(11, "lab").unwrap();
        assert_eq!(
            (
                r11.sessions,
                r11.clients,
                r11.connected_ms,
                r11.rx_bytes,
                r11.roams
            ),
            (1, 1, H + 60_000, 100, 1),
            "one client in two sessions counts once"
        );
        let g11 = get(11, "guest").unwrap();
        assert_eq!(
            (g11.clients, g11.connected_ms),
            (1, 0),
            "open: a client, its time counted up to the hour of its report"
        );
        let r12 = get(12, "lab").unwrap();
        assert_eq!(
            (r12.connected_ms, r12.rx_bytes, r12.tx_bytes),
            (6 * 60_000, 100, 10)
        );
        assert_eq!(get(12, "guest").unwrap().failed_joins, 1);
        assert!(get(13, "lab").is_none(), "empty hours get no row");
    }

    #[test]
    fn client_days_cover_every_day_on_the_air() {
        let spans = [span(1, "a", "lab", DAY_MS - 1, Some(2 * DAY_MS + 5), 0)];
        let days: Vec<i64> = client_days(&spans, 0, 10 * DAY_MS)
            .iter()
            .map(|d| d.0 / DAY_MS)
            .collect();
        assert_eq!(days, [0, 1, 2]);
        assert_eq!(client_days(&spans, DAY_MS, DAY_MS).len(), 1);
    }
}
