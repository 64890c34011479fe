//! How ingest and the writer are doing, for `/readyz` and `/metrics`: a small shared struct
//! that `app` creates and hands to both `ingest` (which updates it) and `http` (which reads
//! it), so neither imports the other. Atomics plus one short mutex; nothing here blocks.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, AtomicUsize, Ordering};
use std::sync::Mutex;

/// Progress of ingest and the writer. Times are ms since the epoch (collector clock).
#[derive(Debug, Default)]
pub struct IngestHealth {
    /// Connected to the broker (CONNACK seen, no error since).
    connected: AtomicBool,
    /// When `connected` last changed (0: never connected since start).
    since_ms: AtomicI64,
    /// When the process started ingesting.
    started_ms: AtomicI64,
    /// Receive times of the messages handed to the writer and not committed yet, oldest
    /// first (at most the backlog bound: a few thousand).
    waiting: Mutex<VecDeque<i64>>,
    /// Payload bytes of those messages.
    waiting_bytes: AtomicUsize,
    /// Start of the writer's running transaction (0: none).
    txn_started_ms: AtomicI64,
    /// End of the writer's last commit (0: none yet).
    last_commit_ms: AtomicI64,
    /// Publishes over the wire limit that were read, rejected and acked.
    oversize: AtomicU64,
}

/// A consistent-enough copy of [`IngestHealth`] at one moment.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Snapshot {
    /// Connected to the broker.
    pub connected: bool,
    /// When `connected` last changed (0: never connected).
    pub since_ms: i64,
    /// When ingest started.
    pub started_ms: i64,
    /// Messages waiting for the writer.
    pub waiting: usize,
    /// Their payload bytes.
    pub waiting_bytes: usize,
    /// Receive time of the oldest of them.
    pub oldest_ms: Option<i64>,
    /// Start of the running transaction.
    pub txn_started_ms: Option<i64>,
    /// End of the last commit.
    pub last_commit_ms: Option<i64>,
    /// Oversized publishes rejected since start.
    pub oversize: u64,
}

impl IngestHealth {
    /// Ingest starts at `now_ms` (not yet connected).
    pub fn started(&self, now_ms: i64) {
        self.started_ms.store(now_ms, Ordering::Release);
    }

    /// The connection to the broker came up (`true`) or failed (`false`; the log says why).
    pub fn connection(&self, up: bool, now_ms: i64) {
        if self.connected.swap(up, Ordering::AcqRel) != up
            || self.since_ms.load(Ordering::Acquire) == 0
        {
            self.since_ms.store(now_ms, Ordering::Release);
        }
    }

    /// A publish received at `receive_ms` with `bytes` of payload was handed to the writer.
    pub fn queued(&self, receive_ms: i64, bytes: usize) {
        if let Ok(mut w) = self.waiting.lock() {
            w.push_back(receive_ms);
        }
        self.waiting_bytes.fetch_add(bytes, Ordering::AcqRel);
    }

    /// The writer began a transaction.
    pub fn begin(&self, now_ms: i64) {
        self.txn_started_ms.store(now_ms.max(1), Ordering::Release);
    }

    /// The writer's transaction ended (committed or not).
    pub fn end(&self, now_ms: i64) {
        self.txn_started_ms.store(0, Ordering::Release);
        self.last_commit_ms.store(now_ms, Ordering::Release);
    }

    /// The oldest `messages` waiting (with `bytes` of payload) were committed.
    pub fn committed(&self, messages: usize, bytes: usize) {
        if let Ok(mut w) = self.waiting.lock() {
            let n = messages.min(w.len());
            w.drain(..n);
        }
        self.waiting_bytes.fetch_sub(
            bytes.min(self.waiting_bytes.load(Ordering::Acquire)),
            Ordering::AcqRel,
        );
    }

    /// A publish over the wire limit was read (to be rejected and acked).
    pub fn oversized(&self) {
        self.oversize.fetch_add(1, Ordering::Relaxed);
    }

    /// The current values.
    pub fn snapshot(&self) -> Snapshot {
        let (waiting, oldest_ms) = self
            .waiting
            .lock()
            .map(|w| (w.len(), w.front().copied()))
            .unwrap_or_default();
        let nonzero = |v: i64| (v != 0).then_some(v);
        Snapshot {
            connected: self.connected.load(Ordering::Acquire),
            since_ms: self.since_ms.load(Ordering::Acquire),
            started_ms: self.started_ms.load(Ordering::Acquire),
            waiting,
            waiting_bytes: self.waiting_bytes.load(Ordering::Acquire),
            oldest_ms,
            txn_started_ms: nonzero(self.txn_started_ms.load(Ordering::Acquire)),
            last_commit_ms: nonzero(self.last_commit_ms.load(Ordering::Acquire)),
            oversize: self.oversize.load(Ordering::Relaxed),
        }
    }
}

impl Snapshot {
    /// Age of the oldest waiting message at `now_ms`, ms (0 when none waits).
    pub fn lag_ms(&self, now_ms: i64) -> i64 {
        self.oldest_ms.map_or(0, |o| (now_ms - o).max(0))
    }

    /// Why the process is not healthy at `now_ms` (empty: healthy): the writer's transaction
    /// has run longer than `stall_ms`, or messages have waited longer than that with no
    /// commit for as long. A restart may help (`/healthz`).
    pub fn stalls(&self, now_ms: i64, stall_ms: i64) -> Vec<String> {
        let mut out = Vec::new();
        let s = |ms: i64| ms / 1000;
        if let Some(t) = self.txn_started_ms {
            if now_ms - t > stall_ms {
                out.push(format!(
                    "writer: a transaction has been running for {} s",
                    s(now_ms - t)
                ));
            }
        }
        if let Some(o) = self.oldest_ms {
            let since_commit = now_ms - self.last_commit_ms.unwrap_or(self.started_ms);
            if now_ms - o > stall_ms && since_commit > stall_ms {
                out.push(format!(
                    "ingest: {} message{} wait{}, the oldest for {} s, and nothing was \
                     committed for {} s",
                    self.waiting,
                    if self.waiting == 1 { "" } else { "s" },
                    if self.waiting == 1 { "s" } else { "" },
                    s(now_ms - o),
                    s(since_commit)
                ));
            }
        }
        out
    }

    /// Why the collector does not ingest at `now_ms` although it is alive: not connected to
    /// the broker for longer than `stall_ms` (`/readyz`; a restart does not help).
    pub fn broker(&self, now_ms: i64, stall_ms: i64) -> Option<String> {
        if self.connected {
            return None;
        }
        let since = if self.since_ms == 0 {
            self.started_ms
        } else {
            self.since_ms
        };
        (since != 0 && now_ms - since > stall_ms).then(|| {
            format!(
                "mqtt: not connected to the broker for {} s (see the collector's log)",
                (now_ms - since) / 1000
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unhealthy_only_when_a_stall_lasts_longer_than_the_threshold() {
        let h = IngestHealth::default();
        h.started(1_000);
        let snap = h.snapshot();
        assert!(snap.stalls(2_000, 60_000).is_empty() && snap.broker(2_000, 60_000).is_none());
        // Never connected for longer than the threshold: not ready, still alive.
        let snap = h.snapshot();
        assert!(snap.stalls(62_000, 60_000).is_empty());
        assert!(snap
            .broker(62_000, 60_000)
            .unwrap()
            .starts_with("mqtt: not connected to the broker for 61 s"));
        h.connection(true, 62_000);
        assert!(h.snapshot().broker(63_000, 60_000).is_none());
        // Messages wait; a commit within the threshold keeps it healthy.
        h.queued(63_000, 10);
        h.queued(63_500, 20);
        h.begin(64_000);
        h.end(64_100);
        let snap = h.snapshot();
        assert_eq!(
            (snap.waiting, snap.waiting_bytes, snap.lag_ms(64_000)),
            (2, 30, 1_000)
        );
        assert!(snap.stalls(124_000, 60_000).is_empty());
        let p = snap.stalls(125_000, 60_000);
        assert!(
            p.len() == 1 && p[0].starts_with("ingest: 2 messages wait"),
            "{p:?}"
        );
        h.committed(1, 10);
        let snap = h.snapshot();
        assert_eq!(
            (snap.waiting, snap.waiting_bytes, snap.oldest_ms),
            (1, 20, Some(63_500))
        );
        // A transaction that runs too long.
        h.committed(1, 20);
        h.begin(200_000);
        let p = h.snapshot().stalls(261_000, 60_000);
        assert_eq!(
            p,
            vec!["writer: a transaction has been running for 61 s".to_owned()]
        );
        // A lost connection.
        h.end(261_000);
        h.connection(false, 300_000);
        assert!(h.snapshot().broker(359_000, 60_000).is_none());
        assert!(h
            .snapshot()
            .broker(361_000, 60_000)
            .unwrap()
            .contains("for 61 s"));
    }
}
