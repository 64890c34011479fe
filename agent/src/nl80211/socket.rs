//! The netlink I/O: neli's [`NlSocket`] for the socket, our [`parse`](super::parse) module for
//! the bytes. Blocking; each socket is owned by one thread (see `docs/nl80211.md`).

use std::io;

use neli::consts::socket::{Msg, NlFamily};
use neli::socket::NlSocket;
use neli::utils::Groups;
use wifisess_wire::MacAddr;

use super::consts::*;
use super::parse::{self, Endian, Event, Family, InterfaceMsg, ParseError, Payload};
use crate::station::{Iface, StationInfo};

/// Receive buffer size: larger than any genetlink dump datagram (the kernel uses at most 32 KiB).
const RECV_BUF: usize = 64 * 1024;

/// `ENOENT`, the same number on every Linux architecture.
const ENOENT: i32 = 2;

/// Why talking to nl80211 failed.
#[derive(thiserror::Error)]
pub enum Error {
    /// The kernel has no nl80211 family: cfg80211 is not loaded.
    #[error("nl80211 not available: no wireless driver loaded (family nl80211 not found)")]
    NotAvailable,
    /// The family has no such multicast group.
    #[error("nl80211 has no multicast group {0:?}")]
    NoGroup(&'static str),
    /// A socket call failed.
    #[error("netlink socket {op}: {source}")]
    Io {
        /// What we were doing.
        op: &'static str,
        /// The OS error.
        source: io::Error,
    },
    /// The kernel refused a request.
    #[error("{request}: kernel error {errno}: {}", io::Error::from_raw_os_error(*errno))]
    Kernel {
        /// The request, e.g. `NL80211_CMD_GET_STATION`.
        request: &'static str,
        /// The positive errno.
        errno: i32,
    },
    /// The kernel's answer could not be parsed.
    #[error("{request}: {source}")]
    Parse {
        /// The request (or `event`).
        request: &'static str,
        /// What was malformed.
        source: ParseError,
    },
    /// A dump was interrupted by a concurrent change (`NLM_F_DUMP_INTR`); retry it.
    #[error("{0}: dump interrupted by a concurrent change")]
    Interrupted(&'static str),
}

/// `Debug` is the `Display` line: a derived `Debug` (variant and field names) would be ~1 KB
/// of the router build for what only ever reaches a log line.
impl core::fmt::Debug for Error {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        core::fmt::Display::fmt(self, f)
    }
}

fn io_err(op: &'static str) -> impl FnOnce(io::Error) -> Error {
    move |source| Error::Io { op, source }
}

/// Writes every received datagram to a directory, for parser test fixtures
/// (`WIFISESS_NL_CAPTURE=DIR`, feature `devtools`; without it, never set and a no-op).
#[derive(Clone, Debug)]
struct Capture {
    #[cfg(feature = "devtools")]
    dir: std::path::PathBuf,
}

#[cfg(feature = "devtools")]
static CAPTURE_SEQ: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);

#[cfg(feature = "devtools")]
impl Capture {
    fn from_env() -> Option<Capture> {
        std::env::var_os("WIFISESS_NL_CAPTURE").map(|d| Capture { dir: d.into() })
    }

    fn write(&self, label: &str, bytes: &[u8]) {
        let n = CAPTURE_SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let label = label.replace(' ', "_");
        let path = self.dir.join(format!("{n:04}-{label}.bin"));
        if let Err(e) = std::fs::write(&path, bytes) {
            eprintln!("capture {}: {e}", path.display());
        }
    }
}

#[cfg(not(feature = "devtools"))]
impl Capture {
    fn from_env() -> Option<Capture> {
        None
    }

    fn write(&self, _: &str, _: &[u8]) {}
}

fn recv_into(sock: &NlSocket, buf: &mut Vec<u8>) -> Result<usize, io::Error> {
    buf.resize(RECV_BUF, 0);
    loop {
        match sock.recv(&mut buf[..], Msg::empty()) {
            Ok((n, _)) => return Ok(n.min(RECV_BUF)),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
    }
}

/// A request socket for nl80211: family resolution, interface and station queries.
pub struct Nl80211 {
    sock: NlSocket,
    family: Family,
    seq: u32,
    buf: Vec<u8>,
    capture: Option<Capture>,
}

impl Nl80211 {
    /// Opens a generic netlink socket and resolves the `nl80211` family and its groups.
    ///
    /// # Errors
    /// [`Error::NotAvailable`] when the kernel has no nl80211 (no wireless driver), else
    /// socket or parse errors.
    pub fn connect() -> Result<Nl80211, Error> {
        let sock =
            NlSocket::connect(NlFamily::Generic, None, Groups::empty()).map_err(io_err("open"))?;
        let mut nl = Nl80211 {
            sock,
            family: Family::default(),
            seq: 0,
            buf: Vec::new(),
            capture: Capture::from_env(),
        };
        let mut fam = None;
        let name = [NL80211_GENL_NAME.as_bytes(), b"\0"].concat();
        let res = nl.request(
            "CTRL_CMD_GETFAMILY",
            GENL_ID_CTRL,
            CTRL_CMD_GETFAMILY,
            0,
            &[(CtrlAttr::FamilyName.raw(), &name)],
            |cmd, attrs| {
                if cmd == CTRL_CMD_NEWFAMILY {
                    fam = Some(parse::parse_family(attrs, Endian::NATIVE)?);
                }
                Ok(())
            },
        );
        match res {
            Err(Error::Kernel { errno: ENOENT, .. }) => return Err(Error::NotAvailable),
            r => r?,
        }
        nl.family = fam.ok_or(Error::NotAvailable)?;
        Ok(nl)
    }

    /// The resolved nl80211 family (id and multicast groups).
    pub fn family(&self) -> &Family {
        &self.family
    }

    /// Sends one request and feeds every answer message (`cmd`, attributes) to `each`, until
    /// the ACK, the end of the dump or an error.
    fn request(
        &mut self,
        name: &'static str,
        nl_type: u16,
        cmd: u8,
        extra_flags: u16,
        attrs: &[(u16, &[u8])],
        mut each: impl FnMut(u8, &[u8]) -> Result<(), ParseError>,
    ) -> Result<(), Error> {
        self.seq = self.seq.wrapping_add(1).max(1);
        let seq = self.seq;
        let flags = NLM_F_REQUEST | NLM_F_ACK | extra_flags;
        let msg = parse::encode_request(Endian::NATIVE, nl_type, flags, seq, cmd, 1, attrs);
        self.sock.send(&msg, Msg::empty()).map_err(io_err("send"))?;
        let dump = extra_flags & NLM_F_DUMP != 0;
        let mut interrupted = false;
        loop {
            let n = recv_into(&self.sock, &mut self.buf).map_err(io_err("recv"))?;
            let data = &self.buf[..n];
            if let Some(c) = &self.capture {
                c.write(name, data);
            }
            for m in parse::messages(data, Endian::NATIVE) {
                let m = m.map_err(|source| Error::Parse {
                    request: name,
                    source,
                })?;
                if m.seq != seq {
                    continue; // a late answer to an earlier request
                }
                interrupted |= m.flags & NLM_F_DUMP_INTR != 0;
                let pe = |source| Error::Parse {
                    request: name,
                    source,
                };
                match m.payload(Endian::NATIVE).map_err(pe)? {
                    Payload::Noop => {}
                    Payload::Done { error } | Payload::Error { error } if error != 0 => {
                        return Err(Error::Kernel {
                            request: name,
                            errno: error.saturating_neg(),
                        })
                    }
                    Payload::Done { .. } => {
                        return if interrupted {
                            Err(Error::Interrupted(name))
                        } else {
                            Ok(())
                        }
                    }
                    // The ACK ends a non-dump request (a dump's ACK comes after NLMSG_DONE).
                    Payload::Error { .. } => {
                        if !dump {
                            return Ok(());
                        }
                    }
                    Payload::Genl { cmd, attrs, .. } => each(cmd, attrs).map_err(pe)?,
                }
            }
        }
    }

    fn retry_interrupted<T>(
        &mut self,
        mut f: impl FnMut(&mut Self) -> Result<T, Error>,
    ) -> Result<T, Error> {
        for _ in 0..4 {
            match f(self) {
                Err(Error::Interrupted(_)) => continue,
                r => return r,
            }
        }
        f(self)
    }

    /// Every wireless interface (`GET_INTERFACE` dump), whatever its type.
    ///
    /// # Errors
    /// Socket, kernel or parse errors.
    pub fn interfaces(&mut self) -> Result<Vec<InterfaceMsg>, Error> {
        self.retry_interrupted(|nl| {
            let mut out = Vec::new();
            let fam = nl.family.id;
            nl.request(
                "NL80211_CMD_GET_INTERFACE",
                fam,
                Cmd::GetInterface.raw(),
                NLM_F_DUMP,
                &[],
                |cmd, attrs| {
                    if Cmd::from_raw(cmd) == Cmd::NewInterface {
                        out.push(parse::parse_interface(attrs, Endian::NATIVE)?);
                    }
                    Ok(())
                },
            )?;
            Ok(out)
        })
    }

    /// The AP and AP_VLAN interfaces, as the tracker sees them.
    ///
    /// # Errors
    /// As [`Nl80211::interfaces`].
    pub fn ap_interfaces(&mut self) -> Result<Vec<Iface>, Error> {
        Ok(self
            .interfaces()?
            .iter()
            .filter_map(InterfaceMsg::to_ap_iface)
            .collect())
    }

    /// Every station of one interface (`GET_STATION` dump).
    ///
    /// # Errors
    /// Socket, kernel or parse errors (`ENODEV` when the interface is gone).
    pub fn stations(&mut self, ifindex: u32) -> Result<Vec<StationInfo>, Error> {
        self.retry_interrupted(|nl| {
            let mut out = Vec::new();
            let fam = nl.family.id;
            let idx = Endian::NATIVE.put_u32(ifindex);
            nl.request(
                "NL80211_CMD_GET_STATION dump",
                fam,
                Cmd::GetStation.raw(),
                NLM_F_DUMP,
                &[(Attr::Ifindex.raw(), &idx)],
                |cmd, attrs| {
                    if Cmd::from_raw(cmd) == Cmd::NewStation {
                        let m =
                            parse::parse_station(attrs, Endian::NATIVE, "NL80211_CMD_NEW_STATION")?;
                        out.push(m.station);
                    }
                    Ok(())
                },
            )?;
            Ok(out)
        })
    }

    /// One station of one interface (`GET_STATION` with `ATTR_MAC`), `None` if the kernel does
    /// not know it (`ENOENT`).
    ///
    /// # Errors
    /// Socket, kernel or parse errors.
    pub fn station(&mut self, ifindex: u32, mac: MacAddr) -> Result<Option<StationInfo>, Error> {
        let mut out = None;
        let fam = self.family.id;
        let idx = Endian::NATIVE.put_u32(ifindex);
        let res = self.request(
            "NL80211_CMD_GET_STATION",
            fam,
            Cmd::GetStation.raw(),
            0,
            &[(Attr::Ifindex.raw(), &idx), (Attr::Mac.raw(), &mac.0)],
            |cmd, attrs| {
                if Cmd::from_raw(cmd) == Cmd::NewStation {
                    out = Some(
                        parse::parse_station(attrs, Endian::NATIVE, "NL80211_CMD_NEW_STATION")?
                            .station,
                    );
                }
                Ok(())
            },
        );
        match res {
            Err(Error::Kernel { errno: ENOENT, .. }) => Ok(None),
            r => r.map(|()| out),
        }
    }

    /// A second socket subscribed to the `mlme` and `config` multicast groups.
    ///
    /// # Errors
    /// [`Error::NoGroup`] if the family lacks a group, else socket errors.
    pub fn events(&self) -> Result<EventSocket, Error> {
        let mut ids = Vec::new();
        for g in [NL80211_MULTICAST_GROUP_MLME, NL80211_MULTICAST_GROUP_CONFIG] {
            ids.push(self.family.group(g).ok_or(Error::NoGroup(g))?);
        }
        let sock =
            NlSocket::connect(NlFamily::Generic, None, Groups::empty()).map_err(io_err("open"))?;
        sock.add_mcast_membership(Groups::new_groups(&ids))
            .map_err(io_err("join multicast group"))?;
        // Bursts (hostapd restart with many clients) must not overflow the queue.
        let _ = sock.set_recv_buffer_size(1 << 20);
        Ok(EventSocket {
            sock,
            family: self.family.id,
            buf: Vec::new(),
            capture: self.capture.clone(),
        })
    }
}

/// What one read of the event socket gave.
#[derive(Debug)]
pub enum Received {
    /// Parsed nl80211 events (possibly none: other families, other commands).
    Events(Vec<Event>),
    /// Events were lost (receive queue overflow, or a message we could not parse): the caller
    /// must re-discover interfaces and dump stations.
    Lost(String),
}

/// A socket subscribed to nl80211's `mlme` and `config` groups.
pub struct EventSocket {
    sock: NlSocket,
    family: u16,
    buf: Vec<u8>,
    capture: Option<Capture>,
}

impl EventSocket {
    /// Blocks until the kernel multicasts something, and parses it.
    ///
    /// # Errors
    /// Socket errors, including `ENOBUFS` when the receive queue overflowed and events were
    /// lost (re-discover then). An unparsable event is [`Received::Lost`].
    pub fn recv(&mut self) -> Result<Received, Error> {
        // ENOBUFS (queue overflow) lands here too: the caller treats any error as lost events.
        let n = recv_into(&self.sock, &mut self.buf).map_err(io_err("recv"))?;
        let data = &self.buf[..n];
        if let Some(c) = &self.capture {
            c.write("event", data);
        }
        let mut out = Vec::new();
        for m in parse::messages(data, Endian::NATIVE) {
            let m = match m {
                Ok(m) => m,
                Err(e) => return Ok(Received::Lost(format!("event: {e}"))),
            };
            if m.ty != self.family {
                continue;
            }
            let ev = m.payload(Endian::NATIVE).and_then(|p| match p {
                Payload::Genl { cmd, attrs, .. } => {
                    parse::parse_event(cmd, attrs, Endian::NATIVE).map(Some)
                }
                _ => Ok(None),
            });
            match ev {
                Ok(Some(ev)) => out.push(ev),
                Ok(None) => {}
                Err(e) => return Ok(Received::Lost(format!("event: {e}"))),
            }
        }
        Ok(Received::Events(out))
    }
}

impl std::os::fd::AsRawFd for EventSocket {
    fn as_raw_fd(&self) -> std::os::fd::RawFd {
        self.sock.as_raw_fd()
    }
}
