//! Sessions: the filter, the one row type the CLI (table, JSON, CSV) and the HTTP API (JSON,
//! CSV) print, and the keyset-paginated listing. Every value is a bound parameter; every
//! filter is served by an index (`read::tests::query_plans_use_indexes`).

use serde::Serialize;

use super::db::{ReadDb, ReadError, Row, Val};
use super::names::Directory;
use crate::core::device::Names;
use crate::core::Session;
use crate::timefmt::rfc3339_ms;

/// Which sessions to list. Every field narrows the result; the default lists everything.
#[derive(Debug, Clone, Default)]
pub struct SessionFilter {
    /// `Some(true)`: only open sessions; `Some(false)`: only closed ones.
    pub open: Option<bool>,
    /// Device ids or names (any of them).
    pub devices: Vec<String>,
    /// Device group.
    pub group: Option<String>,
    /// Organization.
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
    /// Only the rows after this position in the order (keyset pagination).
    pub after: Option<Cursor>,
    /// Only the session(s) with this stored id (one per device that used it).
    pub id: Option<i64>,
}

/// A position in the sessions order (start descending, then device id, then session id).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cursor {
    /// Start of the row, ms.
    pub start_ms: i64,
    /// Its device id.
    pub device_id: String,
    /// Its session id (as stored).
    pub id: i64,
}

/// Fields of a session row, in the order of JSON objects and CSV columns.
pub const SESSION_FIELDS: [&str; 26] = [
    "id",
    "device_id",
    "device_name",
    "organization",
    "group",
    "mac",
    "hostname",
    "label",
    "vendor",
    "randomized",
    "ssid",
    "ifname",
    "bssid",
    "freq_mhz",
    "start",
    "stop",
    "duration_s",
    "last_seen",
    "last_activity",
    "dangling",
    "rx_bytes",
    "tx_bytes",
    "signal_avg",
    "stop_reason",
    "stop_inferred",
    "times_corrected",
];

/// One session as every reader prints it (SPEC §5.3; docs/API.md).
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
    /// The client's hostname from the AP's DHCP leases (the latest the agent sent; agents in
    /// MAC privacy mode send none).
    pub hostname: Option<String>,
    /// The client's label from the collector's labels file.
    pub label: Option<String>,
    /// The company the MAC's OUI is registered to (IEEE registry).
    pub vendor: Option<String>,
    /// A locally administered MAC (randomised by the client, or the agent's pseudonym).
    pub randomized: bool,
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
    /// Seconds from start to stop (to now while open).
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
    /// The stop was inferred by the collector (provisional: undone if the agent reports the
    /// session open later).
    pub stop_inferred: bool,
    /// The times were corrected for an agent clock that was not synchronised.
    pub times_corrected: bool,
}

impl SessionRow {
    /// The row's cells in [`SESSION_FIELDS`] order, as CSV prints them.
    pub fn cells(&self) -> Vec<String> {
        let o = |v: &Option<String>| v.clone().unwrap_or_default();
        vec![
            self.id.clone(),
            self.device_id.clone(),
            o(&self.device_name),
            o(&self.organization),
            o(&self.group),
            o(&self.mac),
            o(&self.hostname),
            o(&self.label),
            o(&self.vendor),
            self.randomized.to_string(),
            o(&self.ssid),
            o(&self.ifname),
            o(&self.bssid),
            self.freq_mhz.map(|f| f.to_string()).unwrap_or_default(),
            self.start.clone(),
            o(&self.stop),
            self.duration_s.to_string(),
            self.last_seen.clone(),
            o(&self.last_activity),
            self.dangling.to_string(),
            self.rx_bytes.to_string(),
            self.tx_bytes.to_string(),
            self.signal_avg.map(|s| s.to_string()).unwrap_or_default(),
            o(&self.stop_reason),
            self.stop_inferred.to_string(),
            self.times_corrected.to_string(),
        ]
    }
}

/// The SQL and its parameters for `f`, newest start first.
pub fn sessions_sql(f: &SessionFilter) -> (String, Vec<Val>) {
    let mut sql = String::from(
        "SELECT s.id, s.device_id, d.name, d.organization, d.grp, s.mac, s.ssid, s.ifname, \
         s.bssid, s.freq_mhz, s.start_ms, s.stop_ms, s.last_seen_ms, s.last_activity_ms, \
         s.rx_bytes, s.tx_bytes, s.signal_avg, s.stop_reason, s.stop_inferred, \
         s.times_corrected, s.hostname \
         FROM sessions s LEFT JOIN devices d ON d.id = s.device_id WHERE 1 = 1",
    );
    let mut p: Vec<Val> = Vec::new();
    match f.open {
        Some(true) => sql.push_str(" AND s.stop_ms IS NULL"),
        Some(false) => sql.push_str(" AND s.stop_ms IS NOT NULL"),
        None => {}
    }
    if !f.devices.is_empty() {
        // One list bound once, matched against ids and names: both sides use an index.
        let first = p.len() + 1;
        let list = (first..first + f.devices.len())
            .map(|i| format!("${i}"))
            .collect::<Vec<_>>()
            .join(", ");
        p.extend(f.devices.iter().map(|d| Val::Text(d.clone())));
        sql.push_str(&format!(
            " AND s.device_id IN (SELECT id FROM devices WHERE id IN ({list}) OR name IN ({list}))"
        ));
    }
    let mut bind = |sql: &mut String, clause: &str, v: Val| {
        p.push(v);
        sql.push_str(&clause.replace('?', &format!("${}", p.len())));
    };
    if let Some(g) = &f.group {
        bind(
            &mut sql,
            " AND s.device_id IN (SELECT id FROM devices WHERE grp = ?)",
            Val::Text(g.clone()),
        );
    }
    if let Some(o) = &f.organization {
        bind(
            &mut sql,
            " AND s.device_id IN (SELECT id FROM devices WHERE organization = ?)",
            Val::Text(o.clone()),
        );
    }
    if let Some(m) = &f.mac {
        bind(
            &mut sql,
            " AND s.mac = ?",
            Val::Text(m.to_ascii_lowercase()),
        );
    }
    if let Some(s) = &f.ssid {
        bind(&mut sql, " AND s.ssid = ?", Val::Text(s.clone()));
    }
    if let Some(t) = f.start_after_ms {
        bind(&mut sql, " AND s.start_ms >= ?", Val::Int(t));
    }
    if let Some(t) = f.start_before_ms {
        bind(&mut sql, " AND s.start_ms < ?", Val::Int(t));
    }
    if let Some(t) = f.stop_after_ms {
        bind(&mut sql, " AND s.stop_ms >= ?", Val::Int(t));
    }
    if let Some(t) = f.stop_before_ms {
        bind(&mut sql, " AND s.stop_ms < ?", Val::Int(t));
    }
    if let Some(id) = f.id {
        bind(&mut sql, " AND s.id = ?", Val::Int(id));
    }
    if let Some(c) = &f.after {
        // Strictly after `c` in the order; the `start_ms <=` bound lets the index skip the
        // pages already read.
        let n = p.len();
        p.push(Val::Int(c.start_ms));
        p.push(Val::Text(c.device_id.clone()));
        p.push(Val::Int(c.id));
        sql.push_str(&format!(
            " AND s.start_ms <= ${a} AND (s.start_ms < ${a} OR s.device_id > ${b} \
             OR (s.device_id = ${b} AND s.id > ${c}))",
            a = n + 1,
            b = n + 2,
            c = n + 3
        ));
    }
    sql.push_str(" ORDER BY s.start_ms DESC, s.device_id, s.id");
    if let Some(n) = f.limit {
        p.push(Val::Int(i64::from(n)));
        sql.push_str(&format!(" LIMIT ${}", p.len()));
    }
    (sql, p)
}

/// How open sessions are shown: `duration_s` up to `now_ms`, dangling after `dangling_ms`
/// without client activity.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Now {
    /// Now, ms since the epoch.
    pub now_ms: i64,
    /// `dangling_minutes` in ms.
    pub dangling_ms: i64,
}

/// Sessions matching `f`, each with its position in the order (to continue after it).
///
/// # Errors
/// Database errors.
pub fn list_keyed(
    db: &ReadDb,
    f: &SessionFilter,
    now: Now,
) -> Result<Vec<(SessionRow, Cursor)>, ReadError> {
    let (sql, params) = sessions_sql(f);
    db.query(&sql, &params)?
        .iter()
        .map(|r| {
            let key = Cursor {
                start_ms: r.int(10)?,
                device_id: r.text(1)?,
                id: r.int(0)?,
            };
            Ok((session_row(db, r, now)?, key))
        })
        .collect()
}

/// Sessions matching `f`.
///
/// # Errors
/// Database errors.
pub fn list(db: &ReadDb, f: &SessionFilter, now: Now) -> Result<Vec<SessionRow>, ReadError> {
    Ok(list_keyed(db, f, now)?.into_iter().map(|r| r.0).collect())
}

/// `duration_s` and `dangling` of a session at `now`: the two values of a row that are not
/// stored but depend on when it is shown.
fn at_now(
    start: i64,
    stop: Option<i64>,
    last_seen: i64,
    activity: Option<i64>,
    now: Now,
) -> (i64, bool) {
    let end = stop.unwrap_or(now.now_ms);
    let dangling = stop.is_none() && now.now_ms - activity.unwrap_or(last_seen) > now.dangling_ms;
    ((end - start).max(0) / 1000, dangling)
}

/// A session id as the API shows it (the stored i64's bits, 16 hex digits).
fn id_text(id: i64) -> String {
    format!("{:016x}", id as u64)
}

/// The row of a session as the merge core just wrote it, with its device's names in effect:
/// what a query would read back from the store at `now` (the live change feed sends it
/// without a query; `read::tests` checks the two agree).
pub fn from_session(s: &Session, names: &Names, clients: &Directory, now: Now) -> SessionRow {
    let (duration_s, dangling) = at_now(
        s.start_ms,
        s.stop_ms,
        s.last_seen_ms,
        s.last_activity_ms,
        now,
    );
    let info = s
        .mac
        .as_deref()
        .map(|m| clients.describe(m))
        .unwrap_or_default();
    SessionRow {
        id: id_text(s.id),
        device_id: s.device_id.clone(),
        device_name: names.name.clone(),
        organization: names.organization.clone(),
        group: names.group.clone(),
        mac: s.mac.clone(),
        hostname: s.hostname.as_ref().map(|h| h.1.clone()),
        label: info.label,
        vendor: info.vendor,
        randomized: info.randomized,
        ssid: s.ssid.clone(),
        ifname: s.ifname.clone(),
        bssid: s.bssid.clone(),
        freq_mhz: s.freq_mhz,
        start: rfc3339_ms(s.start_ms),
        stop: s.stop_ms.map(rfc3339_ms),
        duration_s,
        last_seen: rfc3339_ms(s.last_seen_ms),
        last_activity: s.last_activity_ms.map(rfc3339_ms),
        dangling,
        rx_bytes: s.rx_bytes,
        tx_bytes: s.tx_bytes,
        signal_avg: s.signal.map(|x| x.1),
        stop_reason: s.stop_reason.map(|r| r.as_str().to_owned()),
        stop_inferred: s.stop_inferred,
        times_corrected: s.times_corrected,
    }
}

fn session_row(db: &ReadDb, r: &Row, now: Now) -> Result<SessionRow, ReadError> {
    let mac = r.opt_text(5)?;
    let info = mac
        .as_deref()
        .map(|m| db.names().describe(m))
        .unwrap_or_default();
    let start = r.int(10)?;
    let stop = r.opt_int(11)?;
    let last_seen = r.int(12)?;
    let activity = r.opt_int(13)?;
    let (duration_s, dangling) = at_now(start, stop, last_seen, activity, now);
    Ok(SessionRow {
        id: id_text(r.int(0)?),
        device_id: r.text(1)?,
        device_name: r.opt_text(2)?,
        organization: r.opt_text(3)?,
        group: r.opt_text(4)?,
        mac,
        hostname: r.opt_text(20)?,
        label: info.label,
        vendor: info.vendor,
        randomized: info.randomized,
        ssid: r.opt_text(6)?,
        ifname: r.opt_text(7)?,
        bssid: r.opt_text(8)?,
        freq_mhz: r.opt_int(9)?,
        start: rfc3339_ms(start),
        stop: stop.map(rfc3339_ms),
        duration_s,
        last_seen: rfc3339_ms(last_seen),
        last_activity: activity.map(rfc3339_ms),
        dangling,
        rx_bytes: r.int(14)?,
        tx_bytes: r.int(15)?,
        signal_avg: r.opt_int(16)?,
        stop_reason: r.opt_text(17)?,
        stop_inferred: r.flag(18)?,
        times_corrected: r.flag(19)?,
    })
}
