//! The HTTP API under attack (docs/SECURITY.md): SQL injection attempts in every filter,
//! absurd limits, malformed times and cursors, bad tokens; every answer is a fitting status
//! with a JSON `{ "error": ... }` body and no internals (no stack trace, no SQL, no source
//! path), and the database is intact afterwards. Plus the token comparison's behaviour.

mod common;
mod http_common;

use http_common::*;
use sha2::{Digest, Sha256};
use wifisess_collector::config::{Role, TokenConfig};
use wifisess_collector::http::auth::{authenticate, tokens};

const ADMIN: &str = "admin-token-0123456789abcdef";
const READER: &str = "reader-token-0123456789abcdef";

/// Percent-encodes a query value (everything but unreserved characters).
fn pct(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

const INJECTIONS: &[&str] = &[
    "' OR '1'='1",
    "ap1' OR 1=1 --",
    "\" OR \"\"=\"",
    "x'); DROP TABLE sessions; --",
    "1 UNION SELECT name, sql FROM sqlite_master --",
    "%' OR mac LIKE '%",
    "*",
    "\\",
    "\u{0}",
    "ap1\u{0}' OR 1=1",
];

/// Undoes [`pct`] (to tell an echoed input from a leak).
fn unpct(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        match (
            b[i],
            s.get(i + 1..i + 3)
                .and_then(|h| u8::from_str_radix(h, 16).ok()),
        ) {
            (b'%', Some(v)) => {
                out.push(v);
                i += 3;
            }
            (c, _) => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Internals that must never reach a client (unless the request itself said them: an error
/// may quote the bad value back).
fn assert_clean(what: &str, r: &Resp) {
    let asked = unpct(what).to_lowercase();
    for leak in [
        "panicked",
        "stack backtrace",
        "RUST_BACKTRACE",
        "src/",
        ".rs:",
        "rusqlite",
        "SQLITE",
        "sqlite_master",
        "syntax error",
        "SELECT ",
    ] {
        if asked.contains(&leak.to_lowercase()) {
            continue;
        }
        assert!(
            !r.body.contains(leak),
            "{what}: response leaks {leak:?}: {}",
            r.body
        );
    }
}

/// A 4xx with a JSON error body.
fn assert_json_error(what: &str, r: &Resp, status: u16) {
    assert_eq!(r.status, status, "{what}: {}", r.body);
    assert!(!r.error().is_empty(), "{what}: no error text: {}", r.body);
    assert_clean(what, r);
}

fn row_count(env: &Env) -> i64 {
    common::scalar(&env.db, "SELECT count(*) FROM sessions")
}

#[test]
fn injections_absurd_limits_bad_times_and_bad_tokens_get_json_errors_and_leak_nothing() {
    let env = Env::start(&format!(
        "[[tokens]]\nsha256 = \"{}\"\nrole = \"admin\"\n\n\
         [[tokens]]\nsha256 = \"{}\"\nrole = \"read\"\norganization = \"acme\"\n",
        sha256_hex(ADMIN),
        sha256_hex(READER)
    ));
    seed(&env, Some(ADMIN));
    assert_eq!(row_count(&env), 7);

    // Text filters: injections match nothing (bound parameters), typed ones are 400.
    for inj in INJECTIONS {
        let v = pct(inj);
        for (path, key) in [
            ("/api/v1/sessions", "device"),
            ("/api/v1/sessions", "group"),
            ("/api/v1/sessions", "organization"),
            ("/api/v1/sessions", "ssid"),
            ("/api/v1/devices", "device"),
            ("/api/v1/devices", "group"),
            ("/api/v1/devices", "organization"),
            ("/api/v1/status", "device"),
            ("/api/v1/status", "group"),
            ("/api/v1/status", "organization"),
        ] {
            let q = format!("{path}?{key}={v}");
            let r = env.get(&q, Some(ADMIN));
            assert_clean(&q, &r);
            assert!(r.status == 200 || r.status == 400, "{q}: {}", r.body);
            if r.status == 200 && path == "/api/v1/sessions" {
                assert_eq!(r.json()["sessions"].as_array().unwrap().len(), 0, "{q}");
            }
        }
        for key in [
            "mac",
            "start_after",
            "start_before",
            "stop_after",
            "stop_before",
            "limit",
            "cursor",
            "open",
            "closed",
            "format",
        ] {
            let q = format!("/api/v1/sessions?{key}={v}");
            assert_json_error(&q, &env.get(&q, Some(ADMIN)), 400);
        }
        let q = format!("/api/v1/presence?group={v}&from=-1d&to=now");
        let r = env.get(&q, Some(ADMIN));
        assert_clean(&q, &r);
        assert!(r.status == 200 || r.status == 400, "{q}: {}", r.body);
        let q = format!("/api/v1/sessions/{v}");
        let r = env.get(&q, Some(ADMIN));
        assert_clean(&q, &r);
        assert!(r.status == 400 || r.status == 404, "{q}: {}", r.body);
        // A scoped token cannot escape its organization by injection.
        let q = format!("/api/v1/sessions?organization={v}");
        let r = env.get(&q, Some(READER));
        assert_clean(&q, &r);
        if r.status == 200 {
            assert!(
                r.json()["sessions"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .all(|s| s["organization"] == "acme"),
                "{q}: {}",
                r.body
            );
        } else {
            assert_eq!(r.status, 403, "{q}: {}", r.body);
        }
    }
    assert_eq!(row_count(&env), 7, "the injections changed the database");

    // Absurd limits: refused with 400 naming the parameter (the page size is capped at
    // 1000; CSV is streamed, so its total may be large but must be a number).
    for l in ["0", "-1", "1001", "99999999999", "1e9", "0x10", "NaN"] {
        let q = format!("/api/v1/sessions?limit={}", pct(l));
        let r = env.get(&q, Some(ADMIN));
        assert_json_error(&q, &r, 400);
        assert!(r.error().contains("limit"), "{q}: {}", r.body);
    }
    assert_eq!(
        env.get("/api/v1/sessions?limit=1000", Some(ADMIN)).status,
        200
    );
    let r = env.get("/api/v1/sessions?format=csv&limit=4294967295", Some(ADMIN));
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body.lines().count(), 8, "header + 7 rows: {}", r.body);
    for l in ["4294967296", "-5"] {
        let q = format!("/api/v1/sessions?format=csv&limit={l}");
        assert_json_error(&q, &env.get(&q, Some(ADMIN)), 400);
    }
    let q = "/api/v1/devices/ap1?history=100000";
    assert_json_error(q, &env.get(q, Some(ADMIN)), 400);

    // Malformed times in every time parameter.
    for t in [
        "2025-13-45T99:99:99Z",
        "yesterday",
        "-99999999999999999999d",
        "-9223372036854775807w",
        "+2h",
        "1e400",
    ] {
        for key in ["start_after", "start_before", "stop_after", "stop_before"] {
            let q = format!("/api/v1/sessions?{key}={}", pct(t));
            let r = env.get(&q, Some(ADMIN));
            assert_json_error(&q, &r, 400);
        }
        for q in [
            format!("/api/v1/presence?group=lab&from={}&to=now", pct(t)),
            format!("/api/v1/presence?group=lab&from=-1d&to={}", pct(t)),
        ] {
            assert_json_error(&q, &env.get(&q, Some(ADMIN)), 400);
        }
    }

    // Tokens: none, empty, unknown, one character off at either end, a prefix, an
    // extension, another role's token for an admin action.
    let last_off = format!("{}X", &ADMIN[..ADMIN.len() - 1]);
    let first_off = format!("X{}", &ADMIN[1..]);
    let extended = format!("{ADMIN}0");
    for (what, tok) in [
        ("no token", None),
        ("empty token", Some("")),
        ("unknown token", Some("nope")),
        ("last character off", Some(last_off.as_str())),
        ("first character off", Some(first_off.as_str())),
        ("prefix", Some(&ADMIN[..ADMIN.len() - 1])),
        ("extension", Some(extended.as_str())),
    ] {
        let r = env.get("/api/v1/sessions", tok);
        assert_json_error(what, &r, 401);
    }
    assert_json_error(
        "read token refreshing",
        &env.post("/api/v1/sessions/refresh", Some(READER)),
        403,
    );
    // Unknown routes and methods are JSON too.
    assert_json_error(
        "no route",
        &env.get("/api/v1/../../etc/passwd", Some(ADMIN)),
        404,
    );
    assert_eq!(row_count(&env), 7);
}

fn token_cfg(tok: &str, role: Role) -> TokenConfig {
    TokenConfig {
        sha256: Sha256::digest(tok.as_bytes())
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect(),
        role,
        organization: None,
    }
}

/// The comparison behind `authenticate` (auth.rs `ct_eq`, by review: SHA-256 of the
/// presented token, then an XOR-fold over all 32 bytes of every configured hash, no early
/// exit): exact matches only, whatever the position or length of a difference.
#[test]
fn token_comparison_accepts_only_the_exact_token() {
    let t = tokens(&[
        token_cfg("s3cret-admin-0123456789", Role::Admin),
        token_cfg("s3cret-read-0123456789", Role::Read),
    ]);
    assert!(
        authenticate(&t, Some("s3cret-admin-0123456789"))
            .unwrap()
            .admin
    );
    assert!(
        !authenticate(&t, Some("s3cret-read-0123456789"))
            .unwrap()
            .admin
    );
    for bad in [
        "",
        "s3cret-admin-012345678A",
        "S3cret-admin-0123456789",
        "s3cret-admin-0123456789 ",
        " s3cret-admin-0123456789",
        "s3cret-admin-012345678",
        "s3cret-admin-0123456789\0",
        "s3cret-read-0123456789x",
    ] {
        let e = authenticate(&t, Some(bad)).unwrap_err();
        assert_eq!(e.status.as_u16(), 401, "{bad:?}");
    }
    // Two tokens configured with the same hash: the first one's role wins, deterministically.
    let dup = tokens(&[
        token_cfg("same-token-0123456789", Role::Read),
        token_cfg("same-token-0123456789", Role::Admin),
    ]);
    assert!(
        !authenticate(&dup, Some("same-token-0123456789"))
            .unwrap()
            .admin
    );
}

const ACME_READ: &str = "acme-reader-token-0123456789";
const ACME_ADMIN: &str = "acme-admin-token-0123456789";
const WRONG: &str = "wrong-token-0123456789abcdef";

/// The status line of `method path` with `token`, reading no further (for the event stream).
fn status_only(port: u16, method: &str, path: &str, token: Option<&str>) -> u16 {
    use std::io::{BufRead as _, Write as _};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(std::time::Duration::from_secs(30)))
        .unwrap();
    let auth = token
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: x\r\n{auth}Content-Length: 0\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut line = String::new();
    std::io::BufReader::new(s).read_line(&mut line).unwrap();
    line.split(' ').nth(1).unwrap().parse().unwrap()
}

/// Every route of `http::routes()`, for every kind of caller: no token, a wrong one, an
/// unscoped reader and admin, a reader and an admin scoped to `acme`. Open routes answer
/// everyone; data routes need a token; refresh needs an unscoped admin; a scoped token sees
/// nothing of `beta` (404 for its session and device, none of its rows) and is refused
/// (403) when it asks for `beta`. A route added without a line here fails the test.
#[test]
fn every_route_by_role_and_scope() {
    let env = Env::start(&format!(
        "[[tokens]]\nsha256 = \"{}\"\nrole = \"admin\"\n\n\
         [[tokens]]\nsha256 = \"{}\"\nrole = \"read\"\n\n\
         [[tokens]]\nsha256 = \"{}\"\nrole = \"read\"\norganization = \"acme\"\n\n\
         [[tokens]]\nsha256 = \"{}\"\nrole = \"admin\"\norganization = \"acme\"\n",
        sha256_hex(ADMIN),
        sha256_hex(READER),
        sha256_hex(ACME_READ),
        sha256_hex(ACME_ADMIN),
    ));
    seed(&env, Some(ADMIN));
    // Callers: (name, token, unscoped, admin).
    let callers: [(&str, Option<&str>, bool, bool); 6] = [
        ("none", None, false, false),
        ("wrong", Some(WRONG), false, false),
        ("reader", Some(READER), true, false),
        ("admin", Some(ADMIN), true, true),
        ("acme reader", Some(ACME_READ), false, false),
        ("acme admin", Some(ACME_ADMIN), false, true),
    ];
    // Per route: the requests made (path, what it touches: Some("beta") when it asks for
    // another organization's data explicitly, Some("beta-row") for a beta row by id).
    let cases = |path: &str| -> Vec<(String, Option<&'static str>)> {
        let plain = |p: &str| vec![(p.to_owned(), None)];
        match path {
            "/"
            | "/assets/app.js"
            | "/assets/style.css"
            | "/assets/vendor/uPlot.iife.min.js"
            | "/assets/vendor/uPlot.min.css"
            | "/assets/vendor/uPlot.LICENSE"
            | "/healthz"
            | "/readyz"
            | "/api/v1/openapi.json"
            | "/metrics"
            | "/api/v1/stream"
            | "/api/v1/sessions/refresh" => plain(path),
            "/api/v1/sessions"
            | "/api/v1/devices"
            | "/api/v1/status"
            | "/api/v1/roams"
            | "/api/v1/roams/pairs"
            | "/api/v1/failed-joins" => vec![
                (path.to_owned(), None),
                (format!("{path}?organization=beta"), Some("beta")),
            ],
            "/api/v1/sessions/{id}" => vec![
                ("/api/v1/sessions/0000000000000011".into(), None),
                ("/api/v1/sessions/0000000000000021".into(), Some("beta-row")),
            ],
            "/api/v1/devices/{id}" => vec![
                ("/api/v1/devices/ap1".into(), None),
                ("/api/v1/devices/ap2".into(), Some("beta-row")),
            ],
            "/api/v1/presence" => vec![
                ("/api/v1/presence?group=lab&from=-2h&to=now".into(), None),
                (
                    "/api/v1/presence?group=hall&from=-2h&to=now&organization=beta".into(),
                    Some("beta"),
                ),
            ],
            "/api/v1/failed-joins/counts" => vec![
                (format!("{path}?by=device"), None),
                (format!("{path}?by=ssid&organization=beta"), Some("beta")),
            ],
            // Series per device: an unscoped caller sees ap2's, a scoped one must not.
            "/api/v1/trends" => vec![
                (format!("{path}?period=day&by=device&from=-3d"), None),
                (format!("{path}?period=hour&by=device"), None),
                (format!("{path}?organization=beta"), Some("beta")),
            ],
            "/api/v1/clients" => vec![
                (format!("{path}?period=week"), None),
                (format!("{path}?device=ap2"), None),
                (format!("{path}?period=day&organization=beta"), Some("beta")),
            ],
            other => panic!("route {other} has no case in every_route_by_role_and_scope"),
        }
    };
    let open = [
        "/",
        "/assets/app.js",
        "/assets/style.css",
        "/assets/vendor/uPlot.iife.min.js",
        "/assets/vendor/uPlot.min.css",
        "/assets/vendor/uPlot.LICENSE",
        "/healthz",
        "/readyz",
        "/api/v1/openapi.json",
    ];
    let mut checked = 0;
    for (method, route, _) in wifisess_collector::http::routes() {
        for (path, touches) in cases(route) {
            for (who, token, unscoped, admin) in callers {
                let want: u16 = if open.contains(&route) {
                    200
                } else if token.is_none() || who == "wrong" {
                    401
                } else if route == "/api/v1/sessions/refresh" {
                    if admin && unscoped {
                        200
                    } else {
                        403
                    }
                } else if unscoped {
                    200
                } else {
                    match touches {
                        Some("beta") => 403,
                        Some(_) => 404,
                        None => 200,
                    }
                };
                let m = method.to_uppercase();
                let what = format!("{who}: {m} {path}");
                if route == "/api/v1/stream" {
                    assert_eq!(status_only(env.http_port, &m, &path, token), want, "{what}");
                    checked += 1;
                    continue;
                }
                let r = request(env.http_port, &m, &path, token);
                assert_eq!(r.status, want, "{what}: {}", r.body);
                if want != 200 {
                    assert_json_error(&what, &r, want);
                } else if !unscoped && !open.contains(&route) {
                    for leak in ["beta", "ap2", "Hall AP"] {
                        assert!(!r.body.contains(leak), "{what} shows {leak}: {}", r.body);
                    }
                }
                checked += 1;
            }
        }
    }
    println!("every_route_by_role_and_scope: {checked} requests checked");
}

/// Impossible dates and offsets (found by this suite when the API had its own time parser,
/// which checked the day against 1..=31 only and took any offset) are 400s naming the
/// parameter, in every time parameter, now that the API uses the CLI's
/// `timefmt::parse_time`; the real leap day and the largest offsets still work.
#[test]
fn impossible_dates_and_offsets_are_rejected() {
    let env = Env::start("");
    seed(&env, None);
    for t in [
        "2025-02-30T00:00:00Z",
        "2025-04-31",
        "2023-02-29",
        "2025-06-15T08:00:00+25:00",
        "2025-06-15T08:00:00-24:00",
        "2025-06-15T08:00:00+01:60",
    ] {
        for key in ["start_after", "start_before", "stop_after", "stop_before"] {
            let q = format!("/api/v1/sessions?{key}={}", pct(t));
            let r = env.get(&q, None);
            assert_json_error(&q, &r, 400);
            assert!(
                r.error().starts_with(&format!("{key}: ")),
                "{q}: {}",
                r.body
            );
        }
        for (key, q) in [
            (
                "from",
                format!("/api/v1/presence?group=lab&from={}&to=now", pct(t)),
            ),
            (
                "to",
                format!("/api/v1/presence?group=lab&from=-1d&to={}", pct(t)),
            ),
        ] {
            let r = env.get(&q, None);
            assert_json_error(&q, &r, 400);
            assert!(
                r.error().starts_with(&format!("{key}: ")),
                "{q}: {}",
                r.body
            );
        }
    }
    for t in [
        "2024-02-29",
        "2024-02-29T23:59:59.999+23:59",
        "2024-02-29T00:00:00-23:59",
    ] {
        let q = format!("/api/v1/sessions?start_after={}", pct(t));
        assert_eq!(env.get(&q, None).status, 200, "{q}");
    }
}
