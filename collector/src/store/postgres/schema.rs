//! The PostgreSQL schema and its versioned migrations (tracked in `schema_migrations`), the
//! monthly partitions of closed sessions, and how the writer and the read side connect
//! (locator parsing, TLS with rustls and ring).
//!
//! Layout: open sessions live in `sessions_open` (small; the one-open-session rule is its
//! unique index on (device, MAC)), closed ones in `sessions_closed`, range-partitioned by
//! stop time (one partition per calendar month, UTC, created ahead by the writer; a default
//! partition catches stops outside them), so retention drops whole partitions. The view
//! `sessions` (UNION ALL of both) has the SQLite table's columns: the read side's SQL runs
//! unchanged on both engines. Text columns use the "C" collation, so values order and compare
//! byte-wise as in SQLite.

use std::str::FromStr as _;
use std::sync::Arc;

use postgres::{Client, Transaction};

use crate::store::SchemaError;
use crate::timefmt::{civil, days_from_civil};

/// The `sessions` columns, in the order of the SQLite table (the view's and the adapter's).
pub const SESSION_COLUMNS: &str = r#"
    device_id         text COLLATE "C" NOT NULL,
    id                bigint NOT NULL,
    boot_id           text COLLATE "C" NOT NULL,
    mac               text COLLATE "C",
    ssid              text COLLATE "C",
    ifname            text COLLATE "C",
    bssid             text COLLATE "C",
    freq_mhz          bigint,
    start_ms          bigint NOT NULL,
    has_start         boolean NOT NULL,
    first_up          bigint NOT NULL,
    first_seq         bigint NOT NULL,
    stop_ms           bigint,
    stop_reason       text COLLATE "C",
    stop_inferred     boolean NOT NULL DEFAULT false,
    agent_stop_ms     bigint,
    agent_stop_reason text COLLATE "C",
    last_seen_ms      bigint NOT NULL,
    open_up           bigint,
    open_seq          bigint,
    signal_up         bigint,
    signal_seq        bigint,
    signal_avg        bigint,
    last_activity_ms  bigint,
    rx_bytes          bigint NOT NULL DEFAULT 0,
    tx_bytes          bigint NOT NULL DEFAULT 0,
    rx_packets        bigint NOT NULL DEFAULT 0,
    tx_packets        bigint NOT NULL DEFAULT 0,
    missing_up        bigint,
    missing_seq       bigint,
    next_start_ms     bigint,
    expired_ms        bigint,
    times_corrected   boolean NOT NULL DEFAULT false,
    forced_ms         bigint"#;

/// The session columns version 2 added (issue 20: the client's hostname, a session fact).
pub const SESSION_COLUMNS_V2: &str = r#"
    hostname          text COLLATE "C",
    hostname_up       bigint,
    hostname_seq      bigint"#;

/// Version 1: the whole schema (the logical model of SQLite's version 4).
const V1: &str = r#"
CREATE TABLE devices (
    id               text COLLATE "C" PRIMARY KEY,
    name             text COLLATE "C",
    organization     text COLLATE "C",
    grp              text COLLATE "C",
    ann_name         text COLLATE "C",
    ann_organization text COLLATE "C",
    ann_group        text COLLATE "C",
    inv_name         text COLLATE "C",
    inv_organization text COLLATE "C",
    inv_group        text COLLATE "C",
    online           boolean NOT NULL DEFAULT false,
    last_seen_ms     bigint,
    boot_id          text COLLATE "C",
    agent_epoch      bigint,
    last_seq         bigint,
    agent_version    text COLLATE "C",
    status_boot      text COLLATE "C",
    status_uptime_ms bigint,
    published        bigint,
    dropped          bigint,
    reconnects       bigint,
    outbox_depth     bigint,
    failed_joins     bigint,
    tracker_overflow bigint,
    dropped_updates  bigint,
    dropped_starts_stops bigint,
    spool_restored   bigint,
    radios           text,
    seq_gaps         bigint NOT NULL DEFAULT 0,
    rev              bigint NOT NULL DEFAULT 0,
    boots            bytea
) WITH (fillfactor = 70);
CREATE INDEX devices_org ON devices (organization);
CREATE INDEX devices_group ON devices (grp);
CREATE INDEX devices_name ON devices (name);

CREATE TABLE sessions_open (@COLUMNS@,
    PRIMARY KEY (device_id, id),
    CHECK (stop_ms IS NULL)
) WITH (fillfactor = 70);
CREATE UNIQUE INDEX sessions_one_open ON sessions_open (device_id, mac);
CREATE INDEX sessions_open_start ON sessions_open (start_ms);
CREATE INDEX sessions_open_device ON sessions_open (device_id, start_ms, mac);
CREATE INDEX sessions_open_mac ON sessions_open (mac, start_ms);
CREATE INDEX sessions_open_ssid ON sessions_open (ssid, start_ms);
CREATE INDEX sessions_open_id ON sessions_open (id);
CREATE INDEX sessions_open_boot ON sessions_open (device_id, boot_id);

CREATE TABLE sessions_closed (@COLUMNS@,
    PRIMARY KEY (device_id, id, stop_ms)
) PARTITION BY RANGE (stop_ms);
ALTER TABLE sessions_closed ALTER COLUMN stop_ms SET NOT NULL;
CREATE INDEX sessions_closed_start ON sessions_closed (start_ms);
CREATE INDEX sessions_closed_stop ON sessions_closed (stop_ms);
CREATE INDEX sessions_closed_device_start ON sessions_closed (device_id, start_ms, stop_ms, mac);
CREATE INDEX sessions_closed_mac ON sessions_closed (mac, start_ms);
CREATE INDEX sessions_closed_ssid ON sessions_closed (ssid, start_ms);
CREATE INDEX sessions_closed_id ON sessions_closed (id);
CREATE INDEX sessions_closed_device_mac ON sessions_closed (device_id, mac, start_ms, id);
CREATE INDEX sessions_closed_live_mac ON sessions_closed (device_id, mac)
    WHERE agent_stop_ms IS NULL;
CREATE INDEX sessions_closed_live_boot ON sessions_closed (device_id, boot_id)
    WHERE agent_stop_ms IS NULL;
CREATE TABLE sessions_closed_default PARTITION OF sessions_closed DEFAULT;

CREATE VIEW sessions AS
    SELECT @NAMES@ FROM sessions_open
    UNION ALL
    SELECT @NAMES@ FROM sessions_closed;

CREATE TABLE syncs (
    device_id text COLLATE "C" NOT NULL,
    boot_id   text COLLATE "C" NOT NULL,
    up        bigint NOT NULL,
    seq       bigint NOT NULL,
    wall_ms   bigint NOT NULL,
    ids       bytea NOT NULL,
    PRIMARY KEY (device_id, boot_id, up, seq)
);

CREATE TABLE counter_shards (
    name     text COLLATE "C" NOT NULL,
    instance text COLLATE "C" NOT NULL,
    value    bigint NOT NULL,
    PRIMARY KEY (name, instance)
);
CREATE VIEW counters AS
    SELECT name, sum(value)::bigint AS value FROM counter_shards GROUP BY name;

CREATE TABLE fleet_jobs (
    job        text COLLATE "C" PRIMARY KEY,
    next_ms    bigint NOT NULL,
    holder     text,
    claimed_ms bigint NOT NULL
);
"#;

/// One SQL script per schema version; index `i` upgrades a database from version `i` to
/// `i + 1`. `@COLUMNS@` stands for [`SESSION_COLUMNS`], `@NAMES@` for their names.
const MIGRATIONS: &[(&str, &str)] = &[
    (
        "devices, open and monthly-partitioned closed sessions, syncs, counters per collector, \
         fleet-wide job claims",
        V1,
    ),
    (
        "issue 20: hostnames, failed joins, roams, trends and their dirty marks",
        V2,
    ),
];

/// Version 2 (the logical model of SQLite's version 5): hostnames, failed joins, roams,
/// hourly and daily trends, per-day client sets, the dirty marks that keep them current
/// (docs/collector.md, "Derived data"), and the derive step's lookups (a client's or a
/// device's sessions that stopped after an instant). Every stored client and hour is marked,
/// so the history gets its roams and trends after the upgrade.
const V2: &str = r#"
ALTER TABLE sessions_open ADD COLUMN hostname text COLLATE "C",
    ADD COLUMN hostname_up bigint, ADD COLUMN hostname_seq bigint;
ALTER TABLE sessions_closed ADD COLUMN hostname text COLLATE "C",
    ADD COLUMN hostname_up bigint, ADD COLUMN hostname_seq bigint;
DROP VIEW sessions;
CREATE VIEW sessions AS
    SELECT @NAMES@ FROM sessions_open
    UNION ALL
    SELECT @NAMES@ FROM sessions_closed;
CREATE INDEX sessions_closed_mac_stop ON sessions_closed (mac, stop_ms);
CREATE INDEX sessions_closed_device_stop ON sessions_closed (device_id, stop_ms);

CREATE TABLE failed_joins (
    device_id       text COLLATE "C" NOT NULL,
    boot_id         text COLLATE "C" NOT NULL,
    epoch           bigint NOT NULL,
    seq             bigint NOT NULL,
    mac             text COLLATE "C" NOT NULL,
    ifname          text COLLATE "C" NOT NULL,
    ssid            text COLLATE "C" NOT NULL,
    bssid           text COLLATE "C" NOT NULL,
    assoc_ms        bigint NOT NULL,
    gave_up_ms      bigint NOT NULL,
    times_corrected boolean NOT NULL,
    PRIMARY KEY (device_id, boot_id, epoch, seq)
);
CREATE INDEX failed_joins_time ON failed_joins (assoc_ms);
CREATE INDEX failed_joins_device ON failed_joins (device_id, assoc_ms);
CREATE INDEX failed_joins_mac ON failed_joins (mac, assoc_ms);
CREATE INDEX failed_joins_ssid ON failed_joins (ssid, assoc_ms);

CREATE TABLE roams (
    to_device   text COLLATE "C" NOT NULL,
    to_id       bigint NOT NULL,
    mac         text COLLATE "C" NOT NULL,
    at_ms       bigint NOT NULL,
    gap_ms      bigint NOT NULL,
    from_device text COLLATE "C" NOT NULL,
    from_id     bigint NOT NULL,
    from_ifname text COLLATE "C" NOT NULL,
    from_ssid   text COLLATE "C" NOT NULL,
    from_freq   bigint,
    to_ifname   text COLLATE "C" NOT NULL,
    to_ssid     text COLLATE "C" NOT NULL,
    to_freq     bigint,
    PRIMARY KEY (to_device, to_id)
);
CREATE INDEX roams_time ON roams (at_ms);
CREATE INDEX roams_client ON roams (mac, at_ms);
CREATE INDEX roams_to ON roams (to_device, at_ms);
CREATE INDEX roams_from ON roams (from_device, at_ms);

CREATE TABLE agg_hourly (
    device_id    text COLLATE "C" NOT NULL,
    hour_ms      bigint NOT NULL,
    ssid         text COLLATE "C" NOT NULL,
    sessions     bigint NOT NULL,
    clients      bigint NOT NULL,
    connected_ms bigint NOT NULL,
    rx_bytes     bigint NOT NULL,
    tx_bytes     bigint NOT NULL,
    roams        bigint NOT NULL,
    failed_joins bigint NOT NULL,
    PRIMARY KEY (device_id, hour_ms, ssid)
);
CREATE INDEX agg_hourly_time ON agg_hourly (hour_ms);

CREATE TABLE agg_daily (
    device_id    text COLLATE "C" NOT NULL,
    day_ms       bigint NOT NULL,
    ssid         text COLLATE "C" NOT NULL,
    sessions     bigint NOT NULL,
    clients      bigint NOT NULL,
    connected_ms bigint NOT NULL,
    rx_bytes     bigint NOT NULL,
    tx_bytes     bigint NOT NULL,
    roams        bigint NOT NULL,
    failed_joins bigint NOT NULL,
    PRIMARY KEY (device_id, day_ms, ssid)
);
CREATE INDEX agg_daily_time ON agg_daily (day_ms);

CREATE TABLE agg_clients (
    day_ms    bigint NOT NULL,
    device_id text COLLATE "C" NOT NULL,
    ssid      text COLLATE "C" NOT NULL,
    mac       text COLLATE "C" NOT NULL,
    PRIMARY KEY (day_ms, device_id, ssid, mac)
);
CREATE INDEX agg_clients_mac ON agg_clients (mac, day_ms);

CREATE TABLE dirty_clients (
    mac      text COLLATE "C" PRIMARY KEY,
    lo_ms    bigint NOT NULL,
    hi_ms    bigint NOT NULL,
    gen      bigint NOT NULL DEFAULT 0,
    first_ms bigint NOT NULL
);
CREATE INDEX dirty_clients_first ON dirty_clients (first_ms);

CREATE TABLE dirty_buckets (
    device_id text COLLATE "C" NOT NULL,
    hour_ms   bigint NOT NULL,
    gen       bigint NOT NULL DEFAULT 0,
    first_ms  bigint NOT NULL,
    PRIMARY KEY (device_id, hour_ms)
);
CREATE INDEX dirty_buckets_first ON dirty_buckets (first_ms);

CREATE TABLE retention_horizon (
    what      text COLLATE "C" PRIMARY KEY,
    before_ms bigint NOT NULL
);

INSERT INTO dirty_clients (mac, lo_ms, hi_ms, gen, first_ms)
    SELECT s.mac, min(s.start_ms),
           max(greatest(coalesce(s.stop_ms, s.last_seen_ms), s.start_ms)), 0, 0
    FROM sessions s WHERE s.mac IS NOT NULL GROUP BY 1;
INSERT INTO dirty_buckets (device_id, hour_ms, gen, first_ms)
    SELECT DISTINCT s.device_id, h, 0, 0
    FROM sessions s,
         generate_series(s.start_ms - s.start_ms % 3600000,
                         least(greatest(coalesce(s.stop_ms, s.last_seen_ms), s.start_ms),
                               s.start_ms + 2678400000),
                         3600000) AS h
    WHERE s.mac IS NOT NULL
    ON CONFLICT DO NOTHING;
"#;

/// The schema version this build writes.
pub const SCHEMA_VERSION: u32 = MIGRATIONS.len() as u32;

/// The names of the session columns of schema `version`, in order ([`SESSION_COLUMNS`],
/// then [`SESSION_COLUMNS_V2`]).
pub fn session_column_names_of(version: u32) -> Vec<&'static str> {
    let v2 = if version >= 2 { SESSION_COLUMNS_V2 } else { "" };
    SESSION_COLUMNS
        .lines()
        .chain(v2.lines())
        .filter_map(|l| l.split_whitespace().next())
        .collect()
}

/// The names of the session columns this build writes, in order.
pub fn session_column_names() -> Vec<&'static str> {
    session_column_names_of(SCHEMA_VERSION)
}

/// A migration's SQL for `version`: `@COLUMNS@` is the version 1 column list (only version 1
/// creates the tables), `@NAMES@` the names of that version's columns.
fn expand(sql: &str, version: u32) -> String {
    sql.replace("@COLUMNS@", SESSION_COLUMNS)
        .replace("@NAMES@", &session_column_names_of(version).join(", "))
}

/// Advisory lock keys (`pg_advisory_xact_lock`): schema changes are made by one collector at
/// a time.
const LOCK_MIGRATE: i64 = 0x7769_6673_0001;
const LOCK_PARTITIONS: i64 = 0x7769_6673_0002;

/// Prepared statements kept per connection at most (the read side's queries are built from
/// filters: a bounded cache, cleared when full).
pub const STATEMENT_CACHE: usize = 256;

// ---------------------------------------------------------------------------------------------
// Locators and connections

/// Whether a `--db` value names a PostgreSQL database.
pub fn is_url(s: &str) -> bool {
    s.starts_with("postgres://") || s.starts_with("postgresql://")
}

/// How the server's certificate is checked.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Verify {
    /// Encrypt, accept any certificate (libpq's `prefer` and `require` without a root file).
    None,
    /// Check the chain and the host name against these roots (`verify-full`, `verify-ca`, or
    /// `require` with `sslrootcert`): a PEM file, or the system's roots.
    Full(Option<String>),
}

/// A parsed locator: the driver's configuration and how TLS checks the server.
struct Target {
    config: postgres::Config,
    verify: Verify,
}

/// Parses `postgres://…` / `postgresql://…` (libpq's URI form). Besides what the driver reads,
/// `sslmode` takes `verify-ca` / `verify-full` and `sslrootcert=FILE` names the CA file; both
/// are handled here (the driver knows `disable`, `prefer` and `require` only).
fn parse(url: &str) -> Result<Target, SchemaError> {
    let bad = |why: String| SchemaError::Config(format!("--db: {why}"));
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, q),
        None => (url, ""),
    };
    let mut kept: Vec<String> = Vec::new();
    let mut mode: Option<String> = None;
    let mut root: Option<String> = None;
    for kv in query.split('&').filter(|s| !s.is_empty()) {
        let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
        match k {
            "sslmode" => mode = Some(v.to_owned()),
            "sslrootcert" => root = Some(percent_decode(v)),
            _ => kept.push(kv.to_owned()),
        }
    }
    let (driver_mode, verify) = match (mode.as_deref(), &root) {
        (None | Some("prefer") | Some("allow"), None) => ("prefer", Verify::None),
        (Some("require"), None) => ("require", Verify::None),
        (Some("disable"), _) => ("disable", Verify::None),
        (None | Some("prefer") | Some("allow"), Some(_)) => ("prefer", Verify::Full(root)),
        (Some("require" | "verify-ca" | "verify-full"), _) => ("require", Verify::Full(root)),
        (Some(m), _) => return Err(bad(format!("unknown sslmode {m:?}"))),
    };
    kept.push(format!("sslmode={driver_mode}"));
    let cleaned = format!("{base}?{}", kept.join("&"));
    let mut config = postgres::Config::from_str(&cleaned).map_err(|e| {
        bad(format!(
            "not a usable PostgreSQL URL ({e}): {}",
            redact(url)
        ))
    })?;
    if config.get_application_name().is_none() {
        config.application_name("wifisess-collector");
    }
    if config.get_connect_timeout().is_none() {
        config.connect_timeout(std::time::Duration::from_secs(10));
    }
    Ok(Target { config, verify })
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            let hex = std::str::from_utf8(&b[i + 1..i + 3]).ok();
            if let Some(v) = hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// `url` without its password (for messages and logs).
pub fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let (auth, tail) = match rest.find(['/', '?']) {
        Some(i) => rest.split_at(i),
        None => (rest, ""),
    };
    match auth.rsplit_once('@') {
        Some((user, host)) => {
            let user = user.split(':').next().unwrap_or_default();
            format!("{scheme}://{user}@{host}{tail}")
        }
        None => url.to_owned(),
    }
}

/// Accepts any server certificate but still checks the handshake's signatures (libpq's
/// `sslmode=require`: encrypted, not authenticated).
#[derive(Debug)]
struct AnyCert(Arc<rustls::crypto::CryptoProvider>);

impl rustls::client::danger::ServerCertVerifier for AnyCert {
    fn verify_server_cert(
        &self,
        _end_entity: &rustls::pki_types::CertificateDer<'_>,
        _intermediates: &[rustls::pki_types::CertificateDer<'_>],
        _server_name: &rustls::pki_types::ServerName<'_>,
        _ocsp_response: &[u8],
        _now: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

fn tls(verify: &Verify) -> Result<tokio_postgres_rustls::MakeRustlsConnect, SchemaError> {
    let bad = |why: String| SchemaError::Config(format!("--db: TLS: {why}"));
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(Arc::clone(&provider))
        .with_safe_default_protocol_versions()
        .map_err(|e| bad(e.to_string()))?;
    let config = match verify {
        Verify::None => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AnyCert(provider)))
            .with_no_client_auth(),
        Verify::Full(file) => {
            let mut roots = rustls::RootCertStore::empty();
            match file {
                Some(path) => {
                    use rustls::pki_types::pem::PemObject as _;
                    let certs = rustls::pki_types::CertificateDer::pem_file_iter(path)
                        .map_err(|e| bad(format!("sslrootcert {path}: {e}")))?;
                    for c in certs {
                        let c = c.map_err(|e| bad(format!("sslrootcert {path}: {e}")))?;
                        roots
                            .add(c)
                            .map_err(|e| bad(format!("sslrootcert {path}: {e}")))?;
                    }
                }
                None => {
                    let found = rustls_native_certs::load_native_certs();
                    roots.add_parsable_certificates(found.certs);
                }
            }
            if roots.is_empty() {
                return Err(bad("no root certificate to verify the server with".into()));
            }
            builder.with_root_certificates(roots).with_no_client_auth()
        }
    };
    Ok(tokio_postgres_rustls::MakeRustlsConnect::new(config))
}

/// Connects to the database `url` names. `read_only`: every transaction of the session is
/// read-only (`default_transaction_read_only`), for the query commands and the API.
///
/// # Errors
/// A bad locator, TLS settings that cannot be used, or the server refused.
pub fn connect(url: &str, read_only: bool) -> Result<Client, SchemaError> {
    let mut t = parse(url)?;
    // Notices ("already exists, skipping") are not worth a log line.
    let mut opts = t.config.get_options().unwrap_or_default().to_owned();
    opts.push_str(" -c client_min_messages=warning");
    if read_only {
        opts.push_str(" -c default_transaction_read_only=on");
    }
    t.config.options(opts.trim());
    let tls = tls(&t.verify)?;
    Ok(t.config.connect(tls)?)
}

// ---------------------------------------------------------------------------------------------
// Migrations

/// Brings the schema to [`SCHEMA_VERSION`], one transaction per version, holding an advisory
/// lock so collectors starting together migrate once.
///
/// # Errors
/// A step failed (that version is rolled back), or the database is newer.
pub fn migrate(client: &mut Client) -> Result<(), SchemaError> {
    for (i, (what, sql)) in MIGRATIONS.iter().enumerate() {
        let version = i as i32 + 1;
        let mut tx = client.transaction()?;
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&LOCK_MIGRATE])?;
        tx.batch_execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations (
                version     integer PRIMARY KEY,
                description text NOT NULL,
                applied_at  timestamptz NOT NULL DEFAULT now()
            )",
        )?;
        let found = found_version(&mut tx)?;
        if found > SCHEMA_VERSION {
            return Err(SchemaError::TooNew {
                found,
                supported: SCHEMA_VERSION,
            });
        }
        if found >= version as u32 {
            tx.commit()?;
            continue;
        }
        tx.batch_execute(&expand(sql, version as u32))?;
        tx.execute(
            "INSERT INTO schema_migrations (version, description) VALUES ($1, $2)",
            &[&version, what],
        )?;
        tx.commit()?;
        log::info!("postgres: schema migrated to version {version} ({what})");
    }
    Ok(())
}

fn found_version(tx: &mut Transaction<'_>) -> Result<u32, postgres::Error> {
    let v: Option<i32> = tx
        .query_one("SELECT max(version) FROM schema_migrations", &[])?
        .get(0);
    Ok(v.unwrap_or(0).max(0) as u32)
}

/// Checks, without writing, that the database has this build's schema.
///
/// # Errors
/// [`SchemaError::Empty`], [`SchemaError::TooOld`], [`SchemaError::TooNew`], or the server's
/// error.
pub fn check_version(client: &mut Client) -> Result<(), SchemaError> {
    let has: bool = client
        .query_one("SELECT to_regclass('schema_migrations') IS NOT NULL", &[])?
        .get(0);
    if !has {
        return Err(SchemaError::Empty);
    }
    let v: Option<i32> = client
        .query_one("SELECT max(version) FROM schema_migrations", &[])?
        .get(0);
    let found = v.unwrap_or(0).max(0) as u32;
    match found.cmp(&SCHEMA_VERSION) {
        _ if found == 0 => Err(SchemaError::Empty),
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

// ---------------------------------------------------------------------------------------------
// Partitions of closed sessions: one per calendar month (UTC)

/// Months of partitions kept ready after the current one.
pub const MONTHS_AHEAD: i64 = 2;

/// A month as `year * 12 + (month - 1)`.
pub type Month = i64;

/// The month holding `ms`.
pub fn month_of(ms: i64) -> Month {
    let (y, m, _) = civil(ms.div_euclid(86_400_000));
    y * 12 + i64::from(m) - 1
}

/// First millisecond of `month`.
pub fn month_start_ms(month: Month) -> i64 {
    let (y, m) = (month.div_euclid(12), month.rem_euclid(12) as u32 + 1);
    days_from_civil(y, m, 1) * 86_400_000
}

/// The partition of `month`: `sessions_closed_YYYYMM`.
pub fn partition_name(month: Month) -> String {
    format!(
        "sessions_closed_{:04}{:02}",
        month.div_euclid(12),
        month.rem_euclid(12) + 1
    )
}

/// The month of a partition's name (none for the default partition or other names).
pub fn partition_month(name: &str) -> Option<Month> {
    let d = name.strip_prefix("sessions_closed_")?;
    if d.len() != 6 || !d.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let y: i64 = d[..4].parse().ok()?;
    let m: i64 = d[4..].parse().ok()?;
    (1..=12).contains(&m).then_some(y * 12 + m - 1)
}

/// The monthly partitions that exist, sorted.
///
/// # Errors
/// Database errors.
pub fn partitions(
    client: &mut impl postgres::GenericClient,
) -> Result<Vec<Month>, postgres::Error> {
    let rows = client.query(
        "SELECT c.relname::text FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
         WHERE i.inhparent = 'sessions_closed'::regclass",
        &[],
    )?;
    let mut out: Vec<Month> = rows
        .iter()
        .filter_map(|r| partition_month(r.get::<_, &str>(0)))
        .collect();
    out.sort_unstable();
    Ok(out)
}

/// Creates the monthly partitions from the month of `from_ms` to that of `to_ms` that do not
/// exist yet, in one transaction under an advisory lock (collectors may do this together).
/// Rows of those months already in the default partition are moved into the new one. Each is
/// made as a plain table and attached (a lighter lock than `CREATE … PARTITION OF`: ingest
/// into the other partitions goes on). Returns how many were created.
///
/// # Errors
/// Database errors (nothing is created).
pub fn ensure_partitions(
    client: &mut Client,
    from_ms: i64,
    to_ms: i64,
) -> Result<usize, postgres::Error> {
    let (lo, hi) = (month_of(from_ms), month_of(to_ms));
    let mut tx = client.transaction()?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&LOCK_PARTITIONS])?;
    let have = partitions(&mut tx)?;
    let mut made = 0;
    for m in lo..=hi {
        if have.binary_search(&m).is_ok() {
            continue;
        }
        let (name, a, b) = (partition_name(m), month_start_ms(m), month_start_ms(m + 1));
        tx.batch_execute(&format!(
            "CREATE TABLE {name} (LIKE sessions_closed INCLUDING DEFAULTS INCLUDING CONSTRAINTS);
             ALTER TABLE {name} ADD CONSTRAINT {name}_range
                 CHECK (stop_ms >= {a} AND stop_ms < {b});
             WITH moved AS (DELETE FROM sessions_closed_default
                            WHERE stop_ms >= {a} AND stop_ms < {b} RETURNING *)
                 INSERT INTO {name} SELECT * FROM moved;
             ALTER TABLE sessions_closed ATTACH PARTITION {name} FOR VALUES FROM ({a}) TO ({b});
             ALTER TABLE {name} DROP CONSTRAINT {name}_range;"
        ))?;
        made += 1;
    }
    tx.commit()?;
    Ok(made)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn months_and_partition_names() {
        // 2026-05-20T00:00:00Z
        let ms = 1_779_235_200_000;
        let m = month_of(ms);
        assert_eq!(partition_name(m), "sessions_closed_202605");
        assert_eq!(partition_month("sessions_closed_202605"), Some(m));
        assert_eq!(month_start_ms(m), 1_777_593_600_000); // 2026-05-01
        assert_eq!(partition_name(m + 8), "sessions_closed_202701");
        assert_eq!(month_start_ms(m + 1) - month_start_ms(m), 31 * 86_400_000);
        assert_eq!(partition_month("sessions_closed_default"), None);
        assert_eq!(month_of(month_start_ms(m) - 1), m - 1);
    }

    #[test]
    fn urls_keep_tls_settings_and_hide_passwords() {
        let t = parse(
            "postgres://u:secret@db.example:5433/ws?sslmode=verify-full&sslrootcert=%2Fca.pem",
        )
        .unwrap();
        assert_eq!(t.verify, Verify::Full(Some("/ca.pem".into())));
        assert_eq!(t.config.get_ssl_mode(), postgres::config::SslMode::Require);
        assert_eq!(t.config.get_dbname(), Some("ws"));
        let t = parse("postgresql://u@%2Ftmp%2Fpg/ws?sslmode=require").unwrap();
        assert_eq!(t.verify, Verify::None);
        assert!(parse("postgres://u@h/db?sslmode=sometimes").is_err());
        assert_eq!(
            redact("postgres://u:secret@h:1/db?x=1"),
            "postgres://u@h:1/db?x=1"
        );
        assert_eq!(redact("postgres://h/db"), "postgres://h/db");
        assert!(is_url("postgresql://x") && !is_url("/var/lib/x.db"));
    }
}
