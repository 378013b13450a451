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
    use crate::config::Service;
    let service = state.service();
    let (mut released, mut completed, mut ended) = (0, 0, 0);
    let (mut sessions, mut counters, mut removed) = (0, 0, 0);
    if matches!(service, Service::All | Service::Orders) {
        released = orders::release_expired(state).await?;
        completed = orders::fill_in_sellers(state).await?;
        if state.peers.is_some() {
            ended = orders::finish_stalled(state).await?;
        }
    }
    if matches!(service, Service::All | Service::Accounts) {
        (sessions, counters) = accounts::purge_expired(state).await?;
    }
    if covers && matches!(service, Service::All | Service::Catalog) {
        removed = catalog::selling::orphan_covers(state).await?;
    }
    if released as u64 + completed + ended as u64 + sessions + counters + removed as u64 > 0 {
        tracing::info!(
            released,
            completed,
            ended,
            sessions,
            counters,
            covers = removed,
            "sweep: released unpaid orders, named sellers on older orders, gave back stalled reservations, purged expired rows, removed orphan covers"
        );
    }
    Ok(())
}
