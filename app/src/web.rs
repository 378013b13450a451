//! What every request shares: the CSRF cookie and security headers (a middleware), and `Ctx`, the
//! extractor that knows who is logged in (a database lookup only when a session cookie is sent).

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

use axum::extract::{FromRef, FromRequestParts, Request, State};
use axum::http::header::{self, HeaderMap, HeaderValue};
use axum::http::request::Parts;
use axum::middleware::Next;
use axum::response::Response;
use base64::Engine as _;
use sha2::{Digest, Sha256};

use crate::AppState;
use crate::db::now;
use crate::error::{AppError, AppResult};

pub const SESSION_COOKIE: &str = "bs_session";
pub const CSRF_COOKIE: &str = "bs_csrf";

/// A trimmed form field, empty when absent.
pub fn field<'a>(form: &'a HashMap<String, String>, name: &str) -> &'a str {
    form.get(name).map(String::as_str).unwrap_or("").trim()
}

/// Percent-encodes everything but unreserved characters (RFC 3986), for URLs built by hand.
pub fn percent_encode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// 32 random bytes, URL-safe base64.
pub fn random_token() -> String {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).expect("the OS random source works");
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// Session tokens are stored hashed: a read of the sessions table does not yield usable cookies.
pub fn token_hash(token: &str) -> String {
    Sha256::digest(token.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

pub fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_string())
}

/// Served over HTTPS, directly or behind the load balancer (which says so in X-Forwarded-Proto).
pub fn is_https(headers: &HeaderMap) -> bool {
    headers
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|p| p.eq_ignore_ascii_case("https"))
}

pub fn set_cookie(name: &str, value: &str, max_age: i64, secure: bool) -> HeaderValue {
    let secure = if secure { "; Secure" } else { "" };
    HeaderValue::from_str(&format!(
        "{name}={value}; Path=/; HttpOnly; SameSite=Lax; Max-Age={max_age}{secure}"
    ))
    .expect("cookie is ASCII")
}

/// The visitor's CSRF token: the cookie's, or a new one made only when a page renders a form.
#[derive(Default)]
pub struct Csrf {
    existing: Option<String>,
    fresh: OnceLock<String>,
}

impl Csrf {
    pub fn token(&self) -> &str {
        match &self.existing {
            Some(t) => t,
            None => self.fresh.get_or_init(random_token),
        }
    }
}

/// Gives a visitor a CSRF token cookie when a page renders a form, and every response security
/// headers. Pages without forms (the home page for a visitor) set no cookie and cost no randomness.
pub async fn csrf_and_headers(mut req: Request, next: Next) -> Response {
    let existing = cookie(req.headers(), CSRF_COOKIE).filter(|t| t.len() == 43);
    let secure = is_https(req.headers());
    let csrf = Arc::new(Csrf {
        existing,
        fresh: OnceLock::new(),
    });
    req.extensions_mut().insert(Arc::clone(&csrf));
    let mut response = next.run(req).await;
    let h = response.headers_mut();
    if let Some(token) = csrf.fresh.get() {
        h.append(
            header::SET_COOKIE,
            set_cookie(CSRF_COOKIE, token, 60 * 60 * 24 * 30, secure),
        );
    }
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("default-src 'self'; img-src 'self'; style-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"),
    );
    if secure {
        h.insert(
            header::STRICT_TRANSPORT_SECURITY,
            HeaderValue::from_static("max-age=31536000"),
        );
    }
    response
}

#[derive(Debug, Clone)]
pub struct User {
    pub id: i64,
    pub name: String,
    pub is_admin: bool,
}

/// The request's context: the user (if logged in), the CSRF token, and whether it came over HTTPS.
pub struct Ctx {
    pub user: Option<User>,
    csrf: Arc<Csrf>,
    pub secure: bool,
    origin_ok: bool,
}

impl Ctx {
    pub fn user(&self) -> AppResult<&User> {
        self.user.as_ref().ok_or(AppError::LoginRequired)
    }

    /// Refuses a state-changing request whose form token does not match the cookie, or that
    /// another site's page sent.
    pub fn check_csrf(&self, submitted: &str) -> AppResult<()> {
        // Only a token the visitor already holds counts: a fresh one was never in any form.
        let expected = self.csrf.existing.as_deref().unwrap_or_default();
        let matches = !expected.is_empty()
            && submitted.len() == expected.len()
            && submitted
                .bytes()
                .zip(expected.bytes())
                .fold(0u8, |acc, (a, b)| acc | (a ^ b))
                == 0;
        if matches && self.origin_ok {
            Ok(())
        } else {
            Err(AppError::Forbidden(
                "the form expired or came from another site: reload the page and try again".into(),
            ))
        }
    }
}

/// True when the Origin header is absent or names this host.
fn same_origin(headers: &HeaderMap) -> bool {
    let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) else {
        return true;
    };
    let host = headers
        .get("x-forwarded-host")
        .or_else(|| headers.get(header::HOST))
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    origin
        .split_once("://")
        .is_some_and(|(_, rest)| rest == host)
}

impl<S> FromRequestParts<S> for Ctx
where
    AppState: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let State(app): State<AppState> = State::from_request_parts(parts, state)
            .await
            .map_err(|_| AppError::Internal("state".into()))?;
        let csrf = parts
            .extensions
            .get::<Arc<Csrf>>()
            .cloned()
            .unwrap_or_default();
        let mut user = None;
        if let Some(token) = cookie(&parts.headers, SESSION_COOKIE) {
            user = app
                .db
                .reads
                .session_user(&token_hash(&token), now())
                .await?;
        }
        Ok(Ctx {
            user,
            csrf,
            secure: is_https(&parts.headers),
            origin_ok: same_origin(&parts.headers),
        })
    }
}

/// What every page template needs for the layout.
pub struct PageCtx {
    pub user: Option<User>,
    csrf: Arc<Csrf>,
}

impl PageCtx {
    /// For forms. Templates call it, so only a page with a form hands out a token.
    pub fn csrf(&self) -> &str {
        self.csrf.token()
    }
}

impl From<&Ctx> for PageCtx {
    fn from(c: &Ctx) -> Self {
        PageCtx {
            user: c.user.clone(),
            csrf: Arc::clone(&c.csrf),
        }
    }
}

/// Request ids: this process's random prefix and a counter. Unique across replicas like a UUID,
/// without asking the kernel for randomness on every request (a UUID per request did).
#[derive(Clone, Copy)]
pub struct RequestIds;

impl tower_http::request_id::MakeRequestId for RequestIds {
    fn make_request_id<B>(
        &mut self,
        _: &axum::http::Request<B>,
    ) -> Option<tower_http::request_id::RequestId> {
        static PREFIX: OnceLock<String> = OnceLock::new();
        static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
        let prefix = PREFIX.get_or_init(|| random_token()[..12].to_string());
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        HeaderValue::from_str(&format!("{prefix}-{n}"))
            .ok()
            .map(tower_http::request_id::RequestId::new)
    }
}
