//! Hostile input at the collector, end to end through a real mosquitto and the real
//! `wifisess-collector run` process: 2 000 hostile payloads (oversized, huge claimed counts,
//! deep nesting, wrong types, garbage) interleaved with good batches, then replays of an old
//! agent epoch. Asserted: every good event is stored, every rejection is counted, replays
//! change nothing, the collector stays up. Printed (not asserted): the collector's peak RSS
//! (VmHWM) and the wall time.

mod common;

use std::time::{Duration, Instant};

use common::*;
use wifisess_wire::limits::MAX_PAYLOAD_BYTES;
use wifisess_wire::{
    decode_batch, encode_batch, Batch, BootId, Event, MacAddr, SessionId, Stamp, Start, Stop,
    StopReason,
};

const T0: u64 = 1_750_000_000_000;

/// A CBOR head: major type and argument, shortest form.
fn head(out: &mut Vec<u8>, major: u8, n: u64) {
    let m = major << 5;
    match n {
        0..=23 => out.push(m | n as u8),
        24..=0xff => out.extend([m | 24, n as u8]),
        0x100..=0xffff => {
            out.push(m | 25);
            out.extend((n as u16).to_be_bytes());
        }
        0x1_0000..=0xffff_ffff => {
            out.push(m | 26);
            out.extend((n as u32).to_be_bytes());
        }
        _ => {
            out.push(m | 27);
            out.extend(n.to_be_bytes());
        }
    }
}

/// A batch header map of `entries` pairs with keys 0..=5 filled in for device `dev`; the
/// caller appends the remaining pairs.
fn batch_head(dev: &str, entries: u64) -> Vec<u8> {
    let mut o = Vec::new();
    head(&mut o, 5, entries);
    head(&mut o, 0, 0);
    head(&mut o, 3, dev.len() as u64);
    o.extend(dev.as_bytes());
    head(&mut o, 0, 1);
    head(&mut o, 2, 16);
    o.extend([3u8; 16]);
    head(&mut o, 0, 2);
    head(&mut o, 0, 1);
    head(&mut o, 0, 3);
    head(&mut o, 0, T0);
    head(&mut o, 0, 4);
    head(&mut o, 0, 1000);
    head(&mut o, 0, 5);
    o.push(0xf5);
    o
}

/// The `i`-th hostile payload for device `dev`.
fn hostile(dev: &str, i: usize) -> Vec<u8> {
    match i % 10 {
        // Over the 256 KiB payload limit (but under the collector's MQTT packet limit).
        0 => vec![0xa7; MAX_PAYLOAD_BYTES + 1 + i % 1000],
        // An events array claiming 2^32 - 1 events.
        1 => {
            let mut o = batch_head(dev, 7);
            head(&mut o, 0, 6);
            head(&mut o, 4, u32::MAX as u64);
            o
        }
        // A sync claiming 2^64 - 1 ids.
        2 => {
            let mut o = batch_head(dev, 7);
            head(&mut o, 0, 6);
            head(&mut o, 4, 1);
            head(&mut o, 4, 2);
            head(&mut o, 0, 3);
            head(&mut o, 5, 3);
            for (k, v) in [(0u64, 1u64), (1, 0)] {
                head(&mut o, 0, k);
                head(&mut o, 0, v);
            }
            head(&mut o, 0, 2);
            head(&mut o, 4, u64::MAX);
            o
        }
        // A byte string claiming 2^63 bytes where the boot id belongs.
        3 => {
            let mut o = Vec::new();
            head(&mut o, 5, 2);
            head(&mut o, 0, 0);
            head(&mut o, 3, 4);
            o.extend(b"ap-h");
            head(&mut o, 0, 1);
            head(&mut o, 2, 1 << 63);
            o
        }
        // 200 000 nested arrays as the whole payload.
        4 => vec![0x81; 200_000],
        // 100 000 nested maps under an unknown key: skipped without recursion (no stack
        // overflow), then the batch is rejected for its missing `events`.
        5 => {
            let mut o = batch_head(dev, 7);
            head(&mut o, 0, 99);
            o.extend(std::iter::repeat_n(0xa1u8, 100_000).flat_map(|b| [b, 0x00]));
            o.push(0x00);
            o
        }
        // Wrong types: text keys, text where the boot id belongs, a negative epoch.
        6 => b"\xa1\x69device_id\x64ap-h".to_vec(),
        7 => {
            let mut o = batch_head(dev, 7);
            let at = o.len() - 1;
            o[at] = 0x63; // clock_synced: a 3-byte text instead of a bool
            o.extend(b"yes");
            head(&mut o, 0, 6);
            head(&mut o, 4, 0);
            o
        }
        // JSON, and garbage.
        8 => format!("{{\"device_id\":\"{dev}\",\"events\":[{i}]}}").into_bytes(),
        _ => (0..(i % 300 + 1))
            .map(|k| (k as u64 * 2654435761 + i as u64) as u8)
            .collect(),
    }
}

fn good(dev: &str, epoch: u32, seq: u64, e: Event, up: u64) -> Vec<u8> {
    let mut b = Batch {
        device_id: dev.into(),
        boot_id: BootId([1; 16]),
        agent_epoch: epoch,
        base_wall_ms: 0,
        base_uptime_ms: 0,
        clock_synced: true,
        events: vec![],
    };
    let at = Stamp {
        wall_ms: T0 + up,
        uptime_ms: up,
    };
    b.set_base(at);
    let mut e = e;
    e.set_seq(seq);
    assert!(b.push(at, e));
    encode_batch(&b)
}

fn start(id: u64) -> Event {
    Event::Start(Start {
        seq: 0,
        at: Default::default(),
        id: SessionId(id),
        mac: MacAddr([2, 0, 0, 0, (id >> 8) as u8, id as u8]),
        ifname: "phy0-ap0".into(),
        ssid: b"campus".to_vec(),
        bssid: MacAddr([4, 0, 0, 0, 0, 1]),
        freq_mhz: 5180,
        age_ms: 0,
        signal_dbm: Some(-50),
        hostname: None,
    })
}

fn stop(id: u64) -> Event {
    Event::Stop(Stop {
        seq: 0,
        at: Default::default(),
        id: SessionId(id),
        reason: StopReason::Left,
        age_ms: 0,
        rx_bytes: 1000,
        tx_bytes: 1000,
        rx_packets: 10,
        tx_packets: 10,
        signal_avg_dbm: None,
        inactive_ms: None,
    })
}

/// Peak resident set size of a process, kB (`VmHWM` in /proc/PID/status).
fn vm_hwm_kb(pid: u32) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    s.lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

#[test]
fn hostile_payloads_are_counted_good_data_around_them_is_stored_and_replays_change_nothing() {
    const HOSTILE: usize = 2000;
    const GOOD: u64 = 100;
    let broker = Broker::start();
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("wifisess.db");
    let mut collector = Collector::start(&db, broker.port, &dir.path().join("collector.log"));
    wait_subscribed(&db, broker.port);
    let rss_idle = vm_hwm_kb(collector.child.id());

    let topic = "wifisess/v1/ap-h/events".to_string();
    let good_topic = "wifisess/v1/ap-good/events".to_string();
    let mut msgs = Vec::new();
    let mut rejected = 0;
    let mut bytes = 0usize;
    let mut next_good = 1;
    for i in 0..HOSTILE {
        let p = hostile("ap-h", i);
        if decode_batch(&p).is_err() {
            rejected += 1;
        }
        bytes += p.len();
        msgs.push((topic.clone(), p));
        if i % (HOSTILE / GOOD as usize) == 0 {
            msgs.push((
                good_topic.clone(),
                good("ap-good", 1, next_good, start(next_good), next_good * 1000),
            ));
            next_good += 1;
        }
    }
    assert_eq!(next_good, GOOD + 1);
    assert!(rejected >= HOSTILE * 8 / 10, "{rejected}");
    let t = Instant::now();
    // In chunks, so the publisher never holds all 2 000 in flight at once.
    for chunk in msgs.chunks(200) {
        publish_all(broker.port, chunk.to_vec());
    }
    wait_for("every good session", Duration::from_secs(120), || {
        (scalar(
            &db,
            "SELECT count(*) FROM sessions WHERE device_id = 'ap-good'",
        ) == GOOD as i64)
            .then_some(())
    });
    wait_for("every rejection counted", Duration::from_secs(60), || {
        (scalar(&db, "SELECT value FROM counters WHERE name = 'undecodable'") == rejected as i64)
            .then_some(())
    });
    let took = t.elapsed();
    assert_eq!(
        scalar(
            &db,
            "SELECT value FROM counters WHERE name = 'undecodable_payload_too_large'"
        ),
        (HOSTILE / 10) as i64
    );
    assert_eq!(
        scalar(
            &db,
            "SELECT count(*) FROM sessions WHERE device_id = 'ap-h'"
        ),
        0
    );

    // A second agent run (epoch 2) stops half of the sessions; then the old epoch's starts
    // are replayed (a captured stream re-sent): nothing may change.
    let stops: Vec<_> = (1..=GOOD / 2)
        .map(|id| {
            let p = good("ap-good", 2, id, stop(id), 500_000 + id);
            (good_topic.clone(), p)
        })
        .collect();
    publish_all(broker.port, stops);
    wait_for("the stops", Duration::from_secs(30), || {
        (scalar(
            &db,
            "SELECT count(*) FROM sessions WHERE stop_ms IS NOT NULL",
        ) == 50)
            .then_some(())
    });
    let before = common::open_db(&db)
        .query_row(
            "SELECT group_concat(id || ':' || coalesce(stop_ms, 'open') || ':' || rx_bytes, ',')
             FROM (SELECT * FROM sessions WHERE id != 999 ORDER BY id)",
            [],
            |r| r.get::<_, String>(0),
        )
        .unwrap();
    let replay: Vec<_> = msgs
        .iter()
        .filter(|(t, _)| *t == good_topic)
        .cloned()
        .collect();
    let replayed = replay.len();
    publish_all(broker.port, replay);
    // A fresh session after the replays: once it is stored, the replays were merged too
    // (one publisher's messages arrive in order, and the collector has one writer).
    publish_all(
        broker.port,
        vec![(
            good_topic.clone(),
            good("ap-good", 2, 999, start(999), 600_000),
        )],
    );
    wait_for(
        "the session after the replays",
        Duration::from_secs(30),
        || (scalar(&db, "SELECT count(*) FROM sessions WHERE id = 999") == 1).then_some(()),
    );
    let after = common::open_db(&db)
        .query_row(
            "SELECT group_concat(id || ':' || coalesce(stop_ms, 'open') || ':' || rx_bytes, ',')
             FROM (SELECT * FROM sessions WHERE id != 999 ORDER BY id)",
            [],
            |r| r.get::<_, String>(0),
        )
        .unwrap();
    assert_eq!(
        before, after,
        "replaying {replayed} old-epoch batches changed rows"
    );
    assert_eq!(
        scalar(&db, "SELECT count(*) FROM sessions WHERE stop_ms IS NULL"),
        51
    );

    let rss_peak = vm_hwm_kb(collector.child.id());
    println!(
        "hostile ingest: {HOSTILE} hostile payloads ({} MiB, {rejected} undecodable) + {GOOD} \
         good batches in {:.1} s; collector peak RSS (VmHWM) {} kB after subscribing, {} kB \
         at the end",
        bytes / (1024 * 1024),
        took.as_secs_f64(),
        rss_idle.map_or("?".into(), |v| v.to_string()),
        rss_peak.map_or("?".into(), |v| v.to_string()),
    );
    assert!(collector.terminate().success(), "{}", collector.log_text());
}

/// mosquitto as docs/mosquitto-wifisess.conf.example sets it up for the collector: anonymous
/// (this test is about sizes, not credentials) with `max_packet_size 266240`.
fn broker_with_max_packet_size() -> (std::process::Child, u16, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let conf = dir.path().join("mosquitto.conf");
    std::fs::write(
        &conf,
        format!("listener {port} 127.0.0.1\nallow_anonymous true\nmax_packet_size 266240\n"),
    )
    .unwrap();
    let child = std::process::Command::new("mosquitto")
        .arg("-c")
        .arg(&conf)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .or_else(|_| {
            std::process::Command::new("/usr/sbin/mosquitto")
                .arg("-c")
                .arg(&conf)
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .spawn()
        })
        .expect("starting mosquitto");
    wait_for("mosquitto to listen", Duration::from_secs(10), || {
        std::net::TcpStream::connect(("127.0.0.1", port)).ok()
    });
    (child, port, dir)
}

/// Publishes one QoS 1 message on a throwaway connection, ignoring what becomes of it (the
/// broker may disconnect us for it).
fn publish_and_forget(port: u16, topic: &str, payload: Vec<u8>) {
    let mut o = rumqttc::MqttOptions::new(format!("big-{port}"), "127.0.0.1", port);
    o.set_max_packet_size(1 << 20, 1 << 20);
    let (client, mut conn) = rumqttc::Client::new(o, 10);
    client
        .publish(topic, rumqttc::QoS::AtLeastOnce, false, payload)
        .unwrap();
    for ev in conn.iter().take(20) {
        match ev {
            Ok(rumqttc::Event::Incoming(rumqttc::Packet::PubAck(_))) | Err(_) => break,
            Ok(_) => {}
        }
    }
}

fn good_after_oversized(port: u16, db: &std::path::Path) -> bool {
    publish_and_forget(
        port,
        "wifisess/v1/ap-h/events",
        vec![0xa7; MAX_PAYLOAD_BYTES + 64 * 1024],
    );
    publish_all(
        port,
        vec![(
            "wifisess/v1/ap-good/events".into(),
            good("ap-good", 1, 1, start(1), 1000),
        )],
    );
    (0..300).any(|_| {
        std::thread::sleep(Duration::from_millis(100));
        scalar(
            db,
            "SELECT count(*) FROM sessions WHERE device_id = 'ap-good'",
        ) == 1
    })
}

/// A publish over the collector's MQTT packet limit (256 KiB payload + 4 KiB) on a broker
/// configured as documented (`max_packet_size 266240`): the broker refuses it (disconnects
/// its publisher), so it never reaches the collector, and data after it is stored.
#[test]
fn a_packet_over_the_mqtt_limit_is_stopped_by_the_documented_broker_limit() {
    let (mut mosq, port, _bdir) = broker_with_max_packet_size();
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("wifisess.db");
    let collector = Collector::start(&db, port, &dir.path().join("collector.log"));
    wait_subscribed(&db, port);
    let ok = good_after_oversized(port, &db);
    let _ = mosq.kill();
    let _ = mosq.wait();
    assert!(ok, "good batch not stored; log:\n{}", collector.log_text());
}

/// Known bug (docs/SECURITY.md, "Oversized messages"): on a broker WITHOUT `max_packet_size`
/// one publish over the collector's packet limit wedges ingest. rumqttc fails the whole
/// connection on it (`PayloadSizeLimitExceeded`), the persistent session makes the broker
/// redeliver it after every reconnect, and nothing queued behind it is ever ingested.
/// Regression: the collector now reads packets up to 16 MiB and rejects (and acks) payloads
/// over the wire limit, so a broker without `max_packet_size` no longer wedges it.
#[test]
fn oversized_packet_does_not_wedge_ingest_on_a_broker_without_max_packet_size() {
    let broker = Broker::start();
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("wifisess.db");
    let collector = Collector::start(&db, broker.port, &dir.path().join("collector.log"));
    wait_subscribed(&db, broker.port);
    assert!(
        good_after_oversized(broker.port, &db),
        "a good batch after an oversized packet was not stored within 30 s; log:\n{}",
        collector.log_text()
    );
}
