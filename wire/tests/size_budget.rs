//! The size budget of SPEC §4: bytes each event adds to a batch, with realistic values (a 32-byte
//! SSID, ifname `phy0-ap0`, counters in the gigabytes, seq ≈ 100 000, signal −67 dBm, age
//! 800 ms, 2.5 s after the batch's base). Also measures the same event as compact JSON with
//! absolute times, for the table in `docs/wire.md`:
//!
//! `cargo test -p wifisess-wire --test size_budget -- --nocapture`

mod common;

use serde_json::json;
use wifisess_wire::{encode_batch, Batch, Event, Offset, SessionId, Stamp, Sync};

/// Start ≤ 96, Update ≤ 64, Stop ≤ 80 bytes per event (SPEC §4).
const BUDGET_START: usize = 96;
const BUDGET_UPDATE: usize = 64;
const BUDGET_STOP: usize = 80;

/// Where the measured event sits: 2.5 s after the batch's base, as in a batch that collects
/// events for a few seconds before it is published.
const AT: Offset = Offset {
    uptime_ms: 2_500,
    wall_adj_ms: 0,
};

/// Bytes `event` adds to a batch that already holds `others`.
fn cbor_cost(others: &[Event], event: &Event) -> usize {
    let without: Batch = common::batch(others.to_vec());
    let mut with = without.clone();
    with.events.push(event.clone());
    encode_batch(&with).len() - encode_batch(&without).len()
}

/// The same event as a compact JSON object, as a JSON API would carry it: field names as in
/// `docs/wire.md`, times absolute (wall and uptime ms), MACs and ids as text. The separating
/// comma inside a JSON array is counted too.
fn json_cost(event: &Event) -> usize {
    let b = common::batch(vec![]);
    let at = |o: Offset| -> Stamp { o.resolve(b.base()).expect("realistic offset") };
    let v = match event {
        Event::Start(s) => json!({
            "kind": "start", "seq": s.seq,
            "wall_ms": at(s.at).wall_ms, "uptime_ms": at(s.at).uptime_ms,
            "id": s.id.to_string(), "mac": s.mac.to_string(), "ifname": s.ifname,
            "ssid": String::from_utf8_lossy(&s.ssid), "bssid": s.bssid.to_string(),
            "freq_mhz": s.freq_mhz, "age_ms": s.age_ms, "signal_dbm": s.signal_dbm,
        }),
        Event::Update(u) => json!({
            "kind": "update", "seq": u.seq,
            "wall_ms": at(u.at).wall_ms, "uptime_ms": at(u.at).uptime_ms,
            "id": u.id.to_string(),
            "rx_bytes": u.rx_bytes, "tx_bytes": u.tx_bytes,
            "rx_packets": u.rx_packets, "tx_packets": u.tx_packets,
            "signal_avg_dbm": u.signal_avg_dbm, "inactive_ms": u.inactive_ms,
        }),
        Event::Stop(s) => json!({
            "kind": "stop", "seq": s.seq,
            "wall_ms": at(s.at).wall_ms, "uptime_ms": at(s.at).uptime_ms,
            "id": s.id.to_string(), "reason": s.reason.as_str(), "age_ms": s.age_ms,
            "rx_bytes": s.rx_bytes, "tx_bytes": s.tx_bytes,
            "rx_packets": s.rx_packets, "tx_packets": s.tx_packets,
            "signal_avg_dbm": s.signal_avg_dbm, "inactive_ms": s.inactive_ms,
        }),
        Event::Sync(s) => json!({
            "kind": "sync", "seq": s.seq,
            "wall_ms": at(s.at).wall_ms, "uptime_ms": at(s.at).uptime_ms,
            "ids": s.ids.iter().map(SessionId::to_string).collect::<Vec<_>>(),
        }),
        Event::Unknown { .. } => unreachable!("not measured"),
    };
    serde_json::to_string(&v).expect("json").len() + 1
}

struct Row {
    name: &'static str,
    cbor: usize,
    json: usize,
    budget: Option<usize>,
}

fn measure() -> Vec<Row> {
    // A batch that already holds a few events, as most do; the event under test follows them.
    let others = vec![
        Event::Start(common::start(99_998, common::offset(0))),
        Event::Update(common::update(99_999, common::offset(1_200))),
    ];
    let start = Event::Start(common::start(100_000, AT));
    let update = Event::Update(common::update(100_001, AT));
    let stop = Event::Stop(common::stop(100_002, AT));
    let stop_stepped = Event::Stop(common::stop(
        100_003,
        Offset {
            uptime_ms: 2_500,
            wall_adj_ms: 1_250,
        },
    ));
    let sync = |n: u64| {
        Event::Sync(Sync {
            seq: 100_004,
            at: AT,
            ids: (0..n)
                .map(|i| SessionId(0x2e54_e977_2628_b375 ^ (i << 52)))
                .collect(),
        })
    };
    let row = |name, e: &Event, budget| Row {
        name,
        cbor: cbor_cost(&others, e),
        json: json_cost(e),
        budget,
    };
    vec![
        row("start", &start, Some(BUDGET_START)),
        row("update", &update, Some(BUDGET_UPDATE)),
        row("stop", &stop, Some(BUDGET_STOP)),
        row("stop, clock stepped", &stop_stepped, None),
        row("sync, 0 ids", &sync(0), None),
        row("sync, 20 ids", &sync(20), None),
    ]
}

#[test]
fn events_fit_the_size_budget() {
    let rows = measure();
    println!();
    println!("| event               | CBOR bytes | budget | JSON bytes | JSON / CBOR |");
    println!("|---------------------|-----------:|-------:|-----------:|------------:|");
    for r in &rows {
        println!(
            "| {:<19} | {:>10} | {:>6} | {:>10} | {:>10.1}x |",
            r.name,
            r.cbor,
            r.budget.map_or("-".to_string(), |b| format!("≤ {b}")),
            r.json,
            r.json as f64 / r.cbor as f64
        );
    }
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
fn the_measured_values_are_the_realistic_ones() {
    let Event::Start(s) = Event::Start(common::start(100_000, AT)) else {
        unreachable!()
    };
    assert_eq!(s.ssid.len(), 32);
    assert_eq!(s.ifname, "phy0-ap0");
    assert_eq!((s.signal_dbm, s.age_ms), (Some(-67), 800));
    let u = common::update(100_001, AT);
    assert!(u.rx_bytes > 1 << 32 && u.tx_bytes > 1 << 32);
}
