//! The agent's configuration: defaults < UCI file < `WIFISESS_*` environment < flags.
//!
//! Every option is first collected as text with the place it came from, then parsed once, so
//! an error names the option, the bad value and where it was set, and `check-config` can show
//! the source of every effective value.

use core::fmt;
use std::path::{Path, PathBuf};

use crate::uci;

/// The UCI file read when `--config` is not given.
pub const DEFAULT_CONFIG: &str = "/etc/config/wifisess";

/// Where an effective value came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Origin {
    /// The built-in default.
    Default,
    /// Derived at start (the device id from the first Ethernet interface).
    Derived,
    /// A UCI file, at a line.
    Uci(PathBuf, usize),
    /// The environment variable of an option (the option's name here: the variable is
    /// `WIFISESS_` and the name in upper case).
    Env(&'static str),
    /// A command-line flag.
    Flag(&'static str),
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::Default => f.write_str("default"),
            Origin::Derived => f.write_str("derived"),
            Origin::Uci(p, l) => write!(f, "{}:{l}", p.display()),
            Origin::Env(name) => write!(f, "environment {}", env_var(name)),
            Origin::Flag(fl) => write!(f, "flag {fl}"),
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

/// The broker to connect to, from `mqtt://HOST[:PORT]` (also `tcp://`, or no scheme) or
/// `mqtts://HOST[:PORT]`.
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
        } else if s.contains("://") {
            return None;
        } else {
            (false, s)
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
    /// `--broker URL`.
    pub broker: Option<String>,
    /// `--device-id ID`.
    pub device_id: Option<String>,
    /// `--interface IF`, repeatable.
    pub interfaces: Vec<String>,
    /// `--log-level L`.
    pub log_level: Option<String>,
}

/// The options and their defaults, in display order. Each one's environment variable is
/// `WIFISESS_` and its name in upper case (see [`Origin::Env`]).
const OPTIONS: &[(&str, Option<&str>)] = &[
    ("enabled", Some("1")),
    ("device_id", None),
    ("organization", None),
    ("group", None),
    ("name", None),
    ("broker", None),
    ("username", None),
    ("password", None),
    ("ca_file", None),
    ("cert_file", None),
    ("key_file", None),
    ("topic_prefix", Some("wifisess/v1")),
    ("poll_interval", Some("10")),
    ("interim_interval", Some("300")),
    ("rejoin_grace", Some("10")),
    ("batch_ms", Some("100")),
    ("outbox_capacity", Some("1024")),
    ("spool_file", Some("/tmp/wifisess.spool")),
    ("mac_privacy", Some("off")),
    ("mac_key", None),
    ("log_level", Some("info")),
    ("interface", None),
];

/// The environment variable of option `name`: `WIFISESS_` and the name in upper case.
fn env_var(name: &str) -> String {
    format!("WIFISESS_{}", name.to_ascii_uppercase())
}

/// The configuration with the origin of every value (for `check-config`).
#[derive(Clone, Debug)]
pub struct Effective {
    /// The parsed configuration.
    pub config: Config,
    /// The UCI file consulted, and whether it existed.
    pub file: (PathBuf, bool),
    /// (option, raw value, origin), in [`OPTIONS`] order; unset options are absent.
    pub raw: Vec<(&'static str, String, Origin)>,
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
        for &(name, _) in OPTIONS {
            let vals: Vec<_> = self.raw.iter().filter(|(n, _, _)| *n == name).collect();
            if vals.is_empty() {
                out.push_str(&format!("{name:<17} (not set)\n"));
            }
            for (_, v, origin) in vals {
                let shown = match name {
                    "password" | "mac_key" => "********".to_string(),
                    "device_id" => self.config.device_id.clone(),
                    _ => v.clone(),
                };
                out.push_str(&format!("{name:<17} {shown:?}  # {origin}\n"));
            }
        }
        out
    }
}

/// Loads the configuration from the UCI file, the environment (`env`, normally
/// `std::env::var`) and `flags`. `first_ether` supplies the default device id.
///
/// # Errors
/// A [`ConfigError`] naming the option, the bad value and where it came from.
pub fn load(
    flags: &Flags,
    env: &dyn Fn(&str) -> Option<String>,
    first_ether: &dyn Fn() -> Option<String>,
) -> Result<Effective, ConfigError> {
    let (path, explicit) = match (&flags.config, env("WIFISESS_CONFIG")) {
        (Some(p), _) => (p.clone(), true),
        (None, Some(p)) => (PathBuf::from(p), true),
        (None, None) => (PathBuf::from(DEFAULT_CONFIG), false),
    };
    let mut raw: Vec<(&'static str, String, Origin)> = OPTIONS
        .iter()
        .filter_map(|&(n, d)| d.map(|d| (n, d.to_string(), Origin::Default)))
        .collect();
    let exists = read_uci(&path, explicit, &mut raw)?;
    for &(name, _) in OPTIONS {
        if let Some(v) = env(&env_var(name)) {
            if name == "interface" {
                let list: Vec<_> = v.split([',', ' ']).filter(|s| !s.is_empty()).collect();
                set_list(
                    &mut raw,
                    name,
                    list.into_iter().map(String::from),
                    Origin::Env(name),
                );
            } else {
                set(&mut raw, name, v, Origin::Env(name));
            }
        }
    }
    if let Some(v) = &flags.broker {
        set(&mut raw, "broker", v.clone(), Origin::Flag("--broker"));
    }
    if let Some(v) = &flags.device_id {
        set(
            &mut raw,
            "device_id",
            v.clone(),
            Origin::Flag("--device-id"),
        );
    }
    if let Some(v) = &flags.log_level {
        set(
            &mut raw,
            "log_level",
            v.clone(),
            Origin::Flag("--log-level"),
        );
    }
    if !flags.interfaces.is_empty() {
        set_list(
            &mut raw,
            "interface",
            flags.interfaces.iter().cloned(),
            Origin::Flag("--interface"),
        );
    }
    if !raw.iter().any(|(n, _, _)| *n == "device_id") {
        if let Some(mac) = first_ether() {
            raw.push(("device_id", mac, Origin::Derived));
        }
    }
    // Into OPTIONS order, keeping the order within an option (a list). Not `sort_by_key`: a
    // stable sort is a few KB of generic code in the router build.
    let raw = {
        let mut sorted = Vec::with_capacity(raw.len());
        for &(name, _) in OPTIONS {
            let (this, rest): (Vec<_>, Vec<_>) = raw.into_iter().partition(|(n, _, _)| *n == name);
            sorted.extend(this);
            raw = rest;
        }
        sorted.extend(raw);
        sorted
    };
    let config = parse(&raw)?;
    Ok(Effective {
        config,
        file: (path, exists),
        raw,
    })
}

fn set(raw: &mut Vec<(&'static str, String, Origin)>, name: &'static str, v: String, o: Origin) {
    raw.retain(|(n, _, _)| *n != name);
    raw.push((name, v, o));
}

fn set_list(
    raw: &mut Vec<(&'static str, String, Origin)>,
    name: &'static str,
    vals: impl Iterator<Item = String>,
    o: Origin,
) {
    raw.retain(|(n, _, _)| *n != name);
    raw.extend(vals.map(|v| (name, v, o.clone())));
}

/// Reads the `config agent` section of a UCI file into `raw`; returns whether the file exists.
fn read_uci(
    path: &Path,
    explicit: bool,
    raw: &mut Vec<(&'static str, String, Origin)>,
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
    let mut lists: Vec<(&'static str, Vec<String>, usize)> = Vec::new();
    for e in &agent.entries {
        let Some(&(name, _)) = OPTIONS.iter().find(|(n, _)| *n == e.key) else {
            log::warn!(
                "{}:{}: unknown option {:?} ignored",
                path.display(),
                e.line,
                e.key
            );
            continue;
        };
        let origin = Origin::Uci(path.to_path_buf(), e.line);
        if name == "interface" {
            match lists.iter_mut().find(|(n, _, _)| *n == name) {
                Some((_, v, _)) => v.push(e.value.clone()),
                None => lists.push((name, vec![e.value.clone()], e.line)),
            }
        } else {
            set(raw, name, e.value.clone(), origin);
        }
    }
    for (name, vals, line) in lists {
        set_list(
            raw,
            name,
            vals.into_iter(),
            Origin::Uci(path.to_path_buf(), line),
        );
    }
    Ok(true)
}

fn bad(name: &str, v: &str, what: &str, origin: &Origin) -> ConfigError {
    ConfigError(format!("option {name}: {v:?} {what} (from {origin})"))
}

/// Parses the collected raw values.
fn parse(raw: &[(&'static str, String, Origin)]) -> Result<Config, ConfigError> {
    let get = |name: &str| {
        raw.iter()
            .find(|(n, _, _)| *n == name)
            .map(|(_, v, o)| (v.as_str(), o))
    };
    let text = |name: &str, max: usize| -> Result<Option<String>, ConfigError> {
        match get(name) {
            None => Ok(None),
            Some(("", _)) => Ok(None),
            Some((v, o)) if v.len() > max => {
                Err(bad(name, v, &format!("is longer than {max} bytes"), o))
            }
            Some((v, _)) => Ok(Some(v.to_string())),
        }
    };
    let num = |name: &str, lo: u32, hi: u32, unit: &str| -> Result<u32, ConfigError> {
        let (v, o) = get(name).expect("numeric options have defaults");
        let n: u32 = v
            .trim()
            .parse()
            .map_err(|_| bad(name, v, &format!("is not a number of {unit}"), o))?;
        if !(lo..=hi).contains(&n) {
            return Err(bad(
                name,
                v,
                &format!("is out of range ({lo}..{hi} {unit})"),
                o,
            ));
        }
        Ok(n)
    };
    let path = |name: &str| text(name, 4096).map(|v| v.map(PathBuf::from));

    let enabled = match get("enabled") {
        Some(("1" | "yes" | "on" | "true" | "enabled", _)) => true,
        Some(("0" | "no" | "off" | "false" | "disabled", _)) => false,
        Some((v, o)) => return Err(bad("enabled", v, "is not a boolean (0 or 1)", o)),
        None => true,
    };
    let device_id = match get("device_id") {
        None => {
            return Err(ConfigError(
                "option device_id: not set and no Ethernet interface to derive it from".into(),
            ))
        }
        Some((v, o)) => {
            let ok = !v.is_empty()
                && v.len() <= wifisess_wire::limits::MAX_DEVICE_ID_BYTES
                && v.bytes()
                    .all(|c| c.is_ascii_alphanumeric() || b"-_.:".contains(&c));
            if !ok {
                return Err(bad(
                    "device_id",
                    v,
                    "is not a device id (1-64 of A-Z a-z 0-9 - _ . :, no MQTT wildcards or /)",
                    o,
                ));
            }
            v.to_string()
        }
    };
    let broker = match get("broker") {
        None | Some(("", _)) => None,
        Some((v, o)) => Some(Broker::parse(v).ok_or_else(|| {
            bad(
                "broker",
                v,
                "is not a broker URL (mqtt://HOST[:PORT] or mqtts://HOST[:PORT])",
                o,
            )
        })?),
    };
    let (prefix, po) = get("topic_prefix").expect("default");
    if prefix.is_empty()
        || prefix.starts_with('/')
        || prefix.ends_with('/')
        || prefix.contains(['+', '#'])
    {
        return Err(bad(
            "topic_prefix",
            prefix,
            "is not a topic prefix (no wildcards, no leading or trailing /)",
            po,
        ));
    }
    let mac_privacy = match get("mac_privacy").expect("default") {
        ("off" | "none" | "0", _) => MacPrivacy::Off,
        ("hmac", _) => MacPrivacy::Hmac,
        (v, o) => return Err(bad("mac_privacy", v, "is not off or hmac", o)),
    };
    let mac_key = text("mac_key", 1024)?;
    if mac_privacy == MacPrivacy::Hmac && mac_key.is_none() {
        return Err(ConfigError(
            "option mac_key: not set, but mac_privacy is hmac".into(),
        ));
    }
    let (lv, lo) = get("log_level").expect("default");
    let log_level = match lv.to_ascii_lowercase().as_str() {
        "off" | "none" => log::LevelFilter::Off,
        "error" | "err" => log::LevelFilter::Error,
        "warn" | "warning" => log::LevelFilter::Warn,
        "info" | "notice" => log::LevelFilter::Info,
        "debug" => log::LevelFilter::Debug,
        "trace" => log::LevelFilter::Trace,
        _ => {
            return Err(bad(
                "log_level",
                lv,
                "is not a log level (error, warn, info, debug, trace)",
                lo,
            ))
        }
    };
    let mut interfaces = Vec::new();
    for (n, v, o) in raw {
        if *n == "interface" {
            if v.is_empty()
                || v.len() > wifisess_wire::limits::MAX_IFNAME_BYTES
                || v.contains(['/', ' '])
            {
                return Err(bad("interface", v, "is not an interface name", o));
            }
            interfaces.push(v.clone());
        }
    }
    let cert_file = path("cert_file")?;
    let key_file = path("key_file")?;
    if cert_file.is_some() != key_file.is_some() {
        return Err(ConfigError(
            "option cert_file: cert_file and key_file go together".into(),
        ));
    }
    let text_limit = wifisess_wire::limits::MAX_TEXT_BYTES;
    Ok(Config {
        enabled,
        device_id,
        organization: text("organization", text_limit)?,
        group: text("group", text_limit)?,
        name: text("name", text_limit)?,
        broker,
        username: text("username", 1024)?,
        password: text("password", 1024)?,
        ca_file: path("ca_file")?,
        cert_file,
        key_file,
        topic_prefix: prefix.to_string(),
        poll_interval_s: num("poll_interval", 1, 3600, "seconds")?,
        interim_interval_s: num("interim_interval", 10, 86_400, "seconds")?,
        rejoin_grace_s: num("rejoin_grace", 0, 3600, "seconds")?,
        batch_ms: num("batch_ms", 0, 60_000, "milliseconds")?,
        outbox_capacity: num("outbox_capacity", 1, 1_000_000, "events")?,
        spool_file: path("spool_file")?.unwrap_or_else(|| PathBuf::from("/tmp/wifisess.spool")),
        mac_privacy,
        mac_key,
        log_level,
        interfaces,
    })
}

/// The default device id: the MAC of the first Ethernet interface in `/sys/class/net`
/// (by name; physical devices before virtual ones; loopback, wireless and all-zero MACs
/// skipped), as 12 lowercase hex digits.
pub fn first_ethernet_mac() -> Option<String> {
    first_ethernet_mac_in(Path::new("/sys/class/net"))
}

/// [`first_ethernet_mac`] on another sysfs root (for tests).
pub fn first_ethernet_mac_in(root: &Path) -> Option<String> {
    // The least (virtual, name) among the candidates: physical devices first, then by name.
    // A running minimum rather than sorting the names: no sort code in the router build.
    let mut best: Option<(bool, String, String)> = None;
    for e in std::fs::read_dir(root).ok()?.flatten() {
        let n = e.file_name().to_string_lossy().into_owned();
        let dir = root.join(&n);
        let read = |f: &str| std::fs::read_to_string(dir.join(f)).ok();
        if n == "lo" || read("type").as_deref().map(str::trim) != Some("1") {
            continue;
        }
        if dir.join("wireless").exists() || dir.join("phy80211").exists() {
            continue;
        }
        let Some(addr) = read("address") else {
            continue;
        };
        let hex: String = addr
            .trim()
            .chars()
            .filter(|c| *c != ':')
            .collect::<String>()
            .to_ascii_lowercase();
        if hex.len() != 12
            || hex.bytes().all(|c| c == b'0')
            || !hex.bytes().all(|c| c.is_ascii_hexdigit())
        {
            continue;
        }
        let virt = !dir.join("device").exists();
        if best
            .as_ref()
            .is_none_or(|(bv, bn, _)| (virt, n.as_str()) < (*bv, bn.as_str()))
        {
            best = Some((virt, n, hex));
        }
    }
    best.map(|(_, _, h)| h)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_env(_: &str) -> Option<String> {
        None
    }

    fn eth() -> Option<String> {
        Some("02fc00000001".into())
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

    #[test]
    fn defaults_without_a_file() {
        let flags = Flags {
            config: None,
            ..Flags::default()
        };
        let env = |v: &str| (v == "WIFISESS_CONFIG").then(|| "/nonexistent/wifisess".to_string());
        // An explicit (env) path that does not exist is an error...
        assert!(load(&flags, &env, &eth).is_err());
        // ...the default path is optional (absent on this machine, or present on a router).
        let c = load(&flags, &no_env, &eth);
        if !Path::new(DEFAULT_CONFIG).exists() {
            let c = c.unwrap().config;
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
        }
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
        flags.device_id = Some("flag-dev".into());
        flags.interfaces = vec!["phy0-ap0".into()];
        let e = load(&flags, &env, &eth).unwrap();
        assert_eq!(e.config.device_id, "flag-dev");
        assert_eq!(e.config.interfaces, ["phy0-ap0"]);
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
        let (_p, flags) = write("config agent 'agent'\n\toption poll_interval 'abc'\n");
        let e = load(&flags, &no_env, &eth).unwrap_err().to_string();
        assert!(
            e.starts_with("option poll_interval: \"abc\" is not a number of seconds (from "),
            "{e}"
        );
        assert!(e.ends_with(":2)"), "{e}");
        let (_p, flags) = write("config agent 'agent'\n\toption broker 'http://x'\n");
        let e = load(&flags, &no_env, &eth).unwrap_err().to_string();
        assert!(
            e.starts_with("option broker: \"http://x\" is not a broker URL"),
            "{e}"
        );
        let (_p, flags) = write("config agent 'agent'\n\toption mac_privacy 'hmac'\n");
        let e = load(&flags, &no_env, &eth).unwrap_err().to_string();
        assert_eq!(e, "option mac_key: not set, but mac_privacy is hmac");
        let (_p, flags) = write("config agent 'agent'\n\toption broker 'x\n");
        let e = load(&flags, &no_env, &eth).unwrap_err().to_string();
        assert!(e.ends_with(": line 2: unterminated single quote"), "{e}");
        let (_p, flags) = write("config agent 'agent'\n");
        let e = load(&flags, &no_env, &|| None).unwrap_err().to_string();
        assert!(e.starts_with("option device_id: not set"), "{e}");
    }

    #[test]
    fn broker_urls() {
        let b = |s| Broker::parse(s);
        assert_eq!(b("mqtt://h").unwrap().to_string(), "mqtt://h:1883");
        assert_eq!(b("tcp://10.0.0.1:1884").unwrap().port, 1884);
        assert_eq!(
            b("h.example:99").unwrap().to_string(),
            "mqtt://h.example:99"
        );
        assert_eq!(
            b("mqtts://[::1]").unwrap().to_string(),
            "mqtts://[::1]:8883"
        );
        assert!(b("mqtts://[::1]:x").is_none());
        assert!(b("ws://h").is_none());
        assert!(b("mqtt://").is_none());
        assert!(b("mqtt://h:0").is_none());
        assert!(b("mqtt://a b").is_none());
    }

    #[test]
    fn first_ethernet_skips_lo_wireless_and_virtual() {
        let root = std::env::temp_dir().join(format!("wifisess-sys-{}", std::process::id()));
        let mk = |n: &str, ty: &str, mac: &str, extra: &[&str]| {
            let d = root.join(n);
            std::fs::create_dir_all(&d).unwrap();
            std::fs::write(d.join("type"), ty).unwrap();
            std::fs::write(d.join("address"), mac).unwrap();
            for x in extra {
                std::fs::create_dir_all(d.join(x)).unwrap();
            }
        };
        mk("lo", "772\n", "00:00:00:00:00:00\n", &[]);
        mk("br-lan", "1\n", "AA:BB:CC:00:00:01\n", &[]);
        mk(
            "wlan0",
            "1\n",
            "aa:bb:cc:00:00:02\n",
            &["wireless", "device"],
        );
        mk("eth1", "1\n", "AA:BB:CC:00:00:04\n", &["device"]);
        mk("eth0", "1\n", "AA:BB:CC:00:00:03\n", &["device"]);
        mk("eth2", "1\n", "00:00:00:00:00:00\n", &["device"]);
        assert_eq!(
            first_ethernet_mac_in(&root).as_deref(),
            Some("aabbcc000003")
        );
        // Without a physical device: the first virtual one by name.
        for n in ["eth0", "eth1", "eth2"] {
            std::fs::remove_dir_all(root.join(n)).unwrap();
        }
        mk("br-guest", "1\n", "AA:BB:CC:00:00:05\n", &[]);
        assert_eq!(
            first_ethernet_mac_in(&root).as_deref(),
            Some("aabbcc000005")
        );
        std::fs::remove_dir_all(&root).unwrap();
    }
}
