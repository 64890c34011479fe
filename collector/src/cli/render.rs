//! Output of the query commands: aligned tables at most 120 columns wide, JSON lines,
//! CSV (RFC 4180). Pure functions from rows to text.

use std::fmt::Write as _;

use serde::Serialize;

use crate::read::clients::{ClientsRow, TrendPoint, CLIENTS_FIELDS, TREND_FIELDS};
use crate::read::csv;
use crate::read::devices::DeviceRow;
use crate::read::failed_joins::{CountRow, FailedJoinRow, COUNT_FIELDS, FAILED_JOIN_FIELDS};
use crate::read::presence::{PresenceRow, PRESENCE_FIELDS};
use crate::read::roams::{PairRow, RoamRow, PAIR_FIELDS, ROAM_FIELDS};
use crate::read::sessions::{SessionRow, SESSION_FIELDS};
use crate::read::status::{OrgStatus, StatusReport};
use crate::store::{Closable, PruneReport};
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

/// Sessions in `format`.
pub fn sessions(rows: &[SessionRow], format: Format) -> String {
    match format {
        Format::Json => json_lines(rows),
        Format::Csv => {
            let body: Vec<Vec<String>> = rows.iter().map(SessionRow::cells).collect();
            csv::document(&SESSION_FIELDS, &body)
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

/// One line per organization over its `max_open_sessions` (empty when none is).
pub fn over_limit_notes(orgs: &[OrgStatus]) -> String {
    let mut out = String::new();
    for l in orgs.iter().filter(|l| l.over_limit) {
        let _ = writeln!(
            out,
            "over limit: organization {} has {} open sessions (max_open_sessions {})",
            o(&l.organization),
            l.open_sessions,
            l.max_open_sessions.unwrap_or_default()
        );
    }
    out
}

/// Fields of a device row in CSV.
pub const DEVICE_FIELDS: [&str; 20] = [
    "id",
    "name",
    "organization",
    "group",
    "online",
    "last_seen",
    "boot_id",
    "agent_version",
    "open_sessions",
    "dangling_sessions",
    "seq_gaps",
    "published",
    "dropped",
    "reconnects",
    "outbox_depth",
    "failed_joins",
    "dropped_updates",
    "dropped_starts_stops",
    "spool_restored",
    "drops_events",
];

fn device_cells(r: &DeviceRow) -> Vec<String> {
    let h = &r.health;
    vec![
        r.id.clone(),
        o(&r.name),
        o(&r.organization),
        o(&r.group),
        r.online.to_string(),
        o(&r.last_seen),
        o(&r.boot_id),
        o(&r.agent_version),
        r.open_sessions.to_string(),
        r.dangling_sessions.to_string(),
        r.seq_gaps.to_string(),
        h.published.to_string(),
        h.dropped.to_string(),
        h.reconnects.to_string(),
        h.outbox_depth.to_string(),
        h.failed_joins.to_string(),
        h.dropped_updates.to_string(),
        h.dropped_starts_stops.to_string(),
        h.spool_restored.to_string(),
        h.drops_events.to_string(),
    ]
}

/// `devices` output. The table marks an agent that drops events with `!` after its drop
/// count (its history has holes: docs/OPERATIONS.md).
pub fn devices(rows: &[DeviceRow], format: Format) -> String {
    match format {
        Format::Json => json_lines(rows),
        Format::Csv => csv::document(
            &DEVICE_FIELDS,
            &rows.iter().map(device_cells).collect::<Vec<_>>(),
        ),
        Format::Table => {
            let body: Vec<Vec<String>> = rows
                .iter()
                .map(|r| {
                    vec![
                        r.id.clone(),
                        o(&r.name),
                        o(&r.organization),
                        o(&r.group),
                        if r.online { "yes" } else { "no" }.into(),
                        r.last_seen.as_deref().map(short).unwrap_or_default(),
                        r.open_sessions.to_string(),
                        r.seq_gaps.to_string(),
                        format!(
                            "{}{}",
                            r.health.dropped,
                            if r.health.drops_events { "!" } else { "" }
                        ),
                        r.health.reconnects.to_string(),
                        o(&r.agent_version),
                    ]
                })
                .collect();
            let mut out = table(
                &[
                    "ID",
                    "NAME",
                    "ORG",
                    "GROUP",
                    "ONLINE",
                    "LAST_SEEN",
                    "OPEN",
                    "GAPS",
                    "DROPPED",
                    "RECONN",
                    "VERSION",
                ],
                &[14, 14, 10, 10, 6, 20, 6, 6, 8, 6, 10],
                &body,
            );
            if rows.iter().any(|r| r.health.drops_events) {
                out.push_str("! the agent drops events (outbox overflow): its history has holes\n");
            }
            out
        }
    }
}

/// `status` output.
pub fn status(r: &StatusReport, format: Format) -> String {
    match format {
        Format::Json => json_lines(std::slice::from_ref(r)),
        Format::Csv => csv::document(
            &[
                "scope",
                "devices",
                "devices_online",
                "open_sessions",
                "connected_clients",
                "longest_s",
                "median_s",
                "dangling_sessions",
                "seq_gaps",
                "devices_dropping",
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
                r.dangling_sessions.to_string(),
                r.seq_gaps.to_string(),
                r.devices_dropping.to_string(),
                r.over_limit.join(";"),
            ]],
        ),
        Format::Table => {
            let mut out = String::new();
            let _ = writeln!(out, "scope              {}", r.scope);
            let _ = writeln!(
                out,
                "devices            {} ({} online, {} dropping events)",
                r.devices, r.devices_online, r.devices_dropping
            );
            let _ = writeln!(out, "open sessions      {}", r.open_sessions);
            let _ = writeln!(out, "connected clients  {}", r.connected_clients);
            let _ = writeln!(out, "longest now        {}", human_duration(r.longest_s));
            let _ = writeln!(out, "median now         {}", human_duration(r.median_s));
            let _ = writeln!(out, "dangling           {}", r.dangling_sessions);
            let _ = writeln!(out, "seq gaps           {}", r.seq_gaps);
            let limited: Vec<&OrgStatus> = r
                .organizations
                .iter()
                .filter(|l| l.max_open_sessions.is_some())
                .collect();
            if !limited.is_empty() {
                out.push('\n');
                let body: Vec<Vec<String>> = limited
                    .iter()
                    .map(|l| {
                        vec![
                            o(&l.organization),
                            l.open_sessions.to_string(),
                            o(&l.max_open_sessions),
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

/// `presence` output.
pub fn presence(rows: &[PresenceRow], format: Format) -> String {
    match format {
        Format::Json => json_lines(rows),
        Format::Csv => csv::document(
            &PRESENCE_FIELDS,
            &rows.iter().map(PresenceRow::cells).collect::<Vec<_>>(),
        ),
        Format::Table => {
            let t = |v: &Option<String>| v.as_deref().map(short).unwrap_or_default();
            let body: Vec<Vec<String>> = rows
                .iter()
                .map(|r| {
                    vec![
                        o(&r.label),
                        r.mac.clone(),
                        r.minutes.to_string(),
                        t(&r.first_seen),
                        t(&r.last_seen),
                        r.sessions.to_string(),
                        if r.present { "yes" } else { "no" }.into(),
                    ]
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

/// JSON lines, CSV of `fields` and `cells`, or the table `t` makes.
fn rows_in<T: Serialize>(
    rows: &[T],
    format: Format,
    fields: &[&str],
    cells: impl Fn(&T) -> Vec<String>,
    t: impl FnOnce() -> String,
) -> String {
    match format {
        Format::Json => json_lines(rows),
        Format::Csv => csv::document(fields, &rows.iter().map(cells).collect::<Vec<_>>()),
        Format::Table => t(),
    }
}

/// A client as a table shows it: its MAC, and its label or vendor in brackets.
fn client(mac: &str, label: &Option<String>, vendor: &Option<String>, random: bool) -> String {
    match (label, vendor, random) {
        (Some(l), _, _) => format!("{mac} ({l})"),
        (None, Some(v), _) => format!("{mac} ({v})"),
        (None, None, true) => format!("{mac} (random)"),
        _ => mac.to_owned(),
    }
}

/// `1500` → `1.5s`, `-240000` → `-240.0s`.
fn gap(ms: i64) -> String {
    format!("{:.1}s", ms as f64 / 1000.0)
}

/// `roams` output.
pub fn roams(rows: &[RoamRow], format: Format) -> String {
    rows_in(rows, format, &ROAM_FIELDS, RoamRow::cells, || {
        let end = |dev: &str, name: &Option<String>, ifname: &str, band: &Option<String>| {
            let b = band
                .as_deref()
                .map(|b| format!(" {b}G"))
                .unwrap_or_default();
            format!("{} {ifname}{b}", name.as_deref().unwrap_or(dev))
        };
        let body: Vec<Vec<String>> = rows
            .iter()
            .map(|r| {
                let mut change = Vec::new();
                if r.band_changed {
                    change.push("band");
                }
                if r.ssid_changed {
                    change.push("ssid");
                }
                vec![
                    short(&r.at),
                    client(&r.mac, &r.label, &r.vendor, r.randomized),
                    end(&r.from_device, &r.from_name, &r.from_ifname, &r.from_band),
                    end(&r.to_device, &r.to_name, &r.to_ifname, &r.to_band),
                    gap(r.gap_ms),
                    change.join(","),
                ]
            })
            .collect();
        table(
            &["AT", "CLIENT", "FROM", "TO", "GAP", "CHANGED"],
            &[20, 32, 24, 24, 9, 9],
            &body,
        )
    })
}

/// `roams --pairs` output.
pub fn roam_pairs(rows: &[PairRow], format: Format) -> String {
    rows_in(rows, format, &PAIR_FIELDS, PairRow::cells, || {
        let body: Vec<Vec<String>> = rows
            .iter()
            .map(|r| {
                vec![
                    r.from_name.clone().unwrap_or_else(|| r.from_device.clone()),
                    r.to_name.clone().unwrap_or_else(|| r.to_device.clone()),
                    r.roams.to_string(),
                    r.clients.to_string(),
                    gap(r.median_gap_ms),
                    short(&r.last),
                ]
            })
            .collect();
        table(
            &["FROM", "TO", "ROAMS", "CLIENTS", "MEDIAN_GAP", "LAST"],
            &[24, 24, 7, 7, 10, 20],
            &body,
        )
    })
}

/// `failed-joins` output.
pub fn failed_joins(rows: &[FailedJoinRow], format: Format) -> String {
    rows_in(
        rows,
        format,
        &FAILED_JOIN_FIELDS,
        FailedJoinRow::cells,
        || {
            let body: Vec<Vec<String>> = rows
                .iter()
                .map(|r| {
                    vec![
                        short(&r.associated),
                        r.device_name.clone().unwrap_or_else(|| r.device_id.clone()),
                        client(&r.mac, &r.label, &r.vendor, r.randomized),
                        r.ssid.clone(),
                        r.ifname.clone(),
                        r.bssid.clone(),
                    ]
                })
                .collect();
            table(
                &["ASSOCIATED", "DEVICE", "CLIENT", "SSID", "IFNAME", "BSSID"],
                &[20, 16, 32, 16, 10, 17],
                &body,
            )
        },
    )
}

/// `failed-joins --by` output.
pub fn failed_join_counts(rows: &[CountRow], format: Format) -> String {
    rows_in(rows, format, &COUNT_FIELDS, CountRow::cells, || {
        let body: Vec<Vec<String>> = rows
            .iter()
            .map(|r| {
                vec![
                    r.key.clone(),
                    o(&r.name),
                    r.failed_joins.to_string(),
                    r.clients.to_string(),
                    r.devices.to_string(),
                    short(&r.first),
                    short(&r.last),
                ]
            })
            .collect();
        table(
            &[
                "KEY",
                "NAME",
                "FAILED_JOINS",
                "CLIENTS",
                "DEVICES",
                "FIRST",
                "LAST",
            ],
            &[24, 20, 12, 7, 7, 20, 20],
            &body,
        )
    })
}

/// `trends` output.
pub fn trends(rows: &[TrendPoint], format: Format) -> String {
    rows_in(rows, format, &TREND_FIELDS, TrendPoint::cells, || {
        let body: Vec<Vec<String>> = rows
            .iter()
            .map(|r| {
                vec![
                    short(&r.time),
                    o(&r.device_id),
                    o(&r.ssid),
                    r.sessions.to_string(),
                    r.clients.to_string(),
                    r.connected_minutes.to_string(),
                    r.rx_bytes.to_string(),
                    r.tx_bytes.to_string(),
                    r.roams.to_string(),
                    r.failed_joins.to_string(),
                ]
            })
            .collect();
        table(
            &[
                "TIME", "DEVICE", "SSID", "SESSIONS", "CLIENTS", "MINUTES", "RX", "TX", "ROAMS",
                "FAILED",
            ],
            &[20, 16, 16, 8, 7, 7, 14, 14, 5, 6],
            &body,
        )
    })
}

/// `clients` output.
pub fn clients(rows: &[ClientsRow], format: Format) -> String {
    rows_in(rows, format, &CLIENTS_FIELDS, ClientsRow::cells, || {
        let body: Vec<Vec<String>> = rows
            .iter()
            .map(|r| {
                vec![
                    r.period.clone(),
                    r.clients.to_string(),
                    r.randomized.to_string(),
                    r.devices.to_string(),
                ]
            })
            .collect();
        table(
            &["PERIOD", "CLIENTS", "RANDOMIZED", "DEVICES"],
            &[10, 7, 10, 7],
            &body,
        )
    })
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
pub fn closed(items: &[Closable], reason: &str, dry_run: bool) -> String {
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
        let t = table(&["A", "B"], &[3, 10], &[vec!["abcdef".into(), "x".into()]]);
        assert_eq!(t, "A    B\nab…  x\n");
        assert_eq!(short("2025-06-15T15:06:40.000Z"), "2025-06-15T15:06:40Z");
    }
}
