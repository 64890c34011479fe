//! The SQLite schema and its versioned migrations (tracked in `PRAGMA user_version`).

use std::path::Path;

use rusqlite::Connection;

/// One migration per schema version; index `i` upgrades a database from version `i` to `i + 1`.
const MIGRATIONS: &[&str] = &[
    // v1: devices, sessions and the bookkeeping the merge rules need.
    r#"
CREATE TABLE devices (
    id               TEXT PRIMARY KEY,
    name             TEXT,
    organization     TEXT,
    grp              TEXT,
    inv_name         TEXT,
    inv_organization TEXT,
    inv_group        TEXT,
    online           INTEGER NOT NULL DEFAULT 0,
    last_seen_ms     INTEGER,
    boot_id          TEXT,
    agent_epoch      INTEGER,
    last_seq         INTEGER,
    agent_version    TEXT,
    status_boot      TEXT,
    status_uptime_ms INTEGER,
    published        INTEGER,
    dropped          INTEGER,
    reconnects       INTEGER,
    outbox_depth     INTEGER,
    failed_joins     INTEGER,
    tracker_overflow INTEGER,
    seq_gaps         INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX devices_org ON devices (coalesce(inv_organization, organization));
CREATE INDEX devices_group ON devices (coalesce(inv_group, grp));
CREATE INDEX devices_name ON devices (coalesce(inv_name, name));

CREATE TABLE device_boots (
    device_id TEXT NOT NULL,
    boot_id   TEXT NOT NULL,
    first_ms  INTEGER NOT NULL,
    last_ms   INTEGER NOT NULL,
    origin_ms INTEGER,
    PRIMARY KEY (device_id, boot_id)
) WITHOUT ROWID;

CREATE TABLE epochs (
    device_id TEXT NOT NULL,
    boot_id   TEXT NOT NULL,
    epoch     INTEGER NOT NULL,
    last_up   INTEGER NOT NULL,
    PRIMARY KEY (device_id, boot_id, epoch)
) WITHOUT ROWID;

CREATE TABLE seq_runs (
    device_id TEXT NOT NULL,
    boot_id   TEXT NOT NULL,
    epoch     INTEGER NOT NULL,
    lo        INTEGER NOT NULL,
    hi        INTEGER NOT NULL,
    PRIMARY KEY (device_id, boot_id, epoch, lo)
) WITHOUT ROWID;

CREATE TABLE syncs (
    device_id TEXT NOT NULL,
    boot_id   TEXT NOT NULL,
    up        INTEGER NOT NULL,
    seq       INTEGER NOT NULL,
    wall_ms   INTEGER NOT NULL,
    ids       BLOB NOT NULL,
    PRIMARY KEY (device_id, boot_id, up, seq)
) WITHOUT ROWID;

CREATE TABLE sessions (
    device_id         TEXT NOT NULL,
    id                INTEGER NOT NULL,
    boot_id           TEXT NOT NULL,
    mac               TEXT,
    ssid              TEXT,
    ifname            TEXT,
    bssid             TEXT,
    freq_mhz          INTEGER,
    start_ms          INTEGER NOT NULL,
    has_start         INTEGER NOT NULL,
    first_up          INTEGER NOT NULL,
    first_seq         INTEGER NOT NULL,
    stop_ms           INTEGER,
    stop_reason       TEXT,
    stop_inferred     INTEGER NOT NULL DEFAULT 0,
    agent_stop_ms     INTEGER,
    agent_stop_reason TEXT,
    last_seen_ms      INTEGER NOT NULL,
    open_up           INTEGER,
    open_seq          INTEGER,
    signal_up         INTEGER,
    signal_seq        INTEGER,
    signal_avg        INTEGER,
    last_activity_ms  INTEGER,
    rx_bytes          INTEGER NOT NULL DEFAULT 0,
    tx_bytes          INTEGER NOT NULL DEFAULT 0,
    rx_packets        INTEGER NOT NULL DEFAULT 0,
    tx_packets        INTEGER NOT NULL DEFAULT 0,
    missing_up        INTEGER,
    missing_seq       INTEGER,
    next_start_ms     INTEGER,
    expired_ms        INTEGER,
    times_corrected   INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (device_id, id)
);
CREATE UNIQUE INDEX sessions_one_open ON sessions (device_id, mac) WHERE stop_ms IS NULL;
CREATE INDEX sessions_open_device ON sessions (device_id, start_ms) WHERE stop_ms IS NULL;
CREATE INDEX sessions_id ON sessions (id);
CREATE INDEX sessions_device_start ON sessions (device_id, start_ms);
CREATE INDEX sessions_start ON sessions (start_ms);
CREATE INDEX sessions_stop ON sessions (stop_ms) WHERE stop_ms IS NOT NULL;
CREATE INDEX sessions_device_mac ON sessions (device_id, mac, start_ms, id);
CREATE INDEX sessions_mac ON sessions (mac, start_ms);
CREATE INDEX sessions_ssid ON sessions (ssid, start_ms);
CREATE INDEX sessions_live_boot ON sessions (device_id, boot_id) WHERE agent_stop_ms IS NULL;

CREATE TABLE counters (
    name  TEXT PRIMARY KEY,
    value INTEGER NOT NULL
) WITHOUT ROWID;
"#,
    // v2: the operator's forced close (`expire --force`), a provisional stop like `expired`;
    // open sessions by start time (`sessions --open`, per-organization counts).
    r#"
ALTER TABLE sessions ADD COLUMN forced_ms INTEGER;
CREATE INDEX sessions_open_start ON sessions (start_ms) WHERE stop_ms IS NULL;
"#,
    // v3: `presence` reads start, stop and MAC of every session of the group's devices that
    // began before the window's end; with them in the index it never touches the table (at
    // 10 M sessions the row lookups made its p99 115 ms; docs/BENCHMARKS.md, queries). Same
    // prefix, so the device/group filters use it as before.
    r#"
DROP INDEX sessions_device_start;
CREATE INDEX sessions_device_start ON sessions (device_id, start_ms, stop_ms, mac);
"#,
];

/// The schema version this build writes.
pub const SCHEMA_VERSION: u32 = MIGRATIONS.len() as u32;

/// Why the database could not be opened or upgraded.
#[derive(Debug, thiserror::Error)]
pub enum SchemaError {
    /// SQLite refused.
    #[error("sqlite: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// The file was written by a newer collector.
    #[error("database schema version {found} is newer than this collector's {supported}")]
    TooNew {
        /// Version in the file.
        found: u32,
        /// Newest version this build knows.
        supported: u32,
    },
}

/// Prepared statements kept per connection: more than the merge, the jobs and the queries
/// use together, so none is parsed twice.
pub const STATEMENT_CACHE: usize = 256;

/// Page cache per connection opened here, KiB (SQLite's `cache_size`; it grows to this only
/// as pages are used).
pub const PAGE_CACHE_KIB: i64 = 64 * 1024;

/// Opens (creating if needed) the database at `path` in WAL mode and runs pending migrations.
///
/// # Errors
/// A [`SchemaError`] if SQLite cannot open the file or a migration fails.
pub fn open(path: &Path) -> Result<Connection, SchemaError> {
    let mut conn = Connection::open(path)?;
    conn.busy_timeout(std::time::Duration::from_secs(10))?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    // The merge alone uses ~30 distinct statements per message; with rusqlite's default
    // cache of 16 they evicted each other and were parsed again every time (45 % of the
    // store path's time; docs/BENCHMARKS.md, ingest).
    conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
    // SQLite's default page cache (2 MB) is smaller than one group commit touches across the
    // sessions indexes: pages were spilled to the WAL mid-transaction and read back.
    conn.pragma_update(None, "cache_size", -PAGE_CACHE_KIB)?;
    migrate(&mut conn)?;
    Ok(conn)
}

/// Brings the schema to [`SCHEMA_VERSION`], one transaction per step.
///
/// # Errors
/// A [`SchemaError`] if a step fails (that step is rolled back) or the file is newer.
pub fn migrate(conn: &mut Connection) -> Result<(), SchemaError> {
    let found: u32 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
    if found > SCHEMA_VERSION {
        return Err(SchemaError::TooNew {
            found,
            supported: SCHEMA_VERSION,
        });
    }
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(found as usize) {
        let tx = conn.transaction()?;
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", i as u32 + 1)?;
        tx.commit()?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrates_once_and_is_idempotent() {
        let mut c = Connection::open_in_memory().unwrap();
        migrate(&mut c).unwrap();
        migrate(&mut c).unwrap();
        let v: u32 = c
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .unwrap();
        assert_eq!(v, SCHEMA_VERSION);
    }
}
