//! The merge core tested without a database: an in-memory store ([`Mem`]) answers the core's
//! needs the way the store port does, beside the SQLite adapter's own tests
//! (`tests/merge_prop.rs`).

use std::collections::BTreeMap;

use proptest::prelude::*;
use wifisess_wire::{
    Batch, BootId, Event, FailedJoin, MacAddr, Offset, SessionId, Stamp, Start, Stop, StopReason,
    Sync, Update,
};

use super::derived::{self, day_of, Marks, Span, HOUR_MS};
use super::device::{DeviceState, SyncRec};
use super::failed_join::{FailedJoin as FailedJoinRow, FailedJoinKey};
use super::merge::{Close, DeviceTx, Loaded, Needs};
use super::message::Msg;
use super::roams::{roams_into, Roam};
use super::trends::{client_days, hourly, HourRow};
use super::{Counter, Reason, Session};

/// An in-memory store: what a database would hold after each message's transaction.
#[derive(Debug, Clone, Default, PartialEq)]
struct Mem {
    sessions: BTreeMap<(String, i64), Session>,
    states: BTreeMap<String, DeviceState>,
    syncs: BTreeMap<(String, String), Vec<SyncRec>>,
    counts: BTreeMap<Counter, i64>,
    /// Failed joins as the store keeps them (the first stored of each key).
    failed_joins: BTreeMap<(String, FailedJoinKey), FailedJoinRow>,
    /// Dirty marks left by the transactions, not derived yet.
    marks: Marks,
    /// Roams derived so far, by destination session.
    roams: BTreeMap<(String, i64), Roam>,
    /// Day sets derived so far: (day, device, SSID, MAC).
    days: std::collections::BTreeSet<(i64, String, String, String)>,
    /// Hourly rows derived so far, by (device, hour, SSID).
    hours: BTreeMap<(String, i64, String), HourRow>,
    /// How many times the core asked for more.
    rounds: usize,
}

/// A device's spans, roams (SSID, at) and failed joins (SSID, at), for the hourly rows.
type HourInputs = (Vec<Span>, Vec<(String, i64)>, Vec<(String, i64)>);

impl Mem {
    fn load(&self, dev: &str, needs: &Needs) -> Loaded {
        let of_dev = || self.sessions.values().filter(move |s| s.device_id == dev);
        let mut out = Loaded::default();
        for s in of_dev() {
            let live = !s.is_final();
            let wanted = needs.sessions.contains(&s.id)
                || (live && s.mac.as_ref().is_some_and(|m| needs.live_macs.contains(m)))
                || (live && needs.live_boots.contains(&s.boot_id))
                || (needs.open && s.is_open());
            if wanted {
                out.sessions.push(s.clone());
            }
        }
        for b in &needs.syncs {
            let list = self
                .syncs
                .get(&(dev.to_owned(), b.clone()))
                .cloned()
                .unwrap_or_default();
            out.syncs.push((b.clone(), list));
        }
        for (mac, from) in &needs.slices {
            let mut e: Vec<(i64, i64)> = of_dev()
                .filter(|s| s.mac.as_ref() == Some(mac) && s.order() >= *from)
                .map(Session::order)
                .collect();
            e.sort_unstable();
            out.slices.push((mac.clone(), e));
        }
        out
    }

    /// One transaction: the state as stored (no syncs cached), the message, the write.
    fn run(&mut self, dev: &str, step: impl Fn(&mut DeviceTx) -> Result<(), Box<Needs>>) {
        let state = self
            .states
            .get(dev)
            .cloned()
            .unwrap_or_else(|| DeviceState::new(dev));
        let mut tx = DeviceTx::new(state);
        loop {
            match step(&mut tx) {
                Ok(()) => break,
                Err(n) => {
                    self.rounds += 1;
                    assert!(self.rounds < 100_000);
                    let l = self.load(dev, &n);
                    tx.absorb(&n, l);
                }
            }
        }
        for (s, _) in tx.changed_rows() {
            self.sessions.insert((dev.to_owned(), s.id), s.clone());
        }
        for (b, y) in &tx.new_syncs {
            let list = self.syncs.entry((dev.to_owned(), b.clone())).or_default();
            if let Err(i) = list.binary_search_by_key(&y.key, |r| r.key) {
                list.insert(i, y.clone());
            }
        }
        for (c, n) in &tx.counts.0 {
            *self.counts.entry(*c).or_insert(0) += n;
        }
        for f in tx.new_failed_joins.values() {
            self.failed_joins
                .entry((dev.to_owned(), f.key()))
                .or_insert_with(|| f.clone());
        }
        self.marks.merge(&derived::of_device(&tx));
        let mut st = tx.state;
        st.syncs.clear();
        self.states.insert(dev.to_owned(), st);
        self.check();
    }

    fn apply(&mut self, b: &Batch, receive_ms: i64) {
        let msg = Msg::Batch(b.clone());
        self.run(&b.device_id, |tx| tx.apply(&msg, receive_ms).map(|_| ()));
    }

    /// The schema's promises: one open session per (device, MAC); start ≤ stop.
    fn check(&self) {
        let mut open = std::collections::BTreeSet::new();
        for s in self.sessions.values() {
            if let (true, Some(m)) = (s.is_open(), &s.mac) {
                assert!(
                    open.insert((s.device_id.clone(), m.clone())),
                    "two open: {s:?}"
                );
            }
            if let Some(stop) = s.stop_ms {
                assert!(s.start_ms <= stop, "start after stop: {s:?}");
            }
        }
    }

    /// What an order-independent comparison looks at (not the counters of rounds).
    fn rows(&self) -> (Vec<String>, Vec<String>, Vec<String>) {
        (
            self.sessions.values().map(|s| format!("{s:?}")).collect(),
            self.states
                .values()
                .map(|d| format!("{:?} {:?} {:?}", d.boots, d.status, d.summary()))
                .chain(self.failed_joins.values().map(|f| format!("{f:?}")))
                .collect(),
            self.syncs.iter().map(|s| format!("{s:?}")).collect(),
        )
    }

    /// The stored sessions with a MAC as the derive step loads them, of one client or one
    /// device (all of them: more than the store hands in does no harm).
    fn spans(&self, keep: impl Fn(&Session) -> bool) -> Vec<Span> {
        self.sessions
            .values()
            .filter(|s| s.mac.is_some() && keep(s))
            .map(|s| Span {
                device_id: s.device_id.clone(),
                id: s.id,
                mac: s.mac.clone().unwrap_or_default(),
                ssid: s.ssid.clone().unwrap_or_default(),
                ifname: s.ifname.clone().unwrap_or_default(),
                freq_mhz: s.freq_mhz,
                start_ms: s.start_ms,
                stop_ms: s.stop_ms,
                last_seen_ms: s.last_seen_ms,
                rx_bytes: s.rx_bytes,
                tx_bytes: s.tx_bytes,
            })
            .collect()
    }

    fn hour_inputs(&self, dev: &str) -> HourInputs {
        let roams = self
            .roams
            .values()
            .filter(|r| r.to.device_id == dev)
            .map(|r| (r.to.ssid.clone(), r.at_ms))
            .collect();
        let failed = self
            .failed_joins
            .values()
            .filter(|f| f.device_id == dev)
            .map(|f| (f.ssid.clone(), f.assoc_ms))
            .collect();
        (self.spans(|s| s.device_id == dev), roams, failed)
    }

    /// What the derive step does with the marks (derive.rs, without a database): clients
    /// first (roams, day sets; they mark hours), then hours.
    fn derive(&mut self, w: i64) {
        let clients = std::mem::take(&mut self.marks.clients);
        let mut more = Marks::default();
        for (mac, (lo, hi)) in clients {
            let spans = self.spans(|s| s.mac.as_deref() == Some(mac.as_str()));
            let (blo, bhi) = (lo, hi + w);
            let new = roams_into(&spans, w, blo, bhi);
            let old: Vec<Roam> = self
                .roams
                .values()
                .filter(|r| r.mac == mac && (blo..=bhi).contains(&r.at_ms))
                .cloned()
                .collect();
            for r in &old {
                self.roams.remove(&(r.to.device_id.clone(), r.to.id));
            }
            for r in old.iter().filter(|r| !new.contains(r)) {
                more.hours(&r.to.device_id, r.at_ms, r.at_ms);
            }
            for r in new {
                if !old.contains(&r) {
                    more.hours(&r.to.device_id, r.at_ms, r.at_ms);
                }
                self.roams.insert((r.to.device_id.clone(), r.to.id), r);
            }
            let (dlo, dhi) = (day_of(lo), day_of(hi));
            let want: std::collections::BTreeSet<(i64, String, String, String)> =
                client_days(&spans, dlo, dhi)
                    .into_iter()
                    .map(|(d, dev, ssid)| (d, dev, ssid, mac.clone()))
                    .collect();
            let had: Vec<_> = self
                .days
                .iter()
                .filter(|x| x.3 == mac && (dlo..=dhi).contains(&x.0))
                .cloned()
                .collect();
            for x in &had {
                if !want.contains(x) {
                    self.days.remove(x);
                    more.hours(&x.1, x.0, x.0);
                }
            }
            for x in want {
                if self.days.insert(x.clone()) {
                    more.hours(&x.1, x.0, x.0);
                }
            }
        }
        self.marks.merge(&more);
        let buckets = std::mem::take(&mut self.marks.buckets);
        for (dev, h) in buckets {
            let (spans, roams, failed) = self.hour_inputs(&dev);
            self.hours.retain(|k, _| !(k.0 == dev && k.1 == h));
            for r in hourly(&dev, &[h].into(), &spans, &roams, &failed) {
                self.hours
                    .insert((r.device_id.clone(), r.hour_ms, r.ssid.clone()), r);
            }
        }
    }

    /// The derived data computed from scratch from the rows as they are now.
    fn scratch(&self, w: i64) -> Derived {
        let macs: std::collections::BTreeSet<String> = self
            .sessions
            .values()
            .filter_map(|s| s.mac.clone())
            .collect();
        let mut roams = Vec::new();
        let mut days = std::collections::BTreeSet::new();
        for mac in &macs {
            let spans = self.spans(|s| s.mac.as_ref() == Some(mac));
            roams.extend(roams_into(&spans, w, i64::MIN, i64::MAX));
            for (d, dev, ssid) in client_days(&spans, i64::MIN, i64::MAX) {
                days.insert((d, dev, ssid, mac.clone()));
            }
        }
        let mut hours = Vec::new();
        for dev in self.states.keys() {
            let (spans, _, failed) = self.hour_inputs(dev);
            let rins: Vec<(String, i64)> = roams
                .iter()
                .filter(|r| &r.to.device_id == dev)
                .map(|r| (r.to.ssid.clone(), r.at_ms))
                .collect();
            let mut hs = std::collections::BTreeSet::new();
            for s in &spans {
                let mut h = derived::hour_of(s.start_ms);
                while h <= s.end_ms() {
                    hs.insert(h);
                    h += HOUR_MS;
                }
                hs.extend(s.stop_ms.map(derived::hour_of));
            }
            hs.extend(rins.iter().chain(&failed).map(|x| derived::hour_of(x.1)));
            hours.extend(hourly(dev, &hs, &spans, &rins, &failed));
        }
        roams.sort_by_key(|r| (r.to.device_id.clone(), r.to.id));
        Derived { roams, days, hours }
    }

    /// The derived data as the incremental steps left it.
    fn derived(&self) -> Derived {
        Derived {
            roams: self.roams.values().cloned().collect(),
            days: self.days.clone(),
            hours: self.hours.values().cloned().collect(),
        }
    }
}

/// Roams, day sets and hourly rows, sorted.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Derived {
    roams: Vec<Roam>,
    days: std::collections::BTreeSet<(i64, String, String, String)>,
    hours: Vec<HourRow>,
}

const T0: u64 = 1_750_000_000_000;

fn batch(boot: u8, epoch: u32, synced: bool, events: Vec<(u64, Event)>) -> Batch {
    let mut b = Batch {
        device_id: "ap1".into(),
        boot_id: BootId([boot; 16]),
        agent_epoch: epoch,
        base_wall_ms: 0,
        base_uptime_ms: 0,
        clock_synced: synced,
        events: Vec::new(),
    };
    for (up, e) in events {
        let at = Stamp {
            wall_ms: T0 + up,
            uptime_ms: up,
        };
        if b.events.is_empty() {
            b.set_base(at);
        }
        assert!(b.push(at, e));
    }
    b
}

fn start(seq: u64, id: u64, mac: u8, age_ms: u64) -> Event {
    Event::Start(Start {
        seq,
        at: Offset::default(),
        id: SessionId(id),
        mac: MacAddr([2, 0, 0, 0, 0, mac]),
        ifname: "phy0-ap0".into(),
        ssid: b"campus".to_vec(),
        bssid: MacAddr([4, 0, 0, 0, 0, 1]),
        freq_mhz: 2412,
        age_ms,
        signal_dbm: Some(-50),
        hostname: None,
    })
}

fn update(seq: u64, id: u64, rx: u64) -> Event {
    Event::Update(Update {
        seq,
        at: Offset::default(),
        id: SessionId(id),
        rx_bytes: rx,
        tx_bytes: rx / 2,
        rx_packets: rx / 100,
        tx_packets: rx / 200,
        signal_avg_dbm: Some(-55),
        inactive_ms: Some(100),
        hostname: None,
    })
}

fn stop(seq: u64, id: u64, age_ms: u64) -> Event {
    Event::Stop(Stop {
        seq,
        at: Offset::default(),
        id: SessionId(id),
        reason: StopReason::Left,
        age_ms,
        rx_bytes: 10,
        tx_bytes: 5,
        rx_packets: 1,
        tx_packets: 1,
        signal_avg_dbm: None,
        inactive_ms: None,
    })
}

fn sync(seq: u64, ids: &[u64]) -> Event {
    Event::Sync(Sync {
        seq,
        at: Offset::default(),
        ids: ids.iter().map(|i| SessionId(*i)).collect(),
    })
}

fn row(m: &Mem, id: i64) -> &Session {
    &m.sessions[&("ap1".to_owned(), id)]
}

/// Regression (issue 16): a stop whose start never reached the collector was stored with its
/// start after its stop (the stop event's own time) and duration 0.
#[test]
fn a_stop_without_its_start_starts_no_later_than_it_stops() {
    let mut m = Mem::default();
    m.apply(
        &batch(1, 1, true, vec![(60_000, stop(5, 9, 10_000))]),
        T0 as i64 + 60_000,
    );
    let s = row(&m, 9);
    assert_eq!(s.stop_ms, Some(T0 as i64 + 50_000));
    assert!(s.start_ms <= s.stop_ms.unwrap(), "{s:?}");
    assert_eq!(s.stop_reason, Some(Reason::Left));
    // Its Start, arriving later, gives the real start.
    m.apply(
        &batch(1, 1, true, vec![(20_000, start(4, 9, 5, 5_000))]),
        T0 as i64 + 61_000,
    );
    assert_eq!(row(&m, 9).start_ms, T0 as i64 + 15_000);
}

/// Regression (issue 16): an event of a kind this collector does not know was counted as a
/// sequence gap; it is skipped, and its seq counts as received.
#[test]
fn an_unknown_kind_is_skipped_without_a_false_gap() {
    let mut m = Mem::default();
    let mut b = batch(1, 1, true, vec![(1_000, start(1, 1, 1, 0))]);
    b.events.push(Event::Unknown {
        kind: 9,
        seq: Some(2),
        at: Offset {
            uptime_ms: 500,
            wall_adj_ms: 0,
        },
    });
    b.events.push(update(3, 1, 100));
    m.apply(&b, T0 as i64 + 2_000);
    let sum = m.states["ap1"].summary();
    assert_eq!((sum.seq_gaps, sum.last_seq), (0, Some(3)));
    assert_eq!(m.counts[&Counter::EventsUnknownKind], 1);
    assert_eq!(row(&m, 1).rx_bytes, 100);
}

/// Issue 20: a failed join is counted as received (no false gap), not as an unknown kind, and
/// stored once (a redelivery gives the same row), at its association time.
#[test]
fn a_failed_join_counts_its_seq_without_a_gap() {
    let mut m = Mem::default();
    let mut b = batch(1, 1, true, vec![(1_000, start(1, 1, 1, 0))]);
    b.events.push(Event::FailedJoin(FailedJoin {
        seq: 2,
        at: Offset::default(),
        mac: MacAddr([2, 0, 0, 0, 3, 0]),
        ifname: "wlan0".into(),
        ssid: b"lab".to_vec(),
        bssid: MacAddr([2, 0, 0, 0, 0, 0]),
        age_ms: 4_000,
    }));
    b.events.push(update(3, 1, 100));
    m.apply(&b, T0 as i64 + 2_000);
    let sum = m.states["ap1"].summary();
    assert_eq!((sum.seq_gaps, sum.last_seq), (0, Some(3)));
    assert_eq!(m.counts.get(&Counter::EventsUnknownKind), None);
    let once = m.failed_joins.clone();
    assert_eq!(once.len(), 1);
    let f = once.values().next().unwrap();
    assert_eq!(
        (f.mac.as_str(), f.ssid.as_str()),
        ("02:00:00:00:03:00", "lab")
    );
    assert_eq!(f.assoc_ms, T0 as i64 + 1_000 - 4_000);
    m.apply(&b, T0 as i64 + 9_000);
    assert_eq!(m.failed_joins, once, "a redelivery gives the same row");
    assert!(m
        .marks
        .buckets
        .contains(&("ap1".into(), derived::hour_of(f.assoc_ms))));
}

/// The core asks before it changes anything: a refused apply leaves the transaction as it was.
#[test]
fn needs_come_before_any_change() {
    let mut tx = DeviceTx::new(DeviceState::new("ap1"));
    let msg = Msg::Batch(batch(1, 1, true, vec![(1_000, update(1, 7, 10))]));
    let needs = tx.apply(&msg, T0 as i64).unwrap_err();
    assert!(needs.sessions.contains(&7));
    assert!(tx.sessions.is_empty() && !tx.state_changed && tx.state.boots.is_empty());
}

#[test]
fn a_reboot_closes_the_previous_boot_and_a_sync_the_unlisted() {
    let mut m = Mem::default();
    m.apply(
        &batch(
            1,
            1,
            true,
            vec![(1_000, start(1, 1, 1, 0)), (2_000, start(2, 2, 2, 0))],
        ),
        T0 as i64 + 2_000,
    );
    // A sync listing only session 1: session 2 is missing (provisional).
    m.apply(
        &batch(1, 1, true, vec![(5_000, sync(3, &[1]))]),
        T0 as i64 + 5_000,
    );
    assert_eq!(row(&m, 2).stop_reason, Some(Reason::Missing));
    assert!(row(&m, 1).is_open());
    // Later evidence of session 2 reopens it.
    m.apply(
        &batch(1, 1, true, vec![(6_000, update(4, 2, 50))]),
        T0 as i64 + 6_000,
    );
    assert!(row(&m, 2).is_open());
    // A new boot closes the old boot's sessions at its last event.
    m.apply(
        &batch(2, 2, true, vec![(90_000_000, sync(1, &[]))]),
        T0 as i64 + 90_000_000,
    );
    for id in [1, 2] {
        let s = row(&m, id);
        assert_eq!(s.stop_reason, Some(Reason::DeviceReboot));
        assert_eq!(s.stop_ms, Some(T0 as i64 + 6_000));
        assert!(s.stop_inferred);
    }
}

#[test]
fn an_unsynchronised_clock_is_corrected_from_uptime_and_receive_time() {
    let mut m = Mem::default();
    // The agent's wall clock says 1970; uptime 10 s; received at T0 + 10.05 s.
    let mut b = batch(1, 1, false, vec![(10_000, start(1, 1, 1, 2_000))]);
    b.base_wall_ms = 10_000;
    m.apply(&b, T0 as i64 + 10_050);
    let s = row(&m, 1);
    assert!(s.times_corrected);
    assert_eq!(s.start_ms, T0 as i64 + 8_050);
}

#[test]
fn expiry_is_provisional_and_undone_by_later_evidence() {
    let mut m = Mem::default();
    m.apply(
        &batch(1, 1, true, vec![(1_000, start(1, 1, 1, 0))]),
        T0 as i64 + 1_000,
    );
    m.run("ap1", |tx| {
        tx.close(Close::Expire {
            at_ms: T0 as i64 + 1_000,
        })
        .map(|_| ())
    });
    assert_eq!(row(&m, 1).stop_reason, Some(Reason::Expired));
    m.apply(
        &batch(1, 1, true, vec![(9_000, update(2, 1, 5))]),
        T0 as i64 + 9_000,
    );
    assert!(row(&m, 1).is_open());
}

/// A simulated agent of one device: starts, updates, stops, syncs, restarts and reboots, with
/// seq and uptime as the real one numbers them.
#[derive(Debug, Clone)]
enum Act {
    Start(u8),
    Update(u8),
    Stop(u8),
    Sync,
    Restart,
    Reboot,
    Flush,
    Tick(u16),
}

fn act() -> impl Strategy<Value = Act> {
    prop_oneof![
        4 => (0u8..3).prop_map(Act::Start),
        4 => any::<u8>().prop_map(Act::Update),
        3 => any::<u8>().prop_map(Act::Stop),
        1 => Just(Act::Sync),
        1 => Just(Act::Restart),
        1 => Just(Act::Reboot),
        2 => Just(Act::Flush),
        3 => (1u16..5000).prop_map(Act::Tick),
    ]
}

/// The simulated agent's clocks and the events not yet in a batch.
struct Sim {
    boot: u8,
    epoch: u32,
    seq: u64,
    up: u64,
    wall: u64,
    pending: Vec<(u64, u64, Event)>,
    out: Vec<(Batch, i64)>,
}

impl Sim {
    fn emit(&mut self, mut e: Event) {
        self.seq += 1;
        e.set_seq(self.seq);
        self.pending.push((self.up, self.wall, e));
    }

    fn flush(&mut self) {
        if self.pending.is_empty() {
            return;
        }
        let mut b = batch(self.boot, self.epoch, true, Vec::new());
        let last = self.pending.last().map_or(0, |p| p.1);
        for (u, w, e) in self.pending.drain(..) {
            let at = Stamp {
                wall_ms: w,
                uptime_ms: u,
            };
            if b.events.is_empty() {
                b.set_base(at);
            }
            assert!(b.push(at, e));
        }
        self.out.push((b, last as i64 + 5));
    }
}

fn stream(acts: &[Act]) -> Vec<(Batch, i64)> {
    let mut a = Sim {
        boot: 1,
        epoch: 1,
        seq: 0,
        up: 10_000,
        wall: T0,
        pending: Vec::new(),
        out: Vec::new(),
    };
    let mut next_id = 1u64;
    let mut open: Vec<(u64, u8)> = Vec::new();
    for act in acts {
        a.up += 7;
        a.wall += 7;
        match *act {
            Act::Start(mac) if !open.iter().any(|o| o.1 == mac) => {
                open.push((next_id, mac));
                a.emit(start(0, next_id, mac, 300));
                next_id += 1;
            }
            Act::Update(k) if !open.is_empty() => {
                let id = open[k as usize % open.len()].0;
                let up = a.up;
                a.emit(update(0, id, up));
            }
            Act::Stop(k) if !open.is_empty() => {
                let (id, _) = open.remove(k as usize % open.len());
                a.emit(stop(0, id, 100));
            }
            Act::Sync => {
                let ids: Vec<u64> = open.iter().map(|o| o.0).collect();
                a.emit(sync(0, &ids));
            }
            Act::Restart => {
                a.flush();
                a.epoch += 1;
                a.seq = 0;
                let ids: Vec<u64> = open.iter().map(|o| o.0).collect();
                a.emit(sync(0, &ids));
            }
            Act::Reboot => {
                a.flush();
                a.boot += 1;
                a.epoch += 1;
                a.seq = 0;
                open.clear();
                a.wall += 60_000;
                a.up = 5_000;
                a.emit(sync(0, &[]));
            }
            Act::Flush => a.flush(),
            Act::Tick(ms) => {
                a.up += u64::from(ms);
                a.wall += u64::from(ms);
            }
            _ => {}
        }
    }
    a.flush();
    a.out
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    /// The store merges, it does not replay: the same batches in any order, some twice, give
    /// exactly the rows of the in-order stream.
    #[test]
    fn any_order_and_duplication_gives_the_in_order_rows(
        acts in prop::collection::vec(act(), 1..60),
        keys in prop::collection::vec(any::<u32>(), 100),
        dups in prop::collection::vec(0u8..4, 100),
    ) {
        let msgs = stream(&acts);
        let mut a = Mem::default();
        for (b, rx) in &msgs {
            a.apply(b, *rx);
        }
        let mut shuffled: Vec<(u32, &(Batch, i64))> = Vec::new();
        for (i, m) in msgs.iter().enumerate() {
            shuffled.push((keys[i % keys.len()].rotate_left(i as u32), m));
            if dups[i % dups.len()] == 0 {
                shuffled.push((keys[(i * 7 + 3) % keys.len()], m));
            }
        }
        shuffled.sort_by_key(|x| x.0);
        let mut b = Mem::default();
        for (_, (batch, rx)) in &shuffled {
            b.apply(batch, *rx);
        }
        prop_assert_eq!(a.rows(), b.rows());
    }
}

/// What several devices' agents do with clients that move between them (shared MACs).
#[derive(Debug, Clone)]
enum Roaming {
    /// Client `mac` joins device `dev` (no-op if already there).
    Join(u8, u8),
    /// The `k`-th client of `dev` leaves.
    Leave(u8, u8),
    /// An update of the `k`-th client of `dev`, with a hostname if `name`.
    Update(u8, u8, bool),
    /// A failed join of `mac` at `dev`.
    Fail(u8, u8),
    /// A sync of `dev`.
    Sync(u8),
    /// `dev` sends what it holds.
    Flush(u8),
    /// Time passes, ms.
    Tick(u32),
}

fn roaming() -> impl Strategy<Value = Roaming> {
    prop_oneof![
        4 => (0u8..3, 1u8..4).prop_map(|(d, m)| Roaming::Join(d, m)),
        3 => (0u8..3, any::<u8>()).prop_map(|(d, k)| Roaming::Leave(d, k)),
        3 => (0u8..3, any::<u8>(), any::<bool>()).prop_map(|(d, k, n)| Roaming::Update(d, k, n)),
        1 => (0u8..3, 1u8..4).prop_map(|(d, m)| Roaming::Fail(d, m)),
        1 => (0u8..3).prop_map(Roaming::Sync),
        2 => (0u8..3).prop_map(Roaming::Flush),
        3 => prop_oneof![1u32..8_000, 600_000u32..3_000_000].prop_map(Roaming::Tick),
    ]
}

/// The batches three devices send for `acts` (one boot and epoch each, synchronised
/// clocks), with their receive times.
fn roaming_stream(acts: &[Roaming]) -> Vec<(Batch, i64)> {
    struct Dev {
        seq: u64,
        open: Vec<(u64, u8)>,
        pending: Vec<(Stamp, Event)>,
    }
    let mut devs: Vec<Dev> = (0..3)
        .map(|_| Dev {
            seq: 0,
            open: Vec::new(),
            pending: Vec::new(),
        })
        .collect();
    let mut out = Vec::new();
    let mut wall = T0;
    let mut next_id = 1u64;
    let flush = |d: usize, dev: &mut Dev, out: &mut Vec<(Batch, i64)>, wall: u64| {
        if dev.pending.is_empty() {
            return;
        }
        let mut b = Batch {
            device_id: format!("ap{d}"),
            boot_id: BootId([d as u8 + 1; 16]),
            agent_epoch: 1,
            base_wall_ms: 0,
            base_uptime_ms: 0,
            clock_synced: true,
            events: Vec::new(),
        };
        b.set_base(dev.pending[0].0);
        for (at, e) in dev.pending.drain(..) {
            assert!(b.push(at, e));
        }
        out.push((b, wall as i64 + 5));
    };
    for a in acts {
        wall += 7;
        let stamp = Stamp {
            wall_ms: wall,
            uptime_ms: wall - T0 + 1_000,
        };
        let emit = |dev: &mut Dev, mut e: Event| {
            dev.seq += 1;
            e.set_seq(dev.seq);
            dev.pending.push((stamp, e));
        };
        match *a {
            Roaming::Join(d, mac) => {
                let dev = &mut devs[d as usize];
                if dev.open.iter().all(|o| o.1 != mac) {
                    let mut e = start(0, next_id, mac, 50);
                    if let Event::Start(s) = &mut e {
                        s.ifname = format!("phy{}-ap0", mac % 2);
                        s.freq_mhz = if mac % 2 == 0 { 2412 } else { 5180 };
                    }
                    dev.open.push((next_id, mac));
                    next_id += 1;
                    emit(dev, e);
                }
            }
            Roaming::Leave(d, k) => {
                let dev = &mut devs[d as usize];
                if !dev.open.is_empty() {
                    let (id, _) = dev.open.remove(k as usize % dev.open.len());
                    emit(dev, stop(0, id, 20));
                }
            }
            Roaming::Update(d, k, named) => {
                let dev = &mut devs[d as usize];
                if !dev.open.is_empty() {
                    let (id, _) = dev.open[k as usize % dev.open.len()];
                    let mut e = update(0, id, wall - T0);
                    if let Event::Update(u) = &mut e {
                        u.hostname = named.then(|| format!("host-{}", k % 3));
                    }
                    emit(dev, e);
                }
            }
            Roaming::Fail(d, mac) => emit(
                &mut devs[d as usize],
                Event::FailedJoin(FailedJoin {
                    seq: 0,
                    at: Offset::default(),
                    mac: MacAddr([2, 0, 0, 0, 0, mac]),
                    ifname: "phy0-ap0".into(),
                    ssid: b"campus".to_vec(),
                    bssid: MacAddr([4, 0, 0, 0, 0, d]),
                    age_ms: 3_000,
                }),
            ),
            Roaming::Sync(d) => {
                let dev = &mut devs[d as usize];
                let ids: Vec<u64> = dev.open.iter().map(|o| o.0).collect();
                emit(dev, sync(0, &ids));
            }
            Roaming::Flush(d) => flush(d as usize, &mut devs[d as usize], &mut out, wall),
            Roaming::Tick(ms) => wall += u64::from(ms),
        }
    }
    for (d, dev) in devs.iter_mut().enumerate() {
        flush(d, dev, &mut out, wall);
    }
    out
}

/// The roam window of these tests, ms.
const W: i64 = 10_000;

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    /// Issue 20, the derived data's promise without a database: the marks a write leaves
    /// are enough. Roams, day sets and hourly rows kept by deriving from the marks (after
    /// every message, or at random points of a shuffled stream with duplicates) equal what a
    /// computation from scratch over the final rows gives.
    #[test]
    fn derived_data_from_marks_equals_a_computation_from_scratch(
        acts in prop::collection::vec(roaming(), 1..80),
        keys in prop::collection::vec(any::<u32>(), 100),
        dups in prop::collection::vec(0u8..4, 100),
        every in 1usize..6,
    ) {
        let msgs = roaming_stream(&acts);
        let mut a = Mem::default();
        for (b, rx) in &msgs {
            a.apply(b, *rx);
            a.derive(W);
        }
        let want = a.scratch(W);
        prop_assert_eq!(&a.derived(), &want, "in order, derived after every message");

        let mut shuffled: Vec<(u32, &(Batch, i64))> = Vec::new();
        for (i, m) in msgs.iter().enumerate() {
            shuffled.push((keys[i % keys.len()].rotate_left(i as u32), m));
            if dups[i % dups.len()] == 0 {
                shuffled.push((keys[(i * 7 + 3) % keys.len()], m));
            }
        }
        shuffled.sort_by_key(|x| x.0);
        let mut b = Mem::default();
        for (i, (_, (batch, rx))) in shuffled.iter().enumerate() {
            b.apply(batch, *rx);
            if i % every == 0 {
                b.derive(W);
            }
        }
        b.derive(W);
        prop_assert_eq!(a.rows(), b.rows());
        prop_assert_eq!(&b.derived(), &want, "shuffled, derived now and then");
    }
}

/// A client that roams ap0 → ap1 (the old AP's stop arriving after the new AP's start) gives
/// one roam with a negative gap, its band and SSID change flags, and a hostname.
#[test]
fn a_roam_between_two_devices_is_derived_from_their_sessions() {
    let msgs = roaming_stream(&[
        Roaming::Join(0, 2),
        Roaming::Update(0, 0, true),
        Roaming::Tick(60_000),
        Roaming::Join(1, 2),
        Roaming::Tick(3_000),
        Roaming::Leave(0, 0),
        Roaming::Flush(1),
        Roaming::Flush(0),
    ]);
    let mut m = Mem::default();
    for (b, rx) in &msgs {
        m.apply(b, *rx);
    }
    m.derive(W);
    let r: Vec<&Roam> = m.roams.values().collect();
    assert_eq!(r.len(), 1, "{r:?}");
    assert_eq!(
        (r[0].from.device_id.as_str(), r[0].to.device_id.as_str()),
        ("ap0", "ap1")
    );
    assert!(r[0].gap_ms < 0, "{r:?}");
    let named = m.sessions.values().find(|s| s.device_id == "ap0").unwrap();
    assert_eq!(
        named.hostname.as_ref().map(|h| h.1.as_str()),
        Some("host-0")
    );
}
