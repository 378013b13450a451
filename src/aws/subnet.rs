//! Public subnets, one per availability zone. Instances get public addresses so they reach the
//! internet without a NAT gateway (which would cost more than the rest of a student's stack);
//! their security group still admits only the load balancer.

use std::collections::BTreeMap;

use async_trait::async_trait;
use aws_sdk_ec2::types::{AttributeBooleanValue, ResourceType};

use super::{
    Actions, AwsError, Cx, Deps, Observed, ResourceKind, dep_id, ec2_tag, ec2_tag_pairs,
    gone_if_not_found,
};
use crate::plan::{Desired, Kind, Spec};

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
impl ResourceKind for Subnets {
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

    async fn create(&self, cx: &Cx, want: &Desired, deps: &Deps) -> Result<Observed, AwsError> {
        let Spec::Subnet {
            vpc,
            cidr,
            availability_zone,
        } = &want.spec
        else {
            unreachable!("subnet spec")
        };
        let out = cx
            .ec2
            .create_subnet()
            .vpc_id(dep_id(deps, vpc))
            .cidr_block(cidr)
            .availability_zone(availability_zone)
            .tag_specifications(cx.ec2_tag_spec(ResourceType::Subnet, &want.key, &want.name))
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

    fn expected_facts(&self, want: &Desired, deps: &Deps) -> BTreeMap<String, String> {
        let Spec::Subnet {
            vpc,
            cidr,
            availability_zone,
        } = &want.spec
        else {
            unreachable!("subnet spec")
        };
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
        want: &Desired,
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
