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
pub mod serve;

use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::Arc;

use std::time::Duration;

use anyhow::Context as _;
use axum::extract::Request;
use axum::http::{header, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, MethodRouter};
use axum::Router;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::timeout::TimeoutLayer;

use crate::config::{Config, ConfigError};
use crate::health::IngestHealth;
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
    /// Commit notifications, in-memory ingest metrics, the caps on streams and exports.
    pub live: Arc<live::Live>,
    /// Ingest's and the writer's progress (`/healthz`, `/readyz`, `/metrics`).
    pub health: Arc<IngestHealth>,
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
        health: Arc<IngestHealth>,
    ) -> AppState {
        let names = crate::read::names::Names::new(cfg.labels_file.clone(), cfg.oui_file.clone());
        // Loaded now, so the first request does not wait for the registry (3 MB of CSV).
        names.current(crate::timefmt::now_ms());
        AppState(Arc::new(Inner {
            reader: reader::Reader::new(cfg.db.clone(), names),
            writer,
            tokens: auth::tokens(&cfg.tokens),
            live: live::Live::new(shutdown, &cfg.limits),
            health,
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
        (
            "get",
            "/assets/vendor/uPlot.iife.min.js",
            get(api::uplot_js),
        ),
        ("get", "/assets/vendor/uPlot.min.css", get(api::uplot_css)),
        (
            "get",
            "/assets/vendor/uPlot.LICENSE",
            get(api::uplot_license),
        ),
        ("get", "/healthz", get(api::healthz)),
        ("get", "/readyz", get(api::readyz)),
        ("get", "/metrics", get(live::metrics)),
        ("get", "/api/v1/openapi.json", get(api::openapi)),
        ("get", "/api/v1/sessions", get(api::sessions)),
        ("get", "/api/v1/sessions/{id}", get(api::session)),
        ("post", "/api/v1/sessions/refresh", post(api::refresh)),
        ("get", "/api/v1/devices", get(api::devices)),
        ("get", "/api/v1/devices/{id}", get(api::device)),
        ("get", "/api/v1/status", get(api::status)),
        ("get", "/api/v1/presence", get(api::presence)),
        ("get", "/api/v1/roams", get(api::roams)),
        ("get", "/api/v1/roams/pairs", get(api::roam_pairs)),
        ("get", "/api/v1/failed-joins", get(api::failed_joins)),
        (
            "get",
            "/api/v1/failed-joins/counts",
            get(api::failed_join_counts),
        ),
        ("get", "/api/v1/trends", get(api::trends)),
        ("get", "/api/v1/clients", get(api::clients_report)),
        ("get", "/api/v1/stream", get(live::stream)),
    ]
}

/// The application: every route, JSON 404/405 for the rest; request heads over
/// [`serve::MAX_URI_BYTES`] / [`serve::MAX_HEADER_BYTES`] get 414 / 431, bodies over
/// [`serve::MAX_BODY_BYTES`] 413, handlers slower than `http_request_timeout_s` 408, and
/// every error answer, whoever produced it, is JSON `{"error": ...}`.
pub fn router(state: AppState) -> Router {
    let timeout = Duration::from_secs(state.cfg.limits.http_request_timeout_s);
    let mut r = Router::new();
    for (_, path, h) in routes() {
        r = r.route(path, h);
    }
    bounded(
        r.fallback(api::no_route)
            .method_not_allowed_fallback(api::no_method),
        timeout,
    )
    .with_state(state)
}

/// The request bounds around every route of `r`: head (414, 431), body (413), handler time
/// (408), and JSON for every error answer.
fn bounded<S: Clone + Send + Sync + 'static>(r: Router<S>, timeout: Duration) -> Router<S> {
    r.layer(middleware::from_fn(guard_head))
        .layer(RequestBodyLimitLayer::new(serve::MAX_BODY_BYTES))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            timeout,
        ))
        .layer(middleware::from_fn(json_errors))
}

/// 414 for a long request target, 431 for large headers, in JSON (hyper's own limits, far
/// above these, answer without a body).
async fn guard_head(req: Request, next: Next) -> Response {
    let target = req.uri().path_and_query().map_or(0, |p| p.as_str().len());
    if target > serve::MAX_URI_BYTES {
        return error::ApiError {
            status: StatusCode::URI_TOO_LONG,
            message: format!(
                "request target too long ({target} bytes, at most {})",
                serve::MAX_URI_BYTES
            ),
        }
        .into_response();
    }
    let headers: usize = req
        .headers()
        .iter()
        .map(|(k, v)| k.as_str().len() + v.len())
        .sum();
    if headers > serve::MAX_HEADER_BYTES {
        return error::ApiError {
            status: StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            message: format!(
                "request headers too large ({headers} bytes, at most {})",
                serve::MAX_HEADER_BYTES
            ),
        }
        .into_response();
    }
    next.run(req).await
}

/// Turns every error answer that is not JSON (the body limit's 413, the timeout's 408, an
/// extractor's plain-text rejection) into `{"error": ...}`, keeping its status.
async fn json_errors(req: Request, next: Next) -> Response {
    let resp = next.run(req).await;
    let status = resp.status();
    let is_json = resp
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    if status.as_u16() < 400 || is_json {
        return resp;
    }
    let (parts, body) = resp.into_parts();
    let text = axum::body::to_bytes(body, 4096).await.unwrap_or_default();
    let text = String::from_utf8_lossy(&text);
    let message = match status {
        StatusCode::REQUEST_TIMEOUT => "the request took too long to answer".to_owned(),
        StatusCode::PAYLOAD_TOO_LARGE => format!(
            "request body too large (at most {} bytes)",
            serve::MAX_BODY_BYTES
        ),
        _ if !text.trim().is_empty() => text.trim().to_owned(),
        s => s.canonical_reason().unwrap_or("error").to_lowercase(),
    };
    let mut out = error::ApiError { status, message }.into_response();
    for (k, v) in &parts.headers {
        if k != header::CONTENT_TYPE && k != header::CONTENT_LENGTH {
            out.headers_mut().entry(k).or_insert_with(|| v.clone());
        }
    }
    out
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
    shutdown: tokio::sync::watch::Receiver<bool>,
    health: Arc<IngestHealth>,
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
    let state = AppState::new(cfg, writer, shutdown.clone(), health);
    let on_commit = state
        .live
        .hook(state.now(0).dangling_ms, state.reader.names().clone());
    let live = std::sync::Arc::clone(&state.live);
    let app = router(state);
    let limits = cfg.limits.clone();
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
        serve::serve(listener, app, &limits, live, shutdown).await;
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

    /// Every error answer is JSON, whoever produced it: the handler timeout's 408, the body
    /// limit's 413, the head checks' 414 and 431, a handler's plain-text 400.
    #[tokio::test]
    async fn every_error_answer_is_json() {
        use axum::body::Body;
        use tower::ServiceExt as _;
        let app: Router = bounded(
            Router::new()
                .route(
                    "/slow",
                    get(|| async {
                        tokio::time::sleep(Duration::from_secs(5)).await;
                        "late"
                    }),
                )
                .route(
                    "/plain",
                    post(|| async { (StatusCode::BAD_REQUEST, "x: plain text") }),
                ),
            Duration::from_millis(50),
        );
        let call = |req: axum::http::Request<Body>| {
            let app = app.clone();
            async move {
                let r = app.oneshot(req).await.unwrap();
                let status = r.status();
                let body = axum::body::to_bytes(r.into_body(), 1 << 16).await.unwrap();
                let v: serde_json::Value = serde_json::from_slice(&body)
                    .unwrap_or_else(|e| panic!("{status}: not JSON ({e}): {body:?}"));
                (status.as_u16(), v["error"].as_str().unwrap().to_owned())
            }
        };
        let get = |uri: &str| axum::http::Request::get(uri).body(Body::empty()).unwrap();
        let (s, e) = call(get("/slow")).await;
        assert_eq!(s, 408, "{e}");
        let big = axum::http::Request::post("/plain")
            .header("content-length", "100000")
            .body(Body::from(vec![0u8; 100_000]))
            .unwrap();
        let (s, e) = call(big).await;
        assert!(s == 413 && e.contains("65536"), "{s} {e}");
        let (s, e) = call(get(&format!("/plain?{}", "q".repeat(9000)))).await;
        assert_eq!(s, 414, "{e}");
        let mut req = axum::http::Request::post("/plain")
            .body(Body::empty())
            .unwrap();
        req.headers_mut().insert(
            "x-big",
            axum::http::HeaderValue::from_str(&"b".repeat(17_000)).unwrap(),
        );
        let (s, e) = call(req).await;
        assert_eq!(s, 431, "{e}");
        let (s, e) = call(
            axum::http::Request::post("/plain")
                .body(Body::empty())
                .unwrap(),
        )
        .await;
        assert_eq!((s, e.as_str()), (400, "x: plain text"));
    }

    /// The vendored chart library is the file published on the npm registry (uplot 1.6.32,
    /// docs/DEPENDENCIES.md), with its licence, and the page loads it from the collector only.
    #[test]
    fn the_vendored_chart_library_is_the_published_one() {
        use sha2::{Digest, Sha256};
        let hex = |s: &str| {
            Sha256::digest(s.as_bytes())
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect::<String>()
        };
        assert_eq!(
            hex(api::UPLOT_JS),
            "19c8d4c6ad88929a79f4ae49d6f7161566dfd0ba3d15cc495e974f787eb78f1f"
        );
        assert_eq!(
            hex(api::UPLOT_CSS),
            "df630c6a8d6f8eeaff264b50f73ce5b114f646ffd9a0bb74f049b0a00135fa04"
        );
        assert!(api::UPLOT_JS.starts_with("/*! https://github.com/leeoniya/uPlot (v1.6.32) */"));
        assert!(api::UPLOT_LICENSE.contains("The MIT License"));
        let page = include_str!("../../assets/index.html");
        for url in [
            "/assets/vendor/uPlot.iife.min.js",
            "/assets/vendor/uPlot.min.css",
            "/assets/vendor/uPlot.LICENSE",
        ] {
            assert!(page.contains(url), "{url}");
            assert!(routes().iter().any(|r| r.1 == url), "{url}");
        }
        // Offline: nothing is loaded from another host.
        for asset in [page, include_str!("../../assets/app.js")] {
            assert!(!asset.contains("src=\"http"), "an external script");
            assert!(
                !asset.contains("href=\"http"),
                "an external stylesheet or link"
            );
            assert!(!asset.contains("//cdn"), "a CDN");
        }
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
