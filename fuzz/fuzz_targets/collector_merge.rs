//! The merge layer on well-formed but adversarial event streams: the fuzzer's bytes choose
//! devices, boots, epochs, session ids, MACs, times and event kinds from small domains (so
//! collisions are frequent: one id with two MACs, a stop before its start, reused seqs,
//! stepped clocks), the batches are encoded with the wire codec and applied through the
//! collector's `Writer` (merge core and SQLite store) to an in-memory SQLite. Checked: the
//! writer never fails (the schema's unique index: at most one open session per (device,
//! mac)), start <= stop in every row, and applying the same messages again changes no row (the
//! store merges, it does not replay).
#![no_main]

use libfuzzer_sys::fuzz_target;
use rusqlite::Connection;
use wifisess_collector::store::sqlite::{schema, SqliteStore};
use wifisess_collector::writer::{Incoming, Outcome, Writer};
use wifisess_wire::{
    encode_batch, Batch, BootId, Event, MacAddr, SessionId, Stamp, Start, Stop, StopReason, Sync,
    Update,
};

const PREFIX: &str = "wifisess/v1";
const T0: u64 = 1_750_000_000_000;

struct Bytes<'a>(&'a [u8]);

impl Bytes<'_> {
    fn u8(&mut self) -> Option<u8> {
        let (&b, rest) = self.0.split_first()?;
        self.0 = rest;
        Some(b)
    }
    fn u16(&mut self) -> Option<u16> {
        Some(u16::from_be_bytes([self.u8()?, self.u8()?]))
    }
}

fn event(r: &mut Bytes, seq: u64) -> Option<(Stamp, Event)> {
    let k = r.u8()?;
    let id = SessionId(u64::from((k >> 2) & 7) + 1);
    let up = u64::from(r.u16()?) * 50;
    let step = r.u8()?;
    // Mostly wall = uptime, sometimes a stepped wall clock.
    let wall = T0
        + up
        + if step & 0xc0 == 0xc0 {
            u64::from(step & 0x3f) * 1000
        } else {
            0
        };
    let at = Stamp {
        wall_ms: wall,
        uptime_ms: up,
    };
    let v = r.u8()?;
    let e = match k & 3 {
        0 => Event::Start(Start {
            seq,
            at: Default::default(),
            id,
            mac: MacAddr([2, 0, 0, 0, 0, v & 3]),
            ifname: if v & 4 == 0 { "phy0-ap0" } else { "phy1-ap0" }.into(),
            ssid: b"fuzz".to_vec(),
            bssid: MacAddr([4, 0, 0, 0, 0, 1]),
            freq_mhz: 5180,
            age_ms: u64::from(v >> 3) * 500,
            signal_dbm: Some(-50),
            hostname: None,
        }),
        1 => Event::Update(Update {
            seq,
            at: Default::default(),
            id,
            rx_bytes: u64::from(v) * 1000,
            tx_bytes: u64::from(v) * 500,
            rx_packets: u64::from(v),
            tx_packets: u64::from(v),
            signal_avg_dbm: Some(-(v as i8 & 0x3f)),
            inactive_ms: (v & 1 == 1).then_some(u32::from(v) * 100),
            hostname: None,
        }),
        2 => Event::Stop(Stop {
            seq,
            at: Default::default(),
            id,
            reason: StopReason::from_code(v & 3),
            age_ms: u64::from(v >> 2) * 100,
            rx_bytes: u64::from(v) * 1000,
            tx_bytes: u64::from(v) * 500,
            rx_packets: u64::from(v),
            tx_packets: u64::from(v),
            signal_avg_dbm: None,
            inactive_ms: None,
        }),
        _ => Event::Sync(Sync {
            seq,
            at: Default::default(),
            ids: (0..8)
                .filter(|i| v & (1 << i) != 0)
                .map(|i| SessionId(i + 1))
                .collect(),
        }),
    };
    Some((at, e))
}

fn messages(data: &[u8]) -> Vec<(String, Vec<u8>, i64)> {
    let mut r = Bytes(data);
    let mut out = Vec::new();
    let mut receive_ms = T0 as i64;
    while out.len() < 32 {
        let Some(h) = r.u8() else { break };
        let device = if h & 1 == 0 { "ap1" } else { "ap2" };
        let mut b = Batch {
            device_id: device.into(),
            boot_id: BootId([1 + ((h >> 1) & 1); 16]),
            agent_epoch: 1 + u32::from((h >> 2) & 1),
            base_wall_ms: 0,
            base_uptime_ms: 0,
            clock_synced: true,
            events: Vec::new(),
        };
        let n = 1 + usize::from((h >> 3) & 3);
        let seq0 = u64::from(r.u8().unwrap_or(0));
        for i in 0..n {
            let Some((at, e)) = event(&mut r, seq0 + i as u64 + 1) else {
                break;
            };
            if b.events.is_empty() {
                b.set_base(at);
            }
            let _ = b.push(at, e);
        }
        if b.events.is_empty() {
            break;
        }
        receive_ms += i64::from(h >> 5) * 60_000;
        out.push((
            format!("{PREFIX}/{device}/events"),
            encode_batch(&b),
            receive_ms,
        ));
    }
    out
}

fn apply(w: &mut Writer, msgs: &[(String, Vec<u8>, i64)]) {
    for (topic, payload, receive_ms) in msgs {
        let out = w
            .ingest(&[Incoming {
                topic,
                payload,
                receive_ms: *receive_ms,
            }])
            .expect("the writer fails only on database errors");
        assert!(
            matches!(out.outcomes[..], [Outcome::Events(_)]),
            "a well-formed batch was not merged: {:?}",
            out.outcomes
        );
    }
}

fuzz_target!(|data: &[u8]| {
    let msgs = messages(data);
    let mut conn = Connection::open_in_memory().unwrap();
    schema::migrate(&mut conn).unwrap();
    let mut w = Writer::new(
        Box::new(SqliteStore::from_connection(conn)),
        PREFIX,
        Default::default(),
    );
    apply(&mut w, &msgs);
    let before = w.store().dump().unwrap();
    for line in before.iter().filter(|l| l.starts_with("session ")) {
        let field = |name: &str| -> Option<i64> {
            let rest = line.split(&format!(" {name}: ")).nth(1)?;
            let v = rest.split([',', ' ']).next()?;
            v.trim_start_matches("Some(").trim_end_matches(')').parse().ok()
        };
        if let (Some(start), Some(stop)) = (field("start_ms"), field("stop_ms")) {
            assert!(start <= stop, "start after stop: {line}");
        }
    }
    apply(&mut w, &msgs);
    let after = w.store().dump().unwrap();
    assert_eq!(before, after, "re-applying the same messages changed rows");
});
