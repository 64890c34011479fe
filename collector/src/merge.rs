//! The merge layer: decoded messages + receive time → rows, inside a caller's transaction.
//!
//! The store merges, it does not replay. Every session row is a set of *facts* (the Start's
//! fields, the largest counters, the agent's stop, the latest evidence that the session was
//! open) plus a *derived* stop that is recomputed from those facts and from device-level facts
//! (which boot is newest, which syncs were seen, which later session of the same client
//! exists). Facts only ever grow by max/min/union, so applying the same events twice or in
//! any order gives the same rows. See `docs/collector.md` for the rules.
//!
//! Nothing here reads a clock: the receive time is an argument.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::OnceLock;

use rusqlite::types::Value;
use rusqlite::{named_params, params, params_from_iter, OptionalExtension, Transaction};
use wifisess_wire::{
    decode_batch, decode_status, Batch, DecodeError, Event, SessionId, Stamp, Status,
};

/// Order of two events of one boot: (uptime ms, seq). Uptime is CLOCK_BOOTTIME, so it is
/// comparable across agent restarts of the same boot; seq breaks ties inside one agent run.
pub type Key = (i64, i64);

/// A store failure (SQLite); the caller rolls back and does not ack.
pub type StoreError = rusqlite::Error;

/// What became of one MQTT message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// An events batch was merged.
    Events {
        /// Events in the batch.
        events: usize,
    },
    /// A status was merged.
    Status,
    /// The topic's device id differs from the payload's: rejected (counter `rejected_spoofed`).
    Spoofed {
        /// Device id in the topic.
        topic_device: String,
        /// Device id in the payload.
        payload_device: String,
    },
    /// The payload did not decode (counter `undecodable_<kind>`).
    Undecodable(DecodeError),
    /// The topic is not `{prefix}/{device}/events|status` (counter `rejected_topic`).
    BadTopic,
}

/// Stop reasons the collector infers itself (provisional: a later report of the session
/// being open reopens it).
pub mod reason {
    /// The device came back with a new boot id.
    pub const DEVICE_REBOOT: &str = "device_reboot";
    /// A sync of the device did not list the session.
    pub const MISSING: &str = "missing";
    /// A later session of the same client on the same device began (its stop was lost).
    pub const SUPERSEDED: &str = "superseded";
    /// The device was silent for `expire_hours` (set by the expiry job).
    pub const EXPIRED: &str = "expired";
    /// Closed by the operator (`expire --force`), e.g. before maintenance.
    pub const FORCED: &str = "forced";
}

/// Adds `n` to the named counter (kept in the `counters` table, same transaction).
///
/// # Errors
/// SQLite errors.
pub fn count(tx: &Transaction, name: &str, n: i64) -> Result<(), StoreError> {
    tx.prepare_cached(
        "INSERT INTO counters (name, value) VALUES (?1, ?2)
         ON CONFLICT (name) DO UPDATE SET value = value + excluded.value",
    )?
    .execute(params![name, n])?;
    Ok(())
}

/// Reads a counter (0 if never counted).
///
/// # Errors
/// SQLite errors.
pub fn counter(conn: &rusqlite::Connection, name: &str) -> Result<i64, StoreError> {
    conn.query_row("SELECT value FROM counters WHERE name = ?1", [name], |r| {
        r.get(0)
    })
    .optional()
    .map(|v| v.unwrap_or(0))
}

/// Applies one MQTT message: routes by topic, decodes, checks the device id, merges.
/// Bad input is counted and reported in the [`Outcome`], never an error.
///
/// # Errors
/// Only SQLite errors.
pub fn apply_publish(
    tx: &Transaction,
    prefix: &str,
    topic: &str,
    payload: &[u8],
    receive_ms: i64,
) -> Result<Outcome, StoreError> {
    let Some((topic_device, kind)) = parse_topic(prefix, topic) else {
        count(tx, "rejected_topic", 1)?;
        return Ok(Outcome::BadTopic);
    };
    let decoded = match kind {
        TopicKind::Events => decode_batch(payload).map(Msg::Batch),
        TopicKind::Status => decode_status(payload).map(Msg::Status),
    };
    let msg = match decoded {
        Ok(m) => m,
        Err(e) => {
            count(tx, "undecodable", 1)?;
            count(tx, &format!("undecodable_{}", e.kind()), 1)?;
            return Ok(Outcome::Undecodable(e));
        }
    };
    let payload_device = match &msg {
        Msg::Batch(b) => &b.device_id,
        Msg::Status(s) => &s.device_id,
    };
    if payload_device != topic_device {
        count(tx, "rejected_spoofed", 1)?;
        return Ok(Outcome::Spoofed {
            topic_device: topic_device.to_owned(),
            payload_device: payload_device.clone(),
        });
    }
    match msg {
        Msg::Batch(b) => {
            apply_batch(tx, &b, receive_ms)?;
            count(tx, "events", b.events.len() as i64)?;
            Ok(Outcome::Events {
                events: b.events.len(),
            })
        }
        Msg::Status(s) => {
            apply_status(tx, &s, receive_ms)?;
            Ok(Outcome::Status)
        }
    }
}

enum Msg {
    Batch(Batch),
    Status(Status),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TopicKind {
    Events,
    Status,
}

fn parse_topic<'t>(prefix: &str, topic: &'t str) -> Option<(&'t str, TopicKind)> {
    let rest = topic.strip_prefix(prefix)?.strip_prefix('/')?;
    let (device, kind) = rest.split_once('/')?;
    if device.is_empty() || device.contains('/') {
        return None;
    }
    match kind {
        "events" => Some((device, TopicKind::Events)),
        "status" => Some((device, TopicKind::Status)),
        _ => None,
    }
}

/// One session row: facts plus the derived stop.
#[derive(Debug, Clone, PartialEq)]
struct Sess {
    device_id: String,
    id: i64,
    boot_id: String,
    mac: Option<String>,
    ssid: Option<String>,
    ifname: Option<String>,
    bssid: Option<String>,
    freq_mhz: Option<i64>,
    start_ms: i64,
    has_start: bool,
    first: Key,
    stop_ms: Option<i64>,
    stop_reason: Option<String>,
    stop_inferred: bool,
    agent_stop: Option<(i64, String)>,
    last_seen_ms: i64,
    open: Option<Key>,
    signal: Option<(Key, i64)>,
    last_activity_ms: Option<i64>,
    rx_bytes: i64,
    tx_bytes: i64,
    rx_packets: i64,
    tx_packets: i64,
    missing: Option<Key>,
    next_start_ms: Option<i64>,
    expired_ms: Option<i64>,
    forced_ms: Option<i64>,
    times_corrected: bool,
}

/// The `sessions` columns in the order of [`Sess::values`]; the first two are the key.
const SESS_COLS: [&str; 34] = [
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
];

/// `SELECT <every column> FROM sessions WHERE <key>` and `INSERT INTO sessions ...`, built once.
fn session_sql() -> &'static (String, String) {
    static SQL: OnceLock<(String, String)> = OnceLock::new();
    SQL.get_or_init(|| {
        let cols = SESS_COLS.join(", ");
        let marks = (1..=SESS_COLS.len())
            .map(|i| format!("?{i}"))
            .collect::<Vec<_>>()
            .join(", ");
        (
            format!("SELECT {cols} FROM sessions WHERE device_id = ?1 AND id = ?2"),
            format!("INSERT INTO sessions ({cols}) VALUES ({marks})"),
        )
    })
}

fn key_of(a: Option<i64>, b: Option<i64>) -> Option<Key> {
    Some((a?, b?))
}

impl Sess {
    fn new(device_id: &str, id: SessionId, boot_id: &str, key: Key, wall: i64) -> Sess {
        Sess {
            device_id: device_id.to_owned(),
            id: id.0 as i64,
            boot_id: boot_id.to_owned(),
            mac: None,
            ssid: None,
            ifname: None,
            bssid: None,
            freq_mhz: None,
            start_ms: wall,
            has_start: false,
            first: key,
            stop_ms: None,
            stop_reason: None,
            stop_inferred: false,
            agent_stop: None,
            last_seen_ms: wall,
            open: None,
            signal: None,
            last_activity_ms: None,
            rx_bytes: 0,
            tx_bytes: 0,
            rx_packets: 0,
            tx_packets: 0,
            missing: None,
            next_start_ms: None,
            expired_ms: None,
            forced_ms: None,
            times_corrected: false,
        }
    }

    fn from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Sess> {
        let agent_stop_ms: Option<i64> = r.get(15)?;
        let agent_stop_reason: Option<String> = r.get(16)?;
        let signal_avg: Option<i64> = r.get(22)?;
        Ok(Sess {
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
            stop_reason: r.get(13)?,
            stop_inferred: r.get(14)?,
            agent_stop: agent_stop_ms.zip(agent_stop_reason),
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
        })
    }

    /// Records any evidence of the session at `key` / `wall`.
    fn seen(&mut self, key: Key, wall: i64, corrected: bool) {
        self.first = self.first.min(key);
        self.last_seen_ms = self.last_seen_ms.max(wall);
        if !self.has_start {
            self.start_ms = self.start_ms.min(wall);
        }
        self.times_corrected |= corrected;
    }

    /// Records evidence that the agent held the session open at `key`.
    fn seen_open(&mut self, key: Key) {
        self.open = Some(self.open.map_or(key, |k| k.max(key)));
    }

    fn signal_at(&mut self, key: Key, dbm: Option<i8>) {
        if let Some(d) = dbm {
            let cand = (key, i64::from(d));
            if self.signal.is_none_or(|s| cand > s) {
                self.signal = Some(cand);
            }
        }
    }

    fn activity_at(&mut self, wall: i64, inactive_ms: Option<u32>) {
        if let Some(i) = inactive_ms {
            let a = wall - i64::from(i);
            self.last_activity_ms = Some(self.last_activity_ms.map_or(a, |x| x.max(a)));
        }
    }

    fn counters(&mut self, rx: u64, tx: u64, rxp: u64, txp: u64) {
        self.rx_bytes = self.rx_bytes.max(clamp_i64(rx));
        self.tx_bytes = self.tx_bytes.max(clamp_i64(tx));
        self.rx_packets = self.rx_packets.max(clamp_i64(rxp));
        self.tx_packets = self.tx_packets.max(clamp_i64(txp));
    }

    /// Agent-stopped sessions are final: no inferred rule can change them.
    fn is_final(&self) -> bool {
        self.agent_stop.is_some()
    }

    /// The row's values in [`SESS_COLS`] order.
    fn values(&self) -> [Value; 34] {
        let opt_text = |v: &Option<String>| v.clone().map_or(Value::Null, Value::Text);
        let opt_int = |v: Option<i64>| v.map_or(Value::Null, Value::Integer);
        [
            Value::Text(self.device_id.clone()),
            Value::Integer(self.id),
            Value::Text(self.boot_id.clone()),
            opt_text(&self.mac),
            opt_text(&self.ssid),
            opt_text(&self.ifname),
            opt_text(&self.bssid),
            opt_int(self.freq_mhz),
            Value::Integer(self.start_ms),
            Value::Integer(self.has_start.into()),
            Value::Integer(self.first.0),
            Value::Integer(self.first.1),
            opt_int(self.stop_ms),
            opt_text(&self.stop_reason),
            Value::Integer(self.stop_inferred.into()),
            opt_int(self.agent_stop.as_ref().map(|s| s.0)),
            opt_text(&self.agent_stop.as_ref().map(|s| s.1.clone())),
            Value::Integer(self.last_seen_ms),
            opt_int(self.open.map(|k| k.0)),
            opt_int(self.open.map(|k| k.1)),
            opt_int(self.signal.map(|s| s.0 .0)),
            opt_int(self.signal.map(|s| s.0 .1)),
            opt_int(self.signal.map(|s| s.1)),
            opt_int(self.last_activity_ms),
            Value::Integer(self.rx_bytes),
            Value::Integer(self.tx_bytes),
            Value::Integer(self.rx_packets),
            Value::Integer(self.tx_packets),
            opt_int(self.missing.map(|k| k.0)),
            opt_int(self.missing.map(|k| k.1)),
            opt_int(self.next_start_ms),
            opt_int(self.expired_ms),
            Value::Integer(self.times_corrected.into()),
            opt_int(self.forced_ms),
        ]
    }

    /// Writes the row: an `INSERT` when it is not stored yet, else an `UPDATE` of only the
    /// columns that differ from `stored` (nothing when none does). Most events change only
    /// columns no index covers (counters, last seen, signal), so SQLite rewrites the row and
    /// none of the ~11 index entries (docs/BENCHMARKS.md, ingest).
    fn write(&self, tx: &Transaction, stored: Option<&Sess>) -> Result<(), StoreError> {
        let new = self.values();
        let Some(stored) = stored else {
            tx.prepare_cached(&session_sql().1)?
                .execute(params_from_iter(new.iter()))?;
            return Ok(());
        };
        let old = stored.values();
        let changed: Vec<usize> = (2..new.len()).filter(|&i| new[i] != old[i]).collect();
        if changed.is_empty() {
            return Ok(());
        }
        let sets: Vec<String> = changed
            .iter()
            .enumerate()
            .map(|(n, &i)| format!("{} = ?{}", SESS_COLS[i], n + 3))
            .collect();
        let sql = format!(
            "UPDATE sessions SET {} WHERE device_id = ?1 AND id = ?2",
            sets.join(", ")
        );
        let args = new[..2].iter().chain(changed.iter().map(|&i| &new[i]));
        tx.prepare_cached(&sql)?.execute(params_from_iter(args))?;
        Ok(())
    }
}

fn clamp_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// Device-level facts a session's derived stop depends on.
#[derive(Debug, Clone, Default, PartialEq)]
struct Context {
    /// `Some(last_ms of the session's boot)` when a newer boot of the device exists.
    reboot_at: Option<i64>,
    /// The latest sync of the session's boot that did not list it (after its first evidence).
    missing: Option<Key>,
    /// Start of the next session of the same client on the same device.
    next_start_ms: Option<i64>,
}

/// The derived stop of a session: `(stop_ms, reason, inferred)`, or `None` while open.
///
/// An agent-reported stop always wins. Otherwise every inferred rule that applies proposes a
/// stop, and the earliest one is taken (ties in the order reboot, missing, superseded,
/// expired). A rule no longer applies once the agent reported the session open after it.
fn derive(s: &Sess, cx: &Context) -> Option<(i64, String, bool)> {
    if let Some((ms, r)) = &s.agent_stop {
        return Some((*ms, r.clone(), false));
    }
    let mut cands: Vec<(i64, &str)> = Vec::new();
    if let Some(at) = cx.reboot_at {
        cands.push((at, reason::DEVICE_REBOOT));
    }
    if let Some(m) = cx.missing {
        if s.open.is_none_or(|o| m > o) {
            cands.push((s.last_seen_ms, reason::MISSING));
        }
    }
    if let Some(n) = cx.next_start_ms {
        cands.push((s.last_seen_ms.min(n), reason::SUPERSEDED));
    }
    if let Some(e) = s.expired_ms {
        if s.last_seen_ms <= e {
            cands.push((e, reason::EXPIRED));
        }
    }
    if let Some(f) = s.forced_ms {
        if s.last_seen_ms <= f {
            cands.push((f, reason::FORCED));
        }
    }
    // `min_by_key` keeps the first of equal keys: the order pushed above is the tie order.
    cands
        .into_iter()
        .min_by_key(|c| c.0)
        .map(|(ms, r)| (ms.max(s.start_ms), r.to_owned(), true))
}

/// Converts a stamp of a batch to wall ms: the agent's clock when synchronised, else the
/// boot's estimated origin (wall time at uptime 0) plus the uptime.
#[derive(Debug, Clone, Copy)]
struct Clock {
    synced: bool,
    origin_ms: i64,
}

impl Clock {
    fn wall(&self, st: Stamp) -> i64 {
        if self.synced {
            clamp_i64(st.wall_ms)
        } else {
            self.origin_ms.saturating_add(clamp_i64(st.uptime_ms))
        }
    }
}

/// One stored boot of a device (`device_boots`).
#[derive(Debug)]
struct BootRow {
    id: String,
    first_ms: i64,
    last_ms: i64,
    origin_ms: Option<i64>,
}

/// A device's boots, read once per message and kept equal to the table by [`Boots::observe`]
/// (the only write to it), so the newest boot before and after the message, its origin and
/// the other boots' last-seen times cost one query instead of four.
struct Boots {
    rows: Vec<BootRow>,
}

impl Boots {
    fn load(tx: &Transaction, device: &str) -> Result<Boots, StoreError> {
        let mut st = tx.prepare_cached(
            "SELECT boot_id, first_ms, last_ms, origin_ms FROM device_boots WHERE device_id = ?1",
        )?;
        let rows = st.query_map([device], |r| {
            Ok(BootRow {
                id: r.get(0)?,
                first_ms: r.get(1)?,
                last_ms: r.get(2)?,
                origin_ms: r.get(3)?,
            })
        })?;
        Ok(Boots {
            rows: rows.collect::<Result<_, _>>()?,
        })
    }

    fn get(&self, boot: &str) -> Option<&BootRow> {
        self.rows.iter().find(|r| r.id == boot)
    }

    /// The newest boot: the latest first seen, ties by the larger boot id.
    fn newest(&self) -> Option<String> {
        self.rows
            .iter()
            .max_by(|a, b| (a.first_ms, &a.id).cmp(&(b.first_ms, &b.id)))
            .map(|r| r.id.clone())
    }

    /// The origin (wall time at uptime 0) that converts the times of an unsynchronised
    /// message of `boot`: the lower of the stored estimate and this message's candidate
    /// (`None` for a synchronised message, which needs none).
    fn origin(&self, boot: &str, origin_cand: Option<i64>) -> Option<i64> {
        let cand = origin_cand?;
        let stored = self.get(boot).and_then(|r| r.origin_ms);
        Some(stored.map_or(cand, |s| s.min(cand)))
    }

    fn last_ms(&self, boot: &str) -> Option<i64> {
        self.get(boot).map(|r| r.last_ms)
    }

    /// Records that `boot` was seen between `first_ms` and `last_ms`; with an unsynchronised
    /// clock also lowers its origin estimate to `origin_cand`. Writes the row and applies the
    /// same rules to the copy.
    fn observe(
        &mut self,
        tx: &Transaction,
        device: &str,
        boot: &str,
        first_ms: i64,
        last_ms: i64,
        origin_cand: Option<i64>,
    ) -> Result<(), StoreError> {
        tx.prepare_cached(
            "INSERT INTO device_boots (device_id, boot_id, first_ms, last_ms, origin_ms)
             VALUES (?1, ?2, ?3, ?4, ?5)
             ON CONFLICT (device_id, boot_id) DO UPDATE SET
               first_ms = min(first_ms, excluded.first_ms),
               last_ms = max(last_ms, excluded.last_ms),
               origin_ms = CASE WHEN origin_ms IS NULL THEN excluded.origin_ms
                                WHEN excluded.origin_ms IS NULL THEN origin_ms
                                ELSE min(origin_ms, excluded.origin_ms) END",
        )?
        .execute(params![device, boot, first_ms, last_ms, origin_cand])?;
        match self.rows.iter_mut().find(|r| r.id == boot) {
            Some(r) => {
                r.first_ms = r.first_ms.min(first_ms);
                r.last_ms = r.last_ms.max(last_ms);
                r.origin_ms = match (r.origin_ms, origin_cand) {
                    (Some(a), Some(b)) => Some(a.min(b)),
                    (a, b) => a.or(b),
                };
            }
            None => self.rows.push(BootRow {
                id: boot.to_owned(),
                first_ms,
                last_ms,
                origin_ms: origin_cand,
            }),
        }
        Ok(())
    }
}

/// The boot origin candidate of an unsynchronised message: receive time minus the newest
/// uptime in it (the message was sent right after its newest event).
fn origin_candidate(receive_ms: i64, newest_uptime_ms: u64) -> i64 {
    receive_ms.saturating_sub(clamp_i64(newest_uptime_ms))
}

fn load_session(tx: &Transaction, device: &str, id: i64) -> Result<Option<Sess>, StoreError> {
    tx.prepare_cached(&session_sql().0)?
        .query_row(params![device, id], Sess::from_row)
        .optional()
}

fn live_ids_by_mac(tx: &Transaction, device: &str, mac: &str) -> Result<Vec<i64>, StoreError> {
    let mut st = tx.prepare_cached(
        "SELECT id FROM sessions WHERE device_id = ?1 AND mac = ?2 AND agent_stop_ms IS NULL",
    )?;
    let rows = st.query_map(params![device, mac], |r| r.get(0))?;
    rows.collect()
}

fn live_ids_by_boot(tx: &Transaction, device: &str, boot: &str) -> Result<Vec<i64>, StoreError> {
    let mut st = tx.prepare_cached(
        "SELECT id FROM sessions WHERE device_id = ?1 AND boot_id = ?2 AND agent_stop_ms IS NULL",
    )?;
    let rows = st.query_map(params![device, boot], |r| r.get(0))?;
    rows.collect()
}

/// A sync as stored: its key and the sorted ids it listed.
struct SyncRec {
    key: Key,
    ids: Vec<i64>,
}

fn encode_ids(ids: &[SessionId]) -> Vec<u8> {
    let mut v: Vec<i64> = ids.iter().map(|i| i.0 as i64).collect();
    v.sort_unstable();
    v.dedup();
    v.iter().flat_map(|i| i.to_le_bytes()).collect()
}

fn decode_ids(b: &[u8]) -> Vec<i64> {
    b.chunks_exact(8)
        .map(|c| i64::from_le_bytes(c.try_into().expect("chunks of 8")))
        .collect()
}

fn load_syncs(tx: &Transaction, device: &str, boot: &str) -> Result<Vec<SyncRec>, StoreError> {
    let mut st =
        tx.prepare_cached("SELECT up, seq, ids FROM syncs WHERE device_id = ?1 AND boot_id = ?2")?;
    let rows = st.query_map(params![device, boot], |r| {
        Ok(SyncRec {
            key: (r.get(0)?, r.get(1)?),
            ids: decode_ids(&r.get::<_, Vec<u8>>(2)?),
        })
    })?;
    rows.collect()
}

/// Merges the seq numbers of one message into the device's received runs.
fn record_seqs(
    tx: &Transaction,
    device: &str,
    boot: &str,
    epoch: u32,
    seqs: &mut Vec<i64>,
) -> Result<(), StoreError> {
    seqs.sort_unstable();
    seqs.dedup();
    let mut runs: Vec<(i64, i64)> = Vec::new();
    for &s in seqs.iter() {
        match runs.last_mut() {
            Some(r) if r.1 + 1 == s => r.1 = s,
            _ => runs.push((s, s)),
        }
    }
    for (lo, hi) in runs {
        let mut st = tx.prepare_cached(
            "SELECT lo, hi FROM seq_runs WHERE device_id = ?1 AND boot_id = ?2 AND epoch = ?3
             AND lo <= ?5 + 1 AND hi >= ?4 - 1 ORDER BY lo",
        )?;
        let touching: Vec<(i64, i64)> = st
            .query_map(params![device, boot, epoch, lo, hi], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })?
            .collect::<Result<_, _>>()?;
        let merged_hi = touching.iter().fold(hi, |m, t| m.max(t.1));
        // The usual message continues the run before it: that run's `hi` grows in place.
        // Otherwise the touching runs are replaced by their union.
        let kept = touching.first().filter(|t| t.0 <= lo).map(|t| t.0);
        for &(l, _) in &touching {
            if Some(l) != kept {
                tx.prepare_cached(
                    "DELETE FROM seq_runs WHERE device_id = ?1 AND boot_id = ?2 AND epoch = ?3
                     AND lo = ?4",
                )?
                .execute(params![device, boot, epoch, l])?;
            }
        }
        match kept {
            Some(l) => tx
                .prepare_cached(
                    "UPDATE seq_runs SET hi = ?5 WHERE device_id = ?1 AND boot_id = ?2
                     AND epoch = ?3 AND lo = ?4",
                )?
                .execute(params![device, boot, epoch, l, merged_hi])?,
            None => tx
                .prepare_cached(
                    "INSERT INTO seq_runs (device_id, boot_id, epoch, lo, hi)
                     VALUES (?1, ?2, ?3, ?4, ?5)",
                )?
                .execute(params![
                    device,
                    boot,
                    epoch,
                    touching.first().map_or(lo, |t| t.0.min(lo)),
                    merged_hi
                ])?,
        };
    }
    Ok(())
}

/// Writes the device row (creating it): last seen (`receive_ms`, a running maximum), its
/// newest boot `boot`, that boot's current epoch (the one with the latest uptime) and last
/// seq, and the seq gaps over all its boots and epochs.
fn refresh_device(
    tx: &Transaction,
    device: &str,
    boot: Option<&str>,
    receive_ms: i64,
) -> Result<(), StoreError> {
    let mut epoch: Option<(i64, i64)> = None;
    if let Some(b) = boot {
        let mut st = tx.prepare_cached(
            "SELECT last_up, epoch FROM epochs WHERE device_id = ?1 AND boot_id = ?2",
        )?;
        let mut rows = st.query(params![device, b])?;
        while let Some(r) = rows.next()? {
            let cand: (i64, i64) = (r.get(0)?, r.get(1)?);
            epoch = epoch.max(Some(cand));
        }
    }
    let epoch = epoch.map(|e| e.1);
    // One pass over the device's runs in key order (boot, epoch, lo); i128 because hostile
    // seqs can span the whole i64 range.
    let mut last_seq: Option<i64> = None;
    let mut gaps: i128 = 0;
    // The (boot, epoch) being summed: boot, epoch, lowest lo, highest hi, seqs covered.
    let mut group: Option<(String, i64, i128, i128, i128)> = None;
    let uncovered = |g: Option<(String, i64, i128, i128, i128)>| {
        g.map_or(0, |(_, _, lo, hi, covered)| hi - lo + 1 - covered)
    };
    let mut st = tx.prepare_cached(
        "SELECT boot_id, epoch, lo, hi FROM seq_runs WHERE device_id = ?1
         ORDER BY boot_id, epoch, lo",
    )?;
    let mut rows = st.query([device])?;
    while let Some(r) = rows.next()? {
        let (b, e, lo, hi): (String, i64, i64, i64) = (r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?);
        if boot == Some(b.as_str()) && epoch == Some(e) {
            last_seq = last_seq.max(Some(hi));
        }
        let (lo, hi) = (i128::from(lo), i128::from(hi));
        match &mut group {
            Some(g) if g.0 == b && g.1 == e => {
                g.2 = g.2.min(lo);
                g.3 = g.3.max(hi);
                g.4 += hi - lo + 1;
            }
            _ => {
                gaps += uncovered(group.take());
                group = Some((b, e, lo, hi, hi - lo + 1));
            }
        }
    }
    gaps += uncovered(group);
    let gaps = i64::try_from(gaps.max(0)).unwrap_or(i64::MAX);
    tx.prepare_cached(
        "INSERT INTO devices (id, last_seen_ms, boot_id, agent_epoch, last_seq, seq_gaps)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)
         ON CONFLICT (id) DO UPDATE SET
           last_seen_ms = max(coalesce(last_seen_ms, excluded.last_seen_ms), excluded.last_seen_ms),
           boot_id = excluded.boot_id, agent_epoch = excluded.agent_epoch,
           last_seq = excluded.last_seq, seq_gaps = excluded.seq_gaps",
    )?
    .execute(params![device, receive_ms, boot, epoch, last_seq, gaps])?;
    Ok(())
}

/// Sessions loaded during one message, keyed by id, plus what they make stale.
struct Work<'a> {
    tx: &'a Transaction<'a>,
    device: String,
    /// Rows as this message left them (facts merged, stops not yet derived).
    rows: BTreeMap<i64, Sess>,
    /// The same rows as they were stored before this message (absent: new rows).
    stored: HashMap<i64, Sess>,
    touched: BTreeSet<i64>,
    boots: BTreeSet<String>,
}

impl<'a> Work<'a> {
    fn new(tx: &'a Transaction<'a>, device: &str) -> Work<'a> {
        Work {
            tx,
            device: device.to_owned(),
            rows: BTreeMap::new(),
            stored: HashMap::new(),
            touched: BTreeSet::new(),
            boots: BTreeSet::new(),
        }
    }

    fn load(&mut self, id: i64) -> Result<bool, StoreError> {
        if self.rows.contains_key(&id) {
            return Ok(true);
        }
        match load_session(self.tx, &self.device, id)? {
            Some(s) => {
                self.stored.insert(id, s.clone());
                self.rows.insert(id, s);
                Ok(true)
            }
            None => Ok(false),
        }
    }

    /// The row of session `id`, created from this first evidence if unknown.
    fn touch(
        &mut self,
        id: SessionId,
        boot: &str,
        key: Key,
        wall: i64,
    ) -> Result<&mut Sess, StoreError> {
        let i = id.0 as i64;
        if !self.load(i)? {
            self.rows
                .insert(i, Sess::new(&self.device, id, boot, key, wall));
        }
        self.touched.insert(i);
        Ok(self.rows.get_mut(&i).expect("just loaded"))
    }

    /// Touched rows that are new or whose start or MAC changed: the superseded rule of the
    /// client's other sessions depends on them, and the database does not know them yet.
    fn moved(&self) -> BTreeSet<i64> {
        self.touched
            .iter()
            .copied()
            .filter(|id| {
                let now = &self.rows[id];
                self.stored
                    .get(id)
                    .is_none_or(|was| was.start_ms != now.start_ms || was.mac != now.mac)
            })
            .collect()
    }

    /// Start of the next session of the same client on the same device after `s` (by start,
    /// then id): the moved rows as they are now, every other row as stored.
    fn next_start(&self, s: &Sess, moved: &BTreeSet<i64>) -> Result<Option<i64>, StoreError> {
        let Some(mac) = &s.mac else { return Ok(None) };
        let in_memory = moved
            .iter()
            .map(|id| &self.rows[id])
            .filter(|o| o.mac.as_ref() == Some(mac) && (o.start_ms, o.id) > (s.start_ms, s.id))
            .map(|o| o.start_ms)
            .min();
        let mut st = self.tx.prepare_cached(
            "SELECT id, start_ms FROM sessions WHERE device_id = ?1 AND mac = ?2
             AND (start_ms, id) > (?3, ?4) ORDER BY start_ms, id",
        )?;
        let mut rows = st.query(params![s.device_id, mac, s.start_ms, s.id])?;
        let mut stored = None;
        while let Some(r) = rows.next()? {
            if !moved.contains(&r.get::<_, i64>(0)?) {
                stored = Some(r.get::<_, i64>(1)?);
                break;
            }
        }
        Ok(match (in_memory, stored) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        })
    }

    /// Widens the set to every row whose derived stop may have changed, recomputes the stops
    /// of all rows (`newest`: the device's newest boot) and writes what changed, closures
    /// (and MAC changes of open rows) first so the one-open-session index never sees two open
    /// sessions of a client.
    fn finish(mut self, newest: Option<&str>, boots: &Boots) -> Result<(), StoreError> {
        let moved = self.moved();
        let mut macs: BTreeSet<String> = BTreeSet::new();
        for id in &moved {
            macs.extend(self.rows[id].mac.clone());
            macs.extend(self.stored.get(id).and_then(|s| s.mac.clone()));
        }
        let mut more: Vec<i64> = Vec::new();
        for m in &macs {
            more.extend(live_ids_by_mac(self.tx, &self.device, m)?);
        }
        for b in &self.boots {
            more.extend(live_ids_by_boot(self.tx, &self.device, b)?);
        }
        for id in more {
            self.load(id)?;
        }
        let mut syncs: HashMap<String, Vec<SyncRec>> = HashMap::new();
        let mut derived: Vec<Sess> = Vec::with_capacity(self.rows.len());
        for s in self.rows.values() {
            let mut s = s.clone();
            if s.is_final() {
                s.missing = None;
                s.next_start_ms = None;
            } else {
                let reboot_at = if newest == Some(s.boot_id.as_str()) {
                    None
                } else {
                    boots.last_ms(&s.boot_id)
                };
                if !syncs.contains_key(&s.boot_id) {
                    let v = load_syncs(self.tx, &self.device, &s.boot_id)?;
                    syncs.insert(s.boot_id.clone(), v);
                }
                s.missing = syncs[&s.boot_id]
                    .iter()
                    .filter(|y| y.key > s.first && y.ids.binary_search(&s.id).is_err())
                    .map(|y| y.key)
                    .max();
                // Kept as stored unless this message moved the row or another row of its
                // client: every move reloads the client's live rows (`macs` above), so a
                // stored row's value is current otherwise (saves a query per update event).
                if moved.contains(&s.id) || s.mac.as_ref().is_some_and(|m| macs.contains(m)) {
                    s.next_start_ms = self.next_start(&s, &moved)?;
                }
                let cx = Context {
                    reboot_at,
                    missing: s.missing,
                    next_start_ms: s.next_start_ms,
                };
                let d = derive(&s, &cx);
                s.stop_ms = d.as_ref().map(|d| d.0);
                s.stop_reason = d.as_ref().map(|d| d.1.clone());
                s.stop_inferred = d.as_ref().is_some_and(|d| d.2);
            }
            if let Some((ms, r)) = &s.agent_stop {
                s.stop_ms = Some(*ms);
                s.stop_reason = Some(r.clone());
                s.stop_inferred = false;
            }
            derived.push(s);
        }
        // A row open before and after under another MAC leaves its old slot of the index
        // first: another row may take that slot in this write (found by the collector_merge
        // fuzz target: session 5 repeated with another MAC, so session 1, which it had
        // superseded, reopened under session 5's old MAC). NULL never conflicts there.
        for s in &derived {
            let was = self.stored.get(&s.id);
            if s.stop_ms.is_none() && was.is_some_and(|w| w.stop_ms.is_none() && w.mac != s.mac) {
                self.tx
                    .prepare_cached(
                        "UPDATE sessions SET mac = NULL WHERE device_id = ?1 AND id = ?2",
                    )?
                    .execute(params![self.device, s.id])?;
            }
        }
        let (closed, open): (Vec<&Sess>, Vec<&Sess>) =
            derived.iter().partition(|s| s.stop_ms.is_some());
        for s in closed.into_iter().chain(open) {
            s.write(self.tx, self.stored.get(&s.id))?;
        }
        Ok(())
    }
}

/// Merges one decoded events batch of a device, received at `receive_ms` (collector clock).
///
/// The caller has checked that the topic's device id matches `b.device_id`.
///
/// # Errors
/// SQLite errors.
pub fn apply_batch(tx: &Transaction, b: &Batch, receive_ms: i64) -> Result<(), StoreError> {
    let device = b.device_id.as_str();
    let boot = b.boot_id.to_string();

    let stamps: Vec<Option<Stamp>> = b.events.iter().map(|e| b.stamp_of(e)).collect();
    let newest_up = stamps
        .iter()
        .flatten()
        .map(|s| s.uptime_ms)
        .max()
        .unwrap_or(b.base_uptime_ms);
    let bad_times = stamps.iter().filter(|s| s.is_none()).count();
    if bad_times > 0 {
        count(tx, "events_bad_time", bad_times as i64)?;
    }
    let origin_cand = (!b.clock_synced).then(|| origin_candidate(receive_ms, newest_up));
    // Lower the boot's origin estimate (a running minimum) first, so the stored estimate is
    // what converts this batch's times; the sentinels leave first/last seen untouched.
    let mut boots = Boots::load(tx, device)?;
    let before = boots.newest();
    let clock = Clock {
        synced: b.clock_synced,
        origin_ms: boots.origin(&boot, origin_cand).unwrap_or(0),
    };
    let corrected = !b.clock_synced;
    let walls: Vec<i64> = stamps.iter().flatten().map(|s| clock.wall(*s)).collect();
    let base_wall = clock.wall(b.base());
    let lo = walls.iter().copied().min().unwrap_or(base_wall);
    let hi = walls.iter().copied().max().unwrap_or(base_wall);
    boots.observe(tx, device, &boot, lo, hi, origin_cand)?;

    let mut w = Work::new(tx, device);
    let mut seqs: Vec<i64> = Vec::new();
    let mut last_up: Option<i64> = None;
    for (ev, st) in b.events.iter().zip(&stamps) {
        let Some(st) = *st else { continue };
        let key: Key = (clamp_i64(st.uptime_ms), clamp_i64(ev.seq()));
        let wall = clock.wall(st);
        if !matches!(ev, Event::Unknown { .. }) {
            seqs.push(key.1);
            last_up = Some(last_up.map_or(key.0, |u: i64| u.max(key.0)));
        }
        match ev {
            Event::Start(e) => {
                let s = w.touch(e.id, &boot, key, wall)?;
                s.seen(key, wall, corrected);
                s.seen_open(key);
                let start = wall.saturating_sub(clamp_i64(e.age_ms));
                s.start_ms = if s.has_start {
                    s.start_ms.min(start)
                } else {
                    start
                };
                s.has_start = true;
                s.mac = Some(e.mac.to_string());
                s.ssid = Some(String::from_utf8_lossy(&e.ssid).into_owned());
                s.ifname = Some(e.ifname.clone());
                s.bssid = Some(e.bssid.to_string());
                s.freq_mhz = Some(i64::from(e.freq_mhz));
                s.signal_at(key, e.signal_dbm);
            }
            Event::Update(e) => {
                let s = w.touch(e.id, &boot, key, wall)?;
                s.seen(key, wall, corrected);
                s.seen_open(key);
                s.counters(e.rx_bytes, e.tx_bytes, e.rx_packets, e.tx_packets);
                s.signal_at(key, e.signal_avg_dbm);
                s.activity_at(wall, e.inactive_ms);
            }
            Event::Stop(e) => {
                let s = w.touch(e.id, &boot, key, wall)?;
                s.seen(key, wall, corrected);
                s.counters(e.rx_bytes, e.tx_bytes, e.rx_packets, e.tx_packets);
                s.signal_at(key, e.signal_avg_dbm);
                s.activity_at(wall, e.inactive_ms);
                let stop = (
                    wall.saturating_sub(clamp_i64(e.age_ms)),
                    e.reason.as_str().to_owned(),
                );
                s.agent_stop = Some(match s.agent_stop.take() {
                    Some(old) => old.min(stop),
                    None => stop,
                });
            }
            Event::Sync(e) => {
                tx.prepare_cached(
                    "INSERT OR IGNORE INTO syncs (device_id, boot_id, up, seq, wall_ms, ids)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                )?
                .execute(params![
                    device,
                    boot,
                    key.0,
                    key.1,
                    wall,
                    encode_ids(&e.ids)
                ])?;
                for id in &e.ids {
                    let s = w.touch(*id, &boot, key, wall)?;
                    s.seen(key, wall, corrected);
                    s.seen_open(key);
                }
                w.boots.insert(boot.clone());
            }
            Event::Unknown { .. } => count(tx, "events_unknown_kind", 1)?,
        }
    }
    if let Some(up) = last_up {
        tx.prepare_cached(
            "INSERT INTO epochs (device_id, boot_id, epoch, last_up) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (device_id, boot_id, epoch) DO UPDATE SET last_up = max(last_up, excluded.last_up)",
        )?
        .execute(params![device, boot, b.agent_epoch, up])?;
        record_seqs(tx, device, &boot, b.agent_epoch, &mut seqs)?;
    }
    let newest = stale_boots(&boots, &boot, before, &mut w.boots);
    w.finish(newest.as_deref(), &boots)?;
    refresh_device(tx, device, newest.as_deref(), receive_ms)
}

/// Adds to `boots` the boots whose sessions' reboot rule may have changed: when the newest
/// boot changed, both the previous one (its sessions now end at a reboot) and the new one
/// (its sessions may have been closed by that rule while another boot looked newer: an old
/// boot's late event can move that boot's first-seen time back); and `boot` itself when it
/// is not the newest. Returns the newest boot (of `stored`, as this message left it).
fn stale_boots(
    stored: &Boots,
    boot: &str,
    before: Option<String>,
    boots: &mut BTreeSet<String>,
) -> Option<String> {
    let after = stored.newest();
    if after != before {
        boots.extend(before);
        boots.extend(after.clone());
    }
    if after.as_deref() != Some(boot) {
        boots.insert(boot.to_owned());
    }
    after
}

/// Merges a status message: device metadata and counters (newest status wins), and its boot.
///
/// # Errors
/// SQLite errors.
pub fn apply_status(tx: &Transaction, s: &Status, receive_ms: i64) -> Result<(), StoreError> {
    let device = s.device_id.as_str();
    let boot = s.boot_id.to_string();
    let origin_cand = (!s.clock_synced).then(|| origin_candidate(receive_ms, s.uptime_ms));
    let stamp = Stamp {
        wall_ms: s.wall_ms,
        uptime_ms: s.uptime_ms,
    };
    let mut boots = Boots::load(tx, device)?;
    let before = boots.newest();
    let wall = Clock {
        synced: s.clock_synced,
        origin_ms: boots.origin(&boot, origin_cand).unwrap_or(0),
    }
    .wall(stamp);
    boots.observe(tx, device, &boot, wall, wall, origin_cand)?;

    let mut w = Work::new(tx, device);
    let newest = stale_boots(&boots, &boot, before, &mut w.boots);
    w.finish(newest.as_deref(), &boots)?;
    // Creates the device row if this is its first message; the status columns come after.
    refresh_device(tx, device, newest.as_deref(), receive_ms)?;
    let (cur_boot, cur_up): (Option<String>, Option<i64>) = tx
        .prepare_cached("SELECT status_boot, status_uptime_ms FROM devices WHERE id = ?1")?
        .query_row([device], |r| Ok((r.get(0)?, r.get(1)?)))?;
    let up = clamp_i64(s.uptime_ms);
    let wins = newest.as_deref() == Some(boot.as_str())
        && (cur_boot.as_deref() != Some(boot.as_str()) || cur_up.is_none_or(|c| up >= c));
    if wins {
        tx.prepare_cached(
            "UPDATE devices SET name = :name, organization = :org, grp = :grp, online = :online,
             agent_version = :ver, status_boot = :boot, status_uptime_ms = :up,
             published = :published, dropped = :dropped, reconnects = :reconnects,
             outbox_depth = :outbox, failed_joins = :failed, tracker_overflow = :overflow
             WHERE id = :id",
        )?
        .execute(named_params! {
            ":id": device,
            ":name": s.name,
            ":org": s.organization,
            ":grp": s.group,
            ":online": s.online,
            ":ver": s.agent_version,
            ":boot": boot,
            ":up": up,
            ":published": clamp_i64(s.published),
            ":dropped": clamp_i64(s.dropped),
            ":reconnects": clamp_i64(s.reconnects),
            ":outbox": s.outbox_depth,
            ":failed": clamp_i64(s.failed_joins),
            ":overflow": clamp_i64(s.tracker_overflow),
        })?;
    }
    Ok(())
}

/// Marks every open session of `device` as expired at `at_ms` (the device's last-seen time):
/// a provisional stop, undone if the agent later reports a session open after `at_ms`.
/// Returns how many sessions it closed.
///
/// # Errors
/// SQLite errors.
pub fn expire_device(tx: &Transaction, device: &str, at_ms: i64) -> Result<usize, StoreError> {
    close_open(tx, device, at_ms, |s| &mut s.expired_ms)
}

/// Closes every open session of `device` at `at_ms` with reason `forced` (operator action).
/// Provisional like `expired`: undone if the agent later reports a session open after `at_ms`.
/// Returns how many sessions it closed.
///
/// # Errors
/// SQLite errors.
pub fn force_device(tx: &Transaction, device: &str, at_ms: i64) -> Result<usize, StoreError> {
    close_open(tx, device, at_ms, |s| &mut s.forced_ms)
}

/// Sets the fact chosen by `fact` to (at least) `at_ms` on every open session of `device` and
/// recomputes their stops; returns how many were open.
fn close_open(
    tx: &Transaction,
    device: &str,
    at_ms: i64,
    fact: fn(&mut Sess) -> &mut Option<i64>,
) -> Result<usize, StoreError> {
    let ids: Vec<i64> = {
        let mut st =
            tx.prepare_cached("SELECT id FROM sessions WHERE device_id = ?1 AND stop_ms IS NULL")?;
        let rows = st.query_map([device], |r| r.get(0))?;
        rows.collect::<Result<_, _>>()?
    };
    let mut w = Work::new(tx, device);
    for id in &ids {
        w.load(*id)?;
        let f = fact(w.rows.get_mut(id).expect("loaded"));
        *f = Some(f.map_or(at_ms, |e| e.max(at_ms)));
        w.touched.insert(*id);
    }
    let boots = Boots::load(tx, device)?;
    w.finish(boots.newest().as_deref(), &boots)?;
    Ok(ids.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sess() -> Sess {
        let mut s = Sess::new("d", SessionId(1), "b", (100, 1), 1_000);
        s.open = Some((100, 1));
        s
    }

    #[test]
    fn agent_stop_beats_inferred() {
        let mut s = sess();
        s.agent_stop = Some((1_500, "left".into()));
        let cx = Context {
            reboot_at: Some(1_200),
            ..Context::default()
        };
        assert_eq!(derive(&s, &cx), Some((1_500, "left".into(), false)));
    }

    #[test]
    fn missing_is_undone_by_later_open_evidence() {
        let mut s = sess();
        let cx = Context {
            missing: Some((200, 5)),
            ..Context::default()
        };
        assert_eq!(derive(&s, &cx).map(|d| d.1), Some("missing".into()));
        s.seen_open((300, 7));
        assert_eq!(derive(&s, &cx), None);
    }

    #[test]
    fn earliest_inferred_stop_wins() {
        let mut s = sess();
        s.last_seen_ms = 5_000;
        let cx = Context {
            reboot_at: Some(6_000),
            next_start_ms: Some(4_000),
            ..Context::default()
        };
        assert_eq!(derive(&s, &cx), Some((4_000, "superseded".into(), true)));
    }

    #[test]
    fn expired_is_provisional() {
        let mut s = sess();
        s.expired_ms = Some(2_000);
        assert_eq!(derive(&s, &Context::default()).map(|d| d.0), Some(2_000));
        s.last_seen_ms = 2_500;
        assert_eq!(derive(&s, &Context::default()), None);
    }

    #[test]
    fn forced_is_provisional_and_loses_to_an_earlier_inferred_stop() {
        let mut s = sess();
        s.forced_ms = Some(9_000);
        assert_eq!(
            derive(&s, &Context::default()),
            Some((9_000, "forced".into(), true))
        );
        s.expired_ms = Some(3_000);
        assert_eq!(
            derive(&s, &Context::default()).map(|d| d.1),
            Some("expired".into())
        );
        s.last_seen_ms = 9_500;
        assert_eq!(derive(&s, &Context::default()), None);
    }

    #[test]
    fn topics_parse() {
        assert_eq!(
            parse_topic("p/v1", "p/v1/ap1/events"),
            Some(("ap1", TopicKind::Events))
        );
        assert_eq!(
            parse_topic("p/v1", "p/v1/ap1/status"),
            Some(("ap1", TopicKind::Status))
        );
        assert_eq!(parse_topic("p/v1", "p/v1/ap1/other"), None);
        assert_eq!(parse_topic("p/v1", "p/v1//events"), None);
        assert_eq!(parse_topic("p/v1", "q/ap1/events"), None);
    }
}
