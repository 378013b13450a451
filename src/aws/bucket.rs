//! The artifact bucket: private (all public access blocked), encrypted (SSE-S3), tagged. Bucket
//! names are global, so the name carries the account and region. S3 cannot tag a bucket in the
//! CreateBucket call: a bucket with exactly this stack's name and no tags (a crash between the two
//! calls) is adopted and repaired by `up`, and deleted by `down`.

use std::collections::BTreeMap;

use async_trait::async_trait;
use aws_sdk_s3::types::{
    BucketLocationConstraint, CreateBucketConfiguration, Delete, ObjectIdentifier,
    PublicAccessBlockConfiguration, ServerSideEncryption, ServerSideEncryptionByDefault,
    ServerSideEncryptionConfiguration, ServerSideEncryptionRule, Tag, Tagging,
};
use serde::Serialize;

use super::name_prefix;
use super::{
    Actions, AwsError, Charge, Cx, Desired, Drawing, Module, Observed, Place, TAG_KEY, Want,
};
use crate::kinds::Kind;
use crate::prices;

/// The private, encrypted bucket the bake uploads the app artifact to.
#[derive(Debug, Clone, Serialize)]
pub struct BucketSpec {}

pub struct Buckets;

/// `bs-<env>-<stack>-<key>-<account>-<region>`: the same on every run of this account.
fn bucket_name(cx: &Cx, name: &str) -> String {
    let account = cx.account.get().map(String::as_str).unwrap_or("unknown");
    format!("{name}-{account}-{}", cx.region).to_lowercase()
}

async fn facts(cx: &Cx, bucket: &str, o: &mut Observed) -> Result<(), AwsError> {
    let encrypted = match cx.s3.get_bucket_encryption().bucket(bucket).send().await {
        Ok(out) => out
            .server_side_encryption_configuration()
            .is_some_and(|c| !c.rules().is_empty()),
        Err(e) => {
            let e = AwsError::from(e);
            if e.code.as_deref() == Some("ServerSideEncryptionConfigurationNotFoundError") {
                false
            } else {
                return Err(e);
            }
        }
    };
    let blocked = match cx.s3.get_public_access_block().bucket(bucket).send().await {
        Ok(out) => out.public_access_block_configuration().is_some_and(|c| {
            c.block_public_acls() == Some(true)
                && c.ignore_public_acls() == Some(true)
                && c.block_public_policy() == Some(true)
                && c.restrict_public_buckets() == Some(true)
        }),
        Err(e) => {
            let e = AwsError::from(e);
            if e.code.as_deref() == Some("NoSuchPublicAccessBlockConfiguration") {
                false
            } else {
                return Err(e);
            }
        }
    };
    o.facts.insert("encrypted".into(), encrypted.to_string());
    o.facts
        .insert("public_access_blocked".into(), blocked.to_string());
    Ok(())
}

/// The bucket's tags as pairs; empty when it has none.
async fn tags(cx: &Cx, bucket: &str) -> Result<Vec<(String, String)>, AwsError> {
    match cx.s3.get_bucket_tagging().bucket(bucket).send().await {
        Ok(out) => Ok(out
            .tag_set()
            .iter()
            .map(|t| (t.key().to_string(), t.value().to_string()))
            .collect()),
        Err(e) => {
            let e = AwsError::from(e);
            if e.code.as_deref() == Some("NoSuchTagSet") {
                Ok(vec![])
            } else {
                Err(e)
            }
        }
    }
}

/// The bucket as bookstore sees it, or `None` when it is not this owner's.
async fn read(cx: &Cx, bucket: &str) -> Result<Option<Observed>, AwsError> {
    let tags = tags(cx, bucket).await?;
    let pairs = || tags.iter().map(|(k, v)| (k.as_str(), v.as_str()));
    let key = if cx.owner.owns(pairs()) {
        pairs()
            .find(|(k, _)| *k == TAG_KEY)
            .map(|(_, v)| v.to_string())
            .unwrap_or_default()
    } else if let Some(key) = adoptable_key(cx, bucket).filter(|_| tags.is_empty()) {
        key
    } else {
        return Ok(None);
    };
    let mut o = Observed::new(Kind::Bucket, key, bucket);
    o.name = bucket.to_string();
    o.facts
        .insert("tagged".into(), (!tags.is_empty()).to_string());
    facts(cx, bucket, &mut o).await?;
    Ok(Some(o))
}

/// The plan key of an untagged bucket whose name only this stack makes.
fn adoptable_key(cx: &Cx, bucket: &str) -> Option<String> {
    let prefix = format!("{}-", name_prefix(&cx.owner.stack, &cx.owner.env));
    let account = cx.account.get()?;
    let suffix = format!("-{account}-{}", cx.region);
    let key = bucket.strip_prefix(&prefix)?.strip_suffix(&suffix)?;
    (key == "artifacts").then(|| key.to_string())
}

/// Makes the bucket private, encrypted and tagged; idempotent.
async fn configure(cx: &Cx, want: &Want<'_, BucketSpec>, bucket: &str) -> Result<(), AwsError> {
    make_private(cx, bucket, cx.owner.tags(want.key, want.name)).await
}

/// CreateBucket in this region; a bucket of this name that is ours already is fine (a retry after
/// a crash, or another run that made it a moment ago).
pub(crate) async fn create_bucket(cx: &Cx, bucket: &str) -> Result<(), AwsError> {
    let mut request = cx.s3.create_bucket().bucket(bucket);
    // us-east-1 is the one region that refuses its own name as a location constraint.
    if cx.region != "us-east-1" {
        request = request.create_bucket_configuration(
            CreateBucketConfiguration::builder()
                .location_constraint(BucketLocationConstraint::from(cx.region.as_str()))
                .build(),
        );
    }
    match request.send().await {
        Ok(_) => Ok(()),
        Err(e) => {
            let e = AwsError::from(e);
            if e.code.as_deref() == Some("BucketAlreadyOwnedByYou") {
                Ok(())
            } else {
                Err(e)
            }
        }
    }
}

/// All public access blocked, SSE-S3 by default, these tags; idempotent.
pub(crate) async fn make_private(
    cx: &Cx,
    bucket: &str,
    tags: Vec<(String, String)>,
) -> Result<(), AwsError> {
    cx.s3
        .put_public_access_block()
        .bucket(bucket)
        .public_access_block_configuration(
            PublicAccessBlockConfiguration::builder()
                .block_public_acls(true)
                .ignore_public_acls(true)
                .block_public_policy(true)
                .restrict_public_buckets(true)
                .build(),
        )
        .send()
        .await?;
    let rule = ServerSideEncryptionRule::builder()
        .apply_server_side_encryption_by_default(
            ServerSideEncryptionByDefault::builder()
                .sse_algorithm(ServerSideEncryption::Aes256)
                .build()
                .map_err(|e| AwsError::other(e.to_string()))?,
        )
        .build();
    cx.s3
        .put_bucket_encryption()
        .bucket(bucket)
        .server_side_encryption_configuration(
            ServerSideEncryptionConfiguration::builder()
                .rules(rule)
                .build()
                .map_err(|e| AwsError::other(e.to_string()))?,
        )
        .send()
        .await?;
    let tags = tags
        .into_iter()
        .map(|(k, v)| Tag::builder().key(k).value(v).build())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| AwsError::other(e.to_string()))?;
    cx.s3
        .put_bucket_tagging()
        .bucket(bucket)
        .tagging(
            Tagging::builder()
                .set_tag_set(Some(tags))
                .build()
                .map_err(|e| AwsError::other(e.to_string()))?,
        )
        .send()
        .await?;
    Ok(())
}

#[async_trait]
impl Module for Buckets {
    type Spec = BucketSpec;

    fn drawing(&self, _spec: &Self::Spec) -> Drawing {
        let detail = "S3 bucket (app artifact)".to_string();
        Drawing {
            detail,
            place: Place::Bake,
        }
    }

    fn cost(&self, key: &str, spec: &Self::Spec, _plan: &[Desired]) -> Vec<Charge> {
        let _ = spec;
        vec![Charge::Hourly {
            key: key.to_string(),
            what: "S3 at ~1 GB (the app artifacts)".into(),
            usd: prices::gb_month_hourly(1.0, prices::S3_GB_MONTH),
        }]
    }

    fn instances_started(&self, _spec: &Self::Spec) -> u32 {
        0
    }

    fn actions(&self) -> Actions {
        Actions {
            observe: &[
                "s3:ListAllMyBuckets",
                "s3:ListBucket",
                "s3:GetBucketTagging",
                "s3:GetEncryptionConfiguration",
                "s3:GetBucketPublicAccessBlock",
                "s3:GetObject",
            ],
            change: &[
                "s3:CreateBucket",
                "s3:PutBucketTagging",
                "s3:PutEncryptionConfiguration",
                "s3:PutBucketPublicAccessBlock",
                "s3:PutObject",
                "s3:DeleteObject",
                "s3:DeleteBucket",
            ],
        }
    }

    fn teardown_after(&self) -> &'static [Kind] {
        &[]
    }

    async fn observe(&self, cx: &Cx) -> Result<Vec<Observed>, AwsError> {
        let prefix = format!("{}-", name_prefix(&cx.owner.stack, &cx.owner.env));
        let out = cx.s3.list_buckets().send().await?;
        let mut found = Vec::new();
        for b in out.buckets() {
            let Some(name) = b.name().filter(|n| n.starts_with(&prefix)) else {
                continue;
            };
            if let Some(o) = read(cx, name).await? {
                found.push(o);
            }
        }
        Ok(found)
    }

    async fn refresh(&self, cx: &Cx, have: &Observed) -> Result<Option<Observed>, AwsError> {
        match cx.s3.head_bucket().bucket(&have.id).send().await {
            Ok(_) => read(cx, &have.id).await,
            Err(e) => super::gone_if_not_found(e.into()),
        }
    }

    async fn create(
        &self,
        cx: &Cx,
        want: &Want<'_, BucketSpec>,
        _deps: &super::Deps,
    ) -> Result<Observed, AwsError> {
        let bucket = bucket_name(cx, want.name);
        create_bucket(cx, &bucket).await?;
        configure(cx, want, &bucket).await?;
        read(cx, &bucket)
            .await?
            .ok_or_else(|| AwsError::other(format!("bucket {bucket} lost its tags")))
    }

    fn expected_facts(
        &self,
        _want: &Want<'_, BucketSpec>,
        _deps: &super::Deps,
    ) -> BTreeMap<String, String> {
        BTreeMap::from([
            ("tagged".into(), "true".into()),
            ("encrypted".into(), "true".into()),
            ("public_access_blocked".into(), "true".into()),
        ])
    }

    async fn update(
        &self,
        cx: &Cx,
        want: &Want<'_, BucketSpec>,
        have: &Observed,
        _deps: &super::Deps,
    ) -> Result<bool, AwsError> {
        configure(cx, want, &have.id).await?;
        Ok(true)
    }

    /// Empties the bucket (S3 refuses to delete one with objects), then deletes it.
    async fn delete(&self, cx: &Cx, have: &Observed) -> Result<(), AwsError> {
        let mut pages = cx
            .s3
            .list_objects_v2()
            .bucket(&have.id)
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = page?;
            let objects = page
                .contents()
                .iter()
                .filter_map(|o| o.key())
                .map(|k| ObjectIdentifier::builder().key(k).build())
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| AwsError::other(e.to_string()))?;
            if objects.is_empty() {
                continue;
            }
            cx.s3
                .delete_objects()
                .bucket(&have.id)
                .delete(
                    Delete::builder()
                        .set_objects(Some(objects))
                        .quiet(true)
                        .build()
                        .map_err(|e| AwsError::other(e.to_string()))?,
                )
                .send()
                .await?;
        }
        cx.s3.delete_bucket().bucket(&have.id).send().await?;
        Ok(())
    }
}

/// Uploads `bytes` under `key` unless it is there already (keys are content hashes), and returns a
/// GET URL valid for `valid_for`.
pub async fn upload_and_presign(
    cx: &Cx,
    bucket: &str,
    key: &str,
    bytes: Vec<u8>,
    sha256_hex: &str,
    valid_for: std::time::Duration,
) -> Result<String, AwsError> {
    let exists = match cx.s3.head_object().bucket(bucket).key(key).send().await {
        Ok(_) => true,
        Err(e) => {
            let e = AwsError::from(e);
            if e.class == super::ErrorClass::NotFound {
                false
            } else {
                return Err(e);
            }
        }
    };
    if !exists {
        cx.s3
            .put_object()
            .bucket(bucket)
            .key(key)
            .server_side_encryption(ServerSideEncryption::Aes256)
            // S3 checks the object against the artifact's own SHA-256, known already: the SDK
            // neither hashes tens of MB again for the signature (over TLS the payload need not be
            // signed) nor computes a checksum of its own, so the run's progress never stalls on it.
            .checksum_sha256(sha256_base64(sha256_hex)?)
            .body(bytes.into())
            .customize()
            .disable_payload_signing()
            .send()
            .await?;
    }
    presign_get(cx, bucket, key, valid_for).await
}

/// S3's form of a SHA-256: base64 of the 32 bytes.
fn sha256_base64(hex: &str) -> Result<String, AwsError> {
    let bytes = (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(hex.get(i..i + 2).unwrap_or("zz"), 16))
        .collect::<Result<Vec<u8>, _>>()
        .ok()
        .filter(|b| b.len() == 32)
        .ok_or_else(|| AwsError::other(format!("`{hex}` is not a SHA-256")))?;
    Ok(aws_smithy_types::base64::encode(&bytes))
}

/// A GET URL of `bucket/key` valid for `valid_for` (at most as long as the credentials that sign it).
pub async fn presign_get(
    cx: &Cx,
    bucket: &str,
    key: &str,
    valid_for: std::time::Duration,
) -> Result<String, AwsError> {
    let presigning = aws_sdk_s3::presigning::PresigningConfig::expires_in(valid_for)
        .map_err(|e| AwsError::other(e.to_string()))?;
    let request = cx
        .s3
        .get_object()
        .bucket(bucket)
        .key(key)
        .presigned(presigning)
        .await
        .map_err(AwsError::from)?;
    Ok(request.uri().to_string())
}
