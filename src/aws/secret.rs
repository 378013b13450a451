//! Secrets Manager secrets the stack's instances read with their instance profile:
//! * the monolith's `database.placement: separate-vm` credentials, shared by the database VM (which
//!   sets the password) and the app VM (which logs in). The password is drawn here from the OS's
//!   random generator and goes straight into the secret: never into user-data, a log, the journal
//!   or the plan. (With one VM the password never leaves it.)
//! * the swarm's token store: created empty (`{}`); the first manager writes the join tokens into it,
//!   the other nodes read them to join. No token is ever in user-data.
//!
//! `down` deletes them without the recovery window, as the stack that used them is gone.

use std::collections::BTreeMap;

use async_trait::async_trait;
use aws_sdk_secretsmanager::types::{Filter, FilterNameStringType, Tag};
use ring::rand::SecureRandom;

use super::{AwsError, Cx, Deps, Observed, ResourceKind, TAG_ENV, TAG_KEY, gone_if_not_found};
use crate::plan::{Desired, Kind, SecretContents, Spec};

pub struct Secrets;

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
    o
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
impl ResourceKind for Secrets {
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

    async fn create(&self, cx: &Cx, want: &Desired, _deps: &Deps) -> Result<Observed, AwsError> {
        let Spec::Secret { contents } = &want.spec else {
            unreachable!("secret spec")
        };
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
        };
        let tags: Vec<Tag> = cx
            .owner
            .tags(&want.key, &want.name)
            .into_iter()
            .map(|(k, v)| Tag::builder().key(k).value(v).build())
            .collect();
        let out = cx
            .secrets
            .create_secret()
            .name(&want.name)
            .description(description)
            .secret_string(value)
            .set_tags(Some(tags))
            .send()
            .await?;
        let mut o = Observed::new(Kind::Secret, &want.key, out.arn().unwrap_or_default());
        o.name = want.name.clone();
        Ok(o)
    }

    fn expected_facts(&self, _want: &Desired, _deps: &Deps) -> BTreeMap<String, String> {
        BTreeMap::new()
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
