//! The bake: an AMI with the BookStore installed, made by a builder instance.
//!
//! `create` uploads the app artifact to the artifact bucket, launches a builder from the latest
//! Amazon Linux 2023 image (the public SSM parameter) with a short-lived presigned URL in its
//! user-data (`templates/bake.sh`), waits until the builder has installed everything and powered
//! itself off, checks its console for a failure line, creates the image, waits until it is
//! available, tags its snapshots and terminates the builder.
//!
//! The AMI carries the sha256 of the artifact and of the install templates; its plan key is made
//! from both, so an unchanged app is never baked twice. A run killed during the bake resumes:
//! `create` adopts the builder it finds by its tags; a pending image is waited for by the engine,
//! and the builder it leaves is removed as an extra. Snapshots are tagged, and an owned snapshot
//! whose image is gone is listed here too, so `down` leaves none behind.

use std::collections::BTreeMap;
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_ec2::types::{Filter, InstanceStateName, ResourceType, ShutdownBehavior};
use serde::Serialize;

use super::bucket::upload_and_presign;
use super::poll::{self, Grow, Look, Pace};
use super::{
    Actions, AwsError, Budget, Charge, Cx, Deps, Desired, Drawing, Module, NoSpec, Observed, Place,
    TAG_KEY, Want, dep_id, ec2_tag, ec2_tag_pairs, gone_if_not_found,
};
use crate::artifact::Artifact;
use crate::kinds::Kind;
use crate::prices;
use crate::reference::Ref;
use crate::templates::Recipe;

/// The baked AMI: the app installed on Amazon Linux 2023 by a builder instance.
#[derive(Debug, Clone, Serialize)]
pub struct ImageSpec {
    pub bucket: Ref,
    pub subnet: Ref,
    /// The builder downloads packages: the subnet's route to the internet must exist.
    pub routes: Ref,
    pub security_group: Ref,
    pub instance_type: String,
    pub volume_gb: u32,
    pub artifact: Artifact,
    /// What the builder installs besides the app.
    pub recipe: Recipe,
    pub templates_sha256: String,
}

pub struct Images;
pub struct Builders;

/// The latest Amazon Linux 2023 for x86_64, published by AWS in every region.
pub const AL2023_PARAMETER: &str =
    "/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-x86_64";
pub const TAG_ARTIFACT_SHA256: &str = "bookstore:artifact-sha256";
pub const TAG_TEMPLATES_SHA256: &str = "bookstore:templates-sha256";
/// On a builder: the plan key of the image it is baking.
const TAG_BAKES: &str = "bookstore:bakes";
const BUILDER_KEY: &str = "builder";
/// The builder downloads the artifact within minutes; the URL must not outlive that by much.
const PRESIGNED_URL_LIFETIME: Duration = Duration::from_secs(3600);
/// Installing a binary takes 2-4 minutes; compiling the app on the builder 15-25.
const BUILD_BUDGET_BINARY: Duration = Duration::from_secs(30 * 60);
const BUILD_BUDGET_SOURCE: Duration = Duration::from_secs(75 * 60);
const IMAGE_BUDGET: Duration = Duration::from_secs(40 * 60);
/// A source build needs 2 GB of memory to link; a t3.micro has 1.
const SOURCE_BUILDER_TYPE: &str = "t3.medium";

fn snapshot_ids(image: &aws_sdk_ec2::types::Image) -> Vec<String> {
    image
        .block_device_mappings()
        .iter()
        .filter_map(|m| m.ebs()?.snapshot_id().map(str::to_string))
        .collect()
}

fn read_image(cx: &Cx, image: &aws_sdk_ec2::types::Image) -> Observed {
    let tags = image.tags();
    let mut o = Observed::new(
        Kind::Image,
        ec2_tag(tags, TAG_KEY).unwrap_or_default(),
        image.image_id().unwrap_or_default(),
    );
    o.name = image.name().unwrap_or_default().to_string();
    o.owned = cx.owner.owns(ec2_tag_pairs(tags));
    o.state = image
        .state()
        .map(|s| s.as_str().to_string())
        .unwrap_or_default();
    o.ready = o.state == "available";
    for (fact, tag) in [
        ("artifact_sha256", TAG_ARTIFACT_SHA256),
        ("templates_sha256", TAG_TEMPLATES_SHA256),
    ] {
        o.facts
            .insert(fact.into(), ec2_tag(tags, tag).unwrap_or_default().into());
    }
    o.attrs
        .insert("snapshots".into(), snapshot_ids(image).join(","));
    o
}

fn read_snapshot(cx: &Cx, s: &aws_sdk_ec2::types::Snapshot) -> Observed {
    let mut o = Observed::new(
        Kind::Image,
        format!("{}-snapshot", ec2_tag(s.tags(), TAG_KEY).unwrap_or("image")),
        s.snapshot_id().unwrap_or_default(),
    );
    o.owned = cx.owner.owns(ec2_tag_pairs(s.tags()));
    o.name = o.id.clone();
    o.state = "snapshot without its image".into();
    o
}

async fn describe_images(cx: &Cx) -> Result<Vec<aws_sdk_ec2::types::Image>, AwsError> {
    let out = cx
        .ec2
        .describe_images()
        .owners("self")
        .set_filters(Some(cx.ec2_owner_filters()))
        .send()
        .await?;
    Ok(out.images().to_vec())
}

/// Tags snapshots with the image's owner tags, so they are found even once the image is gone.
async fn tag_snapshots(cx: &Cx, key: &str, name: &str, ids: &[String]) -> Result<(), AwsError> {
    if ids.is_empty() {
        return Ok(());
    }
    cx.ec2
        .create_tags()
        .set_resources(Some(ids.to_vec()))
        .set_tags(Some(cx.ec2_tags(key, name)))
        .send()
        .await?;
    Ok(())
}

async fn describe_image(cx: &Cx, id: &str) -> Result<Option<aws_sdk_ec2::types::Image>, AwsError> {
    match cx.ec2.describe_images().image_ids(id).send().await {
        Ok(out) => Ok(out.images().first().cloned()),
        Err(e) => gone_if_not_found(e.into()),
    }
}

#[async_trait]
impl Module for Images {
    type Spec = ImageSpec;

    fn drawing(&self, spec: &Self::Spec) -> Drawing {
        let detail = format!("baked AMI (builder {})", spec.instance_type);
        Drawing {
            detail,
            place: Place::Bake,
        }
    }

    fn cost(&self, key: &str, spec: &Self::Spec, _plan: &[Desired]) -> Vec<Charge> {
        vec![Charge::Hourly {
            key: key.to_string(),
            what: format!(
                "{} GB snapshot (and its {} builder for the bake's minutes)",
                spec.volume_gb, spec.instance_type
            ),
            usd: prices::gb_month_hourly(spec.volume_gb as f64, prices::SNAPSHOT_GB_MONTH),
        }]
    }

    fn instances_started(&self, _spec: &Self::Spec) -> u32 {
        // The builder, for the bake's minutes.
        1
    }
    /// The bake: the base image's parameter, the artifact upload and its presigned URL, the builder.
    fn actions(&self) -> Actions {
        Actions {
            observe: &["ec2:DescribeImages", "ec2:DescribeSnapshots"],
            change: &[
                "ssm:GetParameter",
                "s3:PutObject",
                "s3:GetObject",
                "ec2:RunInstances",
                "ec2:CreateTags",
                "ec2:DescribeInstances",
                "ec2:GetConsoleOutput",
                "ec2:CreateImage",
                "ec2:TerminateInstances",
                "ec2:DeregisterImage",
                "ec2:DeleteSnapshot",
            ],
        }
    }

    fn outputs(&self, have: &Observed) -> Vec<(String, String)> {
        vec![("image_id".into(), have.id.clone())]
    }

    /// The builder's user-data; the artifact's URL is presigned at bake time only.
    fn machine_files(&self, want: &Want<'_, ImageSpec>, deps: &Deps) -> Vec<(String, String)> {
        let ImageSpec {
            artifact,
            recipe,
            bucket,
            ..
        } = want.spec;
        let url = deps
            .get(bucket.as_str())
            .map(|b| b.attr("presigned_url").to_string())
            .filter(|u| !u.contains('<'))
            .unwrap_or_else(|| {
                format!(
                    "https://<artifact bucket>/{}?<presigned>",
                    artifact.object_key()
                )
            });
        vec![(
            "builder-user-data.sh".into(),
            crate::templates::bake_script(*recipe, &url, &artifact.sha256, artifact.kind.as_str()),
        )]
    }

    /// Instances may still be launching from it; a builder may be making it.
    fn teardown_after(&self) -> &'static [Kind] {
        &[
            Kind::AutoScalingGroup,
            Kind::LaunchTemplate,
            Kind::Builder,
            Kind::Instance,
        ]
    }

    fn budget(&self) -> Budget {
        Budget {
            ready: IMAGE_BUDGET,
            poll_max: Duration::from_secs(15),
        }
    }

    async fn observe(&self, cx: &Cx) -> Result<Vec<Observed>, AwsError> {
        let images = describe_images(cx).await?;
        let mut found: Vec<Observed> = images.iter().map(|i| read_image(cx, i)).collect();
        let in_use: Vec<String> = images.iter().flat_map(snapshot_ids).collect();
        let snapshots = cx
            .ec2
            .describe_snapshots()
            .owner_ids("self")
            .set_filters(Some(cx.ec2_owner_filters()))
            .send()
            .await?;
        found.extend(
            snapshots
                .snapshots()
                .iter()
                .filter(|s| !in_use.iter().any(|id| Some(id.as_str()) == s.snapshot_id()))
                .map(|s| read_snapshot(cx, s)),
        );
        Ok(found)
    }

    async fn refresh(&self, cx: &Cx, have: &Observed) -> Result<Option<Observed>, AwsError> {
        if have.id.starts_with("snap-") {
            return match cx
                .ec2
                .describe_snapshots()
                .snapshot_ids(&have.id)
                .send()
                .await
            {
                Ok(out) => Ok(out.snapshots().first().map(|s| read_snapshot(cx, s))),
                Err(e) => gone_if_not_found(e.into()),
            };
        }
        Ok(describe_image(cx, &have.id)
            .await?
            .filter(|i| i.state().map(|s| s.as_str()) != Some("deregistered"))
            .map(|i| read_image(cx, &i)))
    }

    async fn create(
        &self,
        cx: &Cx,
        want: &Want<'_, ImageSpec>,
        deps: &Deps,
    ) -> Result<Observed, AwsError> {
        let ImageSpec { artifact, .. } = want.spec;
        let builder = match find_builder(cx, want.key).await? {
            Some(id) => {
                cx.phase(
                    want.key,
                    Kind::Image,
                    &format!("builder {id} found running: resuming"),
                );
                id
            }
            None => launch_builder(cx, want, deps).await?,
        };
        let budget = if artifact.kind == crate::artifact::ArtifactKind::Source {
            BUILD_BUDGET_SOURCE
        } else {
            BUILD_BUDGET_BINARY
        };
        if let Err(e) = wait_until_stopped(cx, want, &builder, budget).await {
            // A failed bake must not be resumed into an image: the next run starts afresh.
            if e.message.contains("BOOKSTORE-BAKE-FAILED") {
                terminate(cx, &builder).await?;
            }
            return Err(e);
        }
        cx.phase(
            want.key,
            Kind::Image,
            &format!("installed; creating the image from builder {builder}"),
        );
        let image_id = create_image(cx, want, &builder).await?;
        let image = poll::until(
            IMAGE_BUDGET,
            Pace {
                first: Duration::from_secs(2),
                grow: Grow::Double,
                max: Duration::from_secs(15),
            },
            |waited| {
                let image_id = &image_id;
                async move {
                    let image = describe_image(cx, image_id).await?.ok_or_else(|| {
                        AwsError::other(format!("image {image_id} disappeared while being created"))
                    })?;
                    match image.state().map(|s| s.as_str()) {
                        Some("available") => Ok(Look::Done(image)),
                        Some("failed") | Some("error") => Err(AwsError::other(format!(
                            "image {image_id} failed: {}",
                            image
                                .state_reason()
                                .and_then(|r| r.message())
                                .unwrap_or("no reason given")
                        ))),
                        other => {
                            cx.phase(
                                want.key,
                                Kind::Image,
                                &format!(
                                    "image {image_id} {} for {} s (snapshotting the builder's disk)",
                                    other.unwrap_or("pending"),
                                    waited.as_secs()
                                ),
                            );
                            Ok(Look::Again)
                        }
                    }
                }
            },
            |waited| {
                AwsError::other(format!(
                    "image {image_id} was not available after {} s; run the same command again to keep waiting",
                    waited.as_secs()
                ))
            },
        )
        .await?;
        cx.phase(
            want.key,
            Kind::Image,
            &format!("image {image_id} available; terminating the builder"),
        );
        tag_snapshots(cx, want.key, want.name, &snapshot_ids(&image)).await?;
        terminate(cx, &builder).await?;
        Ok(read_image(cx, &image))
    }

    fn expected_facts(&self, want: &Want<'_, ImageSpec>, _deps: &Deps) -> BTreeMap<String, String> {
        let ImageSpec {
            artifact,
            templates_sha256,
            ..
        } = want.spec;
        BTreeMap::from([
            ("artifact_sha256".into(), artifact.sha256.clone()),
            ("templates_sha256".into(), templates_sha256.clone()),
        ])
    }

    /// Deregisters the image, then deletes its snapshots (AWS refuses while it is registered).
    async fn delete(&self, cx: &Cx, have: &Observed) -> Result<(), AwsError> {
        if have.id.starts_with("snap-") {
            cx.ec2
                .delete_snapshot()
                .snapshot_id(&have.id)
                .send()
                .await?;
            return Ok(());
        }
        let snapshots: Vec<String> = have
            .attr("snapshots")
            .split(',')
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect();
        // Tagged first: a crash after the deregistration still leaves them findable.
        tag_snapshots(cx, &have.key, &have.name, &snapshots).await?;
        cx.ec2.deregister_image().image_id(&have.id).send().await?;
        for snapshot in &snapshots {
            match cx.ec2.delete_snapshot().snapshot_id(snapshot).send().await {
                Ok(_) => {}
                Err(e) => {
                    let e = AwsError::from(e);
                    if e.class != super::ErrorClass::NotFound {
                        return Err(e);
                    }
                }
            }
        }
        Ok(())
    }
}

/// This owner's builder instances that are not terminated, narrowed by `filters`.
async fn builders(
    cx: &Cx,
    filters: Vec<Filter>,
) -> Result<Vec<aws_sdk_ec2::types::Instance>, AwsError> {
    let mut all = cx.ec2_owner_filters();
    all.push(
        Filter::builder()
            .name(format!("tag:{TAG_KEY}"))
            .values(BUILDER_KEY)
            .build(),
    );
    all.extend(filters);
    let out = cx
        .ec2
        .describe_instances()
        .set_filters(Some(all))
        .send()
        .await?;
    Ok(out
        .reservations()
        .iter()
        .flat_map(|r| r.instances())
        .filter(|i| i.state().and_then(|s| s.name()) != Some(&InstanceStateName::Terminated))
        .cloned()
        .collect())
}

/// A builder of this image from an earlier, interrupted run, still usable.
async fn find_builder(cx: &Cx, image_key: &str) -> Result<Option<String>, AwsError> {
    let bakes = Filter::builder()
        .name(format!("tag:{TAG_BAKES}"))
        .values(image_key)
        .build();
    Ok(builders(cx, vec![bakes])
        .await?
        .iter()
        .filter(|i| i.state().and_then(|s| s.name()) != Some(&InstanceStateName::ShuttingDown))
        .find_map(|i| i.instance_id().map(str::to_string)))
}

async fn launch_builder(
    cx: &Cx,
    want: &Want<'_, ImageSpec>,
    deps: &Deps,
) -> Result<String, AwsError> {
    let ImageSpec {
        bucket,
        subnet,
        security_group,
        instance_type,
        volume_gb,
        artifact,
        recipe,
        ..
    } = want.spec;
    // Reading and hashing tens of MB again: off the runtime, which also drives the progress
    // heartbeat (inline, it held the runtime for ~2 s in a debug build).
    let reading = artifact.clone();
    let bytes = tokio::task::spawn_blocking(move || reading.bytes())
        .await
        .map_err(|e| AwsError::other(e.to_string()))?
        .map_err(AwsError::other)?;
    cx.phase(
        want.key,
        Kind::Image,
        &format!(
            "uploading the app {} ({:.1} MB)",
            artifact.kind.as_str(),
            bytes.len() as f64 / 1e6
        ),
    );
    let url = upload_and_presign(
        cx,
        dep_id(deps, bucket),
        &artifact.object_key(),
        bytes,
        &artifact.sha256,
        PRESIGNED_URL_LIFETIME,
    )
    .await?;
    let base_image = cx
        .ssm
        .get_parameter()
        .name(AL2023_PARAMETER)
        .send()
        .await?
        .parameter()
        .and_then(|p| p.value())
        .map(str::to_string)
        .ok_or_else(|| AwsError::other(format!("SSM parameter {AL2023_PARAMETER} has no value")))?;
    let script =
        crate::templates::bake_script(*recipe, &url, &artifact.sha256, artifact.kind.as_str());
    let user_data = super::launch::user_data(&format!("{}'s builder", want.key), &script)?;
    let instance_type = match artifact.kind {
        crate::artifact::ArtifactKind::Source => SOURCE_BUILDER_TYPE,
        crate::artifact::ArtifactKind::Binary => instance_type.as_str(),
    };
    // The builder calls no AWS API (it fetches the app by a presigned URL): no instance profile.
    let launch = super::launch::Hardened {
        root_gb: *volume_gb,
        volume_type: "gp3",
        instance_profile: None,
    };
    let mut tags = cx.ec2_tags(BUILDER_KEY, &format!("{}-builder", want.name));
    tags.push(
        aws_sdk_ec2::types::Tag::builder()
            .key(TAG_BAKES)
            .value(want.key)
            .build(),
    );
    let spec = |rt: ResourceType| {
        aws_sdk_ec2::types::TagSpecification::builder()
            .resource_type(rt)
            .set_tags(Some(tags.clone()))
            .build()
    };
    cx.phase(
        want.key,
        Kind::Image,
        &format!("launching the builder ({instance_type})"),
    );
    let out = cx
        .ec2
        .run_instances()
        .image_id(base_image)
        .instance_type(instance_type.into())
        .min_count(1)
        .max_count(1)
        .subnet_id(dep_id(deps, subnet))
        .security_group_ids(dep_id(deps, security_group))
        .user_data(user_data)
        // The script ends with a power-off: that is the signal that the install is done.
        .instance_initiated_shutdown_behavior(ShutdownBehavior::Stop)
        .metadata_options(launch.metadata_options())
        .block_device_mappings(launch.root_device())
        .tag_specifications(spec(ResourceType::Instance))
        .tag_specifications(spec(ResourceType::Volume))
        .send()
        .await?;
    out.instances()
        .first()
        .and_then(|i| i.instance_id())
        .map(str::to_string)
        .ok_or_else(|| AwsError::other("RunInstances returned no instance"))
}

async fn instance_state(cx: &Cx, id: &str) -> Result<Option<InstanceStateName>, AwsError> {
    match cx.ec2.describe_instances().instance_ids(id).send().await {
        Ok(out) => Ok(out
            .reservations()
            .iter()
            .flat_map(|r| r.instances())
            .find_map(|i| i.state()?.name().cloned())),
        Err(e) => gone_if_not_found(e.into()),
    }
}

/// Waits for the builder's power-off, then reads its console for the bake's verdict.
async fn wait_until_stopped(
    cx: &Cx,
    want: &Want<'_, ImageSpec>,
    id: &str,
    budget: Duration,
) -> Result<(), AwsError> {
    poll::until(
        budget,
        Pace {
            first: Duration::from_secs(2),
            grow: Grow::Add(Duration::from_secs(2)),
            max: Duration::from_secs(15),
        },
        |waited| async move {
            let state = instance_state(cx, id).await?;
            let doing = match &state {
                Some(InstanceStateName::Pending) => "booting",
                _ => "installing the app",
            };
            cx.phase(
                want.key,
                Kind::Image,
                &format!("builder {id} {doing} for {} s", waited.as_secs()),
            );
            match state {
                Some(InstanceStateName::Stopped) => Ok(Look::Done(())),
                None | Some(InstanceStateName::Terminated | InstanceStateName::ShuttingDown) => {
                    Err(AwsError::other(format!(
                        "the builder instance {id} was terminated before the bake finished"
                    )))
                }
                Some(_) => Ok(Look::Again),
            }
        },
        |waited| {
            AwsError::other(format!(
                "the builder instance {id} was still installing after {} s; see `aws ec2 get-console-output --instance-id {id} --latest`, or run the same command again to keep waiting",
                waited.as_secs()
            ))
        },
    )
    .await?;
    let text = super::instance::console_text(cx, id).await?;
    if let Some(line) = text.lines().find(|l| l.contains("BOOKSTORE-BAKE-FAILED")) {
        let tail: Vec<&str> = text.lines().rev().take(15).collect();
        return Err(AwsError::other(format!(
            "the bake failed on the builder {id}: {line}\nlast console lines:\n{}",
            tail.into_iter().rev().collect::<Vec<_>>().join("\n")
        )));
    }
    Ok(())
}

async fn create_image(
    cx: &Cx,
    want: &Want<'_, ImageSpec>,
    builder: &str,
) -> Result<String, AwsError> {
    let ImageSpec {
        artifact,
        templates_sha256,
        ..
    } = want.spec;
    let mut tags = cx.ec2_tags(want.key, want.name);
    for (k, v) in [
        (TAG_ARTIFACT_SHA256, artifact.sha256.as_str()),
        (TAG_TEMPLATES_SHA256, templates_sha256.as_str()),
    ] {
        tags.push(aws_sdk_ec2::types::Tag::builder().key(k).value(v).build());
    }
    // Snapshots are tagged once the image exists: a snapshot tag specification is not accepted
    // everywhere CreateImage is.
    let out = cx
        .ec2
        .create_image()
        .instance_id(builder)
        .name(want.name)
        .description(format!(
            "BookStore {} app {} (bookstore bake)",
            artifact.kind.as_str(),
            &artifact.sha256[..12]
        ))
        .no_reboot(true)
        .tag_specifications(
            aws_sdk_ec2::types::TagSpecification::builder()
                .resource_type(ResourceType::Image)
                .set_tags(Some(tags))
                .build(),
        )
        .send()
        .await?;
    out.image_id()
        .map(str::to_string)
        .ok_or_else(|| AwsError::other("CreateImage returned no image id"))
}

async fn terminate(cx: &Cx, id: &str) -> Result<(), AwsError> {
    match cx.ec2.terminate_instances().instance_ids(id).send().await {
        Ok(_) => Ok(()),
        Err(e) => gone_if_not_found(AwsError::from(e)).map(|_: Option<()>| ()),
    }
}

fn read_builder(cx: &Cx, i: &aws_sdk_ec2::types::Instance) -> Observed {
    let mut o = Observed::new(
        Kind::Builder,
        ec2_tag(i.tags(), TAG_KEY).unwrap_or(BUILDER_KEY),
        i.instance_id().unwrap_or_default(),
    );
    o.name = ec2_tag(i.tags(), "Name").unwrap_or_default().to_string();
    o.owned = cx.owner.owns(ec2_tag_pairs(i.tags()));
    o.state = i
        .state()
        .and_then(|s| s.name())
        .map(|n| n.as_str().to_string())
        .unwrap_or_default();
    o
}

/// Builder instances are never wanted by a plan: `up` removes one an interrupted bake left once
/// the image exists, and `down` removes any.
#[async_trait]
impl Module for Builders {
    type Spec = NoSpec;

    fn drawing(&self, spec: &Self::Spec) -> Drawing {
        match *spec {}
    }

    fn cost(&self, _key: &str, spec: &Self::Spec, _plan: &[Desired]) -> Vec<Charge> {
        match *spec {}
    }

    fn instances_started(&self, spec: &Self::Spec) -> u32 {
        match *spec {}
    }

    fn actions(&self) -> Actions {
        Actions {
            observe: &["ec2:DescribeInstances"],
            change: &["ec2:GetConsoleOutput", "ec2:TerminateInstances"],
        }
    }

    fn teardown_after(&self) -> &'static [Kind] {
        &[]
    }

    async fn observe(&self, cx: &Cx) -> Result<Vec<Observed>, AwsError> {
        Ok(builders(cx, vec![])
            .await?
            .iter()
            .map(|i| read_builder(cx, i))
            .collect())
    }

    async fn refresh(&self, cx: &Cx, have: &Observed) -> Result<Option<Observed>, AwsError> {
        match cx
            .ec2
            .describe_instances()
            .instance_ids(&have.id)
            .send()
            .await
        {
            Ok(out) => Ok(out
                .reservations()
                .iter()
                .flat_map(|r| r.instances())
                .map(|i| read_builder(cx, i))
                .find(|o| o.state != "terminated")),
            Err(e) => gone_if_not_found(e.into()),
        }
    }

    async fn create(
        &self,
        _cx: &Cx,
        want: &Want<'_, NoSpec>,
        _deps: &Deps,
    ) -> Result<Observed, AwsError> {
        Err(AwsError::other(format!(
            "{}: builder instances are made by the bake, not planned",
            want.key
        )))
    }

    fn expected_facts(&self, _want: &Want<'_, NoSpec>, _deps: &Deps) -> BTreeMap<String, String> {
        BTreeMap::new()
    }

    async fn delete(&self, cx: &Cx, have: &Observed) -> Result<(), AwsError> {
        terminate(cx, &have.id).await
    }
}
