//! The `wifisess-agent run` binary against a real mosquitto: SIGTERM spools what the broker
//! did not acknowledge and the next run delivers it (and reports it in its status); `kill -9`
//! makes the broker publish the offline Last Will; a wrong password is a clear error,
//! retried with backoff; bad configuration is refused at start; routine lines go to stdout,
//! problems to stderr.

mod bin_support;
mod mqtt_support;

use std::path::Path;
use std::process::Command;

use bin_support::{agent_bin, Proc, Stream};
use mqtt_support::*;
use wifisess_wire::Event;

fn bin() -> &'static Path {
    agent_bin(env!("CARGO_BIN_EXE_wifisess-agent"))
}

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

fn agent(conf: &Path, args: &[&str]) -> Proc {
    Proc::spawn(
        Command::new(bin())
            .arg("run")
            .arg("--config")
            .arg(conf)
            .args(args)
            .env_clear(),
    )
}

fn starts(seen: &Seen) -> Vec<(u32, u64)> {
    seen.batches
        .iter()
        .flat_map(|b| {
            b.events
                .iter()
                .filter(|e| matches!(e, Event::Start(_)))
                .map(move |e| (b.agent_epoch, e.seq()))
        })
        .collect()
}

/// Runs the agent with `--synthetic N:0` and no broker, waits until all N starts are made,
/// stops it with SIGTERM; returns its lines.
fn spool_n(dir: &Path, n: u32) -> Vec<String> {
    let port = free_port(); // no broker: nothing is acknowledged
    let conf = uci(dir, port, "");
    let a = agent(&conf, &["--synthetic", &format!("{n}:0")]);
    a.wait_lines(30, &format!("synthetic source: {n} starts made"), 1);
    let (code, lines) = a.terminate();
    assert_eq!(code, 0, "{lines:?}");
    lines
}

#[test]
fn sigterm_spools_unacknowledged_events_and_the_next_run_delivers_them() {
    let dir = tempdir("spool");
    let lines = spool_n(&dir, 25);
    assert!(
        lines
            .iter()
            .any(|l| l.contains("spooling 25 unacknowledged events")),
        "{lines:?}"
    );
    let spool = dir.join("spool");
    assert!(spool.exists());

    let broker = Mosquitto::start(&dir, "");
    let seen = subscribe(broker.port);
    let conf = uci(&dir, broker.port, "");
    let b = agent(&conf, &["--synthetic", "0"]);
    wait_for(30, "the 25 spooled starts", || {
        (starts(&seen.lock().unwrap()).len() >= 25).then_some(())
    });
    assert!(!spool.exists(), "the spool is deleted once restored");
    let (code, lines) = b.terminate();
    assert_eq!(code, 0, "{lines:?}");
    assert!(
        lines
            .iter()
            .any(|l| l.contains("restored 25 unacknowledged events")),
        "{lines:?}"
    );
    // The agent has exited, but the broker may not have passed its last status on yet.
    wait_for(10, "the graceful offline status", || {
        let s = seen.lock().unwrap();
        let (_, st) = s.statuses.last()?;
        (!st.online && st.graceful).then_some(())
    });
    let s = seen.lock().unwrap();
    let starts = starts(&s);
    let old_epoch = starts[0].0;
    let seqs: Vec<u64> = starts.iter().map(|k| k.1).collect();
    assert_eq!(seqs, (1..=25).collect::<Vec<_>>(), "original seqs");
    let online = s.statuses.iter().find(|(_, st)| st.online).unwrap();
    assert_ne!(
        online.1.agent_epoch, old_epoch,
        "re-published under their original epoch"
    );
    assert_eq!(online.1.spool_restored, 25, "the status says so");
    assert!(!s.statuses.last().unwrap().1.online && s.statuses.last().unwrap().1.graceful);
    assert!(!spool.exists(), "nothing left to spool");
}

/// Issue 18: "at SIGTERM the outbox (300 events when tried) is lost". 300 unacknowledged
/// events are in the spool after SIGTERM, and the next run restores and publishes every one
/// of them under their own epoch and seqs, and counts them in its status.
#[test]
fn sigterm_with_300_events_spools_all_of_them_and_a_restart_publishes_them() {
    let dir = tempdir("spool300");
    let lines = spool_n(&dir, 300);
    assert!(
        lines
            .iter()
            .any(|l| l.contains("spooling 300 unacknowledged events")),
        "{lines:?}"
    );
    // The spool holds them: read it back as the agent will.
    let bytes = std::fs::read(dir.join("spool")).unwrap();
    let mut probe = wifisess_agent::outbox::Outbox::new(
        wifisess_agent::outbox::OutboxConfig::new(1024, 100),
        7,
        Default::default(),
    );
    let r = probe.restore(&bytes);
    assert_eq!((r.events, r.error), (300, None));

    let broker = Mosquitto::start(&dir, "");
    let seen = subscribe(broker.port);
    let conf = uci(&dir, broker.port, "");
    let b = agent(&conf, &["--synthetic", "0"]);
    wait_for(60, "the 300 spooled starts", || {
        (starts(&seen.lock().unwrap()).len() >= 300).then_some(())
    });
    let (code, lines) = b.terminate();
    assert_eq!(code, 0, "{lines:?}");
    let s = seen.lock().unwrap();
    let st = starts(&s);
    let epoch = st[0].0;
    let mut seqs: Vec<u64> = st.iter().filter(|k| k.0 == epoch).map(|k| k.1).collect();
    seqs.sort_unstable();
    seqs.dedup();
    assert_eq!(seqs, (1..=300).collect::<Vec<_>>());
    let online = s.statuses.iter().find(|(_, st)| st.online).unwrap();
    assert_eq!(online.1.spool_restored, 300);
    assert!(!dir.join("spool").exists());
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
    a.signal("-KILL");
    let _ = a.finish();
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
    // mosquitto 2 answers a wrong password with return code 5 (not authorized); the second
    // attempt comes after the first backoff (0.5-1 s).
    a.wait_lines(30, "user name or password", 2);
    let (code, lines) = a.terminate();
    assert_eq!(code, 0, "{lines:?}");
    let refusals: Vec<&String> = lines
        .iter()
        .filter(|l| {
            l.contains("connection refused: ")
                && l.contains("user name or password")
                && l.contains("; retrying in")
        })
        .collect();
    assert!(refusals.len() >= 2, "{lines:?}");
    assert!(
        refusals
            .iter()
            .all(|l| l.starts_with("wifisess-agent: error: ")),
        "{refusals:?}"
    );
    assert!(
        !lines.iter().any(|l| l.contains("wrong")),
        "the password is never logged: {lines:?}"
    );
}

/// Issue 21 (OPENWRT.md fact 10): procd logs stderr at priority err and stdout at info, so
/// routine lines go to stdout and only warnings and errors to stderr, one line each.
#[test]
fn info_lines_go_to_stdout_warnings_and_errors_to_stderr() {
    let dir = tempdir("streams");
    let conf = uci(&dir, free_port(), "\toption brokr 'typo'\n");
    let a = agent(&conf, &["--synthetic", "1"]);
    a.wait_lines(20, "cannot connect to", 1);
    let out = a.stream(Stream::Out);
    let err = a.stream(Stream::Err);
    let (code, lines) = a.terminate();
    assert_eq!(code, 0, "{lines:?}");
    assert!(
        out.iter()
            .any(|l| l.starts_with("wifisess-agent: info: agent ")),
        "{out:?}"
    );
    assert!(
        out.iter()
            .all(|l| l.starts_with("wifisess-agent: info: ")
                || l.starts_with("wifisess-agent: debug: ")),
        "{out:?}"
    );
    assert!(
        err.iter().any(
            |l| l.starts_with("wifisess-agent: warn: ") && l.contains("unknown option 'brokr'")
        ),
        "{err:?}"
    );
    assert!(
        err.iter()
            .any(|l| l.starts_with("wifisess-agent: error: cannot connect to")),
        "{err:?}"
    );
    assert!(
        err.iter()
            .all(|l| l.starts_with("wifisess-agent: warn: ")
                || l.starts_with("wifisess-agent: error: ")),
        "{err:?}"
    );
}

fn check_config(conf: &Path) -> std::process::Output {
    Command::new(bin())
        .args(["check-config", "--config"])
        .arg(conf)
        .env_clear()
        .output()
        .unwrap()
}

#[test]
fn check_config_masks_the_password_and_bad_values_exit_2() {
    let dir = tempdir("check");
    let conf = uci(&dir, 1883, "\toption password 'hunter2'\n");
    let out = check_config(&conf);
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("password          \"********\""), "{text}");
    assert!(!text.contains("hunter2"));
    assert!(text.contains("device_id         \"procdev\""), "{text}");
    let bad = uci(&dir, 1884, "\toption poll_interval 'abc'\n");
    let out = Command::new(bin())
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

/// Issue 18: each of these passed `check-config` (and `run` started) before; now both
/// refuse with one line naming the option and the value, exit 2; an unknown option is a
/// warning naming the nearest known one.
#[test]
fn configuration_that_says_no_at_start_and_in_check_config() {
    let dir = tempdir("sayno");
    let cases = [
        ("\toption spool_file '/nonexistent/dir/wifisess.spool'\n", "option spool_file: \"/nonexistent/dir/wifisess.spool\" is in a directory that does not exist"),
        ("\toption enabled 'maybe'\n", "option enabled: \"maybe\" is not a boolean"),
        ("\toption ca_file '/nonexistent/ca.pem'\n", "option ca_file: \"/nonexistent/ca.pem\" cannot be read"),
        ("\toption cert_file '/nonexistent/c.pem'\n\toption key_file '/nonexistent/k.pem'\n", "option cert_file: \"/nonexistent/c.pem\" cannot be read"),
    ];
    for (i, (extra, want)) in cases.iter().enumerate() {
        let conf = uci(&dir, 2000 + i as u16, extra);
        for cmd in ["check-config", "run"] {
            let out = Command::new(bin())
                .args([cmd, "--config"])
                .arg(&conf)
                .env_clear()
                .output()
                .unwrap();
            let err = String::from_utf8(out.stderr).unwrap();
            assert_eq!(out.status.code(), Some(2), "{cmd} {extra:?}: {err}");
            assert!(
                err.starts_with(&format!("wifisess-agent: {want}")),
                "{cmd}: {err}"
            );
            assert_eq!(err.lines().count(), 1, "{err}");
        }
    }
    // The broker flag without a scheme, at start.
    let conf = uci(&dir, 2100, "");
    let out = Command::new(bin())
        .args(["run", "--config"])
        .arg(&conf)
        .args(["--broker", "127.0.0.1:1883"])
        .env_clear()
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(
        err.starts_with("wifisess-agent: option broker: \"127.0.0.1:1883\" is not a broker URL"),
        "{err}"
    );
    // A typo is a warning with a suggestion; check-config still passes.
    let conf = uci(&dir, 2101, "\toption brokr 'mqtt://x'\n");
    let out = check_config(&conf);
    assert!(out.status.success());
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(
        err.contains(":5: unknown option 'brokr' ignored (did you mean 'broker'?)"),
        "{err}"
    );
}
