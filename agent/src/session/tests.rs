//! One test per rule of SPEC §3.2 (each fails if its rule is removed), pinned session-id
//! vectors, and property tests over a simulated kernel.

use super::*;
use heapless::String as HString;

const WLAN0: u32 = 3;
const WLAN1: u32 = 4;
const MAC_A: MacAddr = MacAddr([0x02, 0xaa, 0, 0, 0, 1]);
const MAC_B: MacAddr = MacAddr([0x02, 0xbb, 0, 0, 0, 2]);
const BOOT: BootId = BootId([0x11; 16]);
/// Wall clock minus uptime in these tests: 2026-01-01T00:00:00Z.
const EPOCH_MS: u64 = 1_767_225_600_000;

fn at(uptime_ms: u64) -> Stamp {
    Stamp {
        wall_ms: EPOCH_MS + uptime_ms,
        uptime_ms,
    }
}

fn iface(ifindex: u32, name: &str) -> Iface {
    Iface {
        ifindex,
        ifname: HString::try_from(name).unwrap(),
        bssid: MacAddr([0x02, 0, 0, 0, 0, ifindex as u8]),
        ssid: HVec::from_slice(b"campus").unwrap(),
        freq_mhz: 2412,
    }
}

/// A station that associated at `assoc_ms` uptime; `authorized` as given.
fn sta(mac: MacAddr, assoc_ms: u64, authorized: bool) -> StationInfo {
    StationInfo {
        mac,
        authorized: Some(authorized),
        assoc_at_boottime_ns: Some(assoc_ms * 1_000_000),
        rx_bytes: Some(1000),
        tx_bytes: Some(2000),
        rx_packets: Some(10),
        tx_packets: Some(20),
        signal_dbm: Some(-50),
        signal_avg_dbm: Some(-52),
        inactive_ms: Some(40),
        ..Default::default()
    }
}

/// The tracker settings of these tests: 10 s grace, 300 s interim, no MAC privacy (the
/// SPEC's defaults, written here as test values).
fn cfg() -> TrackerConfig {
    TrackerConfig {
        boot_id: BOOT,
        rejoin_grace_ms: 10_000,
        interim_ms: 300_000,
        mac_key: None,
    }
}

struct Harness {
    t: Tracker,
    out: Vec<Output>,
}

impl Harness {
    fn new() -> Self {
        Self::with(cfg())
    }

    fn with(cfg: TrackerConfig) -> Self {
        let mut h = Harness {
            t: Tracker::new(cfg),
            out: Vec::new(),
        };
        h.feed(
            Input::Interfaces(&[iface(WLAN0, "wlan0"), iface(WLAN1, "wlan1")]),
            0,
        );
        h
    }

    fn feed(&mut self, input: Input<'_>, now_ms: u64) -> Vec<Output> {
        self.out.clear();
        self.t.handle(input, at(now_ms), &mut self.out);
        self.out.clone()
    }

    fn events(&mut self, input: Input<'_>, now_ms: u64) -> Vec<Timed> {
        self.feed(input, now_ms)
            .into_iter()
            .filter_map(|o| match o {
                Output::Event(t) => Some(t),
                Output::Probe { .. } => None,
            })
            .collect()
    }

    /// A periodic dump of `ifindex` listing `stations`, at `now_ms`.
    fn dump(&mut self, ifindex: u32, stations: &[StationInfo], now_ms: u64) -> Vec<Timed> {
        self.events(Input::Dump { ifindex, stations }, now_ms)
    }

    fn join(&mut self, ifindex: u32, st: &StationInfo, now_ms: u64) -> Vec<Timed> {
        self.events(
            Input::NewStation {
                ifindex,
                station: st,
            },
            now_ms,
        )
    }
}

fn start(t: &Timed) -> &Start {
    match &t.event {
        Event::Start(s) => s,
        e => panic!("expected a start, got {e:?}"),
    }
}

fn stop(t: &Timed) -> &Stop {
    match &t.event {
        Event::Stop(s) => s,
        e => panic!("expected a stop, got {e:?}"),
    }
}

fn failed(t: &Timed) -> &FailedJoin {
    match &t.event {
        Event::FailedJoin(f) => f,
        e => panic!("expected a failed join, got {e:?}"),
    }
}

fn update(t: &Timed) -> &Update {
    match &t.event {
        Event::Update(u) => u,
        e => panic!("expected an update, got {e:?}"),
    }
}

/// The wall time an event says its session started or stopped.
fn event_time(t: &Timed) -> u64 {
    match &t.event {
        Event::Start(s) => t.at.wall_ms - s.age_ms,
        Event::Stop(s) => t.at.wall_ms - s.age_ms,
        _ => t.at.wall_ms,
    }
}

#[test]
fn unauthorized_station_is_probed_not_started() {
    let mut h = Harness::new();
    let out = h.feed(
        Input::NewStation {
            ifindex: WLAN0,
            station: &sta(MAC_A, 1000, false),
        },
        1000,
    );
    assert!(out.is_empty(), "no session before authorization: {out:?}");
    let probe = h.feed(Input::Tick, 1000 + PROBE_FIRST_MS);
    assert_eq!(
        probe,
        vec![Output::Probe {
            ifindex: WLAN0,
            mac: MAC_A
        }]
    );
    let ev = h.events(
        Input::Probed {
            ifindex: WLAN0,
            mac: MAC_A,
            station: Some(&sta(MAC_A, 1000, true)),
        },
        1080,
    );
    assert_eq!(ev.len(), 1);
    assert_eq!(start(&ev[0]).mac, MAC_A);
}

#[test]
fn open_network_station_starts_at_once() {
    let mut h = Harness::new();
    let ev = h.join(WLAN0, &sta(MAC_A, 1000, true), 1005);
    assert_eq!(ev.len(), 1);
    let s = start(&ev[0]);
    assert_eq!(
        (s.ifname.as_str(), s.bssid, s.ssid.as_slice()),
        ("wlan0", iface(WLAN0, "").bssid, &b"campus"[..])
    );
}

#[test]
fn start_time_is_the_association_time() {
    let mut h = Harness::new();
    let ev = h.join(WLAN0, &sta(MAC_A, 1000, true), 1730);
    assert_eq!(start(&ev[0]).age_ms, 730);
    assert_eq!(event_time(&ev[0]), EPOCH_MS + 1000);
}

#[test]
fn start_time_falls_back_to_connected_time() {
    let mut h = Harness::new();
    let st = StationInfo {
        assoc_at_boottime_ns: None,
        connected_s: Some(42),
        ..sta(MAC_A, 0, true)
    };
    let ev = h.dump(WLAN0, &[st], 100_000);
    assert_eq!(event_time(&ev[0]), EPOCH_MS + 58_000);
}

/// A wrong passphrase: hostapd removes the station after its handshake retries. That is a
/// failed join, published (issue 20) with the interface, SSID, BSSID and association time.
#[test]
fn station_that_never_authorizes_is_a_failed_join() {
    let mut h = Harness::new();
    h.feed(
        Input::NewStation {
            ifindex: WLAN0,
            station: &sta(MAC_A, 1000, false),
        },
        1000,
    );
    let ev = h.events(
        Input::DelStation {
            ifindex: WLAN0,
            station: &sta(MAC_A, 1000, false),
        },
        5200,
    );
    assert_eq!(ev.len(), 1, "{ev:?}");
    assert_eq!(ev[0].at, at(5200));
    let f = failed(&ev[0]);
    let wlan0 = iface(WLAN0, "wlan0");
    assert_eq!(
        (f.mac, f.ifname.as_str(), &f.ssid[..], f.bssid),
        (MAC_A, "wlan0", &wlan0.ssid[..], wlan0.bssid)
    );
    assert_eq!(f.age_ms, 4200, "associated at 1000");
    let ev = h.events(Input::Tick, 60_000);
    assert!(ev.is_empty());
    assert_eq!(h.t.stats().failed_joins, 1);
    assert_eq!(h.t.stats().open, 0);
}

#[test]
fn pending_station_is_given_up_after_a_while() {
    let mut h = Harness::new();
    h.feed(
        Input::NewStation {
            ifindex: WLAN0,
            station: &sta(MAC_A, 1000, false),
        },
        1000,
    );
    let ev = h.events(Input::Tick, 1000 + PENDING_GIVE_UP_MS - 1);
    assert!(ev.is_empty(), "{ev:?}");
    let ev = h.events(Input::Tick, 1000 + PENDING_GIVE_UP_MS);
    assert_eq!(failed(&ev[0]).age_ms, PENDING_GIVE_UP_MS);
    assert_eq!(h.t.stats().failed_joins, 1);
    assert_eq!(h.t.next_deadline(), None);
}

/// A station the kernel keeps unauthorized past the give-up (an 802.1X client waiting on
/// its RADIUS server) is one failed join. Before issue 20 the next dump that listed it made
/// it pending again, and it was counted again every 30 s.
#[test]
fn a_station_left_unauthorized_is_given_up_once() {
    let mut h = Harness::new();
    let st = sta(MAC_A, 1000, false);
    h.join(WLAN0, &st, 1000);
    let ev = h.events(Input::Tick, 1000 + PENDING_GIVE_UP_MS);
    assert_eq!(ev.len(), 1);
    for t in [40_000, 80_000, 120_000] {
        assert!(h.dump(WLAN0, std::slice::from_ref(&st), t).is_empty());
        assert_eq!(h.t.next_deadline(), None, "not probed again");
        assert!(h.events(Input::Tick, t + PENDING_GIVE_UP_MS).is_empty());
    }
    assert_eq!(h.t.stats().failed_joins, 1);
    // It authorizes at last: a session, from its association.
    let ev = h.dump(WLAN0, &[sta(MAC_A, 1000, true)], 130_000);
    assert_eq!(event_time(&ev[0]), EPOCH_MS + 1000);
    // Gone, then a new association that fails: a new failed join.
    h.dump(WLAN0, &[], 131_000);
    h.join(WLAN0, &sta(MAC_A, 200_000, false), 200_000);
    let ev = h.events(Input::Tick, 200_000 + PENDING_GIVE_UP_MS);
    assert_eq!(failed(&ev[0]).age_ms, PENDING_GIVE_UP_MS);
    assert_eq!(h.t.stats().failed_joins, 2);
}

/// The other ways the kernel says a pending station is gone: a probe that finds nothing, a
/// dump that does not list it. Each is one failed join; a station forgotten because its
/// interface went away is not one.
#[test]
fn probes_and_dumps_that_miss_a_pending_station_make_a_failed_join() {
    let mut h = Harness::new();
    h.join(WLAN0, &sta(MAC_A, 1000, false), 1000);
    h.join(WLAN1, &sta(MAC_B, 1000, false), 1000);
    let ev = h.events(
        Input::Probed {
            ifindex: WLAN0,
            mac: MAC_A,
            station: None,
        },
        1100,
    );
    assert_eq!(failed(&ev[0]).mac, MAC_A);
    assert_eq!(failed(&ev[0]).ifname, "wlan0");
    let ev = h.dump(WLAN1, &[], 1200);
    assert_eq!(ev.len(), 1);
    assert_eq!(
        (failed(&ev[0]).mac, failed(&ev[0]).ifname.as_str()),
        (MAC_B, "wlan1")
    );
    assert_eq!(h.t.stats().failed_joins, 2);
    // Nothing pending any more: no second event for either.
    assert!(h.events(Input::Tick, 1000 + PENDING_GIVE_UP_MS).is_empty());
    h.join(WLAN0, &sta(MAC_A, 40_000, false), 40_000);
    let ev = h.events(Input::Interfaces(&[iface(WLAN1, "wlan1")]), 40_100);
    assert!(ev.is_empty(), "{ev:?}");
    assert_eq!(h.t.stats().failed_joins, 2);
}

/// A client that fails to rejoin (wrong passphrase after a flap) is a failed join; its
/// earlier session stops as usual.
#[test]
fn a_failed_rejoin_is_a_failed_join_and_the_session_stops() {
    let mut h = Harness::new();
    let id = start(&h.join(WLAN0, &sta(MAC_A, 1000, true), 1000)[0]).id;
    h.events(
        Input::DelStation {
            ifindex: WLAN0,
            station: &sta(MAC_A, 1000, true),
        },
        5000,
    );
    h.join(WLAN0, &sta(MAC_A, 6000, false), 6000);
    let ev = h.events(
        Input::DelStation {
            ifindex: WLAN0,
            station: &sta(MAC_A, 6000, false),
        },
        9000,
    );
    assert_eq!(failed(&ev[0]).age_ms, 3000);
    let ev = h.events(Input::Tick, 15_000);
    assert_eq!(stop(&ev[0]).id, id);
    assert_eq!(event_time(&ev[0]), EPOCH_MS + 5000);
}

#[test]
fn failed_joins_carry_the_pseudonym_sessions_get() {
    let cfg = TrackerConfig {
        mac_key: Some(b"secret".to_vec()),
        ..cfg()
    };
    let mut h = Harness::with(cfg);
    let p = start(&h.join(WLAN0, &sta(MAC_A, 1000, true), 1000)[0]).mac;
    h.join(WLAN1, &sta(MAC_A, 2000, false), 2000);
    let ev = h.events(
        Input::DelStation {
            ifindex: WLAN1,
            station: &sta(MAC_A, 2000, false),
        },
        3000,
    );
    assert_eq!(failed(&ev[0]).mac, p);
    assert_ne!(p, MAC_A);
}

// Hostnames (issue 20).

const NAME_A: &str = "laptop-a";

fn names(pairs: &[(MacAddr, &str)]) -> Hostnames {
    Hostnames::from_pairs(pairs.iter().copied())
}

impl Harness {
    fn set_names(&mut self, pairs: &[(MacAddr, &str)], now_ms: u64) -> Vec<Timed> {
        self.out.clear();
        self.t
            .set_hostnames(names(pairs), at(now_ms), &mut self.out);
        self.out
            .iter()
            .filter_map(|o| match o {
                Output::Event(t) => Some(t.clone()),
                Output::Probe { .. } => None,
            })
            .collect()
    }
}

#[test]
fn a_hostname_known_at_the_start_goes_with_the_start() {
    let mut h = Harness::new();
    assert!(
        h.set_names(&[(MAC_A, NAME_A)], 500).is_empty(),
        "no session yet"
    );
    let ev = h.join(WLAN0, &sta(MAC_A, 1000, true), 1000);
    assert_eq!(start(&ev[0]).hostname.as_deref(), Some(NAME_A));
    // Already published: the same table again says nothing.
    assert!(h.set_names(&[(MAC_A, NAME_A)], 6000).is_empty());
    let ev = h.events(Input::Tick, 1000 + 300_000);
    assert_eq!(
        update(&ev[0]).hostname,
        None,
        "interim updates do not repeat it"
    );
}

#[test]
fn a_hostname_learnt_later_goes_with_an_update_at_once_and_again_when_it_changes() {
    let mut h = Harness::new();
    let ev = h.join(WLAN0, &sta(MAC_A, 1000, true), 1000);
    let s = start(&ev[0]).clone();
    assert_eq!(s.hostname, None);
    h.join(WLAN1, &sta(MAC_B, 1000, true), 1000);
    let ev = h.set_names(&[(MAC_A, NAME_A), (MAC_A, "laptop-a-2")], 4000);
    assert_eq!(
        ev.len(),
        1,
        "one update per session, the last lease wins: {ev:?}"
    );
    assert_eq!(ev[0].at, at(4000));
    let u = update(&ev[0]);
    assert_eq!((u.id, u.hostname.as_deref()), (s.id, Some("laptop-a-2")));
    assert_eq!((u.rx_bytes, u.tx_bytes), (1000, 2000), "with the counters");
    // Gone from the leases: not unsaid. A new name: one more update.
    assert!(h.set_names(&[], 8000).is_empty());
    assert!(h.set_names(&[(MAC_A, "laptop-a-2")], 9000).is_empty());
    let ev = h.set_names(&[(MAC_A, "renamed")], 12_000);
    assert_eq!(update(&ev[0]).hostname.as_deref(), Some("renamed"));
    // The interim schedule is unchanged.
    let ev = h.events(Input::Tick, 1000 + 300_000);
    assert_eq!(ev.len(), 2);
    assert!(ev.iter().all(|t| update(t).hostname.is_none()));
}

#[test]
fn a_session_held_by_the_grace_gets_its_name_when_it_rejoins() {
    let mut h = Harness::new();
    let id = start(&h.join(WLAN0, &sta(MAC_A, 1000, true), 1000)[0]).id;
    h.events(
        Input::DelStation {
            ifindex: WLAN0,
            station: &sta(MAC_A, 1000, true),
        },
        2000,
    );
    assert!(h.set_names(&[(MAC_A, NAME_A)], 3000).is_empty(), "leaving");
    let ev = h.join(WLAN0, &sta(MAC_A, 4000, true), 4000);
    assert_eq!(ev.len(), 1, "{ev:?}");
    let u = update(&ev[0]);
    assert_eq!((u.id, u.hostname.as_deref()), (id, Some(NAME_A)));
}

/// hostapd adds a station at authentication; until it is associated mac80211 answers a probe
/// with `ASSOC_AT_BOOTTIME` 0. That must not read as "associated at boot, 30 s ago": the
/// probes go on and the start comes with the authorization (found in the hwsim lab, where
/// starts waited up to a poll interval for the next dump).
#[test]
fn a_probe_before_the_association_keeps_probing() {
    let mut h = Harness::new();
    let now = 60_000;
    h.feed(
        Input::NewStation {
            ifindex: WLAN0,
            station: &StationInfo {
                assoc_at_boottime_ns: None,
                ..sta(MAC_A, 0, false)
            },
        },
        now,
    );
    let probe = h.feed(Input::Tick, now + PROBE_FIRST_MS);
    assert_eq!(probe.len(), 1, "{probe:?}");
    let authenticating = StationInfo {
        assoc_at_boottime_ns: Some(0),
        ..sta(MAC_A, 0, false)
    };
    h.feed(
        Input::Probed {
            ifindex: WLAN0,
            mac: MAC_A,
            station: Some(&authenticating),
        },
        now + PROBE_FIRST_MS,
    );
    assert_eq!(h.t.stats().failed_joins, 0, "not given up");
    let next = h.t.next_deadline().expect("another probe is scheduled");
    assert!(next <= now + 200, "next probe at +{} ms", next - now);
    let ev = h.events(
        Input::Probed {
            ifindex: WLAN0,
            mac: MAC_A,
            station: Some(&sta(MAC_A, now + 100, true)),
        },
        next,
    );
    assert_eq!(ev.len(), 1, "started at the authorization");
    assert_eq!(start(&ev[0]).age_ms, next - (now + 100));
}

#[test]
fn probes_back_off() {
    let mut h = Harness::new();
    h.feed(
        Input::NewStation {
            ifindex: WLAN0,
            station: &sta(MAC_A, 1000, false),
        },
        1000,
    );
    let mut probes = Vec::new();
    let mut now = 1000;
    while now < 6000 {
        now = h.t.next_deadline().unwrap();
        if !h.feed(Input::Tick, now).is_empty() {
            probes.push(now - 1000);
        }
    }
    assert_eq!(probes[..6], [50, 150, 350, 750, 1250, 1750]);
}

#[test]
fn del_station_stops_after_the_grace_at_the_leave_time() {
    let mut h = Harness::new();
    let started = h.join(WLAN0, &sta(MAC_A, 1000, true), 1000);
    let id = start(&started[0]).id;
    let gone = StationInfo {
        rx_bytes: Some(5000),
        ..sta(MAC_A, 1000, true)
    };
    assert!(h
        .events(
            Input::DelStation {
                ifindex: WLAN0,
                station: &gone
            },
            50_000
        )
        .is_empty());
    assert!(
        h.events(Input::Tick, 59_999).is_empty(),
        "held back during the grace"
    );
    let ev = h.events(Input::Tick, 60_000);
    let s = stop(&ev[0]);
    assert_eq!((s.id, s.reason, s.rx_bytes), (id, StopReason::Left, 5000));
    assert_eq!(event_time(&ev[0]), EPOCH_MS + 50_000);
}

#[test]
fn rejoin_within_grace_continues_the_session() {
    let mut h = Harness::new();
    h.join(WLAN0, &sta(MAC_A, 1000, true), 1000);
    h.events(
        Input::DelStation {
            ifindex: WLAN0,
            station: &sta(MAC_A, 1000, true),
        },
        20_000,
    );
    let ev = h.join(WLAN0, &sta(MAC_A, 25_000, true), 25_000);
    assert!(ev.is_empty(), "no new start: {ev:?}");
    assert!(
        h.events(Input::Tick, 40_000).is_empty(),
        "no stop after the grace either"
    );
    assert_eq!(h.t.stats().open, 1);
    // Counters of both associations add up (1000 + 1000 rx bytes).
    let ev = h.events(Input::Tick, 301_000);
    match &ev[0].event {
        Event::Update(u) => assert_eq!(u.rx_bytes, 2000),
        e => panic!("{e:?}"),
    }
}

#[test]
fn rejoin_pending_authorization_holds_the_stop() {
    let mut h = Harness::new();
    h.join(WLAN0, &sta(MAC_A, 1000, true), 1000);
    h.events(
        Input::DelStation {
            ifindex: WLAN0,
            station: &sta(MAC_A, 1000, true),
        },
        20_000,
    );
    h.join(WLAN0, &sta(MAC_A, 29_900, false), 29_900);
    assert!(
        h.events(Input::Tick, 30_100).is_empty(),
        "stop held while the rejoin is pending"
    );
    let ev = h.events(
        Input::Probed {
            ifindex: WLAN0,
            mac: MAC_A,
            station: Some(&sta(MAC_A, 29_900, true)),
        },
        30_200,
    );
    assert!(ev.is_empty(), "merged: {ev:?}");
}

#[test]
fn rejoin_after_grace_is_a_new_session() {
    let mut h = Harness::new();
    let first = start(&h.join(WLAN0, &sta(MAC_A, 1000, true), 1000)[0]).id;
    h.events(
        Input::DelStation {
            ifindex: WLAN0,
            station: &sta(MAC_A, 1000, true),
        },
        20_000,
    );
    let ev = h.join(WLAN0, &sta(MAC_A, 31_000, true), 31_000);
    assert_eq!(ev.len(), 2, "{ev:?}");
    assert_eq!(
        (stop(&ev[0]).id, stop(&ev[0]).reason),
        (first, StopReason::Left)
    );
    assert_eq!(event_time(&ev[0]), EPOCH_MS + 20_000);
    assert_ne!(start(&ev[1]).id, first);
}

#[test]
fn station_missing_from_a_dump_vanished_at_the_last_dump_that_had_it() {
    let mut h = Harness::new();
    let a = [sta(MAC_A, 1000, true)];
    h.dump(WLAN0, &a, 10_000);
    h.dump(WLAN0, &a, 20_000);
    let ev = h.dump(WLAN0, &[], 29_000);
    assert!(
        ev.is_empty(),
        "the grace runs from 20 s, the last dump that had it: {ev:?}"
    );
    assert!(
        h.events(Input::Tick, 30_999).is_empty(),
        "held for a late DEL_STATION"
    );
    let ev = h.events(Input::Tick, 31_000);
    assert_eq!(stop(&ev[0]).reason, StopReason::Vanished);
    assert_eq!(event_time(&ev[0]), EPOCH_MS + 20_000);
}

/// Regression (e2e `agent_kill`, `publish`): a dump that missed a station before its queued
/// DEL_STATION was read made the stop `vanished`, up to a poll interval early.
#[test]
fn del_station_behind_a_dump_that_missed_it_still_gives_the_leave_time() {
    let mut h = Harness::new();
    let a = [sta(MAC_A, 1000, true)];
    h.dump(WLAN0, &a, 10_000);
    h.dump(WLAN0, &[], 20_000);
    let gone = StationInfo {
        rx_bytes: Some(7000),
        ..sta(MAC_A, 1000, true)
    };
    assert!(h
        .events(
            Input::DelStation {
                ifindex: WLAN0,
                station: &gone
            },
            20_040
        )
        .is_empty());
    let ev = h.events(Input::Tick, 30_040);
    let s = stop(&ev[0]);
    assert_eq!((s.reason, s.rx_bytes), (StopReason::Left, 7000));
    assert_eq!(event_time(&ev[0]), EPOCH_MS + 20_040);
}

#[test]
fn interface_gone_stops_its_sessions_at_once() {
    let mut h = Harness::new();
    h.join(WLAN0, &sta(MAC_A, 1000, true), 1000);
    h.join(WLAN1, &sta(MAC_B, 1000, true), 1000);
    let ev = h.events(Input::Interfaces(&[iface(WLAN1, "wlan1")]), 5000);
    assert_eq!(ev.len(), 1);
    assert_eq!(stop(&ev[0]).reason, StopReason::InterfaceDown);
    assert_eq!(event_time(&ev[0]), EPOCH_MS + 5000);
    assert_eq!(h.t.stats().open, 1);
}

#[test]
fn interface_gone_after_its_stations_left_says_interface_down_at_the_leave_time() {
    let mut h = Harness::new();
    h.join(WLAN0, &sta(MAC_A, 1000, true), 1000);
    h.events(
        Input::DelStation {
            ifindex: WLAN0,
            station: &sta(MAC_A, 1000, true),
        },
        4000,
    );
    let ev = h.events(Input::Interfaces(&[iface(WLAN1, "wlan1")]), 4100);
    assert_eq!(stop(&ev[0]).reason, StopReason::InterfaceDown);
    assert_eq!(event_time(&ev[0]), EPOCH_MS + 4000);
}

/// Issue 18: bringing an AP interface down (`ip link set down`, a radio disabled) closed
/// its sessions with `left` after the grace: the kernel's `DEL_STATION`s come first, and the
/// interface stays listed. Its announcement (`STOP_AP` and the like) now stops them at once
/// with `interface_down`, at the time of the announcement.
#[test]
fn interface_down_stops_its_sessions_at_once_with_interface_down() {
    let mut h = Harness::new();
    h.join(WLAN0, &sta(MAC_A, 1000, true), 1000);
    h.join(WLAN1, &sta(MAC_B, 1000, true), 1000);
    let ev = h.events(Input::InterfaceDown { ifindex: WLAN0 }, 7000);
    assert_eq!(ev.len(), 1, "at once, not after the grace");
    assert_eq!(stop(&ev[0]).reason, StopReason::InterfaceDown);
    assert_eq!(
        stop(&ev[0]).id,
        session_id(&BOOT, "wlan0", &MAC_A, 1_000_000_000)
    );
    assert_eq!(event_time(&ev[0]), EPOCH_MS + 7000);
    assert_eq!(h.t.stats().open, 1, "the other interface's session goes on");
    assert!(
        h.events(Input::Tick, 30_000).is_empty(),
        "nothing left to stop"
    );
}

/// The kernel (and hostapd) remove every station just before announcing the interface
/// down: those `DEL_STATION`s are part of the interface going down, a station that left
/// well before keeps its own reason.
#[test]
fn stations_flushed_just_before_the_interface_went_down_say_interface_down() {
    let mut h = Harness::new();
    h.join(WLAN0, &sta(MAC_A, 1000, true), 1000);
    h.join(WLAN0, &sta(MAC_B, 1000, true), 1000);
    let (sa, sb) = (sta(MAC_A, 1000, true), sta(MAC_B, 1000, true));
    let gone = |station| Input::DelStation {
        ifindex: WLAN0,
        station,
    };
    h.events(gone(&sb), 5000); // left on its own, 4 s before
    h.events(gone(&sa), 8990); // the flush, 10 ms before
    let ev = h.events(Input::InterfaceDown { ifindex: WLAN0 }, 9000);
    assert_eq!(ev.len(), 2);
    let by_id = |id| ev.iter().find(|t| stop(t).id == id).unwrap();
    let a = by_id(session_id(&BOOT, "wlan0", &MAC_A, 1_000_000_000));
    let b = by_id(session_id(&BOOT, "wlan0", &MAC_B, 1_000_000_000));
    assert_eq!(stop(a).reason, StopReason::InterfaceDown);
    assert_eq!(event_time(a), EPOCH_MS + 8990);
    assert_eq!(stop(b).reason, StopReason::Left);
    assert_eq!(event_time(b), EPOCH_MS + 5000);
}

/// When the interface is back, its stations start new sessions (new association, new id).
#[test]
fn after_the_interface_is_back_stations_start_new_sessions() {
    let mut h = Harness::new();
    let first = h.join(WLAN0, &sta(MAC_A, 1000, true), 1000);
    h.events(Input::InterfaceDown { ifindex: WLAN0 }, 5000);
    // A probe still pending for it is forgotten with the interface.
    h.join(WLAN0, &sta(MAC_B, 4900, false), 4900);
    h.events(Input::InterfaceDown { ifindex: WLAN0 }, 5001);
    assert!(!h
        .feed(Input::Tick, 6000)
        .iter()
        .any(|o| matches!(o, Output::Probe { .. })));
    let again = h.join(WLAN0, &sta(MAC_A, 8000, true), 8000);
    assert_eq!(again.len(), 1);
    assert_ne!(start(&again[0]).id, start(&first[0]).id);
    assert_eq!(event_time(&again[0]), EPOCH_MS + 8000);
    assert_eq!(h.t.stats().open, 1);
}

#[test]
fn moving_to_another_interface_is_roamed_local() {
    let mut h = Harness::new();
    let old = start(&h.join(WLAN0, &sta(MAC_A, 1000, true), 1000)[0]).id;
    let ev = h.join(WLAN1, &sta(MAC_A, 9000, true), 9000);
    assert_eq!(ev.len(), 2);
    assert_eq!(
        (stop(&ev[0]).id, stop(&ev[0]).reason),
        (old, StopReason::RoamedLocal)
    );
    assert_eq!(start(&ev[1]).ifname, "wlan1");
    // The old interface's stale entry in a later dump does not bring the old session back.
    let stale = [sta(MAC_A, 1000, true)];
    let ev = h.dump(WLAN0, &stale, 10_000);
    assert!(ev.is_empty(), "{ev:?}");
}

#[test]
fn interim_updates_come_every_interval() {
    let mut h = Harness::new();
    h.join(WLAN0, &sta(MAC_A, 1000, true), 1000);
    assert!(h.events(Input::Tick, 300_999).is_empty());
    let ev = h.events(Input::Tick, 301_000);
    assert!(matches!(ev[0].event, Event::Update(_)), "{ev:?}");
    assert!(h.events(Input::Tick, 400_000).is_empty());
    assert_eq!(h.events(Input::Tick, 601_000).len(), 1);
}

#[test]
fn counters_never_decrease() {
    let mut h = Harness::new();
    h.join(WLAN0, &sta(MAC_A, 1000, true), 1000);
    let low = StationInfo {
        rx_bytes: Some(10),
        ..sta(MAC_A, 1000, true)
    };
    h.dump(WLAN0, &[low], 10_000);
    match &h.events(Input::Tick, 301_000)[0].event {
        Event::Update(u) => assert_eq!(u.rx_bytes, 1000),
        e => panic!("{e:?}"),
    }
}

#[test]
fn session_ids_are_pinned() {
    // These values are part of the wire contract (docs/wire.md): they must never change.
    let boot: BootId = "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0".parse().unwrap();
    let mac: MacAddr = "02:00:00:00:01:00".parse().unwrap();
    // Computed independently with Python's hashlib; the last is the worked example of
    // docs/wire.md.
    let doc_boot: BootId = "4f0b9a2c-7d1e-4c3b-9a85-2e6f1d0c7b43".parse().unwrap();
    let doc_mac: MacAddr = "3c:22:fb:12:34:56".parse().unwrap();
    let v = [
        session_id(&boot, "wlan0", &mac, 0),
        session_id(&boot, "phy0-ap0", &mac, 12_345_678_901),
        session_id(&BootId([0; 16]), "", &MacAddr([0; 6]), u64::MAX),
        session_id(&doc_boot, "phy0-ap0", &doc_mac, 3_456_788_212_000_000),
    ];
    let hex: Vec<String> = v.iter().map(|id| id.to_string()).collect();
    assert_eq!(
        hex,
        [
            "4deacaf2a9d4cdde",
            "3e0e7fef7073d2d8",
            "182d15acec3d320c",
            "2e54e9772628b375"
        ]
    );
}

#[test]
fn restarted_tracker_derives_the_same_ids() {
    let mut h = Harness::new();
    let a = start(&h.join(WLAN0, &sta(MAC_A, 1000, true), 1000)[0]).id;
    let b = start(&h.join(WLAN1, &sta(MAC_B, 2000, true), 2000)[0]).id;
    let mut fresh = Harness::new();
    let mut ids = fresh.dump(WLAN0, &[sta(MAC_A, 1000, true)], 90_000);
    ids.extend(fresh.dump(WLAN1, &[sta(MAC_B, 2000, true)], 90_000));
    let ids: Vec<SessionId> = ids.iter().map(|t| start(t).id).collect();
    assert_eq!(ids, [a, b]);
}

#[test]
fn full_table_counts_overflow_instead_of_panicking() {
    let mut h = Harness::new();
    let n = MAX_SESSIONS + 3;
    let stations: Vec<StationInfo> = (0..n)
        .map(|i| sta(MacAddr([2, 0, 0, 0, (i >> 8) as u8, i as u8]), 1000, true))
        .collect();
    let ev = h.dump(WLAN0, &stations, 5000);
    assert_eq!(ev.len(), MAX_SESSIONS);
    assert_eq!(h.t.stats().overflow, 3);
    assert_eq!(h.t.stats().open as usize, MAX_SESSIONS);
}

#[test]
fn mac_privacy_publishes_a_stable_local_pseudonym() {
    let cfg = TrackerConfig {
        mac_key: Some(b"secret".to_vec()),
        ..cfg()
    };
    let mut h = Harness::with(cfg.clone());
    let p = start(&h.join(WLAN0, &sta(MAC_A, 1000, true), 1000)[0]).mac;
    assert_ne!(p, MAC_A);
    assert!(p.is_local() && p.0[0] & 1 == 0);
    let mut again = Harness::with(cfg);
    assert_eq!(
        start(&again.join(WLAN1, &sta(MAC_A, 5000, true), 5000)[0]).mac,
        p
    );
}

#[test]
fn sync_lists_every_open_session() {
    let mut h = Harness::new();
    let a = start(&h.join(WLAN0, &sta(MAC_A, 1000, true), 1000)[0]).id;
    let b = start(&h.join(WLAN1, &sta(MAC_B, 1000, true), 1000)[0]).id;
    match h.t.sync(at(2000)).event {
        Event::Sync(s) => {
            let mut ids = s.ids;
            ids.sort();
            let mut want = vec![a, b];
            want.sort();
            assert_eq!(ids, want);
        }
        e => panic!("{e:?}"),
    }
}

#[test]
fn stations_of_unknown_interfaces_are_ignored() {
    let mut h = Harness::new();
    assert!(h.join(99, &sta(MAC_A, 1000, true), 1000).is_empty());
}

mod props {
    //! A simulated kernel drives the tracker with random actions, some of its events lost;
    //! the tracker's output must keep the session invariants.
    use super::*;
    use proptest::prelude::*;
    use std::collections::HashMap;

    #[derive(Clone, Debug)]
    enum Action {
        Associate {
            mac: u8,
            iface: u8,
            authorize: bool,
        },
        Authorize {
            mac: u8,
        },
        Leave {
            mac: u8,
            lose_event: bool,
        },
        Traffic {
            mac: u8,
            bytes: u32,
        },
        /// The interface goes down; `announced`: the kernel's STOP_AP reaches the tracker
        /// (else only the next interface list tells it).
        IfaceDown {
            iface: u8,
            announced: bool,
        },
        IfaceUp {
            iface: u8,
        },
        Dump {
            iface: u8,
        },
        Wait {
            ms: u32,
        },
    }

    fn action() -> impl Strategy<Value = Action> {
        prop_oneof![
            (0..4u8, 0..2u8, any::<bool>()).prop_map(|(mac, iface, authorize)| Action::Associate {
                mac,
                iface,
                authorize
            }),
            (0..4u8).prop_map(|mac| Action::Authorize { mac }),
            (0..4u8, any::<bool>()).prop_map(|(mac, lose_event)| Action::Leave { mac, lose_event }),
            (0..4u8, 0..1_000_000u32).prop_map(|(mac, bytes)| Action::Traffic { mac, bytes }),
            (0..2u8, any::<bool>())
                .prop_map(|(iface, announced)| Action::IfaceDown { iface, announced }),
            (0..2u8).prop_map(|iface| Action::IfaceUp { iface }),
            (0..2u8).prop_map(|iface| Action::Dump { iface }),
            (0..40_000u32).prop_map(|ms| Action::Wait { ms }),
        ]
    }

    #[derive(Clone)]
    struct KSta {
        iface: u32,
        assoc_ms: u64,
        authorized: bool,
        rx: u64,
    }

    /// The kernel's view: interfaces up, and stations (a MAC is on at most one interface).
    struct World {
        up: [bool; 2],
        stas: HashMap<u8, KSta>,
        now: u64,
        /// Every association: (MAC, interface, time).
        history: Vec<(u8, u32, u64)>,
    }

    impl World {
        fn info(&self, mac: u8) -> Option<StationInfo> {
            let k = self.stas.get(&mac)?;
            Some(StationInfo {
                rx_bytes: Some(k.rx),
                ..sta(MacAddr([2, 0, 0, 0, 0, mac]), k.assoc_ms, k.authorized)
            })
        }

        fn ifaces(&self) -> Vec<Iface> {
            (0..2)
                .filter(|i| self.up[*i])
                .map(|i| iface(i as u32, ["wlan0", "wlan1"][i]))
                .collect()
        }
    }

    /// Runs the actions; returns all events and the tracker.
    fn simulate(actions: &[Action], grace_ms: u64) -> (Vec<Timed>, Tracker, World) {
        let cfg = TrackerConfig {
            rejoin_grace_ms: grace_ms,
            interim_ms: 60_000,
            ..cfg()
        };
        let mut t = Tracker::new(cfg);
        let mut w = World {
            up: [true; 2],
            stas: HashMap::new(),
            now: 1000,
            history: Vec::new(),
        };
        let mut out = Vec::new();
        let mut events = Vec::new();
        t.handle(Input::Interfaces(&w.ifaces()), at(w.now), &mut out);
        for a in actions {
            w.now += 1;
            match *a {
                Action::Associate {
                    mac,
                    iface,
                    authorize,
                } => {
                    let iface = u32::from(iface);
                    if !w.up[iface as usize] {
                        continue;
                    }
                    if let Some(old) = w.stas.remove(&mac) {
                        let info = StationInfo {
                            rx_bytes: Some(old.rx),
                            ..sta(MacAddr([2, 0, 0, 0, 0, mac]), old.assoc_ms, old.authorized)
                        };
                        t.handle(
                            Input::DelStation {
                                ifindex: old.iface,
                                station: &info,
                            },
                            at(w.now),
                            &mut out,
                        );
                    }
                    w.stas.insert(
                        mac,
                        KSta {
                            iface,
                            assoc_ms: w.now,
                            authorized: authorize,
                            rx: 0,
                        },
                    );
                    w.history.push((mac, iface, w.now));
                    let info = w.info(mac).unwrap();
                    t.handle(
                        Input::NewStation {
                            ifindex: iface,
                            station: &info,
                        },
                        at(w.now),
                        &mut out,
                    );
                }
                Action::Authorize { mac } => {
                    if let Some(k) = w.stas.get_mut(&mac) {
                        k.authorized = true;
                    }
                }
                Action::Leave { mac, lose_event } => {
                    if let Some(k) = w.stas.remove(&mac) {
                        if !lose_event {
                            let info = StationInfo {
                                rx_bytes: Some(k.rx),
                                ..sta(MacAddr([2, 0, 0, 0, 0, mac]), k.assoc_ms, k.authorized)
                            };
                            t.handle(
                                Input::DelStation {
                                    ifindex: k.iface,
                                    station: &info,
                                },
                                at(w.now),
                                &mut out,
                            );
                        }
                    }
                }
                Action::Traffic { mac, bytes } => {
                    if let Some(k) = w.stas.get_mut(&mac) {
                        k.rx += u64::from(bytes);
                    }
                }
                Action::IfaceDown { iface, announced } => {
                    let iface = u32::from(iface);
                    w.up[iface as usize] = false;
                    let gone: Vec<u8> = w
                        .stas
                        .iter()
                        .filter(|(_, k)| k.iface == iface)
                        .map(|(m, _)| *m)
                        .collect();
                    for mac in gone {
                        let info = w.info(mac).unwrap();
                        w.stas.remove(&mac);
                        t.handle(
                            Input::DelStation {
                                ifindex: iface,
                                station: &info,
                            },
                            at(w.now),
                            &mut out,
                        );
                    }
                    if announced {
                        t.handle(Input::InterfaceDown { ifindex: iface }, at(w.now), &mut out);
                    }
                    t.handle(Input::Interfaces(&w.ifaces()), at(w.now), &mut out);
                }
                Action::IfaceUp { iface } => {
                    w.up[usize::from(iface)] = true;
                    t.handle(Input::Interfaces(&w.ifaces()), at(w.now), &mut out);
                }
                Action::Dump { iface } => {
                    let iface = u32::from(iface);
                    if w.up[iface as usize] {
                        let list: Vec<StationInfo> = w
                            .stas
                            .iter()
                            .filter(|(_, k)| k.iface == iface)
                            .filter_map(|(m, _)| w.info(*m))
                            .collect();
                        t.handle(
                            Input::Dump {
                                ifindex: iface,
                                stations: &list,
                            },
                            at(w.now),
                            &mut out,
                        );
                    }
                }
                Action::Wait { ms } => {
                    let end = w.now + u64::from(ms);
                    let mut ticks = 0;
                    while let Some(d) = t.next_deadline().filter(|d| *d <= end) {
                        ticks += 1;
                        assert!(
                            ticks < 10_000,
                            "next_deadline does not advance: {d} at {}",
                            w.now
                        );
                        w.now = d.max(w.now);
                        t.handle(Input::Tick, at(w.now), &mut out);
                    }
                    w.now = end;
                    t.handle(Input::Tick, at(w.now), &mut out);
                }
            }
            // Answer every probe the tracker asked for from the kernel's state.
            let mut i = 0;
            while i < out.len() {
                if let Output::Probe { ifindex, mac } = out[i].clone() {
                    let info = w
                        .info(mac.0[5])
                        .filter(|_| w.stas[&mac.0[5]].iface == ifindex);
                    t.handle(
                        Input::Probed {
                            ifindex,
                            mac,
                            station: info.as_ref(),
                        },
                        at(w.now),
                        &mut out,
                    );
                }
                i += 1;
            }
        }
        events.extend(out.into_iter().filter_map(|o| match o {
            Output::Event(e) => Some(e),
            Output::Probe { .. } => None,
        }));
        (events, t, w)
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn session_invariants_hold(actions in prop::collection::vec(action(), 1..80), grace in prop_oneof![Just(0u64), Just(10_000u64)]) {
            let (events, t, w) = simulate(&actions, grace);
            let mut started: HashMap<SessionId, (u64, Option<u64>, u64)> = HashMap::new();
            let mut failed: Vec<(MacAddr, u64)> = Vec::new();
            let mut sessions: Vec<(MacAddr, u64)> = Vec::new();
            for e in &events {
                match &e.event {
                    Event::Start(s) => {
                        prop_assert!(!started.contains_key(&s.id), "second start of {}", s.id);
                        started.insert(s.id, (event_time(e), None, 0));
                    }
                    Event::Update(u) => {
                        let st = started.get_mut(&u.id).expect("update without start");
                        prop_assert!(st.1.is_none(), "update after stop");
                        prop_assert!(u.rx_bytes >= st.2, "counter went down");
                        st.2 = u.rx_bytes;
                    }
                    Event::Stop(s) => {
                        let st = started.get_mut(&s.id).expect("stop without start");
                        prop_assert!(st.1.is_none(), "second stop of {}", s.id);
                        prop_assert!(event_time(e) >= st.0, "stop before start");
                        prop_assert!(s.rx_bytes >= st.2, "counter went down at stop");
                        st.1 = Some(event_time(e));
                    }
                    Event::FailedJoin(f) => {
                        // A real association of that client to that interface, given up
                        // once, and never one that had become a session.
                        let assoc = e.at.uptime_ms - f.age_ms;
                        let iface = if f.ifname == "wlan0" { 0 } else { 1 };
                        prop_assert!(
                            w.history.contains(&(f.mac.0[5], iface, assoc)),
                            "failed join of an association that never was: {:?}", f
                        );
                        let key = (f.mac, assoc);
                        prop_assert!(!failed.contains(&key), "second failed join {:?}", f);
                        prop_assert!(!sessions.contains(&key), "failed join of a session {:?}", f);
                        failed.push(key);
                    }
                    other => prop_assert!(false, "unexpected {:?}", other),
                }
                if let Event::Start(s) = &e.event {
                    sessions.push((s.mac, e.at.uptime_ms - s.age_ms));
                }
            }
            let open = started.values().filter(|s| s.1.is_none()).count();
            prop_assert_eq!(open, t.stats().open as usize);
            prop_assert_eq!(failed.len() as u64, t.stats().failed_joins, "one event per failed join");
        }

        #[test]
        fn a_restarted_tracker_derives_the_same_ids(actions in prop::collection::vec(action(), 1..80)) {
            // Without flap merges, every open session whose station is still associated the
            // same way must be found again, with the same id, by a fresh tracker.
            let (_, t, w) = simulate(&actions, 0);
            let mut fresh = Tracker::new(TrackerConfig { rejoin_grace_ms: 0, ..cfg() });
            let mut out = Vec::new();
            fresh.handle(Input::Interfaces(&w.ifaces()), at(w.now), &mut out);
            for i in 0..2u32 {
                let list: Vec<StationInfo> = w.stas.iter().filter(|(_, k)| k.iface == i).filter_map(|(m, _)| w.info(*m)).collect();
                fresh.handle(Input::Dump { ifindex: i, stations: &list }, at(w.now), &mut out);
            }
            let fresh_ids: std::collections::BTreeSet<SessionId> = fresh.sessions.values().map(|s| s.id).collect();
            let still: std::collections::BTreeSet<SessionId> = t
                .sessions
                .iter()
                .filter(|(m, s)| s.leaving.is_none() && w.stas.get(&m.0[5]).is_some_and(|k| k.iface == s.ifindex && k.assoc_ms == s.assoc.uptime_ms && k.authorized))
                .map(|(_, s)| s.id)
                .collect();
            prop_assert!(still.is_subset(&fresh_ids), "lost ids: {:?} vs {:?}", still, fresh_ids);
        }
    }
}
