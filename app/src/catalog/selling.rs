//! Selling: publish a book with an optional cover, edit or delete your own listings. Covers are
//! checked by their content (JPEG, PNG, WebP), size-limited, and stored under the uploads
//! directory (EFS in the asg stack), so every replica serves every cover. A book with orders is
//! withdrawn, never deleted, so order history stays whole.

use askama::Template;
use askama_web::WebTemplate;
use axum::extract::Form;
use axum::extract::{Multipart, Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use std::collections::{HashMap, HashSet};
use std::time::{Duration, SystemTime};

use sqlx::Row;

use crate::AppState;
use crate::catalog::{BOOK_COLUMNS, BookStatus, BookView, parse_id};
use crate::db::{insert_id, now};
use crate::error::{AppError, AppResult};
use crate::form::{ConfirmPage, FieldErrors};
use crate::money;
use crate::ports::BookOrders;
use crate::web::{Ctx, Flash, PageCtx, field, random_token};

#[derive(Default)]
pub struct BookForm {
    pub title: String,
    pub author: String,
    pub description: String,
    pub price: String,
    pub stock: String,
    /// The stock the seller's form showed: an edit changes stock by the difference, so orders
    /// placed while the form was open are not undone.
    pub stock_was: String,
    /// A cover sent with a form that came back for another reason, stored under this name, so
    /// the seller need not choose it again.
    pub cover_kept: String,
}

#[derive(Template, WebTemplate)]
#[template(path = "sell.html")]
struct SellPage {
    ctx: PageCtx,
    form: BookForm,
    errors: FieldErrors,
    editing: Option<i64>,
    max_upload_kb: usize,
    max_upload_bytes: usize,
}

#[derive(Template, WebTemplate)]
#[template(path = "my_books.html")]
struct MyBooksPage {
    ctx: PageCtx,
    books: Vec<BookView>,
}

/// What the content says the file is: its extension, or None when it is not an accepted image.
pub fn image_kind(bytes: &[u8]) -> Option<&'static str> {
    if bytes.starts_with(&[0xFF, 0xD8, 0xFF]) {
        Some("jpg")
    } else if bytes.starts_with(&[0x89, b'P', b'N', b'G', 0x0D, 0x0A, 0x1A, 0x0A]) {
        Some("png")
    } else if bytes.len() >= 12 && &bytes[..4] == b"RIFF" && &bytes[8..12] == b"WEBP" {
        Some("webp")
    } else {
        None
    }
}

struct Submitted {
    form: BookForm,
    csrf: String,
    cover: Option<Vec<u8>>,
    /// Why the cover sent was refused (too large, not an image); the rest of the form is kept.
    cover_error: Option<String>,
}

/// Reads the sell or edit form. A cover that is too large is read to its end and dropped (up to
/// the route's body limit), so the fields after it are read too and the form comes back filled.
async fn read_multipart(mut multipart: Multipart, max_bytes: usize) -> AppResult<Submitted> {
    let mut form = BookForm::default();
    let mut csrf = String::new();
    let mut cover = None;
    let mut cover_error = None;
    let unreadable = |_| AppError::BadRequest("the form could not be read: send it again".into());
    while let Some(mut field) = multipart.next_field().await.map_err(unreadable)? {
        let name = field.name().unwrap_or_default().to_string();
        if name == "cover" {
            let mut bytes = Vec::new();
            let mut size = 0usize;
            let mut cut = false;
            loop {
                match field.chunk().await {
                    Ok(Some(chunk)) => {
                        size += chunk.len();
                        if size <= max_bytes {
                            bytes.extend_from_slice(&chunk);
                        } else {
                            bytes = Vec::new();
                        }
                    }
                    Ok(None) => break,
                    // Past the body limit: the fields before the cover are all we get.
                    Err(_) => {
                        size = size.max(max_bytes + 1);
                        cut = true;
                        break;
                    }
                }
            }
            if size > max_bytes {
                cover_error = Some(format!(
                    "This image is {}{}: a cover may be at most {} KB. Choose a smaller one.",
                    if cut { "more than " } else { "" },
                    // Cut off at the form's limit (see `router`): what it got is not the size.
                    kb(if cut { max_bytes * 8 } else { size }),
                    max_bytes / 1024
                ));
            } else if !bytes.is_empty() {
                if image_kind(&bytes).is_some() {
                    cover = Some(bytes);
                } else {
                    cover_error = Some(
                        "This file is not a JPEG, PNG or WebP image: choose a photo or scan of the cover in one of those formats.".into(),
                    );
                }
            }
            // Cut off at the body limit: nothing after the cover can be read.
            if cut {
                break;
            }
            continue;
        }
        let text = field.text().await.map_err(unreadable)?;
        match name.as_str() {
            "csrf" => csrf = text,
            "title" => form.title = text,
            "author" => form.author = text,
            "description" => form.description = text,
            "price" => form.price = text,
            "stock" => form.stock = text,
            "stock_was" => form.stock_was = text,
            "cover_kept" => form.cover_kept = text,
            _ => {}
        }
    }
    Ok(Submitted {
        form,
        csrf,
        cover,
        cover_error,
    })
}

/// "2.5 MB" or "800 KB".
fn kb(bytes: usize) -> String {
    if bytes >= 1024 * 1024 {
        format!("{:.1} MB", bytes as f64 / (1024.0 * 1024.0))
    } else {
        format!("{} KB", bytes.div_ceil(1024))
    }
}

struct Valid {
    title: String,
    author: String,
    description: String,
    price_cents: i64,
    stock: i64,
}

fn validate(f: &BookForm, errors: &mut FieldErrors) -> Option<Valid> {
    let title = f.title.trim().to_string();
    let author = f.author.trim().to_string();
    let description = f.description.trim().to_string();
    if title.is_empty() || title.chars().count() > 200 {
        errors.add("title", "Enter a title (up to 200 characters).");
    }
    if author.is_empty() || author.chars().count() > 200 {
        errors.add("author", "Enter the author (up to 200 characters).");
    }
    if description.chars().count() > 5000 {
        errors.add(
            "description",
            format!(
                "The description may have at most 5,000 characters (it has {}).",
                description.chars().count()
            ),
        );
    }
    let price_cents = money::read(&f.price)
        .map_err(|e| errors.add("price", e))
        .ok();
    let stock = f
        .stock
        .trim()
        .parse::<i64>()
        .ok()
        .filter(|s| (0..=10_000).contains(s));
    if stock.is_none() {
        errors.add("stock", "Enter the number of copies, from 0 to 10,000.");
    }
    match (errors.is_empty(), price_cents, stock) {
        (true, Some(price_cents), Some(stock)) => Some(Valid {
            title,
            author,
            description,
            price_cents,
            stock,
        }),
        _ => None,
    }
}

/// A cover kept from an earlier try of this form: a name as `store_cover` makes them, still on
/// disk (the orphan sweep removes it after its grace period), and no listing's cover.
async fn kept_cover(state: &AppState, name: &str) -> AppResult<Option<String>> {
    let (stem, ext) = name.rsplit_once('.').unwrap_or(("", ""));
    let well_formed = stem.len() == 43
        && stem.bytes().all(|b| b.is_ascii_alphanumeric())
        && ["jpg", "png", "webp"].contains(&ext);
    if !well_formed || !state.config.uploads_dir.join(name).is_file() {
        return Ok(None);
    }
    let used = sqlx::query("SELECT 1 FROM books WHERE cover = ?")
        .bind(name)
        .fetch_optional(&state.db.pool)
        .await?
        .is_some();
    Ok((!used).then(|| name.to_string()))
}

/// The cover this submission sets: a new file, else the one kept from the form's earlier try.
/// A file that arrives with a form that then comes back is stored and kept for the next try.
async fn cover_of(
    state: &AppState,
    submitted: &mut Submitted,
    errors: &mut FieldErrors,
) -> AppResult<Option<String>> {
    if let Some(e) = submitted.cover_error.take() {
        errors.add("cover", e);
    }
    let name = match submitted.cover.take() {
        Some(bytes) => Some(store_cover(state, &bytes).await?),
        None if !submitted.form.cover_kept.is_empty() => {
            let kept = kept_cover(state, &submitted.form.cover_kept).await?;
            if kept.is_none() {
                errors.add(
                    "cover",
                    "The cover you chose before is no longer kept: choose it again.",
                );
            }
            kept
        }
        None => None,
    };
    submitted.form.cover_kept = name.clone().unwrap_or_default();
    Ok(name)
}

/// Writes the cover under a random name (write, then rename: readers never see half a file).
async fn store_cover(state: &AppState, bytes: &[u8]) -> AppResult<String> {
    let ext = image_kind(bytes).ok_or_else(|| {
        AppError::BadRequest("the cover must be a JPEG, PNG or WebP image".into())
    })?;
    let name = format!("{}.{ext}", random_token().replace(['-', '_'], "x"));
    let dir = &state.config.uploads_dir;
    let tmp = dir.join(format!(".{name}.tmp"));
    tokio::fs::write(&tmp, bytes)
        .await
        .map_err(|e| AppError::Internal(format!("cannot write the cover: {e}")))?;
    tokio::fs::rename(&tmp, dir.join(&name))
        .await
        .map_err(|e| AppError::Internal(format!("cannot store the cover: {e}")))?;
    Ok(name)
}

fn page(
    ctx: &Ctx,
    state: &AppState,
    form: BookForm,
    errors: FieldErrors,
    editing: Option<i64>,
) -> Response {
    let status = if errors.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::BAD_REQUEST
    };
    (
        status,
        SellPage {
            ctx: ctx.into(),
            form,
            errors,
            editing,
            max_upload_kb: state.config.max_upload_bytes / 1024,
            max_upload_bytes: state.config.max_upload_bytes,
        },
    )
        .into_response()
}

pub async fn sell_form(State(state): State<AppState>, ctx: Ctx) -> AppResult<Response> {
    ctx.user()?;
    Ok(page(
        &ctx,
        &state,
        BookForm {
            stock: "1".into(),
            ..Default::default()
        },
        FieldErrors::default(),
        None,
    ))
}

pub async fn sell(
    State(state): State<AppState>,
    ctx: Ctx,
    multipart: Multipart,
) -> AppResult<Response> {
    let user = ctx.user()?.clone();
    let mut submitted = read_multipart(multipart, state.config.max_upload_bytes).await?;
    ctx.check_csrf(&submitted.csrf)?;
    let mut errors = FieldErrors::default();
    let valid = validate(&submitted.form, &mut errors);
    let cover = cover_of(&state, &mut submitted, &mut errors).await?;
    let Some(valid) = valid.filter(|_| errors.is_empty()) else {
        return Ok(page(&ctx, &state, submitted.form, errors, None));
    };
    let mut conn = state.db.pool.acquire().await?;
    let id = insert_id(&mut conn, state.db.engine, "INSERT INTO books (seller_id, title, author, description, price_cents, stock, cover, status, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", |q| {
        q.bind(user.id).bind(valid.title.clone()).bind(valid.author.clone()).bind(valid.description.clone()).bind(valid.price_cents).bind(valid.stock).bind(cover.clone()).bind(BookStatus::Active.as_str()).bind(now())
    })
    .await?;
    Ok(ctx.redirect(&format!("/books/{id}"), Flash::Published(valid.price_cents)))
}

/// The book, if the logged-in user is its seller: 404 when it does not exist, 403 when it is not theirs.
async fn own_book(state: &AppState, ctx: &Ctx, id: i64) -> AppResult<BookView> {
    let user = ctx.user()?;
    let row = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {BOOK_COLUMNS} FROM books WHERE id = ?"
    )))
    .bind(id)
    .fetch_optional(&state.db.pool)
    .await?
    .ok_or(AppError::NotFound)?;
    let book = BookView::from_row(&row);
    if book.seller_id != user.id {
        return Err(AppError::Forbidden(
            "only the seller can change this listing".into(),
        ));
    }
    if book.status != BookStatus::Active {
        return Err(AppError::NotFound);
    }
    Ok(book)
}

pub async fn edit_form(
    State(state): State<AppState>,
    ctx: Ctx,
    Path(id): Path<String>,
) -> AppResult<Response> {
    let book = own_book(&state, &ctx, parse_id(&id)?).await?;
    let form = BookForm {
        title: book.title,
        author: book.author,
        description: book.description,
        price: format!("{}.{:02}", book.price_cents / 100, book.price_cents % 100),
        stock: book.stock.to_string(),
        stock_was: book.stock.to_string(),
        cover_kept: String::new(),
    };
    Ok(page(
        &ctx,
        &state,
        form,
        FieldErrors::default(),
        Some(book.id),
    ))
}

pub async fn edit(
    State(state): State<AppState>,
    ctx: Ctx,
    Path(id): Path<String>,
    multipart: Multipart,
) -> AppResult<Response> {
    let id = parse_id(&id)?;
    let mut submitted = read_multipart(multipart, state.config.max_upload_bytes).await?;
    ctx.check_csrf(&submitted.csrf)?;
    let book = own_book(&state, &ctx, id).await?;
    let Some(stock_was) = submitted.form.stock_was.trim().parse::<i64>().ok() else {
        return Err(AppError::BadRequest(
            "the form is missing the stock it showed: reload the edit page".into(),
        ));
    };
    let mut errors = FieldErrors::default();
    let valid = validate(&submitted.form, &mut errors);
    let new_cover = cover_of(&state, &mut submitted, &mut errors).await?;
    let Some(valid) = valid.filter(|_| errors.is_empty()) else {
        return Ok(page(&ctx, &state, submitted.form, errors, Some(id)));
    };
    let delta = valid.stock - stock_was;
    let cover = new_cover.clone().or(book.cover.clone());
    // Relative and conditional: copies bought meanwhile stay bought; stock never goes negative.
    let updated = sqlx::query("UPDATE books SET title = ?, author = ?, description = ?, price_cents = ?, stock = stock + ?, cover = ? \
         WHERE id = ? AND seller_id = ? AND status = ? AND stock + ? >= 0 AND stock + ? <= 10000")
        .bind(valid.title)
        .bind(valid.author)
        .bind(valid.description)
        .bind(valid.price_cents)
        .bind(delta)
        .bind(cover)
        .bind(id)
        .bind(book.seller_id)
        .bind(BookStatus::Active.as_str())
        .bind(delta)
        .bind(delta)
        .execute(&state.db.pool)
        .await?;
    if updated.rows_affected() != 1 {
        if let Some(name) = new_cover {
            remove_cover(&state, &name).await;
        }
        return Err(AppError::Conflict(
            "copies were bought while you edited, so that stock is no longer possible: reload and edit again".into(),
        ));
    }
    if let (Some(_), Some(old)) = (&new_cover, &book.cover) {
        remove_cover(&state, old).await;
    }
    Ok(ctx.redirect(&format!("/books/{id}"), Flash::Saved(valid.price_cents)))
}

async fn remove_cover(state: &AppState, name: &str) {
    let _ = tokio::fs::remove_file(state.config.uploads_dir.join(name)).await;
}

/// GET /books/{id}/delete: what deleting would do, and the button that does it (no JavaScript).
pub async fn delete_form(
    State(state): State<AppState>,
    ctx: Ctx,
    Path(id): Path<String>,
) -> AppResult<Response> {
    let book = own_book(&state, &ctx, parse_id(&id)?).await?;
    let has_orders = state.orders().has_orders_now(book.id).await?;
    let explain = if has_orders {
        "It has orders, so it is withdrawn rather than deleted: it leaves the catalog, its orders stay in your sales and the buyers' orders, and its unpaid orders are cancelled."
    } else {
        "It leaves the catalog and its cover is removed. This cannot be undone."
    };
    Ok(ConfirmPage {
        ctx: (&ctx).into(),
        heading: format!("Delete “{}”?", book.title),
        explain: explain.into(),
        action: format!("/books/{}/delete", book.id),
        confirm_label: "Delete the listing",
        back: format!("/books/{}", book.id),
        back_label: "Keep it",
    }
    .into_response())
}

/// Deletes a listing without orders, withdraws one with orders (history stays whole) and cancels its
/// unpaid orders — in one transaction whose first statement locks the book's row, so no order can
/// slip in between the check and the delete. Only from the confirmation page (`confirm=yes`);
/// anything else is sent there.
pub async fn delete(
    State(state): State<AppState>,
    ctx: Ctx,
    Path(id): Path<String>,
    Form(form): Form<HashMap<String, String>>,
) -> AppResult<Response> {
    let id = parse_id(&id)?;
    ctx.check_csrf(field(&form, "csrf"))?;
    let book = own_book(&state, &ctx, id).await?;
    if field(&form, "confirm") != "yes" {
        return Ok(Redirect::to(&format!("/books/{id}/delete")).into_response());
    }
    let mut tx = state.db.pool.begin().await?;
    let withdrawn =
        sqlx::query("UPDATE books SET status = ? WHERE id = ? AND seller_id = ? AND status = ?")
            .bind(BookStatus::Withdrawn.as_str())
            .bind(id)
            .bind(book.seller_id)
            .bind(BookStatus::Active.as_str())
            .execute(&mut *tx)
            .await?;
    if withdrawn.rows_affected() != 1 {
        return Err(AppError::NotFound);
    }
    // Off sale from here: no reservation can take a copy (it needs the book active), so what the
    // orders say now stays true until the commit.
    let orders = state.orders();
    orders.cancel_unpaid(&mut tx, id).await?;
    let deleted = if orders.has_orders(&mut tx, id).await? {
        false
    } else {
        sqlx::query("DELETE FROM books WHERE id = ?")
            .bind(id)
            .execute(&mut *tx)
            .await?
            .rows_affected()
            == 1
    };
    tx.commit().await?;
    if deleted && let Some(cover) = book.cover {
        remove_cover(&state, &cover).await;
    }
    let flash = if deleted {
        Flash::Deleted
    } else {
        Flash::Withdrawn
    };
    Ok(ctx.redirect("/my/books", flash))
}

pub async fn my_books(State(state): State<AppState>, ctx: Ctx) -> AppResult<impl IntoResponse> {
    let user = ctx.user()?;
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {BOOK_COLUMNS} FROM books WHERE seller_id = ? ORDER BY id DESC LIMIT 500"
    )))
    .bind(user.id)
    .fetch_all(&state.db.pool)
    .await?;
    Ok(MyBooksPage {
        ctx: (&ctx).into(),
        books: rows.iter().map(BookView::from_row).collect(),
    })
}

/// Removes cover files (and stale temporary files) that no book names and that are older than the
/// grace period. Returns how many went.
pub async fn orphan_covers(state: &AppState) -> AppResult<usize> {
    let used: HashSet<String> = sqlx::query("SELECT cover FROM books WHERE cover IS NOT NULL")
        .fetch_all(&state.db.pool)
        .await?
        .iter()
        .map(|r| r.get::<String, _>(0))
        .collect();
    let dir = state.config.uploads_dir.clone();
    // A younger file may belong to a listing being saved right now.
    let grace = Duration::from_secs(state.config.cover_grace_secs);
    let removed = tokio::task::spawn_blocking(move || {
        let mut removed = 0;
        let Ok(entries) = std::fs::read_dir(&dir) else {
            return 0;
        };
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let old = entry
                .metadata()
                .and_then(|m| m.modified())
                .ok()
                .and_then(|m| SystemTime::now().duration_since(m).ok())
                .is_some_and(|age| age >= grace);
            if old
                && !used.contains(&name)
                && entry.file_type().is_ok_and(|t| t.is_file())
                && std::fs::remove_file(entry.path()).is_ok()
            {
                removed += 1;
            }
        }
        removed
    })
    .await
    .unwrap_or(0);
    Ok(removed)
}
