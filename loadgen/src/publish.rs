//! Publishing the fleet to a real broker: the devices share a few MQTT connections, each one
//! driven by the agent's own link task ([`wifisess_agent::run::publish::link::drive`]: connect,
//! reconnect with backoff, report `Up`/`Sent`/`Acked`/`Down`). Like the agent's publisher, a
//! batch's events leave its device's outbox only when the broker's PUBACK for the publish
//! that carried them arrives; after a lost connection they are re-sent.
//!
//! Topics as the agent's: `{prefix}/{device}/events` (QoS 1) and the retained online status
//! on `{prefix}/{device}/status` (QoS 1). Not simulated: the sync event after a connect, the
//! Last Will (one connection carries many devices).

use std::cell::RefCell;
use std::collections::{HashMap, VecDeque};
use std::time::Duration;

use anyhow::{bail, Context as _};
use rumqttc::{AsyncClient, MqttOptions, QoS};
use tokio::sync::mpsc;
use wifisess_agent::outbox::BatchId;
use wifisess_agent::run::publish::link::{drive, NetMsg};

use crate::fleet::{Fleet, FleetConfig, Ready};
use crate::now_ms;
use crate::sim::Mix;

/// Where and how to publish.
#[derive(Debug, Clone)]
pub struct PublishConfig {
    /// Broker host.
    pub host: String,
    /// Broker port.
    pub port: u16,
    /// Topic prefix (`wifisess/v1`).
    pub prefix: String,
    /// MQTT connections the devices share (device `i` uses connection `i % connections`).
    pub connections: usize,
    /// QoS 1 publishes in flight per connection (rumqttc's inflight window).
    pub inflight: u16,
    /// Follow the simulated clock in real time (else publish as fast as the broker acks).
    pub paced: bool,
    /// Give up after this long.
    pub timeout: Duration,
    /// The stream.
    pub fleet: FleetConfig,
}

/// What was sent, for the summary.
#[derive(Debug, Clone, Default)]
pub struct PublishReport {
    /// Devices simulated.
    pub devices: usize,
    /// Client slots per device.
    pub clients: usize,
    /// MQTT connections used.
    pub connections: usize,
    /// Events acknowledged by the broker.
    pub events: u64,
    /// Events by kind.
    pub mix: Mix,
    /// Event batches acknowledged (publishes on `…/events`).
    pub batches: u64,
    /// Status messages acknowledged.
    pub statuses: u64,
    /// Payload bytes of the acknowledged event batches.
    pub bytes: u64,
    /// Publishes made (re-sends after a reconnect included).
    pub publishes: u64,
    /// Connections lost and re-made.
    pub reconnects: u64,
    /// Wall ms of the first publish.
    pub first_publish_ms: i64,
    /// Wall ms of the last acknowledgement.
    pub last_ack_ms: i64,
    /// Simulated seconds the stream covers.
    pub simulated_s: f64,
}

impl PublishReport {
    /// Acknowledged events per second from the first publish to the last acknowledgement.
    pub fn events_per_s(&self) -> f64 {
        per_s(self.events, self.first_publish_ms, self.last_ack_ms)
    }
}

/// `n / (b − a)` with the times in ms.
pub fn per_s(n: u64, a_ms: i64, b_ms: i64) -> f64 {
    n as f64 * 1000.0 / ((b_ms - a_ms).max(1) as f64)
}

#[derive(Debug, Clone, Copy)]
enum Carried {
    Batch {
        device: usize,
        id: BatchId,
        events: usize,
        bytes: usize,
    },
    Status,
}

struct Conn {
    client: Option<AsyncClient>,
    /// Publishes handed to rumqttc whose packet id is not known yet, in order.
    awaiting: VecDeque<Carried>,
    /// Publishes written, by packet id, until their PUBACK.
    by_pkid: HashMap<u16, Carried>,
    ever_up: bool,
}

impl Conn {
    fn outstanding(&self) -> usize {
        self.awaiting.len() + self.by_pkid.len()
    }
}

/// Publishes handed to one connection's request queue (64 in the agent's link) that rumqttc
/// has not reported written yet: the queue only drains when the link task runs, and this
/// single-threaded publisher hands out many publishes before it yields.
const QUEUE_ROOM: usize = 56;

struct State {
    conns: Vec<Conn>,
    /// The first publish that could not be queued (the run stops).
    failed: Option<String>,
    /// Most publishes outstanding (queued or unacknowledged) per connection: rumqttc's
    /// window plus part of its request queue.
    limit: usize,
    prefix: String,
    rep: PublishReport,
}

impl State {
    fn room(&self, device: usize) -> bool {
        let c = &self.conns[device % self.conns.len()];
        c.client.is_some() && c.outstanding() < self.limit && c.awaiting.len() < QUEUE_ROOM
    }

    fn send(&mut self, conn: usize, topic: String, retain: bool, payload: Vec<u8>, what: Carried) {
        let c = &mut self.conns[conn];
        let Some(client) = &c.client else { return };
        match client.try_publish(topic, QoS::AtLeastOnce, retain, payload) {
            Ok(()) => {
                c.awaiting.push_back(what);
                self.rep.publishes += 1;
                if self.rep.first_publish_ms == 0 {
                    self.rep.first_publish_ms = now_ms();
                }
            }
            // Only if the link task is gone or its queue is full (`room` prevents that). The
            // outbox would wait forever for this batch's ack: stop with an error instead.
            Err(e) => {
                self.failed
                    .get_or_insert(format!("publish not queued on connection {conn}: {e}"));
            }
        }
    }

    fn handle(&mut self, k: usize, msg: NetMsg, fleet: &mut Fleet) {
        let n = self.conns.len();
        let c = &mut self.conns[k];
        match msg {
            NetMsg::Up(client) => {
                if c.ever_up {
                    self.rep.reconnects += 1;
                }
                c.ever_up = true;
                c.client = Some(client);
            }
            NetMsg::Sent(pkid) => match c.awaiting.pop_front() {
                Some(what) => {
                    if let Carried::Batch { device, id, .. } = what {
                        fleet.outbox_mut(device).sent(id, pkid);
                    }
                    c.by_pkid.insert(pkid, what);
                }
                None => eprintln!("wifisess-loadgen: connection {k}: unexpected publish {pkid}"),
            },
            NetMsg::Acked(pkid) => {
                match c.by_pkid.remove(&pkid) {
                    Some(Carried::Batch {
                        device,
                        events,
                        bytes,
                        ..
                    }) => {
                        let released = fleet.outbox_mut(device).acked(pkid);
                        debug_assert_eq!(released, events);
                        self.rep.events += released as u64;
                        self.rep.batches += 1;
                        self.rep.bytes += bytes as u64;
                    }
                    Some(Carried::Status) => self.rep.statuses += 1,
                    None => {}
                }
                self.rep.last_ack_ms = now_ms();
            }
            NetMsg::Down(why) => {
                eprintln!("wifisess-loadgen: connection {k} lost: {why}");
                c.client = None;
                c.awaiting.clear();
                c.by_pkid.clear();
                for d in (k..fleet.sim.devices.len()).step_by(n) {
                    fleet.outbox_mut(d).disconnected();
                }
            }
            NetMsg::Closed => {}
        }
    }

    fn publish_batch(&mut self, device_id: &str, r: Ready) {
        let topic = format!("{}/{}/events", self.prefix, device_id);
        let what = Carried::Batch {
            device: r.device,
            id: r.out.id,
            events: r.out.events,
            bytes: r.out.payload.len(),
        };
        let conn = r.device % self.conns.len();
        self.send(conn, topic, false, r.out.payload, what);
    }
}

/// Publishes the configured stream and returns what the broker acknowledged.
///
/// # Errors
/// The broker is unreachable, or the run exceeds its timeout.
pub async fn run(cfg: PublishConfig) -> anyhow::Result<PublishReport> {
    let deadline = tokio::time::Instant::now() + cfg.timeout;
    let k = cfg.connections.clamp(1, cfg.fleet.sim.devices.max(1));
    let (tx, mut rx) = mpsc::unbounded_channel::<(usize, NetMsg)>();
    let mut tasks = Vec::new();
    let pid = std::process::id();
    for i in 0..k {
        let mut o = MqttOptions::new(format!("wifisess-loadgen-{pid}-{i}"), &cfg.host, cfg.port);
        o.set_clean_session(true)
            .set_keep_alive(Duration::from_secs(30))
            .set_max_packet_size(256 * 1024, 256 * 1024)
            .set_inflight(cfg.inflight.max(1));
        let (ltx, mut lrx) = mpsc::unbounded_channel();
        let addr = format!("mqtt://{}:{}", cfg.host, cfg.port);
        tasks.push(tokio::spawn(drive(o, addr, ltx, 0x1234_5678 ^ i as u32)));
        let tx = tx.clone();
        tasks.push(tokio::spawn(async move {
            while let Some(m) = lrx.recv().await {
                if tx.send((i, m)).is_err() {
                    return;
                }
            }
        }));
    }
    drop(tx);
    let mut fleet = Fleet::new(cfg.fleet.clone(), now_ms() as u64);
    let st = RefCell::new(State {
        conns: (0..k)
            .map(|_| Conn {
                client: None,
                awaiting: VecDeque::new(),
                by_pkid: HashMap::new(),
                ever_up: false,
            })
            .collect(),
        limit: usize::from(cfg.inflight.max(1)) + QUEUE_ROOM,
        failed: None,
        prefix: cfg.prefix.clone(),
        rep: PublishReport {
            devices: fleet.sim.devices.len(),
            clients: cfg.fleet.sim.clients,
            connections: k,
            ..PublishReport::default()
        },
    });

    macro_rules! wait_net {
        () => {
            if let Some(e) = st.borrow_mut().failed.take() {
                bail!("{e}");
            }
            match tokio::time::timeout_at(deadline, rx.recv()).await {
                Ok(Some((i, m))) => {
                    st.borrow_mut().handle(i, m, &mut fleet);
                    while let Ok((i, m)) = rx.try_recv() {
                        st.borrow_mut().handle(i, m, &mut fleet);
                    }
                }
                Ok(None) => bail!("the MQTT link tasks ended"),
                Err(_) => bail!(
                    "timed out after {:?} ({} of {} events acknowledged)",
                    cfg.timeout,
                    st.borrow().rep.events,
                    cfg.fleet.events
                ),
            }
        };
    }

    // Every connection up first, so the first publish starts the clock of a full stream.
    while st.borrow().conns.iter().any(|c| c.client.is_none()) {
        wait_net!();
    }
    // The retained online status of every device (name, organization, group).
    let wall = now_ms() as u64;
    for d in 0..fleet.sim.devices.len() {
        while !st.borrow().room(d) {
            wait_net!();
        }
        let topic = format!("{}/{}/status", cfg.prefix, fleet.sim.devices[d].id);
        let payload = fleet.status_payload(d, wall);
        st.borrow_mut()
            .send(d % k, topic, true, payload, Carried::Status);
    }
    let real_start = tokio::time::Instant::now();
    loop {
        while let Ok((i, m)) = rx.try_recv() {
            st.borrow_mut().handle(i, m, &mut fleet);
        }
        if !fleet.exhausted() {
            if cfg.paced {
                let due = real_start + Duration::from_millis(fleet.next_tick_ms());
                if tokio::time::Instant::now() < due {
                    tokio::select! {
                        m = rx.recv() => if let Some((i, m)) = m {
                            st.borrow_mut().handle(i, m, &mut fleet);
                        },
                        _ = tokio::time::sleep_until(due) => {}
                    }
                    continue;
                }
            }
            if let Err(d) = fleet.generate_until_tick() {
                // A device's outbox is nearly full (tiny fleets at huge rates): publish
                // everything now and wait for acknowledgements, so nothing is dropped.
                while fleet.near_full(d) {
                    fleet.take_due(
                        true,
                        |d| st.borrow().room(d),
                        |id, r| st.borrow_mut().publish_batch(id, r),
                    );
                    wait_net!();
                }
                continue;
            }
            while !fleet.take_due(
                false,
                |d| st.borrow().room(d),
                |id, r| st.borrow_mut().publish_batch(id, r),
            ) {
                wait_net!();
            }
            fleet.advance_tick();
        } else {
            let complete = fleet.take_due(
                true,
                |d| st.borrow().room(d),
                |id, r| st.borrow_mut().publish_batch(id, r),
            );
            let statuses_left = st.borrow().rep.statuses < fleet.sim.devices.len() as u64;
            if complete && fleet.held() == 0 && !statuses_left {
                break;
            }
            wait_net!();
        }
    }
    let mut rep = st.into_inner().rep;
    rep.mix = fleet.mix();
    rep.simulated_s = fleet.now_ms() as f64 / 1000.0;
    for t in &tasks {
        t.abort();
    }
    Ok(rep)
}

/// A broker URL `mqtt://host:port` (or `host:port`) as host and port.
///
/// # Errors
/// Not of that form.
pub fn parse_broker(url: &str) -> anyhow::Result<(String, u16)> {
    let rest = url.strip_prefix("mqtt://").unwrap_or(url);
    let (h, p) = rest
        .rsplit_once(':')
        .with_context(|| format!("--broker {url:?}: expected mqtt://HOST:PORT"))?;
    let port = p
        .parse()
        .with_context(|| format!("--broker {url:?}: bad port {p:?}"))?;
    Ok((h.to_owned(), port))
}
