//! The hot reads — a catalog page, a search, a book's page, the session's user — on each engine's
//! own driver, because they are most of the traffic and the generic `sqlx::Any` driver's per-row
//! cost (values converted twice, rows sent one by one from a worker thread) dominated them.
//!
//! - SQLite: rusqlite on one read-only connection per server thread, with cached prepared
//!   statements, run inline: in WAL mode a reader never waits for the writer, and 50 rows from the
//!   page cache take microseconds, less than a hand-off to another thread would.
//! - MySQL: sqlx's native MySQL driver (binary protocol, statements prepared once per connection).
//!
//! Writes stay on the shared `Any` pool (`Db::pool`): they are few, and transactional on both engines.

use std::cell::RefCell;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use sqlx::Row;
use sqlx::mysql::{MySqlPool, MySqlPoolOptions, MySqlRow};

use crate::catalog::{BookView, PAGE_SIZE};
use crate::error::AppResult;
use crate::web::User;

pub enum Reads {
    Sqlite(Arc<PathBuf>),
    Mysql(MySqlPool),
}

/// Where a catalog page starts.
#[derive(Debug, Clone, Copy)]
pub enum Position {
    /// The n-th page by skipping rows (bounded by the caller).
    Page(i64),
    /// The books older than this id (the "Older" link).
    Before(i64),
    /// The books newer than this id (the "Newer" link), read oldest first and turned around.
    After(i64),
}

/// What a catalog page asks for. `q` is already trimmed and bounded.
pub struct Listing<'a> {
    pub position: Position,
    pub q: &'a str,
    pub in_stock: bool,
}

/// A catalog card's columns, in `BookView::new`'s order: no description (a card does not show it,
/// and it may be 5,000 characters), the status known from the WHERE.
const CARD_COLUMNS: &str =
    "b.id, b.title, b.author, '', b.price_cents, b.stock, b.cover, 'active', b.seller_id";

/// A search of at least 3 characters uses SQLite's trigram index (substring, case-insensitive,
/// like the LIKE it replaces); shorter ones scan, as no index can serve them.
const TRIGRAM_MIN: usize = 3;

/// `%q%` with LIKE's wildcards escaped by `!`.
fn like_pattern(q: &str) -> String {
    format!(
        "%{}%",
        q.to_lowercase()
            .replace('!', "!!")
            .replace('%', "!%")
            .replace('_', "!_")
    )
}

/// The whole of `q` as one FTS5 phrase: with the trigram tokenizer, a substring match.
fn fts_phrase(q: &str) -> String {
    format!("\"{}\"", q.replace('"', "\"\""))
}

/// The catalog's query and the search's values to bind, in order; a cursor id (if any) binds after
/// them. LIMIT and OFFSET are literals: SQLite re-plans a statement whenever a bound LIMIT changes
/// or is re-bound, which cost a parse per request.
fn catalog_query(
    engine_sqlite: bool,
    q: &str,
    in_stock: bool,
    position: Position,
) -> (String, Vec<String>) {
    let mut sql = format!("SELECT {CARD_COLUMNS} FROM books b WHERE b.status = 'active'");
    let mut search = Vec::new();
    if engine_sqlite && q.chars().count() >= TRIGRAM_MIN {
        // The trigram index yields the matching ids; the listing index orders them. (Letting
        // FTS5 walk its index newest first instead was 150x slower: its reverse scans re-read
        // every page.)
        sql.push_str(" AND b.id IN (SELECT rowid FROM books_search WHERE books_search MATCH ?)");
        search.push(fts_phrase(q));
    } else if !q.is_empty() {
        sql.push_str(
            " AND (LOWER(b.title) LIKE ? ESCAPE '!' OR LOWER(b.author) LIKE ? ESCAPE '!')",
        );
        search.extend([like_pattern(q), like_pattern(q)]);
    }
    if in_stock {
        sql.push_str(" AND b.stock > 0");
    }
    let limit = PAGE_SIZE + 1;
    sql.push_str(&match position {
        Position::Page(page) => format!(
            " ORDER BY b.id DESC LIMIT {limit} OFFSET {}",
            (page - 1) * PAGE_SIZE
        ),
        Position::Before(_) => format!(" AND b.id < ? ORDER BY b.id DESC LIMIT {limit}"),
        Position::After(_) => format!(" AND b.id > ? ORDER BY b.id ASC LIMIT {limit}"),
    });
    (sql, search)
}

thread_local! {
    /// This thread's read-only connection, per database file (one in a server; tests may open more).
    static SQLITE: RefCell<Vec<(Arc<PathBuf>, rusqlite::Connection)>> = const { RefCell::new(Vec::new()) };
}

fn with_sqlite<T>(
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

fn book_from_sqlite(r: &rusqlite::Row<'_>) -> rusqlite::Result<BookView> {
    Ok(BookView::new(
        r.get(0)?,
        r.get(1)?,
        r.get(2)?,
        r.get(3)?,
        r.get(4)?,
        r.get(5)?,
        r.get(6)?,
        r.get(7)?,
        r.get(8)?,
    ))
}

fn book_from_mysql(r: &MySqlRow) -> Result<BookView, sqlx::Error> {
    Ok(BookView::new(
        r.try_get(0)?,
        r.try_get(1)?,
        r.try_get(2)?,
        r.try_get(3)?,
        r.try_get(4)?,
        r.try_get(5)?,
        r.try_get(6)?,
        r.try_get(7)?,
        r.try_get(8)?,
    ))
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
            let pool = MySqlPoolOptions::new()
                .max_connections(max_connections)
                .min_connections(1)
                .acquire_timeout(Duration::from_secs(10))
                .connect(url)
                .await?;
            Ok(Reads::Mysql(pool))
        }
    }

    /// One catalog page, newest first; `true` when one more row lies beyond it in the direction read.
    pub async fn catalog(&self, listing: &Listing<'_>) -> AppResult<(Vec<BookView>, bool)> {
        let Listing {
            position,
            q,
            in_stock,
        } = *listing;
        let cursor = match position {
            Position::Page(_) => None,
            Position::Before(id) | Position::After(id) => Some(id),
        };
        let mut books = match self {
            Reads::Sqlite(path) => with_sqlite(path, |conn| {
                let (sql, search) = catalog_query(true, q, in_stock, position);
                let mut stmt = conn.prepare_cached(&sql)?;
                let mut params: Vec<rusqlite::types::Value> =
                    search.into_iter().map(Into::into).collect();
                params.extend(cursor.map(rusqlite::types::Value::from));
                stmt.query_map(rusqlite::params_from_iter(params), book_from_sqlite)?
                    .collect::<rusqlite::Result<Vec<_>>>()
            })?,
            Reads::Mysql(pool) => {
                let (sql, search) = catalog_query(false, q, in_stock, position);
                let mut statement = sqlx::query(sqlx::AssertSqlSafe(sql));
                for value in search {
                    statement = statement.bind(value);
                }
                if let Some(id) = cursor {
                    statement = statement.bind(id);
                }
                statement
                    .fetch_all(pool)
                    .await?
                    .iter()
                    .map(book_from_mysql)
                    .collect::<Result<Vec<_>, _>>()?
            }
        };
        let more = books.len() as i64 > PAGE_SIZE;
        books.truncate(PAGE_SIZE as usize);
        if matches!(position, Position::After(_)) {
            books.reverse();
        }
        Ok((books, more))
    }

    /// A book with its seller's name, whatever its status (the caller decides who may see it).
    pub async fn book(&self, id: i64) -> AppResult<Option<(BookView, String)>> {
        const SQL: &str = "SELECT b.id, b.title, b.author, b.description, b.price_cents, b.stock, b.cover, b.status, b.seller_id, u.name \
                           FROM books b JOIN users u ON u.id = b.seller_id WHERE b.id = ?";
        Ok(match self {
            Reads::Sqlite(path) => with_sqlite(path, |conn| {
                use rusqlite::OptionalExtension;
                conn.prepare_cached(SQL)?
                    .query_row([id], |r| Ok((book_from_sqlite(r)?, r.get(9)?)))
                    .optional()
            })?,
            Reads::Mysql(pool) => match sqlx::query(SQL).bind(id).fetch_optional(pool).await? {
                Some(r) => Some((book_from_mysql(&r)?, r.try_get(9)?)),
                None => None,
            },
        })
    }

    /// The user whose unexpired session has this token hash.
    pub async fn session_user(&self, token_hash: &str, now: i64) -> AppResult<Option<User>> {
        const SQL: &str = "SELECT u.id, u.name, u.is_admin FROM sessions s JOIN users u ON u.id = s.user_id \
                           WHERE s.token_hash = ? AND s.expires_at > ?";
        Ok(match self {
            Reads::Sqlite(path) => with_sqlite(path, |conn| {
                use rusqlite::OptionalExtension;
                conn.prepare_cached(SQL)?
                    .query_row(rusqlite::params![token_hash, now], |r| {
                        Ok(User {
                            id: r.get(0)?,
                            name: r.get(1)?,
                            is_admin: r.get::<_, i64>(2)? != 0,
                        })
                    })
                    .optional()
            })?,
            Reads::Mysql(pool) => {
                match sqlx::query(SQL)
                    .bind(token_hash)
                    .bind(now)
                    .fetch_optional(pool)
                    .await?
                {
                    Some(r) => Some(User {
                        id: r.try_get(0)?,
                        name: r.try_get(1)?,
                        is_admin: r.try_get::<i64, _>(2)? != 0,
                    }),
                    None => None,
                }
            }
        })
    }
}
