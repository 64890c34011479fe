//! wifisess-agent: reads stations from the kernel over nl80211, derives sessions, publishes
//! them as CBOR over MQTT.

pub mod config;
pub mod error;
pub mod nl80211;
pub mod outbox;
pub mod publish;
pub mod run;
pub mod session;
pub mod station;
pub mod uci;
