//! Publishing over MQTT (rumqttc): events from the [`Outbox`] on `{prefix}/{device}/events`
//! (QoS 1), the retained [`Status`] on `{prefix}/{device}/status` (QoS 1, Last Will offline).
//!
//! The [`Publisher`] owns the outbox and the client handle; the connection itself is owned by
//! one task ([`link::drive`]) that reports [`NetMsg`]s in order. The publisher matches each
//! `Sent(pkid)` to its publishes in the order it made them, so every PUBACK releases exactly
//! the events of the publish it acknowledges.

pub mod link;
#[cfg(feature = "tls")]
mod tls;

use std::collections::VecDeque;
use std::time::Duration;

use crate::error::Context as _;
use rumqttc::{AsyncClient, LastWill, MqttOptions, QoS};
use tokio::sync::mpsc::{unbounded_channel, UnboundedReceiver};
use tokio::task::JoinHandle;
use wifisess_wire::{encode_status, BootId, Status};

pub use link::NetMsg;

use super::source::SourceInfo;
use crate::clock::Now;
use crate::config::Config;
use crate::outbox::{BatchId, Outbox};
use crate::session::Timed;

/// Who this agent is, for the batches and the status.
#[derive(Clone, Debug)]
pub struct Identity {
    /// Device id (topic and messages).
    pub device_id: String,
    /// Kernel boot id.
    pub boot_id: BootId,
    /// This run's epoch.
    pub epoch: u32,
    /// `name` option.
    pub name: Option<String>,
    /// `organization` option.
    pub organization: Option<String>,
    /// `group` option.
    pub group: Option<String>,
}

/// What a publish in flight carried (to match `Sent(pkid)` in order).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Carried {
    Batch(BatchId),
    Status,
    Offline,
}

/// The MQTT publisher. See the module documentation.
pub struct Publisher {
    id: Identity,
    events_topic: String,
    status_topic: String,
    outbox: Outbox,
    rx: UnboundedReceiver<NetMsg>,
    /// The connection task (`None` only while [`Publisher::start`] builds the publisher: a
    /// placeholder task would be one more task type in the router build).
    task: Option<JoinHandle<()>>,
    client: Option<AsyncClient>,
    /// Publishes made on the current connection whose packet id is not known yet, in order.
    awaiting: VecDeque<Carried>,
    offline_pkid: Option<u16>,
    offline_acked: bool,
    closed: bool,
    connects: u64,
}

/// The MQTT options for `cfg`: clean session, keep-alive 30 s, the offline Last Will,
/// credentials and (feature `tls`) TLS.
///
/// # Errors
/// No broker configured, `mqtts://` without the `tls` feature, unreadable TLS files.
pub fn mqtt_options(
    cfg: &Config,
    will: Vec<u8>,
    status_topic: &str,
) -> crate::error::Result<MqttOptions> {
    let broker = cfg
        .broker
        .as_ref()
        .context("option broker: not set (UCI option broker, WIFISESS_BROKER or --broker)")?;
    let mut o = MqttOptions::new(
        format!("wifisess-{}", cfg.device_id),
        broker.host.clone(),
        broker.port,
    );
    o.set_clean_session(true)
        .set_keep_alive(Duration::from_secs(30))
        .set_max_packet_size(64 * 1024, 64 * 1024)
        .set_inflight(32)
        .set_last_will(LastWill::new(status_topic, will, QoS::AtLeastOnce, true));
    if let Some(u) = &cfg.username {
        o.set_credentials(u.clone(), cfg.password.clone().unwrap_or_default());
    }
    if broker.tls {
        #[cfg(feature = "tls")]
        o.set_transport(tls::transport(cfg)?);
        #[cfg(not(feature = "tls"))]
        return Err(crate::error::Error::msg(format_args!(
            "option broker: {broker} needs TLS, but this agent was built without the tls feature"
        )));
    }
    Ok(o)
}

impl Publisher {
    /// Starts the connection task (it connects in the background) for `cfg`.
    ///
    /// # Errors
    /// See [`mqtt_options`].
    pub fn start(
        cfg: &Config,
        id: Identity,
        outbox: Outbox,
        seed: u32,
        now: &Now,
    ) -> crate::error::Result<Publisher> {
        let base = format!("{}/{}", cfg.topic_prefix, cfg.device_id);
        let status_topic = format!("{base}/status");
        let mut p = Publisher {
            id,
            events_topic: format!("{base}/events"),
            status_topic,
            outbox,
            rx: unbounded_channel().1,
            task: None,
            client: None,
            awaiting: VecDeque::new(),
            offline_pkid: None,
            offline_acked: false,
            closed: false,
            connects: 0,
        };
        let will = encode_status(&p.status(false, false, now, &SourceInfo::default()));
        let opts = mqtt_options(cfg, will, &p.status_topic)?;
        let (tx, rx) = unbounded_channel();
        let addr = cfg
            .broker
            .as_ref()
            .map(|b| b.to_string())
            .unwrap_or_default();
        p.rx = rx;
        p.task = Some(tokio::spawn(link::drive(opts, addr, tx, seed)));
        Ok(p)
    }

    /// The outbox (for counters and tests).
    pub fn outbox(&self) -> &Outbox {
        &self.outbox
    }

    /// True while connected.
    pub fn is_connected(&self) -> bool {
        self.client.is_some()
    }

    /// Broker reconnects so far (connects after the first).
    pub fn reconnects(&self) -> u64 {
        self.connects.saturating_sub(1)
    }

    /// A status message now.
    pub fn status(&self, online: bool, graceful: bool, now: &Now, src: &SourceInfo) -> Status {
        Status {
            device_id: self.id.device_id.clone(),
            boot_id: self.id.boot_id,
            agent_epoch: self.id.epoch,
            online,
            graceful,
            wall_ms: now.wall_ms,
            uptime_ms: now.uptime_ms,
            clock_synced: now.synced,
            agent_version: env!("CARGO_PKG_VERSION").into(),
            name: self.id.name.clone(),
            organization: self.id.organization.clone(),
            group: self.id.group.clone(),
            interfaces: src.interfaces.clone(),
            published: self.outbox.published(),
            dropped: self.outbox.dropped(),
            reconnects: self.reconnects(),
            outbox_depth: u32::try_from(self.outbox.depth()).unwrap_or(u32::MAX),
            failed_joins: src.failed_joins,
            tracker_overflow: src.tracker_overflow,
            dropped_updates: self.outbox.dropped_updates(),
            dropped_starts_stops: self.outbox.dropped_starts_stops(),
            spool_restored: self.outbox.restored(),
        }
    }

    /// Numbers and queues an event (see [`Outbox::push`]) taken at `now`.
    pub fn push(&mut self, t: Timed, now: &Now) -> u64 {
        self.outbox.push(t, now.synced, now.uptime_ms)
    }

    /// When (uptime ms) [`Publisher::flush`] has a batch to send, while connected.
    pub fn due_at(&self) -> Option<u64> {
        self.client.as_ref()?;
        self.outbox.due_at()
    }

    /// Waits for the next message from the connection task (cancel-safe).
    pub async fn next(&mut self) -> Option<NetMsg> {
        self.rx.recv().await
    }

    /// Connected: publishes the online status, queues `sync` (the source's sync event) and
    /// sends everything pending at once.
    pub fn connected(&mut self, client: AsyncClient, now: &Now, sync: Timed, src: &SourceInfo) {
        self.connects += 1;
        self.client = Some(client);
        self.awaiting.clear();
        let st = encode_status(&self.status(true, false, now, src));
        self.send(Carried::Status, &self.status_topic.clone(), true, st);
        self.push(sync, now);
        self.flush(now, true);
    }

    /// Applies a message from the connection task other than [`NetMsg::Up`] (that one is
    /// [`Publisher::connected`]).
    pub fn handle(&mut self, msg: NetMsg) {
        match msg {
            NetMsg::Up(_) => log::warn!("a connection the publisher was not given"),
            NetMsg::Sent(pkid) => match self.awaiting.pop_front() {
                Some(Carried::Batch(id)) => self.outbox.sent(id, pkid),
                Some(Carried::Offline) => self.offline_pkid = Some(pkid),
                Some(Carried::Status) => {}
                None => log::warn!("publish {pkid} that the agent did not make"),
            },
            NetMsg::Acked(pkid) => {
                let n = self.outbox.acked(pkid);
                log::debug!("puback {pkid}: {n} events acknowledged");
                if self.offline_pkid == Some(pkid) {
                    self.offline_acked = true;
                }
            }
            NetMsg::Down(why) => {
                log::debug!("link down: {why}");
                self.client = None;
                self.awaiting.clear();
                self.offline_pkid = None;
                self.outbox.disconnected();
            }
            NetMsg::Closed => self.closed = true,
        }
    }

    /// Publishes the batches that are due at `now` (all pending ones with `force`), while
    /// connected and the in-flight window has room.
    pub fn flush(&mut self, now: &Now, force: bool) {
        while self.client.is_some() {
            let Some(b) = self
                .outbox
                .take_batch(&self.id.device_id, now.uptime_ms, force)
            else {
                break;
            };
            log::debug!(
                "publishing a batch of {} events ({} bytes)",
                b.events,
                b.payload.len()
            );
            self.send(
                Carried::Batch(b.id),
                &self.events_topic.clone(),
                false,
                b.payload,
            );
        }
    }

    fn send(&mut self, what: Carried, topic: &str, retain: bool, payload: Vec<u8>) {
        let Some(c) = &self.client else { return };
        match c.try_publish(topic, QoS::AtLeastOnce, retain, payload) {
            Ok(()) => self.awaiting.push_back(what),
            Err(e) => {
                // Only when the connection task is gone or its queue is full: treat as a
                // dropped link; everything in flight is re-sent after the next connect.
                log::warn!("publish to {topic} not queued: {e}");
                self.client = None;
                self.awaiting.clear();
                self.outbox.disconnected();
            }
        }
    }

    /// Graceful stop: sends what is pending and waits up to `linger` for acknowledgements,
    /// then publishes the graceful offline status and disconnects (so the broker does not
    /// publish the Last Will). Returns the outbox, holding whatever is still unacknowledged.
    /// `clock` is read once per message received meanwhile.
    pub async fn shutdown(
        mut self,
        linger: Duration,
        clock: impl Fn() -> Now,
        src: &SourceInfo,
    ) -> Outbox {
        let deadline = tokio::time::Instant::now() + linger;
        self.flush(&clock(), true);
        while self.client.is_some() && self.outbox.depth() > 0 {
            match tokio::time::timeout_at(deadline, self.rx.recv()).await {
                Ok(Some(NetMsg::Up(_))) | Ok(None) | Err(_) => break,
                Ok(Some(m)) => {
                    self.handle(m);
                    self.flush(&clock(), true);
                }
            }
        }
        // Not-yet-acknowledged batches go to the spool: forget that they are in flight.
        self.outbox.disconnected();
        if self.client.is_some() {
            let off = encode_status(&self.status(false, true, &clock(), src));
            self.send(Carried::Offline, &self.status_topic.clone(), true, off);
            while self.client.is_some() && !self.offline_acked {
                match tokio::time::timeout_at(deadline + Duration::from_secs(2), self.rx.recv())
                    .await
                {
                    Ok(Some(NetMsg::Sent(p)))
                        if self.awaiting.pop_front() == Some(Carried::Offline) =>
                    {
                        self.offline_pkid = Some(p)
                    }
                    Ok(Some(NetMsg::Sent(_))) => {}
                    Ok(Some(NetMsg::Acked(p))) => {
                        self.offline_acked |= self.offline_pkid == Some(p)
                    }
                    _ => break,
                }
            }
            if self.offline_acked {
                log::info!("published the offline status");
            } else {
                log::warn!(
                    "offline status not acknowledged; the broker will publish the Last Will"
                );
            }
            if let Some(c) = self.client.take() {
                let _ = c.try_disconnect();
                let _ = tokio::time::timeout(Duration::from_secs(1), async {
                    while let Some(m) = self.rx.recv().await {
                        if matches!(m, NetMsg::Closed) {
                            break;
                        }
                    }
                })
                .await;
            }
        }
        if let Some(t) = &self.task {
            t.abort();
        }
        let _ = self.closed;
        self.outbox
    }
}
