//! The agent's configuration: defaults < UCI file < `WIFISESS_*` environment < flags, every
//! option described once in [`settings::SETTINGS`].
//!
//! Every option is first collected as text with the place it came from, then checked once
//! by its setting, so an error names the option, the bad value and where it was set, and
//! `check-config` can show the source of every effective value.

use core::fmt;
use std::path::{Path, PathBuf};

pub mod settings;
pub mod uci;

use settings::{Kind, Setting, Value, SETTINGS};

/// The UCI file read when `--config` is not given.
pub const DEFAULT_CONFIG: &str = "/etc/config/wifisess";

/// The CA bundle `mqtts://` brokers are verified against when `ca_file` is not set (OpenWrt's
/// `ca-bundle` package, Debian's `ca-certificates`).
pub const SYSTEM_CA_BUNDLE: &str = "/etc/ssl/certs/ca-certificates.crt";

/// Where an effective value came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Origin {
    /// The built-in default.
    Default,
    /// Derived at start (the default device id), with what from (`MAC of eth0`).
    Derived(String),
    /// A UCI file, at a line.
    Uci(PathBuf, usize),
    /// The environment variable of an option (the option's name here: the variable is
    /// `WIFISESS_` and the name in upper case).
    Env(&'static str),
    /// A command-line flag (its name without `--`).
    Flag(&'static str),
    /// Given by the program itself ([`from_pairs`]: tests, tools).
    Given,
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::Default => f.write_str("default"),
            Origin::Derived(from) => write!(f, "derived: {from}"),
            Origin::Uci(p, l) => write!(f, "{}:{l}", p.display()),
            Origin::Env(name) => write!(f, "environment {}", env_var(name)),
            Origin::Flag(fl) => write!(f, "flag --{fl}"),
            Origin::Given => f.write_str("given"),
        }
    }
}

/// A configuration error: one line naming the option and the bad value (exit status 2).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigError(pub String);

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ConfigError {}

/// The broker to connect to, from `mqtt://HOST[:PORT]` (also `tcp://`) or
/// `mqtts://HOST[:PORT]`. The scheme is required: `host:1883` alone is refused, so a
/// forgotten `mqtts://` cannot quietly become a plain connection.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Broker {
    /// Host name or address (IPv6 without brackets).
    pub host: String,
    /// TCP port (1883, or 8883 for `mqtts`).
    pub port: u16,
    /// TLS (`mqtts://`).
    pub tls: bool,
}

impl fmt::Display for Broker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let scheme = if self.tls { "mqtts" } else { "mqtt" };
        if self.host.contains(':') {
            write!(f, "{scheme}://[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{scheme}://{}:{}", self.host, self.port)
        }
    }
}

impl Broker {
    /// Parses a broker URL; `None` if it is not one.
    pub fn parse(s: &str) -> Option<Broker> {
        let (tls, rest) = if let Some(r) = s.strip_prefix("mqtts://") {
            (true, r)
        } else if let Some(r) = s
            .strip_prefix("mqtt://")
            .or_else(|| s.strip_prefix("tcp://"))
        {
            (false, r)
        } else {
            return None;
        };
        let rest = rest.strip_suffix('/').unwrap_or(rest);
        let default_port = if tls { 8883 } else { 1883 };
        let (host, port) = if let Some(r) = rest.strip_prefix('[') {
            let (h, tail) = r.split_once(']')?;
            let port = match tail.strip_prefix(':') {
                Some(p) => p.parse().ok()?,
                None if tail.is_empty() => default_port,
                None => return None,
            };
            (h, port)
        } else {
            match rest.rsplit_once(':') {
                Some((h, p)) => (h, p.parse().ok()?),
                None => (rest, default_port),
            }
        };
        let ok = !host.is_empty()
            && host
                .bytes()
                .all(|c| c.is_ascii_alphanumeric() || b".-_:".contains(&c));
        (ok && port != 0).then(|| Broker {
            host: host.into(),
            port,
            tls,
        })
    }
}

/// How client MACs are published.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MacPrivacy {
    /// As they are.
    Off,
    /// HMAC-SHA256(mac_key, MAC), truncated to 6 bytes, locally-administered bit set.
    Hmac,
}

/// The effective configuration of `run`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    /// `enabled`: run at all (procd starts the agent only when set; `run` exits 0 otherwise).
    pub enabled: bool,
    /// `device_id`: the name in the topics; default the first Ethernet MAC, 12 hex digits.
    pub device_id: String,
    /// `organization` announced in the status.
    pub organization: Option<String>,
    /// `group` (site, building) announced in the status.
    pub group: Option<String>,
    /// `name` (human name of the access point) announced in the status.
    pub name: Option<String>,
    /// `broker`; `None` when not configured (then `run` refuses to start).
    pub broker: Option<Broker>,
    /// `username` for the broker.
    pub username: Option<String>,
    /// `password` for the broker.
    pub password: Option<String>,
    /// `ca_file`: PEM CA bundle to verify an `mqtts` broker.
    pub ca_file: Option<PathBuf>,
    /// `cert_file`: PEM client certificate (with `key_file`).
    pub cert_file: Option<PathBuf>,
    /// `key_file`: PEM private key of the client certificate.
    pub key_file: Option<PathBuf>,
    /// `topic_prefix`, default `wifisess/v1`.
    pub topic_prefix: String,
    /// `poll_interval`: station dump period, s.
    pub poll_interval_s: u32,
    /// `interim_interval`: update period per open session, s.
    pub interim_interval_s: u32,
    /// `rejoin_grace`: flap-merge window, s.
    pub rejoin_grace_s: u32,
    /// `batch_ms`: longest wait before publishing a batch, ms.
    pub batch_ms: u32,
    /// `outbox_capacity`: events held while the broker is unreachable.
    pub outbox_capacity: u32,
    /// `spool_file`: where SIGTERM writes the unacknowledged outbox.
    pub spool_file: PathBuf,
    /// `mac_privacy`.
    pub mac_privacy: MacPrivacy,
    /// `mac_key`: the HMAC key for `mac_privacy hmac`.
    pub mac_key: Option<String>,
    /// `dhcp_leases`: dnsmasq's lease file, where client hostnames come from (read only when
    /// `hostnames` is on; it may be missing).
    pub dhcp_leases: Option<PathBuf>,
    /// `hostnames`: send clients' hostnames from `dhcp_leases` with their sessions; by
    /// default on, but off under `mac_privacy` (a hostname names a person as a MAC does).
    pub hostnames: bool,
    /// `log_level`.
    pub log_level: log::LevelFilter,
    /// `list interface`: AP interfaces to watch; empty = all.
    pub interfaces: Vec<String>,
}

/// Values given on the command line (the highest precedence).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Flags {
    /// `--config PATH`.
    pub config: Option<PathBuf>,
    /// `(option, value)` of each setting flag (`--broker URL`), in command-line order; a list
    /// option (`--interface`) may repeat.
    pub values: Vec<(&'static str, String)>,
}

/// The environment variable of option `name`: `WIFISESS_` and the name in upper case.
fn env_var(name: &str) -> String {
    format!("WIFISESS_{}", name.to_ascii_uppercase())
}

/// One collected value: the option, its text, where it came from.
type Raw = (&'static str, String, Origin);

/// The configuration with the origin of every value (for `check-config`).
#[derive(Clone, Debug)]
pub struct Effective {
    /// The parsed configuration.
    pub config: Config,
    /// The UCI file consulted, and whether it existed.
    pub file: (PathBuf, bool),
    /// (option, raw value, origin), in [`SETTINGS`] order; unset options are absent.
    pub raw: Vec<Raw>,
    /// What was ignored, one line each (unknown UCI options, with the nearest known one).
    pub warnings: Vec<String>,
}

impl Effective {
    /// The `check-config` listing: one `option value  # origin` line per option, the
    /// password (and MAC key) masked.
    pub fn render(&self) -> String {
        let mut out = format!(
            "# configuration file: {}{}\n",
            self.file.0.display(),
            if self.file.1 { "" } else { " (absent)" }
        );
        for s in SETTINGS {
            let name = s.name;
            let vals: Vec<_> = self.raw.iter().filter(|(n, _, _)| *n == name).collect();
            if vals.is_empty() {
                out.push_str(&format!("{name:<17} (not set)\n"));
            }
            for (_, v, origin) in vals {
                let shown = match s.kind {
                    Kind::Secret { .. } => "********",
                    _ => v,
                };
                out.push_str(&format!("{name:<17} {shown:?}  # {origin}\n"));
            }
        }
        out
    }
}

/// Loads the configuration from the UCI file, the environment (`env`, normally
/// `std::env::var`) and `flags`. `default_id` supplies the default device id and where it
/// came from ([`crate::host::default_device_id`]).
///
/// # Errors
/// A [`ConfigError`] naming the option, the bad value and where it came from.
pub fn load(
    flags: &Flags,
    env: &dyn Fn(&str) -> Option<String>,
    default_id: &dyn Fn() -> Option<(String, String)>,
) -> Result<Effective, ConfigError> {
    let (path, explicit) = match (&flags.config, env("WIFISESS_CONFIG")) {
        (Some(p), _) => (p.clone(), true),
        (None, Some(p)) => (PathBuf::from(p), true),
        (None, None) => (PathBuf::from(DEFAULT_CONFIG), false),
    };
    let mut raw = defaults();
    let mut warnings = Vec::new();
    let exists = read_uci(&path, explicit, &mut raw, &mut warnings)?;
    for s in SETTINGS {
        if let Some(v) = env(&env_var(s.name)) {
            let vals: Vec<String> = if s.kind == Kind::Interface {
                v.split([',', ' '])
                    .filter(|s| !s.is_empty())
                    .map(String::from)
                    .collect()
            } else {
                vec![v]
            };
            set(&mut raw, s.name, vals, Origin::Env(s.name));
        }
    }
    for s in SETTINGS {
        let vals: Vec<String> = flags
            .values
            .iter()
            .filter(|(n, _)| *n == s.name)
            .map(|(_, v)| v.clone())
            .collect();
        if let (false, Some(f)) = (vals.is_empty(), s.flag) {
            set(&mut raw, s.name, vals, Origin::Flag(f));
        }
    }
    finish(raw, (path, exists), warnings, default_id)
}

/// A configuration from `(option, value)` pairs over the defaults, nothing else read (no
/// UCI file, no environment, no derived device id): for tests and tools.
///
/// # Errors
/// As [`load`]; an unknown option name is an error too.
pub fn from_pairs(pairs: &[(&str, &str)]) -> Result<Config, ConfigError> {
    let mut raw = defaults();
    for &(name, v) in pairs {
        let s =
            settings::find(name).ok_or_else(|| ConfigError(format!("unknown option {name:?}")))?;
        if s.kind == Kind::Interface {
            raw.push((s.name, v.into(), Origin::Given));
        } else {
            set(&mut raw, s.name, vec![v.into()], Origin::Given);
        }
    }
    Ok(finish(raw, (PathBuf::new(), false), Vec::new(), &|| None)?.config)
}

/// Every default, as collected values.
fn defaults() -> Vec<Raw> {
    SETTINGS
        .iter()
        .filter_map(|s| s.default.map(|d| (s.name, d.to_string(), Origin::Default)))
        .collect()
}

/// The derived device id when none is set, [`SETTINGS`] order, then the checks.
fn finish(
    mut raw: Vec<Raw>,
    file: (PathBuf, bool),
    warnings: Vec<String>,
    default_id: &dyn Fn() -> Option<(String, String)>,
) -> Result<Effective, ConfigError> {
    if !raw.iter().any(|(n, _, _)| *n == "device_id") {
        if let Some((id, from)) = default_id() {
            raw.push(("device_id", id, Origin::Derived(from)));
        }
    }
    // Hostnames identify people: off by default when MACs are pseudonymised.
    if !raw.iter().any(|(n, _, _)| *n == "hostnames") {
        let private = raw
            .iter()
            .any(|(n, v, _)| *n == "mac_privacy" && v == "hmac");
        let (v, why) = match private {
            true => ("0", "off under mac_privacy hmac"),
            false => ("1", "on without mac_privacy"),
        };
        raw.push(("hostnames", v.into(), Origin::Derived(why.into())));
    }
    // Into SETTINGS order, keeping the order within an option (a list). Not `sort_by_key`: a
    // stable sort is a few KB of generic code in the router build.
    let raw = {
        let mut sorted = Vec::with_capacity(raw.len());
        for s in SETTINGS {
            let (this, rest): (Vec<_>, Vec<_>) =
                raw.into_iter().partition(|(n, _, _)| *n == s.name);
            sorted.extend(this);
            raw = rest;
        }
        sorted
    };
    let config = parse(&raw)?;
    Ok(Effective {
        config,
        file,
        raw,
        warnings,
    })
}

/// Replaces every value of `name` with `vals`.
fn set(raw: &mut Vec<Raw>, name: &'static str, vals: Vec<String>, o: Origin) {
    raw.retain(|(n, _, _)| *n != name);
    raw.extend(vals.into_iter().map(|v| (name, v, o.clone())));
}

/// Reads the `config agent` section of a UCI file into `raw`; returns whether the file
/// exists. Unknown options are ignored with a warning naming the nearest known one.
fn read_uci(
    path: &Path,
    explicit: bool,
    raw: &mut Vec<Raw>,
    warnings: &mut Vec<String>,
) -> Result<bool, ConfigError> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && !explicit => return Ok(false),
        Err(e) => return Err(ConfigError(format!("config file {}: {e}", path.display()))),
    };
    let sections = uci::parse(&text)
        .map_err(|e| ConfigError(format!("config file {}: {e}", path.display())))?;
    let agent = sections
        .iter()
        .filter(|s| s.stype == "agent")
        .max_by_key(|s| s.name.as_deref() == Some("agent"));
    let Some(agent) = agent else { return Ok(true) };
    // Values per option, with the line of its first value (a list's origin).
    let mut found: Vec<(&'static Setting, Vec<String>, usize)> = Vec::new();
    for e in &agent.entries {
        let Some(s) = settings::find(&e.key) else {
            let hint = settings::closest(&e.key)
                .map(|k| format!(" (did you mean '{k}'?)"))
                .unwrap_or_default();
            warnings.push(format!(
                "{}:{}: unknown option '{}' ignored{hint}",
                path.display(),
                e.line,
                e.key
            ));
            continue;
        };
        match found.iter_mut().find(|(f, _, _)| f.name == s.name) {
            Some((_, v, line)) if s.kind == Kind::Interface => {
                v.push(e.value.clone());
                *line = (*line).min(e.line);
            }
            Some((_, v, line)) => (*v, *line) = (vec![e.value.clone()], e.line),
            None => found.push((s, vec![e.value.clone()], e.line)),
        }
    }
    for (s, vals, line) in found {
        set(raw, s.name, vals, Origin::Uci(path.to_path_buf(), line));
    }
    Ok(true)
}

/// `option NAME: "VALUE" WHAT (from ORIGIN)`.
fn bad(name: &str, v: &str, what: &str, origin: &Origin) -> ConfigError {
    ConfigError(format!("option {name}: {v:?} {what} (from {origin})"))
}

/// Checks every collected value by its setting and builds the configuration.
fn parse(raw: &[Raw]) -> Result<Config, ConfigError> {
    let mut vals: Vec<(&'static str, Value)> = Vec::with_capacity(raw.len());
    for (name, v, origin) in raw {
        let kind = settings::find(name).map_or(Kind::Text { max: 0 }, |s| s.kind);
        let value = settings::check(kind, v).map_err(|what| bad(name, v, &what, origin))?;
        vals.push((name, value));
    }
    let get = |name: &str| vals.iter().find(|(n, _)| *n == name).map(|(_, v)| v);
    let text = |name: &str| match get(name) {
        Some(Value::Text(t)) => Some(t.clone()),
        _ => None,
    };
    let path = |name: &str| match get(name) {
        Some(Value::Path(p)) => Some(p.clone()),
        _ => None,
    };
    let num = |name: &str| match get(name) {
        Some(Value::Number(n)) => *n,
        _ => 0,
    };
    let Some(device_id) = text("device_id") else {
        return Err(ConfigError(
            "option device_id: not set, and no default (no Ethernet or wireless MAC in /sys/class, \
             no /etc/machine-id)"
                .into(),
        ));
    };
    let mac_privacy = match get("mac_privacy") {
        Some(Value::MacPrivacy(m)) => *m,
        _ => MacPrivacy::Off,
    };
    let mac_key = text("mac_key");
    if mac_privacy == MacPrivacy::Hmac && mac_key.is_none() {
        return Err(ConfigError(
            "option mac_key: not set, but mac_privacy is hmac".into(),
        ));
    }
    let broker = match get("broker") {
        Some(Value::Broker(b)) => Some(b.clone()),
        _ => None,
    };
    if broker.as_ref().is_some_and(|b| b.tls)
        && path("ca_file").is_none()
        && !Path::new(SYSTEM_CA_BUNDLE).is_file()
    {
        return Err(ConfigError(
            "option ca_file: not set, and the system CA bundle /etc/ssl/certs/ca-certificates.crt \
             does not exist (install ca-bundle, or set ca_file)"
                .into(),
        ));
    }
    let (cert_file, key_file) = (path("cert_file"), path("key_file"));
    if cert_file.is_some() != key_file.is_some() {
        return Err(ConfigError(
            "option cert_file: cert_file and key_file go together".into(),
        ));
    }
    Ok(Config {
        enabled: !matches!(get("enabled"), Some(Value::Bool(false))),
        device_id,
        organization: text("organization"),
        group: text("group"),
        name: text("name"),
        broker,
        username: text("username"),
        password: text("password"),
        ca_file: path("ca_file"),
        cert_file,
        key_file,
        topic_prefix: text("topic_prefix").unwrap_or_default(),
        poll_interval_s: num("poll_interval"),
        interim_interval_s: num("interim_interval"),
        rejoin_grace_s: num("rejoin_grace"),
        batch_ms: num("batch_ms"),
        outbox_capacity: num("outbox_capacity"),
        spool_file: path("spool_file").unwrap_or_default(),
        mac_privacy,
        mac_key,
        dhcp_leases: path("dhcp_leases"),
        hostnames: matches!(get("hostnames"), Some(Value::Bool(true))),
        log_level: match get("log_level") {
            Some(Value::LogLevel(l)) => *l,
            _ => log::LevelFilter::Info,
        },
        interfaces: vals
            .iter()
            .filter_map(|(n, v)| match v {
                Value::Text(t) if *n == "interface" => Some(t.clone()),
                _ => None,
            })
            .collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_env(_: &str) -> Option<String> {
        None
    }

    fn eth() -> Option<(String, String)> {
        Some(("02fc00000001".into(), "MAC of eth0".into()))
    }

    fn write(text: &str) -> (PathBuf, Flags) {
        use std::sync::atomic::{AtomicU32, Ordering};
        static N: AtomicU32 = AtomicU32::new(0);
        let p = std::env::temp_dir().join(format!(
            "wifisess-cfg-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::write(&p, text).unwrap();
        (
            p.clone(),
            Flags {
                config: Some(p),
                ..Flags::default()
            },
        )
    }

    fn err(text: &str) -> String {
        let (_p, flags) = write(text);
        load(&flags, &no_env, &eth).unwrap_err().to_string()
    }

    #[test]
    fn defaults_without_a_file() {
        let flags = Flags::default();
        let env = |v: &str| (v == "WIFISESS_CONFIG").then(|| "/nonexistent/wifisess".to_string());
        // An explicit (env) path that does not exist is an error...
        assert!(load(&flags, &env, &eth).is_err());
        // ...the default path is optional (absent on this machine, or present on a router).
        let c = load(&flags, &no_env, &eth);
        if !Path::new(DEFAULT_CONFIG).exists() {
            let e = c.unwrap();
            let c = e.config.clone();
            assert_eq!(c.device_id, "02fc00000001");
            assert_eq!(c.topic_prefix, "wifisess/v1");
            assert_eq!(
                (c.poll_interval_s, c.interim_interval_s, c.rejoin_grace_s),
                (10, 300, 10)
            );
            assert_eq!((c.batch_ms, c.outbox_capacity), (100, 1024));
            assert_eq!(c.spool_file, PathBuf::from("/tmp/wifisess.spool"));
            assert_eq!(c.log_level, log::LevelFilter::Info);
            assert!(c.enabled && c.broker.is_none());
            assert!(
                e.render()
                    .contains("device_id         \"02fc00000001\"  # derived: MAC of eth0\n"),
                "{}",
                e.render()
            );
        }
        // The same defaults without any file at all.
        let c = from_pairs(&[("device_id", "x")]).unwrap();
        assert_eq!((c.poll_interval_s, c.outbox_capacity), (10, 1024));
        assert_eq!(c.dhcp_leases, Some(PathBuf::from("/tmp/dhcp.leases")));
        assert!(c.hostnames);
    }

    /// Issue 20: hostnames identify people, so they follow `mac_privacy` unless set.
    #[test]
    fn hostnames_are_off_under_mac_privacy_unless_asked_for() {
        let private = [
            ("device_id", "x"),
            ("mac_privacy", "hmac"),
            ("mac_key", "k"),
        ];
        assert!(!from_pairs(&private).unwrap().hostnames);
        let asked = [&private[..], &[("hostnames", "1")]].concat();
        assert!(from_pairs(&asked).unwrap().hostnames);
        assert!(
            !from_pairs(&[("device_id", "x"), ("hostnames", "off")])
                .unwrap()
                .hostnames
        );
        let (_p, flags) = write(
            "config agent 'agent'\n option mac_privacy 'hmac'\n option mac_key 'k'\n option dhcp_leases ''\n",
        );
        let e = load(&flags, &no_env, &eth).unwrap();
        assert_eq!((e.config.hostnames, &e.config.dhcp_leases), (false, &None));
        let shown = e.render();
        assert!(
            shown.contains("hostnames         \"0\"  # derived: off under mac_privacy hmac\n"),
            "{shown}"
        );
        let e = err("config agent 'agent'\n\toption dhcp_leases '/tmp'\n");
        assert!(
            e.starts_with("option dhcp_leases: \"/tmp\" is a directory, not a file (from "),
            "{e}"
        );
    }

    #[test]
    fn precedence_flags_env_uci_defaults() {
        let (_p, mut flags) = write(
            "config agent 'agent'\n option broker 'mqtt://uci:1883'\n option device_id 'uci-dev'\n option poll_interval '20'\n option password 'secret'\n list interface 'wlan0'\n list interface 'wlan1'\n",
        );
        let env = |v: &str| match v {
            "WIFISESS_DEVICE_ID" => Some("env-dev".to_string()),
            "WIFISESS_BROKER" => Some("mqtts://env".to_string()),
            _ => None,
        };
        let e = load(&flags, &env, &eth).unwrap();
        assert_eq!(e.config.device_id, "env-dev");
        assert_eq!(e.config.poll_interval_s, 20);
        assert_eq!(e.config.interfaces, ["wlan0", "wlan1"]);
        assert_eq!(
            e.config.broker,
            Some(Broker {
                host: "env".into(),
                port: 8883,
                tls: true
            })
        );
        flags.values = vec![
            ("device_id", "flag-dev".into()),
            ("interface", "phy0-ap0".into()),
            ("interface", "phy1-ap0".into()),
        ];
        let e = load(&flags, &env, &eth).unwrap();
        assert_eq!(e.config.device_id, "flag-dev");
        assert_eq!(e.config.interfaces, ["phy0-ap0", "phy1-ap0"]);
        let shown = e.render();
        assert!(
            shown.contains("device_id         \"flag-dev\"  # flag --device-id"),
            "{shown}"
        );
        assert!(shown.contains("poll_interval     \"20\"  # "), "{shown}");
        assert!(shown.contains(":5\n"), "origin names the UCI line: {shown}");
        assert!(shown.contains("password          \"********\""), "{shown}");
        assert!(!shown.contains("secret"));
        assert!(
            shown.contains("broker            \"mqtts://env\"  # environment WIFISESS_BROKER\n"),
            "{shown}"
        );
        assert!(
            shown.contains("topic_prefix      \"wifisess/v1\"  # default\n"),
            "{shown}"
        );
        assert!(shown.contains("mac_key           (not set)\n"), "{shown}");
    }

    #[test]
    fn bad_values_name_the_option_and_value() {
        let e = err("config agent 'agent'\n\toption poll_interval 'abc'\n");
        assert!(
            e.starts_with("option poll_interval: \"abc\" is not a number of seconds (from "),
            "{e}"
        );
        assert!(e.ends_with(":2)"), "{e}");
        let e = err("config agent 'agent'\n\toption broker 'http://x'\n");
        assert!(
            e.starts_with("option broker: \"http://x\" is not a broker URL"),
            "{e}"
        );
        let e = err("config agent 'agent'\n\toption mac_privacy 'hmac'\n");
        assert_eq!(e, "option mac_key: not set, but mac_privacy is hmac");
        let e = err("config agent 'agent'\n\toption broker 'x\n");
        assert!(e.ends_with(": line 2: unterminated single quote"), "{e}");
        let (_p, flags) = write("config agent 'agent'\n");
        let e = load(&flags, &no_env, &|| None).unwrap_err().to_string();
        assert!(
            e.starts_with("option device_id: not set, and no default"),
            "{e}"
        );
    }

    /// Issue 18: configuration that says no. Each of these passed `check-config` before.
    #[test]
    fn what_was_accepted_before_issue_18_is_refused() {
        let e = err("config agent 'agent'\n\toption enabled 'maybe'\n");
        assert!(
            e.starts_with("option enabled: \"maybe\" is not a boolean (1/0, yes/no"),
            "{e}"
        );
        let e = err("config agent 'agent'\n\toption broker 'host.example:1883'\n");
        assert!(
            e.starts_with("option broker: \"host.example:1883\" is not a broker URL (mqtt://"),
            "{e}"
        );
        assert!(e.contains("with the scheme"), "{e}");
        let e = err("config agent 'agent'\n\toption ca_file '/nonexistent/ca.pem'\n");
        assert!(
            e.starts_with("option ca_file: \"/nonexistent/ca.pem\" cannot be read: No such file"),
            "{e}"
        );
        assert!(e.ends_with(":2)"), "{e}");
        let e =
            err("config agent 'agent'\n\toption spool_file '/nonexistent/dir/wifisess.spool'\n");
        assert!(
            e.starts_with(
                "option spool_file: \"/nonexistent/dir/wifisess.spool\" is in a directory that does not exist (/nonexistent/dir)"
            ),
            "{e}"
        );
        // OpenWrt's other spellings of a boolean are fine.
        let (_p, flags) = write("config agent 'agent'\n\toption enabled 'no'\n");
        assert!(!load(&flags, &no_env, &eth).unwrap().config.enabled);
    }

    #[test]
    fn unknown_options_are_warned_about_with_the_closest_known_one() {
        let (p, flags) = write(
            "config agent 'agent'\n\toption brokr 'mqtt://x'\n\toption frobnicate '1'\n\toption poll_interval '5'\n",
        );
        let e = load(&flags, &no_env, &eth).unwrap();
        assert_eq!(
            e.warnings,
            [
                format!(
                    "{}:2: unknown option 'brokr' ignored (did you mean 'broker'?)",
                    p.display()
                ),
                format!("{}:3: unknown option 'frobnicate' ignored", p.display()),
            ]
        );
        assert_eq!(e.config.poll_interval_s, 5, "the known options still apply");
        assert!(e.config.broker.is_none());
    }

    #[test]
    fn broker_urls() {
        let b = |s| Broker::parse(s);
        assert_eq!(b("mqtt://h").unwrap().to_string(), "mqtt://h:1883");
        assert_eq!(b("tcp://10.0.0.1:1884").unwrap().port, 1884);
        assert_eq!(
            b("mqtt://h.example:99").unwrap().to_string(),
            "mqtt://h.example:99"
        );
        assert_eq!(
            b("mqtts://[::1]").unwrap().to_string(),
            "mqtts://[::1]:8883"
        );
        assert!(b("h.example:99").is_none(), "no scheme");
        assert!(b("h.example").is_none(), "no scheme");
        assert!(b("mqtts://[::1]:x").is_none());
        assert!(b("ws://h").is_none());
        assert!(b("mqtt://").is_none());
        assert!(b("mqtt://h:0").is_none());
        assert!(b("mqtt://a b").is_none());
    }
}
