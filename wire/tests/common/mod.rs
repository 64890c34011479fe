//! Realistic sample messages and helpers shared by the integration tests.
//!
//! The values model an OpenWrt access point that has been up for 40 days, runs a 5 GHz and a
//! 2.4 GHz network with a 32-byte SSID, and has published about 100 000 events in this run.
// Every test crate includes this module but uses only part of it.
#![allow(dead_code)]

pub mod sizes;

use wifisess_wire::{
    Batch, BootId, Event, FailedJoin, InterfaceInfo, MacAddr, Offset, SessionId, Start, Status,
    Stop, StopReason, Sync, Update,
};

/// A 32-byte SSID, the longest 802.11 allows.
pub const SSID_5G: &[u8; 32] = b"Grand Hotel Central - Guests 5G!";
/// The 2.4 GHz network's SSID.
pub const SSID_2G: &[u8] = b"Grand Hotel Guests";

pub fn mac(s: &str) -> MacAddr {
    s.parse().expect("test MAC")
}

pub fn boot_id() -> BootId {
    "4f0b9a2c-7d1e-4c3b-9a85-2e6f1d0c7b43"
        .parse()
        .expect("test boot id")
}

/// An empty batch whose base is 2025-11-22 08:26:40.123 UTC, 40 days of uptime.
pub fn batch(events: Vec<Event>) -> Batch {
    Batch {
        device_id: "ap-lobby-01".into(),
        boot_id: boot_id(),
        agent_epoch: 0x5e1f_a9c3,
        base_wall_ms: 1_763_800_000_123,
        base_uptime_ms: 3_456_789_012,
        clock_synced: true,
        events,
    }
}

/// The session id `docs/wire.md` derives for this client: boot id above, `phy0-ap0`,
/// 3c:22:fb:12:34:56, associated at boot time 3 456 788 212 ms (the batch base less 800 ms).
pub const SESSION: SessionId = SessionId(0x2e54_e977_2628_b375);

pub fn start(seq: u64, at: Offset) -> Start {
    Start {
        seq,
        at,
        id: SESSION,
        mac: mac("3c:22:fb:12:34:56"),
        ifname: "phy0-ap0".into(),
        ssid: SSID_5G.to_vec(),
        bssid: mac("94:83:c4:01:02:03"),
        freq_mhz: 5180,
        age_ms: 800,
        signal_dbm: Some(-67),
        hostname: None,
    }
}

pub fn update(seq: u64, at: Offset) -> Update {
    Update {
        seq,
        at,
        id: SESSION,
        rx_bytes: 5_368_709_120,
        tx_bytes: 12_884_901_888,
        rx_packets: 4_123_456,
        tx_packets: 9_876_543,
        signal_avg_dbm: Some(-67),
        inactive_ms: Some(800),
        hostname: None,
    }
}

/// A hostname as phones announce it in DHCP (12 bytes).
pub const HOSTNAME: &str = "Galaxy-S23-7";

/// A client that tried the 5 GHz network with a wrong passphrase: hostapd gave it up 5 s after
/// it associated (the 4-way handshake timed out).
pub fn failed_join(seq: u64, at: Offset) -> FailedJoin {
    FailedJoin {
        seq,
        at,
        mac: mac("3c:22:fb:65:43:21"),
        ifname: "phy0-ap0".into(),
        ssid: SSID_5G.to_vec(),
        bssid: mac("94:83:c4:01:02:03"),
        age_ms: 5_120,
    }
}

pub fn stop(seq: u64, at: Offset) -> Stop {
    Stop {
        seq,
        at,
        id: SESSION,
        reason: StopReason::Left,
        age_ms: 800,
        rx_bytes: 5_368_712_345,
        tx_bytes: 12_884_987_654,
        rx_packets: 4_123_501,
        tx_packets: 9_876_612,
        signal_avg_dbm: Some(-67),
        inactive_ms: Some(800),
    }
}

pub fn offset(uptime_ms: i64) -> Offset {
    Offset {
        uptime_ms,
        wall_adj_ms: 0,
    }
}

/// Golden vector: a batch with one session start.
pub fn golden_batch_start() -> Batch {
    batch(vec![Event::Start(start(100_001, offset(0)))])
}

/// Golden vector: a batch with one interim update.
pub fn golden_batch_update() -> Batch {
    batch(vec![Event::Update(update(100_002, offset(0)))])
}

/// Golden vector: a failed join (kind 4).
pub fn golden_batch_failed_join() -> Batch {
    batch(vec![Event::FailedJoin(failed_join(100_005, offset(0)))])
}

/// Golden vector: the update an agent sends when it learns the client's hostname from its
/// DHCP leases, a few seconds after the start.
pub fn golden_batch_hostname() -> Batch {
    batch(vec![Event::Update(Update {
        hostname: Some(HOSTNAME.into()),
        rx_bytes: 81_920,
        tx_bytes: 1_048_576,
        rx_packets: 312,
        tx_packets: 905,
        ..update(100_006, offset(0))
    })])
}

/// Golden vector: two stops. The first station vanished from a dump (no final station info,
/// found 15 s late); before the second, NTP stepped the wall clock 1.25 s forward.
pub fn golden_batch_stop() -> Batch {
    let vanished = Stop {
        id: SessionId(0x0123_4567_89ab_cdef),
        reason: StopReason::Vanished,
        age_ms: 15_000,
        rx_bytes: 73_400_320,
        tx_bytes: 1_073_741_824,
        rx_packets: 98_765,
        tx_packets: 812_345,
        signal_avg_dbm: None,
        inactive_ms: None,
        ..stop(100_003, offset(0))
    };
    let left = stop(
        100_004,
        Offset {
            uptime_ms: 4_000,
            wall_adj_ms: 1_250,
        },
    );
    batch(vec![Event::Stop(vanished), Event::Stop(left)])
}

/// Golden vector: the sync after a reconnect, from an access point that booted without a
/// real-time clock and has not reached an NTP server yet.
pub fn golden_batch_sync() -> Batch {
    Batch {
        base_wall_ms: 1_704_067_215_000,
        base_uptime_ms: 95_000,
        clock_synced: false,
        ..batch(vec![Event::Sync(Sync {
            seq: 65_537,
            at: offset(0),
            ids: vec![
                SESSION,
                SessionId(0x0123_4567_89ab_cdef),
                SessionId(0xfedc_ba98_7654_3210),
            ],
        })])
    }
}

pub fn interfaces() -> Vec<InterfaceInfo> {
    vec![
        InterfaceInfo {
            ifname: "phy0-ap0".into(),
            ifindex: 12,
            bssid: mac("94:83:c4:01:02:03"),
            ssid: SSID_5G.to_vec(),
            freq_mhz: 5180,
        },
        InterfaceInfo {
            ifname: "phy1-ap0".into(),
            ifindex: 13,
            bssid: mac("94:83:c4:01:02:04"),
            ssid: SSID_2G.to_vec(),
            freq_mhz: 2437,
        },
    ]
}

/// Golden vector: the retained online status after the agent's third reconnect.
pub fn golden_status_online() -> Status {
    Status {
        device_id: "ap-lobby-01".into(),
        boot_id: boot_id(),
        agent_epoch: 0x5e1f_a9c3,
        online: true,
        graceful: false,
        wall_ms: 1_763_799_990_000,
        uptime_ms: 3_456_778_889,
        clock_synced: true,
        agent_version: "0.1.0".into(),
        name: Some("Lobby AP 1".into()),
        organization: Some("Grand Hotel".into()),
        group: Some("building-a/floor-0".into()),
        interfaces: interfaces(),
        published: 99_998,
        dropped: 0,
        reconnects: 3,
        outbox_depth: 5,
        failed_joins: 17,
        tracker_overflow: 0,
        dropped_updates: 0,
        dropped_starts_stops: 0,
        spool_restored: 40,
    }
}

/// Golden vector: the offline status a clean shutdown publishes (no configured names).
pub fn golden_status_offline() -> Status {
    Status {
        online: false,
        graceful: true,
        wall_ms: 1_763_803_600_456,
        uptime_ms: 3_460_389_345,
        name: None,
        organization: None,
        group: None,
        interfaces: interfaces()[..1].to_vec(),
        published: 100_412,
        dropped: 12,
        dropped_updates: 11,
        dropped_starts_stops: 1,
        reconnects: 4,
        outbox_depth: 0,
        ..golden_status_online()
    }
}

pub fn to_hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes.iter().fold(String::new(), |mut s, b| {
        write!(s, "{b:02x}").expect("writing to a String");
        s
    })
}

/// Parses hex digits, ignoring ASCII whitespace.
pub fn from_hex(text: &str) -> Vec<u8> {
    let digits: Vec<u8> = text.bytes().filter(|c| !c.is_ascii_whitespace()).collect();
    assert!(digits.len() % 2 == 0, "odd number of hex digits");
    digits
        .chunks(2)
        .map(|p| u8::from_str_radix(std::str::from_utf8(p).expect("ascii"), 16).expect("hex"))
        .collect()
}

/// Definite-length CBOR header (major type `major`, argument `n`), for hand-built inputs.
pub fn head(major: u8, n: u64) -> Vec<u8> {
    let m = major << 5;
    match n {
        0..=23 => vec![m | n as u8],
        24..=0xff => vec![m | 24, n as u8],
        0x100..=0xffff => [&[m | 25][..], &(n as u16).to_be_bytes()].concat(),
        0x1_0000..=0xffff_ffff => [&[m | 26][..], &(n as u32).to_be_bytes()].concat(),
        _ => [&[m | 27][..], &n.to_be_bytes()].concat(),
    }
}
