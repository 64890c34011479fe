//! The acknowledged outbox: numbers events, batches them, and holds each one until the broker's
//! PUBACK for the publish that carried it. Pure: no I/O, no clock (times are passed in).
//!
//! Life of an event: [`Outbox::push`] gives it `(agent_epoch, seq)` and queues it as pending;
//! [`Outbox::take_batch`] puts pending events into a [`Batch`] and marks them in flight under a
//! [`BatchId`]; the publisher reports the MQTT packet id of that publish with
//! [`Outbox::sent`], and [`Outbox::acked`] releases the events when the broker's PUBACK for that
//! packet id arrives. [`Outbox::disconnected`] turns everything in flight back into pending, so
//! it is re-sent on the next connection (the MQTT session is clean: the client library keeps
//! nothing across connections, the outbox does).
//!
//! The spool ([`Outbox::to_spool`], [`Outbox::restore`]) is the unacknowledged outbox written
//! at shutdown: events keep their original epoch, seq and times, and are re-published as
//! batches of their original epoch and boot id.

use std::collections::VecDeque;

use wifisess_wire::{decode_batch, encode_batch, Batch, BootId, Event, Stamp};

use crate::session::Timed;

/// Tuning of the outbox, from the configuration.
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

impl Default for OutboxConfig {
    fn default() -> Self {
        OutboxConfig {
            capacity: 1024,
            batch_ms: 100,
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
    event: Event,
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

/// Why a spool file could not be restored (the caller renames it aside and goes on).
#[derive(Debug, thiserror::Error)]
pub enum SpoolError {
    /// The file does not start with the spool magic.
    #[error("not a wifisess spool (bad magic)")]
    BadMagic,
    /// The file ends before the end marker.
    #[error("spool truncated at byte {0}")]
    Truncated(usize),
    /// A record is not a valid wire batch.
    #[error("spool record at byte {at}: {err}")]
    Record {
        /// Byte offset of the record.
        at: usize,
        /// The decoder's complaint.
        err: wifisess_wire::DecodeError,
    },
}

/// The first bytes of a spool file (format version 1).
pub const SPOOL_MAGIC: &[u8; 8] = b"WSSPOOL1";

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
    dropped: u64,
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
            dropped: 0,
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
        self.dropped
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
        let mut event = t.event;
        event.set_seq(seq);
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

    /// Drops one event: the oldest pending update, else the oldest update in flight, else the
    /// oldest pending event, else the oldest. Starts, stops and syncs go only when no update
    /// is left. Every drop is counted.
    fn drop_one(&mut self) {
        let e = &self.entries;
        let victim = e
            .iter()
            .position(|x| x.event.is_droppable() && x.batch.is_none())
            .or_else(|| e.iter().position(|x| x.event.is_droppable()))
            .or_else(|| e.iter().position(|x| x.batch.is_none()))
            .unwrap_or(0);
        if self.entries.remove(victim).is_some() {
            self.dropped += 1;
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
        let mut b = Batch {
            device_id: device_id.into(),
            boot_id: self.boot_of(first.epoch),
            agent_epoch: first.epoch,
            base_wall_ms: 0,
            base_uptime_ms: 0,
            clock_synced: first.synced,
            events: Vec::with_capacity(idx.len()),
        };
        b.set_base(first.at);
        for &i in idx {
            let e = &self.entries[i];
            // Offsets between two u64 millisecond clocks of one device always fit an i64
            // unless a clock is absurd; such an event goes out with the base time.
            if !b.push(e.at, e.event.clone()) {
                b.push(first.at, e.event.clone());
            }
        }
        encode_batch(&b)
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

    /// The unacknowledged outbox as a spool file: [`SPOOL_MAGIC`], then records of a 4-byte
    /// big-endian length and a wire-v1 CBOR [`Batch`] (one per run of events with the same
    /// epoch and clock state, at most `max_batch_events` each), then a zero length.
    pub fn to_spool(&self, device_id: &str) -> Vec<u8> {
        let mut out = SPOOL_MAGIC.to_vec();
        let mut i = 0;
        while i < self.entries.len() {
            let (epoch, synced) = (self.entries[i].epoch, self.entries[i].synced);
            let mut j = i + 1;
            while j < self.entries.len()
                && j - i < self.cfg.max_batch_events
                && self.entries[j].epoch == epoch
                && self.entries[j].synced == synced
            {
                j += 1;
            }
            let idx: Vec<usize> = (i..j).collect();
            let rec = self.encode(device_id, &idx);
            out.extend_from_slice(&(rec.len() as u32).to_be_bytes());
            out.extend_from_slice(&rec);
            i = j;
        }
        out.extend_from_slice(&0u32.to_be_bytes());
        out
    }

    /// Puts the events of a spool back in front of this run's events, pending, with their
    /// original epoch, seq and time. Returns how many were restored. If the spool holds more
    /// than the capacity, the overflow policy drops (and counts) as usual.
    ///
    /// # Errors
    /// The spool is not valid; nothing is restored then.
    pub fn restore(&mut self, spool: &[u8]) -> Result<usize, SpoolError> {
        let batches = parse_spool(spool)?;
        let mut restored = Vec::new();
        for b in &batches {
            if b.agent_epoch != self.epoch && !self.boots.iter().any(|(e, _)| *e == b.agent_epoch) {
                self.boots.push((b.agent_epoch, b.boot_id));
            }
            for ev in &b.events {
                if matches!(ev, Event::Unknown { .. }) {
                    continue;
                }
                let at = b.stamp_of(ev).unwrap_or(b.base());
                restored.push(Entry {
                    epoch: b.agent_epoch,
                    seq: ev.seq(),
                    at,
                    synced: b.clock_synced,
                    queued_ms: None,
                    batch: None,
                    event: ev.clone(),
                });
            }
        }
        let n = restored.len();
        let current: Vec<Entry> = self.entries.drain(..).collect();
        for e in restored.into_iter().chain(current) {
            self.insert(e);
        }
        Ok(n)
    }
}

/// Splits a spool file into its batches.
fn parse_spool(spool: &[u8]) -> Result<Vec<Batch>, SpoolError> {
    let rest = spool
        .strip_prefix(SPOOL_MAGIC.as_slice())
        .ok_or(SpoolError::BadMagic)?;
    let mut pos = SPOOL_MAGIC.len();
    let mut rest = rest;
    let mut out = Vec::new();
    loop {
        let (len, tail) = rest
            .split_first_chunk::<4>()
            .ok_or(SpoolError::Truncated(pos))?;
        let len = u32::from_be_bytes(*len) as usize;
        if len == 0 {
            return Ok(out);
        }
        if tail.len() < len {
            return Err(SpoolError::Truncated(pos));
        }
        let b = decode_batch(&tail[..len]).map_err(|err| SpoolError::Record { at: pos, err })?;
        out.push(b);
        pos += 4 + len;
        rest = &tail[len..];
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use wifisess_wire::{MacAddr, SessionId, Start, Stop, StopReason, Sync, Update};

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

    fn cfg(capacity: usize) -> OutboxConfig {
        OutboxConfig {
            capacity,
            ..OutboxConfig::default()
        }
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
    }

    #[test]
    fn batches_respect_the_event_and_byte_limits() {
        let mut o = Outbox::new(
            OutboxConfig {
                capacity: 100,
                max_batch_events: 10,
                max_batch_bytes: 300,
                ..OutboxConfig::default()
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
        let spool = o.to_spool("dev");

        let mut n = Outbox::new(cfg(16), 42, BootId([1; 16]));
        n.push(stop(1, 30), true, 0);
        assert_eq!(n.restore(&spool).unwrap(), 2);
        assert_eq!(n.keys().collect::<Vec<_>>(), [(41, 1), (41, 2), (42, 1)]);
        let b = n.take_batch("dev", 0, true).unwrap();
        let d = decode_batch(&b.payload).unwrap();
        assert_eq!((d.agent_epoch, d.boot_id, d.events.len()), (41, boot, 1));
        assert_eq!(d.stamp_of(&d.events[0]), Some(stamp(10)));
    }

    #[test]
    fn corrupt_spools_are_errors() {
        let mut o = Outbox::new(cfg(16), 1, BootId::default());
        assert!(matches!(o.restore(b"nonsense"), Err(SpoolError::BadMagic)));
        let mut s = SPOOL_MAGIC.to_vec();
        s.extend_from_slice(&[0, 0, 0, 5, 1, 2]);
        assert!(matches!(o.restore(&s), Err(SpoolError::Truncated(8))));
        let mut s = SPOOL_MAGIC.to_vec();
        s.extend_from_slice(&[0, 0, 0, 2, 0xff, 0xff, 0, 0, 0, 0]);
        assert!(matches!(
            o.restore(&s),
            Err(SpoolError::Record { at: 8, .. })
        ));
        assert_eq!(o.depth(), 0);
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
            /// counted as dropped; seqs are strictly increasing; the bound holds; an update is
            /// never held while a start/stop/sync was dropped before it... (checked as: at any
            /// drop of a non-update, no update was held).
            #[test]
            fn accounting_holds(ops in proptest::collection::vec(op(), 1..200), cap in 1usize..20) {
                let mut o = Outbox::new(OutboxConfig { capacity: cap, max_batch_events: 3, ..OutboxConfig::default() }, 5, BootId::default());
                let mut accepted = 0u64;
                let mut unsent: Vec<BatchId> = Vec::new();
                let mut next_pkid = 1u16;
                for op in ops {
                    match op {
                        Op::Push(k) => {
                            let had_update = o.entries.iter().any(|e| e.event.is_droppable());
                            let dropped = o.dropped();
                            let full = o.depth() >= cap;
                            let t = match k % 4 { 0 => start(k.into(), 0), 1 => stop(k.into(), 0), 2 => sync(0), _ => update(k.into(), 0) };
                            let before: Vec<_> = o.entries.iter().filter(|e| !e.event.is_droppable()).map(|e| e.seq).collect();
                            let seq = o.push(t, true, 0);
                            accepted += 1;
                            prop_assert_eq!(seq, accepted);
                            if full && had_update {
                                let after: Vec<_> = o.entries.iter().filter(|e| !e.event.is_droppable() && e.seq != seq).map(|e| e.seq).collect();
                                prop_assert_eq!(before, after, "a non-update was dropped while updates remained");
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
