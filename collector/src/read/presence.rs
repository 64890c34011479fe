//! The attendance report (SPEC §5.3 `presence`): per client, the time connected to any device
//! of a group within a window — the union of its sessions clipped to the window (open ones up
//! to now), so a client roaming between the group's APs (or holding overlapping sessions) is
//! counted once. One report for the CLI and the API.

use std::collections::BTreeMap;

use serde::Serialize;

use super::db::{ReadDb, ReadError, Val};
use crate::timefmt::rfc3339_ms;

/// The window and the group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PresenceQuery {
    /// Device group.
    pub group: String,
    /// Only devices of this organization (an API token's scope), if set.
    pub organization: Option<String>,
    /// Window start, ms.
    pub from_ms: i64,
    /// Window end, ms.
    pub to_ms: i64,
    /// Minutes connected to count as present.
    pub min_minutes: u32,
}

/// One client of the report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PresenceRow {
    /// Client MAC.
    pub mac: String,
    /// Its label from the labels file, if any.
    pub label: Option<String>,
    /// Whole minutes connected in the window.
    pub minutes: i64,
    /// Seconds connected in the window.
    pub seconds: i64,
    /// Earliest connected moment in the window, RFC 3339 UTC.
    pub first_seen: Option<String>,
    /// Latest connected moment in the window.
    pub last_seen: Option<String>,
    /// Its sessions that overlap the window.
    pub sessions: i64,
    /// The group's devices it was connected to (ids, sorted).
    pub devices: Vec<String>,
    /// `minutes ≥ min_minutes`.
    pub present: bool,
}

/// Fields of a presence row, in the order of CSV columns.
pub const PRESENCE_FIELDS: [&str; 9] = [
    "label",
    "mac",
    "minutes",
    "seconds",
    "first_seen",
    "last_seen",
    "sessions",
    "devices",
    "present",
];

impl PresenceRow {
    /// The row's cells in [`PRESENCE_FIELDS`] order.
    pub fn cells(&self) -> Vec<String> {
        vec![
            self.label.clone().unwrap_or_default(),
            self.mac.clone(),
            self.minutes.to_string(),
            self.seconds.to_string(),
            self.first_seen.clone().unwrap_or_default(),
            self.last_seen.clone().unwrap_or_default(),
            self.sessions.to_string(),
            self.devices.join(" "),
            self.present.to_string(),
        ]
    }
}

fn union_ms(mut iv: Vec<(i64, i64)>) -> i64 {
    iv.sort_unstable();
    let mut total = 0;
    let mut cur: Option<(i64, i64)> = None;
    for (a, b) in iv {
        match &mut cur {
            Some((_, e)) if a <= *e => *e = (*e).max(b),
            _ => {
                if let Some((s, e)) = cur {
                    total += e - s;
                }
                cur = Some((a, b));
            }
        }
    }
    total + cur.map_or(0, |(s, e)| e - s)
}

/// The sessions `presence` reads: every session of the group's devices that overlaps the
/// window (inclusive at both ends), served by `sessions_device_start` as a covering index.
pub(crate) const PRESENCE_SQL: &str = "SELECT s.mac, s.start_ms, s.stop_ms, s.device_id \
     FROM sessions s \
     WHERE s.device_id IN (SELECT id FROM devices WHERE grp = $1 \
                           AND (CAST($4 AS TEXT) IS NULL OR organization = $4)) \
     AND s.start_ms <= $2 AND (s.stop_ms IS NULL OR s.stop_ms >= $3) AND s.mac IS NOT NULL";

/// The report for `q` at `now_ms`; `labels` names clients (every labelled client is listed,
/// connected or not), sorted by label then MAC, unlabelled ones last.
///
/// # Errors
/// Database errors.
pub fn presence(
    db: &ReadDb,
    q: &PresenceQuery,
    now_ms: i64,
    labels: &BTreeMap<String, String>,
) -> Result<Vec<PresenceRow>, ReadError> {
    let end = q.to_ms.min(now_ms);
    type Seen = (Vec<(i64, i64)>, Vec<String>);
    let mut per: BTreeMap<String, Seen> = BTreeMap::new();
    let params = [
        Val::from(q.group.as_str()),
        Val::Int(q.to_ms),
        Val::Int(q.from_ms),
        Val::from(q.organization.clone()),
    ];
    for r in db.query(PRESENCE_SQL, &params)? {
        let (mac, start, stop, dev) = (r.text(0)?, r.int(1)?, r.opt_int(2)?, r.text(3)?);
        let a = start.max(q.from_ms);
        let b = stop.unwrap_or(now_ms).min(end);
        if b >= a && start <= end {
            let e = per.entry(mac).or_default();
            e.0.push((a, b));
            if !e.1.contains(&dev) {
                e.1.push(dev);
            }
        }
    }
    let need_ms = i64::from(q.min_minutes) * 60_000;
    let mut out: Vec<PresenceRow> = per
        .into_iter()
        .map(|(mac, (iv, mut devices))| {
            devices.sort();
            let first = iv.iter().map(|i| i.0).min();
            let last = iv.iter().map(|i| i.1).max();
            let sessions = iv.len() as i64;
            let ms = union_ms(iv);
            PresenceRow {
                label: labels.get(&mac).cloned(),
                mac,
                minutes: ms / 60_000,
                seconds: ms / 1000,
                first_seen: first.map(rfc3339_ms),
                last_seen: last.map(rfc3339_ms),
                sessions,
                devices,
                present: ms >= need_ms,
            }
        })
        .collect();
    for (mac, label) in labels {
        if !out.iter().any(|r| &r.mac == mac) {
            out.push(PresenceRow {
                mac: mac.clone(),
                label: Some(label.clone()),
                minutes: 0,
                seconds: 0,
                first_seen: None,
                last_seen: None,
                sessions: 0,
                devices: Vec::new(),
                present: false,
            });
        }
    }
    out.sort_by(|a, b| {
        (a.label.is_none(), &a.label, &a.mac).cmp(&(b.label.is_none(), &b.label, &b.mac))
    });
    Ok(out)
}

/// Parses a labels file: CSV lines `mac,label` (an optional `mac,label` header, `#` comments
/// and blank lines are skipped; a label may be double-quoted). MACs are normalised.
///
/// # Errors
/// `line N: why` for the first bad line.
pub fn parse_labels(text: &str) -> Result<BTreeMap<String, String>, String> {
    let mut m = BTreeMap::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let Some((mac, label)) = line.split_once(',') else {
            return Err(format!("line {}: expected mac,label", i + 1));
        };
        let (mac, label) = (mac.trim(), label.trim());
        if i == 0 && mac.eq_ignore_ascii_case("mac") {
            continue;
        }
        let mac: wifisess_wire::MacAddr = mac
            .trim_matches('"')
            .parse()
            .map_err(|_| format!("line {}: not a MAC address: {mac:?}", i + 1))?;
        let label = label
            .strip_prefix('"')
            .and_then(|l| l.strip_suffix('"'))
            .map(|l| l.replace("\"\"", "\""))
            .unwrap_or_else(|| label.to_owned());
        m.insert(mac.to_string(), label);
    }
    Ok(m)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn union_counts_overlaps_once() {
        assert_eq!(union_ms(vec![]), 0);
        assert_eq!(union_ms(vec![(0, 10), (5, 20), (30, 40)]), 30);
        assert_eq!(union_ms(vec![(30, 40), (0, 10), (10, 15)]), 25);
        assert_eq!(union_ms(vec![(0, 100), (10, 20)]), 100);
    }

    #[test]
    fn labels_parse() {
        let m = parse_labels(
            "mac,label\n02:00:00:00:00:01, Ada\n# x\n\n02-00-00-00-00-02,\"Lin, B\"\n",
        )
        .unwrap();
        assert_eq!(m["02:00:00:00:00:01"], "Ada");
        assert_eq!(m["02:00:00:00:00:02"], "Lin, B");
        assert_eq!(
            parse_labels("zz,Ada").unwrap_err(),
            "line 1: not a MAC address: \"zz\""
        );
        assert!(parse_labels("02:00:00:00:00:01")
            .unwrap_err()
            .starts_with("line 1"));
    }
}
