//! The simulated fleet: N access points with M client slots each, churning. Pure and
//! deterministic: the same [`SimConfig`] (seed included) gives the same events in the same
//! order, so every benchmark of one run (broker drain, collector, raw SQLite) sees one stream.
//!
//! Each step picks a device and one of its slots at random: an empty slot starts a session;
//! an occupied one stops with probability `churn`, else reports interim counters. In the
//! steady state a fraction `1 / (1 + churn)` of the slots is occupied.

use wifisess_wire::{BootId, Event, MacAddr, SessionId, Start, Stop, StopReason, Update};

/// splitmix64: small, fast, reproducible; not cryptography.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator seeded with `seed`.
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        mix(self.0)
    }

    /// Uniform in `0..n` (`n > 0`).
    pub fn below(&mut self, n: u64) -> u64 {
        ((u128::from(self.next_u64()) * u128::from(n)) >> 64) as u64
    }

    /// Uniform in `[0, 1)`.
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// The splitmix64 finaliser: a stateless 64-bit hash.
pub fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// The shape of the fleet.
#[derive(Debug, Clone)]
pub struct SimConfig {
    /// Access points.
    pub devices: usize,
    /// Client slots per access point.
    pub clients: usize,
    /// Probability that a step on an occupied slot stops the session (else an update).
    pub churn: f64,
    /// Seed of everything random.
    pub seed: u64,
    /// Device ids are this prefix and a 5-digit number (`lg-00042`).
    pub device_prefix: String,
    /// Organizations the devices are spread over (device i: organization `i % orgs`).
    pub orgs: usize,
    /// Groups the devices are spread over (device i: group `i % groups`).
    pub groups: usize,
}

/// SSIDs an access point serves (the first is 32 bytes, the size budget's realistic case).
pub const SSIDS: [&str; 3] = ["Campus-Staff-Network-5GHz-Bldg-A", "eduroam", "Guest-WiFi"];

/// One access point.
#[derive(Debug, Clone)]
pub struct Device {
    /// Device id (topic and payloads).
    pub id: String,
    /// Human name announced in its status.
    pub name: String,
    /// Organization announced in its status.
    pub organization: String,
    /// Group announced in its status.
    pub group: String,
    /// Kernel boot id.
    pub boot_id: BootId,
    /// Agent run epoch.
    pub epoch: u32,
    /// Wall ms at which it booted (uptime = wall − this).
    pub booted_ms: u64,
    slots: Vec<Option<Client>>,
    sessions: u64,
}

/// One associated client.
#[derive(Debug, Clone)]
struct Client {
    id: SessionId,
    mac: MacAddr,
    radio: u8,
    ssid: u8,
    rx_bytes: u64,
    tx_bytes: u64,
    signal: i8,
}

impl Client {
    fn packets(bytes: u64) -> u64 {
        bytes / 700 + 1
    }
}

/// How many events of each kind were generated.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Mix {
    /// Session starts.
    pub starts: u64,
    /// Interim updates.
    pub updates: u64,
    /// Session stops.
    pub stops: u64,
}

impl Mix {
    /// All events.
    pub fn total(&self) -> u64 {
        self.starts + self.updates + self.stops
    }
}

/// The fleet. See the module documentation.
#[derive(Debug, Clone)]
pub struct Sim {
    cfg: SimConfig,
    /// The access points, index = device number.
    pub devices: Vec<Device>,
    rng: Rng,
    /// Events generated so far, by kind.
    pub mix: Mix,
}

/// One generated event of device `device` at wall time `wall_ms`.
#[derive(Debug, Clone)]
pub struct SimEvent {
    /// Index into [`Sim::devices`].
    pub device: usize,
    /// The event (seq 0 and offset 0: the outbox numbers it, the batch places it).
    pub event: Event,
}

impl Sim {
    /// A fleet whose devices booted a few days before `now_ms`, all slots empty.
    pub fn new(cfg: SimConfig, now_ms: u64) -> Sim {
        let mut rng = Rng::new(cfg.seed);
        let devices = (0..cfg.devices)
            .map(|i| {
                let mut boot = [0u8; 16];
                boot[..8].copy_from_slice(&rng.next_u64().to_be_bytes());
                boot[8..].copy_from_slice(&rng.next_u64().to_be_bytes());
                let group = i % cfg.groups.max(1);
                Device {
                    id: device_id(&cfg.device_prefix, i),
                    name: format!("AP {i}"),
                    organization: format!("org-{:02}", group % cfg.orgs.max(1)),
                    group: format!("group-{group:03}"),
                    boot_id: BootId(boot),
                    epoch: rng.next_u64() as u32,
                    booted_ms: now_ms.saturating_sub(86_400_000 + rng.below(30 * 86_400_000)),
                    slots: vec![None; cfg.clients.max(1)],
                    sessions: 0,
                }
            })
            .collect();
        Sim {
            cfg,
            devices,
            rng,
            mix: Mix::default(),
        }
    }

    /// The configuration.
    pub fn config(&self) -> &SimConfig {
        &self.cfg
    }

    /// The next event (the caller decides when it happens).
    pub fn next_event(&mut self) -> SimEvent {
        let d = self.rng.below(self.devices.len() as u64) as usize;
        let k = self.rng.below(self.devices[d].slots.len() as u64) as usize;
        let r = self.rng.next_u64();
        let stop = self.rng.unit() < self.cfg.churn;
        let dev = &mut self.devices[d];
        let event = match dev.slots[k].take() {
            None => {
                dev.sessions += 1;
                let h = mix(r ^ dev.sessions.rotate_left(32) ^ d as u64);
                let mut mac = [0u8; 6];
                mac.copy_from_slice(&h.to_be_bytes()[2..]);
                mac[0] &= 0xfe; // unicast
                let c = Client {
                    id: SessionId(mix(h ^ 0x5e55_1011)),
                    mac: MacAddr(mac),
                    radio: (r & 1) as u8,
                    ssid: ((r >> 1) % SSIDS.len() as u64) as u8,
                    rx_bytes: 0,
                    tx_bytes: 0,
                    signal: -40 - ((r >> 8) % 45) as i8,
                };
                let e = Event::Start(Start {
                    seq: 0,
                    at: Default::default(),
                    id: c.id,
                    mac: c.mac,
                    ifname: format!("phy{}-ap0", c.radio),
                    ssid: SSIDS[usize::from(c.ssid)].as_bytes().to_vec(),
                    bssid: bssid(d, c.radio),
                    freq_mhz: if c.radio == 0 { 2437 } else { 5180 },
                    age_ms: 50 + (r >> 16) % 1500,
                    signal_dbm: Some(c.signal),
                    hostname: None,
                });
                dev.slots[k] = Some(c);
                self.mix.starts += 1;
                e
            }
            Some(mut c) => {
                // Gigabyte-scale cumulative counters: up to ~64 MB down, ~8 MB up per step.
                c.tx_bytes += (r >> 20) % (64 << 20);
                c.rx_bytes += (r >> 12) % (8 << 20);
                let inactive = Some(((r >> 40) % 20_000) as u32);
                let signal = Some(c.signal - ((r >> 50) % 5) as i8);
                if stop {
                    self.mix.stops += 1;
                    Event::Stop(Stop {
                        seq: 0,
                        at: Default::default(),
                        id: c.id,
                        reason: if r.is_multiple_of(10) {
                            StopReason::Vanished
                        } else {
                            StopReason::Left
                        },
                        age_ms: (r >> 24) % 100,
                        rx_bytes: c.rx_bytes,
                        tx_bytes: c.tx_bytes,
                        rx_packets: Client::packets(c.rx_bytes),
                        tx_packets: Client::packets(c.tx_bytes),
                        signal_avg_dbm: signal,
                        inactive_ms: inactive,
                    })
                } else {
                    self.mix.updates += 1;
                    let e = Event::Update(Update {
                        seq: 0,
                        at: Default::default(),
                        id: c.id,
                        rx_bytes: c.rx_bytes,
                        tx_bytes: c.tx_bytes,
                        rx_packets: Client::packets(c.rx_bytes),
                        tx_packets: Client::packets(c.tx_bytes),
                        signal_avg_dbm: signal,
                        inactive_ms: inactive,
                        hostname: None,
                    });
                    dev.slots[k] = Some(c);
                    e
                }
            }
        };
        SimEvent { device: d, event }
    }
}

/// The id of device number `i`.
pub fn device_id(prefix: &str, i: usize) -> String {
    format!("{prefix}{i:05}")
}

/// The BSSID of radio `radio` of device `d` (locally administered).
pub fn bssid(d: usize, radio: u8) -> MacAddr {
    let b = (d as u32).to_be_bytes();
    MacAddr([0x02, 0x5e, b[1], b[2], b[3], radio])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(seed: u64) -> SimConfig {
        SimConfig {
            devices: 10,
            clients: 5,
            churn: 0.1,
            seed,
            device_prefix: "t-".into(),
            orgs: 2,
            groups: 3,
        }
    }

    #[test]
    fn same_seed_same_stream() {
        let mut a = Sim::new(cfg(7), 1_700_000_000_000);
        let mut b = Sim::new(cfg(7), 1_700_000_000_000);
        for _ in 0..2_000 {
            let (x, y) = (a.next_event(), b.next_event());
            assert_eq!((x.device, x.event), (y.device, y.event));
        }
        assert_eq!(a.mix, b.mix);
        assert_eq!(a.mix.total(), 2_000);
    }

    #[test]
    fn sessions_start_before_they_update_or_stop() {
        let mut s = Sim::new(cfg(1), 1_700_000_000_000);
        let mut open = std::collections::HashSet::new();
        for _ in 0..5_000 {
            let e = s.next_event();
            match e.event {
                Event::Start(x) => assert!(open.insert((e.device, x.id))),
                Event::Update(x) => assert!(open.contains(&(e.device, x.id))),
                Event::Stop(x) => assert!(open.remove(&(e.device, x.id))),
                _ => unreachable!(),
            }
        }
        assert!(s.mix.stops > 0 && s.mix.updates > s.mix.starts);
    }
}
