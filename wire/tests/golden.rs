//! Golden vectors: `wire/golden/<name>.hex` are committed encodings, `<name>.json` their meaning
//! in readable form (the CBOR data model with field names instead of integer keys; byte strings
//! as lowercase hex, MACs as `aa:bb:cc:dd:ee:ff`, session ids as 16 hex digits, absent optional
//! fields omitted). `wire/golden/crosscheck.py` checks the same files with an independent CBOR
//! decoder.
//!
//! Both directions are tested: decoding the committed bytes gives the value built in
//! `common/mod.rs` and the value the `.json` describes, and encoding that value gives the
//! committed bytes. After an intentional format change, regenerate the files with
//! `WIFISESS_BLESS=1 cargo test -p wifisess-wire --test golden` and review the diff.

mod common;

use std::path::PathBuf;

use wifisess_wire::{
    decode_batch, decode_status, encode_batch, encode_status, Batch, Event, InterfaceInfo, Offset,
    Status,
};

/// An ordered JSON tree, so the blessed `.json` files list fields in wire-key order.
enum J {
    Bool(bool),
    Int(i128),
    Str(String),
    Arr(Vec<J>),
    Obj(Vec<(&'static str, J)>),
}

impl J {
    fn int(v: impl Into<i128>) -> J {
        J::Int(v.into())
    }

    fn hex(bytes: &[u8]) -> J {
        J::Str(common::to_hex(bytes))
    }

    fn text(s: impl ToString) -> J {
        J::Str(s.to_string())
    }

    fn to_value(&self) -> serde_json::Value {
        use serde_json::Value;
        match self {
            J::Bool(b) => Value::Bool(*b),
            J::Int(i) => match u64::try_from(*i) {
                Ok(u) => Value::from(u),
                Err(_) => Value::from(i64::try_from(*i).expect("JSON integer fits i64")),
            },
            J::Str(s) => Value::String(s.clone()),
            J::Arr(a) => Value::Array(a.iter().map(J::to_value).collect()),
            J::Obj(o) => Value::Object(
                o.iter()
                    .map(|(k, v)| ((*k).to_string(), v.to_value()))
                    .collect(),
            ),
        }
    }

    fn write_pretty(&self, out: &mut String, indent: usize) {
        let pad = |n: usize| "  ".repeat(n);
        match self {
            J::Arr(a) if a.iter().all(|v| matches!(v, J::Int(_) | J::Bool(_))) => {
                let items: Vec<String> = a.iter().map(|v| v.to_value().to_string()).collect();
                out.push('[');
                out.push_str(&items.join(", "));
                out.push(']');
            }
            J::Arr(a) if !a.is_empty() => {
                out.push_str("[\n");
                for (i, v) in a.iter().enumerate() {
                    out.push_str(&pad(indent + 1));
                    v.write_pretty(out, indent + 1);
                    out.push_str(if i + 1 < a.len() { ",\n" } else { "\n" });
                }
                out.push_str(&pad(indent));
                out.push(']');
            }
            J::Obj(o) if !o.is_empty() => {
                out.push_str("{\n");
                for (i, (k, v)) in o.iter().enumerate() {
                    out.push_str(&pad(indent + 1));
                    out.push_str(&serde_json::Value::from(*k).to_string());
                    out.push_str(": ");
                    v.write_pretty(out, indent + 1);
                    out.push_str(if i + 1 < o.len() { ",\n" } else { "\n" });
                }
                out.push_str(&pad(indent));
                out.push('}');
            }
            other => out.push_str(&other.to_value().to_string()),
        }
    }

    fn pretty(&self) -> String {
        let mut s = String::new();
        self.write_pretty(&mut s, 0);
        s.push('\n');
        s
    }
}

fn offset_json(o: Offset) -> J {
    if o.wall_adj_ms == 0 {
        J::int(o.uptime_ms)
    } else {
        J::Arr(vec![J::int(o.uptime_ms), J::int(o.wall_adj_ms)])
    }
}

/// Appends `(name, value)` only when the optional field is present, as on the wire.
fn opt<T>(fields: &mut Vec<(&'static str, J)>, name: &'static str, v: Option<T>, f: fn(T) -> J) {
    if let Some(v) = v {
        fields.push((name, f(v)));
    }
}

fn event_json(e: &Event) -> J {
    let mut f: Vec<(&'static str, J)> = Vec::new();
    match e {
        Event::Start(s) => {
            f.push(("kind", J::text("start")));
            f.push(("seq", J::int(s.seq)));
            f.push(("at", offset_json(s.at)));
            f.push(("id", J::text(s.id)));
            f.push(("mac", J::text(s.mac)));
            f.push(("ifname", J::text(&s.ifname)));
            f.push(("ssid", J::hex(&s.ssid)));
            f.push(("bssid", J::text(s.bssid)));
            f.push(("freq_mhz", J::int(s.freq_mhz)));
            f.push(("age_ms", J::int(s.age_ms)));
            opt(&mut f, "signal_dbm", s.signal_dbm, J::int);
            opt(&mut f, "hostname", s.hostname.as_deref(), J::text);
        }
        Event::Update(u) => {
            f.push(("kind", J::text("update")));
            f.push(("seq", J::int(u.seq)));
            f.push(("at", offset_json(u.at)));
            f.push(("id", J::text(u.id)));
            f.push(("rx_bytes", J::int(u.rx_bytes)));
            f.push(("tx_bytes", J::int(u.tx_bytes)));
            f.push(("rx_packets", J::int(u.rx_packets)));
            f.push(("tx_packets", J::int(u.tx_packets)));
            opt(&mut f, "signal_avg_dbm", u.signal_avg_dbm, J::int);
            opt(&mut f, "inactive_ms", u.inactive_ms, J::int);
            opt(&mut f, "hostname", u.hostname.as_deref(), J::text);
        }
        Event::Stop(s) => {
            f.push(("kind", J::text("stop")));
            f.push(("seq", J::int(s.seq)));
            f.push(("at", offset_json(s.at)));
            f.push(("id", J::text(s.id)));
            f.push(("reason", J::int(s.reason.code())));
            f.push(("age_ms", J::int(s.age_ms)));
            f.push(("rx_bytes", J::int(s.rx_bytes)));
            f.push(("tx_bytes", J::int(s.tx_bytes)));
            f.push(("rx_packets", J::int(s.rx_packets)));
            f.push(("tx_packets", J::int(s.tx_packets)));
            opt(&mut f, "signal_avg_dbm", s.signal_avg_dbm, J::int);
            opt(&mut f, "inactive_ms", s.inactive_ms, J::int);
        }
        Event::Sync(s) => {
            f.push(("kind", J::text("sync")));
            f.push(("seq", J::int(s.seq)));
            f.push(("at", offset_json(s.at)));
            f.push(("ids", J::Arr(s.ids.iter().map(J::text).collect())));
        }
        Event::FailedJoin(j) => {
            f.push(("kind", J::text("failed_join")));
            f.push(("seq", J::int(j.seq)));
            f.push(("at", offset_json(j.at)));
            f.push(("mac", J::text(j.mac)));
            f.push(("ifname", J::text(&j.ifname)));
            f.push(("ssid", J::hex(&j.ssid)));
            f.push(("bssid", J::text(j.bssid)));
            f.push(("age_ms", J::int(j.age_ms)));
        }
        Event::Unknown { kind, .. } => f.push(("kind", J::int(*kind))),
    }
    J::Obj(f)
}

fn batch_json(b: &Batch) -> J {
    J::Obj(vec![
        ("device_id", J::text(&b.device_id)),
        ("boot_id", J::hex(&b.boot_id.0)),
        ("agent_epoch", J::int(b.agent_epoch)),
        ("base_wall_ms", J::int(b.base_wall_ms)),
        ("base_uptime_ms", J::int(b.base_uptime_ms)),
        ("clock_synced", J::Bool(b.clock_synced)),
        ("events", J::Arr(b.events.iter().map(event_json).collect())),
    ])
}

fn interface_json(i: &InterfaceInfo) -> J {
    J::Obj(vec![
        ("ifname", J::text(&i.ifname)),
        ("ifindex", J::int(i.ifindex)),
        ("bssid", J::text(i.bssid)),
        ("ssid", J::hex(&i.ssid)),
        ("freq_mhz", J::int(i.freq_mhz)),
    ])
}

fn status_json(s: &Status) -> J {
    let mut f = vec![
        ("device_id", J::text(&s.device_id)),
        ("boot_id", J::hex(&s.boot_id.0)),
        ("agent_epoch", J::int(s.agent_epoch)),
        ("online", J::Bool(s.online)),
        ("graceful", J::Bool(s.graceful)),
        ("wall_ms", J::int(s.wall_ms)),
        ("uptime_ms", J::int(s.uptime_ms)),
        ("clock_synced", J::Bool(s.clock_synced)),
        ("agent_version", J::text(&s.agent_version)),
    ];
    opt(&mut f, "name", s.name.as_deref(), J::text);
    opt(&mut f, "organization", s.organization.as_deref(), J::text);
    opt(&mut f, "group", s.group.as_deref(), J::text);
    f.extend([
        (
            "interfaces",
            J::Arr(s.interfaces.iter().map(interface_json).collect()),
        ),
        ("published", J::int(s.published)),
        ("dropped", J::int(s.dropped)),
        ("reconnects", J::int(s.reconnects)),
        ("outbox_depth", J::int(s.outbox_depth)),
        ("failed_joins", J::int(s.failed_joins)),
        ("tracker_overflow", J::int(s.tracker_overflow)),
        ("dropped_updates", J::int(s.dropped_updates)),
        ("dropped_starts_stops", J::int(s.dropped_starts_stops)),
        ("spool_restored", J::int(s.spool_restored)),
    ]);
    J::Obj(f)
}

/// One golden vector: its file stem and its expected value.
enum Golden {
    Batch(&'static str, Batch),
    Status(&'static str, Status),
}

impl Golden {
    fn name(&self) -> &'static str {
        match self {
            Golden::Batch(n, _) | Golden::Status(n, _) => n,
        }
    }

    fn encode(&self) -> Vec<u8> {
        match self {
            Golden::Batch(_, b) => encode_batch(b),
            Golden::Status(_, s) => encode_status(s),
        }
    }

    fn json(&self) -> J {
        match self {
            Golden::Batch(_, b) => batch_json(b),
            Golden::Status(_, s) => status_json(s),
        }
    }

    /// Decodes `bytes` as this vector's message type, asserts it equals the expected value,
    /// and returns the decoded value's readable form.
    fn decode_and_check(&self, bytes: &[u8]) -> J {
        match self {
            Golden::Batch(n, expected) => {
                let got = decode_batch(bytes).unwrap_or_else(|e| panic!("{n}: {e}"));
                assert_eq!(&got, expected, "{n}: decoded value differs");
                batch_json(&got)
            }
            Golden::Status(n, expected) => {
                let got = decode_status(bytes).unwrap_or_else(|e| panic!("{n}: {e}"));
                assert_eq!(&got, expected, "{n}: decoded value differs");
                status_json(&got)
            }
        }
    }
}

fn goldens() -> Vec<Golden> {
    vec![
        Golden::Batch("batch_start", common::golden_batch_start()),
        Golden::Batch("batch_update", common::golden_batch_update()),
        Golden::Batch("batch_stop", common::golden_batch_stop()),
        Golden::Batch("batch_sync", common::golden_batch_sync()),
        Golden::Batch("batch_failed_join", common::golden_batch_failed_join()),
        Golden::Batch("batch_hostname", common::golden_batch_hostname()),
        Golden::Status("status_online", common::golden_status_online()),
        Golden::Status("status_offline", common::golden_status_offline()),
    ]
}

fn golden_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("golden")
}

fn read(path: &PathBuf) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| {
        panic!(
            "{}: {e} (run `WIFISESS_BLESS=1 cargo test -p wifisess-wire --test golden`)",
            path.display()
        )
    })
}

#[test]
fn golden_vectors_decode_to_expected_values_and_encode_to_committed_bytes() {
    let dir = golden_dir();
    let bless = std::env::var_os("WIFISESS_BLESS").is_some();
    for g in goldens() {
        let hex_path = dir.join(format!("{}.hex", g.name()));
        let json_path = dir.join(format!("{}.json", g.name()));
        if bless {
            let hex = common::to_hex(&g.encode()) + "\n";
            std::fs::write(&hex_path, hex).expect("write .hex");
            std::fs::write(&json_path, g.json().pretty()).expect("write .json");
        }

        let bytes = common::from_hex(&read(&hex_path));
        let decoded_json = g.decode_and_check(&bytes);
        assert_eq!(
            common::to_hex(&g.encode()),
            common::to_hex(&bytes),
            "{}: encoding the expected value does not give the committed bytes",
            g.name()
        );

        let committed: serde_json::Value = serde_json::from_str(&read(&json_path))
            .unwrap_or_else(|e| panic!("{}: {e}", json_path.display()));
        assert_eq!(
            decoded_json.to_value(),
            committed,
            "{}: the decoded value differs from what {} says",
            g.name(),
            json_path.display()
        );
    }
}

/// The golden directory holds exactly the vectors above, so `crosscheck.py` (which checks
/// every `.hex` it finds) and this test look at the same set.
#[test]
fn golden_directory_holds_exactly_the_listed_vectors() {
    if std::env::var_os("WIFISESS_BLESS").is_some() {
        return; // the files are being rewritten by the other test right now
    }
    let mut want: Vec<String> = goldens()
        .iter()
        .flat_map(|g| [format!("{}.hex", g.name()), format!("{}.json", g.name())])
        .collect();
    want.sort();
    let mut have: Vec<String> = std::fs::read_dir(golden_dir())
        .expect("wire/golden")
        .map(|e| {
            e.expect("dir entry")
                .file_name()
                .into_string()
                .expect("utf-8")
        })
        .filter(|n| n.ends_with(".hex") || n.ends_with(".json"))
        .collect();
    have.sort();
    assert_eq!(have, want);
}

#[test]
fn golden_values_are_realistic() {
    let start = common::golden_batch_start();
    let Event::Start(s) = &start.events[0] else {
        panic!("not a start")
    };
    assert_eq!(s.ssid.len(), 32, "the SSID is as long as 802.11 allows");
    assert!(s.seq > 65_535, "seq needs more than 16 bits");
    let stop = common::golden_batch_stop();
    assert!(
        stop.events.iter().any(|e| e.offset().wall_adj_ms != 0),
        "one vector carries a stepped wall clock"
    );
    let Event::Update(u) = &common::golden_batch_update().events[0] else {
        panic!("not an update")
    };
    assert!(u.tx_bytes > 1 << 32, "counters beyond 32 bits");
}

/// The online status as agents before issue 18 encoded it (the committed vector of that
/// time, without keys 19..21): it still decodes, the counters it lacks read as 0.
#[test]
fn a_status_of_an_older_agent_decodes_with_the_newer_counters_at_zero() {
    const OLD: &str =
        "b3006b61702d6c6f6262792d303101504f0b9a2c7d1e4c3b9a852e6f1d0c7b43021a5e1fa9c3\
        03f504f4051b0000019aaaabfef0061ace0a428907f50865302e312e30096a4c6f62627920415020310a6b\
        4772616e6420486f74656c0b726275696c64696e672d612f666c6f6f722d300c82a50068706879302d6170\
        30010c02469483c40102030358204772616e6420486f74656c2043656e7472616c202d2047756573747320\
        3547210419143ca50068706879312d617030010d02469483c401020403524772616e6420486f74656c2047\
        7565737473041909850d1a0001869e0e000f03100511111200";
    let got = decode_status(&common::from_hex(OLD)).expect("an older agent's status");
    let want = Status {
        dropped_updates: 0,
        dropped_starts_stops: 0,
        spool_restored: 0,
        ..common::golden_status_online()
    };
    assert_eq!(got, want);
}
