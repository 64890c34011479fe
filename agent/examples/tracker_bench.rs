//! Cost of the session tracker (`agent::session`, the pure state machine) per 1 000 inputs over
//! a realistic recorded mix, against two baselines measured in the same run on the same input:
//!
//! * `copy`: cloning each input (the station records, a dump's list), i.e. touching the data;
//! * `hashmap`: the least bookkeeping a tracker could do — a std `HashMap` keyed by
//!   (interface, MAC): insert on `NEW_STATION`, look up on a probe answer, remove on
//!   `DEL_STATION`, upsert every station of a dump.
//!
//! The mix is one simulated hour of an AP with two interfaces and N clients (default 30, 100,
//! 200): a station dump per interface every 10 s, clients leaving after 1–30 min and replaced by
//! new ones (WPA2: `NEW_STATION` unauthorized, authorized 30–80 ms later, found by the tracker's
//! probes), 5 % of leaves rejoining within 3 s (flap merge), 5 % of joins with a wrong
//! passphrase (never authorized), interim updates every 300 s, and a timer tick at each of the
//! tracker's deadlines — the inputs `run` feeds it. The trace is recorded once, then replayed.
//!
//! `cargo run --release -p wifisess-agent --example tracker_bench [-- N...]`
//!
//! `--release` is the router profile (opt-level "z"); docs/BENCHMARKS.md has the figures.

use std::collections::{BinaryHeap, HashMap};
use std::hint::black_box;
use std::time::{Duration, Instant};

use heapless::{String as HString, Vec as HVec};
use wifisess_agent::session::{Input, Output, Tracker, TrackerConfig};
use wifisess_agent::station::{Iface, StationInfo};
use wifisess_wire::{BootId, Event, MacAddr, Stamp};

/// Wall clock minus uptime: 2026-01-01T00:00:00Z.
const EPOCH_MS: u64 = 1_767_225_600_000;
/// Uptime when the simulation starts (the AP has been up a while).
const T0_MS: u64 = 86_400_000;
const SIM_MS: u64 = 3_600_000;
const POLL_MS: u64 = 10_000;
const IFACES: [u32; 2] = [3, 4];

fn at(ms: u64) -> Stamp {
    Stamp {
        wall_ms: EPOCH_MS + ms,
        uptime_ms: ms,
    }
}

/// xorshift64*: deterministic, so every run replays the same trace.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next() % (hi - lo + 1)
    }
    fn percent(&mut self, p: u64) -> bool {
        self.next() % 100 < p
    }
}

/// A station in the simulated kernel.
#[derive(Clone)]
struct Sta {
    ifindex: u32,
    mac: MacAddr,
    assoc_ms: u64,
    /// When hostapd authorizes it; `None`: wrong passphrase, never.
    authorized_ms: Option<u64>,
    /// Bytes per second down and up.
    rate: (u64, u64),
}

impl Sta {
    fn info(&self, now: u64) -> StationInfo {
        let secs = now.saturating_sub(self.assoc_ms) / 1000;
        let (rx, tx) = (self.rate.0 * secs, self.rate.1 * secs);
        StationInfo {
            mac: self.mac,
            authorized: Some(self.authorized_ms.is_some_and(|a| now >= a)),
            connected_s: Some(secs as u32),
            assoc_at_boottime_ns: Some(self.assoc_ms * 1_000_000),
            inactive_ms: Some(40),
            rx_bytes: Some(rx),
            tx_bytes: Some(tx),
            rx_packets: Some((rx / 1000) as u32),
            tx_packets: Some((tx / 1000) as u32),
            signal_dbm: Some(-60),
            signal_avg_dbm: Some(-61),
            ..Default::default()
        }
    }
}

/// One recorded tracker input with the data it refers to.
#[derive(Clone)]
enum Step {
    Interfaces(Vec<Iface>),
    Dump(u32, Vec<StationInfo>),
    New(u32, StationInfo),
    Probed(u32, MacAddr, Option<StationInfo>),
    Del(u32, StationInfo),
    Tick,
}

impl Step {
    fn input(&self) -> Input<'_> {
        match self {
            Step::Interfaces(l) => Input::Interfaces(l),
            Step::Dump(i, s) => Input::Dump {
                ifindex: *i,
                stations: s,
            },
            Step::New(i, s) => Input::NewStation {
                ifindex: *i,
                station: s,
            },
            Step::Probed(i, mac, s) => Input::Probed {
                ifindex: *i,
                mac: *mac,
                station: s.as_ref(),
            },
            Step::Del(i, s) => Input::DelStation {
                ifindex: *i,
                station: s,
            },
            Step::Tick => Input::Tick,
        }
    }
}

/// What happens next in the simulated kernel.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Action {
    Dump(u32),
    /// A station (by index into the simulation's list) leaves.
    Leave(usize),
    /// A client joins `ifindex`: a new one, or (a flap) the one with this MAC again.
    Join(u32, Option<MacAddr>),
    Probe(u32, MacAddr),
}

struct Sim {
    rng: Rng,
    stas: Vec<Option<Sta>>,
    next_mac: u32,
    queue: BinaryHeap<std::cmp::Reverse<(u64, u64, Action)>>,
    order: u64,
}

impl Sim {
    fn at(&mut self, t: u64, a: Action) {
        self.order += 1;
        self.queue.push(std::cmp::Reverse((t, self.order, a)));
    }

    /// A new station on `ifindex` associating at `t` (reusing `mac` for a flap); schedules
    /// its leave. Returns its index.
    fn join(&mut self, ifindex: u32, mac: Option<MacAddr>, t: u64) -> usize {
        let mac = mac.unwrap_or_else(|| {
            self.next_mac += 1;
            let b = self.next_mac.to_be_bytes();
            MacAddr([0x02, 0xcc, b[0], b[1], b[2], b[3]])
        });
        let wrong_psk = self.rng.percent(5);
        let sta = Sta {
            ifindex,
            mac,
            assoc_ms: t,
            authorized_ms: (!wrong_psk).then(|| t + self.rng.range(30, 80)),
            rate: (
                self.rng.range(1_000, 1_000_000),
                self.rng.range(500, 200_000),
            ),
        };
        self.stas.push(Some(sta));
        let idx = self.stas.len() - 1;
        // A wrong passphrase gives up after ~2 s; a client stays 1–30 min.
        let stay = if wrong_psk {
            self.rng.range(1_500, 2_500)
        } else {
            self.rng.range(60_000, 1_800_000)
        };
        self.at(t + stay, Action::Leave(idx));
        idx
    }
}

/// Records one simulated hour with `n` clients.
fn record(n: usize) -> Vec<(u64, Step)> {
    let mut sim = Sim {
        rng: Rng(0x9e37_79b9_7f4a_7c15 ^ n as u64),
        stas: Vec::new(),
        next_mac: 0,
        queue: BinaryHeap::new(),
        order: 0,
    };
    let ifaces: Vec<Iface> = IFACES
        .iter()
        .map(|&i| Iface {
            ifindex: i,
            ifname: HString::try_from(if i == 3 { "phy0-ap0" } else { "phy1-ap0" }).unwrap(),
            bssid: MacAddr([0x94, 0x83, 0xc4, 0, 0, i as u8]),
            ssid: HVec::from_slice(b"Grand Hotel Central - Guests 5G!").unwrap(),
            freq_mhz: 5180,
        })
        .collect();
    let mut tracker = Tracker::new(config());
    let mut out = Vec::new();
    let mut steps = Vec::new();
    let mut feed = |steps: &mut Vec<(u64, Step)>, t: u64, step: Step, tr: &mut Tracker| {
        out.clear();
        tr.handle(step.input(), at(t), &mut out);
        steps.push((t, step));
        out.iter()
            .filter_map(|o| match o {
                Output::Probe { ifindex, mac } => Some((*ifindex, *mac)),
                Output::Event(_) => None,
            })
            .collect::<Vec<_>>()
    };
    feed(&mut steps, T0_MS, Step::Interfaces(ifaces), &mut tracker);
    // Clients already connected when the agent starts (associated up to 20 min ago).
    for k in 0..n {
        let back = sim.rng.range(1_000, 1_200_000);
        sim.join(IFACES[k % 2], None, T0_MS - back);
    }
    for (k, &i) in IFACES.iter().enumerate() {
        sim.at(T0_MS + 1 + k as u64, Action::Dump(i));
    }
    let end = T0_MS + SIM_MS;
    while let Some(&std::cmp::Reverse((t, _, action))) = sim.queue.peek() {
        let last = steps
            .last()
            .map_or((T0_MS, false), |(ms, s)| (*ms, matches!(s, Step::Tick)));
        if let Some(d) = tracker.next_deadline() {
            // A deadline already due gets one tick now (never two ticks in a row at one time).
            let d = d.max(last.0);
            if d < t && d <= end && !(last.1 && d == last.0) {
                for (i, mac) in feed(&mut steps, d, Step::Tick, &mut tracker) {
                    sim.at(d, Action::Probe(i, mac));
                }
                continue;
            }
        }
        if t > end {
            break;
        }
        sim.queue.pop();
        let step = match action {
            Action::Dump(i) => {
                sim.at(t + POLL_MS, Action::Dump(i));
                let list = sim
                    .stas
                    .iter()
                    .flatten()
                    .filter(|s| s.ifindex == i && s.assoc_ms <= t)
                    .map(|s| s.info(t))
                    .collect();
                Step::Dump(i, list)
            }
            Action::Leave(idx) => {
                let s = sim.stas[idx].take().expect("a station leaves once");
                // Replaced by a new client soon, or (5 %) the same one rejoins within 3 s.
                if s.authorized_ms.is_some() && sim.rng.percent(5) {
                    let d = sim.rng.range(500, 3_000);
                    sim.at(t + d, Action::Join(s.ifindex, Some(s.mac)));
                } else {
                    let d = sim.rng.range(0, 5_000);
                    sim.at(t + d, Action::Join(s.ifindex, None));
                }
                Step::Del(s.ifindex, s.info(t))
            }
            Action::Join(i, mac) => {
                let idx = sim.join(i, mac, t);
                let info = sim.stas[idx].as_ref().unwrap().info(t);
                Step::New(i, info)
            }
            Action::Probe(i, mac) => {
                let st = sim
                    .stas
                    .iter()
                    .flatten()
                    .find(|s| s.ifindex == i && s.mac == mac)
                    .map(|s| s.info(t));
                Step::Probed(i, mac, st)
            }
        };
        for (i, mac) in feed(&mut steps, t, step, &mut tracker) {
            sim.at(t, Action::Probe(i, mac));
        }
    }
    steps
}

/// What a trace holds: inputs per kind and the session events the tracker makes of it.
#[derive(Default, Debug)]
struct Mix {
    inputs: usize,
    dumps: usize,
    dumped_stations: usize,
    new: usize,
    probed: usize,
    del: usize,
    ticks: usize,
    starts: usize,
    updates: usize,
    stops: usize,
    probes: usize,
}

/// The settings the benchmark runs with: 10 s grace, 300 s interim (the SPEC's defaults).
fn config() -> TrackerConfig {
    TrackerConfig {
        boot_id: BootId([0x11; 16]),
        rejoin_grace_ms: 10_000,
        interim_ms: 300_000,
        mac_key: None,
    }
}

fn mix(steps: &[(u64, Step)], cfg: &TrackerConfig) -> Mix {
    let mut m = Mix {
        inputs: steps.len(),
        ..Mix::default()
    };
    for (_, s) in steps {
        match s {
            Step::Dump(_, l) => {
                m.dumps += 1;
                m.dumped_stations += l.len();
            }
            Step::New(..) => m.new += 1,
            Step::Probed(..) => m.probed += 1,
            Step::Del(..) => m.del += 1,
            Step::Tick => m.ticks += 1,
            Step::Interfaces(_) => {}
        }
    }
    let mut t = Tracker::new(cfg.clone());
    let mut out = Vec::new();
    for (ms, s) in steps {
        out.clear();
        t.handle(s.input(), at(*ms), &mut out);
        for o in &out {
            match o {
                Output::Probe { .. } => m.probes += 1,
                Output::Event(e) => match e.event {
                    Event::Start(_) => m.starts += 1,
                    Event::Update(_) => m.updates += 1,
                    Event::Stop(_) => m.stops += 1,
                    _ => {}
                },
            }
        }
    }
    m
}

/// Replays `steps` into a fresh tracker; returns the time spent in `handle`.
fn run_tracker(steps: &[(u64, Step)], cfg: &TrackerConfig) -> Duration {
    let mut t = Box::new(Tracker::new(cfg.clone()));
    let mut out = Vec::with_capacity(256);
    let t0 = Instant::now();
    for (ms, s) in steps {
        out.clear();
        t.handle(black_box(s.input()), at(*ms), &mut out);
        black_box(&out);
    }
    t0.elapsed()
}

/// Baseline: clone every input's data.
fn run_copy(steps: &[(u64, Step)]) -> Duration {
    let t0 = Instant::now();
    for (ms, s) in steps {
        black_box((black_box(*ms), black_box(s).clone()));
    }
    t0.elapsed()
}

/// Baseline: a HashMap of the same keys, the least bookkeeping a tracker could do.
fn run_hashmap(steps: &[(u64, Step)]) -> Duration {
    let mut m: HashMap<(u32, MacAddr), (u64, u64, u64)> = HashMap::new();
    let t0 = Instant::now();
    for (ms, s) in black_box(steps) {
        match s {
            Step::New(i, st) => {
                m.insert((*i, st.mac), (*ms, 0, 0));
            }
            Step::Probed(i, mac, st) => {
                if let (Some(e), Some(st)) = (m.get_mut(&(*i, *mac)), st) {
                    e.1 = st.rx_bytes.unwrap_or(0);
                }
            }
            Step::Del(i, st) => {
                black_box(m.remove(&(*i, st.mac)));
            }
            Step::Dump(i, list) => {
                for st in list {
                    let e = m.entry((*i, st.mac)).or_insert((*ms, 0, 0));
                    e.1 = st.rx_bytes.unwrap_or(0);
                    e.2 = st.tx_bytes.unwrap_or(0);
                }
            }
            Step::Interfaces(_) | Step::Tick => {}
        }
    }
    black_box(&m);
    t0.elapsed()
}

/// Runs each of `fs` in turn, round after round, until 2 s have passed (at least 10 rounds), so
/// that load from other processes hits every variant alike; per variant the fastest pass and
/// the median.
fn bench(fs: &mut [&mut dyn FnMut() -> Duration]) -> Vec<(Duration, Duration)> {
    let mut v: Vec<Vec<Duration>> = vec![Vec::new(); fs.len()];
    let start = Instant::now();
    while v[0].len() < 10 || start.elapsed() < Duration::from_secs(2) {
        for (f, times) in fs.iter_mut().zip(&mut v) {
            times.push(f());
        }
    }
    v.into_iter()
        .map(|mut t| {
            t.sort_unstable();
            (t[0], t[t.len() / 2])
        })
        .collect()
}

fn main() {
    let ns: Vec<usize> = std::env::args()
        .skip(1)
        .map(|a| a.parse().expect("client counts, e.g. 30 100 200"))
        .collect();
    let ns = if ns.is_empty() {
        vec![30, 100, 200]
    } else {
        ns
    };
    let plain = config();
    let hmac = TrackerConfig {
        mac_key: Some(b"a 32-byte key for the benchmark!".to_vec()),
        ..plain.clone()
    };
    println!(
        "session tracker, one simulated hour per row, 2 interfaces; {} build; best (median) of ≥ 10 interleaved passes",
        if cfg!(debug_assertions) { "debug" } else { "release" }
    );
    println!();
    println!("| clients | inputs | dumps (stations/dump) | new / probed / del / tick | starts / updates / stops | copy ns/input | hashmap ns/input | tracker ns/input | tracker per 1 000 inputs | tracker / hashmap | tracker / copy | tracker, mac_privacy hmac, ns/input |");
    println!("|---:|---:|---:|---|---|---:|---:|---:|---:|---:|---:|---:|");
    for n in ns {
        let steps = record(n);
        let m = mix(&steps, &plain);
        let per = |d: Duration| d.as_nanos() as f64 / m.inputs as f64;
        let r = bench(&mut [
            &mut || run_copy(&steps),
            &mut || run_hashmap(&steps),
            &mut || run_tracker(&steps, &plain),
            &mut || run_tracker(&steps, &hmac),
        ]);
        let [(copy, copy_med), (map, map_med), (tr, tr_med), (trh, trh_med)] = r[..] else {
            unreachable!("four variants")
        };
        println!(
            "| {n} | {} | {} ({:.0}) | {} / {} / {} / {} | {} / {} / {} | {:.0} ({:.0}) | {:.0} ({:.0}) | {:.0} ({:.0}) | {:.1} µs | {:.1}× | {:.1}× | {:.0} ({:.0}) |",
            m.inputs,
            m.dumps,
            m.dumped_stations as f64 / m.dumps as f64,
            m.new,
            m.probed,
            m.del,
            m.ticks,
            m.starts,
            m.updates,
            m.stops,
            per(copy),
            per(copy_med),
            per(map),
            per(map_med),
            per(tr),
            per(tr_med),
            per(tr), // ns per input = µs per 1 000 inputs
            per(tr) / per(map),
            per(tr) / per(copy),
            per(trh),
            per(trh_med),
        );
        let events = (m.starts + m.updates + m.stops) as f64;
        eprintln!(
            "  {n} clients: {:.0} ns per session event published ({} events), {:.0} ns per dumped station-equivalent; probes asked {}",
            tr.as_nanos() as f64 / events,
            events,
            tr.as_nanos() as f64 / (m.dumped_stations + m.new + m.probed + m.del) as f64,
            m.probes
        );
    }
}
