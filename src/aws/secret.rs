//! Secrets Manager secrets the stack's instances read with their instance profile:
//! * the monolith's `database.placement: separate-vm` credentials, shared by the database VM (which
//!   sets the password) and the app VM (which logs in). The password is drawn here from the OS's
//!   random generator and goes straight into the secret: never into user-data, a log, the journal
//!   or the plan. (With one VM the password never leaves it.)
//! * the swarm's token store: created empty (`{}`); the first manager writes the join tokens into it,
//!   the other nodes read them to join. No token is ever in user-data.
//! * the swarm's release: the app image the swarm should run, with its sha256 and a presigned URL of
//!   the app binary. Written again (`update`) when the app changes: the nodes build the image and
//!   the swarm's leader rolls the service (templates/swarm/sync). Its image is also a tag, so drift
//!   is seen without reading the value.
//! * the swarm's status: created empty; the swarm's leader writes what Docker sees into it, which
//!   `status` shows (`details`).
//!
//! `down` deletes them without the recovery window, as the stack that used them is gone.

use std::collections::BTreeMap;

use async_trait::async_trait;
use aws_sdk_secretsmanager::types::{Filter, FilterNameStringType, Tag};
use ring::rand::SecureRandom;
use serde::Serialize;

use super::{
    Actions, AwsError, Charge, Cx, Deps, Desired, Drawing, Module, Observed, Place, Section,
    TAG_ENV, TAG_KEY, Want, dep_id, gone_if_not_found,
};
use crate::artifact::ArtifactKind;
use crate::kinds::Kind;
use crate::prices;
use crate::reference::Ref;

/// A Secrets Manager secret: generated database credentials shared by two VMs, or an empty
/// store the swarm's first manager writes its join tokens to.
#[derive(Debug, Clone, Serialize)]
pub struct SecretSpec {
    pub contents: SecretContents,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
#[serde(tag = "contents", rename_all = "kebab-case")]
pub enum SecretContents {
    /// `{"username": "bookstore", "password": <48 random hex digits>}`.
    DbCredentials,
    /// `{}`: filled by the instances (the swarm's join tokens).
    Empty,
    /// The app image the swarm should run: `{"image", "sha256", "url"}`, the URL a presigned GET
    /// of the app binary in the artifact bucket. Written again when the app changes; the nodes
    /// build the image from it and the swarm's leader rolls the service (templates/swarm/sync).
    Release {
        /// The image that carries the app (its artifact's sha256 names the release).
        image: Ref,
        /// The artifact bucket the binary is in.
        bucket: Ref,
        /// The app's sha256 (it names the image: `bookstore.local/app:<12 hex>`) and its kind:
        /// only a binary can be downloaded by the nodes.
        sha256: String,
        artifact: ArtifactKind,
    },
    /// `{}`: the swarm's leader reports what Docker sees into it (nodes, service, replicas).
    SwarmStatus,
}

impl SecretContents {
    pub fn as_str(&self) -> &'static str {
        match self {
            SecretContents::DbCredentials => "db-credentials",
            SecretContents::Empty => "swarm-tokens",
            SecretContents::Release { .. } => "release",
            SecretContents::SwarmStatus => "swarm-status",
        }
    }
}

pub struct Secrets;

/// What the secret holds (`release`, `swarm-status`, ...): `details` reads only a status.
const TAG_CONTENTS: &str = "bookstore:contents";
/// On a release: the image it names.
const TAG_RELEASE_IMAGE: &str = "bookstore:release-image";
/// The nodes download the binary within a minute of a release; a node that was stopped longer
/// than this gets the image with its next replacement (its AMI carries it).
const RELEASE_URL_LIFETIME: std::time::Duration = std::time::Duration::from_secs(6 * 3600);

fn read(cx: &Cx, arn: &str, name: &str, tags: &[Tag]) -> Observed {
    let pairs = tags.iter().filter_map(|t| Some((t.key()?, t.value()?)));
    let key = tags
        .iter()
        .find(|t| t.key() == Some(TAG_KEY))
        .and_then(|t| t.value())
        .unwrap_or_default();
    let mut o = Observed::new(Kind::Secret, key, arn);
    o.name = name.to_string();
    o.owned = cx.owner.owns(pairs);
    for (fact, tag) in [
        ("contents", TAG_CONTENTS),
        ("release_image", TAG_RELEASE_IMAGE),
    ] {
        if let Some(v) = tags
            .iter()
            .find(|t| t.key() == Some(tag))
            .and_then(|t| t.value())
        {
            o.facts.insert(fact.into(), v.into());
        }
    }
    o
}

/// The release's value and its image: the presigned URL is made anew each time it is written.
async fn release_value(
    cx: &Cx,
    contents: &SecretContents,
    deps: &Deps,
) -> Result<Option<(String, String)>, AwsError> {
    let SecretContents::Release {
        bucket,
        sha256,
        artifact,
        ..
    } = contents
    else {
        return Ok(None);
    };
    let image = crate::templates::swarm_image(sha256);
    // Only a binary can be downloaded and run; an app built from source reaches new nodes only.
    let url = match artifact {
        ArtifactKind::Binary => {
            let key = crate::artifact::binary_object_key(sha256);
            super::bucket::presign_get(cx, dep_id(deps, bucket), &key, RELEASE_URL_LIFETIME).await?
        }
        ArtifactKind::Source => String::new(),
    };
    let value = serde_json::json!({"image": image, "sha256": sha256, "url": url}).to_string();
    Ok(Some((value, image)))
}

fn tag(key: &str, value: &str) -> Tag {
    Tag::builder().key(key).value(value).build()
}

/// `status`'s view of the swarm, as its leader last reported it.
#[derive(serde::Deserialize, Default)]
struct Report {
    #[serde(default)]
    nodes: Vec<BTreeMap<String, serde_json::Value>>,
    service: Option<BTreeMap<String, String>>,
    /// Every service of the stack (the split's three; the one service's too since this field).
    #[serde(default)]
    services: Vec<BTreeMap<String, String>>,
    #[serde(default)]
    release: String,
    #[serde(default)]
    at: String,
}

fn text(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// 24 random bytes as 48 hex digits: what the setup script accepts.
fn new_password() -> Result<String, AwsError> {
    let mut bytes = [0u8; 24];
    ring::rand::SystemRandom::new()
        .fill(&mut bytes)
        .map_err(|_| AwsError::other("the system's random generator failed"))?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

#[async_trait]
impl Module for Secrets {
    type Spec = SecretSpec;

    fn drawing(&self, spec: &Self::Spec) -> Drawing {
        let detail = format!("secret ({})", spec.contents.as_str());
        Drawing {
            detail,
            place: Place::Stores,
        }
    }

    fn cost(&self, key: &str, spec: &Self::Spec, _plan: &[Desired]) -> Vec<Charge> {
        let _ = spec;
        vec![Charge::Hourly {
            key: key.to_string(),
            what: "Secrets Manager secret".into(),
            usd: prices::SECRET_MONTH / prices::HOURS_PER_MONTH,
        }]
    }

    fn instances_started(&self, _spec: &Self::Spec) -> u32 {
        0
    }

    fn actions(&self) -> Actions {
        Actions {
            observe: &[
                "secretsmanager:ListSecrets",
                "secretsmanager:DescribeSecret",
                "secretsmanager:GetSecretValue",
            ],
            change: &[
                "secretsmanager:CreateSecret",
                "secretsmanager:TagResource",
                "secretsmanager:PutSecretValue",
                "secretsmanager:DeleteSecret",
            ],
        }
    }

    fn teardown_after(&self) -> &'static [Kind] {
        &[Kind::Instance]
    }

    async fn observe(&self, cx: &Cx) -> Result<Vec<Observed>, AwsError> {
        let mut found = Vec::new();
        let mut token = None;
        loop {
            let out = cx
                .secrets
                .list_secrets()
                .filters(
                    Filter::builder()
                        .key(FilterNameStringType::TagKey)
                        .values(TAG_ENV)
                        .build(),
                )
                .set_next_token(token)
                .send()
                .await?;
            for s in out.secret_list() {
                if s.deleted_date().is_some() {
                    continue;
                }
                let o = read(
                    cx,
                    s.arn().unwrap_or_default(),
                    s.name().unwrap_or_default(),
                    s.tags(),
                );
                if o.owned {
                    found.push(o);
                }
            }
            token = out.next_token().map(str::to_string);
            if token.is_none() {
                return Ok(found);
            }
        }
    }

    async fn refresh(&self, cx: &Cx, have: &Observed) -> Result<Option<Observed>, AwsError> {
        match cx
            .secrets
            .describe_secret()
            .secret_id(&have.id)
            .send()
            .await
        {
            Ok(s) if s.deleted_date().is_some() => Ok(None),
            Ok(s) => Ok(Some(read(
                cx,
                s.arn().unwrap_or_default(),
                s.name().unwrap_or_default(),
                s.tags(),
            ))),
            Err(e) => gone_if_not_found(e.into()),
        }
    }

    async fn create(
        &self,
        cx: &Cx,
        want: &Want<'_, SecretSpec>,
        deps: &Deps,
    ) -> Result<Observed, AwsError> {
        let SecretSpec { contents } = want.spec;
        let release = release_value(cx, contents, deps).await?;
        let (value, description) = match contents {
            SecretContents::DbCredentials => (
                format!(
                    r#"{{"username":"bookstore","password":"{}"}}"#,
                    new_password()?
                ),
                "bookstore: the monolith's MariaDB credentials (separate database VM)",
            ),
            SecretContents::Empty => (
                "{}".to_string(),
                "bookstore: the swarm's join tokens, written by its first manager",
            ),
            SecretContents::Release { .. } => (
                release.as_ref().map(|r| r.0.clone()).unwrap_or_default(),
                "bookstore: the app image the swarm runs (written by bookstore, read by the nodes)",
            ),
            SecretContents::SwarmStatus => (
                "{}".to_string(),
                "bookstore: what Docker sees in the swarm, written by its leader",
            ),
        };
        let mut tags: Vec<Tag> = cx
            .owner
            .tags(want.key, want.name)
            .into_iter()
            .map(|(k, v)| tag(&k, &v))
            .collect();
        tags.push(tag(TAG_CONTENTS, contents.as_str()));
        if let Some((_, image)) = &release {
            tags.push(tag(TAG_RELEASE_IMAGE, image));
        }
        let out = cx
            .secrets
            .create_secret()
            .name(want.name)
            .description(description)
            .secret_string(value)
            .set_tags(Some(tags))
            .send()
            .await?;
        let mut o = Observed::new(Kind::Secret, want.key, out.arn().unwrap_or_default());
        o.name = want.name.to_string();
        o.facts.insert("contents".into(), contents.as_str().into());
        if let Some((_, image)) = release {
            o.facts.insert("release_image".into(), image);
        }
        Ok(o)
    }

    fn expected_facts(
        &self,
        want: &Want<'_, SecretSpec>,
        _deps: &Deps,
    ) -> BTreeMap<String, String> {
        match want.spec {
            SecretSpec {
                contents: SecretContents::Release { sha256, .. },
            } => BTreeMap::from([(
                "release_image".to_string(),
                crate::templates::swarm_image(sha256),
            )]),
            _ => BTreeMap::new(),
        }
    }

    /// A new app: the release names its image, and the swarm rolls onto it.
    async fn update(
        &self,
        cx: &Cx,
        want: &Want<'_, SecretSpec>,
        have: &Observed,
        deps: &Deps,
    ) -> Result<bool, AwsError> {
        let SecretSpec { contents } = want.spec;
        let Some((value, image)) = release_value(cx, contents, deps).await? else {
            return Ok(false);
        };
        cx.secrets
            .put_secret_value()
            .secret_id(&have.id)
            .secret_string(value)
            .send()
            .await?;
        cx.secrets
            .tag_resource()
            .secret_id(&have.id)
            .tags(tag(TAG_RELEASE_IMAGE, &image))
            .send()
            .await?;
        Ok(true)
    }

    /// A swarm's status secret: the nodes and the service as the swarm's leader last saw them.
    async fn details(
        &self,
        cx: &Cx,
        have: &Observed,
        _all: &[Observed],
    ) -> Result<Vec<Section>, AwsError> {
        if have.facts.get("contents").map(String::as_str)
            != Some(SecretContents::SwarmStatus.as_str())
        {
            return Ok(vec![]);
        }
        let value = cx
            .secrets
            .get_secret_value()
            .secret_id(&have.id)
            .send()
            .await?;
        let report: Report =
            serde_json::from_str(value.secret_string().unwrap_or("{}")).unwrap_or_default();
        let nodes = report
            .nodes
            .iter()
            .map(|n| {
                [
                    "hostname",
                    "role",
                    "state",
                    "availability",
                    "leader",
                    "address",
                ]
                .iter()
                .map(|k| (k.to_string(), n.get(*k).map(text).unwrap_or_default()))
                .collect()
            })
            .collect();
        // A report of a sync before `services` names its one service only.
        let services = if report.services.is_empty() {
            report.service.into_iter().collect()
        } else {
            report.services
        };
        let service = services
            .into_iter()
            .map(|mut s| {
                s.insert("release".into(), report.release.clone());
                s.insert("reported_at".into(), report.at.clone());
                s
            })
            .collect();
        Ok(vec![
            Section {
                name: "swarm_nodes".into(),
                rows: nodes,
            },
            Section {
                name: "swarm_service".into(),
                rows: service,
            },
        ])
    }

    async fn delete(&self, cx: &Cx, have: &Observed) -> Result<(), AwsError> {
        cx.secrets
            .delete_secret()
            .secret_id(&have.id)
            .force_delete_without_recovery(true)
            .send()
            .await?;
        Ok(())
    }

    fn outputs(&self, have: &Observed) -> Vec<(String, String)> {
        vec![(
            format!("{}_arn", have.key.replace('-', "_")),
            have.id.clone(),
        )]
    }
}
