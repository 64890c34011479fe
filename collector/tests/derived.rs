//! Issue 20's derived data through the real writer, store and derive step, on SQLite and on
//! PostgreSQL: roams, failed joins, day sets and hourly/daily rows come out the same whatever
//! the order and duplication of the messages and wherever derive steps run in between, and
//! equal on both engines; the roam rules' edges (window, overlap, a provisional stop undone,
//! band and SSID changes); retention keeps what pending marks need and the trends outlive the
//! sessions.

mod common;

use common::pg::{self, EngineDb};
use proptest::prelude::*;
use rusqlite::Connection;
use wifisess_collector::derive::{self, DeriveConfig};
use wifisess_collector::read::db::Val;
use wifisess_collector::store::postgres::PgStore;
use wifisess_collector::store::sqlite::{schema, SqliteStore};
use wifisess_collector::writer::{Incoming, Outcome, Writer};
use wifisess_wire::{
    encode_batch, encode_status, Batch, BootId, Event, FailedJoin, MacAddr, Offset, SessionId,
    Stamp, Start, Status, Stop, StopReason, Sync, Update,
};

const PREFIX: &str = "wifisess/v1";
const T0: u64 = 1_750_000_000_000;
const CFG: DeriveConfig = DeriveConfig {
    roam_window_ms: 10_000,
};

/// A message: topic, payload, receive time.
type Msg = (String, Vec<u8>, i64);

fn status(dev: &str, org: &str, at: u64) -> Msg {
    let s = Status {
        device_id: dev.into(),
        boot_id: BootId([dev.as_bytes()[2]; 16]),
        agent_epoch: 1,
        online: true,
        graceful: false,
        wall_ms: at,
        uptime_ms: at - T0 + 1_000,
        clock_synced: true,
        agent_version: "t".into(),
        name: Some(format!("{dev}-name")),
        organization: Some(org.into()),
        group: Some("g".into()),
        interfaces: vec![],
        published: 0,
        dropped: 0,
        reconnects: 0,
        outbox_depth: 0,
        failed_joins: 0,
        tracker_overflow: 0,
        dropped_updates: 0,
        dropped_starts_stops: 0,
        spool_restored: 0,
    };
    (
        format!("{PREFIX}/{dev}/status"),
        encode_status(&s),
        at as i64 + 5,
    )
}

/// One device's agent: seq per run, uptime from T0 - 1 s.
struct Agent {
    dev: String,
    seq: u64,
    pending: Vec<(Stamp, Event)>,
}

impl Agent {
    fn new(dev: &str) -> Agent {
        Agent {
            dev: dev.into(),
            seq: 0,
            pending: Vec::new(),
        }
    }

    fn emit(&mut self, wall: u64, mut e: Event) {
        self.seq += 1;
        e.set_seq(self.seq);
        self.pending.push((
            Stamp {
                wall_ms: wall,
                uptime_ms: wall - T0 + 1_000,
            },
            e,
        ));
    }

    fn flush(&mut self, rx: u64) -> Option<Msg> {
        if self.pending.is_empty() {
            return None;
        }
        self.pending.sort_by_key(|p| p.0.uptime_ms);
        let mut b = Batch {
            device_id: self.dev.clone(),
            boot_id: BootId([self.dev.as_bytes()[2]; 16]),
            agent_epoch: 1,
            base_wall_ms: 0,
            base_uptime_ms: 0,
            clock_synced: true,
            events: Vec::new(),
        };
        b.set_base(self.pending[0].0);
        for (at, e) in self.pending.drain(..) {
            assert!(b.push(at, e));
        }
        Some((
            format!("{PREFIX}/{}/events", self.dev),
            encode_batch(&b),
            rx as i64,
        ))
    }
}

fn mac(n: u8) -> MacAddr {
    MacAddr([2, 0, 0, 0, 0, n])
}

fn start(id: u64, client: u8, ssid: &str, freq: u32, hostname: Option<&str>) -> Event {
    Event::Start(Start {
        seq: 0,
        at: Offset::default(),
        id: SessionId(id),
        mac: mac(client),
        ifname: if freq < 3000 { "phy0-ap0" } else { "phy1-ap0" }.into(),
        ssid: ssid.as_bytes().to_vec(),
        bssid: MacAddr([4, 0, 0, 0, 0, client]),
        freq_mhz: freq,
        age_ms: 0,
        signal_dbm: Some(-50),
        hostname: hostname.map(str::to_owned),
    })
}

fn update(id: u64, rx: u64, hostname: Option<&str>) -> Event {
    Event::Update(Update {
        seq: 0,
        at: Offset::default(),
        id: SessionId(id),
        rx_bytes: rx,
        tx_bytes: rx / 2,
        rx_packets: 1,
        tx_packets: 1,
        signal_avg_dbm: Some(-55),
        inactive_ms: Some(10),
        hostname: hostname.map(str::to_owned),
    })
}

fn stop(id: u64, rx: u64) -> Event {
    Event::Stop(Stop {
        seq: 0,
        at: Offset::default(),
        id: SessionId(id),
        reason: StopReason::Left,
        age_ms: 0,
        rx_bytes: rx,
        tx_bytes: rx / 2,
        rx_packets: 1,
        tx_packets: 1,
        signal_avg_dbm: None,
        inactive_ms: None,
    })
}

fn failed(client: u8, ssid: &str) -> Event {
    Event::FailedJoin(FailedJoin {
        seq: 0,
        at: Offset::default(),
        mac: mac(client),
        ifname: "phy0-ap0".into(),
        ssid: ssid.as_bytes().to_vec(),
        bssid: MacAddr([4, 0, 0, 0, 0, 9]),
        age_ms: 4_000,
    })
}

fn sync(ids: &[u64]) -> Event {
    Event::Sync(Sync {
        seq: 0,
        at: Offset::default(),
        ids: ids.iter().map(|i| SessionId(*i)).collect(),
    })
}

fn apply(w: &mut Writer, msgs: &[&Msg]) {
    let incoming: Vec<Incoming<'_>> = msgs
        .iter()
        .map(|(t, p, rx)| Incoming {
            topic: t,
            payload: p,
            receive_ms: *rx,
        })
        .collect();
    let c = w.ingest(&incoming).unwrap();
    assert!(
        c.outcomes
            .iter()
            .all(|o| matches!(o, Outcome::Events(_) | Outcome::Status)),
        "{:?}",
        c.outcomes
    );
}

fn settle(w: &mut Writer) {
    derive::until_idle(w, &CFG, T0 as i64).unwrap();
}

fn dump(w: &mut Writer) -> Vec<String> {
    w.store().dump().unwrap()
}

/// A writer on an in-memory SQLite database.
fn lite() -> Writer {
    let mut c = Connection::open_in_memory().unwrap();
    schema::migrate(&mut c).unwrap();
    Writer::new(
        Box::new(SqliteStore::from_connection(c)),
        PREFIX,
        Default::default(),
    )
}

/// A writer on this binary's PostgreSQL database for the property (emptied every case).
fn pg_writer() -> Writer {
    static URL: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    let url = URL.get_or_init(|| {
        let url = pg::database("derived_prop");
        drop(PgStore::open(&url, "test").unwrap());
        url
    });
    let mut c = postgres::Client::connect(url, postgres::NoTls).unwrap();
    c.batch_execute(
        "TRUNCATE devices, sessions_open, sessions_closed, syncs, counter_shards, fleet_jobs,
         failed_joins, roams, agg_hourly, agg_daily, agg_clients, dirty_clients, dirty_buckets,
         retention_horizon",
    )
    .unwrap();
    Writer::new(
        Box::new(PgStore::open(url, "test").unwrap()),
        PREFIX,
        Default::default(),
    )
}

/// What three devices' agents do with clients moving between them.
#[derive(Debug, Clone)]
enum Act {
    Join(u8, u8),
    Leave(u8, u8),
    Update(u8, u8, bool),
    Fail(u8, u8),
    Sync(u8),
    Flush(u8),
    Tick(u32),
}

fn act() -> impl Strategy<Value = Act> {
    prop_oneof![
        4 => (0u8..3, 1u8..4).prop_map(|(d, m)| Act::Join(d, m)),
        3 => (0u8..3, any::<u8>()).prop_map(|(d, k)| Act::Leave(d, k)),
        3 => (0u8..3, any::<u8>(), any::<bool>()).prop_map(|(d, k, n)| Act::Update(d, k, n)),
        1 => (0u8..3, 1u8..4).prop_map(|(d, m)| Act::Fail(d, m)),
        1 => (0u8..3).prop_map(Act::Sync),
        2 => (0u8..3).prop_map(Act::Flush),
        3 => prop_oneof![1u32..8_000, 600_000u32..3_000_000].prop_map(Act::Tick),
    ]
}

fn stream(acts: &[Act]) -> Vec<Msg> {
    let mut agents: Vec<Agent> = (0..3).map(|d| Agent::new(&format!("ap{d}"))).collect();
    let mut open: Vec<Vec<(u64, u8)>> = vec![Vec::new(); 3];
    let mut out: Vec<Msg> = (0..3)
        .map(|d| status(&format!("ap{d}"), "acme", T0))
        .collect();
    let mut wall = T0;
    let mut next = 1u64;
    for a in acts {
        wall += 7;
        match *a {
            Act::Join(d, m) => {
                let d = d as usize;
                if open[d].iter().all(|o| o.1 != m) {
                    let (ssid, freq) = if m % 2 == 0 {
                        ("campus", 2412)
                    } else {
                        ("campus-5g", 5180)
                    };
                    agents[d].emit(wall, start(next, m, ssid, freq, None));
                    open[d].push((next, m));
                    next += 1;
                }
            }
            Act::Leave(d, k) => {
                let d = d as usize;
                if !open[d].is_empty() {
                    let i = k as usize % open[d].len();
                    let (id, _) = open[d].remove(i);
                    agents[d].emit(wall, stop(id, wall - T0));
                }
            }
            Act::Update(d, k, named) => {
                let d = d as usize;
                if !open[d].is_empty() {
                    let (id, _) = open[d][k as usize % open[d].len()];
                    let name = format!("host-{}", k % 3);
                    agents[d].emit(wall, update(id, wall - T0, named.then_some(name.as_str())));
                }
            }
            Act::Fail(d, m) => agents[d as usize].emit(wall, failed(m, "campus")),
            Act::Sync(d) => {
                let ids: Vec<u64> = open[d as usize].iter().map(|o| o.0).collect();
                agents[d as usize].emit(wall, sync(&ids));
            }
            Act::Flush(d) => out.extend(agents[d as usize].flush(wall + 5)),
            Act::Tick(ms) => wall += u64::from(ms),
        }
    }
    for a in &mut agents {
        out.extend(a.flush(wall + 5));
    }
    out
}

fn shuffled<'a>(msgs: &'a [Msg], keys: &[u32], dups: &[u8]) -> Vec<&'a Msg> {
    let mut s: Vec<(u32, &Msg)> = Vec::new();
    for (i, m) in msgs.iter().enumerate() {
        s.push((keys[i % keys.len()].rotate_left(i as u32), m));
        if dups[i % dups.len()] == 0 {
            s.push((keys[(i * 7 + 3) % keys.len()], m));
        }
    }
    s.sort_by_key(|x| x.0);
    s.into_iter().map(|x| x.1).collect()
}

/// Applies `msgs` one per transaction, with a derive step after every `every`-th.
fn apply_deriving(w: &mut Writer, msgs: &[&Msg], every: usize) {
    for (i, m) in msgs.iter().enumerate() {
        apply(w, &[m]);
        if i % every == 0 {
            derive::step(w, &CFG, T0 as i64).unwrap();
        }
    }
    settle(w);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    /// The same messages in any order, with duplicates, with derive steps anywhere in
    /// between, give the same rows and the same derived data (`Store::dump()`).
    #[test]
    fn derived_data_is_order_independent_on_sqlite(
        acts in prop::collection::vec(act(), 1..60),
        keys in prop::collection::vec(any::<u32>(), 100),
        dups in prop::collection::vec(0u8..4, 100),
        every in 1usize..6,
    ) {
        let msgs = stream(&acts);
        let in_order: Vec<&Msg> = msgs.iter().collect();
        let mut a = lite();
        apply_deriving(&mut a, &in_order, 1);
        let want = dump(&mut a);
        let mut b = lite();
        apply_deriving(&mut b, &shuffled(&msgs, &keys, &dups), every);
        prop_assert_eq!(&want, &dump(&mut b));
    }
}

proptest! {
    // Each case runs on a real PostgreSQL: fewer cases.
    #![proptest_config(ProptestConfig { cases: 12, ..ProptestConfig::default() })]

    /// PostgreSQL's derived data equals SQLite's, byte for byte in `Store::dump()`, for the
    /// messages in order and shuffled with duplicates in group commits.
    #[test]
    fn postgres_derived_data_equals_sqlite(
        acts in prop::collection::vec(act(), 1..60),
        keys in prop::collection::vec(any::<u32>(), 100),
        dups in prop::collection::vec(0u8..4, 100),
        group in 2usize..8,
    ) {
        let msgs = stream(&acts);
        let in_order: Vec<&Msg> = msgs.iter().collect();
        let mut l = lite();
        apply_deriving(&mut l, &in_order, 1);
        let want = dump(&mut l);
        let mut p = pg_writer();
        apply_deriving(&mut p, &in_order, 2);
        prop_assert_eq!(&want, &dump(&mut p), "in order");
        let mut p = pg_writer();
        for (i, chunk) in shuffled(&msgs, &keys, &dups).chunks(group).enumerate() {
            apply(&mut p, chunk);
            if i % 2 == 0 {
                derive::step(&mut p, &CFG, T0 as i64).unwrap();
            }
        }
        settle(&mut p);
        prop_assert_eq!(&want, &dump(&mut p), "shuffled, group commits of {}", group);
    }
}

/// Rows of `sql` on the read side, each as `v|v|…`.
fn rows(r: &wifisess_collector::read::ReadDb, sql: &str) -> Vec<String> {
    r.query(sql, &[])
        .unwrap()
        .iter()
        .map(|row| {
            row.0
                .iter()
                .map(|v| match v {
                    Val::Null => "-".to_owned(),
                    Val::Int(i) => i.to_string(),
                    Val::Text(t) => t.clone(),
                })
                .collect::<Vec<_>>()
                .join("|")
        })
        .collect()
}

fn writers(test: &str) -> Vec<(EngineDb, Writer)> {
    pg::both(test)
        .into_iter()
        .map(|e| {
            let w = Writer::new(e.store(), PREFIX, Default::default());
            (e, w)
        })
        .collect()
}

const S: u64 = 1_000;

/// The window is inclusive (a gap of exactly 10 s is a roam, 10.001 s is not), an overlap is
/// a roam with a negative gap, and band and SSID changes are flagged.
#[test]
fn roam_window_overlap_band_and_ssid() {
    for (e, mut w) in writers("roam_edges") {
        let (mut a0, mut a1, mut a2) = (Agent::new("ap0"), Agent::new("ap1"), Agent::new("ap2"));
        let t = T0 + 3_600 * S;
        // Client 1: ap0 [t, t+100s] 2.4 GHz campus → ap1 at t+110s (gap 10 s) 5 GHz campus-5g
        // → ap2 at t+200.001s after ap1 stopped at t+190s (gap 10.001 s: no roam).
        a0.emit(t, start(1, 1, "campus", 2412, None));
        a0.emit(t + 100 * S, stop(1, 10));
        a1.emit(t + 110 * S, start(2, 1, "campus-5g", 5180, None));
        a1.emit(t + 190 * S, stop(2, 10));
        a2.emit(t + 200 * S + 1, start(3, 1, "campus", 2412, None));
        // Client 2: ap1 [t, t+300s]; ap2 from t+60s (the old AP noticed 240 s late).
        a1.emit(t, start(4, 2, "campus", 2412, None));
        a1.emit(t + 300 * S, stop(4, 10));
        a2.emit(t + 60 * S, start(5, 2, "campus", 2412, None));
        let mut msgs: Vec<Msg> = vec![
            status("ap0", "acme", T0),
            status("ap1", "acme", T0),
            status("ap2", "acme", T0),
        ];
        for a in [&mut a2, &mut a1, &mut a0] {
            msgs.extend(a.flush(t + 400 * S));
        }
        apply(&mut w, &msgs.iter().collect::<Vec<_>>());
        settle(&mut w);
        let r = e.read();
        assert_eq!(
            rows(
                &r,
                "SELECT mac, from_device, to_device, gap_ms, from_freq, to_freq, from_ssid, \
                 to_ssid FROM roams ORDER BY at_ms, to_device"
            ),
            [
                "02:00:00:00:00:02|ap1|ap2|-240000|2412|2412|campus|campus",
                "02:00:00:00:00:01|ap0|ap1|10000|2412|5180|campus|campus-5g",
            ],
            "{}",
            e.engine
        );
    }
}

/// A provisional stop (a sync that missed the session) makes a roam; the agent reporting the
/// session again undoes the stop, and the roam with it.
#[test]
fn a_provisional_stop_undone_undoes_its_roam() {
    for (e, mut w) in writers("roam_undone") {
        let (mut a0, mut a1) = (Agent::new("ap0"), Agent::new("ap1"));
        let t = T0 + 7_200 * S;
        a0.emit(t, start(1, 1, "campus", 2412, None));
        a0.emit(t + 100 * S, update(1, 5, None));
        a1.emit(t + 105 * S, start(2, 1, "campus", 2412, None));
        // ap0's sync at t+106s does not list session 1: `missing`, stopped at its last report.
        a0.emit(t + 106 * S, sync(&[]));
        let msgs = [
            status("ap0", "acme", T0),
            status("ap1", "acme", T0),
            a0.flush(t + 107 * S).unwrap(),
            a1.flush(t + 107 * S).unwrap(),
        ];
        apply(&mut w, &msgs.iter().collect::<Vec<_>>());
        settle(&mut w);
        let r = e.read();
        let q = "SELECT from_device, to_device, gap_ms FROM roams";
        assert_eq!(rows(&r, q), ["ap0|ap1|5000"], "{}", e.engine);
        // ap0 reports session 1 after its sync: it was open after all.
        a0.emit(t + 110 * S, update(1, 6, None));
        apply(&mut w, &[&a0.flush(t + 111 * S).unwrap()]);
        settle(&mut w);
        assert_eq!(rows(&r, q), Vec::<String>::new(), "{}", e.engine);
        // And its agent stop later makes the roam again (an overlap: 2 s after ap1's start).
        a0.emit(t + 107 * S, stop(1, 7));
        apply(&mut w, &[&a0.flush(t + 112 * S).unwrap()]);
        settle(&mut w);
        assert_eq!(rows(&r, q), ["ap0|ap1|-2000"], "{}", e.engine);
    }
}

/// Failed joins are stored once per event whatever the redeliveries, counted per device and
/// SSID in the hour they associated; hostnames are kept per session (the latest wins).
#[test]
fn failed_joins_hostnames_and_hourly_rows() {
    for (e, mut w) in writers("failed_joins") {
        let mut a0 = Agent::new("ap0");
        let h = T0 - T0 % (3_600 * S) + 3 * 3_600 * S;
        a0.emit(h + 10 * S, failed(7, "campus"));
        a0.emit(h + 20 * S, failed(7, "campus"));
        a0.emit(h + 30 * S, failed(8, "guest"));
        a0.emit(h + 40 * S, start(1, 1, "campus", 2412, Some("old-name")));
        a0.emit(h + 50 * S, update(1, 10, Some("new-name")));
        a0.emit(h + 3_600 * S + 5 * S, stop(1, 1_000));
        let m = a0.flush(h + 3_700 * S).unwrap();
        let st = status("ap0", "acme", T0);
        apply(&mut w, &[&st, &m]);
        apply(&mut w, &[&m]);
        settle(&mut w);
        let r = e.read();
        assert_eq!(
            rows(&r, "SELECT count(*) FROM failed_joins"),
            ["3"],
            "{}",
            e.engine
        );
        assert_eq!(
            rows(&r, "SELECT hostname FROM sessions"),
            ["new-name"],
            "{}",
            e.engine
        );
        let first = h / S * S;
        assert_eq!(
            rows(
                &r,
                "SELECT hour_ms, ssid, sessions, clients, connected_ms, rx_bytes, failed_joins \
                 FROM agg_hourly ORDER BY hour_ms, ssid"
            ),
            [
                format!("{first}|campus|1|1|{}|0|2", 3_560 * S),
                format!("{first}|guest|0|0|0|0|1"),
                format!("{}|campus|0|1|{}|1000|0", first + 3_600 * S, 5 * S),
            ],
            "{}",
            e.engine
        );
        let day = first - first % 86_400_000;
        assert_eq!(
            rows(
                &r,
                "SELECT day_ms, ssid, sessions, clients, connected_ms, rx_bytes, failed_joins \
                 FROM agg_daily ORDER BY ssid"
            ),
            [
                format!("{day}|campus|1|1|{}|1000|2", 3_565 * S),
                format!("{day}|guest|0|0|0|0|1"),
            ],
            "{}",
            e.engine
        );
    }
}

/// Retention never deletes what a pending mark still needs; the trends outlive the sessions
/// they were derived from, and a late message about a pruned period leaves them as they were.
#[test]
fn trends_outlive_the_sessions_and_retention_waits_for_marks() {
    for (e, mut w) in writers("retention") {
        let mut a0 = Agent::new("ap0");
        let t = T0 + 3_600 * S;
        a0.emit(t, start(1, 1, "campus", 2412, None));
        a0.emit(t + 600 * S, stop(1, 500));
        let msgs = [status("ap0", "acme", T0), a0.flush(t + 700 * S).unwrap()];
        apply(&mut w, &msgs.iter().collect::<Vec<_>>());
        // Not derived yet: a retention pass past the session keeps it.
        let cutoff = t as i64 + 86_400_000;
        let rep = wifisess_collector::jobs::prune(&mut w, cutoff).unwrap();
        assert_eq!(rep.sessions, 0, "{}: pruned before its trends", e.engine);
        settle(&mut w);
        let rep = wifisess_collector::jobs::prune(&mut w, cutoff).unwrap();
        assert_eq!(rep.sessions, 1, "{}", e.engine);
        let r = e.read();
        let trend = "SELECT ssid, sessions, clients, connected_ms FROM agg_daily";
        assert_eq!(rows(&r, trend), ["campus|1|1|600000"], "{}", e.engine);
        assert_eq!(rows(&r, "SELECT count(*) FROM agg_clients"), ["1"]);
        // A late copy of the session's messages (redelivered after it was pruned) changes
        // the raw rows again, but not the settled trends.
        apply(&mut w, &[&msgs[1]]);
        settle(&mut w);
        assert_eq!(rows(&r, trend), ["campus|1|1|600000"], "{}", e.engine);
        // Aggregate retention removes them in the end.
        let n = wifisess_collector::jobs::prune_aggregates(&mut w, cutoff + 86_400_000).unwrap();
        assert!(n >= 3, "{}: {n}", e.engine);
        assert_eq!(rows(&r, trend), Vec::<String>::new());
    }
}
