//! The query and maintenance commands (`sessions`, `devices`, `status`, `presence`, `prune`,
//! `expire`) against a database built through the real ingest path: wire batches published
//! to a private mosquitto, stored by `wifisess-collector run`.

mod common;

use std::path::{Path, PathBuf};

use common::pg::{self, EngineDb};
use std::process::Command;
use std::time::Duration;

use common::*;
use serde_json::Value;
use wifisess_wire::{
    encode_batch, encode_status, Batch, BootId, Event, MacAddr, SessionId, Stamp, Start, Status,
    Stop, StopReason, Update,
};

const MIN: i64 = 60_000;
const HOUR: i64 = 60 * MIN;
const DAY: i64 = 24 * HOUR;

/// The collector's configuration in the test directory (picked up as the default file by
/// `run` and by every command, which all run there): inventory and organization limits.
const CONFIG: &str = r#"
[[devices]]
id = "ap1"
name = "Lab-North"
organization = "acme"
group = "lab"

[[devices]]
id = "ap2"
name = "Lab-South"
organization = "acme"
group = "lab"

[max_open_sessions]
acme = 1
beta = 5
"#;

fn mac(n: u8) -> MacAddr {
    MacAddr([2, 0, 0, 0, 0, n])
}

fn mac_s(n: u8) -> String {
    mac(n).to_string()
}

/// Builds wire events for one device of one boot whose uptime origin is `origin` (wall ms).
struct Dev {
    id: &'static str,
    origin: i64,
    seq: u64,
    events: Vec<(Stamp, Event)>,
}

impl Dev {
    fn new(id: &'static str, origin: i64) -> Dev {
        Dev {
            id,
            origin,
            seq: 0,
            events: Vec::new(),
        }
    }

    fn stamp(&self, wall: i64) -> Stamp {
        Stamp {
            wall_ms: wall as u64,
            uptime_ms: (wall - self.origin) as u64,
        }
    }

    fn next(&mut self) -> u64 {
        self.seq += 1;
        self.seq
    }

    fn start(&mut self, at: i64, id: u64, client: u8, ssid: &str) {
        let seq = self.next();
        let e = Event::Start(Start {
            seq,
            at: Default::default(),
            id: SessionId(id),
            mac: mac(client),
            ifname: "phy0-ap0".into(),
            ssid: ssid.as_bytes().to_vec(),
            bssid: MacAddr([4, 0, 0, 0, 0, client]),
            freq_mhz: 5180,
            age_ms: 0,
            signal_dbm: Some(-50),
            hostname: None,
        });
        self.events.push((self.stamp(at), e));
    }

    /// An update at `at` saying the client was last active `inactive` ms before.
    fn update(&mut self, at: i64, id: u64, inactive: u32) {
        let seq = self.next();
        let e = Event::Update(Update {
            seq,
            at: Default::default(),
            id: SessionId(id),
            rx_bytes: 1000,
            tx_bytes: 2000,
            rx_packets: 10,
            tx_packets: 20,
            signal_avg_dbm: Some(-55),
            inactive_ms: Some(inactive),
            hostname: None,
        });
        self.events.push((self.stamp(at), e));
    }

    fn stop(&mut self, at: i64, id: u64) {
        let seq = self.next();
        let e = Event::Stop(Stop {
            seq,
            at: Default::default(),
            id: SessionId(id),
            reason: StopReason::Left,
            age_ms: 0,
            rx_bytes: 5000,
            tx_bytes: 6000,
            rx_packets: 50,
            tx_packets: 60,
            signal_avg_dbm: Some(-52),
            inactive_ms: Some(0),
        });
        self.events.push((self.stamp(at), e));
    }

    /// The events so far as one batch message, in uptime order.
    fn batch(&mut self) -> (String, Vec<u8>) {
        let mut ev = std::mem::take(&mut self.events);
        ev.sort_by_key(|e| e.0.uptime_ms);
        let mut b = Batch {
            device_id: self.id.into(),
            boot_id: BootId([self.id.as_bytes()[2]; 16]),
            agent_epoch: 1,
            base_wall_ms: 0,
            base_uptime_ms: 0,
            clock_synced: true,
            events: Vec::new(),
        };
        b.set_base(ev[0].0);
        for (at, e) in ev {
            assert!(b.push(at, e));
        }
        (format!("wifisess/v1/{}/events", self.id), encode_batch(&b))
    }

    fn status(&self, at: i64, name: &str, org: &str, group: &str) -> (String, Vec<u8>) {
        let s = Status {
            device_id: self.id.into(),
            boot_id: BootId([self.id.as_bytes()[2]; 16]),
            agent_epoch: 1,
            online: true,
            graceful: false,
            wall_ms: at as u64,
            uptime_ms: (at - self.origin) as u64,
            clock_synced: true,
            agent_version: "1.2.3".into(),
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
        (format!("wifisess/v1/{}/status", self.id), encode_status(&s))
    }
}

struct Env {
    _broker: Broker,
    /// The working directory of the collector and the commands (configuration, logs).
    dir: PathBuf,
    db: EngineDb,
    collector: Collector,
    /// Start of the story: three hours before the fixture was published.
    t0: i64,
}

/// The story (T0 = now − 3 h; clients A=01, B=02, C=03, D=04, E=05):
/// - ap1 (inventory "Lab-North", lab, acme; announces "openwrt-1"/"announced"):
///   s1 A [T0, T0+30m] campus; s2 B [T0+10m, open) campus, active a minute ago.
/// - ap2 ("Lab-South", lab, acme): s3 A roams here [T0+20m, T0+60m] campus;
///   s4 C [T0, open) guest, last active at T0+5m (dangling).
/// - ap3 (announces "Office", office, beta): s5 D [T0+70m, open) guest; s6 A
///   [T0+100m, T0+110m] campus; s7 E [now−200d, now−200d+1h] campus (for retention).
fn fixture(db: EngineDb) -> Env {
    let broker = Broker::start();
    let dir = db.workdir();
    std::fs::write(dir.join("wifisess-collector.toml"), CONFIG).unwrap();
    let collector = Collector::start(&db, broker.port, &dir.join("collector.log"));
    wait_subscribed(&db, broker.port);
    let now = wifisess_collector::timefmt::now_ms() / 1000 * 1000;
    let t0 = now - 3 * HOUR;
    let origin = now - 250 * DAY;
    let (mut ap1, mut ap2, mut ap3) = (
        Dev::new("ap1", origin),
        Dev::new("ap2", origin),
        Dev::new("ap3", origin),
    );
    ap1.start(t0, 1, 1, "campus");
    ap1.stop(t0 + 30 * MIN, 1);
    ap1.start(t0 + 10 * MIN, 2, 2, "campus");
    ap1.update(now - MIN, 2, 1000);
    ap2.start(t0 + 20 * MIN, 3, 1, "campus");
    ap2.stop(t0 + 60 * MIN, 3);
    ap2.start(t0, 4, 3, "guest");
    ap2.update(t0 + 10 * MIN, 4, 5 * MIN as u32);
    ap3.start(now - 200 * DAY, 7, 5, "campus");
    ap3.stop(now - 200 * DAY + HOUR, 7);
    let old = ap3.batch();
    ap3.start(t0 + 70 * MIN, 5, 4, "guest");
    ap3.update(now - 2 * MIN, 5, 1000);
    ap3.start(t0 + 100 * MIN, 6, 1, "campus");
    ap3.stop(t0 + 110 * MIN, 6);
    publish_all(
        broker.port,
        vec![
            ap1.status(now - HOUR, "openwrt-1", "someone", "announced"),
            ap3.status(now - HOUR, "Office", "beta", "office"),
            ap1.batch(),
            ap2.batch(),
            old,
            ap3.batch(),
        ],
    );
    wait_for("7 sessions, 4 closed", Duration::from_secs(30), || {
        (scalar(&db, "SELECT count(*) FROM sessions") == 7
            && scalar(&db, "SELECT count(*) FROM sessions WHERE stop_ms IS NULL") == 3
            && scalar(
                &db,
                "SELECT count(*) FROM devices WHERE agent_version = '1.2.3'",
            ) == 2)
            .then_some(())
    });
    Env {
        _broker: broker,
        dir,
        db,
        collector,
        t0,
    }
}

/// Runs a subcommand in the test directory: (exit code, stdout, stderr).
fn cli(db: &(impl DbArg + ?Sized), args: &[&str]) -> (i32, String, String) {
    let out = Command::new(bin())
        .args(args)
        .arg("--db")
        .arg(db.arg())
        .current_dir(db.workdir())
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

fn ok(db: &(impl DbArg + ?Sized), args: &[&str]) -> String {
    let (code, out, err) = cli(db, args);
    assert_eq!(code, 0, "{args:?}: {err}");
    out
}

fn json(db: &(impl DbArg + ?Sized), args: &[&str]) -> Vec<Value> {
    let mut a = args.to_vec();
    a.extend(["--format", "json"]);
    ok(db, &a)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// The session ids (as numbers) `sessions ARGS` lists, sorted.
fn ids(db: &(impl DbArg + ?Sized), args: &[&str]) -> Vec<u64> {
    let mut a = vec!["sessions"];
    a.extend(args);
    let mut v: Vec<u64> = json(db, &a)
        .iter()
        .map(|r| u64::from_str_radix(r["id"].as_str().unwrap(), 16).unwrap())
        .collect();
    v.sort_unstable();
    v
}

fn t(ms: i64) -> String {
    wifisess_collector::timefmt::rfc3339_ms(ms)
}

#[test]
fn every_session_filter_alone_and_combined() {
    for engine in pg::both("filters") {
        eprintln!("engine: {}", engine.engine);
        let e = fixture(engine);
        let db = &e.db;
        let t0 = e.t0;
        assert_eq!(ids(db, &[]), [1, 2, 3, 4, 5, 6, 7]);
        assert_eq!(ids(db, &["--open"]), [2, 4, 5]);
        assert_eq!(ids(db, &["--closed"]), [1, 3, 6, 7]);
        assert_eq!(ids(db, &["--device", "ap1"]), [1, 2]);
        assert_eq!(
            ids(db, &["--device", "Lab-South"]),
            [3, 4],
            "by inventory name"
        );
        assert_eq!(
            ids(db, &["--device", "Office"]),
            [5, 6, 7],
            "by announced name"
        );
        assert_eq!(
            ids(db, &["--device", "ap1", "--device", "Lab-South"]),
            [1, 2, 3, 4]
        );
        assert_eq!(ids(db, &["--group", "lab"]), [1, 2, 3, 4]);
        assert_eq!(ids(db, &["--group", "office"]), [5, 6, 7]);
        assert_eq!(ids(db, &["--org", "acme"]), [1, 2, 3, 4]);
        assert_eq!(ids(db, &["--org", "beta"]), [5, 6, 7]);
        assert_eq!(ids(db, &["--mac", &mac_s(1)]), [1, 3, 6]);
        assert_eq!(ids(db, &["--mac", "02-00-00-00-00-01"]), [1, 3, 6]);
        assert_eq!(ids(db, &["--mac", "020000000001"]), [1, 3, 6]);
        assert_eq!(ids(db, &["--ssid", "guest"]), [4, 5]);
        assert_eq!(ids(db, &["--start-after", "-2h"]), [5, 6]);
        assert_eq!(
            ids(db, &["--start-before", &t(t0 + 15 * MIN)]),
            [1, 2, 4, 7]
        );
        assert_eq!(ids(db, &["--stop-after", &t(t0 + 45 * MIN)]), [3, 6]);
        assert_eq!(ids(db, &["--stop-before", "-100d"]), [7]);
        assert_eq!(ids(db, &["--limit", "2"]), [5, 6], "newest starts first");
        // Combined.
        assert_eq!(ids(db, &["--group", "lab", "--open"]), [2, 4]);
        assert_eq!(
            ids(db, &["--mac", &mac_s(1), "--group", "lab", "--closed"]),
            [1, 3]
        );
        assert_eq!(
            ids(db, &["--org", "beta", "--ssid", "guest", "--open"]),
            [5]
        );
        assert_eq!(
            ids(db, &["--device", "ap2", "--start-after", &t(t0 + 10 * MIN)]),
            [3]
        );
        assert_eq!(
            ids(
                db,
                &[
                    "--mac",
                    &mac_s(1),
                    "--stop-after",
                    &t(t0 + 45 * MIN),
                    "--stop-before",
                    &t(t0 + 100 * MIN)
                ]
            ),
            [3]
        );
        assert_eq!(
            ids(
                db,
                &[
                    "--start-after",
                    "-7d",
                    "--start-before",
                    "now",
                    "--limit",
                    "3"
                ]
            ),
            [3, 5, 6]
        );

        // JSON rows carry exactly the SPEC §5.3 fields; inventory beats what the agent announced.
        let rows = json(db, &["sessions", "--device", "ap1"]);
        let keys: Vec<&str> = rows[0]
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        let mut want = wifisess_collector::read::sessions::SESSION_FIELDS.to_vec();
        want.sort_unstable();
        let mut got = keys.clone();
        got.sort_unstable();
        assert_eq!(got, want);
        let s1 = rows.iter().find(|r| r["id"] == "0000000000000001").unwrap();
        assert_eq!(s1["device_name"], "Lab-North");
        assert_eq!(s1["group"], "lab");
        assert_eq!(s1["organization"], "acme");
        assert_eq!(s1["start"], t(t0));
        assert_eq!(s1["stop"], t(t0 + 30 * MIN));
        assert_eq!(s1["duration_s"], 1800);
        assert_eq!(s1["stop_reason"], "left");
        assert_eq!(s1["dangling"], false);

        // CSV: the same fields as a header, one line per row.
        let csv = ok(db, &["sessions", "--group", "lab", "--format", "csv"]);
        let mut lines = csv.lines();
        assert_eq!(
            lines.next().unwrap(),
            wifisess_collector::read::sessions::SESSION_FIELDS.join(",")
        );
        assert_eq!(lines.count(), 4);

        // Devices: inventory overrides, open sessions, version, online.
        let devs = json(db, &["devices"]);
        let ap1 = devs.iter().find(|d| d["id"] == "ap1").unwrap();
        assert_eq!(ap1["name"], "Lab-North");
        assert_eq!(ap1["group"], "lab");
        assert_eq!(ap1["organization"], "acme");
        assert_eq!(ap1["open_sessions"], 1);
        assert_eq!(ap1["agent_version"], "1.2.3");
        assert_eq!(ap1["online"], true);
        assert_eq!(ap1["seq_gaps"], 0);
        let ap3 = devs.iter().find(|d| d["id"] == "ap3").unwrap();
        assert_eq!(ap3["name"], "Office");
        assert_eq!(ap3["open_sessions"], 1);
        // The announced group no longer exists: the inventory replaced it.
        let (code, _, err) = cli(db, &["sessions", "--group", "announced"]);
        assert_eq!((code, err.lines().count()), (2, 1), "{err}");

        // Tables fit a terminal.
        for args in [
            &["sessions"][..],
            &["devices"],
            &["status"],
            &["presence", "--group", "lab", "--from", "-4h", "--to", "now"],
        ] {
            let out = ok(db, args);
            let widest = out.lines().map(|l| l.chars().count()).max().unwrap();
            assert!(widest <= 120, "{args:?} is {widest} wide:\n{out}");
        }
        drop(e.collector);
    }
}

#[test]
fn status_dangling_limits_and_presence() {
    for engine in pg::both("status") {
        eprintln!("engine: {}", engine.engine);
        let e = fixture(engine);
        let db = &e.db;
        let t0 = e.t0;
        let rows = json(db, &["sessions", "--open"]);
        let dangling: Vec<&str> = rows
            .iter()
            .filter(|r| r["dangling"] == true)
            .map(|r| r["id"].as_str().unwrap())
            .collect();
        assert_eq!(dangling, ["0000000000000004"], "C idle since T0+5m");
        assert!(ok(db, &["sessions", "--open"]).contains("open, dangling"));

        let st = &json(db, &["status"])[0];
        assert_eq!(st["open_sessions"], 3);
        assert_eq!(st["connected_clients"], 3);
        assert_eq!(st["dangling_sessions"], 1);
        let longest = st["longest_s"].as_i64().unwrap();
        assert!((3 * 3600..3 * 3600 + 60).contains(&longest), "{st}");
        let median = st["median_s"].as_i64().unwrap();
        assert!((170 * 60..170 * 60 + 60).contains(&median), "B's age: {st}");
        assert_eq!(st["over_limit"], serde_json::json!(["acme"]));
        let acme = st["organizations"]
            .as_array()
            .unwrap()
            .iter()
            .find(|o| o["organization"] == "acme")
            .unwrap();
        assert_eq!(
            (
                &acme["organization"],
                &acme["open_sessions"],
                &acme["max_open_sessions"]
            ),
            (&Value::from("acme"), &Value::from(2), &Value::from(1))
        );
        let lab = &json(db, &["status", "--group", "lab"])[0];
        assert_eq!(
            (&lab["open_sessions"], &lab["dangling_sessions"]),
            (&Value::from(2), &Value::from(1))
        );
        assert_eq!(lab["devices"], 2);
        let office = &json(db, &["status", "--device", "Office"])[0];
        assert_eq!(office["open_sessions"], 1);
        assert_eq!(office["dangling_sessions"], 0);
        let table = ok(db, &["status"]);
        assert!(table.contains("acme") && table.contains("OVER"), "{table}");
        // The limit shows under the sessions table, and on stderr beside JSON.
        assert!(ok(db, &["sessions"]).contains("over limit: organization acme has 2 open sessions"));
        let (_, _, err) = cli(db, &["sessions", "--format", "json"]);
        assert!(err.contains("over limit: organization acme"), "{err}");

        // Presence on the lab group within [T0+15m, T0+50m]: A roams ap1 → ap2 (s1 straddles the
        // window's start, s3 its end, they overlap 10 min): 35 minutes, counted once. B and C are
        // open sessions: the whole window. Labels: A is Ada; F (06) was never seen.
        let labels = e.dir.as_path().join("labels.csv");
        std::fs::write(
            &labels,
            format!("mac,label\n{},Ada\n{},Finn\n", mac_s(1), mac_s(6)),
        )
        .unwrap();
        let from = t(t0 + 15 * MIN);
        let to = t(t0 + 50 * MIN);
        let labels_s = labels.to_str().unwrap();
        let p = json(
            db,
            &[
                "presence",
                "--group",
                "lab",
                "--from",
                &from,
                "--to",
                &to,
                "--min-minutes",
                "35",
                "--labels",
                labels_s,
            ],
        );
        let by = |m: &str| p.iter().find(|r| r["mac"] == m).unwrap().clone();
        let a = by(&mac_s(1));
        assert_eq!(a["label"], "Ada");
        assert_eq!(a["minutes"], 35);
        assert_eq!(a["seconds"], 35 * 60);
        assert_eq!(a["sessions"], 2);
        assert_eq!(a["first_seen"], from);
        assert_eq!(a["last_seen"], to);
        assert_eq!(a["present"], true);
        assert_eq!(by(&mac_s(2))["minutes"], 35);
        assert_eq!(by(&mac_s(3))["minutes"], 35);
        let f = by(&mac_s(6));
        assert_eq!(
            (&f["label"], &f["minutes"], &f["present"]),
            (&Value::from("Finn"), &Value::from(0), &Value::from(false))
        );
        assert_eq!(p.len(), 4, "D and E are not in the lab group: {p:?}");
        let strict = json(
            db,
            &[
                "presence",
                "--group",
                "lab",
                "--from",
                &from,
                "--to",
                &to,
                "--min-minutes",
                "36",
            ],
        );
        assert!(strict.iter().all(|r| r["present"] == false));
        // An open session counts up to now when the window reaches into the future.
        let p = json(
            db,
            &["presence", "--group", "lab", "--from", &from, "--to", "+1h"],
        );
        let b = p.iter().find(|r| r["mac"] == mac_s(2).as_str()).unwrap();
        let m = b["minutes"].as_i64().unwrap();
        assert!((165..=166).contains(&m), "B from T0+15m to now: {b}");
        let csv = ok(
            db,
            &[
                "presence", "--group", "lab", "--from", &from, "--to", &to, "--format", "csv",
            ],
        );
        assert!(csv.starts_with(
            "label,mac,minutes,seconds,first_seen,last_seen,sessions,devices,present\n"
        ));
    }
}

#[test]
fn prune_and_expire_dry_runs_match_the_real_runs_and_force_closes_all() {
    for engine in pg::both("prune_expire") {
        eprintln!("engine: {}", engine.engine);
        let e = fixture(engine);
        let db = &e.db;
        let dry = ok(db, &["prune", "--days", "100", "--dry-run"]);
        assert!(dry.starts_with("would delete 1 sessions"), "{dry}");
        assert_eq!(ids(db, &[]).len(), 7, "a dry run changes nothing");
        let real = ok(db, &["prune", "--days", "100"]);
        // Count, oldest and newest stop equal; the cutoff moved on by the time between the runs.
        let upto_cutoff = |s: &str| s[..s.find(" (cutoff").unwrap()].to_owned();
        assert_eq!(
            upto_cutoff(&real.replace("deleted", "would delete")),
            upto_cutoff(&dry)
        );
        assert_eq!(ids(db, &[]), [1, 2, 3, 4, 5, 6]);
        let again = ok(db, &["prune", "--days", "100"]);
        assert!(
            again.starts_with("deleted 0 sessions: none stopped before"),
            "{again}"
        );

        // Devices were heard just now: nothing is silent for 4 hours.
        assert!(ok(db, &["expire", "--dry-run"]).contains("would close 0 sessions on 0 devices"));
        // Silent for 0 hours: every device with open sessions, at its last-seen time.
        let dry = ok(db, &["expire", "--hours", "0", "--dry-run"]);
        assert!(
            dry.ends_with("would close 3 sessions on 3 devices (expired)\n"),
            "{dry}"
        );
        assert_eq!(ids(db, &["--open"]), [2, 4, 5]);
        let real = ok(db, &["expire", "--hours", "0"]);
        assert_eq!(real.replace("closed", "would close"), dry);
        assert_eq!(ids(db, &["--open"]), Vec::<u64>::new());
        let s2 = &json(
            db,
            &["sessions", "--device", "ap1", "--closed", "--limit", "1"],
        )[0];
        assert_eq!(s2["stop_reason"], "expired");

        // Expired is provisional: the agent reports B after the expiry and it reopens.
        let now = wifisess_collector::timefmt::now_ms() + 5_000;
        let mut ap1 = Dev::new("ap1", now - 250 * DAY);
        ap1.seq = 100;
        ap1.update(now, 2, 1000);
        publish_all(e._broker.port, vec![ap1.batch()]);
        wait_for("B reopened", Duration::from_secs(20), || {
            (ids(db, &["--open"]) == [2]).then_some(())
        });

        // --force closes every open session now, reason `forced`; its dry run counts the same.
        let dry = ok(db, &["expire", "--force", "--dry-run"]);
        assert!(
            dry.ends_with("would close 1 sessions on 1 devices (forced)\n"),
            "{dry}"
        );
        let real = ok(db, &["expire", "--force"]);
        assert!(
            real.ends_with("closed 1 sessions on 1 devices (forced)\n"),
            "{real}"
        );
        assert_eq!(ids(db, &["--open"]), Vec::<u64>::new());
        let s2 = &json(
            db,
            &["sessions", "--device", "ap1", "--closed", "--limit", "1"],
        )[0];
        assert_eq!(s2["stop_reason"], "forced");
        assert!(
            ok(db, &["sessions"]).contains("forced*"),
            "inferred stops are marked"
        );
    }
}

#[test]
fn bad_arguments_give_one_line_and_exit_2() {
    for engine in pg::both("bad_args") {
        eprintln!("engine: {}", engine.engine);
        let e = fixture(engine);
        let db = &e.db;
        for args in [
            &["sessions", "--start-after", "yesterday"][..],
            &["sessions", "--stop-before", "2025-13-01T00:00:00Z"],
            &["sessions", "--mac", "zz:zz"],
            &["sessions", "--limit", "0"],
            &["sessions", "--limit", "many"],
            &["sessions", "--open", "--closed"],
            &["sessions", "--bogus"],
            &["sessions", "--format", "xml"],
            &["sessions", "--device", "nope"],
            &["sessions", "--org", "nope"],
            &["status", "--device", "nope"],
            &["status", "--device", "ap1", "--group", "lab"],
            &["presence", "--group", "lab", "--from", "-1h", "--to", "-2h"],
            &[
                "presence", "--group", "nope", "--from", "-1h", "--to", "now",
            ],
            &["presence", "--group", "lab", "--from", "-1h"],
            &[
                "presence",
                "--group",
                "lab",
                "--from",
                "-1h",
                "--to",
                "now",
                "--labels",
                "/nonexistent.csv",
            ],
            &["prune"],
            &["prune", "--days", "-3"],
            &["expire", "--force", "--hours", "2"],
        ] {
            let (code, out, err) = cli(db, args);
            assert_eq!(code, 2, "{args:?}: {err}");
            assert_eq!(err.lines().count(), 1, "{args:?}: {err}");
            assert!(err.starts_with("wifisess-collector: "), "{err}");
            assert!(out.is_empty(), "{args:?}: {out}");
        }
        let (code, _, err) = cli(&e.dir.as_path().join("missing.db"), &["sessions"]);
        assert_eq!((code, err.lines().count()), (2, 1), "{err}");
        assert!(err.contains("does not exist"), "{err}");
    }
}

/// Retention runs inside `run` (at start, then daily): the 200-day-old session goes when the
/// collector restarts with the default 180 days.
#[test]
fn retention_runs_inside_run() {
    for engine in pg::both("retention") {
        eprintln!("engine: {}", engine.engine);
        let mut e = fixture(engine);
        assert!(e.collector.terminate().success());
        let log = e.dir.as_path().join("collector2.log");
        let _c = Collector::start_env(
            &e.db,
            e._broker.port,
            &log,
            &[("WIFISESS_RETENTION_DAYS", "180")],
        );
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        while scalar(&e.db, "SELECT count(*) FROM sessions WHERE id = 7") != 0 {
            assert!(
                std::time::Instant::now() < deadline,
                "no retention at start: {}",
                std::fs::read_to_string(&log).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        assert_eq!(scalar(&e.db, "SELECT count(*) FROM sessions"), 6);
        let text = std::fs::read_to_string(&log).unwrap();
        assert!(text.contains("retention: deleted 1 sessions"), "{text}");
    }
}

/// Not a check: builds the fixture's database through the real ingest path and copies it to
/// `$WIFISESS_WALKTHROUGH_DIR` (with its configuration) for docs/OPERATIONS.md.
/// `WIFISESS_WALKTHROUGH_DIR=/tmp/walk cargo test -p wifisess-collector --test queries -- --ignored`
#[test]
#[ignore]
fn walkthrough_database() {
    let Ok(out) = std::env::var("WIFISESS_WALKTHROUGH_DIR") else {
        return;
    };
    let mut e = fixture(EngineDb::sqlite());
    assert!(e.collector.terminate().success());
    std::fs::create_dir_all(&out).unwrap();
    std::fs::copy(&e.db.arg, Path::new(&out).join("wifisess.db")).unwrap();
    std::fs::write(Path::new(&out).join("wifisess-collector.toml"), CONFIG).unwrap();
}
