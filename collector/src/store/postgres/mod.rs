//! The PostgreSQL adapter of the store port, for several collectors on one database
//! (SPEC §5.6). One connection (the synchronous `postgres` client: the writer is a thread of
//! its own), `READ COMMITTED` transactions in which every device of a group is locked
//! (`SELECT … FOR UPDATE`, in id order, missing rows created first), so collectors serialise
//! per device and never deadlock on each other's devices. Writes are buffered and sent at
//! commit as one statement per kind (`unnest` arrays): deletions, updates and insertions of
//! open and closed sessions, syncs, device rows, counters. Open sessions live in
//! `sessions_open`, closed ones in monthly partitions of `sessions_closed`; a session that
//! opens or closes moves between them ([`schema`]).

pub mod schema;

use std::collections::{BTreeMap, BTreeSet, HashMap};

use postgres::types::ToSql;
use postgres::{Client, Row, Statement};

use super::derived_sql as dsql;
use super::{
    BucketMark, ClientMark, Closable, FailedJoin, HourRow, Marks, Names, PruneReport, Roam,
    RoamEnd, SchemaError, Span, Store, StoreError,
};
use crate::core::device::{
    decode_ids, decode_radios, encode_ids, encode_radios, DeviceState, Health, StatusFacts, SyncRec,
};
use crate::core::merge::{DeviceTx, Loaded, Needs};
use crate::core::{Counts, Reason, Session};

/// A PostgreSQL error in one line: the server's severity, code, message and detail, or the
/// client's error and its causes.
pub fn describe(e: &postgres::Error) -> String {
    if let Some(db) = e.as_db_error() {
        let mut s = format!("{} {}: {}", db.severity(), db.code().code(), db.message());
        if let Some(d) = db.detail() {
            s.push_str(&format!(" ({d})"));
        }
        return s;
    }
    let mut s = e.to_string();
    let mut src = std::error::Error::source(e);
    while let Some(c) = src {
        s.push_str(&format!(": {c}"));
        src = c.source();
    }
    s
}

/// A constraint violation (SQLSTATE class 23).
pub fn is_constraint(e: &postgres::Error) -> bool {
    e.code().is_some_and(|c| c.code().starts_with("23"))
}

/// Worth running the transaction again: a serialization failure or deadlock (another
/// collector won), the server shutting down or starting, or the connection lost.
pub fn is_retryable(e: &postgres::Error) -> bool {
    if let Some(c) = e.code() {
        let c = c.code();
        return matches!(c, "40001" | "40P01" | "57P01" | "57P02" | "57P03") || c.starts_with("08");
    }
    if e.is_closed() {
        return true;
    }
    let mut src = std::error::Error::source(e);
    while let Some(c) = src {
        if c.is::<std::io::Error>() {
            return true;
        }
        src = c.source();
    }
    false
}

/// A column's type in the bulk statements.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Text,
    Int,
    Bool,
}

impl Kind {
    fn array(self) -> &'static str {
        match self {
            Kind::Text => "text[]",
            Kind::Int => "bigint[]",
            Kind::Bool => "boolean[]",
        }
    }
}

/// The session columns: name and kind, in [`schema::SESSION_COLUMNS`] order.
fn columns() -> &'static [(&'static str, Kind)] {
    static COLS: std::sync::OnceLock<Vec<(&'static str, Kind)>> = std::sync::OnceLock::new();
    COLS.get_or_init(|| {
        schema::SESSION_COLUMNS
            .lines()
            .chain(schema::SESSION_COLUMNS_V2.lines())
            .filter_map(|l| {
                let mut w = l.split_whitespace();
                let name = w.next()?;
                let kind = match w.next()?.trim_end_matches(',') {
                    "text" => Kind::Text,
                    "bigint" => Kind::Int,
                    "boolean" => Kind::Bool,
                    t => unreachable!("column type {t}"),
                };
                Some((name, kind))
            })
            .collect()
    })
}

/// One value of a session column.
enum V<'a> {
    T(Option<&'a str>),
    I(Option<i64>),
    B(bool),
}

/// Column `i` of `s` (in [`columns`] order).
fn val(s: &Session, i: usize) -> V<'_> {
    match i {
        0 => V::T(Some(&s.device_id)),
        1 => V::I(Some(s.id)),
        2 => V::T(Some(&s.boot_id)),
        3 => V::T(s.mac.as_deref()),
        4 => V::T(s.ssid.as_deref()),
        5 => V::T(s.ifname.as_deref()),
        6 => V::T(s.bssid.as_deref()),
        7 => V::I(s.freq_mhz),
        8 => V::I(Some(s.start_ms)),
        9 => V::B(s.has_start),
        10 => V::I(Some(s.first.0)),
        11 => V::I(Some(s.first.1)),
        12 => V::I(s.stop_ms),
        13 => V::T(s.stop_reason.map(Reason::as_str)),
        14 => V::B(s.stop_inferred),
        15 => V::I(s.agent_stop.map(|a| a.0)),
        16 => V::T(s.agent_stop.map(|a| a.1.as_str())),
        17 => V::I(Some(s.last_seen_ms)),
        18 => V::I(s.open.map(|k| k.0)),
        19 => V::I(s.open.map(|k| k.1)),
        20 => V::I(s.signal.map(|x| x.0 .0)),
        21 => V::I(s.signal.map(|x| x.0 .1)),
        22 => V::I(s.signal.map(|x| x.1)),
        23 => V::I(s.last_activity_ms),
        24 => V::I(Some(s.rx_bytes)),
        25 => V::I(Some(s.tx_bytes)),
        26 => V::I(Some(s.rx_packets)),
        27 => V::I(Some(s.tx_packets)),
        28 => V::I(s.missing.map(|k| k.0)),
        29 => V::I(s.missing.map(|k| k.1)),
        30 => V::I(s.next_start_ms),
        31 => V::I(s.expired_ms),
        32 => V::B(s.times_corrected),
        33 => V::I(s.forced_ms),
        34 => V::T(s.hostname.as_ref().map(|h| h.1.as_str())),
        35 => V::I(s.hostname.as_ref().map(|h| h.0 .0)),
        36 => V::I(s.hostname.as_ref().map(|h| h.0 .1)),
        _ => unreachable!("{} session columns", columns().len()),
    }
}

fn key_of(a: Option<i64>, b: Option<i64>) -> Option<(i64, i64)> {
    Some((a?, b?))
}

/// A device row as `load_devices` selects it.
fn device_from_row(id: &str, r: &Row) -> Result<DeviceState, StoreError> {
    let int = |i: usize| -> Result<i64, postgres::Error> {
        Ok(r.try_get::<_, Option<i64>>(i)?.unwrap_or(0))
    };
    let boots: Option<Vec<u8>> = r.try_get(1)?;
    Ok(DeviceState {
        id: id.to_owned(),
        rev: r.try_get(0)?,
        boots: DeviceState::decode_boots(boots.as_deref().unwrap_or_default())
            .map_err(|e| StoreError::Corrupt(format!("device {id}: boots: {e}")))?,
        last_seen_ms: r.try_get(2)?,
        status: StatusFacts {
            boot: r.try_get(3)?,
            uptime_ms: r.try_get(4)?,
            name: r.try_get(5)?,
            organization: r.try_get(6)?,
            group: r.try_get(7)?,
            online: r.try_get(8)?,
            agent_version: r.try_get(9)?,
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
            radios: decode_radios(&r.try_get::<_, Option<String>>(23)?.unwrap_or_default()),
        },
        names: Names {
            name: r.try_get(16)?,
            organization: r.try_get(17)?,
            group: r.try_get(18)?,
        },
        syncs: Default::default(),
    })
}

fn session_from_row(r: &Row) -> Result<Session, postgres::Error> {
    let agent_stop_ms: Option<i64> = r.try_get(15)?;
    let agent_stop_reason: Option<&str> = r.try_get(16)?;
    let signal_avg: Option<i64> = r.try_get(22)?;
    let reason: Option<&str> = r.try_get(13)?;
    Ok(Session {
        device_id: r.try_get(0)?,
        id: r.try_get(1)?,
        boot_id: r.try_get(2)?,
        mac: r.try_get(3)?,
        ssid: r.try_get(4)?,
        ifname: r.try_get(5)?,
        bssid: r.try_get(6)?,
        freq_mhz: r.try_get(7)?,
        start_ms: r.try_get(8)?,
        has_start: r.try_get(9)?,
        first: (r.try_get(10)?, r.try_get(11)?),
        stop_ms: r.try_get(12)?,
        stop_reason: reason.map(Reason::parse),
        stop_inferred: r.try_get(14)?,
        agent_stop: agent_stop_ms.zip(agent_stop_reason.map(Reason::parse)),
        last_seen_ms: r.try_get(17)?,
        open: key_of(r.try_get(18)?, r.try_get(19)?),
        signal: key_of(r.try_get(20)?, r.try_get(21)?).zip(signal_avg),
        last_activity_ms: r.try_get(23)?,
        rx_bytes: r.try_get(24)?,
        tx_bytes: r.try_get(25)?,
        rx_packets: r.try_get(26)?,
        tx_packets: r.try_get(27)?,
        missing: key_of(r.try_get(28)?, r.try_get(29)?),
        next_start_ms: r.try_get(30)?,
        expired_ms: r.try_get(31)?,
        times_corrected: r.try_get(32)?,
        forced_ms: r.try_get(33)?,
        hostname: key_of(r.try_get(35)?, r.try_get(36)?).zip(r.try_get::<_, Option<String>>(34)?),
    })
}

/// A column of values for a bulk statement (bound as one array).
#[derive(Debug)]
enum ColVec {
    Text(Vec<Option<String>>),
    Int(Vec<Option<i64>>),
    Bool(Vec<bool>),
}

impl ColVec {
    fn new(k: Kind) -> ColVec {
        match k {
            Kind::Text => ColVec::Text(Vec::new()),
            Kind::Int => ColVec::Int(Vec::new()),
            Kind::Bool => ColVec::Bool(Vec::new()),
        }
    }

    fn push(&mut self, v: V<'_>) {
        match (self, v) {
            (ColVec::Text(c), V::T(t)) => c.push(t.map(str::to_owned)),
            (ColVec::Int(c), V::I(i)) => c.push(i),
            (ColVec::Bool(c), V::B(b)) => c.push(b),
            _ => unreachable!("value of another kind than its column"),
        }
    }

    fn as_sql(&self) -> &(dyn ToSql + Sync) {
        match self {
            ColVec::Text(c) => c,
            ColVec::Int(c) => c,
            ColVec::Bool(c) => c,
        }
    }
}

/// Session rows to send in one statement, column by column.
#[derive(Debug)]
struct Rows {
    cols: Vec<ColVec>,
    /// The stored stop of each row (closed-session updates and deletions find the row's
    /// partition by it).
    old_stop: Vec<i64>,
    len: usize,
}

impl Default for Rows {
    fn default() -> Rows {
        Rows {
            cols: columns().iter().map(|c| ColVec::new(c.1)).collect(),
            old_stop: Vec::new(),
            len: 0,
        }
    }
}

impl Rows {
    fn push(&mut self, s: &Session, old_stop: Option<i64>) {
        for (i, c) in self.cols.iter_mut().enumerate() {
            c.push(val(s, i));
        }
        self.old_stop.extend(old_stop);
        self.len += 1;
    }

    fn params(&self, with_old_stop: bool) -> Vec<&(dyn ToSql + Sync)> {
        let mut p: Vec<&(dyn ToSql + Sync)> = self.cols.iter().map(ColVec::as_sql).collect();
        if with_old_stop {
            p.push(&self.old_stop);
        }
        p
    }
}

/// Keys of rows to delete: (device, id) and, for closed rows, the stored stop.
#[derive(Debug, Default)]
struct Keys {
    devices: Vec<String>,
    ids: Vec<i64>,
    stops: Vec<i64>,
}

/// Device rows to update in one statement.
#[derive(Debug, Default)]
struct DeviceRows {
    id: Vec<String>,
    rev: Vec<i64>,
    boots: Vec<Vec<u8>>,
    last_seen_ms: Vec<Option<i64>>,
    boot_id: Vec<Option<String>>,
    agent_epoch: Vec<Option<i64>>,
    last_seq: Vec<Option<i64>>,
    seq_gaps: Vec<i64>,
    ann_name: Vec<Option<String>>,
    ann_organization: Vec<Option<String>>,
    ann_group: Vec<Option<String>>,
    online: Vec<bool>,
    agent_version: Vec<Option<String>>,
    status_boot: Vec<Option<String>>,
    status_uptime_ms: Vec<Option<i64>>,
    health: [Vec<i64>; 9],
    radios: Vec<String>,
    name: Vec<Option<String>>,
    organization: Vec<Option<String>>,
    grp: Vec<Option<String>>,
}

/// New syncs to insert.
#[derive(Debug, Default)]
struct SyncRows {
    device: Vec<String>,
    boot: Vec<String>,
    up: Vec<i64>,
    seq: Vec<i64>,
    wall_ms: Vec<i64>,
    ids: Vec<Vec<u8>>,
}

/// What a transaction wrote so far, sent at commit (or before the next read).
#[derive(Debug, Default)]
struct Pending {
    open_delete: Keys,
    closed_delete: Keys,
    open_update: Rows,
    closed_update: Rows,
    open_insert: Rows,
    closed_insert: Rows,
    syncs: SyncRows,
    devices: DeviceRows,
    counts: BTreeMap<String, i64>,
    failed_joins: Vec<FailedJoin>,
    marks: Marks,
    marks_first_ms: i64,
    dirty: bool,
}

/// The writer's PostgreSQL database.
pub struct PgStore {
    url: String,
    client: Client,
    /// This collector's name among those sharing the database: its counters are kept apart
    /// (no row every collector updates in every transaction) and it holds fleet-wide jobs.
    instance: String,
    stmts: HashMap<&'static str, Statement>,
    pending: Pending,
    /// The last month with a partition known to exist (ahead of now).
    partitions_until: schema::Month,
}

impl PgStore {
    /// Connects to `url`, migrates the schema if needed and makes the partitions of the coming
    /// months. `instance` names this collector among those sharing the database.
    ///
    /// # Errors
    /// The database cannot be reached or migrated.
    pub fn open(url: &str, instance: &str) -> Result<PgStore, SchemaError> {
        let mut client = schema::connect(url, false)?;
        schema::migrate(&mut client)?;
        let mut s = PgStore {
            url: url.to_owned(),
            client,
            instance: instance.to_owned(),
            stmts: HashMap::new(),
            pending: Pending::default(),
            partitions_until: i64::MIN,
        };
        s.maintain(crate::timefmt::now_ms()).map_err(|e| match e {
            StoreError::Postgres(e) => SchemaError::Postgres(e),
            e => SchemaError::Config(e.to_string()),
        })?;
        Ok(s)
    }

    /// The store on a read-only connection, for the dry runs of `prune` and `expire` (their
    /// plans; nothing is migrated, created or written).
    ///
    /// # Errors
    /// The database cannot be reached, or has another schema version.
    pub fn open_read_only(url: &str) -> Result<PgStore, SchemaError> {
        let mut client = schema::connect(url, true)?;
        schema::check_version(&mut client)?;
        Ok(PgStore {
            url: url.to_owned(),
            client,
            instance: String::new(),
            stmts: HashMap::new(),
            pending: Pending::default(),
            partitions_until: i64::MAX,
        })
    }

    /// The connection (tests and benchmarks inspect the rows).
    pub fn client(&mut self) -> &mut Client {
        &mut self.client
    }

    /// Makes the monthly partitions from the month of `from_ms` to that of `to_ms` (bulk loads
    /// of history; `run` keeps [`schema::MONTHS_AHEAD`] months ready by itself).
    ///
    /// # Errors
    /// Database errors.
    pub fn ensure_partitions(&mut self, from_ms: i64, to_ms: i64) -> Result<usize, StoreError> {
        Ok(schema::ensure_partitions(&mut self.client, from_ms, to_ms)?)
    }

    /// Keeps the partitions of this month and the next [`schema::MONTHS_AHEAD`] ready, in a
    /// transaction of its own (checked before each write transaction; a query of the catalog
    /// about once a month).
    fn maintain(&mut self, now_ms: i64) -> Result<(), StoreError> {
        let want = schema::month_of(now_ms) + schema::MONTHS_AHEAD;
        if self.partitions_until >= want {
            return Ok(());
        }
        let made =
            schema::ensure_partitions(&mut self.client, now_ms, schema::month_start_ms(want))?;
        if made > 0 {
            log::info!(
                "postgres: {made} monthly partitions of closed sessions made, up to {}",
                schema::partition_name(want)
            );
        }
        self.partitions_until = want;
        Ok(())
    }

    fn st(&mut self, sql: &'static str) -> Result<Statement, StoreError> {
        if let Some(s) = self.stmts.get(sql) {
            return Ok(s.clone());
        }
        let s = self.client.prepare(sql)?;
        self.stmts.insert(sql, s.clone());
        Ok(s)
    }

    /// A statement built once from `make` and kept under `key`.
    fn st_built(
        &mut self,
        key: &'static str,
        make: impl FnOnce() -> String,
    ) -> Result<Statement, StoreError> {
        if let Some(s) = self.stmts.get(key) {
            return Ok(s.clone());
        }
        let s = self.client.prepare(&make())?;
        self.stmts.insert(key, s.clone());
        Ok(s)
    }

    fn sessions(
        &mut self,
        sql: &'static str,
        args: &[&(dyn ToSql + Sync)],
    ) -> Result<Vec<Session>, StoreError> {
        let st = self.st(sql)?;
        let rows = self.client.query(&st, args)?;
        Ok(rows
            .iter()
            .map(session_from_row)
            .collect::<Result<_, _>>()?)
    }

    /// Sends the buffered writes, one statement per kind: deletions (rows leaving a table),
    /// updates, insertions (so the one-open-session index only ever sees each device's final
    /// open rows), syncs, device rows, counters.
    fn flush(&mut self) -> Result<(), StoreError> {
        if !self.pending.dirty {
            return Ok(());
        }
        let p = std::mem::take(&mut self.pending);
        if !p.open_delete.ids.is_empty() {
            let st = self.st("DELETE FROM sessions_open WHERE (device_id, id) IN
                    (SELECT * FROM unnest($1::text[], $2::bigint[]))")?;
            self.client
                .execute(&st, &[&p.open_delete.devices, &p.open_delete.ids])?;
        }
        if !p.closed_delete.ids.is_empty() {
            let st = self.st(
                "DELETE FROM sessions_closed WHERE (device_id, id, stop_ms) IN
                    (SELECT * FROM unnest($1::text[], $2::bigint[], $3::bigint[]))",
            )?;
            self.client.execute(
                &st,
                &[
                    &p.closed_delete.devices,
                    &p.closed_delete.ids,
                    &p.closed_delete.stops,
                ],
            )?;
        }
        if p.open_update.len > 0 {
            let st = self.st_built("update open", || update_sql("sessions_open", false))?;
            self.client.execute(&st, &p.open_update.params(false))?;
        }
        if p.closed_update.len > 0 {
            let st = self.st_built("update closed", || update_sql("sessions_closed", true))?;
            self.client.execute(&st, &p.closed_update.params(true))?;
        }
        if p.open_insert.len > 0 {
            let st = self.st_built("insert open", || insert_sql("sessions_open"))?;
            self.client.execute(&st, &p.open_insert.params(false))?;
        }
        if p.closed_insert.len > 0 {
            let st = self.st_built("insert closed", || insert_sql("sessions_closed"))?;
            self.client.execute(&st, &p.closed_insert.params(false))?;
        }
        let y = &p.syncs;
        if !y.device.is_empty() {
            let st = self.st(
                "INSERT INTO syncs (device_id, boot_id, up, seq, wall_ms, ids)
                 SELECT * FROM unnest($1::text[], $2::text[], $3::bigint[], $4::bigint[],
                                      $5::bigint[], $6::bytea[])
                 ON CONFLICT DO NOTHING",
            )?;
            self.client.execute(
                &st,
                &[&y.device, &y.boot, &y.up, &y.seq, &y.wall_ms, &y.ids],
            )?;
        }
        if !p.failed_joins.is_empty() {
            let f = &p.failed_joins;
            let col = |g: fn(&FailedJoin) -> &str| -> Vec<&str> { f.iter().map(g).collect() };
            let int = |g: fn(&FailedJoin) -> i64| -> Vec<i64> { f.iter().map(g).collect() };
            let st = self.st(
                "INSERT INTO failed_joins (device_id, boot_id, epoch, seq, mac, ifname, ssid,
                    bssid, assoc_ms, gave_up_ms, times_corrected)
                 SELECT * FROM unnest($1::text[], $2::text[], $3::bigint[], $4::bigint[],
                    $5::text[], $6::text[], $7::text[], $8::text[], $9::bigint[], $10::bigint[],
                    $11::boolean[])
                 ON CONFLICT DO NOTHING",
            )?;
            let corrected: Vec<bool> = f.iter().map(|x| x.times_corrected).collect();
            self.client.execute(
                &st,
                &[
                    &col(|x| &x.device_id),
                    &col(|x| &x.boot_id),
                    &int(|x| x.epoch),
                    &int(|x| x.seq),
                    &col(|x| &x.mac),
                    &col(|x| &x.ifname),
                    &col(|x| &x.ssid),
                    &col(|x| &x.bssid),
                    &int(|x| x.assoc_ms),
                    &int(|x| x.gave_up_ms),
                    &corrected,
                ],
            )?;
        }
        // Marks in key order, client marks before bucket marks: every transaction takes their
        // row locks in one order, so two collectors never deadlock on them.
        if !p.marks.clients.is_empty() {
            let m = &p.marks.clients;
            let macs: Vec<&str> = m.keys().map(String::as_str).collect();
            let los: Vec<i64> = m.values().map(|v| v.0).collect();
            let his: Vec<i64> = m.values().map(|v| v.1).collect();
            let st = self.st(
                "INSERT INTO dirty_clients (mac, lo_ms, hi_ms, gen, first_ms)
                 SELECT m, l, h, 0, $4 FROM unnest($1::text[], $2::bigint[], $3::bigint[])
                    AS u(m, l, h) ORDER BY m
                 ON CONFLICT (mac) DO UPDATE
                    SET lo_ms = least(dirty_clients.lo_ms, excluded.lo_ms),
                        hi_ms = greatest(dirty_clients.hi_ms, excluded.hi_ms),
                        gen = dirty_clients.gen + 1",
            )?;
            self.client
                .execute(&st, &[&macs, &los, &his, &p.marks_first_ms])?;
        }
        if !p.marks.buckets.is_empty() {
            let devs: Vec<&str> = p.marks.buckets.iter().map(|b| b.0.as_str()).collect();
            let hours: Vec<i64> = p.marks.buckets.iter().map(|b| b.1).collect();
            let st = self.st(
                "INSERT INTO dirty_buckets (device_id, hour_ms, gen, first_ms)
                 SELECT d, h, 0, $3 FROM unnest($1::text[], $2::bigint[]) AS u(d, h)
                 ORDER BY d, h
                 ON CONFLICT (device_id, hour_ms) DO UPDATE SET gen = dirty_buckets.gen + 1",
            )?;
            self.client
                .execute(&st, &[&devs, &hours, &p.marks_first_ms])?;
        }
        let d = &p.devices;
        if !d.id.is_empty() {
            let st = self.st(
                "UPDATE devices t SET rev = u.rev, boots = u.boots, last_seen_ms = u.last_seen_ms,
                    boot_id = u.boot_id, agent_epoch = u.agent_epoch, last_seq = u.last_seq,
                    seq_gaps = u.seq_gaps, ann_name = u.ann_name,
                    ann_organization = u.ann_organization, ann_group = u.ann_group,
                    online = u.online, agent_version = u.agent_version,
                    status_boot = u.status_boot, status_uptime_ms = u.status_uptime_ms,
                    published = u.published, dropped = u.dropped, reconnects = u.reconnects,
                    outbox_depth = u.outbox_depth, failed_joins = u.failed_joins,
                    tracker_overflow = u.tracker_overflow, dropped_updates = u.dropped_updates,
                    dropped_starts_stops = u.dropped_starts_stops,
                    spool_restored = u.spool_restored, radios = u.radios, name = u.name,
                    organization = u.organization, grp = u.grp
                 FROM unnest($1::text[], $2::bigint[], $3::bytea[], $4::bigint[], $5::text[],
                             $6::bigint[], $7::bigint[], $8::bigint[], $9::text[], $10::text[],
                             $11::text[], $12::boolean[], $13::text[], $14::text[],
                             $15::bigint[], $16::bigint[], $17::bigint[], $18::bigint[],
                             $19::bigint[], $20::bigint[], $21::bigint[], $22::text[],
                             $23::text[], $24::text[], $25::bigint[], $26::bigint[],
                             $27::bigint[], $28::text[])
                   AS u(id, rev, boots, last_seen_ms, boot_id, agent_epoch, last_seq,
                        seq_gaps, ann_name, ann_organization, ann_group, online,
                        agent_version, status_boot, status_uptime_ms, published, dropped,
                        reconnects, outbox_depth, failed_joins, tracker_overflow, name,
                        organization, grp, dropped_updates, dropped_starts_stops,
                        spool_restored, radios)
                 WHERE t.id = u.id",
            )?;
            let h = &d.health;
            self.client.execute(
                &st,
                &[
                    &d.id,
                    &d.rev,
                    &d.boots,
                    &d.last_seen_ms,
                    &d.boot_id,
                    &d.agent_epoch,
                    &d.last_seq,
                    &d.seq_gaps,
                    &d.ann_name,
                    &d.ann_organization,
                    &d.ann_group,
                    &d.online,
                    &d.agent_version,
                    &d.status_boot,
                    &d.status_uptime_ms,
                    &h[0],
                    &h[1],
                    &h[2],
                    &h[3],
                    &h[4],
                    &h[5],
                    &d.name,
                    &d.organization,
                    &d.grp,
                    &h[6],
                    &h[7],
                    &h[8],
                    &d.radios,
                ],
            )?;
        }
        if !p.counts.is_empty() {
            let (names, values): (Vec<&str>, Vec<i64>) =
                p.counts.iter().map(|(k, v)| (k.as_str(), *v)).unzip();
            let st = self.st("INSERT INTO counter_shards (name, instance, value)
                 SELECT n, $1, v FROM unnest($2::text[], $3::bigint[]) AS u(n, v) ORDER BY n
                 ON CONFLICT (name, instance)
                 DO UPDATE SET value = counter_shards.value + excluded.value")?;
            let inst = self.instance.clone();
            self.client.execute(&st, &[&inst, &names, &values])?;
        }
        Ok(())
    }

    fn closable(&mut self, sql: &'static str, arg: i64) -> Result<Vec<Closable>, StoreError> {
        self.flush()?;
        let st = self.st(sql)?;
        Ok(self
            .client
            .query(&st, &[&arg])?
            .iter()
            .map(|r| Closable {
                device_id: r.get(0),
                sessions: r.get::<_, i64>(1) as u64,
                at_ms: r.get(2),
            })
            .collect())
    }
}

fn insert_sql(table: &str) -> String {
    let cols = columns();
    let names: Vec<&str> = cols.iter().map(|c| c.0).collect();
    let arrays: Vec<String> = cols
        .iter()
        .enumerate()
        .map(|(i, c)| format!("${}::{}", i + 1, c.1.array()))
        .collect();
    format!(
        "INSERT INTO {table} ({}) SELECT * FROM unnest({})",
        names.join(", "),
        arrays.join(", ")
    )
}

/// `UPDATE table` of every column but the key from arrays; closed rows are found by their
/// stored stop too (`$35`), which names their partition.
fn update_sql(table: &str, by_old_stop: bool) -> String {
    let cols = columns();
    let mut arrays: Vec<String> = cols
        .iter()
        .enumerate()
        .map(|(i, c)| format!("${}::{}", i + 1, c.1.array()))
        .collect();
    let mut names: Vec<&str> = cols.iter().map(|c| c.0).collect();
    let mut cond = String::from("t.device_id = u.device_id AND t.id = u.id");
    if by_old_stop {
        arrays.push(format!("${}::bigint[]", cols.len() + 1));
        names.push("old_stop");
        cond.push_str(" AND t.stop_ms = u.old_stop");
    }
    let sets: Vec<String> = cols[2..]
        .iter()
        .map(|c| format!("{0} = u.{0}", c.0))
        .collect();
    format!(
        "UPDATE {table} t SET {} FROM unnest({}) AS u({}) WHERE {cond}",
        sets.join(", "),
        arrays.join(", "),
        names.join(", ")
    )
}

macro_rules! sessions_where {
    ($from:literal, $clause:literal) => {
        concat!(
            "SELECT device_id, id, boot_id, mac, ssid, ifname, bssid, freq_mhz, start_ms, \
             has_start, first_up, first_seq, stop_ms, stop_reason, stop_inferred, \
             agent_stop_ms, agent_stop_reason, last_seen_ms, open_up, open_seq, signal_up, \
             signal_seq, signal_avg, last_activity_ms, rx_bytes, tx_bytes, rx_packets, \
             tx_packets, missing_up, missing_seq, next_start_ms, expired_ms, times_corrected, \
             forced_ms, hostname, hostname_up, hostname_seq FROM ",
            $from,
            " WHERE ",
            $clause
        )
    };
}

macro_rules! spans_where {
    ($from:literal, $clause:literal) => {
        concat!(
            "SELECT s.device_id, s.id, s.mac, coalesce(s.ssid, ''), coalesce(s.ifname, ''), \
             s.freq_mhz, s.start_ms, s.stop_ms, s.last_seen_ms, s.rx_bytes, s.tx_bytes FROM ",
            $from,
            " s WHERE ",
            $clause
        )
    };
}

fn span_from_row(r: &Row) -> Result<Span, postgres::Error> {
    Ok(Span {
        device_id: r.try_get(0)?,
        id: r.try_get(1)?,
        mac: r.try_get(2)?,
        ssid: r.try_get(3)?,
        ifname: r.try_get(4)?,
        freq_mhz: r.try_get(5)?,
        start_ms: r.try_get(6)?,
        stop_ms: r.try_get(7)?,
        last_seen_ms: r.try_get(8)?,
        rx_bytes: r.try_get(9)?,
        tx_bytes: r.try_get(10)?,
    })
}

fn roam_from_row(r: &Row) -> Result<Roam, postgres::Error> {
    Ok(Roam {
        mac: r.try_get(0)?,
        at_ms: r.try_get(1)?,
        gap_ms: r.try_get(2)?,
        from: RoamEnd {
            device_id: r.try_get(3)?,
            id: r.try_get(4)?,
            ifname: r.try_get(5)?,
            ssid: r.try_get(6)?,
            freq_mhz: r.try_get(7)?,
        },
        to: RoamEnd {
            device_id: r.try_get(8)?,
            id: r.try_get(9)?,
            ifname: r.try_get(10)?,
            ssid: r.try_get(11)?,
            freq_mhz: r.try_get(12)?,
        },
    })
}

fn bucket_from_row(r: &Row) -> Result<HourRow, postgres::Error> {
    Ok(HourRow {
        device_id: r.try_get(0)?,
        hour_ms: r.try_get(1)?,
        ssid: r.try_get(2)?,
        sessions: r.try_get(3)?,
        clients: r.try_get(4)?,
        connected_ms: r.try_get(5)?,
        rx_bytes: r.try_get(6)?,
        tx_bytes: r.try_get(7)?,
        roams: r.try_get(8)?,
        failed_joins: r.try_get(9)?,
    })
}

/// The day a bucket hour is in.
fn day(h: i64) -> i64 {
    crate::core::derived::day_of(h)
}

impl PgStore {
    fn spans(
        &mut self,
        sql: &'static str,
        args: &[&(dyn ToSql + Sync)],
    ) -> Result<Vec<Span>, StoreError> {
        let st = self.st(sql)?;
        Ok(self
            .client
            .query(&st, args)?
            .iter()
            .map(span_from_row)
            .collect::<Result<_, _>>()?)
    }

    fn count(&mut self, sql: &'static str, arg: i64) -> Result<u64, StoreError> {
        let st = self.st(sql)?;
        Ok(self.client.query_one(&st, &[&arg])?.get::<_, i64>(0) as u64)
    }

    fn delete_batch(
        &mut self,
        sql: &'static str,
        cutoff: i64,
        limit: u32,
    ) -> Result<u64, StoreError> {
        let st = self.st(sql)?;
        Ok(self.client.execute(&st, &[&cutoff, &i64::from(limit)])?)
    }

    /// Which of `keys` this transaction holds an advisory lock on now (taken if free; held
    /// until the transaction ends).
    fn try_locks(&mut self, keys: &[String]) -> Result<Vec<bool>, StoreError> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let st = self.st("SELECT pg_try_advisory_xact_lock(hashtextextended(k, 2020))
             FROM unnest($1::text[]) WITH ORDINALITY AS u(k, i) ORDER BY i")?;
        Ok(self
            .client
            .query(&st, &[&keys])?
            .iter()
            .map(|r| r.get(0))
            .collect())
    }
}

/// Every session column of `sessions` for each pair of `unnest($1::text[], $2::KIND[])` that
/// `cond` (over `w.a`, `w.b`) selects: one statement for the rows of many devices.
fn lateral(cond: &str, kind: &str) -> String {
    let cols = sessions_where!("sessions", "")
        .trim_start_matches("SELECT ")
        .split(" FROM ")
        .next()
        .expect("a column list")
        .to_owned();
    format!(
        "SELECT s.* FROM unnest($1::text[], $2::{kind}[]) AS w(a, b)
         JOIN LATERAL (SELECT {cols} FROM sessions WHERE {cond}) s ON true"
    )
}

fn sessions_of(rows: &[Row]) -> Result<Vec<Session>, StoreError> {
    Ok(rows
        .iter()
        .map(session_from_row)
        .collect::<Result<_, _>>()?)
}

const PRUNE_PLAN_SQL: &str = "SELECT count(*), min(stop_ms), max(stop_ms) FROM sessions_closed
     WHERE stop_ms < $1";
const PRUNE_BATCH_SQL: &str = "DELETE FROM sessions_closed WHERE (device_id, id, stop_ms) IN (
         SELECT device_id, id, stop_ms FROM sessions_closed WHERE stop_ms < $1 LIMIT $2)
     RETURNING stop_ms";
const EXPIRE_PLAN_SQL: &str =
    "SELECT d.id, count(*), greatest(coalesce(d.last_seen_ms, 0), max(s.last_seen_ms))
     FROM devices d JOIN sessions_open s ON s.device_id = d.id
     WHERE coalesce(d.last_seen_ms, 0) <= $1 GROUP BY d.id ORDER BY d.id";
const FORCE_PLAN_SQL: &str =
    "SELECT device_id, count(*), greatest($1, max(last_seen_ms)) FROM sessions_open
     GROUP BY device_id ORDER BY device_id";

/// The jobs' statements with a name, for the query-plan tests.
pub const PLANNED_SQL: [(&str, &str); 4] = [
    ("prune dry run", PRUNE_PLAN_SQL),
    ("prune batch", PRUNE_BATCH_SQL),
    ("expire plan", EXPIRE_PLAN_SQL),
    ("force plan", FORCE_PLAN_SQL),
];

/// How long a retention transaction waits to drop a partition that readers or other
/// collectors hold, before it gives up (retried at the next retention step).
const DROP_LOCK_TIMEOUT: &str = "2s";

impl Store for PgStore {
    fn begin(&mut self) -> Result<(), StoreError> {
        if self.client.is_closed() {
            log::warn!("postgres: connection lost; reconnecting");
            self.client = schema::connect(&self.url, false).map_err(|e| match e {
                SchemaError::Postgres(e) => StoreError::Postgres(e),
                e => StoreError::Schema(e.to_string()),
            })?;
            self.stmts.clear();
            log::info!("postgres: reconnected");
        }
        self.pending = Pending::default();
        self.maintain(crate::timefmt::now_ms())?;
        self.client.batch_execute("BEGIN")?;
        Ok(())
    }

    fn commit(&mut self) -> Result<(), StoreError> {
        self.flush()?;
        self.client.batch_execute("COMMIT")?;
        Ok(())
    }

    fn rollback(&mut self) {
        self.pending = Pending::default();
        if self.client.is_closed() {
            return;
        }
        if let Err(e) = self.client.batch_execute("ROLLBACK") {
            log::warn!("postgres: rollback failed: {}", describe(&e));
        }
    }

    fn lock_devices(&mut self, ids: &[String]) -> Result<Vec<Option<i64>>, StoreError> {
        self.flush()?;
        // Missing rows first, in id order (a concurrent insert of the same id waits for the
        // other transaction), then every row locked in id order.
        let ins = self.st(
            "INSERT INTO devices (id) SELECT x FROM unnest($1::text[]) AS u(x) ORDER BY x
             ON CONFLICT (id) DO NOTHING RETURNING id",
        )?;
        let created: Vec<String> = self
            .client
            .query(&ins, &[&ids])?
            .iter()
            .map(|r| r.get(0))
            .collect();
        let lock =
            self.st("SELECT id, rev FROM devices WHERE id = ANY($1) ORDER BY id FOR UPDATE")?;
        let revs: HashMap<String, i64> = self
            .client
            .query(&lock, &[&ids])?
            .iter()
            .map(|r| (r.get(0), r.get(1)))
            .collect();
        Ok(ids
            .iter()
            .map(|id| {
                if created.contains(id) {
                    None
                } else {
                    revs.get(id).copied()
                }
            })
            .collect())
    }

    fn load_device(&mut self, id: &str) -> Result<Option<DeviceState>, StoreError> {
        Ok(self.load_devices(&[id.to_owned()])?.pop().flatten())
    }

    fn load_devices(&mut self, ids: &[String]) -> Result<Vec<Option<DeviceState>>, StoreError> {
        self.flush()?;
        let st = self.st(
            "SELECT rev, boots, last_seen_ms, status_boot, status_uptime_ms, ann_name,
                ann_organization, ann_group, online, agent_version, published, dropped,
                reconnects, outbox_depth, failed_joins, tracker_overflow, name,
                organization, grp, dropped_updates, dropped_starts_stops, spool_restored, id,
                radios
             FROM devices WHERE id = ANY($1)",
        )?;
        let mut found: HashMap<String, DeviceState> = HashMap::new();
        for r in self.client.query(&st, &[&ids])? {
            let id: String = r.try_get(22)?;
            let state = device_from_row(&id, &r)?;
            found.insert(id, state);
        }
        Ok(ids.iter().map(|id| found.remove(id)).collect())
    }

    fn load_many(&mut self, wants: &[(String, Needs)]) -> Result<Vec<Loaded>, StoreError> {
        self.flush()?;
        let at: HashMap<&str, usize> = wants
            .iter()
            .enumerate()
            .map(|(i, w)| (w.0.as_str(), i))
            .collect();
        let mut out: Vec<Loaded> = vec![Loaded::default(); wants.len()];
        // Pairs (device, key) of one kind of need, for one `unnest` each.
        let pairs = |f: fn(&Needs) -> Vec<String>| {
            let mut d: Vec<&str> = Vec::new();
            let mut k: Vec<String> = Vec::new();
            for (dev, n) in wants {
                for x in f(n) {
                    d.push(dev);
                    k.push(x);
                }
            }
            (d, k)
        };
        let mut rows: Vec<Session> = Vec::new();
        let (d, ids): (Vec<&str>, Vec<i64>) = wants
            .iter()
            .flat_map(|(dev, n)| n.sessions.iter().map(move |i| (dev.as_str(), *i)))
            .unzip();
        if !d.is_empty() {
            let st = self.st_built("load many ids", || {
                lateral("device_id = w.a AND id = w.b", "bigint")
            })?;
            rows.extend(sessions_of(&self.client.query(&st, &[&d, &ids])?)?);
        }
        let (d, macs) = pairs(|n| n.live_macs.iter().cloned().collect());
        if !d.is_empty() {
            let st = self.st_built("load many macs", || {
                lateral(
                    "device_id = w.a AND mac = w.b AND agent_stop_ms IS NULL",
                    "text",
                )
            })?;
            rows.extend(sessions_of(&self.client.query(&st, &[&d, &macs])?)?);
        }
        let (d, boots) = pairs(|n| n.live_boots.iter().cloned().collect());
        if !d.is_empty() {
            let st = self.st_built("load many boots", || {
                lateral(
                    "device_id = w.a AND boot_id = w.b AND agent_stop_ms IS NULL",
                    "text",
                )
            })?;
            rows.extend(sessions_of(&self.client.query(&st, &[&d, &boots])?)?);
        }
        let open: Vec<&str> = wants
            .iter()
            .filter(|w| w.1.open)
            .map(|w| w.0.as_str())
            .collect();
        if !open.is_empty() {
            rows.extend(self.sessions(
                sessions_where!("sessions_open", "device_id = ANY($1)"),
                &[&open],
            )?);
        }
        for r in rows {
            if let Some(&i) = at.get(r.device_id.as_str()) {
                out[i].sessions.push(r);
            }
        }
        let (d, boots) = pairs(|n| n.syncs.iter().cloned().collect());
        if !d.is_empty() {
            let mut per: BTreeMap<(String, String), Vec<SyncRec>> = d
                .iter()
                .zip(&boots)
                .map(|(d, b)| (((*d).to_owned(), b.clone()), Vec::new()))
                .collect();
            let st = self.st(
                "SELECT y.device_id, y.boot_id, y.up, y.seq, y.wall_ms, y.ids
                 FROM unnest($1::text[], $2::text[]) AS w(a, b)
                 JOIN LATERAL (SELECT * FROM syncs WHERE device_id = w.a AND boot_id = w.b) y
                   ON true
                 ORDER BY y.device_id, y.boot_id, y.up, y.seq",
            )?;
            for r in self.client.query(&st, &[&d, &boots])? {
                per.entry((r.try_get(0)?, r.try_get(1)?))
                    .or_default()
                    .push(SyncRec {
                        key: (r.try_get(2)?, r.try_get(3)?),
                        wall_ms: r.try_get(4)?,
                        ids: decode_ids(r.try_get::<_, &[u8]>(5)?),
                    });
            }
            for ((dev, boot), list) in per {
                if let Some(&i) = at.get(dev.as_str()) {
                    out[i].syncs.push((boot, list));
                }
            }
        }
        let mut sd: Vec<&str> = Vec::new();
        let mut sm: Vec<&str> = Vec::new();
        let (mut s0, mut s1): (Vec<i64>, Vec<i64>) = (Vec::new(), Vec::new());
        for (dev, n) in wants {
            for (mac, from) in &n.slices {
                sd.push(dev);
                sm.push(mac);
                s0.push(from.0);
                s1.push(from.1);
            }
        }
        if !sd.is_empty() {
            // Every row of a slice started at or after its `from`, so it stopped then or
            // later: the partitions of closed sessions that ended before are skipped.
            let st = self.st("SELECT w.a, w.m, s.start_ms, s.id
                 FROM unnest($1::text[], $2::text[], $3::bigint[], $4::bigint[]) AS w(a, m, f0, f1)
                 JOIN LATERAL (SELECT start_ms, id FROM sessions WHERE device_id = w.a
                     AND mac = w.m AND (start_ms, id) >= (w.f0, w.f1)
                     AND (stop_ms IS NULL OR stop_ms >= w.f0)) s ON true")?;
            let mut per: BTreeMap<(String, String), Vec<(i64, i64)>> = sd
                .iter()
                .zip(&sm)
                .map(|(d, m)| (((*d).to_owned(), (*m).to_owned()), Vec::new()))
                .collect();
            for r in self.client.query(&st, &[&sd, &sm, &s0, &s1])? {
                per.entry((r.try_get(0)?, r.try_get(1)?))
                    .or_default()
                    .push((r.try_get(2)?, r.try_get(3)?));
            }
            for ((dev, mac), mut e) in per {
                e.sort_unstable();
                if let Some(&i) = at.get(dev.as_str()) {
                    out[i].slices.push((mac, e));
                }
            }
        }
        Ok(out)
    }

    fn load(&mut self, device: &str, needs: &Needs) -> Result<Loaded, StoreError> {
        self.flush()?;
        let mut out = Loaded::default();
        if !needs.sessions.is_empty() {
            let ids: Vec<i64> = needs.sessions.iter().copied().collect();
            out.sessions.extend(self.sessions(
                sessions_where!("sessions", "device_id = $1 AND id = ANY($2)"),
                &[&device, &ids],
            )?);
        }
        if !needs.live_macs.is_empty() {
            let macs: Vec<&str> = needs.live_macs.iter().map(String::as_str).collect();
            out.sessions.extend(self.sessions(
                sessions_where!(
                    "sessions",
                    "device_id = $1 AND mac = ANY($2) AND agent_stop_ms IS NULL"
                ),
                &[&device, &macs],
            )?);
        }
        if !needs.live_boots.is_empty() {
            let boots: Vec<&str> = needs.live_boots.iter().map(String::as_str).collect();
            out.sessions.extend(self.sessions(
                sessions_where!(
                    "sessions",
                    "device_id = $1 AND boot_id = ANY($2) AND agent_stop_ms IS NULL"
                ),
                &[&device, &boots],
            )?);
        }
        if needs.open {
            out.sessions.extend(self.sessions(
                sessions_where!("sessions_open", "device_id = $1"),
                &[&device],
            )?);
        }
        if !needs.syncs.is_empty() {
            let boots: Vec<&str> = needs.syncs.iter().map(String::as_str).collect();
            let st = self.st("SELECT boot_id, up, seq, wall_ms, ids FROM syncs
                 WHERE device_id = $1 AND boot_id = ANY($2) ORDER BY boot_id, up, seq")?;
            let mut per: BTreeMap<String, Vec<SyncRec>> = needs
                .syncs
                .iter()
                .map(|b| (b.clone(), Vec::new()))
                .collect();
            for r in self.client.query(&st, &[&device, &boots])? {
                let boot: String = r.try_get(0)?;
                per.entry(boot).or_default().push(SyncRec {
                    key: (r.try_get(1)?, r.try_get(2)?),
                    wall_ms: r.try_get(3)?,
                    ids: decode_ids(r.try_get::<_, &[u8]>(4)?),
                });
            }
            out.syncs.extend(per);
        }
        for (mac, from) in &needs.slices {
            // Every row of the slice started at or after `from`, so it stopped then or later:
            // the partitions of closed sessions that ended before are skipped.
            let st = self.st(
                "SELECT start_ms, id FROM sessions WHERE device_id = $1 AND mac = $2
                 AND (start_ms, id) >= ($3, $4) AND (stop_ms IS NULL OR stop_ms >= $3)
                 ORDER BY start_ms, id",
            )?;
            let rows = self.client.query(&st, &[&device, mac, &from.0, &from.1])?;
            out.slices.push((
                mac.clone(),
                rows.iter().map(|r| (r.get(0), r.get(1))).collect(),
            ));
        }
        Ok(out)
    }

    fn write(&mut self, tx: &DeviceTx, names: &Names) -> Result<(), StoreError> {
        let p = &mut self.pending;
        p.dirty = true;
        for (now, was) in tx.changed_rows() {
            match was {
                None if now.is_open() => p.open_insert.push(now, None),
                None => p.closed_insert.push(now, None),
                Some(w) if w.is_open() && now.is_open() => {
                    if w.mac == now.mac {
                        p.open_update.push(now, None);
                    } else {
                        // Out and in again: its old slot of the one-open-session index is
                        // free before any row takes it.
                        p.open_delete.devices.push(now.device_id.clone());
                        p.open_delete.ids.push(now.id);
                        p.open_insert.push(now, None);
                    }
                }
                Some(w) if w.is_open() => {
                    p.open_delete.devices.push(now.device_id.clone());
                    p.open_delete.ids.push(now.id);
                    p.closed_insert.push(now, None);
                }
                Some(w) => {
                    let old = w.stop_ms.expect("a closed row has a stop");
                    if now.is_open() {
                        p.closed_delete.devices.push(now.device_id.clone());
                        p.closed_delete.ids.push(now.id);
                        p.closed_delete.stops.push(old);
                        p.open_insert.push(now, None);
                    } else {
                        p.closed_update.push(now, Some(old));
                    }
                }
            }
        }
        p.failed_joins.extend(tx.new_failed_joins.values().cloned());
        for (boot, y) in &tx.new_syncs {
            p.syncs.device.push(tx.state.id.clone());
            p.syncs.boot.push(boot.clone());
            p.syncs.up.push(y.key.0);
            p.syncs.seq.push(y.key.1);
            p.syncs.wall_ms.push(y.wall_ms);
            p.syncs.ids.push(encode_ids(&y.ids));
        }
        let d = &tx.state;
        let sum = d.summary();
        let st = &d.status;
        let h = &st.health;
        let r = &mut p.devices;
        r.id.push(d.id.clone());
        r.rev.push(d.rev);
        r.boots.push(d.encode_boots());
        r.last_seen_ms.push(d.last_seen_ms);
        r.boot_id.push(sum.boot_id);
        r.agent_epoch.push(sum.agent_epoch);
        r.last_seq.push(sum.last_seq);
        r.seq_gaps.push(sum.seq_gaps);
        r.ann_name.push(st.name.clone());
        r.ann_organization.push(st.organization.clone());
        r.ann_group.push(st.group.clone());
        r.online.push(st.online);
        r.agent_version.push(st.agent_version.clone());
        r.status_boot.push(st.boot.clone());
        r.status_uptime_ms.push(st.uptime_ms);
        for (i, v) in [
            h.published,
            h.dropped,
            h.reconnects,
            h.outbox_depth,
            h.failed_joins,
            h.tracker_overflow,
            h.dropped_updates,
            h.dropped_starts_stops,
            h.spool_restored,
        ]
        .into_iter()
        .enumerate()
        {
            r.health[i].push(v);
        }
        r.radios.push(encode_radios(&st.radios));
        r.name.push(names.name.clone());
        r.organization.push(names.organization.clone());
        r.grp.push(names.group.clone());
        Ok(())
    }

    fn add_counts(&mut self, counts: &Counts) -> Result<(), StoreError> {
        for (c, n) in &counts.0 {
            *self
                .pending
                .counts
                .entry(c.name().into_owned())
                .or_insert(0) += n;
            self.pending.dirty = true;
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
        self.flush()?;
        let st = self.st(PRUNE_PLAN_SQL)?;
        let r = self.client.query_one(&st, &[&cutoff_ms])?;
        Ok(PruneReport {
            sessions: r.get::<_, i64>(0) as u64,
            oldest_stop_ms: r.get(1),
            newest_stop_ms: r.get(2),
            failed_joins: self.count(dsql::PRUNE_FAILED_JOINS_PLAN, cutoff_ms)?,
            roams: self.count(dsql::PRUNE_ROAMS_PLAN, cutoff_ms)?,
        })
    }

    /// Drops every partition whose month ended before the cutoff (its rows are counted
    /// first), then deletes at most `limit` rows of the partition the cutoff falls in.
    fn prune_batch(&mut self, cutoff_ms: i64, limit: u32) -> Result<PruneReport, StoreError> {
        self.flush()?;
        let mut rep = PruneReport::default();
        let expired: Vec<schema::Month> = schema::partitions(&mut self.client)?
            .into_iter()
            .filter(|m| schema::month_start_ms(m + 1) <= cutoff_ms)
            .collect();
        if !expired.is_empty() {
            self.client
                .batch_execute(&format!("SET LOCAL lock_timeout = '{DROP_LOCK_TIMEOUT}'"))?;
        }
        for m in expired {
            let name = schema::partition_name(m);
            let r = self.client.query_one(
                &format!("SELECT count(*), min(stop_ms), max(stop_ms) FROM {name}"),
                &[],
            )?;
            self.client.batch_execute(&format!("DROP TABLE {name}"))?;
            log::info!(
                "retention: dropped partition {name} ({} sessions)",
                r.get::<_, i64>(0)
            );
            rep.add(PruneReport {
                sessions: r.get::<_, i64>(0) as u64,
                oldest_stop_ms: r.get(1),
                newest_stop_ms: r.get(2),
                ..PruneReport::default()
            });
        }
        let st = self.st(PRUNE_BATCH_SQL)?;
        for r in self.client.query(&st, &[&cutoff_ms, &i64::from(limit)])? {
            let ms: i64 = r.get(0);
            rep.add(PruneReport {
                sessions: 1,
                oldest_stop_ms: Some(ms),
                newest_stop_ms: Some(ms),
                ..PruneReport::default()
            });
        }
        rep.failed_joins = self.delete_batch(dsql::PRUNE_FAILED_JOINS, cutoff_ms, limit)?;
        rep.roams = self.delete_batch(dsql::PRUNE_ROAMS, cutoff_ms, limit)?;
        let st = self.st(dsql::RECORD_PRUNED)?;
        self.client.execute(&st, &[&cutoff_ms])?;
        Ok(rep)
    }

    fn announced(&mut self) -> Result<Vec<(String, Names, Names)>, StoreError> {
        self.flush()?;
        let st = self.st(
            "SELECT id, ann_name, ann_organization, ann_group, inv_name, inv_organization,
                inv_group FROM devices ORDER BY id",
        )?;
        Ok(self
            .client
            .query(&st, &[])?
            .iter()
            .map(|r| {
                (
                    r.get(0),
                    Names {
                        name: r.get(1),
                        organization: r.get(2),
                        group: r.get(3),
                    },
                    Names {
                        name: r.get(4),
                        organization: r.get(5),
                        group: r.get(6),
                    },
                )
            })
            .collect())
    }

    fn dump(&mut self) -> Result<Vec<String>, StoreError> {
        self.flush()?;
        let mut out: Vec<String> = self
            .sessions(
                sessions_where!("sessions", "true ORDER BY device_id, id"),
                &[],
            )?
            .iter()
            .map(|s| format!("session {s:?}"))
            .collect();
        let ids: Vec<String> = self
            .client
            .query("SELECT id FROM devices ORDER BY id", &[])?
            .iter()
            .map(|r| r.get(0))
            .collect();
        for id in ids {
            if let Some(d) = self.load_device(&id)? {
                out.push(crate::store::dump_device(&d));
            }
        }
        for r in self.client.query(
            "SELECT device_id, boot_id, up, seq, wall_ms, ids FROM syncs
             ORDER BY device_id, boot_id, up, seq",
            &[],
        )? {
            out.push(format!(
                "sync {} {} ({}, {}) {} {:?}",
                r.get::<_, String>(0),
                r.get::<_, String>(1),
                r.get::<_, i64>(2),
                r.get::<_, i64>(3),
                r.get::<_, i64>(4),
                decode_ids(r.get::<_, &[u8]>(5))
            ));
        }
        for r in self.client.query(
            "SELECT device_id, boot_id, epoch, seq, mac, ifname, ssid, bssid, assoc_ms,
                gave_up_ms, times_corrected FROM failed_joins
             ORDER BY device_id, boot_id, epoch, seq",
            &[],
        )? {
            out.push(crate::store::dump_failed_join(&FailedJoin {
                device_id: r.try_get(0)?,
                boot_id: r.try_get(1)?,
                epoch: r.try_get(2)?,
                seq: r.try_get(3)?,
                mac: r.try_get(4)?,
                ifname: r.try_get(5)?,
                ssid: r.try_get(6)?,
                bssid: r.try_get(7)?,
                assoc_ms: r.try_get(8)?,
                gave_up_ms: r.try_get(9)?,
                times_corrected: r.try_get(10)?,
            }));
        }
        for r in self.client.query(
            "SELECT mac, at_ms, gap_ms, from_device, from_id, from_ifname, from_ssid,
                from_freq, to_device, to_id, to_ifname, to_ssid, to_freq FROM roams
             ORDER BY to_device, to_id",
            &[],
        )? {
            out.push(crate::store::dump_roam(&roam_from_row(&r)?));
        }
        for (daily, table, time) in [
            (false, "agg_hourly", "hour_ms"),
            (true, "agg_daily", "day_ms"),
        ] {
            for r in self.client.query(
                &format!(
                    "SELECT device_id, {time}, ssid, sessions, clients, connected_ms, rx_bytes,
                        tx_bytes, roams, failed_joins FROM {table}
                     ORDER BY device_id, {time}, ssid"
                ),
                &[],
            )? {
                out.push(crate::store::dump_bucket(daily, &bucket_from_row(&r)?));
            }
        }
        for r in self.client.query(
            "SELECT day_ms, device_id, ssid, mac FROM agg_clients
             ORDER BY day_ms, device_id, ssid, mac",
            &[],
        )? {
            out.push(crate::store::dump_client_day(
                r.try_get(0)?,
                r.try_get(1)?,
                r.try_get(2)?,
                r.try_get(3)?,
            ));
        }
        Ok(out)
    }

    fn claim_job(&mut self, job: &str, now_ms: i64, every_ms: i64) -> Result<bool, StoreError> {
        self.flush()?;
        let st = self.st("INSERT INTO fleet_jobs (job, next_ms, holder, claimed_ms)
             VALUES ($1, $2::bigint + $3::bigint, $4, $2)
             ON CONFLICT (job) DO UPDATE SET next_ms = excluded.next_ms,
                holder = excluded.holder, claimed_ms = excluded.claimed_ms
             WHERE fleet_jobs.next_ms <= $2
             RETURNING job")?;
        let inst = self.instance.clone();
        Ok(self
            .client
            .query_opt(&st, &[&job, &now_ms, &every_ms, &inst])?
            .is_some())
    }

    fn set_names(
        &mut self,
        id: &str,
        inventory: &Names,
        effective: &Names,
    ) -> Result<(), StoreError> {
        self.flush()?;
        let st = self.st(
            "INSERT INTO devices (id, inv_name, inv_organization, inv_group, name,
                organization, grp) VALUES ($1, $2, $3, $4, $5, $6, $7)
             ON CONFLICT (id) DO UPDATE SET inv_name = $2, inv_organization = $3,
                inv_group = $4, name = $5, organization = $6, grp = $7, rev = devices.rev + 1",
        )?;
        self.client.execute(
            &st,
            &[
                &id,
                &inventory.name,
                &inventory.organization,
                &inventory.group,
                &effective.name,
                &effective.organization,
                &effective.group,
            ],
        )?;
        Ok(())
    }

    fn mark(&mut self, marks: &Marks, now_ms: i64) -> Result<(), StoreError> {
        if marks.is_empty() {
            return Ok(());
        }
        let p = &mut self.pending;
        if p.marks.is_empty() {
            p.marks_first_ms = now_ms;
        }
        p.marks.merge(marks);
        p.marks_first_ms = p.marks_first_ms.min(now_ms);
        p.dirty = true;
        Ok(())
    }

    fn take_client_marks(&mut self, limit: u32) -> Result<Vec<ClientMark>, StoreError> {
        self.flush()?;
        let st = self.st(
            "SELECT mac, lo_ms, hi_ms, gen FROM dirty_clients ORDER BY first_ms
             LIMIT $1 FOR UPDATE SKIP LOCKED",
        )?;
        let marks: Vec<ClientMark> = self
            .client
            .query(&st, &[&i64::from(limit)])?
            .iter()
            .map(|r| ClientMark {
                mac: r.get(0),
                lo_ms: r.get(1),
                hi_ms: r.get(2),
                gen: r.get(3),
            })
            .collect();
        let keys: Vec<String> = marks.iter().map(|m| format!("client\n{}", m.mac)).collect();
        let held = self.try_locks(&keys)?;
        Ok(marks
            .into_iter()
            .zip(held)
            .filter_map(|(m, h)| h.then_some(m))
            .collect())
    }

    fn finish_client_marks(&mut self, marks: &[ClientMark]) -> Result<(), StoreError> {
        self.flush()?;
        if marks.is_empty() {
            return Ok(());
        }
        let macs: Vec<&str> = marks.iter().map(|m| m.mac.as_str()).collect();
        let gens: Vec<i64> = marks.iter().map(|m| m.gen).collect();
        let st = self.st("DELETE FROM dirty_clients WHERE (mac, gen) IN
                (SELECT * FROM unnest($1::text[], $2::bigint[]))")?;
        self.client.execute(&st, &[&macs, &gens])?;
        Ok(())
    }

    fn take_bucket_marks(&mut self, limit: u32) -> Result<Vec<BucketMark>, StoreError> {
        self.flush()?;
        let st = self.st(
            "SELECT device_id, hour_ms, gen FROM dirty_buckets ORDER BY first_ms
             LIMIT $1 FOR UPDATE SKIP LOCKED",
        )?;
        let marks: Vec<BucketMark> = self
            .client
            .query(&st, &[&i64::from(limit)])?
            .iter()
            .map(|r| BucketMark {
                device_id: r.get(0),
                hour_ms: r.get(1),
                gen: r.get(2),
            })
            .collect();
        let groups: BTreeSet<(String, i64)> = marks
            .iter()
            .map(|m| (m.device_id.clone(), day(m.hour_ms)))
            .collect();
        let groups: Vec<(String, i64)> = groups.into_iter().collect();
        let keys: Vec<String> = groups
            .iter()
            .map(|(d, day)| format!("day\n{d}\n{day}"))
            .collect();
        let held: BTreeSet<&(String, i64)> = groups
            .iter()
            .zip(self.try_locks(&keys)?)
            .filter_map(|(g, h)| h.then_some(g))
            .collect();
        Ok(marks
            .iter()
            .filter(|m| held.contains(&(m.device_id.clone(), day(m.hour_ms))))
            .cloned()
            .collect())
    }

    fn finish_bucket_marks(&mut self, marks: &[BucketMark]) -> Result<(), StoreError> {
        self.flush()?;
        if marks.is_empty() {
            return Ok(());
        }
        let devs: Vec<&str> = marks.iter().map(|m| m.device_id.as_str()).collect();
        let hours: Vec<i64> = marks.iter().map(|m| m.hour_ms).collect();
        let gens: Vec<i64> = marks.iter().map(|m| m.gen).collect();
        let st = self.st(
            "DELETE FROM dirty_buckets WHERE (device_id, hour_ms, gen) IN
                (SELECT * FROM unnest($1::text[], $2::bigint[], $3::bigint[]))",
        )?;
        self.client.execute(&st, &[&devs, &hours, &gens])?;
        Ok(())
    }

    fn client_spans(&mut self, mac: &str, lo: i64, hi: i64) -> Result<Vec<Span>, StoreError> {
        self.flush()?;
        let mut out = self.spans(
            spans_where!(
                "sessions_closed",
                "s.mac = $1 AND s.stop_ms >= $2 AND s.start_ms <= $3"
            ),
            &[&mac, &lo, &hi],
        )?;
        out.extend(self.spans(
            spans_where!("sessions_open", "s.mac = $1 AND s.start_ms <= $2"),
            &[&mac, &hi],
        )?);
        Ok(out)
    }

    fn replace_roams(
        &mut self,
        mac: &str,
        lo: i64,
        hi: i64,
        roams: &[Roam],
    ) -> Result<Vec<Roam>, StoreError> {
        self.flush()?;
        let st = self.st(dsql::CLIENT_ROAMS)?;
        let old: Vec<Roam> = self
            .client
            .query(&st, &[&mac, &lo, &hi])?
            .iter()
            .map(roam_from_row)
            .collect::<Result<_, _>>()?;
        let st = self.st(dsql::DELETE_CLIENT_ROAMS)?;
        self.client.execute(&st, &[&mac, &lo, &hi])?;
        let st = self.st(dsql::INSERT_ROAM)?;
        for r in roams {
            self.client.execute(
                &st,
                &[
                    &r.mac,
                    &r.at_ms,
                    &r.gap_ms,
                    &r.from.device_id,
                    &r.from.id,
                    &r.from.ifname,
                    &r.from.ssid,
                    &r.from.freq_mhz,
                    &r.to.device_id,
                    &r.to.id,
                    &r.to.ifname,
                    &r.to.ssid,
                    &r.to.freq_mhz,
                ],
            )?;
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
        self.flush()?;
        let st = self.st(dsql::CLIENT_DAYS)?;
        let old: BTreeSet<(i64, String, String)> = self
            .client
            .query(&st, &[&mac, &lo_day, &hi_day])?
            .iter()
            .map(|r| (r.get(0), r.get(1), r.get(2)))
            .collect();
        let mut changed = BTreeSet::new();
        let del = self.st(dsql::DELETE_CLIENT_DAY)?;
        for (d, dev, ssid) in old.difference(days) {
            self.client.execute(&del, &[d, dev, ssid, &mac])?;
            changed.insert((*d, dev.clone()));
        }
        let ins = self.st(dsql::INSERT_CLIENT_DAY)?;
        for (d, dev, ssid) in days.difference(&old) {
            self.client.execute(&ins, &[d, dev, ssid, &mac])?;
            changed.insert((*d, dev.clone()));
        }
        Ok(changed)
    }

    fn device_spans(&mut self, device: &str, lo: i64, hi: i64) -> Result<Vec<Span>, StoreError> {
        self.flush()?;
        let mut out = self.spans(
            spans_where!(
                "sessions_closed",
                "s.device_id = $1 AND s.stop_ms >= $2 AND s.start_ms < $3 \
                 AND s.mac IS NOT NULL"
            ),
            &[&device, &lo, &hi],
        )?;
        out.extend(self.spans(
            spans_where!(
                "sessions_open",
                "s.device_id = $1 AND s.start_ms < $2 AND s.mac IS NOT NULL"
            ),
            &[&device, &hi],
        )?);
        Ok(out)
    }

    fn device_events(
        &mut self,
        device: &str,
        lo: i64,
        hi: i64,
    ) -> Result<(Vec<(String, i64)>, Vec<(String, i64)>), StoreError> {
        self.flush()?;
        let mut get = |sql: &'static str| -> Result<Vec<(String, i64)>, StoreError> {
            let st = self.st(sql)?;
            Ok(self
                .client
                .query(&st, &[&device, &lo, &hi])?
                .iter()
                .map(|r| (r.get(0), r.get(1)))
                .collect())
        };
        Ok((get(dsql::DEVICE_ROAMS)?, get(dsql::DEVICE_FAILED_JOINS)?))
    }

    fn replace_hours(
        &mut self,
        device: &str,
        hours: &BTreeSet<i64>,
        rows: &[HourRow],
    ) -> Result<(), StoreError> {
        self.flush()?;
        let del = self.st(dsql::DELETE_HOUR)?;
        for h in hours {
            self.client.execute(&del, &[&device, h])?;
        }
        let ins = self.st(dsql::INSERT_HOUR)?;
        for r in rows {
            self.client.execute(
                &ins,
                &[
                    &r.device_id,
                    &r.hour_ms,
                    &r.ssid,
                    &r.sessions,
                    &r.clients,
                    &r.connected_ms,
                    &r.rx_bytes,
                    &r.tx_bytes,
                    &r.roams,
                    &r.failed_joins,
                ],
            )?;
        }
        let days: BTreeSet<i64> = hours.iter().map(|h| day(*h)).collect();
        let del = self.st(dsql::DELETE_DAY)?;
        let ins = self.st(dsql::INSERT_DAY)?;
        for d in days {
            self.client.execute(&del, &[&device, &d])?;
            self.client.execute(&ins, &[&device, &d])?;
        }
        Ok(())
    }

    fn marks_floor(&mut self) -> Result<Option<i64>, StoreError> {
        self.flush()?;
        let st = self.st(dsql::MARKS_FLOOR)?;
        Ok(self.client.query_one(&st, &[])?.get(0))
    }

    fn pruned_before(&mut self) -> Result<Option<i64>, StoreError> {
        self.flush()?;
        let st = self.st(dsql::PRUNED_BEFORE)?;
        Ok(self.client.query_opt(&st, &[])?.map(|r| r.get(0)))
    }

    fn prune_aggregates_batch(&mut self, cutoff_ms: i64, limit: u32) -> Result<u64, StoreError> {
        self.flush()?;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bulk_statements_name_every_column_once() {
        assert_eq!(columns().len(), 37);
        assert_eq!(columns()[33], ("forced_ms", Kind::Int));
        assert_eq!(columns()[34], ("hostname", Kind::Text));
        let up = update_sql("sessions_closed", true);
        assert!(up.contains("$38::bigint[]") && up.contains("t.stop_ms = u.old_stop"));
        assert!(!up.contains("SET device_id"));
        assert!(insert_sql("sessions_open").contains("$37::bigint[]"));
    }
}
