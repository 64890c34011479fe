//! Broker access control (docs/SECURITY.md, docs/mosquitto-acl.example) against a real
//! mosquitto configured with a password file built by `mosquitto_passwd` and the documented
//! ACL: a device cannot publish as another (the broker drops it: the collector user's
//! subscription never sees it), cannot read, the collector user cannot publish, anonymous and
//! wrong-password clients are refused; and the collector still rejects a payload whose device
//! id differs from its (permitted) topic.

mod common;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::{scalar, spawn_mosquitto, wait_for};
use rumqttc::{Client, ConnectReturnCode, Event, MqttOptions, Packet, QoS};
use wifisess_wire::{encode_batch, encode_status, Batch, BootId, Event as WEvent, MacAddr};
use wifisess_wire::{SessionId, Stamp, Start, Status};

const COLLECTOR_USER: &str = "wifisess-collector";

/// mosquitto with the documented ACL file (docs/mosquitto-acl.example, used verbatim) and a
/// password file made by `mosquitto_passwd`; killed on drop.
struct AclBroker {
    port: u16,
    child: Child,
    _dir: tempfile::TempDir,
}

impl AclBroker {
    fn start(users: &[(&str, &str)]) -> AclBroker {
        let dir = tempfile::tempdir().unwrap();
        let passwd = dir.path().join("wifisess.passwd");
        for (i, (user, pw)) in users.iter().enumerate() {
            let mut cmd = Command::new("mosquitto_passwd");
            if i == 0 {
                cmd.arg("-c");
            }
            let st = cmd
                .arg("-b")
                .arg(&passwd)
                .args([user, pw])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .expect("mosquitto_passwd runs");
            assert!(st.success(), "mosquitto_passwd for {user}");
        }
        let acl = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/mosquitto-acl.example");
        let (port, child) = spawn_mosquitto(&dir.path().join("mosquitto.conf"), |port| {
            format!(
                "per_listener_settings false\nallow_anonymous false\npassword_file {}\n\
                 acl_file {}\nlistener {port} 127.0.0.1\npersistence false\n\
                 log_dest stderr\nlog_type error\n",
                passwd.display(),
                acl.display()
            )
        });
        AclBroker {
            port,
            child,
            _dir: dir,
        }
    }
}

impl Drop for AclBroker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An MQTT client thread: connects with `user`/`pw`, subscribes to `sub` if given, reports
/// the CONNACK code, SUBACK, and every message received (topic, payload).
struct Peer {
    client: Client,
    connack: mpsc::Receiver<ConnectReturnCode>,
    msgs: mpsc::Receiver<(String, Vec<u8>)>,
    pubacks: mpsc::Receiver<u16>,
}

fn peer(port: u16, id: &str, creds: Option<(&str, &str)>, sub: Option<&str>) -> Peer {
    let id = format!("{id}-{port}");
    let mut o = MqttOptions::new(id.clone(), "127.0.0.1", port);
    o.set_keep_alive(Duration::from_secs(30));
    if let Some((u, p)) = creds {
        o.set_credentials(u, p);
    }
    let (client, mut conn) = Client::new(o, 100);
    if let Some(s) = sub {
        client.subscribe(s, QoS::AtLeastOnce).unwrap();
    }
    let (ctx, connack) = mpsc::channel();
    let (mtx, msgs) = mpsc::channel();
    let (atx, pubacks) = mpsc::channel();
    std::thread::spawn(move || {
        for ev in conn.iter() {
            match ev {
                Ok(Event::Incoming(Packet::ConnAck(c))) => {
                    let _ = ctx.send(c.code);
                }
                Ok(Event::Incoming(Packet::Publish(p))) => {
                    let _ = mtx.send((p.topic.clone(), p.payload.to_vec()));
                }
                Ok(Event::Incoming(Packet::PubAck(a))) => {
                    let _ = atx.send(a.pkid);
                }
                Ok(_) => {}
                Err(rumqttc::ConnectionError::ConnectionRefused(code)) => {
                    let _ = ctx.send(code);
                    break;
                }
                Err(e) => {
                    eprintln!("peer {id}: connection ended: {e}");
                    break;
                }
            }
        }
    });
    Peer {
        client,
        connack,
        msgs,
        pubacks,
    }
}

impl Peer {
    fn connack(&self) -> ConnectReturnCode {
        self.connack
            .recv_timeout(Duration::from_secs(10))
            .expect("a CONNACK")
    }

    /// Publishes QoS 1 and waits for the broker's PUBACK (mosquitto acks a denied publish
    /// too, then drops it: the ack proves nothing, the subscriber does).
    fn publish(&self, topic: &str, payload: Vec<u8>) {
        self.client
            .publish(topic, QoS::AtLeastOnce, false, payload)
            .unwrap();
        self.pubacks
            .recv_timeout(Duration::from_secs(10))
            .expect("PUBACK");
    }
}

/// Receives until `marker` arrives on `topic`; returns everything received before it.
fn until_marker(p: &Peer, topic: &str, marker: &[u8]) -> Vec<(String, Vec<u8>)> {
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut seen = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let m = p
            .msgs
            .recv_timeout(left)
            .unwrap_or_else(|_| panic!("marker on {topic} never arrived; got {seen:?}"));
        if m.0 == topic && m.1 == marker {
            return seen;
        }
        seen.push(m);
    }
}

fn status(dev: &str) -> Vec<u8> {
    encode_status(&Status {
        device_id: dev.into(),
        boot_id: BootId([7; 16]),
        agent_epoch: 1,
        online: true,
        graceful: false,
        wall_ms: 1_750_000_000_000,
        uptime_ms: 1,
        clock_synced: true,
        agent_version: "test".into(),
        name: None,
        organization: None,
        group: None,
        interfaces: vec![],
        published: 0,
        dropped: 0,
        reconnects: 0,
        outbox_depth: 0,
        failed_joins: 0,
        tracker_overflow: 0,
        dropped_updates: 0,
        dropped_starts_stops: 0,
        spool_restored: 0,
    })
}

fn start_batch(dev: &str, id: u64) -> Vec<u8> {
    let mut b = Batch {
        device_id: dev.into(),
        boot_id: BootId([7; 16]),
        agent_epoch: 1,
        base_wall_ms: 0,
        base_uptime_ms: 0,
        clock_synced: true,
        events: vec![],
    };
    let at = Stamp {
        wall_ms: 1_750_000_000_000,
        uptime_ms: 1000,
    };
    b.set_base(at);
    assert!(b.push(
        at,
        WEvent::Start(Start {
            seq: id,
            at: Default::default(),
            id: SessionId(id),
            mac: MacAddr([2, 0, 0, 0, 0, id as u8]),
            ifname: "phy0-ap0".into(),
            ssid: b"campus".to_vec(),
            bssid: MacAddr([4, 0, 0, 0, 0, 1]),
            freq_mhz: 5180,
            age_ms: 0,
            signal_dbm: None,
            hostname: None,
        })
    ));
    encode_batch(&b)
}

const USERS: &[(&str, &str)] = &[
    (COLLECTOR_USER, "collector-secret"),
    ("ap1", "ap1-secret"),
    ("ap2", "ap2-secret"),
];

#[test]
fn a_device_cannot_publish_as_another_nor_read_and_strangers_are_refused() {
    let b = AclBroker::start(USERS);
    let col = peer(
        b.port,
        "col",
        Some((COLLECTOR_USER, "collector-secret")),
        Some("wifisess/v1/#"),
    );
    assert_eq!(col.connack(), ConnectReturnCode::Success);
    // ap2 subscribes to everything: the ACL gives devices no read access.
    let ap2 = peer(
        b.port,
        "ap2",
        Some(("ap2", "ap2-secret")),
        Some("wifisess/v1/#"),
    );
    assert_eq!(ap2.connack(), ConnectReturnCode::Success);
    let ap1 = peer(b.port, "ap1", Some(("ap1", "ap1-secret")), None);
    assert_eq!(ap1.connack(), ConnectReturnCode::Success);
    // The collector's subscription is in place once a probe of ap1 reaches it.
    wait_for(
        "the collector subscription",
        Duration::from_secs(10),
        || {
            ap1.publish("wifisess/v1/ap1/probe", b"probe".to_vec());
            col.msgs
                .recv_timeout(Duration::from_millis(300))
                .ok()
                .filter(|m| m.0 == "wifisess/v1/ap1/probe")
        },
    );

    // ap1 publishes as ap2 (events and the retained status), outside the prefix, and at the
    // prefix root; then a marker on its own topic. Messages of one publisher reach a
    // subscriber in order, so whatever arrives before the marker is everything that got
    // through.
    ap1.publish("wifisess/v1/ap2/events", start_batch("ap2", 1));
    ap1.publish("wifisess/v1/ap2/status", status("ap2"));
    ap1.publish("wifisess/v1/evil", b"x".to_vec());
    ap1.publish("other/topic", b"x".to_vec());
    ap1.publish("wifisess/v1/ap1/events", b"marker-1".to_vec());
    let leaked = until_marker(&col, "wifisess/v1/ap1/events", b"marker-1");
    assert!(
        leaked.iter().all(|(t, _)| t == "wifisess/v1/ap1/probe"),
        "the broker let ap1 publish elsewhere: {leaked:?}"
    );

    // The collector user may read but not write.
    col.publish("wifisess/v1/ap2/events", start_batch("ap2", 2));
    ap2.publish("wifisess/v1/ap2/events", b"marker-2".to_vec());
    let leaked = until_marker(&col, "wifisess/v1/ap2/events", b"marker-2");
    assert!(
        leaked.iter().all(|(t, _)| t == "wifisess/v1/ap1/probe"),
        "the collector user could publish: {leaked:?}"
    );
    // ap2 read nothing at all (not even its own messages).
    assert!(
        ap2.msgs.try_recv().is_err(),
        "a device could read the wifisess topics"
    );

    // Strangers: anonymous, wrong password, a device id without a password entry.
    let anon = peer(b.port, "anon", None, None);
    assert_eq!(anon.connack(), ConnectReturnCode::NotAuthorized);
    let wrong = peer(b.port, "wrong", Some(("ap1", "guess")), None);
    assert_eq!(wrong.connack(), ConnectReturnCode::NotAuthorized);
    let ghost = peer(b.port, "ghost", Some(("ap3", "ap1-secret")), None);
    assert_eq!(ghost.connack(), ConnectReturnCode::NotAuthorized);
}

/// The real collector behind the ACL broker, logged in as the read-only collector user.
struct Collector {
    child: Child,
}

impl Drop for Collector {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn the_collector_rejects_a_payload_naming_another_device_on_a_permitted_topic() {
    let b = AclBroker::start(USERS);
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("wifisess.db");
    let log = std::fs::File::create(dir.path().join("collector.log")).unwrap();
    let _collector = Collector {
        child: Command::new(common::bin())
            .args(["run", "--db"])
            .arg(&db)
            .args(["--broker", &format!("mqtt://127.0.0.1:{}", b.port)])
            .env("WIFISESS_CLIENT_ID", format!("collector-{}", b.port))
            .env("WIFISESS_USERNAME", COLLECTOR_USER)
            .env("WIFISESS_PASSWORD", "collector-secret")
            .current_dir(dir.path())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("starting the collector"),
    };
    let ap1 = peer(b.port, "ap1", Some(("ap1", "ap1-secret")), None);
    assert_eq!(ap1.connack(), ConnectReturnCode::Success);
    // Subscribed once ap1's own status becomes a device row.
    wait_for(
        "the collector to subscribe",
        Duration::from_secs(30),
        || {
            ap1.publish("wifisess/v1/ap1/status", status("ap1"));
            let deadline = Instant::now() + Duration::from_millis(500);
            while Instant::now() < deadline {
                if scalar(&db, "SELECT count(*) FROM devices WHERE id = 'ap1'") == 1 {
                    return Some(());
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            None
        },
    );
    // ap1, on its own topic (the broker allows it), claims to be ap2.
    ap1.publish("wifisess/v1/ap1/events", start_batch("ap2", 0x51));
    ap1.publish("wifisess/v1/ap1/status", status("ap2"));
    ap1.publish("wifisess/v1/ap1/events", start_batch("ap1", 0x52));
    wait_for("ap1's own session", Duration::from_secs(20), || {
        (scalar(&db, "SELECT count(*) FROM sessions WHERE id = 82") == 1).then_some(())
    });
    assert_eq!(
        scalar(
            &db,
            "SELECT value FROM counters WHERE name = 'rejected_spoofed'"
        ),
        2
    );
    assert_eq!(
        scalar(&db, "SELECT count(*) FROM devices WHERE id = 'ap2'"),
        0
    );
    assert_eq!(
        scalar(&db, "SELECT count(*) FROM sessions WHERE id = 81"),
        0
    );
}
