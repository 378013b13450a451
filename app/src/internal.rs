//! The split's internal API: each service answers the others on its own port (`--internal-addr`,
//! never routed from the internet), every request carrying the shared internal key; and `Peer`,
//! the client a service calls another with. Calls are JSON over HTTP/1.1, one connection each,
//! bounded in time; every call the services make is idempotent, so a call that got no answer is
//! tried again (`Peer::call`).

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::AppState;
use crate::config::Service;
use crate::error::{AppError, AppResult};

/// One try of a call: connect, send, read the answer.
const TRY_TIMEOUT: Duration = Duration::from_secs(2);
/// Tries of a call that got no answer (a refused connection, a timeout).
const TRIES: u32 = 3;

/// Another service's internal API.
pub struct Peer {
    pub service: &'static str,
    host: String,
    key: Arc<str>,
}

/// What a peer answered that is not a success: a refusal with its reason (shown to the visitor).
#[derive(serde::Deserialize)]
pub struct Refusal {
    pub error: String,
}

impl Peer {
    pub fn new(service: Service, host: String, key: Arc<str>) -> Peer {
        Peer {
            service: service.name(),
            host,
            key,
        }
    }

    /// `method path` with `body` as JSON; the answer's JSON. 404 is `NotFound`, 400 and 409 the
    /// peer's reason; no answer after `TRIES` is `Unavailable`.
    pub async fn call<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: &impl Serialize,
    ) -> AppResult<T> {
        self.call_tries(method, path, body, TRIES).await
    }

    /// Whether the peer's internal API and database answer, asked once (a load balancer's health
    /// check must not wait for retries).
    pub async fn answers(&self) -> bool {
        let ok: AppResult<serde_json::Value> = self
            .call_tries(Method::GET, "/internal/healthz", &(), 1)
            .await;
        ok.is_ok()
    }

    async fn call_tries<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: &impl Serialize,
        tries: u32,
    ) -> AppResult<T> {
        let body = serde_json::to_vec(body).map_err(|e| AppError::Internal(e.to_string()))?;
        let mut last = String::new();
        for attempt in 0..tries {
            if attempt > 0 {
                tokio::time::sleep(Duration::from_millis(100 * u64::from(attempt))).await;
            }
            match tokio::time::timeout(TRY_TIMEOUT, self.once(&method, path, &body)).await {
                Ok(Ok((status, bytes))) => return self.answer(status, &bytes),
                Ok(Err(e)) => last = e,
                Err(_) => last = format!("no answer within {} s", TRY_TIMEOUT.as_secs()),
            }
        }
        tracing::warn!(service = self.service, %path, error = %last, "internal call failed");
        Err(AppError::Unavailable(self.service))
    }

    fn answer<T: DeserializeOwned>(&self, status: u16, bytes: &[u8]) -> AppResult<T> {
        let reason = || {
            serde_json::from_slice::<Refusal>(bytes)
                .map(|r| r.error)
                .unwrap_or_default()
        };
        match status {
            200 => serde_json::from_slice(bytes).map_err(|e| {
                AppError::Internal(format!("{} answered unreadable JSON: {e}", self.service))
            }),
            404 => Err(AppError::NotFound),
            400 => Err(AppError::BadRequest(reason())),
            409 => Err(AppError::Conflict(reason())),
            _ => {
                tracing::warn!(service = self.service, status, "internal call refused");
                Err(AppError::Unavailable(self.service))
            }
        }
    }

    async fn once(
        &self,
        method: &Method,
        path: &str,
        body: &[u8],
    ) -> Result<(u16, Vec<u8>), String> {
        let stream = tokio::net::TcpStream::connect(&self.host)
            .await
            .map_err(|e| format!("cannot connect to {}: {e}", self.host))?;
        let _ = stream.set_nodelay(true);
        let (mut send, connection) =
            hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
                .await
                .map_err(|e| e.to_string())?;
        tokio::spawn(connection);
        let request = axum::http::Request::builder()
            .method(method.clone())
            .uri(path)
            .header(header::HOST, &self.host)
            .header(header::AUTHORIZATION, format!("Bearer {}", self.key))
            .header(header::CONTENT_TYPE, "application/json")
            .header(header::CONNECTION, "close")
            .body(Full::new(Bytes::copy_from_slice(body)))
            .map_err(|e| e.to_string())?;
        let response = send
            .send_request(request)
            .await
            .map_err(|e| e.to_string())?;
        let status = response.status().as_u16();
        let bytes = response
            .into_body()
            .collect()
            .await
            .map_err(|e| e.to_string())?
            .to_bytes();
        Ok((status, bytes.to_vec()))
    }
}

/// The peers a service calls.
pub struct Peers {
    pub accounts: Option<Peer>,
    pub catalog: Option<Peer>,
    pub orders: Option<Peer>,
}

/// A refusal as the internal API sends it: the status and the reason, for the caller to show.
pub fn refuse(e: AppError) -> Response {
    let status = match &e {
        AppError::NotFound => StatusCode::NOT_FOUND,
        AppError::BadRequest(_) => StatusCode::BAD_REQUEST,
        AppError::Conflict(_) => StatusCode::CONFLICT,
        _ => {
            tracing::error!(error = ?e, "internal request failed");
            StatusCode::SERVICE_UNAVAILABLE
        }
    };
    (
        status,
        axum::Json(serde_json::json!({ "error": e.to_string() })),
    )
        .into_response()
}

/// Only a caller with the internal key; compared in constant time.
async fn authenticated(
    State(state): State<AppState>,
    headers: HeaderMap,
    req: Request,
    next: Next,
) -> Response {
    let expected = state
        .config
        .split
        .as_ref()
        .map(|s| format!("Bearer {}", s.internal_key))
        .unwrap_or_default();
    let given = headers
        .get(header::AUTHORIZATION)
        .map(|v| v.as_bytes())
        .unwrap_or_default();
    let same = crate::web::same_secret(given, expected.as_bytes());
    if !same {
        return (
            StatusCode::UNAUTHORIZED,
            axum::Json(serde_json::json!({ "error": "the internal key is missing or wrong" })),
        )
            .into_response();
    }
    next.run(req).await
}

/// The internal API of `service`: its domain's routes, and a health check of its database alone
/// (the public /healthz also asks the peers this one, so no check goes round in a circle).
pub fn router(state: AppState, service: Service) -> Router {
    let api = match service {
        Service::Accounts => crate::accounts::api::routes(),
        Service::Catalog => crate::catalog::api::routes(),
        Service::Orders => crate::orders::api::routes(),
        Service::All => Router::new(),
    };
    // The same bounds as the public pages (requests at once, time per request), after the key.
    api.route("/internal/healthz", axum::routing::get(database_health))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            crate::bounded,
        ))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            authenticated,
        ))
        .with_state(state)
}

async fn database_health(State(state): State<AppState>) -> Response {
    match sqlx::query("SELECT 1").execute(&state.db.pool).await {
        Ok(_) => axum::Json(serde_json::json!({ "ok": true })).into_response(),
        Err(_) => refuse(AppError::Unavailable("database")),
    }
}

/// Whether every peer this service calls answers its own health check.
pub async fn peers_answer(state: &AppState) -> Result<(), &'static str> {
    let Some(peers) = &state.peers else {
        return Ok(());
    };
    for peer in [&peers.accounts, &peers.catalog, &peers.orders]
        .into_iter()
        .flatten()
    {
        let ok: AppResult<serde_json::Value> =
            peer.call(Method::GET, "/internal/healthz", &()).await;
        if ok.is_err() {
            return Err(peer.service);
        }
    }
    Ok(())
}
