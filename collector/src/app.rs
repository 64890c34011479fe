//! `run`: wires the parts of a collector process and owns its shutdown. The store and its
//! writer, the HTTP API (reading on its own connections, writing through the writer), and
//! ingest (MQTT into the writer thread); at SIGINT/SIGTERM ingest stops reading, the writer
//! commits and acks what it holds, then the API finishes its open requests.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use tokio::sync::watch;

use crate::config::Config;
use crate::health::IngestHealth;
use crate::ingest::{self, WriterParts};
use crate::timefmt::now_ms;
use crate::writer::{Handle, Writer};

/// How long the API may take to answer its open requests after ingest stopped.
const HTTP_DRAIN: Duration = Duration::from_secs(5);

/// Runs the collector until SIGINT/SIGTERM.
///
/// # Errors
/// Runtime failures (database, runtime setup, a configured HTTP address that cannot be
/// bound); the configuration was checked before.
pub fn run(cfg: &Config) -> anyhow::Result<()> {
    let store = crate::store::open(&cfg.db, &cfg.mqtt_client_id())
        .with_context(|| format!("opening database {}", cfg.db.display()))?;
    let mut writer = Writer::new(store, &cfg.topic_prefix, cfg.inventory());
    let named = writer
        .apply_inventory()
        .context("writing the device inventory")?;
    if named > 0 {
        log::info!("inventory: names of {named} devices updated");
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the tokio runtime")?;
    let (stop_tx, stop_rx) = watch::channel(false);
    let (handle, requests) = Handle::channel();
    let health = Arc::new(IngestHealth::default());
    let server = crate::http::start(
        cfg,
        rt.handle(),
        handle,
        stop_rx.clone(),
        Arc::clone(&health),
    )?;
    let (on_commit, http_task) = match server {
        Some(s) => (Some(s.on_commit), Some(s.task)),
        None => (None, None),
    };
    let parts = WriterParts {
        requests,
        on_commit,
        jobs: crate::jobs::Schedule::new(cfg.retention_days, cfg.expire_hours, now_ms())
            .with_derive(cfg.derive(), cfg.aggregate_retention_days),
        expire_hours: cfg.expire_hours,
        health,
    };
    rt.block_on(async move {
        let ingest = ingest::serve(cfg, writer, parts, stop_rx);
        tokio::pin!(ingest);
        let r = tokio::select! {
            r = &mut ingest => r,
            _ = shutdown_signal() => {
                let _ = stop_tx.send(true);
                ingest.await
            }
        };
        let _ = stop_tx.send(true);
        if let Some(task) = http_task {
            if tokio::time::timeout(HTTP_DRAIN, task).await.is_err() {
                log::warn!("http: requests still open after {HTTP_DRAIN:?}; stopping anyway");
            }
        }
        r
    })
}

/// SIGINT or SIGTERM.
async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    match signal(SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
        }
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}
