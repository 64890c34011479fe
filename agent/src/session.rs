//! The session tracker: a pure state machine from station observations to session events.
//!
//! No I/O and no clock: every input comes with the current time ([`Stamp`]), and outputs are
//! pushed into a caller-provided `Vec`. The nl80211 reader feeds it (and the DHCP leases, see
//! [`Tracker::set_hostnames`]); the publisher and the `watch` command consume its events.

use wifisess_wire::{Event, MacAddr, Stamp};

use crate::leases::Hostnames;
use crate::station::{Iface, StationInfo};

/// What the tracker is told. Each input comes with the time it was observed.
#[derive(Clone, Copy, Debug)]
pub enum Input<'a> {
    /// The complete current set of AP interfaces, after discovery or an interface event.
    /// Sessions on interfaces missing from it stop with `interface_down`.
    Interfaces(&'a [Iface]),
    /// A complete `GET_STATION` dump of one interface: refreshes counters, starts sessions an
    /// event missed, and stops sessions whose station is gone (`vanished`).
    Dump {
        /// The interface dumped.
        ifindex: u32,
        /// Every station the kernel listed.
        stations: &'a [StationInfo],
    },
    /// A `NEW_STATION` event: a client associated (usually not authorized yet).
    NewStation {
        /// Interface it associated to.
        ifindex: u32,
        /// What the event carried.
        station: &'a StationInfo,
    },
    /// The answer to an [`Output::Probe`]: the station now, or `None` if the kernel no
    /// longer has it.
    Probed {
        /// Interface probed.
        ifindex: u32,
        /// Station probed.
        mac: MacAddr,
        /// Its state, if it still exists.
        station: Option<&'a StationInfo>,
    },
    /// A `DEL_STATION` event, with the final counters when the kernel included them.
    DelStation {
        /// Interface it left.
        ifindex: u32,
        /// What the event carried.
        station: &'a StationInfo,
    },
    /// The kernel announced that an AP interface stopped serving clients (`STOP_AP`,
    /// `DEL_INTERFACE`, leaving AP mode), now. Its sessions stop at once with
    /// `interface_down`; the interface stays known, so stations that join when it is back
    /// start new sessions.
    InterfaceDown {
        /// The interface.
        ifindex: u32,
    },
    /// Nothing happened but time passed; call at [`Tracker::next_deadline`].
    Tick,
}

/// An event with the absolute time it happened (its `seq` is still 0: the outbox numbers it):
/// a session's start, update or stop, a sync, or a failed join.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Timed {
    /// When the agent observed it.
    pub at: Stamp,
    /// The event.
    pub event: Event,
}

/// What the tracker asks for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Output {
    /// A session event to publish.
    Event(Timed),
    /// Query this one station (`GET_STATION` by MAC) and feed the answer back as
    /// [`Input::Probed`]: it associated but is not authorized yet, and the kernel multicasts
    /// nothing when hostapd authorizes it.
    Probe {
        /// Interface.
        ifindex: u32,
        /// Station.
        mac: MacAddr,
    },
}

use heapless::{FnvIndexMap, Vec as HVec};
use sha2::{Digest, Sha256};
use wifisess_wire::{BootId, FailedJoin, SessionId, Start, Stop, StopReason, Sync, Update};

/// Most sessions one device tracks at once (a power of two; far above what an AP serves).
pub const MAX_SESSIONS: usize = 512;
/// Most stations waiting for authorization at once.
pub const MAX_PENDING: usize = 64;
/// Most AP interfaces on one device.
pub const MAX_IFACES: usize = 32;

/// First authorization probe after an association, ms; doubles per attempt up to
/// [`PROBE_MAX_MS`].
const PROBE_FIRST_MS: u64 = 50;
const PROBE_MAX_MS: u64 = 500;
/// A station not authorized this long after associating is given up as a failed join (a
/// wrong passphrase usually ends sooner: hostapd removes the station after its 4-way
/// handshake retries, a few seconds).
const PENDING_GIVE_UP_MS: u64 = 30_000;
/// A station missing from a dump is stopped no sooner than this after the dump: its
/// `DEL_STATION` may still be queued behind the dump, and it is the better witness.
const VANISHED_HOLD_MS: u64 = 2_000;
/// A session whose station left at most this long before its interface went down stops
/// with `interface_down` (at its leave time): the kernel and hostapd remove every station
/// of an interface (`DEL_STATION` each) just before they announce the interface down.
/// One that left earlier keeps its own reason.
const DOWN_FLUSH_MS: u64 = 2_000;

/// Settings of the tracker (SPEC §3.2), from the configuration (`rejoin_grace`,
/// `interim_interval`, `mac_privacy`; their defaults are in `config::settings`).
#[derive(Clone, Debug)]
pub struct TrackerConfig {
    /// This boot's kernel boot id, hashed into every session id.
    pub boot_id: BootId,
    /// A client rejoining the same interface within this many ms continues its session.
    pub rejoin_grace_ms: u64,
    /// Interval between interim updates of an open session, ms.
    pub interim_ms: u64,
    /// MAC privacy: when set, every published MAC is HMAC-SHA256(key, MAC) truncated to six
    /// bytes, locally administered.
    pub mac_key: Option<Vec<u8>>,
}

/// Counters the tracker reports in the status message.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TrackerStats {
    /// Sessions open now (including ones held back by the rejoin grace).
    pub open: u32,
    /// Stations that associated but never authorized (each also a failed-join event).
    pub failed_joins: u64,
    /// Authorized stations that found the session table full (no session recorded).
    pub overflow: u64,
}

/// Traffic counters of a session, cumulative.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Counters {
    rx_bytes: u64,
    tx_bytes: u64,
    rx_packets: u64,
    tx_packets: u64,
}

impl Counters {
    fn read(st: &StationInfo) -> Option<Counters> {
        if st.rx_bytes.is_none()
            && st.tx_bytes.is_none()
            && st.rx_packets.is_none()
            && st.tx_packets.is_none()
        {
            return None;
        }
        Some(Counters {
            rx_bytes: st.rx_bytes.unwrap_or(0),
            tx_bytes: st.tx_bytes.unwrap_or(0),
            rx_packets: st.rx_packets.map_or(0, u64::from),
            tx_packets: st.tx_packets.map_or(0, u64::from),
        })
    }

    fn plus(self, o: Counters) -> Counters {
        Counters {
            rx_bytes: self.rx_bytes.saturating_add(o.rx_bytes),
            tx_bytes: self.tx_bytes.saturating_add(o.tx_bytes),
            rx_packets: self.rx_packets.saturating_add(o.rx_packets),
            tx_packets: self.tx_packets.saturating_add(o.tx_packets),
        }
    }

    fn max(self, o: Counters) -> Counters {
        Counters {
            rx_bytes: self.rx_bytes.max(o.rx_bytes),
            tx_bytes: self.tx_bytes.max(o.tx_bytes),
            rx_packets: self.rx_packets.max(o.rx_packets),
            tx_packets: self.tx_packets.max(o.tx_packets),
        }
    }
}

/// When a station associated, as the kernel reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Assoc {
    /// Association time, ms of CLOCK_BOOTTIME.
    uptime_ms: u64,
    /// The exact value hashed into the session id, ns (see `docs/wire.md`).
    key_ns: u64,
    /// True when from `ASSOC_AT_BOOTTIME`; false when derived from `CONNECTED_TIME`, whose
    /// one-second resolution makes each reading differ by up to a second.
    exact: bool,
}

impl Assoc {
    /// From `ASSOC_AT_BOOTTIME`, else `CONNECTED_TIME` (second precision), else now.
    ///
    /// mac80211 reports `ASSOC_AT_BOOTTIME` 0 for a station hostapd added that has not
    /// reached the associated state yet (hostapd adds it at authentication): 0 is "not
    /// known", not "associated at boot" (which made such a station look 30 s old and its
    /// probes were given up at once; the start then waited for the next dump).
    fn of(st: &StationInfo, now: Stamp) -> Assoc {
        if let Some(ns) = st.assoc_at_boottime_ns.filter(|&ns| ns != 0) {
            return Assoc {
                uptime_ms: ns / 1_000_000,
                key_ns: ns,
                exact: true,
            };
        }
        let now_s = now.uptime_ms / 1000;
        let s = now_s.saturating_sub(st.connected_s.map_or(0, u64::from));
        Assoc {
            uptime_ms: match st.connected_s {
                Some(c) => now.uptime_ms.saturating_sub(u64::from(c) * 1000),
                None => now.uptime_ms,
            },
            key_ns: s.saturating_mul(1_000_000_000),
            exact: false,
        }
    }

    /// Whether two readings describe the same association.
    fn same_as(&self, o: &Assoc) -> bool {
        if self.exact && o.exact {
            self.key_ns == o.key_ns
        } else {
            self.uptime_ms.abs_diff(o.uptime_ms) <= 1_500
        }
    }
}

/// A session held back by the rejoin grace: the station left at `at`.
#[derive(Clone, Copy, Debug)]
struct Leaving {
    at: Stamp,
    reason: StopReason,
    /// Uptime ms before which the stop is not emitted, whatever the grace.
    not_before_ms: u64,
}

impl Leaving {
    fn due_ms(&self, grace_ms: u64) -> u64 {
        self.at
            .uptime_ms
            .saturating_add(grace_ms)
            .max(self.not_before_ms)
    }
}

#[derive(Clone, Debug)]
struct Session {
    id: SessionId,
    ifindex: u32,
    /// The current association (a merged rejoin replaces it; the id stays).
    assoc: Assoc,
    /// Counters of earlier associations merged into this session by the rejoin grace.
    base: Counters,
    /// Latest reading of the current association.
    cur: Counters,
    /// Highest value reported so far: reports never go down.
    reported: Counters,
    signal_avg_dbm: Option<i8>,
    inactive_ms: Option<u32>,
    /// Time of the latest observation that showed the station.
    last_seen: Stamp,
    /// Uptime ms at which the next interim update is due.
    next_update_ms: u64,
    leaving: Option<Leaving>,
    /// The client's hostname as last published (on the start or an update).
    hostname: Option<Box<str>>,
}

impl Session {
    fn counters(&mut self) -> Counters {
        self.reported = self.reported.max(self.base.plus(self.cur));
        self.reported
    }

    fn refresh(&mut self, st: &StationInfo, now: Stamp) {
        if let Some(c) = Counters::read(st) {
            self.cur = self.cur.max(c);
        }
        self.signal_avg_dbm = st.signal_avg_dbm.or(st.signal_dbm).or(self.signal_avg_dbm);
        self.inactive_ms = st.inactive_ms.or(self.inactive_ms);
        self.last_seen = now;
    }
}

/// A station associated but not (yet) authorized.
#[derive(Clone, Copy, Debug)]
struct Pending {
    ifindex: u32,
    mac: MacAddr,
    assoc_uptime_ms: u64,
    next_probe_ms: u64,
    probe_gap_ms: u64,
}

/// The session tracker of SPEC §3.2. See the module docs.
pub struct Tracker {
    cfg: TrackerConfig,
    ifaces: HVec<Iface, MAX_IFACES>,
    sessions: FnvIndexMap<MacAddr, Session, MAX_SESSIONS>,
    pending: HVec<Pending, MAX_PENDING>,
    /// Stations given up while the kernel still had them (not authorized in
    /// [`PENDING_GIVE_UP_MS`]): the same association is not waited for, nor counted, again
    /// when a dump lists it, until it is gone (oldest forgotten first when full).
    given_up: HVec<Pending, MAX_PENDING>,
    stats: TrackerStats,
    /// The latest hostnames table ([`Tracker::set_hostnames`]).
    names: Hostnames,
}

/// The stable session id of SPEC §3.2, defined in `docs/wire.md`: the first 8 bytes,
/// big-endian, of SHA-256("wifisess/session/v1\0" ‖ boot id ‖ len(ifname) ‖ ifname ‖ MAC ‖
/// association time in ns, big-endian).
pub fn session_id(boot_id: &BootId, ifname: &str, mac: &MacAddr, assoc_ns: u64) -> SessionId {
    let name = &ifname.as_bytes()[..ifname.len().min(255)];
    let mut h = Sha256::new();
    h.update(b"wifisess/session/v1\0");
    h.update(boot_id.0);
    h.update([name.len() as u8]);
    h.update(name);
    h.update(mac.0);
    h.update(assoc_ns.to_be_bytes());
    let d = h.finalize();
    let mut first = [0u8; 8];
    first.copy_from_slice(&d[..8]);
    SessionId(u64::from_be_bytes(first))
}

/// MAC privacy: HMAC-SHA256(key, MAC) truncated to 6 bytes, unicast and locally administered.
pub fn pseudonymize(key: &[u8], mac: &MacAddr) -> MacAddr {
    use hmac::{Hmac, Mac};
    let mut m = <Hmac<Sha256> as Mac>::new_from_slice(key).expect("HMAC takes keys of any length");
    m.update(&mac.0);
    let d = m.finalize().into_bytes();
    let mut out = [0u8; 6];
    out.copy_from_slice(&d[..6]);
    out[0] = (out[0] | 0x02) & !0x01;
    MacAddr(out)
}

impl Tracker {
    /// A tracker with no interfaces and no sessions.
    pub fn new(cfg: TrackerConfig) -> Self {
        Tracker {
            cfg,
            ifaces: HVec::new(),
            sessions: FnvIndexMap::new(),
            pending: HVec::new(),
            given_up: HVec::new(),
            stats: TrackerStats::default(),
            names: Hostnames::default(),
        }
    }

    /// Applies one input observed at `now`, appending what follows to `out`.
    pub fn handle(&mut self, input: Input<'_>, now: Stamp, out: &mut Vec<Output>) {
        match input {
            Input::Interfaces(list) => self.set_interfaces(list, now, out),
            Input::Dump { ifindex, stations } => self.dump(ifindex, stations, now, out),
            Input::NewStation { ifindex, station } => self.observe(ifindex, station, now, out),
            Input::Probed {
                ifindex,
                mac,
                station,
            } => match station {
                Some(st) => {
                    let st = StationInfo { mac, ..st.clone() };
                    self.observe(ifindex, &st, now, out)
                }
                None => self.station_gone(ifindex, &mac, None, now, out),
            },
            Input::DelStation { ifindex, station } => {
                self.station_gone(ifindex, &station.mac, Some(station), now, out)
            }
            Input::InterfaceDown { ifindex } => self.interface_down(ifindex, now, out),
            Input::Tick => {}
        }
        self.run_timers(now, out);
    }

    /// The uptime (ms) at which the tracker next needs an [`Input::Tick`], if any.
    pub fn next_deadline(&self) -> Option<u64> {
        let grace = self.cfg.rejoin_grace_ms;
        let sessions = self.sessions.iter().filter_map(|(mac, s)| match s.leaving {
            // A stop held back by a pending rejoin waits for that station's probes.
            Some(_) if self.rejoin_pending(mac, s.ifindex) => None,
            Some(l) => Some(l.due_ms(grace)),
            None => Some(s.next_update_ms),
        });
        let probes = self.pending.iter().map(|p| p.next_probe_ms);
        sessions.chain(probes).min()
    }

    fn rejoin_pending(&self, mac: &MacAddr, ifindex: u32) -> bool {
        self.pending
            .iter()
            .any(|p| p.mac == *mac && p.ifindex == ifindex)
    }

    /// A sync event listing every open session (sent after each broker connect).
    pub fn sync(&self, now: Stamp) -> Timed {
        Timed {
            at: now,
            event: Event::Sync(Sync {
                seq: 0,
                at: Default::default(),
                ids: self.sessions.values().map(|s| s.id).collect(),
            }),
        }
    }

    /// Takes a new table of hostnames (the DHCP leases, read again after they changed): an
    /// open session whose client has a name in it that was not published yet, or a new one,
    /// gets an update carrying it now. A name that is gone from the table is not unsaid.
    /// Starts look their client's name up in the latest table.
    pub fn set_hostnames(&mut self, names: Hostnames, now: Stamp, out: &mut Vec<Output>) {
        self.names = names;
        // The last lease of a MAC wins, as in `Hostnames::get`; one update per session.
        let mut named: Vec<(MacAddr, &str)> = Vec::new();
        for (mac, name) in self.names.iter() {
            if !self.sessions.contains_key(mac) {
                continue;
            }
            match named.iter_mut().find(|(m, _)| m == mac) {
                Some(n) => n.1 = name,
                None => named.push((*mac, name)),
            }
        }
        for (mac, name) in named {
            if let Some(s) = self.sessions.get_mut(&mac) {
                name_session(s, name, now, out);
            }
        }
    }

    /// Counters for the status message.
    pub fn stats(&self) -> TrackerStats {
        TrackerStats {
            open: self.sessions.len() as u32,
            ..self.stats
        }
    }

    /// The AP interfaces the tracker knows.
    pub fn interfaces(&self) -> &[Iface] {
        &self.ifaces
    }

    fn iface(&self, ifindex: u32) -> Option<&Iface> {
        self.ifaces.iter().find(|i| i.ifindex == ifindex)
    }

    fn published_mac(&self, mac: &MacAddr) -> MacAddr {
        match &self.cfg.mac_key {
            Some(key) => pseudonymize(key, mac),
            None => *mac,
        }
    }

    fn set_interfaces(&mut self, list: &[Iface], now: Stamp, out: &mut Vec<Output>) {
        self.ifaces.clear();
        for i in list.iter().take(MAX_IFACES) {
            let _ = self.ifaces.push(i.clone());
        }
        let gone: HVec<u32, MAX_SESSIONS> = self
            .sessions
            .values()
            .map(|s| s.ifindex)
            .filter(|&i| self.iface(i).is_none())
            .collect();
        for ifindex in gone {
            self.interface_down(ifindex, now, out);
        }
        let ifaces = &self.ifaces;
        self.pending
            .retain(|p| ifaces.iter().any(|i| i.ifindex == p.ifindex));
        self.given_up
            .retain(|p| ifaces.iter().any(|i| i.ifindex == p.ifindex));
    }

    /// Stops every session of `ifindex` at once: `interface_down` at `now`, or at the leave
    /// time of a station that left just before (see [`DOWN_FLUSH_MS`]); one that left
    /// earlier keeps its reason and time. Stations pending authorization are forgotten.
    fn interface_down(&mut self, ifindex: u32, now: Stamp, out: &mut Vec<Output>) {
        let on_it: HVec<(MacAddr, Option<Leaving>), MAX_SESSIONS> = self
            .sessions
            .iter()
            .filter(|(_, s)| s.ifindex == ifindex)
            .map(|(m, s)| (*m, s.leaving))
            .collect();
        for (mac, leaving) in on_it {
            let (reason, at) = match leaving {
                Some(l) if now.uptime_ms.saturating_sub(l.at.uptime_ms) > DOWN_FLUSH_MS => {
                    (l.reason, l.at)
                }
                Some(l) => (StopReason::InterfaceDown, l.at),
                None => (StopReason::InterfaceDown, now),
            };
            self.stop(&mac, reason, at, now, out);
        }
        self.pending.retain(|p| p.ifindex != ifindex);
        self.given_up.retain(|p| p.ifindex != ifindex);
    }

    fn dump(&mut self, ifindex: u32, stations: &[StationInfo], now: Stamp, out: &mut Vec<Output>) {
        if self.iface(ifindex).is_none() {
            return;
        }
        for st in stations {
            self.observe(ifindex, st, now, out);
        }
        let listed = |mac: &MacAddr| stations.iter().any(|st| st.mac == *mac);
        for (mac, s) in self.sessions.iter_mut() {
            if s.ifindex == ifindex && s.leaving.is_none() && !listed(mac) {
                s.leaving = Some(Leaving {
                    at: s.last_seen,
                    reason: StopReason::Vanished,
                    not_before_ms: now.uptime_ms.saturating_add(VANISHED_HOLD_MS),
                });
            }
        }
        self.give_up(now, out, false, &|p| {
            p.ifindex == ifindex && !listed(&p.mac)
        });
        self.given_up
            .retain(|g| g.ifindex != ifindex || listed(&g.mac));
    }

    /// A station was seen (event, probe answer or dump row) on `ifindex`.
    fn observe(&mut self, ifindex: u32, st: &StationInfo, now: Stamp, out: &mut Vec<Output>) {
        let Some(iface) = self.iface(ifindex).cloned() else {
            return;
        };
        let assoc = Assoc::of(st, now);
        let authorized = st.authorized == Some(true);

        if let Some(s) = self.sessions.get_mut(&st.mac) {
            if s.ifindex == ifindex {
                if s.assoc.same_as(&assoc) {
                    if authorized {
                        s.refresh(st, now);
                    }
                    return;
                }
                if !authorized {
                    // A new association on the same interface, not authorized yet: wait for it
                    // (the running grace, if any, is held while it is pending).
                    self.add_pending(ifindex, st.mac, assoc, now);
                    return;
                }
                if assoc.uptime_ms < s.assoc.uptime_ms {
                    return; // an older view of this station than we already hold
                }
                // Rejoined (flap): the session goes on if the old association ended within the
                // grace (when its end was never seen: its last sighting); counters add up.
                let ended = s.leaving.map_or(s.last_seen.uptime_ms, |l| l.at.uptime_ms);
                if assoc.uptime_ms.saturating_sub(ended) <= self.cfg.rejoin_grace_ms {
                    s.base = s.base.plus(s.cur);
                    s.cur = Counters::default();
                    s.assoc = assoc;
                    s.leaving = None;
                    s.refresh(st, now);
                    // A name learnt while the session was held back by the grace.
                    if let Some(name) = self.names.get(&st.mac) {
                        name_session(s, name, now, out);
                    }
                    self.remove_pending(ifindex, &st.mac);
                    return;
                }
                // An end never seen (its event was lost) is placed at the new association.
                let (reason, left_at) = match s.leaving {
                    Some(l) => (l.reason, l.at),
                    None => (StopReason::Vanished, stamp_at_uptime(now, assoc.uptime_ms)),
                };
                self.stop(&st.mac, reason, left_at, now, out);
            } else {
                if !authorized || assoc.uptime_ms < s.assoc.uptime_ms {
                    if !authorized {
                        self.add_pending(ifindex, st.mac, assoc, now);
                    }
                    return;
                }
                // Roamed to another interface of this device: the newer association wins.
                let left_at = match s.leaving {
                    Some(l) => l.at,
                    None => stamp_at_uptime(now, assoc.uptime_ms.max(s.assoc.uptime_ms)),
                };
                self.stop(&st.mac, StopReason::RoamedLocal, left_at, now, out);
            }
        }
        if !authorized {
            self.add_pending(ifindex, st.mac, assoc, now);
            return;
        }
        self.remove_pending(ifindex, &st.mac);
        let id = session_id(&self.cfg.boot_id, &iface.ifname, &st.mac, assoc.key_ns);
        let hostname: Option<Box<str>> = self.names.get(&st.mac).map(Into::into);
        let start = Start {
            seq: 0,
            at: Default::default(),
            id,
            mac: self.published_mac(&st.mac),
            ifname: iface.ifname.as_str().into(),
            ssid: iface.ssid.to_vec(),
            bssid: iface.bssid,
            freq_mhz: iface.freq_mhz,
            age_ms: now.uptime_ms.saturating_sub(assoc.uptime_ms),
            signal_dbm: st.signal_dbm,
            hostname: hostname.as_deref().map(Into::into),
        };
        let mut s = Session {
            id,
            ifindex,
            assoc,
            base: Counters::default(),
            cur: Counters::default(),
            reported: Counters::default(),
            signal_avg_dbm: None,
            inactive_ms: None,
            last_seen: now,
            next_update_ms: now.uptime_ms.saturating_add(self.cfg.interim_ms),
            leaving: None,
            hostname,
        };
        s.refresh(st, now);
        if self.sessions.insert(st.mac, s).is_err() {
            self.stats.overflow += 1;
            return;
        }
        out.push(Output::Event(Timed {
            at: now,
            event: Event::Start(start),
        }));
    }

    /// The kernel no longer has the station: `DEL_STATION` (with its final counters) or a
    /// probe that found nothing. One still waiting for authorization is a failed join.
    fn station_gone(
        &mut self,
        ifindex: u32,
        mac: &MacAddr,
        st: Option<&StationInfo>,
        now: Stamp,
        out: &mut Vec<Output>,
    ) {
        self.give_up(now, out, false, &|p| p.ifindex == ifindex && p.mac == *mac);
        self.given_up
            .retain(|g| !(g.ifindex == ifindex && g.mac == *mac));
        if let Some(s) = self.sessions.get_mut(mac) {
            // A DEL_STATION that comes after a dump already missed the station (it was queued
            // behind the dump) still says when and how it left.
            let late_del =
                st.is_some() && s.leaving.is_some_and(|l| l.reason == StopReason::Vanished);
            if s.ifindex == ifindex && (s.leaving.is_none() || late_del) {
                if let Some(st) = st {
                    s.refresh(st, now);
                }
                s.leaving = Some(Leaving {
                    at: now,
                    reason: StopReason::Left,
                    not_before_ms: 0,
                });
            }
        }
    }

    fn add_pending(&mut self, ifindex: u32, mac: MacAddr, assoc: Assoc, now: Stamp) {
        let same = |g: &Pending| {
            g.ifindex == ifindex
                && g.mac == mac
                && g.assoc_uptime_ms.abs_diff(assoc.uptime_ms) <= 1_500
        };
        if self.given_up.iter().any(same) {
            return;
        }
        if let Some(p) = self
            .pending
            .iter_mut()
            .find(|p| p.mac == mac && p.ifindex == ifindex)
        {
            p.assoc_uptime_ms = assoc.uptime_ms;
            return;
        }
        let p = Pending {
            ifindex,
            mac,
            assoc_uptime_ms: assoc.uptime_ms,
            next_probe_ms: now.uptime_ms.saturating_add(PROBE_FIRST_MS),
            probe_gap_ms: PROBE_FIRST_MS,
        };
        if self.pending.push(p).is_err() {
            self.stats.overflow += 1;
        }
    }

    fn remove_pending(&mut self, ifindex: u32, mac: &MacAddr) {
        self.pending
            .retain(|p| !(p.ifindex == ifindex && p.mac == *mac));
    }

    /// Gives up the pending stations `gone` selects: each is a failed join (counted, and an
    /// event when its interface is known, which it is unless the tracker's interface list
    /// changed under it). `remember`: the kernel still has them (see `given_up`).
    fn give_up(
        &mut self,
        now: Stamp,
        out: &mut Vec<Output>,
        remember: bool,
        // `dyn`: one copy of this function rather than one per caller (router build size).
        gone: &dyn Fn(&Pending) -> bool,
    ) {
        let mut i = 0;
        while i < self.pending.len() {
            if !gone(&self.pending[i]) {
                i += 1;
                continue;
            }
            let p = self.pending.remove(i);
            self.stats.failed_joins += 1;
            if remember {
                if self.given_up.is_full() {
                    self.given_up.remove(0);
                }
                let _ = self.given_up.push(p);
            }
            let Some(iface) = self.iface(p.ifindex) else {
                continue;
            };
            let event = Event::FailedJoin(FailedJoin {
                seq: 0,
                at: Default::default(),
                mac: self.published_mac(&p.mac),
                ifname: iface.ifname.as_str().into(),
                ssid: iface.ssid.to_vec(),
                bssid: iface.bssid,
                age_ms: now.uptime_ms.saturating_sub(p.assoc_uptime_ms),
            });
            out.push(Output::Event(Timed { at: now, event }));
        }
    }

    /// Ends the session of `mac`, which stopped at `left_at`; the event is emitted `now`.
    fn stop(
        &mut self,
        mac: &MacAddr,
        reason: StopReason,
        left_at: Stamp,
        now: Stamp,
        out: &mut Vec<Output>,
    ) {
        let Some(mut s) = self.sessions.remove(mac) else {
            return;
        };
        let c = s.counters();
        out.push(Output::Event(Timed {
            at: now,
            event: Event::Stop(Stop {
                seq: 0,
                at: Default::default(),
                id: s.id,
                reason,
                age_ms: now.uptime_ms.saturating_sub(left_at.uptime_ms),
                rx_bytes: c.rx_bytes,
                tx_bytes: c.tx_bytes,
                rx_packets: c.rx_packets,
                tx_packets: c.tx_packets,
                signal_avg_dbm: s.signal_avg_dbm,
                inactive_ms: s.inactive_ms,
            }),
        }));
    }

    fn run_timers(&mut self, now: Stamp, out: &mut Vec<Output>) {
        let grace = self.cfg.rejoin_grace_ms;
        let expired: HVec<(MacAddr, Leaving), MAX_SESSIONS> = self
            .sessions
            .iter()
            .filter_map(|(m, s)| Some((*m, s.leaving?, s.ifindex)))
            .filter(|(m, l, ifindex)| {
                now.uptime_ms >= l.due_ms(grace) && !self.rejoin_pending(m, *ifindex)
            })
            .map(|(m, l, _)| (m, l))
            .collect();
        for (mac, l) in expired {
            self.stop(&mac, l.reason, l.at, now, out);
        }

        let interim = self.cfg.interim_ms.max(1);
        for s in self.sessions.values_mut() {
            if s.leaving.is_some() || now.uptime_ms < s.next_update_ms {
                continue;
            }
            s.next_update_ms = now.uptime_ms.saturating_add(interim);
            out.push(update(s, None, now));
        }

        self.give_up(now, out, true, &|p| {
            now.uptime_ms >= p.assoc_uptime_ms.saturating_add(PENDING_GIVE_UP_MS)
        });
        for p in self.pending.iter_mut() {
            if now.uptime_ms >= p.next_probe_ms {
                p.probe_gap_ms = (p.probe_gap_ms * 2).min(PROBE_MAX_MS);
                p.next_probe_ms = now.uptime_ms.saturating_add(p.probe_gap_ms);
                out.push(Output::Probe {
                    ifindex: p.ifindex,
                    mac: p.mac,
                });
            }
        }
    }
}

/// An interim update of `s` at `now`, carrying `hostname` if given.
fn update(s: &mut Session, hostname: Option<&str>, now: Stamp) -> Output {
    let c = s.counters();
    Output::Event(Timed {
        at: now,
        event: Event::Update(Update {
            seq: 0,
            at: Default::default(),
            id: s.id,
            rx_bytes: c.rx_bytes,
            tx_bytes: c.tx_bytes,
            rx_packets: c.rx_packets,
            tx_packets: c.tx_packets,
            signal_avg_dbm: s.signal_avg_dbm,
            inactive_ms: s.inactive_ms,
            hostname: hostname.map(Into::into),
        }),
    })
}

/// Publishes `name` for the open session `s` (an update now) unless it already has it. Not
/// while its stop is held back by the grace: the name follows if it rejoins.
fn name_session(s: &mut Session, name: &str, now: Stamp, out: &mut Vec<Output>) {
    if s.leaving.is_some() || s.hostname.as_deref() == Some(name) {
        return;
    }
    s.hostname = Some(name.into());
    out.push(update(s, Some(name), now));
}

/// The stamp of an earlier uptime, assuming the wall clock ran with uptime since.
fn stamp_at_uptime(now: Stamp, uptime_ms: u64) -> Stamp {
    let back = now.uptime_ms.saturating_sub(uptime_ms);
    Stamp {
        wall_ms: now.wall_ms.saturating_sub(back),
        uptime_ms: now.uptime_ms - back,
    }
}

#[cfg(test)]
mod tests;
