//! The attendance report (SPEC §5.3 `presence`): per client, the time connected to any device
//! of a group within a window — the union of its sessions clipped to the window, so a client
//! roaming between the group's APs (or holding overlapping sessions) is counted once.

use std::collections::BTreeMap;

use rusqlite::{params, Connection};
use serde::Serialize;

use crate::timefmt::rfc3339_ms;

/// What to report on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PresenceQuery {
    /// Device group (inventory, else announced).
    pub group: String,
    /// Window start, ms since the epoch.
    pub from_ms: i64,
    /// Window end, ms (open sessions count up to the earlier of this and now).
    pub to_ms: i64,
    /// `present` needs at least this many minutes.
    pub min_minutes: u32,
}

/// One client in the report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PresenceRow {
    /// Client MAC.
    pub mac: String,
    /// Name from the labels file, if any.
    pub label: Option<String>,
    /// Whole minutes connected within the window.
    pub minutes: i64,
    /// Seconds connected within the window (the exact figure `minutes` is rounded from).
    pub seconds: i64,
    /// Earliest connected instant within the window, RFC 3339 UTC (null: never seen).
    pub first_seen: Option<String>,
    /// Latest connected instant within the window, RFC 3339 UTC.
    pub last_seen: Option<String>,
    /// Sessions that overlap the window.
    pub sessions: i64,
    /// `seconds >= min_minutes × 60` (and seen at all).
    pub present: bool,
}

/// Total length of the union of half-open intervals `[a, b)`.
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

/// Builds the report at `now_ms`. Clients in `labels` (MAC → label) that were not seen are
/// listed too, with zero minutes and `present = false`, so a roster shows who is absent.
/// Rows are sorted by label (unlabelled last), then MAC.
///
/// # Errors
/// SQLite errors.
pub fn presence(
    conn: &Connection,
    q: &PresenceQuery,
    now_ms: i64,
    labels: &BTreeMap<String, String>,
) -> rusqlite::Result<Vec<PresenceRow>> {
    let end = q.to_ms.min(now_ms);
    let mut per: BTreeMap<String, Vec<(i64, i64)>> = BTreeMap::new();
    let mut st = conn.prepare_cached(PRESENCE_SQL)?;
    let rows = st.query_map(params![q.group, q.to_ms, q.from_ms], |r| {
        Ok((
            r.get::<_, String>(0)?,
            r.get::<_, i64>(1)?,
            r.get::<_, Option<i64>>(2)?,
        ))
    })?;
    for r in rows {
        let (mac, start, stop) = r?;
        let a = start.max(q.from_ms);
        let b = stop.unwrap_or(now_ms).min(end);
        if b >= a && start <= end {
            per.entry(mac).or_default().push((a, b));
        }
    }
    let need_ms = i64::from(q.min_minutes) * 60_000;
    let mut out: Vec<PresenceRow> = per
        .into_iter()
        .map(|(mac, iv)| {
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
                present: false,
            });
        }
    }
    out.sort_by(|a, b| {
        (a.label.is_none(), &a.label, &a.mac).cmp(&(b.label.is_none(), &b.label, &b.mac))
    });
    Ok(out)
}

/// Sessions of the group's devices that may overlap `[from, to]` (covering index
/// `sessions_device_start`: no table lookups).
pub(crate) const PRESENCE_SQL: &str = "SELECT s.mac, s.start_ms, s.stop_ms FROM sessions s \
     WHERE s.device_id IN (SELECT id FROM devices WHERE coalesce(inv_group, grp) = ?1) \
     AND s.start_ms <= ?2 AND (s.stop_ms IS NULL OR s.stop_ms >= ?3) AND s.mac IS NOT NULL";

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
