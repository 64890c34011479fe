//! Property: a device's events applied in any order, with duplicates, give exactly the rows
//! of the in-order stream (encoded, then applied through the writer: core and store, no MQTT),
//! on SQLite and on PostgreSQL alike: `Store::dump()` of both engines is byte-identical for
//! the same messages, whatever their order, duplication and grouping into transactions.

mod common;

use common::pg::{self, EngineDb};
use proptest::prelude::*;
use rusqlite::Connection;
use wifisess_collector::read::db::Val;
use wifisess_collector::read::ReadDb;
use wifisess_collector::store::postgres::PgStore;
use wifisess_collector::store::sqlite::{schema, SqliteStore};
use wifisess_collector::writer::{Incoming, Outcome, Writer};
use wifisess_wire::{
    encode_batch, Batch, BootId, Event, MacAddr, SessionId, Stamp, Start, Stop, StopReason, Sync,
    Update,
};

#[derive(Debug, Clone)]
enum Act {
    Start(u8),
    Update(u8),
    Stop(u8),
    Sync,
    Restart,
    Reboot,
    Lose,
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
        1 => Just(Act::Lose),
        2 => Just(Act::Flush),
        3 => (1u16..5000).prop_map(Act::Tick),
    ]
}

/// A simulated agent: emits batches the way the real one would (seq per run, uptime per boot).
struct Agent {
    dev: String,
    dev_no: u64,
    boot: u8,
    epoch: u32,
    seq: u64,
    up: u64,
    wall: u64,
    next_id: u64,
    open: Vec<(SessionId, u8, u64)>,
    lose_next: bool,
    pending: Vec<(Stamp, Event)>,
    out: Vec<(Batch, i64)>,
}

impl Agent {
    fn new(dev_no: u64) -> Agent {
        Agent {
            dev: format!("ap{dev_no}"),
            dev_no,
            boot: 0,
            epoch: 1,
            seq: 0,
            up: 10_000,
            wall: 1_700_000_000_000 + dev_no * 1000,
            next_id: 1,
            open: Vec::new(),
            lose_next: false,
            pending: Vec::new(),
            out: Vec::new(),
        }
    }

    fn tick(&mut self, ms: u64) {
        self.up += ms;
        self.wall += ms;
    }

    fn emit(&mut self, mut e: Event) {
        self.tick(7);
        self.seq += 1;
        e.set_seq(self.seq);
        if std::mem::take(&mut self.lose_next) {
            return;
        }
        let at = Stamp {
            wall_ms: self.wall,
            uptime_ms: self.up,
        };
        self.pending.push((at, e));
    }

    fn flush(&mut self) {
        if self.pending.is_empty() {
            return;
        }
        let mut b = Batch {
            device_id: self.dev.clone(),
            boot_id: BootId([self.boot; 16]),
            agent_epoch: self.epoch,
            base_wall_ms: 0,
            base_uptime_ms: 0,
            clock_synced: true,
            events: Vec::new(),
        };
        b.set_base(self.pending[0].0);
        let last = self.pending.last().unwrap().0.wall_ms as i64;
        for (at, e) in self.pending.drain(..) {
            assert!(b.push(at, e));
        }
        self.out.push((b, last + 5));
    }

    fn sync(&mut self) {
        let ids = self.open.iter().map(|o| o.0).collect();
        self.emit(Event::Sync(Sync {
            seq: 0,
            at: Default::default(),
            ids,
        }));
    }

    fn counters(&self, birth: u64) -> (u64, u64) {
        let age = self.up.saturating_sub(birth);
        (age * 3, age * 2)
    }

    fn step(&mut self, a: &Act) {
        match *a {
            Act::Start(mac) => {
                if let Some(i) = self.open.iter().position(|o| o.1 == mac) {
                    self.stop_at(i, StopReason::RoamedLocal);
                }
                let id = SessionId(self.dev_no << 40 | self.next_id);
                self.next_id += 1;
                self.open.push((id, mac, self.up));
                self.emit(Event::Start(Start {
                    seq: 0,
                    at: Default::default(),
                    id,
                    mac: MacAddr([2, 0, 0, 0, self.dev_no as u8, mac]),
                    ifname: format!("phy0-ap{}", mac % 2),
                    ssid: b"campus".to_vec(),
                    bssid: MacAddr([4, 0, 0, 0, 0, self.dev_no as u8]),
                    freq_mhz: 2412,
                    age_ms: 300,
                    signal_dbm: Some(-40 - mac as i8),
                    hostname: None,
                }));
            }
            Act::Update(k) if !self.open.is_empty() => {
                let (id, _, birth) = self.open[k as usize % self.open.len()];
                let (rx, tx) = self.counters(birth);
                self.emit(Event::Update(Update {
                    seq: 0,
                    at: Default::default(),
                    id,
                    rx_bytes: rx,
                    tx_bytes: tx,
                    rx_packets: rx / 100,
                    tx_packets: tx / 100,
                    signal_avg_dbm: Some(-50 - (k % 20) as i8),
                    inactive_ms: Some(u32::from(k) * 10),
                    hostname: None,
                }));
            }
            Act::Stop(k) if !self.open.is_empty() => {
                let i = k as usize % self.open.len();
                self.stop_at(i, StopReason::Left);
            }
            Act::Update(_) | Act::Stop(_) => {}
            Act::Sync => self.sync(),
            Act::Restart => {
                self.flush();
                self.epoch += 1;
                self.seq = 0;
                self.tick(2_000);
                self.sync();
            }
            Act::Reboot => {
                self.flush();
                self.boot += 1;
                self.epoch += 1;
                self.seq = 0;
                self.open.clear();
                self.wall += 60_000;
                self.up = 5_000;
                self.sync();
            }
            Act::Lose => self.lose_next = true,
            Act::Flush => self.flush(),
            Act::Tick(ms) => self.tick(u64::from(ms)),
        }
    }

    fn stop_at(&mut self, i: usize, reason: StopReason) {
        let (id, _, birth) = self.open.remove(i);
        let (rx, tx) = self.counters(birth);
        self.emit(Event::Stop(Stop {
            seq: 0,
            at: Default::default(),
            id,
            reason,
            age_ms: 100,
            rx_bytes: rx,
            tx_bytes: tx,
            rx_packets: rx / 100,
            tx_packets: tx / 100,
            signal_avg_dbm: Some(-55),
            inactive_ms: Some(100),
        }));
    }
}

fn streams(plans: &[Vec<Act>]) -> Vec<Vec<(Batch, i64)>> {
    plans
        .iter()
        .enumerate()
        .map(|(n, acts)| {
            let mut a = Agent::new(n as u64 + 1);
            for x in acts {
                a.step(x);
            }
            a.flush();
            a.out
        })
        .collect()
}

const PREFIX: &str = "wifisess/v1";

/// Applies each batch in its own transaction, as a lone MQTT message would be.
fn apply(w: &mut Writer, batches: &[&(Batch, i64)]) {
    for (b, rx) in batches {
        let payload = encode_batch(b);
        let topic = format!("{PREFIX}/{}/events", b.device_id);
        let c = w
            .ingest(&[Incoming {
                topic: &topic,
                payload: &payload,
                receive_ms: *rx,
            }])
            .unwrap();
        assert!(
            matches!(c.outcomes[..], [Outcome::Events(_)]),
            "{:?}",
            c.outcomes
        );
    }
}

fn snapshot(w: &mut Writer) -> Vec<String> {
    w.store().dump().unwrap()
}

/// A writer on an in-memory database (fast: the property runs hundreds of cases).
fn db() -> Writer {
    let mut c = Connection::open_in_memory().unwrap();
    schema::migrate(&mut c).unwrap();
    Writer::new(
        Box::new(SqliteStore::from_connection(c)),
        PREFIX,
        Default::default(),
    )
}

/// A writer and a read-only connection on each engine (a file, a PostgreSQL database).
fn db_files(test: &str) -> Vec<(EngineDb, Writer, ReadDb)> {
    pg::both(test)
        .into_iter()
        .map(|e| {
            let w = Writer::new(e.store(), PREFIX, Default::default());
            let r = e.read();
            (e, w, r)
        })
        .collect()
}

/// A writer on this binary's PostgreSQL database for the property (made once, emptied for
/// every case).
fn pg_writer() -> Writer {
    static URL: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    let url = URL.get_or_init(|| {
        let url = pg::database("merge_prop");
        drop(PgStore::open(&url, "test").unwrap());
        url
    });
    let mut c = postgres::Client::connect(url, postgres::NoTls).unwrap();
    c.batch_execute(
        "TRUNCATE devices, sessions_open, sessions_closed, syncs, counter_shards, fleet_jobs",
    )
    .unwrap();
    Writer::new(
        Box::new(PgStore::open(url, "test").unwrap()),
        PREFIX,
        Default::default(),
    )
}

/// Applies `batches` in group commits of `group` messages.
fn apply_grouped(w: &mut Writer, batches: &[&(Batch, i64)], group: usize) {
    let msgs: Vec<(String, Vec<u8>, i64)> = batches
        .iter()
        .map(|(b, rx)| {
            (
                format!("{PREFIX}/{}/events", b.device_id),
                encode_batch(b),
                *rx,
            )
        })
        .collect();
    for chunk in msgs.chunks(group) {
        let incoming: Vec<Incoming<'_>> = chunk
            .iter()
            .map(|(t, p, rx)| Incoming {
                topic: t,
                payload: p,
                receive_ms: *rx,
            })
            .collect();
        let c = w.ingest(&incoming).unwrap();
        assert!(c.outcomes.iter().all(|o| matches!(o, Outcome::Events(_))));
    }
}

fn dump(r: &ReadDb, sql: &str) -> Vec<String> {
    r.query(sql, &[])
        .unwrap()
        .iter()
        .map(|row| row.0.iter().map(|v| format!("{v:?}|")).collect())
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    #[test]
    fn any_order_and_duplication_gives_the_in_order_rows(
        plans in prop::collection::vec(prop::collection::vec(act(), 1..40), 1..4),
        keys in prop::collection::vec(any::<u32>(), 200),
        dups in prop::collection::vec(0u8..4, 200),
    ) {
        let per_device = streams(&plans);
        let mut a = db();
        let in_order: Vec<&(Batch, i64)> = per_device.iter().flatten().collect();
        apply(&mut a, &in_order);

        // Shuffle: every batch (and 1 in 4 a second copy) gets a random sort key.
        let mut shuffled: Vec<(u32, &(Batch, i64))> = Vec::new();
        for (i, b) in in_order.iter().enumerate() {
            shuffled.push((keys[i % keys.len()].rotate_left(i as u32), b));
            if dups[i % dups.len()] == 0 {
                shuffled.push((keys[(i * 7 + 3) % keys.len()], b));
            }
        }
        shuffled.sort_by_key(|x| x.0);
        let mut b = db();
        apply(&mut b, &shuffled.iter().map(|x| x.1).collect::<Vec<_>>());

        // Every session row, device state and sync equal; the schema's unique index (one open
        // session per device and MAC) made any write that broke it fail above.
        prop_assert_eq!(snapshot(&mut a), snapshot(&mut b));
    }
}

proptest! {
    // Each case runs on a real PostgreSQL: fewer cases than the SQLite property above.
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    /// PostgreSQL gives SQLite's rows, byte for byte in `Store::dump()`: the same stream in
    /// order, shuffled with duplicates one message per transaction, and shuffled in group
    /// commits (many devices and rows per transaction: the bulk statements).
    #[test]
    fn postgres_dumps_equal_sqlite_dumps(
        plans in prop::collection::vec(prop::collection::vec(act(), 1..40), 1..4),
        keys in prop::collection::vec(any::<u32>(), 200),
        dups in prop::collection::vec(0u8..4, 200),
        group in 2usize..12,
    ) {
        let per_device = streams(&plans);
        let in_order: Vec<&(Batch, i64)> = per_device.iter().flatten().collect();
        let mut lite = db();
        apply(&mut lite, &in_order);
        let want = snapshot(&mut lite);

        let mut shuffled: Vec<(u32, &(Batch, i64))> = Vec::new();
        for (i, b) in in_order.iter().enumerate() {
            shuffled.push((keys[i % keys.len()].rotate_left(i as u32), b));
            if dups[i % dups.len()] == 0 {
                shuffled.push((keys[(i * 7 + 3) % keys.len()], b));
            }
        }
        shuffled.sort_by_key(|x| x.0);
        let shuffled: Vec<&(Batch, i64)> = shuffled.iter().map(|x| x.1).collect();

        let mut p = pg_writer();
        apply(&mut p, &in_order);
        prop_assert_eq!(&want, &snapshot(&mut p), "in order");
        let mut p = pg_writer();
        apply(&mut p, &shuffled);
        prop_assert_eq!(&want, &snapshot(&mut p), "shuffled");
        let mut p = pg_writer();
        apply_grouped(&mut p, &shuffled, group);
        prop_assert_eq!(&want, &snapshot(&mut p), "shuffled, group commits of {}", group);
    }
}

const T0: u64 = 1_750_000_000_000;

/// The store merges, it does not replay: applying `msgs` again leaves every row as it is.
fn assert_reapplying_changes_nothing(w: &mut Writer, msgs: &[&(Batch, i64)]) {
    let once = snapshot(w);
    apply(w, msgs);
    assert_eq!(
        once,
        snapshot(w),
        "applying the same messages again changed rows"
    );
}

/// A batch of `ap1` in `boot` (epoch 1, clock synced), each event at uptime `up` ms and wall
/// clock `T0 + up`.
fn ap1_batch(boot: u8, events: Vec<(u64, Event)>) -> Batch {
    let mut b = Batch {
        device_id: "ap1".into(),
        boot_id: BootId([boot; 16]),
        agent_epoch: 1,
        base_wall_ms: 0,
        base_uptime_ms: 0,
        clock_synced: true,
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

fn start_event(seq: u64, id: u64, mac_last: u8, ifname: &str, age_ms: u64) -> Event {
    Event::Start(Start {
        seq,
        at: Default::default(),
        id: SessionId(id),
        mac: MacAddr([2, 0, 0, 0, 0, mac_last]),
        ifname: ifname.into(),
        ssid: b"fuzz".to_vec(),
        bssid: MacAddr([4, 0, 0, 0, 0, 1]),
        freq_mhz: 5180,
        age_ms,
        signal_dbm: Some(-50),
        hostname: None,
    })
}

/// Found by the `collector_merge` fuzz target: a late event of an old boot moved that boot's
/// first-seen time back, so another boot became the device's newest, but only the previous
/// newest boot's sessions were re-derived. The new newest boot's session kept the
/// `device_reboot` stop it had been given while the other boot looked newer, until the same
/// messages were applied again.
#[test]
fn a_boot_that_becomes_the_newest_reopens_its_sessions() {
    let batch = |boot: u8, up: u64, e: Event| ap1_batch(boot, vec![(up, e)]);
    // Boot 1 reports late in its life, boot 2 early in its life, then boot 1's first event
    // arrives: boot 2 (first seen after boot 1's first event) is the newest after all.
    let msgs = [
        (
            batch(
                1,
                3_251_200,
                Event::Sync(Sync {
                    seq: 96,
                    at: Default::default(),
                    ids: vec![SessionId(1)],
                }),
            ),
            T0 as i64,
        ),
        (
            batch(
                2,
                12_800,
                Event::Update(Update {
                    seq: 109,
                    at: Default::default(),
                    id: SessionId(2),
                    rx_bytes: 0,
                    tx_bytes: 0,
                    rx_packets: 0,
                    tx_packets: 0,
                    signal_avg_dbm: None,
                    inactive_ms: None,
                    hostname: None,
                }),
            ),
            T0 as i64 + 180_000,
        ),
        (
            batch(1, 0, start_event(1, 1, 3, "phy1-ap0", 15_500)),
            T0 as i64 + 180_000,
        ),
    ];
    let refs: Vec<&(Batch, i64)> = msgs.iter().collect();
    let mut dumps = Vec::new();
    for (e, mut w, r) in db_files("boot_becomes_newest") {
        apply(&mut w, &refs);
        let stop = |id: i64| -> (Option<i64>, Option<String>) {
            let row = r
                .query_one(
                    "SELECT stop_ms, stop_reason FROM sessions WHERE device_id = 'ap1' AND id = $1",
                    &[Val::Int(id)],
                )
                .unwrap()
                .unwrap();
            (row.opt_int(0).unwrap(), row.opt_text(1).unwrap())
        };
        assert_eq!(
            stop(2),
            (None, None),
            "{}: boot 2 is the newest: its session is open",
            e.engine
        );
        assert_eq!(stop(1).1.as_deref(), Some("device_reboot"), "{}", e.engine);
        assert_reapplying_changes_nothing(&mut w, &refs);
        dumps.push(snapshot(&mut w));
    }
    assert_eq!(dumps[0], dumps[1], "sqlite and postgres rows differ");
}

/// Found by the `collector_merge` fuzz target (CI, session 4): three batches of one boot;
/// the second opens session 5 for a MAC that session 1 holds, the third repeats seq 9 with
/// other contents (session 5 with another MAC, earlier). `apply_batch` failed on the schema's
/// "one open session per (device, MAC)" index.
#[test]
fn a_seq_repeated_with_other_contents_keeps_one_open_session_per_mac() {
    let msgs = [
        (
            ap1_batch(1, vec![(102_400, start_event(1, 1, 2, "phy0-ap0", 7_500))]),
            T0 as i64,
        ),
        (
            ap1_batch(1, vec![(102_400, start_event(9, 5, 2, "phy0-ap0", 7_500))]),
            T0 as i64 + 60_000,
        ),
        (
            ap1_batch(1, vec![(0, start_event(9, 5, 0, "phy0-ap0", 2_000))]),
            T0 as i64 + 120_000,
        ),
    ];
    let refs: Vec<&(Batch, i64)> = msgs.iter().collect();
    for (e, mut c, r) in db_files("seq_repeated") {
        apply(&mut c, &refs);
        let rows = dump(
            &r,
            "SELECT id, mac, start_ms, stop_ms, stop_reason FROM sessions ORDER BY id",
        );
        // Session 5's last start names MAC :00, so nothing supersedes session 1 any more:
        // both are open, one per MAC.
        assert_eq!(
            rows,
            [
                format!(
                    "Int(1)|Text(\"02:00:00:00:00:02\")|Int({})|Null|Null|",
                    T0 + 94_900
                ),
                format!(
                    "Int(5)|Text(\"02:00:00:00:00:00\")|Int({})|Null|Null|",
                    T0 - 2_000
                ),
            ],
            "{}",
            e.engine
        );
        assert_reapplying_changes_nothing(&mut c, &refs);
    }
}
