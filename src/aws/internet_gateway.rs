//! The internet gateway, attached to the stack's VPC.

use std::collections::BTreeMap;

use async_trait::async_trait;
use aws_sdk_ec2::types::ResourceType;
use serde::Serialize;

use super::{
    Actions, AwsError, Charge, Cx, Deps, Desired, Drawing, Module, Observed, Place, Want, dep_id,
    ec2_tag, ec2_tag_pairs, gone_if_not_found,
};
use crate::kinds::Kind;
use crate::reference::Ref;

/// What the plan says an internet gateway should be.
#[derive(Debug, Clone, Serialize)]
pub struct InternetGatewaySpec {
    pub vpc: Ref,
}

pub struct InternetGateways;

fn read(cx: &Cx, g: &aws_sdk_ec2::types::InternetGateway) -> Observed {
    let mut o = Observed::new(
        Kind::InternetGateway,
        ec2_tag(g.tags(), super::TAG_KEY).unwrap_or_default(),
        g.internet_gateway_id().unwrap_or_default(),
    );
    o.name = ec2_tag(g.tags(), "Name").unwrap_or_default().to_string();
    o.owned = cx.owner.owns(ec2_tag_pairs(g.tags()));
    let attached: Vec<&str> = g.attachments().iter().filter_map(|a| a.vpc_id()).collect();
    o.state = if attached.is_empty() {
        "detached".into()
    } else {
        "attached".into()
    };
    o.facts.insert("attached_to".into(), attached.join(","));
    o
}

async fn attach(cx: &Cx, igw: &str, vpc: &str) -> Result<(), AwsError> {
    cx.ec2
        .attach_internet_gateway()
        .internet_gateway_id(igw)
        .vpc_id(vpc)
        .send()
        .await?;
    Ok(())
}

#[async_trait]
impl Module for InternetGateways {
    type Spec = InternetGatewaySpec;

    fn drawing(&self, _spec: &Self::Spec) -> Drawing {
        let detail = "internet gateway".to_string();
        Drawing {
            detail,
            place: Place::Network,
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
            observe: &["ec2:DescribeInternetGateways"],
            change: &[
                "ec2:CreateInternetGateway",
                "ec2:CreateTags",
                "ec2:AttachInternetGateway",
                "ec2:DetachInternetGateway",
                "ec2:DeleteInternetGateway",
            ],
        }
    }

    /// A load balancer and instances map public addresses that keep the gateway attached.
    fn teardown_after(&self) -> &'static [Kind] {
        &[
            Kind::LoadBalancer,
            Kind::AutoScalingGroup,
            Kind::Builder,
            Kind::Instance,
            Kind::ElasticIp,
        ]
    }

    async fn observe(&self, cx: &Cx) -> Result<Vec<Observed>, AwsError> {
        let out = cx
            .ec2
            .describe_internet_gateways()
            .set_filters(Some(cx.ec2_owner_filters()))
            .send()
            .await?;
        Ok(out
            .internet_gateways()
            .iter()
            .map(|g| read(cx, g))
            .collect())
    }

    async fn refresh(&self, cx: &Cx, have: &Observed) -> Result<Option<Observed>, AwsError> {
        match cx
            .ec2
            .describe_internet_gateways()
            .internet_gateway_ids(&have.id)
            .send()
            .await
        {
            Ok(out) => Ok(out.internet_gateways().first().map(|g| read(cx, g))),
            Err(e) => gone_if_not_found(e.into()),
        }
    }

    async fn create(
        &self,
        cx: &Cx,
        want: &Want<'_, InternetGatewaySpec>,
        deps: &Deps,
    ) -> Result<Observed, AwsError> {
        let InternetGatewaySpec { vpc } = want.spec;
        let out = cx
            .ec2
            .create_internet_gateway()
            .tag_specifications(cx.ec2_tag_spec(ResourceType::InternetGateway, want.key, want.name))
            .send()
            .await?;
        let igw = out
            .internet_gateway()
            .ok_or_else(|| AwsError::other("CreateInternetGateway returned nothing"))?;
        let id = igw.internet_gateway_id().unwrap_or_default().to_string();
        attach(cx, &id, dep_id(deps, vpc)).await?;
        let mut o = read(cx, igw);
        o.state = "attached".into();
        o.facts
            .insert("attached_to".into(), dep_id(deps, vpc).to_string());
        Ok(o)
    }

    fn expected_facts(
        &self,
        want: &Want<'_, InternetGatewaySpec>,
        deps: &Deps,
    ) -> BTreeMap<String, String> {
        let InternetGatewaySpec { vpc } = want.spec;
        BTreeMap::from([("attached_to".into(), dep_id(deps, vpc).to_string())])
    }

    async fn update(
        &self,
        cx: &Cx,
        want: &Want<'_, InternetGatewaySpec>,
        have: &Observed,
        deps: &Deps,
    ) -> Result<bool, AwsError> {
        let InternetGatewaySpec { vpc } = want.spec;
        if have.facts.get("attached_to").is_some_and(|a| !a.is_empty()) {
            return Ok(false); // attached elsewhere: not ours to move
        }
        attach(cx, &have.id, dep_id(deps, vpc)).await?;
        Ok(true)
    }

    async fn delete(&self, cx: &Cx, have: &Observed) -> Result<(), AwsError> {
        for vpc in have
            .facts
            .get("attached_to")
            .into_iter()
            .flat_map(|a| a.split(','))
            .filter(|v| !v.is_empty())
        {
            cx.ec2
                .detach_internet_gateway()
                .internet_gateway_id(&have.id)
                .vpc_id(vpc)
                .send()
                .await?;
        }
        cx.ec2
            .delete_internet_gateway()
            .internet_gateway_id(&have.id)
            .send()
            .await?;
        Ok(())
    }
}
