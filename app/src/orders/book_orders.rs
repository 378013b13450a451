//! The orders' side of a listing (`ports::BookOrders`), in process.

use sqlx::{AnyConnection, Row};

use super::OrderStatus::{Cancelled, PendingPayment};
use crate::db::{Db, now};
use crate::error::AppResult;
use crate::ports::BookOrders;

/// The orders in this process.
pub struct Local<'a> {
    pub db: &'a Db,
}

impl BookOrders for Local<'_> {
    async fn has_orders(&self, tx: &mut AnyConnection, book: i64) -> AppResult<bool> {
        Ok(
            sqlx::query("SELECT 1 FROM orders WHERE book_id = ? LIMIT 1")
                .bind(book)
                .fetch_optional(&mut *tx)
                .await?
                .is_some(),
        )
    }

    async fn cancel_unpaid(&self, tx: &mut AnyConnection, book: i64) -> AppResult<u64> {
        Ok(
            sqlx::query("UPDATE orders SET status = ? WHERE book_id = ? AND status = ?")
                .bind(Cancelled.as_str())
                .bind(book)
                .bind(PendingPayment.as_str())
                .execute(&mut *tx)
                .await?
                .rows_affected(),
        )
    }

    async fn pending_order(&self, buyer: i64, book: i64) -> AppResult<Option<i64>> {
        Ok(sqlx::query(
            "SELECT id FROM orders WHERE buyer_id = ? AND book_id = ? AND status = ? AND expires_at > ? ORDER BY id DESC LIMIT 1",
        )
        .bind(buyer)
        .bind(book)
        .bind(PendingPayment.as_str())
        .bind(now())
        .fetch_optional(&self.db.pool)
        .await?
        .map(|r| r.get::<i64, _>(0)))
    }
}
