//! The wire decoder on arbitrary bytes: `decode_status` never panics, and whatever it accepts
//! round-trips (decode → encode → decode gives the same value, and the same bytes).
#![no_main]

use libfuzzer_sys::fuzz_target;
use wifisess_wire::{decode_status, encode_status};

fuzz_target!(|data: &[u8]| {
    let Ok(status) = decode_status(data) else {
        return;
    };
    let bytes = encode_status(&status);
    let again = decode_status(&bytes).expect("a decoded status re-encodes to a decodable one");
    assert_eq!(again, status, "decode(encode(s)) != s");
    assert_eq!(encode_status(&again), bytes, "encoding is not canonical");
});
