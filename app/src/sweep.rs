//! The background sweeps, so that no page view writes: unpaid orders past their deadline give their
//! copies back, expired sessions and old login counters are purged, and cover files no listing
//! refers to any more are removed. Safe on many replicas at once (each step is idempotent). Each
//! domain sweeps its own tables; this runs them.

use std::time::Duration;

use crate::error::AppResult;
use crate::{AppState, accounts, catalog, orders};

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

pub async fn once(state: &AppState, covers: bool) -> AppResult<()> {
    let released = orders::release_expired(state).await?;
    let completed = orders::fill_in_sellers(state).await?;
    let (sessions, counters) = accounts::purge_expired(state).await?;
    let removed = if covers {
        catalog::selling::orphan_covers(state).await?
    } else {
        0
    };
    if released as u64 + completed + sessions + counters + removed as u64 > 0 {
        tracing::info!(
            released,
            completed,
            sessions,
            counters,
            covers = removed,
            "sweep: released unpaid orders, named sellers on older orders, purged expired rows, removed orphan covers"
        );
    }
    Ok(())
}
