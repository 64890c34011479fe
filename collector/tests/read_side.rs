//! One read side (issue 16): the HTTP API's real responses match openapi.json; the CLI and
//! the HTTP API give identical rows from one database; queries never write, never migrate,
//! and say clearly what is wrong with a database they cannot read.

mod common;
mod http_common;

use std::path::Path;
use std::process::Command;

use http_common::*;
use serde_json::Value;

/// A JSON Schema subset, enough for openapi.json: `$ref`, `type`, `nullable`, `properties`,
/// `required`, `additionalProperties: false`, `items`, `enum`. Returns the first mismatch.
fn check(doc: &Value, schema: &Value, v: &Value, at: &str) -> Result<(), String> {
    if let Some(r) = schema.get("$ref").and_then(Value::as_str) {
        let name = r.trim_start_matches("#/components/schemas/");
        let target = &doc["components"]["schemas"][name];
        assert!(!target.is_null(), "openapi.json: dangling $ref {r}");
        return check(doc, target, v, at);
    }
    if v.is_null() {
        return if schema["nullable"] == true || schema.get("type").is_none() {
            Ok(())
        } else {
            Err(format!("{at}: null where {schema} is not nullable"))
        };
    }
    if let Some(t) = schema.get("type").and_then(Value::as_str) {
        let ok = match t {
            "object" => v.is_object(),
            "array" => v.is_array(),
            "string" => v.is_string(),
            "integer" => v.is_i64() || v.is_u64(),
            "number" => v.is_number(),
            "boolean" => v.is_boolean(),
            other => panic!("openapi.json: type {other} not handled by this check"),
        };
        if !ok {
            return Err(format!("{at}: {v} is not {t}"));
        }
    }
    if let Some(e) = schema.get("enum").and_then(Value::as_array) {
        if !e.contains(v) {
            return Err(format!("{at}: {v} not in {e:?}"));
        }
    }
    if let Some(obj) = v.as_object() {
        let props = schema["properties"].as_object();
        for r in schema["required"].as_array().into_iter().flatten() {
            let k = r.as_str().unwrap();
            if !obj.contains_key(k) {
                return Err(format!("{at}: required field {k} missing"));
            }
        }
        for (k, x) in obj {
            match props.and_then(|p| p.get(k)) {
                Some(s) => check(doc, s, x, &format!("{at}.{k}"))?,
                None if schema["additionalProperties"] == false => {
                    return Err(format!("{at}: field {k} not in the schema"));
                }
                None => {}
            }
        }
    }
    if let (Some(items), Some(a)) = (schema.get("items"), v.as_array()) {
        for (i, x) in a.iter().enumerate() {
            check(doc, items, x, &format!("{at}[{i}]"))?;
        }
    }
    Ok(())
}

/// The schema openapi.json gives `method path` for `status` (JSON bodies only).
fn response_schema<'d>(doc: &'d Value, method: &str, path: &str, status: u16) -> &'d Value {
    let s = &doc["paths"][path][method]["responses"][status.to_string()]["content"]
        ["application/json"]["schema"];
    assert!(
        !s.is_null(),
        "openapi.json documents no JSON {status} for {method} {path}"
    );
    s
}

fn cli(db: &Path, args: &[&str]) -> (i32, String, String) {
    let out = Command::new(common::bin())
        .args(args)
        .arg("--db")
        .arg(db)
        .env_remove("WIFISESS_CONFIG")
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

fn cli_json(db: &Path, args: &[&str]) -> Vec<Value> {
    let mut a = args.to_vec();
    a.extend(["--format", "json"]);
    let (code, out, err) = cli(db, &a);
    assert_eq!(code, 0, "{args:?}: {err}");
    out.lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn http_responses_match_openapi() {
    for engine in common::pg::both("openapi") {
        eprintln!("engine: {}", engine.engine);
        http_responses_match_openapi_on(engine);
    }
}

fn http_responses_match_openapi_on(engine: common::pg::EngineDb) {
    let env = Env::start_on("", engine);
    seed(&env, None);
    let doc: Value = serde_json::from_str(&env.get("/api/v1/openapi.json", None).body).unwrap();
    let some_id = env.get("/api/v1/sessions?limit=1", None).json()["sessions"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let cases: Vec<(&str, String, &str, u16)> = vec![
        (
            "get",
            "/api/v1/sessions?limit=2".into(),
            "/api/v1/sessions",
            200,
        ),
        (
            "get",
            "/api/v1/sessions?closed=true".into(),
            "/api/v1/sessions",
            200,
        ),
        (
            "get",
            format!("/api/v1/sessions/{some_id}"),
            "/api/v1/sessions/{id}",
            200,
        ),
        (
            "get",
            "/api/v1/sessions/0000000000000999".into(),
            "/api/v1/sessions/{id}",
            404,
        ),
        (
            "get",
            "/api/v1/sessions?mac=nope".into(),
            "/api/v1/sessions",
            400,
        ),
        ("get", "/api/v1/devices".into(), "/api/v1/devices", 200),
        (
            "get",
            "/api/v1/devices/ap1".into(),
            "/api/v1/devices/{id}",
            200,
        ),
        (
            "get",
            "/api/v1/devices/nope".into(),
            "/api/v1/devices/{id}",
            404,
        ),
        ("get", "/api/v1/status".into(), "/api/v1/status", 200),
        (
            "get",
            "/api/v1/status?group=lab".into(),
            "/api/v1/status",
            200,
        ),
        (
            "get",
            "/api/v1/presence?group=lab&from=-2h&to=now".into(),
            "/api/v1/presence",
            200,
        ),
        ("get", "/api/v1/presence".into(), "/api/v1/presence", 400),
        (
            "post",
            "/api/v1/sessions/refresh".into(),
            "/api/v1/sessions/refresh",
            200,
        ),
        ("get", "/healthz".into(), "/healthz", 200),
    ];
    for (method, url, path, want) in cases {
        let r = if method == "post" {
            env.post(&url, None)
        } else {
            env.get(&url, None)
        };
        assert_eq!(r.status, want, "{method} {url}: {}", r.body);
        let schema = response_schema(&doc, method, path, want);
        if let Err(e) = check(&doc, schema, &r.json(), "body") {
            panic!("{method} {url}: {e}\n{}", r.body);
        }
    }
    // A `change` event's data is a Change.
    let mut sse = Sse::open(env.http_port, "/api/v1/stream", None);
    assert_eq!(sse.next().0, "hello");
    env.publish(vec![sessions_batch("ap2", 10, &[(0x23, 8, 500_000, None)])]);
    let (name, data) = sse.next();
    assert_eq!(name, "change");
    let change: Value = serde_json::from_str(&data).unwrap();
    let schema = &doc["components"]["schemas"]["Change"];
    if let Err(e) = check(&doc, schema, &change, "change") {
        panic!("{e}\n{data}");
    }
    assert_eq!(
        change["sessions"].as_array().map(Vec::len),
        Some(1),
        "{data}"
    );
    // The check itself rejects what it should.
    let session = &doc["components"]["schemas"]["Session"];
    let mut bad = env.get(&format!("/api/v1/sessions/{some_id}"), None).json();
    bad.as_object_mut().unwrap().remove("stop_inferred");
    assert!(check(&doc, session, &bad, "s").is_err());
}

#[test]
fn cli_and_http_give_identical_rows_from_one_database() {
    for engine in common::pg::both("cli_http") {
        eprintln!("engine: {}", engine.engine);
        cli_and_http_give_identical_rows_on(engine);
    }
}

fn cli_and_http_give_identical_rows_on(engine: common::pg::EngineDb) {
    let env = Env::start_on("[max_open_sessions]\nacme = 2\n", engine);
    seed(&env, None);
    let db = &env.db;
    let strip_open = |mut v: Value| {
        // An open session's duration grows while the two are asked: compared apart.
        if v["stop"].is_null() {
            v["duration_s"] = Value::Null;
        }
        v
    };
    let via_http: Vec<Value> = env.get("/api/v1/sessions?limit=1000", None).json()["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .cloned()
        .map(strip_open)
        .collect();
    let via_cli: Vec<Value> = cli_json(db, &["sessions"])
        .into_iter()
        .map(strip_open)
        .collect();
    assert_eq!(via_cli.len(), 7);
    assert_eq!(via_cli, via_http, "sessions");

    let csv_http = env
        .get("/api/v1/sessions?format=csv&closed=true", None)
        .body;
    let (_, csv_cli, _) = cli(db, &["sessions", "--closed", "--format", "csv"]);
    assert_eq!(csv_cli, csv_http, "closed sessions as CSV");
    assert!(csv_cli.starts_with("id,device_id,") && csv_cli.contains("stop_inferred"));

    let devs_http = env.get("/api/v1/devices", None).json()["devices"].clone();
    let devs_cli = Value::Array(cli_json(db, &["devices"]));
    assert_eq!(devs_cli, devs_http, "devices");

    let drop_time = |mut v: Value| {
        for k in ["generated_at", "longest_s", "median_s"] {
            v[k] = Value::Null;
        }
        v
    };
    let st_http = drop_time(env.get("/api/v1/status?group=lab", None).json());
    let cfg = config_path(env.dir.path());
    let cfg = cfg.to_str().unwrap();
    let st_cli = drop_time(cli_json(db, &["status", "--group", "lab", "--config", cfg]).remove(0));
    assert_eq!(st_cli, st_http, "status");
    assert_eq!(st_cli["device_status"][0]["id"], "ap1");

    let now = wifisess_collector::timefmt::now_ms();
    let from = wifisess_collector::timefmt::rfc3339_ms(now - 2 * 3_600_000);
    let to = wifisess_collector::timefmt::rfc3339_ms(now - 10 * 60_000);
    let (from, to) = (from.as_str(), to.as_str());
    let pr_http = env.get(
        &format!("/api/v1/presence?group=lab&from={from}&to={to}&min_minutes=5"),
        None,
    );
    let pr_cli = cli_json(
        db,
        &[
            "presence",
            "--group",
            "lab",
            "--from",
            from,
            "--to",
            to,
            "--min-minutes",
            "5",
        ],
    );
    assert_eq!(Value::Array(pr_cli), pr_http.json()["clients"], "presence");
}

fn md5(p: &Path) -> String {
    let out = Command::new("md5sum").arg(p).output().unwrap();
    String::from_utf8(out.stdout).unwrap()[..32].to_owned()
}

/// Regression (issue 16): the query commands opened the database read-write and migrated
/// it: they failed on a read-only copy and wrote a schema into an empty file.
#[test]
fn queries_never_write_and_say_why_they_cannot_read() {
    let dir = tempfile::tempdir().unwrap();
    // An empty file stays empty.
    let empty = dir.path().join("empty.db");
    std::fs::write(&empty, b"").unwrap();
    let (code, _, err) = cli(&empty, &["sessions"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("not a wifisess database"), "{err}");
    assert_eq!(std::fs::metadata(&empty).unwrap().len(), 0);

    // An older schema is named, and left as it was.
    let old = dir.path().join("old.db");
    {
        let c = rusqlite::Connection::open(&old).unwrap();
        c.execute_batch("CREATE TABLE devices (id TEXT); PRAGMA user_version = 3;")
            .unwrap();
    }
    let before = md5(&old);
    for q in [
        &["sessions"][..],
        &["devices"],
        &["status"],
        &["prune", "--days", "1", "--dry-run"],
    ] {
        let (code, _, err) = cli(&old, q);
        assert_eq!(code, 2, "{q:?}: {err}");
        assert!(
            err.contains("version 3 is older") && err.contains("run"),
            "{err}"
        );
    }
    assert_eq!(md5(&old), before);

    // A newer one too.
    let new = dir.path().join("new.db");
    {
        let c = rusqlite::Connection::open(&new).unwrap();
        c.execute_batch("CREATE TABLE devices (id TEXT); PRAGMA user_version = 99;")
            .unwrap();
    }
    let (code, _, err) = cli(&new, &["devices"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("version 99 is newer"), "{err}");
}

/// A copy of a collector's database on read-only media answers queries (SQLite cannot make
/// its WAL index there: the query side opens it immutable).
#[test]
fn a_read_only_copy_answers() {
    let env = Env::start("");
    seed(&env, None);
    let Env {
        collector, dir, db, ..
    } = env;
    drop(collector);
    let ro = dir.path().join("ro");
    std::fs::create_dir(&ro).unwrap();
    std::fs::copy(&db, ro.join("copy.db")).unwrap();
    for ext in ["-wal", "-shm"] {
        let p = db.with_file_name(format!("wifisess.db{ext}"));
        if p.exists() {
            std::fs::copy(&p, ro.join(format!("copy.db{ext}"))).unwrap();
        }
    }
    let before: Vec<String> = std::fs::read_dir(&ro)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    // A private mount namespace: the directory is read-only for this command only.
    let script = format!(
        "mount --bind {d} {d} && mount -o remount,bind,ro {d} && \
         (touch {d}/probe 2>/dev/null && echo writable || true) && \
         exec {bin} sessions --db {d}/copy.db --format json",
        d = ro.display(),
        bin = common::bin()
    );
    let out = Command::new("unshare")
        .args(["-m", "sh", "-c", &script])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!stdout.contains("writable"), "the mount was not read-only");
    assert_eq!(stdout.lines().count(), 7, "{stdout}");
    let after: Vec<String> = std::fs::read_dir(&ro)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(before.len(), after.len());
}

/// The rows a commit notice carries (the live feed's `change` events) equal what a query reads
/// back from the store at the same moment, on both engines, over a fleet's starts, updates,
/// stops, syncs and restarts; a large group commit carries at most `NOTICE_ROWS` rows and lists
/// the other devices without rows.
#[test]
fn notice_rows_equal_the_rows_read_back() {
    use wifisess_collector::read::sessions::{self, SessionFilter};
    use wifisess_collector::read::Now;
    use wifisess_collector::writer::{Incoming, Writer, NOTICE_ROWS};
    for engine in common::pg::both("notice_rows") {
        let msgs = common::fleet_stream(6, 7, 1_760_000_000_000);
        let mut w = Writer::new(engine.store(), "wifisess/v1", Default::default());
        let db = engine.read();
        let mut checked = 0;
        for (topic, payload, rx) in &msgs {
            let c = w
                .ingest(&[Incoming {
                    topic,
                    payload,
                    receive_ms: *rx,
                }])
                .unwrap();
            let now = Now {
                now_ms: rx + 30_000,
                dangling_ms: 20_000,
            };
            for d in c.changed() {
                let rows = d.sessions.expect("a small commit carries every row");
                assert!(!rows.is_empty());
                for s in rows {
                    let got = sessions::from_session(&s, &d.names, now);
                    let f = SessionFilter {
                        id: Some(s.id),
                        devices: vec![d.id.clone()],
                        ..SessionFilter::default()
                    };
                    let want = sessions::list(&db, &f, now).unwrap();
                    assert_eq!(want, vec![got], "{}", engine.engine);
                    checked += 1;
                }
            }
        }
        assert!(checked > 80, "{checked}");
        // One group commit of a larger fleet (34 new devices): more rows than a notice
        // carries.
        let big = common::fleet_stream(40, 4, 1_760_100_000_000);
        let incoming: Vec<Incoming<'_>> = big
            .iter()
            .map(|(t, p, rx)| Incoming {
                topic: t,
                payload: p,
                receive_ms: *rx,
            })
            .collect();
        let c = w.ingest(&incoming).unwrap();
        let changed = c.changed();
        let carried: usize = changed
            .iter()
            .filter_map(|d| d.sessions.as_ref())
            .map(Vec::len)
            .sum();
        assert!(carried <= NOTICE_ROWS, "{carried}");
        assert!(carried > NOTICE_ROWS / 2, "{carried}");
        assert!(changed.iter().any(|d| d.sessions.is_none()));
        assert_eq!(changed.len(), c.devices.len());
    }
}
