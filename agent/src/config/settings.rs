//! The one table of settings: each option's name (UCI option; environment variable
//! `WIFISESS_` + the name in upper case), default, command-line flag, and what its value must
//! be. UCI, the environment, the flags and `check-config` all go through it; no default is
//! written anywhere else.

use std::path::{Path, PathBuf};

use super::{Broker, MacPrivacy};

/// What a setting's value must be, and what it becomes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// OpenWrt's booleans: `1 0 yes no on off true false enabled disabled`.
    Bool,
    /// A whole number in `lo..=hi` of `unit`.
    Number {
        /// Smallest value.
        lo: u32,
        /// Largest value.
        hi: u32,
        /// Unit, for messages (`seconds`).
        unit: &'static str,
    },
    /// Free text of at most `max` bytes; empty = unset.
    Text {
        /// Longest value, bytes.
        max: usize,
    },
    /// Like [`Kind::Text`], masked by `check-config`.
    Secret {
        /// Longest value, bytes.
        max: usize,
    },
    /// `A-Z a-z 0-9 - _ . :`, 1-64 bytes (it is part of the MQTT topics).
    DeviceId,
    /// `mqtt://HOST[:PORT]`, `tcp://…` or `mqtts://HOST[:PORT]`; empty = unset.
    Broker,
    /// A file the agent reads: it must exist and be readable; empty = unset.
    File,
    /// A file the agent writes: its directory must exist and be writable.
    WritableFile,
    /// A file the agent reads when it exists (it may appear later): not a directory, readable
    /// if there; empty = unset.
    OptionalFile,
    /// An MQTT topic prefix: no wildcards, no leading or trailing `/`.
    TopicPrefix,
    /// `off` or `hmac`.
    MacPrivacy,
    /// `error warn info debug trace` (and `off`, `err`, `warning`, `notice`).
    LogLevel,
    /// An interface name (a list: `list interface`, repeated flags, comma-separated env).
    Interface,
}

/// One option.
#[derive(Clone, Copy, Debug)]
pub struct Setting {
    /// The UCI option; the environment variable is `WIFISESS_` and this in upper case.
    pub name: &'static str,
    /// The default, as UCI would write it; `None`: unset unless configured (or derived).
    pub default: Option<&'static str>,
    /// The long flag of `run` (`--broker`), if there is one.
    pub flag: Option<&'static str>,
    /// What the value must be.
    pub kind: Kind,
}

const fn opt(name: &'static str, default: Option<&'static str>, kind: Kind) -> Setting {
    Setting {
        name,
        default,
        flag: None,
        kind,
    }
}

const fn flag(
    name: &'static str,
    default: Option<&'static str>,
    f: &'static str,
    kind: Kind,
) -> Setting {
    Setting {
        name,
        default,
        flag: Some(f),
        kind,
    }
}

const SECONDS: &str = "seconds";

/// Every option, in `check-config` order.
pub const SETTINGS: &[Setting] = &[
    opt("enabled", Some("1"), Kind::Bool),
    flag("device_id", None, "device-id", Kind::DeviceId),
    opt("organization", None, Kind::Text { max: TEXT }),
    opt("group", None, Kind::Text { max: TEXT }),
    opt("name", None, Kind::Text { max: TEXT }),
    flag("broker", None, "broker", Kind::Broker),
    opt("username", None, Kind::Text { max: 1024 }),
    opt("password", None, Kind::Secret { max: 1024 }),
    opt("ca_file", None, Kind::File),
    opt("cert_file", None, Kind::File),
    opt("key_file", None, Kind::File),
    opt("topic_prefix", Some("wifisess/v1"), Kind::TopicPrefix),
    opt(
        "poll_interval",
        Some("10"),
        Kind::Number {
            lo: 1,
            hi: 3600,
            unit: SECONDS,
        },
    ),
    opt(
        "interim_interval",
        Some("300"),
        Kind::Number {
            lo: 10,
            hi: 86_400,
            unit: SECONDS,
        },
    ),
    opt(
        "rejoin_grace",
        Some("10"),
        Kind::Number {
            lo: 0,
            hi: 3600,
            unit: SECONDS,
        },
    ),
    opt(
        "batch_ms",
        Some("100"),
        Kind::Number {
            lo: 0,
            hi: 60_000,
            unit: "milliseconds",
        },
    ),
    opt(
        "outbox_capacity",
        Some("1024"),
        Kind::Number {
            lo: 1,
            hi: 1_000_000,
            unit: "events",
        },
    ),
    opt(
        "spool_file",
        Some("/tmp/wifisess.spool"),
        Kind::WritableFile,
    ),
    opt("mac_privacy", Some("off"), Kind::MacPrivacy),
    opt("mac_key", None, Kind::Secret { max: 1024 }),
    flag(
        "dhcp_leases",
        Some("/tmp/dhcp.leases"),
        "dhcp-leases",
        Kind::OptionalFile,
    ),
    // No default: on without mac_privacy, off under it (`config::finish` derives it).
    opt("hostnames", None, Kind::Bool),
    flag("log_level", Some("info"), "log-level", Kind::LogLevel),
    flag("interface", None, "interface", Kind::Interface),
];

const TEXT: usize = wifisess_wire::limits::MAX_TEXT_BYTES;

/// The setting named `name`.
pub fn find(name: &str) -> Option<&'static Setting> {
    SETTINGS.iter().find(|s| s.name == name)
}

/// The setting whose flag is `--flag`.
pub fn by_flag(flag: &str) -> Option<&'static Setting> {
    SETTINGS.iter().find(|s| s.flag == Some(flag))
}

/// The default of a [`Kind::Number`] setting (0 for any other name: a programming error the
/// unit tests catch).
pub fn default_number(name: &str) -> u32 {
    find(name)
        .and_then(|s| s.default)
        .and_then(|d| d.parse().ok())
        .unwrap_or(0)
}

/// A checked value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Value {
    /// Unset (empty text).
    Unset,
    /// [`Kind::Bool`].
    Bool(bool),
    /// [`Kind::Number`].
    Number(u32),
    /// Text kinds, device id, topic prefix, interface.
    Text(String),
    /// [`Kind::File`], [`Kind::WritableFile`].
    Path(PathBuf),
    /// [`Kind::Broker`].
    Broker(Broker),
    /// [`Kind::MacPrivacy`].
    MacPrivacy(MacPrivacy),
    /// [`Kind::LogLevel`].
    LogLevel(log::LevelFilter),
}

/// Checks `v` against `kind`; the error says what is wrong, to follow the quoted value
/// (`is not a number of seconds`).
pub fn check(kind: Kind, v: &str) -> Result<Value, String> {
    let unset = v.is_empty();
    Ok(match kind {
        Kind::Bool => Value::Bool(match v {
            "1" | "yes" | "on" | "true" | "enabled" => true,
            "0" | "no" | "off" | "false" | "disabled" => false,
            _ => {
                return Err(
                    "is not a boolean (1/0, yes/no, on/off, true/false, enabled/disabled)".into(),
                )
            }
        }),
        Kind::Number { lo, hi, unit } => {
            let n: u32 = v
                .parse()
                .map_err(|_| format!("is not a number of {unit}"))?;
            if !(lo..=hi).contains(&n) {
                return Err(format!("is out of range ({lo}..{hi} {unit})"));
            }
            Value::Number(n)
        }
        Kind::Text { .. }
        | Kind::Secret { .. }
        | Kind::Broker
        | Kind::File
        | Kind::OptionalFile
            if unset =>
        {
            Value::Unset
        }
        Kind::Text { max } | Kind::Secret { max } => {
            if v.len() > max {
                return Err(format!("is longer than {max} bytes"));
            }
            Value::Text(v.into())
        }
        Kind::DeviceId => {
            let ok = !v.is_empty()
                && v.len() <= wifisess_wire::limits::MAX_DEVICE_ID_BYTES
                && v.bytes()
                    .all(|c| c.is_ascii_alphanumeric() || b"-_.:".contains(&c));
            if !ok {
                return Err(
                    "is not a device id (1-64 of A-Z a-z 0-9 - _ . :, no MQTT wildcards or /)"
                        .into(),
                );
            }
            Value::Text(v.into())
        }
        Kind::Broker => Value::Broker(Broker::parse(v).ok_or(
            "is not a broker URL (mqtt://HOST[:PORT] or mqtts://HOST[:PORT], with the scheme)",
        )?),
        Kind::File | Kind::OptionalFile => {
            let p = Path::new(v);
            match std::fs::metadata(p) {
                Ok(m) if m.is_dir() => return Err("is a directory, not a file".into()),
                Ok(_) => {
                    std::fs::File::open(p).map_err(|e| format!("cannot be read: {e}"))?;
                }
                Err(e)
                    if kind == Kind::OptionalFile && e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(format!("cannot be read: {e}")),
            }
            Value::Path(p.into())
        }
        Kind::WritableFile => {
            let p = Path::new(v);
            writable(p)?;
            Value::Path(p.into())
        }
        Kind::TopicPrefix => {
            if v.is_empty() || v.starts_with('/') || v.ends_with('/') || v.contains(['+', '#']) {
                return Err(
                    "is not a topic prefix (no wildcards, no leading or trailing /)".into(),
                );
            }
            Value::Text(v.into())
        }
        Kind::MacPrivacy => Value::MacPrivacy(match v {
            "off" | "none" | "0" => MacPrivacy::Off,
            "hmac" => MacPrivacy::Hmac,
            _ => return Err("is not off or hmac".into()),
        }),
        Kind::LogLevel => Value::LogLevel(match v.to_ascii_lowercase().as_str() {
            "off" | "none" => log::LevelFilter::Off,
            "error" | "err" => log::LevelFilter::Error,
            "warn" | "warning" => log::LevelFilter::Warn,
            "info" | "notice" => log::LevelFilter::Info,
            "debug" => log::LevelFilter::Debug,
            "trace" => log::LevelFilter::Trace,
            _ => return Err("is not a log level (error, warn, info, debug, trace)".into()),
        }),
        Kind::Interface => {
            if v.is_empty()
                || v.len() > wifisess_wire::limits::MAX_IFNAME_BYTES
                || v.contains(['/', ' '])
            {
                return Err("is not an interface name".into());
            }
            Value::Text(v.into())
        }
    })
}

/// A file the agent will create: not a directory, in an existing directory it may write.
fn writable(p: &Path) -> Result<(), String> {
    if p.as_os_str().is_empty() {
        return Err("is not a file name".into());
    }
    if p.is_dir() {
        return Err("is a directory, not a file".into());
    }
    let dir = match p.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    if !dir.is_dir() {
        return Err(format!(
            "is in a directory that does not exist ({})",
            dir.display()
        ));
    }
    let c = std::ffi::CString::new(dir.as_os_str().as_encoded_bytes())
        .map_err(|_| "is not a file name".to_string())?;
    // SAFETY: a valid NUL-terminated path; `access` only reads it.
    if unsafe { libc::access(c.as_ptr(), libc::W_OK | libc::X_OK) } != 0 {
        return Err(format!(
            "is in a directory the agent cannot write ({}: {})",
            dir.display(),
            std::io::Error::last_os_error()
        ));
    }
    Ok(())
}

/// The known option nearest to an unknown `name` (at most 2 edits, or a prefix), for
/// "did you mean" hints.
pub fn closest(name: &str) -> Option<&'static str> {
    SETTINGS
        .iter()
        .map(|s| (distance(name, s.name), s.name))
        .filter(|&(d, known)| d <= 2 || (name.len() >= 3 && known.starts_with(name)))
        .min_by_key(|&(d, _)| d)
        .map(|(_, n)| n)
}

/// Levenshtein distance over bytes (option names are ASCII).
fn distance(a: &str, b: &str) -> usize {
    let b = b.as_bytes();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.bytes().enumerate() {
        let mut diag = row[0];
        row[0] = i + 1;
        for (j, &cb) in b.iter().enumerate() {
            let up = row[j + 1];
            row[j + 1] = (diag + usize::from(ca != cb)).min(up + 1).min(row[j] + 1);
            diag = up;
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_default_passes_its_own_check() {
        for s in SETTINGS {
            if let Some(d) = s.default {
                let v = check(s.kind, d);
                // The spool's directory is /tmp, which exists here and on a router.
                assert!(v.is_ok(), "{}: default {d:?}: {v:?}", s.name);
            }
            if let Kind::Number { .. } = s.kind {
                assert!(s.default.is_some(), "{}: numbers have defaults", s.name);
                assert_eq!(
                    check(s.kind, s.default.unwrap()),
                    Ok(Value::Number(default_number(s.name)))
                );
            }
        }
        let names: Vec<_> = SETTINGS.iter().map(|s| s.name).collect();
        for (i, n) in names.iter().enumerate() {
            assert!(!names[..i].contains(n), "{n} twice");
        }
    }

    /// docs/agent.md's option table is checked against this one: name and default.
    #[test]
    fn the_documented_defaults_are_the_table() {
        let doc = include_str!("../../../docs/agent.md");
        for s in SETTINGS {
            let row = format!("| {} | {} |", s.name, s.default.unwrap_or("—"));
            assert!(
                doc.lines().any(|l| l.starts_with(&row)),
                "docs/agent.md has no row starting {row:?}"
            );
        }
    }

    /// The package's UCI defaults (openwrt-package/files/wifisess.config) say what the table
    /// says, but for `enabled`, which the package sets to 0 until a broker is configured.
    #[test]
    fn the_package_defaults_are_the_table() {
        let text = include_str!("../../../openwrt-package/files/wifisess.config");
        let sections = super::super::uci::parse(text).unwrap();
        let agent = sections.iter().find(|s| s.stype == "agent").unwrap();
        assert!(!agent.entries.is_empty());
        for e in &agent.entries {
            let s = find(&e.key).unwrap_or_else(|| panic!("unknown option {}", e.key));
            if s.name == "enabled" {
                assert_eq!(e.value, "0");
                continue;
            }
            assert_eq!(Some(e.value.as_str()), s.default, "option {}", s.name);
        }
    }

    #[test]
    fn booleans_are_openwrts() {
        for t in ["1", "yes", "on", "true", "enabled"] {
            assert_eq!(check(Kind::Bool, t), Ok(Value::Bool(true)));
        }
        for f in ["0", "no", "off", "false", "disabled"] {
            assert_eq!(check(Kind::Bool, f), Ok(Value::Bool(false)));
        }
        for bad in ["maybe", "", "YES", "2"] {
            assert!(check(Kind::Bool, bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn files_must_exist_and_spool_directories_must_be_writable() {
        let e = check(Kind::File, "/nonexistent/ca.pem").unwrap_err();
        assert!(e.starts_with("cannot be read: No such file"), "{e}");
        assert_eq!(
            check(Kind::File, "/tmp").unwrap_err(),
            "is a directory, not a file"
        );
        assert_eq!(check(Kind::File, ""), Ok(Value::Unset));
        assert!(check(Kind::File, "/proc/self/status").is_ok());
        let e = check(Kind::WritableFile, "/nonexistent/wifisess.spool").unwrap_err();
        assert_eq!(e, "is in a directory that does not exist (/nonexistent)");
        assert_eq!(
            check(Kind::WritableFile, "/tmp").unwrap_err(),
            "is a directory, not a file"
        );
        // /proc/sys is read-only for everyone, root included.
        let e = check(Kind::WritableFile, "/proc/sys/wifisess.spool").unwrap_err();
        assert!(
            e.starts_with("is in a directory the agent cannot write (/proc/sys: "),
            "{e}"
        );
    }

    #[test]
    fn lease_files_may_be_missing_but_not_directories() {
        let p = "/nonexistent/dhcp.leases";
        assert_eq!(
            check(Kind::OptionalFile, p),
            Ok(Value::Path(PathBuf::from(p)))
        );
        assert_eq!(
            check(Kind::OptionalFile, "/tmp").unwrap_err(),
            "is a directory, not a file"
        );
        assert_eq!(check(Kind::OptionalFile, ""), Ok(Value::Unset));
        assert!(check(Kind::OptionalFile, "/proc/self/status").is_ok());
    }

    #[test]
    fn unknown_names_suggest_the_closest_option() {
        assert_eq!(closest("brokr"), Some("broker"));
        assert_eq!(closest("pol_interval"), Some("poll_interval"));
        assert_eq!(closest("interfaces"), Some("interface"));
        assert_eq!(closest("spool"), Some("spool_file"));
        assert_eq!(closest("ca"), None);
        assert_eq!(closest("frobnicate"), None);
    }
}
