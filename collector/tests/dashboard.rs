//! The dashboard in headless Debian Chromium, driven over the DevTools protocol (a websocket,
//! tungstenite), against a collector fed through the real ingest path: the open sessions
//! appear, a session published during the test appears without a reload, a filter narrows
//! the table. Saves a screenshot (to docs/img/dashboard.png with WIFISESS_SCREENSHOT=1).

mod common;
mod http_common;

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use http_common::*;
use serde_json::{json, Value};
use tungstenite::stream::MaybeTlsStream;
use tungstenite::{Message, WebSocket};

fn ensure_chromium() -> PathBuf {
    let p = Path::new("/usr/bin/chromium");
    if !p.exists() {
        let ok = Command::new("sh")
            .args(["-c", "apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium"])
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
        assert!(
            ok,
            "chromium is not installed and apt-get install chromium failed"
        );
    }
    p.into()
}

/// Headless Chromium with a fresh profile; killed on drop.
struct Browser {
    child: Child,
    _profile: tempfile::TempDir,
    ws: WebSocket<MaybeTlsStream<TcpStream>>,
    next_id: u64,
    session: String,
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Browser {
    fn open(url: &str) -> Browser {
        let profile = tempfile::tempdir().unwrap();
        let child = Command::new(ensure_chromium())
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
                "--disable-quic",
                "--hide-scrollbars",
                "--window-size=1440,900",
                "--remote-debugging-port=0",
            ])
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .arg("about:blank")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("starting chromium");
        let port_file = profile.path().join("DevToolsActivePort");
        let (port, path) =
            common::wait_for("chromium's DevTools port", Duration::from_secs(30), || {
                let t = std::fs::read_to_string(&port_file).ok()?;
                let mut l = t.lines();
                Some((l.next()?.to_owned(), l.next()?.to_owned()))
            });
        let (ws, _) = tungstenite::connect(format!("ws://127.0.0.1:{port}{path}")).unwrap();
        let mut b = Browser {
            child,
            _profile: profile,
            ws,
            next_id: 0,
            session: String::new(),
        };
        let t = b.call(None, "Target.createTarget", json!({ "url": "about:blank" }));
        let target = t["targetId"].as_str().unwrap().to_owned();
        let s = b.call(
            None,
            "Target.attachToTarget",
            json!({ "targetId": target, "flatten": true }),
        );
        b.session = s["sessionId"].as_str().unwrap().to_owned();
        let sid = b.session.clone();
        b.call(
            Some(&sid),
            "Emulation.setDeviceMetricsOverride",
            json!({ "width": 1440, "height": 900, "deviceScaleFactor": 1, "mobile": false }),
        );
        b.call(Some(&sid), "Page.navigate", json!({ "url": url }));
        b
    }

    /// Sends a command and returns its result (events in between are skipped).
    fn call(&mut self, session: Option<&str>, method: &str, params: Value) -> Value {
        self.next_id += 1;
        let id = self.next_id;
        let mut msg = json!({ "id": id, "method": method, "params": params });
        if let Some(s) = session {
            msg["sessionId"] = json!(s);
        }
        self.ws.send(Message::text(msg.to_string())).unwrap();
        loop {
            let m = self.ws.read().unwrap();
            let Message::Text(t) = m else { continue };
            let v: Value = serde_json::from_str(t.as_str()).unwrap();
            if v["id"] == json!(id) {
                assert!(v.get("error").is_none(), "{method}: {v}");
                return v["result"].clone();
            }
        }
    }

    /// Evaluates a JavaScript expression in the page and returns its value.
    fn eval(&mut self, expr: &str) -> Value {
        let sid = self.session.clone();
        let r = self.call(
            Some(&sid),
            "Runtime.evaluate",
            json!({ "expression": expr, "returnByValue": true }),
        );
        r["result"]["value"].clone()
    }

    fn wait_eval(&mut self, what: &str, expr: &str, want: Value) {
        let mut last = Value::Null;
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        while std::time::Instant::now() < deadline {
            last = self.eval(expr);
            if last == want {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("timed out waiting for {what}: {expr} = {last}, wanted {want}");
    }

    fn screenshot(&mut self) -> Vec<u8> {
        let sid = self.session.clone();
        let r = self.call(
            Some(&sid),
            "Page.captureScreenshot",
            json!({ "format": "png" }),
        );
        base64(r["data"].as_str().unwrap())
    }
}

fn base64(s: &str) -> Vec<u8> {
    let val = |c: u8| match c {
        b'A'..=b'Z' => c - b'A',
        b'a'..=b'z' => c - b'a' + 26,
        b'0'..=b'9' => c - b'0' + 52,
        b'+' => 62,
        b'/' => 63,
        _ => panic!("bad base64"),
    };
    let b: Vec<u8> = s.bytes().filter(|c| *c != b'=').collect();
    let mut out = Vec::with_capacity(b.len() * 3 / 4);
    for chunk in b.chunks(4) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |acc, (i, c)| acc | u32::from(val(*c)) << (18 - 6 * i));
        let bytes = n.to_be_bytes();
        out.extend_from_slice(&bytes[1..chunk.len()]);
    }
    out
}

const NOW_ROWS: &str = "document.querySelectorAll('#now-table tbody tr[data-session-id]').length";

#[test]
fn dashboard_shows_live_sessions_and_filters() {
    let env = Env::start("dangling_minutes = 58\n");
    seed(&env, None);
    let mut b = Browser::open(&format!("http://127.0.0.1:{}/#/now", env.http_port));

    // The open sessions appear, with the per-device counts.
    b.wait_eval("5 open sessions", NOW_ROWS, json!(5));
    b.wait_eval(
        "live stream",
        "document.querySelector('#live').classList.contains('on')",
        json!(true),
    );
    b.wait_eval(
        "per-device counts",
        "[...document.querySelectorAll('#per-device tbody tr')].map(r => r.dataset.deviceId + ':' + parseInt(r.cells[1].innerText)).join('|')",
        json!("ap1:3|ap2:2"),
    );

    // A session started now appears without a reload.
    b.eval("window.__sameDocument = true");
    env.publish(vec![sessions_batch(
        "ap2",
        10,
        &[(0x23, 8, 3_000_000, None)],
    )]);
    b.wait_eval("the new session", NOW_ROWS, json!(6));
    assert_eq!(
        b.eval("!!document.querySelector('#now-table tr[data-session-id=\"0000000000000023\"]')"),
        json!(true)
    );
    assert_eq!(
        b.eval("window.__sameDocument === true"),
        json!(true),
        "the page reloaded"
    );

    // A filter narrows the table.
    b.eval("document.querySelector('[name=device]').value = 'ap2'; document.querySelector('#filters').requestSubmit(); 0");
    b.wait_eval("the device filter", NOW_ROWS, json!(3));
    b.eval("document.querySelector('[name=device]').value = ''; document.querySelector('[name=mac]').value = '02:00:00:00:10:02'; document.querySelector('#filters').requestSubmit(); 0");
    b.wait_eval("the MAC filter", NOW_ROWS, json!(1));

    // The device page lists its open sessions and its history.
    b.eval("document.querySelector('#clear').click(); location.hash = '#/device/ap1'; 0");
    b.wait_eval(
        "the device page",
        "document.querySelectorAll('#devpage-open tbody tr[data-session-id]').length + ',' + document.querySelectorAll('#devpage-recent tbody tr[data-session-id]').length",
        json!("3,2"),
    );

    // History view, CSV link carries the filters.
    b.eval("location.hash = '#/history'; 0");
    b.wait_eval(
        "history rows",
        "document.querySelectorAll('#hist-table tbody tr[data-session-id]').length",
        json!(8),
    );
    let href = b.eval("document.querySelector('#csv').getAttribute('href')");
    assert!(href.as_str().unwrap().contains("format=csv"), "{href}");

    // Screenshot of the live view.
    b.eval("location.hash = '#/now'; 0");
    b.wait_eval("live view again", NOW_ROWS, json!(6));
    std::thread::sleep(Duration::from_millis(300));
    let png = b.screenshot();
    assert_eq!(&png[1..4], b"PNG");
    let out = if std::env::var_os("WIFISESS_SCREENSHOT").is_some() {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/img/dashboard.png")
    } else {
        env.dir.path().join("dashboard.png")
    };
    std::fs::create_dir_all(out.parent().unwrap()).unwrap();
    std::fs::write(&out, &png).unwrap();
}
