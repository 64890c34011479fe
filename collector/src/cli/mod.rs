//! The query and maintenance subcommands (`sessions`, `devices`, `status`, `presence`,
//! `roams`, `failed-joins`, `trends`, `clients`, `prune`, `expire`): their arguments, checked into the read side's filters, and their
//! output. Queries open the database read-only (never create, migrate or write it); `prune`
//! and `expire` write through the [`Writer`] like `run` does. A bad argument is a
//! [`CmdError::Usage`] (one line, exit 2).

pub mod render;

use std::io::Write as _;
use std::path::PathBuf;

use anyhow::Context as _;
use clap::{Args, Subcommand};

use crate::config::{Config, Flags};
use crate::read::clients::{self, ClientsQuery, Period, TrendBy, TrendQuery};
use crate::read::devices::{self, DeviceFilter};
use crate::read::failed_joins::{self, CountBy, FailedJoinFilter};
use crate::read::names::Names;
use crate::read::presence::{self, PresenceQuery};
use crate::read::roams::{self, RoamFilter};
use crate::read::sessions::{self, SessionFilter};
use crate::read::{status, Now, ReadDb, ReadError, Scope};
use crate::store::postgres::PgStore;
use crate::store::sqlite::SqliteStore;
use crate::store::{DbLocator, SchemaError, Store};
use crate::timefmt::parse_time;
use crate::writer::Writer;
use render::Format;

/// Options every subcommand takes.
#[derive(Debug, Clone, Default, Args)]
pub struct Common {
    /// TOML configuration file (default: wifisess-collector.toml if present).
    #[arg(long, value_name = "PATH")]
    pub config: Option<PathBuf>,
    /// Database: an SQLite file (default wifisess.db) or postgres://user@host/db.
    #[arg(long, value_name = "PATH|URL")]
    pub db: Option<PathBuf>,
}

/// The query and maintenance subcommands.
#[derive(Debug, Clone, Subcommand)]
pub enum Query {
    /// List sessions, newest start first. Times: RFC 3339, a date, now, or -2h / -7d.
    Sessions(SessionsArgs),
    /// List devices: online, last seen, open and dangling sessions, seq gaps, agent version and
    /// health (events dropped, reconnects, outbox depth).
    Devices {
        #[command(flatten)]
        common: Common,
        /// Output format.
        #[arg(long, value_enum, default_value_t)]
        format: Format,
    },
    /// Open sessions now: count, clients, longest and median duration, dangling, limits.
    Status {
        #[command(flatten)]
        common: Common,
        /// Only the devices of this organization.
        #[arg(long, value_name = "O")]
        org: Option<String>,
        /// Only this device (id or name).
        #[arg(long, value_name = "D", conflicts_with = "group")]
        device: Option<String>,
        /// Only the devices of this group.
        #[arg(long, value_name = "G")]
        group: Option<String>,
        /// Output format.
        #[arg(long, value_enum, default_value_t)]
        format: Format,
    },
    /// Attendance: per client, minutes connected to the group's devices within [from, to].
    Presence(PresenceArgs),
    /// Roams: a client's session ending on one AP and starting on another AP of the same
    /// organization within `roam_window_s` (default 10 s), or overlapping it. Newest first;
    /// with --mac the client's chain, oldest first; with --pairs counted per (from, to) AP.
    /// GAP is the new session's start minus the old one's stop (negative: they overlapped).
    Roams(RoamsArgs),
    /// Failed joins: stations that associated but were never authorized (a wrong passphrase,
    /// a refused EAP login). Newest first; with --by counted per device, SSID or client.
    FailedJoins(FailedJoinsArgs),
    /// Trends from the hourly and daily aggregates (kept `aggregate_retention_days`, longer
    /// than raw sessions): sessions started, distinct clients, connected minutes, bytes, roams
    /// and failed joins per hour or day, in total or per device or SSID.
    Trends(TrendsArgs),
    /// The clients report: distinct client MACs per day or week (weeks start on Monday, UTC)
    /// of an organization, group, device or SSID, exact from the per-day client sets.
    Clients(ClientsArgs),
    /// Delete closed sessions that stopped more than N days ago.
    Prune {
        #[command(flatten)]
        common: Common,
        /// Age in days (of the stop time).
        #[arg(long, value_name = "N")]
        days: u32,
        /// Print what would be deleted; change nothing.
        #[arg(long)]
        dry_run: bool,
    },
    /// Close the open sessions of devices silent for H hours (reason `expired`).
    Expire {
        #[command(flatten)]
        common: Common,
        /// Silence in hours (default: `expire_hours` of the configuration, 4).
        #[arg(long, value_name = "H", conflicts_with = "force")]
        hours: Option<u32>,
        /// Print what would be closed; change nothing.
        #[arg(long)]
        dry_run: bool,
        /// Close every open session now (reason `forced`), e.g. before maintenance.
        #[arg(long)]
        force: bool,
    },
}

/// `sessions` arguments (SPEC §5.3).
#[derive(Debug, Clone, Args)]
pub struct SessionsArgs {
    #[command(flatten)]
    pub common: Common,
    /// Only open sessions.
    #[arg(long, conflicts_with = "closed")]
    pub open: bool,
    /// Only closed sessions.
    #[arg(long)]
    pub closed: bool,
    /// Device id or name; repeat for several.
    #[arg(long, value_name = "D")]
    pub device: Vec<String>,
    /// Device group.
    #[arg(long, value_name = "G")]
    pub group: Option<String>,
    /// Organization.
    #[arg(long, value_name = "O")]
    pub org: Option<String>,
    /// Client MAC (aa:bb:cc:dd:ee:ff, aa-bb-…, aabbccddeeff).
    #[arg(long, value_name = "M")]
    pub mac: Option<String>,
    /// SSID, exact.
    #[arg(long, value_name = "S")]
    pub ssid: Option<String>,
    /// Started at or after T.
    #[arg(long, value_name = "T", allow_hyphen_values = true)]
    pub start_after: Option<String>,
    /// Started before T.
    #[arg(long, value_name = "T", allow_hyphen_values = true)]
    pub start_before: Option<String>,
    /// Stopped at or after T (excludes open sessions).
    #[arg(long, value_name = "T", allow_hyphen_values = true)]
    pub stop_after: Option<String>,
    /// Stopped before T (excludes open sessions).
    #[arg(long, value_name = "T", allow_hyphen_values = true)]
    pub stop_before: Option<String>,
    /// At most N rows.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub limit: Option<u32>,
    /// Output format.
    #[arg(long, value_enum, default_value_t)]
    pub format: Format,
}

/// Which devices a report covers (as `sessions`).
#[derive(Debug, Clone, Default, Args)]
pub struct ScopeArgs {
    /// Device id or name; repeat for several.
    #[arg(long, value_name = "D")]
    pub device: Vec<String>,
    /// Device group.
    #[arg(long, value_name = "G")]
    pub group: Option<String>,
    /// Organization.
    #[arg(long, value_name = "O", visible_alias = "organization")]
    pub org: Option<String>,
}

/// `roams` arguments (SPEC §7).
#[derive(Debug, Clone, Args)]
pub struct RoamsArgs {
    #[command(flatten)]
    pub common: Common,
    #[command(flatten)]
    pub scope: ScopeArgs,
    /// Client MAC: its chain of roams, oldest first.
    #[arg(long, value_name = "M")]
    pub mac: Option<String>,
    /// An SSID the client left or joined.
    #[arg(long, value_name = "S")]
    pub ssid: Option<String>,
    /// Arrived at or after T (RFC 3339, a date, now, or -2h / -7d).
    #[arg(long, value_name = "T", allow_hyphen_values = true)]
    pub from: Option<String>,
    /// Arrived before T.
    #[arg(long, value_name = "T", allow_hyphen_values = true)]
    pub to: Option<String>,
    /// Count roams per pair of APs (who bounces clients between whom), most first.
    #[arg(long)]
    pub pairs: bool,
    /// At most N rows (pairs with --pairs).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub limit: Option<u32>,
    /// Output format.
    #[arg(long, value_enum, default_value_t)]
    pub format: Format,
}

/// `failed-joins` arguments (SPEC §7).
#[derive(Debug, Clone, Args)]
pub struct FailedJoinsArgs {
    #[command(flatten)]
    pub common: Common,
    #[command(flatten)]
    pub scope: ScopeArgs,
    /// Client MAC.
    #[arg(long, value_name = "M")]
    pub mac: Option<String>,
    /// SSID, exact.
    #[arg(long, value_name = "S")]
    pub ssid: Option<String>,
    /// Associated at or after T.
    #[arg(long, value_name = "T", allow_hyphen_values = true)]
    pub from: Option<String>,
    /// Associated before T.
    #[arg(long, value_name = "T", allow_hyphen_values = true)]
    pub to: Option<String>,
    /// Count per `device`, `ssid` or `client`, most first (instead of listing them).
    #[arg(long, value_name = "BY")]
    pub by: Option<String>,
    /// At most N rows.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub limit: Option<u32>,
    /// Output format.
    #[arg(long, value_enum, default_value_t)]
    pub format: Format,
}

/// `trends` arguments (SPEC §7).
#[derive(Debug, Clone, Args)]
pub struct TrendsArgs {
    #[command(flatten)]
    pub common: Common,
    #[command(flatten)]
    pub scope: ScopeArgs,
    /// SSID, exact.
    #[arg(long, value_name = "S")]
    pub ssid: Option<String>,
    /// Step: `hour` or `day` (UTC).
    #[arg(long, value_name = "P", default_value = "hour")]
    pub period: String,
    /// One series in `total`, or one per `device` or `ssid`.
    #[arg(long, value_name = "BY", default_value = "total")]
    pub by: String,
    /// From T (rounded down to the period; default 48 hours or 30 days before --to).
    #[arg(long, value_name = "T", allow_hyphen_values = true)]
    pub from: Option<String>,
    /// To T, exclusive (default now). At most 5 000 points per series.
    #[arg(long, value_name = "T", allow_hyphen_values = true)]
    pub to: Option<String>,
    /// Output format.
    #[arg(long, value_enum, default_value_t)]
    pub format: Format,
}

/// `clients` arguments (SPEC §7).
#[derive(Debug, Clone, Args)]
pub struct ClientsArgs {
    #[command(flatten)]
    pub common: Common,
    #[command(flatten)]
    pub scope: ScopeArgs,
    /// SSID, exact.
    #[arg(long, value_name = "S")]
    pub ssid: Option<String>,
    /// `day` or `week` (weeks start on Monday, UTC).
    #[arg(long, value_name = "P", default_value = "day")]
    pub period: String,
    /// From T (rounded down to the period; default 30 days or 12 weeks before --to).
    #[arg(long, value_name = "T", allow_hyphen_values = true)]
    pub from: Option<String>,
    /// To T, exclusive (default now).
    #[arg(long, value_name = "T", allow_hyphen_values = true)]
    pub to: Option<String>,
    /// Output format.
    #[arg(long, value_enum, default_value_t)]
    pub format: Format,
}

/// `presence` arguments (SPEC §5.3).
#[derive(Debug, Clone, Args)]
pub struct PresenceArgs {
    #[command(flatten)]
    pub common: Common,
    /// Device group.
    #[arg(long, value_name = "G")]
    pub group: String,
    /// Window start.
    #[arg(long, value_name = "T", allow_hyphen_values = true)]
    pub from: String,
    /// Window end.
    #[arg(long, value_name = "T", allow_hyphen_values = true)]
    pub to: String,
    /// `present` needs at least M minutes connected.
    #[arg(long, value_name = "M", default_value_t = 0)]
    pub min_minutes: u32,
    /// CSV `mac,label` naming clients; listed clients not seen appear as absent.
    #[arg(long, value_name = "FILE.csv")]
    pub labels: Option<PathBuf>,
    /// Output format.
    #[arg(long, value_enum, default_value_t)]
    pub format: Format,
}

impl Query {
    /// The `--config` / `--db` flags, for [`crate::config::load`].
    pub fn flags(&self) -> Flags {
        let c = match self {
            Query::Sessions(a) => &a.common,
            Query::Presence(a) => &a.common,
            Query::Roams(a) => &a.common,
            Query::FailedJoins(a) => &a.common,
            Query::Trends(a) => &a.common,
            Query::Clients(a) => &a.common,
            Query::Devices { common, .. }
            | Query::Status { common, .. }
            | Query::Prune { common, .. }
            | Query::Expire { common, .. } => common,
        };
        Flags {
            config: c.config.clone(),
            db: c.db.clone(),
            ..Flags::default()
        }
    }
}

/// Why a subcommand failed.
#[derive(Debug, thiserror::Error)]
pub enum CmdError {
    /// A bad argument: one line, exit code 2.
    #[error("{0}")]
    Usage(String),
    /// A runtime failure (database, output): exit code 1.
    #[error(transparent)]
    Runtime(#[from] anyhow::Error),
}

fn usage<T>(msg: impl Into<String>) -> Result<T, CmdError> {
    Err(CmdError::Usage(msg.into()))
}

fn read_err(e: ReadError) -> CmdError {
    match e {
        // A missing file, an empty one or another schema version: the operator's to fix.
        ReadError::Open(e) => CmdError::Usage(format!("--db: {e}")),
        e => CmdError::Runtime(anyhow::Error::new(e).context("querying the database")),
    }
}

fn time(opt: &str, v: &Option<String>, now_ms: i64) -> Result<Option<i64>, CmdError> {
    v.as_deref()
        .map(|s| parse_time(s, now_ms).map_err(|e| CmdError::Usage(format!("--{opt}: {e}"))))
        .transpose()
}

/// The database for a query: read-only, its rows completed with the configuration's labels
/// file and OUI registry (`labels_file`, `oui_file`) as they are now.
fn open_read(cfg: &Config, now_ms: i64) -> Result<ReadDb, CmdError> {
    let db = &cfg.db;
    let mut r = ReadDb::open(db).map_err(|e| match e {
        ReadError::Open(e) => CmdError::Usage(format!("--db {}: {e}", db.display())),
        e => CmdError::Runtime(anyhow::Error::new(e).context(format!("opening {}", db.display()))),
    })?;
    r.set_names(Names::new(cfg.labels_file.clone(), cfg.oui_file.clone()).current(now_ms));
    Ok(r)
}

/// The database for `prune` / `expire`: a writer like `run`'s (an SQLite file must exist
/// already).
fn open_writer(cfg: &Config) -> Result<Writer, CmdError> {
    if let DbLocator::Sqlite(p) = &cfg.db {
        if !p.exists() {
            return usage(format!(
                "--db: {} does not exist (run the collector first, or pass --db)",
                p.display()
            ));
        }
    }
    let store = crate::store::open(&cfg.db, &cfg.mqtt_client_id())
        .with_context(|| format!("opening database {}", cfg.db.display()))?;
    Ok(Writer::new(store, &cfg.topic_prefix, cfg.inventory()))
}

fn print(out: &str) -> Result<(), CmdError> {
    let mut o = std::io::stdout().lock();
    o.write_all(out.as_bytes())
        .and_then(|_| o.flush())
        .context("writing to stdout")
        .map_err(CmdError::Runtime)
}

/// Checks `args` into a [`SessionFilter`] at `now_ms`; names that match no device, group or
/// organization are usage errors (a typo should not look like "no sessions").
///
/// # Errors
/// [`CmdError::Usage`] naming the option.
pub fn session_filter(
    db: &ReadDb,
    a: &SessionsArgs,
    now_ms: i64,
) -> Result<SessionFilter, CmdError> {
    check_devices(db, &a.device)?;
    check_scope(db, a.group.as_deref(), a.org.as_deref())?;
    let mac = parse_mac(&a.mac)?;
    Ok(SessionFilter {
        open: if a.open {
            Some(true)
        } else if a.closed {
            Some(false)
        } else {
            None
        },
        devices: a.device.clone(),
        group: a.group.clone(),
        organization: a.org.clone(),
        mac,
        ssid: a.ssid.clone(),
        start_after_ms: time("start-after", &a.start_after, now_ms)?,
        start_before_ms: time("start-before", &a.start_before, now_ms)?,
        stop_after_ms: time("stop-after", &a.stop_after, now_ms)?,
        stop_before_ms: time("stop-before", &a.stop_before, now_ms)?,
        limit: a.limit,
        after: None,
        id: None,
    })
}

fn check_devices(db: &ReadDb, devs: &[String]) -> Result<(), CmdError> {
    for d in devs {
        if !devices::exists(db, d).map_err(read_err)? {
            return usage(format!("--device: no device with id or name {d:?}"));
        }
    }
    Ok(())
}

fn parse_mac(m: &Option<String>) -> Result<Option<String>, CmdError> {
    match m {
        None => Ok(None),
        Some(m) => Ok(Some(
            m.parse::<wifisess_wire::MacAddr>()
                .map_err(|_| CmdError::Usage(format!("--mac: not a MAC address: {m:?}")))?
                .to_string(),
        )),
    }
}

/// Checks `a` into a [`Scope`]: names that match nothing are usage errors.
fn scope(db: &ReadDb, a: &ScopeArgs) -> Result<Scope, CmdError> {
    check_devices(db, &a.device)?;
    check_scope(db, a.group.as_deref(), a.org.as_deref())?;
    Ok(Scope {
        devices: a.device.clone(),
        group: a.group.clone(),
        organization: a.org.clone(),
    })
}

/// `--period` of a series, one of `allowed`.
fn period(v: &str, allowed: &[Period]) -> Result<Period, CmdError> {
    let names: Vec<&str> = allowed.iter().map(|p| p.as_str()).collect();
    Period::parse(v)
        .filter(|p| allowed.contains(p))
        .ok_or_else(|| CmdError::Usage(format!("--period: expected {}: {v:?}", names.join(" or "))))
}

/// `--from` / `--to` of a series of `p`, defaults and the size check of [`clients::range`].
fn series_range(
    p: Period,
    from: &Option<String>,
    to: &Option<String>,
    now_ms: i64,
) -> Result<(i64, i64), CmdError> {
    let (f, t) = (time("from", from, now_ms)?, time("to", to, now_ms)?);
    clients::range(p, f, t, now_ms).map_err(|e| CmdError::Usage(format!("--from/--to: {e}")))
}

fn check_scope(db: &ReadDb, group: Option<&str>, org: Option<&str>) -> Result<(), CmdError> {
    if let Some(g) = group {
        if !devices::group_exists(db, g).map_err(read_err)? {
            return usage(format!("--group: no device is in group {g:?}"));
        }
    }
    if let Some(o) = org {
        if !devices::organization_exists(db, o).map_err(read_err)? {
            return usage(format!("--org: no device belongs to organization {o:?}"));
        }
    }
    Ok(())
}

/// Runs one subcommand against `cfg` at `now_ms`, printing to stdout.
///
/// # Errors
/// [`CmdError::Usage`] for bad arguments, [`CmdError::Runtime`] otherwise.
pub fn execute(cfg: &Config, cmd: &Query, now_ms: i64) -> Result<(), CmdError> {
    let now = Now {
        now_ms,
        dangling_ms: i64::from(cfg.dangling_minutes) * 60_000,
    };
    match cmd {
        Query::Sessions(a) => {
            let db = open_read(cfg, now_ms)?;
            let f = session_filter(&db, a, now_ms)?;
            let rows = sessions::list(&db, &f, now).map_err(read_err)?;
            let limits = status::status(&db, &DeviceFilter::default(), now, &cfg.max_open_sessions)
                .map_err(read_err)?;
            let notes = render::over_limit_notes(&limits.organizations);
            print(&render::sessions(&rows, a.format))?;
            if a.format == Format::Table {
                print(&notes)?;
            } else {
                eprint!("{notes}");
            }
        }
        Query::Devices { format, .. } => {
            let db = open_read(cfg, now_ms)?;
            let rows = devices::list(&db, &DeviceFilter::default(), now).map_err(read_err)?;
            print(&render::devices(&rows, *format))?;
        }
        Query::Status {
            org,
            device,
            group,
            format,
            ..
        } => {
            let db = open_read(cfg, now_ms)?;
            if let Some(d) = device {
                if !devices::exists(&db, d).map_err(read_err)? {
                    return usage(format!("--device: no device with id or name {d:?}"));
                }
            }
            check_scope(&db, group.as_deref(), org.as_deref())?;
            let scope = DeviceFilter {
                organization: org.clone(),
                group: group.clone(),
                device: device.clone(),
            };
            let r = status::status(&db, &scope, now, &cfg.max_open_sessions).map_err(read_err)?;
            print(&render::status(&r, *format))?;
        }
        Query::Presence(a) => {
            let from_ms = time("from", &Some(a.from.clone()), now_ms)?.unwrap_or(now_ms);
            let to_ms = time("to", &Some(a.to.clone()), now_ms)?.unwrap_or(now_ms);
            if from_ms >= to_ms {
                return usage("--from must be before --to");
            }
            let labels = match &a.labels {
                None => Default::default(),
                Some(p) => {
                    let text = std::fs::read_to_string(p).map_err(|e| {
                        CmdError::Usage(format!("--labels: cannot read {}: {e}", p.display()))
                    })?;
                    presence::parse_labels(&text)
                        .map_err(|e| CmdError::Usage(format!("--labels: {}: {e}", p.display())))?
                }
            };
            let db = open_read(cfg, now_ms)?;
            check_scope(&db, Some(&a.group), None)?;
            let q = PresenceQuery {
                group: a.group.clone(),
                organization: None,
                from_ms,
                to_ms,
                min_minutes: a.min_minutes,
            };
            let rows = presence::presence(&db, &q, now_ms, &labels).map_err(read_err)?;
            print(&render::presence(&rows, a.format))?;
        }
        Query::Roams(a) => {
            let mac = parse_mac(&a.mac)?;
            let (after_ms, before_ms) =
                (time("from", &a.from, now_ms)?, time("to", &a.to, now_ms)?);
            let db = open_read(cfg, now_ms)?;
            let sc = scope(&db, &a.scope)?;
            let f = RoamFilter {
                devices: sc.devices,
                group: sc.group,
                organization: sc.organization,
                mac,
                ssid: a.ssid.clone(),
                after_ms,
                before_ms,
                limit: a.limit,
            };
            if a.pairs {
                let rows = roams::pairs(&db, &f).map_err(read_err)?;
                print(&render::roam_pairs(&rows, a.format))?;
            } else {
                let rows = roams::list(&db, &f).map_err(read_err)?;
                print(&render::roams(&rows, a.format))?;
            }
        }
        Query::FailedJoins(a) => {
            let mac = parse_mac(&a.mac)?;
            let by = match &a.by {
                None => None,
                Some(v) => Some(CountBy::parse(v).ok_or_else(|| {
                    CmdError::Usage(format!("--by: expected device, ssid or client: {v:?}"))
                })?),
            };
            let (after_ms, before_ms) =
                (time("from", &a.from, now_ms)?, time("to", &a.to, now_ms)?);
            let db = open_read(cfg, now_ms)?;
            let f = FailedJoinFilter {
                scope: scope(&db, &a.scope)?,
                mac,
                ssid: a.ssid.clone(),
                after_ms,
                before_ms,
                limit: a.limit,
            };
            match by {
                Some(by) => {
                    let rows = failed_joins::counts(&db, &f, by).map_err(read_err)?;
                    print(&render::failed_join_counts(&rows, a.format))?;
                }
                None => {
                    let rows = failed_joins::list(&db, &f).map_err(read_err)?;
                    print(&render::failed_joins(&rows, a.format))?;
                }
            }
        }
        Query::Trends(a) => {
            let p = period(&a.period, &[Period::Hour, Period::Day])?;
            let by = TrendBy::parse(&a.by).ok_or_else(|| {
                CmdError::Usage(format!("--by: expected total, device or ssid: {:?}", a.by))
            })?;
            let (from_ms, to_ms) = series_range(p, &a.from, &a.to, now_ms)?;
            let db = open_read(cfg, now_ms)?;
            let q = TrendQuery {
                period: p,
                from_ms,
                to_ms,
                scope: scope(&db, &a.scope)?,
                ssid: a.ssid.clone(),
                by,
            };
            let rows = clients::trends(&db, &q).map_err(read_err)?;
            print(&render::trends(&rows, a.format))?;
        }
        Query::Clients(a) => {
            let p = period(&a.period, &[Period::Day, Period::Week])?;
            let (from_ms, to_ms) = series_range(p, &a.from, &a.to, now_ms)?;
            let db = open_read(cfg, now_ms)?;
            let q = ClientsQuery {
                period: p,
                from_ms,
                to_ms,
                scope: scope(&db, &a.scope)?,
                ssid: a.ssid.clone(),
            };
            let rows = clients::clients(&db, &q).map_err(read_err)?;
            print(&render::clients(&rows, a.format))?;
        }
        Query::Prune { days, dry_run, .. } => {
            let cutoff = crate::jobs::retention_cutoff(now_ms, *days);
            let r = if *dry_run {
                read_store(&cfg.db)?.prune_plan(cutoff)
            } else {
                crate::jobs::prune(&mut open_writer(cfg)?, cutoff)
            }
            .context("pruning")?;
            print(&render::prune(&r, cutoff, *dry_run))?;
        }
        Query::Expire {
            hours,
            dry_run,
            force,
            ..
        } => {
            let hours = hours.unwrap_or(cfg.expire_hours);
            let (items, reason) = match (force, dry_run) {
                (true, true) => (read_store(&cfg.db)?.force_plan(now_ms), "forced"),
                (true, false) => (
                    crate::jobs::force(&mut open_writer(cfg)?, now_ms).map(|r| r.0),
                    "forced",
                ),
                (false, true) => (
                    read_store(&cfg.db)?.expire_plan(crate::jobs::silent_since(now_ms, hours)),
                    "expired",
                ),
                (false, false) => (
                    crate::jobs::expire(&mut open_writer(cfg)?, now_ms, hours).map(|r| r.0),
                    "expired",
                ),
            };
            print(&render::closed(
                &items.context("closing sessions")?,
                reason,
                *dry_run,
            ))?;
        }
    }
    Ok(())
}

/// The store's plans on a read-only connection (dry runs change nothing).
fn read_store(db: &DbLocator) -> Result<Box<dyn Store>, CmdError> {
    let usage = |e: SchemaError| CmdError::Usage(format!("--db {}: {e}", db.display()));
    Ok(match db {
        DbLocator::Sqlite(path) => Box::new(SqliteStore::from_connection(
            crate::store::sqlite::schema::open_read_only(path).map_err(usage)?,
        )),
        DbLocator::Postgres(url) => Box::new(PgStore::open_read_only(url).map_err(usage)?),
    })
}
