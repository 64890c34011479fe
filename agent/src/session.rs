//! The session tracker: a pure state machine from station observations to session events.
//!
//! No I/O and no clock: every input comes with the current time ([`Stamp`]), and outputs are
//! pushed into a caller-provided `Vec`. The nl80211 reader feeds it; the publisher and the
//! `watch` command consume its events.

use wifisess_wire::{Event, MacAddr, Stamp};

use crate::station::{Iface, StationInfo};

/// What the tracker is told. Each input comes with the time it was observed.
#[derive(Clone, Copy, Debug)]
pub enum Input<'a> {
    /// The complete current set of AP interfaces, after discovery or an interface event.
    /// Sessions on interfaces missing from it stop with `interface_down`.
    Interfaces(&'a [Iface]),
    /// A complete `GET_STATION` dump of one interface: refreshes counters, starts sessions an
    /// event missed, and stops sessions whose station is gone (`vanished`).
    Dump {
        /// The interface dumped.
        ifindex: u32,
        /// Every station the kernel listed.
        stations: &'a [StationInfo],
    },
    /// A `NEW_STATION` event: a client associated (usually not authorized yet).
    NewStation {
        /// Interface it associated to.
        ifindex: u32,
        /// What the event carried.
        station: &'a StationInfo,
    },
    /// The answer to an [`Output::Probe`]: the station now, or `None` if the kernel no
    /// longer has it.
    Probed {
        /// Interface probed.
        ifindex: u32,
        /// Station probed.
        mac: MacAddr,
        /// Its state, if it still exists.
        station: Option<&'a StationInfo>,
    },
    /// A `DEL_STATION` event, with the final counters when the kernel included them.
    DelStation {
        /// Interface it left.
        ifindex: u32,
        /// What the event carried.
        station: &'a StationInfo,
    },
    /// Nothing happened but time passed; call at [`Tracker::next_deadline`].
    Tick,
}

/// An event with the absolute time it happened (its `seq` is still 0: the outbox numbers it).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Timed {
    /// When the agent observed it.
    pub at: Stamp,
    /// The event.
    pub event: Event,
}

/// What the tracker asks for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Output {
    /// A session event to publish.
    Event(Timed),
    /// Query this one station (`GET_STATION` by MAC) and feed the answer back as
    /// [`Input::Probed`]: it associated but is not authorized yet, and the kernel multicasts
    /// nothing when hostapd authorizes it.
    Probe {
        /// Interface.
        ifindex: u32,
        /// Station.
        mac: MacAddr,
    },
}
