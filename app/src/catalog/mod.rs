//! The catalog: the home page, the paginated list (newest first, search by title or author,
//! in-stock filter), a page per book, and selling (`selling`). It owns the `books` table (and
//! its search index); buying reserves copies through its `Stock` port (`stock`).

pub mod api;
pub mod reads;
pub mod selling;
pub mod stock;

pub use stock::Local;

use askama::Template;
use askama_web::WebTemplate;
use axum::extract::{Path, Query, State};
use axum::response::IntoResponse;
use serde::Deserialize;
use sqlx::Row;
use sqlx::any::AnyRow;

use crate::AppState;
use crate::db::Migration;
use crate::error::{AppError, AppResult};
use crate::money;
use crate::ports::{BookOrders, Identity};
use crate::web::{Ctx, PageCtx, percent_encode};
use reads::{Card, Listing, Position};

pub const PAGE_SIZE: i64 = 50;

/// The catalog's tables: `books`, its search index and triggers.
pub const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        sqlite: include_str!("../../migrations/catalog/1-sqlite.sql"),
        mysql: include_str!("../../migrations/catalog/1-mysql.sql"),
    },
    Migration {
        version: 2,
        sqlite: include_str!("../../migrations/catalog/2-sqlite.sql"),
        mysql: include_str!("../../migrations/catalog/2-mysql.sql"),
    },
    Migration {
        version: 3,
        sqlite: include_str!("../../migrations/catalog/3-sqlite.sql"),
        mysql: include_str!("../../migrations/catalog/3-mysql.sql"),
    },
    Migration {
        version: 6,
        sqlite: include_str!("../../migrations/catalog/6-sqlite.sql"),
        mysql: include_str!("../../migrations/catalog/6-mysql.sql"),
    },
];

/// Whether a listing is on sale. A withdrawn one stays for its orders' history.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BookStatus {
    Active,
    Withdrawn,
}

impl BookStatus {
    /// As stored in `books.status`.
    pub const fn as_str(self) -> &'static str {
        match self {
            BookStatus::Active => "active",
            BookStatus::Withdrawn => "withdrawn",
        }
    }

    /// A stored status; anything but `active` is off sale.
    pub fn parse(s: &str) -> BookStatus {
        if s == "active" {
            BookStatus::Active
        } else {
            BookStatus::Withdrawn
        }
    }
}

impl std::fmt::Display for BookStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

pub struct BookView {
    pub id: i64,
    pub title: String,
    pub author: String,
    pub description: String,
    pub price: money::Price,
    pub price_cents: i64,
    pub stock: i64,
    pub cover: Option<String>,
    pub status: BookStatus,
    pub seller_id: i64,
}

pub const BOOK_COLUMNS: &str =
    "id, title, author, description, price_cents, stock, cover, status, seller_id";

impl BookView {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        id: i64,
        title: String,
        author: String,
        description: String,
        price_cents: i64,
        stock: i64,
        cover: Option<String>,
        status: String,
        seller_id: i64,
    ) -> BookView {
        BookView {
            id,
            title,
            author,
            description,
            price: money::Price(price_cents),
            price_cents,
            stock,
            cover,
            status: BookStatus::parse(&status),
            seller_id,
        }
    }

    pub fn from_row(r: &AnyRow) -> BookView {
        BookView::new(
            r.get(0),
            r.get(1),
            r.get(2),
            r.get(3),
            r.get(4),
            r.get(5),
            r.get(6),
            r.get(7),
            r.get(8),
        )
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
    /// The cards, rendered as they were read (`CardHtml`).
    cards: String,
    /// What the page shows of the results: their count when it is known without counting more
    /// rows than the page read (the last page), else the range shown.
    summary: String,
    q: String,
    in_stock: bool,
    page: i64,
    /// Links to the newer and the older page: cursors on the first and the last book shown.
    newer: Option<String>,
    older: Option<String>,
}

#[derive(Template)]
#[template(path = "card.html")]
struct CardHtml<'a> {
    b: &'a Card<'a>,
}

/// A page's cards rendered in the order read, and the ids of the first and last shown.
#[derive(Default)]
struct Cards {
    html: String,
    /// Where each card starts in `html`.
    starts: Vec<usize>,
    ids: Option<(i64, i64)>,
    failed: Option<askama::Error>,
}

impl Cards {
    fn add(&mut self, card: &Card<'_>) {
        self.starts.push(self.html.len());
        self.ids = Some((self.ids.map_or(card.id, |(first, _)| first), card.id));
        if let Err(e) = (CardHtml { b: card }).render_into(&mut self.html) {
            self.failed.get_or_insert(e);
        }
    }

    /// Read oldest first (after a "Newer" link): shown newest first.
    fn reverse(&mut self) {
        let mut html = String::with_capacity(self.html.len());
        let mut end = self.html.len();
        for &start in self.starts.iter().rev() {
            html.push_str(&self.html[start..end]);
            end = start;
        }
        self.html = html;
        self.ids = self.ids.map(|(first, last)| (last, first));
    }
}

#[derive(Deserialize)]
pub struct CatalogQuery {
    page: Option<String>,
    before: Option<String>,
    after: Option<String>,
    q: Option<String>,
    in_stock: Option<String>,
}

/// Page numbers without a cursor skip rows (OFFSET): bounded, so no request walks the whole table.
const MAX_OFFSET_PAGE: i64 = 200;

fn number(raw: Option<&str>, what: &str, max: i64) -> AppResult<Option<i64>> {
    match raw {
        None | Some("") => Ok(None),
        Some(p) => p
            .parse::<i64>()
            .ok()
            .filter(|p| (1..=max).contains(p))
            .map(Some)
            .ok_or_else(|| AppError::BadRequest(format!("{what} must be a whole number from 1"))),
    }
}

/// The catalog, newest first. The "Older" link carries the last book's id (`before`), "Newer" the
/// first's (`after`): each page is one index range scan, however deep (keyset pagination).
/// `page` only numbers the page, unless it comes without a cursor (an old or typed link).
pub async fn list(
    State(state): State<AppState>,
    ctx: Ctx,
    Query(query): Query<CatalogQuery>,
) -> AppResult<impl IntoResponse> {
    let before = number(query.before.as_deref(), "the position", i64::MAX)?;
    let after = number(query.after.as_deref(), "the position", i64::MAX)?;
    let page = number(query.page.as_deref(), "the page number", 1_000_000)?.unwrap_or(1);
    let position = match (before, after) {
        (Some(id), _) => Position::Before(id),
        (None, Some(id)) => Position::After(id),
        (None, None) if page <= MAX_OFFSET_PAGE => Position::Page(page),
        (None, None) => {
            return Err(AppError::BadRequest(format!(
                "pages past {MAX_OFFSET_PAGE} are reached with the Older link"
            )));
        }
    };
    let q: String = query
        .q
        .unwrap_or_default()
        .trim()
        .chars()
        .take(100)
        .collect();
    let in_stock = query.in_stock.is_some_and(|v| v == "1" || v == "on");
    let mut cards = Cards {
        html: String::with_capacity(16 * 1024),
        ..Cards::default()
    };
    let more = reads::catalog(
        &state.db.reads,
        &Listing {
            position,
            q: &q,
            in_stock,
        },
        &mut |card| cards.add(card),
    )
    .await?;
    if let Some(e) = cards.failed {
        return Err(AppError::Internal(format!("rendering a card: {e}")));
    }
    if matches!(position, Position::After(_)) {
        cards.reverse();
    }
    // `more`: one row past the page exists in the direction read.
    let (has_newer, has_older) = match position {
        Position::After(_) => (more, true),
        Position::Before(_) => (true, more),
        Position::Page(p) => (p > 1, more),
    };
    let mut suffix = String::new();
    if !q.is_empty() {
        suffix.push_str(&format!("&q={}", percent_encode(&q)));
    }
    if in_stock {
        suffix.push_str("&in_stock=1");
    }
    let newer = match (has_newer && page > 1, cards.ids) {
        (true, Some((first, _))) => Some(format!("/books?after={first}&page={}{suffix}", page - 1)),
        (true, None) => Some(format!("/books?{}", suffix.trim_start_matches('&'))),
        _ => None,
    };
    let older = match (has_older, cards.ids) {
        (true, Some((_, last))) => Some(format!("/books?before={last}&page={}{suffix}", page + 1)),
        _ => None,
    };
    let count = cards.starts.len() as i64;
    let first = (page - 1) * PAGE_SIZE + 1;
    let last = first + count - 1;
    let what = if q.is_empty() {
        String::new()
    } else {
        format!(" for “{q}”")
    };
    let plural = |n: i64| if n == 1 { "book" } else { "books" };
    let summary = match (count, has_older) {
        (0, _) => format!("No books found{what}."),
        (n, false) if page == 1 => format!("{n} {}{what}.", plural(n)),
        (_, false) => format!("Books {first}–{last} of {last}{what}."),
        (_, true) => format!("Books {first}–{last}{what}; more on the next pages."),
    };
    Ok(CatalogPage {
        ctx: (&ctx).into(),
        summary,
        cards: cards.html,
        q,
        in_stock,
        page,
        newer,
        older,
    })
}

#[derive(Template, WebTemplate)]
#[template(path = "book.html")]
struct BookPage {
    ctx: PageCtx,
    book: BookView,
    seller: String,
    is_owner: bool,
    /// The visitor's unpaid order of this book, if they hold one: buying again opens another.
    pending_order: Option<i64>,
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
    let book = reads::book(&state.db.reads, id)
        .await?
        .ok_or(AppError::NotFound)?;
    let is_owner = ctx.user.as_ref().is_some_and(|u| u.id == book.seller_id);
    if book.status != BookStatus::Active && !is_owner {
        return Err(AppError::NotFound);
    }
    let seller = state
        .accounts()
        .names(&[book.seller_id])
        .await?
        .remove(&book.seller_id)
        .unwrap_or_default();
    let pending_order = match &ctx.user {
        Some(u) if !is_owner => state.orders().pending_order(u.id, id).await?,
        _ => None,
    };
    Ok(BookPage {
        ctx: (&ctx).into(),
        book,
        seller,
        is_owner,
        pending_order,
    })
}
