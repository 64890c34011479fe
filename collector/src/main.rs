//! `wifisess-collector`: argument parsing and exit codes; the work is in the library.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use wifisess_collector::config::{self, Flags};
use wifisess_collector::{app, cli};

#[derive(Parser)]
#[command(
    name = "wifisess-collector",
    version,
    about = "Wi-Fi session collector: MQTT → SQLite or PostgreSQL"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Subscribe to the broker and store sessions until SIGINT/SIGTERM.
    Run {
        /// TOML configuration file (default: wifisess-collector.toml if present).
        #[arg(long, value_name = "PATH")]
        config: Option<PathBuf>,
        /// Database: an SQLite file (default wifisess.db) or postgres://user@host/db.
        #[arg(long, value_name = "PATH|URL")]
        db: Option<PathBuf>,
        /// Broker URL, mqtt://host:port.
        #[arg(long, value_name = "URL")]
        broker: Option<String>,
        /// HTTP API and dashboard address (default 127.0.0.1:8080; `off` disables it).
        #[arg(long, value_name = "ADDR")]
        http: Option<String>,
        /// Share the broker's messages with the other collectors of this group
        /// ($share/NAME/…; needs a PostgreSQL --db).
        #[arg(long, value_name = "NAME")]
        share_group: Option<String>,
        /// This collector's name in its share group (default: the host name); keep it across
        /// restarts.
        #[arg(long, value_name = "NAME")]
        instance: Option<String>,
    },
    #[command(flatten)]
    Query(cli::Query),
}

fn main() -> ExitCode {
    wifisess_collector::logger::init();
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) if !e.use_stderr() => {
            let _ = e.print();
            return ExitCode::SUCCESS;
        }
        Err(e) if e.kind() == clap::error::ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
            let _ = e.print();
            return ExitCode::from(2);
        }
        Err(e) => {
            // One line: clap's message without its usage block.
            let text = e.render().to_string();
            let line = text.lines().next().unwrap_or("bad arguments");
            eprintln!(
                "wifisess-collector: {} (see --help)",
                line.trim_start_matches("error: ")
            );
            return ExitCode::from(2);
        }
    };
    let (flags, cmd) = match cli.cmd {
        Cmd::Run {
            config,
            db,
            broker,
            http,
            share_group,
            instance,
        } => (
            Flags {
                config,
                db,
                broker,
                http,
                share_group,
                instance,
            },
            None,
        ),
        Cmd::Query(q) => (q.flags(), Some(q)),
    };
    let cfg = match config::load(&flags, &|k| std::env::var(k).ok()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("wifisess-collector: {e}");
            return ExitCode::from(2);
        }
    };
    if cmd.is_none() {
        if let Err(e) = wifisess_collector::http::listen_addr(&cfg) {
            eprintln!("wifisess-collector: {e}");
            return ExitCode::from(2);
        }
    }
    let r = match cmd {
        None => app::run(&cfg),
        Some(q) => match cli::execute(&cfg, &q, wifisess_collector::timefmt::now_ms()) {
            Err(cli::CmdError::Usage(e)) => {
                eprintln!("wifisess-collector: {e}");
                return ExitCode::from(2);
            }
            r => r.map_err(anyhow::Error::from),
        },
    };
    match r {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("wifisess-collector: {e:#}");
            ExitCode::from(1)
        }
    }
}
