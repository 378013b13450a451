//! The eks stack's managed node group on the account's node role (found by name, as the cluster's):
//! EKS's Amazon Linux 2023 image, the stack's instance type, the nodes' hardened launch template,
//! on-demand, one node replaced at a time. Its nodes are what the 9-instance guard counts. The
//! group's Auto Scaling group (EKS's, found through the group) is attached to the load balancer's
//! target group once the group is active: the one change made to a resource EKS owns, which EKS
//! documents as supported and keeps across node updates.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_eks::types::{
    AmiTypes, CapacityTypes, LaunchTemplateSpecification, NodegroupScalingConfig,
    NodegroupUpdateConfig,
};
use serde::Serialize;

use super::{
    Actions, AwsError, Budget, Charge, Cx, Deps, Desired, Drawing, Module, Observed, Place,
    Section, Spec, Want, dep_id, gone_if_not_found, name_prefix,
};
use crate::kinds::Kind;
use crate::prices;
use crate::reference::Ref;

/// What the plan says the node group should be.
#[derive(Debug, Clone, Serialize)]
pub struct NodeGroupSpec {
    pub cluster: Ref,
    pub template: Ref,
    pub subnets: Vec<Ref>,
    /// What the node role's name contains ("LabEksNodeRole").
    pub role: String,
    /// The load balancer's target groups (one per service of the split): EKS's Auto Scaling group
    /// of the nodes is attached to them, so nodes are registered as they come and go (a replaced
    /// node included).
    pub target_groups: Vec<Ref>,
    pub instance_type: String,
    pub nodes: u32,
}

pub struct NodeGroups;

/// A node group is named within its cluster: its id is `cluster/nodegroup`, so the journal's id
/// alone finds it again.
fn split(id: &str) -> (&str, &str) {
    id.split_once('/').unwrap_or((id, ""))
}

/// The names of EKS's Auto Scaling groups of a node group (one; none while it is being made).
fn groups_of(g: &aws_sdk_eks::types::Nodegroup) -> Vec<String> {
    g.resources()
        .map(|r| r.auto_scaling_groups())
        .unwrap_or_default()
        .iter()
        .filter_map(|a| a.name().map(str::to_string))
        .collect()
}

/// The target groups attached to the node group's Auto Scaling groups, sorted.
async fn target_groups(cx: &Cx, groups: &[String]) -> Result<Vec<String>, AwsError> {
    let mut arns = Vec::new();
    for group in groups {
        let out = match cx
            .autoscaling
            .describe_load_balancer_target_groups()
            .auto_scaling_group_name(group)
            .send()
            .await
        {
            Ok(out) => out,
            Err(e) => {
                let e = AwsError::from(e);
                // Gone with the node group being deleted: nothing attached. (Auto Scaling says
                // so with a ValidationError, "AutoScalingGroup name not found".)
                if e.code.as_deref() == Some("ValidationError") && e.message.contains("not found") {
                    continue;
                }
                return Err(e);
            }
        };
        arns.extend(
            out.load_balancer_target_groups()
                .iter()
                .filter_map(|t| t.load_balancer_target_group_arn().map(str::to_string)),
        );
    }
    arns.sort();
    Ok(arns)
}

fn read(cx: &Cx, g: &aws_sdk_eks::types::Nodegroup) -> Observed {
    let cluster = g.cluster_name().unwrap_or_default();
    let name = g.nodegroup_name().unwrap_or_default();
    let mut o =
        super::cluster::eks_observed(cx, Kind::NodeGroup, g.tags(), format!("{cluster}/{name}"));
    o.name = name.to_string();
    o.state = g
        .status()
        .map(|s| s.as_str().to_lowercase())
        .unwrap_or_default();
    o.ready = o.state == "active";
    if !o.ready {
        o.attrs.insert(
            "waiting_for".into(),
            format!("the node group is {} (its nodes start and join)", o.state),
        );
    }
    let scaling = g.scaling_config();
    o.facts.insert(
        "nodes".into(),
        format!(
            "{}..{} desired {}",
            scaling.and_then(|s| s.min_size()).unwrap_or_default(),
            scaling.and_then(|s| s.max_size()).unwrap_or_default(),
            scaling.and_then(|s| s.desired_size()).unwrap_or_default()
        ),
    );
    o.facts
        .insert("instance_types".into(), g.instance_types().join(","));
    o.facts.insert(
        "template".into(),
        g.launch_template()
            .map(|t| {
                format!(
                    "{} v{}",
                    t.id().unwrap_or_default(),
                    t.version().unwrap_or_default()
                )
            })
            .unwrap_or_default(),
    );
    o
}

#[async_trait]
impl Module for NodeGroups {
    type Spec = NodeGroupSpec;

    fn budget(&self) -> Budget {
        // Nodes start and join in minutes; a failing group takes 20 or more to say so.
        Budget {
            ready: Duration::from_secs(30 * 60),
            poll_max: Duration::from_secs(20),
        }
    }

    fn drawing(&self, spec: &Self::Spec) -> Drawing {
        Drawing {
            detail: format!("EKS node group {} × {}", spec.nodes, spec.instance_type),
            place: Place::With(spec.template.clone()),
        }
    }

    fn cost(&self, key: &str, spec: &Self::Spec, plan: &[Desired]) -> Vec<Charge> {
        let Some(compute) = prices::ec2_hourly(&spec.instance_type) else {
            return vec![Charge::Unpriced(format!("{key} ({})", spec.instance_type))];
        };
        let disk = match plan
            .iter()
            .find(|d| d.key == *spec.template)
            .map(|d| &d.spec)
        {
            Some(Spec::NodeTemplate(t)) => {
                prices::gb_month_hourly(t.volume_gb as f64, prices::ebs_gb_month(&t.volume_type))
            }
            _ => 0.0,
        };
        vec![Charge::Hourly {
            key: key.to_string(),
            what: format!(
                "{} × ({} + root volume + public IPv4)",
                spec.nodes, spec.instance_type
            ),
            usd: spec.nodes as f64 * (compute + disk + prices::PUBLIC_IPV4_HOURLY),
        }]
    }

    fn instances_started(&self, spec: &Self::Spec) -> u32 {
        spec.nodes
    }

    fn actions(&self) -> Actions {
        Actions {
            observe: &[
                "eks:ListClusters",
                "eks:ListNodegroups",
                "eks:DescribeNodegroup",
                "ec2:DescribeInstances",
                "autoscaling:DescribeLoadBalancerTargetGroups",
            ],
            change: &[
                "eks:CreateNodegroup",
                "autoscaling:AttachLoadBalancerTargetGroups",
                "autoscaling:DetachLoadBalancerTargetGroups",
                "eks:TagResource",
                "eks:DeleteNodegroup",
                "iam:ListRoles",
                "iam:PassRole",
                "ec2:RunInstances",
                "ec2:CreateTags",
            ],
        }
    }

    fn teardown_after(&self) -> &'static [Kind] {
        &[Kind::Workload]
    }

    fn replace_fields(&self) -> &'static [&'static str] {
        &["instance_types", "template"]
    }

    /// Each node of the group (EKS tags them with its name): id, zone, type and state.
    async fn details(
        &self,
        cx: &Cx,
        have: &Observed,
        _all: &[Observed],
    ) -> Result<Vec<Section>, AwsError> {
        let (cluster, name) = split(&have.id);
        let tag = |k: &str, v: &str| {
            aws_sdk_ec2::types::Filter::builder()
                .name(format!("tag:{k}"))
                .values(v)
                .build()
        };
        let mut rows = Vec::new();
        let mut pages = cx
            .ec2
            .describe_instances()
            .filters(tag("eks:cluster-name", cluster))
            .filters(tag("eks:nodegroup-name", name))
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            for i in page?.reservations().iter().flat_map(|r| r.instances()) {
                let state = i
                    .state()
                    .and_then(|s| s.name())
                    .map(|n| n.as_str().to_string())
                    .unwrap_or_default();
                if state == "terminated" {
                    continue;
                }
                rows.push(BTreeMap::from([
                    ("id".into(), i.instance_id().unwrap_or_default().to_string()),
                    (
                        "availability_zone".into(),
                        i.placement()
                            .and_then(|p| p.availability_zone())
                            .unwrap_or_default()
                            .to_string(),
                    ),
                    (
                        "instance_type".into(),
                        i.instance_type()
                            .map(|t| t.as_str().to_string())
                            .unwrap_or_default(),
                    ),
                    ("state".into(), state),
                ]));
            }
        }
        Ok(vec![Section {
            name: "nodes".into(),
            rows,
        }])
    }

    async fn observe(&self, cx: &Cx) -> Result<Vec<Observed>, AwsError> {
        let prefix = format!("{}-", name_prefix(&cx.owner.stack, &cx.owner.env));
        let mut found = Vec::new();
        let mut clusters = cx.eks.list_clusters().into_paginator().send();
        while let Some(page) = clusters.next().await {
            for cluster in page?.clusters() {
                if !cluster.starts_with(&prefix) {
                    continue;
                }
                let mut groups = cx
                    .eks
                    .list_nodegroups()
                    .cluster_name(cluster)
                    .into_paginator()
                    .send();
                while let Some(page) = groups.next().await {
                    for name in page?.nodegroups() {
                        let id = format!("{cluster}/{name}");
                        let probe = Observed::new(Kind::NodeGroup, "", id);
                        if let Some(o) = self.refresh(cx, &probe).await?
                            && o.owned
                        {
                            found.push(o);
                        }
                    }
                }
            }
        }
        Ok(found)
    }

    async fn refresh(&self, cx: &Cx, have: &Observed) -> Result<Option<Observed>, AwsError> {
        let (cluster, name) = split(&have.id);
        match cx
            .eks
            .describe_nodegroup()
            .cluster_name(cluster)
            .nodegroup_name(name)
            .send()
            .await
        {
            Ok(out) => match out.nodegroup() {
                Some(g) => {
                    let mut o = read(cx, g);
                    let attached = target_groups(cx, &groups_of(g)).await?;
                    o.facts.insert("target_groups".into(), attached.join(","));
                    Ok(Some(o))
                }
                None => Ok(None),
            },
            Err(e) => gone_if_not_found(e.into()),
        }
    }

    fn converge_after_create(&self) -> bool {
        true
    }

    /// The one thing brought in place: the nodes' Auto Scaling group attached to the target
    /// groups (the rest replaces the group).
    async fn update(
        &self,
        cx: &Cx,
        want: &Want<'_, NodeGroupSpec>,
        have: &Observed,
        deps: &Deps,
    ) -> Result<bool, AwsError> {
        let expected = self.expected_facts(want, deps);
        if have.facts.get("target_groups") == expected.get("target_groups") {
            return Ok(true);
        }
        // Described again: `have` may be what CreateNodegroup answered, before EKS made the group.
        let (cluster, name) = split(&have.id);
        let out = cx
            .eks
            .describe_nodegroup()
            .cluster_name(cluster)
            .nodegroup_name(name)
            .send()
            .await?;
        let groups = out.nodegroup().map(groups_of).unwrap_or_default();
        if groups.is_empty() {
            return Err(AwsError::other(format!(
                "the node group {name} has no Auto Scaling group yet"
            )));
        }
        let wanted = super::dep_ids(deps, &want.spec.target_groups);
        let had = have.fact("target_groups");
        // From single to split and back: the groups no longer planned stop receiving nodes
        // before they are deleted.
        let extra: Vec<String> = had
            .split(',')
            .filter(|t| !t.is_empty() && !wanted.iter().any(|w| w == t))
            .map(str::to_string)
            .collect();
        for group in groups {
            cx.autoscaling
                .attach_load_balancer_target_groups()
                .auto_scaling_group_name(&group)
                .set_target_group_arns(Some(wanted.clone()))
                .send()
                .await?;
            if !extra.is_empty() {
                cx.autoscaling
                    .detach_load_balancer_target_groups()
                    .auto_scaling_group_name(&group)
                    .set_target_group_arns(Some(extra.clone()))
                    .send()
                    .await?;
            }
        }
        Ok(true)
    }

    async fn create(
        &self,
        cx: &Cx,
        want: &Want<'_, NodeGroupSpec>,
        deps: &Deps,
    ) -> Result<Observed, AwsError> {
        let role = super::cluster::find_role(cx, &want.spec.role).await?;
        let template = deps
            .get(want.spec.template.as_str())
            .ok_or_else(|| AwsError::other("the nodes' launch template is not made yet"))?;
        let tags: HashMap<String, String> =
            cx.owner.tags(want.key, want.name).into_iter().collect();
        let n = want.spec.nodes as i32;
        let out = cx
            .eks
            .create_nodegroup()
            .cluster_name(dep_id(deps, &want.spec.cluster))
            .nodegroup_name(want.name)
            .node_role(role)
            .set_subnets(Some(super::dep_ids(deps, &want.spec.subnets)))
            // One more than the nodes: room for the new node of a rolling update.
            .scaling_config(
                NodegroupScalingConfig::builder()
                    .min_size(n)
                    .max_size(n + 1)
                    .desired_size(n)
                    .build(),
            )
            .update_config(NodegroupUpdateConfig::builder().max_unavailable(1).build())
            .instance_types(&want.spec.instance_type)
            .ami_type(AmiTypes::Al2023X8664Standard)
            .capacity_type(CapacityTypes::OnDemand)
            .launch_template(
                LaunchTemplateSpecification::builder()
                    .id(&template.id)
                    .version(template.attr("version"))
                    .build(),
            )
            .set_tags(Some(tags))
            .send()
            .await?;
        let g = out
            .nodegroup()
            .ok_or_else(|| AwsError::other("CreateNodegroup returned no node group"))?;
        Ok(read(cx, g))
    }

    fn expected_facts(
        &self,
        want: &Want<'_, NodeGroupSpec>,
        deps: &Deps,
    ) -> BTreeMap<String, String> {
        let n = want.spec.nodes;
        let template = deps
            .get(want.spec.template.as_str())
            .map(|t| format!("{} v{}", t.id, t.attr("version")))
            .unwrap_or_default();
        BTreeMap::from([
            ("nodes".into(), format!("{n}..{} desired {n}", n + 1)),
            ("instance_types".into(), want.spec.instance_type.clone()),
            ("template".into(), template),
            (
                "target_groups".into(),
                super::dep_ids(deps, &want.spec.target_groups).join(","),
            ),
        ])
    }

    async fn delete(&self, cx: &Cx, have: &Observed) -> Result<(), AwsError> {
        let (cluster, name) = split(&have.id);
        cx.eks
            .delete_nodegroup()
            .cluster_name(cluster)
            .nodegroup_name(name)
            .send()
            .await?;
        Ok(())
    }
}
