//! Trends and the clients report (SPEC §7, aggregates), read from what the derive step keeps:
//! hourly and daily rows per device and SSID, and the per-day client sets. Kept
//! `aggregate_retention_days`, long after the sessions they were derived from are pruned.
//!
//! - `trends`: hourly or daily series (sessions started, clients, connected minutes, bytes,
//!   roams, failed joins) of a scope, in total or per device or SSID. A daily series counts
//!   distinct clients exactly from the day sets; an hourly one of several devices or SSIDs
//!   adds their hourly counts (a client that roamed between two APs in one hour counts twice).
//! - `clients`: distinct clients per day or week (weeks start on Monday, UTC) of a scope,
//!   exact for the whole aggregate retention: counted from the day sets, never summed.

use std::collections::BTreeMap;

use serde::Serialize;

use super::db::{ReadDb, ReadError, Val};
use super::Scope;
use crate::core::derived::{DAY_MS, HOUR_MS};
use crate::timefmt::rfc3339_ms;

/// The step of a series.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Period {
    /// UTC hours.
    Hour,
    /// UTC days.
    Day,
    /// Weeks from Monday, UTC.
    Week,
}

impl Period {
    /// `hour`, `day` or `week`.
    pub fn parse(s: &str) -> Option<Period> {
        match s {
            "hour" => Some(Period::Hour),
            "day" => Some(Period::Day),
            "week" => Some(Period::Week),
            _ => None,
        }
    }

    /// Its length, ms.
    pub fn ms(self) -> i64 {
        match self {
            Period::Hour => HOUR_MS,
            Period::Day => DAY_MS,
            Period::Week => 7 * DAY_MS,
        }
    }

    /// The start of the period holding `ms`.
    pub fn start_of(self, ms: i64) -> i64 {
        match self {
            Period::Hour | Period::Day => ms.div_euclid(self.ms()) * self.ms(),
            // 1970-01-01 was a Thursday: Monday is 3 days before.
            Period::Week => {
                let day = ms.div_euclid(DAY_MS);
                (day - (day + 3).rem_euclid(7)) * DAY_MS
            }
        }
    }
}

impl Period {
    /// How far back a series goes when no `from` is given: 48 hours, 30 days, 12 weeks.
    pub fn default_span_ms(self) -> i64 {
        match self {
            Period::Hour => 48 * HOUR_MS,
            Period::Day => 30 * DAY_MS,
            Period::Week => 12 * 7 * DAY_MS,
        }
    }

    /// The name [`Period::parse`] reads.
    pub fn as_str(self) -> &'static str {
        match self {
            Period::Hour => "hour",
            Period::Day => "day",
            Period::Week => "week",
        }
    }
}

/// Most points one series may have (a request for more is refused).
pub const MAX_POINTS: i64 = 5_000;

/// How a series is split.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TrendBy {
    /// One series for the whole scope.
    Total,
    /// One per device.
    Device,
    /// One per SSID.
    Ssid,
}

impl TrendBy {
    /// `total`, `device` or `ssid`.
    pub fn parse(s: &str) -> Option<TrendBy> {
        match s {
            "total" => Some(TrendBy::Total),
            "device" => Some(TrendBy::Device),
            "ssid" => Some(TrendBy::Ssid),
            _ => None,
        }
    }
}

/// A trends request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrendQuery {
    /// [`Period::Hour`] or [`Period::Day`].
    pub period: Period,
    /// From (rounded down to the period), ms.
    pub from_ms: i64,
    /// To (exclusive), ms.
    pub to_ms: i64,
    /// Devices, group, organization.
    pub scope: Scope,
    /// Only this SSID.
    pub ssid: Option<String>,
    /// Split.
    pub by: TrendBy,
}

/// Fields of a trend point, in the order of JSON objects and CSV columns.
pub const TREND_FIELDS: [&str; 10] = [
    "time",
    "device_id",
    "ssid",
    "sessions",
    "clients",
    "connected_minutes",
    "rx_bytes",
    "tx_bytes",
    "roams",
    "failed_joins",
];

/// One point of a series.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct TrendPoint {
    /// Start of the hour or day, RFC 3339 UTC.
    pub time: String,
    /// The device (series per device).
    pub device_id: Option<String>,
    /// The SSID (series per SSID).
    pub ssid: Option<String>,
    /// Sessions started.
    pub sessions: i64,
    /// Clients connected (see the module documentation for what is exact).
    pub clients: i64,
    /// Minutes connected, summed over sessions (rounded).
    pub connected_minutes: i64,
    /// Bytes from clients whose sessions ended in it.
    pub rx_bytes: i64,
    /// Bytes to them.
    pub tx_bytes: i64,
    /// Roams that arrived.
    pub roams: i64,
    /// Failed joins.
    pub failed_joins: i64,
}

impl TrendPoint {
    /// The point's cells in [`TREND_FIELDS`] order.
    pub fn cells(&self) -> Vec<String> {
        let o = |v: &Option<String>| v.clone().unwrap_or_default();
        vec![
            self.time.clone(),
            o(&self.device_id),
            o(&self.ssid),
            self.sessions.to_string(),
            self.clients.to_string(),
            self.connected_minutes.to_string(),
            self.rx_bytes.to_string(),
            self.tx_bytes.to_string(),
            self.roams.to_string(),
            self.failed_joins.to_string(),
        ]
    }
}

fn group_cols(by: TrendBy, alias: &str) -> (String, String) {
    match by {
        TrendBy::Total => (", NULL, NULL".into(), String::new()),
        TrendBy::Device => (
            format!(", {alias}.device_id, NULL"),
            format!(", {alias}.device_id"),
        ),
        TrendBy::Ssid => (format!(", NULL, {alias}.ssid"), format!(", {alias}.ssid")),
    }
}

/// The sums' SQL of `q` (hourly or daily rows).
pub(crate) fn trends_sql(q: &TrendQuery) -> (String, Vec<Val>) {
    let (table, time) = match q.period {
        Period::Hour => ("agg_hourly", "hour_ms"),
        _ => ("agg_daily", "day_ms"),
    };
    let mut p = vec![Val::Int(q.period.start_of(q.from_ms)), Val::Int(q.to_ms)];
    let mut w = q.scope.sql("a.device_id", &mut p);
    if let Some(s) = &q.ssid {
        p.push(Val::Text(s.clone()));
        w.push_str(&format!(" AND a.ssid = ${}", p.len()));
    }
    let (cols, group) = group_cols(q.by, "a");
    let sum = |c: &str| format!("CAST(sum(a.{c}) AS BIGINT)");
    (
        format!(
            "SELECT a.{time}{cols}, {}, {}, {}, {}, {}, {}, {} FROM {table} a \
             WHERE a.{time} >= $1 AND a.{time} < $2{w} GROUP BY a.{time}{group} \
             ORDER BY a.{time}{group}",
            sum("sessions"),
            sum("clients"),
            sum("connected_ms"),
            sum("rx_bytes"),
            sum("tx_bytes"),
            sum("roams"),
            sum("failed_joins"),
        ),
        p,
    )
}

/// The distinct clients' SQL of a daily series or the clients report (per day, or per week).
pub(crate) fn distinct_sql(
    period: Period,
    by: TrendBy,
    from_ms: i64,
    to_ms: i64,
    scope: &Scope,
    ssid: Option<&str>,
) -> (String, Vec<Val>) {
    let mut p = vec![Val::Int(Period::Day.start_of(from_ms)), Val::Int(to_ms)];
    let mut w = scope.sql("c.device_id", &mut p);
    if let Some(s) = ssid {
        p.push(Val::Text(s.to_owned()));
        w.push_str(&format!(" AND c.ssid = ${}", p.len()));
    }
    let (cols, group) = group_cols(by, "c");
    let t = match period {
        Period::Week => "(c.day_ms - ((c.day_ms / 86400000 + 3) % 7) * 86400000)".to_owned(),
        _ => "c.day_ms".to_owned(),
    };
    (
        format!(
            "SELECT {t}{cols}, count(DISTINCT c.mac), count(DISTINCT c.device_id), \
             count(DISTINCT CASE WHEN substr(c.mac, 2, 1) IN ('2', '3', '6', '7', 'a', 'b', \
             'e', 'f') THEN c.mac END) \
             FROM agg_clients c WHERE c.day_ms >= $1 AND c.day_ms < $2{w} \
             GROUP BY {t}{group} ORDER BY {t}{group}"
        ),
        p,
    )
}

/// The number of periods in [from, to).
fn points(period: Period, from_ms: i64, to_ms: i64) -> i64 {
    (to_ms - period.start_of(from_ms) + period.ms() - 1).div_euclid(period.ms())
}

/// Whether a series of `period` over [from, to) is small enough to answer.
///
/// # Errors
/// Why not (for a usage error).
pub fn check_range(period: Period, from_ms: i64, to_ms: i64) -> Result<(), String> {
    if from_ms >= to_ms {
        return Err("from must be before to".into());
    }
    let n = points(period, from_ms, to_ms);
    if n > MAX_POINTS {
        return Err(format!(
            "{n} points: at most {MAX_POINTS} per series (a shorter range, or a longer period)"
        ));
    }
    Ok(())
}

/// The range of a series of `period`: `to` defaults to `now_ms`, `from` to
/// [`Period::default_span_ms`] before `to`; then [`check_range`].
///
/// # Errors
/// Why the range cannot be answered (for a usage error).
pub fn range(
    period: Period,
    from_ms: Option<i64>,
    to_ms: Option<i64>,
    now_ms: i64,
) -> Result<(i64, i64), String> {
    let to = to_ms.unwrap_or(now_ms);
    let from = from_ms.unwrap_or(to - period.default_span_ms());
    check_range(period, from, to)?;
    Ok((from, to))
}

type Key = (i64, Option<String>, Option<String>);

/// The series of `q`: every period of [from, to) for a total (zeros included), the periods
/// with data for a split one; ordered by time, then device or SSID.
///
/// # Errors
/// Database errors.
pub fn trends(db: &ReadDb, q: &TrendQuery) -> Result<Vec<TrendPoint>, ReadError> {
    let (sql, p) = trends_sql(q);
    let mut out: BTreeMap<Key, TrendPoint> = BTreeMap::new();
    for r in db.query(&sql, &p)? {
        let k = (r.int(0)?, r.opt_text(1)?, r.opt_text(2)?);
        out.insert(
            k.clone(),
            TrendPoint {
                time: rfc3339_ms(k.0),
                device_id: k.1,
                ssid: k.2,
                sessions: r.int(3)?,
                clients: r.int(4)?,
                connected_minutes: (r.int(5)? + 30_000) / 60_000,
                rx_bytes: r.int(6)?,
                tx_bytes: r.int(7)?,
                roams: r.int(8)?,
                failed_joins: r.int(9)?,
            },
        );
    }
    if q.period == Period::Day {
        // Distinct clients from the day sets (exact across devices and SSIDs).
        for v in out.values_mut() {
            v.clients = 0;
        }
        let (sql, p) = distinct_sql(
            Period::Day,
            q.by,
            q.from_ms,
            q.to_ms,
            &q.scope,
            q.ssid.as_deref(),
        );
        for r in db.query(&sql, &p)? {
            let k = (r.int(0)?, r.opt_text(1)?, r.opt_text(2)?);
            let e = out.entry(k.clone()).or_insert_with(|| TrendPoint {
                time: rfc3339_ms(k.0),
                device_id: k.1.clone(),
                ssid: k.2.clone(),
                ..TrendPoint::default()
            });
            e.clients = r.int(3)?;
        }
    }
    if q.by == TrendBy::Total {
        let mut t = q.period.start_of(q.from_ms);
        while t < q.to_ms {
            out.entry((t, None, None)).or_insert_with(|| TrendPoint {
                time: rfc3339_ms(t),
                ..TrendPoint::default()
            });
            t += q.period.ms();
        }
    }
    Ok(out.into_values().collect())
}

/// A clients report request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientsQuery {
    /// [`Period::Day`] or [`Period::Week`].
    pub period: Period,
    /// From, ms (rounded down to the period).
    pub from_ms: i64,
    /// To (exclusive), ms.
    pub to_ms: i64,
    /// Devices, group, organization.
    pub scope: Scope,
    /// Only this SSID.
    pub ssid: Option<String>,
}

/// Fields of a clients row, in the order of JSON objects and CSV columns.
pub const CLIENTS_FIELDS: [&str; 4] = ["period", "clients", "randomized", "devices"];

/// Distinct clients of one day or week.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ClientsRow {
    /// The day or the week's Monday, `YYYY-MM-DD` (UTC).
    pub period: String,
    /// Distinct client MACs connected to any device of the scope.
    pub clients: i64,
    /// Of them, locally administered (randomised) MACs: a client that changes its MAC counts
    /// once per MAC.
    pub randomized: i64,
    /// Devices of the scope that had any client.
    pub devices: i64,
}

impl ClientsRow {
    /// The row's cells in [`CLIENTS_FIELDS`] order.
    pub fn cells(&self) -> Vec<String> {
        vec![
            self.period.clone(),
            self.clients.to_string(),
            self.randomized.to_string(),
            self.devices.to_string(),
        ]
    }
}

/// The clients report of `q`: every period of [from, to), zeros included.
///
/// # Errors
/// Database errors.
pub fn clients(db: &ReadDb, q: &ClientsQuery) -> Result<Vec<ClientsRow>, ReadError> {
    let (sql, p) = distinct_sql(
        q.period,
        TrendBy::Total,
        q.from_ms,
        q.to_ms,
        &q.scope,
        q.ssid.as_deref(),
    );
    let mut per: BTreeMap<i64, ClientsRow> = BTreeMap::new();
    for r in db.query(&sql, &p)? {
        per.insert(
            r.int(0)?,
            ClientsRow {
                period: String::new(),
                clients: r.int(3)?,
                devices: r.int(4)?,
                randomized: r.int(5)?,
            },
        );
    }
    let mut t = q.period.start_of(q.from_ms);
    let mut out = Vec::new();
    while t < q.to_ms {
        let mut row = per.remove(&t).unwrap_or_default();
        row.period = rfc3339_ms(t)[..10].to_owned();
        out.push(row);
        t += q.period.ms();
    }
    Ok(out)
}

/// One device's and SSID's counts of one day (the metrics' per-SSID gauges).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DayRow {
    /// Device id.
    pub device_id: String,
    /// Its organization (as it is now).
    pub organization: Option<String>,
    /// SSID.
    pub ssid: String,
    /// Sessions started.
    pub sessions: i64,
    /// Distinct clients of this device and SSID.
    pub clients: i64,
    /// Roams that arrived.
    pub roams: i64,
    /// Failed joins.
    pub failed_joins: i64,
}

/// See [`day_rows`] (index `agg_daily_time`: one day's rows, never the sessions).
pub(crate) const DAY_ROWS_SQL: &str = "SELECT a.device_id, d.organization, a.ssid, a.sessions, \
     a.clients, a.roams, a.failed_joins FROM agg_daily a LEFT JOIN devices d ON d.id = a.device_id \
     WHERE a.day_ms = $1 ORDER BY a.device_id, a.ssid";

/// The daily rows of the UTC day holding `ms` per device and SSID, of `organization` if given
/// (as far as the derive step has got).
///
/// # Errors
/// Database errors.
pub fn day_rows(
    db: &ReadDb,
    ms: i64,
    organization: Option<&str>,
) -> Result<Vec<DayRow>, ReadError> {
    let mut out = Vec::new();
    for r in db.query(DAY_ROWS_SQL, &[Val::Int(Period::Day.start_of(ms))])? {
        let org = r.opt_text(1)?;
        if organization.is_some_and(|o| org.as_deref() != Some(o)) {
            continue;
        }
        out.push(DayRow {
            device_id: r.text(0)?,
            organization: org,
            ssid: r.text(2)?,
            sessions: r.int(3)?,
            clients: r.int(4)?,
            roams: r.int(5)?,
            failed_joins: r.int(6)?,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weeks_start_on_monday() {
        // 2025-06-11 (a Wednesday) 13:00 UTC → Monday 2025-06-09.
        let ms = 1_749_646_800_000;
        assert_eq!(
            rfc3339_ms(Period::Week.start_of(ms)),
            "2025-06-09T00:00:00.000Z"
        );
        assert_eq!(
            rfc3339_ms(Period::Day.start_of(ms)),
            "2025-06-11T00:00:00.000Z"
        );
        assert_eq!(points(Period::Hour, ms, ms + 2 * HOUR_MS), 2);
        assert!(check_range(Period::Hour, 0, 10_000 * HOUR_MS).is_err());
    }
}
