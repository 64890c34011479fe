//! The I/O of `run`: one tokio task owns the MQTT event loop and hands every publish over a
//! channel to one thread that owns the SQLite writer; that thread commits in groups and acks
//! each publish only after the transaction holding it committed, and runs the lifecycle jobs
//! ([`crate::jobs`]) in bounded steps between groups. The publishes waiting for the writer
//! are bounded by [`Backlog`]; neither side ever waits for the other while holding something
//! the other needs.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::Context as _;
use rumqttc::{AsyncClient, Event, MqttOptions, Outgoing, Packet, Publish, QoS, SubscribeFilter};
use rusqlite::{Connection, ErrorCode};
use tokio::sync::{mpsc, oneshot};

use crate::config::Config;
use crate::merge::{self, Outcome};

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
}

impl Backlog {
    fn new(max_messages: usize) -> Backlog {
        Backlog {
            messages: AtomicUsize::new(0),
            bytes: AtomicUsize::new(0),
            peak: AtomicUsize::new(0),
            max_messages,
            committed: tokio::sync::Notify::new(),
        }
    }

    fn full(&self) -> bool {
        self.messages.load(Ordering::Acquire) >= self.max_messages
            || self.bytes.load(Ordering::Acquire) >= BACKLOG_MAX_BYTES
    }

    fn add(&self, bytes: usize) {
        let waiting = self.messages.fetch_add(1, Ordering::AcqRel) + 1;
        self.peak.fetch_max(waiting, Ordering::AcqRel);
        self.bytes.fetch_add(bytes, Ordering::AcqRel);
    }

    fn remove(&self, messages: usize, bytes: usize) {
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
}

/// What one group commit did, for the commit hook (HTTP notifications and metrics). Also
/// sent after an expiry in `run` closed sessions, with `messages` 0.
#[derive(Debug, Clone)]
pub struct Committed {
    /// MQTT messages in the transaction (0: a lifecycle job's commit).
    pub messages: usize,
    /// Devices whose events or status were merged (sorted, unique).
    pub devices: Vec<String>,
    /// Time from the start of the transaction to its commit.
    pub latency: Duration,
    /// Commit time, ms since the epoch.
    pub at_ms: i64,
}

/// Called by the writer thread after each commit (before the acks); must not block.
pub type OnCommit = Box<dyn FnMut(&Committed) + Send>;

/// Milliseconds since the Unix epoch now.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
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

/// Writes the configured inventory into the devices table.
///
/// # Errors
/// SQLite errors.
pub fn apply_inventory(conn: &mut Connection, cfg: &Config) -> rusqlite::Result<()> {
    let tx = conn.transaction()?;
    tx.execute(
        "UPDATE devices SET inv_name = NULL, inv_organization = NULL, inv_group = NULL",
        [],
    )?;
    for d in &cfg.devices {
        tx.execute(
            "INSERT INTO devices (id, inv_name, inv_organization, inv_group) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (id) DO UPDATE SET inv_name = ?2, inv_organization = ?3, inv_group = ?4",
            rusqlite::params![d.id, d.name, d.organization, d.group],
        )?;
    }
    tx.commit()
}

/// Runs the collector until SIGINT/SIGTERM: opens the database, connects, ingests.
///
/// # Errors
/// Runtime failures (database, runtime setup); configuration was checked before.
pub fn run(cfg: &Config) -> anyhow::Result<()> {
    let mut conn = crate::schema::open(&cfg.db)
        .with_context(|| format!("opening database {}", cfg.db.display()))?;
    apply_inventory(&mut conn, cfg).context("writing the device inventory")?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the tokio runtime")?;
    let handle = rt.handle().clone();
    let on_commit = crate::http::start(cfg, &handle)?;
    rt.block_on(serve(cfg, conn, handle, on_commit))
}

/// The largest MQTT packet the collector reads. Larger ones make rumqttc drop the connection
/// and the broker redeliver them forever, so the broker's `max_packet_size` must not exceed it
/// (docs/mosquitto-wifisess.conf.example sets 266240); payloads over the wire limit that fit
/// here are read, rejected as too large, and acked.
const MAX_READ_PACKET_BYTES: usize = 16 * 1024 * 1024;

async fn serve(
    cfg: &Config,
    conn: Connection,
    handle: tokio::runtime::Handle,
    on_commit: Option<OnCommit>,
) -> anyhow::Result<()> {
    let mut opts = MqttOptions::new(&cfg.client_id, &cfg.broker_host, cfg.broker_port);
    opts.set_clean_session(false)
        .set_manual_acks(true)
        .set_keep_alive(Duration::from_secs(30))
        .set_max_packet_size(MAX_READ_PACKET_BYTES, 64 * 1024);
    if let Some(u) = &cfg.username {
        opts.set_credentials(u, cfg.password.clone().unwrap_or_default());
    }
    let (client, mut eventloop) = AsyncClient::new(opts, REQUEST_CAPACITY);
    let (tx, rx) = mpsc::unbounded_channel::<Received>();
    let backlog = Arc::new(Backlog::new(cfg.commit_max_messages.saturating_mul(2)));
    let (done_tx, mut done_rx) = oneshot::channel::<anyhow::Result<()>>();
    let writer = {
        let client = client.clone();
        let prefix = cfg.topic_prefix.clone();
        let max = cfg.commit_max_messages;
        let jobs = crate::jobs::Schedule::new(cfg.retention_days, cfg.expire_hours, now_ms());
        let backlog = Arc::clone(&backlog);
        std::thread::Builder::new()
            .name("sqlite-writer".into())
            .spawn(move || {
                let acks = Acks {
                    client,
                    waiting: VecDeque::new(),
                };
                let r = write_loop(
                    conn, rx, acks, &backlog, &handle, &prefix, max, on_commit, jobs,
                );
                let _ = done_tx.send(r);
            })
            .context("starting the writer thread")?
    };
    let filters = [
        format!("{}/+/events", cfg.topic_prefix),
        format!("{}/+/status", cfg.topic_prefix),
    ];
    log::info!(
        "collector: mqtt://{}:{} as {:?}, topics {} and {}, db {}",
        cfg.broker_host,
        cfg.broker_port,
        cfg.client_id,
        filters[0],
        filters[1],
        cfg.db.display()
    );
    let mut shutdown = std::pin::pin!(shutdown_signal());
    let mut backoff = Duration::from_millis(500);
    let mut conn_errors = RateLimit::new(10);
    let mut paused_log = RateLimit::new(1);
    let mut paused = false;
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
        paused = full;
        tokio::select! {
            _ = &mut shutdown => {
                log::info!("shutdown: committing and acknowledging what is held");
                break 'ingest;
            }
            r = &mut done_rx => {
                writer_result = Some(r.unwrap_or_else(|_| Err(anyhow::anyhow!("writer thread ended"))));
                break 'ingest;
            }
            _ = backlog.committed.notified(), if full => {}
            ev = eventloop.poll(), if !full => match ev {
                Ok(Event::Incoming(Packet::ConnAck(ack))) => {
                    backoff = Duration::from_millis(500);
                    log::info!("connected (session present: {})", ack.session_present);
                    let subs = filters.iter().map(|f| SubscribeFilter::new(f.clone(), QoS::AtLeastOnce));
                    client.try_subscribe_many(subs).context("queueing the subscription")?;
                }
                Ok(Event::Incoming(Packet::Publish(mut p))) => {
                    // An oversized payload is still read and acked (else the broker would
                    // redeliver it forever to the persistent session); only its first bytes
                    // are queued, enough for the decoder to reject it as too large.
                    let keep = wifisess_wire::limits::MAX_PAYLOAD_BYTES + 1;
                    if p.payload.len() > keep {
                        p.payload = bytes::Bytes::copy_from_slice(&p.payload[..keep]);
                    }
                    let bytes = p.payload.len();
                    let r = Received { publish: p, receive_ms: now_ms() };
                    backlog.add(bytes);
                    if tx.send(r).is_err() {
                        log::error!("writer stopped; no longer ingesting");
                        break 'ingest;
                    }
                }
                Ok(_) => {}
                Err(e) => {
                    if let Some(n) = conn_errors.pass(Instant::now()) {
                        log::warn!("mqtt: {e}; retrying in {backoff:?} ({n} similar messages suppressed)");
                    }
                    tokio::select! {
                        _ = tokio::time::sleep(backoff) => {}
                        _ = &mut shutdown => { log::info!("shutdown while disconnected"); break 'ingest; }
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

async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// The writer: group commit of whatever is queued (at most `max` messages per transaction;
/// a lone message commits at once, so no message waits for a timer), then the acks.
#[allow(clippy::too_many_arguments)] // the writer's wiring: each is one resource it owns
fn write_loop(
    mut conn: Connection,
    mut rx: mpsc::UnboundedReceiver<Received>,
    mut acks: Acks,
    backlog: &Backlog,
    rt: &tokio::runtime::Handle,
    prefix: &str,
    max: usize,
    mut on_commit: Option<OnCommit>,
    mut jobs: crate::jobs::Schedule,
) -> anyhow::Result<()> {
    let mut bad_input = RateLimit::new(20);
    let mut group: Vec<Received> = Vec::with_capacity(max);
    while let Some(first) =
        next_publish(&mut rx, rt, &mut jobs, &mut conn, &mut on_commit, &mut acks)
    {
        group.push(first);
        while group.len() < max {
            match rx.try_recv() {
                Ok(m) => group.push(m),
                Err(_) => break,
            }
        }
        let began = Instant::now();
        let outcomes = match commit_group(&mut conn, prefix, &group) {
            Ok(o) => o,
            Err(e) => {
                log::warn!(
                    "group commit of {} messages failed ({e}); retrying one by one",
                    group.len()
                );
                let mut o = Vec::with_capacity(group.len());
                for m in &group {
                    o.push(commit_one(&mut conn, prefix, m)?);
                }
                o
            }
        };
        if let Some(hook) = on_commit.as_mut() {
            let mut devices: Vec<String> = group
                .iter()
                .zip(&outcomes)
                .filter(|(_, o)| matches!(o, Outcome::Events { .. } | Outcome::Status))
                .filter_map(|(m, _)| topic_device(prefix, &m.publish.topic))
                .collect();
            devices.sort();
            devices.dedup();
            hook(&Committed {
                messages: group.len(),
                devices,
                latency: began.elapsed(),
                at_ms: now_ms(),
            });
        }
        for (m, o) in group.iter().zip(&outcomes) {
            report(&mut bad_input, &m.publish.topic, o);
        }
        let bytes = group.iter().map(|m| m.publish.payload.len()).sum();
        backlog.remove(group.len(), bytes);
        for m in group.drain(..) {
            acks.push(m.publish);
        }
        acks.flush();
        // Under sustained load the queue is never empty: one bounded job step per group
        // keeps retention and expiry moving without holding ingest up for long.
        run_jobs(&mut jobs, &mut conn, &mut on_commit);
    }
    // Shutdown: the event loop is still polled (`serve` drains) until every ack is handed over.
    let deadline = Instant::now() + Duration::from_secs(25);
    acks.flush();
    while !acks.waiting.is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
        acks.flush();
    }
    if !acks.waiting.is_empty() {
        log::warn!(
            "{} acks not handed to the MQTT event loop; the broker redelivers those messages \
             (the merge makes that harmless)",
            acks.waiting.len()
        );
    }
    Ok(())
}

/// One due lifecycle step; sessions an expiry closed are announced through the commit hook
/// like merged events (`messages` 0).
fn run_jobs(
    jobs: &mut crate::jobs::Schedule,
    conn: &mut Connection,
    on_commit: &mut Option<OnCommit>,
) {
    let began = Instant::now();
    let devices = jobs.run_due(conn, now_ms());
    if let (false, Some(hook)) = (devices.is_empty(), on_commit.as_mut()) {
        hook(&Committed {
            messages: 0,
            devices,
            latency: began.elapsed(),
            at_ms: now_ms(),
        });
    }
}

/// The next queued publish; while none is queued, runs the lifecycle jobs that are due (one
/// bounded transaction at a time, checking the queue in between), hands waiting acks to the
/// event loop and otherwise waits. `None` once the channel is closed and drained.
fn next_publish(
    rx: &mut mpsc::UnboundedReceiver<Received>,
    rt: &tokio::runtime::Handle,
    jobs: &mut crate::jobs::Schedule,
    conn: &mut Connection,
    on_commit: &mut Option<OnCommit>,
    acks: &mut Acks,
) -> Option<Received> {
    loop {
        acks.flush();
        match rx.try_recv() {
            Ok(m) => return Some(m),
            Err(mpsc::error::TryRecvError::Disconnected) => return None,
            Err(mpsc::error::TryRecvError::Empty) => {}
        }
        let now = now_ms();
        let wait = jobs.wait_ms(now);
        if wait == 0 {
            run_jobs(jobs, conn, on_commit);
            continue;
        }
        // Acks that did not fit are retried every few milliseconds.
        let cap = if acks.waiting.is_empty() { 60_000 } else { 5 };
        let wait = Duration::from_millis(wait.min(cap) as u64);
        if let Ok(m) = rt.block_on(async { tokio::time::timeout(wait, rx.recv()).await }) {
            return m;
        }
    }
}

/// The device id of `{prefix}/{device}/...`.
fn topic_device(prefix: &str, topic: &str) -> Option<String> {
    let rest = topic.strip_prefix(prefix)?.strip_prefix('/')?;
    rest.split('/').next().map(str::to_owned)
}

/// One transaction for `group`. `IMMEDIATE`: the merge reads before it writes, and another
/// connection may write meanwhile (`expire`/`prune` commands, the HTTP refresh); a deferred
/// transaction would then fail with `SQLITE_BUSY` instead of waiting for the lock.
fn commit_group(
    conn: &mut Connection,
    prefix: &str,
    group: &[Received],
) -> rusqlite::Result<Vec<Outcome>> {
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    let mut out = Vec::with_capacity(group.len());
    for m in group {
        out.push(merge::apply_publish(
            &tx,
            prefix,
            &m.publish.topic,
            &m.publish.payload,
            m.receive_ms,
        )?);
    }
    tx.commit()?;
    Ok(out)
}

/// One message alone; a constraint violation (a message the merge cannot place) is counted
/// and acked rather than redelivered forever; any other SQLite error stops the collector.
fn commit_one(conn: &mut Connection, prefix: &str, m: &Received) -> anyhow::Result<Outcome> {
    match commit_group(conn, prefix, std::slice::from_ref(m)) {
        Ok(mut o) => Ok(o.remove(0)),
        Err(e) if e.sqlite_error_code() == Some(ErrorCode::ConstraintViolation) => {
            log::error!(
                "message on {} could not be stored: {e}; counted and dropped",
                m.publish.topic
            );
            let tx = conn.transaction()?;
            merge::count(&tx, "store_rejected", 1)?;
            tx.commit()?;
            Ok(Outcome::BadTopic)
        }
        Err(e) => Err(anyhow::Error::new(e).context("writing to the database")),
    }
}

fn report(limit: &mut RateLimit, topic: &str, o: &Outcome) {
    let msg = match o {
        Outcome::Events { .. } | Outcome::Status => return,
        Outcome::Spoofed {
            topic_device,
            payload_device,
        } => {
            format!("rejected: topic device {topic_device:?} but payload device {payload_device:?}")
        }
        Outcome::Undecodable(e) => format!("undecodable payload on {topic} ({}): {e}", e.kind()),
        Outcome::BadTopic => format!("rejected: unexpected topic {topic}"),
    };
    if let Some(n) = limit.pass(Instant::now()) {
        if n > 0 {
            log::warn!("{n} more bad messages were not logged");
        }
        log::warn!("{msg}");
    }
}
