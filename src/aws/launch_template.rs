//! The launch template of the app instances: the baked AMI, the app security group, IMDSv2 only,
//! an encrypted root volume, the instance profile that may read the database secret, and
//! user-data (`templates/user-data.sh`) that only wires configuration: no secret in it.
//! A change (a new AMI, another instance type) becomes a new default version; the group launches
//! new instances from it.

use std::collections::BTreeMap;

use async_trait::async_trait;
use aws_sdk_ec2::types::{
    LaunchTemplateTagSpecificationRequest, LaunchTemplateVersion, RequestLaunchTemplateData,
    ResourceType,
};
use serde::Serialize;

use super::{
    Actions, AwsError, Charge, Cx, Deps, Desired, Drawing, Module, Observed, Place, TAG_KEY, Want,
    dep_id, ec2_tag, ec2_tag_pairs, gone_if_not_found,
};
use crate::artifact::sha256_hex;
use crate::kinds::Kind;
use crate::reference::Ref;
use crate::stack::{AppService, Services};

use crate::templates::{InstanceConfig, user_data};

/// What the plan says a launch template should be.
#[derive(Debug, Clone, Serialize)]
pub struct LaunchTemplateSpec {
    pub image: Ref,
    pub security_group: Ref,
    pub instance_type: String,
    pub volume_gb: u32,
    pub volume_type: String,
    pub instance_profile: Option<String>,
    pub app_port: u16,
    /// One process, or the split's three services on every instance.
    pub services: Services,
    pub region: String,
    pub database: Option<Ref>,
    pub file_system: Option<Ref>,
    /// Instances mount the file system at boot: its mount targets must exist first.
    pub mount_targets: Vec<Ref>,
}

pub struct LaunchTemplates;

/// The user-data for these dependencies.
fn rendered_user_data(want: &Want<'_, LaunchTemplateSpec>, deps: &Deps) -> String {
    let LaunchTemplateSpec {
        app_port,
        services,
        region,
        database,
        file_system,
        ..
    } = want.spec;
    let db = database.as_ref().and_then(|k| deps.get(k.as_str()));
    let split_services = crate::templates::split_services(*services, *app_port);
    user_data(&InstanceConfig {
        split_services: &split_services,
        region,
        app_port: *app_port,
        db_endpoint: db.map(|d| d.attr("endpoint")).unwrap_or_default(),
        db_secret_arn: db.map(|d| d.attr("secret_arn")).unwrap_or_default(),
        file_system_id: file_system
            .as_ref()
            .map(|k| dep_id(deps, k))
            .unwrap_or_default(),
    })
}

fn data(
    cx: &Cx,
    want: &Want<'_, LaunchTemplateSpec>,
    deps: &Deps,
) -> Result<RequestLaunchTemplateData, AwsError> {
    let LaunchTemplateSpec {
        image,
        security_group,
        instance_type,
        volume_gb,
        volume_type,
        instance_profile,
        ..
    } = want.spec;
    let launch = super::launch::Hardened {
        root_gb: *volume_gb,
        volume_type,
        instance_profile: instance_profile.as_deref(),
    };
    let volume_tags = LaunchTemplateTagSpecificationRequest::builder()
        .resource_type(ResourceType::Volume)
        .set_tags(Some(
            cx.ec2_tags("asg-volume", &format!("{}-volume", want.name)),
        ))
        .build();
    Ok(RequestLaunchTemplateData::builder()
        .image_id(dep_id(deps, image))
        .instance_type(instance_type.as_str().into())
        .security_group_ids(dep_id(deps, security_group))
        .set_iam_instance_profile(launch.template_instance_profile())
        .metadata_options(launch.template_metadata_options())
        .block_device_mappings(launch.template_root_device())
        .tag_specifications(volume_tags)
        .user_data(super::launch::user_data(
            want.key,
            &rendered_user_data(want, deps),
        )?)
        .build())
}

fn read(
    cx: &Cx,
    t: &aws_sdk_ec2::types::LaunchTemplate,
    version: Option<&LaunchTemplateVersion>,
) -> Observed {
    let mut o = Observed::new(
        Kind::LaunchTemplate,
        ec2_tag(t.tags(), TAG_KEY).unwrap_or_default(),
        t.launch_template_id().unwrap_or_default(),
    );
    o.name = t.launch_template_name().unwrap_or_default().to_string();
    o.owned = cx.owner.owns(ec2_tag_pairs(t.tags()));
    o.attrs.insert(
        "default_version".into(),
        t.default_version_number().unwrap_or_default().to_string(),
    );
    let Some(d) = version.and_then(|v| v.launch_template_data()) else {
        return o;
    };
    let root = d.block_device_mappings().first().and_then(|m| m.ebs());
    let user_data = d
        .user_data()
        .and_then(super::launch::user_data_text)
        .unwrap_or_default()
        .into_bytes();
    let facts = [
        ("image", d.image_id().unwrap_or_default().to_string()),
        (
            "instance_type",
            d.instance_type()
                .map(|t| t.as_str().to_string())
                .unwrap_or_default(),
        ),
        ("security_groups", d.security_group_ids().join(",")),
        (
            "instance_profile",
            d.iam_instance_profile()
                .and_then(|p| p.name())
                .unwrap_or_default()
                .to_string(),
        ),
        (
            "imds_tokens",
            d.metadata_options()
                .and_then(|m| m.http_tokens())
                .map(|t| t.as_str().to_string())
                .unwrap_or_default(),
        ),
        (
            "root_encrypted",
            root.and_then(|e| e.encrypted())
                .unwrap_or(false)
                .to_string(),
        ),
        (
            "root_volume",
            root.map(|e| {
                format!(
                    "{} GB {}",
                    e.volume_size().unwrap_or_default(),
                    e.volume_type().map(|t| t.as_str()).unwrap_or_default()
                )
            })
            .unwrap_or_default(),
        ),
        ("user_data_sha256", sha256_hex(&user_data)),
    ];
    for (k, v) in facts {
        o.facts.insert(k.into(), v);
    }
    o
}

/// A launch template's default version (a node template's too).
pub(super) async fn default_version(
    cx: &Cx,
    id: &str,
) -> Result<Option<LaunchTemplateVersion>, AwsError> {
    let out = cx
        .ec2
        .describe_launch_template_versions()
        .launch_template_id(id)
        .versions("$Default")
        .send()
        .await?;
    Ok(out.launch_template_versions().first().cloned())
}

#[async_trait]
impl Module for LaunchTemplates {
    type Spec = LaunchTemplateSpec;

    fn drawing(&self, spec: &Self::Spec) -> Drawing {
        let detail = match spec.services {
            Services::Single => format!(
                "launch template {} app :{}",
                spec.instance_type, spec.app_port
            ),
            Services::Split => format!(
                "launch template {} {}",
                spec.instance_type,
                AppService::ALL
                    .iter()
                    .map(|s| format!("{} :{}", s.as_str(), s.port_from(spec.app_port)))
                    .collect::<Vec<_>>()
                    .join(" ")
            ),
        };
        Drawing {
            detail,
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
                "ec2:CreateLaunchTemplateVersion",
                "ec2:ModifyLaunchTemplate",
                "ec2:DeleteLaunchTemplate",
                "ec2:CreateTags",
                "iam:PassRole",
            ],
        }
    }

    fn teardown_after(&self) -> &'static [Kind] {
        &[Kind::AutoScalingGroup]
    }

    fn machine_files(
        &self,
        want: &Want<'_, LaunchTemplateSpec>,
        deps: &Deps,
    ) -> Vec<(String, String)> {
        vec![("user-data.sh".into(), rendered_user_data(want, deps))]
    }

    async fn observe(&self, cx: &Cx) -> Result<Vec<Observed>, AwsError> {
        let out = cx
            .ec2
            .describe_launch_templates()
            .set_filters(Some(cx.ec2_owner_filters()))
            .send()
            .await?;
        let mut found = Vec::new();
        // The eks nodes' templates are another kind's (they carry its kind tag).
        for t in out
            .launch_templates()
            .iter()
            .filter(|t| ec2_tag(t.tags(), super::TAG_KIND).is_none())
        {
            let version = default_version(cx, t.launch_template_id().unwrap_or_default()).await?;
            found.push(read(cx, t, version.as_ref()));
        }
        Ok(found)
    }

    async fn refresh(&self, cx: &Cx, have: &Observed) -> Result<Option<Observed>, AwsError> {
        let out = match cx
            .ec2
            .describe_launch_templates()
            .launch_template_ids(&have.id)
            .send()
            .await
        {
            Ok(out) => out,
            Err(e) => return gone_if_not_found(e.into()),
        };
        let Some(t) = out.launch_templates().first() else {
            return Ok(None);
        };
        let version = default_version(cx, &have.id).await?;
        Ok(Some(read(cx, t, version.as_ref())))
    }

    async fn create(
        &self,
        cx: &Cx,
        want: &Want<'_, LaunchTemplateSpec>,
        deps: &Deps,
    ) -> Result<Observed, AwsError> {
        let out = cx
            .ec2
            .create_launch_template()
            .launch_template_name(want.name)
            .version_description("bookstore")
            .launch_template_data(data(cx, want, deps)?)
            .tag_specifications(cx.ec2_tag_spec(ResourceType::LaunchTemplate, want.key, want.name))
            // Same name, same request: a retry after a lost response returns the same template.
            .client_token(format!(
                "{}-{}",
                want.name,
                &sha256_hex(rendered_user_data(want, deps).as_bytes())[..16]
            ))
            .send()
            .await?;
        let id = out
            .launch_template()
            .and_then(|t| t.launch_template_id())
            .ok_or_else(|| AwsError::other("CreateLaunchTemplate returned no id"))?;
        let mut have = Observed::new(Kind::LaunchTemplate, want.key, id);
        have.owned = true;
        self.refresh(cx, &have)
            .await?
            .ok_or_else(|| AwsError::other(format!("launch template {id} vanished")))
    }

    fn expected_facts(
        &self,
        want: &Want<'_, LaunchTemplateSpec>,
        deps: &Deps,
    ) -> BTreeMap<String, String> {
        let LaunchTemplateSpec {
            image,
            security_group,
            instance_type,
            volume_gb,
            volume_type,
            instance_profile,
            ..
        } = want.spec;
        BTreeMap::from([
            ("image".into(), dep_id(deps, image).to_string()),
            ("instance_type".into(), instance_type.clone()),
            (
                "security_groups".into(),
                dep_id(deps, security_group).to_string(),
            ),
            (
                "instance_profile".into(),
                instance_profile.clone().unwrap_or_default(),
            ),
            ("imds_tokens".into(), "required".into()),
            ("root_encrypted".into(), "true".into()),
            (
                "root_volume".into(),
                format!("{volume_gb} GB {volume_type}"),
            ),
            (
                "user_data_sha256".into(),
                sha256_hex(rendered_user_data(want, deps).as_bytes()),
            ),
        ])
    }

    /// A new version with the wanted data, made the default.
    async fn update(
        &self,
        cx: &Cx,
        want: &Want<'_, LaunchTemplateSpec>,
        have: &Observed,
        deps: &Deps,
    ) -> Result<bool, AwsError> {
        let out = cx
            .ec2
            .create_launch_template_version()
            .launch_template_id(&have.id)
            .version_description("bookstore")
            .launch_template_data(data(cx, want, deps)?)
            .send()
            .await?;
        let version = out
            .launch_template_version()
            .and_then(|v| v.version_number())
            .ok_or_else(|| AwsError::other("CreateLaunchTemplateVersion returned no version"))?;
        cx.ec2
            .modify_launch_template()
            .launch_template_id(&have.id)
            .default_version(version.to_string())
            .send()
            .await?;
        Ok(true)
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
