//! RDS MySQL: the DB subnet group over the stack's subnets, and the database itself. Storage
//! encrypted, not publicly accessible, only in the database security group, Enhanced Monitoring off
//! (the Learner Lab forbids it), and the master password generated and kept by RDS in Secrets
//! Manager: no password ever passes through bookstore, its journal or user-data.

use std::collections::BTreeMap;
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_rds::types::Tag;
use serde::Serialize;

use super::{
    Actions, AwsError, Budget, Charge, Cx, Deps, Desired, Drawing, Module, Observed, Place,
    TAG_KEY, Want, dep_id, gone_if_not_found,
};
use crate::kinds::Kind;
use crate::prices;
use crate::reference::Ref;

/// What the plan says an RDS subnet group should be.
#[derive(Debug, Clone, Serialize)]
pub struct DbSubnetGroupSpec {
    pub subnets: Vec<Ref>,
}

/// What the plan says an RDS MySQL instance should be.
#[derive(Debug, Clone, Serialize)]
pub struct DatabaseSpec {
    pub subnet_group: Ref,
    pub security_group: Ref,
    pub engine_version: String,
    pub instance_class: String,
    pub storage_gb: u32,
    pub storage_type: String,
    pub backup_retention_days: u32,
    pub multi_az: bool,
    pub final_snapshot: bool,
}

pub struct DbSubnetGroups;
pub struct Databases;

fn rds_tags<S>(cx: &Cx, want: &Want<'_, S>) -> Vec<Tag> {
    cx.owner
        .tags(want.key, want.name)
        .into_iter()
        .map(|(k, v)| Tag::builder().key(k).value(v).build())
        .collect()
}

/// Whether `down` takes a final snapshot: decided by the stack at creation, kept in a tag so that a
/// `down` without the stack file (a CI job) honours it.
const TAG_FINAL_SNAPSHOT: &str = "bookstore:final-snapshot";

/// The plan key and the final-snapshot choice when the RDS resource with this ARN carries this
/// owner's tags.
async fn owned(cx: &Cx, arn: &str) -> Result<Option<(String, bool)>, AwsError> {
    let out = cx
        .rds
        .list_tags_for_resource()
        .resource_name(arn)
        .send()
        .await?;
    let tags: Vec<(&str, &str)> = out
        .tag_list()
        .iter()
        .filter_map(|t| Some((t.key()?, t.value()?)))
        .collect();
    let value = |key: &str| {
        tags.iter()
            .find(|(k, _)| *k == key)
            .map(|(_, v)| v.to_string())
    };
    Ok(cx.owner.owns(tags.iter().copied()).then(|| {
        (
            value(TAG_KEY).unwrap_or_default(),
            value(TAG_FINAL_SNAPSHOT).as_deref() == Some("true"),
        )
    }))
}

fn read_group(g: &aws_sdk_rds::types::DbSubnetGroup, key: &str) -> Observed {
    let mut o = Observed::new(
        Kind::DbSubnetGroup,
        key,
        g.db_subnet_group_name().unwrap_or_default(),
    );
    o.name = o.id.clone();
    o.state = g.subnet_group_status().unwrap_or_default().to_lowercase();
    let mut subnets: Vec<&str> = g
        .subnets()
        .iter()
        .filter_map(|s| s.subnet_identifier())
        .collect();
    subnets.sort();
    o.facts.insert("subnets".into(), subnets.join(","));
    o.attrs.insert(
        "arn".into(),
        g.db_subnet_group_arn().unwrap_or_default().to_string(),
    );
    o
}

#[async_trait]
impl Module for DbSubnetGroups {
    type Spec = DbSubnetGroupSpec;

    fn drawing(&self, _spec: &Self::Spec) -> Drawing {
        let detail = "DB subnet group".to_string();
        Drawing {
            detail,
            place: Place::ReferredBy(&[Kind::Database]),
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
            observe: &["rds:DescribeDBSubnetGroups", "rds:ListTagsForResource"],
            change: &[
                "rds:CreateDBSubnetGroup",
                "rds:AddTagsToResource",
                "rds:ModifyDBSubnetGroup",
                "rds:DeleteDBSubnetGroup",
            ],
        }
    }

    fn teardown_after(&self) -> &'static [Kind] {
        &[Kind::Database]
    }

    async fn observe(&self, cx: &Cx) -> Result<Vec<Observed>, AwsError> {
        let groups: Vec<_> = cx
            .rds
            .describe_db_subnet_groups()
            .into_paginator()
            .items()
            .send()
            .collect::<Result<Vec<_>, _>>()
            .await?;
        let mut found = Vec::new();
        for g in &groups {
            if let Some((key, _)) = owned(cx, g.db_subnet_group_arn().unwrap_or_default()).await? {
                found.push(read_group(g, &key));
            }
        }
        Ok(found)
    }

    async fn refresh(&self, cx: &Cx, have: &Observed) -> Result<Option<Observed>, AwsError> {
        match cx
            .rds
            .describe_db_subnet_groups()
            .db_subnet_group_name(&have.id)
            .send()
            .await
        {
            Ok(out) => Ok(out.db_subnet_groups().first().map(|g| Observed {
                owned: have.owned,
                ..read_group(g, &have.key)
            })),
            Err(e) => gone_if_not_found(e.into()),
        }
    }

    async fn create(
        &self,
        cx: &Cx,
        want: &Want<'_, DbSubnetGroupSpec>,
        deps: &Deps,
    ) -> Result<Observed, AwsError> {
        let out = cx
            .rds
            .create_db_subnet_group()
            .db_subnet_group_name(want.name)
            .db_subnet_group_description("bookstore database subnets, one per availability zone")
            .set_subnet_ids(Some(super::dep_ids(deps, &want.spec.subnets)))
            .set_tags(Some(rds_tags(cx, want)))
            .send()
            .await?;
        let g = out
            .db_subnet_group()
            .ok_or_else(|| AwsError::other("CreateDBSubnetGroup returned nothing"))?;
        Ok(read_group(g, want.key))
    }

    fn expected_facts(
        &self,
        want: &Want<'_, DbSubnetGroupSpec>,
        deps: &Deps,
    ) -> BTreeMap<String, String> {
        BTreeMap::from([(
            "subnets".into(),
            super::dep_ids(deps, &want.spec.subnets).join(","),
        )])
    }

    async fn update(
        &self,
        cx: &Cx,
        want: &Want<'_, DbSubnetGroupSpec>,
        have: &Observed,
        deps: &Deps,
    ) -> Result<bool, AwsError> {
        cx.rds
            .modify_db_subnet_group()
            .db_subnet_group_name(&have.id)
            .set_subnet_ids(Some(super::dep_ids(deps, &want.spec.subnets)))
            .send()
            .await?;
        Ok(true)
    }

    async fn delete(&self, cx: &Cx, have: &Observed) -> Result<(), AwsError> {
        cx.rds
            .delete_db_subnet_group()
            .db_subnet_group_name(&have.id)
            .send()
            .await?;
        Ok(())
    }
}

fn read_db(d: &aws_sdk_rds::types::DbInstance, key: &str, final_snapshot: bool) -> Observed {
    let mut o = Observed::new(
        Kind::Database,
        key,
        d.db_instance_identifier().unwrap_or_default(),
    );
    o.name = o.id.clone();
    o.state = d.db_instance_status().unwrap_or_default().to_string();
    o.ready = o.state == "available";
    if let Some(e) = d.endpoint() {
        o.attrs.insert(
            "endpoint".into(),
            format!(
                "{}:{}",
                e.address().unwrap_or_default(),
                e.port().unwrap_or(3306)
            ),
        );
    }
    if let Some(s) = d.master_user_secret() {
        o.attrs.insert(
            "secret_arn".into(),
            s.secret_arn().unwrap_or_default().to_string(),
        );
    }
    o.attrs.insert(
        "arn".into(),
        d.db_instance_arn().unwrap_or_default().to_string(),
    );
    let mut groups: Vec<&str> = d
        .vpc_security_groups()
        .iter()
        .filter_map(|g| g.vpc_security_group_id())
        .collect();
    groups.sort();
    o.facts.insert(
        "instance_class".into(),
        d.db_instance_class().unwrap_or_default().to_string(),
    );
    o.facts.insert(
        "storage_gb".into(),
        d.allocated_storage().unwrap_or_default().to_string(),
    );
    o.facts.insert(
        "encrypted".into(),
        d.storage_encrypted().unwrap_or(false).to_string(),
    );
    o.facts.insert(
        "public".into(),
        d.publicly_accessible().unwrap_or(false).to_string(),
    );
    o.facts.insert("security_groups".into(), groups.join(","));
    o.facts.insert(
        "managed_password".into(),
        d.master_user_secret().is_some().to_string(),
    );
    o.attrs
        .insert("final_snapshot".into(), final_snapshot.to_string());
    o
}

#[async_trait]
impl Module for Databases {
    type Spec = DatabaseSpec;

    fn drawing(&self, spec: &Self::Spec) -> Drawing {
        let detail = format!(
            "RDS MySQL {} {} {} GB{}",
            spec.engine_version,
            spec.instance_class,
            spec.storage_gb,
            if spec.multi_az { " multi-AZ" } else { "" }
        );
        Drawing {
            detail,
            place: Place::Group(spec.security_group.clone()),
        }
    }

    fn cost(&self, key: &str, spec: &Self::Spec, _plan: &[Desired]) -> Vec<Charge> {
        let mut charges = vec![match prices::rds_hourly(&spec.instance_class) {
            Some(compute) => Charge::Hourly {
                key: key.to_string(),
                what: format!(
                    "{}{} + {} GB storage",
                    spec.instance_class,
                    if spec.multi_az { " multi-AZ" } else { "" },
                    spec.storage_gb
                ),
                usd: if spec.multi_az { 2.0 } else { 1.0 }
                    * (compute
                        + prices::gb_month_hourly(
                            spec.storage_gb as f64,
                            prices::RDS_STORAGE_GB_MONTH,
                        )),
            },
            None => Charge::Unpriced(format!("{key} ({})", spec.instance_class)),
        }];
        // RDS's managed master password is a Secrets Manager secret too.
        charges.push(Charge::Hourly {
            key: format!("{key}-secret"),
            what: "Secrets Manager secret (RDS's managed password)".into(),
            usd: prices::SECRET_MONTH / prices::HOURS_PER_MONTH,
        });
        charges
    }

    fn instances_started(&self, _spec: &Self::Spec) -> u32 {
        0
    }
    /// RDS makes the managed master secret on the caller's behalf: CreateSecret and TagResource.
    fn actions(&self) -> Actions {
        Actions {
            observe: &["rds:DescribeDBInstances", "rds:ListTagsForResource"],
            change: &[
                "rds:CreateDBInstance",
                "rds:AddTagsToResource",
                "rds:DeleteDBInstance",
                "secretsmanager:CreateSecret",
                "secretsmanager:TagResource",
            ],
        }
    }

    fn outputs(&self, have: &Observed) -> Vec<(String, String)> {
        vec![
            ("db_endpoint".into(), have.attr("endpoint").into()),
            ("db_secret_arn".into(), have.attr("secret_arn").into()),
        ]
    }

    fn teardown_after(&self) -> &'static [Kind] {
        &[]
    }

    fn budget(&self) -> Budget {
        // RDS MySQL takes 5-15 minutes to create; Terraform gives it 40.
        Budget {
            ready: Duration::from_secs(2400),
            poll_max: Duration::from_secs(30),
        }
    }

    async fn observe(&self, cx: &Cx) -> Result<Vec<Observed>, AwsError> {
        let dbs: Vec<_> = cx
            .rds
            .describe_db_instances()
            .into_paginator()
            .items()
            .send()
            .collect::<Result<Vec<_>, _>>()
            .await?;
        let mut found = Vec::new();
        for d in &dbs {
            if let Some((key, final_snapshot)) =
                owned(cx, d.db_instance_arn().unwrap_or_default()).await?
            {
                found.push(read_db(d, &key, final_snapshot));
            }
        }
        Ok(found)
    }

    async fn refresh(&self, cx: &Cx, have: &Observed) -> Result<Option<Observed>, AwsError> {
        match cx
            .rds
            .describe_db_instances()
            .db_instance_identifier(&have.id)
            .send()
            .await
        {
            Ok(out) => Ok(out.db_instances().first().map(|d| Observed {
                owned: have.owned,
                ..read_db(d, &have.key, have.attr("final_snapshot") == "true")
            })),
            Err(e) => gone_if_not_found(e.into()),
        }
    }

    async fn create(
        &self,
        cx: &Cx,
        want: &Want<'_, DatabaseSpec>,
        deps: &Deps,
    ) -> Result<Observed, AwsError> {
        let DatabaseSpec {
            subnet_group,
            security_group,
            engine_version,
            instance_class,
            storage_gb,
            storage_type,
            backup_retention_days,
            multi_az,
            final_snapshot,
        } = want.spec;
        let out = cx
            .rds
            .create_db_instance()
            .db_instance_identifier(want.name)
            .engine("mysql")
            .engine_version(engine_version)
            .db_instance_class(instance_class)
            .allocated_storage(*storage_gb as i32)
            .storage_type(storage_type)
            .storage_encrypted(true)
            .publicly_accessible(false)
            .db_subnet_group_name(dep_id(deps, subnet_group))
            .vpc_security_group_ids(dep_id(deps, security_group))
            .master_username("bookstore")
            .manage_master_user_password(true)
            .db_name("bookstore")
            .backup_retention_period(*backup_retention_days as i32)
            .multi_az(*multi_az)
            .monitoring_interval(0)
            .copy_tags_to_snapshot(true)
            .deletion_protection(false)
            .set_tags(Some(rds_tags(cx, want)))
            .tags(
                Tag::builder()
                    .key(TAG_FINAL_SNAPSHOT)
                    .value(final_snapshot.to_string())
                    .build(),
            )
            .send()
            .await?;
        let d = out
            .db_instance()
            .ok_or_else(|| AwsError::other("CreateDBInstance returned nothing"))?;
        Ok(read_db(d, want.key, *final_snapshot))
    }

    fn expected_facts(
        &self,
        want: &Want<'_, DatabaseSpec>,
        deps: &Deps,
    ) -> BTreeMap<String, String> {
        let DatabaseSpec {
            security_group,
            instance_class,
            storage_gb,
            ..
        } = want.spec;
        BTreeMap::from([
            ("instance_class".into(), instance_class.clone()),
            ("storage_gb".into(), storage_gb.to_string()),
            ("encrypted".into(), "true".into()),
            ("public".into(), "false".into()),
            (
                "security_groups".into(),
                dep_id(deps, security_group).to_string(),
            ),
            ("managed_password".into(), "true".into()),
        ])
    }

    async fn delete(&self, cx: &Cx, have: &Observed) -> Result<(), AwsError> {
        if have.state == "deleting" {
            return Ok(());
        }
        let request = cx
            .rds
            .delete_db_instance()
            .db_instance_identifier(&have.id)
            .delete_automated_backups(true);
        let request = if have.attr("final_snapshot") == "true" {
            let stamp = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs());
            request.final_db_snapshot_identifier(format!("{}-final-{stamp}", have.id))
        } else {
            request.skip_final_snapshot(true)
        };
        request.send().await?;
        Ok(())
    }
}
