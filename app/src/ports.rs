//! What one domain asks of another, and nothing more. Each domain owns its tables and its SQL;
//! no query of one names another's table. Where a page or an action needs another domain's data,
//! it goes through one of these traits. `AppState::accounts()`, `catalog()` and `orders()` give
//! the in-process implementations: the callee's SQL on the caller's transaction when one is
//! passed, so a purchase is still one transaction with today's guarantees.

use std::collections::HashMap;
use std::future::Future;

use sqlx::AnyConnection;

use crate::error::AppResult;

/// A logged-in user, as every domain sees them.
#[derive(Debug, Clone)]
pub struct User {
    pub id: i64,
    pub name: String,
    pub is_admin: bool,
}

/// accounts → everyone: who is logged in, and users' names for pages that show them.
pub trait Identity {
    /// The user of an unexpired session, by the cookie's token.
    fn session_user(&self, token: &str) -> impl Future<Output = AppResult<Option<User>>> + Send;

    /// Display names by user id; an unknown id is absent.
    fn names(&self, ids: &[i64]) -> impl Future<Output = AppResult<HashMap<i64, String>>> + Send;
}

/// A reservation made: what the order records of the book at that moment.
#[derive(Debug, Clone, Copy)]
pub struct Reserved {
    pub price_cents: i64,
    pub seller_id: i64,
}

/// catalog → orders: copies taken off sale and given back, and what an order shows of its book.
pub trait Stock {
    /// Takes `quantity` copies of an active book that `buyer` does not sell, atomically (never
    /// oversold, never negative), for `order`; refused with the reason to show. In process, on the
    /// caller's transaction; across services, once per order however often it is asked.
    fn reserve(
        &self,
        tx: &mut AnyConnection,
        order: i64,
        book: i64,
        quantity: i64,
        buyer: i64,
    ) -> impl Future<Output = AppResult<Reserved>> + Send;

    /// Puts `order`'s `quantity` copies back on sale: in process on the caller's transaction;
    /// across services once per order, however often it is asked.
    fn give_back(
        &self,
        tx: &mut AnyConnection,
        order: i64,
        book: i64,
        quantity: i64,
    ) -> impl Future<Output = AppResult<()>> + Send;

    /// Titles by book id, whatever the books' status; an unknown id is absent.
    fn titles(&self, ids: &[i64]) -> impl Future<Output = AppResult<HashMap<i64, String>>> + Send;

    /// Sellers by book id; an unknown id is absent.
    fn sellers(&self, ids: &[i64]) -> impl Future<Output = AppResult<HashMap<i64, i64>>> + Send;
}

/// orders → catalog: what a listing's page and its withdrawal need of its orders.
pub trait BookOrders {
    /// Whether any order (of any status) names the book: then it is withdrawn, never deleted.
    /// On the caller's transaction when the answer decides a delete.
    fn has_orders(
        &self,
        tx: &mut AnyConnection,
        book: i64,
    ) -> impl Future<Output = AppResult<bool>> + Send;

    /// Cancels the book's unpaid orders: in process on the caller's transaction (the one
    /// withdrawing it); across services their copies go back too (the withdrawal may still fail).
    fn cancel_unpaid(
        &self,
        tx: &mut AnyConnection,
        book: i64,
    ) -> impl Future<Output = AppResult<u64>> + Send;

    /// The buyer's newest unexpired unpaid order of the book, if any.
    fn pending_order(
        &self,
        buyer: i64,
        book: i64,
    ) -> impl Future<Output = AppResult<Option<i64>>> + Send;
}
