//! The status report: devices and sessions now, per organization with the configured
//! `max_open_sessions`, for a scope (all, an organization, a group or a device). One report
//! for the CLI and the API.

use std::collections::BTreeMap;

use serde::Serialize;

use super::db::{ReadDb, ReadError, Val};
use super::devices::{self, DeviceFilter, DeviceRow};
use super::sessions::Now;
use crate::timefmt::rfc3339_ms;

/// Per organization (devices without one are the `null` organization).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct OrgStatus {
    /// Organization.
    pub organization: Option<String>,
    /// Devices.
    pub devices: i64,
    /// Devices online.
    pub devices_online: i64,
    /// Open sessions.
    pub open_sessions: i64,
    /// Dangling open sessions.
    pub dangling_sessions: i64,
    /// Seq gaps summed over its devices.
    pub seq_gaps: i64,
    /// Devices whose agent drops events.
    pub devices_dropping: i64,
    /// Failed joins of the last 24 hours.
    pub failed_joins_24h: i64,
    /// Roams of the last 24 hours (counted at the device they arrived at).
    pub roams_24h: i64,
    /// Its configured `max_open_sessions`, if any.
    pub max_open_sessions: Option<u32>,
    /// More open sessions (over all its devices) than `max_open_sessions`.
    pub over_limit: bool,
}

/// The status of a scope.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StatusReport {
    /// When it was made, RFC 3339 UTC.
    pub generated_at: String,
    /// `all`, `organization:O`, `group:G` or `device:D` (joined with `,`).
    pub scope: String,
    /// Devices.
    pub devices: i64,
    /// Devices online.
    pub devices_online: i64,
    /// Open sessions.
    pub open_sessions: i64,
    /// Distinct client MACs among the open sessions.
    pub connected_clients: i64,
    /// Dangling open sessions.
    pub dangling_sessions: i64,
    /// Age of the oldest open session, s.
    pub longest_s: i64,
    /// Median age of the open sessions, s.
    pub median_s: i64,
    /// Seq gaps summed over the devices.
    pub seq_gaps: i64,
    /// Devices whose agent drops events.
    pub devices_dropping: i64,
    /// Failed joins of the last 24 hours.
    pub failed_joins_24h: i64,
    /// Roams of the last 24 hours (counted at the device they arrived at).
    pub roams_24h: i64,
    /// Per organization.
    pub organizations: Vec<OrgStatus>,
    /// Organizations over their `max_open_sessions`.
    pub over_limit: Vec<String>,
    /// Each device of the scope.
    pub device_status: Vec<DeviceRow>,
}

/// The status of the devices `scope` selects. `limits`: `max_open_sessions` per organization.
///
/// # Errors
/// Database errors.
pub fn status(
    db: &ReadDb,
    scope: &DeviceFilter,
    now: Now,
    limits: &BTreeMap<String, u32>,
) -> Result<StatusReport, ReadError> {
    let devs = devices::list(db, scope, now)?;
    let mut orgs: BTreeMap<Option<String>, OrgStatus> = BTreeMap::new();
    for d in &devs {
        let o = orgs
            .entry(d.organization.clone())
            .or_insert_with(|| OrgStatus {
                organization: d.organization.clone(),
                ..OrgStatus::default()
            });
        o.devices += 1;
        o.devices_online += i64::from(d.online);
        o.open_sessions += d.open_sessions;
        o.dangling_sessions += d.dangling_sessions;
        o.seq_gaps += d.seq_gaps;
        o.devices_dropping += i64::from(d.health.drops_events);
        o.failed_joins_24h += d.failed_joins_24h;
        o.roams_24h += d.roams_in_24h;
    }
    // Limits count every device of the organization, whatever the scope: the open sessions of
    // the organizations that have a limit are counted (none configured: nothing to count; the
    // count over every device cost 1.2 s at 1 M sessions on SQLite, docs/BENCHMARKS.md).
    let limited: Vec<&str> = limits
        .keys()
        .filter(|org| scope.organization.as_ref().is_none_or(|s| s == *org))
        .map(String::as_str)
        .collect();
    let open_per_org = open_per_organization(db, &limited)?;
    for (org, &max) in limits {
        if scope.organization.as_ref().is_some_and(|s| s != org) {
            continue;
        }
        let o = orgs.entry(Some(org.clone())).or_insert_with(|| OrgStatus {
            organization: Some(org.clone()),
            ..OrgStatus::default()
        });
        o.max_open_sessions = Some(max);
        o.over_limit = open_per_org.get(org).copied().unwrap_or(0) > i64::from(max);
    }
    let mut ages: Vec<i64> = Vec::new();
    let mut macs = std::collections::BTreeSet::new();
    let (sql, params) = open_sessions_sql(db, scope);
    for r in db.query(&sql, &params)? {
        ages.push((now.now_ms - r.int(1)?).max(0) / 1000);
        if let Some(m) = r.opt_text(0)? {
            macs.insert(m);
        }
    }
    ages.sort_unstable();
    let median_s = match ages.len() {
        0 => 0,
        n if n % 2 == 1 => ages[n / 2],
        n => (ages[n / 2 - 1] + ages[n / 2]) / 2,
    };
    let sum = |f: fn(&DeviceRow) -> i64| devs.iter().map(f).sum::<i64>();
    let organizations: Vec<OrgStatus> = orgs.into_values().collect();
    Ok(StatusReport {
        generated_at: rfc3339_ms(now.now_ms),
        scope: scope_name(scope),
        devices: devs.len() as i64,
        devices_online: sum(|d| i64::from(d.online)),
        open_sessions: sum(|d| d.open_sessions),
        connected_clients: macs.len() as i64,
        dangling_sessions: sum(|d| d.dangling_sessions),
        longest_s: ages.last().copied().unwrap_or(0),
        median_s,
        seq_gaps: sum(|d| d.seq_gaps),
        devices_dropping: sum(|d| i64::from(d.health.drops_events)),
        failed_joins_24h: sum(|d| d.failed_joins_24h),
        roams_24h: sum(|d| d.roams_in_24h),
        over_limit: organizations
            .iter()
            .filter(|o| o.over_limit)
            .filter_map(|o| o.organization.clone())
            .collect(),
        organizations,
        device_status: devs,
    })
}

fn scope_name(s: &DeviceFilter) -> String {
    let mut parts = Vec::new();
    if let Some(o) = &s.organization {
        parts.push(format!("organization:{o}"));
    }
    if let Some(g) = &s.group {
        parts.push(format!("group:{g}"));
    }
    if let Some(d) = &s.device {
        parts.push(format!("device:{d}"));
    }
    if parts.is_empty() {
        "all".into()
    } else {
        parts.join(",")
    }
}

pub(crate) fn open_sessions_sql(db: &ReadDb, f: &DeviceFilter) -> (String, Vec<Val>) {
    let mut p = Vec::new();
    let scope = devices::scope_sql(f, &mut p);
    (
        format!(
            "SELECT s.mac, s.start_ms FROM sessions s{} \
             WHERE s.stop_ms IS NULL AND s.device_id IN (SELECT d.id FROM devices d WHERE {scope})",
            db.indexed_by("sessions_open_device")
        ),
        p,
    )
}

/// Open sessions of the organizations `$1`…`$n`: their devices by the organization index,
/// each device's open sessions through the index of open sessions per device (PostgreSQL:
/// an index-only scan; SQLite reads each open row for `stop_ms`).
pub(crate) fn open_per_organization_sql(db: &ReadDb, n: usize) -> String {
    let list = (1..=n.max(1))
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(", ");
    format!(
        "SELECT d.organization, count(*) FROM devices d JOIN sessions s{} ON s.device_id = d.id \
         WHERE d.organization IN ({list}) AND s.stop_ms IS NULL GROUP BY d.organization",
        db.indexed_by("sessions_open_device")
    )
}

/// Open sessions per organization, over all devices of each of `organizations` (those not
/// listed are not counted).
///
/// # Errors
/// Database errors.
pub fn open_per_organization(
    db: &ReadDb,
    organizations: &[&str],
) -> Result<BTreeMap<String, i64>, ReadError> {
    let mut out = BTreeMap::new();
    if organizations.is_empty() {
        return Ok(out);
    }
    let params: Vec<Val> = organizations.iter().map(|o| Val::from(*o)).collect();
    for r in db.query(&open_per_organization_sql(db, params.len()), &params)? {
        out.insert(r.text(0)?, r.int(1)?);
    }
    Ok(out)
}
