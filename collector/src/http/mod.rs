//! The HTTP API and dashboard of `run --http ADDR` (SPEC §5.4): axum on the collector's tokio
//! runtime, reads on their own read-only SQLite connections, never the writer's.
//!
//! Handlers only: parse, call [`crate::read`], render. Layers: [`params`] (query strings →
//! filters), [`reader`] (pooled read-only connections), [`auth`] (tokens and scopes), [`api`]
//! (handlers), [`live`] (commit notifications, SSE, metrics). Writes (the refresh) go to the
//! writer through a [`Handle`].

pub mod api;
pub mod auth;
pub mod error;
pub mod live;
pub mod params;
pub mod reader;

use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::Arc;

use anyhow::Context as _;
use axum::routing::{get, post, MethodRouter};
use axum::Router;

use crate::config::{Config, ConfigError};
use crate::read::Now;
use crate::writer::{Handle, OnCommit};

/// Where the API listens when neither `--http`, `WIFISESS_HTTP` nor the file says.
pub const DEFAULT_ADDR: &str = "127.0.0.1:8080";

/// Shared by every handler.
#[derive(Clone)]
pub struct AppState(Arc<Inner>);

/// What [`AppState`] holds.
pub struct Inner {
    /// Read-only connections.
    pub reader: Arc<reader::Reader>,
    /// The writer, for the writes the API asks for (refresh).
    pub writer: Handle,
    /// Configured tokens (empty: open API, loopback only).
    pub tokens: Vec<auth::Token>,
    /// Commit notifications and in-memory ingest metrics.
    pub live: Arc<live::Live>,
    /// The resolved configuration (database path, dangling and expiry settings).
    pub cfg: Config,
}

impl std::ops::Deref for AppState {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.0
    }
}

impl AppState {
    /// State for `cfg`, with its own notification hub.
    pub fn new(
        cfg: &Config,
        writer: Handle,
        shutdown: tokio::sync::watch::Receiver<bool>,
    ) -> AppState {
        AppState(Arc::new(Inner {
            reader: reader::Reader::new(cfg.db.clone()),
            writer,
            tokens: auth::tokens(&cfg.tokens),
            live: live::Live::new(shutdown),
            cfg: cfg.clone(),
        }))
    }

    /// How open sessions are shown at `now_ms`.
    pub fn now(&self, now_ms: i64) -> Now {
        Now {
            now_ms,
            dangling_ms: i64::from(self.cfg.dangling_minutes) * 60_000,
        }
    }
}

/// Every route: (method, path, handler). The OpenAPI document is checked against this list.
pub fn routes() -> Vec<(&'static str, &'static str, MethodRouter<AppState>)> {
    vec![
        ("get", "/", get(api::dashboard)),
        ("get", "/assets/app.js", get(api::app_js)),
        ("get", "/assets/style.css", get(api::style_css)),
        ("get", "/healthz", get(api::healthz)),
        ("get", "/metrics", get(live::metrics)),
        ("get", "/api/v1/openapi.json", get(api::openapi)),
        ("get", "/api/v1/sessions", get(api::sessions)),
        ("get", "/api/v1/sessions/{id}", get(api::session)),
        ("post", "/api/v1/sessions/refresh", post(api::refresh)),
        ("get", "/api/v1/devices", get(api::devices)),
        ("get", "/api/v1/devices/{id}", get(api::device)),
        ("get", "/api/v1/status", get(api::status)),
        ("get", "/api/v1/presence", get(api::presence)),
        ("get", "/api/v1/stream", get(live::stream)),
    ]
}

/// The application: every route, JSON 404/405 for the rest.
pub fn router(state: AppState) -> Router {
    let mut r = Router::new();
    for (_, path, h) in routes() {
        r = r.route(path, h);
    }
    r.fallback(api::no_route)
        .method_not_allowed_fallback(api::no_method)
        .with_state(state)
}

/// The address to listen on, or `None` for `off`. Without tokens only loopback is allowed.
///
/// # Errors
/// A [`ConfigError`] (exit 2) for an unparsable address, or a non-loopback one without tokens.
pub fn listen_addr(cfg: &Config) -> Result<Option<SocketAddr>, ConfigError> {
    let text = cfg.http.as_deref().unwrap_or(DEFAULT_ADDR);
    if text.eq_ignore_ascii_case("off") || text.eq_ignore_ascii_case("none") {
        return Ok(None);
    }
    let addrs: Vec<SocketAddr> = text
        .to_socket_addrs()
        .map_err(|e| {
            ConfigError(format!(
                "--http: not an address (expected HOST:PORT): {text:?}: {e}"
            ))
        })?
        .collect();
    let Some(addr) = addrs.first().copied() else {
        return Err(ConfigError(format!(
            "--http: {text:?} resolves to no address"
        )));
    };
    if cfg.tokens.is_empty() && addrs.iter().any(|a| !a.ip().is_loopback()) {
        return Err(ConfigError(format!(
            "--http {text}: refusing to listen on a non-loopback address without API tokens; \
             configure [[tokens]] (sha256, role) in the config file (docs/API.md) or listen on 127.0.0.1"
        )));
    }
    Ok(Some(addr))
}

/// The running API: the writer's commit hook, and the server task (it ends after the
/// shutdown signal once open requests are answered).
pub struct Server {
    /// For the writer: notifications and ingest metrics.
    pub on_commit: OnCommit,
    /// The serving task.
    pub task: tokio::task::JoinHandle<()>,
}

/// Binds the API (unless `off`) and serves it on the current runtime until `shutdown` turns
/// true (graceful: open requests finish, event streams end). `None` when HTTP is off.
///
/// A bind failure of an explicitly configured address is an error; of the default address a
/// warning (ingest goes on without HTTP).
///
/// # Errors
/// A bad address, or a bind failure of a configured address.
pub fn start(
    cfg: &Config,
    rt: &tokio::runtime::Handle,
    writer: Handle,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
) -> anyhow::Result<Option<Server>> {
    let Some(addr) = listen_addr(cfg)? else {
        log::info!("http: off");
        return Ok(None);
    };
    let std_listener = match std::net::TcpListener::bind(addr) {
        Ok(l) => l,
        Err(e) if cfg.http.is_none() => {
            log::warn!(
                "http: cannot listen on the default {addr} ({e}); the API is off (set --http ADDR)"
            );
            return Ok(None);
        }
        Err(e) => return Err(e).with_context(|| format!("--http: cannot listen on {addr}")),
    };
    std_listener
        .set_nonblocking(true)
        .context("http: setting the listener non-blocking")?;
    let local = std_listener.local_addr().unwrap_or(addr);
    let state = AppState::new(cfg, writer, shutdown.clone());
    let on_commit = state.live.hook();
    let app = router(state);
    let _guard = rt.enter();
    let listener = tokio::net::TcpListener::from_std(std_listener)
        .context("http: registering the listener")?;
    log::info!(
        "http: listening on http://{local}/ ({})",
        if cfg.tokens.is_empty() {
            "no tokens: open API".to_owned()
        } else {
            format!("{} token(s)", cfg.tokens.len())
        }
    );
    let task = rt.spawn(async move {
        let stop = async move {
            while !*shutdown.borrow() {
                if shutdown.changed().await.is_err() {
                    break;
                }
            }
        };
        if let Err(e) = axum::serve(listener, app)
            .with_graceful_shutdown(stop)
            .await
        {
            log::error!("http: server stopped: {e}");
        }
    });
    Ok(Some(Server { on_commit, task }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn openapi_documents_exactly_the_routes() {
        let doc: serde_json::Value = serde_json::from_str(api::OPENAPI_JSON).unwrap();
        let mut documented: Vec<(String, String)> = Vec::new();
        for (path, ops) in doc["paths"].as_object().unwrap() {
            for method in ops.as_object().unwrap().keys() {
                documented.push((method.clone(), path.clone()));
            }
        }
        documented.sort();
        let mut implemented: Vec<(String, String)> = routes()
            .into_iter()
            .map(|(m, p, _)| (m.to_owned(), p.to_owned()))
            .collect();
        implemented.sort();
        assert_eq!(documented, implemented);
    }

    #[test]
    fn non_loopback_needs_tokens() {
        let mut cfg = Config {
            http: Some("0.0.0.0:8080".into()),
            ..Config::default()
        };
        let e = listen_addr(&cfg).unwrap_err();
        assert!(e.0.contains("non-loopback"), "{e}");
        cfg.http = Some("127.0.0.1:0".into());
        assert!(listen_addr(&cfg).unwrap().is_some());
        cfg.http = Some("off".into());
        assert_eq!(listen_addr(&cfg).unwrap(), None);
    }
}
