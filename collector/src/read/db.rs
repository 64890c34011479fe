//! A read-only connection to either engine and the one way queries run on it: SQL text with
//! `$1`, `$2`… placeholders (both engines read them), values as [`Val`], rows as [`Row`].

use std::path::Path;

use crate::store::sqlite::schema::{self, SchemaError};

/// A value bound to a query or read from a row.
#[derive(Debug, Clone, PartialEq)]
pub enum Val {
    /// SQL NULL.
    Null,
    /// An integer.
    Int(i64),
    /// Text.
    Text(String),
}

impl From<i64> for Val {
    fn from(v: i64) -> Val {
        Val::Int(v)
    }
}

impl From<&str> for Val {
    fn from(v: &str) -> Val {
        Val::Text(v.to_owned())
    }
}

impl From<String> for Val {
    fn from(v: String) -> Val {
        Val::Text(v)
    }
}

impl<T: Into<Val>> From<Option<T>> for Val {
    fn from(v: Option<T>) -> Val {
        v.map_or(Val::Null, Into::into)
    }
}

/// Why a query could not be answered.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// The database could not be opened for reading (missing, empty, other schema).
    #[error("{0}")]
    Open(#[from] SchemaError),
    /// SQLite refused.
    #[error("sqlite: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// A column held another type than the query expects (a damaged database or a bug).
    #[error("column {col}: expected {want}, found {found:?}")]
    Type {
        /// Column index.
        col: usize,
        /// What was expected.
        want: &'static str,
        /// What was there.
        found: Val,
    },
}

/// One result row.
#[derive(Debug, Clone, PartialEq)]
pub struct Row(pub Vec<Val>);

impl Row {
    fn get(&self, col: usize) -> &Val {
        self.0.get(col).unwrap_or(&Val::Null)
    }

    fn bad(&self, col: usize, want: &'static str) -> ReadError {
        ReadError::Type {
            col,
            want,
            found: self.get(col).clone(),
        }
    }

    /// An integer column (NULL is an error).
    ///
    /// # Errors
    /// [`ReadError::Type`].
    pub fn int(&self, col: usize) -> Result<i64, ReadError> {
        self.opt_int(col)?.ok_or_else(|| self.bad(col, "integer"))
    }

    /// An integer column that may be NULL.
    ///
    /// # Errors
    /// [`ReadError::Type`].
    pub fn opt_int(&self, col: usize) -> Result<Option<i64>, ReadError> {
        match self.get(col) {
            Val::Null => Ok(None),
            Val::Int(i) => Ok(Some(*i)),
            _ => Err(self.bad(col, "integer")),
        }
    }

    /// A flag stored as an integer (0 false) or NULL (false).
    ///
    /// # Errors
    /// [`ReadError::Type`].
    pub fn flag(&self, col: usize) -> Result<bool, ReadError> {
        Ok(self.opt_int(col)?.unwrap_or(0) != 0)
    }

    /// A text column (NULL is an error).
    ///
    /// # Errors
    /// [`ReadError::Type`].
    pub fn text(&self, col: usize) -> Result<String, ReadError> {
        self.opt_text(col)?.ok_or_else(|| self.bad(col, "text"))
    }

    /// A text column that may be NULL.
    ///
    /// # Errors
    /// [`ReadError::Type`].
    pub fn opt_text(&self, col: usize) -> Result<Option<String>, ReadError> {
        match self.get(col) {
            Val::Null => Ok(None),
            Val::Text(t) => Ok(Some(t.clone())),
            _ => Err(self.bad(col, "text")),
        }
    }
}

/// Which engine a connection talks to (for the few spots where their SQL differs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    /// SQLite.
    Sqlite,
}

/// A read-only connection. Queries never write, never create and never migrate.
pub struct ReadDb {
    conn: rusqlite::Connection,
}

impl ReadDb {
    /// Opens the SQLite database at `path` read-only (see [`schema::open_read_only`]).
    ///
    /// # Errors
    /// Missing file, no or another schema version, SQLite errors.
    pub fn open_sqlite(path: &Path) -> Result<ReadDb, ReadError> {
        Ok(ReadDb {
            conn: schema::open_read_only(path)?,
        })
    }

    /// The engine.
    pub fn dialect(&self) -> Dialect {
        Dialect::Sqlite
    }

    /// ` INDEXED BY name` on SQLite, where its planner would otherwise pick a worse index.
    pub fn indexed_by(&self, name: &str) -> String {
        match self.dialect() {
            Dialect::Sqlite => format!(" INDEXED BY {name}"),
        }
    }

    /// Runs `sql` with `params` bound to `$1`, `$2`…
    ///
    /// # Errors
    /// Database errors.
    pub fn query(&self, sql: &str, params: &[Val]) -> Result<Vec<Row>, ReadError> {
        let mut st = self.conn.prepare_cached(sql)?;
        for (i, p) in params.iter().enumerate() {
            let Some(idx) = st.parameter_index(&format!("${}", i + 1))? else {
                continue;
            };
            match p {
                Val::Null => st.raw_bind_parameter(idx, rusqlite::types::Null)?,
                Val::Int(v) => st.raw_bind_parameter(idx, v)?,
                Val::Text(v) => st.raw_bind_parameter(idx, v)?,
            }
        }
        let n = st.column_count();
        let mut rows = st.raw_query();
        let mut out = Vec::new();
        while let Some(r) = rows.next()? {
            let mut vals = Vec::with_capacity(n);
            for i in 0..n {
                vals.push(match r.get_ref(i)? {
                    rusqlite::types::ValueRef::Null => Val::Null,
                    rusqlite::types::ValueRef::Integer(v) => Val::Int(v),
                    rusqlite::types::ValueRef::Real(v) => Val::Int(v as i64),
                    rusqlite::types::ValueRef::Text(t) => {
                        Val::Text(String::from_utf8_lossy(t).into_owned())
                    }
                    rusqlite::types::ValueRef::Blob(b) => {
                        Val::Text(String::from_utf8_lossy(b).into_owned())
                    }
                });
            }
            out.push(Row(vals));
        }
        Ok(out)
    }

    /// The first row of `sql`, if any.
    ///
    /// # Errors
    /// Database errors.
    pub fn query_one(&self, sql: &str, params: &[Val]) -> Result<Option<Row>, ReadError> {
        Ok(self.query(sql, params)?.into_iter().next())
    }

    /// `EXPLAIN QUERY PLAN` of `sql` (SQLite; the query-plan test).
    ///
    /// # Errors
    /// Database errors.
    pub fn plan(&self, sql: &str, params: &[Val]) -> Result<String, ReadError> {
        let rows = self.query(&format!("EXPLAIN QUERY PLAN {sql}"), params)?;
        Ok(rows
            .iter()
            .map(|r| r.opt_text(3).ok().flatten().unwrap_or_default())
            .collect::<Vec<_>>()
            .join("; "))
    }

    /// The SQLite connection (tests of the read side build databases through it).
    pub fn sqlite(&self) -> &rusqlite::Connection {
        &self.conn
    }
}
