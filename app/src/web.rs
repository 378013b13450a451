//! What every request shares: the CSRF cookie and security headers (a middleware), and `Ctx`, the
//! extractor that knows who is logged in (accounts' `Identity` asked only when a session cookie is
//! sent).

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

use askama::Template;
use askama_web::WebTemplate;
use axum::extract::{FromRef, FromRequestParts, Request, State};
use axum::http::StatusCode;
use axum::http::header::{self, HeaderMap, HeaderValue};
use axum::http::request::Parts;
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use base64::Engine as _;
use sha2::{Digest, Sha256};

use crate::AppState;
use crate::accounts::token::{IDENTITY_COOKIE, Rejected};
use crate::db::now;
use crate::error::{AppError, AppResult};
use crate::ports::Identity;
pub use crate::ports::User;

pub const SESSION_COOKIE: &str = "bs_session";
pub const CSRF_COOKIE: &str = "bs_csrf";
pub const FLASH_COOKIE: &str = "bs_flash";

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

/// Whether a secret given matches the one expected (not empty), in time that does not depend on
/// where they differ.
pub fn same_secret(given: &[u8], expected: &[u8]) -> bool {
    !expected.is_empty()
        && given.len() == expected.len()
        && given
            .iter()
            .zip(expected)
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0
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

/// Every `name=value` pair of the request's cookies.
fn cookie_pairs(headers: &HeaderMap) -> impl Iterator<Item = (&str, &str)> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
}

pub fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    cookie_pairs(headers)
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

/// What the middleware learned of the request before the handler ran, for the handler's `Ctx`.
#[derive(Clone)]
struct Arrival {
    flash: Option<Flash>,
    uri: axum::http::Uri,
}

/// Around every request: gives a visitor a CSRF token cookie when a page renders a form, carries a
/// flash message across one redirect, puts error pages inside the site (the visitor's menu, the
/// reason, a link back), sends a visitor who must log in to the login form with the way back, and
/// adds the security headers. Pages without forms set no cookie and cost no randomness.
pub async fn around_every_request(
    State(state): State<AppState>,
    mut req: Request,
    next: Next,
) -> Response {
    // One pass over the cookies; the session's user is looked up here only for an error page.
    // Each cookie's first value, as `cookie` reads it.
    let (mut csrf_in, mut flash_in, mut session, mut identity) = (None, None, None, None);
    for (name, value) in cookie_pairs(req.headers()) {
        let slot = match name {
            CSRF_COOKIE => &mut csrf_in,
            FLASH_COOKIE => &mut flash_in,
            SESSION_COOKIE => &mut session,
            IDENTITY_COOKIE => &mut identity,
            _ => continue,
        };
        slot.get_or_insert(value);
    }
    let existing = csrf_in.filter(|t| t.len() == 43).map(str::to_string);
    let session = session.map(str::to_string);
    let identity = identity.map(str::to_string);
    let flash = flash_in.and_then(Flash::decode);
    let had_flash = flash_in.is_some();
    let secure = is_https(req.headers());
    let csrf = Arc::new(Csrf {
        existing,
        fresh: OnceLock::new(),
    });
    let uri = req.uri().clone();
    let method = req.method().clone();
    let fresh_identity = Arc::new(FreshIdentity::default());
    req.extensions_mut().insert(Arc::clone(&fresh_identity));
    req.extensions_mut().insert(Arc::clone(&csrf));
    req.extensions_mut().insert(Arrival {
        flash,
        uri: uri.clone(),
    });
    let mut response = next.run(req).await;
    if response.extensions().get::<LoginNeeded>().is_some() {
        let next_path = if method == axum::http::Method::GET {
            uri.path_and_query().map_or("/", |p| p.as_str()).to_string()
        } else {
            back_from(&method, uri.path()).0
        };
        response.headers_mut().insert(
            header::LOCATION,
            HeaderValue::from_str(&format!("/login?next={}", percent_encode(&next_path)))
                .unwrap_or(HeaderValue::from_static("/login")),
        );
    } else if is_error_to_show(&response) {
        response = error_page(&state, response, &csrf, session, identity, &method, &uri).await;
    }
    let h = response.headers_mut();
    if let Some((token, max_age)) = fresh_identity.0.get() {
        h.append(
            header::SET_COOKIE,
            set_cookie(IDENTITY_COOKIE, token, *max_age, secure),
        );
    }
    if let Some(token) = csrf.fresh.get() {
        h.append(
            header::SET_COOKIE,
            set_cookie(CSRF_COOKIE, token, 60 * 60 * 24 * 30, secure),
        );
    }
    // A flash is shown once: the page after the redirect clears it (a new one replaces it).
    let sets_flash = h
        .get_all(header::SET_COOKIE)
        .iter()
        .any(|v| v.as_bytes().starts_with(FLASH_COOKIE.as_bytes()));
    if had_flash && !sets_flash && !response.status().is_redirection() {
        response
            .headers_mut()
            .append(header::SET_COOKIE, set_cookie(FLASH_COOKIE, "", 0, secure));
    }
    let h = response.headers_mut();
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
        HeaderValue::from_static("default-src 'self'; img-src 'self'; style-src 'self'; script-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"),
    );
    if secure {
        h.insert(
            header::STRICT_TRANSPORT_SECURITY,
            HeaderValue::from_static("max-age=31536000"),
        );
    }
    response
}

/// An error of ours (`ErrorShown`), or the framework's own refusal (not a page of ours); a form
/// that comes back with its errors is a page already.
fn is_error_to_show(response: &Response) -> bool {
    let status = response.status();
    let is_page = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"text/html"));
    (status.is_client_error() || status.is_server_error())
        && (response.extensions().get::<ErrorShown>().is_some() || !is_page)
}

/// Marks the response of a request that needs a logged-in user (`AppError::LoginRequired`).
#[derive(Clone, Copy)]
pub struct LoginNeeded;

/// An error as the visitor is told it; the middleware renders it inside the site.
#[derive(Clone)]
pub struct ErrorShown {
    pub title: &'static str,
    pub message: String,
}

#[derive(Template, WebTemplate)]
#[template(path = "error.html")]
struct ErrorPage {
    ctx: PageCtx,
    status: u16,
    title: &'static str,
    message: String,
    back: String,
    back_label: &'static str,
}

/// Where the visitor was going, for the link on an error page and the return after logging in:
/// the page the failed form was on, or the list a missing item belongs to.
pub fn back_from(method: &axum::http::Method, path: &str) -> (String, &'static str) {
    let parts: Vec<&str> = path.trim_matches('/').split('/').collect();
    let post = method == axum::http::Method::POST;
    match parts.as_slice() {
        ["books", id, _] => (format!("/books/{id}"), "Back to the book"),
        ["books", id] if post => (format!("/books/{id}"), "Back to the book"),
        ["orders", id, _] => (format!("/orders/{id}"), "Back to the order"),
        ["orders", _] => ("/orders".into(), "Go to my orders"),
        ["sell"] => ("/sell".into(), "Back to the form"),
        ["my", "books"] => ("/my/books".into(), "Go to my books"),
        ["sales"] => ("/sales".into(), "Go to my sales"),
        ["orders"] => ("/orders".into(), "Go to my orders"),
        ["login"] => ("/login".into(), "Back to log in"),
        ["register"] => ("/register".into(), "Back to registration"),
        ["admin", ..] => ("/".into(), "Go to the home page"),
        _ => ("/books".into(), "Back to the catalog"),
    }
}

/// The error response as a page of the site. Errors of ours carry `ErrorShown`; the framework's
/// own refusals (an unreadable form, an upload past the body limit) are told in our words.
async fn error_page(
    state: &AppState,
    response: Response,
    csrf: &Arc<Csrf>,
    session: Option<String>,
    identity: Option<String>,
    method: &axum::http::Method,
    uri: &axum::http::Uri,
) -> Response {
    let path = uri.path();
    let status = response.status();
    // Static files and covers: a missing image is not a page.
    // The health check is for load balancers and operators: its plain reason stays.
    if path.starts_with("/static/") || path.starts_with("/covers/") || path == "/healthz" {
        return response;
    }
    let shown = response.extensions().get::<ErrorShown>().cloned();
    let (title, message) = match shown {
        Some(s) => (s.title, s.message),
        None => (
            crate::error::title(status),
            match status.as_u16() {
                413 => format!(
                    "The upload is larger than this site takes: a cover may be at most {} KB.",
                    state.config.max_upload_bytes / 1024
                ),
                404 | 405 => "There is no such page.".to_string(),
                s if s >= 500 => "Please try again in a moment.".to_string(),
                _ => "The form could not be read: reload the page and try again.".to_string(),
            },
        ),
    };
    // The visitor's menu, unless the server is too busy to look them up.
    let user = match session {
        Some(token) if status != StatusCode::SERVICE_UNAVAILABLE => {
            identify(state, Some(&token), identity.as_deref(), None)
                .await
                .ok()
                .flatten()
        }
        _ => None,
    };
    let (back, back_label) = back_from(method, path);
    let page = ErrorPage {
        ctx: PageCtx {
            user,
            csrf: Arc::clone(csrf),
            uri: uri.clone(),
            flash: None,
        },
        status: status.as_u16(),
        title,
        message,
        back,
        back_label,
    };
    let (mut parts, _) = response.into_parts();
    let body = match page.render() {
        Ok(html) => html,
        Err(e) => {
            tracing::error!(error = %e, "rendering an error page");
            format!("{title}: {}", status.as_u16())
        }
    };
    parts.headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    parts.headers.remove(header::CONTENT_LENGTH);
    Response::from_parts(parts, axum::body::Body::from(body))
}

/// The request's context: the user (if logged in), the CSRF token, and whether it came over HTTPS.
pub struct Ctx {
    pub user: Option<User>,
    csrf: Arc<Csrf>,
    pub secure: bool,
    origin_ok: bool,
    flash: Option<Flash>,
    uri: axum::http::Uri,
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
        if same_secret(submitted.as_bytes(), expected.as_bytes()) && self.origin_ok {
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
        let arrival = parts.extensions.get::<Arrival>().cloned();
        let fresh = parts.extensions.get::<Arc<FreshIdentity>>().cloned();
        let session = cookie(&parts.headers, SESSION_COOKIE);
        let identity = cookie(&parts.headers, IDENTITY_COOKIE);
        let user = identify(
            &app,
            session.as_deref(),
            identity.as_deref(),
            fresh.as_deref(),
        )
        .await?;
        Ok(Ctx {
            user,
            csrf,
            secure: is_https(&parts.headers),
            origin_ok: same_origin(&parts.headers),
            flash: arrival.as_ref().and_then(|a| a.flash),
            uri: arrival.map(|a| a.uri).unwrap_or_default(),
        })
    }
}

/// What every page template needs for the layout.
pub struct PageCtx {
    pub user: Option<User>,
    csrf: Arc<Csrf>,
    /// The page's address, to mark the current page in the menu.
    uri: axum::http::Uri,
    /// The message of the action that led here, shown once.
    pub flash: Option<Flash>,
}

impl PageCtx {
    /// For forms. Templates call it, so only a page with a form hands out a token.
    pub fn csrf(&self) -> &str {
        self.csrf.token()
    }

    /// `aria-current="page"` on the menu's link to the page shown.
    pub fn current(&self, href: &str) -> bool {
        self.uri.path() == href
    }
}

impl From<&Ctx> for PageCtx {
    fn from(c: &Ctx) -> Self {
        PageCtx {
            user: c.user.clone(),
            csrf: Arc::clone(&c.csrf),
            uri: c.uri.clone(),
            flash: c.flash,
        }
    }
}

impl Ctx {
    /// A redirect after an action, carrying its message to the next page (a cookie of one of
    /// our own messages: another site cannot put words on our pages through it).
    pub fn redirect(&self, to: &str, flash: Flash) -> Response {
        let mut response = Redirect::to(to).into_response();
        response.headers_mut().append(
            header::SET_COOKIE,
            set_cookie(FLASH_COOKIE, &flash.encode(), 60, self.secure),
        );
        response
    }
}

/// The messages shown after an action. Only these can be shown: the cookie names one and its number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flash {
    Welcome,
    LoggedIn,
    LoggedOut,
    /// The price, in cents.
    Published(i64),
    Saved(i64),
    Deleted,
    Withdrawn,
    Ordered,
    /// The amount paid, in cents.
    Paid(i64),
    Cancelled,
    Shipped,
    AddressSaved,
    AdminClaimed,
}

impl Flash {
    const NAMES: &[&str] = &[
        "welcome",
        "logged-in",
        "logged-out",
        "published",
        "saved",
        "deleted",
        "withdrawn",
        "ordered",
        "paid",
        "cancelled",
        "shipped",
        "address",
        "admin",
    ];

    fn parts(self) -> (usize, i64) {
        match self {
            Flash::Welcome => (0, 0),
            Flash::LoggedIn => (1, 0),
            Flash::LoggedOut => (2, 0),
            Flash::Published(c) => (3, c),
            Flash::Saved(c) => (4, c),
            Flash::Deleted => (5, 0),
            Flash::Withdrawn => (6, 0),
            Flash::Ordered => (7, 0),
            Flash::Paid(c) => (8, c),
            Flash::Cancelled => (9, 0),
            Flash::Shipped => (10, 0),
            Flash::AddressSaved => (11, 0),
            Flash::AdminClaimed => (12, 0),
        }
    }

    pub fn encode(self) -> String {
        let (i, n) = self.parts();
        format!("{}.{n}", Self::NAMES[i])
    }

    pub fn decode(s: &str) -> Option<Flash> {
        let (name, n) = s.split_once('.')?;
        let n: i64 = n
            .parse()
            .ok()
            .filter(|n| (0..=1_000_000_000_000).contains(n))?;
        Some(match Self::NAMES.iter().position(|x| *x == name)? {
            0 => Flash::Welcome,
            1 => Flash::LoggedIn,
            2 => Flash::LoggedOut,
            3 => Flash::Published(n),
            4 => Flash::Saved(n),
            5 => Flash::Deleted,
            6 => Flash::Withdrawn,
            7 => Flash::Ordered,
            8 => Flash::Paid(n),
            9 => Flash::Cancelled,
            10 => Flash::Shipped,
            11 => Flash::AddressSaved,
            _ => Flash::AdminClaimed,
        })
    }

    pub fn text(&self) -> String {
        use crate::money::format;
        match *self {
            Flash::Welcome => "Welcome! Your account is ready and you are logged in.".into(),
            Flash::LoggedIn => "You are logged in.".into(),
            Flash::LoggedOut => "You are logged out. See you soon.".into(),
            Flash::Published(c) => format!("Your book is on sale at {}.", format(c)),
            Flash::Saved(c) => format!("Your changes are saved. The price is {}.", format(c)),
            Flash::Deleted => "The listing is deleted.".into(),
            Flash::Withdrawn => "The listing is withdrawn: its orders stay in the history, and its unpaid orders were cancelled.".into(),
            Flash::Ordered => "Your copies are reserved. Enter where to ship them, choose delivery and pay below.".into(),
            Flash::Paid(c) => format!("Payment received: {}. The seller ships your order next.", format(c)),
            Flash::Cancelled => "The order is cancelled and its copies are back on sale.".into(),
            Flash::Shipped => "Marked as shipped: the buyer sees it in their orders.".into(),
            Flash::AddressSaved => "The shipping address is saved.".into(),
            Flash::AdminClaimed => "You are now an administrator.".into(),
        }
    }
}

/// A path of this site to return to after logging in: only a local path, never `//host` or
/// `/\host` (which browsers take for another site), and not the login pages themselves.
pub fn safe_next(next: &str) -> Option<&str> {
    let ok = next.starts_with('/')
        && !next.starts_with("//")
        && !next.contains('\\')
        && next.len() <= 1000
        && !next.chars().any(|c| c.is_control() || c.is_whitespace())
        && !["/login", "/logout", "/register"]
            .iter()
            .any(|p| next == *p || next.starts_with(&format!("{p}?")));
    ok.then_some(next)
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

/// An identity token a service of the split got from accounts for this request, to hand the
/// browser (with its lifetime in seconds), so the next requests need not ask again.
#[derive(Default)]
pub struct FreshIdentity(OnceLock<(String, i64)>);

/// Who is logged in. All in one process, or the accounts service: the session in the database.
/// Catalog and orders of the split: the identity token, verified with accounts' keys; when it is
/// missing, expired or its key unknown, accounts is asked once with the session cookie (and the
/// new token goes to the browser through `fresh`). A revoked session asks nobody: logged out.
async fn identify(
    state: &AppState,
    session: Option<&str>,
    identity: Option<&str>,
    fresh: Option<&FreshIdentity>,
) -> AppResult<Option<User>> {
    let Some(verifier) = &state.verifier else {
        return match session {
            Some(token) => state.accounts().session_user(token).await,
            None => Ok(None),
        };
    };
    let Some(session) = session else {
        return Ok(None);
    };
    let t = now();
    if let Some(token) = identity {
        let mut verdict = verifier.verify(token, t);
        if matches!(verdict, Err(Rejected::UnknownKey)) {
            refresh_keys(state).await;
            verdict = verifier.verify(token, t);
        }
        match verdict {
            Ok((user, sid, _)) if sid == crate::accounts::token::session_id(session) => {
                return Ok(Some(user));
            }
            Err(Rejected::Revoked) => return Ok(None),
            _ => {}
        }
    }
    let Some(peer) = state.peer(|p| &p.accounts) else {
        return Ok(None);
    };
    let Some(s) = (crate::accounts::api::Remote(peer, &state.names))
        .session(session)
        .await?
    else {
        return Ok(None);
    };
    if let Some(fresh) = fresh {
        let _ = fresh.0.set((s.identity.clone(), (s.expires - t).max(1)));
    }
    Ok(Some(s.user()))
}

/// Fetches accounts' keys again: a token signed by a key this service has not seen (a rotation,
/// or accounts was not up when this one started). At most once every 10 s.
async fn refresh_keys(state: &AppState) {
    use std::sync::atomic::{AtomicI64, Ordering};
    static LAST: AtomicI64 = AtomicI64::new(0);
    let t = now();
    let last = LAST.load(Ordering::Relaxed);
    if t - last < 10
        || LAST
            .compare_exchange(last, t, Ordering::Relaxed, Ordering::Relaxed)
            .is_err()
    {
        return;
    }
    if let (Some(verifier), Some(peer)) = (&state.verifier, state.peer(|p| &p.accounts)) {
        match (crate::accounts::api::Remote(peer, &state.names))
            .keys()
            .await
        {
            Ok(keys) => verifier.set_keys(keys),
            Err(e) => tracing::warn!(error = %e, "cannot read accounts' identity keys"),
        }
    }
}

/// Catalog and orders of the split: accounts' keys at start, then the sessions logged out, every
/// `--revocation-poll-secs`: a logout is honoured here within that (plus one request's time)
/// while accounts answers; a token never outlives `--identity-secs` anyway.
pub async fn follow_accounts(state: AppState) {
    let (Some(verifier), Some(peer), Some(split)) = (
        state.verifier.clone(),
        state.peer(|p| &p.accounts),
        state.config.split.clone(),
    ) else {
        return;
    };
    let accounts = crate::accounts::api::Remote(peer, &state.names);
    let mut have_keys = false;
    let mut after = 0;
    let mut tick =
        tokio::time::interval(std::time::Duration::from_secs(split.revocation_poll_secs));
    loop {
        tick.tick().await;
        if !have_keys {
            match accounts.keys().await {
                Ok(keys) => {
                    verifier.set_keys(keys);
                    have_keys = true;
                }
                Err(e) => tracing::warn!(error = %e, "cannot read accounts' identity keys yet"),
            }
        }
        // An hour of revocations is kept: no token lives longer (`--identity-secs` <= 3600).
        match accounts.revoked(after).await {
            Ok(r) => {
                verifier.revoke(r.sessions, now(), 3600);
                after = r.last;
            }
            Err(e) => tracing::warn!(error = %e, "cannot read the sessions logged out"),
        }
    }
}
