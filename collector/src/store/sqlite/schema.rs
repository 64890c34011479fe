//! The SQLite schema and its versioned migrations (tracked in `PRAGMA user_version`), and how
//! the writer and the read side open a database file.

use std::path::Path;

use rusqlite::{Connection, OpenFlags, Transaction};

use crate::core::device::{Boot, DeviceState, Epoch};

/// One step of the schema: SQL, or code for what SQL cannot do alone.
enum Migration {
    Sql(&'static str),
    Code(fn(&Transaction) -> rusqlite::Result<()>),
}

/// One migration per schema version; index `i` upgrades a database from version `i` to `i + 1`.
const MIGRATIONS: &[&[Migration]] = &[
    // v1: devices, sessions and the bookkeeping the merge rules need.
    &[Migration::Sql(
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
    )],
    // v2: the operator's forced close (`expire --force`), a provisional stop like `expired`;
    // open sessions by start time (`sessions --open`, per-organization counts).
    &[Migration::Sql(
        r#"
ALTER TABLE sessions ADD COLUMN forced_ms INTEGER;
CREATE INDEX sessions_open_start ON sessions (start_ms) WHERE stop_ms IS NULL;
"#,
    )],
    // v3: `presence` reads start, stop and MAC of every session of the group's devices that
    // began before the window's end; with them in the index it never touches the table (at
    // 10 M sessions the row lookups made its p99 115 ms; docs/BENCHMARKS.md, queries). Same
    // prefix, so the device/group filters use it as before.
    &[Migration::Sql(
        r#"
DROP INDEX sessions_device_start;
CREATE INDEX sessions_device_start ON sessions (device_id, start_ms, stop_ms, mac);
"#,
    )],
    // v4: the writer keeps each device's merge state in memory and writes it once per
    // transaction into the device's row (`boots`: boots, epochs and seq runs as CBOR, with a
    // revision `rev` that tells a cached copy is current) instead of three tables read back
    // per message. The names in effect (inventory first, else announced) are stored columns
    // (`name`, `organization`, `grp`) beside the announced (`ann_*`) and inventory (`inv_*`)
    // ones, so every query reads plain indexed columns. Non-final sessions by client, for the
    // merge. The agent's drops by kind and spool restores (SPEC §5.5).
    &[
        Migration::Sql(
            r#"
ALTER TABLE devices ADD COLUMN ann_name TEXT;
ALTER TABLE devices ADD COLUMN ann_organization TEXT;
ALTER TABLE devices ADD COLUMN ann_group TEXT;
ALTER TABLE devices ADD COLUMN rev INTEGER NOT NULL DEFAULT 0;
ALTER TABLE devices ADD COLUMN boots BLOB;
ALTER TABLE devices ADD COLUMN dropped_updates INTEGER;
ALTER TABLE devices ADD COLUMN dropped_starts_stops INTEGER;
ALTER TABLE devices ADD COLUMN spool_restored INTEGER;
ALTER TABLE devices ADD COLUMN radios TEXT;
UPDATE devices SET ann_name = name, ann_organization = organization, ann_group = grp,
    name = coalesce(inv_name, name), organization = coalesce(inv_organization, organization),
    grp = coalesce(inv_group, grp);
DROP INDEX devices_org;
DROP INDEX devices_group;
DROP INDEX devices_name;
CREATE INDEX devices_org ON devices (organization);
CREATE INDEX devices_group ON devices (grp);
CREATE INDEX devices_name ON devices (name);
CREATE INDEX sessions_live_mac ON sessions (device_id, mac) WHERE agent_stop_ms IS NULL;
"#,
        ),
        Migration::Code(boots_into_device_rows),
        Migration::Sql(
            r#"
DROP TABLE device_boots;
DROP TABLE epochs;
DROP TABLE seq_runs;
"#,
        ),
    ],
    // v5 (issue 20): hostnames (a session fact: the latest event's wins), failed joins, roams
    // and trends (derived data the writer keeps current from dirty marks: docs/collector.md,
    // "Derived data"). The derive step's lookups get their indexes: a client's sessions that
    // stopped after an instant and its open ones (roam candidates, day sets), a device's
    // sessions that stopped after an instant (hourly buckets). Every stored client and hour is
    // marked, so the history gets its roams and trends after the upgrade.
    &[Migration::Sql(V5)],
];

/// Version 5: see [`MIGRATIONS`].
const V5: &str = r#"
ALTER TABLE sessions ADD COLUMN hostname TEXT;
ALTER TABLE sessions ADD COLUMN hostname_up INTEGER;
ALTER TABLE sessions ADD COLUMN hostname_seq INTEGER;
CREATE INDEX sessions_mac_stop ON sessions (mac, stop_ms) WHERE stop_ms IS NOT NULL;
CREATE INDEX sessions_open_mac ON sessions (mac) WHERE stop_ms IS NULL;
CREATE INDEX sessions_device_stop ON sessions (device_id, stop_ms) WHERE stop_ms IS NOT NULL;

CREATE TABLE failed_joins (
    device_id       TEXT NOT NULL,
    boot_id         TEXT NOT NULL,
    epoch           INTEGER NOT NULL,
    seq             INTEGER NOT NULL,
    mac             TEXT NOT NULL,
    ifname          TEXT NOT NULL,
    ssid            TEXT NOT NULL,
    bssid           TEXT NOT NULL,
    assoc_ms        INTEGER NOT NULL,
    gave_up_ms      INTEGER NOT NULL,
    times_corrected INTEGER NOT NULL,
    PRIMARY KEY (device_id, boot_id, epoch, seq)
) WITHOUT ROWID;
CREATE INDEX failed_joins_time ON failed_joins (assoc_ms);
CREATE INDEX failed_joins_device ON failed_joins (device_id, assoc_ms);
CREATE INDEX failed_joins_mac ON failed_joins (mac, assoc_ms);
CREATE INDEX failed_joins_ssid ON failed_joins (ssid, assoc_ms);

CREATE TABLE roams (
    to_device   TEXT NOT NULL,
    to_id       INTEGER NOT NULL,
    mac         TEXT NOT NULL,
    at_ms       INTEGER NOT NULL,
    gap_ms      INTEGER NOT NULL,
    from_device TEXT NOT NULL,
    from_id     INTEGER NOT NULL,
    from_ifname TEXT NOT NULL,
    from_ssid   TEXT NOT NULL,
    from_freq   INTEGER,
    to_ifname   TEXT NOT NULL,
    to_ssid     TEXT NOT NULL,
    to_freq     INTEGER,
    PRIMARY KEY (to_device, to_id)
) WITHOUT ROWID;
CREATE INDEX roams_time ON roams (at_ms);
CREATE INDEX roams_client ON roams (mac, at_ms);
CREATE INDEX roams_to ON roams (to_device, at_ms);
CREATE INDEX roams_from ON roams (from_device, at_ms);

CREATE TABLE agg_hourly (
    device_id    TEXT NOT NULL,
    hour_ms      INTEGER NOT NULL,
    ssid         TEXT NOT NULL,
    sessions     INTEGER NOT NULL,
    clients      INTEGER NOT NULL,
    connected_ms INTEGER NOT NULL,
    rx_bytes     INTEGER NOT NULL,
    tx_bytes     INTEGER NOT NULL,
    roams        INTEGER NOT NULL,
    failed_joins INTEGER NOT NULL,
    PRIMARY KEY (device_id, hour_ms, ssid)
) WITHOUT ROWID;
CREATE INDEX agg_hourly_time ON agg_hourly (hour_ms);

CREATE TABLE agg_daily (
    device_id    TEXT NOT NULL,
    day_ms       INTEGER NOT NULL,
    ssid         TEXT NOT NULL,
    sessions     INTEGER NOT NULL,
    clients      INTEGER NOT NULL,
    connected_ms INTEGER NOT NULL,
    rx_bytes     INTEGER NOT NULL,
    tx_bytes     INTEGER NOT NULL,
    roams        INTEGER NOT NULL,
    failed_joins INTEGER NOT NULL,
    PRIMARY KEY (device_id, day_ms, ssid)
) WITHOUT ROWID;
CREATE INDEX agg_daily_time ON agg_daily (day_ms);

CREATE TABLE agg_clients (
    day_ms    INTEGER NOT NULL,
    device_id TEXT NOT NULL,
    ssid      TEXT NOT NULL,
    mac       TEXT NOT NULL,
    PRIMARY KEY (day_ms, device_id, ssid, mac)
) WITHOUT ROWID;
CREATE INDEX agg_clients_mac ON agg_clients (mac, day_ms);

CREATE TABLE dirty_clients (
    mac      TEXT PRIMARY KEY,
    lo_ms    INTEGER NOT NULL,
    hi_ms    INTEGER NOT NULL,
    gen      INTEGER NOT NULL DEFAULT 0,
    first_ms INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX dirty_clients_first ON dirty_clients (first_ms);

CREATE TABLE dirty_buckets (
    device_id TEXT NOT NULL,
    hour_ms   INTEGER NOT NULL,
    gen       INTEGER NOT NULL DEFAULT 0,
    first_ms  INTEGER NOT NULL,
    PRIMARY KEY (device_id, hour_ms)
) WITHOUT ROWID;
CREATE INDEX dirty_buckets_first ON dirty_buckets (first_ms);

CREATE TABLE retention_horizon (
    what      TEXT PRIMARY KEY,
    before_ms INTEGER NOT NULL
) WITHOUT ROWID;

INSERT INTO dirty_clients (mac, lo_ms, hi_ms, gen, first_ms)
    SELECT s.mac, min(s.start_ms),
           max(max(coalesce(s.stop_ms, s.last_seen_ms), s.start_ms)), 0, 0
    FROM sessions s WHERE s.mac IS NOT NULL GROUP BY 1;
WITH RECURSIVE h(device_id, hour_ms, last) AS (
    SELECT device_id, start_ms - start_ms % 3600000,
           min(max(coalesce(stop_ms, last_seen_ms), start_ms), start_ms + 2678400000)
    FROM sessions WHERE mac IS NOT NULL
    UNION ALL
    SELECT device_id, hour_ms + 3600000, last FROM h WHERE hour_ms + 3600000 <= last
)
INSERT OR IGNORE INTO dirty_buckets (device_id, hour_ms, gen, first_ms)
    SELECT device_id, hour_ms, 0, 0 FROM h;
"#;

/// v4: `device_boots`, `epochs` and `seq_runs` into each device's `boots` column.
fn boots_into_device_rows(tx: &Transaction) -> rusqlite::Result<()> {
    let mut states: std::collections::BTreeMap<String, DeviceState> = Default::default();
    {
        let mut st = tx
            .prepare("SELECT device_id, boot_id, first_ms, last_ms, origin_ms FROM device_boots")?;
        let mut rows = st.query([])?;
        while let Some(r) = rows.next()? {
            let d: String = r.get(0)?;
            let state = states
                .entry(d.clone())
                .or_insert_with(|| DeviceState::new(&d));
            state.boots.push(Boot {
                id: r.get(1)?,
                first_ms: r.get(2)?,
                last_ms: r.get(3)?,
                origin_ms: r.get(4)?,
                epochs: Vec::new(),
            });
        }
    }
    for s in states.values_mut() {
        s.boots.sort_by(|a, b| a.id.cmp(&b.id));
    }
    {
        let mut st = tx.prepare(
            "SELECT e.device_id, e.boot_id, e.epoch, e.last_up FROM epochs e
             ORDER BY e.device_id, e.boot_id, e.epoch",
        )?;
        let mut rows = st.query([])?;
        while let Some(r) = rows.next()? {
            let (d, b): (String, String) = (r.get(0)?, r.get(1)?);
            if let Some(boot) = states
                .get_mut(&d)
                .and_then(|s| s.boots.iter_mut().find(|x| x.id == b))
            {
                boot.epochs.push(Epoch {
                    epoch: r.get(2)?,
                    last_up: r.get(3)?,
                    runs: Vec::new(),
                    filled: 0,
                });
            }
        }
        let mut st = tx.prepare(
            "SELECT device_id, boot_id, epoch, lo, hi FROM seq_runs
             ORDER BY device_id, boot_id, epoch, lo",
        )?;
        let mut rows = st.query([])?;
        while let Some(r) = rows.next()? {
            let (d, b, e): (String, String, i64) = (r.get(0)?, r.get(1)?, r.get(2)?);
            if let Some(ep) = states
                .get_mut(&d)
                .and_then(|s| s.boots.iter_mut().find(|x| x.id == b))
                .and_then(|boot| boot.epochs.iter_mut().find(|x| x.epoch == e))
            {
                ep.runs.push((r.get(3)?, r.get(4)?));
            }
        }
    }
    let mut up = tx.prepare("UPDATE devices SET boots = ?2 WHERE id = ?1")?;
    for (id, s) in &states {
        up.execute(rusqlite::params![id, s.encode_boots()])?;
    }
    Ok(())
}

/// The schema version this build writes.
pub const SCHEMA_VERSION: u32 = MIGRATIONS.len() as u32;

pub use crate::store::SchemaError;

/// Prepared statements kept per connection: more than the merge, the jobs and the queries
/// use together, so none is parsed twice.
pub const STATEMENT_CACHE: usize = 256;

/// Page cache per connection opened for writing, KiB (SQLite's `cache_size`; it grows to this
/// only as pages are used).
pub const PAGE_CACHE_KIB: i64 = 64 * 1024;

/// Opens (creating if needed) the database at `path` for the writer, in WAL mode, and runs
/// pending migrations.
///
/// # Errors
/// A [`SchemaError`] if SQLite cannot open the file or a migration fails.
pub fn open_writer(path: &Path) -> Result<Connection, SchemaError> {
    let mut conn = Connection::open(path)?;
    conn.busy_timeout(std::time::Duration::from_secs(10))?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
    // SQLite's default page cache (2 MB) is smaller than one group commit touches across the
    // sessions indexes: pages were spilled to the WAL mid-transaction and read back.
    conn.pragma_update(None, "cache_size", -PAGE_CACHE_KIB)?;
    migrate(&mut conn)?;
    Ok(conn)
}

/// Opens the database at `path` read-only for queries: never creates, migrates or writes it.
/// A database on read-only media (where SQLite cannot make the WAL index) is opened as
/// immutable.
///
/// # Errors
/// [`SchemaError::Missing`], [`SchemaError::Empty`], [`SchemaError::TooOld`],
/// [`SchemaError::TooNew`], or SQLite's error.
pub fn open_read_only(path: &Path) -> Result<Connection, SchemaError> {
    if !path.exists() {
        return Err(SchemaError::Missing);
    }
    let flags = OpenFlags::SQLITE_OPEN_READ_ONLY
        | OpenFlags::SQLITE_OPEN_NO_MUTEX
        | OpenFlags::SQLITE_OPEN_URI;
    let open = |uri: String| -> rusqlite::Result<(Connection, u32)> {
        let c = Connection::open_with_flags(uri, flags)?;
        c.busy_timeout(std::time::Duration::from_secs(5))?;
        c.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
        let v: u32 = c.pragma_query_value(None, "user_version", |r| r.get(0))?;
        Ok((c, v))
    };
    let file = uri_path(path);
    let (conn, found) = match open(format!("file:{file}")) {
        Ok(x) => x,
        // SQLITE_CANTOPEN / READONLY: a WAL database on read-only media, whose shared-memory
        // index cannot be made. Nothing can write it there either: read it as immutable.
        Err(e)
            if matches!(
                e.sqlite_error_code(),
                Some(rusqlite::ErrorCode::CannotOpen | rusqlite::ErrorCode::ReadOnly)
            ) =>
        {
            open(format!("file:{file}?immutable=1"))?
        }
        Err(e) => return Err(e.into()),
    };
    check_version(&conn, found)?;
    Ok(conn)
}

fn check_version(conn: &Connection, found: u32) -> Result<(), SchemaError> {
    if found == 0 {
        let tables: i64 = conn.query_row("SELECT count(*) FROM sqlite_master", [], |r| r.get(0))?;
        return Err(if tables == 0 {
            SchemaError::Empty
        } else {
            SchemaError::TooOld {
                found,
                supported: SCHEMA_VERSION,
            }
        });
    }
    match found.cmp(&SCHEMA_VERSION) {
        std::cmp::Ordering::Less => Err(SchemaError::TooOld {
            found,
            supported: SCHEMA_VERSION,
        }),
        std::cmp::Ordering::Greater => Err(SchemaError::TooNew {
            found,
            supported: SCHEMA_VERSION,
        }),
        std::cmp::Ordering::Equal => Ok(()),
    }
}

/// `path` as the path part of a `file:` URI (`%`, `?` and `#` escaped).
fn uri_path(path: &Path) -> String {
    let mut out = String::new();
    for c in path.to_string_lossy().chars() {
        match c {
            '%' => out.push_str("%25"),
            '?' => out.push_str("%3f"),
            '#' => out.push_str("%23"),
            c => out.push(c),
        }
    }
    out
}

/// Brings the schema to [`SCHEMA_VERSION`], one transaction per version.
///
/// # Errors
/// A [`SchemaError`] if a step fails (that version is rolled back) or the file is newer.
pub fn migrate(conn: &mut Connection) -> Result<(), SchemaError> {
    let found: u32 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
    if found > SCHEMA_VERSION {
        return Err(SchemaError::TooNew {
            found,
            supported: SCHEMA_VERSION,
        });
    }
    for (i, steps) in MIGRATIONS.iter().enumerate().skip(found as usize) {
        let tx = conn.transaction()?;
        for step in steps.iter() {
            match step {
                Migration::Sql(sql) => tx.execute_batch(sql)?,
                Migration::Code(f) => f(&tx)?,
            }
        }
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

    /// A v3 database (boots, epochs and seq runs in their own tables) keeps its merge state
    /// through the v4 migration.
    #[test]
    fn v4_moves_boots_into_the_device_rows() {
        let mut c = Connection::open_in_memory().unwrap();
        let tx = c.transaction().unwrap();
        for steps in &MIGRATIONS[..3] {
            for s in steps.iter() {
                if let Migration::Sql(sql) = s {
                    tx.execute_batch(sql).unwrap();
                }
            }
        }
        tx.execute_batch(
            "INSERT INTO devices (id, name, inv_name) VALUES ('ap1', 'announced', NULL),
                                                          ('ap2', 'announced2', 'inv2');
             INSERT INTO device_boots VALUES ('ap1', 'b1', 10, 20, NULL), ('ap1', 'b2', 30, 40, 5);
             INSERT INTO epochs VALUES ('ap1', 'b2', 7, 900);
             INSERT INTO seq_runs VALUES ('ap1', 'b2', 7, 1, 4), ('ap1', 'b2', 7, 6, 9);
             PRAGMA user_version = 3;",
        )
        .unwrap();
        tx.commit().unwrap();
        migrate(&mut c).unwrap();
        let (blob, name): (Vec<u8>, String) = c
            .query_row(
                "SELECT boots, name FROM devices WHERE id = 'ap1'",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .unwrap();
        assert_eq!(name, "announced");
        let boots = DeviceState::decode_boots(&blob).unwrap();
        assert_eq!(boots.len(), 2);
        assert_eq!(boots[1].origin_ms, Some(5));
        assert_eq!(boots[1].epochs[0].runs, [(1, 4), (6, 9)]);
        let name2: String = c
            .query_row("SELECT name FROM devices WHERE id = 'ap2'", [], |r| {
                r.get(0)
            })
            .unwrap();
        assert_eq!(name2, "inv2");
    }
}
