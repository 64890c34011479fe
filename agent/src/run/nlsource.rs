//! The real station source: nl80211 events (on their own thread, see
//! [`spawn_events`](crate::nl80211::spawn_events)) and periodic dumps feeding the session
//! tracker, the same loop as `wifisess-agent watch` but handing events to the publisher.

use std::time::Duration;

use anyhow::Context as _;
use tokio::sync::mpsc::{unbounded_channel, UnboundedReceiver};
use wifisess_wire::{InterfaceInfo, Stamp};

use super::Source;
use crate::config::{Config, MacPrivacy};
use crate::nl80211::clock::Clock;
use crate::nl80211::{spawn_events, Event, Nl80211, SourceMsg};
use crate::publish::SourceInfo;
use crate::session::{Input, Output, Timed, Tracker, TrackerConfig};
use crate::station::Iface;

/// nl80211 → tracker. See the module documentation.
pub struct Nl80211Source {
    nl: Nl80211,
    rx: UnboundedReceiver<SourceMsg>,
    tracker: Tracker,
    clock: Clock,
    only: Vec<String>,
    ifaces: Vec<Iface>,
    poll_ms: u64,
    next_poll: u64,
    started: bool,
}

impl Nl80211Source {
    /// Connects to nl80211, subscribes to its events and prepares the tracker from `cfg`.
    ///
    /// # Errors
    /// nl80211 is not available (no wireless, no permission), or the event thread cannot
    /// be started.
    pub fn open(cfg: &Config) -> anyhow::Result<Nl80211Source> {
        let nl = Nl80211::connect()?;
        // Subscribe before the first discovery, so nothing between the two is missed.
        let events = nl.events()?;
        let (tx, rx) = unbounded_channel();
        spawn_events(events, move |m| tx.send(m).is_ok()).context("event thread")?;
        let mut tc = TrackerConfig::new(super::boot_id());
        tc.rejoin_grace_ms = u64::from(cfg.rejoin_grace_s) * 1000;
        tc.interim_ms = u64::from(cfg.interim_interval_s) * 1000;
        if cfg.mac_privacy == MacPrivacy::Hmac {
            tc.mac_key = cfg.mac_key.as_ref().map(|k| k.as_bytes().to_vec());
        }
        Ok(Nl80211Source {
            nl,
            rx,
            tracker: Tracker::new(tc),
            clock: Clock::new(),
            only: cfg.interfaces.clone(),
            ifaces: Vec::new(),
            poll_ms: u64::from(cfg.poll_interval_s) * 1000,
            next_poll: 0,
            started: false,
        })
    }

    /// Feeds one input and everything that follows (probes answered at once).
    fn feed(&mut self, input: Input<'_>, out: &mut Vec<Timed>) {
        let mut outs = Vec::new();
        self.tracker.handle(input, self.clock.now(), &mut outs);
        let mut i = 0;
        while i < outs.len() {
            match outs[i].clone() {
                Output::Event(t) => out.push(t),
                Output::Probe { ifindex, mac } => match self.nl.station(ifindex, mac) {
                    Ok(st) => {
                        let input = Input::Probed {
                            ifindex,
                            mac,
                            station: st.as_ref(),
                        };
                        self.tracker.handle(input, self.clock.now(), &mut outs);
                    }
                    Err(e) => log::warn!("probe {mac} on ifindex {ifindex}: {e}"),
                },
            }
            i += 1;
        }
    }

    fn rediscover(&mut self, out: &mut Vec<Timed>) {
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
                self.feed(Input::Interfaces(&ifaces), out);
            }
            Err(e) => log::error!("interface discovery: {e}"),
        }
        self.dump_all(out);
    }

    fn dump_all(&mut self, out: &mut Vec<Timed>) {
        for idx in self.ifaces.iter().map(|i| i.ifindex).collect::<Vec<_>>() {
            match self.nl.stations(idx) {
                Ok(stas) => self.feed(
                    Input::Dump {
                        ifindex: idx,
                        stations: &stas,
                    },
                    out,
                ),
                Err(e) => log::warn!("station dump of ifindex {idx}: {e}"),
            }
        }
        self.next_poll = self.clock.uptime_ms().saturating_add(self.poll_ms);
    }

    fn watched(&self, ifindex: u32) -> bool {
        self.ifaces.iter().any(|i| i.ifindex == ifindex)
    }

    /// Applies one kernel event; true if the interfaces must be re-discovered.
    fn on_event(&mut self, ev: Event, out: &mut Vec<Timed>) -> bool {
        match ev {
            Event::NewStation(m) if self.watched(m.ifindex) => self.feed(
                Input::NewStation {
                    ifindex: m.ifindex,
                    station: &m.station,
                },
                out,
            ),
            Event::DelStation(m) if self.watched(m.ifindex) => self.feed(
                Input::DelStation {
                    ifindex: m.ifindex,
                    station: &m.station,
                },
                out,
            ),
            Event::InterfaceChanged { .. } => return true,
            _ => {}
        }
        false
    }

    fn handle(&mut self, msg: SourceMsg, out: &mut Vec<Timed>) -> anyhow::Result<bool> {
        Ok(match msg {
            SourceMsg::Events(evs) => evs
                .into_iter()
                .fold(false, |r, ev| self.on_event(ev, out) | r),
            SourceMsg::Lost(why) => {
                log::warn!("nl80211 events lost ({why}): re-discovering");
                true
            }
            SourceMsg::Failed(e) => return Err(e).context("nl80211 event socket"),
        })
    }
}

impl Source for Nl80211Source {
    async fn next(&mut self, out: &mut Vec<Timed>) -> anyhow::Result<bool> {
        if !self.started {
            self.started = true;
            self.rediscover(out);
            return Ok(true);
        }
        let now = self.clock.uptime_ms();
        let wake = self
            .tracker
            .next_deadline()
            .map_or(self.next_poll, |d| d.min(self.next_poll));
        let msg = tokio::time::timeout(
            Duration::from_millis(wake.saturating_sub(now)),
            self.rx.recv(),
        )
        .await;
        let mut rediscover = false;
        match msg {
            Ok(Some(m)) => {
                rediscover = self.handle(m, out)?;
                // Drain what else is queued before the (slower) re-discovery.
                while let Ok(m) = self.rx.try_recv() {
                    rediscover |= self.handle(m, out)?;
                }
            }
            Ok(None) => anyhow::bail!("nl80211 event thread ended"),
            Err(_) => {}
        }
        let now = self.clock.uptime_ms();
        if rediscover {
            self.rediscover(out);
        } else if now >= self.next_poll {
            self.dump_all(out);
        }
        if self
            .tracker
            .next_deadline()
            .is_some_and(|d| d <= self.clock.uptime_ms())
        {
            self.feed(Input::Tick, out);
        }
        Ok(true)
    }

    fn sync(&mut self, now: Stamp) -> Timed {
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
