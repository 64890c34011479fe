//! `wifisess-agent run`: one loop, on a current-thread tokio runtime, that reads the clock
//! once per turn and passes that reading and plain values between its siblings: the station
//! [`source`] (with the DHCP [`leases`] it watches), the [`publish`]er (outbox and MQTT link),
//! the [`spool`] (restored at start, written at SIGTERM/SIGINT) and the [`signal`] handler.

use std::time::Duration;

use crate::clock::{self, Now};
use crate::config::Config;
use crate::error::Context as _;
use crate::outbox::{Outbox, OutboxConfig};

pub mod leases;
mod nlsource;
pub mod publish;
mod signal;
pub mod source;
pub mod spool;

pub use nlsource::{Nl80211Source, SourceOptions};
pub use publish::{Identity, NetMsg, Publisher};
#[cfg(feature = "devtools")]
pub use source::SyntheticSource;
pub use source::{synthetic_start, ChannelSource, Input, Source, SourceInfo};

/// What woke the loop.
enum Wake {
    /// The first turn.
    Start,
    /// The connection task said something.
    Net(NetMsg),
    /// The source has input.
    Source(Input),
    /// A deadline passed (the source's or a batch's).
    Timer,
}

/// Runs the agent with `source` until `shutdown` completes: restores the spool, publishes,
/// and on shutdown stops reading, flushes briefly, spools the rest and publishes the graceful
/// offline status. Call inside a current-thread runtime.
///
/// # Errors
/// Bad MQTT settings (no broker, TLS files), the source failing for good, a spool that cannot
/// be written.
pub async fn run_with<S: Source>(
    cfg: &Config,
    mut source: S,
    shutdown: impl std::future::Future<Output = ()>,
) -> crate::error::Result<()> {
    let epoch = crate::host::random_u32();
    let boot = crate::host::boot_id();
    let mut outbox = Outbox::new(
        OutboxConfig::new(cfg.outbox_capacity as usize, u64::from(cfg.batch_ms)),
        epoch,
        boot,
    );
    spool::restore_spool(&cfg.spool_file, &mut outbox);
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
    let mut p = Publisher::start(cfg, id, outbox, crate::host::random_u32(), &clock::now())?;
    let mut buf = Vec::new();
    let mut live = true;
    let mut wake = Wake::Start;
    tokio::pin!(shutdown);
    loop {
        // The one clock reading of this turn: everything below sees the same time.
        let now = clock::now();
        let input = match wake {
            Wake::Net(NetMsg::Up(client)) => {
                let sync = source.sync(now.stamp());
                p.connected(client, &now, sync, &source.info());
                None
            }
            Wake::Net(m) => {
                p.handle(m);
                None
            }
            Wake::Source(i) => Some(i),
            Wake::Start | Wake::Timer => None,
        };
        if live {
            live = source
                .turn(input, &now, &mut buf)
                .context("station source")?;
            if !live {
                log::warn!("the station source ended");
            }
        }
        for t in buf.drain(..) {
            p.push(t, &now);
        }
        p.flush(&now, false);
        let due = [source.deadline().filter(|_| live), p.due_at()]
            .into_iter()
            .flatten()
            .min();
        let sleep = due.map(|d| Duration::from_millis(d.saturating_sub(now.uptime_ms)));
        wake = tokio::select! {
            () = &mut shutdown => break,
            m = p.next() => Wake::Net(m.ok_or_else(|| crate::error::Error::msg("the MQTT connection task ended"))?),
            i = source.input(), if live => Wake::Source(i),
            () = tokio::time::sleep(sleep.unwrap_or_default()), if sleep.is_some() => Wake::Timer,
        };
    }
    log::info!("stopping: flushing the outbox");
    let info = source.info();
    drop(source);
    let outbox = p.shutdown(Duration::from_secs(2), clock::now, &info).await;
    if outbox.depth() > 0 {
        log::info!(
            "spooling {} unacknowledged events to {}",
            outbox.depth(),
            cfg.spool_file.display()
        );
    }
    spool::write_spool(&cfg.spool_file, &outbox)?;
    log::info!(
        "stopped ({} events acknowledged, {} dropped)",
        outbox.published(),
        outbox.dropped()
    );
    Ok(())
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
            SourceKind::Synthetic(n, ms) => RunSource::Synthetic(SyntheticSource::new(n, ms)),
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
    async fn input(&mut self) -> Input {
        match self {
            #[cfg(feature = "devtools")]
            RunSource::Synthetic(s) => s.input().await,
            RunSource::Nl80211(s) => s.input().await,
        }
    }

    fn deadline(&self) -> Option<u64> {
        match self {
            #[cfg(feature = "devtools")]
            RunSource::Synthetic(s) => s.deadline(),
            RunSource::Nl80211(s) => s.deadline(),
        }
    }

    fn turn(
        &mut self,
        input: Option<Input>,
        now: &Now,
        out: &mut Vec<crate::session::Timed>,
    ) -> crate::error::Result<bool> {
        match self {
            #[cfg(feature = "devtools")]
            RunSource::Synthetic(s) => s.turn(input, now, out),
            RunSource::Nl80211(s) => s.turn(input, now, out),
        }
    }

    fn sync(&self, now: wifisess_wire::Stamp) -> crate::session::Timed {
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
