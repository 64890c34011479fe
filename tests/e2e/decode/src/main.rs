//! `wifisess-e2e-decode`: stdin lines `TOPIC HEXPAYLOAD` (from `mosquitto_sub -F '%t %x'`) →
//! stdout, one line per decoded status or event, e.g.
//! `event ap1 epoch=0fcf6519 seq=2 start id=… mac=02:00:00:00:02:00 wall_ms=… synced=false`.
//! Undecodable payloads print `error TOPIC: …` and the decoder goes on.

use std::io::{BufRead as _, Write as _};

use wifisess_wire::{decode_batch, decode_status, Event};

fn hex(s: &str) -> Option<Vec<u8>> {
    if s.len() % 2 != 0 {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

fn line(topic: &str, payload: &[u8]) -> Vec<String> {
    let dev = topic.split('/').rev().nth(1).unwrap_or("?");
    if topic.ends_with("/status") {
        return vec![match decode_status(payload) {
            Ok(s) => format!(
                "status {dev} online={} graceful={} boot={} epoch={:08x} wall_ms={} synced={} org={} group={} ifaces={}",
                s.online,
                s.graceful,
                s.boot_id,
                s.agent_epoch,
                s.wall_ms,
                s.clock_synced,
                s.organization.as_deref().unwrap_or("-"),
                s.group.as_deref().unwrap_or("-"),
                s.interfaces.iter().map(|i| i.ifname.as_str()).collect::<Vec<_>>().join(",")
            ),
            Err(e) => format!("error {topic}: {e}"),
        }];
    }
    let b = match decode_batch(payload) {
        Ok(b) => b,
        Err(e) => return vec![format!("error {topic}: {e}")],
    };
    b.events
        .iter()
        .map(|ev| {
            let wall = b.stamp_of(ev).map_or(0, |s| s.wall_ms);
            let head = format!(
                "event {dev} boot={} epoch={:08x} seq={} wall_ms={wall} synced={}",
                b.boot_id,
                b.agent_epoch,
                ev.seq(),
                b.clock_synced
            );
            let body = match ev {
                Event::Start(s) => format!(
                    "start id={} mac={} ifname={} ssid={} bssid={} freq={} age_ms={} start_ms={}",
                    s.id,
                    s.mac,
                    s.ifname,
                    String::from_utf8_lossy(&s.ssid),
                    s.bssid,
                    s.freq_mhz,
                    s.age_ms,
                    wall.saturating_sub(s.age_ms)
                ),
                Event::Update(u) => format!(
                    "update id={} rx_bytes={} tx_bytes={}",
                    u.id, u.rx_bytes, u.tx_bytes
                ),
                Event::Stop(s) => format!(
                    "stop id={} reason={} age_ms={} stop_ms={} rx_bytes={} tx_bytes={}",
                    s.id,
                    s.reason.as_str(),
                    s.age_ms,
                    wall.saturating_sub(s.age_ms),
                    s.rx_bytes,
                    s.tx_bytes
                ),
                Event::Sync(s) => format!(
                    "sync ids=[{}]",
                    s.ids.iter().map(|i| i.to_string()).collect::<Vec<_>>().join(",")
                ),
                #[allow(unreachable_patterns)]
                _ => "other".to_string(),
            };
            format!("{head} {body}")
        })
        .collect()
}

fn main() {
    let stdin = std::io::stdin();
    let mut out = std::io::stdout();
    for l in stdin.lock().lines() {
        let Ok(l) = l else { break };
        let Some((topic, h)) = l.trim().split_once(' ') else {
            continue;
        };
        let out_lines = match hex(h.trim()) {
            Some(p) => line(topic, &p),
            None => vec![format!("error {topic}: payload is not hex")],
        };
        for o in out_lines {
            let _ = writeln!(out, "{o}");
        }
        let _ = out.flush();
    }
}
