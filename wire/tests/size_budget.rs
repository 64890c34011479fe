//! The size budget of SPEC §4: bytes each event adds to a batch, with realistic values (a 32-byte
//! SSID, ifname `phy0-ap0`, counters in the gigabytes, seq ≈ 100 000, signal −67 dBm, age
//! 800 ms, 2.5 s after the batch's base). The measurement, and the same event as compact JSON
//! with absolute times, is `common::sizes`; the table in `docs/wire.md` and docs/BENCHMARKS.md
//! comes from `cargo run -p wifisess-wire --example event_sizes` (or, events only:
//! `cargo test -p wifisess-wire --test size_budget -- --nocapture`).

mod common;

use common::sizes;
use wifisess_wire::Event;

#[test]
fn events_fit_the_size_budget() {
    let rows = sizes::measure_events();
    println!();
    print!("{}", sizes::table(&rows));
    for r in &rows {
        if let Some(budget) = r.budget {
            assert!(
                r.cbor <= budget,
                "{}: {} bytes, budget {budget}",
                r.name,
                r.cbor
            );
        }
    }
}

#[test]
fn cbor_is_smaller_than_json_for_every_event_and_batch() {
    for r in sizes::measure_events()
        .iter()
        .chain(&sizes::measure_batches())
    {
        assert!(r.cbor < r.json, "{}: {} vs {}", r.name, r.cbor, r.json);
    }
}

#[test]
fn the_measured_values_are_the_realistic_ones() {
    let Event::Start(s) = Event::Start(common::start(100_000, sizes::AT)) else {
        unreachable!()
    };
    assert_eq!(s.ssid.len(), 32);
    assert_eq!(s.ifname, "phy0-ap0");
    assert_eq!((s.signal_dbm, s.age_ms), (Some(-67), 800));
    let u = common::update(100_001, sizes::AT);
    assert!(u.rx_bytes > 1 << 32 && u.tx_bytes > 1 << 32);
}
