//! The collector's decode-and-merge path on arbitrary MQTT payloads: each is routed, decoded,
//! checked against its topic and merged into an in-memory SQLite exactly as the writer thread
//! does (`Writer::ingest`). Hostile payloads must be counted, never panic and never make the
//! writer fail (a failure means no ack: the broker would redeliver the message forever); the
//! schema's unique index keeps at most one open session per (device, mac).
//!
//! Input: records of `[flags u8][len u16 BE][payload]`. flags bit 0: status topic (else
//! events); bit 1: publish on another device's topic (the spoof path); bits 2..: seconds
//! the receive clock advances before this message.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rusqlite::Connection;
use wifisess_collector::store::sqlite::{schema, SqliteStore};
use wifisess_collector::writer::{Incoming, Writer};
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

fuzz_target!(|data: &[u8]| {
    let mut conn = Connection::open_in_memory().unwrap();
    schema::migrate(&mut conn).unwrap();
    let mut w = Writer::new(
        Box::new(SqliteStore::from_connection(conn)),
        PREFIX,
        Default::default(),
    );
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
        w.ingest(&[Incoming {
            topic: &topic,
            payload,
            receive_ms,
        }])
        .expect("the writer fails only on database errors, never on input");
    }
});
