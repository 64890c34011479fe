//! `wifisess-agent run`: a station source → the outbox and publisher, on a current-thread
//! tokio runtime, with the spool restored at start and written at SIGTERM/SIGINT.
//!
//! The station side is a [`Source`]: the real one ([`Nl80211Source`]: nl80211 events and
//! dumps feeding the session tracker), or a [`ChannelSource`] / [`SyntheticSource`] used by
//! tests and the lab. `run` owns everything else: one loop that waits on the source, the
//! connection, the batch timer and the shutdown signal.

use std::io::Write as _;
use std::path::Path;
use std::time::Duration;

use crate::error::Context as _;
use tokio::sync::mpsc::UnboundedReceiver;
use tokio::time::Instant;
use wifisess_wire::{BootId, Event, InterfaceInfo, MacAddr, SessionId, Stamp, Start};

use crate::config::Config;
use crate::nl80211::clock::Clock;
use crate::outbox::{Outbox, OutboxConfig};
use crate::publish::{Identity, Publisher, SourceInfo};
use crate::session::Timed;

mod nlsource;
mod signal;
pub use nlsource::{Nl80211Source, SourceOptions};

/// The station side as `run` sees it.
#[allow(async_fn_in_trait)]
pub trait Source {
    /// Waits until the source has events (appending them to `out`) or needs attention;
    /// must be cancel-safe (it races the connection in a `select!`). `Ok(false)`: the
    /// source has ended for good (the agent keeps publishing until stopped).
    async fn next(&mut self, out: &mut Vec<Timed>) -> crate::error::Result<bool>;
    /// A sync event listing every open session (after each connect).
    fn sync(&mut self, now: Stamp) -> Timed;
    /// Interfaces and counters for the status.
    fn info(&self) -> SourceInfo;
}

/// A source fed through a channel (tests drive the publisher with it).
pub struct ChannelSource {
    rx: UnboundedReceiver<Timed>,
    /// The ids the next sync event lists.
    pub open: Vec<SessionId>,
    done: bool,
}

impl ChannelSource {
    /// A source that yields what is sent on the other end of `rx`.
    pub fn new(rx: UnboundedReceiver<Timed>) -> ChannelSource {
        ChannelSource {
            rx,
            open: Vec::new(),
            done: false,
        }
    }
}

impl Source for ChannelSource {
    async fn next(&mut self, out: &mut Vec<Timed>) -> crate::error::Result<bool> {
        if self.done {
            std::future::pending::<()>().await;
        }
        match self.rx.recv().await {
            Some(t) => {
                out.push(t);
                while let Ok(t) = self.rx.try_recv() {
                    out.push(t);
                }
                Ok(true)
            }
            None => {
                self.done = true;
                Ok(false)
            }
        }
    }

    fn sync(&mut self, now: Stamp) -> Timed {
        sync_event(now, self.open.clone())
    }

    fn info(&self) -> SourceInfo {
        SourceInfo::default()
    }
}

/// A sync event for `ids` at `now`.
pub fn sync_event(now: Stamp, ids: Vec<SessionId>) -> Timed {
    Timed {
        at: now,
        event: Event::Sync(wifisess_wire::Sync {
            seq: 0,
            at: Default::default(),
            ids,
        }),
    }
}

/// A made-up session start, `i` numbering distinct clients (tests and the lab).
pub fn synthetic_start(i: u32, at: Stamp) -> Timed {
    let b = i.to_be_bytes();
    Timed {
        at,
        event: Event::Start(Start {
            seq: 0,
            at: Default::default(),
            id: SessionId(0x5157_0000_0000_0000 | u64::from(i)),
            mac: MacAddr([0x02, 0x5e, b[0], b[1], b[2], b[3]]),
            ifname: "synthetic0".into(),
            ssid: b"wifisess-synthetic".to_vec(),
            bssid: MacAddr([0x02, 0x5e, 0, 0, 0, 1]),
            freq_mhz: 2412,
            age_ms: 0,
            signal_dbm: Some(-50),
        }),
    }
}

/// `run --synthetic N[:MS]`: N made-up session starts, one every MS ms (default 10), then
/// nothing. For tests and lab runs without radios.
pub struct SyntheticSource {
    clock: Clock,
    left: u32,
    made: u32,
    every: Duration,
    next: Instant,
}

impl SyntheticSource {
    /// `count` starts, one every `every`.
    pub fn new(count: u32, every: Duration) -> SyntheticSource {
        SyntheticSource {
            clock: Clock::new(),
            left: count,
            made: 0,
            every,
            next: Instant::now(),
        }
    }
}

impl Source for SyntheticSource {
    async fn next(&mut self, out: &mut Vec<Timed>) -> crate::error::Result<bool> {
        if self.left == 0 {
            std::future::pending::<()>().await;
        }
        tokio::time::sleep_until(self.next).await;
        self.next += self.every;
        self.made += 1;
        self.left -= 1;
        out.push(synthetic_start(self.made, self.clock.now()));
        Ok(true)
    }

    fn sync(&mut self, now: Stamp) -> Timed {
        sync_event(
            now,
            (1..=self.made)
                .map(|i| SessionId(0x5157_0000_0000_0000 | u64::from(i)))
                .collect(),
        )
    }

    fn info(&self) -> SourceInfo {
        SourceInfo {
            interfaces: vec![InterfaceInfo {
                ifname: "synthetic0".into(),
                ifindex: 0,
                bssid: MacAddr([0x02, 0x5e, 0, 0, 0, 1]),
                ssid: b"wifisess-synthetic".to_vec(),
                freq_mhz: 2412,
            }],
            ..SourceInfo::default()
        }
    }
}

/// A random `u32` from `/dev/urandom` (the run's epoch, the backoff jitter seed); falls back
/// to time and pid mixed if the device cannot be read.
pub fn random_u32() -> u32 {
    use std::io::Read as _;
    let mut b = [0u8; 4];
    if std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut b))
        .is_ok()
    {
        return u32::from_ne_bytes(b);
    }
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos() ^ d.as_secs() as u32);
    t ^ std::process::id().rotate_left(16)
}

/// Reads the kernel boot id (zeros if unreadable, with a warning).
pub fn boot_id() -> BootId {
    match std::fs::read_to_string("/proc/sys/kernel/random/boot_id") {
        Ok(s) => s.parse().unwrap_or_default(),
        Err(e) => {
            log::warn!("/proc/sys/kernel/random/boot_id: {e}");
            BootId::default()
        }
    }
}

/// Restores the spool at `path` into `outbox` and deletes it; a corrupt spool (all of it or
/// from some record on) is renamed to `PATH.corrupt` with an error log line, after the events
/// before the bad record are restored. Returns the number of events restored.
pub fn restore_spool(path: &Path, outbox: &mut Outbox) -> usize {
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return 0,
        Err(e) => {
            log::error!("spool {}: {e}", path.display());
            return 0;
        }
    };
    let r = outbox.restore(&bytes);
    let n = r.events;
    if n > 0 || r.error.is_none() {
        log::info!(
            "restored {n} unacknowledged events from the spool {}",
            path.display()
        );
    }
    match r.error {
        None => {
            if let Err(e) = std::fs::remove_file(path) {
                log::error!("spool {}: cannot delete: {e}", path.display());
            }
        }
        Some(e) => {
            let aside = path.with_extension("corrupt");
            log::error!(
                "spool {}: {e}; moved aside to {}",
                path.display(),
                aside.display()
            );
            if let Err(e) = std::fs::rename(path, &aside) {
                log::error!("spool {}: cannot rename: {e}", path.display());
            }
        }
    }
    n
}

/// Writes the outbox to `path` atomically (a temporary file beside it, fsync, rename);
/// removes a stale spool when the outbox is empty.
///
/// # Errors
/// The file cannot be written or renamed.
pub fn write_spool(path: &Path, outbox: &Outbox) -> crate::error::Result<()> {
    if outbox.depth() == 0 {
        match std::fs::remove_file(path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                return Err(e).with_context(|| format!("spool {}", path.display()))
            }
            _ => return Ok(()),
        }
    }
    let tmp = path.with_extension("tmp");
    let bytes = outbox.to_spool();
    let res = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(&bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    res.with_context(|| format!("spool {}", path.display()))
}

/// A shutdown request: SIGTERM or SIGINT.
async fn terminated() -> &'static str {
    match signal::terminated().await {
        Ok(s) => s,
        Err(e) => {
            log::error!("cannot install signal handlers: {e}");
            std::future::pending().await
        }
    }
}

/// Runs the agent with `source` until `shutdown` completes: restores the spool, publishes,
/// and on shutdown stops reading, flushes briefly, spools the rest and publishes the graceful
/// offline status. Call inside a current-thread runtime.
///
/// # Errors
/// Bad MQTT settings (no broker, TLS files), a spool that cannot be written.
pub async fn run_with<S: Source>(
    cfg: &Config,
    mut source: S,
    shutdown: impl std::future::Future<Output = ()>,
) -> crate::error::Result<()> {
    let clock = Clock::new();
    let start = Instant::now();
    let mono = move || u64::try_from(start.elapsed().as_millis()).unwrap_or(u64::MAX);
    let epoch = random_u32();
    let boot = boot_id();
    let mut outbox = Outbox::new(
        OutboxConfig {
            capacity: cfg.outbox_capacity as usize,
            batch_ms: u64::from(cfg.batch_ms),
            ..OutboxConfig::default()
        },
        epoch,
        boot,
    );
    restore_spool(&cfg.spool_file, &mut outbox);
    let id = Identity {
        device_id: cfg.device_id.clone(),
        boot_id: boot,
        epoch,
        name: cfg.name.clone(),
        organization: cfg.organization.clone(),
        group: cfg.group.clone(),
    };
    log::info!(
        "agent {} starting: device {}, epoch {epoch:08x}, broker {}",
        env!("CARGO_PKG_VERSION"),
        cfg.device_id,
        cfg.broker
            .as_ref()
            .map_or_else(|| "(none)".into(), |b| b.to_string())
    );
    let mut p = Publisher::start(cfg, id, outbox, random_u32(), clock.now())?;
    let mut buf = Vec::new();
    let mut source_live = true;
    tokio::pin!(shutdown);
    loop {
        let due = p.due_at().map(|ms| start + Duration::from_millis(ms));
        tokio::select! {
            () = &mut shutdown => break,
            m = p.next() => {
                let Some(m) = m else { return Err(crate::error::Error::msg("the MQTT connection task ended")) };
                let info = source.info();
                p.handle(m, clock.now(), mono(), || source.sync(clock.now()), &info);
            }
            r = source.next(&mut buf), if source_live => {
                source_live = r.context("station source")?;
                if !source_live {
                    log::warn!("the station source ended");
                }
                for t in buf.drain(..) {
                    p.push(t, mono());
                }
            }
            () = tokio::time::sleep_until(due.unwrap_or(start)), if due.is_some() => {}
        }
        p.flush(mono(), false);
    }
    log::info!("stopping: flushing the outbox");
    let info = source.info();
    drop(source);
    let outbox = p
        .shutdown(Duration::from_secs(2), || (clock.now(), mono()), &info)
        .await;
    if outbox.depth() > 0 {
        log::info!(
            "spooling {} unacknowledged events to {}",
            outbox.depth(),
            cfg.spool_file.display()
        );
    }
    write_spool(&cfg.spool_file, &outbox)?;
    log::info!(
        "stopped ({} events acknowledged, {} dropped)",
        outbox.published(),
        outbox.dropped()
    );
    Ok(())
}

/// The source `run` uses: nl80211, or (feature `devtools`) `--synthetic N[:MS]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SourceKind {
    /// The kernel (nl80211) through the session tracker.
    Nl80211,
    /// [`SyntheticSource`]: count, interval ms.
    #[cfg(feature = "devtools")]
    Synthetic(u32, u64),
}

/// `wifisess-agent run` after the configuration is loaded: builds a current-thread runtime
/// and runs until SIGTERM/SIGINT.
///
/// # Errors
/// Runtime, source or publisher failures (exit status 1).
pub fn run(cfg: &Config, kind: SourceKind) -> crate::error::Result<()> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("tokio runtime")?;
    block_on(&rt, async {
        let stop = async {
            let s = terminated().await;
            log::info!("{s} received");
        };
        let src = match kind {
            #[cfg(feature = "devtools")]
            SourceKind::Synthetic(n, ms) => {
                RunSource::Synthetic(SyntheticSource::new(n, Duration::from_millis(ms)))
            }
            SourceKind::Nl80211 => RunSource::Nl80211(Box::new(
                Nl80211Source::open(SourceOptions::from_config(cfg)).context("nl80211")?,
            )),
        };
        run_with(cfg, src, stop).await
    })
}

/// `rt.block_on(f)` with `f` boxed: tokio's current-thread scheduler loop is generic over the
/// future and is compiled into each `block_on` instance, so `run` and `watch` share one
/// (docs/BENCHMARKS.md).
///
/// # Errors
/// `f`'s error.
pub fn block_on<'a>(
    rt: &tokio::runtime::Runtime,
    f: impl std::future::Future<Output = crate::error::Result<()>> + 'a,
) -> crate::error::Result<()> {
    let f: std::pin::Pin<Box<dyn std::future::Future<Output = crate::error::Result<()>> + 'a>> =
        Box::pin(f);
    rt.block_on(f)
}

/// `run`'s sources as one type, so that `run_with` (the whole main loop) is compiled once
/// rather than once per source: ~8 KB of the router build (docs/BENCHMARKS.md).
enum RunSource {
    #[cfg(feature = "devtools")]
    Synthetic(SyntheticSource),
    /// Boxed: ~110 KB of receive buffers.
    Nl80211(Box<Nl80211Source>),
}

impl Source for RunSource {
    async fn next(&mut self, out: &mut Vec<Timed>) -> crate::error::Result<bool> {
        match self {
            #[cfg(feature = "devtools")]
            RunSource::Synthetic(s) => s.next(out).await,
            RunSource::Nl80211(s) => s.next(out).await,
        }
    }

    fn sync(&mut self, now: Stamp) -> Timed {
        match self {
            #[cfg(feature = "devtools")]
            RunSource::Synthetic(s) => s.sync(now),
            RunSource::Nl80211(s) => s.sync(now),
        }
    }

    fn info(&self) -> SourceInfo {
        match self {
            #[cfg(feature = "devtools")]
            RunSource::Synthetic(s) => s.info(),
            RunSource::Nl80211(s) => s.info(),
        }
    }
}

/// A minimal logger on stderr: `wifisess-agent: LEVEL: message` (procd forwards stderr to
/// logd, which adds time stamps). rumqttc's own lines are shown from `debug` on.
struct StderrLogger;

impl log::Log for StderrLogger {
    fn enabled(&self, m: &log::Metadata<'_>) -> bool {
        m.level() <= log::max_level()
            && (m.target().starts_with("wifisess") || log::max_level() >= log::LevelFilter::Debug)
    }

    fn log(&self, r: &log::Record<'_>) {
        if self.enabled(r.metadata()) {
            let mut err = std::io::stderr().lock();
            // At debug level, the wall time like hostapd's `-t` (seconds.ms since the epoch),
            // to line the agent's view up with hostapd's; logd adds its own time otherwise.
            if log::max_level() >= log::LevelFilter::Debug {
                let ms = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_millis());
                let _ = write!(err, "{}.{:03} ", ms / 1000, ms % 1000);
            }
            let _ = writeln!(
                err,
                "wifisess-agent: {}: {}",
                r.level().as_str().to_ascii_lowercase(),
                r.args()
            );
        }
    }

    fn flush(&self) {}
}

/// Installs the stderr logger at `level` (once; later calls only change the level).
pub fn init_logging(level: log::LevelFilter) {
    static LOGGER: StderrLogger = StderrLogger;
    let _ = log::set_logger(&LOGGER);
    log::set_max_level(level);
}

/// The arguments of `run` and `check-config`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RunArgs {
    /// Configuration flags.
    pub flags: crate::config::Flags,
    /// `--synthetic N[:MS]` (run only, feature `devtools`).
    pub synthetic: Option<(u32, u64)>,
    /// `check-config` rather than `run`.
    pub check_only: bool,
}

/// Parses the options of `run` (or `check-config` when `check_only`) after the subcommand.
///
/// # Errors
/// An unknown option or a missing value, as one line.
pub fn parse_args(p: &mut lexopt::Parser, check_only: bool) -> Result<RunArgs, String> {
    use lexopt::prelude::*;
    let err = |e: lexopt::Error| e.to_string();
    let mut a = RunArgs {
        check_only,
        ..RunArgs::default()
    };
    let val = |p: &mut lexopt::Parser| -> Result<String, String> {
        p.value().map_err(err)?.string().map_err(err)
    };
    while let Some(arg) = p.next().map_err(err)? {
        match arg {
            Long("config") | Short('c') => a.flags.config = Some(val(p)?.into()),
            Long("broker") if !check_only => a.flags.broker = Some(val(p)?),
            Long("device-id") if !check_only => a.flags.device_id = Some(val(p)?),
            Long("interface") | Short('i') if !check_only => a.flags.interfaces.push(val(p)?),
            Long("log-level") if !check_only => a.flags.log_level = Some(val(p)?),
            #[cfg(feature = "devtools")]
            Long("synthetic") if !check_only => {
                let v = val(p)?;
                let (n, ms) = v.split_once(':').unwrap_or((&v, "10"));
                match (n.parse(), ms.parse()) {
                    (Ok(n), Ok(ms)) => a.synthetic = Some((n, ms)),
                    _ => return Err(format!("--synthetic: {v:?} is not COUNT[:MS]")),
                }
            }
            a => return Err(a.unexpected().to_string()),
        }
    }
    Ok(a)
}

/// `wifisess-agent run` / `check-config`: loads the configuration (exit 2 with one line if it
/// is bad), then prints it or runs the agent (exit 1 on a runtime failure).
pub fn main(args: RunArgs) -> std::process::ExitCode {
    use std::process::ExitCode;
    let env = |v: &str| std::env::var(v).ok();
    let eff = match crate::config::load(&args.flags, &env, &crate::config::first_ethernet_mac) {
        Ok(e) => e,
        Err(e) => {
            eprintln!("wifisess-agent: {e}");
            return ExitCode::from(2);
        }
    };
    if args.check_only {
        print!("{}", eff.render());
        return ExitCode::SUCCESS;
    }
    let cfg = eff.config;
    init_logging(cfg.log_level);
    if !cfg.enabled {
        log::info!("disabled by configuration (option enabled '0'); exiting");
        return ExitCode::SUCCESS;
    }
    if cfg.broker.is_none() {
        eprintln!("wifisess-agent: option broker: not set (UCI option broker, WIFISESS_BROKER or --broker)");
        return ExitCode::from(2);
    }
    #[cfg(not(feature = "tls"))]
    if cfg.broker.as_ref().is_some_and(|b| b.tls) {
        eprintln!(
            "wifisess-agent: option broker: mqtts:// needs an agent built with the tls feature"
        );
        return ExitCode::from(2);
    }
    #[cfg(feature = "devtools")]
    let kind = match args.synthetic {
        Some((n, ms)) => SourceKind::Synthetic(n, ms),
        None => SourceKind::Nl80211,
    };
    #[cfg(not(feature = "devtools"))]
    let kind = SourceKind::Nl80211;
    match run(&cfg, kind) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            log::error!("{e}");
            ExitCode::from(1)
        }
    }
}
