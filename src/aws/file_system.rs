//! EFS for the shared uploads directory: an encrypted file system, and a mount target per subnet in
//! the file-system security group. Mount targets cannot be tagged; they belong to the stack through
//! their file system, and take their plan key from their subnet's.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_efs::types::{PerformanceMode, Tag, ThroughputMode};
use serde::Serialize;

use super::{
    Actions, AwsError, Budget, Charge, Cx, Deps, Desired, Drawing, Module, Observed, Place,
    TAG_KEY, Want, dep_id, ec2_tag, gone_if_not_found,
};
use crate::kinds::Kind;
use crate::prices;
use crate::reference::Ref;

/// What the plan says an EFS file system (encrypted; it has no settings of its own) should be.
#[derive(Debug, Clone, Serialize)]
pub struct FileSystemSpec {}

/// What the plan says an EFS mount target should be.
#[derive(Debug, Clone, Serialize)]
pub struct MountTargetSpec {
    pub file_system: Ref,
    pub subnet: Ref,
    pub security_group: Ref,
}

pub struct FileSystems;
pub struct MountTargets;

fn read_fs(cx: &Cx, f: &aws_sdk_efs::types::FileSystemDescription) -> Option<Observed> {
    let tags: Vec<(&str, &str)> = f.tags().iter().map(|t| (t.key(), t.value())).collect();
    let key = tags
        .iter()
        .find(|(k, _)| *k == TAG_KEY)
        .map(|(_, v)| *v)
        .unwrap_or_default();
    let mut o = Observed::new(Kind::FileSystem, key, f.file_system_id());
    o.owned = cx.owner.owns(tags.iter().copied());
    o.name = f.name().unwrap_or_default().to_string();
    o.state = f.life_cycle_state().as_str().to_string();
    o.ready = o.state == "available";
    o.facts.insert(
        "encrypted".into(),
        f.encrypted().unwrap_or(false).to_string(),
    );
    o.attrs.insert(
        "mount_targets".into(),
        f.number_of_mount_targets().to_string(),
    );
    Some(o)
}

#[async_trait]
impl Module for FileSystems {
    type Spec = FileSystemSpec;

    fn drawing(&self, _spec: &Self::Spec) -> Drawing {
        let detail = "EFS file system (covers)".to_string();
        Drawing {
            detail,
            place: Place::ReferredBy(&[Kind::MountTarget]),
        }
    }

    fn cost(&self, key: &str, spec: &Self::Spec, _plan: &[Desired]) -> Vec<Charge> {
        let _ = spec;
        vec![Charge::Hourly {
            key: key.to_string(),
            what: "EFS at ~1 GB of covers (by the GB stored)".into(),
            usd: prices::gb_month_hourly(1.0, prices::EFS_GB_MONTH),
        }]
    }

    fn instances_started(&self, _spec: &Self::Spec) -> u32 {
        0
    }

    fn actions(&self) -> Actions {
        Actions {
            observe: &["elasticfilesystem:DescribeFileSystems"],
            change: &[
                "elasticfilesystem:CreateFileSystem",
                "elasticfilesystem:TagResource",
                "elasticfilesystem:DeleteFileSystem",
            ],
        }
    }

    fn outputs(&self, have: &Observed) -> Vec<(String, String)> {
        vec![("file_system_id".into(), have.id.clone())]
    }

    fn teardown_after(&self) -> &'static [Kind] {
        &[Kind::MountTarget]
    }

    fn budget(&self) -> Budget {
        Budget {
            ready: Duration::from_secs(600),
            poll_max: Duration::from_secs(10),
        }
    }

    async fn observe(&self, cx: &Cx) -> Result<Vec<Observed>, AwsError> {
        let out = cx.efs.describe_file_systems().send().await?;
        Ok(out
            .file_systems()
            .iter()
            .filter_map(|f| read_fs(cx, f))
            .filter(|o| o.owned)
            .collect())
    }

    async fn refresh(&self, cx: &Cx, have: &Observed) -> Result<Option<Observed>, AwsError> {
        match cx
            .efs
            .describe_file_systems()
            .file_system_id(&have.id)
            .send()
            .await
        {
            Ok(out) => Ok(out.file_systems().first().and_then(|f| read_fs(cx, f))),
            Err(e) => gone_if_not_found(e.into()),
        }
    }

    async fn create(
        &self,
        cx: &Cx,
        want: &Want<'_, FileSystemSpec>,
        _deps: &Deps,
    ) -> Result<Observed, AwsError> {
        let tags: Vec<Tag> = cx
            .owner
            .tags(want.key, want.name)
            .into_iter()
            .filter_map(|(k, v)| Tag::builder().key(k).value(v).build().ok())
            .collect();
        // The creation token makes a repeated request return the same file system.
        let out = cx
            .efs
            .create_file_system()
            .creation_token(want.name)
            .encrypted(true)
            .performance_mode(PerformanceMode::GeneralPurpose)
            .throughput_mode(ThroughputMode::Bursting)
            .set_tags(Some(tags))
            .send()
            .await;
        let id = match out {
            Ok(out) => out.file_system_id().to_string(),
            Err(e) => {
                let e = AwsError::from(e);
                if e.code.as_deref() != Some("FileSystemAlreadyExists") {
                    return Err(e);
                }
                // Made by an earlier run that died before it could record it: adopt it.
                let all = cx
                    .efs
                    .describe_file_systems()
                    .creation_token(want.name)
                    .send()
                    .await?;
                all.file_systems()
                    .first()
                    .map(|f| f.file_system_id().to_string())
                    .ok_or(e)?
            }
        };
        let probe = Observed::new(Kind::FileSystem, want.key, &id);
        Ok(self.refresh(cx, &probe).await?.unwrap_or(probe))
    }

    fn expected_facts(
        &self,
        _want: &Want<'_, FileSystemSpec>,
        _deps: &Deps,
    ) -> BTreeMap<String, String> {
        BTreeMap::from([("encrypted".into(), "true".into())])
    }

    async fn delete(&self, cx: &Cx, have: &Observed) -> Result<(), AwsError> {
        cx.efs
            .delete_file_system()
            .file_system_id(&have.id)
            .send()
            .await?;
        Ok(())
    }
}

/// Subnet id → plan key, from the subnets' tags.
async fn subnet_keys(cx: &Cx, ids: Vec<String>) -> Result<HashMap<String, String>, AwsError> {
    if ids.is_empty() {
        return Ok(HashMap::new());
    }
    let out = cx
        .ec2
        .describe_subnets()
        .set_subnet_ids(Some(ids))
        .send()
        .await?;
    Ok(out
        .subnets()
        .iter()
        .map(|s| {
            (
                s.subnet_id().unwrap_or_default().to_string(),
                ec2_tag(s.tags(), TAG_KEY).unwrap_or_default().to_string(),
            )
        })
        .collect())
}

fn read_mt(m: &aws_sdk_efs::types::MountTargetDescription, key: String) -> Observed {
    let mut o = Observed::new(Kind::MountTarget, key, m.mount_target_id());
    o.state = m.life_cycle_state().as_str().to_string();
    o.ready = o.state == "available";
    o.facts.insert("subnet".into(), m.subnet_id().to_string());
    o.facts
        .insert("file_system".into(), m.file_system_id().to_string());
    o.attrs
        .insert("ip".into(), m.ip_address().unwrap_or_default().to_string());
    o
}

#[async_trait]
impl Module for MountTargets {
    type Spec = MountTargetSpec;

    fn drawing(&self, spec: &Self::Spec) -> Drawing {
        let detail = "EFS mount target".to_string();
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
    /// A mount target is a network interface EFS makes as the caller.
    fn actions(&self) -> Actions {
        Actions {
            observe: &[
                "elasticfilesystem:DescribeMountTargets",
                "ec2:DescribeSubnets",
            ],
            change: &[
                "elasticfilesystem:CreateMountTarget",
                "elasticfilesystem:DeleteMountTarget",
                "ec2:CreateNetworkInterface",
                "ec2:DescribeNetworkInterfaces",
            ],
        }
    }

    fn teardown_after(&self) -> &'static [Kind] {
        &[]
    }

    fn budget(&self) -> Budget {
        Budget {
            ready: Duration::from_secs(600),
            poll_max: Duration::from_secs(10),
        }
    }

    async fn observe(&self, cx: &Cx) -> Result<Vec<Observed>, AwsError> {
        let mut targets = Vec::new();
        for fs in FileSystems.observe(cx).await? {
            let out = cx
                .efs
                .describe_mount_targets()
                .file_system_id(&fs.id)
                .send()
                .await?;
            targets.extend(out.mount_targets().iter().cloned());
        }
        let keys = subnet_keys(
            cx,
            targets.iter().map(|m| m.subnet_id().to_string()).collect(),
        )
        .await?;
        Ok(targets
            .iter()
            .map(|m| {
                read_mt(
                    m,
                    mount_target_key(
                        keys.get(m.subnet_id())
                            .map(String::as_str)
                            .unwrap_or_default(),
                    ),
                )
            })
            .collect())
    }

    async fn refresh(&self, cx: &Cx, have: &Observed) -> Result<Option<Observed>, AwsError> {
        match cx
            .efs
            .describe_mount_targets()
            .mount_target_id(&have.id)
            .send()
            .await
        {
            Ok(out) => Ok(out.mount_targets().first().map(|m| Observed {
                owned: have.owned,
                ..read_mt(m, have.key.clone())
            })),
            Err(e) => gone_if_not_found(e.into()),
        }
    }

    async fn create(
        &self,
        cx: &Cx,
        want: &Want<'_, MountTargetSpec>,
        deps: &Deps,
    ) -> Result<Observed, AwsError> {
        let MountTargetSpec {
            file_system,
            subnet,
            security_group,
        } = want.spec;
        let out = cx
            .efs
            .create_mount_target()
            .file_system_id(dep_id(deps, file_system))
            .subnet_id(dep_id(deps, subnet))
            .security_groups(dep_id(deps, security_group))
            .send()
            .await?;
        Ok(read_mt_created(&out, want.key))
    }

    fn expected_facts(
        &self,
        want: &Want<'_, MountTargetSpec>,
        deps: &Deps,
    ) -> BTreeMap<String, String> {
        let MountTargetSpec {
            file_system,
            subnet,
            ..
        } = want.spec;
        BTreeMap::from([
            ("subnet".into(), dep_id(deps, subnet).to_string()),
            ("file_system".into(), dep_id(deps, file_system).to_string()),
        ])
    }

    async fn delete(&self, cx: &Cx, have: &Observed) -> Result<(), AwsError> {
        cx.efs
            .delete_mount_target()
            .mount_target_id(&have.id)
            .send()
            .await?;
        Ok(())
    }
}

fn read_mt_created(
    m: &aws_sdk_efs::operation::create_mount_target::CreateMountTargetOutput,
    key: &str,
) -> Observed {
    let mut o = Observed::new(Kind::MountTarget, key, m.mount_target_id());
    o.state = m.life_cycle_state().as_str().to_string();
    o.ready = o.state == "available";
    o.facts.insert("subnet".into(), m.subnet_id().to_string());
    o.facts
        .insert("file_system".into(), m.file_system_id().to_string());
    o
}

/// The plan key of the mount target in the subnet with key `subnet_key` (`subnet-a` → `efs-mount-a`).
/// Mount targets cannot be tagged, so the observer derives their key the same way.
pub fn mount_target_key(subnet_key: &str) -> String {
    format!("efs-mount-{}", subnet_key.trim_start_matches("subnet-"))
}
