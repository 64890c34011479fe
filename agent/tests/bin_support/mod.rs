//! The agent binary for the tests that start it, built once per feature set into a target
//! directory of its own (`TARGET/agent-test-bins/<features>`), never the shared
//! `target/debug/wifisess-agent`: a `cargo build` or `cargo test` with other features (the
//! package stage, the tls stage) rewrites that one while another test runs it, and a test
//! that needs `--synthetic` then got a binary without it ("invalid option").
//!
//! The features are this test build's: `devtools` always (the tests use its hooks), `tls`
//! when the tests are built with it. Each test binary builds (or finds up to date) through
//! one [`OnceLock`]; cargo's own lock on the target directory serialises test binaries.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// The features of the binary the tests run.
const FEATURES: &str = if cfg!(feature = "tls") {
    "devtools,tls"
} else {
    "devtools"
};

/// The path of the agent binary with [`FEATURES`], built on first use. `cargo_bin_exe` is
/// `env!("CARGO_BIN_EXE_wifisess-agent")` of the calling test: it locates the target
/// directory (and tells tests/cross/run.sh that the test starts the binary).
pub fn agent_bin(cargo_bin_exe: &str) -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| build(Path::new(cargo_bin_exe)))
}

fn build(cargo_bin_exe: &Path) -> PathBuf {
    // TARGET/debug/wifisess-agent -> TARGET
    let profile_dir = cargo_bin_exe
        .parent()
        .expect("a binary in a profile directory");
    let profile = profile_dir.file_name().expect("a profile directory");
    let target = profile_dir.parent().expect("a target directory");
    let dir = target
        .join("agent-test-bins")
        .join(FEATURES.replace(',', "-"));
    let cargo = option_env!("CARGO").unwrap_or("cargo");
    let mut cmd = Command::new(cargo);
    cmd.args([
        "build",
        "--quiet",
        "-p",
        "wifisess-agent",
        "--bin",
        "wifisess-agent",
    ])
    .args(["--features", FEATURES])
    .arg("--target-dir")
    .arg(&dir)
    .current_dir(env!("CARGO_MANIFEST_DIR"))
    .env_remove("CARGO_TARGET_DIR");
    if profile == "release" {
        cmd.arg("--release");
    }
    let out = cmd.output().expect("cargo");
    assert!(
        out.status.success(),
        "cargo build --features {FEATURES} --target-dir {}: {}",
        dir.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    let bin = dir.join(profile).join("wifisess-agent");
    assert!(bin.exists(), "{} missing after the build", bin.display());
    bin
}

/// Which stream a line came on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stream {
    Out,
    Err,
}

/// A child process whose stdout and stderr lines are collected (in arrival order) on a
/// thread each.
pub struct Proc {
    child: std::process::Child,
    lines: std::sync::Arc<std::sync::Mutex<Vec<(Stream, String)>>>,
    readers: Vec<std::thread::JoinHandle<()>>,
}

impl Proc {
    /// Spawns `cmd` with both streams piped.
    pub fn spawn(cmd: &mut Command) -> Proc {
        use std::io::BufRead as _;
        let mut child = cmd
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("spawn");
        let lines = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let mut readers = Vec::new();
        let out: Box<dyn std::io::Read + Send> = Box::new(child.stdout.take().unwrap());
        let err: Box<dyn std::io::Read + Send> = Box::new(child.stderr.take().unwrap());
        for (stream, src) in [(Stream::Out, out), (Stream::Err, err)] {
            let l2 = lines.clone();
            readers.push(std::thread::spawn(move || {
                for line in std::io::BufReader::new(src).lines() {
                    let Ok(line) = line else { break };
                    l2.lock().unwrap().push((stream, line));
                }
            }));
        }
        Proc {
            child,
            lines,
            readers,
        }
    }

    /// The process id.
    pub fn id(&self) -> u32 {
        self.child.id()
    }

    /// Every line so far, both streams.
    pub fn lines(&self) -> Vec<String> {
        self.lines
            .lock()
            .unwrap()
            .iter()
            .map(|(_, l)| l.clone())
            .collect()
    }

    /// The lines of one stream so far.
    pub fn stream(&self, s: Stream) -> Vec<String> {
        self.lines
            .lock()
            .unwrap()
            .iter()
            .filter(|(st, _)| *st == s)
            .map(|(_, l)| l.clone())
            .collect()
    }

    /// How many lines so far contain `pat`.
    pub fn count(&self, pat: &str) -> usize {
        self.lines().iter().filter(|l| l.contains(pat)).count()
    }

    /// Polls until `n` lines contain `pat` (at most `secs`; then panics showing the output).
    pub fn wait_lines(&self, secs: u64, pat: &str, n: usize) {
        let end = std::time::Instant::now() + std::time::Duration::from_secs(secs);
        while self.count(pat) < n {
            assert!(
                std::time::Instant::now() < end,
                "timed out after {secs} s waiting for {n} line(s) with {pat:?}; the process said:\n{}",
                self.lines().join("\n")
            );
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
    }

    /// Sends `sig` (`-TERM`, `-KILL`) by pid.
    pub fn signal(&self, sig: &str) {
        let ok = Command::new("kill")
            .arg(sig)
            .arg(self.child.id().to_string())
            .status()
            .unwrap();
        assert!(ok.success());
    }

    /// Waits for the exit; returns the exit code (-1 for a signal) and every line.
    pub fn finish(mut self) -> (i32, Vec<String>) {
        let st = self.child.wait().unwrap();
        for r in self.readers.drain(..) {
            r.join().unwrap();
        }
        (st.code().unwrap_or(-1), self.lines())
    }

    /// SIGTERM, then [`Proc::finish`].
    pub fn terminate(self) -> (i32, Vec<String>) {
        self.signal("-TERM");
        self.finish()
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
