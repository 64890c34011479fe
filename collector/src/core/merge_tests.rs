//! The merge core tested without a database: an in-memory store ([`Mem`]) answers the core's
//! needs the way the store port does, beside the SQLite adapter's own tests
//! (`tests/merge_prop.rs`).

use std::collections::BTreeMap;

use proptest::prelude::*;
use wifisess_wire::{
    Batch, BootId, Event, FailedJoin, MacAddr, Offset, SessionId, Stamp, Start, Stop, StopReason,
    Sync, Update,
};

use super::device::{DeviceState, SyncRec};
use super::merge::{Close, DeviceTx, Loaded, Needs};
use super::message::Msg;
use super::{Counter, Reason, Session};

/// An in-memory store: what a database would hold after each message's transaction.
#[derive(Debug, Clone, Default, PartialEq)]
struct Mem {
    sessions: BTreeMap<(String, i64), Session>,
    states: BTreeMap<String, DeviceState>,
    syncs: BTreeMap<(String, String), Vec<SyncRec>>,
    counts: BTreeMap<Counter, i64>,
    /// How many times the core asked for more.
    rounds: usize,
}

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
                .collect(),
            self.syncs.iter().map(|s| format!("{s:?}")).collect(),
        )
    }
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

/// Issue 20 (compile shim): a failed join is counted as received (no false gap) and not as an
/// unknown kind; the collector stores nothing of it yet.
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
