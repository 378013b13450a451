//! The EKS cluster (the eks stack) on the account's own cluster role, found by name (the Learner
//! Lab's carries a prefix and a suffix; no role is ever made). Standard support only: a cluster
//! made through the API gets extended support ($0.60 an hour instead of $0.10) unless its upgrade
//! policy says STANDARD. Access by the API's access entries, the creator an admin: the CLI applies
//! the app's objects with the caller's own credentials.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_eks::types::{
    AuthenticationMode, CreateAccessConfigRequest, SupportType, UpgradePolicyRequest,
    VpcConfigRequest,
};
use serde::Serialize;

use super::{
    Actions, AwsError, Budget, Charge, Cx, Deps, Desired, Drawing, Module, Observed, Place, Want,
    gone_if_not_found, name_prefix,
};
use crate::kinds::Kind;
use crate::prices;
use crate::reference::Ref;

/// What the plan says the cluster should be.
#[derive(Debug, Clone, Serialize)]
pub struct ClusterSpec {
    /// A minor version in standard support ("1.35").
    pub version: String,
    /// What the cluster role's name contains ("LabEksClusterRole").
    pub role: String,
    /// The control plane's network interfaces go in these (two zones at least).
    pub subnets: Vec<Ref>,
}

pub struct Clusters;

/// The one IAM role whose name contains `part` (an exact name wins); its ARN. The lab's roles are
/// `<prefix>-LabEksClusterRole-<suffix>`: never a hard-coded ARN.
pub async fn find_role(cx: &Cx, part: &str) -> Result<String, AwsError> {
    let mut found: Vec<(String, String)> = Vec::new();
    let mut pages = cx.iam.list_roles().into_paginator().send();
    while let Some(page) = pages.next().await {
        for r in page?.roles() {
            if r.role_name().contains(part) {
                found.push((r.role_name().to_string(), r.arn().to_string()));
            }
        }
    }
    if let Some((_, arn)) = found.iter().find(|(name, _)| name == part) {
        return Ok(arn.clone());
    }
    match found.as_slice() {
        [(_, arn)] => Ok(arn.clone()),
        [] => Err(AwsError {
            code: Some("NoSuchRole".into()),
            message: format!(
                "no IAM role in this account has `{part}` in its name: the Learner Lab makes one (start the lab), and elsewhere name yours under `kubernetes:`"
            ),
            class: super::ErrorClass::Other,
        }),
        many => Err(AwsError::other(format!(
            "several IAM roles have `{part}` in their name ({}): give the whole name under `kubernetes:`",
            many.iter()
                .map(|(n, _)| n.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ))),
    }
}

/// An EKS resource (cluster, node group) from its tag map: its plan key and whether it is ours.
pub fn eks_observed(
    cx: &Cx,
    kind: Kind,
    tags: Option<&HashMap<String, String>>,
    id: String,
) -> Observed {
    let tag = |k: &str| tags.and_then(|t| t.get(k)).map(String::as_str);
    let mut o = Observed::new(kind, tag(super::TAG_KEY).unwrap_or_default(), id);
    o.owned = cx.owner.owns(
        tags.into_iter()
            .flatten()
            .map(|(k, v)| (k.as_str(), v.as_str())),
    );
    o
}

fn read(cx: &Cx, c: &aws_sdk_eks::types::Cluster) -> Observed {
    let name = c.name().unwrap_or_default().to_string();
    let mut o = eks_observed(cx, Kind::Cluster, c.tags(), name);
    o.name = o.id.clone();
    o.attrs.insert("region".into(), cx.region.clone());
    o.state = c
        .status()
        .map(|s| s.as_str().to_lowercase())
        .unwrap_or_default();
    o.ready = o.state == "active";
    if !o.ready {
        o.attrs.insert(
            "waiting_for".into(),
            format!(
                "the cluster is {} (EKS takes about 15 minutes to make one)",
                o.state
            ),
        );
    }
    let vpc = c.resources_vpc_config();
    for (name, value) in [
        ("arn", c.arn()),
        ("endpoint", c.endpoint()),
        (
            "certificate_authority",
            c.certificate_authority().and_then(|a| a.data()),
        ),
        (
            "cluster_security_group",
            vpc.and_then(|v| v.cluster_security_group_id()),
        ),
    ] {
        o.attrs
            .insert(name.into(), value.unwrap_or_default().to_string());
    }
    o.facts.insert(
        "version".into(),
        c.version().unwrap_or_default().to_string(),
    );
    o.facts.insert(
        "support".into(),
        c.upgrade_policy()
            .and_then(|p| p.support_type())
            .map(|s| s.as_str().to_string())
            .unwrap_or_default(),
    );
    o.facts.insert(
        "authentication".into(),
        c.access_config()
            .and_then(|a| a.authentication_mode())
            .map(|m| m.as_str().to_string())
            .unwrap_or_default(),
    );
    let mut subnets: Vec<String> = vpc.map(|v| v.subnet_ids().to_vec()).unwrap_or_default();
    subnets.sort();
    o.facts.insert("subnets".into(), subnets.join(","));
    o
}

#[async_trait]
impl Module for Clusters {
    type Spec = ClusterSpec;

    fn budget(&self) -> Budget {
        // EKS makes a control plane in about 15 minutes, sometimes 25.
        Budget {
            ready: Duration::from_secs(35 * 60),
            poll_max: Duration::from_secs(30),
        }
    }

    fn drawing(&self, spec: &Self::Spec) -> Drawing {
        Drawing {
            detail: format!("EKS cluster {} (control plane)", spec.version),
            place: Place::Stores,
        }
    }

    fn cost(&self, key: &str, spec: &Self::Spec, _plan: &[Desired]) -> Vec<Charge> {
        vec![Charge::Hourly {
            key: key.to_string(),
            what: format!("EKS cluster {} (standard support)", spec.version),
            usd: prices::EKS_CLUSTER_HOURLY,
        }]
    }

    fn instances_started(&self, _spec: &Self::Spec) -> u32 {
        0
    }

    fn actions(&self) -> Actions {
        Actions {
            observe: &["eks:ListClusters", "eks:DescribeCluster"],
            change: &[
                "eks:CreateCluster",
                "eks:TagResource",
                "eks:DeleteCluster",
                "iam:ListRoles",
                "iam:PassRole",
            ],
        }
    }

    fn teardown_after(&self) -> &'static [Kind] {
        &[Kind::NodeGroup, Kind::Workload]
    }

    fn replace_fields(&self) -> &'static [&'static str] {
        &["subnets"]
    }

    fn stuck_hint(&self, _want: &Want<'_, ClusterSpec>) -> &'static str {
        "differs from the stack; a cluster's version and upgrade policy are changed by `bookstore down` then `up` in this version (it recreates the cluster)"
    }

    fn outputs(&self, have: &Observed) -> Vec<(String, String)> {
        vec![
            ("cluster".into(), have.id.clone()),
            (
                "kubeconfig".into(),
                format!(
                    "aws eks update-kubeconfig --name {} --region {}",
                    have.id,
                    have.attr("region")
                ),
            ),
        ]
    }

    async fn observe(&self, cx: &Cx) -> Result<Vec<Observed>, AwsError> {
        // Our clusters' names start with the env's prefix: only those are worth a describe.
        let prefix = format!("{}-", name_prefix(&cx.owner.stack, &cx.owner.env));
        let mut found = Vec::new();
        let mut pages = cx.eks.list_clusters().into_paginator().send();
        while let Some(page) = pages.next().await {
            for name in page?.clusters() {
                if !name.starts_with(&prefix) {
                    continue;
                }
                let probe = Observed::new(Kind::Cluster, "", name.as_str());
                // Gone between the list and the describe: `None`.
                if let Some(o) = self.refresh(cx, &probe).await?
                    && o.owned
                {
                    found.push(o);
                }
            }
        }
        Ok(found)
    }

    async fn refresh(&self, cx: &Cx, have: &Observed) -> Result<Option<Observed>, AwsError> {
        match cx.eks.describe_cluster().name(&have.id).send().await {
            Ok(out) => Ok(out.cluster().map(|c| read(cx, c))),
            Err(e) => gone_if_not_found(e.into()),
        }
    }

    async fn create(
        &self,
        cx: &Cx,
        want: &Want<'_, ClusterSpec>,
        deps: &Deps,
    ) -> Result<Observed, AwsError> {
        let role = find_role(cx, &want.spec.role).await?;
        let tags: HashMap<String, String> =
            cx.owner.tags(want.key, want.name).into_iter().collect();
        let out = cx
            .eks
            .create_cluster()
            .name(want.name)
            .version(&want.spec.version)
            .role_arn(role)
            .resources_vpc_config(
                VpcConfigRequest::builder()
                    .set_subnet_ids(Some(super::dep_ids(deps, &want.spec.subnets)))
                    // The CLI applies the app's objects from outside; the nodes reach it inside.
                    .endpoint_public_access(true)
                    .endpoint_private_access(true)
                    .build(),
            )
            .upgrade_policy(
                UpgradePolicyRequest::builder()
                    .support_type(SupportType::Standard)
                    .build(),
            )
            .access_config(
                CreateAccessConfigRequest::builder()
                    .authentication_mode(AuthenticationMode::Api)
                    .bootstrap_cluster_creator_admin_permissions(true)
                    .build(),
            )
            .set_tags(Some(tags))
            .send()
            .await?;
        let c = out
            .cluster()
            .ok_or_else(|| AwsError::other("CreateCluster returned no cluster"))?;
        Ok(read(cx, c))
    }

    fn expected_facts(
        &self,
        want: &Want<'_, ClusterSpec>,
        deps: &Deps,
    ) -> BTreeMap<String, String> {
        let subnets = super::dep_ids(deps, &want.spec.subnets);
        BTreeMap::from([
            ("version".into(), want.spec.version.clone()),
            ("support".into(), "STANDARD".into()),
            ("authentication".into(), "API".into()),
            ("subnets".into(), subnets.join(",")),
        ])
    }

    async fn delete(&self, cx: &Cx, have: &Observed) -> Result<(), AwsError> {
        cx.eks.delete_cluster().name(&have.id).send().await?;
        Ok(())
    }
}
