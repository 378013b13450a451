//! The internet-facing Application Load Balancer, plus the ELBv2 tag helpers its siblings share.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_elasticloadbalancingv2::types::{
    IpAddressType, LoadBalancerAttribute, LoadBalancerSchemeEnum, LoadBalancerTypeEnum, Tag,
};
use serde::Serialize;

use super::{
    Actions, AwsError, Budget, Charge, Cx, Deps, Desired, Drawing, Module, Observed, Place,
    TAG_KEY, Want, gone_if_not_found,
};
use crate::kinds::Kind;
use crate::prices;
use crate::reference::Ref;

/// What the plan says an application load balancer should be.
#[derive(Debug, Clone, Serialize)]
pub struct LoadBalancerSpec {
    pub subnets: Vec<Ref>,
    pub security_groups: Vec<Ref>,
    pub idle_timeout_seconds: u32,
}

pub struct LoadBalancers;

/// ELBv2 tags for a resource, as the API wants them.
pub fn elb_tags<S>(cx: &Cx, want: &Want<'_, S>) -> Vec<Tag> {
    cx.owner
        .tags(want.key, want.name)
        .into_iter()
        .map(|(k, v)| Tag::builder().key(k).value(v).build())
        .collect()
}

/// Tags of many ELBv2 resources, 20 ARNs per call (the API's limit).
pub async fn tags_of(
    cx: &Cx,
    arns: &[String],
) -> Result<HashMap<String, Vec<(String, String)>>, AwsError> {
    let mut all = HashMap::new();
    for chunk in arns.chunks(20) {
        let out = cx
            .elb
            .describe_tags()
            .set_resource_arns(Some(chunk.to_vec()))
            .send()
            .await?;
        for d in out.tag_descriptions() {
            let tags = d
                .tags()
                .iter()
                .filter_map(|t| {
                    Some((
                        t.key()?.to_string(),
                        t.value().unwrap_or_default().to_string(),
                    ))
                })
                .collect();
            all.insert(d.resource_arn().unwrap_or_default().to_string(), tags);
        }
    }
    Ok(all)
}

pub fn owned_key(cx: &Cx, tags: Option<&Vec<(String, String)>>) -> Option<String> {
    let tags = tags?;
    if !cx
        .owner
        .owns(tags.iter().map(|(k, v)| (k.as_str(), v.as_str())))
    {
        return None;
    }
    Some(
        tags.iter()
            .find(|(k, _)| k == TAG_KEY)
            .map(|(_, v)| v.clone())
            .unwrap_or_default(),
    )
}

fn read(lb: &aws_sdk_elasticloadbalancingv2::types::LoadBalancer, key: &str) -> Observed {
    let arn = lb.load_balancer_arn().unwrap_or_default();
    let mut o = Observed::new(Kind::LoadBalancer, key, arn);
    o.name = lb.load_balancer_name().unwrap_or_default().to_string();
    o.state = lb
        .state()
        .and_then(|s| s.code())
        .map(|c| c.as_str().to_string())
        .unwrap_or_default();
    o.ready = o.state == "active";
    o.attrs.insert(
        "dns_name".into(),
        lb.dns_name().unwrap_or_default().to_string(),
    );
    o.attrs
        .insert("vpc".into(), lb.vpc_id().unwrap_or_default().to_string());
    let mut subnets: Vec<&str> = lb
        .availability_zones()
        .iter()
        .filter_map(|z| z.subnet_id())
        .collect();
    subnets.sort();
    let mut groups: Vec<&str> = lb.security_groups().iter().map(String::as_str).collect();
    groups.sort();
    o.facts.insert("subnets".into(), subnets.join(","));
    o.facts.insert("security_groups".into(), groups.join(","));
    o.facts.insert(
        "scheme".into(),
        lb.scheme()
            .map(|s| s.as_str().to_string())
            .unwrap_or_default(),
    );
    o
}

fn wanted(want: &Want<'_, LoadBalancerSpec>, deps: &Deps) -> (Vec<String>, Vec<String>, u32) {
    let LoadBalancerSpec {
        subnets,
        security_groups,
        idle_timeout_seconds,
    } = want.spec;
    (
        super::dep_ids(deps, subnets),
        super::dep_ids(deps, security_groups),
        *idle_timeout_seconds,
    )
}

async fn set_attributes(cx: &Cx, arn: &str, idle_timeout: u32) -> Result<(), AwsError> {
    let attr = |k: &str, v: String| LoadBalancerAttribute::builder().key(k).value(v).build();
    cx.elb
        .modify_load_balancer_attributes()
        .load_balancer_arn(arn)
        .attributes(attr(
            "idle_timeout.timeout_seconds",
            idle_timeout.to_string(),
        ))
        // Requests with malformed headers are dropped instead of reaching the app.
        .attributes(attr(
            "routing.http.drop_invalid_header_fields.enabled",
            "true".into(),
        ))
        .send()
        .await?;
    Ok(())
}

#[async_trait]
impl Module for LoadBalancers {
    type Spec = LoadBalancerSpec;

    fn drawing(&self, spec: &Self::Spec) -> Drawing {
        let detail = "application load balancer".to_string();
        Drawing {
            detail,
            place: spec
                .security_groups
                .first()
                .cloned()
                .map_or(Place::Stores, Place::Group),
        }
    }

    fn cost(&self, key: &str, spec: &Self::Spec, _plan: &[Desired]) -> Vec<Charge> {
        let _ = spec;
        vec![Charge::Hourly {
            key: key.to_string(),
            what: "application load balancer + 2 public IPv4 (plus capacity units for traffic)"
                .into(),
            usd: prices::ALB_HOURLY + 2.0 * prices::PUBLIC_IPV4_HOURLY,
        }]
    }

    fn instances_started(&self, _spec: &Self::Spec) -> u32 {
        0
    }

    fn actions(&self) -> Actions {
        Actions {
            observe: &[
                "elasticloadbalancing:DescribeLoadBalancers",
                "elasticloadbalancing:DescribeTags",
            ],
            change: &[
                "elasticloadbalancing:CreateLoadBalancer",
                "elasticloadbalancing:AddTags",
                "elasticloadbalancing:ModifyLoadBalancerAttributes",
                "elasticloadbalancing:SetSecurityGroups",
                "elasticloadbalancing:SetSubnets",
                "elasticloadbalancing:DeleteLoadBalancer",
            ],
        }
    }

    fn outputs(&self, have: &Observed) -> Vec<(String, String)> {
        vec![
            ("load_balancer_dns".into(), have.attr("dns_name").into()),
            ("load_balancer_arn".into(), have.id.clone()),
        ]
    }

    fn teardown_after(&self) -> &'static [Kind] {
        &[Kind::Listener]
    }

    fn budget(&self) -> Budget {
        Budget {
            ready: Duration::from_secs(900),
            poll_max: Duration::from_secs(15),
        }
    }

    async fn observe(&self, cx: &Cx) -> Result<Vec<Observed>, AwsError> {
        let lbs: Vec<_> = cx
            .elb
            .describe_load_balancers()
            .into_paginator()
            .items()
            .send()
            .collect::<Result<Vec<_>, _>>()
            .await?;
        let arns: Vec<String> = lbs
            .iter()
            .filter_map(|l| l.load_balancer_arn().map(str::to_string))
            .collect();
        let tags = tags_of(cx, &arns).await?;
        Ok(lbs
            .iter()
            .filter_map(|lb| {
                let key = owned_key(cx, tags.get(lb.load_balancer_arn().unwrap_or_default()))?;
                Some(read(lb, &key))
            })
            .collect())
    }

    async fn refresh(&self, cx: &Cx, have: &Observed) -> Result<Option<Observed>, AwsError> {
        match cx
            .elb
            .describe_load_balancers()
            .load_balancer_arns(&have.id)
            .send()
            .await
        {
            Ok(out) => Ok(out.load_balancers().first().map(|lb| {
                let mut o = read(lb, &have.key);
                o.owned = have.owned;
                o
            })),
            Err(e) => gone_if_not_found(e.into()),
        }
    }

    async fn create(
        &self,
        cx: &Cx,
        want: &Want<'_, LoadBalancerSpec>,
        deps: &Deps,
    ) -> Result<Observed, AwsError> {
        let (subnets, groups, idle) = wanted(want, deps);
        let out = cx
            .elb
            .create_load_balancer()
            .name(want.name)
            .r#type(LoadBalancerTypeEnum::Application)
            .scheme(LoadBalancerSchemeEnum::InternetFacing)
            .ip_address_type(IpAddressType::Ipv4)
            .set_subnets(Some(subnets))
            .set_security_groups(Some(groups))
            .set_tags(Some(elb_tags(cx, want)))
            .send()
            .await?;
        let lb = out
            .load_balancers()
            .first()
            .ok_or_else(|| AwsError::other("CreateLoadBalancer returned nothing"))?;
        set_attributes(cx, lb.load_balancer_arn().unwrap_or_default(), idle).await?;
        Ok(read(lb, want.key))
    }

    fn expected_facts(
        &self,
        want: &Want<'_, LoadBalancerSpec>,
        deps: &Deps,
    ) -> BTreeMap<String, String> {
        let (subnets, groups, _) = wanted(want, deps);
        BTreeMap::from([
            ("subnets".into(), subnets.join(",")),
            ("security_groups".into(), groups.join(",")),
            ("scheme".into(), "internet-facing".into()),
        ])
    }

    async fn update(
        &self,
        cx: &Cx,
        want: &Want<'_, LoadBalancerSpec>,
        have: &Observed,
        deps: &Deps,
    ) -> Result<bool, AwsError> {
        let (subnets, groups, idle) = wanted(want, deps);
        if have.facts.get("scheme").map(String::as_str) != Some("internet-facing") {
            return Ok(false);
        }
        cx.elb
            .set_subnets()
            .load_balancer_arn(&have.id)
            .set_subnets(Some(subnets))
            .send()
            .await?;
        cx.elb
            .set_security_groups()
            .load_balancer_arn(&have.id)
            .set_security_groups(Some(groups))
            .send()
            .await?;
        set_attributes(cx, &have.id, idle).await?;
        Ok(true)
    }

    async fn delete(&self, cx: &Cx, have: &Observed) -> Result<(), AwsError> {
        cx.elb
            .delete_load_balancer()
            .load_balancer_arn(&have.id)
            .send()
            .await?;
        Ok(())
    }
}
