//! Buying. An order reserves stock with one conditional UPDATE (never oversold, never negative,
//! whatever the engine or the number of replicas), prices come from the database only, payment is
//! exactly the books' total plus the chosen delivery, and an unpaid order gives its copies back when
//! cancelled or after the timeout. Only the buyer sees, pays or cancels an order; only the seller
//! ships it. A buyer holds at most `max_pending_copies` unpaid copies of a book, and an order of a
//! withdrawn book cannot be paid. Pages never write: the sweeper releases expired orders, and until
//! it does a page shows them as expired and refuses to take payment.
//!
//! Orders own `orders` and `delivery_providers`. Copies are reserved and given back through
//! catalog's `Stock` port, on the order's own transaction; what an order page shows of its book
//! and of the people in it comes from catalog's titles and accounts' names, not from joins.

pub mod api;
mod book_orders;
mod saga;

pub use book_orders::Local;

use std::collections::HashMap;

use askama::Template;
use askama_web::WebTemplate;
use axum::extract::{Form, Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use sqlx::Row;
use sqlx::any::AnyRow;

use crate::AppState;
use crate::catalog::parse_id;
use crate::db::{Migration, insert_id, now};
use crate::error::{AppError, AppResult};
use crate::form::{ConfirmPage, FieldErrors};
use crate::money;
use crate::ports::{Identity, Stock};
use crate::web::{Ctx, Flash, PageCtx, field};

/// The orders' tables: `orders` and `delivery_providers`.
pub const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        sqlite: include_str!("../../migrations/orders/1-sqlite.sql"),
        mysql: include_str!("../../migrations/orders/1-mysql.sql"),
    },
    Migration {
        version: 4,
        sqlite: include_str!("../../migrations/orders/4-sqlite.sql"),
        mysql: include_str!("../../migrations/orders/4-mysql.sql"),
    },
    Migration {
        version: 5,
        sqlite: include_str!("../../migrations/orders/5-sqlite.sql"),
        mysql: include_str!("../../migrations/orders/5-mysql.sql"),
    },
];

/// Where an order is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OrderStatus {
    /// Split only: recorded, its copies being reserved by the catalog service.
    Reserving,
    /// Copies reserved until `expires_at`; then the sweep cancels it.
    PendingPayment,
    Paid,
    Shipped,
    /// Split only: cancelled, its copies not yet back in the catalog (the sweep finishes it).
    Cancelling,
    Cancelled,
}

impl OrderStatus {
    /// As stored in `orders.status` (and the badge's class).
    pub const fn as_str(self) -> &'static str {
        match self {
            OrderStatus::Reserving => "reserving",
            OrderStatus::PendingPayment => "pending_payment",
            OrderStatus::Paid => "paid",
            OrderStatus::Shipped => "shipped",
            OrderStatus::Cancelling => "cancelling",
            OrderStatus::Cancelled => "cancelled",
        }
    }

    pub fn parse(s: &str) -> Option<OrderStatus> {
        [
            OrderStatus::Reserving,
            OrderStatus::PendingPayment,
            OrderStatus::Paid,
            OrderStatus::Shipped,
            OrderStatus::Cancelling,
            OrderStatus::Cancelled,
        ]
        .into_iter()
        .find(|st| st.as_str() == s)
    }

    /// As a page says it.
    fn label(self, expired: bool) -> &'static str {
        match self {
            OrderStatus::Reserving => "being reserved",
            OrderStatus::PendingPayment if expired => "expired",
            OrderStatus::PendingPayment => "pending payment",
            OrderStatus::Paid => "paid",
            OrderStatus::Shipped => "shipped",
            OrderStatus::Cancelling | OrderStatus::Cancelled => "cancelled",
        }
    }
}

impl std::fmt::Display for OrderStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

use OrderStatus::{Cancelled, Cancelling, Paid, PendingPayment, Shipped};

const MAX_QUANTITY: i64 = 100;
const METHODS: &[&str] = &["card", "paypal", "bank_transfer"];

/// A moment as pages show it: how long ago or ahead, and the UTC time (which the browser's script
/// turns into the visitor's own; without it the UTC time stays).
pub struct Stamp {
    pub iso: String,
    pub utc: String,
    pub relative: String,
}

impl Stamp {
    pub fn at(ts: i64) -> Stamp {
        let at = utc(ts);
        Stamp {
            iso: at.replace(' ', "T") + ":00Z",
            utc: at + " UTC",
            relative: relative(ts - now()),
        }
    }
}

/// "in 14 minutes", "3 hours ago", "just now".
fn relative(delta: i64) -> String {
    let secs = delta.abs();
    let (n, unit) = match secs {
        0..60 => return "just now".into(),
        60..3600 => (secs / 60, "minute"),
        3600..86_400 => (secs / 3600, "hour"),
        _ => (secs / 86_400, "day"),
    };
    let plural = if n == 1 { "" } else { "s" };
    if delta > 0 {
        format!("in {n} {unit}{plural}")
    } else {
        format!("{n} {unit}{plural} ago")
    }
}

/// Where the buyer wants the books.
#[derive(Default, Clone)]
pub struct Address {
    pub name: String,
    pub street: String,
    pub city: String,
    pub postcode: String,
    pub country: String,
}

impl Address {
    fn from_form(form: &HashMap<String, String>) -> Address {
        Address {
            name: field(form, "ship_name").to_string(),
            street: field(form, "ship_street").to_string(),
            city: field(form, "ship_city").to_string(),
            postcode: field(form, "ship_postcode").to_string(),
            country: field(form, "ship_country").to_string(),
        }
    }

    /// Binds the five fields, in the order the orders table's `ship_*` columns are written.
    fn bind<'q>(
        &'q self,
        q: sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments>,
    ) -> sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments> {
        q.bind(&self.name)
            .bind(&self.street)
            .bind(&self.city)
            .bind(&self.postcode)
            .bind(&self.country)
    }

    fn check(&self, errors: &mut FieldErrors) {
        for (id, value, what, max) in [
            ("ship_name", &self.name, "the name to ship to", 100),
            ("ship_street", &self.street, "the street and number", 200),
            ("ship_city", &self.city, "the city", 100),
            ("ship_postcode", &self.postcode, "the postal code", 20),
            ("ship_country", &self.country, "the country", 60),
        ] {
            if value.is_empty() || value.chars().count() > max {
                errors.add(id, format!("Enter {what} (up to {max} characters)."));
            }
        }
    }
}

/// The buyer, or the seller of the order's book: the two who may see it.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Buyer,
    Seller,
}

pub struct OrderView {
    pub id: i64,
    pub book_id: i64,
    pub title: String,
    pub quantity: i64,
    pub unit_price: String,
    pub total: String,
    pub total_cents: i64,
    pub delivery: Option<String>,
    pub paid: Option<String>,
    /// What the order comes to: paid, or the books and the delivery chosen so far.
    pub grand_total: String,
    pub payment_method: String,
    pub status: OrderStatus,
    pub status_label: &'static str,
    pub expires: Stamp,
    /// The buyer's name (shown to the seller).
    pub counterpart: String,
    pub seller: String,
    buyer_id: i64,
    seller_id: Option<i64>,
    pub placed: Stamp,
    pub paid_at: Option<Stamp>,
    pub shipped_at: Option<Stamp>,
    pub carrier: Option<String>,
    pub address: Option<Address>,
}

/// "2026-11-23 20:15" from Unix seconds (UTC).
fn utc(ts: i64) -> String {
    let days = ts.div_euclid(86_400);
    let secs = ts.rem_euclid(86_400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y}-{m:02}-{d:02} {:02}:{:02}",
        secs / 3600,
        secs % 3600 / 60
    )
}

const ORDER_COLUMNS: &str = "o.id, o.book_id, o.quantity, o.unit_price_cents, o.total_cents, o.delivery_cents, o.paid_cents, \
     o.payment_method, o.status, o.expires_at, o.buyer_id, o.seller_id, o.created_at, o.paid_at, o.shipped_at, dp.name, \
     o.ship_name, o.ship_street, o.ship_city, o.ship_postcode, o.ship_country";

/// An order and its carrier (both the orders' own tables).
const ORDER_FROM: &str =
    "FROM orders o LEFT JOIN delivery_providers dp ON dp.id = o.delivery_provider_id";

impl OrderView {
    /// The order as its row has it; the title and the names are filled in by `views`.
    fn from_row(r: &AnyRow) -> OrderView {
        let stored: String = r.get(8);
        // Only the four statuses are ever written; anything else is shown as cancelled.
        let status = OrderStatus::parse(&stored).unwrap_or(Cancelled);
        let expires_at: i64 = r.get(9);
        let total_cents: i64 = r.get(4);
        let delivery_cents: Option<i64> = r.get(5);
        let paid_cents: Option<i64> = r.get(6);
        let text = |i: usize| r.get::<Option<String>, _>(i).unwrap_or_default();
        let address = Address {
            name: text(16),
            street: text(17),
            city: text(18),
            postcode: text(19),
            country: text(20),
        };
        let expired = expires_at <= now();
        OrderView {
            id: r.get(0),
            book_id: r.get(1),
            title: String::new(),
            quantity: r.get(2),
            unit_price: money::format(r.get(3)),
            total: money::format(total_cents),
            total_cents,
            delivery: delivery_cents.map(money::format),
            paid: paid_cents.map(money::format),
            grand_total: money::format(
                paid_cents.unwrap_or(total_cents + delivery_cents.unwrap_or(0)),
            ),
            payment_method: r
                .get::<Option<String>, _>(7)
                .unwrap_or_default()
                .replace('_', " "),
            status_label: status.label(expired),
            // An expired order is shown and treated as cancelled before the sweeper gets to it.
            status: match status {
                PendingPayment if expired => Cancelled,
                Cancelling => Cancelled,
                other => other,
            },
            expires: Stamp::at(expires_at),
            counterpart: String::new(),
            seller: String::new(),
            buyer_id: r.get(10),
            seller_id: r.get(11),
            placed: Stamp::at(r.get(12)),
            paid_at: r.get::<Option<i64>, _>(13).map(Stamp::at),
            shipped_at: r.get::<Option<i64>, _>(14).map(Stamp::at),
            carrier: r.get(15),
            address: (!address.name.is_empty()).then_some(address),
        }
    }
}

/// The orders of these rows with their books' titles (catalog) and their buyers' and sellers'
/// names (accounts): one lookup each for the whole list.
async fn views(state: &AppState, rows: &[AnyRow]) -> AppResult<Vec<OrderView>> {
    let mut orders: Vec<OrderView> = rows.iter().map(OrderView::from_row).collect();
    let books: Vec<i64> = orders.iter().map(|o| o.book_id).collect();
    let people: Vec<i64> = orders
        .iter()
        .flat_map(|o| [Some(o.buyer_id), o.seller_id])
        .flatten()
        .collect();
    let (catalog, accounts) = (state.catalog(), state.accounts());
    let (titles, names) = tokio::try_join!(catalog.titles(&books), accounts.names(&people))?;
    for o in &mut orders {
        o.title = titles.get(&o.book_id).cloned().unwrap_or_default();
        o.counterpart = names.get(&o.buyer_id).cloned().unwrap_or_default();
        o.seller = o
            .seller_id
            .and_then(|s| names.get(&s).cloned())
            .unwrap_or_default();
    }
    Ok(orders)
}

pub struct ProviderView {
    pub id: i64,
    pub name: String,
    pub area: String,
    pub cost: String,
    pub grand_total: String,
}

#[derive(Template, WebTemplate)]
#[template(path = "order.html")]
struct OrderPage {
    ctx: PageCtx,
    order: OrderView,
    role: Role,
    providers: Vec<ProviderView>,
    errors: FieldErrors,
    /// The checkout form as sent (kept when it comes back), or the order's address.
    ship: Address,
    provider: String,
    method: String,
}

#[derive(Template, WebTemplate)]
#[template(path = "orders.html")]
struct OrdersPage {
    ctx: PageCtx,
    heading: &'static str,
    orders: Vec<OrderView>,
    sales: bool,
}

pub async fn buy(
    State(state): State<AppState>,
    ctx: Ctx,
    Path(id): Path<String>,
    Form(form): Form<HashMap<String, String>>,
) -> AppResult<Response> {
    let book_id = parse_id(&id)?;
    ctx.check_csrf(field(&form, "csrf"))?;
    let user = ctx.user()?.clone();
    let quantity = field(&form, "quantity")
        .parse::<i64>()
        .ok()
        .filter(|q| (1..=MAX_QUANTITY).contains(q))
        .ok_or_else(|| {
            AppError::BadRequest(format!(
                "the quantity must be a whole number from 1 to {MAX_QUANTITY}"
            ))
        })?;
    if state.peers.is_some() {
        let order_id = saga::buy(&state, user.id, book_id, quantity).await?;
        return Ok(ctx.redirect(&format!("/orders/{order_id}"), Flash::Ordered));
    }
    // In process, one transaction: the order's row first (its id names the reservation), then
    // the reservation, whose conditional UPDATE locks the book's row (see `catalog::stock`), so
    // the cap below sees every order of this buyer for this book, and the terms come last.
    let mut tx = state.db.pool.begin().await?;
    let t = now();
    let order_id = insert_id(
        &mut tx,
        state.db.engine,
        "INSERT INTO orders (buyer_id, book_id, quantity, unit_price_cents, total_cents, status, created_at, expires_at) VALUES (?, ?, ?, 0, 0, ?, ?, ?)",
        |q| q.bind(user.id).bind(book_id).bind(quantity).bind(PendingPayment.as_str()).bind(t).bind(t + state.config.order_timeout_secs),
    )
    .await?;
    let reserved = state
        .catalog()
        .reserve(&mut tx, order_id, book_id, quantity, user.id)
        .await?;
    if copies_held(&mut tx, user.id, book_id, &[PendingPayment]).await?
        > state.config.max_pending_copies
    {
        return Err(too_many_held(&state));
    }
    sqlx::query(
        "UPDATE orders SET unit_price_cents = ?, total_cents = ?, seller_id = ? WHERE id = ?",
    )
    .bind(reserved.price_cents)
    .bind(reserved.price_cents * quantity)
    .bind(reserved.seller_id)
    .bind(order_id)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(ctx.redirect(&format!("/orders/{order_id}"), Flash::Ordered))
}

/// The copies this buyer holds of this book in unexpired orders of these statuses.
async fn copies_held(
    conn: &mut sqlx::AnyConnection,
    buyer: i64,
    book: i64,
    statuses: &[OrderStatus],
) -> AppResult<i64> {
    // (MySQL's SUM is a DECIMAL, which the generic driver cannot read: hence the CAST.)
    let sql = format!(
        "SELECT CAST(COALESCE(SUM(quantity), 0) AS SIGNED INTEGER) FROM orders WHERE buyer_id = ? AND book_id = ? AND expires_at > ? AND status IN ({})",
        vec!["?"; statuses.len()].join(", ")
    );
    let mut q = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(buyer)
        .bind(book)
        .bind(now());
    for s in statuses {
        q = q.bind(s.as_str());
    }
    Ok(q.fetch_one(&mut *conn).await?.try_get::<i64, _>(0)?)
}

fn too_many_held(state: &AppState) -> AppError {
    AppError::Conflict(format!(
        "you can hold at most {} unpaid copies of a book: pay or cancel your pending orders first",
        state.config.max_pending_copies
    ))
}

/// The order, if the logged-in user bought it. Someone else's order is "not found", not "forbidden":
/// its existence is not their business.
async fn own_order(state: &AppState, ctx: &Ctx, id: i64) -> AppResult<OrderView> {
    match visible_order(state, ctx, id).await? {
        (order, Role::Buyer) => Ok(order),
        (_, Role::Seller) => Err(AppError::NotFound),
    }
}

/// The order, if the logged-in user bought it or sells its book; which of the two they are.
async fn visible_order(state: &AppState, ctx: &Ctx, id: i64) -> AppResult<(OrderView, Role)> {
    let user = ctx.user()?;
    let row = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {ORDER_COLUMNS} {ORDER_FROM} WHERE o.id = ? AND (o.buyer_id = ? OR o.seller_id = ?)"
    )))
    .bind(id)
    .bind(user.id)
    .bind(user.id)
    .fetch_optional(&state.db.pool)
    .await?
    .ok_or(AppError::NotFound)?;
    let order = views(state, std::slice::from_ref(&row))
        .await?
        .pop()
        .ok_or(AppError::NotFound)?;
    let role = if order.buyer_id == user.id {
        Role::Buyer
    } else {
        Role::Seller
    };
    Ok((order, role))
}

async fn providers(state: &AppState, total_cents: i64) -> AppResult<Vec<ProviderView>> {
    let rows = sqlx::query(
        "SELECT id, name, area, cost_cents FROM delivery_providers ORDER BY cost_cents DESC",
    )
    .fetch_all(&state.db.pool)
    .await?;
    Ok(rows
        .iter()
        .map(|r| {
            let cost: i64 = r.get(3);
            ProviderView {
                id: r.get(0),
                name: r.get(1),
                area: r.get(2),
                cost: money::format(cost),
                grand_total: money::format(total_cents + cost),
            }
        })
        .collect())
}

/// The order's page, for its buyer (checkout, address, tracking) or its seller (where to ship,
/// the totals, the ship button).
async fn order_page(
    state: &AppState,
    ctx: &Ctx,
    order: OrderView,
    role: Role,
    errors: FieldErrors,
    form: Option<&HashMap<String, String>>,
) -> AppResult<Response> {
    let providers = if role == Role::Buyer && order.status == PendingPayment {
        providers(state, order.total_cents).await?
    } else {
        vec![]
    };
    let ship = match form {
        Some(f) => Address::from_form(f),
        None => order.address.clone().unwrap_or_default(),
    };
    let status = if errors.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::BAD_REQUEST
    };
    Ok((
        status,
        OrderPage {
            ctx: ctx.into(),
            order,
            role,
            providers,
            errors,
            ship,
            provider: form
                .map(|f| field(f, "provider").to_string())
                .unwrap_or_default(),
            method: form
                .map(|f| field(f, "method").to_string())
                .unwrap_or_default(),
        },
    )
        .into_response())
}

pub async fn show(
    State(state): State<AppState>,
    ctx: Ctx,
    Path(id): Path<String>,
) -> AppResult<Response> {
    let (order, role) = visible_order(&state, &ctx, parse_id(&id)?).await?;
    order_page(&state, &ctx, order, role, FieldErrors::default(), None).await
}

pub async fn pay(
    State(state): State<AppState>,
    ctx: Ctx,
    Path(id): Path<String>,
    Form(form): Form<HashMap<String, String>>,
) -> AppResult<Response> {
    let id = parse_id(&id)?;
    ctx.check_csrf(field(&form, "csrf"))?;
    let order = own_order(&state, &ctx, id).await?;
    if order.status != PendingPayment {
        return Err(AppError::Conflict(format!(
            "this order is {}; only an order pending payment can be paid",
            order.status_label
        )));
    }
    // Every mistake of the checkout form is shown beside its field, the form kept as sent.
    let mut errors = FieldErrors::default();
    let address = Address::from_form(&form);
    address.check(&mut errors);
    let method = field(&form, "method");
    if !METHODS.contains(&method) {
        errors.add(
            "method",
            "Choose a payment method: card, PayPal or bank transfer.",
        );
    }
    let provider = match field(&form, "provider").parse::<i64>() {
        Ok(p) => sqlx::query("SELECT cost_cents FROM delivery_providers WHERE id = ?")
            .bind(p)
            .fetch_optional(&state.db.pool)
            .await?
            .map(|r| (p, r.get::<i64, _>(0))),
        Err(_) => None,
    };
    if provider.is_none() {
        errors.add("provider", "Choose a delivery provider from the list.");
    }
    let Some((provider_id, delivery)) = provider.filter(|_| errors.is_empty()) else {
        return order_page(&state, &ctx, order, Role::Buyer, errors, Some(&form)).await;
    };
    let amount = order.total_cents + delivery;
    // A form may say what the buyer expects to pay; it must be exactly what the server computes.
    if let Some(claimed) = form.get("amount_cents")
        && claimed.trim().parse::<i64>().ok() != Some(amount)
    {
        return Err(AppError::BadRequest(format!(
            "the amount does not match the order: it is {}",
            money::format(amount)
        )));
    }
    // Only while it is pending and unexpired. Its book is still on sale: withdrawing a book
    // cancels its unpaid orders in the same transaction (`BookOrders::cancel_unpaid`).
    let t = now();
    let paid = sqlx::query(
        "UPDATE orders SET status = ?, payment_method = ?, delivery_provider_id = ?, delivery_cents = ?, paid_cents = ?, paid_at = ?, \
         ship_name = ?, ship_street = ?, ship_city = ?, ship_postcode = ?, ship_country = ? \
         WHERE id = ? AND buyer_id = ? AND status = ? AND expires_at > ?",
    )
    .bind(Paid.as_str())
    .bind(method)
    .bind(provider_id)
    .bind(delivery)
    .bind(amount)
    .bind(t);
    let paid = address
        .bind(paid)
        .bind(id)
        .bind(ctx.user()?.id)
        .bind(PendingPayment.as_str())
        .bind(t)
        .execute(&state.db.pool)
        .await?;
    if paid.rows_affected() != 1 {
        return Err(AppError::Conflict(
            "this order can no longer be paid (it expired, was cancelled, or the book was withdrawn)"
                .into(),
        ));
    }
    Ok(ctx.redirect(&format!("/orders/{id}"), Flash::Paid(amount)))
}

/// The buyer changes where an order ships, until it is shipped.
pub async fn address(
    State(state): State<AppState>,
    ctx: Ctx,
    Path(id): Path<String>,
    Form(form): Form<HashMap<String, String>>,
) -> AppResult<Response> {
    let id = parse_id(&id)?;
    ctx.check_csrf(field(&form, "csrf"))?;
    let order = own_order(&state, &ctx, id).await?;
    let mut errors = FieldErrors::default();
    let address = Address::from_form(&form);
    address.check(&mut errors);
    if !errors.is_empty() {
        return order_page(&state, &ctx, order, Role::Buyer, errors, Some(&form)).await;
    }
    let saved = sqlx::query(
        "UPDATE orders SET ship_name = ?, ship_street = ?, ship_city = ?, ship_postcode = ?, ship_country = ? \
         WHERE id = ? AND buyer_id = ? AND status IN (?, ?)",
    );
    let saved = address
        .bind(saved)
        .bind(id)
        .bind(ctx.user()?.id)
        .bind(PendingPayment.as_str())
        .bind(Paid.as_str())
        .execute(&state.db.pool)
        .await?;
    if saved.rows_affected() != 1 {
        return Err(AppError::Conflict(format!(
            "this order is {}: its address can no longer change",
            order.status_label
        )));
    }
    Ok(ctx.redirect(&format!("/orders/{id}"), Flash::AddressSaved))
}

/// Cancels a pending order and gives its copies back, once (the status check makes it idempotent).
async fn cancel_pending(state: &AppState, id: i64, buyer: Option<i64>) -> AppResult<bool> {
    if state.peers.is_some() {
        return saga::cancel(state, id, buyer).await;
    }
    let mut tx = state.db.pool.begin().await?;
    // Write first (see `buy`); the status check makes a second cancel a no-op.
    let cancel = |sql| {
        sqlx::query(sql)
            .bind(Cancelled.as_str())
            .bind(id)
            .bind(PendingPayment.as_str())
    };
    let cancelled = match buyer {
        Some(b) => {
            cancel("UPDATE orders SET status = ? WHERE id = ? AND status = ? AND buyer_id = ?")
                .bind(b)
                .execute(&mut *tx)
                .await?
        }
        None => {
            cancel("UPDATE orders SET status = ? WHERE id = ? AND status = ?")
                .execute(&mut *tx)
                .await?
        }
    };
    if cancelled.rows_affected() != 1 {
        return Ok(false);
    }
    let row = sqlx::query("SELECT book_id, quantity FROM orders WHERE id = ?")
        .bind(id)
        .fetch_one(&mut *tx)
        .await?;
    let (book_id, quantity): (i64, i64) = (row.get(0), row.get(1));
    state
        .catalog()
        .give_back(&mut tx, id, book_id, quantity)
        .await?;
    tx.commit().await?;
    Ok(true)
}

/// GET /orders/{id}/cancel: what cancelling does, and the button that does it (no JavaScript).
pub async fn cancel_form(
    State(state): State<AppState>,
    ctx: Ctx,
    Path(id): Path<String>,
) -> AppResult<Response> {
    let order = own_order(&state, &ctx, parse_id(&id)?).await?;
    if order.status != PendingPayment {
        return Err(AppError::Conflict(format!(
            "this order is {}; only an order pending payment can be cancelled",
            order.status_label
        )));
    }
    let copies = if order.quantity == 1 {
        "Its copy goes".to_string()
    } else {
        format!("Its {} copies go", order.quantity)
    };
    Ok(ConfirmPage {
        ctx: (&ctx).into(),
        heading: format!("Cancel order #{}?", order.id),
        explain: format!(
            "{copies} back on sale, and you pay nothing. To buy “{}” later, you order it again.",
            order.title
        ),
        action: format!("/orders/{}/cancel", order.id),
        confirm_label: "Cancel the order",
        back: format!("/orders/{}", order.id),
        back_label: "Keep the order",
    }
    .into_response())
}

/// Cancels from the confirmation page (`confirm=yes`); anything else is sent there.
pub async fn cancel(
    State(state): State<AppState>,
    ctx: Ctx,
    Path(id): Path<String>,
    Form(form): Form<HashMap<String, String>>,
) -> AppResult<Response> {
    let id = parse_id(&id)?;
    ctx.check_csrf(field(&form, "csrf"))?;
    let order = own_order(&state, &ctx, id).await?;
    if order.status == PendingPayment && field(&form, "confirm") != "yes" {
        return Ok(Redirect::to(&format!("/orders/{id}/cancel")).into_response());
    }
    if !cancel_pending(&state, order.id, Some(ctx.user()?.id)).await? {
        return Err(AppError::Conflict(format!(
            "this order is {}; only an order pending payment can be cancelled",
            order.status_label
        )));
    }
    Ok(ctx.redirect(&format!("/orders/{id}"), Flash::Cancelled))
}

/// The seller marks a paid order shipped; the buyer sees it in their orders. Anyone else's attempt
/// (the buyer's included) finds nothing to ship.
pub async fn ship(
    State(state): State<AppState>,
    ctx: Ctx,
    Path(id): Path<String>,
    Form(form): Form<HashMap<String, String>>,
) -> AppResult<Response> {
    let id = parse_id(&id)?;
    ctx.check_csrf(field(&form, "csrf"))?;
    let seller = ctx.user()?.id;
    let status: Option<String> =
        sqlx::query("SELECT status FROM orders WHERE id = ? AND seller_id = ?")
            .bind(id)
            .bind(seller)
            .fetch_optional(&state.db.pool)
            .await?
            .map(|r| r.get(0));
    let Some(status) = status else {
        return Err(AppError::NotFound);
    };
    let shipped = sqlx::query(
        "UPDATE orders SET status = ?, shipped_at = ? WHERE id = ? AND status = ? AND seller_id = ?",
    )
    .bind(Shipped.as_str())
    .bind(now())
    .bind(id)
    .bind(Paid.as_str())
    .bind(seller)
    .execute(&state.db.pool)
    .await?;
    if shipped.rows_affected() != 1 {
        return Err(AppError::Conflict(format!(
            "this order is {}; only a paid order can be shipped",
            OrderStatus::parse(&status)
                .unwrap_or(Cancelled)
                .label(false)
        )));
    }
    let back = if field(&form, "from") == "order" {
        format!("/orders/{id}")
    } else {
        "/sales".to_string()
    };
    Ok(ctx.redirect(&back, Flash::Shipped))
}

/// The orders the user bought (`sales` false) or sold (`sales` true), newest first.
async fn order_list(state: &AppState, ctx: &Ctx, sales: bool) -> AppResult<OrdersPage> {
    let user = ctx.user()?;
    let whose = if sales { "o.seller_id" } else { "o.buyer_id" };
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {ORDER_COLUMNS} {ORDER_FROM} WHERE {whose} = ? ORDER BY o.id DESC LIMIT 500"
    )))
    .bind(user.id)
    .fetch_all(&state.db.pool)
    .await?;
    Ok(OrdersPage {
        ctx: ctx.into(),
        heading: if sales { "My sales" } else { "My orders" },
        orders: views(state, &rows).await?,
        sales,
    })
}

pub async fn mine(State(state): State<AppState>, ctx: Ctx) -> AppResult<impl IntoResponse> {
    order_list(&state, &ctx, false).await
}

pub async fn sales(State(state): State<AppState>, ctx: Ctx) -> AppResult<impl IntoResponse> {
    order_list(&state, &ctx, true).await
}

/// Cancels every unpaid order past its deadline and returns its copies. Safe on many replicas at once.
pub async fn release_expired(state: &AppState) -> AppResult<usize> {
    let ids: Vec<i64> = sqlx::query("SELECT id FROM orders WHERE status = ? AND expires_at <= ?")
        .bind(PendingPayment.as_str())
        .bind(now())
        .fetch_all(&state.db.pool)
        .await?
        .iter()
        .map(|r| r.get(0))
        .collect();
    let mut released = 0;
    for id in ids {
        if cancel_pending(state, id, None).await? {
            released += 1;
        }
    }
    Ok(released)
}

/// Orders made before they named their seller (migration 5), or by a replica of the previous
/// version during a rolling update, get the seller from catalog: until then only the buyer sees
/// them. A few hundred books per sweep; returns how many orders were completed.
pub async fn fill_in_sellers(state: &AppState) -> AppResult<u64> {
    let books: Vec<i64> = sqlx::query(
        "SELECT DISTINCT book_id FROM orders WHERE seller_id IS NULL ORDER BY book_id LIMIT 500",
    )
    .fetch_all(&state.db.pool)
    .await?
    .iter()
    .map(|r| r.get(0))
    .collect();
    if books.is_empty() {
        return Ok(0);
    }
    let sellers = state.catalog().sellers(&books).await?;
    let mut filled = 0;
    for (book, seller) in sellers {
        filled +=
            sqlx::query("UPDATE orders SET seller_id = ? WHERE book_id = ? AND seller_id IS NULL")
                .bind(seller)
                .bind(book)
                .execute(&state.db.pool)
                .await?
                .rows_affected();
    }
    Ok(filled)
}

/// The split's orders left `reserving` or `cancelling` by a failure give their copies back.
pub async fn finish_stalled(state: &AppState) -> AppResult<usize> {
    saga::finish(state).await
}
