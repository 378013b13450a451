//! The hot reads' connections, on each engine's own driver: the reads are most of the traffic,
//! and the generic `sqlx::Any` driver's per-row cost (values converted twice, rows sent one by one
//! from a worker thread) dominated them. Each domain writes its own queries on them
//! (`catalog::reads`, `accounts::identity`).
//!
//! - SQLite: rusqlite on one read-only connection per server thread, with cached prepared
//!   statements, run inline: in WAL mode a reader never waits for the writer, and 50 rows from the
//!   page cache take microseconds, less than a hand-off to another thread would.
//! - MySQL: sqlx's native MySQL driver (binary protocol, statements prepared once per connection),
//!   on connections of the event loop's own (`Connections`: one round trip per read).
//!
//! Writes stay on the shared `Any` pool (`Db::pool`): they are few, and transactional on both engines.

use std::cell::RefCell;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use sqlx::mysql::MySqlRow;

use crate::connections::{Connections, Part, Value};
use crate::error::AppResult;

pub enum Reads {
    Sqlite(Arc<PathBuf>),
    Mysql(Arc<Connections>),
}

thread_local! {
    /// This thread's read-only connection, per database file (one in a server; tests may open more).
    static SQLITE: RefCell<Vec<(Arc<PathBuf>, rusqlite::Connection)>> = const { RefCell::new(Vec::new()) };
}

/// Runs `f` on this thread's read-only connection to the SQLite file at `path`.
pub fn with_sqlite<T>(
    path: &Arc<PathBuf>,
    f: impl FnOnce(&rusqlite::Connection) -> rusqlite::Result<T>,
) -> rusqlite::Result<T> {
    SQLITE.with(|cell| {
        let mut conns = cell.borrow_mut();
        let at = match conns.iter().position(|(p, _)| p == path) {
            Some(i) => i,
            None => {
                let conn = rusqlite::Connection::open_with_flags(
                    path.as_path(),
                    rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY
                        | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
                )?;
                // A reader only waits in rare WAL housekeeping; never long on a server thread.
                conn.busy_timeout(Duration::from_millis(200))?;
                conn.set_prepared_statement_cache_capacity(32);
                conns.push((Arc::clone(path), conn));
                conns.len() - 1
            }
        };
        f(&conns[at].1)
    })
}

impl Reads {
    pub async fn open(url: &str, max_connections: u32) -> Result<Reads, sqlx::Error> {
        if let Some(rest) = url.strip_prefix("sqlite:") {
            let path = rest.trim_start_matches("//");
            let path = path.split('?').next().unwrap_or(path);
            if path.is_empty() || path.starts_with(":memory:") {
                return Err(sqlx::Error::Configuration(
                    "an in-memory SQLite database cannot be shared by the server's threads: give a file path".into(),
                ));
            }
            Ok(Reads::Sqlite(Arc::new(PathBuf::from(path))))
        } else {
            let connections = Connections::open(url, max_connections).await?;
            Ok(Reads::Mysql(Arc::new(connections)))
        }
    }

    /// The row of a point lookup (`select` and `rest`, from FROM on, with `values` bound in
    /// order), read by `sqlite` or `mysql` as the engine is; None when there is none.
    pub async fn one<T>(
        &self,
        select: &'static str,
        rest: &'static str,
        values: Vec<Value>,
        sqlite: impl FnOnce(&rusqlite::Row<'_>) -> rusqlite::Result<T>,
        mysql: impl FnOnce(&MySqlRow) -> Result<T, sqlx::Error>,
    ) -> AppResult<Option<T>> {
        Ok(match self {
            Reads::Sqlite(path) => with_sqlite(path, |conn| {
                let mut stmt = conn.prepare_cached(&format!("{select} {rest}"))?;
                for (i, value) in values.iter().enumerate() {
                    match value {
                        Value::Text(t) => stmt.raw_bind_parameter(i + 1, t)?,
                        Value::Id(id) => stmt.raw_bind_parameter(i + 1, id)?,
                    }
                }
                let mut rows = stmt.raw_query();
                rows.next()?.map(sqlite).transpose()
            })?,
            Reads::Mysql(connections) => {
                let part = Part {
                    select,
                    rest: rest.to_string(),
                    values,
                };
                match connections.batched(part).await?.first() {
                    Some(r) => Some(mysql(r)?),
                    None => None,
                }
            }
        })
    }
}
