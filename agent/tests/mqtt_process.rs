//! The `wifisess-agent run` binary against a real mosquitto: SIGTERM spools what the broker
//! did not acknowledge and the next run delivers it; `kill -9` makes the broker publish the
//! offline Last Will; a wrong password is a clear error, retried with backoff.

mod mqtt_support;

use std::io::Read as _;
use std::path::Path;
use std::process::{Child, Command, Stdio};

use mqtt_support::*;

const BIN: &str = env!("CARGO_BIN_EXE_wifisess-agent");

fn uci(dir: &Path, port: u16, extra: &str) -> std::path::PathBuf {
    let p = dir.join(format!("wifisess-{port}"));
    std::fs::write(
        &p,
        format!(
            "config agent 'agent'\n\toption device_id 'procdev'\n\toption broker 'mqtt://127.0.0.1:{port}'\n\toption spool_file '{}'\n{extra}",
            dir.join("spool").display()
        ),
    )
    .unwrap();
    p
}

fn agent(conf: &Path, args: &[&str]) -> Child {
    Command::new(BIN)
        .arg("run")
        .arg("--config")
        .arg(conf)
        .args(args)
        .env_clear()
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

fn signal(c: &Child, sig: &str) {
    let ok = Command::new("kill")
        .arg(sig)
        .arg(c.id().to_string())
        .status()
        .unwrap();
    assert!(ok.success());
}

fn finish(mut c: Child) -> (i32, String) {
    let st = c.wait().unwrap();
    let mut err = String::new();
    c.stderr.take().unwrap().read_to_string(&mut err).unwrap();
    (st.code().unwrap_or(-1), err)
}

#[test]
fn sigterm_spools_unacknowledged_events_and_the_next_run_delivers_them() {
    let dir = tempdir("spool");
    let port = free_port(); // no broker: nothing is acknowledged
    let conf = uci(&dir, port, "");
    let a = agent(&conf, &["--synthetic", "25:1"]);
    std::thread::sleep(std::time::Duration::from_millis(800)); // 25 events at 1 ms
    signal(&a, "-TERM");
    let (code, err) = finish(a);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("spooling 25 unacknowledged events"), "{err}");
    let spool = dir.join("spool");
    assert!(spool.exists());

    let broker = Mosquitto::start(&dir, &format!("# port {port}"));
    let seen = subscribe(broker.port);
    let conf = uci(&dir, broker.port, "");
    let b = agent(&conf, &["--synthetic", "0"]);
    wait_for(30, "the 25 spooled starts", || {
        let s = seen.lock().unwrap();
        let n = s
            .batches
            .iter()
            .flat_map(|b| &b.events)
            .filter(|e| matches!(e, wifisess_wire::Event::Start(_)))
            .count();
        (n >= 25).then_some(())
    });
    assert!(!spool.exists(), "the spool is deleted once restored");
    signal(&b, "-TERM");
    let (code, err) = finish(b);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("restored 25 unacknowledged events"), "{err}");
    // The agent has exited, but the broker may not have passed its last status on yet.
    wait_for(10, "the graceful offline status", || {
        let s = seen.lock().unwrap();
        let (_, st) = s.statuses.last()?;
        (!st.online && st.graceful).then_some(())
    });
    let s = seen.lock().unwrap();
    let starts: Vec<_> = s
        .batches
        .iter()
        .filter(|b| {
            b.events
                .iter()
                .any(|e| matches!(e, wifisess_wire::Event::Start(_)))
        })
        .collect();
    let old_epoch = starts[0].agent_epoch;
    let seqs: Vec<u64> = starts
        .iter()
        .flat_map(|b| b.events.iter().map(|e| e.seq()))
        .collect();
    assert_eq!(seqs, (1..=25).collect::<Vec<_>>(), "original seqs");
    let online = s.statuses.iter().find(|(_, st)| st.online).unwrap();
    assert_ne!(
        online.1.agent_epoch, old_epoch,
        "re-published under their original epoch"
    );
    assert!(!s.statuses.last().unwrap().1.online && s.statuses.last().unwrap().1.graceful);
    assert!(!spool.exists(), "nothing left to spool");
}

#[test]
fn kill_9_makes_the_broker_publish_the_offline_last_will() {
    let dir = tempdir("will");
    let broker = Mosquitto::start(&dir, "");
    let seen = subscribe(broker.port);
    let conf = uci(&dir, broker.port, "");
    let a = agent(&conf, &["--synthetic", "3"]);
    wait_for(20, "the online status", || {
        seen.lock()
            .unwrap()
            .statuses
            .iter()
            .any(|(_, s)| s.online)
            .then_some(())
    });
    signal(&a, "-KILL");
    let _ = finish(a);
    // mosquitto notices the dead socket at once (RST/EOF) and publishes the will.
    let will = wait_for(60, "the Last Will", || {
        seen.lock()
            .unwrap()
            .statuses
            .iter()
            .find(|(_, s)| !s.online)
            .map(|x| x.1.clone())
    });
    assert!(!will.graceful);
    assert_eq!(will.device_id, "procdev");
    // It is retained: a new subscriber gets it.
    let late = subscribe(broker.port);
    wait_for(10, "the retained will", || {
        late.lock()
            .unwrap()
            .statuses
            .iter()
            .find(|(r, s)| *r && !s.online)
            .map(|_| ())
    });
}

#[test]
fn a_wrong_password_is_a_clear_error_retried_with_backoff() {
    let dir = tempdir("auth");
    let pw = dir.join("passwd");
    let ok = Command::new("mosquitto_passwd")
        .arg("-b")
        .arg("-c")
        .arg(&pw)
        .arg("agent")
        .arg("right")
        .status()
        .unwrap();
    assert!(ok.success());
    let broker = Mosquitto::start(
        &dir,
        &format!("password_file {}\nallow_anonymous false", pw.display()),
    );
    let conf = uci(
        &dir,
        broker.port,
        "\toption username 'agent'\n\toption password 'wrong'\n",
    );
    let a = agent(&conf, &["--synthetic", "0"]);
    std::thread::sleep(std::time::Duration::from_millis(2500)); // ≥ 2 attempts: 0 s, then 0.5-1 s
    signal(&a, "-TERM");
    let (code, err) = finish(a);
    assert_eq!(code, 0, "{err}");
    // mosquitto 2 answers a wrong password with return code 5 (not authorized).
    let refusals = err
        .lines()
        .filter(|l| {
            l.contains("connection refused: ")
                && l.contains("user name or password")
                && l.contains("; retrying in")
        })
        .count();
    assert!(refusals >= 2, "{err}");
    assert!(
        !err.contains("wrong"),
        "the password is never logged: {err}"
    );
}

#[test]
fn check_config_masks_the_password_and_bad_values_exit_2() {
    let dir = tempdir("check");
    let conf = uci(&dir, 1883, "\toption password 'hunter2'\n");
    let out = Command::new(BIN)
        .args(["check-config", "--config"])
        .arg(&conf)
        .env_clear()
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("password          \"********\""), "{text}");
    assert!(!text.contains("hunter2"));
    assert!(text.contains("device_id         \"procdev\""), "{text}");
    let bad = uci(&dir, 1884, "\toption poll_interval 'abc'\n");
    let out = Command::new(BIN)
        .args(["run", "--config"])
        .arg(&bad)
        .env_clear()
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(
        err.starts_with("wifisess-agent: option poll_interval: \"abc\" is not a number of seconds"),
        "{err}"
    );
    assert_eq!(err.lines().count(), 1);
}
