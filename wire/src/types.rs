//! Newtypes for the values every message carries: MAC addresses, session and boot ids, times.

use core::fmt;
use core::str::FromStr;

use minicbor::decode::{self, Decoder};
use minicbor::encode::{self, Encoder, Write};
use minicbor::{Decode, Encode};

/// Why a textual id, MAC or boot id could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    /// Not six hex octets (`aa:bb:cc:dd:ee:ff`, `aa-bb-..` or `aabbccddeeff`).
    #[error("not a MAC address (expected aa:bb:cc:dd:ee:ff)")]
    Mac,
    /// Not 1 to 16 hex digits.
    #[error("not a session id (expected up to 16 hex digits)")]
    SessionId,
    /// Not a UUID as the kernel prints it in `/proc/sys/kernel/random/boot_id`.
    #[error("not a boot id (expected a UUID like 5f1c…-…)")]
    BootId,
}

fn hex_val(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

/// Parses exactly `out.len()` octets of hex from `s`, skipping the separators in `seps`.
fn parse_hex_octets(s: &str, seps: &[u8], out: &mut [u8]) -> Option<()> {
    let mut digits = s.bytes().filter(|c| !seps.contains(c));
    for o in out.iter_mut() {
        let hi = hex_val(digits.next()?)?;
        let lo = hex_val(digits.next()?)?;
        *o = hi << 4 | lo;
    }
    digits.next().is_none().then_some(())
}

/// An IEEE 802 MAC address (a client station or a BSSID). On the wire: a 6-byte byte string.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct MacAddr(pub [u8; 6]);

impl MacAddr {
    /// True for a locally administered address (randomised client MACs, MAC privacy mode).
    pub fn is_local(&self) -> bool {
        self.0[0] & 0x02 != 0
    }
}

impl fmt::Display for MacAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let m = self.0;
        write!(
            f,
            "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
            m[0], m[1], m[2], m[3], m[4], m[5]
        )
    }
}

impl fmt::Debug for MacAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl FromStr for MacAddr {
    type Err = ParseError;
    /// Accepts `aa:bb:cc:dd:ee:ff`, `aa-bb-cc-dd-ee-ff` and `aabbccddeeff`, any letter case.
    fn from_str(s: &str) -> Result<Self, ParseError> {
        let mut m = [0u8; 6];
        let sep_ok = match s.len() {
            12 => true,
            17 => s.bytes().skip(2).step_by(3).all(|c| c == b':' || c == b'-'),
            _ => false,
        };
        if !sep_ok {
            return Err(ParseError::Mac);
        }
        parse_hex_octets(s, b":-", &mut m).ok_or(ParseError::Mac)?;
        Ok(MacAddr(m))
    }
}

impl<C> Encode<C> for MacAddr {
    fn encode<W: Write>(
        &self,
        e: &mut Encoder<W>,
        _: &mut C,
    ) -> Result<(), encode::Error<W::Error>> {
        e.bytes(&self.0)?.ok()
    }
}

impl<'b, C> Decode<'b, C> for MacAddr {
    fn decode(d: &mut Decoder<'b>, _: &mut C) -> Result<Self, decode::Error> {
        let p = d.position();
        let b = d.bytes()?;
        <[u8; 6]>::try_from(b)
            .map(MacAddr)
            .map_err(|_| decode::Error::message("a MAC address must be 6 bytes").at(p))
    }
}

/// A session id: a stable 64-bit hash of (boot id, ifname, MAC, association time), derived
/// by the agent (see `docs/wire.md`). Printed as 16 lowercase hex digits.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default, Encode, Decode)]
#[cbor(transparent)]
pub struct SessionId(#[n(0)] pub u64);

impl fmt::Display for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:016x}", self.0)
    }
}

impl fmt::Debug for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl FromStr for SessionId {
    type Err = ParseError;
    fn from_str(s: &str) -> Result<Self, ParseError> {
        if s.is_empty() || s.len() > 16 || !s.bytes().all(|c| c.is_ascii_hexdigit()) {
            return Err(ParseError::SessionId);
        }
        u64::from_str_radix(s, 16)
            .map(SessionId)
            .map_err(|_| ParseError::SessionId)
    }
}

/// The kernel's random boot id (`/proc/sys/kernel/random/boot_id`): new at every boot, so a
/// change tells the collector that the access point rebooted. On the wire: 16 bytes.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct BootId(pub [u8; 16]);

impl fmt::Display for BootId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, b) in self.0.iter().enumerate() {
            if matches!(i, 4 | 6 | 8 | 10) {
                f.write_str("-")?;
            }
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for BootId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl FromStr for BootId {
    type Err = ParseError;
    /// Accepts the kernel's form (`8-4-4-4-12` hex digits, a trailing newline allowed).
    fn from_str(s: &str) -> Result<Self, ParseError> {
        let s = s.trim_end();
        let dashes_ok = s.len() == 36
            && s.bytes()
                .enumerate()
                .all(|(i, c)| matches!(i, 8 | 13 | 18 | 23) == (c == b'-'));
        if !dashes_ok {
            return Err(ParseError::BootId);
        }
        let mut b = [0u8; 16];
        parse_hex_octets(s, b"-", &mut b).ok_or(ParseError::BootId)?;
        Ok(BootId(b))
    }
}

impl<C> Encode<C> for BootId {
    fn encode<W: Write>(
        &self,
        e: &mut Encoder<W>,
        _: &mut C,
    ) -> Result<(), encode::Error<W::Error>> {
        e.bytes(&self.0)?.ok()
    }
}

impl<'b, C> Decode<'b, C> for BootId {
    fn decode(d: &mut Decoder<'b>, _: &mut C) -> Result<Self, decode::Error> {
        let p = d.position();
        let b = d.bytes()?;
        <[u8; 16]>::try_from(b)
            .map(BootId)
            .map_err(|_| decode::Error::message("a boot id must be 16 bytes").at(p))
    }
}

/// A point in time as the agent saw it: both clocks, because a router may boot without a
/// real-time clock and only learn the date later from NTP.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub struct Stamp {
    /// Wall-clock time, ms since the Unix epoch (possibly wrong: see the batch's `clock_synced`).
    pub wall_ms: u64,
    /// Time since the access point booted (CLOCK_BOOTTIME), ms. Never jumps.
    pub uptime_ms: u64,
}

/// When an event happened, relative to the base stamp of the batch that carries it.
///
/// On the wire an integer (`uptime_ms`) when `wall_adj_ms` is zero, which is the rule, else
/// the array `[uptime_ms, wall_adj_ms]`: the wall clock was stepped between the batch's base
/// and this event.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub struct Offset {
    /// Event uptime minus the batch's base uptime, ms.
    pub uptime_ms: i64,
    /// (Event wall time − base wall time) − `uptime_ms`, ms; non-zero only if the clock stepped.
    pub wall_adj_ms: i64,
}

impl Offset {
    /// The offset of `at` from `base`, or `None` if it does not fit (clocks ~292 My apart).
    pub fn between(base: Stamp, at: Stamp) -> Option<Offset> {
        let up = i64::try_from(i128::from(at.uptime_ms) - i128::from(base.uptime_ms)).ok()?;
        let wall = i128::from(at.wall_ms) - i128::from(base.wall_ms);
        let adj = i64::try_from(wall - i128::from(up)).ok()?;
        Some(Offset {
            uptime_ms: up,
            wall_adj_ms: adj,
        })
    }

    /// The absolute stamp `base + self`, or `None` if it falls outside `u64` (hostile input).
    pub fn resolve(self, base: Stamp) -> Option<Stamp> {
        let up = i128::from(base.uptime_ms) + i128::from(self.uptime_ms);
        let wall =
            i128::from(base.wall_ms) + i128::from(self.uptime_ms) + i128::from(self.wall_adj_ms);
        Some(Stamp {
            wall_ms: u64::try_from(wall).ok()?,
            uptime_ms: u64::try_from(up).ok()?,
        })
    }
}

impl<C> Encode<C> for Offset {
    fn encode<W: Write>(
        &self,
        e: &mut Encoder<W>,
        _: &mut C,
    ) -> Result<(), encode::Error<W::Error>> {
        if self.wall_adj_ms == 0 {
            e.i64(self.uptime_ms)?.ok()
        } else {
            e.array(2)?.i64(self.uptime_ms)?.i64(self.wall_adj_ms)?.ok()
        }
    }
}

impl<'b, C> Decode<'b, C> for Offset {
    fn decode(d: &mut Decoder<'b>, _: &mut C) -> Result<Self, decode::Error> {
        let p = d.position();
        if d.datatype()? != minicbor::data::Type::Array {
            return Ok(Offset {
                uptime_ms: d.i64()?,
                wall_adj_ms: 0,
            });
        }
        if d.array()? != Some(2) {
            return Err(decode::Error::message("a time offset array must hold 2 integers").at(p));
        }
        Ok(Offset {
            uptime_ms: d.i64()?,
            wall_adj_ms: d.i64()?,
        })
    }
}
