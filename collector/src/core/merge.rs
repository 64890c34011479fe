//! Applying one message to one device's rows inside a transaction, with no I/O.
//!
//! [`DeviceTx`] holds what the transaction knows of a device: its merge state, the session rows
//! loaded or created so far (and the stored version of each, for the write), and which sets of
//! rows the store has handed in. [`DeviceTx::apply`] merges a message; when it needs rows the
//! transaction does not hold yet it changes nothing and returns them as [`Needs`] (a value,
//! like a parser's "not enough bytes yet"): the writer asks the store for them, hands them in
//! with [`DeviceTx::absorb`] and applies the message again.

use std::collections::{BTreeMap, BTreeSet};

use wifisess_wire::{Batch, Event, SessionId, Stamp, Status};

use super::device::{DeviceState, SyncRec};
use super::failed_join::{FailedJoin, FailedJoinKey};
use super::message::Msg;
use super::session::{clamp_i64, Context, Session};
use super::{Counter, Counts, Key};

/// Rows and facts a message needs that the transaction does not hold yet.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Needs {
    /// Session rows by id (absent ones are reported absent).
    pub sessions: BTreeSet<i64>,
    /// Every non-final session (no agent stop) of these client MACs.
    pub live_macs: BTreeSet<String>,
    /// Every non-final session of these boots.
    pub live_boots: BTreeSet<String>,
    /// Every open session of the device.
    pub open: bool,
    /// The syncs of these boots.
    pub syncs: BTreeSet<String>,
    /// Per client MAC, the stored (start, id) of its sessions at or after this (start, id).
    pub slices: BTreeMap<String, (i64, i64)>,
}

impl Needs {
    /// Nothing is needed.
    pub fn is_empty(&self) -> bool {
        *self == Needs::default()
    }
}

/// What the store hands in for [`Needs`].
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Loaded {
    /// Session rows found (by id, by MAC, by boot, open).
    pub sessions: Vec<Session>,
    /// Syncs per boot asked for (every boot asked for is listed, maybe with none).
    pub syncs: Vec<(String, Vec<SyncRec>)>,
    /// Per MAC asked for: the stored (start, id) of its sessions from the asked position on.
    pub slices: Vec<(String, Vec<(i64, i64)>)>,
}

/// Stored (start, id) of a client's sessions from `from` on.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Slice {
    /// The (start, id) the slice begins at.
    pub from: (i64, i64),
    /// Stored (start, id) of the client's sessions at or after `from`, sorted.
    pub entries: Vec<(i64, i64)>,
}

/// One device inside a transaction.
#[derive(Debug, Clone, Default)]
pub struct DeviceTx {
    /// The merge state as this transaction left it so far.
    pub state: DeviceState,
    /// Whether `state` changed (the device row must be written).
    pub state_changed: bool,
    /// Session rows by id, as this transaction left them; `None`: not stored, not created.
    pub sessions: BTreeMap<i64, Option<Session>>,
    /// The stored version of every loaded row (what a write compares against).
    pub stored: BTreeMap<i64, Session>,
    /// MACs whose non-final rows were loaded.
    pub live_macs: BTreeSet<String>,
    /// Boots whose non-final rows were loaded.
    pub live_boots: BTreeSet<String>,
    /// Whether the device's open rows were loaded.
    pub open_loaded: bool,
    /// Client slices loaded, per MAC.
    pub slices: BTreeMap<String, Slice>,
    /// Syncs to insert: (boot, sync).
    pub new_syncs: Vec<(String, SyncRec)>,
    /// Failed joins to insert (the store keeps the first it stored of each key).
    pub new_failed_joins: BTreeMap<FailedJoinKey, FailedJoin>,
    /// Counter increments.
    pub counts: Counts,
    /// What the message being applied changed, to put back if it needs more rows first.
    undo: Undo,
}

/// The values a message's changes replaced, for [`DeviceTx::apply`] to put back when the
/// message needs more rows first (cheaper than applying it to a copy of the transaction:
/// only what it touches is kept).
#[derive(Debug, Clone, Default)]
struct Undo {
    /// Each slot before its first change by this message (`None`: the id had no slot).
    rows: BTreeMap<i64, Option<Option<Session>>>,
    /// The merge state before the message, without its syncs.
    state: Option<DeviceState>,
    /// Sync lists this message created (boots the store never saw).
    syncs_created: Vec<String>,
    /// Syncs this message added: (boot, key).
    syncs_added: Vec<(String, Key)>,
    /// Failed joins this message added.
    failed_joins_added: Vec<FailedJoinKey>,
    /// `new_syncs`, `counts` and `state_changed` before the message.
    new_syncs: usize,
    counts: Counts,
    state_changed: bool,
}

/// What applying a message did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Applied {
    /// An events batch with this many events.
    Events(usize),
    /// A status.
    Status,
    /// An expiry or forced close, closing this many open sessions.
    Closed(usize),
}

/// A provisional close of every open session of a device (lifecycle jobs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Close {
    /// The device was silent for `expire_hours`: closed at its last-seen time (`expired`).
    Expire {
        /// Last-seen time of the device, ms.
        at_ms: i64,
    },
    /// The operator closes them now (`forced`).
    Force {
        /// Now, ms.
        at_ms: i64,
    },
}

/// The boot origin candidate of an unsynchronised message: receive time minus the newest
/// uptime in it (the message was sent right after its newest event).
fn origin_candidate(receive_ms: i64, newest_uptime_ms: u64) -> i64 {
    receive_ms.saturating_sub(clamp_i64(newest_uptime_ms))
}

/// Converts a stamp to wall ms: the agent's clock when synchronised, else the boot's
/// estimated origin (wall time at uptime 0) plus the uptime.
#[derive(Debug, Clone, Copy)]
struct Clock {
    synced: bool,
    origin_ms: i64,
}

impl Clock {
    fn wall(&self, st: Stamp) -> i64 {
        if self.synced {
            clamp_i64(st.wall_ms)
        } else {
            self.origin_ms.saturating_add(clamp_i64(st.uptime_ms))
        }
    }
}

impl DeviceTx {
    /// A transaction's view of a device whose stored state is `state`.
    pub fn new(state: DeviceState) -> DeviceTx {
        DeviceTx {
            state,
            ..DeviceTx::default()
        }
    }

    /// Hands in what the store loaded for `needs`. Rows this transaction already holds keep
    /// their (newer) values.
    pub fn absorb(&mut self, needs: &Needs, loaded: Loaded) {
        for id in &needs.sessions {
            self.sessions.entry(*id).or_insert(None);
        }
        for s in loaded.sessions {
            let slot = self.sessions.entry(s.id).or_insert(None);
            if slot.is_none() && !self.stored.contains_key(&s.id) {
                *slot = Some(s.clone());
                self.stored.insert(s.id, s);
            }
        }
        self.live_macs.extend(needs.live_macs.iter().cloned());
        self.live_boots.extend(needs.live_boots.iter().cloned());
        self.open_loaded |= needs.open;
        for (boot, syncs) in loaded.syncs {
            self.state.syncs.insert(boot, syncs);
        }
        for (mac, mut entries) in loaded.slices {
            entries.sort_unstable();
            if let Some(&from) = needs.slices.get(&mac) {
                self.slices.insert(mac, Slice { from, entries });
            }
        }
    }

    /// Merges `msg`, received at `receive_ms`. On `Err` nothing changed: the transaction
    /// needs what the [`Needs`] list before the message can be applied.
    ///
    /// # Errors
    /// The rows and facts still needed.
    pub fn apply(&mut self, msg: &Msg, receive_ms: i64) -> Result<Applied, Box<Needs>> {
        self.begin();
        let r = match msg {
            Msg::Batch(b) => self.batch(b, receive_ms).map(Applied::Events),
            Msg::Status(s) => self.status(s, receive_ms).map(|()| Applied::Status),
        };
        self.end(r)
    }

    /// Closes every open session of the device provisionally (expiry or forced close).
    ///
    /// # Errors
    /// The rows still needed (the device's open sessions).
    pub fn close(&mut self, how: Close) -> Result<Applied, Box<Needs>> {
        if !self.open_loaded {
            return Err(Box::new(Needs {
                open: true,
                ..Needs::default()
            }));
        }
        self.begin();
        let open: Vec<i64> = self.rows().filter(|s| s.is_open()).map(|s| s.id).collect();
        let mut touched = BTreeSet::new();
        for id in &open {
            let s = self.row_mut(*id);
            let (fact, at) = match how {
                Close::Expire { at_ms } => (&mut s.expired_ms, at_ms),
                Close::Force { at_ms } => (&mut s.forced_ms, at_ms),
            };
            *fact = Some(fact.map_or(at, |e| e.max(at)));
            touched.insert(*id);
        }
        let r = self.finish(touched, BTreeSet::new());
        self.end(r.map(|()| Applied::Closed(open.len())))
    }

    /// Starts recording what a message changes.
    fn begin(&mut self) {
        let syncs = std::mem::take(&mut self.state.syncs);
        self.undo = Undo {
            state: Some(self.state.clone()),
            new_syncs: self.new_syncs.len(),
            counts: self.counts.clone(),
            state_changed: self.state_changed,
            ..Undo::default()
        };
        self.state.syncs = syncs;
    }

    /// Keeps the message's changes on `Ok`, puts back what it changed on `Err`.
    fn end<T>(&mut self, r: Result<T, Box<Needs>>) -> Result<T, Box<Needs>> {
        let u = std::mem::take(&mut self.undo);
        if r.is_ok() {
            return r;
        }
        for (id, slot) in u.rows {
            match slot {
                Some(v) => {
                    self.sessions.insert(id, v);
                }
                None => {
                    self.sessions.remove(&id);
                }
            }
        }
        let mut syncs = std::mem::take(&mut self.state.syncs);
        for (boot, key) in &u.syncs_added {
            if let Some(list) = syncs.get_mut(boot) {
                list.retain(|y| y.key != *key);
            }
        }
        for boot in &u.syncs_created {
            syncs.remove(boot);
        }
        for k in &u.failed_joins_added {
            self.new_failed_joins.remove(k);
        }
        if let Some(st) = u.state {
            self.state = st;
        }
        self.state.syncs = syncs;
        self.new_syncs.truncate(u.new_syncs);
        self.counts = u.counts;
        self.state_changed = u.state_changed;
        r
    }

    /// Records slot `id` before this message changes it (once per message).
    fn save(&mut self, id: i64) {
        if !self.undo.rows.contains_key(&id) {
            let prev = self.sessions.get(&id).cloned();
            self.undo.rows.insert(id, prev);
        }
    }

    /// Row `id` as it was before this message (`None`: it did not exist).
    fn before(&self, id: i64) -> Option<&Session> {
        match self.undo.rows.get(&id) {
            Some(prev) => prev.as_ref().and_then(Option::as_ref),
            None => self.sessions.get(&id).and_then(Option::as_ref),
        }
    }

    /// The rows this transaction holds.
    pub fn rows(&self) -> impl Iterator<Item = &Session> {
        self.sessions.values().flatten()
    }

    fn row_mut(&mut self, id: i64) -> &mut Session {
        self.save(id);
        self.sessions
            .get_mut(&id)
            .and_then(Option::as_mut)
            .expect("row present")
    }

    /// The row of session `id`, created from this first evidence if unknown. The caller has
    /// made sure the row was loaded or is known absent.
    fn touch(&mut self, id: SessionId, boot: &str, key: Key, wall: i64) -> &mut Session {
        self.save(id.0 as i64);
        let slot = self.sessions.entry(id.0 as i64).or_insert(None);
        slot.get_or_insert_with(|| Session::new(&self.state.id, id, boot, key, wall))
    }

    /// The rows a batch's events name and the syncs of its boot, if not held yet.
    fn batch_needs(&mut self, b: &Batch, boot: &str) -> Needs {
        let mut needs = Needs::default();
        for ev in &b.events {
            let ids: &[SessionId] = match ev {
                Event::Sync(s) => &s.ids,
                _ => &[],
            };
            for id in ev.session_id().iter().chain(ids) {
                if !self.sessions.contains_key(&(id.0 as i64)) {
                    needs.sessions.insert(id.0 as i64);
                }
            }
        }
        if !self.state.syncs.contains_key(boot) {
            if self.state.boot(boot).is_some() {
                needs.syncs.insert(boot.to_owned());
            } else {
                // A boot the store has never seen has no stored syncs.
                self.state.syncs.insert(boot.to_owned(), Vec::new());
                self.undo.syncs_created.push(boot.to_owned());
            }
        }
        needs
    }

    fn batch(&mut self, b: &Batch, receive_ms: i64) -> Result<usize, Box<Needs>> {
        let boot = b.boot_id.to_string();
        let needs = self.batch_needs(b, &boot);
        if !needs.is_empty() {
            return Err(Box::new(needs));
        }
        let stamps: Vec<Option<Stamp>> = b.events.iter().map(|e| b.stamp_of(e)).collect();
        let newest_up = stamps
            .iter()
            .flatten()
            .map(|s| s.uptime_ms)
            .max()
            .unwrap_or(b.base_uptime_ms);
        let bad_times = stamps.iter().filter(|s| s.is_none()).count();
        self.counts.add(Counter::EventsBadTime, bad_times as i64);
        let origin_cand = (!b.clock_synced).then(|| origin_candidate(receive_ms, newest_up));
        // Lower the boot's origin estimate (a running minimum) first, so the stored estimate is
        // what converts this batch's times.
        let before = self.state.newest_boot().map(str::to_owned);
        let clock = Clock {
            synced: b.clock_synced,
            origin_ms: self.state.origin(&boot, origin_cand).unwrap_or(0),
        };
        let corrected = !b.clock_synced;
        let walls: Vec<i64> = stamps.iter().flatten().map(|s| clock.wall(*s)).collect();
        let base_wall = clock.wall(b.base());
        let lo = walls.iter().copied().min().unwrap_or(base_wall);
        let hi = walls.iter().copied().max().unwrap_or(base_wall);
        self.state.observe(&boot, lo, hi, origin_cand);
        self.state.last_seen_ms = Some(
            self.state
                .last_seen_ms
                .map_or(receive_ms, |l| l.max(receive_ms)),
        );
        self.state_changed = true;

        let mut touched: BTreeSet<i64> = BTreeSet::new();
        let mut boots: BTreeSet<String> = BTreeSet::new();
        let mut seqs: Vec<i64> = Vec::new();
        let mut last_up: Option<i64> = None;
        for (ev, st) in b.events.iter().zip(&stamps) {
            let Some(st) = *st else { continue };
            let key: Key = (clamp_i64(st.uptime_ms), clamp_i64(ev.seq()));
            let wall = clock.wall(st);
            seqs.push(key.1);
            last_up = Some(last_up.map_or(key.0, |u: i64| u.max(key.0)));
            match ev {
                Event::Start(e) => {
                    let s = self.touch(e.id, &boot, key, wall);
                    s.seen(key, wall, wall, corrected);
                    s.seen_open(key);
                    let start = wall.saturating_sub(clamp_i64(e.age_ms));
                    s.start_ms = if s.has_start {
                        s.start_ms.min(start)
                    } else {
                        start
                    };
                    s.has_start = true;
                    s.mac = Some(e.mac.to_string());
                    s.ssid = Some(String::from_utf8_lossy(&e.ssid).into_owned());
                    s.ifname = Some(e.ifname.clone());
                    s.bssid = Some(e.bssid.to_string());
                    s.freq_mhz = Some(i64::from(e.freq_mhz));
                    s.signal_at(key, e.signal_dbm);
                    s.hostname_at(key, e.hostname.as_deref());
                    touched.insert(s.id);
                }
                Event::Update(e) => {
                    let s = self.touch(e.id, &boot, key, wall);
                    s.seen(key, wall, wall, corrected);
                    s.seen_open(key);
                    s.counters(e.rx_bytes, e.tx_bytes, e.rx_packets, e.tx_packets);
                    s.signal_at(key, e.signal_avg_dbm);
                    s.activity_at(wall, e.inactive_ms);
                    s.hostname_at(key, e.hostname.as_deref());
                    touched.insert(s.id);
                }
                Event::Stop(e) => {
                    let stop_ms = wall.saturating_sub(clamp_i64(e.age_ms));
                    let s = self.touch(e.id, &boot, key, wall);
                    // The session was alive until its stop: a stop whose start never arrived
                    // starts no later than it stops.
                    s.seen(key, wall, stop_ms, corrected);
                    s.counters(e.rx_bytes, e.tx_bytes, e.rx_packets, e.tx_packets);
                    s.signal_at(key, e.signal_avg_dbm);
                    s.activity_at(wall, e.inactive_ms);
                    let stop = (stop_ms, e.reason.into());
                    s.agent_stop = Some(s.agent_stop.map_or(stop, |old| old.min(stop)));
                    touched.insert(s.id);
                }
                Event::Sync(e) => {
                    let mut ids: Vec<i64> = e.ids.iter().map(|i| i.0 as i64).collect();
                    ids.sort_unstable();
                    ids.dedup();
                    let rec = SyncRec {
                        key,
                        wall_ms: wall,
                        ids,
                    };
                    if self.state.add_sync(&boot, rec.clone()) {
                        self.undo.syncs_added.push((boot.clone(), rec.key));
                        self.new_syncs.push((boot.clone(), rec));
                    }
                    for id in &e.ids {
                        let s = self.touch(*id, &boot, key, wall);
                        s.seen(key, wall, wall, corrected);
                        s.seen_open(key);
                        touched.insert(s.id);
                    }
                    boots.insert(boot.clone());
                }
                // Not a session: a row of its own (its seq is counted above, no false gap).
                Event::FailedJoin(e) => {
                    let f =
                        FailedJoin::new(&self.state.id, &boot, b.agent_epoch, e, wall, corrected);
                    if let std::collections::btree_map::Entry::Vacant(v) =
                        self.new_failed_joins.entry(f.key())
                    {
                        self.undo.failed_joins_added.push(v.key().clone());
                        v.insert(f);
                    }
                }
                Event::Unknown { .. } => self.counts.add(Counter::EventsUnknownKind, 1),
            }
        }
        if let Some(up) = last_up {
            self.state
                .record(&boot, i64::from(b.agent_epoch), up, &mut seqs);
        }
        self.counts.add(Counter::Events, b.events.len() as i64);
        stale_boots(&self.state, &boot, before, &mut boots);
        self.finish(touched, boots)?;
        Ok(b.events.len())
    }

    fn status(&mut self, s: &Status, receive_ms: i64) -> Result<(), Box<Needs>> {
        let boot = s.boot_id.to_string();
        let origin_cand = (!s.clock_synced).then(|| origin_candidate(receive_ms, s.uptime_ms));
        let stamp = Stamp {
            wall_ms: s.wall_ms,
            uptime_ms: s.uptime_ms,
        };
        let before = self.state.newest_boot().map(str::to_owned);
        let wall = Clock {
            synced: s.clock_synced,
            origin_ms: self.state.origin(&boot, origin_cand).unwrap_or(0),
        }
        .wall(stamp);
        if self.state.boot(&boot).is_none() && !self.state.syncs.contains_key(&boot) {
            self.state.syncs.insert(boot.clone(), Vec::new());
            self.undo.syncs_created.push(boot.clone());
        }
        self.state.observe(&boot, wall, wall, origin_cand);
        self.state.last_seen_ms = Some(
            self.state
                .last_seen_ms
                .map_or(receive_ms, |l| l.max(receive_ms)),
        );
        self.state_changed = true;
        let mut boots = BTreeSet::new();
        stale_boots(&self.state, &boot, before, &mut boots);
        self.finish(BTreeSet::new(), boots)?;
        let newest = self.state.newest_boot();
        let up = clamp_i64(s.uptime_ms);
        let cur = &self.state.status;
        let wins = newest == Some(boot.as_str())
            && (cur.boot.as_deref() != Some(boot.as_str())
                || cur.uptime_ms.is_none_or(|c| up >= c));
        if wins {
            let st = &mut self.state.status;
            st.boot = Some(boot);
            st.uptime_ms = Some(up);
            st.name = s.name.clone();
            st.organization = s.organization.clone();
            st.group = s.group.clone();
            st.online = s.online;
            st.agent_version = Some(s.agent_version.clone());
            st.health.published = clamp_i64(s.published);
            st.health.dropped = clamp_i64(s.dropped);
            st.health.reconnects = clamp_i64(s.reconnects);
            st.health.outbox_depth = i64::from(s.outbox_depth);
            st.health.failed_joins = clamp_i64(s.failed_joins);
            st.health.tracker_overflow = clamp_i64(s.tracker_overflow);
            st.health.dropped_updates = clamp_i64(s.dropped_updates);
            st.health.dropped_starts_stops = clamp_i64(s.dropped_starts_stops);
            st.health.spool_restored = clamp_i64(s.spool_restored);
            st.radios = s
                .interfaces
                .iter()
                .map(|i| super::device::Radio {
                    ifname: i.ifname.clone(),
                    bssid: i.bssid.to_string(),
                    ssid: String::from_utf8_lossy(&i.ssid).into_owned(),
                    freq_mhz: i64::from(i.freq_mhz),
                })
                .collect();
        }
        Ok(())
    }

    /// Re-derives the stops of every row the message may have changed: the touched rows, and
    /// the non-final rows of the clients whose rows moved (new, or start or MAC changed) and of
    /// `boots` (whose reboot or missing rule may have changed).
    fn finish(
        &mut self,
        touched: BTreeSet<i64>,
        boots: BTreeSet<String>,
    ) -> Result<(), Box<Needs>> {
        let mut needs = Needs::default();
        let moved: BTreeSet<i64> = touched
            .iter()
            .copied()
            .filter(|id| {
                let now = self.sessions[id].as_ref().expect("touched rows exist");
                self.before(*id)
                    .is_none_or(|was| was.start_ms != now.start_ms || was.mac != now.mac)
            })
            .collect();
        let mut macs: BTreeSet<String> = BTreeSet::new();
        for id in &moved {
            macs.extend(self.sessions[id].as_ref().and_then(|s| s.mac.clone()));
            macs.extend(self.before(*id).and_then(|s| s.mac.clone()));
        }
        for m in &macs {
            if !self.live_macs.contains(m) {
                needs.live_macs.insert(m.clone());
            }
        }
        for b in &boots {
            if !self.live_boots.contains(b) {
                needs.live_boots.insert(b.clone());
            }
        }
        if !needs.is_empty() {
            return Err(Box::new(needs));
        }
        let mut derive: BTreeSet<i64> = touched;
        derive.extend(
            self.rows()
                .filter(|s| !s.is_final())
                .filter(|s| {
                    s.mac.as_ref().is_some_and(|m| macs.contains(m)) || boots.contains(&s.boot_id)
                })
                .map(|s| s.id),
        );
        // Which rows need their next start again, and the syncs and client slices for them.
        let mut renext: BTreeSet<i64> = BTreeSet::new();
        for id in &derive {
            let s = self.sessions[id].as_ref().expect("derived rows exist");
            if s.is_final() {
                continue;
            }
            if !self.state.syncs.contains_key(&s.boot_id) {
                needs.syncs.insert(s.boot_id.clone());
            }
            if let Some(m) = &s.mac {
                if moved.contains(id) || macs.contains(m) {
                    renext.insert(*id);
                    let covered = self.slices.get(m).is_some_and(|sl| sl.from <= s.order());
                    if !covered {
                        let from = needs.slices.entry(m.clone()).or_insert(s.order());
                        *from = (*from).min(s.order());
                        if let Some(sl) = self.slices.get(m) {
                            *from = (*from).min(sl.from);
                        }
                    }
                }
            }
        }
        if !needs.is_empty() {
            return Err(Box::new(needs));
        }
        let newest = self.state.newest_boot().map(str::to_owned);
        for id in derive {
            let s = self.sessions[&id].as_ref().expect("derived rows exist");
            let cx = if s.is_final() {
                Context::default()
            } else {
                Context {
                    reboot_at: if newest.as_deref() == Some(s.boot_id.as_str()) {
                        None
                    } else {
                        self.state.boot(&s.boot_id).map(|b| b.last_ms)
                    },
                    missing: self.state.syncs[&s.boot_id]
                        .iter()
                        .filter(|y| y.key > s.first && y.ids.binary_search(&s.id).is_err())
                        .map(|y| y.key)
                        .max(),
                    // Kept as it was unless this message moved the row or another row of its
                    // client: a move re-derives every live row of the client.
                    next_start_ms: if renext.contains(&id) {
                        self.next_start(s)
                    } else {
                        s.next_start_ms
                    },
                }
            };
            self.row_mut(id).derive(&cx);
        }
        Ok(())
    }

    /// Start of the next session of the same client on the same device after `s` (by start,
    /// then id): rows this transaction holds as they are now, the others as stored.
    fn next_start(&self, s: &Session) -> Option<i64> {
        let mac = s.mac.as_ref()?;
        let held = self
            .rows()
            .filter(|o| o.mac.as_ref() == Some(mac) && o.order() > s.order())
            .map(|o| o.start_ms)
            .min();
        let stored = self.slices.get(mac).and_then(|sl| {
            sl.entries
                .iter()
                .filter(|e| **e > s.order() && !self.sessions.contains_key(&e.1))
                .map(|e| e.0)
                .next()
        });
        match (held, stored) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// The rows whose stored version differs from this transaction's (new rows included).
    pub fn changed_rows(&self) -> impl Iterator<Item = (&Session, Option<&Session>)> {
        self.rows().filter_map(|s| {
            let stored = self.stored.get(&s.id);
            (stored != Some(s)).then_some((s, stored))
        })
    }
}

/// Adds to `boots` the boots whose sessions' reboot rule may have changed: when the newest
/// boot changed, both the previous one (its sessions now end at a reboot) and the new one
/// (its sessions may have been closed by that rule while another boot looked newer: an old
/// boot's late event can move that boot's first-seen time back); and `boot` itself when it is
/// not the newest.
fn stale_boots(
    state: &DeviceState,
    boot: &str,
    before: Option<String>,
    boots: &mut BTreeSet<String>,
) {
    let after = state.newest_boot().map(str::to_owned);
    if after != before {
        boots.extend(before);
        boots.extend(after.clone());
    }
    if after.as_deref() != Some(boot) {
        boots.insert(boot.to_owned());
    }
}
