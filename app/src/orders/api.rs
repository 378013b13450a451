//! orders' internal API, for the split: what a listing's page and its withdrawal ask of its
//! orders (`routes`), and the client the catalog service calls them with (`Remote`).

use axum::Json;
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::Method;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::{Deserialize, Serialize};
use sqlx::AnyConnection;

use super::OrderStatus::{Cancelling, PendingPayment};
use crate::AppState;
use crate::error::AppResult;
use crate::internal::{Peer, refuse};
use crate::ports::BookOrders;

#[derive(Serialize, Deserialize)]
struct Has {
    has_orders: bool,
}

#[derive(Serialize, Deserialize)]
struct Count {
    cancelled: u64,
}

#[derive(Serialize, Deserialize)]
struct Pending {
    order: Option<i64>,
}

#[derive(Deserialize)]
struct PendingQuery {
    buyer: i64,
    book: i64,
}

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/internal/books/{book}/has-orders", get(has_orders))
        .route("/internal/books/{book}/cancel-unpaid", post(cancel_unpaid))
        .route("/internal/pending", get(pending))
}

async fn has_orders(State(state): State<AppState>, Path(book): Path<i64>) -> Response {
    let local = super::Local { db: &state.db };
    let answer = async {
        let mut conn = state.db.pool.acquire().await?;
        local.has_orders(&mut conn, book).await
    }
    .await;
    match answer {
        Ok(has_orders) => Json(Has { has_orders }).into_response(),
        Err(e) => refuse(e),
    }
}

/// Across services the copies of the cancelled orders go back too (`cancelling`, finished by the
/// sweep): the withdrawal that asked may still fail, and then the book stays on sale whole.
async fn cancel_unpaid(State(state): State<AppState>, Path(book): Path<i64>) -> Response {
    let done = sqlx::query("UPDATE orders SET status = ? WHERE book_id = ? AND status = ?")
        .bind(Cancelling.as_str())
        .bind(book)
        .bind(PendingPayment.as_str())
        .execute(&state.db.pool)
        .await;
    match done {
        Ok(d) => Json(Count {
            cancelled: d.rows_affected(),
        })
        .into_response(),
        Err(e) => refuse(e.into()),
    }
}

async fn pending(State(state): State<AppState>, Query(q): Query<PendingQuery>) -> Response {
    match (super::Local { db: &state.db })
        .pending_order(q.buyer, q.book)
        .await
    {
        Ok(order) => Json(Pending { order }).into_response(),
        Err(e) => refuse(e),
    }
}

/// The orders service, as the catalog service calls it.
pub struct Remote<'a>(pub &'a Peer);

impl Remote<'_> {
    pub async fn has_orders_of(&self, book: i64) -> AppResult<bool> {
        let h: Has = self
            .0
            .call(
                Method::GET,
                &format!("/internal/books/{book}/has-orders"),
                &(),
            )
            .await?;
        Ok(h.has_orders)
    }
}

impl BookOrders for Remote<'_> {
    async fn has_orders(&self, _tx: &mut AnyConnection, book: i64) -> AppResult<bool> {
        self.has_orders_of(book).await
    }

    async fn cancel_unpaid(&self, _tx: &mut AnyConnection, book: i64) -> AppResult<u64> {
        let c: Count = self
            .0
            .call(
                Method::POST,
                &format!("/internal/books/{book}/cancel-unpaid"),
                &(),
            )
            .await?;
        Ok(c.cancelled)
    }

    async fn pending_order(&self, buyer: i64, book: i64) -> AppResult<Option<i64>> {
        let p: Pending = self
            .0
            .call(
                Method::GET,
                &format!("/internal/pending?buyer={buyer}&book={book}"),
                &(),
            )
            .await?;
        Ok(p.order)
    }
}

/// The `BookOrders` port: this process's orders, or the orders service.
pub enum Port<'a> {
    Local(super::Local<'a>),
    Remote(Remote<'a>),
}

impl Port<'_> {
    /// `has_orders` outside any transaction: a connection is taken only in process (none is
    /// held while the orders service answers).
    pub async fn has_orders_now(&self, book: i64) -> AppResult<bool> {
        match self {
            Port::Local(l) => {
                let mut conn = l.db.pool.acquire().await?;
                l.has_orders(&mut conn, book).await
            }
            Port::Remote(r) => r.has_orders_of(book).await,
        }
    }
}

impl BookOrders for Port<'_> {
    async fn has_orders(&self, tx: &mut AnyConnection, book: i64) -> AppResult<bool> {
        match self {
            Port::Local(l) => l.has_orders(tx, book).await,
            Port::Remote(r) => r.has_orders(tx, book).await,
        }
    }

    async fn cancel_unpaid(&self, tx: &mut AnyConnection, book: i64) -> AppResult<u64> {
        match self {
            Port::Local(l) => l.cancel_unpaid(tx, book).await,
            Port::Remote(r) => r.cancel_unpaid(tx, book).await,
        }
    }

    async fn pending_order(&self, buyer: i64, book: i64) -> AppResult<Option<i64>> {
        match self {
            Port::Local(l) => l.pending_order(buyer, book).await,
            Port::Remote(r) => r.pending_order(buyer, book).await,
        }
    }
}
