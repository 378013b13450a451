//! The background sweeps, so that no page view writes: unpaid orders past their deadline give their
//! copies back, expired sessions and old login counters are purged, and cover files no listing
//! refers to any more are removed. Safe on many replicas at once (each step is idempotent).

use std::collections::HashSet;
use std::time::{Duration, SystemTime};

use sqlx::Row;

use crate::AppState;
use crate::accounts::WINDOW_SECS;
use crate::db::now;
use crate::error::AppResult;
use crate::orders;

/// Every `sweep_secs` (30 s); covers every sixth of their grace period (10 minutes by default),
/// as listing the uploads directory is the costly part.
pub async fn run(state: AppState) {
    let every = state.config.sweep_secs;
    let mut tick = tokio::time::interval(Duration::from_secs(every));
    let covers_every = (state.config.cover_grace_secs / 6 / every).max(1);
    for round in 0u64.. {
        tick.tick().await;
        if let Err(e) = once(&state, round % covers_every == 0).await {
            tracing::warn!(error = %e, seconds = every, "sweep failed; trying again");
        }
    }
}

/// Addresses an account logged in from are forgotten after this long unused.
const KNOWN_ADDRESS_SECS: i64 = 180 * 24 * 3600;

pub async fn once(state: &AppState, covers: bool) -> AppResult<()> {
    let released = orders::release_expired(state).await?;
    let t = now();
    let sessions = sqlx::query("DELETE FROM sessions WHERE expires_at <= ?")
        .bind(t)
        .execute(&state.db.pool)
        .await?
        .rows_affected();
    let counters = sqlx::query("DELETE FROM login_failures WHERE window_start < ?")
        .bind(t - WINDOW_SECS)
        .execute(&state.db.pool)
        .await?
        .rows_affected();
    sqlx::query("DELETE FROM login_known WHERE last_at < ?")
        .bind(t - KNOWN_ADDRESS_SECS)
        .execute(&state.db.pool)
        .await?;
    let removed = if covers {
        orphan_covers(state).await?
    } else {
        0
    };
    if released + sessions as usize + counters as usize + removed > 0 {
        tracing::info!(
            released,
            sessions,
            counters,
            covers = removed,
            "sweep: released unpaid orders, purged expired rows, removed orphan covers"
        );
    }
    Ok(())
}

/// Removes cover files (and stale temporary files) that no book names and that are older than the
/// grace period. Returns how many went.
async fn orphan_covers(state: &AppState) -> AppResult<usize> {
    let used: HashSet<String> = sqlx::query("SELECT cover FROM books WHERE cover IS NOT NULL")
        .fetch_all(&state.db.pool)
        .await?
        .iter()
        .map(|r| r.get::<String, _>(0))
        .collect();
    let dir = state.config.uploads_dir.clone();
    // A younger file may belong to a listing being saved right now.
    let grace = Duration::from_secs(state.config.cover_grace_secs);
    let removed = tokio::task::spawn_blocking(move || {
        let mut removed = 0;
        let Ok(entries) = std::fs::read_dir(&dir) else {
            return 0;
        };
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let old = entry
                .metadata()
                .and_then(|m| m.modified())
                .ok()
                .and_then(|m| SystemTime::now().duration_since(m).ok())
                .is_some_and(|age| age >= grace);
            if old
                && !used.contains(&name)
                && entry.file_type().is_ok_and(|t| t.is_file())
                && std::fs::remove_file(entry.path()).is_ok()
            {
                removed += 1;
            }
        }
        removed
    })
    .await
    .unwrap_or(0);
    Ok(removed)
}
