//! The collector's decode-and-merge path on arbitrary MQTT payloads: each is routed, decoded,
//! checked against its topic and merged into an in-memory SQLite exactly as the writer thread
//! does (`merge::apply_publish` in a transaction). Hostile payloads must be counted, never
//! panic and never make `apply_publish` fail (a failure means no ack: the broker would
//! redeliver the message forever). Afterwards: at most one open session per (device, mac).
//!
//! Input: records of `[flags u8][len u16 BE][payload]`. flags bit 0: status topic (else
//! events); bit 1: publish on another device's topic (the spoof path); bits 2..: seconds
//! the receive clock advances before this message.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rusqlite::Connection;
use wifisess_collector::{merge, schema};
use wifisess_wire::{decode_batch, decode_status};

const PREFIX: &str = "wifisess/v1";

fn records(mut data: &[u8]) -> Vec<(u8, &[u8])> {
    let mut out = Vec::new();
    while data.len() >= 3 && out.len() < 64 {
        let flags = data[0];
        let len = (u16::from_be_bytes([data[1], data[2]]) as usize).min(data.len() - 3);
        out.push((flags, &data[3..3 + len]));
        data = &data[3 + len..];
    }
    out
}

/// The invariants the schema and the merge promise, checked after every input.
pub fn check(conn: &Connection) {
    let dup: i64 = conn
        .query_row(
            "SELECT count(*) FROM (SELECT 1 FROM sessions WHERE stop_ms IS NULL AND mac IS NOT NULL
             GROUP BY device_id, mac HAVING count(*) > 1)",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(dup, 0, "two open sessions for one (device, mac)");
}

fuzz_target!(|data: &[u8]| {
    let mut conn = Connection::open_in_memory().unwrap();
    schema::migrate(&mut conn).unwrap();
    let mut receive_ms: i64 = 1_750_000_000_000;
    for (flags, payload) in records(data) {
        receive_ms += i64::from(flags >> 2) * 1000;
        let status = flags & 1 == 1;
        let claimed = if status {
            decode_status(payload).map(|s| s.device_id).ok()
        } else {
            decode_batch(payload).map(|b| b.device_id).ok()
        };
        let device = match (flags & 2 == 2, claimed) {
            (false, Some(d)) => d,
            _ => "ap-other".to_string(),
        };
        let topic = format!(
            "{PREFIX}/{device}/{}",
            if status { "status" } else { "events" }
        );
        let tx = conn.transaction().unwrap();
        merge::apply_publish(&tx, PREFIX, &topic, payload, receive_ms)
            .expect("apply_publish fails only on SQLite errors, never on input");
        tx.commit().unwrap();
    }
    check(&conn);
});
