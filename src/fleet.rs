//! Every env of the account at once, of any stack, from the account alone (no stack file, no
//! journal): `ls` lists them; `gc` deletes the expired ones, each under its lock, found by its tags
//! and torn down as `down` does.

use std::collections::BTreeSet;
use std::sync::Arc;

use crate::aws::{Cx, Owner};
use crate::cli::Cli;
use crate::engine;
use crate::env_ops::{Done, connect_to, discover, forget, teardown};
use crate::error::Error;
use crate::journal::Journal;
use crate::plan::Kind;
use crate::print::{Collected, EnvRow, Envs, Report};
use crate::report::Reporter;
use crate::state;

fn owner(stack: &str, env: &str) -> Owner {
    Owner {
        stack: stack.to_string(),
        env: env.to_string(),
        extra_tags: Default::default(),
    }
}

/// The account's clients (no env of its own) for `region`, credentials proven.
async fn account(
    region: Option<&str>,
    report: &Arc<Reporter>,
    verb: &str,
) -> Result<Arc<Cx>, Error> {
    let (region, source) = crate::config::account_region(region).await?;
    let rerun = format!("bookstore {verb} --region {region}");
    connect_to(
        &region,
        owner("", ""),
        report,
        &rerun,
        &format!("region {region} (from {source}); every env"),
    )
    .await
}

/// Every env: the account's records ∪ the VPCs' tags, each looked at by its tags.
async fn rows(cx: &Arc<Cx>, rerun: &str) -> Result<Vec<EnvRow>, Error> {
    let aws =
        |e: crate::aws::AwsError| engine::aws_error(&e, "listing", "the account's envs", rerun);
    let records = state::records(cx).await.map_err(aws)?;
    let mut envs: BTreeSet<(String, String)> = records
        .iter()
        .map(|r| (r.stack.clone(), r.env.clone()))
        .collect();
    envs.extend(crate::aws::vpc::tagged_envs(cx).await.map_err(aws)?);
    let now = state::now();
    let mut rows = Vec::new();
    for (stack, env) in envs {
        let record = records.iter().find(|r| r.stack == stack && r.env == env);
        let env_cx = Arc::new(cx.for_owner(owner(&stack, &env)));
        let resources = engine::observe(&env_cx, Kind::ALL)
            .await?
            .iter()
            .filter(|o| o.owned)
            .count();
        let locked_by = state::holder(cx, &stack, &env)
            .await
            .map_err(aws)?
            .filter(|h| h.expires >= now)
            .map(|h| format!("{} (`{}`)", h.holder, h.command));
        let expires = record.and_then(|r| r.expires);
        rows.push(EnvRow {
            stack,
            env,
            created: record.map(|r| r.created),
            age_seconds: record.map(|r| now.saturating_sub(r.created)),
            expires,
            expired: expires.is_some_and(|e| e <= now),
            resources,
            hourly_usd: record.map(|r| r.hourly_usd),
            locked_by,
        });
    }
    Ok(rows)
}

pub async fn ls(region: Option<&str>, report: &Arc<Reporter>) -> Done {
    let cx = account(region, report, "ls").await?;
    let envs = rows(&cx, "bookstore ls").await?;
    let hourly_usd = envs
        .iter()
        .filter(|e| e.resources > 0)
        .filter_map(|e| e.hourly_usd)
        .sum();
    Ok((
        0,
        Report::Envs(Envs {
            region: cx.region.clone(),
            envs,
            hourly_usd,
        }),
    ))
}

pub async fn gc(
    region: Option<&str>,
    yes: bool,
    parallelism: u16,
    cli: &Cli,
    report: &Arc<Reporter>,
) -> Done {
    let cx = account(region, report, "gc").await?;
    let rerun = format!("bookstore gc --region {} --yes", cx.region);
    let mut collected = Collected {
        region: cx.region.clone(),
        deleted: vec![],
        busy: vec![],
        kept: vec![],
    };
    let (expired, kept): (Vec<_>, Vec<_>) = rows(&cx, &rerun)
        .await?
        .into_iter()
        .partition(|row| row.expired);
    collected.kept = kept
        .iter()
        .map(|r| format!("{}/{}", r.stack, r.env))
        .collect();
    if expired.is_empty() {
        return Ok((0, Report::Collected(collected)));
    }
    if !yes {
        let names: Vec<String> = expired
            .iter()
            .map(|r| format!("{}/{} ({} resources)", r.stack, r.env, r.resources))
            .collect();
        crate::env_ops::confirm(&format!(
            "Delete {} expired env(s) in {}: {}?",
            names.len(),
            cx.region,
            names.join(", ")
        ))?;
    }
    // One env after another: each teardown runs its kinds in parallel already, and a failure in
    // one env must not leave the next one half done.
    let mut failures = Vec::new();
    for row in expired {
        let name = format!("{}/{}", row.stack, row.env);
        let env_cx = Arc::new(cx.for_owner(owner(&row.stack, &row.env)));
        report.info(&format!("gc: {name} expired; deleting it"));
        match collect(&env_cx, cli, report, parallelism, &rerun).await {
            Ok(()) => collected.deleted.push(name),
            Err(Error::Locked { holder, .. }) => {
                report.warn(&format!(
                    "gc: {name} is busy, left for the next gc: {holder}"
                ));
                collected.busy.push(name);
            }
            Err(e) => {
                report.warn(&format!("gc: {name}: {e}"));
                failures.push(format!("{name}: {e}"));
            }
        }
    }
    if !failures.is_empty() {
        return Err(Error::Leftovers {
            left: failures,
            hint: format!("run `{rerun}` again; the envs deleted so far stay deleted"),
        });
    }
    Ok((0, Report::Collected(collected)))
}

/// One expired env: under its lock, everything its tags find, torn down as `down` does, then
/// its record.
async fn collect(
    cx: &Arc<Cx>,
    cli: &Cli,
    report: &Arc<Reporter>,
    parallelism: u16,
    rerun: &str,
) -> Result<(), Error> {
    let journal = Arc::new(Journal::open(
        &cli.state_dir,
        &cx.owner.stack,
        &cx.owner.env,
        rerun,
    )?);
    let work = async {
        // The record is read again under the lock: an `up --ttl` may have just extended it.
        let record = state::read_record(cx, &cx.owner.stack, &cx.owner.env)
            .await
            .map_err(|e| engine::aws_error(&e, "reading", "the env's record", rerun))?;
        if record
            .and_then(|r| r.expires)
            .is_some_and(|e| e > state::now())
        {
            return Ok(());
        }
        let targets = discover(cx, &journal, rerun).await?;
        if targets.iter().any(|o| o.owned) {
            teardown(
                cx,
                Arc::clone(&journal),
                report,
                parallelism,
                rerun,
                targets,
            )
            .await?;
        }
        forget(cx, rerun).await
    };
    // Never waited for: a run working on an env is not garbage.
    let wait = std::time::Duration::ZERO;
    crate::env_ops::locked(cx, &journal, rerun, wait, report, work).await
}
