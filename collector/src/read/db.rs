//! A read-only connection to either engine and the one way queries run on it: SQL text with
//! `$1`, `$2`… placeholders (both engines read them), values as [`Val`], rows as [`Row`].
//! PostgreSQL runs every query in a read-only transaction (the session's default) with
//! prepared statements kept per connection; its booleans read as integers 0/1, as SQLite's.

use std::cell::RefCell;
use std::collections::HashMap;
use std::path::Path;

use postgres::types::{IsNull, ToSql, Type};

use crate::store::postgres::schema as pg_schema;
use crate::store::sqlite::schema;
use crate::store::{DbLocator, SchemaError};

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
    /// PostgreSQL refused, or the connection failed.
    #[error("postgres: {}", crate::store::postgres::describe(.0))]
    Postgres(#[from] postgres::Error),
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
    /// PostgreSQL.
    Postgres,
}

/// A PostgreSQL connection and its prepared statements.
struct PgConn {
    client: postgres::Client,
    stmts: HashMap<String, postgres::Statement>,
}

enum Conn {
    Sqlite(rusqlite::Connection),
    Postgres(Box<RefCell<PgConn>>),
}

/// A read-only connection. Queries never write, never create and never migrate. It carries
/// the client names and vendors ([`super::names::Directory`]) its rows are completed with.
pub struct ReadDb {
    conn: Conn,
    names: std::sync::Arc<super::names::Directory>,
}

impl ToSql for Val {
    fn to_sql(
        &self,
        ty: &Type,
        out: &mut bytes::BytesMut,
    ) -> Result<IsNull, Box<dyn std::error::Error + Sync + Send>> {
        match self {
            Val::Null => Ok(IsNull::Yes),
            Val::Int(v) => match *ty {
                Type::INT2 => i16::try_from(*v)?.to_sql(ty, out),
                Type::INT4 => i32::try_from(*v)?.to_sql(ty, out),
                Type::BOOL => (*v != 0).to_sql(ty, out),
                _ => v.to_sql(ty, out),
            },
            Val::Text(t) => t.as_str().to_sql(ty, out),
        }
    }

    fn accepts(ty: &Type) -> bool {
        <i64 as ToSql>::accepts(ty)
            || <i32 as ToSql>::accepts(ty)
            || <i16 as ToSql>::accepts(ty)
            || <bool as ToSql>::accepts(ty)
            || <&str as ToSql>::accepts(ty)
    }

    postgres::types::to_sql_checked!();
}

fn pg_val(r: &postgres::Row, i: usize) -> Result<Val, ReadError> {
    let ty = r.columns()[i].type_();
    let v = match *ty {
        Type::INT8 => r.try_get::<_, Option<i64>>(i)?.into(),
        Type::INT4 => r.try_get::<_, Option<i32>>(i)?.map(i64::from).into(),
        Type::INT2 => r.try_get::<_, Option<i16>>(i)?.map(i64::from).into(),
        Type::BOOL => r.try_get::<_, Option<bool>>(i)?.map(i64::from).into(),
        Type::FLOAT8 => r.try_get::<_, Option<f64>>(i)?.map(|f| f as i64).into(),
        Type::FLOAT4 => r.try_get::<_, Option<f32>>(i)?.map(|f| f as i64).into(),
        Type::BYTEA => r
            .try_get::<_, Option<&[u8]>>(i)?
            .map(|b| String::from_utf8_lossy(b).into_owned())
            .into(),
        _ => r.try_get::<_, Option<String>>(i)?.into(),
    };
    Ok(v)
}

impl ReadDb {
    /// Opens the database `db` names, read-only.
    ///
    /// # Errors
    /// Missing, empty or another schema version; the engine's errors.
    pub fn open(db: &DbLocator) -> Result<ReadDb, ReadError> {
        match db {
            DbLocator::Sqlite(p) => ReadDb::open_sqlite(p),
            DbLocator::Postgres(u) => ReadDb::open_postgres(u),
        }
    }

    /// Opens the SQLite database at `path` read-only (see [`schema::open_read_only`]).
    ///
    /// # Errors
    /// Missing file, no or another schema version, SQLite errors.
    pub fn open_sqlite(path: &Path) -> Result<ReadDb, ReadError> {
        Ok(ReadDb {
            conn: Conn::Sqlite(schema::open_read_only(path)?),
            names: Default::default(),
        })
    }

    /// Connects to the PostgreSQL database `url` with read-only transactions, checking its
    /// schema version (never migrating it).
    ///
    /// # Errors
    /// Unreachable, no or another schema version.
    pub fn open_postgres(url: &str) -> Result<ReadDb, ReadError> {
        let mut client = pg_schema::connect(url, true)?;
        pg_schema::check_version(&mut client)?;
        Ok(ReadDb {
            conn: Conn::Postgres(Box::new(RefCell::new(PgConn {
                client,
                stmts: HashMap::new(),
            }))),
            names: Default::default(),
        })
    }

    /// The client names and vendors rows are completed with.
    pub fn names(&self) -> &super::names::Directory {
        &self.names
    }

    /// Completes rows with `names` from now on.
    pub fn set_names(&mut self, names: std::sync::Arc<super::names::Directory>) {
        self.names = names;
    }

    /// The engine.
    pub fn dialect(&self) -> Dialect {
        match self.conn {
            Conn::Sqlite(_) => Dialect::Sqlite,
            Conn::Postgres(_) => Dialect::Postgres,
        }
    }

    /// ` INDEXED BY name` on SQLite, where its planner would otherwise pick a worse index;
    /// nothing on PostgreSQL (its planner picks from statistics).
    pub fn indexed_by(&self, name: &str) -> String {
        match self.dialect() {
            Dialect::Sqlite => format!(" INDEXED BY {name}"),
            Dialect::Postgres => String::new(),
        }
    }

    /// Whether the connection still works (a PostgreSQL connection can be lost; the pool then
    /// opens another).
    pub fn is_usable(&self) -> bool {
        match &self.conn {
            Conn::Sqlite(_) => true,
            Conn::Postgres(c) => !c.borrow().client.is_closed(),
        }
    }

    /// Runs `sql` with `params` bound to `$1`, `$2`…
    ///
    /// # Errors
    /// Database errors.
    pub fn query(&self, sql: &str, params: &[Val]) -> Result<Vec<Row>, ReadError> {
        let conn = match &self.conn {
            Conn::Sqlite(c) => c,
            Conn::Postgres(c) => return pg_query(&mut c.borrow_mut(), sql, params),
        };
        let mut st = conn.prepare_cached(sql)?;
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

    /// The engine's plan of `sql`: SQLite's `EXPLAIN QUERY PLAN` details, PostgreSQL's
    /// `EXPLAIN` lines, joined with `; ` (the query-plan tests).
    ///
    /// # Errors
    /// Database errors.
    pub fn plan(&self, sql: &str, params: &[Val]) -> Result<String, ReadError> {
        let (explain, col) = match self.dialect() {
            Dialect::Sqlite => ("EXPLAIN QUERY PLAN", 3),
            Dialect::Postgres => ("EXPLAIN (COSTS OFF)", 0),
        };
        let rows = self.query(&format!("{explain} {sql}"), params)?;
        Ok(rows
            .iter()
            .map(|r| {
                r.opt_text(col)
                    .ok()
                    .flatten()
                    .unwrap_or_default()
                    .trim()
                    .to_owned()
            })
            .collect::<Vec<_>>()
            .join("; "))
    }

    /// The SQLite connection, if this is one (tests of the read side build databases through
    /// it).
    pub fn sqlite(&self) -> Option<&rusqlite::Connection> {
        match &self.conn {
            Conn::Sqlite(c) => Some(c),
            Conn::Postgres(_) => None,
        }
    }
}

fn pg_query(c: &mut PgConn, sql: &str, params: &[Val]) -> Result<Vec<Row>, ReadError> {
    let st = match c.stmts.get(sql) {
        Some(s) => s.clone(),
        None => {
            let s = c.client.prepare(sql)?;
            if c.stmts.len() >= pg_schema::STATEMENT_CACHE {
                c.stmts.clear();
            }
            c.stmts.insert(sql.to_owned(), s.clone());
            s
        }
    };
    // Parameters the statement does not use are not sent (as on SQLite).
    let n = st.params().len();
    let args: Vec<&(dyn ToSql + Sync)> = params
        .iter()
        .take(n)
        .map(|v| v as &(dyn ToSql + Sync))
        .collect();
    let rows = c.client.query(&st, &args)?;
    rows.iter()
        .map(|r| {
            (0..r.len())
                .map(|i| pg_val(r, i))
                .collect::<Result<_, _>>()
                .map(Row)
        })
        .collect()
}
