//! The Learner Lab's account-wide instance limit: 9 running (20 or more deactivates the account).
//! Each stack validates against it alone; before `up` creates anything it counts what already runs
//! in the account — every stack, env and hand-made instance — plus what this run would start, and
//! refuses when the sum is over, naming what runs where.

use crate::aws::{AwsError, Cx, TAG_ENV, TAG_KEY, TAG_STACK, ec2_tag};
use crate::engine::{Action, Diff};
use crate::error::Error;
use crate::plan::{Plan, Spec};

use crate::stack::LAB_MAX_INSTANCES;

/// Instances this run would start: a new VM or node, a new group's desired capacity, a bake's
/// builder. A replaced instance is terminated before its successor starts, so it adds none.
pub fn instances_added(plan: &Plan, diff: &Diff) -> Vec<(String, u32)> {
    diff.steps
        .iter()
        .filter(|s| s.action == Action::Create)
        .filter_map(|s| {
            let spec = &plan.get(&s.key)?.spec;
            let what = match spec {
                Spec::Image(_) => format!("{}'s builder", s.key),
                _ => s.key.clone(),
            };
            Some((what, instances_started(spec)?))
        })
        .collect()
}

/// How many instances a resource starts when it is created (its kind says: a VM or node 1, a
/// group its desired capacity, a bake its builder); `None` for what starts none.
pub fn instances_started(spec: &Spec) -> Option<u32> {
    Some(spec.kind().imp().instances_started(spec)).filter(|&n| n > 0)
}

/// The pending and running instances of the account in this region: "id (what it is)".
pub async fn running(cx: &Cx) -> Result<Vec<String>, AwsError> {
    let mut found = Vec::new();
    let mut pages = cx
        .ec2
        .describe_instances()
        .filters(
            aws_sdk_ec2::types::Filter::builder()
                .name("instance-state-name")
                .values("pending")
                .values("running")
                .build(),
        )
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        for i in page?.reservations().iter().flat_map(|r| r.instances()) {
            let tags = i.tags();
            let what = match (ec2_tag(tags, TAG_STACK), ec2_tag(tags, TAG_ENV)) {
                (Some(stack), Some(env)) => format!(
                    "bookstore {stack}/{env} {}",
                    ec2_tag(tags, TAG_KEY).unwrap_or("")
                ),
                _ => ec2_tag(tags, "Name")
                    .unwrap_or("not bookstore's")
                    .to_string(),
            };
            found.push(format!(
                "{} ({})",
                i.instance_id().unwrap_or("?"),
                what.trim()
            ));
        }
    }
    Ok(found)
}

/// Refuses before any create when the account would run more than the limit.
pub async fn check(cx: &Cx, plan: &Plan, diff: &Diff, rerun: &str) -> Result<(), Error> {
    let added = instances_added(plan, diff);
    let adding: u32 = added.iter().map(|(_, n)| n).sum();
    if adding == 0 {
        return Ok(());
    }
    let now = running(cx).await.map_err(|e| {
        crate::engine::aws_error(&e, "counting", "the account's running instances", rerun)
    })?;
    let total = now.len() as u32 + adding;
    if total <= LAB_MAX_INSTANCES {
        return Ok(());
    }
    let what: Vec<String> = added.iter().map(|(k, n)| format!("{k} +{n}")).collect();
    Err(Error::Usage {
        message: format!(
            "this run would bring the account to {total} running instances, over the Learner Lab limit of {LAB_MAX_INSTANCES} (20 or more deactivates the account): {} run now{}{}, and this run adds {adding} ({})",
            now.len(),
            if now.is_empty() { "" } else { ": " },
            now.join(", "),
            what.join(", ")
        ),
        hint: "stop or `bookstore down` what you no longer need (`bookstore status --env …` shows an env), or lower the stack's instance counts; nothing was created".into(),
    })
}
