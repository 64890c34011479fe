//! Property tests of the codec: encode→decode is the identity for arbitrary messages (every
//! event kind, both offset forms, optional fields absent and present, sizes up to the limits);
//! every strict prefix of a valid encoding is `Truncated`; arbitrary and mutated bytes never
//! panic either decoder; arbitrary CBOR under an unknown key is skipped exactly.

mod common;

use minicbor::Encoder;
use proptest::collection::vec;
use proptest::prelude::*;
use wifisess_wire::limits::{
    MAX_DEVICE_ID_BYTES, MAX_EVENTS_PER_BATCH, MAX_HOSTNAME_BYTES, MAX_IFNAME_BYTES,
    MAX_INTERFACES, MAX_PAYLOAD_BYTES, MAX_SSID_BYTES, MAX_SYNC_IDS, MAX_TEXT_BYTES,
};
use wifisess_wire::{
    decode_batch, decode_status, encode_batch, encode_status, Batch, BatchHead, BatchWriter,
    BootId, DecodeError, Event, FailedJoin, InterfaceInfo, MacAddr, Offset, RawEvent, SessionId,
    Stamp, Start, Status, Stop, StopReason, Sync, Update,
};

// ---------------------------------------------------------------------------------------------
// Strategies.

/// Text of at most `max` UTF-8 bytes: printable ASCII (often filling the limit exactly) or any
/// characters.
fn text(max: usize) -> impl Strategy<Value = String> {
    let fill = move |chars: Vec<char>| {
        let mut s = String::new();
        for c in chars {
            if s.len() + c.len_utf8() > max {
                break;
            }
            s.push(c);
        }
        s
    };
    prop_oneof![
        vec(proptest::char::range(' ', '~'), 0..=max).prop_map(fill),
        vec(any::<char>(), 0..=max).prop_map(fill),
    ]
}

fn bytes(max: usize) -> impl Strategy<Value = Vec<u8>> {
    vec(any::<u8>(), 0..=max)
}

fn mac() -> impl Strategy<Value = MacAddr> {
    any::<[u8; 6]>().prop_map(MacAddr)
}

fn session_id() -> impl Strategy<Value = SessionId> {
    any::<u64>().prop_map(SessionId)
}

/// Both wire forms: a bare integer (`wall_adj_ms` = 0) and `[uptime, wall_adj]`.
fn offset() -> impl Strategy<Value = Offset> {
    prop_oneof![
        any::<i64>().prop_map(|uptime_ms| Offset {
            uptime_ms,
            wall_adj_ms: 0
        }),
        (any::<i64>(), any::<i64>()).prop_map(|(uptime_ms, wall_adj_ms)| Offset {
            uptime_ms,
            wall_adj_ms
        }),
    ]
}

/// Every reason; `Other` only for codes v1 does not name (0..=3 decode as the named ones).
fn stop_reason() -> impl Strategy<Value = StopReason> {
    prop_oneof![
        Just(StopReason::Left),
        Just(StopReason::Vanished),
        Just(StopReason::InterfaceDown),
        Just(StopReason::RoamedLocal),
        (4u8..).prop_map(StopReason::Other),
    ]
}

fn hostname() -> impl Strategy<Value = Option<String>> {
    proptest::option::of(text(MAX_HOSTNAME_BYTES))
}

fn start() -> impl Strategy<Value = Start> {
    (
        (any::<u64>(), offset(), session_id(), mac()),
        (text(MAX_IFNAME_BYTES), bytes(MAX_SSID_BYTES), mac()),
        (any::<u32>(), any::<u64>(), any::<Option<i8>>(), hostname()),
    )
        .prop_map(
            |(
                (seq, at, id, mac),
                (ifname, ssid, bssid),
                (freq_mhz, age_ms, signal_dbm, hostname),
            )| Start {
                seq,
                at,
                id,
                mac,
                ifname,
                ssid,
                bssid,
                freq_mhz,
                age_ms,
                signal_dbm,
                hostname,
            },
        )
}

fn update() -> impl Strategy<Value = Update> {
    (
        (any::<u64>(), offset(), session_id()),
        any::<[u64; 4]>(),
        (any::<Option<i8>>(), any::<Option<u32>>(), hostname()),
    )
        .prop_map(
            |(
                (seq, at, id),
                [rx_bytes, tx_bytes, rx_packets, tx_packets],
                (sig, inactive, hostname),
            )| {
                Update {
                    seq,
                    at,
                    id,
                    rx_bytes,
                    tx_bytes,
                    rx_packets,
                    tx_packets,
                    signal_avg_dbm: sig,
                    inactive_ms: inactive,
                    hostname,
                }
            },
        )
}

fn failed_join() -> impl Strategy<Value = FailedJoin> {
    (
        (any::<u64>(), offset(), mac()),
        (
            text(MAX_IFNAME_BYTES),
            bytes(MAX_SSID_BYTES),
            mac(),
            any::<u64>(),
        ),
    )
        .prop_map(
            |((seq, at, mac), (ifname, ssid, bssid, age_ms))| FailedJoin {
                seq,
                at,
                mac,
                ifname,
                ssid,
                bssid,
                age_ms,
            },
        )
}

fn stop() -> impl Strategy<Value = Stop> {
    (
        (
            any::<u64>(),
            offset(),
            session_id(),
            stop_reason(),
            any::<u64>(),
        ),
        any::<[u64; 4]>(),
        (any::<Option<i8>>(), any::<Option<u32>>()),
    )
        .prop_map(
            |((seq, at, id, reason, age_ms), [rxb, txb, rxp, txp], (sig, inactive))| Stop {
                seq,
                at,
                id,
                reason,
                age_ms,
                rx_bytes: rxb,
                tx_bytes: txb,
                rx_packets: rxp,
                tx_packets: txp,
                signal_avg_dbm: sig,
                inactive_ms: inactive,
            },
        )
}

fn sync(max_ids: usize) -> impl Strategy<Value = Sync> {
    (any::<u64>(), offset(), vec(session_id(), 0..=max_ids)).prop_map(|(seq, at, ids)| Sync {
        seq,
        at,
        ids,
    })
}

/// Any event. `Unknown` only with kinds v1 does not know (5 and up): it encodes as
/// `[kind, {}]`, which for kinds 0..=4 would be a malformed known event.
fn event(max_sync_ids: usize) -> impl Strategy<Value = Event> {
    prop_oneof![
        start().prop_map(Event::Start),
        update().prop_map(Event::Update),
        stop().prop_map(Event::Stop),
        sync(max_sync_ids).prop_map(Event::Sync),
        failed_join().prop_map(Event::FailedJoin),
        (5u32.., proptest::option::of(any::<u64>()), offset())
            .prop_map(|(kind, seq, at)| Event::Unknown { kind, seq, at }),
    ]
}

fn batch_with(events: impl Strategy<Value = Vec<Event>>) -> impl Strategy<Value = Batch> {
    (
        text(MAX_DEVICE_ID_BYTES),
        any::<[u8; 16]>(),
        any::<u32>(),
        any::<u64>(),
        any::<u64>(),
        any::<bool>(),
        events,
    )
        .prop_map(
            |(device_id, boot, agent_epoch, base_wall_ms, base_uptime_ms, clock_synced, events)| {
                Batch {
                    device_id,
                    boot_id: BootId(boot),
                    agent_epoch,
                    base_wall_ms,
                    base_uptime_ms,
                    clock_synced,
                    events,
                }
            },
        )
}

/// Batches of a few events, sync lists of up to 64 ids.
fn small_batch() -> impl Strategy<Value = Batch> {
    batch_with(vec(event(64), 0..8))
}

fn interface() -> impl Strategy<Value = InterfaceInfo> {
    (
        text(MAX_IFNAME_BYTES),
        any::<u32>(),
        mac(),
        bytes(MAX_SSID_BYTES),
        any::<u32>(),
    )
        .prop_map(|(ifname, ifindex, bssid, ssid, freq_mhz)| InterfaceInfo {
            ifname,
            ifindex,
            bssid,
            ssid,
            freq_mhz,
        })
}

fn status(max_interfaces: usize) -> impl Strategy<Value = Status> {
    (
        (
            text(MAX_DEVICE_ID_BYTES),
            any::<[u8; 16]>(),
            any::<u32>(),
            any::<[bool; 3]>(),
            any::<[u64; 2]>(),
        ),
        (
            text(MAX_TEXT_BYTES),
            proptest::option::of(text(MAX_TEXT_BYTES)),
            proptest::option::of(text(MAX_TEXT_BYTES)),
            proptest::option::of(text(MAX_TEXT_BYTES)),
        ),
        vec(interface(), 0..=max_interfaces),
        (any::<[u64; 5]>(), any::<u32>(), any::<[u64; 3]>()),
    )
        .prop_map(
            |(
                (device_id, boot, agent_epoch, [online, graceful, clock_synced], [wall, up]),
                (agent_version, name, organization, group),
                interfaces,
                (
                    [published, dropped, reconnects, failed_joins, tracker_overflow],
                    outbox,
                    [dropped_updates, dropped_starts_stops, spool_restored],
                ),
            )| Status {
                device_id,
                boot_id: BootId(boot),
                agent_epoch,
                online,
                graceful,
                wall_ms: wall,
                uptime_ms: up,
                clock_synced,
                agent_version,
                name,
                organization,
                group,
                interfaces,
                published,
                dropped,
                reconnects,
                outbox_depth: outbox,
                failed_joins,
                tracker_overflow,
                dropped_updates,
                dropped_starts_stops,
                spool_restored,
            },
        )
}

/// An arbitrary well-formed CBOR data item, encoded: every major type, definite and
/// indefinite containers and strings, tags, simple values and floats, nested a few levels.
fn cbor_item() -> impl Strategy<Value = Vec<u8>> {
    let leaf = prop_oneof![
        any::<u64>().prop_map(|v| enc(|e| {
            e.u64(v).unwrap();
        })),
        any::<i64>().prop_map(|v| enc(|e| {
            e.i64(v).unwrap();
        })),
        bytes(40).prop_map(|v| enc(|e| {
            e.bytes(&v).unwrap();
        })),
        any::<String>().prop_map(|v| enc(|e| {
            e.str(&v).unwrap();
        })),
        vec(bytes(8), 0..4).prop_map(|chunks| enc(|e| {
            e.begin_bytes().unwrap();
            for c in &chunks {
                e.bytes(c).unwrap();
            }
            e.end().unwrap();
        })),
        vec(any::<String>(), 0..4).prop_map(|chunks| enc(|e| {
            e.begin_str().unwrap();
            for c in &chunks {
                e.str(c).unwrap();
            }
            e.end().unwrap();
        })),
        any::<f64>().prop_map(|v| enc(|e| {
            e.f64(v).unwrap();
        })),
        any::<f32>().prop_map(|v| enc(|e| {
            e.f32(v).unwrap();
        })),
        any::<bool>().prop_map(|v| enc(|e| {
            e.bool(v).unwrap();
        })),
        Just(vec![0xf6]),                     // null
        Just(vec![0xf7]),                     // undefined
        (32u8..).prop_map(|v| vec![0xf8, v]), // simple(v)
        Just(vec![0xf9, 0x3c, 0x00]),         // half-float 1.0
    ];
    leaf.prop_recursive(6, 64, 6, |inner| {
        prop_oneof![
            (vec(inner.clone(), 0..6), any::<bool>()).prop_map(|(items, indefinite)| {
                let mut out = if indefinite {
                    vec![0x9f]
                } else {
                    common::head(4, items.len() as u64)
                };
                out.extend(items.concat());
                if indefinite {
                    out.push(0xff);
                }
                out
            }),
            (vec((inner.clone(), inner.clone()), 0..4), any::<bool>()).prop_map(
                |(pairs, indefinite)| {
                    let mut out = if indefinite {
                        vec![0xbf]
                    } else {
                        common::head(5, pairs.len() as u64)
                    };
                    for (k, v) in pairs {
                        out.extend(k);
                        out.extend(v);
                    }
                    if indefinite {
                        out.push(0xff);
                    }
                    out
                }
            ),
            (any::<u64>(), inner).prop_map(|(tag, item)| {
                let mut out = common::head(6, tag);
                out.extend(item);
                out
            }),
        ]
    })
}

fn enc(f: impl FnOnce(&mut Encoder<Vec<u8>>)) -> Vec<u8> {
    let mut e = Encoder::new(Vec::new());
    f(&mut e);
    e.into_writer()
}

/// One edit to a byte string: overwrite, insert or delete at a position.
#[derive(Debug, Clone)]
enum Mutation {
    Set(usize, u8),
    Insert(usize, u8),
    Delete(usize),
}

fn mutations() -> impl Strategy<Value = Vec<Mutation>> {
    vec(
        prop_oneof![
            (any::<usize>(), any::<u8>()).prop_map(|(i, b)| Mutation::Set(i, b)),
            (any::<usize>(), any::<u8>()).prop_map(|(i, b)| Mutation::Insert(i, b)),
            any::<usize>().prop_map(Mutation::Delete),
        ],
        1..4,
    )
}

fn mutate(mut bytes: Vec<u8>, edits: &[Mutation]) -> Vec<u8> {
    for m in edits {
        let n = bytes.len();
        match *m {
            Mutation::Set(i, b) if n > 0 => bytes[i % n] = b,
            Mutation::Insert(i, b) => bytes.insert(i % (n + 1), b),
            Mutation::Delete(i) if n > 0 => {
                bytes.remove(i % n);
            }
            _ => {}
        }
    }
    bytes
}

/// Whatever the decoder accepts must survive its own round trip: no garbage it cannot
/// reproduce.
fn accepted_values_round_trip(bytes: &[u8]) -> Result<(), TestCaseError> {
    if let Ok(b) = decode_batch(bytes) {
        prop_assert_eq!(decode_batch(&encode_batch(&b)), Ok(b));
    }
    if let Ok(s) = decode_status(bytes) {
        prop_assert_eq!(decode_status(&encode_status(&s)), Ok(s));
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Properties.

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn batch_round_trips(b in small_batch()) {
        let bytes = encode_batch(&b);
        prop_assert_eq!(decode_batch(&bytes), Ok(b));
    }

    #[test]
    fn raw_events_batch_to_the_same_bytes(b in batch_with(vec(
        prop_oneof![
            start().prop_map(Event::Start),
            update().prop_map(Event::Update),
            stop().prop_map(Event::Stop),
            sync(64).prop_map(Event::Sync),
            failed_join().prop_map(Event::FailedJoin),
        ],
        0..8,
    ))) {
        let head = BatchHead {
            device_id: &b.device_id,
            boot_id: b.boot_id,
            agent_epoch: b.agent_epoch,
            base: b.base(),
            clock_synced: b.clock_synced,
        };
        let mut w = BatchWriter::new(&head, b.events.len());
        for e in &b.events {
            let raw = RawEvent::new(e.clone());
            let (kind, fields, rest) = raw.parts();
            let back = RawEvent::from_parts(kind, fields, rest.to_vec());
            prop_assert_eq!(back.as_ref(), Some(&raw));
            prop_assert_eq!(raw.is_droppable(), e.is_droppable());
            prop_assert_eq!(raw.drop_rank(), e.drop_rank());
            w.push(e.seq(), e.offset(), &raw);
        }
        prop_assert_eq!(w.finish(), encode_batch(&b));
    }

    #[test]
    fn status_round_trips(s in status(4)) {
        let bytes = encode_status(&s);
        prop_assert_eq!(decode_status(&bytes), Ok(s));
    }

    #[test]
    fn every_strict_prefix_of_a_batch_is_truncated(b in small_batch()) {
        let bytes = encode_batch(&b);
        for n in 0..bytes.len() {
            let r = decode_batch(&bytes[..n]);
            prop_assert!(matches!(r, Err(DecodeError::Truncated { .. })), "prefix {}: {:?}", n, r);
        }
    }

    #[test]
    fn every_strict_prefix_of_a_status_is_truncated(s in status(3)) {
        let bytes = encode_status(&s);
        for n in 0..bytes.len() {
            let r = decode_status(&bytes[..n]);
            prop_assert!(matches!(r, Err(DecodeError::Truncated { .. })), "prefix {}: {:?}", n, r);
        }
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in vec(any::<u8>(), 0..1024)) {
        accepted_values_round_trip(&bytes)?;
    }

    #[test]
    fn arbitrary_bytes_after_a_map_header_never_panic(
        header in 0xa0u8..=0xbf,
        body in vec(any::<u8>(), 0..512),
    ) {
        // Random bytes rarely start with a map; these always do, so the field decoders run.
        let bytes = [&[header][..], &body].concat();
        accepted_values_round_trip(&bytes)?;
    }

    #[test]
    fn mutated_batches_never_panic(b in small_batch(), edits in mutations()) {
        accepted_values_round_trip(&mutate(encode_batch(&b), &edits))?;
    }

    #[test]
    fn mutated_statuses_never_panic(s in status(3), edits in mutations()) {
        accepted_values_round_trip(&mutate(encode_status(&s), &edits))?;
    }

    #[test]
    fn arbitrary_cbor_under_an_unknown_key_is_skipped(
        b in small_batch(),
        s in status(2),
        key in prop_oneof![22i64..1000, i64::MIN..0],
        value in cbor_item(),
    ) {
        // Top-level maps have 7 and at most 22 entries (status keys 0..=21): one more still
        // fits the one-byte header.
        let extra = enc(|e| { e.i64(key).unwrap(); });
        let mut bytes = encode_batch(&b);
        bytes[0] += 1;
        bytes.extend(&extra);
        bytes.extend(&value);
        prop_assert_eq!(decode_batch(&bytes), Ok(b));
        let mut bytes = encode_status(&s);
        bytes[0] += 1;
        bytes.extend(&extra);
        bytes.extend(&value);
        prop_assert_eq!(decode_status(&bytes), Ok(s));
    }

    #[test]
    fn arbitrary_cbor_as_an_unknown_event_body_is_skipped(
        kind in 5u32..,
        body in cbor_item(),
        before in event(4),
        after in event(4),
    ) {
        let mut b = common::batch(vec![before.clone(), after.clone()]);
        let mut bytes = encode_batch(&b);
        // Rebuild the events array with the unknown event in the middle.
        let events_at = bytes.len() - minicbor::to_vec(&b.events).unwrap().len();
        bytes.truncate(events_at);
        bytes.push(0x83);
        bytes.extend(minicbor::to_vec(&before).unwrap());
        bytes.extend(enc(|e| { e.array(2).unwrap().u32(kind).unwrap(); }));
        bytes.extend(&body);
        bytes.extend(minicbor::to_vec(&after).unwrap());
        let got = decode_batch(&bytes).unwrap();
        let unknown_kind = matches!(got.events[1], Event::Unknown { kind: k, .. } if k == kind);
        prop_assert!(unknown_kind);
        b.events = vec![before, got.events[1].clone(), after];
        prop_assert_eq!(got, b);
    }

    /// Forward compatibility of kind 4: a decoder that does not know a kind still reads its
    /// `seq` and `at`, so a collector older than failed joins counts their seqs (no false
    /// gap). Simulated by renumbering the kind to one this decoder does not know either.
    #[test]
    fn a_failed_join_read_as_an_unknown_kind_keeps_its_seq_and_time(
        fj in failed_join(),
        kind in 5u8..=23,
    ) {
        let mut bytes = minicbor::to_vec(Event::FailedJoin(fj.clone())).unwrap();
        prop_assert_eq!(&bytes[..2], &[0x82, 4][..]);
        bytes[1] = kind;
        let got: Event = minicbor::decode(&bytes).unwrap();
        prop_assert_eq!(got, Event::Unknown { kind: u32::from(kind), seq: Some(fj.seq), at: fj.at });
    }

    #[test]
    fn offsets_resolve_back_to_the_stamp_they_came_from(
        base in any::<(u64, u64)>(),
        at in any::<(u64, u64)>(),
    ) {
        let base = Stamp { wall_ms: base.0, uptime_ms: base.1 };
        let at = Stamp { wall_ms: at.0, uptime_ms: at.1 };
        let up = i128::from(at.uptime_ms) - i128::from(base.uptime_ms);
        let adj = i128::from(at.wall_ms) - i128::from(base.wall_ms) - up;
        let fits = i64::try_from(up).is_ok() && i64::try_from(adj).is_ok();
        match Offset::between(base, at) {
            Some(o) => prop_assert_eq!(o.resolve(base), Some(at)),
            None => prop_assert!(!fits),
        }
    }

    #[test]
    fn textual_forms_round_trip(m in mac(), id in session_id(), boot in any::<[u8; 16]>()) {
        prop_assert_eq!(m.to_string().parse::<MacAddr>(), Ok(m));
        prop_assert_eq!(m.to_string().to_uppercase().replace(':', "-").parse::<MacAddr>(), Ok(m));
        prop_assert_eq!(id.to_string().len(), 16);
        prop_assert_eq!(id.to_string().parse::<SessionId>(), Ok(id));
        let boot = BootId(boot);
        prop_assert_eq!(format!("{boot}\n").parse::<BootId>(), Ok(boot));
    }
}

proptest! {
    // Large values: fewer cases, each up to a limit.
    #![proptest_config(ProptestConfig::with_cases(12))]

    #[test]
    fn full_batches_round_trip(b in batch_with(vec(event(2), MAX_EVENTS_PER_BATCH - 4..=MAX_EVENTS_PER_BATCH))) {
        let bytes = encode_batch(&b);
        prop_assert!(bytes.len() <= MAX_PAYLOAD_BYTES, "{} bytes", bytes.len());
        prop_assert_eq!(decode_batch(&bytes), Ok(b));
    }

    #[test]
    fn full_sync_lists_round_trip(b in batch_with(vec(sync(MAX_SYNC_IDS).prop_map(Event::Sync), 1..=2))) {
        let bytes = encode_batch(&b);
        prop_assert_eq!(decode_batch(&bytes), Ok(b));
    }

    #[test]
    fn full_statuses_round_trip(s in status(MAX_INTERFACES)) {
        let bytes = encode_status(&s);
        prop_assert_eq!(decode_status(&bytes), Ok(s));
    }
}

#[test]
fn limits_are_reachable_by_the_strategies() {
    // The largest sync list and status the strategies can produce are within the payload limit,
    // so the "full" properties test round trips, not PayloadTooLarge.
    let ids = vec![SessionId(u64::MAX); MAX_SYNC_IDS];
    let b = common::batch(vec![
        Event::Sync(Sync {
            seq: u64::MAX,
            at: Offset::default(),
            ids: ids.clone(),
        });
        2
    ]);
    assert!(encode_batch(&b).len() <= MAX_PAYLOAD_BYTES);
    let mut s = common::golden_status_online();
    s.interfaces = vec![
        InterfaceInfo {
            ifname: "x".repeat(MAX_IFNAME_BYTES),
            ifindex: u32::MAX,
            bssid: MacAddr([0xff; 6]),
            ssid: vec![0xff; MAX_SSID_BYTES],
            freq_mhz: u32::MAX,
        };
        MAX_INTERFACES
    ];
    assert!(encode_status(&s).len() <= MAX_PAYLOAD_BYTES);
}
