//! The v1 messages: a [`Batch`] of [`Event`]s on `{prefix}/{device}/events`, and a [`Status`]
//! on `{prefix}/{device}/status`. Keys are the `#[n(..)]` numbers; `docs/wire-v1.cddl` is the
//! normative description of the same layout.

use alloc::string::String;
use alloc::vec::Vec;

use minicbor::decode::{self, Decoder};
use minicbor::encode::{self, Encoder, Write};
use minicbor::{Decode, Encode};

use crate::codec::bounded;
use crate::types::{BootId, MacAddr, Offset, SessionId, Stamp};

/// The payload of an events publish: one device's events, oldest first.
#[derive(Clone, Debug, PartialEq, Eq, Encode, Decode)]
#[cbor(map)]
pub struct Batch {
    /// The publishing device; must equal the device id in the topic.
    #[n(0)]
    #[cbor(decode_with = "bounded::device_id")]
    pub device_id: String,
    /// Kernel boot id of the access point: a new one means it rebooted.
    #[n(1)]
    pub boot_id: BootId,
    /// Random per agent run; with `seq` it identifies every event exactly once.
    #[n(2)]
    pub agent_epoch: u32,
    /// Wall-clock ms of the batch's base stamp (the first event's time).
    #[n(3)]
    pub base_wall_ms: u64,
    /// Uptime ms of the batch's base stamp.
    #[n(4)]
    pub base_uptime_ms: u64,
    /// Whether the agent's wall clock was synchronised (NTP) when it built the batch.
    #[n(5)]
    pub clock_synced: bool,
    /// The events, in `seq` order.
    #[n(6)]
    #[cbor(decode_with = "bounded::events")]
    pub events: Vec<Event>,
}

impl Batch {
    /// The base stamp every event offset is relative to.
    pub fn base(&self) -> Stamp {
        Stamp {
            wall_ms: self.base_wall_ms,
            uptime_ms: self.base_uptime_ms,
        }
    }

    /// Sets the base stamp (normally the first event's time) before events are pushed.
    pub fn set_base(&mut self, base: Stamp) {
        self.base_wall_ms = base.wall_ms;
        self.base_uptime_ms = base.uptime_ms;
    }

    /// Appends `event` happening at `at`, storing its time as an offset from the base.
    /// Returns `false` (and appends nothing) if `at` is too far from the base to express.
    pub fn push(&mut self, at: Stamp, mut event: Event) -> bool {
        match Offset::between(self.base(), at) {
            Some(off) => {
                event.set_offset(off);
                self.events.push(event);
                true
            }
            None => false,
        }
    }

    /// The absolute time of an event of this batch, or `None` if its offset overflows.
    pub fn stamp_of(&self, event: &Event) -> Option<Stamp> {
        event.offset().resolve(self.base())
    }
}

/// One thing that happened on the access point. Encoded as the array `[kind, {fields}]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// kind 0: a client's session began.
    Start(Start),
    /// kind 1: interim counters of an open session.
    Update(Update),
    /// kind 2: a session ended.
    Stop(Stop),
    /// kind 3: the complete list of open sessions, sent after every (re)connect.
    Sync(Sync),
    /// kind 4: a station associated but never authorized (a wrong passphrase): no session.
    FailedJoin(FailedJoin),
    /// A kind this decoder does not know (from a newer agent). Its body was skipped but for
    /// `seq` (key 0) and `at` (key 1), which every kind carries, so the collector counts its
    /// seq as received (no false gap) and knows its time.
    Unknown {
        /// The unknown kind number.
        kind: u32,
        /// Its sequence number, if its body is a map with an unsigned integer at key 0.
        seq: Option<u64>,
        /// Its time relative to the batch (key 1; zero if absent).
        at: Offset,
    },
}

impl Event {
    pub(crate) const START: u32 = 0;
    pub(crate) const UPDATE: u32 = 1;
    pub(crate) const STOP: u32 = 2;
    pub(crate) const SYNC: u32 = 3;
    pub(crate) const FAILED_JOIN: u32 = 4;

    /// The kind number on the wire.
    pub(crate) fn kind(&self) -> u32 {
        match self {
            Event::Start(_) => Self::START,
            Event::Update(_) => Self::UPDATE,
            Event::Stop(_) => Self::STOP,
            Event::Sync(_) => Self::SYNC,
            Event::FailedJoin(_) => Self::FAILED_JOIN,
            Event::Unknown { kind, .. } => *kind,
        }
    }

    /// The event's sequence number (0 for an [`Event::Unknown`] without one).
    pub fn seq(&self) -> u64 {
        match self {
            Event::Start(e) => e.seq,
            Event::Update(e) => e.seq,
            Event::Stop(e) => e.seq,
            Event::Sync(e) => e.seq,
            Event::FailedJoin(e) => e.seq,
            Event::Unknown { seq, .. } => seq.unwrap_or(0),
        }
    }

    /// Sets the sequence number (the agent's outbox numbers events as it accepts them).
    pub fn set_seq(&mut self, seq: u64) {
        match self {
            Event::Start(e) => e.seq = seq,
            Event::Update(e) => e.seq = seq,
            Event::Stop(e) => e.seq = seq,
            Event::Sync(e) => e.seq = seq,
            Event::FailedJoin(e) => e.seq = seq,
            Event::Unknown { seq: s, .. } => *s = Some(seq),
        }
    }

    /// The event's time relative to its batch.
    pub fn offset(&self) -> Offset {
        match self {
            Event::Start(e) => e.at,
            Event::Update(e) => e.at,
            Event::Stop(e) => e.at,
            Event::Sync(e) => e.at,
            Event::FailedJoin(e) => e.at,
            Event::Unknown { at, .. } => *at,
        }
    }

    pub(crate) fn set_offset(&mut self, at: Offset) {
        match self {
            Event::Start(e) => e.at = at,
            Event::Update(e) => e.at = at,
            Event::Stop(e) => e.at = at,
            Event::Sync(e) => e.at = at,
            Event::FailedJoin(e) => e.at = at,
            Event::Unknown { at: a, .. } => *a = at,
        }
    }

    /// The session this event is about (`None` for sync, failed join and unknown events).
    pub fn session_id(&self) -> Option<SessionId> {
        match self {
            Event::Start(e) => Some(e.id),
            Event::Update(e) => Some(e.id),
            Event::Stop(e) => Some(e.id),
            Event::Sync(_) | Event::FailedJoin(_) | Event::Unknown { .. } => None,
        }
    }

    /// The order in which an agent's overflowing outbox drops events: first rank 0, interim
    /// updates (a later update or the stop carries their counters); then rank 1, failed joins
    /// and an update that carries a hostname (records an operator wants, but not session
    /// records); last rank 2, starts, stops and syncs.
    pub fn drop_rank(&self) -> u8 {
        match self {
            Event::Update(u) if u.hostname.is_none() => 0,
            Event::Update(_) | Event::FailedJoin(_) => 1,
            _ => 2,
        }
    }

    /// Plain interim updates (rank 0 of [`Event::drop_rank`]) are dropped first.
    pub fn is_droppable(&self) -> bool {
        self.drop_rank() == 0
    }
}

impl<C> Encode<C> for Event {
    fn encode<W: Write>(
        &self,
        e: &mut Encoder<W>,
        ctx: &mut C,
    ) -> Result<(), encode::Error<W::Error>> {
        e.array(2)?;
        match self {
            Event::Start(x) => e.u32(Self::START)?.encode_with(x, ctx)?,
            Event::Update(x) => e.u32(Self::UPDATE)?.encode_with(x, ctx)?,
            Event::Stop(x) => e.u32(Self::STOP)?.encode_with(x, ctx)?,
            Event::Sync(x) => e.u32(Self::SYNC)?.encode_with(x, ctx)?,
            Event::FailedJoin(x) => e.u32(Self::FAILED_JOIN)?.encode_with(x, ctx)?,
            Event::Unknown { kind, seq, at } => {
                let has_at = *at != Offset::default();
                e.u32(*kind)?
                    .map(u64::from(seq.is_some()) + u64::from(has_at))?;
                if let Some(s) = seq {
                    e.u8(0)?.u64(*s)?;
                }
                if has_at {
                    e.u8(1)?.encode_with(at, ctx)?;
                }
                e
            }
        };
        Ok(())
    }
}

impl<'b, C> Decode<'b, C> for Event {
    fn decode(d: &mut Decoder<'b>, ctx: &mut C) -> Result<Self, decode::Error> {
        let p = d.position();
        if d.array()? != Some(2) {
            return Err(decode::Error::message("an event must be the array [kind, body]").at(p));
        }
        Ok(match d.u32()? {
            Self::START => Event::Start(d.decode_with(ctx)?),
            Self::UPDATE => Event::Update(d.decode_with(ctx)?),
            Self::STOP => Event::Stop(d.decode_with(ctx)?),
            Self::SYNC => Event::Sync(d.decode_with(ctx)?),
            Self::FAILED_JOIN => Event::FailedJoin(d.decode_with(ctx)?),
            kind => {
                let (seq, at) = unknown_body(d, ctx)?;
                Event::Unknown { kind, seq, at }
            }
        })
    }
}

/// The `seq` (key 0) and `at` (key 1) of an event body of an unknown kind, skipping the rest
/// (a body that is not a map, or keys of other types, are skipped whole). Bounded by the
/// input: every entry read consumes bytes.
fn unknown_body<C>(
    d: &mut Decoder<'_>,
    ctx: &mut C,
) -> Result<(Option<u64>, Offset), decode::Error> {
    use minicbor::data::Type;
    if d.datatype()? != Type::Map {
        d.skip()?;
        return Ok((None, Offset::default()));
    }
    let len = d.map()?;
    let (mut seq, mut at) = (None, Offset::default());
    let mut read = 0u64;
    loop {
        match len {
            Some(n) if read >= n => break,
            None if d.datatype()? == Type::Break => {
                d.skip()?;
                break;
            }
            _ => {}
        }
        let key = match d.datatype()? {
            Type::U8 | Type::U16 | Type::U32 | Type::U64 => Some(d.u64()?),
            _ => {
                d.skip()?;
                None
            }
        };
        match (key, d.datatype()?) {
            (Some(0), Type::U8 | Type::U16 | Type::U32 | Type::U64) => seq = Some(d.u64()?),
            (Some(1), _) => {
                // A key-1 value that is not an offset is skipped like any other.
                let mut probe = d.clone();
                match probe.decode_with::<C, Offset>(ctx) {
                    Ok(o) => {
                        at = o;
                        *d = probe;
                    }
                    Err(_) => d.skip()?,
                }
            }
            _ => d.skip()?,
        }
        read += 1;
    }
    Ok((seq, at))
}

/// A session began: the station is associated and authorized.
#[derive(Clone, Debug, PartialEq, Eq, Encode, Decode)]
#[cbor(map)]
pub struct Start {
    /// Per-run sequence number, from 1, strictly increasing.
    #[n(0)]
    pub seq: u64,
    /// When the agent saw the session start (authorized), relative to the batch.
    #[n(1)]
    pub at: Offset,
    /// The session's stable id.
    #[n(2)]
    pub id: SessionId,
    /// The client's MAC (or its HMAC pseudonym in MAC privacy mode).
    #[n(3)]
    pub mac: MacAddr,
    /// The access point interface, e.g. `phy0-ap0`.
    #[n(4)]
    #[cbor(decode_with = "bounded::ifname")]
    pub ifname: String,
    /// The SSID as raw bytes (802.11 does not promise UTF-8).
    #[n(5)]
    #[cbor(encode_with = "minicbor::bytes::encode", decode_with = "bounded::ssid")]
    pub ssid: Vec<u8>,
    /// The interface's BSSID.
    #[n(6)]
    pub bssid: MacAddr,
    /// Operating frequency of the interface, MHz.
    #[n(7)]
    pub freq_mhz: u32,
    /// How long before `at` the station associated, ms: session start = `at` − `age_ms`.
    #[n(8)]
    pub age_ms: u64,
    /// Signal strength of the last received frame, dBm.
    #[n(9)]
    pub signal_dbm: Option<i8>,
    /// The client's hostname from the access point's DHCP leases, when the lease was there
    /// before the start (usually it comes later, with an [`Update`]). Absent in starts of
    /// older agents.
    #[n(10)]
    #[cbor(decode_with = "bounded::opt_hostname", nil = "bounded::none")]
    pub hostname: Option<String>,
}

/// Interim counters of an open session (cumulative, never decreasing).
#[derive(Clone, Debug, PartialEq, Eq, Encode, Decode)]
#[cbor(map)]
pub struct Update {
    /// Sequence number.
    #[n(0)]
    pub seq: u64,
    /// Time of the reading, relative to the batch.
    #[n(1)]
    pub at: Offset,
    /// The session.
    #[n(2)]
    pub id: SessionId,
    /// Bytes received from the client.
    #[n(3)]
    pub rx_bytes: u64,
    /// Bytes sent to the client.
    #[n(4)]
    pub tx_bytes: u64,
    /// Packets received from the client.
    #[n(5)]
    pub rx_packets: u64,
    /// Packets sent to the client.
    #[n(6)]
    pub tx_packets: u64,
    /// Average signal strength, dBm.
    #[n(7)]
    pub signal_avg_dbm: Option<i8>,
    /// Time since the client's last activity at `at`, ms.
    #[n(8)]
    pub inactive_ms: Option<u32>,
    /// The client's hostname, on the update that follows when the agent learns it (or a
    /// new one) from the DHCP leases; absent otherwise, and in updates of older agents.
    #[n(9)]
    #[cbor(decode_with = "bounded::opt_hostname", nil = "bounded::none")]
    pub hostname: Option<String>,
}

/// Why the agent ended a session. Encoded as a small integer; unknown codes survive decoding.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum StopReason {
    /// 0: the kernel reported the station gone (`DEL_STATION`): disassociation, deauth, timeout.
    Left,
    /// 1: the station was missing from a periodic dump (an event was missed).
    Vanished,
    /// 2: the access point interface went away (`wifi reload`, radio down).
    InterfaceDown,
    /// 3: the client moved to another interface of the same device.
    RoamedLocal,
    /// A code from a newer agent.
    Other(u8),
}

impl StopReason {
    /// The code on the wire.
    pub fn code(self) -> u8 {
        match self {
            StopReason::Left => 0,
            StopReason::Vanished => 1,
            StopReason::InterfaceDown => 2,
            StopReason::RoamedLocal => 3,
            StopReason::Other(c) => c,
        }
    }

    /// The reason for a wire code.
    pub fn from_code(c: u8) -> StopReason {
        match c {
            0 => StopReason::Left,
            1 => StopReason::Vanished,
            2 => StopReason::InterfaceDown,
            3 => StopReason::RoamedLocal,
            c => StopReason::Other(c),
        }
    }

    /// The name used in logs, JSON and the collector's database.
    pub fn as_str(self) -> &'static str {
        match self {
            StopReason::Left => "left",
            StopReason::Vanished => "vanished",
            StopReason::InterfaceDown => "interface_down",
            StopReason::RoamedLocal => "roamed_local",
            StopReason::Other(_) => "other",
        }
    }
}

impl<C> Encode<C> for StopReason {
    fn encode<W: Write>(
        &self,
        e: &mut Encoder<W>,
        _: &mut C,
    ) -> Result<(), encode::Error<W::Error>> {
        e.u8(self.code())?.ok()
    }
}

impl<'b, C> Decode<'b, C> for StopReason {
    fn decode(d: &mut Decoder<'b>, _: &mut C) -> Result<Self, decode::Error> {
        d.u8().map(StopReason::from_code)
    }
}

/// A session ended. Carries the final counters.
#[derive(Clone, Debug, PartialEq, Eq, Encode, Decode)]
#[cbor(map)]
pub struct Stop {
    /// Sequence number.
    #[n(0)]
    pub seq: u64,
    /// When the agent emitted the stop, relative to the batch.
    #[n(1)]
    pub at: Offset,
    /// The session.
    #[n(2)]
    pub id: SessionId,
    /// Why it ended.
    #[n(3)]
    pub reason: StopReason,
    /// How long before `at` the session really ended, ms: stop = `at` − `age_ms`. Non-zero
    /// for stops held back by the rejoin grace or found by a dump.
    #[n(4)]
    pub age_ms: u64,
    /// Final bytes received from the client.
    #[n(5)]
    pub rx_bytes: u64,
    /// Final bytes sent to the client.
    #[n(6)]
    pub tx_bytes: u64,
    /// Final packets received.
    #[n(7)]
    pub rx_packets: u64,
    /// Final packets sent.
    #[n(8)]
    pub tx_packets: u64,
    /// Average signal strength, dBm.
    #[n(9)]
    pub signal_avg_dbm: Option<i8>,
    /// Time since the client's last activity when it ended, ms.
    #[n(10)]
    pub inactive_ms: Option<u32>,
}

/// The ids of every session the agent holds open, so the collector can close the rest.
#[derive(Clone, Debug, PartialEq, Eq, Encode, Decode)]
#[cbor(map)]
pub struct Sync {
    /// Sequence number.
    #[n(0)]
    pub seq: u64,
    /// When the list was taken, relative to the batch.
    #[n(1)]
    pub at: Offset,
    /// Every open session.
    #[n(2)]
    #[cbor(decode_with = "bounded::sync_ids")]
    pub ids: Vec<SessionId>,
}

/// A station associated but never authorized (a wrong WPA passphrase, a handshake that did
/// not finish): it never became a session.
#[derive(Clone, Debug, PartialEq, Eq, Encode, Decode)]
#[cbor(map)]
pub struct FailedJoin {
    /// Sequence number.
    #[n(0)]
    pub seq: u64,
    /// When the agent gave the station up (it left, or was not authorized in time),
    /// relative to the batch.
    #[n(1)]
    pub at: Offset,
    /// The client's MAC (or its HMAC pseudonym in MAC privacy mode, as in [`Start`]).
    #[n(2)]
    pub mac: MacAddr,
    /// The access point interface it associated to.
    #[n(3)]
    #[cbor(decode_with = "bounded::ifname")]
    pub ifname: String,
    /// The interface's SSID as raw bytes.
    #[n(4)]
    #[cbor(encode_with = "minicbor::bytes::encode", decode_with = "bounded::ssid")]
    pub ssid: Vec<u8>,
    /// The interface's BSSID.
    #[n(5)]
    pub bssid: MacAddr,
    /// How long before `at` the station associated, ms: association = `at` − `age_ms`.
    #[n(6)]
    pub age_ms: u64,
}

/// An access point interface the agent watches.
#[derive(Clone, Debug, PartialEq, Eq, Encode, Decode)]
#[cbor(map)]
pub struct InterfaceInfo {
    /// Interface name.
    #[n(0)]
    #[cbor(decode_with = "bounded::ifname")]
    pub ifname: String,
    /// Kernel interface index.
    #[n(1)]
    pub ifindex: u32,
    /// BSSID (the interface's MAC).
    #[n(2)]
    pub bssid: MacAddr,
    /// SSID bytes.
    #[n(3)]
    #[cbor(encode_with = "minicbor::bytes::encode", decode_with = "bounded::ssid")]
    pub ssid: Vec<u8>,
    /// Frequency, MHz (0 if unknown).
    #[n(4)]
    pub freq_mhz: u32,
}

/// The retained status of an agent: online on every connect, offline as Last Will or on a
/// graceful stop.
#[derive(Clone, Debug, PartialEq, Eq, Encode, Decode)]
#[cbor(map)]
pub struct Status {
    /// The device; must equal the device id in the topic.
    #[n(0)]
    #[cbor(decode_with = "bounded::device_id")]
    pub device_id: String,
    /// Kernel boot id.
    #[n(1)]
    pub boot_id: BootId,
    /// Agent run.
    #[n(2)]
    pub agent_epoch: u32,
    /// Online (connected) or offline (Last Will, or graceful stop).
    #[n(3)]
    pub online: bool,
    /// True when an offline status was published by a clean shutdown, not the Last Will.
    #[n(4)]
    pub graceful: bool,
    /// Wall-clock ms when the status was made.
    #[n(5)]
    pub wall_ms: u64,
    /// Uptime ms when the status was made.
    #[n(6)]
    pub uptime_ms: u64,
    /// Whether the wall clock was synchronised.
    #[n(7)]
    pub clock_synced: bool,
    /// Agent version, e.g. `0.1.0`.
    #[n(8)]
    #[cbor(decode_with = "bounded::text")]
    pub agent_version: String,
    /// Human name announced by the agent's configuration.
    #[n(9)]
    #[cbor(decode_with = "bounded::opt_text", nil = "bounded::none")]
    pub name: Option<String>,
    /// Organization announced by the agent's configuration.
    #[n(10)]
    #[cbor(decode_with = "bounded::opt_text", nil = "bounded::none")]
    pub organization: Option<String>,
    /// Group (site, building) announced by the agent's configuration.
    #[n(11)]
    #[cbor(decode_with = "bounded::opt_text", nil = "bounded::none")]
    pub group: Option<String>,
    /// The access point interfaces the agent watches.
    #[n(12)]
    #[cbor(decode_with = "bounded::interfaces")]
    pub interfaces: Vec<InterfaceInfo>,
    /// Events acknowledged by the broker in this run.
    #[n(13)]
    pub published: u64,
    /// Events dropped by outbox overflow in this run.
    #[n(14)]
    pub dropped: u64,
    /// Broker reconnects in this run.
    #[n(15)]
    pub reconnects: u64,
    /// Events waiting in the outbox.
    #[n(16)]
    pub outbox_depth: u32,
    /// Stations that associated but never authorized (failed WPA handshakes), this run.
    #[n(17)]
    pub failed_joins: u64,
    /// Stations the session table had no room for, this run.
    #[n(18)]
    pub tracker_overflow: u64,
    /// Of `dropped`: interim updates (a later update or the stop carries their counters).
    /// Absent in statuses of older agents: 0.
    #[n(19)]
    #[cbor(default)]
    pub dropped_updates: u64,
    /// Of `dropped`: starts, stops and syncs (every event that is not an update): session
    /// records lost. Absent in statuses of older agents: 0.
    #[n(20)]
    #[cbor(default)]
    pub dropped_starts_stops: u64,
    /// Events restored from the spool (written at the previous run's SIGTERM) when this run
    /// started. Absent in statuses of older agents: 0.
    #[n(21)]
    #[cbor(default)]
    pub spool_restored: u64,
}
