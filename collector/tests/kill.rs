//! `kill -9` of the collector in the middle of 20 000 events, then a restart: every session
//! is present exactly once and complete (unacked messages were redelivered by the broker's
//! persistent session and merged, not replayed). Prints the sustained ingest rate.

mod common;

use std::time::{Duration, Instant};

use common::*;
use wifisess_wire::{
    encode_batch, Batch, BootId, Event, MacAddr, SessionId, Stamp, Start, Stop, StopReason, Update,
};

const SESSIONS: u64 = 5_000;
const EVENTS_PER_SESSION: u64 = 4;
const EVENTS_PER_BATCH: usize = 50;
const DEVICES: u64 = 4;

fn messages() -> Vec<(String, Vec<u8>)> {
    let mut per_dev: Vec<Vec<Event>> = vec![Vec::new(); DEVICES as usize];
    for s in 0..SESSIONS {
        let d = (s % DEVICES) as usize;
        let id = SessionId(0x5000_0000 + s);
        let mac = MacAddr([2, 0, (s >> 16) as u8, (s >> 8) as u8, s as u8, d as u8]);
        let ev = &mut per_dev[d];
        ev.push(Event::Start(Start {
            seq: 0,
            at: Default::default(),
            id,
            mac,
            ifname: "phy0-ap0".into(),
            ssid: b"bench".to_vec(),
            bssid: MacAddr([4, 0, 0, 0, 0, d as u8]),
            freq_mhz: 2437,
            age_ms: 0,
            signal_dbm: Some(-60),
            hostname: None,
        }));
        for k in 1..=2u64 {
            ev.push(Event::Update(Update {
                seq: 0,
                at: Default::default(),
                id,
                rx_bytes: k * 1000,
                tx_bytes: k * 500,
                rx_packets: k * 10,
                tx_packets: k * 5,
                signal_avg_dbm: Some(-61),
                inactive_ms: Some(10),
                hostname: None,
            }));
        }
        ev.push(Event::Stop(Stop {
            seq: 0,
            at: Default::default(),
            id,
            reason: StopReason::Left,
            age_ms: 0,
            rx_bytes: 3000 + s,
            tx_bytes: 1500,
            rx_packets: 30,
            tx_packets: 15,
            signal_avg_dbm: Some(-62),
            inactive_ms: Some(0),
        }));
    }
    let mut out = Vec::new();
    for (d, events) in per_dev.into_iter().enumerate() {
        let dev = format!("bench{d}");
        for (c, chunk) in events.chunks(EVENTS_PER_BATCH).enumerate() {
            let mut b = Batch {
                device_id: dev.clone(),
                boot_id: BootId([d as u8 + 1; 16]),
                agent_epoch: 1,
                base_wall_ms: 0,
                base_uptime_ms: 0,
                clock_synced: true,
                events: Vec::new(),
            };
            let first = (c * EVENTS_PER_BATCH) as u64;
            b.set_base(Stamp {
                wall_ms: 1_750_000_000_000 + first * 100,
                uptime_ms: 100_000 + first * 100,
            });
            for (i, e) in chunk.iter().enumerate() {
                let n = first + i as u64;
                let mut e = e.clone();
                e.set_seq(n + 1);
                let at = Stamp {
                    wall_ms: 1_750_000_000_000 + n * 100,
                    uptime_ms: 100_000 + n * 100,
                };
                assert!(b.push(at, e));
            }
            out.push((format!("wifisess/v1/{dev}/events"), encode_batch(&b)));
        }
    }
    // Interleave devices the way several agents would publish.
    let per = out.len() / DEVICES as usize;
    let mut mixed = Vec::with_capacity(out.len());
    for i in 0..per {
        for d in 0..DEVICES as usize {
            mixed.push(out[d * per + i].clone());
        }
    }
    mixed
}

#[test]
fn kill_9_mid_stream_loses_and_doubles_nothing() {
    let broker = Broker::start();
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("wifisess.db");
    let log = dir.path().join("collector.log");
    let mut c = Collector::start(&db, broker.port, &log);
    wait_subscribed(&db, broker.port);

    let msgs = messages();
    let total_events = SESSIONS * EVENTS_PER_SESSION;
    assert_eq!(msgs.len() as u64 * EVENTS_PER_BATCH as u64, total_events);
    let port = broker.port;
    let t0 = Instant::now();
    let publisher = std::thread::spawn(move || publish_all(port, msgs));
    let stored_before = wait_for(
        "a quarter of the sessions",
        Duration::from_secs(120),
        || {
            let n = scalar(&db, "SELECT count(*) FROM sessions");
            (n >= SESSIONS as i64 / 4).then_some(n)
        },
    );
    let first_run = t0.elapsed();
    c.kill9();
    let events_before = scalar(&db, "SELECT value FROM counters WHERE name = 'events'");
    publisher.join().unwrap();

    let t1 = Instant::now();
    let _c2 = Collector::start(&db, broker.port, &log);
    wait_for("every session complete", Duration::from_secs(300), || {
        let done = scalar(
            &db,
            "SELECT count(*) FROM sessions WHERE stop_reason = 'left' AND rx_bytes >= 3000",
        );
        (done == SESSIONS as i64).then_some(())
    });
    let second_run = t1.elapsed();
    let events_after = scalar(&db, "SELECT value FROM counters WHERE name = 'events'");

    assert_eq!(
        scalar(&db, "SELECT count(*) FROM sessions"),
        SESSIONS as i64
    );
    assert_eq!(
        scalar(
            &db,
            "SELECT count(*) FROM (SELECT id FROM sessions GROUP BY id HAVING count(*) > 1)"
        ),
        0
    );
    assert_eq!(
        scalar(&db, "SELECT count(*) FROM sessions WHERE rx_bytes = 3000 + (id - 1342177280) AND tx_bytes = 1500"),
        SESSIONS as i64
    );
    assert_eq!(scalar(&db, "SELECT sum(seq_gaps) FROM devices"), 0);
    let rate1 = events_before as f64 / first_run.as_secs_f64();
    let rate2 = (events_after - events_before) as f64 / second_run.as_secs_f64();
    println!(
        "kill test: {stored_before} sessions ({events_before} events) stored in {:.2} s before kill -9 \
         ({rate1:.0} events/s); after restart {} events merged (incl. redelivered) in {:.2} s \
         ({rate2:.0} events/s); {} events counted in all for {total_events} published",
        first_run.as_secs_f64(),
        events_after - events_before,
        second_run.as_secs_f64(),
        events_after,
    );
}
