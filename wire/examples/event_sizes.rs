//! Encoded bytes per event and per batch, CBOR (wire v1) against the same data as compact
//! JSON, as Markdown tables (docs/BENCHMARKS.md "Agent footprint", docs/wire.md "Size"):
//!
//! `cargo run -p wifisess-wire --example event_sizes`
//!
//! The sample values and the JSON form are the size budget test's (`tests/common/sizes.rs`).

#[path = "../tests/common/mod.rs"]
mod common;

use common::sizes;

fn main() {
    println!("Bytes each event adds to a batch (SPEC §4 budget), 32-byte SSID, GB counters:\n");
    print!("{}", sizes::table(&sizes::measure_events()));
    println!(
        "\nWhole batches as published (header included: device id, boot id, epoch, base time):\n"
    );
    print!("{}", sizes::table(&sizes::measure_batches()));
}
