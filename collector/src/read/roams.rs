//! Roams (SPEC §7), as the derive step stored them: the listing (newest first, or a client's
//! chain in order), and the counts per pair of access points ("who bounces clients between
//! whom"). One row type for the CLI and the API.
//!
//! Roams are stored keyed by client MAC alone (a device's organization may arrive after its
//! first events); organizations are applied here: only roams between two devices of one
//! organization (or two without one) are shown, and that is the roam's organization.

use serde::Serialize;

use super::db::{ReadDb, ReadError, Row, Val};
use crate::core::roams::band;
use crate::timefmt::rfc3339_ms;

/// Which roams (every field narrows).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RoamFilter {
    /// Devices (ids or names) the client left or joined (any of them).
    pub devices: Vec<String>,
    /// A group one of its two devices is in.
    pub group: Option<String>,
    /// Organization.
    pub organization: Option<String>,
    /// Client MAC: its chain, oldest first.
    pub mac: Option<String>,
    /// An SSID the client left or joined.
    pub ssid: Option<String>,
    /// Arrived at or after, ms.
    pub after_ms: Option<i64>,
    /// Arrived before, ms.
    pub before_ms: Option<i64>,
    /// At most this many rows.
    pub limit: Option<u32>,
}

/// Fields of a roam row, in the order of JSON objects and CSV columns.
pub const ROAM_FIELDS: [&str; 22] = [
    "at",
    "mac",
    "label",
    "vendor",
    "randomized",
    "organization",
    "from_device",
    "from_name",
    "from_ifname",
    "from_ssid",
    "from_band",
    "to_device",
    "to_name",
    "to_ifname",
    "to_ssid",
    "to_band",
    "gap_ms",
    "band_changed",
    "ssid_changed",
    "same_device",
    "from_session",
    "to_session",
];

/// One roam.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RoamRow {
    /// When the client arrived (the new session's start), RFC 3339 UTC.
    pub at: String,
    /// Client MAC.
    pub mac: String,
    /// Its label from the labels file.
    pub label: Option<String>,
    /// Its vendor.
    pub vendor: Option<String>,
    /// A locally administered MAC.
    pub randomized: bool,
    /// The organization of both devices (null: devices without one).
    pub organization: Option<String>,
    /// Device left.
    pub from_device: String,
    /// Its name.
    pub from_name: Option<String>,
    /// Interface left.
    pub from_ifname: String,
    /// SSID left.
    pub from_ssid: String,
    /// Band left (`2.4`, `5`, `6`, GHz).
    pub from_band: Option<String>,
    /// Device joined.
    pub to_device: String,
    /// Its name.
    pub to_name: Option<String>,
    /// Interface joined.
    pub to_ifname: String,
    /// SSID joined.
    pub to_ssid: String,
    /// Band joined.
    pub to_band: Option<String>,
    /// The new session's start minus the old one's stop, ms; negative: they overlapped (the
    /// old AP noticed the client leave after the new one saw it join).
    pub gap_ms: i64,
    /// The band changed (band steering, or a move to another radio).
    pub band_changed: bool,
    /// The SSID changed.
    pub ssid_changed: bool,
    /// Both ends on one device (between its radios).
    pub same_device: bool,
    /// The session left (16 hex digits, as in `sessions`).
    pub from_session: String,
    /// The session joined.
    pub to_session: String,
}

impl RoamRow {
    /// The row's cells in [`ROAM_FIELDS`] order.
    pub fn cells(&self) -> Vec<String> {
        let o = |v: &Option<String>| v.clone().unwrap_or_default();
        vec![
            self.at.clone(),
            self.mac.clone(),
            o(&self.label),
            o(&self.vendor),
            self.randomized.to_string(),
            o(&self.organization),
            self.from_device.clone(),
            o(&self.from_name),
            self.from_ifname.clone(),
            self.from_ssid.clone(),
            o(&self.from_band),
            self.to_device.clone(),
            o(&self.to_name),
            self.to_ifname.clone(),
            self.to_ssid.clone(),
            o(&self.to_band),
            self.gap_ms.to_string(),
            self.band_changed.to_string(),
            self.ssid_changed.to_string(),
            self.same_device.to_string(),
            self.from_session.clone(),
            self.to_session.clone(),
        ]
    }
}

/// The roams of devices of one organization: `roams r` joined with its two devices `fd`, `td`.
const FROM_SQL: &str = "roams r LEFT JOIN devices fd ON fd.id = r.from_device \
     LEFT JOIN devices td ON td.id = r.to_device \
     WHERE coalesce(fd.organization, '') = coalesce(td.organization, '')";

/// The `WHERE` of `f` on [`FROM_SQL`] (after its own condition), values appended to `p`.
fn where_sql(f: &RoamFilter, p: &mut Vec<Val>) -> String {
    let mut w = String::new();
    let either = |w: &mut String, sub: &str| {
        w.push_str(&format!(
            " AND (r.to_device IN ({sub}) OR r.from_device IN ({sub}))"
        ));
    };
    if !f.devices.is_empty() {
        let first = p.len() + 1;
        let list = (first..first + f.devices.len())
            .map(|i| format!("${i}"))
            .collect::<Vec<_>>()
            .join(", ");
        p.extend(f.devices.iter().map(|d| Val::Text(d.clone())));
        either(
            &mut w,
            &format!("SELECT id FROM devices WHERE id IN ({list}) OR name IN ({list})"),
        );
    }
    if let Some(g) = &f.group {
        p.push(Val::Text(g.clone()));
        either(
            &mut w,
            &format!("SELECT id FROM devices WHERE grp = ${}", p.len()),
        );
    }
    if let Some(s) = &f.ssid {
        p.push(Val::Text(s.clone()));
        let n = p.len();
        w.push_str(&format!(" AND (r.from_ssid = ${n} OR r.to_ssid = ${n})"));
    }
    let mut bind = |clause: &str, v: Val| {
        p.push(v);
        w.push_str(&clause.replace('?', &format!("${}", p.len())));
    };
    if let Some(o) = &f.organization {
        bind(" AND td.organization = ?", Val::Text(o.clone()));
    }
    if let Some(m) = &f.mac {
        bind(" AND r.mac = ?", Val::Text(m.to_ascii_lowercase()));
    }
    if let Some(t) = f.after_ms {
        bind(" AND r.at_ms >= ?", Val::Int(t));
    }
    if let Some(t) = f.before_ms {
        bind(" AND r.at_ms < ?", Val::Int(t));
    }
    w
}

/// The listing's SQL: newest first, or a client's chain oldest first.
pub(crate) fn list_sql(f: &RoamFilter) -> (String, Vec<Val>) {
    let mut p = Vec::new();
    let w = where_sql(f, &mut p);
    let order = if f.mac.is_some() {
        "r.at_ms, r.to_device, r.to_id"
    } else {
        "r.at_ms DESC, r.to_device, r.to_id"
    };
    let mut sql = format!(
        "SELECT r.at_ms, r.mac, coalesce(td.organization, ''), r.from_device, fd.name, \
         r.from_ifname, r.from_ssid, r.from_freq, r.to_device, td.name, r.to_ifname, r.to_ssid, \
         r.to_freq, r.gap_ms, r.from_id, r.to_id FROM {FROM_SQL}{w} ORDER BY {order}"
    );
    if let Some(n) = f.limit {
        p.push(Val::Int(i64::from(n)));
        sql.push_str(&format!(" LIMIT ${}", p.len()));
    }
    (sql, p)
}

/// Roams matching `f`: newest first, or with `mac` the client's chain, oldest first.
///
/// # Errors
/// Database errors.
pub fn list(db: &ReadDb, f: &RoamFilter) -> Result<Vec<RoamRow>, ReadError> {
    let (sql, p) = list_sql(f);
    db.query(&sql, &p)?.iter().map(|r| row(db, r)).collect()
}

fn row(db: &ReadDb, r: &Row) -> Result<RoamRow, ReadError> {
    let mac = r.text(1)?;
    let info = db.names().describe(&mac);
    let org = r.text(2)?;
    let (fb, tb) = (band(r.opt_int(7)?), band(r.opt_int(12)?));
    let (from_ssid, to_ssid) = (r.text(6)?, r.text(11)?);
    let (from_device, to_device) = (r.text(3)?, r.text(8)?);
    let id = |i: usize| -> Result<String, ReadError> { Ok(format!("{:016x}", r.int(i)? as u64)) };
    Ok(RoamRow {
        at: rfc3339_ms(r.int(0)?),
        label: info.label,
        vendor: info.vendor,
        randomized: info.randomized,
        mac,
        organization: (!org.is_empty()).then_some(org),
        from_name: r.opt_text(4)?,
        from_ifname: r.text(5)?,
        from_band: fb.map(str::to_owned),
        to_name: r.opt_text(9)?,
        to_ifname: r.text(10)?,
        to_band: tb.map(str::to_owned),
        gap_ms: r.int(13)?,
        band_changed: fb != tb,
        ssid_changed: from_ssid != to_ssid,
        same_device: from_device == to_device,
        from_session: id(14)?,
        to_session: id(15)?,
        from_ssid,
        to_ssid,
        from_device,
        to_device,
    })
}

/// Fields of a pair row, in the order of JSON objects and CSV columns.
pub const PAIR_FIELDS: [&str; 8] = [
    "from_device",
    "from_name",
    "to_device",
    "to_name",
    "roams",
    "clients",
    "median_gap_ms",
    "last",
];

/// Roams from one access point to another.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PairRow {
    /// Device left.
    pub from_device: String,
    /// Its name.
    pub from_name: Option<String>,
    /// Device joined.
    pub to_device: String,
    /// Its name.
    pub to_name: Option<String>,
    /// Roams from one to the other.
    pub roams: i64,
    /// Distinct clients among them.
    pub clients: i64,
    /// Their median gap, ms (negative: mostly overlaps).
    pub median_gap_ms: i64,
    /// The latest of them, RFC 3339 UTC.
    pub last: String,
}

impl PairRow {
    /// The row's cells in [`PAIR_FIELDS`] order.
    pub fn cells(&self) -> Vec<String> {
        let o = |v: &Option<String>| v.clone().unwrap_or_default();
        vec![
            self.from_device.clone(),
            o(&self.from_name),
            self.to_device.clone(),
            o(&self.to_name),
            self.roams.to_string(),
            self.clients.to_string(),
            self.median_gap_ms.to_string(),
            self.last.clone(),
        ]
    }
}

/// The roams `f` selects (its limit ignored), for counting per pair: (from, to, mac, gap,
/// at).
pub(crate) fn pairs_sql(f: &RoamFilter) -> (String, Vec<Val>) {
    let mut p = Vec::new();
    let w = where_sql(f, &mut p);
    (
        format!("SELECT r.from_device, r.to_device, r.mac, r.gap_ms, r.at_ms FROM {FROM_SQL}{w}"),
        p,
    )
}

/// Roams matching `f` counted per (device left, device joined), most first; `f.limit` caps
/// the pairs.
///
/// # Errors
/// Database errors.
pub fn pairs(db: &ReadDb, f: &RoamFilter) -> Result<Vec<PairRow>, ReadError> {
    use std::collections::{BTreeMap, BTreeSet};
    type Acc = (Vec<i64>, BTreeSet<String>, i64);
    let (sql, p) = pairs_sql(f);
    let mut per: BTreeMap<(String, String), Acc> = BTreeMap::new();
    for r in db.query(&sql, &p)? {
        let e = per.entry((r.text(0)?, r.text(1)?)).or_default();
        e.0.push(r.int(3)?);
        e.1.insert(r.text(2)?);
        e.2 = e.2.max(r.int(4)?);
    }
    let name = |id: &str| -> Result<Option<String>, ReadError> {
        Ok(db
            .query_one("SELECT name FROM devices WHERE id = $1", &[Val::from(id)])?
            .and_then(|r| r.opt_text(0).ok().flatten()))
    };
    let mut out = Vec::with_capacity(per.len());
    for ((from, to), (mut gaps, macs, last)) in per {
        gaps.sort_unstable();
        out.push(PairRow {
            from_name: name(&from)?,
            to_name: name(&to)?,
            from_device: from,
            to_device: to,
            roams: gaps.len() as i64,
            clients: macs.len() as i64,
            median_gap_ms: gaps[gaps.len() / 2],
            last: rfc3339_ms(last),
        });
    }
    out.sort_by(|a, b| {
        (b.roams, &a.from_device, &a.to_device).cmp(&(a.roams, &b.from_device, &b.to_device))
    });
    if let Some(n) = f.limit {
        out.truncate(n as usize);
    }
    Ok(out)
}

/// Roams per device that arrived at or after `since_ms` (metrics): (arrived, left) per id.
///
/// # Errors
/// Database errors.
pub fn per_device_since(
    db: &ReadDb,
    since_ms: i64,
) -> Result<std::collections::BTreeMap<String, (i64, i64)>, ReadError> {
    let mut out: std::collections::BTreeMap<String, (i64, i64)> = Default::default();
    for r in db.query(&per_device_since_sql(db), &[Val::Int(since_ms)])? {
        let e = out.entry(r.text(0)?).or_default();
        e.0 += r.int(1)?;
        let l = out.entry(r.text(2)?).or_default();
        l.1 += r.int(1)?;
    }
    Ok(out)
}

/// See [`per_device_since`]: the roams since by index `roams_time` (SQLite's planner, without
/// statistics, would scan the table for the grouping), then their devices.
pub(crate) fn per_device_since_sql(db: &ReadDb) -> String {
    format!(
        "SELECT r.to_device, r.n, r.from_device \
         FROM (SELECT to_device, from_device, count(*) AS n FROM roams{} WHERE at_ms >= $1 \
         GROUP BY to_device, from_device) r \
         LEFT JOIN devices fd ON fd.id = r.from_device LEFT JOIN devices td ON td.id = r.to_device \
         WHERE coalesce(fd.organization, '') = coalesce(td.organization, '')",
        db.indexed_by("roams_time")
    )
}
