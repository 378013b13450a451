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
use std::collections::HashMap;

use crate::AppState;
use crate::catalog::{BOOK_COLUMNS, BookView, parse_id};
use crate::db::{insert_id, now};
use crate::error::{AppError, AppResult};
use crate::money;
use crate::web::{Ctx, PageCtx, field, random_token};

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
}

#[derive(Template, WebTemplate)]
#[template(path = "sell.html")]
struct SellPage {
    ctx: PageCtx,
    form: BookForm,
    errors: Vec<String>,
    editing: Option<i64>,
    max_upload_kb: usize,
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
}

async fn read_multipart(mut multipart: Multipart, max_bytes: usize) -> AppResult<Submitted> {
    let mut form = BookForm::default();
    let mut csrf = String::new();
    let mut cover = None;
    while let Some(field) = multipart
        .next_field()
        .await
        .map_err(|e| AppError::BadRequest(format!("the form could not be read: {e}")))?
    {
        let name = field.name().unwrap_or_default().to_string();
        if name == "cover" {
            let bytes = field.bytes().await.map_err(|_| {
                AppError::TooLarge(format!("the cover may be at most {} KB", max_bytes / 1024))
            })?;
            if bytes.len() > max_bytes {
                return Err(AppError::TooLarge(format!(
                    "the cover may be at most {} KB",
                    max_bytes / 1024
                )));
            }
            if !bytes.is_empty() {
                cover = Some(bytes.to_vec());
            }
            continue;
        }
        let text = field
            .text()
            .await
            .map_err(|_| AppError::BadRequest("the form could not be read".into()))?;
        match name.as_str() {
            "csrf" => csrf = text,
            "title" => form.title = text,
            "author" => form.author = text,
            "description" => form.description = text,
            "price" => form.price = text,
            "stock" => form.stock = text,
            "stock_was" => form.stock_was = text,
            _ => {}
        }
    }
    Ok(Submitted { form, csrf, cover })
}

struct Valid {
    title: String,
    author: String,
    description: String,
    price_cents: i64,
    stock: i64,
}

fn validate(f: &BookForm) -> Result<Valid, Vec<String>> {
    let mut errors = Vec::new();
    let title = f.title.trim().to_string();
    let author = f.author.trim().to_string();
    let description = f.description.trim().to_string();
    if title.is_empty() || title.chars().count() > 200 {
        errors.push("Enter a title (up to 200 characters).".to_string());
    }
    if author.is_empty() || author.chars().count() > 200 {
        errors.push("Enter the author (up to 200 characters).".to_string());
    }
    if description.chars().count() > 5000 {
        errors.push("The description may have at most 5000 characters.".to_string());
    }
    let price_cents = money::parse(&f.price);
    if price_cents.is_none() {
        errors.push("Enter a price such as 12.50 (above zero, at most 100000).".to_string());
    }
    let stock = f
        .stock
        .trim()
        .parse::<i64>()
        .ok()
        .filter(|s| (0..=10_000).contains(s));
    if stock.is_none() {
        errors.push("Enter the number of copies, from 0 to 10000.".to_string());
    }
    match (errors.is_empty(), price_cents, stock) {
        (true, Some(price_cents), Some(stock)) => Ok(Valid {
            title,
            author,
            description,
            price_cents,
            stock,
        }),
        _ => Err(errors),
    }
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
    errors: Vec<String>,
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
        vec![],
        None,
    ))
}

pub async fn sell(
    State(state): State<AppState>,
    ctx: Ctx,
    multipart: Multipart,
) -> AppResult<Response> {
    let user = ctx.user()?.clone();
    let submitted = read_multipart(multipart, state.config.max_upload_bytes).await?;
    ctx.check_csrf(&submitted.csrf)?;
    let valid = match validate(&submitted.form) {
        Ok(v) => v,
        Err(errors) => return Ok(page(&ctx, &state, submitted.form, errors, None)),
    };
    let cover = match &submitted.cover {
        Some(bytes) => Some(store_cover(&state, bytes).await?),
        None => None,
    };
    let mut conn = state.db.pool.acquire().await?;
    let id = insert_id(&mut conn, state.db.engine, "INSERT INTO books (seller_id, title, author, description, price_cents, stock, cover, status, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, 'active', ?)", |q| {
        q.bind(user.id).bind(valid.title.clone()).bind(valid.author.clone()).bind(valid.description.clone()).bind(valid.price_cents).bind(valid.stock).bind(cover.clone()).bind(now())
    })
    .await?;
    Ok(Redirect::to(&format!("/books/{id}")).into_response())
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
    if book.status != "active" {
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
    };
    Ok(page(&ctx, &state, form, vec![], Some(book.id)))
}

pub async fn edit(
    State(state): State<AppState>,
    ctx: Ctx,
    Path(id): Path<String>,
    multipart: Multipart,
) -> AppResult<Response> {
    let id = parse_id(&id)?;
    let submitted = read_multipart(multipart, state.config.max_upload_bytes).await?;
    ctx.check_csrf(&submitted.csrf)?;
    let book = own_book(&state, &ctx, id).await?;
    let valid = match validate(&submitted.form) {
        Ok(v) => v,
        Err(errors) => return Ok(page(&ctx, &state, submitted.form, errors, Some(id))),
    };
    let Some(stock_was) = submitted.form.stock_was.trim().parse::<i64>().ok() else {
        return Err(AppError::BadRequest(
            "the form is missing the stock it showed: reload the edit page".into(),
        ));
    };
    let delta = valid.stock - stock_was;
    let new_cover = match &submitted.cover {
        Some(bytes) => Some(store_cover(&state, bytes).await?),
        None => None,
    };
    let cover = new_cover.clone().or(book.cover.clone());
    // Relative and conditional: copies bought meanwhile stay bought; stock never goes negative.
    let updated = sqlx::query("UPDATE books SET title = ?, author = ?, description = ?, price_cents = ?, stock = stock + ?, cover = ? \
         WHERE id = ? AND seller_id = ? AND status = 'active' AND stock + ? >= 0 AND stock + ? <= 10000")
        .bind(valid.title)
        .bind(valid.author)
        .bind(valid.description)
        .bind(valid.price_cents)
        .bind(delta)
        .bind(cover)
        .bind(id)
        .bind(book.seller_id)
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
    Ok(Redirect::to(&format!("/books/{id}")).into_response())
}

async fn remove_cover(state: &AppState, name: &str) {
    let _ = tokio::fs::remove_file(state.config.uploads_dir.join(name)).await;
}

/// Deletes a listing without orders, withdraws one with orders (history stays whole) and cancels its
/// unpaid orders — in one transaction whose first statement locks the book's row, so no order can
/// slip in between the check and the delete.
pub async fn delete(
    State(state): State<AppState>,
    ctx: Ctx,
    Path(id): Path<String>,
    Form(form): Form<HashMap<String, String>>,
) -> AppResult<Response> {
    let id = parse_id(&id)?;
    ctx.check_csrf(field(&form, "csrf"))?;
    let book = own_book(&state, &ctx, id).await?;
    let mut tx = state.db.pool.begin().await?;
    let withdrawn = sqlx::query(
        "UPDATE books SET status = 'withdrawn' WHERE id = ? AND seller_id = ? AND status = 'active'",
    )
    .bind(id)
    .bind(book.seller_id)
    .execute(&mut *tx)
    .await?;
    if withdrawn.rows_affected() != 1 {
        return Err(AppError::NotFound);
    }
    sqlx::query(
        "UPDATE orders SET status = 'cancelled' WHERE book_id = ? AND status = 'pending_payment'",
    )
    .bind(id)
    .execute(&mut *tx)
    .await?;
    let deleted = sqlx::query(
        "DELETE FROM books WHERE id = ? AND NOT EXISTS (SELECT 1 FROM orders WHERE book_id = ?)",
    )
    .bind(id)
    .bind(id)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    if deleted.rows_affected() == 1
        && let Some(cover) = book.cover
    {
        remove_cover(&state, &cover).await;
    }
    Ok(Redirect::to("/my/books").into_response())
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
