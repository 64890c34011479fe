//! The merge rules of SPEC §5.1 as plain functions, with no SQL and no I/O: the rows an
//! event touches, the event and its receive time in; the changed rows out. The store merges,
//! it does not replay: the same event twice, or a device's events in any order, give the same
//! rows (property test `tests/merge_prop.rs`).
//!
//! - [`session`]: one session row (facts + derived stop) and the stop rules.
//! - [`device`]: a device's merge state (boots, clock origins, epochs, seq runs, syncs, status).
//! - [`merge`]: applying a message to a device's rows ([`merge::DeviceTx`]); what it still
//!   needs from the store is a value ([`merge::Needs`]), not a query.
//! - [`message`]: topic routing, decoding and the device-id check of one MQTT message.
//! - [`failed_join`]: a failed join (kind 4) as a row of its own.
//! - [`derived`]: the dirty marks a write leaves for the derived data (roams, trends).
//! - [`roams`]: which sessions of a client form a roam (SPEC §7), over its stored sessions.
//! - [`trends`]: hourly buckets per device and SSID, and the per-day client sets.

pub mod derived;
pub mod device;
pub mod failed_join;
pub mod merge;
pub mod message;
pub mod roams;
pub mod session;
pub mod trends;

pub use device::DeviceState;
pub use merge::{DeviceTx, Needs};
pub use session::Session;

/// Order of two events of one boot: (uptime ms, seq). Uptime is CLOCK_BOOTTIME, so it is
/// comparable across agent restarts of the same boot; seq breaks ties inside one agent run.
pub type Key = (i64, i64);

/// Why a session stopped: reported by the agent (final) or inferred by the collector
/// (provisional: undone when the agent later reports the session open).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Reason {
    /// Agent: the station left (`DEL_STATION`).
    Left,
    /// Agent: the station was missing from a dump.
    Vanished,
    /// Agent: the AP interface went down or away.
    InterfaceDown,
    /// Agent: the client moved to another interface of the same device.
    RoamedLocal,
    /// Agent: a reason code this collector does not know (from a newer agent).
    Other,
    /// Inferred: the device came back with a new boot id.
    DeviceReboot,
    /// Inferred: a sync of the device did not list the session.
    Missing,
    /// Inferred: a later session of the same client on the same device began.
    Superseded,
    /// Inferred: the device was silent for `expire_hours` (the expiry job).
    Expired,
    /// Inferred: closed by the operator (`expire --force`).
    Forced,
}

impl Reason {
    /// Every reason, for parsing and documentation.
    pub const ALL: [Reason; 10] = [
        Reason::Left,
        Reason::Vanished,
        Reason::InterfaceDown,
        Reason::RoamedLocal,
        Reason::Other,
        Reason::DeviceReboot,
        Reason::Missing,
        Reason::Superseded,
        Reason::Expired,
        Reason::Forced,
    ];

    /// The name in the database, JSON and CSV.
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::Left => "left",
            Reason::Vanished => "vanished",
            Reason::InterfaceDown => "interface_down",
            Reason::RoamedLocal => "roamed_local",
            Reason::Other => "other",
            Reason::DeviceReboot => "device_reboot",
            Reason::Missing => "missing",
            Reason::Superseded => "superseded",
            Reason::Expired => "expired",
            Reason::Forced => "forced",
        }
    }

    /// The reason stored as `s`; an unknown name (a newer collector's) reads as `Other`.
    pub fn parse(s: &str) -> Reason {
        Reason::ALL
            .into_iter()
            .find(|r| r.as_str() == s)
            .unwrap_or(Reason::Other)
    }

    /// Whether the collector inferred it (provisional) rather than the agent reporting it.
    pub fn is_inferred(self) -> bool {
        matches!(
            self,
            Reason::DeviceReboot
                | Reason::Missing
                | Reason::Superseded
                | Reason::Expired
                | Reason::Forced
        )
    }
}

impl From<wifisess_wire::StopReason> for Reason {
    fn from(r: wifisess_wire::StopReason) -> Reason {
        use wifisess_wire::StopReason as W;
        match r {
            W::Left => Reason::Left,
            W::Vanished => Reason::Vanished,
            W::InterfaceDown => Reason::InterfaceDown,
            W::RoamedLocal => Reason::RoamedLocal,
            W::Other(_) => Reason::Other,
        }
    }
}

/// What ingest counts (kept per name in the store, shown in `/metrics`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Counter {
    /// Session events merged.
    Events,
    /// Events whose time could not be resolved (offset overflow): skipped.
    EventsBadTime,
    /// Events of a kind this collector does not know (from a newer agent): skipped, their
    /// seq still counted (no false gap).
    EventsUnknownKind,
    /// Messages on a topic that is not `{prefix}/{device}/events|status`.
    RejectedTopic,
    /// Messages whose payload names another device than the topic.
    RejectedSpoofed,
    /// Messages whose payload did not decode (all kinds).
    Undecodable,
    /// Messages whose payload did not decode, by the decoder's error kind.
    UndecodableKind(&'static str),
    /// Messages the store could not place (a constraint violation), dropped after logging.
    StoreRejected,
}

impl Counter {
    /// The counter's stored name.
    pub fn name(&self) -> std::borrow::Cow<'static, str> {
        match self {
            Counter::Events => "events".into(),
            Counter::EventsBadTime => "events_bad_time".into(),
            Counter::EventsUnknownKind => "events_unknown_kind".into(),
            Counter::RejectedTopic => "rejected_topic".into(),
            Counter::RejectedSpoofed => "rejected_spoofed".into(),
            Counter::Undecodable => "undecodable".into(),
            Counter::UndecodableKind(k) => format!("undecodable_{k}").into(),
            Counter::StoreRejected => "store_rejected".into(),
        }
    }
}

/// Counter increments of one transaction, summed per counter.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Counts(pub std::collections::BTreeMap<Counter, i64>);

impl Counts {
    /// Adds `n` to `c`.
    pub fn add(&mut self, c: Counter, n: i64) {
        if n != 0 {
            *self.0.entry(c).or_insert(0) += n;
        }
    }

    /// Adds every count of `other`.
    pub fn merge(&mut self, other: &Counts) {
        for (c, n) in &other.0 {
            self.add(*c, *n);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_round_trip_through_their_names() {
        for r in Reason::ALL {
            assert_eq!(Reason::parse(r.as_str()), r);
        }
        assert_eq!(Reason::parse("from_the_future"), Reason::Other);
        assert!(Reason::Expired.is_inferred() && !Reason::Left.is_inferred());
    }
}

#[cfg(test)]
mod merge_tests;
