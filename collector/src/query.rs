//! Read side: session queries as a filter struct turned into SQL with bound parameters.

use rusqlite::types::Value;
use rusqlite::Connection;
use serde::Serialize;

use crate::timefmt::rfc3339_ms;

/// Which sessions to list. Every field narrows the result; the default lists everything.
#[derive(Debug, Clone, Default)]
pub struct SessionFilter {
    /// `Some(true)`: only open sessions; `Some(false)`: only closed ones.
    pub open: Option<bool>,
    /// Device ids or names (any of them).
    pub devices: Vec<String>,
    /// Device group (inventory first, else the agent's).
    pub group: Option<String>,
    /// Organization (inventory first, else the agent's).
    pub organization: Option<String>,
    /// Client MAC, `aa:bb:cc:dd:ee:ff`.
    pub mac: Option<String>,
    /// SSID, exact.
    pub ssid: Option<String>,
    /// Started at or after, ms since the epoch.
    pub start_after_ms: Option<i64>,
    /// Started before, ms.
    pub start_before_ms: Option<i64>,
    /// Stopped at or after, ms.
    pub stop_after_ms: Option<i64>,
    /// Stopped before, ms.
    pub stop_before_ms: Option<i64>,
    /// At most this many rows (newest start first).
    pub limit: Option<u32>,
}

/// One session as the CLI and API print it (SPEC §5.3).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SessionRow {
    /// Session id, 16 hex digits.
    pub id: String,
    /// Device id.
    pub device_id: String,
    /// Device name (inventory, else announced).
    pub device_name: Option<String>,
    /// Organization.
    pub organization: Option<String>,
    /// Group.
    pub group: Option<String>,
    /// Client MAC (null until the session's start was received).
    pub mac: Option<String>,
    /// SSID.
    pub ssid: Option<String>,
    /// AP interface.
    pub ifname: Option<String>,
    /// BSSID.
    pub bssid: Option<String>,
    /// Frequency, MHz.
    pub freq_mhz: Option<i64>,
    /// Start, RFC 3339 UTC.
    pub start: String,
    /// Stop, RFC 3339 UTC; null while open.
    pub stop: Option<String>,
    /// Seconds from start to stop (to `now` while open).
    pub duration_s: i64,
    /// Last report of the session, RFC 3339 UTC.
    pub last_seen: String,
    /// Last client activity (from the inactive time), RFC 3339 UTC.
    pub last_activity: Option<String>,
    /// Open, and no client activity for `dangling_minutes`.
    pub dangling: bool,
    /// Bytes received from the client.
    pub rx_bytes: i64,
    /// Bytes sent to the client.
    pub tx_bytes: i64,
    /// Average signal, dBm.
    pub signal_avg: Option<i64>,
    /// Why it ended (`left`, ..., or an inferred `missing`, `device_reboot`, ...).
    pub stop_reason: Option<String>,
    /// Whether the stop was inferred by the collector (provisional).
    pub stop_inferred: bool,
    /// Whether the times were corrected for an unsynchronised agent clock.
    pub times_corrected: bool,
}

/// The SQL and its parameters for `f`, newest start first.
pub fn build_sessions_sql(f: &SessionFilter) -> (String, Vec<Value>) {
    let mut sql = String::from(
        "SELECT s.id, s.device_id, coalesce(d.inv_name, d.name), \
         coalesce(d.inv_organization, d.organization), coalesce(d.inv_group, d.grp), s.mac, \
         s.ssid, s.ifname, s.bssid, s.freq_mhz, s.start_ms, s.stop_ms, s.last_seen_ms, \
         s.last_activity_ms, s.rx_bytes, s.tx_bytes, s.signal_avg, s.stop_reason, \
         s.stop_inferred, s.times_corrected \
         FROM sessions s LEFT JOIN devices d ON d.id = s.device_id WHERE 1",
    );
    let mut p: Vec<Value> = Vec::new();
    let mut bind = |sql: &mut String, clause: &str, v: Value| {
        p.push(v);
        sql.push_str(&clause.replace('?', &format!("?{}", p.len())));
    };
    match f.open {
        Some(true) => sql.push_str(" AND s.stop_ms IS NULL"),
        Some(false) => sql.push_str(" AND s.stop_ms IS NOT NULL"),
        None => {}
    }
    if !f.devices.is_empty() {
        sql.push_str(" AND (0");
        for d in &f.devices {
            bind(&mut sql, " OR s.device_id = ?", Value::Text(d.clone()));
            bind(
                &mut sql,
                " OR s.device_id IN (SELECT id FROM devices WHERE coalesce(inv_name, name) = ?)",
                Value::Text(d.clone()),
            );
        }
        sql.push(')');
    }
    if let Some(g) = &f.group {
        bind(
            &mut sql,
            " AND s.device_id IN (SELECT id FROM devices WHERE coalesce(inv_group, grp) = ?)",
            Value::Text(g.clone()),
        );
    }
    if let Some(o) = &f.organization {
        bind(
            &mut sql,
            " AND s.device_id IN (SELECT id FROM devices WHERE coalesce(inv_organization, organization) = ?)",
            Value::Text(o.clone()),
        );
    }
    if let Some(m) = &f.mac {
        bind(
            &mut sql,
            " AND s.mac = ?",
            Value::Text(m.to_ascii_lowercase()),
        );
    }
    if let Some(s) = &f.ssid {
        bind(&mut sql, " AND s.ssid = ?", Value::Text(s.clone()));
    }
    if let Some(t) = f.start_after_ms {
        bind(&mut sql, " AND s.start_ms >= ?", Value::Integer(t));
    }
    if let Some(t) = f.start_before_ms {
        bind(&mut sql, " AND s.start_ms < ?", Value::Integer(t));
    }
    if let Some(t) = f.stop_after_ms {
        bind(&mut sql, " AND s.stop_ms >= ?", Value::Integer(t));
    }
    if let Some(t) = f.stop_before_ms {
        bind(&mut sql, " AND s.stop_ms < ?", Value::Integer(t));
    }
    sql.push_str(" ORDER BY s.start_ms DESC, s.device_id, s.id");
    if let Some(n) = f.limit {
        bind(&mut sql, " LIMIT ?", Value::Integer(i64::from(n)));
    }
    (sql, p)
}

/// Lists sessions matching `f`. `now_ms` and `dangling_ms` decide `duration_s` of open
/// sessions and the `dangling` flag.
///
/// # Errors
/// SQLite errors.
pub fn list_sessions(
    conn: &Connection,
    f: &SessionFilter,
    now_ms: i64,
    dangling_ms: i64,
) -> rusqlite::Result<Vec<SessionRow>> {
    let (sql, params) = build_sessions_sql(f);
    let mut st = conn.prepare(&sql)?;
    let rows = st.query_map(rusqlite::params_from_iter(params), |r| {
        let id: i64 = r.get(0)?;
        let start: i64 = r.get(10)?;
        let stop: Option<i64> = r.get(11)?;
        let last_seen: i64 = r.get(12)?;
        let activity: Option<i64> = r.get(13)?;
        let end = stop.unwrap_or(now_ms);
        Ok(SessionRow {
            id: format!("{:016x}", id as u64),
            device_id: r.get(1)?,
            device_name: r.get(2)?,
            organization: r.get(3)?,
            group: r.get(4)?,
            mac: r.get(5)?,
            ssid: r.get(6)?,
            ifname: r.get(7)?,
            bssid: r.get(8)?,
            freq_mhz: r.get(9)?,
            start: rfc3339_ms(start),
            stop: stop.map(rfc3339_ms),
            duration_s: (end - start).max(0) / 1000,
            last_seen: rfc3339_ms(last_seen),
            last_activity: activity.map(rfc3339_ms),
            dangling: stop.is_none() && now_ms - activity.unwrap_or(last_seen) > dangling_ms,
            rx_bytes: r.get(14)?,
            tx_bytes: r.get(15)?,
            signal_avg: r.get(16)?,
            stop_reason: r.get(17)?,
            stop_inferred: r.get(18)?,
            times_corrected: r.get(19)?,
        })
    })?;
    rows.collect()
}

/// Renders rows as an aligned text table.
pub fn table(rows: &[SessionRow]) -> String {
    let head = [
        "ID",
        "DEVICE",
        "MAC",
        "SSID",
        "START",
        "STOP",
        "DURATION_S",
        "REASON",
    ];
    let body: Vec<[String; 8]> = rows
        .iter()
        .map(|r| {
            [
                r.id.clone(),
                r.device_id.clone(),
                r.mac.clone().unwrap_or_default(),
                r.ssid.clone().unwrap_or_default(),
                r.start.clone(),
                r.stop.clone().unwrap_or_else(|| "open".into()),
                r.duration_s.to_string(),
                r.stop_reason.clone().unwrap_or_default(),
            ]
        })
        .collect();
    let mut w = head.map(str::len);
    for row in &body {
        for (i, c) in row.iter().enumerate() {
            w[i] = w[i].max(c.chars().count());
        }
    }
    let mut out = String::new();
    let line = |out: &mut String, cells: &[&str]| {
        for (i, c) in cells.iter().enumerate() {
            out.push_str(&format!("{:<width$}  ", c, width = w[i]));
        }
        while out.ends_with(' ') {
            out.pop();
        }
        out.push('\n');
    };
    line(&mut out, &head);
    for row in &body {
        let cells: Vec<&str> = row.iter().map(String::as_str).collect();
        line(&mut out, &cells);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_bound_never_interpolated() {
        let f = SessionFilter {
            open: Some(true),
            mac: Some("AA:bb:cc:dd:ee:ff".into()),
            ssid: Some("x' OR 1 --".into()),
            devices: vec!["ap1".into()],
            limit: Some(5),
            ..SessionFilter::default()
        };
        let (sql, p) = build_sessions_sql(&f);
        assert!(!sql.contains("x'"));
        assert!(sql.contains("?5"));
        assert_eq!(p.len(), 5);
        assert_eq!(p[2], Value::Text("aa:bb:cc:dd:ee:ff".into()));
    }
}
