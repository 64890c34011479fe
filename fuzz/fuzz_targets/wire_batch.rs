//! The wire decoder on arbitrary bytes: `decode_batch` never panics, and whatever it accepts
//! re-encodes to bytes that decode to the same value and encode to the same bytes again
//! (decode → encode → decode is stable).
#![no_main]

use libfuzzer_sys::fuzz_target;
use wifisess_wire::{decode_batch, encode_batch};

fuzz_target!(|data: &[u8]| {
    let Ok(batch) = decode_batch(data) else {
        return;
    };
    // What the collector does with every event: resolve its time (None on overflow).
    for e in &batch.events {
        let _ = batch.stamp_of(e);
        let _ = e.session_id();
    }
    let bytes = encode_batch(&batch);
    let again = decode_batch(&bytes).expect("a decoded batch re-encodes to a decodable one");
    assert_eq!(again, batch, "decode(encode(b)) != b");
    assert_eq!(encode_batch(&again), bytes, "encoding is not canonical");
});
