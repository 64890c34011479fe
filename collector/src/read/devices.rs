//! Devices: the one device row the CLI and the API print (names in effect, state, open and
//! dangling sessions, the agent's health counters), and lookups by id, name, group and
//! organization.

use serde::Serialize;

use super::db::{ReadDb, ReadError, Row, Val};
use super::sessions::Now;
use crate::core::device::{band, channel, decode_radios};
use crate::timefmt::rfc3339_ms;

/// Which devices to list (all fields narrow; the default lists every device).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeviceFilter {
    /// Organization.
    pub organization: Option<String>,
    /// Group.
    pub group: Option<String>,
    /// Id or name.
    pub device: Option<String>,
}

/// One device (SPEC §5.1, §5.5).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DeviceRow {
    /// Device id.
    pub id: String,
    /// Name (inventory, else announced).
    pub name: Option<String>,
    /// Organization.
    pub organization: Option<String>,
    /// Group.
    pub group: Option<String>,
    /// Whether its agent is connected (its last status said online).
    pub online: bool,
    /// Last message from it (collector clock), RFC 3339 UTC.
    pub last_seen: Option<String>,
    /// Its newest kernel boot id.
    pub boot_id: Option<String>,
    /// Agent version.
    pub agent_version: Option<String>,
    /// Open sessions.
    pub open_sessions: i64,
    /// Open sessions without client activity for `dangling_minutes`.
    pub dangling_sessions: i64,
    /// Event sequence numbers never received (lost between agent and collector).
    pub seq_gaps: i64,
    /// Failed joins (stations that never authorized) of the last 24 hours.
    pub failed_joins_24h: i64,
    /// Roams of the last 24 hours that arrived at it.
    pub roams_in_24h: i64,
    /// Roams of the last 24 hours that left it.
    pub roams_out_24h: i64,
    /// The agent's health, from its latest status (this agent run).
    pub health: Health,
    /// Its access point interfaces, as its latest status announced them.
    pub radios: Vec<RadioRow>,
}

/// One access point interface of a device.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RadioRow {
    /// Interface name.
    pub ifname: String,
    /// BSSID.
    pub bssid: String,
    /// SSID.
    pub ssid: String,
    /// Frequency, MHz (0 if unknown).
    pub freq_mhz: i64,
    /// Band: `2.4`, `5` or `6` (GHz).
    pub band: Option<&'static str>,
    /// IEEE channel number.
    pub channel: Option<i64>,
}

/// What an agent reports about itself (SPEC §5.5); counters are of its current run.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Health {
    /// Events the broker acknowledged.
    pub published: i64,
    /// Events the agent dropped (outbox overflow).
    pub dropped: i64,
    /// Broker reconnects.
    pub reconnects: i64,
    /// Events waiting in its outbox.
    pub outbox_depth: i64,
    /// Stations that associated but never authorized.
    pub failed_joins: i64,
    /// Stations its session table had no room for.
    pub tracker_overflow: i64,
    /// Of `dropped`: interim updates (their counters come with a later update or the stop).
    pub dropped_updates: i64,
    /// Of `dropped`: starts, stops and syncs: session records lost.
    pub dropped_starts_stops: i64,
    /// Events restored from its spool when this agent run started.
    pub spool_restored: i64,
    /// It drops events (any dropped, or stations it had no room for): its history has holes.
    pub drops_events: bool,
}

/// The `WHERE` condition on `devices d` that `f` selects, its values appended to `p`
/// (`$n` numbered after those already there).
pub(crate) fn scope_sql(f: &DeviceFilter, p: &mut Vec<Val>) -> String {
    let mut w: Vec<String> = Vec::new();
    if let Some(o) = &f.organization {
        p.push(Val::from(o.as_str()));
        w.push(format!("d.organization = ${}", p.len()));
    }
    if let Some(g) = &f.group {
        p.push(Val::from(g.as_str()));
        w.push(format!("d.grp = ${}", p.len()));
    }
    if let Some(x) = &f.device {
        p.push(Val::from(x.as_str()));
        w.push(format!("(d.id = ${n} OR d.name = ${n})", n = p.len()));
    }
    if w.is_empty() {
        "1 = 1".into()
    } else {
        w.join(" AND ")
    }
}

/// The devices query for `f`.
pub(crate) fn devices_sql(db: &ReadDb, f: &DeviceFilter, now: Now) -> (String, Vec<Val>) {
    let mut p = vec![Val::Int(now.now_ms), Val::Int(now.dangling_ms)];
    let scope = scope_sql(f, &mut p);
    let open = db.indexed_by("sessions_open_device");
    (
        format!(
            "SELECT d.id, d.name, d.organization, d.grp, d.online, d.last_seen_ms, d.boot_id, \
             d.agent_version, d.seq_gaps, d.published, d.dropped, d.reconnects, \
             d.outbox_depth, d.failed_joins, d.tracker_overflow, d.dropped_updates, \
             d.dropped_starts_stops, d.spool_restored, \
             (SELECT count(*) FROM sessions s{open} WHERE s.device_id = d.id \
                AND s.stop_ms IS NULL), \
             (SELECT count(*) FROM sessions s{open} WHERE s.device_id = d.id \
                AND s.stop_ms IS NULL AND $1 - coalesce(s.last_activity_ms, s.last_seen_ms) > $2), \
             d.radios \
             FROM devices d WHERE {scope} ORDER BY d.id"
        ),
        p,
    )
}

/// Devices matching `f`, by id.
///
/// # Errors
/// Database errors.
pub fn list(db: &ReadDb, f: &DeviceFilter, now: Now) -> Result<Vec<DeviceRow>, ReadError> {
    let (sql, params) = devices_sql(db, f, now);
    let mut rows: Vec<DeviceRow> = db
        .query(&sql, &params)?
        .iter()
        .map(device_row)
        .collect::<Result<_, _>>()?;
    let since = now.now_ms - crate::core::derived::DAY_MS;
    let failed = super::failed_joins::per_device_since(db, since)?;
    let roams = super::roams::per_device_since(db, since)?;
    for r in &mut rows {
        r.failed_joins_24h = failed.get(&r.id).copied().unwrap_or(0);
        let (arrived, left) = roams.get(&r.id).copied().unwrap_or_default();
        r.roams_in_24h = arrived;
        r.roams_out_24h = left;
    }
    Ok(rows)
}

fn device_row(r: &Row) -> Result<DeviceRow, ReadError> {
    let n = |i: usize| -> Result<i64, ReadError> { Ok(r.opt_int(i)?.unwrap_or(0)) };
    let health = Health {
        published: n(9)?,
        dropped: n(10)?,
        reconnects: n(11)?,
        outbox_depth: n(12)?,
        failed_joins: n(13)?,
        tracker_overflow: n(14)?,
        dropped_updates: n(15)?,
        dropped_starts_stops: n(16)?,
        spool_restored: n(17)?,
        drops_events: n(10)? > 0 || n(14)? > 0,
    };
    Ok(DeviceRow {
        id: r.text(0)?,
        name: r.opt_text(1)?,
        organization: r.opt_text(2)?,
        group: r.opt_text(3)?,
        online: r.flag(4)?,
        last_seen: r.opt_int(5)?.map(rfc3339_ms),
        boot_id: r.opt_text(6)?,
        agent_version: r.opt_text(7)?,
        seq_gaps: n(8)?,
        failed_joins_24h: 0,
        roams_in_24h: 0,
        roams_out_24h: 0,
        open_sessions: n(18)?,
        dangling_sessions: n(19)?,
        health,
        radios: decode_radios(&r.opt_text(20)?.unwrap_or_default())
            .into_iter()
            .map(|r| RadioRow {
                band: band(r.freq_mhz),
                channel: channel(r.freq_mhz),
                ifname: r.ifname,
                bssid: r.bssid,
                ssid: r.ssid,
                freq_mhz: r.freq_mhz,
            })
            .collect(),
    })
}

/// Whether a device has this id or name.
///
/// # Errors
/// Database errors.
pub fn exists(db: &ReadDb, id_or_name: &str) -> Result<bool, ReadError> {
    any(
        db,
        "SELECT 1 FROM devices WHERE id = $1 OR name = $1 LIMIT 1",
        id_or_name,
    )
}

/// Whether a device is in this group.
///
/// # Errors
/// Database errors.
pub fn group_exists(db: &ReadDb, group: &str) -> Result<bool, ReadError> {
    any(db, "SELECT 1 FROM devices WHERE grp = $1 LIMIT 1", group)
}

/// Whether a device belongs to this organization.
///
/// # Errors
/// Database errors.
pub fn organization_exists(db: &ReadDb, org: &str) -> Result<bool, ReadError> {
    any(
        db,
        "SELECT 1 FROM devices WHERE organization = $1 LIMIT 1",
        org,
    )
}

fn any(db: &ReadDb, sql: &str, v: &str) -> Result<bool, ReadError> {
    Ok(db.query_one(sql, &[Val::from(v)])?.is_some())
}

/// The organization of each of `ids` that is known.
///
/// # Errors
/// Database errors.
pub fn organizations(
    db: &ReadDb,
    ids: &[String],
) -> Result<std::collections::BTreeMap<String, Option<String>>, ReadError> {
    let mut out = std::collections::BTreeMap::new();
    for id in ids {
        if let Some(r) = db.query_one(
            "SELECT organization FROM devices WHERE id = $1",
            &[Val::from(id.as_str())],
        )? {
            out.insert(id.clone(), r.opt_text(0)?);
        }
    }
    Ok(out)
}
