//! The catalog's side of buying (`ports::Stock`), in process: the reservation is one conditional
//! UPDATE on the buyer's transaction.

use std::collections::HashMap;

use sqlx::{AnyConnection, Row};

use crate::catalog::BookStatus;
use crate::db::Db;
use crate::error::{AppError, AppResult};
use crate::ports::{Reserved, Stock};

/// The catalog in this process.
pub struct Local<'a> {
    pub db: &'a Db,
}

impl Stock for Local<'_> {
    async fn reserve(
        &self,
        tx: &mut AnyConnection,
        _order: i64,
        book: i64,
        quantity: i64,
        buyer: i64,
    ) -> AppResult<Reserved> {
        // Succeeds only while enough copies are left, atomically on both engines; as a
        // transaction's first statement it takes the write lock at once (SQLite cannot upgrade a
        // read transaction under contention).
        let reserved = sqlx::query("UPDATE books SET stock = stock - ? WHERE id = ? AND status = ? AND seller_id <> ? AND stock >= ?")
            .bind(quantity)
            .bind(book)
            .bind(BookStatus::Active.as_str())
            .bind(buyer)
            .bind(quantity)
            .execute(&mut *tx)
            .await?;
        let row = sqlx::query("SELECT price_cents, seller_id, status FROM books WHERE id = ?")
            .bind(book)
            .fetch_optional(&mut *tx)
            .await?
            .ok_or(AppError::NotFound)?;
        let (price_cents, seller_id, status): (i64, i64, String) =
            (row.get(0), row.get(1), row.get(2));
        if reserved.rows_affected() == 1 {
            return Ok(Reserved {
                price_cents,
                seller_id,
            });
        }
        Err(if BookStatus::parse(&status) != BookStatus::Active {
            AppError::NotFound
        } else if seller_id == buyer {
            AppError::BadRequest("you cannot buy your own book".into())
        } else {
            AppError::Conflict("not enough stock: fewer copies are left than you asked for".into())
        })
    }

    async fn give_back(
        &self,
        tx: &mut AnyConnection,
        _order: i64,
        book: i64,
        quantity: i64,
    ) -> AppResult<()> {
        sqlx::query("UPDATE books SET stock = stock + ? WHERE id = ?")
            .bind(quantity)
            .bind(book)
            .execute(&mut *tx)
            .await?;
        Ok(())
    }

    async fn titles(&self, ids: &[i64]) -> AppResult<HashMap<i64, String>> {
        let rows = crate::db::by_ids(self.db, "SELECT id, title FROM books", ids).await?;
        Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
    }

    async fn sellers(&self, ids: &[i64]) -> AppResult<HashMap<i64, i64>> {
        let rows = crate::db::by_ids(self.db, "SELECT id, seller_id FROM books", ids).await?;
        Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
    }
}
