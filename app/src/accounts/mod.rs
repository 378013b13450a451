//! Accounts: register, log in, log out. Passwords are argon2 hashes, computed on a bounded pool
//! (each hash holds 19 MiB: unbounded, 60 logins at once took the server to 1.8 GB). Sessions live
//! in the database, so any replica serves any request. Login attempts are counted in the database
//! *before* the hash, atomically, so the limits hold under concurrency and across replicas:
//! per (account, address) strictly, per address across accounts (password spraying), and per
//! account softly — the account-wide and the spraying limits never stop an address the owner has
//! logged in from before, so an attacker cannot lock an owner out.
//!
//! Accounts own `users`, `sessions`, the login counters and the admin setup; other domains learn
//! who is logged in and users' names through the `Identity` port (`identity`).

pub mod admin;
pub mod api;
pub mod identity;
pub mod password;
pub mod token;

pub use identity::{Local, Names};

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use askama::Template;
use askama_web::WebTemplate;
use axum::extract::{ConnectInfo, Form, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use sqlx::Row;

use crate::AppState;
use crate::db::{Engine, Migration, insert_id, now};
use crate::error::{AppError, AppResult};
use crate::form::FieldErrors;
use crate::web::{
    Ctx, Flash, PageCtx, SESSION_COOKIE, field, random_token, safe_next, set_cookie, token_hash,
};

/// The accounts' tables: users, sessions, login counters and known addresses, admin setup.
pub const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        sqlite: include_str!("../../migrations/accounts/1-sqlite.sql"),
        mysql: include_str!("../../migrations/accounts/1-mysql.sql"),
    },
    Migration {
        version: 2,
        sqlite: include_str!("../../migrations/accounts/2-sqlite.sql"),
        mysql: include_str!("../../migrations/accounts/2-mysql.sql"),
    },
    Migration {
        version: 6,
        sqlite: include_str!("../../migrations/accounts/6-sqlite.sql"),
        mysql: include_str!("../../migrations/accounts/6-mysql.sql"),
    },
];

pub const MIN_PASSWORD: usize = 10;
const SESSION_SECS: i64 = 60 * 60 * 24 * 14;
pub const WINDOW_SECS: i64 = 15 * 60;
/// Attempts per (account, address) per window: the owner's typos, not a guessing campaign.
const MAX_PAIR: i64 = 5;
/// Accounts (known or not) that one address tried and did not get into, per window: password
/// spraying tries a password or two on many accounts, which no per-account limit sees. An
/// account's first attempt from the address counts, and logging in to it gives that back, so a
/// class behind one NAT counts only the accounts that fail and stay failed for 15 minutes (a
/// forgotten password, a mistyped e-mail): a handful, even for a class of a hundred. 20 holds a
/// sprayer to 1,920 accounts a day per address, where the 100 attempts per window this replaced
/// let 9,600 through; and an account that logged in from the address before is never stopped.
pub const MAX_SPRAY: i64 = 20;
/// Attempts per account from addresses it never logged in from, per window.
const MAX_ACCOUNT: i64 = 30;
/// Hashes waiting for a worker beyond this many per worker are refused at once with 503.
const HASH_QUEUE_PER_WORKER: usize = 4;

type Job = Box<dyn FnOnce() + Send>;

/// The bounded pool for password hashing: `workers` long-lived threads (each reuses its own
/// 19 MiB from hash to hash; short-lived blocking threads each kept theirs), a short queue, then 503.
pub struct Hashing {
    jobs: std::sync::mpsc::SyncSender<Job>,
    queued: Arc<AtomicUsize>,
    max_queued: usize,
}

impl Hashing {
    pub fn new(workers: usize) -> Hashing {
        let max_queued = workers * (1 + HASH_QUEUE_PER_WORKER);
        let (jobs, receiver) = std::sync::mpsc::sync_channel::<Job>(max_queued);
        let receiver = Arc::new(std::sync::Mutex::new(receiver));
        for i in 0..workers {
            let receiver = Arc::clone(&receiver);
            std::thread::Builder::new()
                .name(format!("hash-{i}"))
                .spawn(move || {
                    loop {
                        let job = receiver.lock().expect("hash queue").recv();
                        match job {
                            Ok(job) => job(),
                            Err(_) => return,
                        }
                    }
                })
                .expect("start a hashing thread");
        }
        Hashing {
            jobs,
            queued: Arc::new(AtomicUsize::new(0)),
            max_queued,
        }
    }

    async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> AppResult<T> {
        if self.queued.fetch_add(1, Ordering::AcqRel) >= self.max_queued {
            self.queued.fetch_sub(1, Ordering::AcqRel);
            return Err(AppError::Busy);
        }
        let (done, result) = tokio::sync::oneshot::channel();
        let queued = Arc::clone(&self.queued);
        let job: Job = Box::new(move || {
            let _ = done.send(work());
            queued.fetch_sub(1, Ordering::AcqRel);
        });
        if self.jobs.try_send(job).is_err() {
            self.queued.fetch_sub(1, Ordering::AcqRel);
            return Err(AppError::Busy);
        }
        result
            .await
            .map_err(|_| AppError::Internal("a hashing thread stopped".into()))
    }
}

#[derive(Template, WebTemplate)]
#[template(path = "register.html")]
struct RegisterPage {
    ctx: PageCtx,
    errors: FieldErrors,
    name: String,
    email: String,
    min_password: usize,
    next: String,
}

#[derive(Template, WebTemplate)]
#[template(path = "login.html")]
struct LoginPage {
    ctx: PageCtx,
    error: Option<String>,
    email: String,
    next: String,
}

/// Where to go after logging in or registering (`?next=` or the form's hidden field).
#[derive(serde::Deserialize, Default)]
pub struct Next {
    next: Option<String>,
}

impl Next {
    /// The page to return to, if it is one of this site's.
    fn path(&self) -> String {
        return_path(self.next.as_deref().unwrap_or_default())
    }
}

/// `next` if it names a page of this site, else nothing (the catalog, after logging in).
fn return_path(next: &str) -> String {
    safe_next(next).unwrap_or_default().to_string()
}

pub async fn register_form(ctx: Ctx, Query(next): Query<Next>) -> impl IntoResponse {
    RegisterPage {
        ctx: (&ctx).into(),
        errors: FieldErrors::default(),
        name: String::new(),
        email: String::new(),
        min_password: MIN_PASSWORD,
        next: next.path(),
    }
}

pub async fn login_form(ctx: Ctx, Query(next): Query<Next>) -> impl IntoResponse {
    LoginPage {
        ctx: (&ctx).into(),
        error: None,
        email: String::new(),
        next: next.path(),
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

pub async fn hash_password(hashing: &Hashing, password: String) -> AppResult<String> {
    hashing
        .run(move || password::hash(password.as_bytes()))
        .await?
        .map_err(AppError::Internal)
}

async fn verify_password(hashing: &Hashing, password: String, hash: String) -> AppResult<bool> {
    hashing
        .run(move || password::verify(password.as_bytes(), &hash))
        .await
}

/// A hash to verify against when the e-mail is unknown, so both cases take the same time. Made
/// once: concurrent first logins wait for the one computation instead of each queueing its own.
static DUMMY_HASH: tokio::sync::OnceCell<String> = tokio::sync::OnceCell::const_new();

async fn start_session(
    state: &AppState,
    ctx: &Ctx,
    user_id: i64,
    next: &str,
    flash: Flash,
) -> AppResult<Response> {
    let token = random_token();
    sqlx::query("INSERT INTO sessions (token_hash, user_id, expires_at) VALUES (?, ?, ?)")
        .bind(token_hash(&token))
        .bind(user_id)
        .bind(now() + SESSION_SECS)
        .execute(&state.db.pool)
        .await?;
    let to = if next.is_empty() { "/books" } else { next };
    let mut response = ctx.redirect(to, flash);
    response.headers_mut().append(
        header::SET_COOKIE,
        set_cookie(SESSION_COOKIE, &token, SESSION_SECS, ctx.secure),
    );
    // The split: the other services' identity token too, so the first page there asks nobody.
    if state.signer.is_some()
        && let Some(s) = api::issue(state, &token).await?
    {
        response.headers_mut().append(
            header::SET_COOKIE,
            set_cookie(
                token::IDENTITY_COOKIE,
                &s.identity,
                (s.expires - now()).max(1),
                ctx.secure,
            ),
        );
    }
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
    let next = return_path(field(&form, "next"));
    let mut errors = FieldErrors::default();
    if name.is_empty() || name.chars().count() > 100 {
        errors.add("name", "Enter your name (up to 100 characters).");
    }
    if !valid_email(&email) {
        errors.add(
            "email",
            "Enter a valid e-mail address, such as ann@example.com.",
        );
    }
    if password.chars().count() < MIN_PASSWORD || password.len() > 1024 {
        errors.add(
            "password",
            format!("The password must have at least {MIN_PASSWORD} characters."),
        );
    }
    let page = |errors: FieldErrors, name: String, email: String| {
        (
            StatusCode::BAD_REQUEST,
            RegisterPage {
                ctx: (&ctx).into(),
                errors,
                name,
                email,
                min_password: MIN_PASSWORD,
                next: next.clone(),
            },
        )
            .into_response()
    };
    if !errors.is_empty() {
        return Ok(page(errors, name, email));
    }
    let hash = hash_password(&state.hashing, password).await?;
    let mut conn = state.db.pool.acquire().await?;
    // Never an admin by registering (see admin.rs).
    let inserted = insert_id(&mut conn, state.db.engine, "INSERT INTO users (name, email, password_hash, is_admin, created_at) VALUES (?, ?, ?, 0, ?)", |q| {
        q.bind(name.clone()).bind(email.clone()).bind(hash).bind(now())
    })
    .await;
    let user_id = match inserted {
        Ok(id) => id,
        // A unique violation: the e-mail is taken (also when two sign-ups race).
        Err(sqlx::Error::Database(e)) if e.is_unique_violation() => {
            let mut errors = FieldErrors::default();
            errors.add(
                "email",
                "An account with this e-mail already exists. Log in instead.",
            );
            return Ok(page(errors, name, email));
        }
        Err(e) => return Err(e.into()),
    };
    drop(conn);
    start_session(&state, &ctx, user_id, &next, Flash::Welcome).await
}

/// The client's address: the one the nearest of `trusted` proxies appended to X-Forwarded-For
/// (the `trusted`-th entry from the right); the socket peer when no proxy is trusted or the header
/// is shorter than the proxies in front (it did not come through them). Entries left of that are
/// the client's own words and never count.
pub fn client_address(headers: &HeaderMap, peer: SocketAddr, trusted: usize) -> IpAddr {
    if trusted == 0 {
        return peer.ip();
    }
    let hops: Vec<&str> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .collect();
    hops.len()
        .checked_sub(trusted)
        .and_then(|i| hops[i].parse::<IpAddr>().ok())
        .unwrap_or_else(|| peer.ip())
}

/// Counts one attempt for `subject` and returns the count in the current window, atomically: the
/// upsert locks the row until the commit, so concurrent attempts each see their own number.
async fn count_attempt(state: &AppState, subject: &str) -> AppResult<i64> {
    let t = now();
    let old = t - WINDOW_SECS;
    let mut tx = state.db.pool.begin().await?;
    let upsert = match state.db.engine {
        Engine::Sqlite => {
            "INSERT INTO login_failures (subject, failures, window_start) VALUES (?, 1, ?) \
             ON CONFLICT (subject) DO UPDATE SET failures = CASE WHEN window_start < ? THEN 1 ELSE failures + 1 END, \
             window_start = CASE WHEN window_start < ? THEN excluded.window_start ELSE window_start END"
        }
        // Assignments run left to right: `failures` is computed while `window_start` is still old.
        Engine::Mysql => {
            "INSERT INTO login_failures (subject, failures, window_start) VALUES (?, 1, ?) \
             ON DUPLICATE KEY UPDATE failures = IF(window_start < ?, 1, failures + 1), \
             window_start = IF(window_start < ?, VALUES(window_start), window_start)"
        }
    };
    sqlx::query(upsert)
        .bind(subject)
        .bind(t)
        .bind(old)
        .bind(old)
        .execute(&mut *tx)
        .await?;
    let count: i64 = sqlx::query("SELECT failures FROM login_failures WHERE subject = ?")
        .bind(subject)
        .fetch_one(&mut *tx)
        .await?
        .get(0);
    tx.commit().await?;
    Ok(count)
}

async fn known_address(state: &AppState, user_id: i64, address: &str) -> AppResult<bool> {
    Ok(
        sqlx::query("SELECT 1 FROM login_known WHERE user_id = ? AND address = ?")
            .bind(user_id)
            .bind(address)
            .fetch_optional(&state.db.pool)
            .await?
            .is_some(),
    )
}

fn too_many() -> AppError {
    AppError::TooManyAttempts(WINDOW_SECS / 60)
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
    if email.len() > 254 || password.len() > 1024 {
        return Err(AppError::BadRequest(
            "the e-mail or password is too long".into(),
        ));
    }
    let next = return_path(field(&form, "next"));
    let address = client_address(&headers, peer, state.config.trusted_proxies).to_string();
    let pair = format!("pair:{address}:{email}");
    let spray = format!("spray:{address}");
    // Counted before any hash: of 30 simultaneous guesses, at most MAX_PAIR reach the hash.
    let pair_attempts = count_attempt(&state, &pair).await?;
    if pair_attempts > MAX_PAIR {
        return Err(too_many());
    }
    // An account's first attempt from this address counts once against the address, unknown
    // e-mails too (exactly one request sees its pair's first count, atomically).
    let sprayed = pair_attempts == 1 && count_attempt(&state, &spray).await? > MAX_SPRAY;
    let row = sqlx::query("SELECT id, password_hash FROM users WHERE email = ?")
        .bind(&email)
        .fetch_optional(&state.db.pool)
        .await?;
    let account_attempts = count_attempt(&state, &format!("account:{email}")).await?;
    let (user_id, hash) = match row {
        Some(r) => (Some(r.get::<i64, _>(0)), r.get::<String, _>(1)),
        None => {
            let dummy = DUMMY_HASH
                .get_or_try_init(|| hash_password(&state.hashing, random_token()))
                .await?;
            (None, dummy.clone())
        }
    };
    if account_attempts > MAX_ACCOUNT || sprayed {
        let known = match user_id {
            Some(id) => known_address(&state, id, &address).await?,
            None => false,
        };
        if !known {
            return Err(too_many());
        }
    }
    let ok = verify_password(&state.hashing, password, hash).await? && user_id.is_some();
    if let (true, Some(id)) = (ok, user_id) {
        sqlx::query("DELETE FROM login_failures WHERE subject = ?")
            .bind(&pair)
            .execute(&state.db.pool)
            .await?;
        // The account is its owner's: its attempt no longer counts against the address.
        sqlx::query(
            "UPDATE login_failures SET failures = failures - 1 WHERE subject = ? AND failures > 0",
        )
        .bind(&spray)
        .execute(&state.db.pool)
        .await?;
        remember_address(&state, id, &address).await?;
        return start_session(&state, &ctx, id, &next, Flash::LoggedIn).await;
    }
    Ok((
        StatusCode::UNAUTHORIZED,
        LoginPage {
            ctx: (&ctx).into(),
            error: Some("Wrong e-mail or password.".into()),
            email,
            next,
        },
    )
        .into_response())
}

/// This address logged in to this account: the account-wide limit will not stop it.
async fn remember_address(state: &AppState, user_id: i64, address: &str) -> AppResult<()> {
    let upsert = match state.db.engine {
        Engine::Sqlite => {
            "INSERT INTO login_known (user_id, address, last_at) VALUES (?, ?, ?) \
             ON CONFLICT (user_id, address) DO UPDATE SET last_at = excluded.last_at"
        }
        Engine::Mysql => {
            "INSERT INTO login_known (user_id, address, last_at) VALUES (?, ?, ?) \
             ON DUPLICATE KEY UPDATE last_at = VALUES(last_at)"
        }
    };
    sqlx::query(upsert)
        .bind(user_id)
        .bind(address)
        .bind(now())
        .execute(&state.db.pool)
        .await?;
    Ok(())
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
        // The split: the other services refuse this session's identity tokens once they read it.
        if state.signer.is_some() {
            sqlx::query("INSERT INTO session_revocations (session_id, at) VALUES (?, ?)")
                .bind(token::session_id(&token))
                .bind(now())
                .execute(&state.db.pool)
                .await?;
        }
    }
    let mut response = ctx.redirect("/", Flash::LoggedOut);
    response.headers_mut().append(
        header::SET_COOKIE,
        set_cookie(SESSION_COOKIE, "", 0, ctx.secure),
    );
    if state.signer.is_some() {
        response.headers_mut().append(
            header::SET_COOKIE,
            set_cookie(token::IDENTITY_COOKIE, "", 0, ctx.secure),
        );
    }
    Ok(response)
}

/// Addresses an account logged in from are forgotten after this long unused.
const KNOWN_ADDRESS_SECS: i64 = 180 * 24 * 3600;

/// The sweep's part: expired sessions, login counters past their window, addresses long unused.
/// Returns the sessions and the counters removed.
pub async fn purge_expired(state: &AppState) -> AppResult<(u64, u64)> {
    let t = now();
    let sessions = sqlx::query("DELETE FROM sessions WHERE expires_at <= ?")
        .bind(t)
        .execute(&state.db.pool)
        .await?
        .rows_affected();
    let counters = sqlx::query("DELETE FROM login_failures WHERE window_start < ?")
        .bind(t - WINDOW_SECS)
        .execute(&state.db.pool)
        .await?
        .rows_affected();
    sqlx::query("DELETE FROM login_known WHERE last_at < ?")
        .bind(t - KNOWN_ADDRESS_SECS)
        .execute(&state.db.pool)
        .await?;
    // No identity token outlives an hour: older revocations protect nothing.
    sqlx::query("DELETE FROM session_revocations WHERE at < ?")
        .bind(t - 3600)
        .execute(&state.db.pool)
        .await?;
    Ok((sessions, counters))
}
