//! `wifisess-collector`: argument parsing and exit codes; the work is in the library.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Parser, Subcommand, ValueEnum};
use wifisess_collector::config::{self, Flags};
use wifisess_collector::{ingest, query, schema};

#[derive(Parser)]
#[command(
    name = "wifisess-collector",
    version,
    about = "Wi-Fi session collector: MQTT → SQLite"
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
        /// SQLite database file (default wifisess.db).
        #[arg(long, value_name = "PATH")]
        db: Option<PathBuf>,
        /// Broker URL, mqtt://host:port.
        #[arg(long, value_name = "URL")]
        broker: Option<String>,
        /// HTTP API and dashboard address (default 127.0.0.1:8080; `off` disables it).
        #[arg(long, value_name = "ADDR")]
        http: Option<String>,
    },
    /// List sessions (more filters come with a later issue).
    Sessions {
        /// TOML configuration file.
        #[arg(long, value_name = "PATH")]
        config: Option<PathBuf>,
        /// SQLite database file.
        #[arg(long, value_name = "PATH")]
        db: Option<PathBuf>,
        /// Only open sessions.
        #[arg(long, conflicts_with = "closed")]
        open: bool,
        /// Only closed sessions.
        #[arg(long)]
        closed: bool,
        /// Output format.
        #[arg(long, value_enum, default_value_t = Format::Table)]
        format: Format,
    },
}

#[derive(Clone, Copy, ValueEnum)]
enum Format {
    Table,
    Json,
}

fn main() -> ExitCode {
    wifisess_collector::logger::init();
    let cli = Cli::parse();
    let (flags, cmd) = match cli.cmd {
        Cmd::Run {
            config,
            db,
            broker,
            http,
        } => (
            Flags {
                config,
                db,
                broker,
                http,
            },
            None,
        ),
        Cmd::Sessions {
            config,
            db,
            open,
            closed,
            format,
        } => (
            Flags {
                config,
                db,
                ..Flags::default()
            },
            Some((open, closed, format)),
        ),
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
        None => ingest::run(&cfg),
        Some((open, closed, format)) => sessions(&cfg, open, closed, format),
    };
    match r {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("wifisess-collector: {e:#}");
            ExitCode::from(1)
        }
    }
}

fn sessions(cfg: &config::Config, open: bool, closed: bool, format: Format) -> anyhow::Result<()> {
    let conn =
        schema::open(&cfg.db).with_context(|| format!("opening database {}", cfg.db.display()))?;
    let filter = query::SessionFilter {
        open: if open {
            Some(true)
        } else if closed {
            Some(false)
        } else {
            None
        },
        ..query::SessionFilter::default()
    };
    let rows = query::list_sessions(
        &conn,
        &filter,
        ingest::now_ms(),
        i64::from(cfg.dangling_minutes) * 60_000,
    )
    .context("querying sessions")?;
    let mut out = String::new();
    match format {
        Format::Json => {
            for r in &rows {
                out.push_str(&serde_json::to_string(r).context("encoding JSON")?);
                out.push('\n');
            }
        }
        Format::Table => out = query::table(&rows),
    }
    use std::io::Write as _;
    std::io::stdout()
        .lock()
        .write_all(out.as_bytes())
        .context("writing to stdout")?;
    Ok(())
}
