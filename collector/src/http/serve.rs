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
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _, ReadBuf};
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

/// Connections over the cap answered 503 at once at most (each for up to a second).
const REFUSING: usize = 64;

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
    // Connections being told "503" at once; past this many, one more is just closed (a
    // flood must not hold a descriptor per refused connection either).
    let refusing = Arc::new(Semaphore::new(REFUSING));
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
            if let Ok(permit) = Arc::clone(&refusing).try_acquire_owned() {
                tokio::spawn(async move {
                    refuse(tcp).await;
                    drop(permit);
                });
            }
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
            let io = TokioIo::new(JsonHeads::new(Box::pin(io)));
            let mut builder = http1::Builder::new();
            builder
                .timer(TokioTimer::new())
                .header_read_timeout(header_timeout)
                .max_buf_size(MAX_HEAD_BYTES)
                .max_headers(MAX_HEADERS)
                // One buffer per write, so hyper's own error answers arrive whole (JsonHeads).
                .writev(false)
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

/// The connection's IO, with hyper's own error answers made JSON: when a request head cannot
/// be parsed or exceeds [`MAX_HEAD_BYTES`] / [`MAX_HEADERS`], hyper writes a bodiless 400,
/// 414 or 431 itself (no handler runs) and closes. Every answer of ours has a content type
/// (errors are JSON, see [`super::router`]), so a 4xx head without one and with
/// `content-length: 0` is hyper's: it is rewritten to carry `{"error": ...}`.
struct JsonHeads<T> {
    io: T,
    /// A rewritten answer still to be written, and how much of it is.
    out: Vec<u8>,
    sent: usize,
}

impl<T> JsonHeads<T> {
    fn new(io: T) -> JsonHeads<T> {
        JsonHeads {
            io,
            out: Vec::new(),
            sent: 0,
        }
    }
}

/// hyper's bodiless error head `head`, rewritten with a JSON body; `None` for anything else.
fn json_head(head: &[u8]) -> Option<Vec<u8>> {
    let text = std::str::from_utf8(head).ok()?;
    if !text.starts_with("HTTP/1.1 4") || !text.ends_with("\r\n\r\n") {
        return None;
    }
    let lower = text.to_ascii_lowercase();
    if !lower.contains("\r\ncontent-length: 0\r\n") || lower.contains("\r\ncontent-type:") {
        return None;
    }
    let message = match text.get(9..12)? {
        "431" => format!(
            "request head too large (at most {MAX_HEAD_BYTES} bytes and {MAX_HEADERS} header fields)"
        ),
        "414" => "request target too long".to_owned(),
        _ => "malformed request".to_owned(),
    };
    let body = super::error::body(&message);
    let at = lower.find("\r\ncontent-length: 0\r\n")? + 2;
    let mut out = Vec::with_capacity(text.len() + body.len() + 40);
    out.extend_from_slice(&head[..at]);
    out.extend_from_slice(
        format!(
            "content-type: application/json\r\ncontent-length: {}\r\n",
            body.len()
        )
        .as_bytes(),
    );
    out.extend_from_slice(&head[at + "content-length: 0\r\n".len()..]);
    out.extend_from_slice(body.as_bytes());
    Some(out)
}

impl<T: AsyncWrite + Unpin> JsonHeads<T> {
    /// Writes what is left of a rewritten answer.
    fn drain(&mut self, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        while self.sent < self.out.len() {
            let n = ready!(Pin::new(&mut self.io).poll_write(cx, &self.out[self.sent..]))?;
            if n == 0 {
                return Poll::Ready(Err(std::io::ErrorKind::WriteZero.into()));
            }
            self.sent += n;
        }
        self.out.clear();
        self.sent = 0;
        Poll::Ready(Ok(()))
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for JsonHeads<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_read(cx, buf)
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for JsonHeads<T> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let me = self.get_mut();
        ready!(me.drain(cx))?;
        if let Some(out) = json_head(buf) {
            me.out = out;
            // What is not written now is written by the flush hyper does next.
            if let Poll::Ready(Err(e)) = me.drain(cx) {
                return Poll::Ready(Err(e));
            }
            return Poll::Ready(Ok(buf.len()));
        }
        Pin::new(&mut me.io).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        let me = self.get_mut();
        ready!(me.drain(cx))?;
        Pin::new(&mut me.io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        let me = self.get_mut();
        ready!(me.drain(cx))?;
        Pin::new(&mut me.io).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_hypers_bodiless_error_heads_are_rewritten() {
        let head = b"HTTP/1.1 431 Request Header Fields Too Large\r\ncontent-length: 0\r\ndate: Thu, 03 Dec 2026 09:00:00 GMT\r\n\r\n";
        let out = String::from_utf8(json_head(head).unwrap()).unwrap();
        let (h, body) = out.split_once("\r\n\r\n").unwrap();
        assert!(h.starts_with("HTTP/1.1 431 "), "{h}");
        assert!(h.contains("\r\ncontent-type: application/json\r\n"), "{h}");
        assert!(
            h.contains(&format!("\r\ncontent-length: {}\r\n", body.len())),
            "{h}"
        );
        assert!(h.contains("\r\ndate: "), "{h}");
        let v: serde_json::Value = serde_json::from_str(body).unwrap();
        assert!(v["error"]
            .as_str()
            .unwrap()
            .starts_with("request head too large"));
        // Ours (a content type), a success, a body chunk: untouched.
        assert!(json_head(b"HTTP/1.1 404 Not Found\r\ncontent-type: application/json\r\ncontent-length: 0\r\n\r\n").is_none());
        assert!(json_head(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n").is_none());
        assert!(json_head(b"id,device_id\r\n").is_none());
    }
}
