//! Several collectors on one broker and one PostgreSQL (SPEC §5.6), against a real mosquitto:
//! a share group of three, one killed with SIGKILL mid-stream and restarted, PostgreSQL
//! restarted mid-stream; and what mosquitto itself does with a dead member's messages.

mod common;

use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::pg::{Cluster, EngineDb, Options};
use common::*;
use rumqttc::{Client, Event, MqttOptions, Packet, QoS};
use wifisess_collector::store::postgres::PgStore;
use wifisess_collector::store::Store;
use wifisess_collector::writer::{Incoming, Writer};

/// A dump line without the collector's receive time (`last_seen` of a device), which differs
/// between runs of the same stream.
fn comparable(lines: Vec<String>) -> Vec<String> {
    lines
        .into_iter()
        .map(|l| match (l.find(" last_seen="), l.find(" boots=")) {
            (Some(a), Some(b)) if l.starts_with("device ") => format!("{}{}", &l[..a], &l[b..]),
            _ => l,
        })
        .collect()
}

fn member(url: &str, port: u16, instance: &str, log: &std::path::Path) -> Collector {
    let err = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .unwrap();
    let child = Command::new(bin())
        .args([
            "run",
            "--db",
            url,
            "--http",
            "off",
            "--share-group",
            "fleet",
        ])
        .args(["--instance", instance])
        .args(["--broker", &format!("mqtt://127.0.0.1:{port}")])
        .env("WIFISESS_CLIENT_ID", "wsc")
        .env("WIFISESS_RETENTION_DAYS", "0")
        .env("WIFISESS_EXPIRE_HOURS", "0")
        .current_dir(log.parent().unwrap())
        .stdout(Stdio::null())
        .stderr(err)
        .spawn()
        .expect("starting a collector");
    Collector {
        child,
        log: log.to_owned(),
    }
}

/// Three collectors share the broker's messages ($share/fleet/…) and one PostgreSQL. The
/// stream: 40 devices, their messages reordered in windows and 1 in 6 sent twice. Mid-stream
/// one collector is killed (SIGKILL, its unacknowledged messages with it) and started again
/// under the same instance name; later PostgreSQL restarts at once (`pg_ctl restart -m
/// immediate`: transactions in flight fail, the collectors reconnect and retry them, nothing
/// was acknowledged before its commit). At the end the sessions and devices are exactly the
/// rows one collector makes of the same messages on SQLite.
#[test]
fn three_collectors_one_killed_and_postgres_restarted_give_one_collectors_rows() {
    let t0 = 1_760_000_000_000;
    let msgs = fleet_stream(40, 8, t0);
    // The reference: one writer, SQLite, every message once, in order.
    let sqlite = EngineDb::sqlite();
    let mut one = Writer::new(sqlite.store(), "wifisess/v1", Default::default());
    for (t, p, rx) in &msgs {
        one.ingest(&[Incoming {
            topic: t,
            payload: p,
            receive_ms: *rx,
        }])
        .unwrap();
    }
    // The collectors' schedule derives roams and aggregates (issue 20); so does the reference.
    wifisess_collector::derive::until_idle(
        &mut one,
        &wifisess_collector::derive::DeriveConfig::default(),
        wifisess_collector::timefmt::now_ms(),
    )
    .unwrap();
    let want = comparable(one.store().dump().unwrap());

    // What is published: reversed in windows of 5, every 6th message twice.
    let mut sent: Vec<(String, Vec<u8>)> = Vec::new();
    for (i, w) in msgs.chunks(5).enumerate() {
        for (j, (t, p, _)) in w.iter().rev().enumerate() {
            sent.push((t.clone(), p.clone()));
            if (i * 5 + j) % 6 == 0 {
                sent.push((t.clone(), p.clone()));
            }
        }
    }

    let pg = Cluster::start(Options::default());
    let url = pg.database("scale");
    drop(PgStore::open(&url, "setup").unwrap());
    let broker = Broker::start();
    let dir = tempfile::tempdir().unwrap();
    let log = |k: usize| dir.path().join(format!("c{k}.log"));
    let mut members: Vec<Collector> = (0..3)
        .map(|k| member(&url, broker.port, &format!("c{k}"), &log(k)))
        .collect();
    for m in &members {
        wait_for("members to subscribe", Duration::from_secs(30), || {
            m.log_text().contains("subscribed to").then_some(())
        });
    }
    std::thread::sleep(Duration::from_millis(300));

    let parts: Vec<Vec<(String, Vec<u8>)>> =
        sent.chunks(sent.len() / 4 + 1).map(<[_]>::to_vec).collect();
    let mut parts = parts.into_iter();
    publish_all(broker.port, parts.next().unwrap());
    // Kill one member while the others (and it) hold unacknowledged messages.
    publish_all(broker.port, parts.next().unwrap());
    members[1].kill9();
    publish_all(broker.port, parts.next().unwrap());
    // PostgreSQL crashes and comes back while messages are in flight.
    pg.restart_immediate();
    members[1] = member(&url, broker.port, "c1", &log(1));
    publish_all(broker.port, parts.next().unwrap());

    let mut store = PgStore::open(&url, "check").unwrap();
    let deadline = Instant::now() + Duration::from_secs(90);
    let got = loop {
        let got = store.dump().map(comparable);
        match got {
            Ok(g) if g == want => break g,
            _ if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(300)),
            Ok(g) => {
                let logs: Vec<String> = members.iter().map(Collector::log_text).collect();
                let missing: Vec<&String> =
                    want.iter().filter(|l| !g.contains(l)).take(5).collect();
                let extra: Vec<&String> = g.iter().filter(|l| !want.contains(l)).take(5).collect();
                panic!(
                    "rows differ: {} vs {} lines\nmissing: {missing:#?}\nextra: {extra:#?}\n\
                     logs: {logs:#?}",
                    g.len(),
                    want.len()
                );
            }
            Err(e) => panic!("dump: {e}"),
        }
    };
    assert_eq!(got.len(), want.len());
    // Every member worked, and the restart was seen and survived.
    let logs: Vec<String> = members.iter().map(Collector::log_text).collect();
    assert!(
        logs.iter().any(|l| l.contains("retrying")),
        "no member saw PostgreSQL go away: {logs:#?}"
    );
    for m in &mut members {
        assert!(m.terminate().success(), "{}", m.log_text());
    }
}

/// A member of a share group: an MQTT client with a persistent session and manual acks
/// (acking or not) that reports every publish it gets as (payload, dup). Setting the flag
/// ends its connection without a DISCONNECT, as a SIGKILL would.
fn mqtt_member(
    port: u16,
    id: &str,
    filter: &str,
    ack: bool,
) -> (
    std::sync::Arc<std::sync::atomic::AtomicBool>,
    mpsc::Receiver<(String, bool)>,
    std::thread::JoinHandle<()>,
) {
    let mut o = MqttOptions::new(id, "127.0.0.1", port);
    o.set_clean_session(false)
        .set_manual_acks(true)
        .set_keep_alive(Duration::from_secs(30));
    let (client, mut conn) = Client::new(o, 100);
    let (tx, rx) = mpsc::channel();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let stop2 = stop.clone();
    let filter = filter.to_owned();
    let t = std::thread::spawn(move || {
        while !stop2.load(std::sync::atomic::Ordering::Acquire) {
            match conn.recv_timeout(Duration::from_millis(50)) {
                Ok(Ok(Event::Incoming(Packet::ConnAck(_)))) => {
                    client.subscribe(filter.clone(), QoS::AtLeastOnce).unwrap();
                }
                Ok(Ok(Event::Incoming(Packet::Publish(p)))) => {
                    let _ = tx.send((String::from_utf8_lossy(&p.payload).into_owned(), p.dup));
                    if ack {
                        client.ack(&p).unwrap();
                    }
                }
                Ok(Err(_)) => break,
                _ => {}
            }
        }
    });
    (stop, rx, t)
}

fn drain(rx: &mpsc::Receiver<(String, bool)>, quiet: Duration) -> Vec<(String, bool)> {
    let mut out = Vec::new();
    while let Ok(m) = rx.recv_timeout(quiet) {
        out.push(m);
    }
    out
}

/// What mosquitto (Debian 12: 2.0.11) does with a share group member that dies (docs/SCALE.md):
/// it keeps handing that member its turn in the round robin while the member is away, so the
/// messages it had not acknowledged and every other message published meanwhile wait in its
/// persistent session, for it alone; none goes to the living member. They are delivered when
/// the member comes back under the same client id (the unacknowledged ones marked DUP). A
/// member that never returns keeps them until the broker expires its session
/// (`persistent_client_expiration`, never by default): lost, for the fleet.
#[test]
fn mosquitto_keeps_a_dead_members_share_for_it() {
    let broker = Broker::start();
    let filter = "$share/g/t/#";
    let (a, a_rx, a_t) = mqtt_member(broker.port, "member-a", filter, false);
    let (_b, b_rx, _b_t) = mqtt_member(broker.port, "member-b", filter, true);
    std::thread::sleep(Duration::from_millis(500));
    let publish = |from: usize, to: usize| {
        publish_all(
            broker.port,
            (from..to)
                .map(|i| ("t/x".to_owned(), format!("m{i}").into_bytes()))
                .collect(),
        );
    };
    publish(0, 20);
    let a1 = drain(&a_rx, Duration::from_millis(700));
    let b1 = drain(&b_rx, Duration::from_millis(300));
    assert_eq!((a1.len(), b1.len()), (10, 10), "round robin: {a1:?} {b1:?}");
    // Member A dies without acknowledging (its connection just ends, as with SIGKILL).
    a.store(true, std::sync::atomic::Ordering::Release);
    let _ = a_t.join();
    std::thread::sleep(Duration::from_millis(300));
    publish(20, 40);
    let b2 = drain(&b_rx, Duration::from_millis(1500));
    assert_eq!(
        b2.len(),
        10,
        "the living member gets only its own turns, not A's: {b2:?}"
    );
    // A comes back under its client id: its unacknowledged messages (DUP) and its turns.
    let (_a, a_rx, _a_t) = mqtt_member(broker.port, "member-a", filter, true);
    let a2 = drain(&a_rx, Duration::from_millis(1500));
    let dups = a2.iter().filter(|m| m.1).count();
    assert_eq!((a2.len(), dups), (20, 10), "{a2:?}");
    let mut all: Vec<String> = a1
        .iter()
        .chain(&b1)
        .chain(&b2)
        .chain(&a2)
        .filter(|m| !m.1)
        .map(|m| m.0.clone())
        .collect();
    all.sort();
    all.dedup();
    assert_eq!(
        all.len(),
        40,
        "every message was delivered once (besides the DUPs)"
    );
    assert!(drain(&b_rx, Duration::from_millis(200)).is_empty());
}
