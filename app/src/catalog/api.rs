//! catalog's internal API, for the split: the routes it answers (`routes`) and the client the
//! orders service calls them with (`Remote`, the `Stock` port across services). A reservation is
//! kept per order (`reservations`), so that asking twice takes copies once and giving back twice
//! returns them once.

use std::collections::HashMap;

use axum::Router;
use axum::extract::{Json, Path, State};
use axum::http::Method;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, post};
use serde::{Deserialize, Serialize};
use sqlx::{AnyConnection, Row};

use crate::AppState;
use crate::db::now;
use crate::error::{AppError, AppResult};
use crate::internal::{Peer, refuse};
use crate::ports::{Reserved, Stock};

#[derive(Serialize, Deserialize)]
struct Reservation {
    order: i64,
    book: i64,
    quantity: i64,
    buyer: i64,
}

#[derive(Serialize, Deserialize)]
struct ReservedJson {
    price_cents: i64,
    seller_id: i64,
}

#[derive(Serialize, Deserialize)]
struct Ids {
    ids: Vec<i64>,
}

#[derive(Serialize, Deserialize)]
struct Given {
    given_back: bool,
}

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/internal/reservations", post(reserve))
        .route("/internal/reservations/{order}", delete(give_back))
        .route("/internal/titles", post(titles))
        .route("/internal/sellers", post(sellers))
}

/// The reservation of this order: made now, or the one made before (a retry).
async fn reserve(State(state): State<AppState>, Json(r): Json<Reservation>) -> Response {
    let outcome = async {
        if let Some(found) = held(&state, r.order).await? {
            return found;
        }
        let mut tx = state.db.pool.begin().await?;
        let reserved = super::Local { db: &state.db }
            .reserve(&mut tx, r.order, r.book, r.quantity, r.buyer)
            .await?;
        let recorded = sqlx::query("INSERT INTO reservations (order_id, book_id, quantity, price_cents, seller_id, given_back, created_at) VALUES (?, ?, ?, ?, ?, 0, ?)")
            .bind(r.order)
            .bind(r.book)
            .bind(r.quantity)
            .bind(reserved.price_cents)
            .bind(reserved.seller_id)
            .bind(now())
            .execute(&mut *tx)
            .await;
        match recorded {
            Ok(_) => {
                tx.commit().await?;
                Ok(reserved)
            }
            // The same order's first try got there meanwhile: its copies, not these.
            Err(sqlx::Error::Database(e)) if e.is_unique_violation() => {
                drop(tx);
                held(&state, r.order).await?.unwrap_or(Err(AppError::Conflict(
                    "this order's reservation changed meanwhile".into(),
                )))
            }
            Err(e) => Err(e.into()),
        }
    }
    .await;
    match outcome {
        Ok(r) => Json(ReservedJson {
            price_cents: r.price_cents,
            seller_id: r.seller_id,
        })
        .into_response(),
        Err(e) => refuse(e),
    }
}

/// A reservation already made for the order: its terms, or a refusal once its copies are back.
async fn held(state: &AppState, order: i64) -> AppResult<Option<AppResult<Reserved>>> {
    let row = sqlx::query(
        "SELECT price_cents, seller_id, given_back FROM reservations WHERE order_id = ?",
    )
    .bind(order)
    .fetch_optional(&state.db.pool)
    .await?;
    Ok(row.map(|r| {
        if r.get::<i64, _>(2) != 0 {
            Err(AppError::Conflict(
                "this order's copies were given back: order again".into(),
            ))
        } else {
            Ok(Reserved {
                price_cents: r.get(0),
                seller_id: r.get(1),
            })
        }
    }))
}

/// Gives the order's copies back, once. An order never reserved has nothing to give back, and
/// can no longer be reserved.
async fn give_back(State(state): State<AppState>, Path(order): Path<i64>) -> Response {
    let outcome = async {
        let mut tx = state.db.pool.begin().await?;
        let marked = sqlx::query(
            "UPDATE reservations SET given_back = 1 WHERE order_id = ? AND given_back = 0",
        )
        .bind(order)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if marked == 1 {
            let row = sqlx::query("SELECT book_id, quantity FROM reservations WHERE order_id = ?")
                .bind(order)
                .fetch_one(&mut *tx)
                .await?;
            super::Local { db: &state.db }
                .give_back(&mut tx, order, row.get(0), row.get(1))
                .await?;
        } else {
            // Nothing held (yet): a tombstone, so that a reservation for this order still on its
            // way (orders stopped waiting for it) is refused when it arrives, not kept forever.
            let tombstone = sqlx::query("INSERT INTO reservations (order_id, book_id, quantity, price_cents, seller_id, given_back, created_at) VALUES (?, 0, 0, 0, 0, 1, ?)")
                .bind(order)
                .bind(now())
                .execute(&mut *tx)
                .await;
            match tombstone {
                Ok(_) => {}
                Err(sqlx::Error::Database(e)) if e.is_unique_violation() => {}
                Err(e) => return Err(e.into()),
            }
        }
        tx.commit().await?;
        AppResult::Ok(marked == 1)
    }
    .await;
    match outcome {
        Ok(given_back) => Json(Given { given_back }).into_response(),
        Err(e) => refuse(e),
    }
}

async fn titles(State(state): State<AppState>, Json(ids): Json<Ids>) -> Response {
    match (super::Local { db: &state.db }).titles(&ids.ids).await {
        Ok(t) => Json(t).into_response(),
        Err(e) => refuse(e),
    }
}

async fn sellers(State(state): State<AppState>, Json(ids): Json<Ids>) -> Response {
    match (super::Local { db: &state.db }).sellers(&ids.ids).await {
        Ok(t) => Json(t).into_response(),
        Err(e) => refuse(e),
    }
}

/// The catalog service, as the orders service calls it.
pub struct Remote<'a>(pub &'a Peer);

impl Remote<'_> {
    /// The reservation for `order` (made once, however often asked).
    pub async fn reserve_for(
        &self,
        order: i64,
        book: i64,
        quantity: i64,
        buyer: i64,
    ) -> AppResult<Reserved> {
        let r: ReservedJson = self
            .0
            .call(
                Method::POST,
                "/internal/reservations",
                &Reservation {
                    order,
                    book,
                    quantity,
                    buyer,
                },
            )
            .await?;
        Ok(Reserved {
            price_cents: r.price_cents,
            seller_id: r.seller_id,
        })
    }

    /// Gives `order`'s copies back (once, however often asked).
    pub async fn give_back_for(&self, order: i64) -> AppResult<()> {
        let _: Given = self
            .0
            .call(
                Method::DELETE,
                &format!("/internal/reservations/{order}"),
                &(),
            )
            .await?;
        Ok(())
    }
}

/// Across services the transaction is the caller's own business: the catalog service keeps the
/// reservation per order instead.
impl Stock for Remote<'_> {
    async fn reserve(
        &self,
        _tx: &mut AnyConnection,
        order: i64,
        book: i64,
        quantity: i64,
        buyer: i64,
    ) -> AppResult<Reserved> {
        self.reserve_for(order, book, quantity, buyer).await
    }

    async fn give_back(
        &self,
        _tx: &mut AnyConnection,
        order: i64,
        _book: i64,
        _quantity: i64,
    ) -> AppResult<()> {
        self.give_back_for(order).await
    }

    async fn titles(&self, ids: &[i64]) -> AppResult<HashMap<i64, String>> {
        if ids.is_empty() {
            return Ok(HashMap::new());
        }
        self.0
            .call(Method::POST, "/internal/titles", &Ids { ids: ids.to_vec() })
            .await
    }

    async fn sellers(&self, ids: &[i64]) -> AppResult<HashMap<i64, i64>> {
        if ids.is_empty() {
            return Ok(HashMap::new());
        }
        self.0
            .call(
                Method::POST,
                "/internal/sellers",
                &Ids { ids: ids.to_vec() },
            )
            .await
    }
}

/// The `Stock` port: this process's catalog, or the catalog service.
pub enum Port<'a> {
    Local(super::Local<'a>),
    Remote(Remote<'a>),
}

impl Stock for Port<'_> {
    async fn reserve(
        &self,
        tx: &mut AnyConnection,
        order: i64,
        book: i64,
        quantity: i64,
        buyer: i64,
    ) -> AppResult<Reserved> {
        match self {
            Port::Local(l) => l.reserve(tx, order, book, quantity, buyer).await,
            Port::Remote(r) => r.reserve(tx, order, book, quantity, buyer).await,
        }
    }

    async fn give_back(
        &self,
        tx: &mut AnyConnection,
        order: i64,
        book: i64,
        quantity: i64,
    ) -> AppResult<()> {
        match self {
            Port::Local(l) => l.give_back(tx, order, book, quantity).await,
            Port::Remote(r) => r.give_back(tx, order, book, quantity).await,
        }
    }

    async fn titles(&self, ids: &[i64]) -> AppResult<HashMap<i64, String>> {
        match self {
            Port::Local(l) => l.titles(ids).await,
            Port::Remote(r) => r.titles(ids).await,
        }
    }

    async fn sellers(&self, ids: &[i64]) -> AppResult<HashMap<i64, i64>> {
        match self {
            Port::Local(l) => l.sellers(ids).await,
            Port::Remote(r) => r.sellers(ids).await,
        }
    }
}
