//! The acknowledged outbox: numbers events, batches them, and holds each one until the broker's
//! PUBACK for the publish that carried it. Pure: no I/O, no clock (times are passed in).
//!
//! Life of an event: [`Outbox::push`] gives it `(agent_epoch, seq)` and queues it as pending;
//! [`Outbox::take_batch`] puts pending events into a [`Batch`](wifisess_wire::Batch) and marks
//! them in flight under a [`BatchId`]; the publisher reports the MQTT packet id of that publish
//! with [`Outbox::sent`], and [`Outbox::acked`] releases the events when the broker's PUBACK for
//! that packet id arrives. [`Outbox::disconnected`] turns everything in flight back into pending, so
//! it is re-sent on the next connection (the MQTT session is clean: the client library keeps
//! nothing across connections, the outbox does).
//!
//! Events are held as [`RawEvent`]s, encoded once when accepted; a batch is written around
//! them. The spool ([`Outbox::to_spool`], [`Outbox::restore`]) is the unacknowledged outbox
//! written at shutdown, one framed record per event holding its raw encoding, so restoring
//! needs no CBOR decoder: events keep their original epoch, seq and times, and are
//! re-published as batches of their original epoch and boot id.

use std::collections::VecDeque;

use wifisess_wire::{BatchHead, BatchWriter, BootId, Offset, RawEvent, Stamp};

use crate::session::Timed;

/// Tuning of the outbox: capacity and batch wait from the configuration (`outbox_capacity`,
/// `batch_ms`), the rest fixed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OutboxConfig {
    /// Most events held (pending plus in flight); beyond it the overflow policy drops.
    pub capacity: usize,
    /// How long the oldest pending event may wait for companions before a batch is due, ms.
    pub batch_ms: u64,
    /// Most events in one batch (also makes a batch due at once when reached).
    pub max_batch_events: usize,
    /// Largest encoded batch, bytes; a single event larger than this still goes alone.
    pub max_batch_bytes: usize,
    /// Most batches in flight (published, not yet acknowledged) at a time.
    pub max_in_flight: usize,
}

impl OutboxConfig {
    /// `capacity` events, batches due after `batch_ms`; at most 64 events and 8 KiB per batch,
    /// 8 batches in flight.
    pub fn new(capacity: usize, batch_ms: u64) -> Self {
        OutboxConfig {
            capacity,
            batch_ms,
            max_batch_events: 64,
            max_batch_bytes: 8 * 1024,
            max_in_flight: 8,
        }
    }
}

/// Identifies one batch the outbox handed out, until it is acknowledged or the link drops.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct BatchId(u32);

/// One numbered event waiting for its acknowledgement.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Entry {
    epoch: u32,
    seq: u64,
    at: Stamp,
    /// Whether the wall clock was synchronised when the event was accepted.
    synced: bool,
    /// When the outbox accepted it (caller's monotonic ms), for the `batch_ms` deadline;
    /// `None` for events due at once (re-sent after a disconnect, restored from a spool).
    queued_ms: Option<u64>,
    /// The batch carrying it, while in flight.
    batch: Option<BatchId>,
    event: RawEvent,
}

/// A batch handed out in one publish.
#[derive(Clone, Copy, Debug)]
struct InFlight {
    id: BatchId,
    /// The MQTT packet id, once the client library reported it.
    pkid: Option<u16>,
}

/// A batch ready to publish: its id (for [`Outbox::sent`]) and the encoded payload.
#[derive(Clone, Debug)]
pub struct Outgoing {
    /// Report the publish's packet id with this.
    pub id: BatchId,
    /// The CBOR batch.
    pub payload: Vec<u8>,
    /// Events in it.
    pub events: usize,
}

/// Why a spool file could not be restored, or not completely (the caller renames it aside
/// and goes on).
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum SpoolError {
    /// The file does not start with the spool magic.
    #[error("not a wifisess spool (bad magic)")]
    BadMagic,
    /// The file is a spool of the format older agents wrote (CBOR batches).
    #[error("a spool of an older agent version (format 1), not restored")]
    OldFormat,
    /// The file ends before the end marker.
    #[error("spool truncated at byte {0}")]
    Truncated(usize),
    /// A record's checksum or field count is wrong.
    #[error("spool record at byte {0} is corrupt")]
    Corrupt(usize),
}

/// What [`Outbox::restore`] did.
#[derive(Debug, PartialEq, Eq)]
pub struct Restored {
    /// Events put back into the outbox: every record before `error`.
    pub events: usize,
    /// Where the spool stopped being valid, if it did.
    pub error: Option<SpoolError>,
}

/// The wire kind of an update ([`wifisess_wire::Event::Update`]).
const UPDATE_KIND: u8 = 1;

/// The first bytes of a spool file (format version 2).
pub const SPOOL_MAGIC: &[u8; 8] = b"WSSPOOL2";

/// Bytes of a spool record before the event's raw encoding: epoch, boot id, seq, wall and
/// uptime ms, clock-synced flag, kind, field count.
const RECORD_HEAD: usize = 4 + 16 + 8 + 8 + 8 + 3;

/// FNV-1a, 32 bits: a spool record's checksum (catches corruption, not an adversary).
fn fnv1a(bytes: &[u8]) -> u32 {
    bytes.iter().fold(0x811c_9dc5, |h, &b| {
        (h ^ u32::from(b)).wrapping_mul(0x0100_0193)
    })
}

/// The outbox. See the module documentation.
#[derive(Debug)]
pub struct Outbox {
    cfg: OutboxConfig,
    epoch: u32,
    boot_id: BootId,
    /// Boot ids of earlier epochs restored from a spool.
    boots: Vec<(u32, BootId)>,
    next_seq: u64,
    entries: VecDeque<Entry>,
    in_flight: Vec<InFlight>,
    next_batch: u32,
    published: u64,
    /// Updates dropped by overflow.
    dropped_updates: u64,
    /// Starts, stops, syncs and failed joins dropped by overflow.
    dropped_starts_stops: u64,
    /// Events restored from spools.
    restored: u64,
}

impl Outbox {
    /// An empty outbox for the run `epoch` on the boot `boot_id`; `seq` starts at 1.
    pub fn new(cfg: OutboxConfig, epoch: u32, boot_id: BootId) -> Outbox {
        let cfg = OutboxConfig {
            capacity: cfg.capacity.max(1),
            max_batch_events: cfg
                .max_batch_events
                .clamp(1, wifisess_wire::limits::MAX_EVENTS_PER_BATCH),
            max_in_flight: cfg.max_in_flight.max(1),
            ..cfg
        };
        Outbox {
            cfg,
            epoch,
            boot_id,
            boots: Vec::new(),
            next_seq: 1,
            entries: VecDeque::with_capacity(cfg.capacity.min(4096)),
            in_flight: Vec::new(),
            next_batch: 0,
            published: 0,
            dropped_updates: 0,
            dropped_starts_stops: 0,
            restored: 0,
        }
    }

    /// This run's epoch.
    pub fn epoch(&self) -> u32 {
        self.epoch
    }

    /// Events held (pending and in flight).
    pub fn depth(&self) -> usize {
        self.entries.len()
    }

    /// Events acknowledged by the broker so far.
    pub fn published(&self) -> u64 {
        self.published
    }

    /// Events dropped by overflow so far.
    pub fn dropped(&self) -> u64 {
        self.dropped_updates + self.dropped_starts_stops
    }

    /// Of [`Outbox::dropped`]: interim updates.
    pub fn dropped_updates(&self) -> u64 {
        self.dropped_updates
    }

    /// Of [`Outbox::dropped`]: starts, stops, syncs and failed joins (everything but
    /// updates).
    pub fn dropped_starts_stops(&self) -> u64 {
        self.dropped_starts_stops
    }

    /// Events put back by [`Outbox::restore`] so far.
    pub fn restored(&self) -> u64 {
        self.restored
    }

    /// Batches published and not yet acknowledged.
    pub fn in_flight(&self) -> usize {
        self.in_flight.len()
    }

    /// The `(epoch, seq)` of every event held, oldest first (for tests and diagnostics).
    pub fn keys(&self) -> impl Iterator<Item = (u32, u64)> + '_ {
        self.entries.iter().map(|e| (e.epoch, e.seq))
    }

    /// Accepts an event at monotonic time `now_ms`, numbers it and returns its `seq`. `synced`
    /// says whether the wall clock in `t.at` was synchronised. When full, first drops one
    /// event by the overflow policy (see [`Outbox::drop_one`]).
    pub fn push(&mut self, t: Timed, synced: bool, now_ms: u64) -> u64 {
        let seq = self.next_seq;
        self.next_seq += 1;
        let event = RawEvent::new(t.event);
        self.insert(Entry {
            epoch: self.epoch,
            seq,
            at: t.at,
            synced,
            queued_ms: Some(now_ms),
            batch: None,
            event,
        });
        seq
    }

    fn insert(&mut self, e: Entry) {
        while self.entries.len() >= self.cfg.capacity {
            self.drop_one();
        }
        self.entries.push_back(e);
    }

    /// Drops one event of the lowest [`RawEvent::drop_rank`] held: plain updates first, then
    /// failed joins and updates carrying a hostname, then starts, stops and syncs; within a
    /// rank the oldest pending one, else the oldest in flight. So session records go only
    /// when nothing else is left, and failed joins (one per association a client retries)
    /// can never crowd them out. Every drop is counted, by kind.
    fn drop_one(&mut self) {
        let e = &self.entries;
        let Some(rank) = e.iter().map(|x| x.event.drop_rank()).min() else {
            return;
        };
        let of_rank = |x: &Entry| x.event.drop_rank() == rank;
        let victim = e
            .iter()
            .position(|x| of_rank(x) && x.batch.is_none())
            .or_else(|| e.iter().position(of_rank))
            .unwrap_or(0);
        match self.entries.remove(victim) {
            Some(e) if e.event.parts().0 == UPDATE_KIND => self.dropped_updates += 1,
            Some(_) => self.dropped_starts_stops += 1,
            None => {}
        }
    }

    /// When the next batch is due (monotonic ms, a time in the past means now), or `None` if
    /// nothing is pending or the in-flight window is full.
    pub fn due_at(&self) -> Option<u64> {
        if self.in_flight.len() >= self.cfg.max_in_flight {
            return None;
        }
        let mut pending = self.entries.iter().filter(|e| e.batch.is_none());
        let first = pending.next()?;
        if 1 + pending.take(self.cfg.max_batch_events).count() >= self.cfg.max_batch_events {
            return Some(0);
        }
        Some(
            first
                .queued_ms
                .map_or(0, |q| q.saturating_add(self.cfg.batch_ms)),
        )
    }

    /// The next batch to publish, if one is due at `now_ms` (or at once with `force`, used
    /// right after a connect and at shutdown). The events go in flight under the returned id.
    /// A batch holds consecutive pending events of one epoch and one clock-sync state.
    pub fn take_batch(&mut self, device_id: &str, now_ms: u64, force: bool) -> Option<Outgoing> {
        let due = self.due_at()?;
        if !force && due > now_ms {
            return None;
        }
        let idx: Vec<usize> = {
            let mut it = self
                .entries
                .iter()
                .enumerate()
                .filter(|(_, e)| e.batch.is_none());
            let (i0, first) = it.next()?;
            let (epoch, synced) = (first.epoch, first.synced);
            core::iter::once(i0)
                .chain(
                    it.take_while(|(_, e)| e.epoch == epoch && e.synced == synced)
                        .map(|(i, _)| i),
                )
                .take(self.cfg.max_batch_events)
                .collect()
        };
        let mut n = idx.len();
        let (payload, n) = loop {
            let payload = self.encode(device_id, &idx[..n]);
            if payload.len() <= self.cfg.max_batch_bytes || n == 1 {
                break (payload, n);
            }
            n = n.div_ceil(2);
        };
        let id = BatchId(self.next_batch);
        self.next_batch = self.next_batch.wrapping_add(1);
        for &i in &idx[..n] {
            self.entries[i].batch = Some(id);
        }
        self.in_flight.push(InFlight { id, pkid: None });
        Some(Outgoing {
            id,
            payload,
            events: n,
        })
    }

    /// Encodes the entries at `idx` (same epoch, consecutive) as one wire batch.
    fn encode(&self, device_id: &str, idx: &[usize]) -> Vec<u8> {
        let first = &self.entries[idx[0]];
        let head = BatchHead {
            device_id,
            boot_id: self.boot_of(first.epoch),
            agent_epoch: first.epoch,
            base: first.at,
            clock_synced: first.synced,
        };
        let mut w = BatchWriter::new(&head, idx.len());
        for &i in idx {
            let e = &self.entries[i];
            // Offsets between two u64 millisecond clocks of one device always fit an i64
            // unless a clock is absurd; such an event goes out with the base time.
            let at = Offset::between(first.at, e.at).unwrap_or_default();
            w.push(e.seq, at, &e.event);
        }
        w.finish()
    }

    fn boot_of(&self, epoch: u32) -> BootId {
        if epoch == self.epoch {
            return self.boot_id;
        }
        self.boots
            .iter()
            .find(|(e, _)| *e == epoch)
            .map_or(self.boot_id, |(_, b)| *b)
    }

    /// The client library reported packet id `pkid` for the publish of batch `id`.
    pub fn sent(&mut self, id: BatchId, pkid: u16) {
        if let Some(f) = self.in_flight.iter_mut().find(|f| f.id == id) {
            f.pkid = Some(pkid);
        }
    }

    /// The broker acknowledged packet `pkid`: releases the events of the batch it carried and
    /// returns how many. Unknown packet ids (a status publish, an old connection) release
    /// nothing.
    pub fn acked(&mut self, pkid: u16) -> usize {
        let Some(pos) = self.in_flight.iter().position(|f| f.pkid == Some(pkid)) else {
            return 0;
        };
        let id = self.in_flight.swap_remove(pos).id;
        let before = self.entries.len();
        self.entries.retain(|e| e.batch != Some(id));
        let n = before - self.entries.len();
        self.published += n as u64;
        n
    }

    /// The connection dropped: nothing in flight will be acknowledged, so all of it becomes
    /// pending again (due at once) and is re-sent, in `seq` order, on the next connection.
    pub fn disconnected(&mut self) {
        self.in_flight.clear();
        for e in &mut self.entries {
            if e.batch.take().is_some() {
                e.queued_ms = None;
            }
        }
    }

    /// The unacknowledged outbox as a spool file: [`SPOOL_MAGIC`], then one record per event
    /// (a 4-byte big-endian length, the record, its 4-byte big-endian FNV-1a checksum), then
    /// a zero length. A record is the epoch (4 bytes), the boot id of that epoch (16), seq,
    /// wall ms, uptime ms (8 each, big-endian), the clock-synced flag, the kind and field
    /// count of the [`RawEvent`] (1 each) and its encoded fields.
    pub fn to_spool(&self) -> Vec<u8> {
        let mut out = SPOOL_MAGIC.to_vec();
        let mut rec = Vec::new();
        for e in &self.entries {
            let (kind, fields, rest) = e.event.parts();
            rec.clear();
            rec.extend_from_slice(&e.epoch.to_be_bytes());
            rec.extend_from_slice(&self.boot_of(e.epoch).0);
            for v in [e.seq, e.at.wall_ms, e.at.uptime_ms] {
                rec.extend_from_slice(&v.to_be_bytes());
            }
            rec.extend_from_slice(&[u8::from(e.synced), kind, fields]);
            rec.extend_from_slice(rest);
            out.extend_from_slice(&(rec.len() as u32).to_be_bytes());
            out.extend_from_slice(&rec);
            out.extend_from_slice(&fnv1a(&rec).to_be_bytes());
        }
        out.extend_from_slice(&0u32.to_be_bytes());
        out
    }

    /// Puts the events of a spool back in front of this run's events, pending, with their
    /// original epoch, seq and time. If the spool holds more than the capacity, the overflow
    /// policy drops (and counts) as usual. A spool that is invalid from some record on
    /// (truncated, corrupt) still gives back every event before that record, and says where
    /// it stopped in [`Restored::error`].
    pub fn restore(&mut self, spool: &[u8]) -> Restored {
        let mut restored = Vec::new();
        let error = self.parse_spool(spool, &mut restored).err();
        let events = restored.len();
        self.restored += events as u64;
        let current: Vec<Entry> = self.entries.drain(..).collect();
        for e in restored.into_iter().chain(current) {
            self.insert(e);
        }
        Restored { events, error }
    }

    /// Reads the records of `spool` into `out` until the end marker or the first bad record.
    fn parse_spool(&mut self, spool: &[u8], out: &mut Vec<Entry>) -> Result<(), SpoolError> {
        let Some(mut rest) = spool.strip_prefix(SPOOL_MAGIC.as_slice()) else {
            return Err(if spool.starts_with(b"WSSPOOL1") {
                SpoolError::OldFormat
            } else {
                SpoolError::BadMagic
            });
        };
        let mut pos = SPOOL_MAGIC.len();
        loop {
            let (len, tail) = rest
                .split_first_chunk::<4>()
                .ok_or(SpoolError::Truncated(pos))?;
            let len = u32::from_be_bytes(*len) as usize;
            if len == 0 {
                return Ok(());
            }
            if tail.len().saturating_sub(4) < len {
                return Err(SpoolError::Truncated(pos));
            }
            let (rec, tail) = tail.split_at(len);
            let (sum, tail) = tail.split_at(4);
            let e = (len >= RECORD_HEAD && sum == fnv1a(rec).to_be_bytes())
                .then(|| self.record(rec))
                .flatten()
                .ok_or(SpoolError::Corrupt(pos))?;
            out.push(e);
            pos += 4 + len + 4;
            rest = tail;
        }
    }

    /// One spool record (at least [`RECORD_HEAD`] bytes) as a pending entry; remembers the
    /// boot id of an earlier epoch.
    fn record(&mut self, rec: &[u8]) -> Option<Entry> {
        let (head, rest) = rec.split_at(RECORD_HEAD);
        let u64_at = |i: usize| u64::from_be_bytes(head[i..i + 8].try_into().unwrap_or_default());
        let epoch = u32::from_be_bytes(head[..4].try_into().ok()?);
        let boot = BootId(head[4..20].try_into().ok()?);
        let event = RawEvent::from_parts(head[45], head[46], rest.to_vec())?;
        if epoch != self.epoch && !self.boots.iter().any(|(e, _)| *e == epoch) {
            self.boots.push((epoch, boot));
        }
        Some(Entry {
            epoch,
            seq: u64_at(20),
            at: Stamp {
                wall_ms: u64_at(28),
                uptime_ms: u64_at(36),
            },
            synced: head[44] != 0,
            queued_ms: None,
            batch: None,
            event,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use wifisess_wire::{
        decode_batch, Event, FailedJoin, MacAddr, SessionId, Start, Stop, StopReason, Sync, Update,
    };

    fn stamp(ms: u64) -> Stamp {
        Stamp {
            wall_ms: 1_700_000_000_000 + ms,
            uptime_ms: ms,
        }
    }

    fn update(id: u64, ms: u64) -> Timed {
        Timed {
            at: stamp(ms),
            event: Event::Update(Update {
                seq: 0,
                at: Default::default(),
                id: SessionId(id),
                rx_bytes: 1,
                tx_bytes: 2,
                rx_packets: 3,
                tx_packets: 4,
                signal_avg_dbm: Some(-50),
                inactive_ms: None,
                hostname: None,
            }),
        }
    }

    fn start(id: u64, ms: u64) -> Timed {
        Timed {
            at: stamp(ms),
            event: Event::Start(Start {
                seq: 0,
                at: Default::default(),
                id: SessionId(id),
                mac: MacAddr([2, 0, 0, 0, 0, id as u8]),
                ifname: "phy0-ap0".into(),
                ssid: b"campus".to_vec(),
                bssid: MacAddr([4, 0, 0, 0, 0, 1]),
                freq_mhz: 5180,
                age_ms: 10,
                signal_dbm: Some(-40),
                hostname: None,
            }),
        }
    }

    fn stop(id: u64, ms: u64) -> Timed {
        Timed {
            at: stamp(ms),
            event: Event::Stop(Stop {
                seq: 0,
                at: Default::default(),
                id: SessionId(id),
                reason: StopReason::Left,
                age_ms: 0,
                rx_bytes: 1,
                tx_bytes: 1,
                rx_packets: 1,
                tx_packets: 1,
                signal_avg_dbm: None,
                inactive_ms: None,
            }),
        }
    }

    fn sync(ms: u64) -> Timed {
        Timed {
            at: stamp(ms),
            event: Event::Sync(Sync {
                seq: 0,
                at: Default::default(),
                ids: vec![SessionId(1)],
            }),
        }
    }

    fn failed_join(mac: u8, ms: u64) -> Timed {
        Timed {
            at: stamp(ms),
            event: Event::FailedJoin(FailedJoin {
                seq: 0,
                at: Default::default(),
                mac: MacAddr([2, 0, 0, 0, 0, mac]),
                ifname: "phy0-ap0".into(),
                ssid: b"campus".to_vec(),
                bssid: MacAddr([4, 0, 0, 0, 0, 1]),
                age_ms: 5000,
            }),
        }
    }

    /// The update sent when a client's hostname becomes known.
    fn named(id: u64, ms: u64) -> Timed {
        let mut t = update(id, ms);
        if let Event::Update(u) = &mut t.event {
            u.hostname = Some("laptop".into());
        }
        t
    }

    fn cfg(capacity: usize) -> OutboxConfig {
        OutboxConfig::new(capacity, 100)
    }

    fn seqs(o: &Outbox) -> Vec<u64> {
        o.keys().map(|(_, s)| s).collect()
    }

    #[test]
    fn numbers_from_one_and_batches_after_batch_ms() {
        let mut o = Outbox::new(cfg(16), 7, BootId::default());
        assert_eq!(o.push(start(1, 0), true, 1000), 1);
        assert_eq!(o.push(update(1, 5), true, 1010), 2);
        assert_eq!(o.due_at(), Some(1100));
        assert!(o.take_batch("dev", 1099, false).is_none());
        let b = o.take_batch("dev", 1100, false).unwrap();
        assert_eq!(b.events, 2);
        let d = decode_batch(&b.payload).unwrap();
        assert_eq!(d.agent_epoch, 7);
        assert_eq!(d.events.iter().map(Event::seq).collect::<Vec<_>>(), [1, 2]);
        assert_eq!(d.stamp_of(&d.events[1]), Some(stamp(5)));
        assert!(
            o.take_batch("dev", 5000, true).is_none(),
            "nothing left pending"
        );
    }

    #[test]
    fn releases_only_on_the_puback_of_the_carrying_publish() {
        let mut o = Outbox::new(cfg(16), 1, BootId::default());
        o.push(start(1, 0), true, 0);
        let a = o.take_batch("dev", 0, true).unwrap();
        o.push(start(2, 0), true, 0);
        let b = o.take_batch("dev", 0, true).unwrap();
        assert_eq!(o.acked(1), 0, "no pkid known yet");
        o.sent(a.id, 1);
        o.sent(b.id, 2);
        assert_eq!(o.acked(2), 1);
        assert_eq!(seqs(&o), [1]);
        assert_eq!(o.acked(2), 0, "a repeated ack releases nothing");
        assert_eq!(o.acked(1), 1);
        assert_eq!(o.depth(), 0);
        assert_eq!(o.published(), 2);
    }

    #[test]
    fn disconnect_resends_everything_unacknowledged_in_order() {
        let mut o = Outbox::new(cfg(16), 1, BootId::default());
        for i in 0..3 {
            o.push(start(i, i), true, 0);
        }
        let a = o.take_batch("dev", 0, true).unwrap();
        o.sent(a.id, 1);
        o.push(stop(0, 9), true, 50);
        o.disconnected();
        assert_eq!(
            o.acked(1),
            0,
            "an ack from the old connection releases nothing"
        );
        assert_eq!(o.due_at(), Some(0), "re-sent at once");
        let b = o.take_batch("dev", 1, false).unwrap();
        let d = decode_batch(&b.payload).unwrap();
        assert_eq!(
            d.events.iter().map(Event::seq).collect::<Vec<_>>(),
            [1, 2, 3, 4]
        );
    }

    #[test]
    fn overflow_drops_oldest_update_first_then_oldest() {
        let mut o = Outbox::new(cfg(4), 1, BootId::default());
        o.push(start(1, 0), true, 0); // 1
        o.push(update(1, 1), true, 0); // 2
        o.push(stop(1, 2), true, 0); // 3
        o.push(update(1, 3), true, 0); // 4
        o.push(sync(4), true, 0); // 5 drops update 2
        assert_eq!(seqs(&o), [1, 3, 4, 5]);
        o.push(start(2, 5), true, 0); // 6 drops update 4
        assert_eq!(seqs(&o), [1, 3, 5, 6]);
        o.push(stop(2, 6), true, 0); // 7: only starts/stops/syncs left: the oldest goes
        assert_eq!(seqs(&o), [3, 5, 6, 7]);
        assert_eq!(o.dropped(), 3);
        // Counted by kind for the status: two updates, then the start (seq 1).
        assert_eq!((o.dropped_updates(), o.dropped_starts_stops()), (2, 1));
    }

    /// Issue 20: failed joins are kept while plain updates can go, and go before any session
    /// record, so a client retrying a wrong passphrase cannot crowd sessions out. An update
    /// that carries a hostname is kept like a failed join, also when restored from a spool.
    #[test]
    fn overflow_drops_failed_joins_after_updates_and_before_session_records() {
        let mut o = Outbox::new(cfg(5), 1, BootId::default());
        o.push(start(1, 0), true, 0); // 1
        o.push(failed_join(7, 1), true, 0); // 2
        o.push(named(1, 2), true, 0); // 3
        o.push(update(1, 3), true, 0); // 4
        o.push(failed_join(7, 4), true, 0); // 5
        o.push(failed_join(7, 5), true, 0); // 6 drops the update 4
        assert_eq!(seqs(&o), [1, 2, 3, 5, 6]);
        o.push(stop(1, 6), true, 0); // 7 drops the oldest of rank 1: failed join 2
        o.push(failed_join(7, 7), true, 0); // 8 drops the named update 3
        assert_eq!(seqs(&o), [1, 5, 6, 7, 8]);
        for i in 0..3 {
            o.push(failed_join(7, 8 + i), true, 0); // 9, 10, 11: failed joins only
        }
        assert_eq!(seqs(&o), [1, 7, 9, 10, 11], "the start and the stop stay");
        // By kind: the update and the named update; four failed joins.
        assert_eq!((o.dropped_updates(), o.dropped_starts_stops()), (2, 4));
        // A spooled hostname update is restored with its rank.
        let mut p = Outbox::new(cfg(2), 2, BootId::default());
        p.push(named(1, 0), true, 0);
        p.push(update(1, 1), true, 0);
        let mut q = Outbox::new(cfg(2), 3, BootId::default());
        q.restore(&p.to_spool());
        q.push(start(2, 2), true, 0);
        assert_eq!(q.keys().collect::<Vec<_>>(), [(2, 1), (3, 1)]);
    }

    #[test]
    fn batches_respect_the_event_and_byte_limits() {
        let mut o = Outbox::new(
            OutboxConfig {
                max_batch_events: 10,
                max_batch_bytes: 300,
                ..cfg(100)
            },
            1,
            BootId::default(),
        );
        for i in 0..25 {
            o.push(start(i, i), true, 0);
        }
        assert_eq!(o.due_at(), Some(0), "a full batch is due at once");
        let mut total = 0;
        while let Some(b) = o.take_batch("dev", 0, false) {
            assert!(
                b.payload.len() <= 300 || b.events == 1,
                "{}",
                b.payload.len()
            );
            assert!(b.events <= 10);
            total += b.events;
            if o.in_flight() == 8 {
                break;
            }
        }
        assert!(total > 0);
    }

    #[test]
    fn batches_do_not_mix_epochs_or_clock_states() {
        let mut o = Outbox::new(cfg(16), 1, BootId::default());
        o.push(start(1, 0), false, 0);
        o.push(start(2, 0), true, 0);
        let a = o.take_batch("dev", 0, true).unwrap();
        assert_eq!(a.events, 1);
        assert!(!decode_batch(&a.payload).unwrap().clock_synced);
    }

    #[test]
    fn spool_round_trips_with_epoch_seq_and_time() {
        let boot = BootId([9; 16]);
        let mut o = Outbox::new(cfg(16), 41, boot);
        o.push(start(1, 10), true, 0);
        o.push(update(1, 20), false, 0);
        let a = o.take_batch("dev", 0, true).unwrap();
        o.sent(a.id, 3); // in flight, unacknowledged: still spooled
        let spool = o.to_spool();

        let mut n = Outbox::new(cfg(16), 42, BootId([1; 16]));
        n.push(stop(1, 30), true, 0);
        let r = n.restore(&spool);
        assert_eq!(
            r,
            Restored {
                events: 2,
                error: None
            }
        );
        assert_eq!(n.keys().collect::<Vec<_>>(), [(41, 1), (41, 2), (42, 1)]);
        assert_eq!(n.restored(), 2, "the status reports the restored events");
        let b = n.take_batch("dev", 0, true).unwrap();
        let d = decode_batch(&b.payload).unwrap();
        assert_eq!((d.agent_epoch, d.boot_id, d.events.len()), (41, boot, 1));
        assert_eq!(d.stamp_of(&d.events[0]), Some(stamp(10)));
        // The restored batch is the batch the first run would have published.
        assert_eq!(b.payload, a.payload);
        let b = n.take_batch("dev", 0, true).unwrap();
        let d = decode_batch(&b.payload).unwrap();
        assert!(!d.clock_synced);
        assert_eq!(d.events[0].seq(), 2);
        assert_eq!(d.stamp_of(&d.events[0]), Some(stamp(20)));
        // A restored outbox spools its restored events again, with their own boot id.
        let mut m = Outbox::new(cfg(16), 43, BootId([2; 16]));
        assert_eq!(m.restore(&n.to_spool()).events, 3);
        let d = decode_batch(&m.take_batch("dev", 0, true).unwrap().payload).unwrap();
        assert_eq!((d.agent_epoch, d.boot_id), (41, boot));
    }

    #[test]
    fn corrupt_spools_are_errors_that_keep_the_records_before_them() {
        let mut o = Outbox::new(cfg(16), 1, BootId::default());
        let err = |o: &mut Outbox, s: &[u8]| o.restore(s).error;
        assert_eq!(err(&mut o, b"nonsense"), Some(SpoolError::BadMagic));
        assert_eq!(
            err(&mut o, b"WSSPOOL1\0\0\0\0"),
            Some(SpoolError::OldFormat)
        );
        assert_eq!(err(&mut o, SPOOL_MAGIC), Some(SpoolError::Truncated(8)));
        let mut s = SPOOL_MAGIC.to_vec();
        s.extend_from_slice(&[0, 0, 0, 5, 1, 2]);
        assert_eq!(err(&mut o, &s), Some(SpoolError::Truncated(8)));
        assert_eq!(o.depth(), 0);

        let mut full = Outbox::new(cfg(16), 7, BootId::default());
        full.push(start(1, 0), true, 0);
        full.push(stop(1, 5), true, 0);
        let spool = full.to_spool();
        let second = 8 + 4 + u32::from_be_bytes(spool[8..12].try_into().unwrap()) as usize + 4;
        // A flipped bit in the second record: the first is restored, the error names the second.
        let mut bad = spool.clone();
        bad[second + 30] ^= 1;
        let r = o.restore(&bad);
        assert_eq!((r.events, r.error), (1, Some(SpoolError::Corrupt(second))));
        assert_eq!(o.keys().collect::<Vec<_>>(), [(7, 1)]);
        // Cut anywhere: never a panic, the whole records before the cut are kept.
        for cut in 0..spool.len() {
            let mut o = Outbox::new(cfg(16), 1, BootId::default());
            let r = o.restore(&spool[..cut]);
            assert!(r.error.is_some(), "cut at {cut}");
            let whole = usize::from(cut >= second) + usize::from(cut >= spool.len() - 4);
            assert_eq!(r.events, whole, "cut at {cut}");
        }
        // A record too short to hold its header, with a valid checksum, is corrupt too.
        let mut s = SPOOL_MAGIC.to_vec();
        s.extend_from_slice(&[0, 0, 0, 1, 0xff]);
        s.extend_from_slice(&fnv1a(&[0xff]).to_be_bytes());
        s.extend_from_slice(&[0; 4]);
        assert_eq!(err(&mut o, &s), Some(SpoolError::Corrupt(8)));
    }

    mod prop {
        use super::*;
        use proptest::prelude::*;

        #[derive(Clone, Debug)]
        enum Op {
            Push(u8),
            Take,
            Send,
            Ack(u16),
            Drop,
        }

        fn op() -> impl Strategy<Value = Op> {
            prop_oneof![
                4 => any::<u8>().prop_map(Op::Push),
                2 => Just(Op::Take),
                2 => Just(Op::Send),
                2 => (0u16..12).prop_map(Op::Ack),
                1 => Just(Op::Drop),
            ]
        }

        proptest! {
            /// Every accepted event is either still held, acknowledged (exactly once), or
            /// counted as dropped; seqs are strictly increasing; the bound holds; an overflow
            /// drops an event of the lowest drop rank held (plain updates, then failed joins
            /// and hostname updates, then session records).
            #[test]
            fn accounting_holds(ops in proptest::collection::vec(op(), 1..200), cap in 1usize..20) {
                let mut o = Outbox::new(OutboxConfig { capacity: cap, max_batch_events: 3, ..cfg(cap) }, 5, BootId::default());
                let mut accepted = 0u64;
                let mut unsent: Vec<BatchId> = Vec::new();
                let mut next_pkid = 1u16;
                for op in ops {
                    match op {
                        Op::Push(k) => {
                            let dropped = o.dropped();
                            let full = o.depth() >= cap;
                            let t = match k % 6 {
                                0 => start(k.into(), 0),
                                1 => stop(k.into(), 0),
                                2 => sync(0),
                                3 => failed_join(k, 0),
                                4 => named(k.into(), 0),
                                _ => update(k.into(), 0),
                            };
                            let lowest = o.entries.iter().map(|e| e.event.drop_rank()).min();
                            let before: Vec<(u64, u8)> = o.entries.iter().map(|e| (e.seq, e.event.drop_rank())).collect();
                            let seq = o.push(t, true, 0);
                            accepted += 1;
                            prop_assert_eq!(seq, accepted);
                            if full {
                                // The one dropped is of the lowest rank held.
                                let gone: Vec<_> = before.iter().filter(|(s, _)| !o.keys().any(|k| k.1 == *s)).collect();
                                prop_assert_eq!(gone.len(), 1);
                                prop_assert_eq!(Some(gone[0].1), lowest, "dropped {:?} of {:?}", gone, before);
                            }
                            prop_assert_eq!(o.dropped(), dropped + u64::from(full));
                        }
                        Op::Take => if let Some(b) = o.take_batch("d", 0, true) { unsent.push(b.id) },
                        Op::Send => if !unsent.is_empty() { let id = unsent.remove(0); o.sent(id, next_pkid); next_pkid = next_pkid % 10 + 1; },
                        Op::Ack(p) => { o.acked(p); },
                        Op::Drop => { o.disconnected(); unsent.clear(); },
                    }
                    prop_assert!(o.depth() <= cap);
                    prop_assert_eq!(accepted, o.depth() as u64 + o.published() + o.dropped());
                    let s = seqs(&o);
                    prop_assert!(s.windows(2).all(|w| w[0] < w[1]));
                }
            }
        }
    }
}
