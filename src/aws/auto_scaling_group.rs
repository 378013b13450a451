//! The Auto Scaling group of app instances across the stack's subnets, registered in the target
//! group, replacing instances that fail the load balancer's health check (after a grace period),
//! with a target-tracking policy (ALB requests per target, or average CPU). Its tags propagate to
//! the instances. Ready once `min` instances are in service; `down` force-deletes it, which
//! terminates the instances, and waits until it is gone, so that security groups and subnets can go.

use std::collections::BTreeMap;
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_autoscaling::types::{
    AutoScalingGroup, LaunchTemplateSpecification, MetricType, PredefinedMetricSpecification, Tag,
    TargetTrackingConfiguration,
};
use serde::Serialize;

use super::{
    Actions, AwsError, Budget, Charge, Cx, Deps, Desired, Drawing, Module, Observed, Place, Spec,
    TAG_KEY, Want, dep_id,
};
use crate::kinds::Kind;
use crate::prices;
use crate::reference::Ref;

use crate::stack::{Scaling, ScalingMetric};

/// What the plan says an auto scaling group should be.
#[derive(Debug, Clone, Serialize)]
pub struct AutoScalingGroupSpec {
    pub launch_template: Ref,
    pub subnets: Vec<Ref>,
    /// Every instance registers in each (the split: one per service, on its own port); the first
    /// is the one request-count scaling follows.
    pub target_groups: Vec<Ref>,
    pub load_balancer: Ref,
    pub min: u32,
    pub max: u32,
    pub desired: u32,
    pub health_check_grace_seconds: u32,
    pub scaling: Option<Scaling>,
}

pub struct AutoScalingGroups;

/// The launch template version the group's instances were last rolled to: a new default version
/// (a new image) starts an instance refresh, so running instances get the new app too.
const TAG_ROLLED_VERSION: &str = "bookstore:launch-template-version";

fn policy_name(group: &str) -> String {
    format!("{group}-target-tracking")
}

/// `request-count:100` or `cpu:50`, as observed or as wanted.
fn policy_fact(metric: &str, target: f64) -> String {
    format!("{metric}:{target}")
}

fn wanted_policy(scaling: &Option<Scaling>) -> String {
    match scaling {
        None => String::new(),
        Some(s) => policy_fact(
            match s.metric {
                ScalingMetric::RequestCount => "request-count",
                ScalingMetric::Cpu => "cpu",
            },
            f64::from(s.target),
        ),
    }
}

fn sorted_ids(deps: &Deps, keys: &[Ref]) -> String {
    super::dep_ids(deps, keys).join(",")
}

/// Every target of the group's target groups, as the load balancer sees it.
async fn targets_of(cx: &Cx, o: &Observed) -> Result<Vec<super::target_group::Health>, AwsError> {
    let mut health = Vec::new();
    for tg in o
        .facts
        .get("target_groups")
        .into_iter()
        .flat_map(|t| t.split(','))
        .filter(|t| !t.is_empty())
    {
        health.extend(super::target_group::health(cx, tg).await?);
    }
    Ok(health)
}

/// `up` ends when the app answers: a group in service is ready once at least its minimum of
/// instances pass the load balancer's health check (the instances of this group only).
async fn with_target_health(cx: &Cx, mut o: Observed) -> Result<Observed, AwsError> {
    if !o.ready {
        return Ok(o);
    }
    let min: usize = o.facts.get("min").and_then(|m| m.parse().ok()).unwrap_or(0);
    let ids: Vec<String> = group_instances(&o).into_iter().map(|i| i.id).collect();
    let mut health = targets_of(cx, &o).await?;
    health.retain(|h| ids.contains(&h.id));
    let groups = o
        .fact("target_groups")
        .split(',')
        .filter(|t| !t.is_empty())
        .count();
    if groups > 0 {
        // An instance counts once it passes in every group (the split: each service's).
        let healthy = ids
            .iter()
            .filter(|id| {
                health
                    .iter()
                    .filter(|h| &h.id == *id && h.healthy())
                    .count()
                    >= groups
            })
            .count();
        if healthy < min {
            o.ready = false;
            let others = super::target_group::not_healthy(&health);
            o.attrs.insert(
                "waiting_for".into(),
                format!(
                    "{healthy} of at least {min} instances healthy in the load balancer{}",
                    if others.is_empty() {
                        " (none registered yet)".to_string()
                    } else {
                        format!(": {others}")
                    }
                ),
            );
        }
    }
    Ok(o)
}

/// One instance of the group, for `status`.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct GroupInstance {
    pub id: String,
    pub availability_zone: String,
    pub lifecycle: String,
    pub health: String,
}

fn instances_of(g: &AutoScalingGroup) -> Vec<GroupInstance> {
    g.instances()
        .iter()
        .map(|i| GroupInstance {
            id: i.instance_id().unwrap_or_default().to_string(),
            availability_zone: i.availability_zone().unwrap_or_default().to_string(),
            lifecycle: i
                .lifecycle_state()
                .map(|s| s.as_str())
                .unwrap_or_default()
                .to_string(),
            health: i.health_status().unwrap_or_default().to_string(),
        })
        .collect()
}

fn read(g: &AutoScalingGroup, policy: String) -> Observed {
    let tags: Vec<(&str, &str)> = g
        .tags()
        .iter()
        .filter_map(|t| Some((t.key()?, t.value()?)))
        .collect();
    let key = tags
        .iter()
        .find(|(k, _)| *k == TAG_KEY)
        .map(|(_, v)| *v)
        .unwrap_or_default();
    let name = g.auto_scaling_group_name().unwrap_or_default();
    let mut o = Observed::new(Kind::AutoScalingGroup, key, name);
    o.name = name.to_string();
    let min = g.min_size().unwrap_or_default();
    let instances = instances_of(g);
    let in_service = instances
        .iter()
        .filter(|i| i.lifecycle == "InService")
        .count() as i32;
    o.state = match g.status() {
        Some(s) => s.to_lowercase(),
        None => format!(
            "{in_service}/{} in service",
            g.desired_capacity().unwrap_or_default()
        ),
    };
    o.ready = g.status().is_none() && in_service >= min;
    if !o.ready {
        o.attrs.insert(
            "waiting_for".into(),
            format!("{in_service} of at least {min} instances in service"),
        );
    }
    let mut subnets: Vec<&str> = g
        .vpc_zone_identifier()
        .unwrap_or_default()
        .split(',')
        .filter(|s| !s.is_empty())
        .collect();
    subnets.sort();
    let mut target_groups: Vec<&str> = g.target_group_arns().iter().map(String::as_str).collect();
    target_groups.sort();
    let facts = [
        ("min", min.to_string()),
        ("max", g.max_size().unwrap_or_default().to_string()),
        (
            "desired",
            g.desired_capacity().unwrap_or_default().to_string(),
        ),
        ("subnets", subnets.join(",")),
        ("target_groups", target_groups.join(",")),
        (
            "health_check",
            g.health_check_type().unwrap_or_default().to_string(),
        ),
        (
            "launch_template",
            g.launch_template()
                .and_then(|t| t.launch_template_id())
                .unwrap_or_default()
                .to_string(),
        ),
        ("policy", policy),
        (
            "launch_template_version",
            tags.iter()
                .find(|(k, _)| *k == TAG_ROLLED_VERSION)
                .map(|(_, v)| v.to_string())
                .unwrap_or_default(),
        ),
    ];
    for (k, v) in facts {
        o.facts.insert(k.into(), v);
    }
    o.attrs.insert(
        "instances".into(),
        serde_json::to_string(&instances).unwrap_or_default(),
    );
    o
}

async fn observed_policy(cx: &Cx, group: &str) -> Result<String, AwsError> {
    let out = cx
        .autoscaling
        .describe_policies()
        .auto_scaling_group_name(group)
        .policy_names(policy_name(group))
        .send()
        .await?;
    Ok(out
        .scaling_policies()
        .first()
        .and_then(|p| p.target_tracking_configuration())
        .map(|t| {
            let metric = match t
                .predefined_metric_specification()
                .and_then(|m| m.predefined_metric_type())
            {
                Some(MetricType::AlbRequestCountPerTarget) => "request-count",
                Some(MetricType::AsgAverageCpuUtilization) => "cpu",
                _ => "other",
            };
            policy_fact(metric, t.target_value().unwrap_or_default())
        })
        .unwrap_or_default())
}

fn owned_by(cx: &Cx, g: &AutoScalingGroup) -> bool {
    cx.owner
        .owns(g.tags().iter().filter_map(|t| Some((t.key()?, t.value()?))))
}

async fn describe(cx: &Cx, name: &str) -> Result<Option<AutoScalingGroup>, AwsError> {
    let out = cx
        .autoscaling
        .describe_auto_scaling_groups()
        .auto_scaling_group_names(name)
        .send()
        .await?;
    Ok(out.auto_scaling_groups().first().cloned())
}

/// The ALB's metric label: `app/<lb-name>/<lb-id>/targetgroup/<tg-name>/<tg-id>`, from the ARNs.
fn resource_label(load_balancer_arn: &str, target_group_arn: &str) -> String {
    let lb = load_balancer_arn
        .split_once(":loadbalancer/")
        .map_or("", |(_, rest)| rest);
    let tg = target_group_arn
        .rsplit_once(':')
        .map_or("", |(_, rest)| rest);
    format!("{lb}/{tg}")
}

async fn put_policy(
    cx: &Cx,
    want: &Want<'_, AutoScalingGroupSpec>,
    deps: &Deps,
    group: &str,
) -> Result<(), AwsError> {
    let AutoScalingGroupSpec {
        target_groups,
        load_balancer,
        scaling: Some(scaling),
        ..
    } = want.spec
    else {
        return Ok(());
    };
    let target_group = target_groups.first().map_or("", |k| k.as_str());
    let metric = match scaling.metric {
        ScalingMetric::RequestCount => PredefinedMetricSpecification::builder()
            .predefined_metric_type(MetricType::AlbRequestCountPerTarget)
            .resource_label(resource_label(
                dep_id(deps, load_balancer),
                dep_id(deps, target_group),
            ))
            .build(),
        ScalingMetric::Cpu => PredefinedMetricSpecification::builder()
            .predefined_metric_type(MetricType::AsgAverageCpuUtilization)
            .build(),
    };
    cx.autoscaling
        .put_scaling_policy()
        .auto_scaling_group_name(group)
        .policy_name(policy_name(group))
        .policy_type("TargetTrackingScaling")
        .target_tracking_configuration(
            TargetTrackingConfiguration::builder()
                .predefined_metric_specification(metric)
                .target_value(f64::from(scaling.target))
                .build(),
        )
        .send()
        .await?;
    Ok(())
}

#[async_trait]
impl Module for AutoScalingGroups {
    type Spec = AutoScalingGroupSpec;

    fn drawing(&self, spec: &Self::Spec) -> Drawing {
        let detail = format!("auto scaling group {}–{}", spec.min, spec.max);
        Drawing {
            detail,
            place: Place::With(spec.launch_template.clone()),
        }
    }

    fn cost(&self, key: &str, spec: &Self::Spec, plan: &[Desired]) -> Vec<Charge> {
        let Some(Spec::LaunchTemplate(template)) = plan
            .iter()
            .find(|d| d.key == *spec.launch_template)
            .map(|d| &d.spec)
        else {
            return vec![];
        };
        let (instance_type, volume_gb, volume_type) = (
            &template.instance_type,
            template.volume_gb,
            &template.volume_type,
        );
        let Some(compute) = prices::ec2_hourly(instance_type) else {
            return vec![Charge::Unpriced(format!("{key} ({instance_type})"))];
        };
        let each = compute
            + prices::gb_month_hourly(volume_gb as f64, prices::ebs_gb_month(volume_type))
            + prices::PUBLIC_IPV4_HOURLY;
        vec![Charge::Hourly {
            key: key.to_string(),
            what: format!(
                "{} × ({instance_type} + {volume_gb} GB {volume_type} + public IPv4), more when it scales out",
                spec.desired
            ),
            usd: each * spec.desired as f64,
        }]
    }

    fn instances_started(&self, spec: &Self::Spec) -> u32 {
        spec.desired
    }
    /// The group launches instances from the launch template, as the caller: RunInstances, and PassRole for its instance profile.
    fn actions(&self) -> Actions {
        Actions {
            observe: &[
                "autoscaling:DescribeAutoScalingGroups",
                "autoscaling:DescribePolicies",
            ],
            change: &[
                "autoscaling:CreateAutoScalingGroup",
                "autoscaling:CreateOrUpdateTags",
                "autoscaling:UpdateAutoScalingGroup",
                "autoscaling:AttachLoadBalancerTargetGroups",
                "autoscaling:DetachLoadBalancerTargetGroups",
                "autoscaling:PutScalingPolicy",
                "autoscaling:StartInstanceRefresh",
                "autoscaling:DeleteAutoScalingGroup",
                "ec2:RunInstances",
                "ec2:CreateTags",
                "iam:PassRole",
            ],
        }
    }

    fn outputs(&self, have: &Observed) -> Vec<(String, String)> {
        vec![("auto_scaling_group".into(), have.id.clone())]
    }

    /// Each instance of the group with its lifecycle, EC2 health and target health.
    async fn details(
        &self,
        cx: &Cx,
        have: &Observed,
        all: &[Observed],
    ) -> Result<Vec<super::Section>, AwsError> {
        let health = targets_of(cx, have).await?;
        // A group's name for its port: the split's `tg-accounts` says `accounts`.
        let group_of = |port: i32| {
            all.iter()
                .find(|o| o.kind == Kind::TargetGroup && o.fact("port") == port.to_string())
                .and_then(|o| o.key.strip_prefix("tg-"))
                .map_or(format!(":{port}"), str::to_string)
        };
        let rows = group_instances(have)
            .into_iter()
            .map(|i| {
                let mut targets: Vec<_> = health.iter().filter(|h| h.id == i.id).collect();
                targets.sort_by_key(|h| h.port);
                // One word when the groups agree; each port's state when they do not (the
                // split: a service down on an instance whose others answer), by group name.
                let (target, reason) = match targets.as_slice() {
                    [] => ("not registered".to_string(), String::new()),
                    [one, rest @ ..] if rest.iter().all(|h| h.state == one.state) => {
                        (one.state.clone(), one.reason.clone())
                    }
                    each => (
                        each.iter()
                            .map(|h| format!("{} {}", group_of(h.port), h.state))
                            .collect::<Vec<_>>()
                            .join(", "),
                        each.iter()
                            .filter(|h| !h.reason.is_empty())
                            .map(|h| format!("{} {}", group_of(h.port), h.reason))
                            .collect::<Vec<_>>()
                            .join(", "),
                    ),
                };
                BTreeMap::from([
                    ("id".into(), i.id),
                    ("availability_zone".into(), i.availability_zone),
                    ("lifecycle".into(), i.lifecycle),
                    ("health".into(), i.health),
                    ("target_health".into(), target),
                    ("target_reason".into(), reason),
                ])
            })
            .collect();
        Ok(vec![super::Section {
            name: "instances".into(),
            rows,
        }])
    }

    fn teardown_after(&self) -> &'static [Kind] {
        &[]
    }

    /// The unhealthy targets with the load balancer's reasons, and the last console lines of one
    /// instance that fails its health check.
    async fn diagnose(&self, cx: &Cx, have: &Observed) -> Option<String> {
        let waiting = have.attrs.get("waiting_for")?.clone();
        let failing = targets_of(cx, have)
            .await
            .ok()
            .and_then(|health| health.into_iter().find(|h| h.state == "unhealthy"));
        let Some(failing) = failing else {
            return Some(waiting);
        };
        let console = super::instance::console_tail(cx, &failing.id, 12)
            .await
            .unwrap_or_else(|e| format!("(its console could not be read: {e})"));
        Some(format!(
            "{waiting}\nlast console lines of {}:\n{console}",
            failing.id
        ))
    }

    fn budget(&self) -> Budget {
        // Instances boot in 1-2 minutes; the group needs them in service and answering.
        Budget {
            ready: Duration::from_secs(900),
            poll_max: Duration::from_secs(15),
        }
    }

    async fn observe(&self, cx: &Cx) -> Result<Vec<Observed>, AwsError> {
        let groups: Vec<AutoScalingGroup> = cx
            .autoscaling
            .describe_auto_scaling_groups()
            .into_paginator()
            .items()
            .send()
            .collect::<Result<Vec<_>, _>>()
            .await?;
        let mut found = Vec::new();
        for g in groups.iter().filter(|g| owned_by(cx, g)) {
            let name = g.auto_scaling_group_name().unwrap_or_default();
            found.push(with_target_health(cx, read(g, observed_policy(cx, name).await?)).await?);
        }
        Ok(found)
    }

    async fn refresh(&self, cx: &Cx, have: &Observed) -> Result<Option<Observed>, AwsError> {
        let Some(g) = describe(cx, &have.id).await? else {
            return Ok(None);
        };
        let policy = observed_policy(cx, &have.id).await?;
        let o = Observed {
            owned: owned_by(cx, &g),
            ..read(&g, policy)
        };
        Ok(Some(with_target_health(cx, o).await?))
    }

    async fn create(
        &self,
        cx: &Cx,
        want: &Want<'_, AutoScalingGroupSpec>,
        deps: &Deps,
    ) -> Result<Observed, AwsError> {
        let AutoScalingGroupSpec {
            launch_template,
            subnets,
            target_groups,
            min,
            max,
            desired,
            health_check_grace_seconds,
            ..
        } = want.spec;
        let tags = cx
            .owner
            .tags(want.key, want.name)
            .into_iter()
            .map(|(k, v)| {
                // Instances get the tags too: `Name` and ownership, for the console and for `down`.
                Tag::builder()
                    .resource_id(want.name)
                    .resource_type("auto-scaling-group")
                    .key(k)
                    .value(v)
                    .propagate_at_launch(true)
                    .build()
            })
            .collect();
        let mut tags: Vec<Tag> = tags;
        tags.push(version_tag(want.name, deps, launch_template));
        let subnet_ids: Vec<&str> = subnets.iter().map(|k| dep_id(deps, k)).collect();
        cx.autoscaling
            .create_auto_scaling_group()
            .auto_scaling_group_name(want.name)
            .launch_template(
                LaunchTemplateSpecification::builder()
                    .launch_template_id(dep_id(deps, launch_template))
                    .version("$Default")
                    .build(),
            )
            .min_size(*min as i32)
            .max_size(*max as i32)
            .desired_capacity(*desired as i32)
            .vpc_zone_identifier(subnet_ids.join(","))
            .set_target_group_arns(Some(super::dep_ids(deps, target_groups)))
            .health_check_type("ELB")
            .health_check_grace_period(*health_check_grace_seconds as i32)
            .default_instance_warmup(120)
            .set_tags(Some(tags))
            .send()
            .await?;
        put_policy(cx, want, deps, want.name).await?;
        let g = describe(cx, want.name)
            .await?
            .ok_or_else(|| AwsError::other("the new Auto Scaling group is not listed"))?;
        with_target_health(cx, read(&g, observed_policy(cx, want.name).await?)).await
    }

    fn expected_facts(
        &self,
        want: &Want<'_, AutoScalingGroupSpec>,
        deps: &Deps,
    ) -> BTreeMap<String, String> {
        let AutoScalingGroupSpec {
            launch_template,
            subnets,
            target_groups,
            min,
            max,
            desired,
            scaling,
            ..
        } = want.spec;
        BTreeMap::from([
            ("min".into(), min.to_string()),
            ("max".into(), max.to_string()),
            ("desired".into(), desired.to_string()),
            ("subnets".into(), sorted_ids(deps, subnets)),
            ("target_groups".into(), sorted_ids(deps, target_groups)),
            ("health_check".into(), "ELB".into()),
            (
                "launch_template".into(),
                dep_id(deps, launch_template).to_string(),
            ),
            ("policy".into(), wanted_policy(scaling)),
            (
                "launch_template_version".into(),
                wanted_version(deps, launch_template).to_string(),
            ),
        ])
    }

    async fn update(
        &self,
        cx: &Cx,
        want: &Want<'_, AutoScalingGroupSpec>,
        have: &Observed,
        deps: &Deps,
    ) -> Result<bool, AwsError> {
        let AutoScalingGroupSpec {
            launch_template,
            subnets,
            target_groups,
            min,
            max,
            desired,
            health_check_grace_seconds,
            scaling,
            ..
        } = want.spec;
        let subnet_ids: Vec<&str> = subnets.iter().map(|k| dep_id(deps, k)).collect();
        cx.autoscaling
            .update_auto_scaling_group()
            .auto_scaling_group_name(&have.id)
            .launch_template(
                LaunchTemplateSpecification::builder()
                    .launch_template_id(dep_id(deps, launch_template))
                    .version("$Default")
                    .build(),
            )
            .min_size(*min as i32)
            .max_size(*max as i32)
            .desired_capacity(*desired as i32)
            .vpc_zone_identifier(subnet_ids.join(","))
            .health_check_type("ELB")
            .health_check_grace_period(*health_check_grace_seconds as i32)
            .send()
            .await?;
        let wanted_tgs = super::dep_ids(deps, target_groups);
        if have.fact("target_groups") != wanted_tgs.join(",") {
            cx.autoscaling
                .attach_load_balancer_target_groups()
                .auto_scaling_group_name(&have.id)
                .set_target_group_arns(Some(wanted_tgs.clone()))
                .send()
                .await?;
            // From single to split and back: the groups no longer planned stop receiving
            // instances before they are deleted.
            let extra: Vec<String> = have
                .fact("target_groups")
                .split(',')
                .filter(|t| !t.is_empty() && !wanted_tgs.iter().any(|w| w == t))
                .map(str::to_string)
                .collect();
            if !extra.is_empty() {
                cx.autoscaling
                    .detach_load_balancer_target_groups()
                    .auto_scaling_group_name(&have.id)
                    .set_target_group_arns(Some(extra))
                    .send()
                    .await?;
            }
        }
        if have.facts.get("policy") != Some(&wanted_policy(scaling)) {
            put_policy(cx, want, deps, &have.id).await?;
        }
        let version = wanted_version(deps, launch_template);
        if have
            .facts
            .get("launch_template_version")
            .map(String::as_str)
            != Some(version)
        {
            roll(cx, &have.id).await?;
            cx.autoscaling
                .create_or_update_tags()
                .tags(version_tag(&have.id, deps, launch_template))
                .send()
                .await?;
        }
        Ok(true)
    }

    async fn delete(&self, cx: &Cx, have: &Observed) -> Result<(), AwsError> {
        if have.state.contains("delete") {
            return Ok(());
        }
        // ForceDelete terminates the instances with the group instead of refusing.
        cx.autoscaling
            .delete_auto_scaling_group()
            .auto_scaling_group_name(&have.id)
            .force_delete(true)
            .send()
            .await?;
        Ok(())
    }
}

/// The launch template's default version: what the instances should run.
fn wanted_version<'a>(deps: &'a Deps, launch_template: &str) -> &'a str {
    deps.get(launch_template)
        .map(|lt| lt.attr("default_version"))
        .unwrap_or_default()
}

fn version_tag(group: &str, deps: &Deps, launch_template: &str) -> Tag {
    Tag::builder()
        .resource_id(group)
        .resource_type("auto-scaling-group")
        .key(TAG_ROLLED_VERSION)
        .value(wanted_version(deps, launch_template))
        .propagate_at_launch(false)
        .build()
}

/// Replaces the running instances with ones from the current launch template, half at a time so
/// the app stays up; instances already on it are skipped. One already rolling is left to finish.
async fn roll(cx: &Cx, group: &str) -> Result<(), AwsError> {
    let preferences = aws_sdk_autoscaling::types::RefreshPreferences::builder()
        .min_healthy_percentage(50)
        .skip_matching(true)
        .build();
    match cx
        .autoscaling
        .start_instance_refresh()
        .auto_scaling_group_name(group)
        .preferences(preferences)
        .send()
        .await
    {
        Ok(_) => Ok(()),
        Err(e) => {
            let e = AwsError::from(e);
            if e.code.as_deref() == Some("InstanceRefreshInProgress") {
                Ok(())
            } else {
                Err(e)
            }
        }
    }
}

/// The group's instances as last observed, for `status`.
pub fn group_instances(group: &Observed) -> Vec<GroupInstance> {
    serde_json::from_str(group.attr("instances")).unwrap_or_default()
}
