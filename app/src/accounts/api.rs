//! accounts' internal API, for the split: a session's user and a fresh identity token, users'
//! names, the keys that verify tokens, and the sessions logged out (`routes`); and the client the
//! other services call it with (`Remote`).

use std::collections::HashMap;

use axum::Json;
use axum::Router;
use axum::extract::{Query, State};
use axum::http::Method;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine as _;
use serde::{Deserialize, Serialize};
use sqlx::Row;

use super::token::session_id;
use crate::AppState;
use crate::db::now;
use crate::error::{AppError, AppResult};
use crate::internal::{Peer, refuse};
use crate::ports::{Identity, User};

#[derive(Serialize, Deserialize)]
struct SessionAsk {
    token: String,
}

#[derive(Serialize, Deserialize)]
struct UserJson {
    id: i64,
    name: String,
    is_admin: bool,
}

/// A session's user and an identity token for it.
#[derive(Serialize, Deserialize)]
pub struct Session {
    user: UserJson,
    pub identity: String,
    pub expires: i64,
}

impl Session {
    pub fn user(&self) -> User {
        User {
            id: self.user.id,
            name: self.user.name.clone(),
            is_admin: self.user.is_admin,
        }
    }
}

#[derive(Serialize, Deserialize)]
struct Ids {
    ids: Vec<i64>,
}

#[derive(Deserialize)]
struct After {
    after: i64,
}

#[derive(Serialize, Deserialize)]
pub struct Revoked {
    pub last: i64,
    pub sessions: Vec<String>,
}

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/internal/session", post(session))
        .route("/internal/names", post(names))
        .route("/internal/keys", get(keys))
        .route("/internal/revoked", get(revoked))
}

/// The identity token for a session cookie's token: the user, good for `--identity-secs` and
/// never past the session's own end.
pub async fn issue(state: &AppState, token: &str) -> AppResult<Option<Session>> {
    let Some(signer) = &state.signer else {
        return Err(AppError::Internal("this service signs no identity".into()));
    };
    let row = sqlx::query("SELECT u.id, u.name, u.is_admin, s.expires_at FROM sessions s JOIN users u ON u.id = s.user_id WHERE s.token_hash = ? AND s.expires_at > ?")
        .bind(crate::web::token_hash(token))
        .bind(now())
        .fetch_optional(&state.db.pool)
        .await?;
    let Some(r) = row else {
        return Ok(None);
    };
    let user = User {
        id: r.get(0),
        name: r.get(1),
        is_admin: r.get::<i64, _>(2) != 0,
    };
    let lifetime = state.config.split.as_ref().map_or(300, |s| s.identity_secs);
    let expires = (now() + lifetime).min(r.get::<i64, _>(3));
    Ok(Some(Session {
        identity: signer.sign(&user, &session_id(token), expires),
        user: UserJson {
            id: user.id,
            name: user.name,
            is_admin: user.is_admin,
        },
        expires,
    }))
}

async fn session(State(state): State<AppState>, Json(ask): Json<SessionAsk>) -> Response {
    match issue(&state, &ask.token).await {
        Ok(Some(s)) => Json(s).into_response(),
        Ok(None) => refuse(AppError::NotFound),
        Err(e) => refuse(e),
    }
}

async fn names(State(state): State<AppState>, Json(ids): Json<Ids>) -> Response {
    match state.accounts().names(&ids.ids).await {
        Ok(n) => Json(n).into_response(),
        Err(e) => refuse(e),
    }
}

async fn keys(State(state): State<AppState>) -> Response {
    match &state.signer {
        Some(s) => Json(s.public_keys()).into_response(),
        None => refuse(AppError::Internal("no identity keys".into())),
    }
}

/// Sessions logged out after revocation `after` (at most 1,000 at a time), and the last one's
/// number, to ask from next time.
async fn revoked(State(state): State<AppState>, Query(q): Query<After>) -> Response {
    let rows = sqlx::query(
        "SELECT id, session_id FROM session_revocations WHERE id > ? ORDER BY id LIMIT 1000",
    )
    .bind(q.after)
    .fetch_all(&state.db.pool)
    .await;
    match rows {
        Ok(rows) => Json(Revoked {
            last: rows.last().map_or(q.after, |r| r.get(0)),
            sessions: rows.iter().map(|r| r.get(1)).collect(),
        })
        .into_response(),
        Err(e) => refuse(e.into()),
    }
}

/// The accounts service, as catalog and orders call it (names kept as read, as in process).
pub struct Remote<'a>(pub &'a Peer, pub &'a super::Names);

impl Remote<'_> {
    /// A fresh identity token for a session cookie's token; None once the session has ended.
    pub async fn session(&self, token: &str) -> AppResult<Option<Session>> {
        let asked = self
            .0
            .call(
                Method::POST,
                "/internal/session",
                &SessionAsk {
                    token: token.to_string(),
                },
            )
            .await;
        match asked {
            Ok(s) => Ok(Some(s)),
            Err(AppError::NotFound) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// The keys that verify identity tokens, by id.
    pub async fn keys(&self) -> AppResult<HashMap<String, Vec<u8>>> {
        let keys: HashMap<String, String> = self.0.call(Method::GET, "/internal/keys", &()).await?;
        Ok(keys
            .into_iter()
            .filter_map(|(kid, b64)| {
                base64::engine::general_purpose::STANDARD
                    .decode(b64)
                    .ok()
                    .map(|k| (kid, k))
            })
            .collect())
    }

    pub async fn revoked(&self, after: i64) -> AppResult<Revoked> {
        self.0
            .call(
                Method::GET,
                &format!("/internal/revoked?after={after}"),
                &(),
            )
            .await
    }
}

impl Identity for Remote<'_> {
    async fn session_user(&self, token: &str) -> AppResult<Option<User>> {
        Ok(self.session(token).await?.map(|s| s.user()))
    }

    async fn names(&self, ids: &[i64]) -> AppResult<HashMap<i64, String>> {
        let (mut found, missing) = self.1.split(ids);
        if !missing.is_empty() {
            let read: HashMap<i64, String> = self
                .0
                .call(Method::POST, "/internal/names", &Ids { ids: missing })
                .await?;
            self.1.keep(&read);
            found.extend(read);
        }
        Ok(found)
    }
}

/// The `Identity` port: this process's accounts, or the accounts service.
pub enum Port<'a> {
    Local(super::Local<'a>),
    Remote(Remote<'a>),
}

impl Identity for Port<'_> {
    async fn session_user(&self, token: &str) -> AppResult<Option<User>> {
        match self {
            Port::Local(l) => l.session_user(token).await,
            Port::Remote(r) => r.session_user(token).await,
        }
    }

    async fn names(&self, ids: &[i64]) -> AppResult<HashMap<i64, String>> {
        match self {
            Port::Local(l) => l.names(ids).await,
            Port::Remote(r) => r.names(ids).await,
        }
    }
}
