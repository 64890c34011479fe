//! Read side: filter structs in, rows out (sessions, devices, status). Every value is a bound
//! parameter; every filter is served by an index (see the `query_plans_use_indexes` test).
//! Used by the CLI (rendered by [`crate::render`]) and by the HTTP API alike.

use std::collections::BTreeMap;

use rusqlite::types::Value;
use rusqlite::{Connection, Row};
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
    /// Only the rows after this position in the order (keyset pagination of the HTTP API).
    pub after: Option<Cursor>,
    /// Only the session(s) with this stored id (one per device that used it).
    pub id: Option<i64>,
}

/// A position in the sessions order (start descending, then device id, then session id):
/// the key of a row, and with [`SessionFilter::after`] where the next page starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cursor {
    /// Start of the row, ms.
    pub start_ms: i64,
    /// Its device id.
    pub device_id: String,
    /// Its session id (as stored).
    pub id: i64,
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
    /// Whether the stop was inferred by the collector (provisional). Not in the JSON row
    /// (SPEC §5.3 fixes its fields).
    #[serde(skip_serializing)]
    pub stop_inferred: bool,
    /// Whether the times were corrected for an unsynchronised agent clock. Not in the JSON row.
    #[serde(skip_serializing)]
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
    match f.open {
        Some(true) => sql.push_str(" AND s.stop_ms IS NULL"),
        Some(false) => sql.push_str(" AND s.stop_ms IS NOT NULL"),
        None => {}
    }
    if !f.devices.is_empty() {
        // One list bound once, matched against ids and names: both sides use an index.
        let first = p.len() + 1;
        let list = (first..first + f.devices.len())
            .map(|i| format!("?{i}"))
            .collect::<Vec<_>>()
            .join(", ");
        p.extend(f.devices.iter().map(|d| Value::Text(d.clone())));
        sql.push_str(&format!(
            " AND s.device_id IN (SELECT id FROM devices WHERE id IN ({list}) \
             OR coalesce(inv_name, name) IN ({list}))"
        ));
    }
    let mut bind = |sql: &mut String, clause: &str, v: Value| {
        p.push(v);
        sql.push_str(&clause.replace('?', &format!("?{}", p.len())));
    };
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
    if let Some(id) = f.id {
        bind(&mut sql, " AND s.id = ?", Value::Integer(id));
    }
    if let Some(c) = &f.after {
        // Strictly after `c` in the order; the `start_ms <=` bound lets the index skip the
        // pages already read.
        let n = p.len();
        p.push(Value::Integer(c.start_ms));
        p.push(Value::Text(c.device_id.clone()));
        p.push(Value::Integer(c.id));
        sql.push_str(&format!(
            " AND s.start_ms <= ?{a} AND (s.start_ms < ?{a} OR s.device_id > ?{b} \
             OR (s.device_id = ?{b} AND s.id > ?{c}))",
            a = n + 1,
            b = n + 2,
            c = n + 3
        ));
    }
    sql.push_str(" ORDER BY s.start_ms DESC, s.device_id, s.id");
    if let Some(n) = f.limit {
        p.push(Value::Integer(i64::from(n)));
        sql.push_str(&format!(" LIMIT ?{}", p.len()));
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
    Ok(list_sessions_keyed(conn, f, now_ms, dangling_ms)?
        .into_iter()
        .map(|(r, _)| r)
        .collect())
}

/// [`list_sessions`], each row with its position in the order (to continue after it with
/// [`SessionFilter::after`]).
///
/// # Errors
/// SQLite errors.
pub fn list_sessions_keyed(
    conn: &Connection,
    f: &SessionFilter,
    now_ms: i64,
    dangling_ms: i64,
) -> rusqlite::Result<Vec<(SessionRow, Cursor)>> {
    let (sql, params) = build_sessions_sql(f);
    let mut st = conn.prepare_cached(&sql)?;
    let rows = st.query_map(rusqlite::params_from_iter(params), |r| {
        let key = Cursor {
            start_ms: r.get(10)?,
            device_id: r.get(1)?,
            id: r.get(0)?,
        };
        Ok((session_row(r, now_ms, dangling_ms)?, key))
    })?;
    rows.collect()
}

/// One row of [`build_sessions_sql`]'s SELECT as a [`SessionRow`] at `now_ms`.
///
/// # Errors
/// SQLite errors (a column of an unexpected type).
pub fn session_row(r: &Row, now_ms: i64, dangling_ms: i64) -> rusqlite::Result<SessionRow> {
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

/// One device as `devices` prints it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DeviceRow {
    /// Device id (as in the MQTT topic).
    pub id: String,
    /// Name (inventory, else announced).
    pub name: Option<String>,
    /// Organization (inventory, else announced).
    pub organization: Option<String>,
    /// Group (inventory, else announced).
    pub group: Option<String>,
    /// Online per the agent's retained status / Last Will.
    pub online: bool,
    /// Last message received from it (collector clock), RFC 3339 UTC; null if never heard.
    pub last_seen: Option<String>,
    /// Open sessions now.
    pub open_sessions: i64,
    /// Sequence numbers never received (lost events), summed over boots and agent runs.
    pub seq_gaps: i64,
    /// Agent version from its status.
    pub agent_version: Option<String>,
}

const DEVICES_SQL: &str = "SELECT d.id, coalesce(d.inv_name, d.name), \
     coalesce(d.inv_organization, d.organization), coalesce(d.inv_group, d.grp), d.online, \
     d.last_seen_ms, coalesce(o.n, 0), d.seq_gaps, d.agent_version \
     FROM devices d LEFT JOIN (SELECT device_id, count(*) AS n FROM sessions \
       INDEXED BY sessions_open_device WHERE stop_ms IS NULL GROUP BY device_id) o \
       ON o.device_id = d.id \
     ORDER BY d.id";

/// Every device known (announced or in the inventory), by id.
///
/// # Errors
/// SQLite errors.
pub fn list_devices(conn: &Connection) -> rusqlite::Result<Vec<DeviceRow>> {
    let mut st = conn.prepare_cached(DEVICES_SQL)?;
    let rows = st.query_map([], |r| {
        Ok(DeviceRow {
            id: r.get(0)?,
            name: r.get(1)?,
            organization: r.get(2)?,
            group: r.get(3)?,
            online: r.get(4)?,
            last_seen: r.get::<_, Option<i64>>(5)?.map(rfc3339_ms),
            open_sessions: r.get(6)?,
            seq_gaps: r.get(7)?,
            agent_version: r.get(8)?,
        })
    })?;
    rows.collect()
}

/// Whether a device id or name (inventory or announced) is known.
///
/// # Errors
/// SQLite errors.
pub fn device_exists(conn: &Connection, id_or_name: &str) -> rusqlite::Result<bool> {
    conn.prepare_cached(
        "SELECT EXISTS (SELECT 1 FROM devices WHERE id = ?1 OR coalesce(inv_name, name) = ?1)",
    )?
    .query_row([id_or_name], |r| r.get(0))
}

/// Whether a group (inventory or announced) has any device.
///
/// # Errors
/// SQLite errors.
pub fn group_exists(conn: &Connection, group: &str) -> rusqlite::Result<bool> {
    conn.prepare_cached(
        "SELECT EXISTS (SELECT 1 FROM devices WHERE coalesce(inv_group, grp) = ?1)",
    )?
    .query_row([group], |r| r.get(0))
}

/// What `status` summarises.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum StatusScope {
    /// Every device.
    #[default]
    All,
    /// One device, by id or name.
    Device(String),
    /// The devices of a group.
    Group(String),
}

/// An organization's open sessions against its configured limit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OrgLimit {
    /// Organization.
    pub organization: String,
    /// Open sessions on its devices now.
    pub open_sessions: i64,
    /// `max_open_sessions` from the configuration.
    pub max_open_sessions: u32,
    /// `open_sessions > max_open_sessions`.
    pub over_limit: bool,
}

/// The `status` summary of a scope, at `now`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StatusReport {
    /// `all`, `device:ID` or `group:NAME`.
    pub scope: String,
    /// Devices in the scope.
    pub devices: i64,
    /// Of them, online.
    pub devices_online: i64,
    /// Open sessions.
    pub open_sessions: i64,
    /// Distinct client MACs with an open session.
    pub connected_clients: i64,
    /// Longest open session so far, seconds (0 when none).
    pub longest_s: i64,
    /// Median age of the open sessions, seconds (0 when none).
    pub median_s: i64,
    /// Open sessions without client activity for `dangling_minutes`.
    pub dangling: i64,
    /// Every organization with a configured limit (all of them, whatever the scope: the
    /// limit is per organization).
    pub organizations: Vec<OrgLimit>,
    /// The organizations over their limit.
    pub over_limit: Vec<String>,
}

fn scope_clause(scope: &StatusScope) -> (&'static str, Vec<Value>) {
    match scope {
        StatusScope::All => ("1", vec![]),
        StatusScope::Device(d) => (
            "(id = ?1 OR coalesce(inv_name, name) = ?1)",
            vec![Value::Text(d.clone())],
        ),
        StatusScope::Group(g) => (
            "coalesce(inv_group, grp) = ?1",
            vec![Value::Text(g.clone())],
        ),
    }
}

fn status_sql(scope: &StatusScope) -> (String, Vec<Value>) {
    let (w, p) = scope_clause(scope);
    (
        format!(
            "SELECT s.mac, s.start_ms, coalesce(s.last_activity_ms, s.last_seen_ms) \
             FROM sessions s INDEXED BY sessions_open_device \
             WHERE s.stop_ms IS NULL AND s.device_id IN (SELECT id FROM devices WHERE {w})"
        ),
        p,
    )
}

const ORG_OPEN_SQL: &str = "SELECT coalesce(d.inv_organization, d.organization) AS o, count(*) \
     FROM sessions s INDEXED BY sessions_open_start JOIN devices d ON d.id = s.device_id \
     WHERE s.stop_ms IS NULL AND o IS NOT NULL GROUP BY o";

/// Open sessions per organization against `limits` (organization → `max_open_sessions`).
///
/// # Errors
/// SQLite errors.
pub fn org_limits(
    conn: &Connection,
    limits: &BTreeMap<String, u32>,
) -> rusqlite::Result<Vec<OrgLimit>> {
    if limits.is_empty() {
        return Ok(Vec::new());
    }
    let mut open: BTreeMap<String, i64> = BTreeMap::new();
    let mut st = conn.prepare_cached(ORG_OPEN_SQL)?;
    for r in st.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))? {
        let (o, n) = r?;
        open.insert(o, n);
    }
    Ok(limits
        .iter()
        .map(|(o, &max)| {
            let n = open.get(o).copied().unwrap_or(0);
            OrgLimit {
                organization: o.clone(),
                open_sessions: n,
                max_open_sessions: max,
                over_limit: n > i64::from(max),
            }
        })
        .collect())
}

/// Summarises the open sessions of `scope` at `now_ms`; `dangling_ms` decides the dangling
/// count, `limits` the organization rows.
///
/// # Errors
/// SQLite errors.
pub fn status(
    conn: &Connection,
    scope: &StatusScope,
    now_ms: i64,
    dangling_ms: i64,
    limits: &BTreeMap<String, u32>,
) -> rusqlite::Result<StatusReport> {
    let (w, p) = scope_clause(scope);
    let (devices, devices_online): (i64, i64) = conn.query_row(
        &format!("SELECT count(*), coalesce(sum(online), 0) FROM devices WHERE {w}"),
        rusqlite::params_from_iter(p.iter()),
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?;
    let (sql, p) = status_sql(scope);
    let mut st = conn.prepare_cached(&sql)?;
    let mut ages: Vec<i64> = Vec::new();
    let mut macs = std::collections::BTreeSet::new();
    let mut dangling = 0;
    for r in st.query_map(rusqlite::params_from_iter(p), |r| {
        Ok((
            r.get::<_, Option<String>>(0)?,
            r.get::<_, i64>(1)?,
            r.get::<_, i64>(2)?,
        ))
    })? {
        let (mac, start, activity) = r?;
        ages.push((now_ms - start).max(0) / 1000);
        if let Some(m) = mac {
            macs.insert(m);
        }
        if now_ms - activity > dangling_ms {
            dangling += 1;
        }
    }
    ages.sort_unstable();
    let median_s = match ages.len() {
        0 => 0,
        n if n % 2 == 1 => ages[n / 2],
        n => (ages[n / 2 - 1] + ages[n / 2]) / 2,
    };
    let organizations = org_limits(conn, limits)?;
    let over_limit = organizations
        .iter()
        .filter(|o| o.over_limit)
        .map(|o| o.organization.clone())
        .collect();
    Ok(StatusReport {
        scope: match scope {
            StatusScope::All => "all".into(),
            StatusScope::Device(d) => format!("device:{d}"),
            StatusScope::Group(g) => format!("group:{g}"),
        },
        devices,
        devices_online,
        open_sessions: ages.len() as i64,
        connected_clients: macs.len() as i64,
        longest_s: ages.last().copied().unwrap_or(0),
        median_s,
        dangling,
        organizations,
        over_limit,
    })
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
        assert!(sql.contains("?4"));
        assert_eq!(p.len(), 4);
        assert_eq!(p[1], Value::Text("aa:bb:cc:dd:ee:ff".into()));
    }

    fn plan(conn: &Connection, sql: &str, params: Vec<Value>) -> String {
        let mut st = conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}")).unwrap();
        let rows = st
            .query_map(rusqlite::params_from_iter(params), |r| {
                r.get::<_, String>(3)
            })
            .unwrap();
        rows.map(Result::unwrap).collect::<Vec<_>>().join("; ")
    }

    /// Every filter alone reaches the sessions through an index, never a full table scan.
    #[test]
    fn query_plans_use_indexes() {
        let mut conn = Connection::open_in_memory().unwrap();
        crate::schema::migrate(&mut conn).unwrap();
        let conn = conn;
        let base = SessionFilter::default;
        let cases: Vec<(&str, SessionFilter, &str)> = vec![
            ("none", base(), "sessions_start"),
            (
                "open",
                SessionFilter {
                    open: Some(true),
                    ..base()
                },
                "sessions_open_start",
            ),
            (
                "closed",
                SessionFilter {
                    open: Some(false),
                    ..base()
                },
                "sessions_start",
            ),
            (
                "device",
                SessionFilter {
                    devices: vec!["a".into(), "b".into()],
                    ..base()
                },
                "devices_name",
            ),
            (
                "group",
                SessionFilter {
                    group: Some("g".into()),
                    ..base()
                },
                "devices_group",
            ),
            (
                "org",
                SessionFilter {
                    organization: Some("o".into()),
                    ..base()
                },
                "devices_org",
            ),
            (
                "mac",
                SessionFilter {
                    mac: Some("02:00:00:00:00:01".into()),
                    ..base()
                },
                "sessions_mac",
            ),
            (
                "ssid",
                SessionFilter {
                    ssid: Some("x".into()),
                    ..base()
                },
                "sessions_ssid",
            ),
            (
                "start_after",
                SessionFilter {
                    start_after_ms: Some(1),
                    ..base()
                },
                "sessions_start",
            ),
            (
                "start_before",
                SessionFilter {
                    start_before_ms: Some(1),
                    ..base()
                },
                "sessions_start",
            ),
            (
                "stop_after",
                SessionFilter {
                    stop_after_ms: Some(1),
                    ..base()
                },
                "sessions_stop",
            ),
            (
                "stop_before",
                SessionFilter {
                    stop_before_ms: Some(1),
                    ..base()
                },
                "sessions_stop",
            ),
            (
                "id",
                SessionFilter {
                    id: Some(1),
                    ..base()
                },
                "sessions_id",
            ),
            (
                "after",
                SessionFilter {
                    after: Some(Cursor {
                        start_ms: 1,
                        device_id: "a".into(),
                        id: 1,
                    }),
                    ..base()
                },
                "sessions_start (start_ms<?)",
            ),
            (
                "open after",
                SessionFilter {
                    open: Some(true),
                    after: Some(Cursor {
                        start_ms: 1,
                        device_id: "a".into(),
                        id: 1,
                    }),
                    ..base()
                },
                "sessions_open_start (start_ms<?)",
            ),
        ];
        for (name, f, index) in cases {
            let (sql, p) = build_sessions_sql(&f);
            let pl = plan(&conn, &sql, p);
            eprintln!("{name}: {pl}");
            assert!(pl.contains(index), "{name}: {pl}");
            assert!(
                !pl.contains("SCAN s;") && !pl.ends_with("SCAN s"),
                "{name}: {pl}"
            );
        }
        let pl = plan(&conn, DEVICES_SQL, vec![]);
        assert!(pl.contains("sessions_open_device"), "devices: {pl}");
        let (sql, p) = status_sql(&StatusScope::Group("g".into()));
        let pl = plan(&conn, &sql, p);
        assert!(
            pl.contains("devices_group") && pl.contains("sessions_open_device"),
            "status: {pl}"
        );
        let pl = plan(
            &conn,
            crate::presence::PRESENCE_SQL,
            vec![
                Value::Text("g".into()),
                Value::Integer(2),
                Value::Integer(1),
            ],
        );
        assert!(
            pl.contains("COVERING INDEX sessions_device_start (device_id=? AND start_ms<?)"),
            "presence: {pl}"
        );
        for (what, sql) in crate::jobs::PLANNED_SQL {
            let n = if sql.contains("?2") { 2 } else { 1 };
            let pl = plan(&conn, sql, (1..=n).map(Value::Integer).collect());
            eprintln!("{what}: {pl}");
            // A scan is acceptable only over a partial index of the open sessions.
            let full_scan = pl
                .split("; ")
                .any(|p| p.starts_with("SCAN s") && !p.contains("INDEX sessions_open"));
            assert!(!full_scan, "{what}: {pl}");
        }
        let pl = plan(&conn, ORG_OPEN_SQL, vec![]);
        assert!(pl.contains("sessions_open_start"), "org limits: {pl}");
    }
}
