//! Test support for the HTTP API: the collector with `--http` and a config, a small HTTP/1.1
//! client (no dependency), an SSE reader, and wire messages for a few devices.

#![allow(dead_code)]

use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::common::{self, Broker, Collector};
use wifisess_wire::{
    encode_batch, encode_status, Batch, BootId, Event, FailedJoin, MacAddr, SessionId, Stamp,
    Start, Status, Stop, StopReason,
};

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

/// SHA-256 hex of a token, via the system's `sha256sum` (as an operator would).
pub fn sha256_hex(token: &str) -> String {
    let mut c = Command::new("sha256sum")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    c.stdin.take().unwrap().write_all(token.as_bytes()).unwrap();
    let out = c.wait_with_output().unwrap();
    String::from_utf8(out.stdout).unwrap()[..64].to_owned()
}

/// `config` without its `[limits]` table when `WIFISESS_TEST_NO_LIMITS` is set: the tests
/// then run against a build from before the table existed (`WIFISESS_TEST_COLLECTOR`), which
/// would refuse it, and check that build's own defaults.
pub fn limits(config: &str) -> String {
    if std::env::var_os("WIFISESS_TEST_NO_LIMITS").is_none() {
        return config.to_owned();
    }
    let mut out = String::new();
    let mut skip = false;
    for line in config.lines() {
        if line.trim_start().starts_with('[') {
            skip = line.trim() == "[limits]";
        }
        if !skip {
            out.push_str(line);
            out.push('\n');
        }
    }
    out
}

/// A broker, a database and `wifisess-collector run --http 127.0.0.1:PORT --config FILE`.
pub struct Env {
    pub broker: Broker,
    pub dir: tempfile::TempDir,
    /// What `--db` takes: the SQLite file, or a PostgreSQL URL ([`Env::start_on`]).
    pub db: PathBuf,
    pub http_port: u16,
    pub collector: Collector,
    /// The PostgreSQL database, when the test runs on one.
    pub engine: Option<common::pg::EngineDb>,
}

impl Env {
    /// `config` is the TOML file's text (tokens, dangling_minutes...).
    pub fn start(config: &str) -> Env {
        Env::start_with(config, None)
    }

    /// [`Env::start`] on the database `db` (either engine).
    pub fn start_on(config: &str, db: common::pg::EngineDb) -> Env {
        match db.locator {
            wifisess_collector::store::DbLocator::Sqlite(_) => Env::start_with(config, None),
            _ => Env::start_with(config, Some(db)),
        }
    }

    fn start_with(config: &str, engine: Option<common::pg::EngineDb>) -> Env {
        let broker = Broker::start();
        let dir = tempfile::tempdir().unwrap();
        let db = match &engine {
            Some(e) => PathBuf::from(&e.arg),
            None => dir.path().join("wifisess.db"),
        };
        let cfg = dir.path().join("collector.toml");
        std::fs::write(&cfg, limits(config)).unwrap();
        let http_port = free_port();
        let log = dir.path().join("collector.log");
        let err = std::fs::File::create(&log).unwrap();
        let child = Command::new(common::bin())
            .args(["run", "--config"])
            .arg(&cfg)
            .arg("--db")
            .arg(&db)
            .args(["--broker", &format!("mqtt://127.0.0.1:{}", broker.port)])
            .args(["--http", &format!("127.0.0.1:{http_port}")])
            .env("WIFISESS_CLIENT_ID", format!("collector-{}", broker.port))
            .current_dir(dir.path())
            .stdout(Stdio::null())
            .stderr(err)
            .spawn()
            .expect("starting the collector");
        let collector = Collector { child, log };
        match &engine {
            Some(e) => common::wait_subscribed(e, broker.port),
            None => common::wait_subscribed(&db, broker.port),
        }
        common::wait_for("the HTTP API", Duration::from_secs(20), || {
            TcpStream::connect(("127.0.0.1", http_port)).ok()
        });
        Env {
            broker,
            dir,
            db,
            http_port,
            collector,
            engine,
        }
    }

    pub fn get(&self, path: &str, token: Option<&str>) -> Resp {
        request(self.http_port, "GET", path, token)
    }

    pub fn post(&self, path: &str, token: Option<&str>) -> Resp {
        request(self.http_port, "POST", path, token)
    }

    /// Publishes and waits until the broker acked (the collector commits shortly after).
    pub fn publish(&self, msgs: Vec<(String, Vec<u8>)>) {
        common::publish_all(self.broker.port, msgs);
    }

    /// Waits until `GET path` (JSON) satisfies `f`.
    pub fn wait_json(
        &self,
        what: &str,
        path: &str,
        token: Option<&str>,
        mut f: impl FnMut(&serde_json::Value) -> bool,
    ) -> serde_json::Value {
        common::wait_for(what, Duration::from_secs(20), || {
            let r = self.get(path, token);
            (r.status == 200).then(|| r.json()).filter(|v| f(v))
        })
    }
}

/// A response: status, lower-cased headers, body (chunked encoding undone).
#[derive(Debug)]
pub struct Resp {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Resp {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }

    pub fn header(&self, k: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.as_str())
    }

    pub fn error(&self) -> String {
        self.json()["error"].as_str().unwrap_or_default().to_owned()
    }
}

fn send_head(port: u16, method: &str, path: &str, token: Option<&str>) -> TcpStream {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let auth = token
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n{auth}Content-Length: 0\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    s
}

fn read_head(r: &mut impl std::io::BufRead) -> (u16, Vec<(String, String)>) {
    let mut line = String::new();
    r.read_line(&mut line).unwrap();
    let status = line.split(' ').nth(1).unwrap().parse().unwrap();
    let mut headers = Vec::new();
    loop {
        line.clear();
        r.read_line(&mut line).unwrap();
        let l = line.trim_end();
        if l.is_empty() {
            break;
        }
        let (k, v) = l.split_once(':').unwrap();
        headers.push((k.trim().to_ascii_lowercase(), v.trim().to_owned()));
    }
    (status, headers)
}

/// One request on a fresh connection.
pub fn request(port: u16, method: &str, path: &str, token: Option<&str>) -> Resp {
    let s = send_head(port, method, path, token);
    let mut r = BufReader::new(s);
    let (status, headers) = read_head(&mut r);
    let chunked = headers
        .iter()
        .any(|(k, v)| k == "transfer-encoding" && v.contains("chunked"));
    let mut body = Vec::new();
    if chunked {
        loop {
            let mut size = String::new();
            r.read_line(&mut size).unwrap();
            let n = usize::from_str_radix(size.trim(), 16).unwrap();
            let mut chunk = vec![0; n + 2];
            r.read_exact(&mut chunk).unwrap();
            if n == 0 {
                break;
            }
            body.extend_from_slice(&chunk[..n]);
        }
    } else {
        r.read_to_end(&mut body).unwrap();
    }
    Resp {
        status,
        headers,
        body: String::from_utf8(body).unwrap(),
    }
}

/// A server-sent event stream being read.
pub struct Sse {
    r: BufReader<TcpStream>,
}

impl Sse {
    pub fn open(port: u16, path: &str, token: Option<&str>) -> Sse {
        let s = send_head(port, "GET", path, token);
        let mut r = BufReader::new(s);
        let (status, headers) = read_head(&mut r);
        assert_eq!(status, 200, "stream: {headers:?}");
        assert!(headers
            .iter()
            .any(|(k, v)| k == "content-type" && v.starts_with("text/event-stream")));
        Sse { r }
    }

    /// Reads until the server ends the stream; `false` if `within` passed first.
    pub fn ends_within(&mut self, within: Duration) -> bool {
        self.r.get_ref().set_read_timeout(Some(within)).unwrap();
        let deadline = std::time::Instant::now() + within;
        let mut line = String::new();
        while std::time::Instant::now() < deadline {
            line.clear();
            match self.r.read_line(&mut line) {
                Ok(0) => return true,
                Ok(_) => {}
                Err(_) => return false,
            }
        }
        false
    }

    /// The next event (name, data), skipping keep-alive comments; chunk framing is skipped
    /// by ignoring hex-only lines between events.
    pub fn next(&mut self) -> (String, String) {
        let (mut name, mut data) = (String::new(), String::new());
        loop {
            let mut line = String::new();
            let n = self.r.read_line(&mut line).expect("reading the stream");
            assert!(n > 0, "stream ended");
            let l = line.trim_end_matches(['\r', '\n']);
            if let Some(v) = l.strip_prefix("event:") {
                name = v.trim().to_owned();
            } else if let Some(v) = l.strip_prefix("data:") {
                data.push_str(v.trim());
            } else if l.is_empty() && !data.is_empty() {
                return (name, data);
            }
        }
    }
}

pub const SSID: &[u8] = b"campus";

pub fn mac(n: u8) -> MacAddr {
    MacAddr([2, 0, 0, 0, 0x10, n])
}

pub fn mac_text(n: u8) -> String {
    format!("02:00:00:00:10:{n:02x}")
}

/// A retained-style status announcing name, organization and group.
pub fn status(dev: &str, name: &str, org: &str, group: &str) -> (String, Vec<u8>) {
    status_with(dev, name, org, group, |_| {})
}

/// [`status`], changed by `f` (health counters, uptime...).
pub fn status_with(
    dev: &str,
    name: &str,
    org: &str,
    group: &str,
    f: impl FnOnce(&mut Status),
) -> (String, Vec<u8>) {
    let mut s = Status {
        device_id: dev.into(),
        boot_id: BootId([7; 16]),
        agent_epoch: 1,
        online: true,
        graceful: false,
        wall_ms: now_ms(),
        uptime_ms: 1_000,
        clock_synced: true,
        agent_version: "0.1.0".into(),
        name: Some(name.into()),
        organization: Some(org.into()),
        group: Some(group.into()),
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
    f(&mut s);
    (format!("wifisess/v1/{dev}/status"), encode_status(&s))
}

/// A batch of `dev`: sessions `(id, mac, start offset ms before now, Some(stop offset))`.
/// Events are stamped relative to one base (now − 1 h) with uptime = offset.
pub fn sessions_batch(
    dev: &str,
    seq0: u64,
    sessions: &[(u64, u8, u64, Option<u64>)],
) -> (String, Vec<u8>) {
    let base = now_ms() - 3_600_000;
    let mut events: Vec<(Stamp, Event)> = Vec::new();
    let mut seq = seq0;
    for &(id, m, start_off, stop_off) in sessions {
        let at = Stamp {
            wall_ms: base + start_off,
            uptime_ms: 10_000 + start_off,
        };
        events.push((
            at,
            Event::Start(Start {
                seq,
                at: Default::default(),
                id: SessionId(id),
                mac: mac(m),
                ifname: "phy0-ap0".into(),
                ssid: SSID.to_vec(),
                bssid: MacAddr([4, 0, 0, 0, 0, 1]),
                freq_mhz: 5180,
                age_ms: 0,
                signal_dbm: Some(-48),
                hostname: None,
            }),
        ));
        seq += 1;
        if let Some(stop) = stop_off {
            events.push((
                Stamp {
                    wall_ms: base + stop,
                    uptime_ms: 10_000 + stop,
                },
                Event::Stop(Stop {
                    seq,
                    at: Default::default(),
                    id: SessionId(id),
                    reason: StopReason::Left,
                    age_ms: 0,
                    rx_bytes: 1_000_000,
                    tx_bytes: 4_000_000,
                    rx_packets: 1000,
                    tx_packets: 3000,
                    signal_avg_dbm: Some(-52),
                    inactive_ms: Some(0),
                }),
            ));
            seq += 1;
        }
    }
    events.sort_by_key(|e| e.0.uptime_ms);
    let mut b = Batch {
        device_id: dev.into(),
        boot_id: BootId([7; 16]),
        agent_epoch: 1,
        base_wall_ms: 0,
        base_uptime_ms: 0,
        clock_synced: true,
        events: Vec::new(),
    };
    b.set_base(events[0].0);
    for (at, e) in events {
        assert!(b.push(at, e));
    }
    (format!("wifisess/v1/{dev}/events"), encode_batch(&b))
}

/// ap1 (acme/lab): 3 open, 2 closed; ap2 (beta/hall): 2 open. Returns when all are stored.
pub fn seed(env: &Env, token: Option<&str>) {
    env.publish(vec![
        status("ap1", "Lab AP", "acme", "lab"),
        status("ap2", "Hall AP", "beta", "hall"),
        sessions_batch(
            "ap1",
            1,
            &[
                (0x11, 1, 60_000, None),
                (0x12, 2, 120_000, None),
                (0x13, 3, 180_000, None),
                (0x14, 4, 240_000, Some(600_000)),
                (0x15, 5, 300_000, Some(900_000)),
            ],
        ),
        sessions_batch(
            "ap2",
            1,
            &[(0x21, 6, 360_000, None), (0x22, 7, 420_000, None)],
        ),
    ]);
    env.wait_json("7 sessions", "/api/v1/sessions", token, |v| {
        v["sessions"].as_array().unwrap().len() == 7
    });
}

pub fn config_path(dir: &Path) -> PathBuf {
    dir.join("collector.toml")
}

/// A client MAC with a registered OUI (00:1b:63, in [`OUI_CSV`]).
pub fn oui_mac(n: u8) -> MacAddr {
    MacAddr([0x00, 0x1b, 0x63, 0, 0, n])
}

/// A small IEEE registry (the format of Debian's `ieee-data` `oui.csv`).
pub const OUI_CSV: &str = "Registry,Assignment,Organization Name,Organization Address\n\
                           MA-L,001B63,\"Apple, Inc.\",1 Infinite Loop Cupertino CA US 95014\n\
                           MA-L,FCFBFB,Cisco Systems Inc,San Jose\n";

/// A labels file naming client 1 of [`oui_mac`].
pub const LABELS_CSV: &str = "mac,label\n00:1b:63:00:00:01,alice-phone\n";

/// Config lines pointing `labels_file` and `oui_file` at [`LABELS_CSV`] and [`OUI_CSV`]
/// written into `dir`.
pub fn names_config(dir: &Path) -> String {
    let (l, o) = (dir.join("labels.csv"), dir.join("oui.csv"));
    std::fs::write(&l, LABELS_CSV).unwrap();
    std::fs::write(&o, OUI_CSV).unwrap();
    format!(
        "labels_file = \"{}\"\noui_file = \"{}\"\n",
        l.display(),
        o.display()
    )
}

/// What happens on one device at an offset (ms) from the fixture's base time.
pub enum At {
    /// Session id, client, SSID, frequency.
    Start(u64, u8, &'static str, u32),
    /// Session id.
    Stop(u64),
    /// Client, SSID (given up 4 s after associating).
    Failed(u8, &'static str),
}

/// A batch of `dev` with `events` at offsets from `base_ms` (clients by [`oui_mac`]).
pub fn batch_at(dev: &str, base_ms: u64, events: &[(u64, At)]) -> (String, Vec<u8>) {
    let mut b = Batch {
        device_id: dev.into(),
        boot_id: BootId([7; 16]),
        agent_epoch: 1,
        base_wall_ms: 0,
        base_uptime_ms: 0,
        clock_synced: true,
        events: Vec::new(),
    };
    let stamp = |off: u64| Stamp {
        wall_ms: base_ms + off,
        uptime_ms: 100_000 + off,
    };
    b.set_base(stamp(events[0].0));
    let ifname = |freq: u32| if freq < 3000 { "phy0-ap0" } else { "phy1-ap0" };
    for (seq, (off, e)) in events.iter().enumerate() {
        let seq = seq as u64 + 1;
        let e = match *e {
            At::Start(id, c, ssid, freq) => Event::Start(Start {
                seq,
                at: Default::default(),
                id: SessionId(id),
                mac: oui_mac(c),
                ifname: ifname(freq).into(),
                ssid: ssid.as_bytes().to_vec(),
                bssid: MacAddr([4, 0, 0, 0, (freq / 1000) as u8, 1]),
                freq_mhz: freq,
                age_ms: 0,
                signal_dbm: Some(-50),
                hostname: None,
            }),
            At::Stop(id) => Event::Stop(Stop {
                seq,
                at: Default::default(),
                id: SessionId(id),
                reason: StopReason::Left,
                age_ms: 0,
                rx_bytes: 2_000_000,
                tx_bytes: 8_000_000,
                rx_packets: 10,
                tx_packets: 30,
                signal_avg_dbm: Some(-55),
                inactive_ms: Some(0),
            }),
            At::Failed(c, ssid) => Event::FailedJoin(FailedJoin {
                seq,
                at: Default::default(),
                mac: oui_mac(c),
                ifname: "phy0-ap0".into(),
                ssid: ssid.as_bytes().to_vec(),
                bssid: MacAddr([4, 0, 0, 0, 2, 1]),
                age_ms: 4_000,
            }),
        };
        assert!(b.push(stamp(*off), e));
    }
    (format!("wifisess/v1/{dev}/events"), encode_batch(&b))
}

/// Roams and failed joins (issue 20), from `base_ms`: ap1 "Lab AP" and ap3 "Lab AP 2" of
/// acme/lab, ap2 "Hall AP" of beta/hall.
///
/// - client 1 (labelled alice-phone): ap1 campus 2.4 GHz [0, 100 s] → ap3 campus-5g 5 GHz
///   from 104 s: a roam ap1 → ap3 with a gap of 4 000 ms, band and SSID changed;
/// - client 2: ap3 campus-5g [200 s, 300 s] → ap1 campus from 290 s: a roam ap3 → ap1 that
///   overlapped (gap −10 000 ms);
/// - failed joins: client 0x41 on ap1 campus and ap3 campus-5g, 0x42 on ap1 campus, 0x43 on
///   ap2 hall; client 3 has a session on ap2 hall.
///
/// Returns when the derive step has stored both roams (seen through the API with `token`).
pub fn seed_reports(env: &Env, token: Option<&str>, base_ms: u64) {
    const S: u64 = 1000;
    env.publish(vec![
        status("ap1", "Lab AP", "acme", "lab"),
        status("ap3", "Lab AP 2", "acme", "lab"),
        status("ap2", "Hall AP", "beta", "hall"),
        batch_at(
            "ap1",
            base_ms,
            &[
                (0, At::Start(0x51, 1, "campus", 2412)),
                (100 * S, At::Stop(0x51)),
                (150 * S, At::Failed(0x41, "campus")),
                (160 * S, At::Failed(0x42, "campus")),
                (290 * S, At::Start(0x52, 2, "campus", 2412)),
            ],
        ),
        batch_at(
            "ap3",
            base_ms,
            &[
                (104 * S, At::Start(0x61, 1, "campus-5g", 5180)),
                (170 * S, At::Failed(0x41, "campus-5g")),
                (200 * S, At::Start(0x62, 2, "campus-5g", 5180)),
                (300 * S, At::Stop(0x62)),
            ],
        ),
        batch_at(
            "ap2",
            base_ms,
            &[
                (50 * S, At::Start(0x71, 3, "hall", 2412)),
                (60 * S, At::Failed(0x43, "hall")),
            ],
        ),
    ]);
    env.wait_json("2 roams", "/api/v1/roams", token, |v| {
        v["roams"].as_array().unwrap().len() == 2
    });
    env.wait_json("4 failed joins", "/api/v1/failed-joins", token, |v| {
        v["failed_joins"].as_array().unwrap().len() == 4
    });
}
