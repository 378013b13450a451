//! Buying and cancelling across services, where the order and the book live in two databases.
//! The order's row is written first (status `reserving`), so an order whose reservation was never
//! answered for — the catalog unreachable, this process killed — is found again; catalog keeps
//! one reservation per order, so asking again never takes more copies and giving back twice
//! returns them once. A cancelled order is `cancelling` until its copies are back. The sweep
//! (`finish`) gives back what a failure left held: no copy is lost, none sold twice.

use sqlx::Row;

use super::OrderStatus::{self, Cancelled, Cancelling, PendingPayment, Reserving};
use super::{copies_held, too_many_held};
use crate::AppState;
use crate::catalog::api::Remote;
use crate::db::{insert_id, now};
use crate::error::{AppError, AppResult};

/// How long an order may stay `reserving` before the sweep gives up on it: well beyond a
/// reservation's tries (3 × 2 s, `internal::Peer::call`). Were the buying request still on, its
/// last step finds the order no longer `reserving` and gives the copies back itself.
const RESERVING_SECS: i64 = 15;

/// Moves an order from one status to another, if it is still in the first; whether it was.
async fn set(state: &AppState, id: i64, from: OrderStatus, to: OrderStatus) -> AppResult<bool> {
    Ok(
        sqlx::query("UPDATE orders SET status = ? WHERE id = ? AND status = ?")
            .bind(to.as_str())
            .bind(id)
            .bind(from.as_str())
            .execute(&state.db.pool)
            .await?
            .rows_affected()
            == 1,
    )
}

/// The catalog service. No database connection is held while it is asked: a slow catalog must
/// not take the pool from the requests that need none of it.
fn catalog(state: &AppState) -> AppResult<Remote<'_>> {
    state
        .peer(|p| &p.catalog)
        .map(Remote)
        .ok_or_else(|| AppError::Internal("the orders service has no catalog to call".into()))
}

/// Gives the order's copies back, then marks it cancelled. Left `cancelling` when catalog does
/// not answer (the sweep tries again).
async fn give_back(state: &AppState, id: i64, from: OrderStatus) -> AppResult<()> {
    catalog(state)?.give_back_for(id).await?;
    set(state, id, from, Cancelled).await?;
    Ok(())
}

/// Removes an order that never was (refused before anything was reserved, or over the cap with
/// its copies back), if it is still in `status`: as a rolled-back transaction in one process.
async fn forget(state: &AppState, id: i64, status: OrderStatus) -> AppResult<()> {
    sqlx::query("DELETE FROM orders WHERE id = ? AND status = ?")
        .bind(id)
        .bind(status.as_str())
        .execute(&state.db.pool)
        .await?;
    Ok(())
}

/// An order of `quantity` copies of `book` for `buyer`: its id once the copies are reserved.
pub async fn buy(state: &AppState, buyer: i64, book: i64, quantity: i64) -> AppResult<i64> {
    let t = now();
    let mut conn = state.db.pool.acquire().await?;
    let id = insert_id(
        &mut conn,
        state.db.engine,
        "INSERT INTO orders (buyer_id, book_id, quantity, unit_price_cents, total_cents, status, created_at, expires_at) VALUES (?, ?, ?, 0, 0, ?, ?, ?)",
        |q| q.bind(buyer).bind(book).bind(quantity).bind(Reserving.as_str()).bind(t).bind(t + state.config.order_timeout_secs),
    )
    .await?;
    drop(conn);
    // The reservation first (as in one process: a buyer asking for more than is left hears
    // that, whatever else), then the cap.
    let reserved = match catalog(state)?.reserve_for(id, book, quantity, buyer).await {
        Ok(r) => r,
        // Refused: nothing was taken, and the order never was (as in one process, where its
        // transaction rolls back).
        Err(e @ (AppError::NotFound | AppError::BadRequest(_) | AppError::Conflict(_))) => {
            forget(state, id, Reserving).await?;
            return Err(e);
        }
        // No answer: copies may be held for it; give them back (or the sweep will).
        Err(e) => {
            if set(state, id, Reserving, Cancelling).await? {
                let _ = give_back(state, id, Cancelling).await;
            }
            return Err(e);
        }
    };
    // The cap counts this order, committed before the count: of two orders at once, the later
    // count sees both, so together they cannot pass it.
    let mut conn = state.db.pool.acquire().await?;
    let held = copies_held(&mut conn, buyer, book, &[Reserving, PendingPayment]).await?;
    drop(conn);
    if held > state.config.max_pending_copies {
        if set(state, id, Reserving, Cancelling).await? {
            give_back(state, id, Cancelling).await?;
            forget(state, id, Cancelled).await?;
        }
        return Err(too_many_held(state));
    }
    let done = sqlx::query("UPDATE orders SET status = ?, unit_price_cents = ?, total_cents = ?, seller_id = ? WHERE id = ? AND status = ?")
        .bind(PendingPayment.as_str())
        .bind(reserved.price_cents)
        .bind(reserved.price_cents * quantity)
        .bind(reserved.seller_id)
        .bind(id)
        .bind(Reserving.as_str())
        .execute(&state.db.pool)
        .await?
        .rows_affected();
    if done != 1 {
        // The sweep gave up on it meanwhile: its copies go back.
        let _ = give_back(state, id, Cancelling).await;
        return Err(AppError::Unavailable("catalog"));
    }
    Ok(id)
}

/// Cancels an unpaid order (the buyer's, when given) and gives its copies back.
pub async fn cancel(state: &AppState, id: i64, buyer: Option<i64>) -> AppResult<bool> {
    let mut q = String::from("UPDATE orders SET status = ? WHERE id = ? AND status = ?");
    if buyer.is_some() {
        q.push_str(" AND buyer_id = ?");
    }
    let mut update = sqlx::query(sqlx::AssertSqlSafe(q))
        .bind(Cancelling.as_str())
        .bind(id)
        .bind(PendingPayment.as_str());
    if let Some(b) = buyer {
        update = update.bind(b);
    }
    if update.execute(&state.db.pool).await?.rows_affected() != 1 {
        return Ok(false);
    }
    if let Err(e) = give_back(state, id, Cancelling).await {
        tracing::warn!(order = id, error = %e, "copies not given back yet: the sweep tries again");
    }
    Ok(true)
}

/// The sweep's part in the split: orders left `reserving` too long, and `cancelling` ones, give
/// their copies back and end cancelled. Returns how many ended.
pub async fn finish(state: &AppState) -> AppResult<usize> {
    let rows = sqlx::query(
        "SELECT id, status FROM orders WHERE (status = ? AND created_at <= ?) OR status = ? ORDER BY id LIMIT 500",
    )
    .bind(Reserving.as_str())
    .bind(now() - RESERVING_SECS)
    .bind(Cancelling.as_str())
    .fetch_all(&state.db.pool)
    .await?;
    let mut ended = 0;
    for row in rows {
        let id: i64 = row.get(0);
        let status: String = row.get(1);
        if status == Reserving.as_str() && !set(state, id, Reserving, Cancelling).await? {
            continue;
        }
        if give_back(state, id, Cancelling).await.is_ok() {
            ended += 1;
        }
    }
    Ok(ended)
}
