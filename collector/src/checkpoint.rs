//! WAL checkpoints on their own thread and connection.
//!
//! With SQLite's default (`wal_autocheckpoint` 1 000 pages) the commit that crosses the
//! threshold copies the WAL back into the database file and fsyncs both before it returns:
//! in the collector that is the writer thread, so every such commit held the ingest (12 % of
//! the store path's time, and the long retention transactions; docs/BENCHMARKS.md). The
//! [`Checkpointer`] raises the writer's threshold to [`WRITER_LIMIT_PAGES`] and runs
//! `PASSIVE` checkpoints from another connection every [`INTERVAL`], which never block the
//! writer: it appends to the WAL while the checkpointer copies the frames already committed,
//! and a page written by several commits between two checkpoints is copied once. The
//! writer's own checkpoint, at the raised threshold, only finishes what the thread left and
//! lets the WAL start over.

use std::path::Path;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use rusqlite::Connection;

/// How often the checkpointer copies the WAL back when nothing asks it to stop.
pub const INTERVAL: Duration = Duration::from_millis(500);

/// The writer's own checkpoint threshold, pages (64 MiB of 4 KiB pages), instead of SQLite's
/// 1 000. A passive checkpoint beside a writer that commits back to back never catches up
/// with the last frame, and SQLite starts the WAL over only once one has: with the writer's
/// checkpoints off the WAL grew without bound (595 MB for 100 000 events in the store-path
/// benchmark). At this size the writer's commit finishes the checkpoint (the thread has
/// copied most frames already) and the WAL starts over: it stayed under 85 MB.
pub const WRITER_LIMIT_PAGES: i64 = 16_384;

/// What the checkpointer has done, readable from any thread (32-bit counters: no 64-bit
/// atomics needed).
#[derive(Debug, Default)]
pub struct CheckpointStats {
    /// Checkpoints run.
    pub runs: AtomicU32,
    /// Checkpoints that failed (logged; the next one retries).
    pub errors: AtomicU32,
}

/// A thread running `PRAGMA wal_checkpoint(PASSIVE)` every [`INTERVAL`]; stopped (after a
/// last checkpoint) when dropped.
pub struct Checkpointer {
    stop: Option<mpsc::Sender<()>>,
    thread: Option<JoinHandle<()>>,
    stats: Arc<CheckpointStats>,
}

impl Checkpointer {
    /// Raises `writer`'s automatic checkpoint threshold to [`WRITER_LIMIT_PAGES`] and starts
    /// checkpointing the database at `path` (the file `writer` has open) from a connection of
    /// its own.
    ///
    /// # Errors
    /// SQLite errors setting the pragma or opening the second connection; an OS error
    /// starting the thread.
    pub fn start(path: &Path, writer: &Connection) -> anyhow::Result<Checkpointer> {
        let conn = Connection::open(path)?;
        conn.busy_timeout(Duration::from_secs(10))?;
        // Checkpoints fsync the WAL and the database file as the writer's would.
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        writer.pragma_update(None, "wal_autocheckpoint", WRITER_LIMIT_PAGES)?;
        let stats = Arc::new(CheckpointStats::default());
        let (stop, stopped) = mpsc::channel::<()>();
        let st = Arc::clone(&stats);
        let thread = std::thread::Builder::new()
            .name("sqlite-checkpoint".into())
            .spawn(move || loop {
                let last = !matches!(
                    stopped.recv_timeout(INTERVAL),
                    Err(RecvTimeoutError::Timeout)
                );
                checkpoint(&conn, &st);
                if last {
                    break;
                }
            })?;
        Ok(Checkpointer {
            stop: Some(stop),
            thread: Some(thread),
            stats,
        })
    }

    /// The counters of this checkpointer.
    pub fn stats(&self) -> Arc<CheckpointStats> {
        Arc::clone(&self.stats)
    }
}

fn checkpoint(conn: &Connection, stats: &CheckpointStats) {
    // Returns (busy, WAL frames, frames copied); busy only for modes that wait for writers.
    match conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| {
        Ok((r.get::<_, i64>(1)?, r.get::<_, i64>(2)?))
    }) {
        Ok((frames, copied)) => {
            stats.runs.fetch_add(1, Ordering::Relaxed);
            log::trace!("checkpoint: {copied} of {frames} WAL frames in the database file");
        }
        Err(e) => {
            if stats.errors.fetch_add(1, Ordering::Relaxed) == 0 {
                log::warn!("WAL checkpoint failed (retried every {INTERVAL:?}): {e}");
            }
        }
    }
}

impl Drop for Checkpointer {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_thread_checkpoints_what_the_writer_no_longer_does() {
        let dir = std::env::temp_dir().join(format!("wifisess-ckpt-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("c.db");
        let _ = std::fs::remove_file(&path);
        let _ = std::fs::remove_file(format!("{}-wal", path.display()));
        let mut w = crate::schema::open(&path).unwrap();
        let ck = Checkpointer::start(&path, &w).unwrap();
        let auto: i64 = w
            .pragma_query_value(None, "wal_autocheckpoint", |r| r.get(0))
            .unwrap();
        assert_eq!(auto, WRITER_LIMIT_PAGES);
        let db_before = std::fs::metadata(&path).unwrap().len();
        // Far more than SQLite's 1 000 pages, far less than the writer's raised threshold:
        // only the thread copies these into the database file.
        for i in 0..40 {
            let tx = w.transaction().unwrap();
            for j in 0..500 {
                tx.execute(
                    "INSERT INTO counters (name, value) VALUES (?1, ?2)",
                    rusqlite::params![format!("c{i}-{j}-{}", "x".repeat(200)), j],
                )
                .unwrap();
            }
            tx.commit().unwrap();
        }
        let stats = ck.stats();
        let runs = stats.runs.load(Ordering::Relaxed);
        let t0 = std::time::Instant::now();
        while stats.runs.load(Ordering::Relaxed) < runs + 2 {
            assert!(t0.elapsed() < Duration::from_secs(10), "no checkpoint ran");
            std::thread::sleep(Duration::from_millis(20));
        }
        assert!(
            std::fs::metadata(&path).unwrap().len() > db_before + 4 * 1024 * 1000,
            "the checkpoints copied the WAL into the database file"
        );
        assert_eq!(stats.errors.load(Ordering::Relaxed), 0);
        drop(ck);
        let n: i64 = w
            .query_row("SELECT count(*) FROM counters", [], |r| r.get(0))
            .unwrap();
        assert_eq!(n, 20_000);
        drop(w);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
