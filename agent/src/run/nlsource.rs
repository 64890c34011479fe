//! The real station source: nl80211 events (on their own thread, see
//! [`spawn_events`](crate::nl80211::spawn_events)) and periodic dumps feeding the session
//! tracker. `run` hands its events to the publisher, `watch` prints them.

use crate::error::Context as _;
use tokio::sync::mpsc::{unbounded_channel, UnboundedReceiver};
use wifisess_wire::{InterfaceInfo, Stamp};

use super::leases::LeaseFile;
use super::source::{Input, Source, SourceInfo};
use crate::clock::Now;
use crate::config::{settings, Config, MacPrivacy};
use crate::nl80211::{spawn_events, Event, Nl80211, SourceMsg};
use crate::session::{Input as Seen, Output, Timed, Tracker, TrackerConfig};
use crate::station::Iface;

/// What the source needs to know: which interfaces, and the tracker's timings.
#[derive(Clone, Debug)]
pub struct SourceOptions {
    /// Only these interfaces (all AP interfaces when empty).
    pub interfaces: Vec<String>,
    /// Rejoin grace, ms.
    pub rejoin_grace_ms: u64,
    /// Interim update interval, ms.
    pub interim_ms: u64,
    /// Reconcile dump (and interface re-discovery) interval, ms.
    pub poll_ms: u64,
    /// MAC privacy key, when enabled.
    pub mac_key: Option<Vec<u8>>,
    /// The DHCP lease file hostnames come from; `None`: no hostnames.
    pub dhcp_leases: Option<std::path::PathBuf>,
}

impl SourceOptions {
    /// The defaults of the settings table (`watch` starts from these).
    pub fn defaults() -> SourceOptions {
        let ms = |name| u64::from(settings::default_number(name)) * 1000;
        SourceOptions {
            interfaces: Vec::new(),
            rejoin_grace_ms: ms("rejoin_grace"),
            interim_ms: ms("interim_interval"),
            poll_ms: ms("poll_interval"),
            mac_key: None,
            dhcp_leases: settings::find("dhcp_leases")
                .and_then(|s| s.default)
                .map(Into::into),
        }
    }

    /// The options of the agent's configuration.
    pub fn from_config(cfg: &Config) -> SourceOptions {
        SourceOptions {
            interfaces: cfg.interfaces.clone(),
            rejoin_grace_ms: u64::from(cfg.rejoin_grace_s) * 1000,
            interim_ms: u64::from(cfg.interim_interval_s) * 1000,
            poll_ms: u64::from(cfg.poll_interval_s) * 1000,
            mac_key: match cfg.mac_privacy {
                MacPrivacy::Hmac => cfg.mac_key.as_ref().map(|k| k.as_bytes().to_vec()),
                _ => None,
            },
            dhcp_leases: cfg.dhcp_leases.clone().filter(|_| cfg.hostnames),
        }
    }
}

/// nl80211 → tracker. See the module documentation.
pub struct Nl80211Source {
    nl: Nl80211,
    rx: UnboundedReceiver<SourceMsg>,
    tracker: Tracker,
    only: Vec<String>,
    ifaces: Vec<Iface>,
    poll_ms: u64,
    next_poll: u64,
    started: bool,
    /// Where hostnames come from, when they are on.
    leases: Option<LeaseFile>,
}

impl Nl80211Source {
    /// Connects to nl80211, subscribes to its events and prepares the tracker from `opts`.
    ///
    /// # Errors
    /// nl80211 is not available (no wireless, no permission), or the event thread cannot
    /// be started.
    pub fn open(opts: SourceOptions) -> crate::error::Result<Nl80211Source> {
        let nl = Nl80211::connect()?;
        // Subscribe before the first discovery, so nothing between the two is missed.
        let events = nl.events()?;
        let (tx, rx) = unbounded_channel();
        spawn_events(events, move |m| tx.send(m).is_ok()).context("event thread")?;
        let tc = TrackerConfig {
            boot_id: crate::host::boot_id(),
            rejoin_grace_ms: opts.rejoin_grace_ms,
            interim_ms: opts.interim_ms,
            mac_key: opts.mac_key,
        };
        Ok(Nl80211Source {
            nl,
            rx,
            tracker: Tracker::new(tc),
            only: opts.interfaces,
            ifaces: Vec::new(),
            poll_ms: opts.poll_ms.max(100),
            next_poll: 0,
            started: false,
            leases: opts.dhcp_leases.map(LeaseFile::new),
        })
    }

    /// Feeds one observation and everything that follows (probes answered at once, at the
    /// same time).
    fn feed(&mut self, input: Seen<'_>, now: Stamp, out: &mut Vec<Timed>) {
        let mut outs = Vec::new();
        self.tracker.handle(input, now, &mut outs);
        let mut i = 0;
        while i < outs.len() {
            match outs[i].clone() {
                Output::Event(t) => {
                    let (kind, id) = describe(&t.event);
                    log::debug!("tracker: {kind} {id:016x}");
                    out.push(t)
                }
                Output::Probe { ifindex, mac } => match self.nl.station(ifindex, mac) {
                    Ok(st) => {
                        log::debug!(
                            "probe {mac} on ifindex {ifindex}: {}",
                            match &st {
                                None => "gone",
                                Some(s) if s.authorized == Some(true) => "authorized",
                                Some(_) => "not authorized",
                            }
                        );
                        let input = Seen::Probed {
                            ifindex,
                            mac,
                            station: st.as_ref(),
                        };
                        self.tracker.handle(input, now, &mut outs);
                    }
                    Err(e) => log::warn!("probe {mac} on ifindex {ifindex}: {e}"),
                },
            }
            i += 1;
        }
    }

    /// Re-discovers the AP interfaces, tells the tracker, and dumps all their stations.
    fn rediscover(&mut self, now: &Now, out: &mut Vec<Timed>) {
        self.refresh_interfaces(now.stamp(), out);
        self.dump_all(now, out);
    }

    fn refresh_interfaces(&mut self, now: Stamp, out: &mut Vec<Timed>) {
        match self.nl.ap_interfaces() {
            Ok(mut list) => {
                if !self.only.is_empty() {
                    list.retain(|i| self.only.iter().any(|n| n == i.ifname.as_str()));
                }
                if list != self.ifaces {
                    let names: Vec<_> = list.iter().map(|i| i.ifname.as_str()).collect();
                    log::info!("AP interfaces: [{}]", names.join(", "));
                }
                self.ifaces = list;
                let ifaces = self.ifaces.clone();
                self.feed(Seen::Interfaces(&ifaces), now, out);
            }
            Err(e) => log::error!("interface discovery: {e}"),
        }
    }

    /// An interface just switched to AP mode (`SET_INTERFACE`) has no SSID or frequency
    /// until hostapd beacons, and the kernel multicasts nothing then (no `START_AP`): its
    /// first station tells us it is beaconing now.
    fn incomplete(&self, ifindex: u32) -> bool {
        self.ifaces
            .iter()
            .any(|i| i.ifindex == ifindex && (i.ssid.is_empty() || i.freq_mhz == 0))
    }

    fn dump_all(&mut self, now: &Now, out: &mut Vec<Timed>) {
        for idx in self.ifaces.iter().map(|i| i.ifindex).collect::<Vec<_>>() {
            match self.nl.stations(idx) {
                Ok(stas) => self.feed(
                    Seen::Dump {
                        ifindex: idx,
                        stations: &stas,
                    },
                    now.stamp(),
                    out,
                ),
                Err(e) => log::warn!("station dump of ifindex {idx}: {e}"),
            }
        }
        self.next_poll = now.uptime_ms.saturating_add(self.poll_ms);
    }

    fn watched(&self, ifindex: u32) -> bool {
        self.ifaces.iter().any(|i| i.ifindex == ifindex)
    }

    /// Applies one kernel event; true if the interfaces must be re-discovered.
    fn on_event(&mut self, ev: Event, now: Stamp, out: &mut Vec<Timed>) -> bool {
        match ev {
            Event::NewStation(m) if self.watched(m.ifindex) => {
                log::debug!(
                    "NEW_STATION {} on ifindex {} (authorized: {:?})",
                    m.station.mac,
                    m.ifindex,
                    m.station.authorized
                );
                if self.incomplete(m.ifindex) {
                    self.refresh_interfaces(now, out);
                }
                self.feed(
                    Seen::NewStation {
                        ifindex: m.ifindex,
                        station: &m.station,
                    },
                    now,
                    out,
                )
            }
            Event::DelStation(m) if self.watched(m.ifindex) => {
                log::debug!("DEL_STATION {} on ifindex {}", m.station.mac, m.ifindex);
                self.feed(
                    Seen::DelStation {
                        ifindex: m.ifindex,
                        station: &m.station,
                    },
                    now,
                    out,
                )
            }
            Event::InterfaceChanged { cmd, ifindex, .. } => {
                let cmd = cmd.kernel_name().unwrap_or("NL80211_CMD");
                log::debug!("{cmd} on ifindex {}", ifindex.unwrap_or(0));
                if let Some(i) = ev.ap_down().filter(|&i| self.watched(i)) {
                    let name = self
                        .ifaces
                        .iter()
                        .find(|f| f.ifindex == i)
                        .map_or("", |f| &f.ifname);
                    log::info!("{name} (ifindex {i}) is down ({cmd}): its sessions stop");
                    self.feed(Seen::InterfaceDown { ifindex: i }, now, out);
                }
                return true;
            }
            _ => {}
        }
        false
    }

    fn handle(
        &mut self,
        msg: SourceMsg,
        now: Stamp,
        out: &mut Vec<Timed>,
    ) -> crate::error::Result<bool> {
        Ok(match msg {
            SourceMsg::Events(evs) => evs
                .into_iter()
                .fold(false, |r, ev| self.on_event(ev, now, out) | r),
            SourceMsg::Lost(why) => {
                log::warn!("nl80211 events lost ({why}): re-discovering");
                true
            }
            SourceMsg::Failed(e) => return Err(e).context("nl80211 event socket"),
        })
    }
}

/// An event's kind and session id (0 for a sync), for the debug log.
fn describe(e: &wifisess_wire::Event) -> (&'static str, u64) {
    use wifisess_wire::Event as W;
    match e {
        W::Start(s) => ("start", s.id.0),
        W::Update(u) => ("update", u.id.0),
        W::Stop(s) => ("stop", s.id.0),
        W::Sync(_) => ("sync", 0),
        W::FailedJoin(_) => ("failed join", 0),
        _ => ("unknown", 0),
    }
}

impl Source for Nl80211Source {
    async fn input(&mut self) -> Input {
        match self.rx.recv().await {
            Some(m) => Input::Kernel(m),
            None => Input::Ended,
        }
    }

    fn deadline(&self) -> Option<u64> {
        if !self.started {
            return Some(0);
        }
        // The lease file only matters while clients are connected.
        let leases = self
            .leases
            .as_ref()
            .filter(|_| self.tracker.stats().open > 0)
            .map(LeaseFile::next_check);
        Some(
            [self.tracker.next_deadline(), leases]
                .into_iter()
                .flatten()
                .fold(self.next_poll, u64::min),
        )
    }

    fn turn(
        &mut self,
        input: Option<Input>,
        now: &Now,
        out: &mut Vec<Timed>,
    ) -> crate::error::Result<bool> {
        // Hostnames first, so that the starts of this turn carry the names known now.
        if let Some(names) = self.leases.as_mut().and_then(|l| l.poll(now.uptime_ms)) {
            let mut outs = Vec::new();
            self.tracker.set_hostnames(names, now.stamp(), &mut outs);
            out.extend(outs.into_iter().filter_map(|o| match o {
                Output::Event(t) => Some(t),
                Output::Probe { .. } => None,
            }));
        }
        if !self.started {
            self.started = true;
            self.rediscover(now, out);
        }
        let mut rediscover = false;
        match input {
            Some(Input::Kernel(m)) => {
                rediscover = self.handle(m, now.stamp(), out)?;
                // Drain what else is queued before the (slower) re-discovery.
                while let Ok(m) = self.rx.try_recv() {
                    rediscover |= self.handle(m, now.stamp(), out)?;
                }
            }
            Some(Input::Ended) => {
                return Err(crate::error::Error::msg("nl80211 event thread ended"))
            }
            Some(Input::Events(_)) | None => {}
        }
        // Interfaces too at each poll: cheap, and it catches SSID/frequency changes that
        // nobody multicasts.
        if rediscover || now.uptime_ms >= self.next_poll {
            self.rediscover(now, out);
        }
        if self
            .tracker
            .next_deadline()
            .is_some_and(|d| d <= now.uptime_ms)
        {
            self.feed(Seen::Tick, now.stamp(), out);
        }
        Ok(true)
    }

    fn sync(&self, now: Stamp) -> Timed {
        self.tracker.sync(now)
    }

    fn info(&self) -> SourceInfo {
        let st = self.tracker.stats();
        SourceInfo {
            interfaces: self
                .ifaces
                .iter()
                .map(|i| InterfaceInfo {
                    ifname: i.ifname.as_str().into(),
                    ifindex: i.ifindex,
                    bssid: i.bssid,
                    ssid: i.ssid.to_vec(),
                    freq_mhz: i.freq_mhz,
                })
                .collect(),
            failed_joins: st.failed_joins,
            tracker_overflow: st.overflow,
        }
    }
}
