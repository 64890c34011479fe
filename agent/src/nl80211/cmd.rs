//! The diagnostic commands built on the nl80211 source: `stations` (one-shot listing) and
//! `watch` (source + session tracker, one JSON line per session event).

use std::io::{self, Write};

use wifisess_wire::{Event as WireEvent, SessionId, Stamp, Start};

use super::json::Obj;
use super::Nl80211;
use crate::run::{Nl80211Source, Source, SourceOptions};
use crate::session::Timed;
use crate::station::{Iface, StationInfo};

/// A bit rate in 100 kbit/s as Mbit/s with one decimal, the way `iw` prints it.
struct Mbps(u32);

impl core::fmt::Display for Mbps {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "{}.{}", self.0 / 10, self.0 % 10)
    }
}

fn ssid_text(ssid: &[u8]) -> String {
    String::from_utf8_lossy(ssid).into_owned()
}

fn station_json(s: &StationInfo) -> String {
    Obj::new()
        .str("mac", &s.mac.to_string())
        .opt("authorized", s.authorized)
        .opt("connected_s", s.connected_s)
        .opt("inactive_ms", s.inactive_ms)
        .opt("rx_bytes", s.rx_bytes)
        .opt("tx_bytes", s.tx_bytes)
        .opt("rx_packets", s.rx_packets)
        .opt("tx_packets", s.tx_packets)
        .opt("signal_dbm", s.signal_dbm)
        .opt("signal_avg_dbm", s.signal_avg_dbm)
        .opt("tx_bitrate_mbps", s.tx_bitrate_100kbps.map(Mbps))
        .opt("rx_bitrate_mbps", s.rx_bitrate_100kbps.map(Mbps))
        .opt("assoc_at_boottime_ns", s.assoc_at_boottime_ns)
        .finish()
}

fn iface_fields(o: Obj, i: &Iface) -> Obj {
    o.str("ifname", &i.ifname)
        .raw("ifindex", i.ifindex)
        .str("bssid", &i.bssid.to_string())
        .str("ssid", &ssid_text(&i.ssid))
        .raw("freq_mhz", i.freq_mhz)
}

fn opt<T: core::fmt::Display>(v: Option<T>) -> String {
    v.map_or_else(|| "-".into(), |v| v.to_string())
}

/// `wifisess-agent stations [--json]`: lists the AP interfaces and their stations.
///
/// # Errors
/// nl80211 errors ([`Error::NotAvailable`] without a wireless driver) and write errors.
pub fn stations(json: bool, out: &mut impl Write) -> Result<(), Box<dyn std::error::Error>> {
    let mut nl = Nl80211::connect()?;
    let ifaces = nl.ap_interfaces()?;
    let mut all = Vec::new();
    for i in &ifaces {
        all.push((i, nl.stations(i.ifindex)?));
    }
    if json {
        writeln!(out, "{{\"interfaces\":[")?;
        for (n, (i, stas)) in all.iter().enumerate() {
            let head = iface_fields(Obj::new(), i).finish();
            // Re-open the object to append the station array, one station per line.
            writeln!(out, "{},\"stations\":[", &head[..head.len() - 1])?;
            for (k, s) in stas.iter().enumerate() {
                let sep = if k + 1 < stas.len() { "," } else { "" };
                writeln!(out, "{}{sep}", station_json(s))?;
            }
            let sep = if n + 1 < all.len() { "," } else { "" };
            writeln!(out, "]}}{sep}")?;
        }
        writeln!(out, "]}}")?;
    } else {
        if all.is_empty() {
            writeln!(out, "no AP interfaces")?;
        }
        for (i, stas) in &all {
            writeln!(
                out,
                "{} (ifindex {}) bssid {} ssid {:?} freq {} MHz: {} station(s)",
                i.ifname,
                i.ifindex,
                i.bssid,
                ssid_text(&i.ssid),
                i.freq_mhz,
                stas.len()
            )?;
            if !stas.is_empty() {
                writeln!(
                    out,
                    "  {:<17} {:>4} {:>9} {:>9} {:>12} {:>12} {:>8} {:>8} {:>6} {:>6} {:>7} {:>7}",
                    "mac",
                    "auth",
                    "conn_s",
                    "inact_ms",
                    "rx_bytes",
                    "tx_bytes",
                    "rx_pkts",
                    "tx_pkts",
                    "signal",
                    "avg",
                    "tx_mbps",
                    "rx_mbps"
                )?;
            }
            for s in stas {
                writeln!(
                    out,
                    "  {:<17} {:>4} {:>9} {:>9} {:>12} {:>12} {:>8} {:>8} {:>6} {:>6} {:>7} {:>7}",
                    s.mac.to_string(),
                    match s.authorized {
                        Some(true) => "yes",
                        Some(false) => "no",
                        None => "-",
                    },
                    opt(s.connected_s),
                    opt(s.inactive_ms),
                    opt(s.rx_bytes),
                    opt(s.tx_bytes),
                    opt(s.rx_packets),
                    opt(s.tx_packets),
                    opt(s.signal_dbm),
                    opt(s.signal_avg_dbm),
                    opt(s.tx_bitrate_100kbps.map(Mbps)),
                    opt(s.rx_bitrate_100kbps.map(Mbps)),
                )?;
            }
        }
    }
    out.flush()?;
    Ok(())
}

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
            WireEvent::Unknown { kind } => {
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
/// [`Nl80211Source`] as `run`), printing every session event as one JSON line on `out`
/// (flushed per line). Runs until the event socket fails or `out` is closed.
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
        while source.next(&mut events).await? {
            for t in events.drain(..) {
                printer.print(&t)?;
            }
        }
        Ok(())
    })?;
    Ok(())
}
