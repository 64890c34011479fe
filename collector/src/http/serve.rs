//! The connection side of the API: the accept loop with its connection cap, hyper's HTTP/1
//! connection with a header-read timeout (which also bounds the idle time between two
//! requests of a kept-alive connection), a write timeout for clients that stop reading, and
//! graceful shutdown. Everything above a connection (routes, body and head limits, JSON
//! errors) is in [`super::router`].

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, Semaphore};
use tokio_io_timeout::TimeoutStream;

use super::live::{Live, REFUSED_CONNECTION};
use crate::config::Limits;

/// Largest request head hyper reads (start line and headers). The router answers smaller
/// violations with JSON ([`MAX_URI_BYTES`], [`MAX_HEADER_BYTES`]); this is the last stop.
pub const MAX_HEAD_BYTES: usize = 64 * 1024;
/// Longest request target (path and query) answered; longer: 414.
pub const MAX_URI_BYTES: usize = 8 * 1024;
/// Largest total of header names and values; larger: 431.
pub const MAX_HEADER_BYTES: usize = 16 * 1024;
/// Most header fields hyper parses; more: 431.
pub const MAX_HEADERS: usize = 100;
/// Largest request body (no endpoint takes one; a refresh has none): 413.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// What a connection over the cap is told before it is closed.
fn refusal() -> Vec<u8> {
    let body =
        super::error::body("too many open connections to the collector's API; try again later");
    format!(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\n\
         content-length: {}\r\nretry-after: 5\r\nconnection: close\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// Serves `app` on `listener` until `shutdown` turns true, then lets open connections finish
/// (graceful) and returns once they have. At most `limits.http_connections` connections are
/// served at once; one more is answered 503 (JSON) and closed at once.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: &Limits,
    live: Arc<Live>,
    mut shutdown: watch::Receiver<bool>,
) {
    let cap = limits.http_connections;
    let slots = Arc::new(Semaphore::new(cap));
    let header_timeout = Duration::from_secs(limits.http_header_timeout_s);
    let write_timeout = Duration::from_secs(limits.http_write_timeout_s);
    let mut accept_errors = 0u64;
    loop {
        let stopping = async {
            let _ = shutdown.wait_for(|s| *s).await;
        };
        let (tcp, _peer) = tokio::select! {
            r = listener.accept() => match r {
                Ok(c) => c,
                Err(e) => {
                    // EMFILE and the like: wait a little instead of spinning.
                    accept_errors += 1;
                    if accept_errors.is_power_of_two() {
                        log::warn!("http: accept failed ({e}); {accept_errors} times so far");
                    }
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = stopping => break,
        };
        let Ok(slot) = Arc::clone(&slots).try_acquire_owned() else {
            live.refused[REFUSED_CONNECTION].fetch_add(1, Ordering::Relaxed);
            tokio::spawn(refuse(tcp));
            continue;
        };
        let _ = tcp.set_nodelay(true);
        live.connections.fetch_add(1, Ordering::Relaxed);
        let app = app.clone();
        let live = Arc::clone(&live);
        let mut stop = shutdown.clone();
        tokio::spawn(async move {
            let mut io = TimeoutStream::new(tcp);
            io.set_write_timeout(Some(write_timeout));
            let io = TokioIo::new(Box::pin(io));
            let mut builder = http1::Builder::new();
            builder
                .timer(TokioTimer::new())
                .header_read_timeout(header_timeout)
                .max_buf_size(MAX_HEAD_BYTES)
                .max_headers(MAX_HEADERS)
                .keep_alive(true);
            let conn = builder.serve_connection(io, TowerToHyperService::new(app));
            tokio::pin!(conn);
            let stopping = async move {
                let _ = stop.wait_for(|s| *s).await;
            };
            let r = tokio::select! {
                r = conn.as_mut() => r,
                () = stopping => {
                    conn.as_mut().graceful_shutdown();
                    conn.await
                }
            };
            if let Err(e) = r {
                log::debug!("http: connection ended: {e}");
            }
            live.connections.fetch_sub(1, Ordering::Relaxed);
            drop(slot);
        });
    }
    drop(listener);
    // Every connection holds a slot until it ends.
    let _ = slots
        .acquire_many(u32::try_from(cap).unwrap_or(u32::MAX))
        .await;
}

/// A connection over the cap: a 503 JSON answer, written within a second or not at all.
async fn refuse(mut tcp: TcpStream) {
    let answer = refusal();
    let _ = tokio::time::timeout(Duration::from_secs(1), async {
        let _ = tcp.write_all(&answer).await;
        let _ = tcp.shutdown().await;
        // Read what the client sent until it closes, so closing does not reset the
        // connection (and the answer with it) over unread bytes.
        let mut sink = [0u8; 4096];
        while matches!(tcp.read(&mut sink).await, Ok(n) if n > 0) {}
    })
    .await;
}
