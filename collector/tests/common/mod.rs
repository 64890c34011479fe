//! Test support: a private mosquitto per test, the collector as a real process, a publisher.

#![allow(dead_code)]

pub mod pg;

use std::io::Read as _;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use rumqttc::{Client, Event, MqttOptions, Outgoing, Packet, QoS};
use rusqlite::Connection;

/// Polls `f` until it returns `Some` or `timeout` passes (then panics with `what`).
pub fn wait_for<T>(what: &str, timeout: Duration, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn ensure_mosquitto() -> PathBuf {
    for p in ["/usr/sbin/mosquitto", "/usr/bin/mosquitto"] {
        if Path::new(p).exists() {
            return p.into();
        }
    }
    let ok = Command::new("sh")
        .args([
            "-c",
            "apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq mosquitto",
        ])
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    assert!(
        ok,
        "mosquitto is not installed and apt-get install mosquitto failed"
    );
    "/usr/sbin/mosquitto".into()
}

/// A mosquitto on its own port, killed on drop.
pub struct Broker {
    pub port: u16,
    child: Child,
    pub dir: tempfile::TempDir,
}

impl Broker {
    pub fn start() -> Broker {
        let dir = tempfile::tempdir().unwrap();
        let (port, child) = spawn_mosquitto(&dir.path().join("mosquitto.conf"), |port| {
            format!(
                "listener {port} 127.0.0.1\nallow_anonymous true\npersistence true\n\
                 persistence_location {}/\nmax_queued_messages 0\nmax_inflight_messages 100\n\
                 log_dest stderr\nlog_type error\nlog_type warning\n",
                dir.path().display()
            )
        });
        Broker { port, child, dir }
    }
}

/// Starts mosquitto with the configuration `config(port)` (written to `conf`) on a free port
/// and waits until it listens. A port from [`free_port`] can be taken by another process
/// before mosquitto binds it; mosquitto then exits, and it is started again on another port.
pub fn spawn_mosquitto(conf: &Path, config: impl Fn(u16) -> String) -> (u16, Child) {
    let bin = ensure_mosquitto();
    for _ in 0..5 {
        let port = free_port();
        std::fs::write(conf, config(port)).unwrap();
        let mut child = Command::new(&bin)
            .arg("-c")
            .arg(conf)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("starting mosquitto");
        let up = wait_for(
            "mosquitto to listen or exit",
            Duration::from_secs(10),
            || {
                if child.try_wait().expect("mosquitto's status").is_some() {
                    Some(false)
                } else {
                    listens(child.id(), port).then_some(true)
                }
            },
        );
        if up {
            return (port, child);
        }
        eprintln!("mosquitto exited at once (port {port} taken?); trying another port");
    }
    panic!("mosquitto did not stay up on any of 5 ports");
}

/// Whether process `pid` holds a socket listening on TCP `port` (Linux: `/proc/net/tcp`
/// names the listening sockets' inodes, `/proc/PID/fd` the process's). A plain connect
/// cannot tell our mosquitto from another process that took the port first.
fn listens(pid: u32, port: u16) -> bool {
    let Ok(tcp) = std::fs::read_to_string("/proc/net/tcp") else {
        return false;
    };
    let sockets: Vec<String> = tcp
        .lines()
        .skip(1)
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            let local_port = u16::from_str_radix(f.get(1)?.rsplit(':').next()?, 16).ok()?;
            // State 0A is LISTEN.
            let inode = f.get(9)?;
            (local_port == port && *f.get(3)? == "0A").then(|| format!("socket:[{inode}]"))
        })
        .collect();
    let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
        return false;
    };
    fds.flatten().any(|fd| {
        std::fs::read_link(fd.path())
            .is_ok_and(|t| sockets.iter().any(|s| t.as_os_str() == s.as_str()))
    })
}

impl Broker {
    /// Stops the broker now (the collector loses its connection).
    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The collector under test: this build, or another one named by `WIFISESS_TEST_COLLECTOR`
/// (to check that a regression test fails on an older build).
pub fn bin() -> String {
    std::env::var("WIFISESS_TEST_COLLECTOR")
        .unwrap_or_else(|_| env!("CARGO_BIN_EXE_wifisess-collector").to_owned())
}

/// A line of `/proc/PID/status` (`VmRSS`, `VmHWM`, `Threads`) as a number (kB for sizes).
pub fn proc_status(pid: u32, key: &str) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    s.lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix(':'))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

/// Open file descriptors of a process.
pub fn open_fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, |d| d.count())
}

/// `wifisess-collector run` as a child process, logging to a file; killed on drop.
pub struct Collector {
    pub child: Child,
    pub log: PathBuf,
}

impl Collector {
    /// With retention off: the fixtures use fixed 2025 timestamps, which the default
    /// 180-day retention would delete at the next start.
    pub fn start(db: &(impl DbArg + ?Sized), port: u16, log: &Path) -> Collector {
        Collector::start_env(db, port, log, &[("WIFISESS_RETENTION_DAYS", "0")])
    }

    /// Like [`Collector::start`] with extra environment variables.
    pub fn start_env(
        db: &(impl DbArg + ?Sized),
        port: u16,
        log: &Path,
        env: &[(&str, &str)],
    ) -> Collector {
        let err = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .unwrap();
        let child = Command::new(bin())
            .args(["run", "--db"])
            .arg(db.arg())
            .args(["--broker", &format!("mqtt://127.0.0.1:{port}")])
            .env("WIFISESS_CLIENT_ID", format!("collector-{port}"))
            .envs(env.iter().copied())
            .current_dir(db.workdir())
            .stdout(Stdio::null())
            .stderr(err)
            .spawn()
            .expect("starting the collector");
        Collector {
            child,
            log: log.to_owned(),
        }
    }

    pub fn log_text(&self) -> String {
        let mut s = String::new();
        if let Ok(mut f) = std::fs::File::open(&self.log) {
            let _ = f.read_to_string(&mut s);
        }
        s
    }

    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM, then waits for the exit status.
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        let pid = self.child.id().to_string();
        Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        wait_for("collector to exit", Duration::from_secs(20), || {
            self.child.try_wait().unwrap()
        })
    }
}

impl Drop for Collector {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Publishes every `(topic, payload)` with QoS 1 and returns when the broker acked all.
pub fn publish_all(port: u16, msgs: Vec<(String, Vec<u8>)>) {
    let mut opts = MqttOptions::new(
        format!("pub-{}-{}", std::process::id(), free_port()),
        "127.0.0.1",
        port,
    );
    opts.set_max_packet_size(512 * 1024, 512 * 1024);
    opts.set_keep_alive(Duration::from_secs(30));
    let (client, mut conn) = Client::new(opts, 100);
    let n = msgs.len();
    let (tx, rx) = mpsc::channel();
    let pump = std::thread::spawn(move || {
        let mut acked = 0;
        for ev in conn.iter() {
            match ev {
                Ok(Event::Incoming(Packet::PubAck(_))) => {
                    acked += 1;
                    if acked == n {
                        break;
                    }
                }
                Ok(Event::Outgoing(Outgoing::Disconnect)) => break,
                Ok(_) => {}
                Err(e) => panic!("publisher: {e}"),
            }
        }
        let _ = tx.send(acked);
    });
    for (t, p) in msgs {
        client.publish(t, QoS::AtLeastOnce, false, p).unwrap();
    }
    let acked = rx
        .recv_timeout(Duration::from_secs(120))
        .expect("publisher acks");
    assert_eq!(acked, n);
    let _ = client.disconnect();
    let _ = pump.join();
}

/// A database a test's collector and commands use: an SQLite file (its directory is the
/// working directory, where the configuration file is) or a PostgreSQL database
/// ([`pg::EngineDb`]).
pub trait DbArg {
    /// What `--db` takes.
    fn arg(&self) -> std::ffi::OsString;
    /// Where the collector and the commands run.
    fn workdir(&self) -> PathBuf;
    /// The first column of the first row of `sql`, 0 if the database or table is not there yet.
    fn scalar(&self, sql: &str) -> i64;
}

impl DbArg for Path {
    fn arg(&self) -> std::ffi::OsString {
        self.as_os_str().to_owned()
    }
    fn workdir(&self) -> PathBuf {
        self.parent().unwrap().to_owned()
    }
    fn scalar(&self, sql: &str) -> i64 {
        if !self.exists() {
            return 0;
        }
        open_db(self).query_row(sql, [], |r| r.get(0)).unwrap_or(0)
    }
}

impl DbArg for PathBuf {
    fn arg(&self) -> std::ffi::OsString {
        self.as_path().arg()
    }
    fn workdir(&self) -> PathBuf {
        self.as_path().workdir()
    }
    fn scalar(&self, sql: &str) -> i64 {
        self.as_path().scalar(sql)
    }
}

impl DbArg for pg::EngineDb {
    fn arg(&self) -> std::ffi::OsString {
        self.arg.clone().into()
    }
    fn workdir(&self) -> PathBuf {
        match &self.locator {
            wifisess_collector::store::DbLocator::Sqlite(p) => p.parent().unwrap().to_owned(),
            wifisess_collector::store::DbLocator::Postgres(_) => self.dir.path().to_owned(),
        }
    }
    fn scalar(&self, sql: &str) -> i64 {
        match &self.locator {
            wifisess_collector::store::DbLocator::Sqlite(p) => p.scalar(sql),
            wifisess_collector::store::DbLocator::Postgres(url) => {
                let Ok(mut c) = postgres::Client::connect(url, postgres::NoTls) else {
                    return 0;
                };
                c.query_one(sql, &[])
                    .map(|r| r.get::<_, i64>(0))
                    .unwrap_or(0)
            }
        }
    }
}

pub fn open_db(db: &Path) -> Connection {
    let c = Connection::open(db).unwrap();
    c.busy_timeout(Duration::from_secs(10)).unwrap();
    c
}

pub fn scalar(db: &(impl DbArg + ?Sized), sql: &str) -> i64 {
    db.scalar(sql)
}

/// Waits until the collector is subscribed: publishes a probe status until its row appears.
pub fn wait_subscribed(db: &(impl DbArg + ?Sized), port: u16) {
    let status = wifisess_wire::Status {
        device_id: "probe".into(),
        boot_id: wifisess_wire::BootId([9; 16]),
        agent_epoch: 1,
        online: true,
        graceful: false,
        wall_ms: 1_700_000_000_000,
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
    };
    let payload = wifisess_wire::encode_status(&status);
    wait_for(
        "the collector to subscribe",
        Duration::from_secs(30),
        || {
            publish_all(
                port,
                vec![("wifisess/v1/probe/status".into(), payload.clone())],
            );
            let deadline = Instant::now() + Duration::from_millis(500);
            while Instant::now() < deadline {
                if scalar(db, "SELECT count(*) FROM devices WHERE id = 'probe'") == 1 {
                    return Some(());
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            None
        },
    );
}

/// `wifisess-collector sessions --format json` rows.
pub fn sessions_json(db: &(impl DbArg + ?Sized), extra: &[&str]) -> Vec<serde_json::Value> {
    let out = Command::new(bin())
        .args(["sessions", "--format", "json", "--db"])
        .arg(db.arg())
        .args(extra)
        .current_dir(db.workdir())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "sessions failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// A stream of `devices` devices, each with sessions starting, updating and stopping, syncs,
/// an agent restart: (topic, payload, receive time), in order.
pub fn fleet_stream(devices: u64, sessions: u64, t0: i64) -> Vec<(String, Vec<u8>, i64)> {
    let mut out = Vec::new();
    for d in 0..devices {
        let dev = format!("ap{d:03}");
        let mut seq = 0;
        let mut up = 50_000u64;
        let mut batch = |events: Vec<wifisess_wire::Event>, up: u64, epoch: u32| {
            let mut b = wifisess_wire::Batch {
                device_id: dev.clone(),
                boot_id: wifisess_wire::BootId([d as u8; 16]),
                agent_epoch: epoch,
                base_wall_ms: 0,
                base_uptime_ms: 0,
                clock_synced: true,
                events: Vec::new(),
            };
            for (i, mut e) in events.into_iter().enumerate() {
                seq += 1;
                e.set_seq(seq);
                let at = wifisess_wire::Stamp {
                    wall_ms: (t0 + up as i64) as u64 + i as u64,
                    uptime_ms: up + i as u64,
                };
                if b.events.is_empty() {
                    b.set_base(at);
                }
                assert!(b.push(at, e));
            }
            (
                format!("wifisess/v1/{dev}/events"),
                wifisess_wire::encode_batch(&b),
                t0 + up as i64 + 50,
            )
        };
        for s in 0..sessions {
            use wifisess_wire::{Event, MacAddr, SessionId, Start, Stop, StopReason, Update};
            let id = SessionId(d << 32 | s);
            let mac = MacAddr([2, 0, 0, d as u8, 0, (s % 3) as u8]);
            up += 1_000;
            out.push(batch(
                vec![Event::Start(Start {
                    seq: 0,
                    at: Default::default(),
                    id,
                    mac,
                    ifname: "phy0-ap0".into(),
                    ssid: b"campus".to_vec(),
                    bssid: MacAddr([4, 0, 0, 0, 0, d as u8]),
                    freq_mhz: 2412,
                    age_ms: 100,
                    signal_dbm: Some(-50),
                    hostname: None,
                })],
                up,
                1,
            ));
            up += 1_000;
            out.push(batch(
                vec![Event::Update(Update {
                    seq: 0,
                    at: Default::default(),
                    id,
                    rx_bytes: 100 * s,
                    tx_bytes: 50 * s,
                    rx_packets: s,
                    tx_packets: s,
                    signal_avg_dbm: Some(-55),
                    inactive_ms: Some(10),
                    hostname: None,
                })],
                up,
                1,
            ));
            if s % 2 == 0 {
                up += 1_000;
                out.push(batch(
                    vec![Event::Stop(Stop {
                        seq: 0,
                        at: Default::default(),
                        id,
                        reason: StopReason::Left,
                        age_ms: 0,
                        rx_bytes: 200 * s,
                        tx_bytes: 60 * s,
                        rx_packets: 2 * s,
                        tx_packets: s,
                        signal_avg_dbm: Some(-52),
                        inactive_ms: Some(0),
                    })],
                    up,
                    1,
                ));
            }
        }
        up += 1_000;
        out.push(batch(
            vec![wifisess_wire::Event::Sync(wifisess_wire::Sync {
                seq: 0,
                at: Default::default(),
                ids: vec![],
            })],
            up,
            1,
        ));
    }
    out
}
