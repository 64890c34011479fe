//! SIGTERM and SIGINT as a future, without tokio's `signal` feature (its signal driver and
//! signal-hook-registry are ~15 KB of the router build, docs/BENCHMARKS.md): the handler
//! writes the signal number to one end of a socket pair, the runtime reads the other.

use std::io;
use std::os::fd::IntoRawFd as _;
use std::sync::atomic::{AtomicI32, Ordering};

use libc::{SIGINT, SIGTERM};

/// The write end of the socket pair (-1 until [`terminated`] runs).
static WAKE_FD: AtomicI32 = AtomicI32::new(-1);

/// Runs in whatever thread the kernel picked: only async-signal-safe calls (`write`), and
/// `errno` is left as it was. The write end is non-blocking: a full buffer drops the byte,
/// and then a shutdown is already pending.
extern "C" fn on_signal(sig: i32) {
    let b = sig as u8;
    // SAFETY: `__errno_location` returns this thread's errno; `write` gets a valid one-byte
    // buffer and a descriptor that stays open for the life of the process (or -1: EBADF).
    unsafe {
        let errno = libc::__errno_location();
        let saved = *errno;
        libc::write(WAKE_FD.load(Ordering::Relaxed), (&b as *const u8).cast(), 1);
        *errno = saved;
    }
}

/// Installs the SIGTERM and SIGINT handlers and waits for either; returns its name. Call
/// once, inside the runtime.
///
/// # Errors
/// The socket pair cannot be made or registered, or a handler cannot be installed.
pub async fn terminated() -> io::Result<&'static str> {
    let (rx, tx) = std::os::unix::net::UnixStream::pair()?;
    rx.set_nonblocking(true)?;
    tx.set_nonblocking(true)?;
    let mut rx = tokio::net::UnixStream::from_std(rx)?;
    // The write end lives as long as the process: a handler may still run during exit.
    WAKE_FD.store(tx.into_raw_fd(), Ordering::Relaxed);
    for sig in [SIGTERM, SIGINT] {
        // SAFETY: `on_signal` is an `extern "C" fn(c_int)` that only makes async-signal-safe
        // calls; `signal` keeps it installed (BSD semantics in glibc and musl).
        let handler = on_signal as extern "C" fn(i32) as libc::sighandler_t;
        if unsafe { libc::signal(sig, handler) } == libc::SIG_ERR {
            return Err(io::Error::last_os_error());
        }
    }
    let mut b = [0u8];
    match tokio::io::AsyncReadExt::read(&mut rx, &mut b).await? {
        0 => Err(io::ErrorKind::UnexpectedEof.into()),
        _ => Ok(if i32::from(b[0]) == SIGINT {
            "SIGINT"
        } else {
            "SIGTERM"
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sigint_and_sigterm_end_the_wait_by_name() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_io()
            .build()
            .unwrap();
        for (sig, name) in [(SIGINT, "SIGINT"), (SIGTERM, "SIGTERM")] {
            let got = rt.block_on(async {
                let mut wait = Box::pin(terminated());
                // Poll once: the handlers are installed before the signal is raised.
                tokio::select! {
                    biased;
                    r = &mut wait => panic!("ended before the signal: {r:?}"),
                    () = std::future::ready(()) => {}
                }
                // SAFETY: the handler installed above only writes to the socket pair.
                assert_eq!(unsafe { libc::raise(sig) }, 0);
                wait.await.unwrap()
            });
            assert_eq!(got, name);
        }
    }
}
