//! wifisess-agent: reads stations from the kernel over nl80211, derives sessions, publishes
//! them as CBOR over MQTT.
//!
//! Bottom up (no module imports one above it):
//! - [`clock`] (wall time, CLOCK_BOOTTIME, sync state), [`host`] (boot id, device id),
//!   [`error`], [`logger`]: the ground floor.
//! - [`station`], [`leases`] (hostnames from DHCP leases), [`session`] (the tracker),
//!   [`outbox`]: pure state, time passed in.
//! - [`config`]: the settings table, the UCI reader, loading and checking.
//! - [`nl80211`]: the kernel's interfaces, stations and events.
//! - [`run`]: the agent's loop, its sources, the publisher, the spool and signals.
//! - [`cli`]: the commands, their arguments and exit codes.

pub mod cli;
pub mod clock;
pub mod config;
pub mod error;
pub mod host;
pub mod leases;
pub mod logger;
pub mod nl80211;
pub mod outbox;
pub mod run;
pub mod session;
pub mod station;
