//! The instances registered in a target group (the swarm's nodes behind the load balancer). The
//! registration is a resource of its own so that it is planned, compared and repaired like the
//! rest: it is observed only on target groups this kind has marked (tag `bookstore:targets`), so
//! an Auto Scaling group's registrations in another stack's target group are never touched here.

use std::collections::BTreeMap;

use async_trait::async_trait;
use aws_sdk_elasticloadbalancingv2::types::{Tag, TargetDescription};
use serde::Serialize;

use super::{
    Actions, AwsError, Charge, Cx, Deps, Desired, Drawing, Module, Observed, Place, Want, dep_id,
    gone_if_not_found,
};
use crate::kinds::Kind;
use crate::reference::Ref;

/// The instances registered as targets of a target group (the swarm's nodes).
#[derive(Debug, Clone, Serialize)]
pub struct TargetsSpec {
    pub target_group: Ref,
    pub instances: Vec<Ref>,
}

pub struct Targets;

/// On a target group: the plan key of the registration that manages its targets.
const TAG_TARGETS: &str = "bookstore:targets";

async fn read(cx: &Cx, arn: &str, key: &str) -> Result<Observed, AwsError> {
    let health = super::target_group::health(cx, arn).await?;
    let mut ids: Vec<String> = health.iter().map(|h| h.id.clone()).collect();
    ids.sort();
    let healthy = health.iter().filter(|h| h.healthy()).count();
    let mut o = Observed::new(Kind::Targets, key, arn);
    o.name = key.to_string();
    o.state = format!("{healthy}/{} healthy", health.len());
    // `up` ends when the app answers: every node serves the app (the routing mesh), so every
    // registered node must pass the load balancer's health check.
    o.ready = super::target_group::all_healthy(&health);
    if !o.ready {
        o.attrs.insert(
            "waiting_for".into(),
            format!(
                "the load balancer's health checks: {}",
                super::target_group::not_healthy(&health)
            ),
        );
    }
    o.facts.insert("targets".into(), ids.join(","));
    Ok(o)
}

fn wanted(want: &Want<'_, TargetsSpec>, deps: &Deps) -> (String, Vec<String>) {
    let TargetsSpec {
        target_group,
        instances,
    } = want.spec;
    let ids = super::dep_ids(deps, instances);
    (dep_id(deps, target_group).to_string(), ids)
}

fn descriptions(ids: &[&str]) -> Option<Vec<TargetDescription>> {
    Some(
        ids.iter()
            .map(|id| TargetDescription::builder().id(*id).build())
            .collect(),
    )
}

async fn register(cx: &Cx, arn: &str, ids: &[&str]) -> Result<(), AwsError> {
    if !ids.is_empty() {
        cx.elb
            .register_targets()
            .target_group_arn(arn)
            .set_targets(descriptions(ids))
            .send()
            .await?;
    }
    Ok(())
}

async fn deregister(cx: &Cx, arn: &str, ids: &[&str]) -> Result<(), AwsError> {
    if !ids.is_empty() {
        cx.elb
            .deregister_targets()
            .target_group_arn(arn)
            .set_targets(descriptions(ids))
            .send()
            .await?;
    }
    Ok(())
}

#[async_trait]
impl Module for Targets {
    type Spec = TargetsSpec;

    fn drawing(&self, spec: &Self::Spec) -> Drawing {
        let detail = "target registrations".to_string();
        Drawing {
            detail,
            place: Place::With(spec.target_group.clone()),
        }
    }

    fn cost(&self, _key: &str, _spec: &Self::Spec, _plan: &[Desired]) -> Vec<Charge> {
        vec![]
    }

    fn instances_started(&self, _spec: &Self::Spec) -> u32 {
        0
    }

    fn actions(&self) -> Actions {
        Actions {
            observe: &[
                "elasticloadbalancing:DescribeTargetGroups",
                "elasticloadbalancing:DescribeTags",
                "elasticloadbalancing:DescribeTargetHealth",
            ],
            change: &[
                "elasticloadbalancing:RegisterTargets",
                "elasticloadbalancing:DeregisterTargets",
                "elasticloadbalancing:AddTags",
                "elasticloadbalancing:RemoveTags",
            ],
        }
    }

    fn teardown_after(&self) -> &'static [Kind] {
        &[]
    }

    async fn observe(&self, cx: &Cx) -> Result<Vec<Observed>, AwsError> {
        let groups = cx.elb.describe_target_groups().send().await?;
        let arns: Vec<String> = groups
            .target_groups()
            .iter()
            .filter_map(|g| g.target_group_arn().map(str::to_string))
            .collect();
        if arns.is_empty() {
            return Ok(vec![]);
        }
        let mut found = Vec::new();
        for chunk in arns.chunks(20) {
            let tags = cx
                .elb
                .describe_tags()
                .set_resource_arns(Some(chunk.to_vec()))
                .send()
                .await?;
            for d in tags.tag_descriptions() {
                let pairs: Vec<(&str, &str)> = d
                    .tags()
                    .iter()
                    .filter_map(|t| Some((t.key()?, t.value()?)))
                    .collect();
                let marked = pairs.iter().find(|(k, _)| *k == TAG_TARGETS);
                if let (true, Some((_, key))) = (cx.owner.owns(pairs.iter().copied()), marked) {
                    found.push(read(cx, d.resource_arn().unwrap_or_default(), key).await?);
                }
            }
        }
        Ok(found)
    }

    /// Gone once the target group is, or no longer carries this kind's mark.
    async fn refresh(&self, cx: &Cx, have: &Observed) -> Result<Option<Observed>, AwsError> {
        let tags = match cx.elb.describe_tags().resource_arns(&have.id).send().await {
            Ok(t) => t,
            Err(e) => return gone_if_not_found(e.into()),
        };
        let marked = tags
            .tag_descriptions()
            .iter()
            .flat_map(|d| d.tags())
            .any(|t| t.key() == Some(TAG_TARGETS));
        if !marked {
            return Ok(None);
        }
        match read(cx, &have.id, &have.key).await {
            Ok(o) => Ok(Some(o)),
            Err(e) => gone_if_not_found(e),
        }
    }

    /// Marks the target group, then registers the instances.
    async fn create(
        &self,
        cx: &Cx,
        want: &Want<'_, TargetsSpec>,
        deps: &Deps,
    ) -> Result<Observed, AwsError> {
        let (arn, ids) = wanted(want, deps);
        cx.elb
            .add_tags()
            .resource_arns(&arn)
            .tags(Tag::builder().key(TAG_TARGETS).value(want.key).build())
            .send()
            .await?;
        let refs: Vec<&str> = ids.iter().map(String::as_str).collect();
        register(cx, &arn, &refs).await?;
        read(cx, &arn, want.key).await
    }

    fn expected_facts(
        &self,
        want: &Want<'_, TargetsSpec>,
        deps: &Deps,
    ) -> BTreeMap<String, String> {
        let (_, ids) = wanted(want, deps);
        BTreeMap::from([("targets".into(), ids.join(","))])
    }

    /// Registers the missing nodes and deregisters the ones the stack no longer has.
    async fn update(
        &self,
        cx: &Cx,
        want: &Want<'_, TargetsSpec>,
        have: &Observed,
        deps: &Deps,
    ) -> Result<bool, AwsError> {
        let (arn, ids) = wanted(want, deps);
        let present: Vec<&str> = have
            .facts
            .get("targets")
            .map(|t| t.split(',').filter(|s| !s.is_empty()).collect())
            .unwrap_or_default();
        let missing: Vec<&str> = ids
            .iter()
            .map(String::as_str)
            .filter(|id| !present.contains(id))
            .collect();
        let extra: Vec<&str> = present
            .iter()
            .copied()
            .filter(|id| !ids.iter().any(|w| w == id))
            .collect();
        register(cx, &arn, &missing).await?;
        deregister(cx, &arn, &extra).await?;
        Ok(true)
    }

    async fn delete(&self, cx: &Cx, have: &Observed) -> Result<(), AwsError> {
        let present: Vec<&str> = have
            .facts
            .get("targets")
            .map(|t| t.split(',').filter(|s| !s.is_empty()).collect())
            .unwrap_or_default();
        // A target that is gone already (a terminated node) is deregistered by AWS itself.
        if let Err(e) = deregister(cx, &have.id, &present).await
            && e.code.as_deref() != Some("InvalidTarget")
        {
            return Err(e);
        }
        cx.elb
            .remove_tags()
            .resource_arns(&have.id)
            .tag_keys(TAG_TARGETS)
            .send()
            .await?;
        Ok(())
    }
}
