//! The one writer of a collector process (SPEC §5.1): it owns the store, keeps each device's
//! merge state in memory between transactions (checked against the stored revision), runs the
//! merge core on a group of messages and writes what changed in one transaction. Ingest, the
//! lifecycle jobs, the HTTP refresh and the CLI's `expire`/`prune` all write through it.

use std::collections::{BTreeMap, HashMap};

use crate::core::device::{DeviceState, Inventory, Names};
use crate::core::merge::{Applied, Close, DeviceTx};
use crate::core::message::{route, Msg, Rejected};
use crate::core::{Counts, Session};
use crate::store::{Closable, PruneReport, Store, StoreError};

/// Devices whose merge state is kept between transactions at most; past it the cache starts
/// over (each device's state is read again at its next message).
pub const CACHE_DEVICES: usize = 200_000;

/// How long a transaction that failed for a reason that may pass (a deadlock or
/// serialization conflict with another collector, the database restarting, the connection
/// lost) is tried again before the writer gives up (the process exits 1; nothing
/// unacknowledged is lost: the broker redelivers).
pub const RETRY_FOR: std::time::Duration = std::time::Duration::from_secs(60);

/// Session rows a commit notice carries at most (the live feed sends them as they were
/// written); the rows of devices past it are left out, and the notice lists those devices
/// only, for readers to query.
pub const NOTICE_ROWS: usize = 100;

/// Rounds of "the merge needs more rows" per message at most; more is a bug in an adapter
/// (it did not hand in what was asked for).
const MAX_ROUNDS: usize = 16;

/// One received MQTT message.
#[derive(Debug, Clone, Copy)]
pub struct Incoming<'a> {
    /// Its topic.
    pub topic: &'a str,
    /// Its payload.
    pub payload: &'a [u8],
    /// When it arrived (collector clock), ms since the epoch.
    pub receive_ms: i64,
}

/// What became of one message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// An events batch of that many events was merged.
    Events(usize),
    /// A status was merged.
    Status,
    /// Not merged (acknowledged all the same: redelivery would not help).
    Rejected(Rejected),
}

/// What one committed transaction changed.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Committed {
    /// Per message of the group, in order.
    pub outcomes: Vec<Outcome>,
    /// Devices with changed rows (sorted, unique).
    pub devices: Vec<String>,
    /// The names in effect of each of `devices`, as just written: the live feed filters per
    /// organization and names its rows without a query.
    pub names: BTreeMap<String, Names>,
    /// The changed session rows of each of `devices` as written, for the devices whose rows
    /// fit in [`NOTICE_ROWS`] (in device order); the others are missing here.
    pub rows: BTreeMap<String, Vec<Session>>,
    /// Session rows written.
    pub sessions_written: usize,
}

impl Committed {
    /// The changed devices with their names and rows, for the commit notice.
    pub fn changed(&self) -> Vec<Changed> {
        self.devices
            .iter()
            .map(|id| Changed {
                id: id.clone(),
                names: self.names.get(id).cloned().unwrap_or_default(),
                sessions: self.rows.get(id).cloned(),
            })
            .collect()
    }

    /// Session rows kept for the notice so far.
    fn rows_kept(&self) -> usize {
        self.rows.values().map(Vec::len).sum()
    }

    /// Adds what another transaction of the same group committed; rows past [`NOTICE_ROWS`]
    /// in all are left out (their devices stay listed).
    fn absorb(&mut self, c: Committed) {
        self.outcomes.extend(c.outcomes);
        self.devices.extend(c.devices);
        self.devices.sort();
        self.devices.dedup();
        self.names.extend(c.names);
        for (id, rows) in c.rows {
            // A device written twice in the group: its newer rows replace the older ones (a
            // row is the whole session), and it is left out if they no longer fit.
            self.rows.remove(&id);
            if self.rows_kept() + rows.len() <= NOTICE_ROWS {
                self.rows.insert(id, rows);
            }
        }
        self.sessions_written += c.sessions_written;
    }
}

/// A device whose sessions changed in a commit.
#[derive(Debug, Clone, PartialEq)]
pub struct Changed {
    /// Device id.
    pub id: String,
    /// Its names in effect (inventory, else announced) after the commit.
    pub names: Names,
    /// Its changed session rows as written; `None` when the commit changed more than
    /// [`NOTICE_ROWS`] rows and this device's were left out.
    pub sessions: Option<Vec<Session>>,
}

/// The writer. See the module documentation.
pub struct Writer {
    store: Box<dyn Store>,
    prefix: String,
    inventory: Inventory,
    cache: HashMap<String, DeviceState>,
}

impl Writer {
    /// A writer on `store` for topics under `prefix`, with the configured `inventory`.
    pub fn new(store: Box<dyn Store>, prefix: &str, inventory: Inventory) -> Writer {
        Writer {
            store,
            prefix: prefix.to_owned(),
            inventory,
            cache: HashMap::new(),
        }
    }

    /// The store (for the lifecycle jobs' plans).
    pub fn store(&mut self) -> &mut dyn Store {
        &mut *self.store
    }

    /// Writes the inventory into the device rows: each device's inventory names and the names
    /// in effect ([`Inventory::effective`]), where they differ from what is stored. One
    /// transaction.
    ///
    /// # Errors
    /// Store errors (rolled back).
    pub fn apply_inventory(&mut self) -> Result<usize, StoreError> {
        self.transaction(|w| {
            let stored = w.store.announced()?;
            let mut changed = 0;
            let mut seen = std::collections::BTreeSet::new();
            for (id, announced, inv) in &stored {
                seen.insert(id.clone());
                let want = w.inventory.of(id);
                if &want != inv {
                    let eff = w.inventory.effective(id, announced);
                    w.store.set_names(id, &want, &eff)?;
                    changed += 1;
                }
            }
            let missing: Vec<String> = w
                .inventory
                .ids()
                .filter(|id| !seen.contains(*id))
                .cloned()
                .collect();
            for id in missing {
                let want = w.inventory.of(&id);
                let eff = w.inventory.effective(&id, &Default::default());
                w.store.set_names(&id, &want, &eff)?;
                changed += 1;
            }
            w.cache.clear();
            Ok(changed)
        })
    }

    /// Merges a group of messages in one transaction and commits it. If the group cannot be
    /// placed (a constraint violation), each message is tried alone and one that still cannot
    /// is rejected ([`Rejected::Store`]).
    ///
    /// # Errors
    /// Store errors other than a constraint violation (nothing was committed).
    pub fn ingest(&mut self, msgs: &[Incoming<'_>]) -> Result<Committed, StoreError> {
        let routed: Vec<Result<Msg, Rejected>> = msgs
            .iter()
            .map(|m| route(&self.prefix, m.topic, m.payload))
            .collect();
        match self.transaction(|w| w.merge_group(msgs, &routed)) {
            Err(e) if e.is_constraint() && msgs.len() > 1 => {
                log::warn!(
                    "group commit of {} messages failed ({e}); retrying one by one",
                    msgs.len()
                );
                let mut all = Committed::default();
                for (m, r) in msgs.iter().zip(routed) {
                    let one = std::slice::from_ref(m);
                    let c = match self.transaction(|w| w.merge_group(one, std::slice::from_ref(&r)))
                    {
                        Err(e) if e.is_constraint() => self.reject_alone(e)?,
                        r => r?,
                    };
                    all.absorb(c);
                }
                Ok(all)
            }
            Err(e) if e.is_constraint() => self.reject_alone(e),
            r => r,
        }
    }

    /// A message that cannot be placed is counted and acknowledged, not redelivered forever.
    fn reject_alone(&mut self, e: StoreError) -> Result<Committed, StoreError> {
        let rej = Rejected::Store(e.to_string());
        let counts = rej.counts();
        self.transaction(|w| w.store.add_counts(&counts))?;
        Ok(Committed {
            outcomes: vec![Outcome::Rejected(rej)],
            ..Committed::default()
        })
    }

    /// Closes every open session of the devices `plan` lists provisionally (expiry, or the
    /// operator's forced close), plan and close in one transaction. Returns each device with
    /// the sessions it closed, and what was committed.
    ///
    /// # Errors
    /// Store errors (rolled back).
    pub fn close_planned(
        &mut self,
        mut plan: impl FnMut(&mut dyn Store) -> Result<Vec<Closable>, StoreError>,
        forced: bool,
    ) -> Result<(Vec<Closable>, Committed), StoreError> {
        self.transaction(|w| {
            let plan = plan(&mut *w.store)?;
            let ids: Vec<String> = plan.iter().map(|c| c.device_id.clone()).collect();
            let mut txs = w.open_devices(&ids)?;
            let mut done = Vec::with_capacity(plan.len());
            for c in plan {
                let how = if forced {
                    Close::Force { at_ms: c.at_ms }
                } else {
                    Close::Expire { at_ms: c.at_ms }
                };
                let tx = txs.get_mut(&c.device_id).expect("opened above");
                let n = match Self::until_done(&mut *w.store, tx, |tx| tx.close(how))? {
                    Applied::Closed(n) => n as u64,
                    _ => 0,
                };
                done.push(Closable { sessions: n, ..c });
            }
            let committed = w.write_all(&mut txs, Vec::new(), &Counts::default())?;
            Ok((done, committed))
        })
    }

    /// Deletes one bounded batch of sessions that stopped before `cutoff_ms`.
    ///
    /// # Errors
    /// Store errors (rolled back).
    pub fn prune_batch(&mut self, cutoff_ms: i64, limit: u32) -> Result<PruneReport, StoreError> {
        self.transaction(|w| w.store.prune_batch(cutoff_ms, limit))
    }

    /// Runs `f` on the store in a transaction of its own (the derive step, retention's
    /// horizon): committed on `Ok`, rolled back on `Err`, retried like every transaction.
    ///
    /// # Errors
    /// Store errors (rolled back).
    pub fn in_transaction<T>(
        &mut self,
        mut f: impl FnMut(&mut dyn Store) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        self.transaction(|w| f(&mut *w.store))
    }

    /// Claims the fleet-wide job `job` due at `now_ms` ([`Store::claim_job`]), in a
    /// transaction of its own: true if this collector should run it now.
    ///
    /// # Errors
    /// Store errors.
    pub fn claim_job(&mut self, job: &str, now_ms: i64, every_ms: i64) -> Result<bool, StoreError> {
        self.transaction(|w| w.store.claim_job(job, now_ms, every_ms))
    }

    /// Runs `f` in a transaction: commits on `Ok`, rolls back (and forgets the cached state of
    /// every device, which `f` may have changed in memory) on `Err`. A transaction that
    /// failed for a reason that may pass ([`StoreError::is_retryable`]: another collector won
    /// a deadlock, the database restarted) is run again, with a growing pause, for up to
    /// [`RETRY_FOR`].
    fn transaction<T>(
        &mut self,
        mut f: impl FnMut(&mut Writer) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let began = std::time::Instant::now();
        let mut pause = std::time::Duration::from_millis(20);
        let mut tries = 0u32;
        loop {
            let r = self
                .store
                .begin()
                .and_then(|()| f(self))
                .and_then(|t| self.store.commit().map(|()| t));
            match r {
                Ok(t) => {
                    if tries > 0 {
                        log::info!("transaction committed after {tries} retries");
                    }
                    return Ok(t);
                }
                Err(e) => {
                    self.store.rollback();
                    self.cache.clear();
                    if !e.is_retryable() || began.elapsed() >= RETRY_FOR {
                        return Err(e);
                    }
                    tries += 1;
                    if tries == 1 || tries.is_multiple_of(10) {
                        log::warn!("transaction failed ({e}); retrying in {pause:?} (try {tries})");
                    }
                    std::thread::sleep(pause);
                    pause = (pause * 2).min(std::time::Duration::from_secs(2));
                }
            }
        }
    }

    /// Locks `ids` (sorted, unique) and opens their transactions, from the cache where its
    /// state is current.
    fn open_devices(&mut self, ids: &[String]) -> Result<BTreeMap<String, DeviceTx>, StoreError> {
        let mut ids = ids.to_vec();
        ids.sort();
        ids.dedup();
        let revs = self.store.lock_devices(&ids)?;
        let mut states: BTreeMap<String, Option<DeviceState>> = BTreeMap::new();
        let mut stale: Vec<String> = Vec::new();
        for (id, rev) in ids.into_iter().zip(revs) {
            let cached = self.cache.remove(&id);
            let state = match (cached, rev) {
                (Some(c), Some(r)) if c.rev == r => Some(c),
                (_, Some(_)) => {
                    stale.push(id.clone());
                    None
                }
                (_, None) => Some(DeviceState::new(&id)),
            };
            states.insert(id, state);
        }
        // The states the cache could not give, in one request.
        for (id, st) in stale.iter().zip(self.store.load_devices(&stale)?) {
            states.insert(id.clone(), Some(st.unwrap_or_else(|| DeviceState::new(id))));
        }
        Ok(states
            .into_iter()
            .map(|(id, st)| {
                let st = st.expect("every state is known");
                (id, DeviceTx::new(st))
            })
            .collect())
    }

    /// Runs `step` until the core needs nothing more, loading what it asks for.
    fn until_done(
        store: &mut dyn Store,
        tx: &mut DeviceTx,
        mut step: impl FnMut(&mut DeviceTx) -> Result<Applied, Box<crate::core::Needs>>,
    ) -> Result<Applied, StoreError> {
        for _ in 0..MAX_ROUNDS {
            match step(tx) {
                Ok(a) => return Ok(a),
                Err(needs) => {
                    let loaded = store.load(&tx.state.id, &needs)?;
                    tx.absorb(&needs, loaded);
                }
            }
        }
        Err(StoreError::Corrupt(format!(
            "device {}: the merge still needed rows after {MAX_ROUNDS} loads",
            tx.state.id
        )))
    }

    fn merge_group(
        &mut self,
        msgs: &[Incoming<'_>],
        routed: &[Result<Msg, Rejected>],
    ) -> Result<Committed, StoreError> {
        let ids: Vec<String> = routed
            .iter()
            .flatten()
            .map(|m| m.device_id().to_owned())
            .collect();
        let mut txs = self.open_devices(&ids)?;
        let mut counts = Counts::default();
        let mut outcomes: Vec<Option<Outcome>> = vec![None; msgs.len()];
        // Each device's messages, in order; all devices advance together, and what they still
        // need is asked in one request per round (one round trip per kind of need).
        let mut queues: BTreeMap<&str, std::collections::VecDeque<usize>> = BTreeMap::new();
        for (i, r) in routed.iter().enumerate() {
            match r {
                Err(rej) => {
                    counts.merge(&rej.counts());
                    outcomes[i] = Some(Outcome::Rejected(rej.clone()));
                }
                Ok(msg) => queues.entry(msg.device_id()).or_default().push_back(i),
            }
        }
        let mut stuck: BTreeMap<&str, usize> = BTreeMap::new();
        loop {
            let mut wants: Vec<(String, crate::core::Needs)> = Vec::new();
            for (dev, q) in queues.iter_mut() {
                let tx = txs.get_mut(*dev).expect("opened above");
                while let Some(&i) = q.front() {
                    let Ok(msg) = &routed[i] else {
                        unreachable!("queued messages routed")
                    };
                    match tx.apply(msg, msgs[i].receive_ms) {
                        Ok(a) => {
                            outcomes[i] = Some(match a {
                                Applied::Events(n) => Outcome::Events(n),
                                _ => Outcome::Status,
                            });
                            q.pop_front();
                            stuck.remove(dev);
                        }
                        Err(needs) => {
                            let rounds = stuck.entry(dev).or_insert(0);
                            *rounds += 1;
                            if *rounds > MAX_ROUNDS {
                                return Err(StoreError::Corrupt(format!(
                                    "device {dev}: the merge still needed rows after \
                                     {MAX_ROUNDS} loads"
                                )));
                            }
                            wants.push(((*dev).to_owned(), *needs));
                            break;
                        }
                    }
                }
            }
            if wants.is_empty() {
                break;
            }
            for ((dev, needs), loaded) in wants.iter().zip(self.store.load_many(&wants)?) {
                txs.get_mut(dev.as_str())
                    .expect("opened above")
                    .absorb(needs, loaded);
            }
        }
        let outcomes = outcomes
            .into_iter()
            .map(|o| o.expect("every message merged or rejected"))
            .collect();
        self.write_all(&mut txs, outcomes, &counts)
    }

    /// Writes every device's changes and the counters; keeps the new states for the cache
    /// (they enter it when the transaction commits: on a rollback the cache is cleared).
    fn write_all(
        &mut self,
        txs: &mut BTreeMap<String, DeviceTx>,
        outcomes: Vec<Outcome>,
        counts: &Counts,
    ) -> Result<Committed, StoreError> {
        let mut all = counts.clone();
        let mut c = Committed {
            outcomes,
            ..Committed::default()
        };
        let mut kept = 0;
        for (id, tx) in txs.iter_mut() {
            all.merge(&tx.counts);
            let rows = tx.changed_rows().count();
            if rows == 0 && !tx.state_changed && tx.new_syncs.is_empty() {
                continue;
            }
            tx.state.rev += 1;
            let names = self.inventory.effective(id, &tx.state.status.names());
            self.store.write(tx, &names)?;
            // Dirty marks for the derived data (roams, trends), in the same transaction.
            let marks = crate::core::derived::of_device(tx);
            self.store.mark(&marks, crate::timefmt::now_ms())?;
            c.sessions_written += rows;
            if rows > 0 {
                c.devices.push(id.clone());
                c.names.insert(id.clone(), names.clone());
                if kept + rows <= NOTICE_ROWS {
                    kept += rows;
                    let written = tx.changed_rows().map(|(s, _)| s.clone()).collect();
                    c.rows.insert(id.clone(), written);
                }
            }
            tx.state.names = names;
        }
        self.store.add_counts(&all)?;
        if self.cache.len() + txs.len() > CACHE_DEVICES {
            self.cache.clear();
        }
        for (id, tx) in std::mem::take(txs) {
            self.cache.insert(id, tx.state);
        }
        Ok(c)
    }
}

/// A write asked of the writer thread by another part of the process (the HTTP API): the
/// writer runs it between group commits, so it never needs a second writing connection.
#[derive(Debug)]
pub enum Request {
    /// Run the expiry now (`POST /api/v1/sessions/refresh`).
    Refresh {
        /// Now, ms since the epoch.
        now_ms: i64,
        /// Where the result goes: the devices closed, or the error.
        reply: tokio::sync::oneshot::Sender<Result<Vec<Closable>, String>>,
    },
}

/// Requests waiting for the writer at most; more are refused (HTTP 503) rather than queued.
pub const REQUESTS: usize = 16;

/// Sends [`Request`]s to the writer thread.
#[derive(Debug, Clone)]
pub struct Handle {
    tx: tokio::sync::mpsc::Sender<Request>,
}

impl Handle {
    /// A handle and the receiving end the writer thread polls.
    pub fn channel() -> (Handle, tokio::sync::mpsc::Receiver<Request>) {
        let (tx, rx) = tokio::sync::mpsc::channel(REQUESTS);
        (Handle { tx }, rx)
    }

    /// Runs the expiry on the writer now.
    ///
    /// # Errors
    /// The writer is busy with too many requests, gone, or the expiry failed.
    pub async fn refresh(&self, now_ms: i64) -> Result<Vec<Closable>, String> {
        let (reply, rx) = tokio::sync::oneshot::channel();
        self.tx
            .try_send(Request::Refresh { now_ms, reply })
            .map_err(|e| format!("the writer cannot take the request now: {e}"))?;
        rx.await
            .map_err(|_| "the writer stopped before answering".to_owned())?
    }
}

/// What the writer thread tells the rest of the process after each commit (the HTTP API's
/// change feed and metrics).
#[derive(Debug, Clone)]
pub struct Notice {
    /// MQTT messages in the transaction (0: a lifecycle job's or a request's commit).
    pub messages: usize,
    /// Devices with changed session rows (sorted, unique by id), each with its names as just
    /// written (scoped readers are filtered without a query) and, up to [`NOTICE_ROWS`] in
    /// all, its changed rows.
    pub devices: Vec<Changed>,
    /// Time from the start of the transaction to its commit.
    pub latency: std::time::Duration,
    /// Commit time, ms since the epoch.
    pub at_ms: i64,
}

/// Called by the writer thread after each commit (before the acks); must not block.
pub type OnCommit = Box<dyn FnMut(&Notice) + Send>;
