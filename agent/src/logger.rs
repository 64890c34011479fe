//! The agent's logger: one line per message, `wifisess-agent: LEVEL: message`; info and
//! debug on stdout, warnings and errors on stderr, so procd logs routine lines at priority
//! info and problems at err (OPENWRT.md fact 10). Each line is flushed as it is written.

/// Where the lines go.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Streams {
    /// Info and debug on stdout, warnings and errors on stderr (`run`, `check-config`).
    Split,
    /// Everything on stderr: stdout carries the command's output (`watch`, `stations`).
    Stderr,
}

struct Logger;

static STREAMS: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

impl log::Log for Logger {
    fn enabled(&self, m: &log::Metadata<'_>) -> bool {
        m.level() <= log::max_level()
            && (m.target().starts_with("wifisess") || log::max_level() >= log::LevelFilter::Debug)
    }

    fn log(&self, r: &log::Record<'_>) {
        if !self.enabled(r.metadata()) {
            return;
        }
        let split = STREAMS.load(std::sync::atomic::Ordering::Relaxed);
        if split && r.level() > log::Level::Warn {
            line(&mut std::io::stdout().lock(), r);
        } else {
            line(&mut std::io::stderr().lock(), r);
        }
    }

    fn flush(&self) {}
}

/// Writes one record as one line and flushes it.
fn line(out: &mut dyn std::io::Write, r: &log::Record<'_>) {
    // At debug level, the wall time like hostapd's `-t` (seconds.ms since the epoch), to
    // line the agent's view up with hostapd's; logd adds its own time otherwise.
    if log::max_level() >= log::LevelFilter::Debug {
        let ms = crate::clock::wall_ms();
        let _ = write!(out, "{}.{:03} ", ms / 1000, ms % 1000);
    }
    let _ = writeln!(
        out,
        "wifisess-agent: {}: {}",
        r.level().as_str().to_ascii_lowercase(),
        r.args()
    );
    let _ = out.flush();
}

/// Installs the logger at `level` writing to `streams` (once; later calls change the level
/// and the streams).
pub fn init(level: log::LevelFilter, streams: Streams) {
    static LOGGER: Logger = Logger;
    STREAMS.store(
        streams == Streams::Split,
        std::sync::atomic::Ordering::Relaxed,
    );
    let _ = log::set_logger(&LOGGER);
    log::set_max_level(level);
}
