//! MQTT ingest: one tokio task owns the event loop and hands every publish over a channel to
//! the writer thread, which commits in groups through the [`Writer`] and acks each publish only
//! after the transaction holding it committed; between groups it runs the lifecycle jobs
//! ([`crate::jobs`]) in bounded steps and the writes other parts of the process ask for
//! ([`Request`]). The publishes waiting for the writer are bounded by `Backlog`; neither side
//! ever waits for the other while holding something the other needs.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use rumqttc::{AsyncClient, Event, MqttOptions, Outgoing, Packet, Publish, QoS, SubscribeFilter};
use tokio::sync::{mpsc, oneshot, watch};

use crate::config::Config;
use crate::health::IngestHealth;
use crate::timefmt::now_ms;
use crate::writer::{Committed, Incoming, Notice, OnCommit, Outcome, Request, Writer};

/// Requests (acks) waiting for the event loop. The writer never waits for room here: an ack
/// that does not fit waits in the writer's [`Acks`] until it does.
const REQUEST_CAPACITY: usize = 10_000;
/// Payload bytes waiting for the writer at most (with at most `2 × commit_max_messages`
/// messages): past either bound the ingest task stops reading from the broker until the
/// writer commits. The broker's `max_inflight_messages` is not a bound one can rely on:
/// mosquitto 2.0.11 (Debian 12) delivered 29 000 unacknowledged publishes to the collector
/// with it set to 100 (docs/BENCHMARKS.md, "Ingest").
const BACKLOG_MAX_BYTES: usize = 64 * 1024 * 1024;

/// Publishes handed to the writer and not yet committed: added by the ingest task, removed
/// by the writer after each commit, which wakes the ingest task if it paused.
struct Backlog {
    messages: AtomicUsize,
    bytes: AtomicUsize,
    /// The most messages that ever waited at once (logged at shutdown).
    peak: AtomicUsize,
    max_messages: usize,
    committed: tokio::sync::Notify,
    /// What `/readyz` and `/metrics` see of it.
    health: Arc<IngestHealth>,
}

impl Backlog {
    fn new(max_messages: usize, health: Arc<IngestHealth>) -> Backlog {
        Backlog {
            messages: AtomicUsize::new(0),
            bytes: AtomicUsize::new(0),
            peak: AtomicUsize::new(0),
            max_messages,
            committed: tokio::sync::Notify::new(),
            health,
        }
    }

    fn full(&self) -> bool {
        self.messages.load(Ordering::Acquire) >= self.max_messages
            || self.bytes.load(Ordering::Acquire) >= BACKLOG_MAX_BYTES
    }

    fn add(&self, bytes: usize, receive_ms: i64) {
        self.health.queued(receive_ms, bytes);
        let waiting = self.messages.fetch_add(1, Ordering::AcqRel) + 1;
        self.peak.fetch_max(waiting, Ordering::AcqRel);
        self.bytes.fetch_add(bytes, Ordering::AcqRel);
    }

    fn remove(&self, messages: usize, bytes: usize) {
        self.health.committed(messages, bytes);
        self.messages.fetch_sub(messages, Ordering::AcqRel);
        self.bytes.fetch_sub(bytes, Ordering::AcqRel);
        // A permit is kept if the ingest task is not waiting yet: no wake-up is lost.
        self.committed.notify_one();
    }
}

/// Acks of committed publishes, oldest first, waiting for room in rumqttc's request channel
/// (MQTT 3.1.1 wants PUBACKs in the order the publishes arrived). Only the packet id is
/// kept: the payload is dropped.
struct Acks {
    client: AsyncClient,
    waiting: VecDeque<Publish>,
}

impl Acks {
    fn push(&mut self, mut p: Publish) {
        p.payload = bytes::Bytes::new();
        self.waiting.push_back(p);
    }

    /// Hands waiting acks to the event loop until its channel is full; never waits.
    fn flush(&mut self) {
        while let Some(p) = self.waiting.front() {
            if self.client.try_ack(p).is_err() {
                return;
            }
            self.waiting.pop_front();
        }
    }
}

/// One received publish and when it arrived (collector clock, ms since the epoch).
struct Received {
    publish: Publish,
    receive_ms: i64,
    /// The payload's size as received; larger than `publish.payload` when it was over the
    /// wire limit and cut (so the log tells the real size).
    size: usize,
}

/// Lets at most `per_minute` messages through per minute and reports how many it held back.
struct RateLimit {
    per_minute: u32,
    window: Instant,
    used: u32,
    suppressed: u64,
}

impl RateLimit {
    fn new(per_minute: u32) -> RateLimit {
        RateLimit {
            per_minute,
            window: Instant::now(),
            used: 0,
            suppressed: 0,
        }
    }

    /// `Some(held back since the last pass)` if this message may be logged.
    fn pass(&mut self, now: Instant) -> Option<u64> {
        if now.duration_since(self.window) >= Duration::from_secs(60) {
            self.window = now;
            self.used = 0;
        }
        if self.used < self.per_minute {
            self.used += 1;
            Some(std::mem::take(&mut self.suppressed))
        } else {
            self.suppressed += 1;
            None
        }
    }
}

/// What the writer thread owns besides the [`Writer`].
pub struct WriterParts {
    /// Requests from other parts of the process.
    pub requests: mpsc::Receiver<Request>,
    /// Told after every commit.
    pub on_commit: Option<OnCommit>,
    /// The lifecycle schedule.
    pub jobs: crate::jobs::Schedule,
    /// `expire_hours`, for the refresh request.
    pub expire_hours: u32,
    /// Progress for `/readyz` and `/metrics` (shared with the HTTP API).
    pub health: Arc<IngestHealth>,
}

/// The largest MQTT packet the collector reads: the largest MQTT 3.1.1 allows (remaining
/// length 268 435 455 plus a 5-byte fixed header), so no publish can make rumqttc drop the
/// connection and the broker redeliver it forever (issue 19: a 17 MB publish wedged ingest
/// when this was 16 MiB). Payloads over the wire limit are read, cut to it, rejected as too
/// large (their real size logged) and acked; the broker's `max_packet_size` (266240 in
/// docs/mosquitto-wifisess.conf.example) keeps them from being read at all.
const MAX_READ_PACKET_BYTES: usize = 268_435_455 + 5;

/// Ingests until `shutdown` turns true: connects, subscribes, hands publishes to the writer
/// thread (started here with `writer` and `parts`), and at shutdown lets it commit and ack
/// what it holds. Runs on the current runtime.
///
/// # Errors
/// The writer failed (database), or the subscription could not be queued.
pub async fn serve(
    cfg: &Config,
    writer: Writer,
    parts: WriterParts,
    mut shutdown: watch::Receiver<bool>,
) -> anyhow::Result<()> {
    let handle = tokio::runtime::Handle::current();
    let health = Arc::clone(&parts.health);
    health.started(now_ms());
    let client_id = cfg.mqtt_client_id();
    let mut opts = MqttOptions::new(&client_id, &cfg.broker_host, cfg.broker_port);
    opts.set_clean_session(false)
        .set_manual_acks(true)
        .set_keep_alive(Duration::from_secs(cfg.limits.mqtt_keep_alive_s))
        .set_max_packet_size(MAX_READ_PACKET_BYTES, 64 * 1024);
    if let Some(u) = &cfg.username {
        opts.set_credentials(u, cfg.password.clone().unwrap_or_default());
    }
    let (client, mut eventloop) = AsyncClient::new(opts, REQUEST_CAPACITY);
    let (tx, rx) = mpsc::unbounded_channel::<Received>();
    let backlog = Arc::new(Backlog::new(
        cfg.commit_max_messages.saturating_mul(2),
        Arc::clone(&health),
    ));
    let (done_tx, mut done_rx) = oneshot::channel::<anyhow::Result<()>>();
    let writer = {
        let client = client.clone();
        let max = cfg.commit_max_messages;
        let backlog = Arc::clone(&backlog);
        std::thread::Builder::new()
            .name("writer".into())
            .spawn(move || {
                let acks = Acks {
                    client,
                    waiting: VecDeque::new(),
                };
                let mut w = WriterThread {
                    writer,
                    parts,
                    acks,
                    rt: handle,
                };
                let r = w.run(rx, &backlog, max);
                let _ = done_tx.send(r);
            })
            .context("starting the writer thread")?
    };
    let filters = cfg.topic_filters();
    log::info!(
        "collector: mqtt://{}:{} as {:?}, topics {} and {}, db {}",
        cfg.broker_host,
        cfg.broker_port,
        client_id,
        filters[0],
        filters[1],
        cfg.db.display()
    );
    let mut backoff = Duration::from_millis(500);
    let mut conn_errors = RateLimit::new(10);
    let mut paused_log = RateLimit::new(1);
    let mut paused = false;
    let mut subscribe = false;
    let mut writer_result: Option<anyhow::Result<()>> = None;
    'ingest: loop {
        // A full backlog stops the reading (not the acks already queued: they wait in the
        // request channel and go out when reading resumes, right after the next commit).
        let full = backlog.full();
        if full && !paused {
            if let Some(n) = paused_log.pass(Instant::now()) {
                log::info!(
                    "the writer is behind ({} messages, {} bytes wait): reading from the broker \
                     paused until it commits; the broker keeps the rest ({n} similar messages \
                     suppressed)",
                    backlog.messages.load(Ordering::Acquire),
                    backlog.bytes.load(Ordering::Acquire)
                );
            }
        }
        // (Re)subscribe after each CONNACK. The request channel may be full of acks the
        // writer handed over before a reconnect: then try again on the next turn (it drains
        // as the event loop runs) instead of giving up (which ended the process).
        if subscribe {
            let subs = filters
                .iter()
                .map(|f| SubscribeFilter::new(f.clone(), QoS::AtLeastOnce));
            match client.try_subscribe_many(subs) {
                Ok(()) => subscribe = false,
                Err(rumqttc::ClientError::TryRequest(_)) => {}
                Err(e) => return Err(e).context("queueing the subscription"),
            }
        }
        if paused && !full {
            // Reading resumes: the broker was not silent, we were not reading (see below).
            eventloop.state.await_pingresp = false;
        }
        paused = full;
        tokio::select! {
            _ = stopped(&mut shutdown) => {
                log::info!("shutdown: committing and acknowledging what is held");
                break 'ingest;
            }
            r = &mut done_rx => {
                writer_result = Some(r.unwrap_or_else(|_| Err(anyhow::anyhow!("writer thread ended"))));
                break 'ingest;
            }
            _ = backlog.committed.notified(), if full => {}
            ev = eventloop.poll(), if !full => match ev {
                Ok(Event::Incoming(packet)) => {
                    // Any packet from the broker shows the connection alive. rumqttc pings
                    // every keep-alive whatever the traffic and drops the connection when the
                    // last ping's answer has not been read by the next one; after a crash the
                    // broker sends its whole backlog at once and the answer queues behind it,
                    // read only as fast as the writer commits. The broker then resent every
                    // unacked message after each such reconnect (issue 19: 2.16x the work for
                    // a 1 M-event backlog). A broker that really went silent still fails the
                    // next ping.
                    eventloop.state.await_pingresp = false;
                    match packet {
                        Packet::ConnAck(ack) => {
                            health.connection(true, now_ms());
                            backoff = Duration::from_millis(500);
                            log::info!("connected (session present: {})", ack.session_present);
                            subscribe = true;
                        }
                        Packet::SubAck(_) => {
                            log::info!("subscribed to {} and {}", filters[0], filters[1]);
                        }
                        Packet::Publish(mut p) => {
                            // An oversized payload is still read and acked (else the broker
                            // would redeliver it forever to the persistent session); only its
                            // first bytes are queued, enough for the decoder to reject it as
                            // too large.
                            let size = p.payload.len();
                            let keep = wifisess_wire::limits::MAX_PAYLOAD_BYTES + 1;
                            if size > keep {
                                health.oversized();
                                p.payload = bytes::Bytes::copy_from_slice(&p.payload[..keep]);
                            }
                            let bytes = p.payload.len();
                            let receive_ms = now_ms();
                            let r = Received { publish: p, receive_ms, size };
                            backlog.add(bytes, receive_ms);
                            if tx.send(r).is_err() {
                                log::error!("writer stopped; no longer ingesting");
                                break 'ingest;
                            }
                        }
                        _ => {}
                    }
                }
                Ok(_) => {}
                Err(e) => {
                    health.connection(false, now_ms());
                    if let Some(n) = conn_errors.pass(Instant::now()) {
                        log::warn!("mqtt: {e}; retrying in {backoff:?} ({n} similar messages suppressed)");
                    }
                    tokio::select! {
                        _ = tokio::time::sleep(backoff) => {}
                        _ = stopped(&mut shutdown) => { log::info!("shutdown while disconnected"); break 'ingest; }
                    }
                    backoff = (backoff * 2).min(Duration::from_secs(30));
                }
            }
        }
    }
    // Drain: the writer commits and acks everything it was handed; keep the event loop
    // running meanwhile so the acks reach the broker. Publishes arriving now are not acked:
    // the broker redelivers them to the persistent session next time.
    drop(tx);
    if writer_result.is_none() {
        let deadline = tokio::time::sleep(Duration::from_secs(30));
        tokio::pin!(deadline);
        loop {
            tokio::select! {
                r = &mut done_rx => {
                    writer_result = Some(r.unwrap_or_else(|_| Err(anyhow::anyhow!("writer thread ended"))));
                    break;
                }
                _ = &mut deadline => {
                    writer_result = Some(Err(anyhow::anyhow!("writer did not finish within 30 s")));
                    break;
                }
                ev = eventloop.poll() => if ev.is_err() {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }
    }
    let _ = client.try_disconnect();
    let flush = async {
        loop {
            match eventloop.poll().await {
                Ok(Event::Outgoing(Outgoing::Disconnect)) | Err(_) => break,
                Ok(_) => {}
            }
        }
    };
    let _ = tokio::time::timeout(Duration::from_secs(3), flush).await;
    let _ = writer.join();
    log::info!(
        "ingest: at most {} messages waited for the writer at once (bound {})",
        backlog.peak.load(Ordering::Acquire),
        backlog.max_messages
    );
    writer_result.unwrap_or(Ok(()))
}

/// The writer thread: the [`Writer`] and what it owns besides.
struct WriterThread {
    writer: Writer,
    parts: WriterParts,
    acks: Acks,
    rt: tokio::runtime::Handle,
}

/// What the writer thread waits for.
enum Next {
    Publish(Received),
    Request(Request),
    Closed,
}

impl WriterThread {
    /// Group commit of whatever is queued (at most `max` messages per transaction; a lone
    /// message commits at once, so no message waits for a timer), then the acks.
    fn run(
        &mut self,
        mut rx: mpsc::UnboundedReceiver<Received>,
        backlog: &Backlog,
        max: usize,
    ) -> anyhow::Result<()> {
        let mut bad_input = RateLimit::new(20);
        let mut group: Vec<Received> = Vec::with_capacity(max);
        loop {
            let first = match self.next(&mut rx) {
                Next::Closed => break,
                Next::Request(r) => {
                    self.request(r);
                    continue;
                }
                Next::Publish(p) => p,
            };
            group.push(first);
            while group.len() < max {
                match rx.try_recv() {
                    Ok(m) => group.push(m),
                    Err(_) => break,
                }
            }
            let began = Instant::now();
            self.parts.health.begin(now_ms());
            let incoming: Vec<Incoming<'_>> = group
                .iter()
                .map(|m| Incoming {
                    topic: &m.publish.topic,
                    payload: &m.publish.payload,
                    receive_ms: m.receive_ms,
                })
                .collect();
            let committed = self.writer.ingest(&incoming);
            self.parts.health.end(now_ms());
            let committed = committed.context("writing to the database")?;
            drop(incoming);
            self.parts.jobs.derive_soon();
            self.notify(group.len(), &committed, began);
            for (m, o) in group.iter().zip(&committed.outcomes) {
                if let Outcome::Rejected(r) = o {
                    if let Some(n) = bad_input.pass(Instant::now()) {
                        if n > 0 {
                            log::warn!("{n} more bad messages were not logged");
                        }
                        if m.size > m.publish.payload.len() {
                            log::warn!(
                                "oversized payload on {}: {} bytes (limit {}): rejected and \
                                 acknowledged; set max_packet_size in the broker \
                                 (docs/OPERATIONS.md)",
                                m.publish.topic,
                                m.size,
                                wifisess_wire::limits::MAX_PAYLOAD_BYTES
                            );
                        } else {
                            log::warn!("{}", r.describe(&m.publish.topic));
                        }
                    }
                }
            }
            let bytes = group.iter().map(|m| m.publish.payload.len()).sum();
            backlog.remove(group.len(), bytes);
            for m in group.drain(..) {
                self.acks.push(m.publish);
            }
            self.acks.flush();
            // Under sustained load the queue is never empty: one bounded job step per group
            // keeps retention and expiry moving without holding ingest up for long.
            self.jobs();
        }
        // Shutdown: the event loop is still polled (`serve` drains) until every ack is handed
        // over.
        let deadline = Instant::now() + Duration::from_secs(25);
        self.acks.flush();
        while !self.acks.waiting.is_empty() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
            self.acks.flush();
        }
        if !self.acks.waiting.is_empty() {
            log::warn!(
                "{} acks not handed to the MQTT event loop; the broker redelivers those \
                 messages (the merge makes that harmless)",
                self.acks.waiting.len()
            );
        }
        Ok(())
    }

    fn notify(&mut self, messages: usize, committed: &Committed, began: Instant) {
        if let Some(hook) = self.parts.on_commit.as_mut() {
            hook(&Notice {
                messages,
                devices: committed.changed(),
                latency: began.elapsed(),
                at_ms: now_ms(),
            });
        }
    }

    /// One due lifecycle step; sessions an expiry closed are announced like merged events.
    fn jobs(&mut self) {
        let began = Instant::now();
        self.parts.health.begin(now_ms());
        let c = self.parts.jobs.run_due(&mut self.writer, now_ms());
        self.parts.health.end(now_ms());
        if let Some(c) = c {
            self.notify(0, &c, began);
        }
    }

    fn request(&mut self, r: Request) {
        match r {
            Request::Refresh { now_ms, reply } => {
                let began = Instant::now();
                self.parts.health.begin(crate::timefmt::now_ms());
                let r = crate::jobs::expire(&mut self.writer, now_ms, self.parts.expire_hours);
                self.parts.health.end(crate::timefmt::now_ms());
                let r = match r {
                    Ok((closed, committed)) => {
                        self.notify(0, &committed, began);
                        Ok(closed.into_iter().filter(|c| c.sessions > 0).collect())
                    }
                    Err(e) => Err(e.to_string()),
                };
                let _ = reply.send(r);
            }
        }
    }

    /// The next publish or request; while none is queued, runs the lifecycle jobs that are
    /// due (one bounded transaction at a time, checking the queues in between), hands waiting
    /// acks to the event loop and otherwise waits.
    fn next(&mut self, rx: &mut mpsc::UnboundedReceiver<Received>) -> Next {
        loop {
            self.acks.flush();
            match rx.try_recv() {
                Ok(m) => return Next::Publish(m),
                Err(mpsc::error::TryRecvError::Disconnected) => return Next::Closed,
                Err(mpsc::error::TryRecvError::Empty) => {}
            }
            if let Ok(r) = self.parts.requests.try_recv() {
                return Next::Request(r);
            }
            let wait = self.parts.jobs.wait_ms(now_ms());
            if wait == 0 {
                self.jobs();
                continue;
            }
            // Acks that did not fit are retried every few milliseconds.
            let cap = if self.acks.waiting.is_empty() {
                60_000
            } else {
                5
            };
            let wait = Duration::from_millis(wait.min(cap) as u64);
            let requests = &mut self.parts.requests;
            let got = self.rt.block_on(async {
                tokio::select! {
                    m = rx.recv() => Some(m.map_or(Next::Closed, Next::Publish)),
                    Some(r) = requests.recv() => Some(Next::Request(r)),
                    _ = tokio::time::sleep(wait) => None,
                }
            });
            if let Some(n) = got {
                return n;
            }
        }
    }
}

/// Returns once `rx` holds true (or its sender is gone).
async fn stopped(rx: &mut watch::Receiver<bool>) {
    let _ = rx.wait_for(|s| *s).await;
}
