//! The env's own ECR repository for the app's image (the eks stack): tags immutable (an image is
//! named by its content, never overwritten), scanned on push, encrypted at rest. The CLI pushes to
//! it through the registry API; the nodes pull with their role. `down` deletes it with its images.

use std::collections::BTreeMap;

use async_trait::async_trait;
use aws_sdk_ecr::types::{
    EncryptionConfiguration, EncryptionType, ImageScanningConfiguration, ImageTagMutability, Tag,
};
use serde::Serialize;

use super::{
    Actions, AwsError, Charge, Cx, Deps, Desired, Drawing, Module, Observed, Place, Want,
    gone_if_not_found, name_prefix,
};
use crate::kinds::Kind;
use crate::prices;

/// What the plan says the image repository should be (its settings are fixed: see above).
#[derive(Debug, Clone, Serialize)]
pub struct RepositorySpec {}

pub struct Repositories;

fn facts_of(r: &aws_sdk_ecr::types::Repository) -> BTreeMap<String, String> {
    BTreeMap::from([
        (
            "tag_mutability".to_string(),
            r.image_tag_mutability()
                .map(|m| m.as_str().to_string())
                .unwrap_or_default(),
        ),
        (
            "scan_on_push".to_string(),
            r.image_scanning_configuration()
                .is_some_and(|c| c.scan_on_push())
                .to_string(),
        ),
        (
            "encryption".to_string(),
            r.encryption_configuration()
                .map(|e| e.encryption_type().as_str().to_string())
                .unwrap_or_default(),
        ),
    ])
}

async fn read(cx: &Cx, r: &aws_sdk_ecr::types::Repository) -> Result<Observed, AwsError> {
    let arn = r.repository_arn().unwrap_or_default();
    let tags = cx
        .ecr
        .list_tags_for_resource()
        .resource_arn(arn)
        .send()
        .await?;
    let pairs: Vec<(&str, &str)> = tags.tags().iter().map(|t| (t.key(), t.value())).collect();
    let key = pairs
        .iter()
        .find(|(k, _)| *k == super::TAG_KEY)
        .map(|(_, v)| *v)
        .unwrap_or_default();
    let mut o = Observed::new(
        Kind::Repository,
        key,
        r.repository_name().unwrap_or_default(),
    );
    o.name = o.id.clone();
    o.owned = cx.owner.owns(pairs.iter().copied());
    o.attrs.insert("arn".into(), arn.to_string());
    o.attrs.insert(
        "uri".into(),
        r.repository_uri().unwrap_or_default().to_string(),
    );
    o.facts = facts_of(r);
    Ok(o)
}

#[async_trait]
impl Module for Repositories {
    type Spec = RepositorySpec;

    fn drawing(&self, _spec: &Self::Spec) -> Drawing {
        Drawing {
            detail: "ECR repository (the app's image)".into(),
            place: Place::Stores,
        }
    }

    fn cost(&self, key: &str, _spec: &Self::Spec, _plan: &[Desired]) -> Vec<Charge> {
        vec![Charge::Hourly {
            key: key.to_string(),
            what: "ECR at ~0.1 GB (the app's images)".into(),
            usd: prices::gb_month_hourly(0.1, prices::ECR_GB_MONTH),
        }]
    }

    fn instances_started(&self, _spec: &Self::Spec) -> u32 {
        0
    }

    fn actions(&self) -> Actions {
        Actions {
            observe: &["ecr:DescribeRepositories", "ecr:ListTagsForResource"],
            change: &[
                "ecr:CreateRepository",
                "ecr:TagResource",
                "ecr:DeleteRepository",
            ],
        }
    }

    fn teardown_after(&self) -> &'static [Kind] {
        &[]
    }

    fn outputs(&self, have: &Observed) -> Vec<(String, String)> {
        vec![("image_repository".into(), have.attr("uri").to_string())]
    }

    async fn observe(&self, cx: &Cx) -> Result<Vec<Observed>, AwsError> {
        // Names start with the env's prefix: only those are worth a tag call.
        let prefix = format!("{}-", name_prefix(&cx.owner.stack, &cx.owner.env));
        let mut found = Vec::new();
        let mut pages = cx.ecr.describe_repositories().into_paginator().send();
        while let Some(page) = pages.next().await {
            for r in page?.repositories() {
                if !r.repository_name().unwrap_or_default().starts_with(&prefix) {
                    continue;
                }
                let o = read(cx, r).await?;
                if o.owned {
                    found.push(o);
                }
            }
        }
        Ok(found)
    }

    async fn refresh(&self, cx: &Cx, have: &Observed) -> Result<Option<Observed>, AwsError> {
        match cx
            .ecr
            .describe_repositories()
            .repository_names(&have.id)
            .send()
            .await
        {
            Ok(out) => match out.repositories().first() {
                Some(r) => Ok(Some(read(cx, r).await?)),
                None => Ok(None),
            },
            Err(e) => gone_if_not_found(e.into()),
        }
    }

    async fn create(
        &self,
        cx: &Cx,
        want: &Want<'_, RepositorySpec>,
        _deps: &Deps,
    ) -> Result<Observed, AwsError> {
        let tags = cx
            .owner
            .tags(want.key, want.name)
            .into_iter()
            .map(|(k, v)| Tag::builder().key(k).value(v).build())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| AwsError::other(format!("a tag of {}: {e}", want.key)))?;
        let out = cx
            .ecr
            .create_repository()
            .repository_name(want.name)
            .image_tag_mutability(ImageTagMutability::Immutable)
            .image_scanning_configuration(
                ImageScanningConfiguration::builder()
                    .scan_on_push(true)
                    .build(),
            )
            .encryption_configuration(
                EncryptionConfiguration::builder()
                    .encryption_type(EncryptionType::Aes256)
                    .build()
                    .map_err(|e| AwsError::other(e.to_string()))?,
            )
            .set_tags(Some(tags))
            .send()
            .await?;
        let r = out
            .repository()
            .ok_or_else(|| AwsError::other("CreateRepository returned no repository"))?;
        read(cx, r).await
    }

    fn expected_facts(
        &self,
        _want: &Want<'_, RepositorySpec>,
        _deps: &Deps,
    ) -> BTreeMap<String, String> {
        BTreeMap::from([
            ("tag_mutability".into(), "IMMUTABLE".into()),
            ("scan_on_push".into(), "true".into()),
            ("encryption".into(), "AES256".into()),
        ])
    }

    async fn delete(&self, cx: &Cx, have: &Observed) -> Result<(), AwsError> {
        // Ours, with only our images in it: `force` deletes them with it.
        cx.ecr
            .delete_repository()
            .repository_name(&have.id)
            .force(true)
            .send()
            .await?;
        Ok(())
    }
}
