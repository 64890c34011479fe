//! Failed joins (SPEC §7): stations that associated but never authorized, as the agents
//! reported them. The listing (newest first) and the counts per device, SSID or client, with
//! the sessions' filters; one row type for the CLI and the API.

use serde::Serialize;

use super::db::{ReadDb, ReadError, Row, Val};
use super::Scope;
use crate::timefmt::rfc3339_ms;

/// Which failed joins (every field narrows).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FailedJoinFilter {
    /// Devices (ids or names), group, organization.
    pub scope: Scope,
    /// Client MAC, `aa:bb:cc:dd:ee:ff`.
    pub mac: Option<String>,
    /// SSID, exact.
    pub ssid: Option<String>,
    /// Associated at or after, ms.
    pub after_ms: Option<i64>,
    /// Associated before, ms.
    pub before_ms: Option<i64>,
    /// At most this many rows.
    pub limit: Option<u32>,
}

/// Fields of a failed join row, in the order of JSON objects and CSV columns.
pub const FAILED_JOIN_FIELDS: [&str; 14] = [
    "associated",
    "gave_up",
    "device_id",
    "device_name",
    "organization",
    "group",
    "mac",
    "label",
    "vendor",
    "randomized",
    "ssid",
    "ifname",
    "bssid",
    "times_corrected",
];

/// One failed join.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FailedJoinRow {
    /// When the station associated, RFC 3339 UTC.
    pub associated: String,
    /// When the agent gave it up (it left, or was not authorized in time).
    pub gave_up: String,
    /// Device id.
    pub device_id: String,
    /// Device name.
    pub device_name: Option<String>,
    /// Organization.
    pub organization: Option<String>,
    /// Group.
    pub group: Option<String>,
    /// Client MAC (or the agent's pseudonym of it).
    pub mac: String,
    /// Its label from the labels file.
    pub label: Option<String>,
    /// Its vendor (IEEE OUI registry).
    pub vendor: Option<String>,
    /// A locally administered MAC.
    pub randomized: bool,
    /// SSID.
    pub ssid: String,
    /// AP interface.
    pub ifname: String,
    /// BSSID.
    pub bssid: String,
    /// Times corrected for an unsynchronised agent clock.
    pub times_corrected: bool,
}

impl FailedJoinRow {
    /// The row's cells in [`FAILED_JOIN_FIELDS`] order.
    pub fn cells(&self) -> Vec<String> {
        let o = |v: &Option<String>| v.clone().unwrap_or_default();
        vec![
            self.associated.clone(),
            self.gave_up.clone(),
            self.device_id.clone(),
            o(&self.device_name),
            o(&self.organization),
            o(&self.group),
            self.mac.clone(),
            o(&self.label),
            o(&self.vendor),
            self.randomized.to_string(),
            self.ssid.clone(),
            self.ifname.clone(),
            self.bssid.clone(),
            self.times_corrected.to_string(),
        ]
    }
}

/// The `WHERE` of `f` on `failed_joins f`, values appended to `p`.
fn where_sql(f: &FailedJoinFilter, p: &mut Vec<Val>) -> String {
    let mut w = f.scope.sql("f.device_id", p);
    let mut bind = |clause: &str, v: Val| {
        p.push(v);
        w.push_str(&clause.replace('?', &format!("${}", p.len())));
    };
    if let Some(m) = &f.mac {
        bind(" AND f.mac = ?", Val::Text(m.to_ascii_lowercase()));
    }
    if let Some(s) = &f.ssid {
        bind(" AND f.ssid = ?", Val::Text(s.clone()));
    }
    if let Some(t) = f.after_ms {
        bind(" AND f.assoc_ms >= ?", Val::Int(t));
    }
    if let Some(t) = f.before_ms {
        bind(" AND f.assoc_ms < ?", Val::Int(t));
    }
    w
}

/// The listing's SQL for `f`, newest first.
pub(crate) fn list_sql(f: &FailedJoinFilter) -> (String, Vec<Val>) {
    let mut p = Vec::new();
    let w = where_sql(f, &mut p);
    let mut sql = format!(
        "SELECT f.assoc_ms, f.gave_up_ms, f.device_id, d.name, d.organization, d.grp, f.mac, \
         f.ssid, f.ifname, f.bssid, f.times_corrected \
         FROM failed_joins f LEFT JOIN devices d ON d.id = f.device_id WHERE 1 = 1{w} \
         ORDER BY f.assoc_ms DESC, f.device_id, f.seq"
    );
    if let Some(n) = f.limit {
        p.push(Val::Int(i64::from(n)));
        sql.push_str(&format!(" LIMIT ${}", p.len()));
    }
    (sql, p)
}

/// Failed joins matching `f`, newest first.
///
/// # Errors
/// Database errors.
pub fn list(db: &ReadDb, f: &FailedJoinFilter) -> Result<Vec<FailedJoinRow>, ReadError> {
    let (sql, p) = list_sql(f);
    db.query(&sql, &p)?.iter().map(|r| row(db, r)).collect()
}

fn row(db: &ReadDb, r: &Row) -> Result<FailedJoinRow, ReadError> {
    let mac = r.text(6)?;
    let info = db.names().describe(&mac);
    Ok(FailedJoinRow {
        associated: rfc3339_ms(r.int(0)?),
        gave_up: rfc3339_ms(r.int(1)?),
        device_id: r.text(2)?,
        device_name: r.opt_text(3)?,
        organization: r.opt_text(4)?,
        group: r.opt_text(5)?,
        mac,
        label: info.label,
        vendor: info.vendor,
        randomized: info.randomized,
        ssid: r.text(7)?,
        ifname: r.text(8)?,
        bssid: r.text(9)?,
        times_corrected: r.flag(10)?,
    })
}

/// What failed joins are counted by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CountBy {
    /// Per device.
    Device,
    /// Per SSID.
    Ssid,
    /// Per client MAC.
    Mac,
}

impl CountBy {
    /// The parameter's value (`device`, `ssid`, `client`; `mac` is the same as `client`).
    pub fn parse(s: &str) -> Option<CountBy> {
        match s {
            "device" => Some(CountBy::Device),
            "ssid" => Some(CountBy::Ssid),
            "client" | "mac" => Some(CountBy::Mac),
            _ => None,
        }
    }
}

/// Fields of a count row, in the order of JSON objects and CSV columns.
pub const COUNT_FIELDS: [&str; 7] = [
    "key",
    "name",
    "failed_joins",
    "clients",
    "devices",
    "first",
    "last",
];

/// Failed joins of one device, SSID or client.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CountRow {
    /// The device id, SSID or MAC counted by.
    pub key: String,
    /// The device's name, or the client's label (or vendor), if any.
    pub name: Option<String>,
    /// Failed joins.
    pub failed_joins: i64,
    /// Distinct clients among them.
    pub clients: i64,
    /// Distinct devices among them.
    pub devices: i64,
    /// The earliest association among them, RFC 3339 UTC.
    pub first: String,
    /// The latest.
    pub last: String,
}

impl CountRow {
    /// The row's cells in [`COUNT_FIELDS`] order.
    pub fn cells(&self) -> Vec<String> {
        vec![
            self.key.clone(),
            self.name.clone().unwrap_or_default(),
            self.failed_joins.to_string(),
            self.clients.to_string(),
            self.devices.to_string(),
            self.first.clone(),
            self.last.clone(),
        ]
    }
}

/// The counting SQL for `f` by `by`, most failed joins first.
pub(crate) fn counts_sql(f: &FailedJoinFilter, by: CountBy) -> (String, Vec<Val>) {
    let mut p = Vec::new();
    let w = where_sql(f, &mut p);
    let key = match by {
        CountBy::Device => "f.device_id",
        CountBy::Ssid => "f.ssid",
        CountBy::Mac => "f.mac",
    };
    let mut sql = format!(
        "SELECT {key}, count(*), count(DISTINCT f.mac), count(DISTINCT f.device_id), \
         min(f.assoc_ms), max(f.assoc_ms) FROM failed_joins f WHERE 1 = 1{w} \
         GROUP BY {key} ORDER BY count(*) DESC, {key}"
    );
    if let Some(n) = f.limit {
        p.push(Val::Int(i64::from(n)));
        sql.push_str(&format!(" LIMIT ${}", p.len()));
    }
    (sql, p)
}

/// Failed joins matching `f`, counted by `by`, most first.
///
/// # Errors
/// Database errors.
pub fn counts(db: &ReadDb, f: &FailedJoinFilter, by: CountBy) -> Result<Vec<CountRow>, ReadError> {
    let (sql, p) = counts_sql(f, by);
    let rows = db.query(&sql, &p)?;
    let mut out = Vec::with_capacity(rows.len());
    for r in &rows {
        let key = r.text(0)?;
        let name = match by {
            CountBy::Device => db
                .query_one(
                    "SELECT name FROM devices WHERE id = $1",
                    &[Val::from(key.as_str())],
                )?
                .and_then(|n| n.opt_text(0).ok().flatten()),
            CountBy::Mac => {
                let i = db.names().describe(&key);
                i.label.or(i.vendor)
            }
            CountBy::Ssid => None,
        };
        out.push(CountRow {
            key,
            name,
            failed_joins: r.int(1)?,
            clients: r.int(2)?,
            devices: r.int(3)?,
            first: rfc3339_ms(r.int(4)?),
            last: rfc3339_ms(r.int(5)?),
        });
    }
    Ok(out)
}

/// Failed joins per device that associated at or after `since_ms` (the `devices` and
/// `status` rows' `failed_joins_24h`).
///
/// # Errors
/// Database errors.
pub fn per_device_since(
    db: &ReadDb,
    since_ms: i64,
) -> Result<std::collections::BTreeMap<String, i64>, ReadError> {
    let mut out = std::collections::BTreeMap::new();
    for r in db.query(&per_device_since_sql(db), &[Val::Int(since_ms)])? {
        out.insert(r.text(0)?, r.int(1)?);
    }
    Ok(out)
}

/// See [`per_device_since`] (index `failed_joins_time`, which SQLite's planner, without
/// statistics, would pass over for the grouping).
pub(crate) fn per_device_since_sql(db: &ReadDb) -> String {
    format!(
        "SELECT device_id, count(*) FROM failed_joins{} WHERE assoc_ms >= $1 GROUP BY device_id",
        db.indexed_by("failed_joins_time")
    )
}
