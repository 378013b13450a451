//! The target group the app instances register in, health-checked on the app's health path.

use std::collections::BTreeMap;

use async_trait::async_trait;
use aws_sdk_elasticloadbalancingv2::types::{Matcher, ProtocolEnum, TargetTypeEnum};
use serde::Serialize;

use super::load_balancer::{elb_tags, owned_key, tags_of};
use super::{
    Actions, AwsError, Charge, Cx, Deps, Desired, Drawing, Module, Observed, Place, Want, dep_id,
    gone_if_not_found,
};
use crate::kinds::Kind;
use crate::reference::Ref;

/// What the plan says a target group should be.
#[derive(Debug, Clone, Serialize)]
pub struct TargetGroupSpec {
    pub vpc: Ref,
    pub port: u16,
    pub health_check_path: String,
}

pub struct TargetGroups;

fn read(tg: &aws_sdk_elasticloadbalancingv2::types::TargetGroup, key: &str) -> Observed {
    let mut o = Observed::new(
        Kind::TargetGroup,
        key,
        tg.target_group_arn().unwrap_or_default(),
    );
    o.name = tg.target_group_name().unwrap_or_default().to_string();
    o.facts
        .insert("port".into(), tg.port().unwrap_or_default().to_string());
    o.facts.insert(
        "protocol".into(),
        tg.protocol()
            .map(|p| p.as_str().to_string())
            .unwrap_or_default(),
    );
    o.facts.insert(
        "health_check_path".into(),
        tg.health_check_path().unwrap_or_default().to_string(),
    );
    o.facts
        .insert("vpc".into(), tg.vpc_id().unwrap_or_default().to_string());
    o
}

pub async fn health(cx: &Cx, arn: &str) -> Result<Vec<Health>, AwsError> {
    let out = cx
        .elb
        .describe_target_health()
        .target_group_arn(arn)
        .send()
        .await?;
    Ok(out
        .target_health_descriptions()
        .iter()
        .map(|d| {
            let h = d.target_health();
            Health {
                id: d
                    .target()
                    .and_then(|t| t.id())
                    .unwrap_or_default()
                    .to_string(),
                port: d.target().and_then(|t| t.port()).unwrap_or_default(),
                state: h
                    .and_then(|h| h.state())
                    .map(|s| s.as_str().to_string())
                    .unwrap_or_default(),
                reason: h
                    .and_then(|h| h.reason())
                    .map(|r| r.as_str().to_string())
                    .unwrap_or_default(),
                description: h
                    .and_then(|h| h.description())
                    .unwrap_or_default()
                    .to_string(),
            }
        })
        .collect())
}

/// One target as the load balancer sees it: its state and, unless healthy, the reason code.
#[derive(Debug, Clone)]
pub struct Health {
    pub id: String,
    /// The port the target receives on (the split's services: one per group).
    pub port: i32,
    pub state: String,
    pub reason: String,
    pub description: String,
}

impl Health {
    pub fn healthy(&self) -> bool {
        self.state == "healthy"
    }

    /// `i-0abc unhealthy (Target.FailedHealthChecks: Health checks failed with these codes: [503])`.
    pub fn summary(&self) -> String {
        match (self.reason.is_empty(), self.description.is_empty()) {
            (true, _) => format!("{} {}", self.id, self.state),
            (false, true) => format!("{} {} ({})", self.id, self.state, self.reason),
            (false, false) => format!(
                "{} {} ({}: {})",
                self.id, self.state, self.reason, self.description
            ),
        }
    }
}

/// Whether the load balancer has targets and finds every one healthy.
pub fn all_healthy(health: &[Health]) -> bool {
    !health.is_empty() && health.iter().all(Health::healthy)
}

/// The targets that are not healthy, summarised for a progress line or an error.
pub fn not_healthy(health: &[Health]) -> String {
    health
        .iter()
        .filter(|h| !h.healthy())
        .map(Health::summary)
        .collect::<Vec<_>>()
        .join("; ")
}

#[async_trait]
impl Module for TargetGroups {
    type Spec = TargetGroupSpec;

    fn drawing(&self, spec: &Self::Spec) -> Drawing {
        let detail = format!(
            "target group :{} health {}",
            spec.port, spec.health_check_path
        );
        Drawing {
            detail,
            // The default's by its listener, a service's by its rule.
            place: Place::ReferredBy(&[Kind::Listener, Kind::ListenerRule]),
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
                "elasticloadbalancing:DescribeTargetHealth",
                "elasticloadbalancing:DescribeTags",
            ],
            change: &[
                "elasticloadbalancing:CreateTargetGroup",
                "elasticloadbalancing:AddTags",
                "elasticloadbalancing:ModifyTargetGroup",
                "elasticloadbalancing:DeleteTargetGroup",
            ],
        }
    }

    fn outputs(&self, have: &Observed) -> Vec<(String, String)> {
        vec![("target_group_arn".into(), have.id.clone())]
    }

    /// Every registered target with its health, as the load balancer sees it.
    async fn details(
        &self,
        cx: &Cx,
        have: &Observed,
        _all: &[Observed],
    ) -> Result<Vec<super::Section>, AwsError> {
        let rows = health(cx, &have.id)
            .await?
            .into_iter()
            .map(|h| {
                BTreeMap::from([
                    ("id".into(), h.id),
                    ("health".into(), h.state),
                    ("reason".into(), h.reason),
                ])
            })
            .collect();
        Ok(vec![super::Section {
            name: "targets".into(),
            rows,
        }])
    }

    fn teardown_after(&self) -> &'static [Kind] {
        &[
            Kind::Listener,
            Kind::ListenerRule,
            Kind::LoadBalancer,
            Kind::AutoScalingGroup,
            Kind::Targets,
        ]
    }

    async fn observe(&self, cx: &Cx) -> Result<Vec<Observed>, AwsError> {
        let tgs: Vec<_> = cx
            .elb
            .describe_target_groups()
            .into_paginator()
            .items()
            .send()
            .collect::<Result<Vec<_>, _>>()
            .await?;
        let arns: Vec<String> = tgs
            .iter()
            .filter_map(|t| t.target_group_arn().map(str::to_string))
            .collect();
        let tags = tags_of(cx, &arns).await?;
        Ok(tgs
            .iter()
            .filter_map(|tg| {
                Some(read(
                    tg,
                    &owned_key(cx, tags.get(tg.target_group_arn().unwrap_or_default()))?,
                ))
            })
            .collect())
    }

    async fn refresh(&self, cx: &Cx, have: &Observed) -> Result<Option<Observed>, AwsError> {
        match cx
            .elb
            .describe_target_groups()
            .target_group_arns(&have.id)
            .send()
            .await
        {
            Ok(out) => Ok(out.target_groups().first().map(|t| {
                let mut o = read(t, &have.key);
                o.owned = have.owned;
                o
            })),
            Err(e) => gone_if_not_found(e.into()),
        }
    }

    async fn create(
        &self,
        cx: &Cx,
        want: &Want<'_, TargetGroupSpec>,
        deps: &Deps,
    ) -> Result<Observed, AwsError> {
        let TargetGroupSpec {
            vpc,
            port,
            health_check_path,
        } = want.spec;
        let out = cx
            .elb
            .create_target_group()
            .name(want.name)
            .protocol(ProtocolEnum::Http)
            .port((*port).into())
            .vpc_id(dep_id(deps, vpc))
            .target_type(TargetTypeEnum::Instance)
            .health_check_protocol(ProtocolEnum::Http)
            .health_check_path(health_check_path)
            .health_check_interval_seconds(15)
            .healthy_threshold_count(2)
            .unhealthy_threshold_count(3)
            .matcher(Matcher::builder().http_code("200").build())
            .set_tags(Some(elb_tags(cx, want)))
            .send()
            .await?;
        let tg = out
            .target_groups()
            .first()
            .ok_or_else(|| AwsError::other("CreateTargetGroup returned nothing"))?;
        Ok(read(tg, want.key))
    }

    fn expected_facts(
        &self,
        want: &Want<'_, TargetGroupSpec>,
        deps: &Deps,
    ) -> BTreeMap<String, String> {
        let TargetGroupSpec {
            vpc,
            port,
            health_check_path,
        } = want.spec;
        BTreeMap::from([
            ("port".into(), port.to_string()),
            ("protocol".into(), "HTTP".into()),
            ("health_check_path".into(), health_check_path.clone()),
            ("vpc".into(), dep_id(deps, vpc).to_string()),
        ])
    }

    async fn update(
        &self,
        cx: &Cx,
        want: &Want<'_, TargetGroupSpec>,
        have: &Observed,
        deps: &Deps,
    ) -> Result<bool, AwsError> {
        let expected = self.expected_facts(want, deps);
        // Port, protocol and VPC are fixed at creation; the health check is not.
        if ["port", "protocol", "vpc"]
            .iter()
            .any(|k| have.facts.get(*k) != expected.get(*k))
        {
            return Ok(false);
        }
        cx.elb
            .modify_target_group()
            .target_group_arn(&have.id)
            .health_check_path(expected["health_check_path"].clone())
            .send()
            .await?;
        Ok(true)
    }

    async fn delete(&self, cx: &Cx, have: &Observed) -> Result<(), AwsError> {
        cx.elb
            .delete_target_group()
            .target_group_arn(&have.id)
            .send()
            .await?;
        Ok(())
    }
}
