//! Accounts: register, log in, log out. Passwords are argon2 hashes (computed off the async
//! threads). Sessions live in the database, so any replica serves any request. Failed logins are
//! counted per account and per client address, also in the database, so the limit holds across
//! replicas.

use std::collections::HashMap;
use std::net::SocketAddr;

use argon2::{Argon2, PasswordHash, PasswordHasher, PasswordVerifier};
use askama::Template;
use askama_web::WebTemplate;
use axum::extract::{ConnectInfo, Form, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use sqlx::Row;

use crate::AppState;
use crate::db::{insert_id, now};
use crate::error::{AppError, AppResult};
use crate::web::{Ctx, PageCtx, SESSION_COOKIE, field, random_token, set_cookie, token_hash};

pub const MIN_PASSWORD: usize = 10;
const SESSION_SECS: i64 = 60 * 60 * 24 * 14;
const WINDOW_SECS: i64 = 15 * 60;
const MAX_FAILURES_ACCOUNT: i64 = 5;
const MAX_FAILURES_ADDRESS: i64 = 20;

#[derive(Template, WebTemplate)]
#[template(path = "register.html")]
struct RegisterPage {
    ctx: PageCtx,
    errors: Vec<String>,
    name: String,
    email: String,
    min_password: usize,
}

#[derive(Template, WebTemplate)]
#[template(path = "login.html")]
struct LoginPage {
    ctx: PageCtx,
    error: Option<String>,
    email: String,
}

pub async fn register_form(ctx: Ctx) -> impl IntoResponse {
    RegisterPage {
        ctx: (&ctx).into(),
        errors: vec![],
        name: String::new(),
        email: String::new(),
        min_password: MIN_PASSWORD,
    }
}

pub async fn login_form(ctx: Ctx) -> impl IntoResponse {
    LoginPage {
        ctx: (&ctx).into(),
        error: None,
        email: String::new(),
    }
}

fn valid_email(e: &str) -> bool {
    e.len() <= 254
        && e.split_once('@').is_some_and(|(local, domain)| {
            !local.is_empty()
                && domain.contains('.')
                && !domain.starts_with('.')
                && !domain.ends_with('.')
        })
        && !e.contains(char::is_whitespace)
}

pub async fn hash_password(password: String) -> AppResult<String> {
    tokio::task::spawn_blocking(move || {
        Argon2::default()
            .hash_password(password.as_bytes())
            .map(|h| h.to_string())
    })
    .await
    .map_err(|e| AppError::Internal(e.to_string()))?
    .map_err(|e| AppError::Internal(e.to_string()))
}

async fn verify_password(password: String, hash: String) -> bool {
    tokio::task::spawn_blocking(move || {
        PasswordHash::new(&hash).is_ok_and(|parsed| {
            Argon2::default()
                .verify_password(password.as_bytes(), &parsed)
                .is_ok()
        })
    })
    .await
    .unwrap_or(false)
}

/// A hash to verify against when the e-mail is unknown, so both cases take the same time.
static DUMMY_HASH: std::sync::OnceLock<String> = std::sync::OnceLock::new();

async fn start_session(state: &AppState, ctx: &Ctx, user_id: i64) -> AppResult<Response> {
    let token = random_token();
    sqlx::query("INSERT INTO sessions (token_hash, user_id, expires_at) VALUES (?, ?, ?)")
        .bind(token_hash(&token))
        .bind(user_id)
        .bind(now() + SESSION_SECS)
        .execute(&state.db.pool)
        .await?;
    let mut response = Redirect::to("/books").into_response();
    response.headers_mut().append(
        header::SET_COOKIE,
        set_cookie(SESSION_COOKIE, &token, SESSION_SECS, ctx.secure),
    );
    Ok(response)
}

pub async fn register(
    State(state): State<AppState>,
    ctx: Ctx,
    Form(form): Form<HashMap<String, String>>,
) -> AppResult<Response> {
    ctx.check_csrf(field(&form, "csrf"))?;
    let name = field(&form, "name").to_string();
    let email = field(&form, "email").to_lowercase();
    let password = form.get("password").cloned().unwrap_or_default();
    let mut errors = Vec::new();
    if name.is_empty() || name.chars().count() > 100 {
        errors.push("Enter your name (up to 100 characters).".to_string());
    }
    if !valid_email(&email) {
        errors.push("Enter a valid e-mail address.".to_string());
    }
    if password.chars().count() < MIN_PASSWORD || password.len() > 1024 {
        errors.push(format!(
            "The password must have at least {MIN_PASSWORD} characters."
        ));
    }
    let page = |errors: Vec<String>, name: String, email: String| {
        (
            StatusCode::BAD_REQUEST,
            RegisterPage {
                ctx: (&ctx).into(),
                errors,
                name,
                email,
                min_password: MIN_PASSWORD,
            },
        )
            .into_response()
    };
    if !errors.is_empty() {
        return Ok(page(errors, name, email));
    }
    let hash = hash_password(password).await?;
    let mut conn = state.db.pool.acquire().await?;
    let is_first = sqlx::query("SELECT COUNT(*) FROM users")
        .fetch_one(&mut *conn)
        .await?
        .get::<i64, _>(0)
        == 0;
    let is_admin = is_first || state.config.admin_email.as_deref() == Some(email.as_str());
    let inserted = insert_id(&mut conn, state.db.engine, "INSERT INTO users (name, email, password_hash, is_admin, created_at) VALUES (?, ?, ?, ?, ?)", |q| {
        q.bind(name.clone()).bind(email.clone()).bind(hash).bind(i64::from(is_admin)).bind(now())
    })
    .await;
    let user_id = match inserted {
        Ok(id) => id,
        // A unique violation: the e-mail is taken (also when two sign-ups race).
        Err(sqlx::Error::Database(e)) if e.is_unique_violation() => {
            return Ok(page(
                vec!["An account with this e-mail already exists. Log in instead.".into()],
                name,
                email,
            ));
        }
        Err(e) => return Err(e.into()),
    };
    drop(conn);
    start_session(&state, &ctx, user_id).await
}

/// The client address: the first hop the load balancer reports, else the socket peer.
fn client_address(headers: &HeaderMap, peer: SocketAddr) -> String {
    headers
        .get("x-forwarded-for")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(',').next())
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| peer.ip().to_string())
}

/// Minutes until `subject` may try again, if it is over `max` failures in the window.
async fn blocked_for(state: &AppState, subject: &str, max: i64) -> AppResult<Option<i64>> {
    let row = sqlx::query("SELECT failures, window_start FROM login_failures WHERE subject = ?")
        .bind(subject)
        .fetch_optional(&state.db.pool)
        .await?;
    Ok(row.and_then(|r| {
        let (failures, start): (i64, i64) = (r.get(0), r.get(1));
        let left = start + WINDOW_SECS - now();
        (failures >= max && left > 0).then(|| (left + 59) / 60)
    }))
}

async fn record_failure(state: &AppState, subject: &str) -> AppResult<()> {
    let t = now();
    // Start a new window when the old one ended, else count one more.
    let updated = sqlx::query(
        "UPDATE login_failures SET failures = CASE WHEN window_start < ? THEN 1 ELSE failures + 1 END, \
         window_start = CASE WHEN window_start < ? THEN ? ELSE window_start END WHERE subject = ?",
    )
    .bind(t - WINDOW_SECS)
    .bind(t - WINDOW_SECS)
    .bind(t)
    .bind(subject)
    .execute(&state.db.pool)
    .await?;
    if updated.rows_affected() == 0 {
        let inserted = sqlx::query(
            "INSERT INTO login_failures (subject, failures, window_start) VALUES (?, 1, ?)",
        )
        .bind(subject)
        .bind(t)
        .execute(&state.db.pool)
        .await;
        if let Err(sqlx::Error::Database(e)) = &inserted
            && e.is_unique_violation()
        {
            // Another request inserted it first: count this failure there.
            return Box::pin(record_failure(state, subject)).await;
        }
        inserted?;
    }
    Ok(())
}

pub async fn login(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    ctx: Ctx,
    Form(form): Form<HashMap<String, String>>,
) -> AppResult<Response> {
    ctx.check_csrf(field(&form, "csrf"))?;
    let email = field(&form, "email").to_lowercase();
    let password = form.get("password").cloned().unwrap_or_default();
    let account = format!("account:{email}");
    let address = format!("address:{}", client_address(&headers, peer));
    if let Some(minutes) = blocked_for(&state, &account, MAX_FAILURES_ACCOUNT).await? {
        return Err(AppError::TooManyAttempts(minutes));
    }
    if let Some(minutes) = blocked_for(&state, &address, MAX_FAILURES_ADDRESS).await? {
        return Err(AppError::TooManyAttempts(minutes));
    }
    let row = sqlx::query("SELECT id, password_hash FROM users WHERE email = ?")
        .bind(&email)
        .fetch_optional(&state.db.pool)
        .await?;
    let (user_id, hash) = match row {
        Some(r) => (Some(r.get::<i64, _>(0)), r.get::<String, _>(1)),
        None => {
            let dummy = match DUMMY_HASH.get() {
                Some(h) => h.clone(),
                None => {
                    let h = hash_password(random_token()).await?;
                    DUMMY_HASH.get_or_init(|| h).clone()
                }
            };
            (None, dummy)
        }
    };
    let ok = verify_password(password, hash).await && user_id.is_some();
    if let (true, Some(id)) = (ok, user_id) {
        sqlx::query("DELETE FROM login_failures WHERE subject = ?")
            .bind(&account)
            .execute(&state.db.pool)
            .await?;
        return start_session(&state, &ctx, id).await;
    }
    record_failure(&state, &account).await?;
    record_failure(&state, &address).await?;
    Ok((
        StatusCode::UNAUTHORIZED,
        LoginPage {
            ctx: (&ctx).into(),
            error: Some("Wrong e-mail or password.".into()),
            email,
        },
    )
        .into_response())
}

pub async fn logout(
    State(state): State<AppState>,
    headers: HeaderMap,
    ctx: Ctx,
    Form(form): Form<HashMap<String, String>>,
) -> AppResult<Response> {
    ctx.check_csrf(field(&form, "csrf"))?;
    if let Some(token) = crate::web::cookie(&headers, SESSION_COOKIE) {
        sqlx::query("DELETE FROM sessions WHERE token_hash = ?")
            .bind(token_hash(&token))
            .execute(&state.db.pool)
            .await?;
    }
    let mut response = Redirect::to("/").into_response();
    response.headers_mut().append(
        header::SET_COOKIE,
        set_cookie(SESSION_COOKIE, "", 0, ctx.secure),
    );
    Ok(response)
}
