//! Output of the query commands: aligned tables at most 120 columns wide, JSON lines,
//! CSV (RFC 4180). Pure functions from rows to text.

use std::fmt::Write as _;

use serde::Serialize;

use crate::jobs::{CloseItem, PruneReport};
use crate::presence::PresenceRow;
use crate::query::{DeviceRow, OrgLimit, SessionRow, StatusReport};
use crate::timefmt::rfc3339_s;

/// Output format of a query command.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Format {
    /// Aligned columns for a terminal.
    #[default]
    Table,
    /// One JSON object per line.
    Json,
    /// CSV with a header line.
    Csv,
}

/// `3725` → `1h02m`: the largest two units.
pub fn human_duration(secs: i64) -> String {
    let s = secs.max(0);
    let (d, h, m, sec) = (s / 86_400, s / 3600 % 24, s / 60 % 60, s % 60);
    if d > 0 {
        format!("{d}d{h:02}h")
    } else if h > 0 {
        format!("{h}h{m:02}m")
    } else if m > 0 {
        format!("{m}m{sec:02}s")
    } else {
        format!("{sec}s")
    }
}

/// Cuts `s` to `max` characters, marking the cut with `…`.
fn fit(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_owned()
    } else {
        let mut t: String = s.chars().take(max.saturating_sub(1)).collect();
        t.push('…');
        t
    }
}

/// Aligned columns, two spaces apart; cell `i` is cut to `max[i]` characters.
fn table(head: &[&str], max: &[usize], rows: &[Vec<String>]) -> String {
    let cells: Vec<Vec<String>> = rows
        .iter()
        .map(|r| r.iter().zip(max).map(|(c, m)| fit(c, *m)).collect())
        .collect();
    let mut w: Vec<usize> = head.iter().map(|h| h.len()).collect();
    for r in &cells {
        for (i, c) in r.iter().enumerate() {
            w[i] = w[i].max(c.chars().count());
        }
    }
    let mut out = String::new();
    let mut line = |cells: &[&str]| {
        let mut l = String::new();
        for (i, c) in cells.iter().enumerate() {
            let pad = w[i] - c.chars().count();
            l.push_str(c);
            l.extend(std::iter::repeat_n(' ', pad + 2));
        }
        out.push_str(l.trim_end());
        out.push('\n');
    };
    line(head);
    for r in &cells {
        line(&r.iter().map(String::as_str).collect::<Vec<_>>());
    }
    out
}

/// One CSV field (quoted when it holds a comma, quote or line break).
/// One CSV cell with RFC 4180 quoting.
pub fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_owned()
    }
}

fn csv(head: &[&str], rows: &[Vec<String>]) -> String {
    let mut out = head.join(",");
    out.push('\n');
    for r in rows {
        out.push_str(&r.iter().map(|c| csv_field(c)).collect::<Vec<_>>().join(","));
        out.push('\n');
    }
    out
}

fn json_lines<T: Serialize>(rows: &[T]) -> String {
    let mut out = String::new();
    for r in rows {
        out.push_str(&serde_json::to_string(r).expect("rows serialise"));
        out.push('\n');
    }
    out
}

fn o<T: ToString>(v: &Option<T>) -> String {
    v.as_ref().map(ToString::to_string).unwrap_or_default()
}

/// The session fields of SPEC §5.3, in order (JSON keys and CSV header).
pub const SESSION_FIELDS: [&str; 20] = [
    "id",
    "device_id",
    "device_name",
    "organization",
    "group",
    "mac",
    "ssid",
    "ifname",
    "bssid",
    "freq_mhz",
    "start",
    "stop",
    "duration_s",
    "last_seen",
    "last_activity",
    "dangling",
    "rx_bytes",
    "tx_bytes",
    "signal_avg",
    "stop_reason",
];

/// A session's values in the order of [`SESSION_FIELDS`], as CSV cells (unquoted).
pub fn session_cells(r: &SessionRow) -> [String; 20] {
    [
        r.id.clone(),
        r.device_id.clone(),
        o(&r.device_name),
        o(&r.organization),
        o(&r.group),
        o(&r.mac),
        o(&r.ssid),
        o(&r.ifname),
        o(&r.bssid),
        o(&r.freq_mhz),
        r.start.clone(),
        o(&r.stop),
        r.duration_s.to_string(),
        r.last_seen.clone(),
        o(&r.last_activity),
        r.dangling.to_string(),
        r.rx_bytes.to_string(),
        r.tx_bytes.to_string(),
        o(&r.signal_avg),
        o(&r.stop_reason),
    ]
}

/// Sessions in `format`.
pub fn sessions(rows: &[SessionRow], format: Format) -> String {
    match format {
        Format::Json => json_lines(rows),
        Format::Csv => {
            let body: Vec<Vec<String>> = rows.iter().map(|r| session_cells(r).to_vec()).collect();
            csv(&SESSION_FIELDS, &body)
        }
        Format::Table => {
            let body: Vec<Vec<String>> = rows
                .iter()
                .map(|r| {
                    vec![
                        r.device_name.clone().unwrap_or_else(|| r.device_id.clone()),
                        o(&r.mac),
                        o(&r.ssid),
                        short(&r.start),
                        match (&r.stop, r.dangling) {
                            (Some(s), _) => short(s),
                            (None, false) => "open".into(),
                            (None, true) => "open, dangling".into(),
                        },
                        human_duration(r.duration_s),
                        match (&r.stop_reason, r.stop_inferred) {
                            (Some(s), true) => format!("{s}*"),
                            (s, _) => o(s),
                        },
                    ]
                })
                .collect();
            let mut out = table(
                &[
                    "DEVICE", "MAC", "SSID", "START", "STOP", "DURATION", "REASON",
                ],
                &[12, 17, 12, 20, 20, 8, 14],
                &body,
            );
            if rows.iter().any(|r| r.stop_inferred) {
                out.push_str("* stop inferred by the collector (provisional)\n");
            }
            out
        }
    }
}

/// `2025-06-15T15:06:40.000Z` → `2025-06-15T15:06:40Z` (tables only).
fn short(t: &str) -> String {
    match (t.len(), t.get(19..20)) {
        (24, Some(".")) => format!("{}Z", &t[..19]),
        _ => t.to_owned(),
    }
}

/// Lines about organizations over their `max_open_sessions` (empty when none is).
pub fn over_limit_notes(orgs: &[OrgLimit]) -> String {
    let mut out = String::new();
    for l in orgs.iter().filter(|l| l.over_limit) {
        let _ = writeln!(
            out,
            "over limit: organization {} has {} open sessions (max_open_sessions {})",
            l.organization, l.open_sessions, l.max_open_sessions
        );
    }
    out
}

/// Devices in `format`.
pub fn devices(rows: &[DeviceRow], format: Format) -> String {
    let cells = |r: &DeviceRow, table: bool| {
        vec![
            r.id.clone(),
            o(&r.name),
            o(&r.organization),
            o(&r.group),
            if table {
                if r.online { "yes" } else { "no" }.into()
            } else {
                r.online.to_string()
            },
            match &r.last_seen {
                Some(t) if table => short(t),
                t => o(t),
            },
            r.open_sessions.to_string(),
            r.seq_gaps.to_string(),
            o(&r.agent_version),
        ]
    };
    match format {
        Format::Json => json_lines(rows),
        Format::Csv => csv(
            &[
                "id",
                "name",
                "organization",
                "group",
                "online",
                "last_seen",
                "open_sessions",
                "seq_gaps",
                "agent_version",
            ],
            &rows.iter().map(|r| cells(r, false)).collect::<Vec<_>>(),
        ),
        Format::Table => table(
            &[
                "ID",
                "NAME",
                "ORG",
                "GROUP",
                "ONLINE",
                "LAST_SEEN",
                "OPEN",
                "GAPS",
                "VERSION",
            ],
            &[14, 14, 10, 10, 6, 20, 6, 6, 10],
            &rows.iter().map(|r| cells(r, true)).collect::<Vec<_>>(),
        ),
    }
}

/// The status summary in `format` (CSV: one line of the scalar fields, organizations over
/// their limit joined by `;`).
pub fn status(r: &StatusReport, format: Format) -> String {
    match format {
        Format::Json => json_lines(std::slice::from_ref(r)),
        Format::Csv => csv(
            &[
                "scope",
                "devices",
                "devices_online",
                "open_sessions",
                "connected_clients",
                "longest_s",
                "median_s",
                "dangling",
                "over_limit",
            ],
            &[vec![
                r.scope.clone(),
                r.devices.to_string(),
                r.devices_online.to_string(),
                r.open_sessions.to_string(),
                r.connected_clients.to_string(),
                r.longest_s.to_string(),
                r.median_s.to_string(),
                r.dangling.to_string(),
                r.over_limit.join(";"),
            ]],
        ),
        Format::Table => {
            let mut out = String::new();
            let _ = writeln!(out, "scope              {}", r.scope);
            let _ = writeln!(
                out,
                "devices            {} ({} online)",
                r.devices, r.devices_online
            );
            let _ = writeln!(out, "open sessions      {}", r.open_sessions);
            let _ = writeln!(out, "connected clients  {}", r.connected_clients);
            let _ = writeln!(out, "longest now        {}", human_duration(r.longest_s));
            let _ = writeln!(out, "median now         {}", human_duration(r.median_s));
            let _ = writeln!(out, "dangling           {}", r.dangling);
            if !r.organizations.is_empty() {
                out.push('\n');
                let body: Vec<Vec<String>> = r
                    .organizations
                    .iter()
                    .map(|l| {
                        vec![
                            l.organization.clone(),
                            l.open_sessions.to_string(),
                            l.max_open_sessions.to_string(),
                            if l.over_limit { "OVER" } else { "ok" }.into(),
                        ]
                    })
                    .collect();
                out.push_str(&table(
                    &["ORGANIZATION", "OPEN", "LIMIT", "STATE"],
                    &[30, 8, 8, 5],
                    &body,
                ));
            }
            out
        }
    }
}

/// The presence report in `format`.
pub fn presence(rows: &[PresenceRow], format: Format) -> String {
    let cells = |r: &PresenceRow, table: bool| {
        let t = |v: &Option<String>| match v {
            Some(t) if table => short(t),
            t => o(t),
        };
        vec![
            o(&r.label),
            r.mac.clone(),
            r.minutes.to_string(),
            r.seconds.to_string(),
            t(&r.first_seen),
            t(&r.last_seen),
            r.sessions.to_string(),
            if table {
                if r.present { "yes" } else { "no" }.into()
            } else {
                r.present.to_string()
            },
        ]
    };
    match format {
        Format::Json => json_lines(rows),
        Format::Csv => csv(
            &[
                "label",
                "mac",
                "minutes",
                "seconds",
                "first_seen",
                "last_seen",
                "sessions",
                "present",
            ],
            &rows.iter().map(|r| cells(r, false)).collect::<Vec<_>>(),
        ),
        Format::Table => {
            let body: Vec<Vec<String>> = rows
                .iter()
                .map(|r| {
                    let mut c = cells(r, true);
                    c.remove(3);
                    c
                })
                .collect();
            table(
                &[
                    "LABEL",
                    "MAC",
                    "MINUTES",
                    "FIRST_SEEN",
                    "LAST_SEEN",
                    "SESSIONS",
                    "PRESENT",
                ],
                &[20, 17, 7, 20, 20, 8, 7],
                &body,
            )
        }
    }
}

/// The `prune` report: one line, identical in a dry run and a real run of the same cutoff.
pub fn prune(r: &PruneReport, cutoff_ms: i64, dry_run: bool) -> String {
    let verb = if dry_run { "would delete" } else { "deleted" };
    match (r.oldest_stop_ms, r.newest_stop_ms) {
        (Some(a), Some(b)) => format!(
            "{verb} {} sessions: oldest stop {}, newest stop {} (cutoff {})\n",
            r.sessions,
            rfc3339_s(a),
            rfc3339_s(b),
            rfc3339_s(cutoff_ms)
        ),
        _ => format!(
            "{verb} 0 sessions: none stopped before the cutoff {}\n",
            rfc3339_s(cutoff_ms)
        ),
    }
}

/// The `expire` report: one line per device, then the total.
pub fn closed(items: &[CloseItem], reason: &str, dry_run: bool) -> String {
    let verb = if dry_run { "would close" } else { "closed" };
    let mut out = String::new();
    let mut total = 0;
    for i in items {
        total += i.sessions;
        let _ = writeln!(
            out,
            "{verb} {} open sessions of device {} at {} ({reason})",
            i.sessions,
            i.device_id,
            rfc3339_s(i.at_ms)
        );
    }
    let _ = writeln!(
        out,
        "{verb} {total} sessions on {} devices ({reason})",
        items.len()
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_tables_and_csv() {
        assert_eq!(human_duration(0), "0s");
        assert_eq!(human_duration(65), "1m05s");
        assert_eq!(human_duration(3725), "1h02m");
        assert_eq!(human_duration(90_000), "1d01h");
        assert_eq!(csv_field("a,\"b\""), "\"a,\"\"b\"\"\"");
        let t = table(&["A", "B"], &[3, 10], &[vec!["abcdef".into(), "x".into()]]);
        assert_eq!(t, "A    B\nab…  x\n");
        assert_eq!(short("2025-06-15T15:06:40.000Z"), "2025-06-15T15:06:40Z");
    }
}
