//! The data volume: an encrypted EBS volume that holds the monolith's database (and its password,
//! covers and ACME account), owned by the stack rather than by an instance, so that it outlives
//! instance replacements. The attachment belongs to the instance kind. `down` deletes it once its
//! instance is gone (AWS refuses while attached), first snapshotting it when the stack says
//! `database.final_snapshot: true`; that snapshot is left out of the stack's ownership on purpose,
//! so no later `down` or `up` deletes it.

use std::collections::BTreeMap;
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_ec2::types::{Filter, ResourceType, Tag, TagSpecification, VolumeType};
use serde::Serialize;

use super::poll::{self, Look, Pace};
use super::{
    Actions, AwsError, Budget, Charge, Cx, Deps, Desired, Drawing, Module, Observed, Place,
    TAG_KIND, Want, ec2_tag, ec2_tag_pairs, gone_if_not_found,
};
use crate::kinds::Kind;
use crate::prices;

/// An encrypted EBS data volume that outlives instances (the monolith's database files).
#[derive(Debug, Clone, Serialize)]
pub struct VolumeSpec {
    pub availability_zone: String,
    pub size_gb: u32,
    pub volume_type: String,
    /// `down` snapshots it first.
    pub final_snapshot: bool,
}

pub struct Volumes;

/// On the volume: whether `down` snapshots it first (down works from tags, without the stack).
const TAG_FINAL_SNAPSHOT: &str = "bookstore:final-snapshot";
/// On a final snapshot: what it was taken of. Not an ownership tag: it outlives the stack.
pub const TAG_SNAPSHOT_OF: &str = "bookstore:final-snapshot-of";

fn read(cx: &Cx, v: &aws_sdk_ec2::types::Volume) -> Observed {
    let tags = v.tags();
    let mut o = Observed::new(
        Kind::Volume,
        ec2_tag(tags, super::TAG_KEY).unwrap_or_default(),
        v.volume_id().unwrap_or_default(),
    );
    o.name = ec2_tag(tags, "Name").unwrap_or_default().to_string();
    o.owned = cx.owner.owns(ec2_tag_pairs(tags));
    o.state = v
        .state()
        .map(|s| s.as_str().to_string())
        .unwrap_or_default();
    o.ready = matches!(o.state.as_str(), "available" | "in-use");
    let attached = v
        .attachments()
        .iter()
        .find(|a| a.state().map(|s| s.as_str()) != Some("detached"));
    o.attrs.insert(
        "attached_to".into(),
        attached
            .and_then(|a| a.instance_id())
            .unwrap_or_default()
            .into(),
    );
    o.attrs.insert(
        "attachment_state".into(),
        attached
            .and_then(|a| a.state())
            .map(|s| s.as_str().to_string())
            .unwrap_or_default(),
    );
    o.facts.insert(
        "encrypted".into(),
        v.encrypted().unwrap_or_default().to_string(),
    );
    o.facts
        .insert("size_gb".into(), v.size().unwrap_or_default().to_string());
    o.facts.insert(
        "volume_type".into(),
        v.volume_type()
            .map(|t| t.as_str().to_string())
            .unwrap_or_default(),
    );
    o.facts.insert(
        "availability_zone".into(),
        v.availability_zone().unwrap_or_default().into(),
    );
    o.facts.insert(
        "final_snapshot".into(),
        ec2_tag(tags, TAG_FINAL_SNAPSHOT).unwrap_or("false").into(),
    );
    o
}

fn kind_filter() -> Filter {
    Filter::builder()
        .name(format!("tag:{TAG_KIND}"))
        .values(Kind::Volume.as_str())
        .build()
}

#[async_trait]
impl Module for Volumes {
    type Spec = VolumeSpec;

    fn drawing(&self, spec: &Self::Spec) -> Drawing {
        let detail = format!(
            "EBS {} {} GB (database files)",
            spec.volume_type, spec.size_gb
        );
        Drawing {
            detail,
            place: Place::ReferredBy(&[Kind::Instance]),
        }
    }

    fn cost(&self, key: &str, spec: &Self::Spec, _plan: &[Desired]) -> Vec<Charge> {
        vec![Charge::Hourly {
            key: key.to_string(),
            what: format!("{} GB {}", spec.size_gb, spec.volume_type),
            usd: prices::gb_month_hourly(
                spec.size_gb as f64,
                prices::ebs_gb_month(&spec.volume_type),
            ),
        }]
    }

    fn instances_started(&self, _spec: &Self::Spec) -> u32 {
        0
    }

    fn actions(&self) -> Actions {
        Actions {
            observe: &["ec2:DescribeVolumes", "ec2:DescribeSnapshots"],
            change: &[
                "ec2:CreateVolume",
                "ec2:CreateTags",
                "ec2:CreateSnapshot",
                "ec2:DeleteVolume",
            ],
        }
    }

    fn budget(&self) -> Budget {
        Budget {
            ready: Duration::from_secs(300),
            poll_max: Duration::from_secs(5),
        }
    }

    fn teardown_after(&self) -> &'static [Kind] {
        &[Kind::Instance]
    }

    async fn observe(&self, cx: &Cx) -> Result<Vec<Observed>, AwsError> {
        let mut filters = cx.ec2_owner_filters();
        filters.push(kind_filter());
        let out = cx
            .ec2
            .describe_volumes()
            .set_filters(Some(filters))
            .send()
            .await?;
        Ok(out
            .volumes()
            .iter()
            .map(|v| read(cx, v))
            .filter(|o| o.state != "deleted")
            .collect())
    }

    async fn refresh(&self, cx: &Cx, have: &Observed) -> Result<Option<Observed>, AwsError> {
        match cx.ec2.describe_volumes().volume_ids(&have.id).send().await {
            Ok(out) => Ok(out
                .volumes()
                .first()
                .map(|v| read(cx, v))
                .filter(|o| o.state != "deleted")),
            Err(e) => gone_if_not_found(e.into()),
        }
    }

    async fn create(
        &self,
        cx: &Cx,
        want: &Want<'_, VolumeSpec>,
        _deps: &Deps,
    ) -> Result<Observed, AwsError> {
        let VolumeSpec {
            availability_zone,
            size_gb,
            volume_type,
            final_snapshot,
        } = want.spec;
        let mut tags = cx.ec2_tags(want.key, want.name);
        tags.push(Tag::builder().key(TAG_KIND).value("volume").build());
        tags.push(
            Tag::builder()
                .key(TAG_FINAL_SNAPSHOT)
                .value(final_snapshot.to_string())
                .build(),
        );
        let out = cx
            .ec2
            .create_volume()
            .availability_zone(availability_zone)
            .size(*size_gb as i32)
            .volume_type(VolumeType::from(volume_type.as_str()))
            .encrypted(true)
            .tag_specifications(
                TagSpecification::builder()
                    .resource_type(ResourceType::Volume)
                    .set_tags(Some(tags))
                    .build(),
            )
            .send()
            .await?;
        let mut o = Observed::new(Kind::Volume, want.key, out.volume_id().unwrap_or_default());
        o.name = want.name.to_string();
        o.state = out
            .state()
            .map(|s| s.as_str().to_string())
            .unwrap_or_else(|| "creating".into());
        o.ready = o.state == "available";
        Ok(o)
    }

    fn expected_facts(
        &self,
        want: &Want<'_, VolumeSpec>,
        _deps: &Deps,
    ) -> BTreeMap<String, String> {
        let VolumeSpec {
            availability_zone,
            size_gb,
            volume_type,
            final_snapshot,
        } = want.spec;
        BTreeMap::from([
            ("encrypted".into(), "true".into()),
            ("size_gb".into(), size_gb.to_string()),
            ("volume_type".into(), volume_type.clone()),
            ("availability_zone".into(), availability_zone.clone()),
            ("final_snapshot".into(), final_snapshot.to_string()),
        ])
    }

    /// Only the snapshot choice changes in place: a data volume is never replaced by bookstore
    /// (that would lose the data); other drift is shown for a person to decide.
    async fn update(
        &self,
        cx: &Cx,
        want: &Want<'_, VolumeSpec>,
        have: &Observed,
        deps: &Deps,
    ) -> Result<bool, AwsError> {
        let expected = self.expected_facts(want, deps);
        let only_snapshot = expected
            .iter()
            .all(|(k, v)| k == "final_snapshot" || have.facts.get(k) == Some(v));
        if !only_snapshot {
            return Ok(false);
        }
        cx.ec2
            .create_tags()
            .resources(&have.id)
            .tags(
                Tag::builder()
                    .key(TAG_FINAL_SNAPSHOT)
                    .value(&expected["final_snapshot"])
                    .build(),
            )
            .send()
            .await?;
        Ok(true)
    }

    async fn delete(&self, cx: &Cx, have: &Observed) -> Result<(), AwsError> {
        if have.facts.get("final_snapshot").map(String::as_str) == Some("true") {
            final_snapshot(cx, have).await?;
        }
        cx.ec2.delete_volume().volume_id(&have.id).send().await?;
        Ok(())
    }

    fn outputs(&self, have: &Observed) -> Vec<(String, String)> {
        let name = if have.key == "data" {
            "data_volume_id".to_string()
        } else {
            format!("{}_volume_id", have.key.replace('-', "_"))
        };
        vec![(name, have.id.clone())]
    }
}

/// One snapshot per volume, even when `down` is retried: an existing one is reused. Waits until
/// it is complete, so the data is safe before the volume goes.
async fn final_snapshot(cx: &Cx, have: &Observed) -> Result<(), AwsError> {
    let of = format!("{}/{}/{}", cx.owner.stack, cx.owner.env, have.key);
    let existing = cx
        .ec2
        .describe_snapshots()
        .owner_ids("self")
        .filters(Filter::builder().name("volume-id").values(&have.id).build())
        .filters(
            Filter::builder()
                .name(format!("tag:{TAG_SNAPSHOT_OF}"))
                .values(&of)
                .build(),
        )
        .send()
        .await?;
    let id = match existing.snapshots().first().and_then(|s| s.snapshot_id()) {
        Some(id) => id.to_string(),
        None => {
            let tags = vec![
                Tag::builder().key(TAG_SNAPSHOT_OF).value(&of).build(),
                Tag::builder()
                    .key("Name")
                    .value(format!("{} final snapshot", have.name))
                    .build(),
            ];
            cx.ec2
                .create_snapshot()
                .volume_id(&have.id)
                .description(format!("bookstore final snapshot of {of} ({})", have.id))
                .tag_specifications(
                    TagSpecification::builder()
                        .resource_type(ResourceType::Snapshot)
                        .set_tags(Some(tags))
                        .build(),
                )
                .send()
                .await?
                .snapshot_id()
                .unwrap_or_default()
                .to_string()
        }
    };
    let id = &id;
    poll::until(
        Duration::from_secs(1800),
        Pace::every(Duration::from_secs(3)),
        |_| async move {
            let out = cx.ec2.describe_snapshots().snapshot_ids(id).send().await?;
            let state = out
                .snapshots()
                .first()
                .and_then(|s| s.state())
                .map(|s| s.as_str().to_string())
                .unwrap_or_default();
            match state.as_str() {
                "completed" => Ok(Look::Done(())),
                "error" => Err(AwsError::other(format!(
                    "the final snapshot {id} of {} failed; the volume is kept",
                    have.id
                ))),
                _ => Ok(Look::Again),
            }
        },
        |_| {
            AwsError::other(format!(
                "the final snapshot {id} was not complete after 30 minutes; the volume is kept: run down again to keep waiting"
            ))
        },
    )
    .await
}
