//! The public route table: a default route to the internet gateway, associated with every subnet.

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

/// What the plan says a route table should be.
#[derive(Debug, Clone, Serialize)]
pub struct RouteTableSpec {
    pub vpc: Ref,
    pub internet_gateway: Ref,
    pub subnets: Vec<Ref>,
}

pub struct RouteTables;

const DEFAULT_ROUTE: &str = "0.0.0.0/0";

fn read(cx: &Cx, rt: &aws_sdk_ec2::types::RouteTable) -> Observed {
    let mut o = Observed::new(
        Kind::RouteTable,
        ec2_tag(rt.tags(), super::TAG_KEY).unwrap_or_default(),
        rt.route_table_id().unwrap_or_default(),
    );
    o.name = ec2_tag(rt.tags(), "Name").unwrap_or_default().to_string();
    o.owned = cx.owner.owns(ec2_tag_pairs(rt.tags()));
    let gateway = rt
        .routes()
        .iter()
        .find(|r| r.destination_cidr_block() == Some(DEFAULT_ROUTE))
        .and_then(|r| r.gateway_id())
        .unwrap_or_default();
    let mut subnets: Vec<&str> = rt
        .associations()
        .iter()
        .filter_map(|a| a.subnet_id())
        .collect();
    subnets.sort();
    let associations: Vec<&str> = rt
        .associations()
        .iter()
        .filter(|a| a.subnet_id().is_some())
        .filter_map(|a| a.route_table_association_id())
        .collect();
    o.facts.insert("default_route".into(), gateway.to_string());
    o.facts.insert("subnets".into(), subnets.join(","));
    o.attrs
        .insert("associations".into(), associations.join(","));
    o
}

/// Adds what is missing: the default route and the subnet associations. Safe to repeat.
async fn converge(cx: &Cx, have: &Observed, igw: &str, subnets: &[String]) -> Result<(), AwsError> {
    if have.facts.get("default_route").is_none_or(|g| g != igw) {
        let existing = have
            .facts
            .get("default_route")
            .is_some_and(|g| !g.is_empty());
        if existing {
            cx.ec2
                .replace_route()
                .route_table_id(&have.id)
                .destination_cidr_block(DEFAULT_ROUTE)
                .gateway_id(igw)
                .send()
                .await?;
        } else {
            cx.ec2
                .create_route()
                .route_table_id(&have.id)
                .destination_cidr_block(DEFAULT_ROUTE)
                .gateway_id(igw)
                .send()
                .await?;
        }
    }
    let associated: Vec<&str> = have
        .facts
        .get("subnets")
        .map(|s| s.split(',').collect())
        .unwrap_or_default();
    for subnet in subnets.iter().filter(|s| !associated.contains(&s.as_str())) {
        cx.ec2
            .associate_route_table()
            .route_table_id(&have.id)
            .subnet_id(subnet)
            .send()
            .await?;
    }
    Ok(())
}

fn wanted<'a>(want: &Want<'a, RouteTableSpec>, deps: &Deps) -> (&'a str, String, Vec<String>) {
    let RouteTableSpec {
        vpc,
        internet_gateway,
        subnets,
    } = want.spec;
    let ids = super::dep_ids(deps, subnets);
    (vpc, dep_id(deps, internet_gateway).to_string(), ids)
}

#[async_trait]
impl Module for RouteTables {
    type Spec = RouteTableSpec;

    fn drawing(&self, _spec: &Self::Spec) -> Drawing {
        let detail = "route table 0.0.0.0/0 → igw".to_string();
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
            observe: &["ec2:DescribeRouteTables"],
            change: &[
                "ec2:CreateRouteTable",
                "ec2:CreateTags",
                "ec2:CreateRoute",
                "ec2:ReplaceRoute",
                "ec2:AssociateRouteTable",
                "ec2:DisassociateRouteTable",
                "ec2:DeleteRouteTable",
            ],
        }
    }

    fn teardown_after(&self) -> &'static [Kind] {
        &[
            Kind::LoadBalancer,
            Kind::AutoScalingGroup,
            Kind::Builder,
            Kind::Instance,
        ]
    }

    async fn observe(&self, cx: &Cx) -> Result<Vec<Observed>, AwsError> {
        let out = cx
            .ec2
            .describe_route_tables()
            .set_filters(Some(cx.ec2_owner_filters()))
            .send()
            .await?;
        Ok(out.route_tables().iter().map(|r| read(cx, r)).collect())
    }

    async fn refresh(&self, cx: &Cx, have: &Observed) -> Result<Option<Observed>, AwsError> {
        match cx
            .ec2
            .describe_route_tables()
            .route_table_ids(&have.id)
            .send()
            .await
        {
            Ok(out) => Ok(out.route_tables().first().map(|r| read(cx, r))),
            Err(e) => gone_if_not_found(e.into()),
        }
    }

    async fn create(
        &self,
        cx: &Cx,
        want: &Want<'_, RouteTableSpec>,
        deps: &Deps,
    ) -> Result<Observed, AwsError> {
        let (vpc, igw, subnets) = wanted(want, deps);
        let out = cx
            .ec2
            .create_route_table()
            .vpc_id(dep_id(deps, vpc))
            .tag_specifications(cx.ec2_tag_spec(ResourceType::RouteTable, want.key, want.name))
            .send()
            .await?;
        let rt = out
            .route_table()
            .ok_or_else(|| AwsError::other("CreateRouteTable returned nothing"))?;
        let bare = read(cx, rt);
        converge(cx, &bare, &igw, &subnets).await?;
        Ok(self.refresh(cx, &bare).await?.unwrap_or(bare))
    }

    fn expected_facts(
        &self,
        want: &Want<'_, RouteTableSpec>,
        deps: &Deps,
    ) -> BTreeMap<String, String> {
        let (_, igw, subnets) = wanted(want, deps);
        BTreeMap::from([
            ("default_route".into(), igw),
            ("subnets".into(), subnets.join(",")),
        ])
    }

    async fn update(
        &self,
        cx: &Cx,
        want: &Want<'_, RouteTableSpec>,
        have: &Observed,
        deps: &Deps,
    ) -> Result<bool, AwsError> {
        let (_, igw, subnets) = wanted(want, deps);
        converge(cx, have, &igw, &subnets).await?;
        Ok(true)
    }

    async fn delete(&self, cx: &Cx, have: &Observed) -> Result<(), AwsError> {
        for association in have
            .attr("associations")
            .split(',')
            .filter(|a| !a.is_empty())
        {
            cx.ec2
                .disassociate_route_table()
                .association_id(association)
                .send()
                .await?;
        }
        cx.ec2
            .delete_route_table()
            .route_table_id(&have.id)
            .send()
            .await?;
        Ok(())
    }
}
