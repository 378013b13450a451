//! The catalog's hot reads — a catalog page, a search, a book's page — on the engines' own
//! drivers (`crate::reads`).

use sqlx::Row;
use sqlx::mysql::MySqlRow;

use crate::catalog::{BookStatus, BookView, PAGE_SIZE};
use crate::connections::{Part, Value};
use crate::db::Engine;
use crate::error::AppResult;
use crate::money::Price;
use crate::reads::{Reads, with_sqlite};

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

/// A catalog card's columns (`card_from_*`): no description (a card does not show it, and it may
/// be 5,000 characters).
const CARD_SELECT: &str = "SELECT b.id, b.title, b.author, b.price_cents, b.stock, b.cover";

/// A catalog card, borrowed from the row it is read from: a page's cards are rendered as they are
/// read, with no copy of each title and author.
pub struct Card<'a> {
    pub id: i64,
    pub title: &'a str,
    pub author: &'a str,
    pub price: Price,
    pub stock: i64,
    pub cover: Option<&'a str>,
}

/// A search of at least 3 characters can use SQLite's trigram index (substring, case-insensitive,
/// like the LIKE it replaces); shorter ones scan, as no index can serve them.
const TRIGRAM_MIN: usize = 3;

/// How many of the newest book ids a SQLite search checks in the listing's own scan before it asks
/// the trigram index for the older ones. A term on one book in ten fills a page within it (the
/// benchmark's `author 1`, on 30 %, within ~170 rows): such terms never pay for the index, whose
/// cost grows with every match; a rare term pays for at most this many cheap row checks more.
const SEARCH_WINDOW: i64 = 500;

/// How a search narrows the listing.
#[derive(Clone, Copy)]
enum Filter<'a> {
    All,
    /// SQLite: `instr` on `search_key` (lower-cased as SQLite's `lower`: ASCII) with `needle`.
    Key(&'a str),
    /// SQLite: the trigram index, for this FTS5 phrase.
    Trigram(&'a str),
    /// MySQL: LIKE on title or author (the columns' collation ignores case), this pattern.
    Like(&'a str),
}

/// Which ids a query reads, newest first unless `Above`.
#[derive(Clone, Copy)]
enum Range {
    /// The n-th page by skipping rows.
    Page(i64),
    /// Ids below this one.
    Below(i64),
    /// Ids above this one, oldest first (the caller turns them around).
    Above(i64),
    /// Ids from `floor` up to, not including, `top`.
    Between { floor: i64, top: i64 },
    /// The newest `SEARCH_WINDOW` ids (one statement: no separate read of the newest id).
    Newest,
}

/// `%q%` with LIKE's wildcards escaped by `!`.
fn like_pattern(q: &str) -> String {
    format!(
        "%{}%",
        q.replace('!', "!!").replace('%', "!%").replace('_', "!_")
    )
}

/// The whole of `q` as one FTS5 phrase: with the trigram tokenizer, a substring match.
fn fts_phrase(q: &str) -> String {
    format!("\"{}\"", q.replace('"', "\"\""))
}

/// A catalog query from FROM on (`CARD_SELECT` goes before it) and its values in order. LIMIT and
/// OFFSET are literals: SQLite re-plans a
/// statement whenever a bound LIMIT changes or is re-bound, which cost a parse per request.
///
/// MySQL is told to use the cards index: left to itself, MariaDB reads it by `status` alone and
/// filters the id bound row by row (an Older link to page 6 read 300 index entries for 51; page
/// n reads 50·n), where the index's (status, id) range gives the page's 51 directly.
fn catalog_query<'a>(
    engine: Engine,
    filter: Filter<'a>,
    in_stock: bool,
    range: Range,
) -> (String, Vec<Value<&'a str>>) {
    let hint = match engine {
        Engine::Sqlite => "",
        Engine::Mysql => " FORCE INDEX (books_cards)",
    };
    // The status is a literal, not a bound value: the planner sees the index's first column fixed.
    let active = BookStatus::Active.as_str();
    let mut sql = format!("FROM books b{hint} WHERE b.status = '{active}'");
    let mut binds = Vec::new();
    match filter {
        Filter::All => {}
        Filter::Key(needle) => {
            sql.push_str(" AND instr(b.search_key, ?) > 0");
            binds.push(Value::Text(needle));
        }
        Filter::Trigram(phrase) => {
            // The trigram index yields the matching ids; the listing index orders them. (Letting
            // FTS5 walk its index newest first instead was 150x slower: its reverse scans re-read
            // every page.)
            sql.push_str(
                " AND b.id IN (SELECT rowid FROM books_search WHERE books_search MATCH ?)",
            );
            binds.push(Value::Text(phrase));
        }
        Filter::Like(pattern) => {
            sql.push_str(" AND (b.title LIKE ? ESCAPE '!' OR b.author LIKE ? ESCAPE '!')");
            binds.extend([Value::Text(pattern), Value::Text(pattern)]);
        }
    }
    if in_stock {
        sql.push_str(" AND b.stock > 0");
    }
    let limit = PAGE_SIZE + 1;
    sql.push_str(&match range {
        Range::Page(page) => format!(
            " ORDER BY b.id DESC LIMIT {limit} OFFSET {}",
            (page - 1) * PAGE_SIZE
        ),
        Range::Below(id) => {
            binds.push(Value::Id(id));
            format!(" AND b.id < ? ORDER BY b.id DESC LIMIT {limit}")
        }
        Range::Above(id) => {
            binds.push(Value::Id(id));
            format!(" AND b.id > ? ORDER BY b.id ASC LIMIT {limit}")
        }
        Range::Between { floor, top } => {
            binds.extend([Value::Id(floor), Value::Id(top)]);
            format!(" AND b.id >= ? AND b.id < ? ORDER BY b.id DESC LIMIT {limit}")
        }
        Range::Newest => format!(
            " AND b.id >= (SELECT ifnull(max(id), 0) + 1 FROM books) - {SEARCH_WINDOW} ORDER BY b.id DESC LIMIT {limit}"
        ),
    });
    (sql, binds)
}

/// Takes a page's cards as they are read: the first `PAGE_SIZE`, then notes that one more exists.
struct Sink<'s> {
    each: &'s mut (dyn FnMut(&Card<'_>) + Send),
    seen: usize,
}

impl Sink<'_> {
    /// `false` once the page is full (the row past it is counted, not shown).
    fn take(&mut self, card: &Card<'_>) -> bool {
        self.seen += 1;
        if self.seen <= PAGE_SIZE as usize {
            (self.each)(card);
        }
        !self.full()
    }

    fn full(&self) -> bool {
        self.seen > PAGE_SIZE as usize
    }
}

fn sqlite_cards(
    conn: &rusqlite::Connection,
    (rest, binds): (String, Vec<Value<&str>>),
    sink: &mut Sink<'_>,
) -> rusqlite::Result<()> {
    let mut stmt = conn.prepare_cached(&format!("{CARD_SELECT} {rest}"))?;
    for (i, bind) in binds.iter().enumerate() {
        match bind {
            Value::Text(t) => stmt.raw_bind_parameter(i + 1, t)?,
            Value::Id(id) => stmt.raw_bind_parameter(i + 1, id)?,
        }
    }
    let mut rows = stmt.raw_query();
    while let Some(row) = rows.next()? {
        if !sink.take(&card_from_sqlite(row)?) {
            break;
        }
    }
    Ok(())
}

/// A SQLite catalog page. A search newest first checks the newest `SEARCH_WINDOW` ids in the
/// listing scan, and asks the trigram index only for what that leaves of the page.
fn sqlite_catalog(
    conn: &rusqlite::Connection,
    q: &str,
    in_stock: bool,
    range: Range,
    sink: &mut Sink<'_>,
) -> rusqlite::Result<()> {
    if q.is_empty() {
        return sqlite_cards(
            conn,
            catalog_query(Engine::Sqlite, Filter::All, in_stock, range),
            sink,
        );
    }
    // Control characters never match: `search_key` separates title and author by a newline.
    let q: String = q
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    let needle = q.to_ascii_lowercase();
    let phrase = fts_phrase(&q);
    let index = if q.chars().count() >= TRIGRAM_MIN {
        Filter::Trigram(&phrase)
    } else {
        Filter::Key(&needle)
    };
    let window = match range {
        // Beyond ASCII, `search_key`'s case folding is not the trigram index's: the index alone.
        _ if !q.is_ascii() => None,
        Range::Page(1) => Some(Range::Newest),
        Range::Below(top) => Some(Range::Between {
            floor: top - SEARCH_WINDOW,
            top,
        }),
        _ => None,
    };
    let Some(window) = window else {
        return sqlite_cards(
            conn,
            catalog_query(Engine::Sqlite, index, in_stock, range),
            sink,
        );
    };
    sqlite_cards(
        conn,
        catalog_query(Engine::Sqlite, Filter::Key(&needle), in_stock, window),
        sink,
    )?;
    if !sink.full() {
        // Where the window ended: `Newest` asked the database, so ask again only now.
        let floor = match window {
            Range::Between { floor, .. } => floor,
            _ => {
                conn.prepare_cached("SELECT ifnull(max(id), 0) + 1 FROM books")?
                    .query_row([], |r| r.get::<_, i64>(0))?
                    - SEARCH_WINDOW
            }
        };
        if floor > 1 {
            sqlite_cards(
                conn,
                catalog_query(Engine::Sqlite, index, in_stock, Range::Below(floor)),
                sink,
            )?;
        }
    }
    Ok(())
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

fn card_from_sqlite<'r>(r: &'r rusqlite::Row<'_>) -> rusqlite::Result<Card<'r>> {
    let text = |i: usize| {
        r.get_ref(i)?.as_str_or_null().map_err(|e| {
            rusqlite::Error::FromSqlConversionFailure(i, rusqlite::types::Type::Text, Box::new(e))
        })
    };
    Ok(Card {
        id: r.get(0)?,
        title: text(1)?.unwrap_or_default(),
        author: text(2)?.unwrap_or_default(),
        price: Price(r.get(3)?),
        stock: r.get(4)?,
        cover: text(5)?,
    })
}

fn card_from_mysql(r: &MySqlRow) -> Result<Card<'_>, sqlx::Error> {
    Ok(Card {
        id: r.try_get(0)?,
        title: r.try_get(1)?,
        author: r.try_get(2)?,
        price: Price(r.try_get(3)?),
        stock: r.try_get(4)?,
        cover: r.try_get(5)?,
    })
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

/// One catalog page: `each` gets its cards in the order read (newest first, or oldest first
/// after `Position::After`); `true` when one more lies beyond it in that direction.
pub async fn catalog(
    reads: &Reads,
    listing: &Listing<'_>,
    each: &mut (dyn FnMut(&Card<'_>) + Send),
) -> AppResult<bool> {
    let Listing {
        position,
        q,
        in_stock,
    } = *listing;
    let range = match position {
        Position::Page(page) => Range::Page(page),
        Position::Before(id) => Range::Below(id),
        Position::After(id) => Range::Above(id),
    };
    let mut sink = Sink { each, seen: 0 };
    match reads {
        Reads::Sqlite(path) => with_sqlite(path, |conn| {
            sqlite_catalog(conn, q, in_stock, range, &mut sink)
        })?,
        Reads::Mysql(connections) => {
            // A plain page (the most asked for) builds no pattern.
            let pattern = (!q.is_empty()).then(|| like_pattern(q));
            let filter = pattern.as_deref().map_or(Filter::All, Filter::Like);
            let (rest, values) = catalog_query(Engine::Mysql, filter, in_stock, range);
            let rows = connections
                .batched(Part {
                    select: CARD_SELECT,
                    rest,
                    values: values.iter().map(Value::owned).collect(),
                })
                .await?;
            // The page's order, whatever order the UNION of its batch gave its rows.
            let mut keyed = rows
                .into_iter()
                .map(|row| Ok((row.try_get::<i64, _>(0)?, row)))
                .collect::<Result<Vec<_>, sqlx::Error>>()?;
            match range {
                Range::Above(_) => keyed.sort_by_key(|(id, _)| *id),
                _ => keyed.sort_by_key(|(id, _)| std::cmp::Reverse(*id)),
            }
            for (_, row) in keyed {
                if !sink.take(&card_from_mysql(&row)?) {
                    break;
                }
            }
        }
    }
    Ok(sink.full())
}

/// A book, whatever its status (the caller decides who may see it).
pub async fn book(reads: &Reads, id: i64) -> AppResult<Option<BookView>> {
    const SELECT: &str = "SELECT b.id, b.title, b.author, b.description, b.price_cents, b.stock, b.cover, b.status, b.seller_id";
    const REST: &str = "FROM books b WHERE b.id = ?";
    reads
        .one(
            SELECT,
            REST,
            vec![Value::Id(id)],
            book_from_sqlite,
            book_from_mysql,
        )
        .await
}
