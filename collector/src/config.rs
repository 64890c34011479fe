//! Configuration: defaults < TOML file < `WIFISESS_*` environment < command-line flags.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

pub use crate::store::DbLocator;

/// The file read when `--config` is not given, if it exists in the working directory.
pub const DEFAULT_CONFIG_FILE: &str = "wifisess-collector.toml";

/// A configuration problem: one line naming the option and the bad value (exit code 2).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ConfigError(pub String);

/// A device of the inventory: overrides what the agent announces.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InventoryDevice {
    /// Device id (as in the MQTT topic).
    pub id: String,
    /// Display name.
    pub name: Option<String>,
    /// Organization.
    pub organization: Option<String>,
    /// Group (site, building).
    pub group: Option<String>,
}

/// What an API bearer token may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Every `GET` endpoint.
    Read,
    /// Also `POST /api/v1/sessions/refresh`.
    Admin,
}

/// An API bearer token (`[[tokens]]`): only its SHA-256 is configured, never the token.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenConfig {
    /// SHA-256 of the token, 64 hex digits (`printf %s TOKEN | sha256sum`).
    pub sha256: String,
    /// What the token may do.
    pub role: Role,
    /// If set, the token sees only this organization's devices and sessions.
    pub organization: Option<String>,
}

/// The collector's settings, resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// The database: an SQLite file or a PostgreSQL URL (`--db`, `[store] url`, `db`).
    pub db: DbLocator,
    /// Broker host.
    pub broker_host: String,
    /// Broker port.
    pub broker_port: u16,
    /// Topic prefix, without a trailing slash (`wifisess/v1`).
    pub topic_prefix: String,
    /// MQTT client id; fixed, because the broker keeps the persistent session under it. In a
    /// share group each collector connects as `{client_id}-{instance}`.
    pub client_id: String,
    /// `--share-group NAME`: subscribe through `$share/NAME/…` with the other collectors of
    /// the group (PostgreSQL only).
    pub share_group: Option<String>,
    /// This collector's name in its share group (default: the host name). Must stay the same
    /// across restarts: the broker keeps the persistent session (and the messages it holds
    /// for this member) under `{client_id}-{instance}`.
    pub instance: Option<String>,
    /// MQTT user name.
    pub username: Option<String>,
    /// MQTT password.
    pub password: Option<String>,
    /// Days closed sessions are kept (used by the retention job, a later issue).
    pub retention_days: u32,
    /// Hours of device silence before its open sessions expire (expiry job, a later issue).
    pub expire_hours: u32,
    /// Minutes without client activity after which an open session is flagged dangling.
    pub dangling_minutes: u32,
    /// SPEC §7's `roam_window`, seconds: a session on another AP of the same organization
    /// that starts at most this long after the client's previous session stopped (or before
    /// it stopped) is a roam.
    pub roam_window_s: u32,
    /// Days the hourly and daily trends and the per-day client sets are kept (0: forever);
    /// independent of `retention_days`, usually much longer.
    pub aggregate_retention_days: u32,
    /// CSV `mac,label` naming clients (sessions, failed joins, roams, presence), reloaded
    /// when it changes.
    pub labels_file: Option<PathBuf>,
    /// The IEEE OUI registry as CSV (Debian `ieee-data`): client vendors; reloaded when it
    /// changes (checked at most once a minute). A missing file: no vendors, one warning.
    pub oui_file: PathBuf,
    /// Messages per SQLite transaction at most (group commit).
    pub commit_max_messages: usize,
    /// `--http ADDR`: where the HTTP API listens (`None`: the default, 127.0.0.1:8080).
    pub http: Option<String>,
    /// Inventory.
    pub devices: Vec<InventoryDevice>,
    /// Open sessions allowed per organization (`[max_open_sessions]` table: name = limit);
    /// exceeding it is reported by `status` and `sessions`, nothing is refused.
    pub max_open_sessions: BTreeMap<String, u32>,
    /// API bearer tokens; none: the API is open, and only a loopback address may be bound.
    pub tokens: Vec<TokenConfig>,
    /// Bounds of the HTTP API and the readiness thresholds (`[limits]`).
    pub limits: Limits,
}

/// The bounds under hostile load (`[limits]` in the TOML file; docs/API.md, "Limits").
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Limits {
    /// Open HTTP connections at most; one more is answered 503 and closed.
    pub http_connections: usize,
    /// Seconds a client may take to send a request's headers (also the idle time allowed
    /// between two requests of a kept-alive connection).
    pub http_header_timeout_s: u64,
    /// Seconds a response may wait for a client that stopped reading before the connection
    /// is closed (CSV exports, event streams).
    pub http_write_timeout_s: u64,
    /// Seconds a handler may take to produce its response's head.
    pub http_request_timeout_s: u64,
    /// Event streams (`GET /api/v1/stream`) open at once, in all.
    pub streams: usize,
    /// Event streams open at once per token (per client address without tokens).
    pub streams_per_token: usize,
    /// CSV exports running at once.
    pub csv_exports: usize,
    /// `/readyz` fails when a transaction has run, or waiting messages have not advanced,
    /// for this many seconds, or the broker has been unreachable for as long.
    pub ready_stall_s: u64,
    /// MQTT keep-alive, seconds: the broker drops the collector after 1.5 × this without a
    /// packet from it; the collector reconnects when nothing at all came from the broker for
    /// this long after a ping.
    pub mqtt_keep_alive_s: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            http_connections: 512,
            http_header_timeout_s: 10,
            http_write_timeout_s: 30,
            http_request_timeout_s: 30,
            streams: 384,
            streams_per_token: 128,
            csv_exports: 8,
            ready_stall_s: 60,
            mqtt_keep_alive_s: 30,
        }
    }
}

impl Config {
    /// The derive step's settings.
    pub fn derive(&self) -> crate::derive::DeriveConfig {
        crate::derive::DeriveConfig {
            roam_window_ms: i64::from(self.roam_window_s) * 1000,
        }
    }

    /// This collector's name among those sharing the database and the broker: the configured
    /// `instance`, else the host name.
    pub fn instance_name(&self) -> String {
        self.instance.clone().unwrap_or_else(host_name)
    }

    /// The MQTT client id: `client_id`, or `{client_id}-{instance}` in a share group.
    pub fn mqtt_client_id(&self) -> String {
        match self.share_group {
            Some(_) => format!("{}-{}", self.client_id, self.instance_name()),
            None => self.client_id.clone(),
        }
    }

    /// The topic filters to subscribe: `{prefix}/+/events` and `{prefix}/+/status`, through
    /// `$share/{group}/` in a share group.
    pub fn topic_filters(&self) -> [String; 2] {
        let share = self
            .share_group
            .as_ref()
            .map(|g| format!("$share/{g}/"))
            .unwrap_or_default();
        [
            format!("{share}{}/+/events", self.topic_prefix),
            format!("{share}{}/+/status", self.topic_prefix),
        ]
    }

    /// The configured inventory, for the writer.
    pub fn inventory(&self) -> crate::core::device::Inventory {
        crate::core::device::Inventory::new(self.devices.iter().map(|d| {
            (
                d.id.clone(),
                crate::core::device::Names {
                    name: d.name.clone(),
                    organization: d.organization.clone(),
                    group: d.group.clone(),
                },
            )
        }))
    }
}

impl Default for Config {
    fn default() -> Self {
        Config {
            db: DbLocator::Sqlite(PathBuf::from("wifisess.db")),
            broker_host: "127.0.0.1".into(),
            broker_port: 1883,
            topic_prefix: "wifisess/v1".into(),
            client_id: "wifisess-collector".into(),
            share_group: None,
            instance: None,
            username: None,
            password: None,
            retention_days: 180,
            expire_hours: 4,
            dangling_minutes: 60,
            roam_window_s: crate::derive::ROAM_WINDOW_S,
            aggregate_retention_days: 730,
            labels_file: None,
            oui_file: PathBuf::from(crate::read::names::DEFAULT_OUI_FILE),
            commit_max_messages: 2000,
            http: None,
            devices: Vec::new(),
            max_open_sessions: BTreeMap::new(),
            tokens: Vec::new(),
            limits: Limits::default(),
        }
    }
}

/// `[store]`: where the database is.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct StoreSection {
    /// An SQLite path or a PostgreSQL URL.
    url: Option<PathBuf>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    db: Option<PathBuf>,
    store: Option<StoreSection>,
    share_group: Option<String>,
    instance: Option<String>,
    broker: Option<String>,
    topic_prefix: Option<String>,
    client_id: Option<String>,
    username: Option<String>,
    password: Option<String>,
    retention_days: Option<u32>,
    expire_hours: Option<u32>,
    dangling_minutes: Option<u32>,
    roam_window_s: Option<u32>,
    aggregate_retention_days: Option<u32>,
    labels_file: Option<PathBuf>,
    oui_file: Option<PathBuf>,
    commit_max_messages: Option<usize>,
    http: Option<String>,
    #[serde(default)]
    devices: Vec<InventoryDevice>,
    #[serde(default)]
    max_open_sessions: BTreeMap<String, u32>,
    #[serde(default)]
    tokens: Vec<TokenConfig>,
    #[serde(default)]
    limits: Limits,
}

/// Values given on the command line (highest precedence).
#[derive(Debug, Clone, Default)]
pub struct Flags {
    /// `--config PATH`.
    pub config: Option<PathBuf>,
    /// `--db PATH`.
    pub db: Option<PathBuf>,
    /// `--broker URL`.
    pub broker: Option<String>,
    /// `--http ADDR`.
    pub http: Option<String>,
    /// `--share-group NAME`.
    pub share_group: Option<String>,
    /// `--instance NAME`.
    pub instance: Option<String>,
}

/// Parses `mqtt://host[:port]` (or `tcp://`, or a bare `host[:port]`).
///
/// # Errors
/// A [`ConfigError`] naming `option` when the URL is not usable.
pub fn parse_broker(option: &str, url: &str) -> Result<(String, u16), ConfigError> {
    let bad = |why: &str| ConfigError(format!("{option}: {why}: {url:?}"));
    let rest = if let Some((scheme, rest)) = url.split_once("://") {
        match scheme {
            "mqtt" | "tcp" => rest,
            "mqtts" | "ssl" => return Err(bad("TLS is not supported by this build (use mqtt://)")),
            _ => return Err(bad("unknown scheme (expected mqtt://host:port)")),
        }
    } else {
        url
    };
    let rest = rest.trim_end_matches('/');
    let (host, port) = match rest.rsplit_once(':') {
        Some((h, p)) => (h, p.parse::<u16>().map_err(|_| bad("bad port"))?),
        None => (rest, 1883),
    };
    if host.is_empty() || host.contains('/') || port == 0 {
        return Err(bad("expected mqtt://host:port"));
    }
    Ok((
        host.trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned(),
        port,
    ))
}

fn env_num<T: std::str::FromStr>(
    env: &dyn Fn(&str) -> Option<String>,
    name: &str,
) -> Result<Option<T>, ConfigError> {
    match env(name) {
        None => Ok(None),
        Some(v) => v
            .trim()
            .parse()
            .map(Some)
            .map_err(|_| ConfigError(format!("{name}: not a valid number: {v:?}"))),
    }
}

/// Resolves the configuration from defaults, the file, the environment (`env`) and `flags`.
///
/// # Errors
/// A [`ConfigError`] naming the first bad option.
pub fn load(flags: &Flags, env: &dyn Fn(&str) -> Option<String>) -> Result<Config, ConfigError> {
    let mut c = Config::default();
    let file_path = flags
        .config
        .clone()
        .or_else(|| env("WIFISESS_CONFIG").map(PathBuf::from));
    let file = match &file_path {
        Some(p) => Some(read_file(p)?),
        None if Path::new(DEFAULT_CONFIG_FILE).exists() => {
            Some(read_file(Path::new(DEFAULT_CONFIG_FILE))?)
        }
        None => None,
    };
    if let Some(f) = file {
        if let Some(v) = f.db {
            c.db = DbLocator::parse(&v);
        }
        if let Some(v) = f.store.and_then(|s| s.url) {
            c.db = DbLocator::parse(&v);
        }
        c.share_group = f.share_group.or(c.share_group);
        c.instance = f.instance.or(c.instance);
        if let Some(v) = f.broker {
            (c.broker_host, c.broker_port) = parse_broker("broker", &v)?;
        }
        c.topic_prefix = f.topic_prefix.unwrap_or(c.topic_prefix);
        c.client_id = f.client_id.unwrap_or(c.client_id);
        c.username = f.username.or(c.username);
        c.password = f.password.or(c.password);
        c.retention_days = f.retention_days.unwrap_or(c.retention_days);
        c.expire_hours = f.expire_hours.unwrap_or(c.expire_hours);
        c.dangling_minutes = f.dangling_minutes.unwrap_or(c.dangling_minutes);
        c.roam_window_s = f.roam_window_s.unwrap_or(c.roam_window_s);
        c.aggregate_retention_days = f
            .aggregate_retention_days
            .unwrap_or(c.aggregate_retention_days);
        c.labels_file = f.labels_file.or(c.labels_file);
        c.oui_file = f.oui_file.unwrap_or(c.oui_file);
        c.commit_max_messages = f.commit_max_messages.unwrap_or(c.commit_max_messages);
        c.http = f.http.or(c.http);
        c.devices = f.devices;
        c.max_open_sessions = f.max_open_sessions;
        c.tokens = f.tokens;
        c.limits = f.limits;
    }
    if let Some(v) = env("WIFISESS_DB") {
        c.db = DbLocator::parse(Path::new(&v));
    }
    c.share_group = env("WIFISESS_SHARE_GROUP").or(c.share_group);
    c.instance = env("WIFISESS_INSTANCE").or(c.instance);
    if let Some(v) = env("WIFISESS_BROKER") {
        (c.broker_host, c.broker_port) = parse_broker("WIFISESS_BROKER", &v)?;
    }
    c.topic_prefix = env("WIFISESS_TOPIC_PREFIX").unwrap_or(c.topic_prefix);
    c.client_id = env("WIFISESS_CLIENT_ID").unwrap_or(c.client_id);
    c.username = env("WIFISESS_USERNAME").or(c.username);
    c.password = env("WIFISESS_PASSWORD").or(c.password);
    c.retention_days = env_num(env, "WIFISESS_RETENTION_DAYS")?.unwrap_or(c.retention_days);
    c.expire_hours = env_num(env, "WIFISESS_EXPIRE_HOURS")?.unwrap_or(c.expire_hours);
    c.dangling_minutes = env_num(env, "WIFISESS_DANGLING_MINUTES")?.unwrap_or(c.dangling_minutes);
    c.roam_window_s = env_num(env, "WIFISESS_ROAM_WINDOW_S")?.unwrap_or(c.roam_window_s);
    c.aggregate_retention_days =
        env_num(env, "WIFISESS_AGGREGATE_RETENTION_DAYS")?.unwrap_or(c.aggregate_retention_days);
    if let Some(v) = env("WIFISESS_LABELS_FILE") {
        c.labels_file = Some(PathBuf::from(v));
    }
    if let Some(v) = env("WIFISESS_OUI_FILE") {
        c.oui_file = PathBuf::from(v);
    }
    c.http = env("WIFISESS_HTTP").or(c.http);
    if let Some(v) = &flags.db {
        c.db = DbLocator::parse(v);
    }
    if let Some(v) = &flags.share_group {
        c.share_group = Some(v.clone());
    }
    if let Some(v) = &flags.instance {
        c.instance = Some(v.clone());
    }
    if let Some(v) = &flags.broker {
        (c.broker_host, c.broker_port) = parse_broker("--broker", v)?;
    }
    if let Some(v) = &flags.http {
        c.http = Some(v.clone());
    }
    validate(&c)?;
    Ok(c)
}

/// The host name (`/proc/sys/kernel/hostname`), or `collector` if it cannot be read.
fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().replace(['/', '+', '#'], "_"))
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "collector".into())
}

fn read_file(p: &Path) -> Result<FileConfig, ConfigError> {
    let text = std::fs::read_to_string(p)
        .map_err(|e| ConfigError(format!("--config: cannot read {}: {e}", p.display())))?;
    toml::from_str(&text).map_err(|e| {
        let msg = e.message().to_owned();
        ConfigError(format!("{}: {msg}", p.display()))
    })
}

/// The shortest API token accepted (characters). A configured hash cannot tell its token's
/// length, so it is enforced where it can be: a presented token shorter than this never
/// authenticates ([`crate::http::auth`]), and hashes of the empty string, of every token of
/// one or two printable ASCII characters and of [`WEAK_TOKENS`] are refused at load.
pub const MIN_TOKEN_LEN: usize = 16;

/// Tokens refused by their hash whatever their length: what a placeholder or an unset
/// variable gives (`printf %s "$TOKEN" | sha256sum` with `TOKEN` unset hashes "").
pub const WEAK_TOKENS: &[&str] = &[
    "",
    "\n",
    "token",
    "secret",
    "password",
    "changeme",
    "change-me",
    "admin",
    "reader",
    "read",
    "test",
    "example",
    "TOKEN",
    "CHANGEME",
    "s3cret",
    "s3cret-admin",
    "1234567890123456",
];

/// Checks one configured token hash: 64 hex digits, not the hash of a known-weak token.
///
/// # Errors
/// Why the hash is refused.
pub fn check_token_hash(h: &str) -> Result<(), String> {
    use sha2::{Digest, Sha256};
    if h.len() != 64 || !h.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err("expected 64 hex digits (printf %s TOKEN | sha256sum)".into());
    }
    let want: Vec<u8> = (0..32)
        .map(|i| u8::from_str_radix(&h[2 * i..2 * i + 2], 16).unwrap_or(0))
        .collect();
    let is = |t: &[u8]| Sha256::digest(t).as_slice() == want.as_slice();
    if is(b"") {
        return Err(
            "this is the SHA-256 of the empty string (was the token variable unset?); \
                    generate a token with `openssl rand -hex 32`"
                .into(),
        );
    }
    if let Some(w) = WEAK_TOKENS.iter().find(|w| is(w.as_bytes())) {
        return Err(format!(
            "this is the SHA-256 of the well-known token {w:?}; generate one with `openssl rand -hex 32`"
        ));
    }
    let printable = 0x20u8..0x7f;
    for a in printable.clone() {
        if is(&[a]) || printable.clone().any(|b| is(&[a, b])) {
            return Err(format!(
                "this is the SHA-256 of a token of at most 2 characters; tokens need at least \
                 {MIN_TOKEN_LEN} (`openssl rand -hex 32`)"
            ));
        }
    }
    Ok(())
}

fn validate(c: &Config) -> Result<(), ConfigError> {
    let p = &c.topic_prefix;
    if p.is_empty() || p.ends_with('/') || p.contains(['+', '#']) {
        return Err(ConfigError(format!(
            "topic_prefix: must be non-empty, without wildcards or a trailing '/': {p:?}"
        )));
    }
    if c.client_id.is_empty() {
        return Err(ConfigError("client_id: must not be empty".into()));
    }
    if c.roam_window_s > 3600 {
        return Err(ConfigError(format!(
            "roam_window_s: at most 3600 seconds (a roam is a move, not a visit): {}",
            c.roam_window_s
        )));
    }
    if c.commit_max_messages == 0 {
        return Err(ConfigError(
            "commit_max_messages: must be at least 1".into(),
        ));
    }
    for (i, t) in c.tokens.iter().enumerate() {
        check_token_hash(&t.sha256)
            .map_err(|why| ConfigError(format!("tokens[{i}].sha256: {why}")))?;
    }
    let l = &c.limits;
    for (name, v) in [
        ("http_connections", l.http_connections as u64),
        ("http_header_timeout_s", l.http_header_timeout_s),
        ("http_write_timeout_s", l.http_write_timeout_s),
        ("http_request_timeout_s", l.http_request_timeout_s),
        ("streams", l.streams as u64),
        ("streams_per_token", l.streams_per_token as u64),
        ("csv_exports", l.csv_exports as u64),
        ("ready_stall_s", l.ready_stall_s),
        ("mqtt_keep_alive_s", l.mqtt_keep_alive_s),
    ] {
        if v == 0 {
            return Err(ConfigError(format!("limits.{name}: must be at least 1")));
        }
    }
    if matches!(&c.db, DbLocator::Sqlite(p) if p.as_os_str().is_empty()) {
        return Err(ConfigError("db: must not be empty".into()));
    }
    for (opt, v) in [("share_group", &c.share_group), ("instance", &c.instance)] {
        if let Some(v) = v {
            if v.is_empty() || v.contains(['/', '+', '#']) {
                return Err(ConfigError(format!(
                    "{opt}: must be non-empty, without '/', '+' or '#': {v:?}"
                )));
            }
        }
    }
    if c.share_group.is_some() && matches!(c.db, DbLocator::Sqlite(_)) {
        return Err(ConfigError(
            "share_group: the collectors of a share group need one PostgreSQL database \
             (--db postgres://…); an SQLite file has one writer"
                .into(),
        ));
    }
    let mut ids = std::collections::BTreeSet::new();
    for d in &c.devices {
        if d.id.is_empty() || d.id.contains(['/', '+', '#']) {
            return Err(ConfigError(format!(
                "devices: id must be non-empty, without '/', '+' or '#': {:?}",
                d.id
            )));
        }
        if !ids.insert(d.id.as_str()) {
            return Err(ConfigError(format!("devices: id {:?} listed twice", d.id)));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_beat_env_beat_file() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("c.toml");
        std::fs::write(
            &f,
            "db = \"file.db\"\nbroker = \"mqtt://filehost:1\"\nexpire_hours = 9\n\
             [[devices]]\nid = \"ap1\"\nname = \"Lobby\"\n",
        )
        .unwrap();
        let env = |k: &str| match k {
            "WIFISESS_BROKER" => Some("mqtt://envhost:2".to_owned()),
            "WIFISESS_EXPIRE_HOURS" => Some("7".to_owned()),
            _ => None,
        };
        let flags = Flags {
            config: Some(f),
            db: Some("flag.db".into()),
            ..Flags::default()
        };
        let c = load(&flags, &env).unwrap();
        assert_eq!(c.db, DbLocator::Sqlite(PathBuf::from("flag.db")));
        assert_eq!((c.broker_host.as_str(), c.broker_port), ("envhost", 2));
        assert_eq!(c.expire_hours, 7);
        assert_eq!(c.devices[0].name.as_deref(), Some("Lobby"));
    }

    #[test]
    fn bad_values_name_the_option() {
        let env = |k: &str| (k == "WIFISESS_EXPIRE_HOURS").then(|| "soon".to_owned());
        let e = load(&Flags::default(), &env).unwrap_err();
        assert!(e.0.starts_with("WIFISESS_EXPIRE_HOURS"), "{e}");
        let flags = Flags {
            broker: Some("http://x".into()),
            ..Flags::default()
        };
        assert!(load(&flags, &|_| None)
            .unwrap_err()
            .0
            .starts_with("--broker"));
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("c.toml");
        std::fs::write(&f, "retention = 3\n").unwrap();
        let flags = Flags {
            config: Some(f.clone()),
            ..Flags::default()
        };
        assert!(load(&flags, &|_| None).unwrap_err().0.contains("retention"));
        std::fs::write(&f, "[[devices]]\nid = \"ap1\"\n[[devices]]\nid = \"ap1\"\n").unwrap();
        assert!(load(&flags, &|_| None)
            .unwrap_err()
            .0
            .contains("listed twice"));
    }

    /// Issue 19: `printf %s "$TOKEN" | sha256sum` with TOKEN unset configured the hash of "",
    /// and `?access_token=` with no value got in as admin.
    #[test]
    fn weak_token_hashes_are_refused_at_load() {
        use sha2::{Digest, Sha256};
        let hex = |t: &str| -> String {
            Sha256::digest(t.as_bytes())
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect()
        };
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("c.toml");
        let flags = Flags {
            config: Some(f.clone()),
            ..Flags::default()
        };
        for (tok, why) in [
            ("", "empty string"),
            ("x", "at most 2 characters"),
            ("ab", "at most 2 characters"),
            ("changeme", "well-known"),
        ] {
            std::fs::write(
                &f,
                format!("[[tokens]]\nsha256 = \"{}\"\nrole = \"admin\"\n", hex(tok)),
            )
            .unwrap();
            let e = load(&flags, &|_| None).unwrap_err();
            assert!(
                e.0.starts_with("tokens[0].sha256") && e.0.contains(why),
                "{tok:?}: {e}"
            );
        }
        std::fs::write(&f, "[[tokens]]\nsha256 = \"e3b0c442\"\nrole = \"admin\"\n").unwrap();
        assert!(load(&flags, &|_| None)
            .unwrap_err()
            .0
            .contains("64 hex digits"));
        let good = hex("a-long-enough-token-0123456789");
        std::fs::write(
            &f,
            format!(
                "[[tokens]]\nsha256 = \"{}\"\nrole = \"read\"\n",
                good.to_uppercase()
            ),
        )
        .unwrap();
        assert_eq!(load(&flags, &|_| None).unwrap().tokens.len(), 1);
        std::fs::write(&f, "[limits]\ncsv_exports = 0\n").unwrap();
        assert!(load(&flags, &|_| None)
            .unwrap_err()
            .0
            .starts_with("limits.csv_exports"));
    }

    #[test]
    fn postgres_urls_and_share_groups() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("c.toml");
        std::fs::write(
            &f,
            "share_group = \"fleet\"\ninstance = \"c1\"\n[store]\nurl = \"postgresql://ws@db/ws\"\n",
        )
        .unwrap();
        let flags = Flags {
            config: Some(f),
            ..Flags::default()
        };
        let c = load(&flags, &|_| None).unwrap();
        assert_eq!(c.db, DbLocator::Postgres("postgresql://ws@db/ws".into()));
        assert_eq!(c.mqtt_client_id(), "wifisess-collector-c1");
        assert_eq!(
            c.topic_filters(),
            [
                "$share/fleet/wifisess/v1/+/events".to_owned(),
                "$share/fleet/wifisess/v1/+/status".to_owned()
            ]
        );
        let env = |k: &str| (k == "WIFISESS_DB").then(|| "postgres://u:pw@h/d".to_owned());
        let c = load(&Flags::default(), &env).unwrap();
        assert_eq!(c.db.display(), "postgres://u@h/d");
        assert_eq!(c.mqtt_client_id(), "wifisess-collector");
        let flags = Flags {
            share_group: Some("g".into()),
            db: Some("x.db".into()),
            ..Flags::default()
        };
        assert!(load(&flags, &|_| None)
            .unwrap_err()
            .0
            .starts_with("share_group: the collectors"));
    }

    #[test]
    fn organization_limits_are_read() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("c.toml");
        std::fs::write(&f, "[max_open_sessions]\nacme = 2\n\"Big Corp\" = 500\n").unwrap();
        let flags = Flags {
            config: Some(f),
            ..Flags::default()
        };
        let c = load(&flags, &|_| None).unwrap();
        assert_eq!(c.max_open_sessions.get("acme"), Some(&2));
        assert_eq!(c.max_open_sessions.get("Big Corp"), Some(&500));
    }
}
