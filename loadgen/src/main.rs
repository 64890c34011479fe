//! `wifisess-loadgen`: argument parsing and the summaries; the work is in the library.
//!
//! Every subcommand prints readable lines and, last, one machine-readable line
//! `SUMMARY {json}` for the benchmark scripts. Exit codes: 0 ok, 1 failure, 2 bad usage.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use serde_json::json;
use wifisess_agent::config::settings;
use wifisess_agent::outbox::OutboxConfig;
use wifisess_loadgen::bulk::Shape;
use wifisess_loadgen::fleet::FleetConfig;
use wifisess_loadgen::publish::{parse_broker, per_s, PublishConfig};
use wifisess_loadgen::sim::{Mix, SimConfig};
use wifisess_loadgen::{bulk, drain, monitor, publish, querybench, storebench};

#[derive(Parser)]
#[command(
    name = "wifisess-loadgen",
    version,
    about = "Load generator and measurements for the wifisess collector benchmarks",
    long_about = "Load generator and measurements for the wifisess collector benchmarks \
                  (docs/BENCHMARKS.md). Simulated access points publish real wire-format \
                  batches through the agent's own outbox; baselines drain the broker or \
                  write SQLite directly; a bulk loader and a query benchmark cover big \
                  databases. Each subcommand ends with one line `SUMMARY {json}`."
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

/// The simulated fleet and its event stream (identical for every subcommand given the same
/// values, so the baselines see the same stream as the collector).
#[derive(Args, Debug, Clone)]
struct StreamArgs {
    /// Access points to simulate.
    #[arg(long, default_value_t = 1000)]
    devices: usize,
    /// Client slots per access point.
    #[arg(long, default_value_t = 30)]
    clients: usize,
    /// Events to generate in all (starts, updates, stops).
    #[arg(long, default_value_t = 300_000)]
    events: u64,
    /// Simulated events per second, all devices together. Sets the simulated clock and so
    /// how many events share a batch; with --paced also the real publishing rate.
    #[arg(long, default_value_t = 20_000.0)]
    rate: f64,
    /// Probability that a step on a connected client ends its session (else an interim
    /// update); an empty slot always starts a new session.
    #[arg(long, default_value_t = 0.1)]
    churn: f64,
    /// Seed of the workload.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Device ids are this prefix and a 5-digit number.
    #[arg(long, default_value = "lg-")]
    device_prefix: String,
    /// Organizations the devices announce (device i: org-(group % orgs)).
    #[arg(long, default_value_t = 10)]
    orgs: usize,
    /// Groups the devices announce (device i: group-(i % groups)).
    #[arg(long, default_value_t = 100)]
    groups: usize,
    /// The agents' batch_ms: how long an event may wait for companions in the outbox.
    #[arg(long, default_value_t = 100)]
    batch_ms: u64,
    /// Most events per batch (the agent's default).
    #[arg(long, default_value_t = 64)]
    max_batch_events: usize,
}

impl StreamArgs {
    fn fleet(&self) -> FleetConfig {
        FleetConfig {
            sim: SimConfig {
                devices: self.devices.max(1),
                clients: self.clients.max(1),
                churn: self.churn.clamp(0.0, 1.0),
                seed: self.seed,
                device_prefix: self.device_prefix.clone(),
                orgs: self.orgs.max(1),
                groups: self.groups.max(1),
            },
            events: self.events,
            rate: self.rate.max(0.001),
            outbox: OutboxConfig {
                max_batch_events: self.max_batch_events,
                ..OutboxConfig::new(
                    settings::default_number("outbox_capacity") as usize,
                    self.batch_ms,
                )
            },
        }
    }
}

/// The shape of a bulk-loaded database (bulk-load and query-bench must agree).
#[derive(Args, Debug, Clone)]
struct ShapeArgs {
    /// Organizations.
    #[arg(long, default_value_t = 10)]
    orgs: usize,
    /// Groups (device i is in group-(i % groups)).
    #[arg(long, default_value_t = 100)]
    groups: usize,
    /// Devices.
    #[arg(long, default_value_t = 10_000)]
    devices: usize,
    /// Distinct client MACs.
    #[arg(long, default_value_t = 200_000)]
    macs: u64,
    /// Days the closed sessions are spread over.
    #[arg(long, default_value_t = 90)]
    days: u64,
    /// The data ends this many days before now (e.g. 200 with --retention-days 180 elsewhere:
    /// everything expired).
    #[arg(long, default_value_t = 0)]
    end_days_ago: u64,
    /// Open sessions per device (the newest ones; 0: all closed).
    #[arg(long, default_value_t = 30)]
    open_per_device: u64,
    /// Device ids are this prefix and a 5-digit number.
    #[arg(long, default_value = "ap-")]
    device_prefix: String,
    /// Seed.
    #[arg(long, default_value_t = 1)]
    seed: u64,
}

impl ShapeArgs {
    fn shape(&self, sessions: u64) -> Shape {
        Shape {
            sessions,
            orgs: self.orgs,
            groups: self.groups,
            devices: self.devices,
            macs: self.macs,
            days: self.days,
            end_days_ago: self.end_days_ago,
            open_per_device: self.open_per_device,
            device_prefix: self.device_prefix.clone(),
            seed: self.seed,
        }
    }
}

#[derive(Subcommand)]
enum Cmd {
    /// Publish the simulated fleet to a broker: a retained online status per device, then
    /// the event batches (QoS 1) on {prefix}/{device}/events. Ends when the broker has
    /// acknowledged every event.
    Publish {
        #[command(flatten)]
        stream: StreamArgs,
        /// Broker, mqtt://HOST:PORT.
        #[arg(long, default_value = "mqtt://127.0.0.1:1883")]
        broker: String,
        /// Topic prefix.
        #[arg(long, default_value = "wifisess/v1")]
        prefix: String,
        /// MQTT connections the devices share (device i uses connection i % N); one per
        /// device would mean thousands of sockets and tasks in one process.
        #[arg(long, default_value_t = 10)]
        connections: usize,
        /// QoS 1 publishes in flight per connection.
        #[arg(long, default_value_t = 100)]
        inflight: u16,
        /// Publish in real time along the simulated clock (--rate events/s); without it,
        /// as fast as the broker acknowledges.
        #[arg(long)]
        paced: bool,
        /// Give up after this many seconds.
        #[arg(long, default_value_t = 600)]
        timeout: u64,
    },
    /// Broker baseline: subscribe to {prefix}/+/events with QoS 1, decode and count events
    /// until --expect-events arrived (no storage).
    Drain {
        /// Broker, mqtt://HOST:PORT.
        #[arg(long, default_value = "mqtt://127.0.0.1:1883")]
        broker: String,
        /// Topic prefix.
        #[arg(long, default_value = "wifisess/v1")]
        prefix: String,
        /// Stop after this many events.
        #[arg(long)]
        expect_events: u64,
        /// Create this (empty) file once subscribed, for scripts to wait on.
        #[arg(long, value_name = "PATH")]
        ready_file: Option<PathBuf>,
        /// Give up after this many seconds.
        #[arg(long, default_value_t = 600)]
        timeout: u64,
    },
    /// Storage baseline: the same stream as plain INSERT/UPDATE statements on the
    /// collector's schema in a fresh database, --rows-per-tx per transaction.
    RawSqlite {
        #[command(flatten)]
        stream: StreamArgs,
        /// Database file to create (replaced if it exists).
        #[arg(long, value_name = "PATH")]
        db: PathBuf,
        /// Events (rows written) per transaction.
        #[arg(long, default_value_t = 10_000)]
        rows_per_tx: u64,
    },
    /// Raw PostgreSQL baseline: the same events as plain batched statements (multi-row
    /// INSERT/UPDATE with unnest arrays) on the collector's PostgreSQL schema, no merge.
    RawPostgres {
        #[command(flatten)]
        stream: StreamArgs,
        /// postgres:// URL of an existing database (emptied first).
        #[arg(long, value_name = "URL")]
        db: String,
        /// Events per transaction.
        #[arg(long, default_value_t = 10_000)]
        rows_per_tx: u64,
    },
    /// The collector's store path without MQTT: the same batches through the collector's
    /// writer (wifisess_collector::writer::Writer::ingest: decode, merge core, SQLite store),
    /// --group messages per transaction.
    Store {
        #[command(flatten)]
        stream: StreamArgs,
        /// Database file to create (replaced if it exists), or a postgres:// URL of an
        /// existing database (emptied first).
        #[arg(long, value_name = "PATH|URL")]
        db: PathBuf,
        /// Topic prefix.
        #[arg(long, default_value = "wifisess/v1")]
        prefix: String,
        /// Messages per transaction (the collector's commit_max_messages, 2000 by default:
        /// under sustained load its groups fill up to it).
        #[arg(long, default_value_t = 2000)]
        group: usize,
    },
    /// Watch a running collector's database: when --expect-events events are committed,
    /// and the longest time no commit advanced the event counter (the stall).
    Monitor {
        /// The collector's database: an SQLite file or a postgres:// URL (the counter of
        /// every collector writing to it).
        #[arg(long, value_name = "PATH|URL")]
        db: PathBuf,
        /// Stop when the collector's `events` counter (events committed) grew by this much
        /// since the monitor started.
        #[arg(long)]
        expect_events: u64,
        /// Poll interval, ms.
        #[arg(long, default_value_t = 5)]
        interval_ms: u64,
        /// With a retention pass running: its retention_days, to tell when it is done
        /// (oldest stop no longer before now - days) and split stalls by it.
        #[arg(long)]
        retention_days: Option<u32>,
        /// Give up after this many seconds.
        #[arg(long, default_value_t = 600)]
        timeout: u64,
        /// Stop (exit 1, summary with "stuck": true) when no commit advanced the counter
        /// for this many seconds after the first one: the collector stopped ingesting.
        #[arg(long, default_value_t = 60)]
        stuck_after: u64,
    },
    /// Run retention on a database one transaction at a time, as the collector's writer
    /// does, and time every transaction (an ingest commit waits for at most one).
    RetentionSteps {
        /// The database (e.g. made by bulk-load --end-days-ago 200 --open-per-device 0).
        #[arg(long, value_name = "PATH")]
        db: PathBuf,
        /// Delete sessions that stopped more than this many days ago.
        #[arg(long, default_value_t = 180)]
        days: u32,
        /// Fixed batch size (5000 = the collector before adaptive batches); default: sized
        /// like the collector now does (jobs::BatchSizer, ~40 ms per transaction).
        #[arg(long)]
        fixed: Option<u32>,
    },
    /// Build a big database with the collector's schema directly (fast path: large
    /// transactions, journal off during the load, indexes rebuilt once at the end).
    BulkLoad {
        /// Session rows.
        #[arg(long, default_value_t = 1_000_000)]
        sessions: u64,
        #[command(flatten)]
        shape: ShapeArgs,
        /// Database file to create (replaced if it exists), or a postgres:// URL of an
        /// existing database (emptied first; rows sent with COPY, indexes built afterwards,
        /// then VACUUM (ANALYZE) and CHECKPOINT).
        #[arg(long, value_name = "PATH|URL")]
        db: PathBuf,
    },
    /// Run the collector's query functions on a bulk-loaded database (same shape flags as
    /// bulk-load) and print p50/p99/max per query.
    QueryBench {
        #[command(flatten)]
        shape: ShapeArgs,
        /// Database made by bulk-load: an SQLite file or a postgres:// URL.
        #[arg(long, value_name = "PATH|URL")]
        db: PathBuf,
        /// Runs per query (each with another device, group, client or day).
        #[arg(long, default_value_t = 200)]
        runs: usize,
    },
}

fn mix_json(m: Mix) -> serde_json::Value {
    json!({"starts": m.starts, "updates": m.updates, "stops": m.stops})
}

fn summary(v: serde_json::Value) {
    println!("SUMMARY {v}");
}

fn rt() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?)
}

fn run(cmd: Cmd) -> anyhow::Result<()> {
    match cmd {
        Cmd::Publish {
            stream,
            broker,
            prefix,
            connections,
            inflight,
            paced,
            timeout,
        } => {
            let (host, port) = parse_broker(&broker)?;
            let cfg = PublishConfig {
                host,
                port,
                prefix,
                connections,
                inflight,
                paced,
                timeout: Duration::from_secs(timeout),
                fleet: stream.fleet(),
            };
            let r = rt()?.block_on(publish::run(cfg))?;
            let secs = (r.last_ack_ms - r.first_publish_ms) as f64 / 1000.0;
            println!(
                "published {} events ({} starts, {} updates, {} stops) from {} devices x {} clients \
                 over {} connections",
                r.events, r.mix.starts, r.mix.updates, r.mix.stops, r.devices, r.clients,
                r.connections
            );
            println!(
                "  {} event batches ({:.2} events/batch, {} bytes, {:.1} bytes/event), {} statuses, \
                 {} publishes, {} reconnects",
                r.batches,
                r.events as f64 / r.batches.max(1) as f64,
                r.bytes,
                r.bytes as f64 / r.events.max(1) as f64,
                r.statuses,
                r.publishes,
                r.reconnects
            );
            println!(
                "  {secs:.3} s from the first publish to the last ack: {:.0} events/s, {:.0} batches/s \
                 ({:.1} simulated s)",
                r.events_per_s(),
                per_s(r.batches, r.first_publish_ms, r.last_ack_ms),
                r.simulated_s
            );
            summary(json!({
                "tool": "publish", "devices": r.devices, "clients": r.clients,
                "connections": r.connections, "events": r.events, "mix": mix_json(r.mix),
                "batches": r.batches, "statuses": r.statuses, "bytes": r.bytes,
                "publishes": r.publishes, "reconnects": r.reconnects,
                "first_publish_ms": r.first_publish_ms, "last_ack_ms": r.last_ack_ms,
                "events_per_s": r.events_per_s(), "simulated_s": r.simulated_s,
            }));
        }
        Cmd::Drain {
            broker,
            prefix,
            expect_events,
            ready_file,
            timeout,
        } => {
            let (host, port) = parse_broker(&broker)?;
            let r = rt()?.block_on(drain::run(drain::DrainConfig {
                host,
                port,
                prefix,
                expect_events,
                timeout: Duration::from_secs(timeout),
                ready_file,
            }))?;
            println!(
                "drained {} events in {} messages ({} bytes, {} undecodable): {:.0} events/s \
                 from the first to the last message",
                r.events,
                r.messages,
                r.bytes,
                r.undecodable,
                per_s(r.events, r.first_ms, r.last_ms)
            );
            summary(json!({
                "tool": "drain", "events": r.events, "messages": r.messages, "bytes": r.bytes,
                "undecodable": r.undecodable, "first_ms": r.first_ms, "last_ms": r.last_ms,
            }));
        }
        Cmd::RawSqlite {
            stream,
            db,
            rows_per_tx,
        } => {
            let start = wifisess_loadgen::now_ms() as u64;
            let r = storebench::raw(&stream.fleet(), &db, rows_per_tx, start)?;
            println!(
                "raw SQLite: {} events as plain statements in {} transactions of {}: {:.3} s, \
                 {:.0} events/s ({} session rows)",
                r.events,
                r.transactions,
                rows_per_tx,
                r.seconds,
                r.events_per_s(),
                r.sessions
            );
            summary(json!({
                "tool": "raw-sqlite", "events": r.events, "mix": mix_json(r.mix),
                "transactions": r.transactions, "seconds": r.seconds,
                "events_per_s": r.events_per_s(), "sessions": r.sessions,
            }));
        }
        Cmd::RawPostgres {
            stream,
            db,
            rows_per_tx,
        } => {
            let start = wifisess_loadgen::now_ms() as u64;
            let r = storebench::raw_postgres(&stream.fleet(), &db, rows_per_tx, start)?;
            println!(
                "raw PostgreSQL: {} events as batched statements in {} transactions of {}: \
                 {:.3} s, {:.0} events/s ({} session rows)",
                r.events,
                r.transactions,
                rows_per_tx,
                r.seconds,
                r.events_per_s(),
                r.sessions
            );
            summary(json!({
                "tool": "raw-postgres", "events": r.events, "mix": mix_json(r.mix),
                "transactions": r.transactions, "seconds": r.seconds,
                "events_per_s": r.events_per_s(), "sessions": r.sessions,
            }));
        }
        Cmd::Store {
            stream,
            db,
            prefix,
            group,
        } => {
            let start = wifisess_loadgen::now_ms() as u64;
            let r = storebench::store(&stream.fleet(), &db, &prefix, group, start)?;
            println!(
                "store path (writer: merge core + store): {} events in {} messages, {} transactions: \
                 {:.3} s, {:.0} events/s ({} session rows)",
                r.events,
                r.messages,
                r.transactions,
                r.seconds,
                r.events_per_s(),
                r.sessions
            );
            summary(json!({
                "tool": "store", "events": r.events, "mix": mix_json(r.mix),
                "messages": r.messages, "transactions": r.transactions, "seconds": r.seconds,
                "events_per_s": r.events_per_s(), "sessions": r.sessions,
            }));
        }
        Cmd::Monitor {
            db,
            expect_events,
            interval_ms,
            retention_days,
            timeout,
            stuck_after,
        } => {
            let cutoff = retention_days
                .map(|d| wifisess_collector::jobs::retention_cutoff(wifisess_loadgen::now_ms(), d));
            let r = monitor::run(&monitor::MonitorConfig {
                db,
                expect_events,
                interval: Duration::from_millis(interval_ms),
                timeout: Duration::from_secs(timeout),
                retention_cutoff_ms: cutoff,
                stuck_after: Duration::from_secs(stuck_after),
            })?;
            println!(
                "committed {} events; longest stall {} ms ({} ms during retention, {} ms \
                 otherwise); {} polls, slowest {} us",
                r.events,
                r.max_gap_ms,
                r.max_gap_retention_ms,
                r.max_gap_other_ms,
                r.polls,
                r.max_poll_us
            );
            summary(json!({
                "tool": "monitor", "events": r.events, "base": r.base, "first_commit_ms": r.first_commit_ms,
                "done_ms": r.done_ms, "max_gap_ms": r.max_gap_ms,
                "max_gap_end_ms": r.max_gap_end_ms,
                "max_gap_retention_ms": r.max_gap_retention_ms,
                "max_gap_other_ms": r.max_gap_other_ms,
                "retention_done_ms": r.retention_done_ms,
                "oldest_stop_at_start_ms": r.oldest_stop_at_start_ms,
                "polls": r.polls, "max_poll_us": r.max_poll_us,
                "last_change_ms": r.last_change_ms, "stuck": r.stuck,
                "backend_cpu_s": r.backend_cpu_s,
            }));
            if r.stuck {
                anyhow::bail!(
                    "the collector stopped committing: {} of {} events after {} s without \
                     progress",
                    r.events,
                    expect_events,
                    stuck_after
                );
            }
        }
        Cmd::RetentionSteps { db, days, fixed } => {
            let cutoff =
                wifisess_collector::jobs::retention_cutoff(wifisess_loadgen::now_ms(), days);
            let r = storebench::retention_steps(&db, cutoff, fixed)?;
            println!(
                "retention ({}): deleted {} sessions in {} transactions, {:.1} s; longest \
                 transaction {:.1} ms (number {}, {} sessions), median {:.1} ms, first \
                 {:.1} ms, {} over 100 ms",
                fixed.map_or("adaptive batches".to_owned(), |n| format!("batches of {n}")),
                r.deleted,
                r.steps,
                r.seconds,
                r.max_ms,
                r.max_at,
                r.max_batch,
                r.p50_ms,
                r.first_ms,
                r.over_100ms
            );
            summary(json!({
                "tool": "retention-steps", "fixed": fixed, "deleted": r.deleted,
                "steps": r.steps, "seconds": r.seconds, "max_ms": r.max_ms, "p50_ms": r.p50_ms,
                "max_at": r.max_at, "max_batch": r.max_batch, "first_ms": r.first_ms,
                "over_100ms": r.over_100ms,
            }));
        }
        Cmd::BulkLoad {
            sessions,
            shape,
            db,
        } => {
            let r = bulk::load(&shape.shape(sessions), &db, wifisess_loadgen::now_ms())?;
            println!(
                "bulk-loaded {} sessions ({} open) into {}: rows {:.1} s ({:.0}/s), indexes \
                 {:.1} s, vacuum+analyze {:.1} s, {} bytes ({} for the sessions, {:.0} per \
                 session)",
                r.sessions,
                r.open,
                wifisess_collector::store::DbLocator::parse(&db).display(),
                r.insert_s,
                r.sessions as f64 / r.insert_s.max(1e-9),
                r.index_s,
                r.analyze_s,
                r.bytes,
                r.session_bytes,
                r.session_bytes as f64 / r.sessions.max(1) as f64
            );
            summary(json!({
                "tool": "bulk-load", "sessions": r.sessions, "open": r.open,
                "insert_s": r.insert_s, "index_s": r.index_s, "analyze_s": r.analyze_s,
                "bytes": r.bytes, "session_bytes": r.session_bytes, "end_ms": r.end_ms,
            }));
        }
        Cmd::QueryBench { shape, db, runs } => {
            let stats = querybench::run(&db, &shape.shape(0), runs, wifisess_loadgen::now_ms())?;
            println!(
                "{:<36} {:>5} {:>9} {:>9} {:>9} {:>10}",
                "query", "runs", "p50 ms", "p99 ms", "max ms", "mean rows"
            );
            for s in &stats {
                println!(
                    "{:<36} {:>5} {:>9.2} {:>9.2} {:>9.2} {:>10.1}",
                    s.name, s.runs, s.p50_ms, s.p99_ms, s.max_ms, s.mean_rows
                );
            }
            let q: Vec<serde_json::Value> = stats
                .iter()
                .map(|s| {
                    json!({"query": s.name, "runs": s.runs, "p50_ms": s.p50_ms,
                           "p99_ms": s.p99_ms, "max_ms": s.max_ms, "mean_rows": s.mean_rows})
                })
                .collect();
            summary(json!({"tool": "query-bench", "queries": q}));
        }
    }
    Ok(())
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli.cmd) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("wifisess-loadgen: {e:#}");
            ExitCode::from(1)
        }
    }
}
