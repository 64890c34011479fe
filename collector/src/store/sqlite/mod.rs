//! The SQLite adapter of the store port: one connection, `IMMEDIATE` transactions, prepared
//! statements cached per connection, a session written with an `UPDATE` of only the columns
//! that changed (most events change columns no index covers, so SQLite rewrites the row and
//! none of its index entries).

pub mod schema;

use std::collections::{BTreeSet, HashMap};
use std::path::Path;
use std::sync::OnceLock;

use rusqlite::types::{ToSqlOutput, ValueRef};
use rusqlite::{params, params_from_iter, Connection, OptionalExtension, Row};

use super::derived_sql::{self as dsql, lite};
use super::{
    BucketMark, ClientMark, Closable, FailedJoin, HourRow, Marks, Names, PruneReport, Roam,
    RoamEnd, Span, Store, StoreError,
};
use crate::core::device::{
    decode_ids, decode_radios, encode_ids, encode_radios, DeviceState, Health, StatusFacts, SyncRec,
};
use crate::core::merge::{DeviceTx, Loaded, Needs};
use crate::core::{Counts, Reason, Session};

/// The writer's SQLite database.
pub struct SqliteStore {
    conn: Connection,
    /// `UPDATE sessions SET <the columns in the bit mask> ...`, made once per mask.
    updates: HashMap<u64, String>,
    /// `SELECT <every column> FROM sessions WHERE <clause>`, made once per clause.
    selects: HashMap<&'static str, String>,
}

impl SqliteStore {
    /// Opens (creating and migrating if needed) the database at `path` for writing.
    ///
    /// # Errors
    /// The file cannot be opened or migrated.
    pub fn open(path: &Path) -> Result<SqliteStore, schema::SchemaError> {
        Ok(SqliteStore::from_connection(schema::open_writer(path)?))
    }

    /// A store on an open connection (migrated by the caller).
    pub fn from_connection(conn: Connection) -> SqliteStore {
        SqliteStore {
            conn,
            updates: HashMap::new(),
            selects: HashMap::new(),
        }
    }

    /// The connection (tests and benchmarks inspect the rows).
    pub fn connection(&self) -> &Connection {
        &self.conn
    }
}

/// The `sessions` columns in the order of [`values`]; the first two are the key.
const SESS_COLS: [&str; 37] = [
    "device_id",
    "id",
    "boot_id",
    "mac",
    "ssid",
    "ifname",
    "bssid",
    "freq_mhz",
    "start_ms",
    "has_start",
    "first_up",
    "first_seq",
    "stop_ms",
    "stop_reason",
    "stop_inferred",
    "agent_stop_ms",
    "agent_stop_reason",
    "last_seen_ms",
    "open_up",
    "open_seq",
    "signal_up",
    "signal_seq",
    "signal_avg",
    "last_activity_ms",
    "rx_bytes",
    "tx_bytes",
    "rx_packets",
    "tx_packets",
    "missing_up",
    "missing_seq",
    "next_start_ms",
    "expired_ms",
    "times_corrected",
    "forced_ms",
    "hostname",
    "hostname_up",
    "hostname_seq",
];

/// `<every column>` for a SELECT, and `INSERT INTO sessions ...`, built once.
fn session_sql() -> &'static (String, String) {
    static SQL: OnceLock<(String, String)> = OnceLock::new();
    SQL.get_or_init(|| {
        let cols = SESS_COLS.join(", ");
        let marks = (1..=SESS_COLS.len())
            .map(|i| format!("?{i}"))
            .collect::<Vec<_>>()
            .join(", ");
        (
            cols.clone(),
            format!("INSERT INTO sessions ({cols}) VALUES ({marks})"),
        )
    })
}

fn key_of(a: Option<i64>, b: Option<i64>) -> Option<(i64, i64)> {
    Some((a?, b?))
}

fn session_from_row(r: &Row<'_>) -> rusqlite::Result<Session> {
    let agent_stop_ms: Option<i64> = r.get(15)?;
    let agent_stop_reason: Option<String> = r.get(16)?;
    let signal_avg: Option<i64> = r.get(22)?;
    let reason: Option<String> = r.get(13)?;
    Ok(Session {
        device_id: r.get(0)?,
        id: r.get(1)?,
        boot_id: r.get(2)?,
        mac: r.get(3)?,
        ssid: r.get(4)?,
        ifname: r.get(5)?,
        bssid: r.get(6)?,
        freq_mhz: r.get(7)?,
        start_ms: r.get(8)?,
        has_start: r.get(9)?,
        first: (r.get(10)?, r.get(11)?),
        stop_ms: r.get(12)?,
        stop_reason: reason.as_deref().map(Reason::parse),
        stop_inferred: r.get(14)?,
        agent_stop: agent_stop_ms.zip(agent_stop_reason.as_deref().map(Reason::parse)),
        last_seen_ms: r.get(17)?,
        open: key_of(r.get(18)?, r.get(19)?),
        signal: key_of(r.get(20)?, r.get(21)?).zip(signal_avg),
        last_activity_ms: r.get(23)?,
        rx_bytes: r.get(24)?,
        tx_bytes: r.get(25)?,
        rx_packets: r.get(26)?,
        tx_packets: r.get(27)?,
        missing: key_of(r.get(28)?, r.get(29)?),
        next_start_ms: r.get(30)?,
        expired_ms: r.get(31)?,
        times_corrected: r.get(32)?,
        forced_ms: r.get(33)?,
        hostname: key_of(r.get(35)?, r.get(36)?).zip(r.get::<_, Option<String>>(34)?),
    })
}

/// Column `i` (in [`SESS_COLS`] order) of a row, borrowed: a write compares and binds
/// without allocating.
fn col(s: &Session, i: usize) -> ValueRef<'_> {
    fn text(v: Option<&str>) -> ValueRef<'_> {
        v.map_or(ValueRef::Null, |t| ValueRef::Text(t.as_bytes()))
    }
    fn int(v: Option<i64>) -> ValueRef<'static> {
        v.map_or(ValueRef::Null, ValueRef::Integer)
    }
    match i {
        0 => ValueRef::Text(s.device_id.as_bytes()),
        1 => ValueRef::Integer(s.id),
        2 => ValueRef::Text(s.boot_id.as_bytes()),
        3 => text(s.mac.as_deref()),
        4 => text(s.ssid.as_deref()),
        5 => text(s.ifname.as_deref()),
        6 => text(s.bssid.as_deref()),
        7 => int(s.freq_mhz),
        8 => ValueRef::Integer(s.start_ms),
        9 => ValueRef::Integer(s.has_start.into()),
        10 => ValueRef::Integer(s.first.0),
        11 => ValueRef::Integer(s.first.1),
        12 => int(s.stop_ms),
        13 => text(s.stop_reason.map(Reason::as_str)),
        14 => ValueRef::Integer(s.stop_inferred.into()),
        15 => int(s.agent_stop.map(|a| a.0)),
        16 => text(s.agent_stop.map(|a| a.1.as_str())),
        17 => ValueRef::Integer(s.last_seen_ms),
        18 => int(s.open.map(|k| k.0)),
        19 => int(s.open.map(|k| k.1)),
        20 => int(s.signal.map(|x| x.0 .0)),
        21 => int(s.signal.map(|x| x.0 .1)),
        22 => int(s.signal.map(|x| x.1)),
        23 => int(s.last_activity_ms),
        24 => ValueRef::Integer(s.rx_bytes),
        25 => ValueRef::Integer(s.tx_bytes),
        26 => ValueRef::Integer(s.rx_packets),
        27 => ValueRef::Integer(s.tx_packets),
        28 => int(s.missing.map(|k| k.0)),
        29 => int(s.missing.map(|k| k.1)),
        30 => int(s.next_start_ms),
        31 => int(s.expired_ms),
        32 => ValueRef::Integer(s.times_corrected.into()),
        33 => int(s.forced_ms),
        34 => text(s.hostname.as_ref().map(|h| h.1.as_str())),
        35 => int(s.hostname.as_ref().map(|h| h.0 .0)),
        36 => int(s.hostname.as_ref().map(|h| h.0 .1)),
        _ => unreachable!("{} session columns", SESS_COLS.len()),
    }
}

impl SqliteStore {
    fn sessions_where(
        &mut self,
        clause: &'static str,
        args: &[&dyn rusqlite::ToSql],
    ) -> Result<Vec<Session>, StoreError> {
        let sql = self
            .selects
            .entry(clause)
            .or_insert_with(|| format!("SELECT {} FROM sessions WHERE {clause}", session_sql().0));
        let mut st = self.conn.prepare_cached(sql)?;
        let rows = st.query_map(args, session_from_row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Writes `s`: an `INSERT` when it is not stored yet, else an `UPDATE` of the columns that
    /// differ from `stored` (nothing when none does).
    fn write_session(&mut self, s: &Session, stored: Option<&Session>) -> Result<(), StoreError> {
        let n = SESS_COLS.len();
        let Some(stored) = stored else {
            self.conn
                .prepare_cached(&session_sql().1)?
                .execute(params_from_iter(
                    (0..n).map(|i| ToSqlOutput::Borrowed(col(s, i))),
                ))?;
            return Ok(());
        };
        let changed: Vec<usize> = (2..n).filter(|&i| col(s, i) != col(stored, i)).collect();
        if changed.is_empty() {
            return Ok(());
        }
        let mask = changed.iter().fold(0u64, |m, &i| m | 1 << i);
        let sql = self.updates.entry(mask).or_insert_with(|| {
            let sets: Vec<String> = changed
                .iter()
                .enumerate()
                .map(|(k, &i)| format!("{} = ?{}", SESS_COLS[i], k + 3))
                .collect();
            format!(
                "UPDATE sessions SET {} WHERE device_id = ?1 AND id = ?2",
                sets.join(", ")
            )
        });
        let args = (0..2)
            .chain(changed.iter().copied())
            .map(|i| ToSqlOutput::Borrowed(col(s, i)));
        self.conn
            .prepare_cached(sql)?
            .execute(params_from_iter(args))?;
        Ok(())
    }

    fn write_device(&self, d: &DeviceState, names: &Names) -> Result<(), StoreError> {
        let sum = d.summary();
        let st = &d.status;
        let h = &st.health;
        self.conn
            .prepare_cached(
                "INSERT INTO devices (id, rev, boots, last_seen_ms, boot_id, agent_epoch,
                    last_seq, seq_gaps, ann_name, ann_organization, ann_group, online,
                    agent_version, status_boot, status_uptime_ms, published, dropped,
                    reconnects, outbox_depth, failed_joins, tracker_overflow,
                    name, organization, grp, dropped_updates, dropped_starts_stops,
                    spool_restored, radios)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15,
                    ?16, ?17, ?18, ?19, ?20, ?21, ?22, ?23, ?24, ?25, ?26, ?27, ?28)
                 ON CONFLICT (id) DO UPDATE SET rev = excluded.rev, boots = excluded.boots,
                    last_seen_ms = excluded.last_seen_ms, boot_id = excluded.boot_id,
                    agent_epoch = excluded.agent_epoch, last_seq = excluded.last_seq,
                    seq_gaps = excluded.seq_gaps, ann_name = excluded.ann_name,
                    ann_organization = excluded.ann_organization, ann_group = excluded.ann_group,
                    online = excluded.online, agent_version = excluded.agent_version,
                    status_boot = excluded.status_boot,
                    status_uptime_ms = excluded.status_uptime_ms,
                    published = excluded.published, dropped = excluded.dropped,
                    reconnects = excluded.reconnects, outbox_depth = excluded.outbox_depth,
                    failed_joins = excluded.failed_joins,
                    tracker_overflow = excluded.tracker_overflow,
                    dropped_updates = excluded.dropped_updates,
                    dropped_starts_stops = excluded.dropped_starts_stops,
                    spool_restored = excluded.spool_restored, radios = excluded.radios",
            )?
            .execute(params![
                d.id,
                d.rev,
                d.encode_boots(),
                d.last_seen_ms,
                sum.boot_id,
                sum.agent_epoch,
                sum.last_seq,
                sum.seq_gaps,
                st.name,
                st.organization,
                st.group,
                st.online,
                st.agent_version,
                st.boot,
                st.uptime_ms,
                h.published,
                h.dropped,
                h.reconnects,
                h.outbox_depth,
                h.failed_joins,
                h.tracker_overflow,
                names.name,
                names.organization,
                names.group,
                h.dropped_updates,
                h.dropped_starts_stops,
                h.spool_restored,
                encode_radios(&st.radios),
            ])?;
        // The names are indexed: written only when they change, so the common write leaves
        // the three indexes alone.
        if &d.names != names {
            self.conn
                .prepare_cached(
                    "UPDATE devices SET name = ?2, organization = ?3, grp = ?4 WHERE id = ?1",
                )?
                .execute(params![d.id, names.name, names.organization, names.group])?;
        }
        Ok(())
    }

    fn closable(&self, sql: &str, arg: i64) -> Result<Vec<Closable>, StoreError> {
        let mut st = self.conn.prepare_cached(sql)?;
        let rows = st.query_map([arg], |r| {
            Ok(Closable {
                device_id: r.get(0)?,
                sessions: r.get::<_, i64>(1)? as u64,
                at_ms: r.get(2)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }
}

fn span_from_row(r: &Row<'_>) -> rusqlite::Result<Span> {
    Ok(Span {
        device_id: r.get(0)?,
        id: r.get(1)?,
        mac: r.get(2)?,
        ssid: r.get(3)?,
        ifname: r.get(4)?,
        freq_mhz: r.get(5)?,
        start_ms: r.get(6)?,
        stop_ms: r.get(7)?,
        last_seen_ms: r.get(8)?,
        rx_bytes: r.get(9)?,
        tx_bytes: r.get(10)?,
    })
}

fn roam_from_row(r: &Row<'_>) -> rusqlite::Result<Roam> {
    Ok(Roam {
        mac: r.get(0)?,
        at_ms: r.get(1)?,
        gap_ms: r.get(2)?,
        from: RoamEnd {
            device_id: r.get(3)?,
            id: r.get(4)?,
            ifname: r.get(5)?,
            ssid: r.get(6)?,
            freq_mhz: r.get(7)?,
        },
        to: RoamEnd {
            device_id: r.get(8)?,
            id: r.get(9)?,
            ifname: r.get(10)?,
            ssid: r.get(11)?,
            freq_mhz: r.get(12)?,
        },
    })
}

fn bucket_from_row(r: &Row<'_>) -> rusqlite::Result<HourRow> {
    Ok(HourRow {
        device_id: r.get(0)?,
        hour_ms: r.get(1)?,
        ssid: r.get(2)?,
        sessions: r.get(3)?,
        clients: r.get(4)?,
        connected_ms: r.get(5)?,
        rx_bytes: r.get(6)?,
        tx_bytes: r.get(7)?,
        roams: r.get(8)?,
        failed_joins: r.get(9)?,
    })
}

/// The failed joins' columns in [`FailedJoin`] order.
const FAILED_JOIN_COLS: &str = "device_id, boot_id, epoch, seq, mac, ifname, ssid, bssid, \
     assoc_ms, gave_up_ms, times_corrected";

fn failed_join_from_row(r: &Row<'_>) -> rusqlite::Result<FailedJoin> {
    Ok(FailedJoin {
        device_id: r.get(0)?,
        boot_id: r.get(1)?,
        epoch: r.get(2)?,
        seq: r.get(3)?,
        mac: r.get(4)?,
        ifname: r.get(5)?,
        ssid: r.get(6)?,
        bssid: r.get(7)?,
        assoc_ms: r.get(8)?,
        gave_up_ms: r.get(9)?,
        times_corrected: r.get(10)?,
    })
}

impl SqliteStore {
    fn spans(&self, sql: &str, args: &[&dyn rusqlite::ToSql]) -> Result<Vec<Span>, StoreError> {
        let mut st = self.conn.prepare_cached(sql)?;
        let rows = st.query_map(args, span_from_row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn count(&self, sql: &str, arg: i64) -> Result<u64, StoreError> {
        Ok(self
            .conn
            .prepare_cached(&lite(sql))?
            .query_row([arg], |r| r.get::<_, i64>(0))? as u64)
    }

    fn delete_batch(&self, sql: &str, cutoff: i64, limit: u32) -> Result<u64, StoreError> {
        Ok(self
            .conn
            .prepare_cached(&lite(sql))?
            .execute(params![cutoff, limit])? as u64)
    }
}

/// The columns of a [`Span`] (in [`span_from_row`] order) from `sessions s` as `$from`,
/// where `$where`.
macro_rules! spans_sql {
    ($from:literal, $where:literal) => {
        concat!(
            "SELECT s.device_id, s.id, s.mac, coalesce(s.ssid, ''), coalesce(s.ifname, ''), \
             s.freq_mhz, s.start_ms, s.stop_ms, s.last_seen_ms, s.rx_bytes, s.tx_bytes FROM ",
            $from,
            " WHERE ",
            $where
        )
    };
}

/// A client's closed sessions that stopped at or after ?2 and started at or before ?3
/// (index `sessions_mac_stop`).
const CLIENT_SPANS_CLOSED_SQL: &str = spans_sql!(
    "sessions s",
    "s.mac = ?1 AND s.stop_ms IS NOT NULL AND s.stop_ms >= ?2 AND s.start_ms <= ?3"
);

/// A client's open sessions that started at or before ?2. Named index: without statistics
/// SQLite takes `sessions_mac` (mac, start_ms), every session of the MAC in its history.
const CLIENT_SPANS_OPEN_SQL: &str = spans_sql!(
    "sessions s INDEXED BY sessions_open_mac",
    "s.mac = ?1 AND s.stop_ms IS NULL AND s.start_ms <= ?2"
);

/// A device's closed sessions that stopped at or after ?2 and started before ?3 (index
/// `sessions_device_stop`).
const DEVICE_SPANS_CLOSED_SQL: &str = spans_sql!(
    "sessions s",
    "s.device_id = ?1 AND s.stop_ms IS NOT NULL AND s.stop_ms >= ?2 AND s.start_ms < ?3 \
     AND s.mac IS NOT NULL"
);

/// A device's open sessions that started before ?2 (index `sessions_open_device`).
const DEVICE_SPANS_OPEN_SQL: &str = spans_sql!(
    "sessions s",
    "s.device_id = ?1 AND s.stop_ms IS NULL AND s.start_ms < ?2 AND s.mac IS NOT NULL"
);

const PRUNE_PLAN_SQL: &str = "SELECT count(*), min(stop_ms), max(stop_ms) FROM sessions
         WHERE stop_ms IS NOT NULL AND stop_ms < ?1";
const PRUNE_BATCH_SQL: &str = "DELETE FROM sessions WHERE rowid IN (
               SELECT rowid FROM sessions WHERE stop_ms IS NOT NULL AND stop_ms < ?1 LIMIT ?2)
             RETURNING stop_ms";
const EXPIRE_PLAN_SQL: &str =
    "SELECT d.id, count(*), max(coalesce(d.last_seen_ms, 0), max(s.last_seen_ms))
         FROM devices d JOIN sessions s ON s.device_id = d.id AND s.stop_ms IS NULL
         WHERE coalesce(d.last_seen_ms, 0) <= ?1 GROUP BY d.id ORDER BY d.id";
const FORCE_PLAN_SQL: &str = "SELECT s.device_id, count(*), max(?1, max(s.last_seen_ms))
         FROM sessions s WHERE s.stop_ms IS NULL GROUP BY s.device_id ORDER BY s.device_id";

/// The jobs' statements with a name, for the query-plan test.
#[cfg(test)]
pub(crate) const PLANNED_SQL: [(&str, &str); 4] = [
    ("prune dry run", PRUNE_PLAN_SQL),
    ("prune batch", PRUNE_BATCH_SQL),
    ("expire plan", EXPIRE_PLAN_SQL),
    ("force plan", FORCE_PLAN_SQL),
];

/// The derive step's session lookups with a name and the index each must use, for the
/// query-plan test.
#[cfg(test)]
pub(crate) const DERIVE_SQL: [(&str, &str, &str); 4] = [
    (
        "client spans, closed",
        CLIENT_SPANS_CLOSED_SQL,
        "sessions_mac_stop",
    ),
    (
        "client spans, open",
        CLIENT_SPANS_OPEN_SQL,
        "sessions_open_mac",
    ),
    (
        "device spans, closed",
        DEVICE_SPANS_CLOSED_SQL,
        "sessions_device_stop",
    ),
    (
        "device spans, open",
        DEVICE_SPANS_OPEN_SQL,
        "sessions_open_device",
    ),
];

impl Store for SqliteStore {
    fn begin(&mut self) -> Result<(), StoreError> {
        // IMMEDIATE: the merge reads before it writes, and another connection may write
        // meanwhile (`expire`/`prune` commands); a deferred transaction would then fail with
        // SQLITE_BUSY instead of waiting for the lock.
        self.conn.execute_batch("BEGIN IMMEDIATE")?;
        Ok(())
    }

    fn commit(&mut self) -> Result<(), StoreError> {
        self.conn.execute_batch("COMMIT")?;
        Ok(())
    }

    fn rollback(&mut self) {
        if !self.conn.is_autocommit() {
            if let Err(e) = self.conn.execute_batch("ROLLBACK") {
                log::warn!("sqlite: rollback failed: {e}");
            }
        }
    }

    fn lock_devices(&mut self, ids: &[String]) -> Result<Vec<Option<i64>>, StoreError> {
        // The IMMEDIATE transaction holds the database's write lock already.
        let mut st = self
            .conn
            .prepare_cached("SELECT rev FROM devices WHERE id = ?1")?;
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            out.push(st.query_row([id], |r| r.get(0)).optional()?);
        }
        Ok(out)
    }

    fn load_device(&mut self, id: &str) -> Result<Option<DeviceState>, StoreError> {
        let row = self
            .conn
            .prepare_cached(
                "SELECT rev, boots, last_seen_ms, status_boot, status_uptime_ms, ann_name,
                    ann_organization, ann_group, online, agent_version, published, dropped,
                    reconnects, outbox_depth, failed_joins, tracker_overflow, name,
                    organization, grp, dropped_updates, dropped_starts_stops, spool_restored,
                    radios
                 FROM devices WHERE id = ?1",
            )?
            .query_row([id], |r| {
                let boots: Option<Vec<u8>> = r.get(1)?;
                let int = |i: usize| -> rusqlite::Result<i64> {
                    Ok(r.get::<_, Option<i64>>(i)?.unwrap_or(0))
                };
                Ok((
                    boots,
                    DeviceState {
                        id: id.to_owned(),
                        rev: r.get(0)?,
                        boots: Vec::new(),
                        last_seen_ms: r.get(2)?,
                        status: StatusFacts {
                            boot: r.get(3)?,
                            uptime_ms: r.get(4)?,
                            name: r.get(5)?,
                            organization: r.get(6)?,
                            group: r.get(7)?,
                            online: r.get(8)?,
                            agent_version: r.get(9)?,
                            health: Health {
                                published: int(10)?,
                                dropped: int(11)?,
                                reconnects: int(12)?,
                                outbox_depth: int(13)?,
                                failed_joins: int(14)?,
                                tracker_overflow: int(15)?,
                                dropped_updates: int(19)?,
                                dropped_starts_stops: int(20)?,
                                spool_restored: int(21)?,
                            },
                            radios: decode_radios(
                                &r.get::<_, Option<String>>(22)?.unwrap_or_default(),
                            ),
                        },
                        names: Names {
                            name: r.get(16)?,
                            organization: r.get(17)?,
                            group: r.get(18)?,
                        },
                        syncs: Default::default(),
                    },
                ))
            })
            .optional()?;
        let Some((boots, mut state)) = row else {
            return Ok(None);
        };
        state.boots = DeviceState::decode_boots(boots.as_deref().unwrap_or_default())
            .map_err(|e| StoreError::Corrupt(format!("device {id}: boots: {e}")))?;
        Ok(Some(state))
    }

    fn load(&mut self, device: &str, needs: &Needs) -> Result<Loaded, StoreError> {
        let mut out = Loaded::default();
        for id in &needs.sessions {
            out.sessions
                .extend(self.sessions_where("device_id = ?1 AND id = ?2", &[&device, id])?);
        }
        for mac in &needs.live_macs {
            out.sessions.extend(self.sessions_where(
                "device_id = ?1 AND mac = ?2 AND agent_stop_ms IS NULL",
                &[&device, mac],
            )?);
        }
        for boot in &needs.live_boots {
            out.sessions.extend(self.sessions_where(
                "device_id = ?1 AND boot_id = ?2 AND agent_stop_ms IS NULL",
                &[&device, boot],
            )?);
        }
        if needs.open {
            out.sessions
                .extend(self.sessions_where("device_id = ?1 AND stop_ms IS NULL", &[&device])?);
        }
        for boot in &needs.syncs {
            let mut st = self.conn.prepare_cached(
                "SELECT up, seq, wall_ms, ids FROM syncs WHERE device_id = ?1 AND boot_id = ?2
                 ORDER BY up, seq",
            )?;
            let rows = st.query_map(params![device, boot], |r| {
                Ok(SyncRec {
                    key: (r.get(0)?, r.get(1)?),
                    wall_ms: r.get(2)?,
                    ids: decode_ids(&r.get::<_, Vec<u8>>(3)?),
                })
            })?;
            out.syncs
                .push((boot.clone(), rows.collect::<Result<_, _>>()?));
        }
        for (mac, from) in &needs.slices {
            let mut st = self.conn.prepare_cached(
                "SELECT start_ms, id FROM sessions WHERE device_id = ?1 AND mac = ?2
                 AND (start_ms, id) >= (?3, ?4) ORDER BY start_ms, id",
            )?;
            let rows = st.query_map(params![device, mac, from.0, from.1], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })?;
            out.slices
                .push((mac.clone(), rows.collect::<Result<_, _>>()?));
        }
        Ok(out)
    }

    fn write(&mut self, tx: &DeviceTx, names: &Names) -> Result<(), StoreError> {
        let changed: Vec<(&Session, Option<&Session>)> = tx.changed_rows().collect();
        // A row open before and after under another MAC leaves its old slot of the
        // one-open-session index first: another row may take that slot in this write (found
        // by the collector_merge fuzz target). NULL never conflicts there.
        for (now, was) in &changed {
            if now.is_open() && was.is_some_and(|w| w.is_open() && w.mac != now.mac) {
                self.conn
                    .prepare_cached(
                        "UPDATE sessions SET mac = NULL WHERE device_id = ?1 AND id = ?2",
                    )?
                    .execute(params![now.device_id, now.id])?;
            }
        }
        // Closures first, so the index never sees two open sessions of one client.
        for (now, was) in changed.iter().filter(|c| !c.0.is_open()) {
            self.write_session(now, *was)?;
        }
        for (now, was) in changed.iter().filter(|c| c.0.is_open()) {
            let was = match was {
                // Its stored MAC was cleared above.
                Some(w) if w.is_open() && w.mac != now.mac => {
                    let mut w = (*w).clone();
                    w.mac = None;
                    Some(w)
                }
                w => w.cloned(),
            };
            self.write_session(now, was.as_ref())?;
        }
        for f in tx.new_failed_joins.values() {
            self.conn
                .prepare_cached(
                    "INSERT INTO failed_joins (device_id, boot_id, epoch, seq, mac, ifname,
                        ssid, bssid, assoc_ms, gave_up_ms, times_corrected)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)
                     ON CONFLICT DO NOTHING",
                )?
                .execute(params![
                    f.device_id,
                    f.boot_id,
                    f.epoch,
                    f.seq,
                    f.mac,
                    f.ifname,
                    f.ssid,
                    f.bssid,
                    f.assoc_ms,
                    f.gave_up_ms,
                    f.times_corrected
                ])?;
        }
        for (boot, y) in &tx.new_syncs {
            self.conn
                .prepare_cached(
                    "INSERT OR IGNORE INTO syncs (device_id, boot_id, up, seq, wall_ms, ids)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                )?
                .execute(params![
                    tx.state.id,
                    boot,
                    y.key.0,
                    y.key.1,
                    y.wall_ms,
                    encode_ids(&y.ids)
                ])?;
        }
        self.write_device(&tx.state, names)
    }

    fn add_counts(&mut self, counts: &Counts) -> Result<(), StoreError> {
        let mut st = self.conn.prepare_cached(
            "INSERT INTO counters (name, value) VALUES (?1, ?2)
             ON CONFLICT (name) DO UPDATE SET value = value + excluded.value",
        )?;
        for (c, n) in &counts.0 {
            st.execute(params![c.name(), n])?;
        }
        Ok(())
    }

    fn expire_plan(&mut self, silent_since_ms: i64) -> Result<Vec<Closable>, StoreError> {
        self.closable(EXPIRE_PLAN_SQL, silent_since_ms)
    }

    fn force_plan(&mut self, now_ms: i64) -> Result<Vec<Closable>, StoreError> {
        self.closable(FORCE_PLAN_SQL, now_ms)
    }

    fn prune_plan(&mut self, cutoff_ms: i64) -> Result<PruneReport, StoreError> {
        let mut rep = self.conn.query_row(PRUNE_PLAN_SQL, [cutoff_ms], |r| {
            Ok(PruneReport {
                sessions: r.get::<_, i64>(0)? as u64,
                oldest_stop_ms: r.get(1)?,
                newest_stop_ms: r.get(2)?,
                ..PruneReport::default()
            })
        })?;
        rep.failed_joins = self.count(dsql::PRUNE_FAILED_JOINS_PLAN, cutoff_ms)?;
        rep.roams = self.count(dsql::PRUNE_ROAMS_PLAN, cutoff_ms)?;
        Ok(rep)
    }

    fn prune_batch(&mut self, cutoff_ms: i64, limit: u32) -> Result<PruneReport, StoreError> {
        let mut rep = PruneReport::default();
        let mut st = self.conn.prepare_cached(PRUNE_BATCH_SQL)?;
        let mut rows = st.query(params![cutoff_ms, limit])?;
        while let Some(r) = rows.next()? {
            let ms: i64 = r.get(0)?;
            rep.add(PruneReport {
                sessions: 1,
                oldest_stop_ms: Some(ms),
                newest_stop_ms: Some(ms),
                ..PruneReport::default()
            });
        }
        drop(rows);
        drop(st);
        rep.failed_joins = self.delete_batch(dsql::PRUNE_FAILED_JOINS, cutoff_ms, limit)?;
        rep.roams = self.delete_batch(dsql::PRUNE_ROAMS, cutoff_ms, limit)?;
        self.conn
            .prepare_cached(&lite(dsql::RECORD_PRUNED))?
            .execute([cutoff_ms])?;
        Ok(rep)
    }

    fn announced(&mut self) -> Result<Vec<(String, Names, Names)>, StoreError> {
        let mut st = self.conn.prepare_cached(
            "SELECT id, ann_name, ann_organization, ann_group, inv_name, inv_organization,
                inv_group FROM devices ORDER BY id",
        )?;
        let rows = st.query_map([], |r| {
            Ok((
                r.get(0)?,
                Names {
                    name: r.get(1)?,
                    organization: r.get(2)?,
                    group: r.get(3)?,
                },
                Names {
                    name: r.get(4)?,
                    organization: r.get(5)?,
                    group: r.get(6)?,
                },
            ))
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn dump(&mut self) -> Result<Vec<String>, StoreError> {
        let mut out: Vec<String> = self
            .sessions_where("1 = 1 ORDER BY device_id, id", &[])?
            .iter()
            .map(|s| format!("session {s:?}"))
            .collect();
        let ids: Vec<String> = {
            let mut st = self.conn.prepare("SELECT id FROM devices ORDER BY id")?;
            let rows = st.query_map([], |r| r.get(0))?;
            rows.collect::<Result<_, _>>()?
        };
        for id in ids {
            if let Some(d) = self.load_device(&id)? {
                out.push(crate::store::dump_device(&d));
            }
        }
        let mut st = self.conn.prepare(
            "SELECT device_id, boot_id, up, seq, wall_ms, ids FROM syncs
             ORDER BY device_id, boot_id, up, seq",
        )?;
        let rows = st.query_map([], |r| {
            Ok(format!(
                "sync {} {} ({}, {}) {} {:?}",
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, i64>(2)?,
                r.get::<_, i64>(3)?,
                r.get::<_, i64>(4)?,
                decode_ids(&r.get::<_, Vec<u8>>(5)?)
            ))
        })?;
        for r in rows {
            out.push(r?);
        }
        drop(st);
        let mut st = self.conn.prepare(&format!(
            "SELECT {FAILED_JOIN_COLS} FROM failed_joins ORDER BY device_id, boot_id, epoch, seq"
        ))?;
        for f in st.query_map([], failed_join_from_row)? {
            out.push(crate::store::dump_failed_join(&f?));
        }
        let mut st = self.conn.prepare(
            "SELECT mac, at_ms, gap_ms, from_device, from_id, from_ifname, from_ssid,
                from_freq, to_device, to_id, to_ifname, to_ssid, to_freq FROM roams
             ORDER BY to_device, to_id",
        )?;
        for r in st.query_map([], roam_from_row)? {
            out.push(crate::store::dump_roam(&r?));
        }
        for (daily, table, time) in [
            (false, "agg_hourly", "hour_ms"),
            (true, "agg_daily", "day_ms"),
        ] {
            let mut st = self.conn.prepare(&format!(
                "SELECT device_id, {time}, ssid, sessions, clients, connected_ms, rx_bytes,
                    tx_bytes, roams, failed_joins FROM {table} ORDER BY device_id, {time}, ssid"
            ))?;
            for r in st.query_map([], bucket_from_row)? {
                out.push(crate::store::dump_bucket(daily, &r?));
            }
        }
        let mut st = self.conn.prepare(
            "SELECT day_ms, device_id, ssid, mac FROM agg_clients
             ORDER BY day_ms, device_id, ssid, mac",
        )?;
        let rows = st.query_map([], |r| {
            Ok(crate::store::dump_client_day(
                r.get(0)?,
                &r.get::<_, String>(1)?,
                &r.get::<_, String>(2)?,
                &r.get::<_, String>(3)?,
            ))
        })?;
        for r in rows {
            out.push(r?);
        }
        Ok(out)
    }

    fn claim_job(&mut self, _job: &str, _now: i64, _every: i64) -> Result<bool, StoreError> {
        Ok(true)
    }

    fn set_names(
        &mut self,
        id: &str,
        inventory: &Names,
        effective: &Names,
    ) -> Result<(), StoreError> {
        self.conn
            .prepare_cached(
                "INSERT INTO devices (id, inv_name, inv_organization, inv_group, name,
                    organization, grp) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
                 ON CONFLICT (id) DO UPDATE SET inv_name = ?2, inv_organization = ?3,
                    inv_group = ?4, name = ?5, organization = ?6, grp = ?7, rev = rev + 1",
            )?
            .execute(params![
                id,
                inventory.name,
                inventory.organization,
                inventory.group,
                effective.name,
                effective.organization,
                effective.group
            ])?;
        Ok(())
    }

    fn mark(&mut self, marks: &Marks, now_ms: i64) -> Result<(), StoreError> {
        if marks.is_empty() {
            return Ok(());
        }
        let mut st = self.conn.prepare_cached(
            "INSERT INTO dirty_clients (mac, lo_ms, hi_ms, gen, first_ms)
             VALUES (?1, ?2, ?3, 0, ?4)
             ON CONFLICT (mac) DO UPDATE SET lo_ms = min(lo_ms, excluded.lo_ms),
                hi_ms = max(hi_ms, excluded.hi_ms), gen = gen + 1",
        )?;
        for (mac, (lo, hi)) in &marks.clients {
            st.execute(params![mac, lo, hi, now_ms])?;
        }
        let mut st = self.conn.prepare_cached(
            "INSERT INTO dirty_buckets (device_id, hour_ms, gen, first_ms) VALUES (?1, ?2, 0, ?3)
             ON CONFLICT (device_id, hour_ms) DO UPDATE SET gen = gen + 1",
        )?;
        for (dev, hour) in &marks.buckets {
            st.execute(params![dev, hour, now_ms])?;
        }
        Ok(())
    }

    fn take_client_marks(&mut self, limit: u32) -> Result<Vec<ClientMark>, StoreError> {
        let mut st = self.conn.prepare_cached(
            "SELECT mac, lo_ms, hi_ms, gen FROM dirty_clients ORDER BY first_ms LIMIT ?1",
        )?;
        let rows = st.query_map([limit], |r| {
            Ok(ClientMark {
                mac: r.get(0)?,
                lo_ms: r.get(1)?,
                hi_ms: r.get(2)?,
                gen: r.get(3)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn finish_client_marks(&mut self, marks: &[ClientMark]) -> Result<(), StoreError> {
        let mut st = self
            .conn
            .prepare_cached("DELETE FROM dirty_clients WHERE mac = ?1 AND gen = ?2")?;
        for m in marks {
            st.execute(params![m.mac, m.gen])?;
        }
        Ok(())
    }

    fn take_bucket_marks(&mut self, limit: u32) -> Result<Vec<BucketMark>, StoreError> {
        let mut st = self.conn.prepare_cached(
            "SELECT device_id, hour_ms, gen FROM dirty_buckets ORDER BY first_ms LIMIT ?1",
        )?;
        let rows = st.query_map([limit], |r| {
            Ok(BucketMark {
                device_id: r.get(0)?,
                hour_ms: r.get(1)?,
                gen: r.get(2)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn finish_bucket_marks(&mut self, marks: &[BucketMark]) -> Result<(), StoreError> {
        let mut st = self.conn.prepare_cached(
            "DELETE FROM dirty_buckets WHERE device_id = ?1 AND hour_ms = ?2 AND gen = ?3",
        )?;
        for m in marks {
            st.execute(params![m.device_id, m.hour_ms, m.gen])?;
        }
        Ok(())
    }

    fn client_spans(&mut self, mac: &str, lo: i64, hi: i64) -> Result<Vec<Span>, StoreError> {
        let mut out = self.spans(CLIENT_SPANS_CLOSED_SQL, &[&mac, &lo, &hi])?;
        out.extend(self.spans(CLIENT_SPANS_OPEN_SQL, &[&mac, &hi])?);
        Ok(out)
    }

    fn replace_roams(
        &mut self,
        mac: &str,
        lo: i64,
        hi: i64,
        roams: &[Roam],
    ) -> Result<Vec<Roam>, StoreError> {
        let old: Vec<Roam> = {
            let mut st = self.conn.prepare_cached(&lite(dsql::CLIENT_ROAMS))?;
            let rows = st.query_map(params![mac, lo, hi], roam_from_row)?;
            rows.collect::<Result<_, _>>()?
        };
        self.conn
            .prepare_cached(&lite(dsql::DELETE_CLIENT_ROAMS))?
            .execute(params![mac, lo, hi])?;
        let mut st = self.conn.prepare_cached(&lite(dsql::INSERT_ROAM))?;
        for r in roams {
            st.execute(params![
                r.mac,
                r.at_ms,
                r.gap_ms,
                r.from.device_id,
                r.from.id,
                r.from.ifname,
                r.from.ssid,
                r.from.freq_mhz,
                r.to.device_id,
                r.to.id,
                r.to.ifname,
                r.to.ssid,
                r.to.freq_mhz
            ])?;
        }
        Ok(old)
    }

    fn replace_client_days(
        &mut self,
        mac: &str,
        lo_day: i64,
        hi_day: i64,
        days: &BTreeSet<(i64, String, String)>,
    ) -> Result<BTreeSet<(i64, String)>, StoreError> {
        let old: BTreeSet<(i64, String, String)> = {
            let mut st = self.conn.prepare_cached(&lite(dsql::CLIENT_DAYS))?;
            let rows = st.query_map(params![mac, lo_day, hi_day], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?))
            })?;
            rows.collect::<Result<_, _>>()?
        };
        let mut changed = BTreeSet::new();
        let mut del = self.conn.prepare_cached(&lite(dsql::DELETE_CLIENT_DAY))?;
        for (d, dev, ssid) in old.difference(days) {
            del.execute(params![d, dev, ssid, mac])?;
            changed.insert((*d, dev.clone()));
        }
        let mut ins = self.conn.prepare_cached(&lite(dsql::INSERT_CLIENT_DAY))?;
        for (d, dev, ssid) in days.difference(&old) {
            ins.execute(params![d, dev, ssid, mac])?;
            changed.insert((*d, dev.clone()));
        }
        Ok(changed)
    }

    fn device_spans(&mut self, device: &str, lo: i64, hi: i64) -> Result<Vec<Span>, StoreError> {
        let mut out = self.spans(DEVICE_SPANS_CLOSED_SQL, &[&device, &lo, &hi])?;
        out.extend(self.spans(DEVICE_SPANS_OPEN_SQL, &[&device, &hi])?);
        Ok(out)
    }

    fn device_events(
        &mut self,
        device: &str,
        lo: i64,
        hi: i64,
    ) -> Result<(Vec<(String, i64)>, Vec<(String, i64)>), StoreError> {
        let get = |sql: &str| -> Result<Vec<(String, i64)>, StoreError> {
            let mut st = self.conn.prepare_cached(&lite(sql))?;
            let rows = st.query_map(params![device, lo, hi], |r| Ok((r.get(0)?, r.get(1)?)))?;
            Ok(rows.collect::<Result<_, _>>()?)
        };
        Ok((get(dsql::DEVICE_ROAMS)?, get(dsql::DEVICE_FAILED_JOINS)?))
    }

    fn replace_hours(
        &mut self,
        device: &str,
        hours: &BTreeSet<i64>,
        rows: &[HourRow],
    ) -> Result<(), StoreError> {
        let mut del = self.conn.prepare_cached(&lite(dsql::DELETE_HOUR))?;
        for h in hours {
            del.execute(params![device, h])?;
        }
        let mut ins = self.conn.prepare_cached(&lite(dsql::INSERT_HOUR))?;
        for r in rows {
            ins.execute(params![
                r.device_id,
                r.hour_ms,
                r.ssid,
                r.sessions,
                r.clients,
                r.connected_ms,
                r.rx_bytes,
                r.tx_bytes,
                r.roams,
                r.failed_joins
            ])?;
        }
        let days: BTreeSet<i64> = hours
            .iter()
            .map(|h| crate::core::derived::day_of(*h))
            .collect();
        for d in days {
            self.conn
                .prepare_cached(&lite(dsql::DELETE_DAY))?
                .execute(params![device, d])?;
            self.conn
                .prepare_cached(&lite(dsql::INSERT_DAY))?
                .execute(params![device, d])?;
        }
        Ok(())
    }

    fn marks_floor(&mut self) -> Result<Option<i64>, StoreError> {
        Ok(self.conn.query_row(dsql::MARKS_FLOOR, [], |r| r.get(0))?)
    }

    fn pruned_before(&mut self) -> Result<Option<i64>, StoreError> {
        Ok(self
            .conn
            .prepare_cached(&lite(dsql::PRUNED_BEFORE))?
            .query_row([], |r| r.get(0))
            .optional()?)
    }

    fn prune_aggregates_batch(&mut self, cutoff_ms: i64, limit: u32) -> Result<u64, StoreError> {
        let mut n = 0;
        for sql in [
            dsql::PRUNE_HOURLY,
            dsql::PRUNE_DAILY,
            dsql::PRUNE_CLIENT_DAYS,
        ] {
            n += self.delete_batch(sql, cutoff_ms, limit)?;
        }
        Ok(n)
    }
}
