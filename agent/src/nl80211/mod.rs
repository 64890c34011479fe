//! nl80211 over generic netlink: the kernel's view of AP interfaces and their stations.
//!
//! Three layers (see `docs/nl80211.md`): [`consts`] (the kernel's numbers and names), [`parse`]
//! (bytes → typed, no I/O, byte order a parameter) and [`socket`] (neli sockets, blocking, one
//! owner each). [`spawn_events`] runs the event socket on its own thread so any loop — a plain
//! `recv_timeout` loop or a tokio runtime — can consume events from a channel.

pub mod consts;
pub mod parse;
pub mod socket;

pub use parse::{Endian, Event, ParseError};
pub use socket::{Error, EventSocket, Nl80211, Received};

/// What the event thread hands over.
#[derive(Debug)]
pub enum SourceMsg {
    /// Events, in kernel order.
    Events(Vec<Event>),
    /// Events were lost (queue overflow, unparsable message): re-discover and dump.
    Lost(String),
    /// The socket failed for good.
    Failed(Error),
}

/// Consecutive receive errors after which the event thread gives up.
const MAX_CONSECUTIVE_ERRORS: u32 = 10;

/// Runs `sock` on a new thread, passing what it receives to `send` until `send` returns
/// `false` (the receiver is gone) or the socket fails for good.
///
/// # Errors
/// If the thread cannot be spawned.
pub fn spawn_events(
    mut sock: EventSocket,
    mut send: impl FnMut(SourceMsg) -> bool + Send + 'static,
) -> std::io::Result<std::thread::JoinHandle<()>> {
    std::thread::Builder::new()
        .name("nl80211-events".into())
        .spawn(move || {
            let mut errors = 0;
            loop {
                let msg = match sock.recv() {
                    Ok(Received::Events(v)) if v.is_empty() => continue,
                    Ok(Received::Events(v)) => {
                        errors = 0;
                        SourceMsg::Events(v)
                    }
                    Ok(Received::Lost(why)) => SourceMsg::Lost(why),
                    Err(e) => {
                        errors += 1;
                        if errors >= MAX_CONSECUTIVE_ERRORS {
                            send(SourceMsg::Failed(e));
                            return;
                        }
                        SourceMsg::Lost(e.to_string())
                    }
                };
                if !send(msg) {
                    return;
                }
            }
        })
}
