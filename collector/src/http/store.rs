//! The API's read side: pooled read-only SQLite connections (WAL lets them read while the
//! writer commits), and the queries the `query` module does not offer (yet). Sessions are
//! read with `query::list_sessions` / `list_sessions_keyed`, like the CLI.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use rusqlite::{Connection, OpenFlags};
use serde::Serialize;

use super::error::ApiError;
use crate::timefmt::rfc3339_ms;

/// Read-only connections to the database, reused across requests.
pub struct Reader {
    path: PathBuf,
    pool: Mutex<Vec<Connection>>,
}

/// Idle connections kept; more are opened under load and closed afterwards.
const POOL_KEEP: usize = 4;

/// A read-only connection as the API opens it: SQLite's default page and statement caches
/// (a reader's page cache is dropped whenever the writer commits, so a large one would buy
/// little under ingest; `wifisess-loadgen query-bench --connection api` measures it).
///
/// # Errors
/// SQLite errors of opening.
pub fn open_read_only(path: &Path) -> rusqlite::Result<Connection> {
    let c = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    c.busy_timeout(std::time::Duration::from_secs(5))?;
    Ok(c)
}

impl Reader {
    /// A reader of the database at `path` (nothing is opened yet).
    pub fn new(path: PathBuf) -> Arc<Reader> {
        Arc::new(Reader {
            path,
            pool: Mutex::new(Vec::new()),
        })
    }

    fn open(&self) -> rusqlite::Result<Connection> {
        open_read_only(&self.path)
    }

    /// Runs `f` on a read-only connection (blocking; call from `spawn_blocking`).
    ///
    /// # Errors
    /// SQLite errors of opening or of `f`.
    pub fn with<T>(
        &self,
        f: impl FnOnce(&Connection) -> rusqlite::Result<T>,
    ) -> rusqlite::Result<T> {
        let pooled = self.pool.lock().ok().and_then(|mut p| p.pop());
        let conn = match pooled {
            Some(c) => c,
            None => self.open()?,
        };
        let r = f(&conn);
        if let Ok(mut p) = self.pool.lock() {
            if p.len() < POOL_KEEP {
                p.push(conn);
            }
        }
        r
    }

    /// [`Reader::with`] on the blocking pool, errors as API errors.
    ///
    /// # Errors
    /// 500 on SQLite errors (logged), or what `f` returns.
    pub async fn run<T: Send + 'static>(
        self: &Arc<Self>,
        f: impl FnOnce(&Connection) -> Result<T, ApiError> + Send + 'static,
    ) -> Result<T, ApiError> {
        let me = Arc::clone(self);
        tokio::task::spawn_blocking(move || {
            let mut out = None;
            me.with(|c| {
                out = Some(f(c));
                Ok(())
            })?;
            out.expect("ran")
        })
        .await
        .map_err(|e| ApiError::internal(format!("query task: {e}")))?
    }
}

/// A device as the API lists it.
#[derive(Debug, Clone, Serialize)]
pub struct DeviceRow {
    /// Device id (as in the MQTT topic).
    pub id: String,
    /// Name (inventory, else announced).
    pub name: Option<String>,
    /// Organization.
    pub organization: Option<String>,
    /// Group.
    pub group: Option<String>,
    /// Whether its agent is connected (last status, Last Will).
    pub online: bool,
    /// Last message received from it, RFC 3339 UTC.
    pub last_seen: Option<String>,
    /// Current boot id.
    pub boot_id: Option<String>,
    /// Agent version.
    pub agent_version: Option<String>,
    /// Open sessions now.
    pub open_sessions: i64,
    /// Open sessions without client activity for `dangling_minutes`.
    pub dangling_sessions: i64,
    /// Sequence numbers never received (lost events).
    pub seq_gaps: i64,
}

/// Devices filtered by organization, group and id-or-name, by id.
///
/// # Errors
/// SQLite errors.
pub fn devices(
    conn: &Connection,
    organization: Option<&str>,
    group: Option<&str>,
    device: Option<&str>,
    now_ms: i64,
    dangling_ms: i64,
) -> rusqlite::Result<Vec<DeviceRow>> {
    let mut st = conn.prepare_cached(
        "SELECT d.id, coalesce(d.inv_name, d.name), coalesce(d.inv_organization, d.organization),
                coalesce(d.inv_group, d.grp), d.online, d.last_seen_ms, d.boot_id, d.agent_version,
                d.seq_gaps,
                (SELECT count(*) FROM sessions s WHERE s.device_id = d.id AND s.stop_ms IS NULL),
                (SELECT count(*) FROM sessions s WHERE s.device_id = d.id AND s.stop_ms IS NULL
                    AND ?4 - coalesce(s.last_activity_ms, s.last_seen_ms) > ?5)
         FROM devices d
         WHERE (?1 IS NULL OR coalesce(d.inv_organization, d.organization) = ?1)
           AND (?2 IS NULL OR coalesce(d.inv_group, d.grp) = ?2)
           AND (?3 IS NULL OR d.id = ?3 OR coalesce(d.inv_name, d.name) = ?3)
         ORDER BY d.id",
    )?;
    let rows = st.query_map(
        rusqlite::params![organization, group, device, now_ms, dangling_ms],
        |r| {
            Ok(DeviceRow {
                id: r.get(0)?,
                name: r.get(1)?,
                organization: r.get(2)?,
                group: r.get(3)?,
                online: r.get(4)?,
                last_seen: r.get::<_, Option<i64>>(5)?.map(rfc3339_ms),
                boot_id: r.get(6)?,
                agent_version: r.get(7)?,
                seq_gaps: r.get(8)?,
                open_sessions: r.get(9)?,
                dangling_sessions: r.get(10)?,
            })
        },
    )?;
    rows.collect()
}

/// The organization of each of `ids` (devices unknown to the table are left out).
///
/// # Errors
/// SQLite errors.
pub fn device_orgs(
    conn: &Connection,
    ids: &[String],
) -> rusqlite::Result<BTreeMap<String, Option<String>>> {
    let mut st = conn.prepare_cached(
        "SELECT coalesce(inv_organization, organization) FROM devices WHERE id = ?1",
    )?;
    let mut out = BTreeMap::new();
    for id in ids {
        let mut rows = st.query([id])?;
        if let Some(r) = rows.next()? {
            out.insert(id.clone(), r.get(0)?);
        }
    }
    Ok(out)
}

/// Open sessions, dangling sessions and online devices per organization (`None`: devices
/// without one).
#[derive(Debug, Clone, Default, Serialize)]
pub struct OrgCounts {
    /// Organization.
    pub organization: Option<String>,
    /// Devices known.
    pub devices: i64,
    /// Devices online.
    pub devices_online: i64,
    /// Open sessions.
    pub open_sessions: i64,
    /// Open, dangling sessions.
    pub dangling_sessions: i64,
    /// Sequence gaps, summed over its devices.
    pub seq_gaps: i64,
}

/// Per-organization counts, optionally of one organization only.
///
/// # Errors
/// SQLite errors.
pub fn org_counts(
    conn: &Connection,
    organization: Option<&str>,
    now_ms: i64,
    dangling_ms: i64,
) -> rusqlite::Result<Vec<OrgCounts>> {
    let mut st = conn.prepare_cached(
        "SELECT coalesce(d.inv_organization, d.organization) AS org, count(*), sum(d.online),
                sum((SELECT count(*) FROM sessions s WHERE s.device_id = d.id AND s.stop_ms IS NULL)),
                sum((SELECT count(*) FROM sessions s WHERE s.device_id = d.id AND s.stop_ms IS NULL
                     AND ?2 - coalesce(s.last_activity_ms, s.last_seen_ms) > ?3)),
                sum(d.seq_gaps)
         FROM devices d
         WHERE ?1 IS NULL OR coalesce(d.inv_organization, d.organization) = ?1
         GROUP BY org ORDER BY org",
    )?;
    let rows = st.query_map(rusqlite::params![organization, now_ms, dangling_ms], |r| {
        Ok(OrgCounts {
            organization: r.get(0)?,
            devices: r.get(1)?,
            devices_online: r.get::<_, Option<i64>>(2)?.unwrap_or(0),
            open_sessions: r.get::<_, Option<i64>>(3)?.unwrap_or(0),
            dangling_sessions: r.get::<_, Option<i64>>(4)?.unwrap_or(0),
            seq_gaps: r.get::<_, Option<i64>>(5)?.unwrap_or(0),
        })
    })?;
    rows.collect()
}

/// All ingest counters (`counters` table) by name.
///
/// # Errors
/// SQLite errors.
pub fn counters(conn: &Connection) -> rusqlite::Result<Vec<(String, i64)>> {
    let mut st = conn.prepare_cached("SELECT name, value FROM counters ORDER BY name")?;
    let rows = st.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
    rows.collect()
}

/// One client of the attendance report.
#[derive(Debug, Clone, Serialize)]
pub struct PresenceRow {
    /// Client MAC.
    pub mac: String,
    /// Minutes connected inside the window (union over the group's devices).
    pub minutes: i64,
    /// First connection inside the window, RFC 3339 UTC.
    pub first_seen: String,
    /// Last moment connected inside the window, RFC 3339 UTC.
    pub last_seen: String,
    /// `minutes >= min_minutes`.
    pub present: bool,
    /// Devices it was seen on.
    pub devices: Vec<String>,
}

/// The attendance report of `group` in `[from, to]` (SPEC §5.3 `presence`): per client, the
/// union of its sessions clipped to the window, so roaming is not counted twice.
///
/// # Errors
/// SQLite errors.
pub fn presence(
    conn: &Connection,
    group: &str,
    organization: Option<&str>,
    from_ms: i64,
    to_ms: i64,
    min_minutes: i64,
    now_ms: i64,
) -> rusqlite::Result<Vec<PresenceRow>> {
    let mut st = conn.prepare_cached(
        "SELECT s.mac, s.device_id, s.start_ms, coalesce(s.stop_ms, ?4)
         FROM sessions s JOIN devices d ON d.id = s.device_id
         WHERE coalesce(d.inv_group, d.grp) = ?1
           AND (?5 IS NULL OR coalesce(d.inv_organization, d.organization) = ?5)
           AND s.mac IS NOT NULL AND s.start_ms < ?3
           AND (s.stop_ms IS NULL OR s.stop_ms > ?2)
         ORDER BY s.mac, s.start_ms",
    )?;
    let rows = st.query_map(
        rusqlite::params![group, from_ms, to_ms, now_ms, organization],
        |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, i64>(2)?,
                r.get::<_, i64>(3)?,
            ))
        },
    )?;
    // Per client: its (clipped) intervals and the devices it was seen on.
    type Seen = (Vec<(i64, i64)>, Vec<String>);
    let mut by_mac: BTreeMap<String, Seen> = BTreeMap::new();
    for row in rows {
        let (mac, dev, a, b) = row?;
        let (a, b) = (a.max(from_ms), b.min(to_ms));
        let e = by_mac.entry(mac).or_default();
        if b > a {
            e.0.push((a, b));
        }
        if !e.1.contains(&dev) {
            e.1.push(dev);
        }
    }
    let mut out = Vec::new();
    for (mac, (mut iv, mut devices)) in by_mac {
        if iv.is_empty() {
            continue;
        }
        iv.sort_unstable();
        let (mut total, mut cur) = (0, iv[0]);
        for &(a, b) in &iv[1..] {
            if a <= cur.1 {
                cur.1 = cur.1.max(b);
            } else {
                total += cur.1 - cur.0;
                cur = (a, b);
            }
        }
        total += cur.1 - cur.0;
        let last = iv.iter().map(|x| x.1).max().unwrap_or(cur.1);
        devices.sort();
        let minutes = total / 60_000;
        out.push(PresenceRow {
            mac,
            minutes,
            first_seen: rfc3339_ms(iv[0].0),
            last_seen: rfc3339_ms(last),
            present: minutes >= min_minutes,
            devices,
        });
    }
    Ok(out)
}
