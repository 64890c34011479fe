//! The store port: what the writer and the lifecycle jobs need from a database, as one trait
//! ([`Store`]) with an adapter per engine ([`sqlite`], [`postgres`]). The merge rules are not
//! here ([`crate::core`]): an adapter loads the rows a transaction needs, writes the rows the
//! core changed in bulk, and answers the jobs' queries.

pub mod postgres;
pub mod sqlite;

use std::path::{Path, PathBuf};

use serde::Serialize;

use std::collections::BTreeSet;

pub use crate::core::derived::{Marks, Span};
use crate::core::device::DeviceState;
pub use crate::core::device::Names;
pub use crate::core::failed_join::FailedJoin;
use crate::core::merge::{DeviceTx, Loaded, Needs};
pub use crate::core::roams::{Roam, RoamEnd};
pub use crate::core::trends::HourRow;
use crate::core::Counts;

pub mod derived_sql;

/// Where the collector's database is: `--db`, `[store] url` or `WIFISESS_DB`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DbLocator {
    /// An SQLite file (the embedded default).
    Sqlite(PathBuf),
    /// A PostgreSQL database, `postgres://…` or `postgresql://…` (libpq's URI form).
    Postgres(String),
}

impl DbLocator {
    /// A `--db` value: a PostgreSQL URL, else an SQLite path.
    pub fn parse(v: &Path) -> DbLocator {
        match v.to_str() {
            Some(s) if postgres::schema::is_url(s) => DbLocator::Postgres(s.to_owned()),
            _ => DbLocator::Sqlite(v.to_owned()),
        }
    }

    /// For messages and logs: the path, or the URL without its password.
    pub fn display(&self) -> String {
        match self {
            DbLocator::Sqlite(p) => p.display().to_string(),
            DbLocator::Postgres(u) => postgres::schema::redact(u),
        }
    }
}

/// Opens the database `db` names for writing (creating and migrating it if needed).
/// `instance` names this collector among those sharing a PostgreSQL database.
///
/// # Errors
/// The database cannot be opened or migrated.
pub fn open(db: &DbLocator, instance: &str) -> Result<Box<dyn Store>, SchemaError> {
    Ok(match db {
        DbLocator::Sqlite(p) => Box::new(sqlite::SqliteStore::open(p)?),
        DbLocator::Postgres(u) => Box::new(postgres::PgStore::open(u, instance)?),
    })
}

/// A store failure. The writer rolls the transaction back and acknowledges nothing of it.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// SQLite refused.
    #[error("sqlite: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// PostgreSQL refused, or the connection to it failed.
    #[error("postgres: {}", postgres::describe(.0))]
    Postgres(#[from] ::postgres::Error),
    /// A row the store holds cannot be read back (a damaged database).
    #[error("damaged data: {0}")]
    Corrupt(String),
    /// The database's schema is not the one this collector writes.
    #[error("{0}")]
    Schema(String),
}

impl StoreError {
    /// A constraint violation: the message cannot be placed (retrying will not help).
    pub fn is_constraint(&self) -> bool {
        match self {
            StoreError::Sqlite(e) => {
                e.sqlite_error_code() == Some(rusqlite::ErrorCode::ConstraintViolation)
            }
            StoreError::Postgres(e) => postgres::is_constraint(e),
            _ => false,
        }
    }

    /// The transaction may succeed if it is run again: another collector won a deadlock or a
    /// serialization conflict, or the connection to the database was lost (the adapter
    /// reconnects at the next transaction). Nothing of it was committed.
    pub fn is_retryable(&self) -> bool {
        match self {
            StoreError::Postgres(e) => postgres::is_retryable(e),
            _ => false,
        }
    }
}

/// Why a database could not be opened or upgraded (either engine).
#[derive(Debug, thiserror::Error)]
pub enum SchemaError {
    /// SQLite refused.
    #[error("sqlite: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// PostgreSQL refused, or could not be reached.
    #[error("postgres: {}", postgres::describe(.0))]
    Postgres(#[from] ::postgres::Error),
    /// The locator or its TLS settings are not usable.
    #[error("{0}")]
    Config(String),
    /// The database was written by a newer collector.
    #[error(
        "database schema version {found} is newer than this collector's {supported}: \
         use the collector that wrote it, or a newer one"
    )]
    TooNew {
        /// Version in the database.
        found: u32,
        /// Newest version this build knows.
        supported: u32,
    },
    /// The database has an older schema and was opened read-only (queries never migrate).
    #[error(
        "database schema version {found} is older than this collector's {supported}: \
         start `wifisess-collector run` on it once to upgrade it (queries never write)"
    )]
    TooOld {
        /// Version in the database.
        found: u32,
        /// Version this build reads.
        supported: u32,
    },
    /// The database has no wifisess schema at all.
    #[error("not a wifisess database (no schema; `wifisess-collector run --db FILE` creates one)")]
    Empty,
    /// The file does not exist.
    #[error("does not exist (run the collector first, or pass --db)")]
    Missing,
}

/// A device the expiry or the forced close would act on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Closable {
    /// Device id.
    pub device_id: String,
    /// Its open sessions.
    pub sessions: u64,
    /// When they are closed, ms: the device's last-seen time (expiry) or now (forced).
    pub at_ms: i64,
}

/// What retention deletes (dry run) or deleted: closed sessions that stopped before a cutoff,
/// and the failed joins and roams of before it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct PruneReport {
    /// Sessions.
    pub sessions: u64,
    /// Earliest stop among them, ms since the epoch.
    pub oldest_stop_ms: Option<i64>,
    /// Latest stop among them, ms.
    pub newest_stop_ms: Option<i64>,
    /// Failed joins that associated before the cutoff.
    pub failed_joins: u64,
    /// Roams that arrived before the cutoff.
    pub roams: u64,
}

impl PruneReport {
    /// Adds another report's sessions and widens the range.
    pub fn add(&mut self, o: PruneReport) {
        fn opt(a: Option<i64>, b: Option<i64>, f: fn(i64, i64) -> i64) -> Option<i64> {
            match (a, b) {
                (Some(x), Some(y)) => Some(f(x, y)),
                (x, y) => x.or(y),
            }
        }
        self.sessions += o.sessions;
        self.oldest_stop_ms = opt(self.oldest_stop_ms, o.oldest_stop_ms, i64::min);
        self.newest_stop_ms = opt(self.newest_stop_ms, o.newest_stop_ms, i64::max);
        self.failed_joins += o.failed_joins;
        self.roams += o.roams;
    }

    /// Whether a batch of at most `limit` rows of each kind came back full (more may be left).
    pub fn full(&self, limit: u32) -> bool {
        let l = u64::from(limit);
        self.sessions >= l || self.failed_joins >= l || self.roams >= l
    }
}

/// A client mark a derive step took: recompute the roams and day sets of a MAC around
/// [lo, hi].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientMark {
    /// Client MAC.
    pub mac: String,
    /// Earliest instant touched, ms.
    pub lo_ms: i64,
    /// Latest instant touched, ms.
    pub hi_ms: i64,
    /// Its generation when taken: bumped whenever it is marked again.
    pub gen: i64,
}

/// A bucket mark a derive step took: recompute a device's hour (and its day's daily rows).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BucketMark {
    /// Device id.
    pub device_id: String,
    /// Start of the hour, ms.
    pub hour_ms: i64,
    /// Its generation when taken.
    pub gen: i64,
}

/// The write side of a database. One writer owns it (SPEC §5.1); every method but
/// [`Store::begin`] runs inside the transaction `begin` opened.
pub trait Store: Send {
    /// Opens a write transaction.
    ///
    /// # Errors
    /// The database refused.
    fn begin(&mut self) -> Result<(), StoreError>;

    /// Commits it.
    ///
    /// # Errors
    /// The database refused (nothing was committed).
    fn commit(&mut self) -> Result<(), StoreError>;

    /// Rolls it back (errors are logged: the transaction is gone either way).
    fn rollback(&mut self);

    /// Takes the write lock of each device (ids sorted, unique) and returns its stored revision
    /// (`None`: not stored yet).
    ///
    /// # Errors
    /// Database errors.
    fn lock_devices(&mut self, ids: &[String]) -> Result<Vec<Option<i64>>, StoreError>;

    /// A device's stored merge state (its revision included); `None` if not stored.
    ///
    /// # Errors
    /// Database errors; a state that does not decode.
    fn load_device(&mut self, id: &str) -> Result<Option<DeviceState>, StoreError>;

    /// Several devices' stored merge states, in the order of `ids` (`None`: not stored).
    /// The default asks one by one; an adapter with costly round trips asks once.
    ///
    /// # Errors
    /// Database errors; a state that does not decode.
    fn load_devices(&mut self, ids: &[String]) -> Result<Vec<Option<DeviceState>>, StoreError> {
        ids.iter().map(|id| self.load_device(id)).collect()
    }

    /// What several devices' transactions need, one [`Loaded`] per entry, in order. The
    /// default loads device by device; an adapter with costly round trips answers each kind of
    /// need for every device at once.
    ///
    /// # Errors
    /// Database errors.
    fn load_many(&mut self, wants: &[(String, Needs)]) -> Result<Vec<Loaded>, StoreError> {
        wants.iter().map(|(d, n)| self.load(d, n)).collect()
    }

    /// What a device's transaction needs.
    ///
    /// # Errors
    /// Database errors.
    fn load(&mut self, device: &str, needs: &Needs) -> Result<Loaded, StoreError>;

    /// Writes what the transaction changed of one device: its session rows (closures first,
    /// so the one-open-session rule holds at every statement), new syncs, and its row (merge
    /// state with revision `tx.state.rev`, summary, status, `names`).
    ///
    /// # Errors
    /// Database errors; a constraint violation names a message that cannot be placed.
    fn write(&mut self, tx: &DeviceTx, names: &Names) -> Result<(), StoreError>;

    /// Adds to the ingest counters.
    ///
    /// # Errors
    /// Database errors.
    fn add_counts(&mut self, counts: &Counts) -> Result<(), StoreError>;

    /// Devices silent since `silent_since_ms` (last receive time at or before it) with open
    /// sessions, sorted by id, with their last-seen time (the later of the last receive time
    /// and the newest event of their open sessions).
    ///
    /// # Errors
    /// Database errors.
    fn expire_plan(&mut self, silent_since_ms: i64) -> Result<Vec<Closable>, StoreError>;

    /// Every device with open sessions, sorted by id, closed at `now_ms` (or their newest
    /// event, if later).
    ///
    /// # Errors
    /// Database errors.
    fn force_plan(&mut self, now_ms: i64) -> Result<Vec<Closable>, StoreError>;

    /// What [`Store::prune_batch`] with this cutoff would delete in all; changes nothing.
    ///
    /// # Errors
    /// Database errors.
    fn prune_plan(&mut self, cutoff_ms: i64) -> Result<PruneReport, StoreError>;

    /// Deletes at most `limit` closed sessions that stopped before `cutoff_ms`, and as many
    /// failed joins and roams of before it; records the cutoff ([`Store::pruned_before`]).
    ///
    /// # Errors
    /// Database errors.
    fn prune_batch(&mut self, cutoff_ms: i64, limit: u32) -> Result<PruneReport, StoreError>;

    /// Every device's announced names and the inventory names stored with it:
    /// (id, announced, inventory).
    ///
    /// # Errors
    /// Database errors.
    fn announced(&mut self) -> Result<Vec<(String, Names, Names)>, StoreError>;

    /// A canonical text dump of the merged rows: every session (all facts and the derived
    /// stop), every device's merge state (boots, epochs, seq runs, status, names, last seen,
    /// not its revision), every sync and failed join, and the derived data (roams, hourly and
    /// daily rows, day sets; not the dirty marks), sorted. Equal for every adapter and every
    /// order the same messages were applied in (once every mark is derived): the tests
    /// compare engines and orders with it.
    ///
    /// # Errors
    /// Database errors.
    fn dump(&mut self) -> Result<Vec<String>, StoreError>;

    /// Claims the fleet-wide job `job` (retention, expiry) due at `now_ms`: true if this
    /// process should run it now, false if another collector on the same database ran it less
    /// than `every_ms` ago. The claim is part of the transaction (a rolled-back run leaves
    /// the job due). SQLite has one writing process: always true.
    ///
    /// # Errors
    /// Database errors.
    fn claim_job(&mut self, job: &str, now_ms: i64, every_ms: i64) -> Result<bool, StoreError>;

    /// Records a device's inventory names and its effective names.
    ///
    /// # Errors
    /// Database errors.
    fn set_names(
        &mut self,
        id: &str,
        inventory: &Names,
        effective: &Names,
    ) -> Result<(), StoreError>;

    // --- Derived data (docs/collector.md, "Derived data") ---------------------------------

    /// Records the dirty marks a transaction leaves, first made at `now_ms` (marks are taken
    /// oldest first). A client mark already there is widened, and any mark already there gets
    /// a new generation, so a derive step that took it before does not delete it.
    ///
    /// # Errors
    /// Database errors.
    fn mark(&mut self, marks: &Marks, now_ms: i64) -> Result<(), StoreError>;

    /// Up to `limit` client marks, oldest first, that no other collector holds; held until
    /// the transaction ends (PostgreSQL: their rows locked, rows another collector holds
    /// skipped, and an advisory lock on each MAC, so two collectors never recompute one
    /// client at once).
    ///
    /// # Errors
    /// Database errors.
    fn take_client_marks(&mut self, limit: u32) -> Result<Vec<ClientMark>, StoreError>;

    /// Deletes the client marks taken, each only if it was not marked again since.
    ///
    /// # Errors
    /// Database errors.
    fn finish_client_marks(&mut self, marks: &[ClientMark]) -> Result<(), StoreError>;

    /// Up to `limit` bucket marks, oldest first, that no other collector holds (PostgreSQL:
    /// as client marks, with an advisory lock per device and day, whose daily rows a step
    /// rewrites); held until the transaction ends.
    ///
    /// # Errors
    /// Database errors.
    fn take_bucket_marks(&mut self, limit: u32) -> Result<Vec<BucketMark>, StoreError>;

    /// Deletes the bucket marks taken, each only if it was not marked again since.
    ///
    /// # Errors
    /// Database errors.
    fn finish_bucket_marks(&mut self, marks: &[BucketMark]) -> Result<(), StoreError>;

    /// The sessions of client `mac` (on any device) whose time on the air meets [lo, hi]:
    /// closed ones that stopped at or after `lo` and started at or before `hi`, open ones that
    /// started at or before `hi`.
    ///
    /// # Errors
    /// Database errors.
    fn client_spans(&mut self, mac: &str, lo: i64, hi: i64) -> Result<Vec<Span>, StoreError>;

    /// Replaces the roams of client `mac` that arrived within [lo, hi] with `roams`; returns
    /// the ones it replaced.
    ///
    /// # Errors
    /// Database errors.
    fn replace_roams(
        &mut self,
        mac: &str,
        lo: i64,
        hi: i64,
        roams: &[Roam],
    ) -> Result<Vec<Roam>, StoreError>;

    /// Replaces the day-set rows of client `mac` for the days in [lo_day, hi_day] with `days`
    /// (day, device, SSID); returns the (day, device) pairs whose rows changed.
    ///
    /// # Errors
    /// Database errors.
    fn replace_client_days(
        &mut self,
        mac: &str,
        lo_day: i64,
        hi_day: i64,
        days: &BTreeSet<(i64, String, String)>,
    ) -> Result<BTreeSet<(i64, String)>, StoreError>;

    /// The sessions (with a MAC) of `device` whose time on the air meets [lo, hi): closed ones
    /// that stopped at or after `lo` and started before `hi`, open ones started before `hi`.
    ///
    /// # Errors
    /// Database errors.
    fn device_spans(&mut self, device: &str, lo: i64, hi: i64) -> Result<Vec<Span>, StoreError>;

    /// (SSID, arrival ms) of the roams into `device` that arrived in [lo, hi), and (SSID,
    /// association ms) of its failed joins in [lo, hi).
    ///
    /// # Errors
    /// Database errors.
    #[allow(clippy::type_complexity)]
    fn device_events(
        &mut self,
        device: &str,
        lo: i64,
        hi: i64,
    ) -> Result<(Vec<(String, i64)>, Vec<(String, i64)>), StoreError>;

    /// Replaces the hourly rows of `device` for `hours` with `rows`, then rewrites its daily
    /// rows of the days those hours are in (sums of the day's hourly rows; distinct clients
    /// from the day sets).
    ///
    /// # Errors
    /// Database errors.
    fn replace_hours(
        &mut self,
        device: &str,
        hours: &BTreeSet<i64>,
        rows: &[HourRow],
    ) -> Result<(), StoreError>;

    /// The earliest instant a pending mark may still need stored rows of (retention keeps
    /// what is at or after it): the oldest marked hour or client instant; `None` when nothing
    /// is marked.
    ///
    /// # Errors
    /// Database errors.
    fn marks_floor(&mut self) -> Result<Option<i64>, StoreError>;

    /// The latest cutoff retention deleted sessions, failed joins and roams before
    /// ([`Store::prune_batch`] records it): derived rows of before it are final (their
    /// sources are gone), and the derive step leaves them as they are.
    ///
    /// # Errors
    /// Database errors.
    fn pruned_before(&mut self) -> Result<Option<i64>, StoreError>;

    /// Deletes at most `limit` hourly, daily and day-set rows of before `cutoff_ms` (the
    /// aggregate retention); returns how many went.
    ///
    /// # Errors
    /// Database errors.
    fn prune_aggregates_batch(&mut self, cutoff_ms: i64, limit: u32) -> Result<u64, StoreError>;
}

/// The [`Store::dump`] line of a failed join.
pub fn dump_failed_join(f: &FailedJoin) -> String {
    format!("failed_join {f:?}")
}

/// The [`Store::dump`] line of a roam.
pub fn dump_roam(r: &Roam) -> String {
    format!("roam {r:?}")
}

/// The [`Store::dump`] line of an hourly (`daily`: a daily) row.
pub fn dump_bucket(daily: bool, r: &HourRow) -> String {
    format!("{} {r:?}", if daily { "daily" } else { "hourly" })
}

/// The [`Store::dump`] line of a day-set row.
pub fn dump_client_day(day: i64, device: &str, ssid: &str, mac: &str) -> String {
    format!("client_day {day} {device} {ssid:?} {mac}")
}

/// A device's line of [`Store::dump`]: everything but its revision and the syncs loaded.
pub fn dump_device(d: &DeviceState) -> String {
    format!(
        "device {} last_seen={:?} boots={:?} status={:?} names={:?} summary={:?}",
        d.id,
        d.last_seen_ms,
        d.boots,
        d.status,
        d.names,
        d.summary()
    )
}
