//! Client names and vendors, added to rows at query time (nothing is stored): the labels file
//! (`labels_file`, CSV `mac,label`, [`super::presence::parse_labels`]) and the IEEE OUI
//! registry (`oui_file`, Debian `ieee-data`'s `oui.csv`), both held in memory and reloaded
//! when they change; locally administered MACs (randomised by the client, or an agent's
//! pseudonym) are flagged and get no vendor (their first three octets name no company).

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

/// Where Debian's `ieee-data` puts the registry.
pub const DEFAULT_OUI_FILE: &str = "/usr/share/ieee-data/oui.csv";

/// How often the labels file is checked for a change, at most (a `stat`), ms.
pub const LABELS_CHECK_MS: i64 = 2_000;

/// How often the OUI registry is checked for a change, at most, ms.
pub const OUI_CHECK_MS: i64 = 60_000;

/// What is known of a client MAC besides its sessions.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClientInfo {
    /// Its label from the labels file.
    pub label: Option<String>,
    /// The company its OUI is registered to (none for a randomised MAC).
    pub vendor: Option<String>,
    /// Locally administered (bit 1 of the first octet): randomised by the client, or a
    /// pseudonym of the agent's MAC privacy mode.
    pub randomized: bool,
}

/// The labels and the registry as loaded at one moment.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Directory {
    labels: BTreeMap<String, String>,
    oui: HashMap<u32, String>,
}

impl Directory {
    /// A directory of `labels` (normalised MAC → label) and `oui` (24-bit prefix → company).
    pub fn new(labels: BTreeMap<String, String>, oui: HashMap<u32, String>) -> Directory {
        Directory { labels, oui }
    }

    /// The labels (for `presence`, which lists labelled clients not seen too).
    pub fn labels(&self) -> &BTreeMap<String, String> {
        &self.labels
    }

    /// Companies in the registry.
    pub fn vendors(&self) -> usize {
        self.oui.len()
    }

    /// What is known of `mac` (`aa:bb:cc:dd:ee:ff`).
    pub fn describe(&self, mac: &str) -> ClientInfo {
        let randomized = randomized(mac);
        ClientInfo {
            label: self.labels.get(mac).cloned(),
            vendor: if randomized {
                None
            } else {
                oui_key(mac).and_then(|k| self.oui.get(&k).cloned())
            },
            randomized,
        }
    }
}

/// The first octet of `mac` (`aa:bb:…` or `aa-bb-…`).
fn first_octet(mac: &str) -> Option<u8> {
    u8::from_str_radix(mac.get(0..2)?, 16).ok()
}

/// Whether `mac` is locally administered (bit 1 of its first octet).
pub fn randomized(mac: &str) -> bool {
    first_octet(mac).is_some_and(|o| o & 0x02 != 0)
}

/// The 24-bit OUI of `mac` (`aa:bb:cc:…`).
pub fn oui_key(mac: &str) -> Option<u32> {
    let hex: String = mac
        .chars()
        .filter(char::is_ascii_hexdigit)
        .take(6)
        .collect();
    (hex.len() == 6)
        .then(|| u32::from_str_radix(&hex, 16).ok())
        .flatten()
}

/// The fields of one CSV line (RFC 4180 quotes: `"a, b"`, `""` for a quote).
fn csv_fields(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match (c, quoted) {
            ('"', true) if chars.peek() == Some(&'"') => {
                cur.push('"');
                chars.next();
            }
            ('"', true) => quoted = false,
            ('"', false) if cur.is_empty() => quoted = true,
            (',', false) => out.push(std::mem::take(&mut cur)),
            (c, _) => cur.push(c),
        }
    }
    out.push(cur);
    out
}

/// Parses the IEEE registry as CSV (`Registry,Assignment,Organization Name,Organization
/// Address`; Debian's `oui.csv`): `MA-L` assignments (24-bit) to company names. Lines that
/// are not such an assignment (the header, other registries) are skipped.
///
/// # Errors
/// The text has no assignment at all (not a registry).
pub fn parse_oui(text: &str) -> Result<HashMap<u32, String>, String> {
    let mut m = HashMap::new();
    for line in text.lines() {
        let f = csv_fields(line.trim_end_matches('\r'));
        if f.len() < 3 || f[0] != "MA-L" || f[1].len() != 6 {
            continue;
        }
        if let Ok(k) = u32::from_str_radix(&f[1], 16) {
            m.insert(k, f[2].trim().to_owned());
        }
    }
    if m.is_empty() {
        return Err("no MA-L assignment in it (not the IEEE registry as CSV?)".into());
    }
    Ok(m)
}

/// The modification time and size of a file: a new one means it changed.
type Stamp = (SystemTime, u64);

fn stamp(p: &Path) -> std::io::Result<Stamp> {
    let m = std::fs::metadata(p)?;
    Ok((m.modified()?, m.len()))
}

/// A file checked at most every `every_ms`, and reloaded when its stamp changes.
#[derive(Debug)]
struct Watched {
    path: Option<PathBuf>,
    every_ms: i64,
    checked_ms: Option<i64>,
    stamp: Option<Stamp>,
    /// The last problem logged (logged again only when it changes).
    problem: Option<String>,
}

impl Watched {
    fn new(path: Option<PathBuf>, every_ms: i64) -> Watched {
        Watched {
            path,
            every_ms,
            checked_ms: None,
            stamp: None,
            problem: None,
        }
    }

    /// The file's new contents if its check is due at `now_ms` and it changed (`Some(Err)`:
    /// it is gone or unreadable now).
    fn poll(&mut self, now_ms: i64) -> Option<Result<String, String>> {
        let path = self.path.clone()?;
        if self
            .checked_ms
            .is_some_and(|c| now_ms.saturating_sub(c) < self.every_ms && now_ms >= c)
        {
            return None;
        }
        self.checked_ms = Some(now_ms);
        match stamp(&path) {
            Ok(st) if Some(st) == self.stamp => None,
            Ok(st) => match std::fs::read_to_string(&path) {
                Ok(t) => {
                    self.stamp = Some(st);
                    Some(Ok(t))
                }
                Err(e) => Some(Err(format!("{}: {e}", path.display()))),
            },
            Err(_) if self.stamp.is_none() && self.problem.is_some() => None,
            Err(e) => {
                self.stamp = None;
                Some(Err(format!("{}: {e}", path.display())))
            }
        }
    }

    /// Logs `why` once (until another problem, or a success, comes).
    fn warn(&mut self, what: &str, why: String) {
        if self.problem.as_deref() != Some(why.as_str()) {
            log::warn!("{what} {why}");
            self.problem = Some(why);
        }
    }
}

#[derive(Debug)]
struct State {
    labels: Watched,
    oui: Watched,
    current: Arc<Directory>,
}

/// The labels file and the OUI registry of a collector, reloaded when they change: the HTTP
/// API asks for the [`Directory`] at every request (a `stat` of each file at most every
/// [`LABELS_CHECK_MS`] / [`OUI_CHECK_MS`]), a CLI command once.
#[derive(Debug)]
pub struct Names {
    state: Mutex<State>,
}

impl Names {
    /// Names from `labels` (none: no labels) and `oui`.
    pub fn new(labels: Option<PathBuf>, oui: PathBuf) -> Arc<Names> {
        Arc::new(Names {
            state: Mutex::new(State {
                labels: Watched::new(labels, LABELS_CHECK_MS),
                oui: Watched::new(Some(oui), OUI_CHECK_MS),
                current: Arc::new(Directory::default()),
            }),
        })
    }

    /// Names that never change (no files): tests, and readers without a configuration.
    pub fn none() -> Arc<Names> {
        Arc::new(Names {
            state: Mutex::new(State {
                labels: Watched::new(None, LABELS_CHECK_MS),
                oui: Watched::new(None, OUI_CHECK_MS),
                current: Arc::new(Directory::default()),
            }),
        })
    }

    /// The directory as last loaded, without looking at the files (for the writer's thread,
    /// which must not read a 3 MB registry; the readers' [`Names::current`] keeps it fresh).
    pub fn loaded(&self) -> Arc<Directory> {
        self.state
            .lock()
            .map(|st| Arc::clone(&st.current))
            .unwrap_or_default()
    }

    /// The directory at `now_ms`: the files whose check is due are looked at and reloaded if
    /// they changed. A labels file that does not parse keeps the previous labels; a missing
    /// or unreadable registry means no vendors. Each problem is logged once.
    pub fn current(&self, now_ms: i64) -> Arc<Directory> {
        let Ok(mut st) = self.state.lock() else {
            return Arc::new(Directory::default());
        };
        let mut next: Option<Directory> = None;
        match st.labels.poll(now_ms) {
            Some(Ok(text)) => match super::presence::parse_labels(&text) {
                Ok(l) => {
                    next.get_or_insert_with(|| (*st.current).clone()).labels = l;
                    st.labels.problem = None;
                }
                Err(e) => {
                    let p = st.labels.path.clone().unwrap_or_default();
                    st.labels.stamp = None;
                    st.labels.warn(
                        "labels_file",
                        format!("{}: {e}; keeping the labels loaded before", p.display()),
                    );
                }
            },
            Some(Err(e)) => {
                next.get_or_insert_with(|| (*st.current).clone()).labels = BTreeMap::new();
                st.labels.warn("labels_file", format!("{e}: no labels"));
            }
            None => {}
        }
        match st.oui.poll(now_ms) {
            Some(Ok(text)) => match parse_oui(&text) {
                Ok(o) => {
                    next.get_or_insert_with(|| (*st.current).clone()).oui = o;
                    st.oui.problem = None;
                }
                Err(e) => {
                    let p = st.oui.path.clone().unwrap_or_default();
                    next.get_or_insert_with(|| (*st.current).clone()).oui = HashMap::new();
                    st.oui
                        .warn("oui_file", format!("{}: {e}: no vendors", p.display()));
                }
            },
            Some(Err(e)) => {
                next.get_or_insert_with(|| (*st.current).clone()).oui = HashMap::new();
                st.oui.warn(
                    "oui_file",
                    format!("{e}: no vendors (Debian: apt-get install ieee-data)"),
                );
            }
            None => {}
        }
        if let Some(n) = next {
            st.current = Arc::new(n);
        }
        Arc::clone(&st.current)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn randomised_macs_are_flagged_and_get_no_vendor() {
        let oui = parse_oui(
            "Registry,Assignment,Organization Name,Organization Address\n\
             MA-L,000393,\"Apple, Inc.\",1 Infinite Loop Cupertino CA US 95014 \n\
             MA-L,020000,Nobody,x\nMA-M,0000001,Other,y\n",
        )
        .unwrap();
        assert_eq!(oui.len(), 2);
        let d = Directory::new(
            [("00:03:93:00:00:01".to_owned(), "Ada's laptop".to_owned())].into(),
            oui,
        );
        let a = d.describe("00:03:93:00:00:01");
        assert_eq!(a.vendor.as_deref(), Some("Apple, Inc."));
        assert_eq!(a.label.as_deref(), Some("Ada's laptop"));
        assert!(!a.randomized);
        let r = d.describe("02:00:00:00:00:07");
        assert!(r.randomized && r.vendor.is_none());
        assert!(randomized("da:a1:19:00:00:00") && !randomized("00:03:93:01:02:03"));
        assert!(parse_oui("just,some\ncsv,text\n").is_err());
        assert_eq!(csv_fields(r#"a,"b, ""c""",d"#), ["a", "b, \"c\"", "d"]);
    }

    #[test]
    fn files_are_reloaded_when_they_change_and_checked_at_most_every_interval() {
        let dir = tempfile::tempdir().unwrap();
        let labels = dir.path().join("labels.csv");
        let oui = dir.path().join("oui.csv");
        std::fs::write(&labels, "02:00:00:00:00:01,Ada\n").unwrap();
        let n = Names::new(Some(labels.clone()), oui.clone());
        let d = n.current(1_000);
        assert_eq!(d.labels().len(), 1);
        assert_eq!(d.vendors(), 0, "a missing registry: no vendors");
        std::fs::write(&labels, "02:00:00:00:00:01,Ada\n02:00:00:00:00:02,Lin\n").unwrap();
        std::fs::write(&oui, "MA-L,000393,Apple Inc.,x\n").unwrap();
        // Not checked again before its interval.
        assert_eq!(n.current(1_000 + LABELS_CHECK_MS - 1).labels().len(), 1);
        let d = n.current(1_000 + LABELS_CHECK_MS);
        assert_eq!(d.labels().len(), 2, "labels reloaded");
        assert_eq!(d.vendors(), 0, "the registry is checked less often");
        assert_eq!(n.current(1_000 + OUI_CHECK_MS).vendors(), 1);
        // A broken labels file keeps the labels loaded before.
        std::fs::write(&labels, "not a mac,x\n").unwrap();
        assert_eq!(
            n.current(1_000 + OUI_CHECK_MS + LABELS_CHECK_MS)
                .labels()
                .len(),
            2
        );
    }
}
