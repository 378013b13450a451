//! Public subnets, one per availability zone. Instances get public addresses so they reach the
//! internet without a NAT gateway (which would cost more than the rest of a student's stack);
//! their security group still admits only the load balancer.

use std::collections::BTreeMap;

use async_trait::async_trait;
use aws_sdk_ec2::types::{AttributeBooleanValue, ResourceType};
use serde::Serialize;

use super::{
    Actions, AwsError, Charge, Cx, Deps, Desired, Drawing, Module, Observed, Place, Want, dep_id,
    ec2_tag, ec2_tag_pairs, gone_if_not_found,
};
use crate::kinds::Kind;
use crate::reference::Ref;

/// What the plan says a subnet should be.
#[derive(Debug, Clone, Serialize)]
pub struct SubnetSpec {
    pub vpc: Ref,
    pub cidr: String,
    pub availability_zone: String,
}

pub struct Subnets;

fn read(cx: &Cx, s: &aws_sdk_ec2::types::Subnet) -> Observed {
    let mut o = Observed::new(
        Kind::Subnet,
        ec2_tag(s.tags(), super::TAG_KEY).unwrap_or_default(),
        s.subnet_id().unwrap_or_default(),
    );
    o.name = ec2_tag(s.tags(), "Name").unwrap_or_default().to_string();
    o.owned = cx.owner.owns(ec2_tag_pairs(s.tags()));
    o.state = s
        .state()
        .map(|st| st.as_str().to_string())
        .unwrap_or_default();
    o.ready = o.state == "available";
    o.facts.insert(
        "cidr".into(),
        s.cidr_block().unwrap_or_default().to_string(),
    );
    o.facts.insert(
        "availability_zone".into(),
        s.availability_zone().unwrap_or_default().to_string(),
    );
    o.facts
        .insert("vpc".into(), s.vpc_id().unwrap_or_default().to_string());
    o.facts.insert(
        "public_ip_on_launch".into(),
        s.map_public_ip_on_launch().unwrap_or(false).to_string(),
    );
    o
}

async fn converge(cx: &Cx, id: &str) -> Result<(), AwsError> {
    cx.ec2
        .modify_subnet_attribute()
        .subnet_id(id)
        .map_public_ip_on_launch(AttributeBooleanValue::builder().value(true).build())
        .send()
        .await?;
    Ok(())
}

#[async_trait]
impl Module for Subnets {
    type Spec = SubnetSpec;

    fn drawing(&self, spec: &Self::Spec) -> Drawing {
        let detail = format!("subnet {} {}", spec.cidr, spec.availability_zone);
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
            observe: &["ec2:DescribeSubnets"],
            change: &[
                "ec2:CreateSubnet",
                "ec2:CreateTags",
                "ec2:ModifySubnetAttribute",
                "ec2:DeleteSubnet",
            ],
        }
    }

    fn outputs(&self, have: &Observed) -> Vec<(String, String)> {
        vec![("subnet_ids".into(), have.id.clone())]
    }

    fn teardown_after(&self) -> &'static [Kind] {
        &[
            Kind::AutoScalingGroup,
            Kind::Cluster,
            Kind::NodeGroup,
            Kind::Builder,
            Kind::Instance,
            Kind::LoadBalancer,
            Kind::RouteTable,
            Kind::Database,
            Kind::DbSubnetGroup,
            Kind::MountTarget,
        ]
    }

    async fn observe(&self, cx: &Cx) -> Result<Vec<Observed>, AwsError> {
        let out = cx
            .ec2
            .describe_subnets()
            .set_filters(Some(cx.ec2_owner_filters()))
            .send()
            .await?;
        Ok(out.subnets().iter().map(|s| read(cx, s)).collect())
    }

    async fn refresh(&self, cx: &Cx, have: &Observed) -> Result<Option<Observed>, AwsError> {
        match cx.ec2.describe_subnets().subnet_ids(&have.id).send().await {
            Ok(out) => Ok(out.subnets().first().map(|s| read(cx, s))),
            Err(e) => gone_if_not_found(e.into()),
        }
    }

    async fn create(
        &self,
        cx: &Cx,
        want: &Want<'_, SubnetSpec>,
        deps: &Deps,
    ) -> Result<Observed, AwsError> {
        let SubnetSpec {
            vpc,
            cidr,
            availability_zone,
        } = want.spec;
        let out = cx
            .ec2
            .create_subnet()
            .vpc_id(dep_id(deps, vpc))
            .cidr_block(cidr)
            .availability_zone(availability_zone)
            .tag_specifications(cx.ec2_tag_spec(ResourceType::Subnet, want.key, want.name))
            .send()
            .await?;
        let subnet = out
            .subnet()
            .ok_or_else(|| AwsError::other("CreateSubnet returned no subnet"))?;
        let id = subnet.subnet_id().unwrap_or_default();
        converge(cx, id).await?;
        let mut o = read(cx, subnet);
        o.facts.insert("public_ip_on_launch".into(), "true".into());
        Ok(o)
    }

    fn expected_facts(&self, want: &Want<'_, SubnetSpec>, deps: &Deps) -> BTreeMap<String, String> {
        let SubnetSpec {
            vpc,
            cidr,
            availability_zone,
        } = want.spec;
        BTreeMap::from([
            ("cidr".into(), cidr.clone()),
            ("availability_zone".into(), availability_zone.clone()),
            ("vpc".into(), dep_id(deps, vpc).to_string()),
            ("public_ip_on_launch".into(), "true".into()),
        ])
    }

    async fn update(
        &self,
        cx: &Cx,
        want: &Want<'_, SubnetSpec>,
        have: &Observed,
        deps: &Deps,
    ) -> Result<bool, AwsError> {
        let expected = self.expected_facts(want, deps);
        let fixed_in_place = ["cidr", "availability_zone", "vpc"]
            .iter()
            .all(|k| have.facts.get(*k) == expected.get(*k));
        if !fixed_in_place {
            return Ok(false);
        }
        converge(cx, &have.id).await?;
        Ok(true)
    }

    async fn delete(&self, cx: &Cx, have: &Observed) -> Result<(), AwsError> {
        cx.ec2.delete_subnet().subnet_id(&have.id).send().await?;
        Ok(())
    }
}
