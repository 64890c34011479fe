//! wifisess collector: MQTT ingest with merge semantics into SQLite (or PostgreSQL), lifecycle
//! jobs, and the read side behind the CLI and the HTTP API.
//!
//! Data flows one way (docs/collector.md, "Layout"):
//! [`ingest`] (MQTT, acks) → [`writer`] → [`core`] (the merge rules, pure) → [`store`] (the
//! port and its adapters) ← [`read`] (rows and queries) ← [`cli`], [`http`]. [`app`] wires
//! them and owns shutdown; [`jobs`] are the lifecycle work the writer runs, [`derive`](mod@crate::derive) the
//! steps that keep the derived data (roams, trends) current; [`health`] is the progress
//! ingest reports and the API reads (created by `app`, imported by both).

pub mod app;
pub mod cli;
pub mod config;
pub mod core;
pub mod derive;
pub mod health;
pub mod http;
pub mod ingest;
pub mod jobs;
pub mod logger;
pub mod read;
pub mod store;
pub mod timefmt;
pub mod writer;
