//! Events encoded once and batched as bytes: what an agent's outbox holds and spools, so it
//! never needs the (much larger) decoder to put a spooled event back on the wire.
//!
//! An event is `[kind, {0: seq, 1: at, 2: …}]`. Only `seq` (given when the outbox accepts the
//! event) and `at` (relative to the base of the batch that carries it) change after the event
//! is made, so a [`RawEvent`] keeps the kind and the encoded map entries from key 2 on, and
//! [`BatchWriter`] writes the rest around them: the payload is byte for byte what
//! [`encode_batch`](crate::encode_batch) writes for the same batch.

use alloc::vec::Vec;

use minicbor::Encoder;

use crate::message::Event;
use crate::types::{BootId, Offset, Stamp};

/// An event encoded without its `seq` and `at` (see the module documentation).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RawEvent {
    kind: u8,
    fields: u8,
    /// [`Event::drop_rank`], kept because the outbox asks on every overflow.
    rank: u8,
    rest: Vec<u8>,
}

impl RawEvent {
    /// Most map entries after `seq` and `at`: the whole map header stays one byte.
    pub const MAX_FIELDS: u8 = 21;

    /// Encodes `e` (its `seq` and `at` are ignored). An [`Event::Unknown`] keeps only its
    /// kind (an agent never makes one).
    pub fn new(mut e: Event) -> RawEvent {
        e.set_seq(0);
        e.set_offset(Offset::default());
        let kind = e.kind().min(255) as u8;
        let rank = e.drop_rank();
        if matches!(e, Event::Unknown { .. }) {
            return RawEvent {
                kind,
                fields: 0,
                rank,
                rest: Vec::new(),
            };
        }
        let bytes = minicbor::to_vec(&e).expect("encoding into a Vec cannot fail");
        // `82 kind A(n) 00 00 01 00`: a 2-array, the kind (0..=4: one byte), a map header
        // (at most 12 entries: one byte), `0: 0` and `1: 0`.
        debug_assert_eq!(bytes[..2], [0x82, kind]);
        debug_assert_eq!(bytes[3..7], [0, 0, 1, 0]);
        RawEvent {
            kind,
            fields: (bytes[2] & 0x1f) - 2,
            rank,
            rest: bytes[7..].to_vec(),
        }
    }

    /// Puts an event back together from its [`RawEvent::parts`] (a spool). `None` if there are
    /// more than [`RawEvent::MAX_FIELDS`] fields; `rest` is trusted to hold that many encoded
    /// map entries (a spool checks it with a checksum).
    pub fn from_parts(kind: u8, fields: u8, rest: Vec<u8>) -> Option<RawEvent> {
        let rank = match u32::from(kind) {
            // An update carrying a hostname (key 9) is kept like a failed join.
            Event::UPDATE if !has_key(&rest, fields, 9) => 0,
            Event::UPDATE | Event::FAILED_JOIN => 1,
            _ => 2,
        };
        (fields <= Self::MAX_FIELDS).then_some(RawEvent {
            kind,
            fields,
            rank,
            rest,
        })
    }

    /// The kind, the number of map entries after `seq` and `at`, and their encoding.
    pub fn parts(&self) -> (u8, u8, &[u8]) {
        (self.kind, self.fields, &self.rest)
    }

    /// The event's [`Event::drop_rank`]: which events an overflowing outbox drops first.
    pub fn drop_rank(&self) -> u8 {
        self.rank
    }

    /// Plain interim updates may be dropped first (as [`Event::is_droppable`]).
    pub fn is_droppable(&self) -> bool {
        self.rank == 0
    }
}

/// Whether the first `fields` encoded map entries of `rest` have the key `key` (< 24). Walks
/// entries whose keys are small unsigned integers and whose values are integers, simple
/// values or strings, as in every event body after `at`; anything else ends the walk (false).
fn has_key(mut rest: &[u8], fields: u8, key: u8) -> bool {
    for _ in 0..fields {
        let Some((&k, tail)) = rest.split_first() else {
            return false;
        };
        if k == key {
            return true;
        }
        let Some(n) = item_len(tail) else {
            return false;
        };
        rest = &tail[n..];
    }
    false
}

/// The length of the CBOR integer, simple value or definite string at the start of `b`.
fn item_len(b: &[u8]) -> Option<usize> {
    let &h = b.first()?;
    let head = match h & 0x1f {
        0..=23 => 1,
        24 => 2,
        25 => 3,
        26 => 5,
        27 => 9,
        _ => return None,
    };
    let mut arg = [0u8; 8];
    let bytes = b.get(1..head)?;
    arg[8 - bytes.len()..].copy_from_slice(bytes);
    let arg = if head == 1 {
        u64::from(h & 0x1f)
    } else {
        u64::from_be_bytes(arg)
    };
    let len = match h >> 5 {
        0 | 1 | 7 => head,
        2 | 3 => head.checked_add(usize::try_from(arg).ok()?)?,
        _ => return None,
    };
    (len <= b.len()).then_some(len)
}

/// The fields of a batch other than its events.
#[derive(Clone, Copy, Debug)]
pub struct BatchHead<'a> {
    /// The publishing device.
    pub device_id: &'a str,
    /// Kernel boot id of the run that made the events.
    pub boot_id: BootId,
    /// The run that numbered the events.
    pub agent_epoch: u32,
    /// The base stamp event offsets are relative to.
    pub base: Stamp,
    /// Whether the wall clock was synchronised.
    pub clock_synced: bool,
}

/// Writes a batch payload from [`RawEvent`]s.
pub struct BatchWriter {
    e: Encoder<Vec<u8>>,
}

impl BatchWriter {
    /// A batch of exactly `events` events (push that many).
    pub fn new(head: &BatchHead<'_>, events: usize) -> BatchWriter {
        let mut e = Encoder::new(Vec::new());
        // Keys as `Batch` derives them; `Vec` writes cannot fail.
        let _ = (|| {
            e.map(7)?
                .u8(0)?
                .str(head.device_id)?
                .u8(1)?
                .encode(head.boot_id)?
                .u8(2)?
                .u32(head.agent_epoch)?
                .u8(3)?
                .u64(head.base.wall_ms)?
                .u8(4)?
                .u64(head.base.uptime_ms)?
                .u8(5)?
                .bool(head.clock_synced)?
                .u8(6)?
                .array(events as u64)?
                .ok()
        })();
        BatchWriter { e }
    }

    /// Appends `ev` numbered `seq`, at `at` from the base.
    pub fn push(&mut self, seq: u64, at: Offset, ev: &RawEvent) {
        let _ = (|| {
            self.e
                .array(2)?
                .u8(ev.kind)?
                .map(u64::from(ev.fields) + 2)?
                .u8(0)?
                .u64(seq)?
                .u8(1)?
                .encode(at)?
                .ok()
        })();
        self.e.writer_mut().extend_from_slice(&ev.rest);
    }

    /// The payload.
    pub fn finish(self) -> Vec<u8> {
        self.e.into_writer()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::{Batch, Sync};
    use crate::types::SessionId;

    #[test]
    fn a_sync_batch_is_written_as_encode_batch_writes_it() {
        let ev = Event::Sync(Sync {
            seq: 7,
            at: Offset {
                uptime_ms: 5,
                wall_adj_ms: -2,
            },
            ids: vec![SessionId(1), SessionId(u64::MAX)],
        });
        let mut b = Batch {
            device_id: "dev".into(),
            boot_id: BootId([3; 16]),
            agent_epoch: 9,
            base_wall_ms: 1_700_000_000_000,
            base_uptime_ms: 1000,
            clock_synced: true,
            events: vec![ev.clone()],
        };
        let head = BatchHead {
            device_id: "dev",
            boot_id: b.boot_id,
            agent_epoch: 9,
            base: b.base(),
            clock_synced: true,
        };
        let mut w = BatchWriter::new(&head, 1);
        w.push(7, ev.offset(), &RawEvent::new(ev.clone()));
        assert_eq!(w.finish(), crate::encode_batch(&b));
        b.events.clear();
        assert_eq!(BatchWriter::new(&head, 0).finish(), crate::encode_batch(&b));
    }
}
