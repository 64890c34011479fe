//! The `wifisess-agent run` binary (feature `tls`) against a mosquitto with a TLS listener and
//! password authentication (issue 4): a CA and a server certificate for `localhost` are made
//! with the `openssl` CLI per test; a `mosquitto_sub` over TLS sees the retained online status
//! and the event batches (decoded with the wire crate). A wrong password and an untrusted CA
//! are each one clear error line, retried with backoff, never a panic.
//!
//! `cargo test -p wifisess-agent --features tls --test mqtt_tls` (needs `openssl`, `mosquitto`,
//! `mosquitto-clients`: tests/install-deps.sh).
#![cfg(feature = "tls")]

mod bin_support;
mod mqtt_support;

use std::io::{BufRead as _, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};

use mqtt_support::{free_port, tempdir, Mosquitto};

/// The agent built with this test build's features (tls, devtools) in a target directory
/// of its own (see bin_support).
fn bin() -> &'static Path {
    bin_support::agent_bin(env!("CARGO_BIN_EXE_wifisess-agent"))
}

/// Runs `openssl ARGS` in `dir`; panics with its stderr if it fails.
fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("openssl (apt-get install openssl)");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A self-signed CA (P-256) named `NAME.crt` / `NAME.key` in `dir`.
fn make_ca(dir: &Path, name: &str) -> PathBuf {
    let (crt, key) = (format!("{name}.crt"), format!("{name}.key"));
    let subj = format!("/CN=wifisess test {name}");
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-keyout",
            &key,
            "-out",
            &crt,
            "-days",
            "2",
            "-subj",
            &subj,
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign",
        ],
    );
    dir.join(crt)
}

/// A server certificate for `localhost` and 127.0.0.1 (subject alternative names) signed by
/// the CA `ca` made by [`make_ca`]: `server.crt`, `server.key` in `dir`.
fn make_server_cert(dir: &Path, ca: &str) -> (PathBuf, PathBuf) {
    std::fs::write(
        dir.join("server.ext"),
        "subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=critical,CA:FALSE\n\
         keyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n",
    )
    .unwrap();
    openssl(
        dir,
        &[
            "req",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-keyout",
            "server.key",
            "-out",
            "server.csr",
            "-subj",
            "/CN=localhost",
        ],
    );
    let (ca_crt, ca_key) = (format!("{ca}.crt"), format!("{ca}.key"));
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            &ca_crt,
            "-CAkey",
            &ca_key,
            "-set_serial",
            "2",
            "-days",
            "2",
            "-extfile",
            "server.ext",
            "-out",
            "server.crt",
        ],
    );
    // mosquitto started as root drops to the `mosquitto` user before it reads the key.
    use std::os::unix::fs::PermissionsExt as _;
    let key = dir.join("server.key");
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
    (dir.join("server.crt"), key)
}

/// A TLS broker: CA `ca` (made here), server certificate for localhost, password file with
/// `agent`/`right` and `sub`/`subpw`, no anonymous clients.
struct TlsBroker {
    broker: Mosquitto,
    ca: PathBuf,
}

fn tls_broker(dir: &Path) -> TlsBroker {
    let ca = make_ca(dir, "ca");
    let (crt, key) = make_server_cert(dir, "ca");
    let pw = dir.join("passwd");
    for (i, (user, pass)) in [("agent", "right"), ("sub", "subpw")].iter().enumerate() {
        let mut c = Command::new("mosquitto_passwd");
        c.arg("-b");
        if i == 0 {
            c.arg("-c");
        }
        let ok = c.arg(&pw).arg(user).arg(pass).status().unwrap();
        assert!(ok.success(), "mosquitto_passwd");
    }
    let broker = Mosquitto::start(
        dir,
        &format!(
            "cafile {}\ncertfile {}\nkeyfile {}\npassword_file {}\nallow_anonymous false",
            ca.display(),
            crt.display(),
            key.display(),
            pw.display()
        ),
    );
    TlsBroker { broker, ca }
}

/// The agent's UCI file: `mqtts://localhost:PORT`, `ca_file`, credentials.
fn uci(dir: &Path, port: u16, ca: &Path, password: &str) -> PathBuf {
    let p = dir.join(format!("wifisess-{port}-{password}"));
    std::fs::write(
        &p,
        format!(
            "config agent 'agent'\n\toption device_id 'tlsdev'\n\
             \toption broker 'mqtts://localhost:{port}'\n\toption ca_file '{}'\n\
             \toption username 'agent'\n\toption password '{password}'\n\
             \toption spool_file '{}'\n",
            ca.display(),
            dir.join(format!("spool-{}", free_port())).display()
        ),
    )
    .unwrap();
    p
}

/// A child process whose output lines are collected on a thread.
struct Lines {
    child: Child,
    lines: Arc<Mutex<Vec<String>>>,
    reader: Option<std::thread::JoinHandle<()>>,
    /// The agent's stdout reader (the agent's lines come on both streams).
    out_reader: Option<std::thread::JoinHandle<()>>,
}

fn collect(
    src: impl Read + Send + 'static,
) -> (Arc<Mutex<Vec<String>>>, std::thread::JoinHandle<()>) {
    let lines = Arc::new(Mutex::new(Vec::new()));
    let l2 = lines.clone();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(src).lines() {
            let Ok(line) = line else { break };
            l2.lock().unwrap().push(line);
        }
    });
    (lines, reader)
}

impl Lines {
    fn snapshot(&self) -> Vec<String> {
        self.lines.lock().unwrap().clone()
    }

    /// SIGTERM (by pid), then the exit code and every line.
    fn terminate(mut self) -> (i32, Vec<String>) {
        let ok = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status()
            .unwrap();
        assert!(ok.success());
        let st = self.child.wait().unwrap();
        self.reader.take().unwrap().join().unwrap();
        if let Some(r) = self.out_reader.take() {
            r.join().unwrap();
        }
        (st.code().unwrap_or(-1), self.snapshot())
    }
}

impl Drop for Lines {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `wifisess-agent run --config CONF --synthetic N`, stdout and stderr collected (info lines
/// go to stdout, warnings and errors to stderr) into one list.
fn agent(conf: &Path, synthetic: &str) -> Lines {
    let mut child = Command::new(bin())
        .args(["run", "--config"])
        .arg(conf)
        .args(["--synthetic", synthetic])
        .env_clear()
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (lines, reader) = collect(child.stderr.take().unwrap());
    let (l2, r2) = (lines.clone(), child.stdout.take().unwrap());
    let out_reader = std::thread::spawn(move || {
        for line in BufReader::new(r2).lines() {
            let Ok(line) = line else { break };
            l2.lock().unwrap().push(line);
        }
    });
    Lines {
        child,
        lines,
        reader: Some(reader),
        out_reader: Some(out_reader),
    }
}

/// `mosquitto_sub -d` over TLS (verifying the server against `ca`) on `topic`, one line per
/// message: `RETAIN TOPIC HEXPAYLOAD` (see [`messages`]), between its debug lines. Returns once
/// the broker acknowledged the subscription, so nothing published after it is missed.
fn tls_sub(port: u16, ca: &Path, topic: &str) -> Lines {
    // Line-buffered: mosquitto_sub's stdio would hold its debug lines back in a pipe.
    let mut child = Command::new("stdbuf")
        .args([
            "-oL",
            "mosquitto_sub",
            "-d",
            "-h",
            "localhost",
            "-p",
            &port.to_string(),
            "--cafile",
        ])
        .arg(ca)
        .args(["-u", "sub", "-P", "subpw", "-q", "1", "-t", topic])
        .args(["-F", "%r %t %x"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("mosquitto_sub (apt-get install mosquitto-clients)");
    let (lines, reader) = collect(child.stdout.take().unwrap());
    let sub = Lines {
        child,
        lines,
        reader: Some(reader),
        out_reader: None,
    };
    wait_or_show(20, "mosquitto_sub's SUBACK", &sub, || {
        sub.snapshot()
            .iter()
            .any(|l| l.contains("received SUBACK"))
            .then_some(())
    });
    sub
}

/// The message lines of a [`tls_sub`] (its debug lines start with `Client` or `Subscribed`).
fn messages(sub: &Lines) -> Vec<String> {
    sub.snapshot()
        .into_iter()
        .filter(|l| l.starts_with("0 ") || l.starts_with("1 "))
        .collect()
}

/// Polls `f` every 50 ms for up to `secs`; on timeout panics with `what` and the lines of
/// `proc` (the agent's log, or a subscriber's output).
fn wait_or_show<T>(secs: u64, what: &str, proc: &Lines, mut f: impl FnMut() -> Option<T>) -> T {
    let end = std::time::Instant::now() + std::time::Duration::from_secs(secs);
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(
            std::time::Instant::now() < end,
            "timed out after {secs} s waiting for {what}; the process said:\n{}",
            proc.snapshot().join("\n")
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

fn unhex(s: &str) -> Vec<u8> {
    assert!(s.len() % 2 == 0, "odd hex length: {s}");
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex payload"))
        .collect()
}

/// One `RETAIN TOPIC HEX` line of [`tls_sub`].
fn parse(line: &str) -> (bool, &str, Vec<u8>) {
    let mut f = line.splitn(3, ' ');
    let retain = f.next().unwrap() == "1";
    let topic = f.next().unwrap();
    (retain, topic, unhex(f.next().unwrap_or("")))
}

/// The waits of `; retrying in N ms` lines that also contain `what`.
fn retries(lines: &[String], what: &str) -> Vec<u64> {
    lines
        .iter()
        .filter(|l| l.contains(what))
        .filter_map(|l| {
            let ms = l.split("; retrying in ").nth(1)?.strip_suffix(" ms")?;
            ms.parse().ok()
        })
        .collect()
}

fn assert_no_panic(lines: &[String]) {
    let all = lines.join("\n");
    assert!(!all.contains("panicked"), "{all}");
}

#[test]
fn tls_with_a_test_ca_and_a_password_delivers_status_and_events() {
    let dir = tempdir("tls-ok");
    let b = tls_broker(&dir);
    let port = b.broker.port;
    let sub = tls_sub(port, &b.ca, "wifisess/v1/#");
    let conf = uci(&dir, port, &b.ca, "right");
    let a = agent(&conf, "3");

    // The three synthetic starts arrive over TLS, decoded with the wire crate.
    let starts = wait_or_show(30, "3 starts over TLS", &a, || {
        let n: usize = messages(&sub)
            .iter()
            .map(|l| parse(l))
            .filter(|(_, t, _)| *t == "wifisess/v1/tlsdev/events")
            .map(|(_, _, p)| {
                let batch = wifisess_wire::decode_batch(&p).expect("a valid batch");
                assert_eq!(batch.device_id, "tlsdev");
                batch
                    .events
                    .iter()
                    .filter(|e| matches!(e, wifisess_wire::Event::Start(_)))
                    .count()
            })
            .sum();
        (n >= 3).then_some(n)
    });
    assert_eq!(starts, 3);
    let online = messages(&sub)
        .iter()
        .map(|l| parse(l))
        .find(|(_, t, _)| *t == "wifisess/v1/tlsdev/status")
        .map(|(_, _, p)| wifisess_wire::decode_status(&p).expect("a valid status"))
        .expect("an online status");
    assert!(online.online);

    // A subscriber that comes later gets the online status as a retained message.
    let late = tls_sub(port, &b.ca, "wifisess/v1/tlsdev/status");
    let (retain, status) = wait_or_show(20, "the retained online status", &a, || {
        let l = messages(&late).first()?.clone();
        let (r, _, p) = parse(&l);
        Some((r, wifisess_wire::decode_status(&p).expect("a valid status")))
    });
    assert!(retain, "the status is retained");
    assert!(status.online);
    assert_eq!(status.device_id, "tlsdev");

    let (code, err) = a.terminate();
    assert_eq!(code, 0, "{err:?}");
    assert!(
        err.iter()
            .any(|l| l.contains("connected to mqtts://localhost:")),
        "{err:?}"
    );
    assert!(!err.iter().any(|l| l.contains("cannot connect")), "{err:?}");
    assert_no_panic(&err);
    drop(sub);
}

#[test]
fn a_wrong_password_over_tls_is_a_clear_error_retried_with_backoff() {
    let dir = tempdir("tls-auth");
    let b = tls_broker(&dir);
    let conf = uci(&dir, b.broker.port, &b.ca, "wrong");
    let a = agent(&conf, "0");
    wait_or_show(20, "two refused connections", &a, || {
        let l = a.snapshot();
        (retries(&l, "connection refused: ").len() >= 2).then_some(())
    });
    let (code, err) = a.terminate();
    assert_eq!(code, 0, "{err:?}");
    // mosquitto 2 answers a wrong password with return code 5 (not authorized).
    let refused: Vec<&String> = err
        .iter()
        .filter(|l| l.contains("connection refused: ") && l.contains("user name or password"))
        .collect();
    assert!(refused.len() >= 2, "{err:?}");
    let waits = retries(&err, "connection refused: ");
    assert!(waits.iter().all(|w| *w >= 1000), "backoff ≥ 1 s: {waits:?}");
    assert!(
        !err.iter().any(|l| l.contains("wrong")),
        "the password is never logged: {err:?}"
    );
    assert_no_panic(&err);
}

#[test]
fn an_untrusted_ca_is_a_clear_certificate_error_retried_with_backoff() {
    let dir = tempdir("tls-ca");
    let b = tls_broker(&dir);
    // A second CA that did not sign the broker's certificate.
    let other = make_ca(&dir, "other-ca");
    let conf = uci(&dir, b.broker.port, &other, "right");
    let a = agent(&conf, "0");
    wait_or_show(20, "two failed TLS handshakes", &a, || {
        let l = a.snapshot();
        (retries(&l, "cannot connect to mqtts://localhost:").len() >= 2).then_some(())
    });
    let (code, err) = a.terminate();
    assert_eq!(code, 0, "{err:?}");
    let failures: Vec<&String> = err
        .iter()
        .filter(|l| l.contains("cannot connect to mqtts://localhost:"))
        .collect();
    assert!(failures.len() >= 2, "{err:?}");
    for l in &failures {
        assert!(
            l.contains("invalid peer certificate") && l.contains("UnknownIssuer"),
            "the line names the certificate problem: {l}"
        );
        assert_eq!(l.lines().count(), 1);
    }
    assert!(
        retries(&err, "cannot connect to mqtts://localhost:")
            .iter()
            .all(|w| *w >= 1000),
        "{err:?}"
    );
    assert!(!err
        .iter()
        .any(|l| l.contains("connected to mqtts://localhost:")));
    assert_no_panic(&err);
}
