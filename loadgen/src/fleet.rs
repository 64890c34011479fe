//! The simulated fleet behind the agent's own outbox: every device numbers and batches its
//! events with [`wifisess_agent::outbox::Outbox`] exactly as `wifisess-agent` does, on a
//! simulated clock. Pure: no I/O, and the simulated time only advances when the caller says
//! so, so the batches (their sizes and bytes) do not depend on how fast they are published.

use wifisess_agent::outbox::{Outbox, OutboxConfig, Outgoing};
use wifisess_agent::session::Timed;
use wifisess_wire::{encode_status, InterfaceInfo, Stamp, Status};

use crate::sim::{bssid, Mix, Sim, SimConfig, SSIDS};

/// Batches are looked for every this many simulated ms (the agent wakes on `batch_ms`
/// deadlines; 10 ms granularity keeps batching within 10 % of that).
pub const TICK_MS: u64 = 10;

/// The stream's shape.
#[derive(Debug, Clone)]
pub struct FleetConfig {
    /// Devices, clients, churn, seed.
    pub sim: SimConfig,
    /// Events to generate in all.
    pub events: u64,
    /// Simulated events per second (all devices together): sets the simulated clock.
    pub rate: f64,
    /// The agent outbox settings (`batch_ms` etc.).
    pub outbox: OutboxConfig,
}

/// A batch ready to publish.
#[derive(Debug)]
pub struct Ready {
    /// Device index.
    pub device: usize,
    /// The outbox's batch (id, CBOR payload, event count).
    pub out: Outgoing,
}

/// The fleet. See the module documentation.
pub struct Fleet {
    cfg: FleetConfig,
    /// The workload model.
    pub sim: Sim,
    outboxes: Vec<Outbox>,
    /// Devices holding events (pending or in flight).
    busy: Vec<bool>,
    busy_list: Vec<usize>,
    start_wall_ms: u64,
    generated: u64,
    next_tick_ms: u64,
}

impl Fleet {
    /// A fleet whose simulated clock starts at wall time `start_wall_ms`.
    pub fn new(cfg: FleetConfig, start_wall_ms: u64) -> Fleet {
        let sim = Sim::new(cfg.sim.clone(), start_wall_ms);
        let outboxes = sim
            .devices
            .iter()
            .map(|d| Outbox::new(cfg.outbox, d.epoch, d.boot_id))
            .collect();
        let n = sim.devices.len();
        Fleet {
            cfg,
            sim,
            outboxes,
            busy: vec![false; n],
            busy_list: Vec::new(),
            start_wall_ms,
            generated: 0,
            next_tick_ms: TICK_MS,
        }
    }

    /// Simulated ms since the start (the outboxes' monotonic clock).
    pub fn now_ms(&self) -> u64 {
        (self.generated as f64 * 1000.0 / self.cfg.rate.max(1e-9)) as u64
    }

    /// Simulated ms of the next batch check.
    pub fn next_tick_ms(&self) -> u64 {
        self.next_tick_ms
    }

    /// Wall ms of the simulated start.
    pub fn start_wall_ms(&self) -> u64 {
        self.start_wall_ms
    }

    /// Events generated so far.
    pub fn generated(&self) -> u64 {
        self.generated
    }

    /// Whether every event has been generated.
    pub fn exhausted(&self) -> bool {
        self.generated >= self.cfg.events
    }

    /// Events generated, by kind.
    pub fn mix(&self) -> Mix {
        self.sim.mix
    }

    /// Events held by all outboxes (pending and in flight).
    pub fn held(&self) -> usize {
        self.busy_list
            .iter()
            .map(|&d| self.outboxes[d].depth())
            .sum()
    }

    /// The outbox of device `d` (for acks).
    pub fn outbox_mut(&mut self, d: usize) -> &mut Outbox {
        &mut self.outboxes[d]
    }

    /// Whether device `d`'s outbox is full enough that one more event could make it drop.
    pub fn near_full(&self, d: usize) -> bool {
        self.outboxes[d].depth() + 1 >= self.cfg.outbox.capacity
    }

    /// Generates events until the simulated clock reaches the next tick (or all are made).
    /// Returns `Err(device)` without generating if that device's outbox is nearly full
    /// (the caller waits for acknowledgements first: nothing is ever dropped).
    pub fn generate_until_tick(&mut self) -> Result<(), usize> {
        while !self.exhausted() && self.now_ms() < self.next_tick_ms {
            let wall = self.start_wall_ms + self.now_ms();
            let e = self.sim.next_event();
            let d = e.device;
            let dev = &self.sim.devices[d];
            let at = Stamp {
                wall_ms: wall,
                uptime_ms: wall - dev.booted_ms,
            };
            let mono = self.now_ms();
            self.outboxes[d].push(Timed { at, event: e.event }, true, mono);
            self.generated += 1;
            if !self.busy[d] {
                self.busy[d] = true;
                self.busy_list.push(d);
            }
            if self.near_full(d) {
                return Err(d);
            }
        }
        Ok(())
    }

    /// Hands every batch due at the current tick to `publish` (every pending one with
    /// `force`). `room(device)` says whether the device's connection can take one more
    /// publish now. Returns `false` if some device could not hand out all it had due (its
    /// connection or its own in-flight window was full): the caller waits for
    /// acknowledgements and calls again for the same tick, so batches never depend on speed.
    pub fn take_due(
        &mut self,
        force: bool,
        mut room: impl FnMut(usize) -> bool,
        mut publish: impl FnMut(&str, Ready),
    ) -> bool {
        let now = self.next_tick_ms;
        let window = self.cfg.outbox.max_in_flight.max(1);
        let mut complete = true;
        let mut i = 0;
        while i < self.busy_list.len() {
            let d = self.busy_list[i];
            let ob = &mut self.outboxes[d];
            if ob.depth() == 0 {
                self.busy[d] = false;
                self.busy_list.swap_remove(i);
                continue;
            }
            i += 1;
            let id = &self.sim.devices[d].id;
            loop {
                match ob.due_at() {
                    Some(t) if force || t <= now => {}
                    Some(_) => break,
                    None => {
                        // Window full: whatever may be pending waits for an ack (not for
                        // time). The outbox does not expose its pending count, so a full
                        // window always counts as blocked; an ack is never far away.
                        if ob.in_flight() >= window {
                            complete = false;
                        }
                        break;
                    }
                }
                if !room(d) {
                    complete = false;
                    break;
                }
                let Some(out) = ob.take_batch(id, now, true) else {
                    break;
                };
                publish(id, Ready { device: d, out });
            }
        }
        complete
    }

    /// Moves the tick on once everything due at it was handed out.
    pub fn advance_tick(&mut self) {
        self.next_tick_ms += TICK_MS;
    }

    /// The retained online status of device `d` at wall time `wall_ms`, encoded.
    pub fn status_payload(&self, d: usize, wall_ms: u64) -> Vec<u8> {
        let dev = &self.sim.devices[d];
        let ob = &self.outboxes[d];
        encode_status(&Status {
            device_id: dev.id.clone(),
            boot_id: dev.boot_id,
            agent_epoch: dev.epoch,
            online: true,
            graceful: false,
            wall_ms,
            uptime_ms: wall_ms - dev.booted_ms,
            clock_synced: true,
            agent_version: concat!("loadgen-", env!("CARGO_PKG_VERSION")).into(),
            name: Some(dev.name.clone()),
            organization: Some(dev.organization.clone()),
            group: Some(dev.group.clone()),
            interfaces: (0..2u8)
                .map(|r| InterfaceInfo {
                    ifname: format!("phy{r}-ap0"),
                    ifindex: 10 + u32::from(r),
                    bssid: bssid(d, r),
                    ssid: SSIDS[0].as_bytes().to_vec(),
                    freq_mhz: if r == 0 { 2437 } else { 5180 },
                })
                .collect(),
            published: ob.published(),
            dropped: ob.dropped(),
            reconnects: 0,
            outbox_depth: ob.depth() as u32,
            failed_joins: 0,
            tracker_overflow: 0,
            dropped_updates: 0,
            dropped_starts_stops: 0,
            spool_restored: 0,
        })
    }
}
