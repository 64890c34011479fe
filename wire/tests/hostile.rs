//! Hostile input: every rejection is a specific [`DecodeError`] variant, nothing panics, claimed
//! lengths are checked before anything is allocated, and deep nesting is skipped without
//! recursion.
//!
//! Inputs are built with `minicbor`'s encoder (or by hand with `common::head`) from the
//! realistic values in `common/mod.rs`, changing one thing at a time.

mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use minicbor::Encoder;
use wifisess_wire::limits::{
    MAX_DEVICE_ID_BYTES, MAX_EVENTS_PER_BATCH, MAX_HOSTNAME_BYTES, MAX_IFNAME_BYTES,
    MAX_INTERFACES, MAX_PAYLOAD_BYTES, MAX_SSID_BYTES, MAX_SYNC_IDS,
};
use wifisess_wire::{
    decode_batch, decode_status, encode_batch, encode_status, Batch, DecodeError, Event, Offset,
    SessionId, Stamp, StopReason, Sync,
};

// ---------------------------------------------------------------------------------------------
// Measuring allocations: the largest single allocation made by the current thread.

struct Tracking;

thread_local! {
    static LARGEST_ALLOC: Cell<usize> = const { Cell::new(0) };
}

// SAFETY: forwards every call unchanged to the system allocator; only records sizes.
unsafe impl GlobalAlloc for Tracking {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let _ = LARGEST_ALLOC.try_with(|l| l.set(l.get().max(layout.size())));
        // SAFETY: same contract as ours.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as ours.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let _ = LARGEST_ALLOC.try_with(|l| l.set(l.get().max(new_size)));
        // SAFETY: same contract as ours.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOC: Tracking = Tracking;

/// Runs `f` and returns its result with the largest allocation (bytes) it made on this thread.
fn largest_allocation<T>(f: impl FnOnce() -> T) -> (T, usize) {
    LARGEST_ALLOC.with(|l| l.set(0));
    let out = f();
    (out, LARGEST_ALLOC.with(Cell::get))
}

// ---------------------------------------------------------------------------------------------
// Building inputs.

type Enc = Encoder<Vec<u8>>;

fn enc() -> Enc {
    Encoder::new(Vec::new())
}

/// A batch map built field by field: `fields` writes the entries, `n` is how many it writes.
fn batch_map(n: u64, fields: impl FnOnce(&mut Enc)) -> Vec<u8> {
    let mut e = enc();
    e.map(n).unwrap();
    fields(&mut e);
    e.into_writer()
}

/// Writes the six batch header fields (keys 0..=5) of `common::batch`.
fn header(e: &mut Enc) {
    let b = common::batch(vec![]);
    e.u8(0).unwrap().str(&b.device_id).unwrap();
    e.u8(1).unwrap().bytes(&b.boot_id.0).unwrap();
    e.u8(2).unwrap().u32(b.agent_epoch).unwrap();
    e.u8(3).unwrap().u64(b.base_wall_ms).unwrap();
    e.u8(4).unwrap().u64(b.base_uptime_ms).unwrap();
    e.u8(5).unwrap().bool(b.clock_synced).unwrap();
}

/// A batch whose events array is written raw by `events` (key 6's value).
fn batch_with_raw_events(events: impl FnOnce(&mut Enc)) -> Vec<u8> {
    batch_map(7, |e| {
        header(e);
        e.u8(6).unwrap();
        events(e);
    })
}

/// A batch with one event `[kind, body]`, the body a map written raw by `body`.
fn batch_with_raw_event(kind: u32, entries: u64, body: impl FnOnce(&mut Enc)) -> Vec<u8> {
    batch_with_raw_events(|e| {
        e.array(1).unwrap().array(2).unwrap().u32(kind).unwrap();
        e.map(entries).unwrap();
        body(e);
    })
}

/// Writes the Start body fields of `common::start`, replacing `ifname` and `ssid` by the
/// given writers; 10 entries.
fn start_body(e: &mut Enc, ifname: impl FnOnce(&mut Enc), ssid: impl FnOnce(&mut Enc)) {
    let s = common::start(100_001, common::offset(0));
    e.u8(0).unwrap().u64(s.seq).unwrap();
    e.u8(1).unwrap().u8(0).unwrap();
    e.u8(2).unwrap().u64(s.id.0).unwrap();
    e.u8(3).unwrap().bytes(&s.mac.0).unwrap();
    e.u8(4).unwrap();
    ifname(e);
    e.u8(5).unwrap();
    ssid(e);
    e.u8(6).unwrap().bytes(&s.bssid.0).unwrap();
    e.u8(7).unwrap().u32(s.freq_mhz).unwrap();
    e.u8(8).unwrap().u64(s.age_ms).unwrap();
    e.u8(9).unwrap().i8(-67).unwrap();
}

fn limit(err: Result<impl std::fmt::Debug, DecodeError>) -> (&'static str, u64, usize) {
    match err {
        Err(DecodeError::LimitExceeded { field, len, max }) => (field, len, max),
        other => panic!("expected LimitExceeded, got {other:?}"),
    }
}

/// The golden online status with the value of `key` written raw by `value`.
fn status_replacing(key: u8, value: impl FnOnce(&mut Enc)) -> Vec<u8> {
    let good = encode_status(&common::golden_status_online());
    let mut d = minicbor::Decoder::new(&good);
    let n = d.map().unwrap().unwrap();
    let mut e = enc();
    e.map(n).unwrap();
    let mut value = Some(value);
    for _ in 0..n {
        let k = d.u8().unwrap();
        let start = d.position();
        d.skip().unwrap();
        e.u8(k).unwrap();
        if k == key {
            (value.take().unwrap())(&mut e);
        } else {
            e.writer_mut().extend_from_slice(&good[start..d.position()]);
        }
    }
    assert!(value.is_none(), "key {key} is not in the status");
    e.into_writer()
}

fn status_with_raw_interfaces(interfaces: impl FnOnce(&mut Enc)) -> Vec<u8> {
    status_replacing(12, interfaces)
}

fn interface(e: &mut Enc, ifname: &str) {
    let i = &common::interfaces()[0];
    e.map(5).unwrap();
    e.u8(0).unwrap().str(ifname).unwrap();
    e.u8(1).unwrap().u32(i.ifindex).unwrap();
    e.u8(2).unwrap().bytes(&i.bssid.0).unwrap();
    e.u8(3).unwrap().bytes(&i.ssid).unwrap();
    e.u8(4).unwrap().u32(i.freq_mhz).unwrap();
}

// ---------------------------------------------------------------------------------------------
// Sizes and lengths.

#[test]
fn payload_over_the_limit_is_rejected_before_parsing() {
    let big = vec![0u8; MAX_PAYLOAD_BYTES + 1];
    let want = DecodeError::PayloadTooLarge {
        len: MAX_PAYLOAD_BYTES + 1,
        max: MAX_PAYLOAD_BYTES,
    };
    assert_eq!(decode_batch(&big), Err(want.clone()));
    assert_eq!(decode_status(&big), Err(want));
    // Exactly at the limit it is parsed (and here rejected for what it holds).
    let at_limit = vec![0u8; MAX_PAYLOAD_BYTES];
    assert!(matches!(
        decode_batch(&at_limit),
        Err(DecodeError::WrongType { .. })
    ));
}

#[test]
fn definite_array_claiming_2_pow_32_events_fails_fast_without_allocating() {
    let input = batch_with_raw_events(|e| {
        e.array(1 << 32).unwrap();
    });
    let (res, largest) = largest_allocation(|| decode_batch(&input));
    assert_eq!(
        limit(res),
        ("events", 1 << 32, MAX_EVENTS_PER_BATCH),
        "the claim is rejected as claimed"
    );
    assert!(
        largest < 1024,
        "allocated {largest} bytes for a rejected claim"
    );
}

#[test]
fn array_claims_within_the_limit_allocate_no_more_than_the_input_can_fill() {
    // 1024 events claimed, 0 present: the claim is allowed but must not reserve
    // 1024 * size_of::<Event>() bytes for an input that cannot hold them.
    let input = batch_with_raw_events(|e| {
        e.array(MAX_EVENTS_PER_BATCH as u64).unwrap();
    });
    let (res, largest) = largest_allocation(|| decode_batch(&input));
    assert!(matches!(res, Err(DecodeError::Truncated { .. })), "{res:?}");
    assert!(
        largest < 4 * input.len().max(size_of::<Event>()),
        "{largest} bytes allocated for a {}-byte input",
        input.len()
    );
}

#[test]
fn other_definite_claims_over_their_limits_fail_fast() {
    let sync = batch_with_raw_event(3, 3, |e| {
        e.u8(0).unwrap().u32(1).unwrap();
        e.u8(1).unwrap().u8(0).unwrap();
        e.u8(2).unwrap().array(u64::MAX).unwrap();
    });
    let (res, largest) = largest_allocation(|| decode_batch(&sync));
    assert_eq!(limit(res), ("ids", u64::MAX, MAX_SYNC_IDS));
    assert!(largest < 1024);

    let status = status_with_raw_interfaces(|e| {
        e.array(u64::from(u32::MAX)).unwrap();
    });
    assert_eq!(
        limit(decode_status(&status)),
        ("interfaces", u64::from(u32::MAX), MAX_INTERFACES)
    );
}

#[test]
fn a_map_claiming_2_pow_63_entries_is_truncated_not_looped_over() {
    let mut input = common::head(5, 1 << 63);
    input.extend([0x00, 0x61, b'x']);
    assert!(matches!(
        decode_batch(&input),
        Err(DecodeError::Truncated { .. })
    ));
}

#[test]
fn byte_and_text_lengths_beyond_the_input_are_truncated_without_allocating() {
    // An SSID claiming 2^40 bytes: the codec borrows from the input, so the claim costs
    // nothing and ends as "input ended", not as an allocation.
    let input = batch_with_raw_event(0, 10, |e| {
        start_body(
            e,
            |e| {
                e.str("phy0-ap0").unwrap();
            },
            |e| {
                e.writer_mut().extend(common::head(2, 1 << 40));
            },
        )
    });
    let (res, largest) = largest_allocation(|| decode_batch(&input));
    // On 64-bit targets the claim is simply longer than the input; on 32-bit ones (armv7,
    // MIPS) it does not even fit a usize, which minicbor reports as an overflow.
    #[cfg(target_pointer_width = "64")]
    assert!(matches!(res, Err(DecodeError::Truncated { .. })), "{res:?}");
    #[cfg(not(target_pointer_width = "64"))]
    assert!(
        matches!(&res, Err(DecodeError::Malformed { detail }) if detail.contains("overflow")),
        "{res:?}"
    );
    assert!(largest < 4096);
}

#[test]
fn indefinite_events_array_longer_than_the_limit() {
    let update = minicbor::to_vec(Event::Update(common::update(1, common::offset(0)))).unwrap();
    let input = batch_with_raw_events(|e| {
        e.begin_array().unwrap();
        for _ in 0..=MAX_EVENTS_PER_BATCH {
            e.writer_mut().extend_from_slice(&update);
        }
        e.end().unwrap();
    });
    assert!(input.len() < MAX_PAYLOAD_BYTES);
    assert_eq!(
        limit(decode_batch(&input)),
        (
            "events",
            MAX_EVENTS_PER_BATCH as u64 + 1,
            MAX_EVENTS_PER_BATCH
        )
    );

    // Exactly at the limit it decodes.
    let ok = batch_with_raw_events(|e| {
        e.begin_array().unwrap();
        for _ in 0..MAX_EVENTS_PER_BATCH {
            e.writer_mut().extend_from_slice(&update);
        }
        e.end().unwrap();
    });
    assert_eq!(
        decode_batch(&ok).unwrap().events.len(),
        MAX_EVENTS_PER_BATCH
    );
}

#[test]
fn indefinite_sync_ids_and_interfaces_longer_than_their_limits() {
    let sync = batch_with_raw_event(3, 3, |e| {
        e.u8(0).unwrap().u32(1).unwrap();
        e.u8(1).unwrap().u8(0).unwrap();
        e.u8(2).unwrap().begin_array().unwrap();
        for i in 0..=MAX_SYNC_IDS as u64 {
            e.u64(i << 40).unwrap();
        }
        e.end().unwrap();
    });
    assert_eq!(
        limit(decode_batch(&sync)),
        ("ids", MAX_SYNC_IDS as u64 + 1, MAX_SYNC_IDS)
    );

    let status = status_with_raw_interfaces(|e| {
        e.begin_array().unwrap();
        for _ in 0..=MAX_INTERFACES {
            interface(e, "phy0-ap0");
        }
        e.end().unwrap();
    });
    assert_eq!(
        limit(decode_status(&status)),
        ("interfaces", MAX_INTERFACES as u64 + 1, MAX_INTERFACES)
    );
}

#[test]
fn indefinite_strings_are_limited_by_their_total_length() {
    // ssid as 33 one-byte chunks, ifname as 16 one-byte chunks.
    let ssid = batch_with_raw_event(0, 10, |e| {
        start_body(
            e,
            |e| {
                e.str("phy0-ap0").unwrap();
            },
            |e| {
                e.begin_bytes().unwrap();
                for _ in 0..=MAX_SSID_BYTES {
                    e.bytes(b"x").unwrap();
                }
                e.end().unwrap();
            },
        )
    });
    assert_eq!(
        limit(decode_batch(&ssid)),
        ("ssid", MAX_SSID_BYTES as u64 + 1, MAX_SSID_BYTES)
    );

    let ifname = batch_with_raw_event(0, 10, |e| {
        start_body(
            e,
            |e| {
                e.begin_str().unwrap();
                for _ in 0..=MAX_IFNAME_BYTES {
                    e.str("x").unwrap();
                }
                e.end().unwrap();
            },
            |e| {
                e.bytes(common::SSID_5G).unwrap();
            },
        )
    });
    assert_eq!(
        limit(decode_batch(&ifname)),
        ("ifname", MAX_IFNAME_BYTES as u64 + 1, MAX_IFNAME_BYTES)
    );
}

#[test]
fn ssid_of_33_bytes() {
    let mut b = common::golden_batch_start();
    let Event::Start(s) = &mut b.events[0] else {
        unreachable!()
    };
    s.ssid = vec![b'x'; MAX_SSID_BYTES + 1];
    assert_eq!(
        limit(decode_batch(&encode_batch(&b))),
        ("ssid", 33, MAX_SSID_BYTES)
    );
    // The same limit holds for the SSID of a status interface.
    let mut st = common::golden_status_online();
    st.interfaces[1].ssid = vec![b'x'; MAX_SSID_BYTES + 1];
    assert_eq!(
        limit(decode_status(&encode_status(&st))),
        ("ssid", 33, MAX_SSID_BYTES)
    );
}

#[test]
fn ifname_of_16_bytes() {
    let mut b = common::golden_batch_start();
    let Event::Start(s) = &mut b.events[0] else {
        unreachable!()
    };
    s.ifname = "phy0-ap0-guest-x".into();
    assert_eq!(s.ifname.len(), 16);
    assert_eq!(
        limit(decode_batch(&encode_batch(&b))),
        ("ifname", 16, MAX_IFNAME_BYTES)
    );
    let mut st = common::golden_status_online();
    st.interfaces[0].ifname = "phy0-ap0-guest-x".into();
    assert_eq!(
        limit(decode_status(&encode_status(&st))),
        ("ifname", 16, MAX_IFNAME_BYTES)
    );
}

#[test]
fn hostname_of_64_bytes_and_failed_join_limits() {
    let with_hostname = |b: &mut Batch, h: String| match &mut b.events[0] {
        Event::Start(s) => s.hostname = Some(h),
        Event::Update(u) => u.hostname = Some(h),
        _ => unreachable!(),
    };
    let long = "h".repeat(MAX_HOSTNAME_BYTES + 1);
    for mut b in [
        common::golden_batch_hostname(),
        common::golden_batch_start(),
    ] {
        with_hostname(&mut b, long.clone());
        assert_eq!(
            limit(decode_batch(&encode_batch(&b))),
            ("hostname", 64, MAX_HOSTNAME_BYTES)
        );
        // 63 bytes is fine.
        with_hostname(&mut b, "h".repeat(MAX_HOSTNAME_BYTES));
        assert_eq!(decode_batch(&encode_batch(&b)), Ok(b));
    }
    // A failed join has the limits of a start: ifname and SSID.
    let failed = |ifname: &str, ssid_len: usize| {
        let mut b = common::golden_batch_failed_join();
        if let Event::FailedJoin(j) = &mut b.events[0] {
            j.ifname = ifname.into();
            j.ssid = vec![b'x'; ssid_len];
        }
        decode_batch(&encode_batch(&b))
    };
    assert_eq!(
        limit(failed("phy0-ap0", MAX_SSID_BYTES + 1)),
        ("ssid", 33, MAX_SSID_BYTES)
    );
    assert_eq!(
        limit(failed("phy0-ap0-guest-x", 0)),
        ("ifname", 16, MAX_IFNAME_BYTES)
    );
    assert!(failed("phy0-ap0-guest", MAX_SSID_BYTES).is_ok());
}

#[test]
fn a_failed_join_without_its_mac_is_missing_a_field() {
    let input = batch_with_raw_event(4, 2, |e| {
        e.u8(0).unwrap().u64(7).unwrap();
        e.u8(1).unwrap().u8(0).unwrap();
    });
    assert!(
        matches!(decode_batch(&input), Err(DecodeError::MissingField { .. })),
        "{:?}",
        decode_batch(&input)
    );
}

#[test]
fn device_id_of_65_bytes() {
    let mut b = common::golden_batch_update();
    b.device_id = "d".repeat(MAX_DEVICE_ID_BYTES + 1);
    assert_eq!(
        limit(decode_batch(&encode_batch(&b))),
        ("device_id", 65, MAX_DEVICE_ID_BYTES)
    );
    let mut s = common::golden_status_offline();
    s.device_id = "é".repeat(33); // 66 bytes, 33 characters: the limit counts bytes
    assert_eq!(
        limit(decode_status(&encode_status(&s))),
        ("device_id", 66, MAX_DEVICE_ID_BYTES)
    );
    // 64 bytes are fine.
    b.device_id = "d".repeat(MAX_DEVICE_ID_BYTES);
    assert_eq!(decode_batch(&encode_batch(&b)), Ok(b));
}

#[test]
fn sync_with_4097_ids() {
    let mut ids: Vec<SessionId> = (0..=MAX_SYNC_IDS as u64).map(SessionId).collect();
    let b = common::batch(vec![Event::Sync(Sync {
        seq: 1,
        at: common::offset(0),
        ids: ids.clone(),
    })]);
    assert_eq!(
        limit(decode_batch(&encode_batch(&b))),
        ("ids", 4097, MAX_SYNC_IDS)
    );
    ids.pop();
    let b = common::batch(vec![Event::Sync(Sync {
        seq: 1,
        at: common::offset(0),
        ids,
    })]);
    assert_eq!(decode_batch(&encode_batch(&b)), Ok(b));
}

#[test]
fn status_with_65_interfaces() {
    let mut s = common::golden_status_online();
    s.interfaces = vec![s.interfaces[0].clone(); MAX_INTERFACES + 1];
    assert_eq!(
        limit(decode_status(&encode_status(&s))),
        ("interfaces", 65, MAX_INTERFACES)
    );
    s.interfaces.pop();
    assert_eq!(decode_status(&encode_status(&s)), Ok(s));
}

// ---------------------------------------------------------------------------------------------
// Types and structure.

#[test]
fn text_where_bytes_belong_is_wrong_type() {
    // boot_id as the text of the UUID.
    let input = batch_map(7, |e| {
        let b = common::batch(vec![]);
        e.u8(0).unwrap().str(&b.device_id).unwrap();
        e.u8(1).unwrap().str(&b.boot_id.to_string()).unwrap();
        e.u8(2).unwrap().u32(1).unwrap();
        e.u8(3).unwrap().u64(1).unwrap();
        e.u8(4).unwrap().u64(1).unwrap();
        e.u8(5).unwrap().bool(true).unwrap();
        e.u8(6).unwrap().array(0).unwrap();
    });
    assert!(
        matches!(decode_batch(&input), Err(DecodeError::WrongType { .. })),
        "{:?}",
        decode_batch(&input)
    );
    // A MAC written as text.
    let mac = batch_with_raw_event(0, 10, |e| {
        let s = common::start(1, common::offset(0));
        e.u8(0).unwrap().u64(s.seq).unwrap();
        e.u8(1).unwrap().u8(0).unwrap();
        e.u8(2).unwrap().u64(s.id.0).unwrap();
        e.u8(3).unwrap().str("3c:22:fb:12:34:56").unwrap();
    });
    assert!(matches!(
        decode_batch(&mac),
        Err(DecodeError::WrongType { .. })
    ));
    // The SSID written as text.
    let ssid = batch_with_raw_event(0, 10, |e| {
        start_body(
            e,
            |e| {
                e.str("phy0-ap0").unwrap();
            },
            |e| {
                e.str("Grand Hotel").unwrap();
            },
        )
    });
    assert!(matches!(
        decode_batch(&ssid),
        Err(DecodeError::WrongType { .. })
    ));
    // Text where the status expects a bool, and a negative counter.
    let online = status_replacing(3, |e| {
        e.str("true").unwrap();
    });
    assert!(matches!(
        decode_status(&online),
        Err(DecodeError::WrongType { .. })
    ));
    let dropped = status_replacing(14, |e| {
        e.i8(-1).unwrap();
    });
    assert!(matches!(
        decode_status(&dropped),
        Err(DecodeError::WrongType { .. })
    ));
}

#[test]
fn mac_of_5_bytes_is_malformed() {
    let input = batch_with_raw_event(0, 10, |e| {
        let s = common::start(1, common::offset(0));
        e.u8(0).unwrap().u64(s.seq).unwrap();
        e.u8(1).unwrap().u8(0).unwrap();
        e.u8(2).unwrap().u64(s.id.0).unwrap();
        e.u8(3).unwrap().bytes(&s.mac.0[..5]).unwrap();
    });
    match decode_batch(&input) {
        Err(DecodeError::Malformed { detail }) => assert!(detail.contains("6 bytes"), "{detail}"),
        other => panic!("expected Malformed, got {other:?}"),
    }
    // Same for a BSSID of 7 bytes in a status.
    let status = status_with_raw_interfaces(|e| {
        e.array(1).unwrap().map(5).unwrap();
        e.u8(0).unwrap().str("phy0-ap0").unwrap();
        e.u8(1).unwrap().u32(3).unwrap();
        e.u8(2).unwrap().bytes(&[1, 2, 3, 4, 5, 6, 7]).unwrap();
    });
    assert!(matches!(
        decode_status(&status),
        Err(DecodeError::Malformed { .. })
    ));
}

#[test]
fn boot_id_of_15_bytes_is_malformed() {
    let input = batch_map(1, |e| {
        e.u8(1).unwrap().bytes(&[0; 15]).unwrap();
    });
    assert!(matches!(
        decode_batch(&input),
        Err(DecodeError::Malformed { .. })
    ));
}

#[test]
fn missing_required_field() {
    // A batch without boot_id (key 1).
    let input = batch_map(6, |e| {
        let b = common::batch(vec![]);
        e.u8(0).unwrap().str(&b.device_id).unwrap();
        e.u8(2).unwrap().u32(1).unwrap();
        e.u8(3).unwrap().u64(1).unwrap();
        e.u8(4).unwrap().u64(1).unwrap();
        e.u8(5).unwrap().bool(true).unwrap();
        e.u8(6).unwrap().array(0).unwrap();
    });
    match decode_batch(&input) {
        Err(DecodeError::MissingField { detail }) => {
            assert!(detail.contains("boot_id"), "{detail}")
        }
        other => panic!("expected MissingField, got {other:?}"),
    }
    // A start without its MAC (key 3): 9 entries, key 3 left out.
    let start = batch_with_raw_event(0, 9, |e| {
        let s = common::start(1, common::offset(0));
        e.u8(0).unwrap().u64(s.seq).unwrap();
        e.u8(1).unwrap().u8(0).unwrap();
        e.u8(2).unwrap().u64(s.id.0).unwrap();
        e.u8(4).unwrap().str(&s.ifname).unwrap();
        e.u8(5).unwrap().bytes(&s.ssid).unwrap();
        e.u8(6).unwrap().bytes(&s.bssid.0).unwrap();
        e.u8(7).unwrap().u32(s.freq_mhz).unwrap();
        e.u8(8).unwrap().u64(s.age_ms).unwrap();
        e.u8(9).unwrap().i8(-67).unwrap();
    });
    assert!(matches!(
        decode_batch(&start),
        Err(DecodeError::MissingField { .. })
    ));
    // An empty map is missing everything.
    assert!(matches!(
        decode_status(&[0xa0]),
        Err(DecodeError::MissingField { .. })
    ));
}

#[test]
fn trailing_bytes_after_a_valid_message() {
    let mut input = encode_batch(&common::golden_batch_update());
    input.extend([0x00, 0xff, 0x61]);
    assert_eq!(
        decode_batch(&input),
        Err(DecodeError::TrailingBytes { extra: 3 })
    );
    let mut status = encode_status(&common::golden_status_offline());
    status.push(0xa0);
    assert_eq!(
        decode_status(&status),
        Err(DecodeError::TrailingBytes { extra: 1 })
    );
}

#[test]
fn an_event_that_is_not_a_pair_is_malformed() {
    for bad in [
        |e: &mut Enc| {
            e.array(3)
                .unwrap()
                .u8(0)
                .unwrap()
                .map(0)
                .unwrap()
                .u8(0)
                .unwrap();
        },
        |e: &mut Enc| {
            e.begin_array()
                .unwrap()
                .u8(1)
                .unwrap()
                .map(0)
                .unwrap()
                .end()
                .unwrap();
        },
    ] {
        let input = batch_with_raw_events(|e| {
            e.array(1).unwrap();
            bad(e);
        });
        assert!(
            matches!(decode_batch(&input), Err(DecodeError::Malformed { .. })),
            "{:?}",
            decode_batch(&input)
        );
    }
    // A map where the pair belongs.
    let input = batch_with_raw_events(|e| {
        e.array(1).unwrap().map(0).unwrap();
    });
    assert!(matches!(
        decode_batch(&input),
        Err(DecodeError::WrongType { .. })
    ));
}

#[test]
fn an_offset_array_of_three_is_malformed() {
    let input = batch_with_raw_event(3, 3, |e| {
        e.u8(0).unwrap().u8(1).unwrap();
        e.u8(1)
            .unwrap()
            .array(3)
            .unwrap()
            .u8(1)
            .unwrap()
            .u8(2)
            .unwrap()
            .u8(3)
            .unwrap();
        e.u8(2).unwrap().array(0).unwrap();
    });
    assert!(matches!(
        decode_batch(&input),
        Err(DecodeError::Malformed { .. })
    ));
}

#[test]
fn integers_out_of_range_are_malformed() {
    // A stop reason code that does not fit a byte.
    let mut b = common::golden_batch_stop();
    b.events.truncate(1);
    let mut bytes = encode_batch(&b);
    // The vanished stop's "3: 1" is the only 0x03 0x01 pair in the encoding.
    let at = bytes.windows(2).position(|w| w == [0x03, 0x01]).unwrap();
    bytes.splice(at + 1..at + 2, [0x19, 0x01, 0x00]);
    assert!(matches!(
        decode_batch(&bytes),
        Err(DecodeError::Malformed { .. })
    ));
    // An offset beyond i64 (a uint of 2^63).
    let input = batch_with_raw_event(3, 3, |e| {
        e.u8(0).unwrap().u8(1).unwrap();
        e.u8(1).unwrap().u64(1 << 63).unwrap();
        e.u8(2).unwrap().array(0).unwrap();
    });
    assert!(matches!(
        decode_batch(&input),
        Err(DecodeError::Malformed { .. })
    ));
    // A signal of 200 dBm does not fit an i8.
    let input = batch_with_raw_event(1, 9, |e| {
        e.u8(0).unwrap().u8(1).unwrap();
        e.u8(1).unwrap().u8(0).unwrap();
        e.u8(2).unwrap().u8(7).unwrap();
        for k in 3..=6 {
            e.u8(k).unwrap().u8(0).unwrap();
        }
        e.u8(7).unwrap().u8(200).unwrap();
        e.u8(8).unwrap().u8(0).unwrap();
    });
    assert!(matches!(
        decode_batch(&input),
        Err(DecodeError::Malformed { .. })
    ));
}

#[test]
fn invalid_utf8_text_is_malformed() {
    let input = batch_map(1, |e| {
        e.u8(0).unwrap();
        e.writer_mut().extend([0x62, 0xc3, 0x28]);
    });
    assert!(matches!(
        decode_batch(&input),
        Err(DecodeError::Malformed { .. })
    ));
}

#[test]
fn text_keys_are_not_ignored_but_rejected() {
    // v1 maps have integer keys; a text key is a type error, not an unknown key.
    let mut input = encode_batch(&common::golden_batch_update());
    input[0] += 1;
    input.extend([0x61, b'x', 0x00]);
    assert!(matches!(
        decode_batch(&input),
        Err(DecodeError::WrongType { .. })
    ));
}

// ---------------------------------------------------------------------------------------------
// Forward compatibility: unknown keys and kinds.

/// `value` appended under key 99 to the top-level map of `good` (which must have < 23 keys).
fn with_unknown_top_level_key(good: &[u8], value: &[u8]) -> Vec<u8> {
    assert!((0xa1..0xb7).contains(&good[0]), "a small definite map");
    let mut out = good.to_vec();
    out[0] += 1;
    out.extend([0x18, 99]);
    out.extend_from_slice(value);
    out
}

#[test]
fn unknown_keys_with_values_are_ignored() {
    let values: Vec<Vec<u8>> = vec![
        vec![0x00],
        vec![0x63, b'n', b'e', b'w'],
        vec![0xf6],
        minicbor::to_vec((1u8, "two", [3u8; 4], -4i64)).unwrap(),
        vec![0xbf, 0x01, 0x9f, 0x02, 0xff, 0xff], // {_ 1: [_ 2]}
        vec![0xc1, 0x1a, 0x65, 0x5f, 0x00, 0x00], // tag 1 (epoch time)
        vec![0x82, 0x9f, 0x9f, 0xff, 0xff, 0x5f, 0x41, 0x00, 0xff], // [[_ [_]], (_ h'00')]
        vec![0xfb, 0x40, 0x09, 0x21, 0xfb, 0x54, 0x44, 0x2d, 0x18], // 3.14159...
    ];
    for v in &values {
        let b = common::golden_batch_start();
        let input = with_unknown_top_level_key(&encode_batch(&b), v);
        assert_eq!(decode_batch(&input), Ok(b), "unknown value {v:02x?}");
        let s = common::golden_status_online();
        let input = with_unknown_top_level_key(&encode_status(&s), v);
        assert_eq!(decode_status(&input), Ok(s), "unknown value {v:02x?}");
    }
    // Inside an event body: a start with an extra key 11 and a negative key -1.
    let b = common::golden_batch_start();
    let input = batch_with_raw_event(0, 12, |e| {
        start_body(
            e,
            |e| {
                e.str("phy0-ap0").unwrap();
            },
            |e| {
                e.bytes(common::SSID_5G).unwrap();
            },
        );
        e.u8(11)
            .unwrap()
            .array(2)
            .unwrap()
            .u8(1)
            .unwrap()
            .u8(2)
            .unwrap();
        e.i8(-1).unwrap().str("future").unwrap();
    });
    let mut decoded = decode_batch(&input).unwrap();
    let Event::Start(s) = &mut decoded.events[0] else {
        panic!("not a start")
    };
    s.seq = 100_001; // start_body writes the same values as the golden start
    assert_eq!(decoded, b);
}

/// Decodes on a thread with a 256 KiB stack: a recursive skip of 100 000 levels would need
/// several MB and overflow it (aborting the test binary).
fn decode_on_small_stack(input: Vec<u8>) -> Result<Batch, DecodeError> {
    std::thread::Builder::new()
        .stack_size(256 * 1024)
        .spawn(move || decode_batch(&input))
        .unwrap()
        .join()
        .expect("decoder thread panicked")
}

#[test]
fn deep_nesting_inside_an_unknown_key_is_skipped_without_recursion() {
    const DEPTH: usize = 100_000;
    let b = common::golden_batch_update();
    let good = encode_batch(&b);

    // [[[[...0...]]]]: definite arrays of one element.
    let mut definite = vec![0x81; DEPTH];
    definite.push(0x00);
    let input = with_unknown_top_level_key(&good, &definite);
    assert!(input.len() <= MAX_PAYLOAD_BYTES);
    assert_eq!(decode_on_small_stack(input), Ok(b.clone()));

    // [_ [_ [_ ... ] ] ]: indefinite arrays, each closed by a break.
    let mut indefinite = vec![0x9f; DEPTH];
    indefinite.extend(vec![0xff; DEPTH]);
    let input = with_unknown_top_level_key(&good, &indefinite);
    assert!(input.len() <= MAX_PAYLOAD_BYTES);
    assert_eq!(decode_on_small_stack(input), Ok(b.clone()));

    // {0: {0: {0: ... }}}: maps, alternating with indefinite ones.
    let mut maps = Vec::new();
    for i in 0..DEPTH / 2 {
        maps.extend(if i % 2 == 0 {
            [0xa1, 0x00]
        } else {
            [0xbf, 0x00]
        });
    }
    maps.push(0xa0);
    maps.extend(vec![0xff; DEPTH / 4]);
    let input = with_unknown_top_level_key(&good, &maps);
    assert_eq!(decode_on_small_stack(input), Ok(b.clone()));

    // The same depth, unterminated: an error, still no overflow.
    let mut open = vec![0x9f; DEPTH];
    open.push(0x00);
    let input = with_unknown_top_level_key(&good, &open);
    assert!(matches!(
        decode_on_small_stack(input),
        Err(DecodeError::Truncated { .. })
    ));
}

#[test]
fn deep_nesting_inside_an_unknown_event_kind_is_skipped_without_recursion() {
    let mut body = vec![0x81; 100_000];
    body.push(0x00);
    let start = minicbor::to_vec(Event::Start(common::start(7, common::offset(0)))).unwrap();
    let input = batch_with_raw_events(|e| {
        e.array(2).unwrap();
        e.array(2).unwrap().u32(42).unwrap();
        e.writer_mut().extend_from_slice(&body);
        e.writer_mut().extend_from_slice(&start);
    });
    let got = decode_on_small_stack(input).unwrap();
    assert_eq!(
        got.events,
        vec![
            Event::Unknown {
                kind: 42,
                seq: None,
                at: Offset::default()
            },
            Event::Start(common::start(7, common::offset(0)))
        ]
    );
}

#[test]
fn unknown_event_kind_decodes_as_unknown_and_the_others_survive() {
    let start = minicbor::to_vec(Event::Start(common::start(100_001, common::offset(0)))).unwrap();
    let update = minicbor::to_vec(Event::Update(common::update(
        100_003,
        common::offset(60_000),
    )))
    .unwrap();
    let input = batch_with_raw_events(|e| {
        e.array(4).unwrap();
        e.writer_mut().extend_from_slice(&start);
        // A kind-9 event from a newer agent, with a body v1 knows nothing about.
        e.array(2).unwrap().u32(9).unwrap();
        e.map(3).unwrap();
        e.u8(0).unwrap().u64(100_002).unwrap();
        e.u8(1).unwrap().u32(30_000).unwrap();
        e.u8(2).unwrap().str("roamed to ap-lobby-02").unwrap();
        // Kind 5 with a body that is not even a map.
        e.array(2)
            .unwrap()
            .u32(5)
            .unwrap()
            .bytes(&[1, 2, 3])
            .unwrap();
        e.writer_mut().extend_from_slice(&update);
    });
    let got = decode_batch(&input).unwrap();
    assert_eq!(
        got.events,
        vec![
            Event::Start(common::start(100_001, common::offset(0))),
            Event::Unknown {
                kind: 9,
                seq: Some(100_002),
                at: common::offset(30_000)
            },
            Event::Unknown {
                kind: 5,
                seq: None,
                at: Offset::default()
            },
            Event::Update(common::update(100_003, common::offset(60_000))),
        ]
    );
    assert_eq!(got.events[1].seq(), 100_002);
    assert_eq!(got.events[2].seq(), 0);
    assert_eq!(got.events[1].session_id(), None);
}

#[test]
fn unknown_stop_reason_codes_are_kept_as_other() {
    let mut b = common::golden_batch_stop();
    let Event::Stop(s) = &mut b.events[0] else {
        unreachable!()
    };
    s.reason = StopReason::Other(200);
    let got = decode_batch(&encode_batch(&b)).unwrap();
    assert_eq!(got, b);
    let Event::Stop(s) = &got.events[0] else {
        unreachable!()
    };
    assert_eq!((s.reason.code(), s.reason.as_str()), (200, "other"));
}

// ---------------------------------------------------------------------------------------------
// Time offsets.

#[test]
fn stamp_of_returns_none_for_hostile_base_plus_offset() {
    let at = |uptime_ms, wall_adj_ms| {
        Event::Sync(Sync {
            seq: 1,
            at: Offset {
                uptime_ms,
                wall_adj_ms,
            },
            ids: vec![],
        })
    };
    let mut b = common::batch(vec![]);
    b.base_wall_ms = u64::MAX;
    b.base_uptime_ms = u64::MAX;
    assert_eq!(b.stamp_of(&at(1, 0)), None, "uptime past u64::MAX");
    assert_eq!(b.stamp_of(&at(0, 1)), None, "wall past u64::MAX");
    assert_eq!(b.stamp_of(&at(i64::MAX, i64::MAX)), None);
    assert_eq!(
        b.stamp_of(&at(0, 0)),
        Some(Stamp {
            wall_ms: u64::MAX,
            uptime_ms: u64::MAX
        })
    );
    b.base_wall_ms = 0;
    b.base_uptime_ms = 0;
    assert_eq!(b.stamp_of(&at(-1, 0)), None, "before uptime 0");
    assert_eq!(b.stamp_of(&at(0, -1)), None, "before the epoch");
    assert_eq!(b.stamp_of(&at(i64::MIN, i64::MIN)), None);
    assert_eq!(
        b.stamp_of(&at(5, -5)),
        Some(Stamp {
            wall_ms: 0,
            uptime_ms: 5
        })
    );

    // The same through the decoder: offsets at the extremes of the wire type.
    let input = batch_map(7, |e| {
        let c = common::batch(vec![]);
        e.u8(0).unwrap().str(&c.device_id).unwrap();
        e.u8(1).unwrap().bytes(&c.boot_id.0).unwrap();
        e.u8(2).unwrap().u32(1).unwrap();
        e.u8(3).unwrap().u64(u64::MAX).unwrap();
        e.u8(4).unwrap().u64(0).unwrap();
        e.u8(5).unwrap().bool(false).unwrap();
        e.u8(6).unwrap().array(2).unwrap();
        for (up, adj) in [(i64::MIN, 0), (i64::MAX, i64::MAX)] {
            e.array(2).unwrap().u8(3).unwrap().map(3).unwrap();
            e.u8(0).unwrap().u8(1).unwrap();
            e.u8(1)
                .unwrap()
                .array(2)
                .unwrap()
                .i64(up)
                .unwrap()
                .i64(adj)
                .unwrap();
            e.u8(2).unwrap().array(0).unwrap();
        }
    });
    let b = decode_batch(&input).unwrap();
    for ev in &b.events {
        assert_eq!(b.stamp_of(ev), None, "{ev:?}");
    }
}

#[test]
fn offsets_that_do_not_fit_are_refused_by_push() {
    let mut b = common::batch(vec![]);
    b.set_base(Stamp {
        wall_ms: 0,
        uptime_ms: 0,
    });
    let ev = Event::Sync(Sync {
        seq: 1,
        at: Offset::default(),
        ids: vec![],
    });
    let far = Stamp {
        wall_ms: u64::MAX,
        uptime_ms: u64::MAX,
    };
    assert!(!b.push(far, ev.clone()), "uptime offset beyond i64");
    let stepped = Stamp {
        wall_ms: u64::MAX,
        uptime_ms: 0,
    };
    assert!(!b.push(stepped, ev.clone()), "wall adjustment beyond i64");
    assert!(b.events.is_empty());
    let near = Stamp {
        wall_ms: 1_250,
        uptime_ms: 1_000,
    };
    assert!(b.push(near, ev));
    assert_eq!(
        b.events[0].offset(),
        Offset {
            uptime_ms: 1_000,
            wall_adj_ms: 250
        }
    );
    assert_eq!(b.stamp_of(&b.events[0]), Some(near));
}
