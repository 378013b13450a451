//! The launch template of the eks stack's nodes: the hardened launch every machine of bookstore
//! gets (IMDSv2 with one hop, so a pod never reaches the node role's credentials; an encrypted
//! root volume), in EKS's cluster security group and the nodes' own. No image, instance type,
//! profile or user data: EKS brings its node image and joins the nodes itself (a managed node
//! group refuses a template with an instance profile).

use std::collections::BTreeMap;

use async_trait::async_trait;
use aws_sdk_ec2::types::{RequestLaunchTemplateData, ResourceType};
use serde::Serialize;

use super::{
    Actions, AwsError, Charge, Cx, Deps, Desired, Drawing, Module, Observed, Place, TAG_KEY,
    TAG_KIND, Want, dep_id, ec2_tag, ec2_tag_pairs, gone_if_not_found,
};
use crate::kinds::Kind;
use crate::reference::Ref;

/// What the plan says the nodes' launch template should be.
#[derive(Debug, Clone, Serialize)]
pub struct NodeTemplateSpec {
    /// The cluster whose security group the nodes join (EKS's own, for the control plane).
    pub cluster: Ref,
    /// The nodes' own group (the NodePort from the load balancer).
    pub security_group: Ref,
    pub volume_gb: u32,
    pub volume_type: String,
    /// The covers' file system: each node makes the app's directory on it as it boots, so its
    /// mount targets must exist first.
    pub file_system: Ref,
    pub mount_targets: Vec<Ref>,
    pub region: String,
}

pub struct NodeTemplates;

const KIND_TAG: &str = "node-template";

fn user_data(want: &Want<'_, NodeTemplateSpec>, deps: &Deps) -> String {
    crate::templates::eks_node_user_data(&format!(
        "{}.efs.{}.amazonaws.com",
        dep_id(deps, &want.spec.file_system),
        want.spec.region
    ))
}

fn groups(want: &Want<'_, NodeTemplateSpec>, deps: &Deps) -> Vec<String> {
    let cluster_sg = deps
        .get(want.spec.cluster.as_str())
        .map(|c| c.attr("cluster_security_group").to_string())
        .unwrap_or_default();
    vec![
        cluster_sg,
        dep_id(deps, &want.spec.security_group).to_string(),
    ]
}

async fn read(cx: &Cx, t: &aws_sdk_ec2::types::LaunchTemplate) -> Result<Observed, AwsError> {
    let id = t.launch_template_id().unwrap_or_default();
    let mut o = Observed::new(
        Kind::NodeTemplate,
        ec2_tag(t.tags(), TAG_KEY).unwrap_or_default(),
        id,
    );
    o.name = t.launch_template_name().unwrap_or_default().to_string();
    o.owned = cx.owner.owns(ec2_tag_pairs(t.tags()));
    // Made once and never given a new version (a change makes a new template).
    let version = super::launch_template::default_version(cx, id).await?;
    o.attrs.insert(
        "version".into(),
        t.default_version_number().unwrap_or_default().to_string(),
    );
    if let Some(d) = version.as_ref().and_then(|v| v.launch_template_data()) {
        let root = d.block_device_mappings().first().and_then(|m| m.ebs());
        let mut groups: Vec<String> = d.security_group_ids().to_vec();
        groups.sort();
        o.facts.insert("security_groups".into(), groups.join(","));
        o.facts.insert(
            "imds".into(),
            d.metadata_options()
                .map(|m| {
                    format!(
                        "{} hop {}",
                        m.http_tokens().map(|t| t.as_str()).unwrap_or_default(),
                        m.http_put_response_hop_limit().unwrap_or_default()
                    )
                })
                .unwrap_or_default(),
        );
        o.facts.insert(
            "user_data_sha256".into(),
            crate::artifact::sha256_hex(
                &d.user_data()
                    .and_then(|u| aws_smithy_types::base64::decode(u).ok())
                    .unwrap_or_default(),
            ),
        );
        o.facts.insert(
            "root_volume".into(),
            root.map(|e| {
                format!(
                    "{} GB {} encrypted {}",
                    e.volume_size().unwrap_or_default(),
                    e.volume_type().map(|t| t.as_str()).unwrap_or_default(),
                    e.encrypted().unwrap_or(false)
                )
            })
            .unwrap_or_default(),
        );
    }
    Ok(o)
}

#[async_trait]
impl Module for NodeTemplates {
    type Spec = NodeTemplateSpec;

    fn drawing(&self, spec: &Self::Spec) -> Drawing {
        Drawing {
            detail: format!(
                "node launch template ({} GB {}, IMDSv2)",
                spec.volume_gb, spec.volume_type
            ),
            place: Place::Group(spec.security_group.clone()),
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
                "ec2:DescribeLaunchTemplates",
                "ec2:DescribeLaunchTemplateVersions",
            ],
            change: &[
                "ec2:CreateLaunchTemplate",
                "ec2:CreateTags",
                "ec2:DeleteLaunchTemplate",
            ],
        }
    }

    fn teardown_after(&self) -> &'static [Kind] {
        &[Kind::NodeGroup]
    }

    fn replace_fields(&self) -> &'static [&'static str] {
        // A node group keeps the template version it was made with: a new template, a new group.
        &["security_groups", "imds", "root_volume", "user_data_sha256"]
    }

    fn machine_files(
        &self,
        want: &Want<'_, NodeTemplateSpec>,
        deps: &Deps,
    ) -> Vec<(String, String)> {
        vec![("user-data".into(), user_data(want, deps))]
    }

    async fn observe(&self, cx: &Cx) -> Result<Vec<Observed>, AwsError> {
        let mut filters = cx.ec2_owner_filters();
        filters.push(
            aws_sdk_ec2::types::Filter::builder()
                .name(format!("tag:{TAG_KIND}"))
                .values(KIND_TAG)
                .build(),
        );
        let out = cx
            .ec2
            .describe_launch_templates()
            .set_filters(Some(filters))
            .send()
            .await?;
        let mut found = Vec::new();
        for t in out.launch_templates() {
            found.push(read(cx, t).await?);
        }
        Ok(found)
    }

    async fn refresh(&self, cx: &Cx, have: &Observed) -> Result<Option<Observed>, AwsError> {
        match cx
            .ec2
            .describe_launch_templates()
            .launch_template_ids(&have.id)
            .send()
            .await
        {
            Ok(out) => match out.launch_templates().first() {
                Some(t) => Ok(Some(read(cx, t).await?)),
                None => Ok(None),
            },
            Err(e) => gone_if_not_found(e.into()),
        }
    }

    async fn create(
        &self,
        cx: &Cx,
        want: &Want<'_, NodeTemplateSpec>,
        deps: &Deps,
    ) -> Result<Observed, AwsError> {
        let launch = super::launch::Hardened {
            root_gb: want.spec.volume_gb,
            volume_type: &want.spec.volume_type,
            instance_profile: None,
        };
        let mut tags = cx.ec2_tag_spec(ResourceType::LaunchTemplate, want.key, want.name);
        tags.tags.get_or_insert_with(Vec::new).push(
            aws_sdk_ec2::types::Tag::builder()
                .key(TAG_KIND)
                .value(KIND_TAG)
                .build(),
        );
        let out = cx
            .ec2
            .create_launch_template()
            .launch_template_name(want.name)
            .launch_template_data(
                RequestLaunchTemplateData::builder()
                    .set_security_group_ids(Some(groups(want, deps)))
                    .metadata_options(launch.template_metadata_options())
                    .block_device_mappings(launch.template_root_device())
                    .user_data(aws_smithy_types::base64::encode(user_data(want, deps)))
                    .build(),
            )
            .tag_specifications(tags)
            .send()
            .await?;
        let t = out
            .launch_template()
            .ok_or_else(|| AwsError::other("CreateLaunchTemplate returned no template"))?;
        read(cx, t).await
    }

    fn expected_facts(
        &self,
        want: &Want<'_, NodeTemplateSpec>,
        deps: &Deps,
    ) -> BTreeMap<String, String> {
        let mut groups = groups(want, deps);
        groups.sort();
        BTreeMap::from([
            ("security_groups".into(), groups.join(",")),
            (
                "imds".into(),
                format!("required hop {}", super::launch::HOP_LIMIT),
            ),
            (
                "root_volume".into(),
                format!(
                    "{} GB {} encrypted true",
                    want.spec.volume_gb, want.spec.volume_type
                ),
            ),
            (
                "user_data_sha256".into(),
                crate::artifact::sha256_hex(user_data(want, deps).as_bytes()),
            ),
        ])
    }

    async fn delete(&self, cx: &Cx, have: &Observed) -> Result<(), AwsError> {
        cx.ec2
            .delete_launch_template()
            .launch_template_id(&have.id)
            .send()
            .await?;
        Ok(())
    }
}
