//! The Elastic IP: the monolith's public address. Learner Lab stops instances at the end of each
//! session, and a stopped-then-started instance gets a new public IP unless an Elastic IP is
//! associated; the address (and the Let's Encrypt certificate made for it) must survive that.
//! The association itself belongs to the instance kind; AWS refuses to release an associated
//! address, so `down` releases it once the instance is gone.

use std::collections::BTreeMap;

use async_trait::async_trait;
use aws_sdk_ec2::types::{DomainType, ResourceType};
use serde::Serialize;

use super::{
    Actions, AwsError, Charge, Cx, Deps, Desired, Drawing, Module, Observed, Place, Want, ec2_tag,
    ec2_tag_pairs, gone_if_not_found,
};
use crate::kinds::Kind;
use crate::prices;

/// A public IPv4 address that stays with the stack across instance stops and replacements.
#[derive(Debug, Clone, Serialize)]
pub struct ElasticIpSpec {}

pub struct ElasticIps;

fn read(cx: &Cx, a: &aws_sdk_ec2::types::Address) -> Observed {
    let mut o = Observed::new(
        Kind::ElasticIp,
        ec2_tag(a.tags(), super::TAG_KEY).unwrap_or_default(),
        a.allocation_id().unwrap_or_default(),
    );
    o.name = ec2_tag(a.tags(), "Name").unwrap_or_default().to_string();
    o.owned = cx.owner.owns(ec2_tag_pairs(a.tags()));
    o.state = match a.instance_id() {
        Some(i) => format!("associated with {i}"),
        None => "not associated".into(),
    };
    o.attrs
        .insert("public_ip".into(), a.public_ip().unwrap_or_default().into());
    o.attrs.insert(
        "association_id".into(),
        a.association_id().unwrap_or_default().into(),
    );
    o.attrs.insert(
        "instance_id".into(),
        a.instance_id().unwrap_or_default().into(),
    );
    o
}

#[async_trait]
impl Module for ElasticIps {
    type Spec = ElasticIpSpec;

    fn drawing(&self, _spec: &Self::Spec) -> Drawing {
        let detail = "Elastic IP".to_string();
        Drawing {
            detail,
            place: Place::ReferredBy(&[Kind::Instance]),
        }
    }

    fn cost(&self, key: &str, spec: &Self::Spec, _plan: &[Desired]) -> Vec<Charge> {
        let _ = spec;
        vec![Charge::Hourly {
            key: key.to_string(),
            what: "public IPv4 (Elastic IP)".into(),
            usd: prices::PUBLIC_IPV4_HOURLY,
        }]
    }

    fn instances_started(&self, _spec: &Self::Spec) -> u32 {
        0
    }

    fn actions(&self) -> Actions {
        Actions {
            observe: &["ec2:DescribeAddresses"],
            change: &[
                "ec2:AllocateAddress",
                "ec2:CreateTags",
                "ec2:ReleaseAddress",
            ],
        }
    }

    fn teardown_after(&self) -> &'static [Kind] {
        &[Kind::Instance]
    }

    async fn observe(&self, cx: &Cx) -> Result<Vec<Observed>, AwsError> {
        let out = cx
            .ec2
            .describe_addresses()
            .set_filters(Some(cx.ec2_owner_filters()))
            .send()
            .await?;
        Ok(out.addresses().iter().map(|a| read(cx, a)).collect())
    }

    async fn refresh(&self, cx: &Cx, have: &Observed) -> Result<Option<Observed>, AwsError> {
        match cx
            .ec2
            .describe_addresses()
            .allocation_ids(&have.id)
            .send()
            .await
        {
            Ok(out) => Ok(out.addresses().first().map(|a| read(cx, a))),
            Err(e) => gone_if_not_found(e.into()),
        }
    }

    async fn create(
        &self,
        cx: &Cx,
        want: &Want<'_, ElasticIpSpec>,
        _deps: &Deps,
    ) -> Result<Observed, AwsError> {
        let out = cx
            .ec2
            .allocate_address()
            .domain(DomainType::Vpc)
            .tag_specifications(cx.ec2_tag_spec(ResourceType::ElasticIp, want.key, want.name))
            .send()
            .await
            .map_err(|e| {
                let e = AwsError::from(e);
                if e.code.as_deref() == Some("AddressLimitExceeded") {
                    AwsError::other(format!("{e} (an account has 5 Elastic IPs per region: release unused ones in the EC2 console, or `bookstore down` another monolith env)"))
                } else {
                    e
                }
            })?;
        let id = out.allocation_id().unwrap_or_default().to_string();
        let mut o = Observed::new(Kind::ElasticIp, want.key, id);
        o.name = want.name.to_string();
        o.state = "not associated".into();
        o.attrs.insert(
            "public_ip".into(),
            out.public_ip().unwrap_or_default().into(),
        );
        Ok(o)
    }

    fn expected_facts(
        &self,
        _want: &Want<'_, ElasticIpSpec>,
        _deps: &Deps,
    ) -> BTreeMap<String, String> {
        BTreeMap::new()
    }

    async fn delete(&self, cx: &Cx, have: &Observed) -> Result<(), AwsError> {
        cx.ec2
            .release_address()
            .allocation_id(&have.id)
            .send()
            .await?;
        Ok(())
    }

    fn outputs(&self, have: &Observed) -> Vec<(String, String)> {
        vec![("public_ip".into(), have.attr("public_ip").into())]
    }
}
