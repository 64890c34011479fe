//! wifisess collector: MQTT ingest into SQLite with merge semantics, and session queries.
//!
//! Layers: [`merge`] (pure-ish: decoded messages + receive time → rows in a transaction),
//! [`schema`] (migrations), [`query`] (read side), [`ingest`] (MQTT and the writer thread),
//! [`config`] (TOML + environment + flags).

pub mod config;
pub mod http;
pub mod ingest;
pub mod logger;
pub mod merge;
pub mod query;
pub mod schema;
pub mod timefmt;
