//! The API's read-only connections: a small pool of [`ReadDb`]s (SQLite's WAL, PostgreSQL's
//! MVCC let them read while the writer commits), used from blocking tasks so a slow query
//! never holds the runtime. Each query's rows are completed with the labels file and the OUI
//! registry as they are at that moment ([`Names`], reloaded when the files change).

use std::sync::{Arc, Mutex};

use super::error::ApiError;
use crate::read::names::Names;
use crate::read::{ReadDb, ReadError};
use crate::store::DbLocator;

/// Connections kept open between requests at most.
const POOL_KEEP: usize = 4;

/// Read-only connections to the collector's database.
pub struct Reader {
    db: DbLocator,
    pool: Mutex<Vec<ReadDb>>,
    names: Arc<Names>,
}

impl Reader {
    /// Connections to the database `db` names (opened on first use), rows completed with
    /// `names`.
    pub fn new(db: DbLocator, names: Arc<Names>) -> Arc<Reader> {
        Arc::new(Reader {
            db,
            pool: Mutex::new(Vec::new()),
            names,
        })
    }

    /// The client names and vendors rows are completed with (the live feed's rows too).
    pub fn names(&self) -> &Arc<Names> {
        &self.names
    }

    /// Runs `f` on a pooled connection (opening one if none is free).
    ///
    /// # Errors
    /// The connection cannot be opened, or `f`'s error.
    pub fn with<T>(&self, f: impl FnOnce(&ReadDb) -> Result<T, ApiError>) -> Result<T, ApiError> {
        let pooled = self.pool.lock().ok().and_then(|mut p| p.pop());
        let mut db = match pooled {
            Some(c) => c,
            None => ReadDb::open(&self.db).map_err(ApiError::from)?,
        };
        db.set_names(self.names.current(crate::timefmt::now_ms()));
        let r = f(&db);
        if let Ok(mut p) = self.pool.lock() {
            if p.len() < POOL_KEEP && db.is_usable() {
                p.push(db);
            }
        }
        r
    }

    /// [`Reader::with`] on a blocking task.
    ///
    /// # Errors
    /// As [`Reader::with`]; a panicked task is an internal error.
    pub async fn run<T: Send + 'static>(
        self: &Arc<Self>,
        f: impl FnOnce(&ReadDb) -> Result<T, ApiError> + Send + 'static,
    ) -> Result<T, ApiError> {
        let me = Arc::clone(self);
        tokio::task::spawn_blocking(move || me.with(f))
            .await
            .map_err(|e| ApiError::internal(format!("query task: {e}")))?
    }
}

impl From<ReadError> for ApiError {
    fn from(e: ReadError) -> ApiError {
        match e {
            ReadError::Open(e) => ApiError::unavailable(format!("database: {e}")),
            e => ApiError::internal(format!("query: {e}")),
        }
    }
}
