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
                    let got = sessions::from_session(&s, &d.names, &Default::default(), now);
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

const ADMIN_T: &str = "reports-admin-token-0123456789";
const ACME_T: &str = "reports-acme-reader-0123456789";

/// `cli` with the collector's configuration (its labels and OUI files).
fn cli_cfg(env: &Env, args: &[&str]) -> (i32, String, String) {
    let cfg = config_path(env.dir.path());
    let mut a = args.to_vec();
    a.extend(["--config", cfg.to_str().unwrap()]);
    cli(&env.db, &a)
}

fn cli_cfg_json(env: &Env, args: &[&str]) -> Vec<Value> {
    let mut a = args.to_vec();
    a.extend(["--format", "json"]);
    let (code, out, err) = cli_cfg(env, &a);
    assert_eq!(code, 0, "{args:?}: {err}");
    out.lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// Issue 20's reports (roams, pairs, failed joins, counts, trends, clients), on both engines:
/// the CLI and the API give the same rows (JSON and CSV) with the expected content (gaps,
/// bands, labels and vendors from the configured files, counts per SSID and client), every
/// JSON answer matches openapi.json, a token scoped to acme sees none of beta's, a bad period
/// or an over-long range is a 400 naming it (exit 2 in the CLI), and /metrics has the per
/// device and per SSID series.
#[test]
fn reports_cli_equals_http_and_match_openapi() {
    for engine in common::pg::both("reports") {
        eprintln!("engine: {}", engine.engine);
        reports_on(engine);
    }
}

fn reports_on(engine: common::pg::EngineDb) {
    let names_dir = tempfile::tempdir().unwrap();
    let names = names_config(names_dir.path());
    let env = Env::start_on(
        &format!(
            "{names}\n[[tokens]]\nsha256 = \"{}\"\nrole = \"admin\"\n\n\
             [[tokens]]\nsha256 = \"{}\"\nrole = \"read\"\norganization = \"acme\"\n",
            sha256_hex(ADMIN_T),
            sha256_hex(ACME_T),
        ),
        engine,
    );
    let admin = Some(ADMIN_T);
    let base = now_ms() - 20 * 60_000;
    seed_reports(&env, admin, base);
    let day = |ms: u64| ms / 86_400_000;
    let from = wifisess_collector::timefmt::rfc3339_ms(base as i64 - 2 * 86_400_000);
    let to = wifisess_collector::timefmt::rfc3339_ms(now_ms() as i64 + 86_400_000);
    let range = format!("from={from}&to={to}");
    // The aggregates come with the same derive steps as the roams; wait for all four.
    env.wait_json(
        "failed joins in the daily aggregates",
        &format!("/api/v1/trends?period=day&{range}"),
        admin,
        |v| {
            v["points"]
                .as_array()
                .unwrap()
                .iter()
                .map(|p| p["failed_joins"].as_i64().unwrap())
                .sum::<i64>()
                == 4
        },
    );
    let doc: Value = serde_json::from_str(&env.get("/api/v1/openapi.json", None).body).unwrap();
    // (route, query, CLI arguments, the answer's key)
    let cases: Vec<(&str, String, Vec<String>, &str)> = vec![
        (
            "/api/v1/roams",
            String::new(),
            vec!["roams".into()],
            "roams",
        ),
        (
            "/api/v1/roams",
            "mac=00:1b:63:00:00:01&ssid=campus-5g".into(),
            vec![
                "roams".into(),
                "--mac".into(),
                "00-1B-63-00-00-01".into(),
                "--ssid".into(),
                "campus-5g".into(),
            ],
            "roams",
        ),
        (
            "/api/v1/roams/pairs",
            "group=lab".into(),
            vec![
                "roams".into(),
                "--pairs".into(),
                "--group".into(),
                "lab".into(),
            ],
            "pairs",
        ),
        (
            "/api/v1/failed-joins",
            "device=ap1&device=Lab%20AP%202".into(),
            vec![
                "failed-joins".into(),
                "--device".into(),
                "ap1".into(),
                "--device".into(),
                "Lab AP 2".into(),
            ],
            "failed_joins",
        ),
        (
            "/api/v1/failed-joins/counts",
            "by=ssid".into(),
            vec!["failed-joins".into(), "--by".into(), "ssid".into()],
            "counts",
        ),
        (
            "/api/v1/failed-joins/counts",
            "by=client&organization=acme".into(),
            vec![
                "failed-joins".into(),
                "--by".into(),
                "client".into(),
                "--org".into(),
                "acme".into(),
            ],
            "counts",
        ),
        (
            "/api/v1/trends",
            format!("period=day&by=ssid&{range}"),
            vec![
                "trends".into(),
                "--period".into(),
                "day".into(),
                "--by".into(),
                "ssid".into(),
                "--from".into(),
                from.clone(),
                "--to".into(),
                to.clone(),
            ],
            "points",
        ),
        (
            "/api/v1/trends",
            format!("period=hour&by=device&organization=acme&{range}"),
            vec![
                "trends".into(),
                "--period".into(),
                "hour".into(),
                "--by".into(),
                "device".into(),
                "--organization".into(),
                "acme".into(),
                "--from".into(),
                from.clone(),
                "--to".into(),
                to.clone(),
            ],
            "points",
        ),
        (
            "/api/v1/clients",
            format!("period=week&organization=acme&{range}"),
            vec![
                "clients".into(),
                "--period".into(),
                "week".into(),
                "--org".into(),
                "acme".into(),
                "--from".into(),
                from.clone(),
                "--to".into(),
                to.clone(),
            ],
            "rows",
        ),
    ];
    let mut answers = std::collections::HashMap::new();
    for (route, query, args, key) in &cases {
        let url = format!("{route}?{query}");
        let r = env.get(&url, admin);
        assert_eq!(r.status, 200, "{url}: {}", r.body);
        let v = r.json();
        let schema = response_schema(&doc, "get", route, 200);
        if let Err(e) = check(&doc, schema, &v, "body") {
            panic!("{url}: {e}\n{}", r.body);
        }
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let via_cli = Value::Array(cli_cfg_json(&env, &args));
        assert_eq!(via_cli, v[*key], "{url} vs {args:?}");
        let csv_http = env.get(&format!("{url}&format=csv"), admin);
        assert_eq!(csv_http.status, 200, "{url} csv: {}", csv_http.body);
        assert!(csv_http
            .header("content-type")
            .is_some_and(|c| c.starts_with("text/csv")));
        let mut csv_args = args.clone();
        csv_args.extend(["--format", "csv"]);
        let (code, csv_cli, err) = cli_cfg(&env, &csv_args);
        assert_eq!(code, 0, "{err}");
        assert_eq!(csv_cli, csv_http.body, "{url} as CSV");
        answers.insert(url, v[*key].clone());
    }

    // Content: the two roams, newest first, with their gaps, bands, names and vendor.
    let roams = &answers["/api/v1/roams?"];
    let brief: Vec<(String, String, String, i64, bool, bool)> = roams
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["mac"].as_str().unwrap().to_owned(),
                r["from_device"].as_str().unwrap().to_owned(),
                r["to_device"].as_str().unwrap().to_owned(),
                r["gap_ms"].as_i64().unwrap(),
                r["band_changed"].as_bool().unwrap(),
                r["ssid_changed"].as_bool().unwrap(),
            )
        })
        .collect();
    let t = |m: &str, f: &str, to: &str, g: i64| {
        (m.to_owned(), f.to_owned(), to.to_owned(), g, true, true)
    };
    assert_eq!(
        brief,
        [
            t("00:1b:63:00:00:02", "ap3", "ap1", -10_000),
            t("00:1b:63:00:00:01", "ap1", "ap3", 4_000),
        ]
    );
    let r1 = &roams[1];
    assert_eq!(r1["label"], "alice-phone");
    assert_eq!(r1["vendor"], "Apple, Inc.");
    assert_eq!(r1["randomized"], false);
    assert_eq!(r1["organization"], "acme");
    assert_eq!(
        (r1["from_band"].as_str(), r1["to_band"].as_str()),
        (Some("2.4"), Some("5"))
    );
    assert_eq!(r1["from_name"], "Lab AP");
    assert_eq!(r1["to_name"], "Lab AP 2");
    // The client's chain, filtered by SSID.
    let chain = &answers["/api/v1/roams?mac=00:1b:63:00:00:01&ssid=campus-5g"];
    assert_eq!(chain.as_array().unwrap().len(), 1);
    let pairs = &answers["/api/v1/roams/pairs?group=lab"];
    assert_eq!(pairs.as_array().unwrap().len(), 2, "{pairs}");
    assert!(pairs
        .as_array()
        .unwrap()
        .iter()
        .all(|p| p["roams"] == 1 && p["clients"] == 1));
    let counts = |url: &str| -> Vec<(String, i64, i64)> {
        answers[url]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| {
                (
                    c["key"].as_str().unwrap().to_owned(),
                    c["failed_joins"].as_i64().unwrap(),
                    c["devices"].as_i64().unwrap(),
                )
            })
            .collect()
    };
    assert_eq!(
        counts("/api/v1/failed-joins/counts?by=ssid"),
        [
            ("campus".to_owned(), 2, 1),
            ("campus-5g".to_owned(), 1, 1),
            ("hall".to_owned(), 1, 1)
        ]
    );
    assert_eq!(
        counts("/api/v1/failed-joins/counts?by=client&organization=acme"),
        [
            ("00:1b:63:00:00:41".to_owned(), 2, 2),
            ("00:1b:63:00:00:42".to_owned(), 1, 1)
        ]
    );
    assert_eq!(
        answers["/api/v1/failed-joins?device=ap1&device=Lab%20AP%202"]
            .as_array()
            .unwrap()
            .len(),
        3
    );
    // Per SSID over the range: sessions started, roams arrived, failed joins.
    let mut per_ssid: std::collections::BTreeMap<String, (i64, i64, i64)> = Default::default();
    for p in answers[&format!("/api/v1/trends?period=day&by=ssid&{range}")]
        .as_array()
        .unwrap()
    {
        let e = per_ssid
            .entry(p["ssid"].as_str().unwrap().to_owned())
            .or_default();
        e.0 += p["sessions"].as_i64().unwrap();
        e.1 += p["roams"].as_i64().unwrap();
        e.2 += p["failed_joins"].as_i64().unwrap();
    }
    assert_eq!(
        per_ssid.into_iter().collect::<Vec<_>>(),
        [
            ("campus".to_owned(), (2, 1, 2)),
            ("campus-5g".to_owned(), (2, 1, 1)),
            ("hall".to_owned(), (1, 0, 1)),
        ]
    );
    let week = |ms: u64| (day(ms) + 3) / 7;
    if week(base) == week(base + 300_000) {
        let rows = &answers[&format!("/api/v1/clients?period=week&organization=acme&{range}")];
        let total: i64 = rows
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["clients"].as_i64().unwrap())
            .sum();
        assert_eq!(total, 2, "acme's distinct clients: {rows}");
    }

    // A token scoped to acme sees none of beta's rows on any of the new routes.
    for (route, query, _, _) in &cases {
        let query = query.replace("organization=acme&", "");
        let url = format!("{route}?{query}");
        let r = env.get(&url, Some(ACME_T));
        assert_eq!(r.status, 200, "acme: {url}: {}", r.body);
        for leak in ["beta", "ap2", "Hall AP", "hall", "00:1b:63:00:00:43"] {
            assert!(
                !r.body.contains(leak),
                "acme: {url} shows {leak}: {}",
                r.body
            );
        }
    }
    let r = env.get("/api/v1/failed-joins/counts?by=ssid", Some(ACME_T));
    let keys: Vec<Value> = r.json()["counts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["key"].clone())
        .collect();
    assert_eq!(keys, ["campus", "campus-5g"]);
    let r = env.get("/api/v1/roams?organization=beta", Some(ACME_T));
    assert_eq!(r.status, 403, "{}", r.body);

    // Bad periods and ranges: a 400 naming the parameter, exit 2 with one line.
    for (url, name) in [
        ("/api/v1/trends?period=week", "period: "),
        ("/api/v1/clients?period=hour", "period: "),
        ("/api/v1/trends?by=client", "by: "),
        ("/api/v1/failed-joins/counts?by=bssid", "by: "),
        (
            "/api/v1/trends?period=hour&from=2000-01-01&to=now",
            "range: ",
        ),
        ("/api/v1/clients?from=now&to=-1d", "range: "),
    ] {
        let r = env.get(url, admin);
        assert_eq!(r.status, 400, "{url}: {}", r.body);
        assert!(r.error().starts_with(name), "{url}: {}", r.body);
        let schema = response_schema(&doc, "get", url.split('?').next().unwrap(), 400);
        check(&doc, schema, &r.json(), "error").unwrap();
    }
    for (args, want) in [
        (
            &["trends", "--period", "week"][..],
            "--period: expected hour or day",
        ),
        (
            &["clients", "--period", "hour"],
            "--period: expected day or week",
        ),
        (&["trends", "--from", "2000-01-01"], "points: at most 5000"),
        (
            &["failed-joins", "--by", "bssid"],
            "--by: expected device, ssid or client",
        ),
        (
            &["roams", "--group", "nope"],
            "--group: no device is in group",
        ),
    ] {
        let (code, out, err) = cli_cfg(&env, args);
        assert_eq!(code, 2, "{args:?}: {err}");
        assert!(
            out.is_empty() && err.lines().count() == 1,
            "{args:?}: {err}"
        );
        assert!(err.contains(want), "{args:?}: {err}");
    }

    // Metrics: per device (24 h) and per device and SSID (today), no client labels.
    let m = env.get("/metrics", admin).body;
    for want in [
        "wifisess_roams_24h{device=\"ap3\",organization=\"acme\",direction=\"in\"} 1",
        "wifisess_roams_24h{device=\"ap3\",organization=\"acme\",direction=\"out\"} 1",
        "wifisess_roams_24h{device=\"ap2\",organization=\"beta\",direction=\"in\"} 0",
        "wifisess_failed_joins_24h{device=\"ap1\",organization=\"acme\"} 2",
        "wifisess_failed_joins_24h{device=\"ap2\",organization=\"beta\"} 1",
    ] {
        assert!(m.contains(want), "{want}\n{m}");
    }
    if day(base) == day(base + 300_000) && day(base) == day(now_ms()) {
        for want in [
            "wifisess_failed_joins_today{device=\"ap1\",organization=\"acme\",ssid=\"campus\"} 2",
            "wifisess_sessions_started_today{device=\"ap3\",organization=\"acme\",ssid=\"campus-5g\"} 2",
            "wifisess_roams_in_today{device=\"ap3\",organization=\"acme\",ssid=\"campus-5g\"} 1",
            "wifisess_clients_today{device=\"ap1\",organization=\"acme\",ssid=\"campus\"} 2",
        ] {
            assert!(m.contains(want), "{want}\n{m}");
        }
    }
    assert!(!m.contains("00:1b:63"), "a client in the metrics");
    let m = env.get("/metrics", Some(ACME_T)).body;
    assert!(m.contains("wifisess_failed_joins_24h{device=\"ap1\""));
    assert!(!m.contains("ap2") && !m.contains("beta"), "{m}");

    // The device page's counts.
    let d = env.get("/api/v1/devices/ap1", admin).json();
    assert_eq!(d["device"]["failed_joins_24h"], 2);
    assert_eq!(d["device"]["roams_in_24h"], 1);
    assert_eq!(d["device"]["roams_out_24h"], 1);
    // Session rows carry the names too, in the API and the CLI alike.
    let s = env.get("/api/v1/sessions?device=ap3", admin).json()["sessions"].clone();
    let named: Vec<(Value, Value, Value)> = s
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["label"].clone(),
                r["vendor"].clone(),
                r["randomized"].clone(),
            )
        })
        .collect();
    assert_eq!(
        named,
        [
            (Value::Null, "Apple, Inc.".into(), false.into()),
            ("alice-phone".into(), "Apple, Inc.".into(), false.into()),
        ]
    );
    let strip = |mut v: Value| {
        v["duration_s"] = Value::Null;
        v
    };
    let via_cli: Vec<Value> = cli_cfg_json(&env, &["sessions", "--device", "ap3"])
        .into_iter()
        .map(strip)
        .collect();
    let via_http: Vec<Value> = s.as_array().unwrap().iter().cloned().map(strip).collect();
    assert_eq!(via_cli, via_http, "sessions with names");

    if let Ok(out) = std::env::var("WIFISESS_REPORTS_DB_OUT") {
        // For docs/OPERATIONS.md: a copy of the SQLite fixture, and its names files.
        if env.engine.is_none() {
            let _ = std::fs::create_dir_all(&out);
            let out = Path::new(&out);
            let c = rusqlite::Connection::open(&env.db).unwrap();
            let target = out.join("reports.db");
            let _ = std::fs::remove_file(&target);
            c.execute("VACUUM INTO ?1", [target.to_str().unwrap()])
                .unwrap();
            for f in ["labels.csv", "oui.csv"] {
                let _ = std::fs::copy(names_dir.path().join(f), out.join(f));
            }
        }
    }
}
