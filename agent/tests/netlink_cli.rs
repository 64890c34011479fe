//! The `stations` / `watch` command line, on this host. Without a wireless driver (no
//! cfg80211, as on CI machines) both must fail with the documented message and exit 1.

mod bin_support;

use std::process::Command;

/// `watch` is a devtools command: the binary built with it (see bin_support).
fn agent(args: &[&str]) -> std::process::Output {
    Command::new(bin_support::agent_bin(env!("CARGO_BIN_EXE_wifisess-agent")))
        .args(args)
        .output()
        .unwrap()
}

fn host_has_nl80211() -> bool {
    std::path::Path::new("/sys/module/cfg80211").exists()
}

#[test]
fn nl80211_missing_is_a_clear_error() {
    if host_has_nl80211() {
        eprintln!("skipped: this host has cfg80211 (the hwsim lab covers it)");
        return;
    }
    for args in [&["stations"][..], &["stations", "--json"], &["watch"]] {
        let out = agent(args);
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains(
                "nl80211 not available: no wireless driver loaded (family nl80211 not found)"
            ),
            "{args:?}: {err}"
        );
    }
}

#[test]
fn usage_errors_exit_2() {
    for args in [
        &["bogus"][..],
        &["stations", "--nope"],
        &["watch", "--poll", "x"],
    ] {
        let out = agent(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
    }
    let out = agent(&["--help"]);
    assert_eq!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stdout).contains("wifisess-agent watch"));
}

/// Issue 18: tests that start the agent ran `target/debug/wifisess-agent`, which any other
/// `cargo build`/`cargo test` with other features rewrites (a test then got a binary without
/// `--synthetic`: "invalid option"). They run a binary of their own now.
#[test]
fn the_tests_run_a_binary_of_their_own() {
    let shared = std::path::Path::new(env!("CARGO_BIN_EXE_wifisess-agent"));
    let own = bin_support::agent_bin(env!("CARGO_BIN_EXE_wifisess-agent"));
    assert_ne!(own, shared);
    assert!(
        own.components().any(|c| c.as_os_str() == "agent-test-bins"),
        "{}",
        own.display()
    );
    let out = Command::new(own).arg("--help").output().unwrap();
    let help = String::from_utf8_lossy(&out.stdout);
    assert!(help.contains("run --synthetic"), "a devtools build: {help}");
}
