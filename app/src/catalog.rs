//! The catalog: the home page, the paginated list (newest first, search by title or author,
//! in-stock filter) and a page per book.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use askama::Template;
use askama_web::WebTemplate;
use axum::extract::{Path, Query, State};
use axum::response::IntoResponse;
use serde::Deserialize;
use sqlx::Row;
use sqlx::any::AnyRow;

use crate::AppState;
use crate::error::{AppError, AppResult};
use crate::money;
use crate::web::{Ctx, PageCtx, percent_encode};

pub const PAGE_SIZE: i64 = 50;

/// The first catalog pages without a search, kept for at most a second. Every write on this replica
/// clears it at once (a generation counter), so a seller sees a new book immediately; another
/// replica's writes show up within the second. Buying stays atomic in the database either way.
#[derive(Default)]
pub struct CatalogCache {
    generation: AtomicU64,
    entries: Mutex<HashMap<(i64, bool), CachedPage>>,
}

struct CachedPage {
    generation: u64,
    at: Instant,
    books: Arc<Vec<BookView>>,
    has_next: bool,
}

const CACHE_TTL: Duration = Duration::from_secs(1);
const CACHED_PAGES: i64 = 5;

impl CatalogCache {
    pub fn invalidate(&self) {
        self.generation.fetch_add(1, Ordering::Release);
    }

    fn get(&self, key: (i64, bool)) -> Option<(Arc<Vec<BookView>>, bool)> {
        let generation = self.generation.load(Ordering::Acquire);
        let entries = self.entries.lock().expect("catalog cache lock");
        entries
            .get(&key)
            .filter(|e| e.generation == generation && e.at.elapsed() < CACHE_TTL)
            .map(|e| (Arc::clone(&e.books), e.has_next))
    }

    fn put(&self, key: (i64, bool), generation: u64, books: Arc<Vec<BookView>>, has_next: bool) {
        self.entries.lock().expect("catalog cache lock").insert(
            key,
            CachedPage {
                generation,
                at: Instant::now(),
                books,
                has_next,
            },
        );
    }
}

pub struct BookView {
    pub id: i64,
    pub title: String,
    pub author: String,
    pub description: String,
    pub price: String,
    pub price_cents: i64,
    pub stock: i64,
    pub cover: Option<String>,
    pub status: String,
    pub seller_id: i64,
}

pub const BOOK_COLUMNS: &str =
    "id, title, author, description, price_cents, stock, cover, status, seller_id";

impl BookView {
    pub fn from_row(r: &AnyRow) -> BookView {
        let price_cents: i64 = r.get(4);
        BookView {
            id: r.get(0),
            title: r.get(1),
            author: r.get(2),
            description: r.get(3),
            price: money::format(price_cents),
            price_cents,
            stock: r.get(5),
            cover: r.get(6),
            status: r.get(7),
            seller_id: r.get(8),
        }
    }
}

#[derive(Template, WebTemplate)]
#[template(path = "home.html")]
struct HomePage {
    ctx: PageCtx,
}

pub async fn home(ctx: Ctx) -> impl IntoResponse {
    HomePage { ctx: (&ctx).into() }
}

#[derive(Template, WebTemplate)]
#[template(path = "catalog.html")]
struct CatalogPage {
    ctx: PageCtx,
    books: Arc<Vec<BookView>>,
    q: String,
    in_stock: bool,
    page: i64,
    has_next: bool,
    query_suffix: String,
}

#[derive(Deserialize)]
pub struct CatalogQuery {
    page: Option<String>,
    q: Option<String>,
    in_stock: Option<String>,
}

/// One page, newest first by id (ids only grow); one row more than a page tells if there is a next.
async fn fetch_page(
    state: &AppState,
    page: i64,
    q: &str,
    in_stock: bool,
) -> AppResult<(Vec<BookView>, bool)> {
    let mut sql = format!("SELECT {BOOK_COLUMNS} FROM books WHERE status = 'active'");
    if in_stock {
        sql.push_str(" AND stock > 0");
    }
    if !q.is_empty() {
        sql.push_str(" AND (LOWER(title) LIKE ? ESCAPE '!' OR LOWER(author) LIKE ? ESCAPE '!')");
    }
    sql.push_str(" ORDER BY id DESC LIMIT ? OFFSET ?");
    let mut statement = sqlx::query(sqlx::AssertSqlSafe(sql));
    if !q.is_empty() {
        let pattern = format!(
            "%{}%",
            q.to_lowercase()
                .replace('!', "!!")
                .replace('%', "!%")
                .replace('_', "!_")
        );
        statement = statement.bind(pattern.clone()).bind(pattern);
    }
    let rows = statement
        .bind(PAGE_SIZE + 1)
        .bind((page - 1) * PAGE_SIZE)
        .fetch_all(&state.db.pool)
        .await?;
    let has_next = rows.len() as i64 > PAGE_SIZE;
    Ok((
        rows.iter()
            .take(PAGE_SIZE as usize)
            .map(BookView::from_row)
            .collect(),
        has_next,
    ))
}

pub async fn list(
    State(state): State<AppState>,
    ctx: Ctx,
    Query(query): Query<CatalogQuery>,
) -> AppResult<impl IntoResponse> {
    let page = match query.page.as_deref() {
        None | Some("") => 1,
        Some(p) => p
            .parse::<i64>()
            .ok()
            .filter(|p| (1..=100_000).contains(p))
            .ok_or_else(|| {
                AppError::BadRequest("the page number must be a whole number from 1".into())
            })?,
    };
    let q: String = query
        .q
        .unwrap_or_default()
        .trim()
        .chars()
        .take(100)
        .collect();
    let in_stock = query.in_stock.is_some_and(|v| v == "1" || v == "on");
    let cacheable = q.is_empty() && page <= CACHED_PAGES;
    let cached = if cacheable {
        state.catalog.get((page, in_stock))
    } else {
        None
    };
    let (books, has_next) = match cached {
        Some(hit) => hit,
        None => {
            let generation = state.catalog.generation.load(Ordering::Acquire);
            let (books, has_next) = fetch_page(&state, page, &q, in_stock).await?;
            let books = Arc::new(books);
            if cacheable {
                state
                    .catalog
                    .put((page, in_stock), generation, Arc::clone(&books), has_next);
            }
            (books, has_next)
        }
    };
    let mut query_suffix = String::new();
    if !q.is_empty() {
        query_suffix.push_str(&format!("&q={}", percent_encode(&q)));
    }
    if in_stock {
        query_suffix.push_str("&in_stock=1");
    }
    Ok(CatalogPage {
        ctx: (&ctx).into(),
        books,
        q,
        in_stock,
        page,
        has_next,
        query_suffix,
    })
}

#[derive(Template, WebTemplate)]
#[template(path = "book.html")]
struct BookPage {
    ctx: PageCtx,
    book: BookView,
    seller: String,
    is_owner: bool,
}

pub fn parse_id(raw: &str) -> AppResult<i64> {
    raw.parse::<i64>()
        .ok()
        .filter(|id| *id > 0)
        .ok_or(AppError::NotFound)
}

pub async fn detail(
    State(state): State<AppState>,
    ctx: Ctx,
    Path(id): Path<String>,
) -> AppResult<impl IntoResponse> {
    let id = parse_id(&id)?;
    let row = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {BOOK_COLUMNS} FROM books WHERE id = ?"
    )))
    .bind(id)
    .fetch_optional(&state.db.pool)
    .await?
    .ok_or(AppError::NotFound)?;
    let book = BookView::from_row(&row);
    let is_owner = ctx.user.as_ref().is_some_and(|u| u.id == book.seller_id);
    if book.status != "active" && !is_owner {
        return Err(AppError::NotFound);
    }
    let seller: String = sqlx::query("SELECT name FROM users WHERE id = ?")
        .bind(book.seller_id)
        .fetch_one(&state.db.pool)
        .await?
        .get(0);
    Ok(BookPage {
        ctx: (&ctx).into(),
        book,
        seller,
        is_owner,
    })
}
