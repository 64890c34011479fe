//! The merge layer on well-formed but adversarial event streams: the fuzzer's bytes choose
//! devices, boots, epochs, session ids, MACs, times and event kinds from small domains (so
//! collisions are frequent: one id with two MACs, a stop before its start, reused seqs,
//! stepped clocks), the batches are encoded with the wire codec and applied through
//! `merge::apply_publish` to an in-memory SQLite. Checked: `apply_publish` never fails, at
//! most one open session per (device, mac), and applying the same messages again changes no
//! row (the store merges, it does not replay).
#![no_main]

use libfuzzer_sys::fuzz_target;
use rusqlite::Connection;
use wifisess_collector::{merge, schema};
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

fn dump(conn: &Connection, sql: &str) -> Vec<String> {
    let mut st = conn.prepare(sql).unwrap();
    let n = st.column_count();
    st.query_map([], |row| {
        let mut s = String::new();
        for i in 0..n {
            s.push_str(&format!("{:?}|", row.get_ref(i)?));
        }
        Ok(s)
    })
    .unwrap()
    .map(Result::unwrap)
    .collect()
}

fn apply(conn: &mut Connection, msgs: &[(String, Vec<u8>, i64)]) {
    for (topic, payload, receive_ms) in msgs {
        let tx = conn.transaction().unwrap();
        let out = merge::apply_publish(&tx, PREFIX, topic, payload, *receive_ms)
            .expect("apply_publish fails only on SQLite errors");
        assert!(
            matches!(out, merge::Outcome::Events { .. }),
            "a well-formed batch was not merged: {out:?}"
        );
        tx.commit().unwrap();
    }
}

fuzz_target!(|data: &[u8]| {
    let msgs = messages(data);
    let mut conn = Connection::open_in_memory().unwrap();
    schema::migrate(&mut conn).unwrap();
    apply(&mut conn, &msgs);
    let dup: i64 = conn
        .query_row(
            "SELECT count(*) FROM (SELECT 1 FROM sessions WHERE stop_ms IS NULL AND mac IS NOT NULL
             GROUP BY device_id, mac HAVING count(*) > 1)",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(dup, 0, "two open sessions for one (device, mac)");
    let before = dump(&conn, "SELECT * FROM sessions ORDER BY device_id, id");
    apply(&mut conn, &msgs);
    let after = dump(&conn, "SELECT * FROM sessions ORDER BY device_id, id");
    assert_eq!(before, after, "re-applying the same messages changed rows");
});
