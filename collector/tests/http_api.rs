//! The HTTP API against a collector fed through the real ingest path (mosquitto →
//! `wifisess-collector run --http`): filters, pagination, CSV, errors, stream, metrics,
//! tokens, roles and organization scopes.

mod common;
mod http_common;

use std::process::Command;
use std::time::Duration;

use http_common::*;
use serde_json::Value;

fn ids(v: &Value) -> Vec<String> {
    v["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap().to_owned())
        .collect()
}

fn count(env: &Env, q: &str) -> usize {
    let r = env.get(&format!("/api/v1/sessions{q}"), None);
    assert_eq!(r.status, 200, "{q}: {}", r.body);
    r.json()["sessions"].as_array().unwrap().len()
}

#[test]
fn sessions_filters_pagination_csv_and_errors() {
    let env = Env::start("dangling_minutes = 60\n");
    seed(&env, None);

    assert_eq!(count(&env, ""), 7);
    assert_eq!(count(&env, "?open=true"), 5);
    assert_eq!(count(&env, "?closed=true"), 2);
    assert_eq!(count(&env, "?device=ap2"), 2);
    assert_eq!(count(&env, "?device=Hall%20AP"), 2, "device by name");
    assert_eq!(count(&env, "?device=ap1&device=ap2"), 7);
    assert_eq!(count(&env, "?organization=acme"), 5);
    assert_eq!(count(&env, "?group=hall&open=true"), 2);
    assert_eq!(count(&env, &format!("?mac={}", mac_text(3))), 1);
    assert_eq!(count(&env, "?ssid=campus"), 7);
    assert_eq!(count(&env, "?ssid=other"), 0);
    assert_eq!(count(&env, "?stop_after=-2h"), 2);
    assert_eq!(count(&env, "?start_after=-1h&start_before=now"), 7);
    assert_eq!(count(&env, "?start_after=-1m"), 0);

    // Cursor pagination: pages of 2 give the full list, in order, without repeats.
    let all = ids(&env.get("/api/v1/sessions", None).json());
    let mut paged = Vec::new();
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        let q = match &cursor {
            Some(c) => format!("/api/v1/sessions?limit=2&cursor={c}"),
            None => "/api/v1/sessions?limit=2".into(),
        };
        let v = env.get(&q, None).json();
        paged.extend(ids(&v));
        pages += 1;
        match v["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    assert_eq!(paged, all);
    assert_eq!(pages, 4);

    // One session, its fields.
    let s = env.get("/api/v1/sessions/0000000000000014", None).json();
    assert_eq!(s["device_id"], "ap1");
    assert_eq!(s["organization"], "acme");
    assert_eq!(s["mac"], mac_text(4));
    assert_eq!(s["stop_reason"], "left");
    assert_eq!(s["duration_s"], 360);
    assert_eq!(
        env.get("/api/v1/sessions/00000000000000ff", None).status,
        404
    );

    // CSV: header plus one line per row, filters apply.
    let csv = env.get("/api/v1/sessions?format=csv", None);
    assert_eq!(csv.status, 200);
    assert!(csv.header("content-type").unwrap().starts_with("text/csv"));
    let lines: Vec<&str> = csv.body.lines().collect();
    assert!(lines[0].starts_with("id,device_id,device_name,organization,group,mac,"));
    assert_eq!(lines.len(), 8);
    let csv2 = env.get("/api/v1/sessions?format=csv&device=ap2", None);
    assert_eq!(csv2.body.lines().count(), 3);
    assert!(csv2.body.contains("Hall AP"));
    assert_eq!(
        env.get("/api/v1/sessions?format=csv&limit=3", None)
            .body
            .lines()
            .count(),
        4
    );

    // Errors name the parameter, with 400; unknown routes and methods are JSON too.
    for (q, param) in [
        ("?mac=zz", "mac"),
        ("?start_after=yesterday", "start_after"),
        ("?cursor=nothex", "cursor"),
        ("?limit=0", "limit"),
        ("?limit=5000", "limit"),
        ("?open=maybe", "open"),
        ("?open=true&closed=true", "open"),
        ("?format=xml", "format"),
        ("?colour=red", "colour"),
    ] {
        let r = env.get(&format!("/api/v1/sessions{q}"), None);
        assert_eq!(r.status, 400, "{q}");
        assert!(r.error().starts_with(param), "{q}: {}", r.error());
    }
    assert_eq!(env.get("/api/v1/sessions/xyz", None).status, 400);
    let r = env.get("/api/v1/nothing", None);
    assert_eq!(r.status, 404);
    assert!(!r.error().is_empty());
    assert_eq!(env.post("/api/v1/sessions", None).status, 405);
}

#[test]
fn devices_status_presence_refresh_metrics_health_and_openapi() {
    let env = Env::start("[max_open_sessions]\nacme = 2\nbeta = 5\n");
    seed(&env, None);

    let d = env.get("/api/v1/devices?organization=acme", None).json();
    let devs = d["devices"].as_array().unwrap();
    assert_eq!(devs.len(), 1);
    assert_eq!(devs[0]["id"], "ap1");
    assert_eq!(devs[0]["name"], "Lab AP");
    assert_eq!(devs[0]["open_sessions"], 3);
    assert_eq!(devs[0]["online"], true);
    assert_eq!(
        env.get("/api/v1/devices", None).json()["devices"]
            .as_array()
            .unwrap()
            .len(),
        3,
        "ap1, ap2 and the probe device"
    );
    let page = env.get("/api/v1/devices/Lab%20AP", None).json();
    assert_eq!(page["device"]["id"], "ap1");
    assert_eq!(page["open_sessions"].as_array().unwrap().len(), 3);
    assert_eq!(page["recent_sessions"].as_array().unwrap().len(), 2);
    assert_eq!(env.get("/api/v1/devices/nope", None).status, 404);

    let st = env.get("/api/v1/status", None).json();
    assert_eq!(st["open_sessions"], 5);
    assert_eq!(st["devices_online"], 3);
    let st = env.get("/api/v1/status?group=hall", None).json();
    assert_eq!(st["device_status"].as_array().unwrap().len(), 1);

    let p = env
        .get(
            "/api/v1/presence?group=lab&from=-2h&to=now&min_minutes=30",
            None,
        )
        .json();
    let clients = p["clients"].as_array().unwrap();
    assert_eq!(clients.len(), 5);
    let c4 = clients.iter().find(|c| c["mac"] == mac_text(4)).unwrap();
    assert_eq!(c4["minutes"], 6);
    assert_eq!(c4["present"], false);
    let c1 = clients.iter().find(|c| c["mac"] == mac_text(1)).unwrap();
    assert_eq!(c1["present"], true);
    let r = env.get("/api/v1/presence?from=-2h&to=now", None);
    assert_eq!((r.status, r.error().starts_with("group")), (400, true));

    let r = env.post("/api/v1/sessions/refresh", None);
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["expired_sessions"], 0);

    let h = env.get("/healthz", None);
    assert_eq!((h.status, h.json()["status"].as_str()), (200, Some("ok")));

    let m = env.get("/metrics", None);
    assert_eq!(m.status, 200);
    for needle in [
        "wifisess_open_sessions{organization=\"acme\"} 3",
        "wifisess_open_sessions{organization=\"beta\"} 2",
        "wifisess_devices_online{organization=\"acme\"} 1",
        "wifisess_dangling_sessions{organization=\"acme\"} 0",
        "wifisess_events_ingested_total 9",
        "wifisess_commit_seconds_bucket{le=\"+Inf\"}",
        "wifisess_seq_gaps{organization=\"acme\"} 0",
        "wifisess_organization_over_limit{organization=\"acme\"} 1",
        "wifisess_organization_over_limit{organization=\"beta\"} 0",
        "wifisess_organizations_over_limit 1",
    ] {
        assert!(m.body.contains(needle), "{needle} missing in\n{}", m.body);
    }
    let msgs: u64 = m
        .body
        .lines()
        .find_map(|l| l.strip_prefix("wifisess_messages_ingested_total "))
        .unwrap()
        .parse()
        .unwrap();
    assert!(msgs >= 4, "{msgs}");

    // Every documented operation is served (no fallback 404/405).
    let doc = env.get("/api/v1/openapi.json", None).json();
    for (path, ops) in doc["paths"].as_object().unwrap() {
        for method in ops.as_object().unwrap().keys() {
            let concrete = path.replace(
                "{id}",
                if path.contains("sessions") {
                    "0000000000000011"
                } else {
                    "ap1"
                },
            );
            let q = if path == "/api/v1/presence" {
                "?group=lab&from=-1h&to=now"
            } else {
                ""
            };
            if path == "/api/v1/stream" {
                continue; // never ends; covered below
            }
            let r = request(
                env.http_port,
                &method.to_uppercase(),
                &format!("{concrete}{q}"),
                None,
            );
            assert_eq!(r.status, 200, "{method} {path}: {}", r.body);
        }
    }
}

/// SPEC §5.5: what an agent reports about itself (drops by kind, reconnects, outbox depth,
/// spool restores) reaches `devices` and `status` (CLI and API) and the metrics, and a device
/// that drops events is flagged everywhere.
#[test]
fn agent_health_reaches_devices_status_and_metrics() {
    let env = Env::start("");
    seed(&env, None);
    env.publish(vec![status_with("ap2", "Hall AP", "beta", "hall", |s| {
        s.uptime_ms = 5_000;
        s.published = 1_234;
        s.dropped = 7;
        s.dropped_updates = 5;
        s.dropped_starts_stops = 2;
        s.reconnects = 3;
        s.outbox_depth = 42;
        s.spool_restored = 300;
        s.interfaces = vec![wifisess_wire::InterfaceInfo {
            ifname: "phy1-ap0".into(),
            ifindex: 9,
            bssid: wifisess_wire::MacAddr([4, 0, 0, 0, 0, 2]),
            ssid: b"campus".to_vec(),
            freq_mhz: 5180,
        }];
    })]);
    let devs = env.wait_json("ap2's health", "/api/v1/devices", None, |v| {
        v["devices"][1]["health"]["published"] == 1_234
    });
    let h = &devs["devices"][1]["health"];
    assert_eq!(
        (
            &h["dropped"],
            &h["dropped_updates"],
            &h["dropped_starts_stops"],
            &h["reconnects"],
            &h["outbox_depth"],
            &h["spool_restored"],
            &h["drops_events"]
        ),
        (
            &Value::from(7),
            &Value::from(5),
            &Value::from(2),
            &Value::from(3),
            &Value::from(42),
            &Value::from(300),
            &Value::from(true)
        )
    );
    assert_eq!(devs["devices"][0]["health"]["drops_events"], false);
    // Its radios, for the device page: band and channel from the frequency.
    let r = &devs["devices"][1]["radios"][0];
    assert_eq!(
        (
            &r["ifname"],
            &r["ssid"],
            &r["band"],
            &r["channel"],
            &r["bssid"]
        ),
        (
            &Value::from("phy1-ap0"),
            &Value::from("campus"),
            &Value::from("5"),
            &Value::from(36),
            &Value::from("04:00:00:00:00:02")
        )
    );
    let st = env.get("/api/v1/status", None).json();
    assert_eq!(st["devices_dropping"], 1);
    let metrics = env.get("/metrics", None).body;
    for line in [
        "wifisess_agent_dropped{device=\"ap2\",organization=\"beta\"} 7",
        "wifisess_agent_dropped_starts_stops{device=\"ap2\",organization=\"beta\"} 2",
        "wifisess_agent_spool_restored{device=\"ap2\",organization=\"beta\"} 300",
        "wifisess_agent_drops_events{device=\"ap2\",organization=\"beta\"} 1",
        "wifisess_agent_drops_events{device=\"ap1\",organization=\"acme\"} 0",
    ] {
        assert!(metrics.contains(line), "{line} not in\n{metrics}");
    }
    assert!(!metrics.contains("mac="), "no per-client labels");
    let out = Command::new(common::bin())
        .args(["devices", "--db"])
        .arg(&env.db)
        .output()
        .unwrap();
    let table = String::from_utf8(out.stdout).unwrap();
    let ap2 = table.lines().find(|l| l.starts_with("ap2")).unwrap();
    assert!(ap2.contains("7!"), "{table}");
    assert!(table.contains("drops events"), "{table}");
}

/// SIGTERM: ingest commits and acks what it holds, then the API answers its open requests
/// and ends its event streams, and the process exits 0 (issue 16: graceful shutdown).
#[test]
fn sigterm_ends_streams_and_exits_cleanly() {
    let mut env = Env::start("");
    seed(&env, None);
    let mut sse = Sse::open(env.http_port, "/api/v1/stream", None);
    assert_eq!(sse.next().0, "hello");
    let began = std::time::Instant::now();
    let status = env.collector.terminate();
    assert!(status.success(), "{status:?}: {}", env.collector.log_text());
    assert!(
        sse.ends_within(Duration::from_secs(5)),
        "the event stream did not end"
    );
    assert!(began.elapsed() < Duration::from_secs(10));
    let log = env.collector.log_text();
    assert!(!log.contains(" ERROR "), "{log}");
    assert!(
        std::net::TcpStream::connect(("127.0.0.1", env.http_port)).is_err(),
        "still listening"
    );
}

#[test]
fn stream_announces_commits() {
    let env = Env::start("");
    seed(&env, None);
    let mut sse = Sse::open(env.http_port, "/api/v1/stream", None);
    assert_eq!(sse.next().0, "hello");
    env.publish(vec![sessions_batch("ap2", 10, &[(0x23, 8, 500_000, None)])]);
    let (name, data) = sse.next();
    assert_eq!(name, "change");
    let v: Value = serde_json::from_str(&data).unwrap();
    assert_eq!(v["device_ids"], serde_json::json!(["ap2"]));
    // The event carries the changed row as the API returns it (its duration is counted at
    // the commit), and nothing to refetch.
    assert_eq!(v["refetch"], serde_json::json!([]), "{data}");
    let rows = v["sessions"].as_array().unwrap();
    assert_eq!(rows.len(), 1, "{data}");
    let mut got = rows[0].clone();
    let mut want = env.get("/api/v1/sessions/0000000000000023", None).json();
    for r in [&mut got, &mut want] {
        r.as_object_mut().unwrap().remove("duration_s");
    }
    assert_eq!(got, want);
    // Only some devices.
    let mut only = Sse::open(env.http_port, "/api/v1/stream?device=ap1", None);
    assert_eq!(only.next().0, "hello");
    env.publish(vec![sessions_batch("ap2", 20, &[(0x24, 9, 510_000, None)])]);
    env.publish(vec![sessions_batch("ap1", 20, &[(0x16, 9, 520_000, None)])]);
    let v: Value = serde_json::from_str(&only.next().1).unwrap();
    assert_eq!(v["device_ids"], serde_json::json!(["ap1"]));
}

#[test]
fn tokens_roles_and_organization_scopes() {
    let config = format!(
        "[[tokens]]\nsha256 = \"{}\"\nrole = \"admin\"\n\n\
         [[tokens]]\nsha256 = \"{}\"\nrole = \"read\"\norganization = \"acme\"\n\n\
         [[tokens]]\nsha256 = \"{}\"\nrole = \"read\"\n",
        sha256_hex("admin-secret-0123456789"),
        sha256_hex("acme-reader-0123456789"),
        sha256_hex("plain-reader-0123456789")
    );
    let env = Env::start(&config);
    let admin = Some("admin-secret-0123456789");
    let acme = Some("acme-reader-0123456789");
    seed(&env, admin);

    // 401 without or with a wrong token, on every data endpoint; the page and health are open.
    for path in [
        "/api/v1/sessions",
        "/api/v1/sessions/0000000000000011",
        "/api/v1/devices",
        "/api/v1/status",
        "/api/v1/presence?group=lab&from=-1h&to=now",
        "/api/v1/stream",
        "/metrics",
    ] {
        let r = env.get(path, None);
        assert_eq!(r.status, 401, "{path}");
        assert!(r.header("www-authenticate").is_some());
        assert_eq!(env.get(path, Some("wrong")).status, 401, "{path}");
    }
    assert_eq!(env.get("/", None).status, 200);
    assert_eq!(env.get("/healthz", None).status, 200);

    // The acme token sees acme only, everywhere.
    let v = env.get("/api/v1/sessions", acme).json();
    assert_eq!(v["sessions"].as_array().unwrap().len(), 5);
    assert!(v["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .all(|s| s["organization"] == "acme"));
    assert_eq!(
        env.get("/api/v1/sessions?organization=beta", acme).status,
        403
    );
    assert_eq!(
        env.get("/api/v1/sessions?device=ap2", acme).json()["sessions"],
        serde_json::json!([])
    );
    assert_eq!(
        env.get("/api/v1/sessions/0000000000000021", acme).status,
        404
    );
    assert_eq!(
        env.get("/api/v1/sessions/0000000000000021", admin).status,
        200
    );
    let csv = env.get("/api/v1/sessions?format=csv", acme);
    assert_eq!(csv.body.lines().count(), 6);
    assert!(!csv.body.contains("beta"));
    let devs = env.get("/api/v1/devices", acme).json();
    assert_eq!(devs["devices"].as_array().unwrap().len(), 1);
    assert_eq!(env.get("/api/v1/devices/ap2", acme).status, 404);
    assert_eq!(env.get("/api/v1/status", acme).json()["open_sessions"], 3);
    let p = env
        .get("/api/v1/presence?group=hall&from=-2h&to=now", acme)
        .json();
    assert_eq!(p["clients"], serde_json::json!([]));
    let m = env.get("/metrics", acme).body;
    assert!(m.contains("wifisess_open_sessions{organization=\"acme\"} 3"));
    assert!(!m.contains("beta") && !m.contains("wifisess_messages_ingested_total"));

    // The token also works as access_token (EventSource, download links).
    assert_eq!(
        env.get("/api/v1/sessions?access_token=acme-reader-0123456789", None)
            .json()["sessions"]
            .as_array()
            .unwrap()
            .len(),
        5
    );

    // Roles: refresh needs an unscoped admin.
    assert_eq!(env.post("/api/v1/sessions/refresh", acme).status, 403);
    assert_eq!(
        env.post("/api/v1/sessions/refresh", Some("plain-reader-0123456789"))
            .status,
        403
    );
    assert_eq!(env.post("/api/v1/sessions/refresh", admin).status, 200);

    // The stream of a scoped token never mentions another organization's devices.
    let mut sse = Sse::open(env.http_port, "/api/v1/stream", acme);
    assert_eq!(sse.next().0, "hello");
    env.publish(vec![sessions_batch(
        "ap2",
        30,
        &[(0x25, 10, 530_000, None)],
    )]);
    env.publish(vec![sessions_batch(
        "ap1",
        30,
        &[(0x17, 11, 540_000, None)],
    )]);
    let v: Value = serde_json::from_str(&sse.next().1).unwrap();
    assert_eq!(v["device_ids"], serde_json::json!(["ap1"]));
    let rows = v["sessions"].as_array().unwrap();
    assert!(!rows.is_empty(), "{v}");
    assert!(rows.iter().all(|r| r["organization"] == "acme"), "{v}");
}

/// `POST /api/v1/sessions/refresh` runs the `expire` command's code (`jobs::expire`): a
/// device silent for `expire_hours` gets its open sessions closed (reason `expired`), the
/// answer lists what was closed and the stream announces the device.
#[test]
fn refresh_expires_a_silent_device_and_announces_it() {
    let env = Env::start("");
    seed(&env, None);
    // ap2 last heard from 5 hours ago (expire_hours is 4 by default).
    common::open_db(&env.db)
        .execute(
            "UPDATE devices SET last_seen_ms = last_seen_ms - 5 * 3600000 WHERE id = 'ap2'",
            [],
        )
        .unwrap();
    let mut sse = Sse::open(env.http_port, "/api/v1/stream", None);
    assert_eq!(sse.next().0, "hello");

    let r = env.post("/api/v1/sessions/refresh", None);
    assert_eq!(r.status, 200, "{}", r.body);
    let v = r.json();
    assert_eq!(v["expired_sessions"], 2, "{}", r.body);
    assert_eq!(
        v["expired_devices"],
        serde_json::json!(["ap2"]),
        "{}",
        r.body
    );
    assert_eq!(v["expire_hours"], 4);

    let (event, data) = sse.next();
    assert_eq!(event, "change", "{data}");
    let d: Value = serde_json::from_str(&data).unwrap();
    assert_eq!(d["device_ids"], serde_json::json!(["ap2"]));
    // The closed rows come with the event.
    let rows = d["sessions"].as_array().unwrap();
    assert_eq!(rows.len(), 2, "{data}");
    assert!(rows.iter().all(|r| r["stop_reason"] == "expired"), "{data}");

    assert_eq!(count(&env, "?device=ap2&open=true"), 0);
    let closed = env.get("/api/v1/sessions?device=ap2", None).json();
    for s in closed["sessions"].as_array().unwrap() {
        assert_eq!(s["stop_reason"], "expired", "{s}");
    }
    assert_eq!(count(&env, "?device=ap1&open=true"), 3);
    // Nothing left to expire: a second refresh changes nothing.
    let again = env.post("/api/v1/sessions/refresh", None).json();
    assert_eq!(again["expired_sessions"], 0);
}

#[test]
fn refuses_a_non_loopback_address_without_tokens() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(common::bin())
        .args(["run", "--db"])
        .arg(dir.path().join("x.db"))
        .args(["--broker", "mqtt://127.0.0.1:1", "--http", "0.0.0.0:0"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("non-loopback") && err.contains("tokens"),
        "{err}"
    );
    let _ = Duration::ZERO;
}

/// The stream's change events carry the rows the API shows, client names included: with a
/// labels file and the OUI registry, a session that arrives live has its label, vendor and
/// randomised flag (the dashboard shows them without a refetch; the feed's rows lacked them
/// when issue 20's names met the change feed).
#[test]
fn live_rows_carry_client_names_and_vendors() {
    let names = tempfile::tempdir().unwrap();
    let env = Env::start(&names_config(names.path()));
    let mut sse = Sse::open(env.http_port, "/api/v1/stream", None);
    assert_eq!(sse.next().0, "hello");
    env.publish(vec![
        status("ap1", "Lab AP", "acme", "lab"),
        batch_at(
            "ap1",
            now_ms() - 60_000,
            &[(0, At::Start(0x51, 1, "campus", 2412))],
        ),
    ]);
    let row = loop {
        let (name, data) = sse.next();
        if name != "change" {
            continue;
        }
        let v: Value = serde_json::from_str(&data).unwrap();
        if let Some(row) = v["sessions"].as_array().and_then(|a| a.first()) {
            break row.clone();
        }
    };
    let api = env.get("/api/v1/sessions", None).json()["sessions"][0].clone();
    for k in ["mac", "label", "vendor", "randomized", "hostname"] {
        assert_eq!(row[k], api[k], "{k}: {row} vs {api}");
    }
    assert_eq!(
        (row["label"].as_str(), row["vendor"].as_str()),
        (Some("alice-phone"), Some("Apple, Inc."))
    );
}
