//! The diagnostic commands built on the nl80211 source: `stations` (one-shot listing) and
//! `watch` (source + session tracker, one JSON line per session event).

use std::collections::HashMap;
use std::io::{self, Write};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::time::Duration;

use wifisess_wire::{BootId, Event as WireEvent, MacAddr, SessionId, Stamp};

use super::clock::Clock;
use super::json::Obj;
use super::{spawn_events, Error, Event, Nl80211, SourceMsg};
use crate::session::{Input, Output, Timed, Tracker, TrackerConfig};
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

/// Settings of `watch`.
#[derive(Clone, Debug)]
pub struct WatchOptions {
    /// Only these interfaces (all AP interfaces when empty).
    pub interfaces: Vec<String>,
    /// Rejoin grace, ms.
    pub rejoin_grace_ms: u64,
    /// Interim update interval, ms.
    pub interim_ms: u64,
    /// Reconcile dump interval, ms.
    pub poll_ms: u64,
}

impl Default for WatchOptions {
    fn default() -> Self {
        WatchOptions {
            interfaces: Vec::new(),
            rejoin_grace_ms: 10_000,
            interim_ms: 300_000,
            poll_ms: 10_000,
        }
    }
}

/// What `watch` remembers of an open session to print its stop line.
#[derive(Clone, Debug)]
struct Known {
    mac: MacAddr,
    iface: Iface,
}

/// Reads `/proc/sys/kernel/random/boot_id` (zeros if unreadable, with a warning).
pub fn boot_id() -> BootId {
    match std::fs::read_to_string("/proc/sys/kernel/random/boot_id") {
        Ok(s) => s.parse().unwrap_or_else(|e| {
            eprintln!("warning: /proc/sys/kernel/random/boot_id: {e}");
            BootId::default()
        }),
        Err(e) => {
            eprintln!("warning: /proc/sys/kernel/random/boot_id: {e}");
            BootId::default()
        }
    }
}

struct Watch<'o, W: Write> {
    nl: Nl80211,
    tracker: Tracker,
    clock: Clock,
    opts: WatchOptions,
    ifaces: Vec<Iface>,
    known: HashMap<SessionId, Known>,
    out: &'o mut W,
}

impl<W: Write> Watch<'_, W> {
    /// Feeds one input and everything that follows from it (probes answered at once).
    fn feed(&mut self, input: Input<'_>) -> io::Result<()> {
        let mut outs = Vec::new();
        self.tracker.handle(input, self.clock.now(), &mut outs);
        let mut i = 0;
        while i < outs.len() {
            match outs[i].clone() {
                Output::Event(t) => self.print(&t)?,
                Output::Probe { ifindex, mac } => match self.nl.station(ifindex, mac) {
                    Ok(st) => {
                        let input = Input::Probed {
                            ifindex,
                            mac,
                            station: st.as_ref(),
                        };
                        self.tracker.handle(input, self.clock.now(), &mut outs);
                    }
                    Err(e) => eprintln!("probe {mac} on ifindex {ifindex}: {e}"),
                },
            }
            i += 1;
        }
        Ok(())
    }

    /// Re-discovers the AP interfaces and dumps all their stations.
    fn rediscover(&mut self) -> io::Result<()> {
        self.refresh_interfaces()?;
        self.dump_all()
    }

    /// Re-discovers the AP interfaces and tells the tracker.
    fn refresh_interfaces(&mut self) -> io::Result<()> {
        match self.nl.ap_interfaces() {
            Ok(mut list) => {
                if !self.opts.interfaces.is_empty() {
                    list.retain(|i| self.opts.interfaces.iter().any(|n| n == i.ifname.as_str()));
                }
                if list != self.ifaces {
                    eprintln!(
                        "interfaces: [{}]",
                        list.iter()
                            .map(|i| i.ifname.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    );
                }
                self.ifaces = list;
                let ifaces = self.ifaces.clone();
                self.feed(Input::Interfaces(&ifaces))?;
            }
            Err(e) => eprintln!("interface discovery: {e}"),
        }
        Ok(())
    }

    /// An AP interface switched to AP mode (`SET_INTERFACE`) has no SSID or frequency until
    /// hostapd starts beaconing, and the kernel multicasts nothing then (no `START_AP` event):
    /// the first station tells us it is beaconing now.
    fn incomplete(&self, ifindex: u32) -> bool {
        self.ifaces
            .iter()
            .any(|i| i.ifindex == ifindex && (i.ssid.is_empty() || i.freq_mhz == 0))
    }

    fn dump_all(&mut self) -> io::Result<()> {
        for idx in self.ifaces.iter().map(|i| i.ifindex).collect::<Vec<_>>() {
            match self.nl.stations(idx) {
                Ok(stas) => self.feed(Input::Dump {
                    ifindex: idx,
                    stations: &stas,
                })?,
                Err(e) => eprintln!("station dump of ifindex {idx}: {e}"),
            }
        }
        Ok(())
    }

    fn watched(&self, ifindex: u32) -> bool {
        self.ifaces.iter().any(|i| i.ifindex == ifindex)
    }

    fn on_event(&mut self, ev: Event) -> io::Result<bool> {
        match ev {
            Event::NewStation(m) if self.watched(m.ifindex) => {
                if self.incomplete(m.ifindex) {
                    self.refresh_interfaces()?;
                }
                self.feed(Input::NewStation {
                    ifindex: m.ifindex,
                    station: &m.station,
                })?
            }
            Event::DelStation(m) if self.watched(m.ifindex) => self.feed(Input::DelStation {
                ifindex: m.ifindex,
                station: &m.station,
            })?,
            Event::InterfaceChanged { cmd, ifindex } => {
                eprintln!(
                    "event {} ifindex {}",
                    cmd.kernel_name().unwrap_or("?"),
                    opt(ifindex)
                );
                return Ok(true);
            }
            _ => {}
        }
        Ok(false)
    }

    fn print(&mut self, t: &Timed) -> io::Result<()> {
        let at = t.at;
        let before = |age: u64| Stamp {
            wall_ms: at.wall_ms.saturating_sub(age),
            uptime_ms: at.uptime_ms.saturating_sub(age),
        };
        let line = match &t.event {
            WireEvent::Start(s) => {
                if let Some(iface) = self.ifaces.iter().find(|i| i.ifname.as_str() == s.ifname) {
                    self.known.insert(
                        s.id,
                        Known {
                            mac: s.mac,
                            iface: iface.clone(),
                        },
                    );
                }
                let st = before(s.age_ms);
                Obj::new()
                    .str("kind", "start")
                    .str("id", &s.id.to_string())
                    .str("mac", &s.mac.to_string())
                    .str("ifname", &s.ifname)
                    .str("ssid", &ssid_text(&s.ssid))
                    .str("bssid", &s.bssid.to_string())
                    .raw("freq_mhz", s.freq_mhz)
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
                self.with_known(o, u.id)
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
                    .with_known(o, s.id)
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
                self.known.remove(&s.id);
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

    fn with_known(&self, o: Obj, id: SessionId) -> Obj {
        match self.known.get(&id) {
            Some(k) => iface_fields(o.str("mac", &k.mac.to_string()), &k.iface),
            None => o,
        }
    }
}

/// `wifisess-agent watch`: runs the nl80211 source and the session tracker, printing every
/// session event as one JSON line on `out` (flushed per line). Runs until the event socket
/// fails or `out` is closed.
///
/// # Errors
/// nl80211 setup errors ([`Error::NotAvailable`]), a failed event socket, write errors.
pub fn watch(opts: WatchOptions, out: &mut impl Write) -> Result<(), Box<dyn std::error::Error>> {
    let clock = Clock::new();
    let nl = Nl80211::connect()?;
    // Subscribe before the first discovery, so nothing between the two is missed.
    let events = nl.events()?;
    let (tx, rx) = mpsc::channel();
    spawn_events(events, move |m| tx.send(m).is_ok())?;
    let mut cfg = TrackerConfig::new(boot_id());
    cfg.rejoin_grace_ms = opts.rejoin_grace_ms;
    cfg.interim_ms = opts.interim_ms;
    let poll_ms = opts.poll_ms.max(100);
    let mut w = Watch {
        nl,
        tracker: Tracker::new(cfg),
        clock,
        opts,
        ifaces: Vec::new(),
        known: HashMap::new(),
        out,
    };
    w.rediscover()?;
    let mut next_poll = w.clock.uptime_ms().saturating_add(poll_ms);
    loop {
        let now = w.clock.uptime_ms();
        let wake = w
            .tracker
            .next_deadline()
            .map_or(next_poll, |d| d.min(next_poll));
        let msg = rx.recv_timeout(Duration::from_millis(wake.saturating_sub(now)));
        let mut rediscover = false;
        match msg {
            Ok(SourceMsg::Events(evs)) => {
                for ev in evs {
                    rediscover |= w.on_event(ev)?;
                }
            }
            Ok(SourceMsg::Lost(why)) => {
                eprintln!("events lost ({why}): re-discovering");
                rediscover = true;
            }
            Ok(SourceMsg::Failed(e)) => return Err(Box::new(e)),
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => return Err(Box::new(Error::NotAvailable)),
        }
        // Drain what else is queued before the (slow) re-discovery.
        if rediscover {
            loop {
                match rx.try_recv() {
                    Ok(SourceMsg::Events(evs)) => {
                        for ev in evs {
                            w.on_event(ev)?;
                        }
                    }
                    Ok(SourceMsg::Lost(_)) => {}
                    Ok(SourceMsg::Failed(e)) => return Err(Box::new(e)),
                    Err(_) => break,
                }
            }
        }
        let now = w.clock.uptime_ms();
        if rediscover {
            w.rediscover()?;
            next_poll = now.saturating_add(poll_ms);
        } else if now >= next_poll {
            // Interfaces too: cheap, and it catches SSID/frequency changes nobody multicasts.
            w.rediscover()?;
            next_poll = now.saturating_add(poll_ms);
        }
        if w.tracker
            .next_deadline()
            .is_some_and(|d| d <= w.clock.uptime_ms())
        {
            w.feed(Input::Tick)?;
        }
    }
}
