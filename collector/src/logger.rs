//! A minimal `log` backend: `2025-01-01T00:00:00.000Z LEVEL message` lines on stderr.

use std::io::Write as _;

use log::{LevelFilter, Log, Metadata, Record};

struct Stderr;

impl Log for Stderr {
    fn enabled(&self, _: &Metadata<'_>) -> bool {
        true
    }

    fn log(&self, r: &Record<'_>) {
        if !self.enabled(r.metadata()) {
            return;
        }
        let ts = crate::timefmt::rfc3339_ms(crate::timefmt::now_ms());
        let _ = writeln!(
            std::io::stderr().lock(),
            "{ts} {:<5} {}",
            r.level(),
            r.args()
        );
    }

    fn flush(&self) {}
}

/// Installs the logger; `WIFISESS_LOG_LEVEL` (error, warn, info, debug) sets the level.
pub fn init() {
    let level = std::env::var("WIFISESS_LOG_LEVEL")
        .ok()
        .and_then(|v| v.parse::<LevelFilter>().ok())
        .unwrap_or(LevelFilter::Info);
    if log::set_logger(&Stderr).is_ok() {
        log::set_max_level(level);
    }
}
