//! The stack's own VPC, with DNS hostnames on (RDS and EFS endpoints resolve by name).

use std::collections::BTreeMap;

use async_trait::async_trait;
use aws_sdk_ec2::types::{AttributeBooleanValue, ResourceType, VpcAttributeName};
use serde::Serialize;

use super::{
    Actions, AwsError, Charge, Cx, Deps, Desired, Drawing, Module, Observed, Place, Want, ec2_tag,
    ec2_tag_pairs, gone_if_not_found,
};
use crate::kinds::Kind;

/// What the plan says a VPC should be.
#[derive(Debug, Clone, Serialize)]
pub struct VpcSpec {
    pub cidr: String,
}

pub struct Vpcs;

impl Vpcs {
    async fn read(&self, cx: &Cx, vpc: &aws_sdk_ec2::types::Vpc) -> Result<Observed, AwsError> {
        let id = vpc.vpc_id().unwrap_or_default();
        let mut o = Observed::new(
            Kind::Vpc,
            ec2_tag(vpc.tags(), super::TAG_KEY).unwrap_or_default(),
            id,
        );
        o.name = ec2_tag(vpc.tags(), "Name").unwrap_or_default().to_string();
        o.owned = cx.owner.owns(ec2_tag_pairs(vpc.tags()));
        o.state = vpc
            .state()
            .map(|s| s.as_str().to_string())
            .unwrap_or_default();
        o.ready = o.state == "available";
        o.facts.insert(
            "cidr".into(),
            vpc.cidr_block().unwrap_or_default().to_string(),
        );
        let dns = cx
            .ec2
            .describe_vpc_attribute()
            .vpc_id(id)
            .attribute(VpcAttributeName::EnableDnsHostnames)
            .send()
            .await?;
        let on = dns
            .enable_dns_hostnames()
            .and_then(|v| v.value())
            .unwrap_or(false);
        o.facts.insert("dns_hostnames".into(), on.to_string());
        Ok(o)
    }

    async fn converge(&self, cx: &Cx, id: &str) -> Result<(), AwsError> {
        cx.ec2
            .modify_vpc_attribute()
            .vpc_id(id)
            .enable_dns_hostnames(AttributeBooleanValue::builder().value(true).build())
            .send()
            .await?;
        Ok(())
    }
}

#[async_trait]
impl Module for Vpcs {
    type Spec = VpcSpec;

    fn drawing(&self, spec: &Self::Spec) -> Drawing {
        let detail = format!("VPC {}", spec.cidr);
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
            observe: &["ec2:DescribeVpcs", "ec2:DescribeVpcAttribute"],
            change: &[
                "ec2:CreateVpc",
                "ec2:CreateTags",
                "ec2:ModifyVpcAttribute",
                "ec2:DeleteVpc",
            ],
        }
    }

    fn outputs(&self, have: &Observed) -> Vec<(String, String)> {
        vec![("vpc_id".into(), have.id.clone())]
    }

    fn teardown_after(&self) -> &'static [Kind] {
        &[
            Kind::Subnet,
            Kind::SecurityGroup,
            Kind::InternetGateway,
            Kind::RouteTable,
            Kind::TargetGroup,
        ]
    }

    async fn observe(&self, cx: &Cx) -> Result<Vec<Observed>, AwsError> {
        let out = cx
            .ec2
            .describe_vpcs()
            .set_filters(Some(cx.ec2_owner_filters()))
            .send()
            .await?;
        let mut found = Vec::new();
        for vpc in out.vpcs() {
            found.push(self.read(cx, vpc).await?);
        }
        Ok(found)
    }

    async fn refresh(&self, cx: &Cx, have: &Observed) -> Result<Option<Observed>, AwsError> {
        match cx.ec2.describe_vpcs().vpc_ids(&have.id).send().await {
            Ok(out) => match out.vpcs().first() {
                Some(vpc) => Ok(Some(self.read(cx, vpc).await?)),
                None => Ok(None),
            },
            Err(e) => gone_if_not_found(e.into()),
        }
    }

    async fn create(
        &self,
        cx: &Cx,
        want: &Want<'_, VpcSpec>,
        _deps: &Deps,
    ) -> Result<Observed, AwsError> {
        let VpcSpec { cidr } = want.spec;
        let out = cx
            .ec2
            .create_vpc()
            .cidr_block(cidr)
            .tag_specifications(cx.ec2_tag_spec(ResourceType::Vpc, want.key, want.name))
            .send()
            .await?;
        let vpc = out
            .vpc()
            .ok_or_else(|| AwsError::other("CreateVpc returned no VPC"))?;
        self.converge(cx, vpc.vpc_id().unwrap_or_default()).await?;
        self.read(cx, vpc).await
    }

    fn expected_facts(&self, want: &Want<'_, VpcSpec>, _deps: &Deps) -> BTreeMap<String, String> {
        let VpcSpec { cidr } = want.spec;
        BTreeMap::from([
            ("cidr".into(), cidr.clone()),
            ("dns_hostnames".into(), "true".into()),
        ])
    }

    async fn update(
        &self,
        cx: &Cx,
        want: &Want<'_, VpcSpec>,
        have: &Observed,
        deps: &Deps,
    ) -> Result<bool, AwsError> {
        // The CIDR of a VPC cannot change in place; DNS hostnames can.
        let expected = self.expected_facts(want, deps);
        if have.facts.get("cidr") != expected.get("cidr") {
            return Ok(false);
        }
        self.converge(cx, &have.id).await?;
        Ok(true)
    }

    async fn delete(&self, cx: &Cx, have: &Observed) -> Result<(), AwsError> {
        cx.ec2.delete_vpc().vpc_id(&have.id).send().await?;
        Ok(())
    }
}

/// (stack, env) of every bookstore VPC in the region, whoever's journal made it: how `ls` finds
/// an env that has no record in the account (made before records existed, or a record lost).
pub async fn tagged_envs(cx: &Cx) -> Result<Vec<(String, String)>, AwsError> {
    let out = cx
        .ec2
        .describe_vpcs()
        .filters(
            aws_sdk_ec2::types::Filter::builder()
                .name(format!("tag:{}", super::TAG_MANAGED_BY))
                .values("bookstore")
                .build(),
        )
        .send()
        .await?;
    Ok(out
        .vpcs()
        .iter()
        .filter_map(|v| {
            Some((
                ec2_tag(v.tags(), super::TAG_STACK)?.to_string(),
                ec2_tag(v.tags(), super::TAG_ENV)?.to_string(),
            ))
        })
        .collect())
}
