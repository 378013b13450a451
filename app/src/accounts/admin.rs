//! Administrators. Nobody becomes one by registering first (on a fresh public URL that is whoever
//! is fastest): an operator runs `bookstore-app admin grant EMAIL` on the database, or sets
//! BOOKSTORE_ADMIN_EMAIL, and that account's owner claims it with the one-time token the server
//! writes to its log (only someone who can read the server's log, and logs in as that account).

use std::collections::HashMap;

use askama::Template;
use askama_web::WebTemplate;
use axum::extract::{Form, State};
use axum::response::{IntoResponse, Response};
use sqlx::Row;

use crate::config::{AdminAction, Config};
use crate::db::now;
use crate::error::{AppError, AppResult};
use crate::web::{Ctx, Flash, PageCtx, field, random_token, token_hash};
use crate::{AppState, Db};

pub struct UserRow {
    pub id: i64,
    pub name: String,
    pub email: String,
    pub is_admin: bool,
}

#[derive(Template, WebTemplate)]
#[template(path = "users.html")]
struct UsersPage {
    ctx: PageCtx,
    users: Vec<UserRow>,
}

#[derive(Template, WebTemplate)]
#[template(path = "claim.html")]
struct ClaimPage {
    ctx: PageCtx,
}

pub async fn users(State(state): State<AppState>, ctx: Ctx) -> AppResult<impl IntoResponse> {
    if !ctx.user()?.is_admin {
        return Err(AppError::Forbidden(
            "only administrators can see the users list".into(),
        ));
    }
    let rows = sqlx::query("SELECT id, name, email, is_admin FROM users ORDER BY id LIMIT 1000")
        .fetch_all(&state.db.pool)
        .await?;
    let users = rows
        .iter()
        .map(|r| UserRow {
            id: r.get(0),
            name: r.get(1),
            email: r.get(2),
            is_admin: r.get::<i64, _>(3) != 0,
        })
        .collect();
    Ok(UsersPage {
        ctx: (&ctx).into(),
        users,
    })
}

/// At start-up: when BOOKSTORE_ADMIN_EMAIL names an account that is not an admin yet and no token
/// is outstanding, make one and log it. Replicas starting together race on the INSERT: one wins
/// and logs; the others see the row and stay quiet.
pub async fn offer_setup_token(db: &Db, config: &Config) -> Result<(), sqlx::Error> {
    let Some(email) = &config.admin_email else {
        return Ok(());
    };
    let is_admin = sqlx::query("SELECT is_admin FROM users WHERE email = ?")
        .bind(email)
        .fetch_optional(&db.pool)
        .await?
        .is_some_and(|r| r.get::<i64, _>(0) != 0);
    if is_admin {
        return Ok(());
    }
    let token = random_token();
    let inserted = sqlx::query(
        "INSERT INTO admin_setup (email, token_hash, created_at) SELECT ?, ?, ? \
         WHERE NOT EXISTS (SELECT 1 FROM admin_setup WHERE email = ?)",
    )
    .bind(email)
    .bind(token_hash(&token))
    .bind(now())
    .bind(email)
    .execute(&db.pool)
    .await;
    match inserted {
        Ok(done) if done.rows_affected() == 1 => {
            tracing::warn!(
                %email,
                setup_token = %token,
                "admin setup: register or log in as this e-mail, open /admin/claim and enter this one-time token"
            );
        }
        Ok(_) => {
            tracing::info!(%email, "admin setup: a token is outstanding (logged when it was made)")
        }
        Err(sqlx::Error::Database(e)) if e.is_unique_violation() => {}
        Err(e) => return Err(e),
    }
    Ok(())
}

pub async fn claim_form(ctx: Ctx) -> AppResult<Response> {
    ctx.user()?;
    Ok(ClaimPage { ctx: (&ctx).into() }.into_response())
}

/// The logged-in owner of BOOKSTORE_ADMIN_EMAIL's account trades the logged token for the role.
pub async fn claim(
    State(state): State<AppState>,
    ctx: Ctx,
    Form(form): Form<HashMap<String, String>>,
) -> AppResult<Response> {
    ctx.check_csrf(field(&form, "csrf"))?;
    let user = ctx.user()?;
    let refused = || AppError::Forbidden("that token is not valid for this account".into());
    let email: String = sqlx::query("SELECT email FROM users WHERE id = ?")
        .bind(user.id)
        .fetch_one(&state.db.pool)
        .await?
        .get(0);
    if state.config.admin_email.as_deref() != Some(email.as_str()) {
        return Err(refused());
    }
    let mut tx = state.db.pool.begin().await?;
    // Deleting the row is the claim: of two claims at once, one deletes it.
    let taken = sqlx::query("DELETE FROM admin_setup WHERE email = ? AND token_hash = ?")
        .bind(&email)
        .bind(token_hash(field(&form, "token")))
        .execute(&mut *tx)
        .await?;
    if taken.rows_affected() != 1 {
        return Err(refused());
    }
    sqlx::query("UPDATE users SET is_admin = 1 WHERE id = ?")
        .bind(user.id)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    tracing::warn!(%email, "admin setup: the account is now an administrator");
    Ok(ctx.redirect("/admin/users", Flash::AdminClaimed))
}

/// `bookstore-app admin grant|revoke|list`: what it did, for the operator's terminal.
pub async fn command(config: &Config, action: &AdminAction) -> Result<String, String> {
    let db = Db::connect(&config.database_url, 1)
        .await
        .map_err(|e| format!("cannot connect to the database: {e}"))?;
    // Accounts' tables only: in the split this is the accounts service's database.
    db.migrate(&[crate::db::Domain::Accounts])
        .await
        .map_err(|e| format!("cannot migrate the database: {e}"))?;
    let set = |email: &str, admin: bool| {
        let email = email.trim().to_lowercase();
        let db = db.clone();
        async move {
            let done = sqlx::query("UPDATE users SET is_admin = ? WHERE email = ?")
                .bind(i64::from(admin))
                .bind(&email)
                .execute(&db.pool)
                .await
                .map_err(|e| e.to_string())?;
            if done.rows_affected() == 0 {
                return Err(format!(
                    "no account has the e-mail {email}: it must register first"
                ));
            }
            Ok(format!(
                "{email} is {}an administrator\n",
                if admin { "" } else { "no longer " }
            ))
        }
    };
    match action {
        AdminAction::Grant { email } => set(email, true).await,
        AdminAction::Revoke { email } => set(email, false).await,
        AdminAction::List => {
            let rows = sqlx::query("SELECT email FROM users WHERE is_admin <> 0 ORDER BY id")
                .fetch_all(&db.pool)
                .await
                .map_err(|e| e.to_string())?;
            Ok(rows
                .iter()
                .map(|r| format!("{}\n", r.get::<String, _>(0)))
                .collect())
        }
    }
}
