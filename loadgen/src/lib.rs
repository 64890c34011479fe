//! wifisess-loadgen: simulated access points publishing real wire-format batches to a real
//! broker, and the measurements of the collector benchmarks (docs/BENCHMARKS.md).
//!
//! Layers: [`sim`] (the workload model, pure), [`fleet`] (the agent's own outbox per device
//! on a simulated clock, pure), [`publish`] (MQTT, the agent's link task), [`drain`] (the
//! broker baseline), [`storebench`] (raw SQLite and store-path baselines), [`monitor`]
//! (committed events and stalls of a running collector), [`bulk`] (a big database fast),
//! [`querybench`] (the collector's queries on it).

pub mod bulk;
pub mod drain;
pub mod fleet;
pub mod monitor;
pub mod publish;
pub mod querybench;
pub mod sim;
pub mod storebench;

/// Milliseconds since the Unix epoch now.
pub fn now_ms() -> i64 {
    wifisess_collector::timefmt::now_ms()
}
