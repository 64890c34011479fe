//! wifisess collector: MQTT ingest into SQLite with merge semantics, and session queries.
//!
//! Layers: [`merge`] (pure-ish: decoded messages + receive time → rows in a transaction),
//! [`schema`] (migrations), [`query`] (read side), [`ingest`] (MQTT and the writer thread),
//! [`config`] (TOML + environment + flags), [`jobs`] (retention, expiry), [`presence`]
//! (attendance), [`render`] (tables, JSON lines, CSV), [`cli`] (the query subcommands).

pub mod cli;
pub mod config;
pub mod http;
pub mod ingest;
pub mod jobs;
pub mod logger;
pub mod merge;
pub mod presence;
pub mod query;
pub mod render;
pub mod schema;
pub mod timefmt;
