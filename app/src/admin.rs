//! The users list, for admins only (the first user to register, or BOOKSTORE_ADMIN_EMAIL).

use askama::Template;
use askama_web::WebTemplate;
use axum::extract::State;
use axum::response::IntoResponse;
use sqlx::Row;

use crate::AppState;
use crate::error::{AppError, AppResult};
use crate::web::{Ctx, PageCtx};

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
