//! The UCI reader and the agent's configuration loader on arbitrary files: `uci::parse` and
//! `config::load` (file + environment) either succeed or return an error naming a line or an
//! option, never panic; a parsed file's `check-config` listing renders.
//!
//! Input: the UCI file's bytes, optionally followed by `0xff` and a value that is given to
//! every `WIFISESS_*` variable (an operator's environment is as untrusted as the file).
#![no_main]

use std::path::PathBuf;
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use wifisess_agent::config::{load, uci, Flags};

fn path() -> &'static PathBuf {
    static P: OnceLock<PathBuf> = OnceLock::new();
    P.get_or_init(|| {
        let dir = if std::path::Path::new("/dev/shm").is_dir() {
            PathBuf::from("/dev/shm")
        } else {
            std::env::temp_dir()
        };
        dir.join(format!("wifisess-fuzz-uci-{}", std::process::id()))
    })
}

fuzz_target!(|data: &[u8]| {
    let (file, env_value) = match data.iter().position(|&b| b == 0xff) {
        Some(i) => (
            &data[..i],
            Some(String::from_utf8_lossy(&data[i + 1..]).into_owned()),
        ),
        None => (data, None),
    };
    if let Ok(text) = std::str::from_utf8(file) {
        if let Ok(sections) = uci::parse(text) {
            for s in &sections {
                assert!(s.line >= 1);
                for e in &s.entries {
                    assert!(e.line >= s.line, "entry line before its section");
                }
            }
        }
    }
    std::fs::write(path(), file).unwrap();
    let flags = Flags {
        config: Some(path().clone()),
        ..Flags::default()
    };
    let env = |var: &str| -> Option<String> {
        // WIFISESS_CONFIG would move the file; everything else gets the fuzzed value.
        if var == "WIFISESS_CONFIG" {
            None
        } else {
            env_value.clone()
        }
    };
    let derived = || Some(("020000000001".to_string(), "MAC of eth0".to_string()));
    if let Ok(eff) = load(&flags, &env, &derived) {
        let _ = eff.render();
    }
});
