//! `watch` (feature `devtools`): the `run` loop's station source and session tracker, with
//! every session event printed as one JSON line instead of published.

use std::io::{self, Write};

use wifisess_wire::{Event as WireEvent, SessionId, Stamp, Start};

use super::json::Obj;
use super::stations::ssid_text;
use crate::run::{Nl80211Source, Source, SourceOptions};
use crate::session::Timed;

/// Prints session events as JSON lines, remembering each open session's start so its
/// updates and stop carry the client and interface too.
struct Printer<'o, W: Write> {
    /// Linear search, not a `HashMap`: a diagnostic with few sessions, and no hasher code.
    open: Vec<Start>,
    out: &'o mut W,
}

fn start_fields(o: Obj, s: &Start) -> Obj {
    o.str("mac", &s.mac.to_string())
        .str("ifname", &s.ifname)
        .str("ssid", &ssid_text(&s.ssid))
        .str("bssid", &s.bssid.to_string())
        .raw("freq_mhz", s.freq_mhz)
}

impl<W: Write> Printer<'_, W> {
    fn print(&mut self, t: &Timed) -> io::Result<()> {
        let at = t.at;
        let before = |age: u64| Stamp {
            wall_ms: at.wall_ms.saturating_sub(age),
            uptime_ms: at.uptime_ms.saturating_sub(age),
        };
        let line = match &t.event {
            WireEvent::Start(s) => {
                let st = before(s.age_ms);
                self.open.retain(|o| o.id != s.id);
                self.open.push(s.clone());
                start_fields(
                    Obj::new().str("kind", "start").str("id", &s.id.to_string()),
                    s,
                )
                .raw("start_wall_ms", st.wall_ms)
                .raw("start_uptime_ms", st.uptime_ms)
                .raw("at_wall_ms", at.wall_ms)
                .raw("at_uptime_ms", at.uptime_ms)
                .opt("signal_dbm", s.signal_dbm)
                .opt_str("hostname", s.hostname.as_deref())
                .finish()
            }
            WireEvent::Update(u) => {
                let o = Obj::new()
                    .str("kind", "update")
                    .str("id", &u.id.to_string());
                self.with_start(o, u.id)
                    .raw("at_wall_ms", at.wall_ms)
                    .raw("at_uptime_ms", at.uptime_ms)
                    .raw("rx_bytes", u.rx_bytes)
                    .raw("tx_bytes", u.tx_bytes)
                    .raw("rx_packets", u.rx_packets)
                    .raw("tx_packets", u.tx_packets)
                    .opt("signal_avg_dbm", u.signal_avg_dbm)
                    .opt("inactive_ms", u.inactive_ms)
                    .opt_str("hostname", u.hostname.as_deref())
                    .finish()
            }
            WireEvent::Stop(s) => {
                let st = before(s.age_ms);
                let o = Obj::new().str("kind", "stop").str("id", &s.id.to_string());
                let line = self
                    .with_start(o, s.id)
                    .raw("stop_wall_ms", st.wall_ms)
                    .raw("stop_uptime_ms", st.uptime_ms)
                    .raw("at_wall_ms", at.wall_ms)
                    .raw("at_uptime_ms", at.uptime_ms)
                    .str("reason", s.reason.as_str())
                    .raw("rx_bytes", s.rx_bytes)
                    .raw("tx_bytes", s.tx_bytes)
                    .raw("rx_packets", s.rx_packets)
                    .raw("tx_packets", s.tx_packets)
                    .opt("signal_avg_dbm", s.signal_avg_dbm)
                    .opt("inactive_ms", s.inactive_ms)
                    .finish();
                self.open.retain(|o| o.id != s.id);
                line
            }
            WireEvent::Sync(s) => {
                let ids: Vec<String> = s.ids.iter().map(|i| format!("\"{i}\"")).collect();
                Obj::new()
                    .str("kind", "sync")
                    .raw("at_wall_ms", at.wall_ms)
                    .raw("ids", format!("[{}]", ids.join(",")))
                    .finish()
            }
            WireEvent::FailedJoin(j) => {
                let assoc = before(j.age_ms);
                Obj::new()
                    .str("kind", "failed_join")
                    .str("mac", &j.mac.to_string())
                    .str("ifname", &j.ifname)
                    .str("ssid", &ssid_text(&j.ssid))
                    .str("bssid", &j.bssid.to_string())
                    .raw("assoc_wall_ms", assoc.wall_ms)
                    .raw("assoc_uptime_ms", assoc.uptime_ms)
                    .raw("at_wall_ms", at.wall_ms)
                    .raw("at_uptime_ms", at.uptime_ms)
                    .finish()
            }
            WireEvent::Unknown { kind, .. } => {
                Obj::new().str("kind", "unknown").raw("code", kind).finish()
            }
        };
        writeln!(self.out, "{line}")?;
        self.out.flush()
    }

    fn with_start(&self, o: Obj, id: SessionId) -> Obj {
        match self.open.iter().find(|o| o.id == id) {
            Some(s) => start_fields(o, s),
            None => o,
        }
    }
}

/// `wifisess-agent watch`: runs the nl80211 source and the session tracker (the same
/// [`Nl80211Source`] as `run`, one clock reading per turn), printing every session event as
/// one JSON line on `out` (flushed per line). Runs until the event socket fails or `out` is
/// closed.
///
/// # Errors
/// nl80211 setup errors (no wireless driver), a failed event socket, write errors.
pub fn watch(opts: SourceOptions, out: &mut impl Write) -> Result<(), Box<dyn std::error::Error>> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()?;
    let mut source = Nl80211Source::open(opts)?;
    let mut printer = Printer {
        open: Vec::new(),
        out,
    };
    crate::run::block_on(&rt, async {
        let mut events = Vec::new();
        let mut input = None;
        loop {
            let now = crate::clock::now();
            if !source.turn(input.take(), &now, &mut events)? {
                return Ok(());
            }
            for t in events.drain(..) {
                printer.print(&t)?;
            }
            let wait = source
                .deadline()
                .map_or(u64::MAX, |d| d.saturating_sub(now.uptime_ms));
            input = tokio::select! {
                i = source.input() => Some(i),
                () = tokio::time::sleep(std::time::Duration::from_millis(wait)) => None,
            };
        }
    })?;
    Ok(())
}
