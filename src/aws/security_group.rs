//! Security groups. Rules between tiers name the source group, never a CIDR, so only the tier in
//! front can reach the one behind it.

use std::collections::BTreeMap;

use async_trait::async_trait;
use aws_sdk_ec2::types::{IpPermission, IpRange, ResourceType, UserIdGroupPair};
use serde::Serialize;

use super::{
    Actions, AwsError, Charge, Cx, Deps, Desired, Drawing, Module, Observed, Place, Want, dep_id,
    ec2_tag, ec2_tag_pairs, gone_if_not_found,
};
use crate::kinds::Kind;
use crate::reference::Ref;

/// What the plan says a security group should be.
#[derive(Debug, Clone, Serialize)]
pub struct SecurityGroupSpec {
    pub vpc: Ref,
    pub description: String,
    pub ingress: Vec<Ingress>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Ingress {
    pub protocol: Protocol,
    pub port: u16,
    /// `None`: from anywhere (0.0.0.0/0). `Some(key)`: from the security group with that key only
    /// (its own key: from the members of the group itself).
    pub from_group: Option<Ref>,
    pub description: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    Tcp,
    Udp,
}

impl Protocol {
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Tcp => "tcp",
            Protocol::Udp => "udp",
        }
    }
}

pub struct SecurityGroups;

const ANYWHERE: &str = "0.0.0.0/0";

/// A rule's source that is the group itself (the swarm's nodes talk to each other).
const ITSELF: &str = "self";

/// One rule as text: `tcp/443<-0.0.0.0/0`, `tcp/8080<-sg-0abc` or `udp/4789<-self`.
fn rule_text(protocol: &str, port: i32, source: &str) -> String {
    format!("{protocol}/{port}<-{source}")
}

fn read(cx: &Cx, g: &aws_sdk_ec2::types::SecurityGroup) -> Observed {
    let mut o = Observed::new(
        Kind::SecurityGroup,
        ec2_tag(g.tags(), super::TAG_KEY).unwrap_or_default(),
        g.group_id().unwrap_or_default(),
    );
    o.name = g.group_name().unwrap_or_default().to_string();
    o.owned = cx.owner.owns(ec2_tag_pairs(g.tags()));
    let mut rules = Vec::new();
    let mut group_sources = Vec::new();
    let own = g.group_id().unwrap_or_default();
    for p in g.ip_permissions() {
        let port = p.from_port().unwrap_or(-1);
        let protocol = p.ip_protocol().unwrap_or("tcp");
        for r in p.ip_ranges() {
            rules.push(rule_text(protocol, port, r.cidr_ip().unwrap_or_default()));
        }
        for pair in p.user_id_group_pairs() {
            let source = pair.group_id().unwrap_or_default();
            let source = if source == own { ITSELF } else { source };
            let text = rule_text(protocol, port, source);
            group_sources.push(text.clone());
            rules.push(text);
        }
    }
    rules.sort();
    o.facts.insert("ingress".into(), rules.join(" "));
    o.facts
        .insert("vpc".into(), g.vpc_id().unwrap_or_default().to_string());
    o.attrs
        .insert("group_sources".into(), group_sources.join(","));
    o
}

fn permission(rule: &Ingress, own: &str, deps: &Deps) -> IpPermission {
    let p = IpPermission::builder()
        .ip_protocol(rule.protocol.as_str())
        .from_port(rule.port.into())
        .to_port(rule.port.into());
    match &rule.from_group {
        None => p.ip_ranges(
            IpRange::builder()
                .cidr_ip(ANYWHERE)
                .description(&rule.description)
                .build(),
        ),
        Some(key) => p.user_id_group_pairs(
            UserIdGroupPair::builder()
                .group_id(deps.get(key.as_str()).map_or(own, |d| d.id.as_str()))
                .description(&rule.description)
                .build(),
        ),
    }
    .build()
}

/// The stack's rules as text and as permissions; `own` is the group's id (rules from the group
/// itself name it; it is not among the dependencies).
fn wanted_rules(
    key: &str,
    own: &str,
    ingress: &[Ingress],
    deps: &Deps,
) -> Vec<(String, IpPermission)> {
    ingress
        .iter()
        .map(|r| {
            let source = match &r.from_group {
                None => ANYWHERE,
                Some(k) if k == key => ITSELF,
                Some(k) => dep_id(deps, k),
            };
            (
                rule_text(r.protocol.as_str(), r.port.into(), source),
                permission(r, own, deps),
            )
        })
        .collect()
}

/// Authorizes the missing rules and revokes the ones the stack does not ask for.
async fn converge(
    cx: &Cx,
    have: &Observed,
    ingress: &[Ingress],
    deps: &Deps,
) -> Result<(), AwsError> {
    let key = have.key.as_str();
    let present: Vec<&str> = have
        .facts
        .get("ingress")
        .map(|r| r.split(' ').filter(|s| !s.is_empty()).collect())
        .unwrap_or_default();
    let wanted = wanted_rules(key, &have.id, ingress, deps);
    let missing: Vec<IpPermission> = wanted
        .iter()
        .filter(|(t, _)| !present.contains(&t.as_str()))
        .map(|(_, p)| p.clone())
        .collect();
    if !missing.is_empty() {
        cx.ec2
            .authorize_security_group_ingress()
            .group_id(&have.id)
            .set_ip_permissions(Some(missing))
            .send()
            .await?;
    }
    let extra: Vec<IpPermission> = present
        .iter()
        .filter(|t| !wanted.iter().any(|(w, _)| w == *t))
        .filter_map(|t| parse_rule(t, &have.id))
        .collect();
    if !extra.is_empty() {
        cx.ec2
            .revoke_security_group_ingress()
            .group_id(&have.id)
            .set_ip_permissions(Some(extra))
            .send()
            .await?;
    }
    Ok(())
}

fn parse_rule(text: &str, own: &str) -> Option<IpPermission> {
    let (protocol, rest) = text.split_once('/')?;
    let (port, source) = rest.split_once("<-")?;
    let port: i32 = port.parse().ok()?;
    let source = if source == ITSELF { own } else { source };
    let p = IpPermission::builder()
        .ip_protocol(protocol)
        .from_port(port)
        .to_port(port);
    Some(if source.starts_with("sg-") {
        p.user_id_group_pairs(UserIdGroupPair::builder().group_id(source).build())
            .build()
    } else {
        p.ip_ranges(IpRange::builder().cidr_ip(source).build())
            .build()
    })
}

#[async_trait]
impl Module for SecurityGroups {
    type Spec = SecurityGroupSpec;

    fn drawing(&self, _spec: &Self::Spec) -> Drawing {
        let detail = "security group".to_string();
        Drawing {
            detail,
            place: Place::Container,
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
            observe: &["ec2:DescribeSecurityGroups"],
            change: &[
                "ec2:CreateSecurityGroup",
                "ec2:CreateTags",
                "ec2:AuthorizeSecurityGroupIngress",
                "ec2:RevokeSecurityGroupIngress",
                "ec2:DeleteSecurityGroup",
            ],
        }
    }

    /// Load balancers, databases, mount targets and instances hold network interfaces in the
    /// group; deleting an Auto Scaling group ends once its instances have terminated.
    fn teardown_after(&self) -> &'static [Kind] {
        &[
            Kind::LoadBalancer,
            Kind::Database,
            Kind::MountTarget,
            Kind::AutoScalingGroup,
            Kind::Builder,
            Kind::Instance,
            Kind::NodeTemplate,
            Kind::NodeGroup,
        ]
    }

    async fn observe(&self, cx: &Cx) -> Result<Vec<Observed>, AwsError> {
        let out = cx
            .ec2
            .describe_security_groups()
            .set_filters(Some(cx.ec2_owner_filters()))
            .send()
            .await?;
        Ok(out.security_groups().iter().map(|g| read(cx, g)).collect())
    }

    async fn refresh(&self, cx: &Cx, have: &Observed) -> Result<Option<Observed>, AwsError> {
        match cx
            .ec2
            .describe_security_groups()
            .group_ids(&have.id)
            .send()
            .await
        {
            Ok(out) => Ok(out.security_groups().first().map(|g| read(cx, g))),
            Err(e) => gone_if_not_found(e.into()),
        }
    }

    async fn create(
        &self,
        cx: &Cx,
        want: &Want<'_, SecurityGroupSpec>,
        deps: &Deps,
    ) -> Result<Observed, AwsError> {
        let SecurityGroupSpec {
            vpc,
            description,
            ingress,
        } = want.spec;
        let out = cx
            .ec2
            .create_security_group()
            .group_name(want.name)
            .description(description)
            .vpc_id(dep_id(deps, vpc))
            .tag_specifications(cx.ec2_tag_spec(ResourceType::SecurityGroup, want.key, want.name))
            .send()
            .await?;
        let id = out.group_id().unwrap_or_default().to_string();
        let mut bare = Observed::new(Kind::SecurityGroup, want.key, &id);
        bare.name = want.name.to_string();
        converge(cx, &bare, ingress, deps).await?;
        Ok(self.refresh(cx, &bare).await?.unwrap_or(bare))
    }

    fn expected_facts(
        &self,
        want: &Want<'_, SecurityGroupSpec>,
        deps: &Deps,
    ) -> BTreeMap<String, String> {
        let SecurityGroupSpec { vpc, ingress, .. } = want.spec;
        let mut rules: Vec<String> = wanted_rules(want.key, "", ingress, deps)
            .into_iter()
            .map(|(t, _)| t)
            .collect();
        rules.sort();
        BTreeMap::from([
            ("ingress".into(), rules.join(" ")),
            ("vpc".into(), dep_id(deps, vpc).to_string()),
        ])
    }

    async fn update(
        &self,
        cx: &Cx,
        want: &Want<'_, SecurityGroupSpec>,
        have: &Observed,
        deps: &Deps,
    ) -> Result<bool, AwsError> {
        let SecurityGroupSpec { vpc, ingress, .. } = want.spec;
        if have.facts.get("vpc").map(String::as_str) != Some(dep_id(deps, vpc)) {
            return Ok(false);
        }
        converge(cx, have, ingress, deps).await?;
        Ok(true)
    }

    async fn delete(&self, cx: &Cx, have: &Observed) -> Result<(), AwsError> {
        // Rules that name other groups keep those groups alive; drop them first so the groups of a
        // stack can be deleted in any order.
        let referencing: Vec<IpPermission> = have
            .attr("group_sources")
            .split(',')
            .filter_map(|t| parse_rule(t, &have.id))
            .collect();
        if !referencing.is_empty() {
            let revoked = cx
                .ec2
                .revoke_security_group_ingress()
                .group_id(&have.id)
                .set_ip_permissions(Some(referencing))
                .send()
                .await;
            if let Err(e) = revoked {
                let e = AwsError::from(e);
                // Already revoked by an earlier attempt, or the source group is gone: carry on.
                if !matches!(
                    e.code.as_deref(),
                    Some("InvalidPermission.NotFound" | "InvalidGroup.NotFound")
                ) {
                    return Err(e);
                }
            }
        }
        cx.ec2
            .delete_security_group()
            .group_id(&have.id)
            .send()
            .await?;
        Ok(())
    }
}
