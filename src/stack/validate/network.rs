//! `network`: the VPC block, the public subnets (one per zone; two for a load balancer) and
//! their zones.

use super::*;
use crate::stack::raw::RawNetwork;

pub(super) fn network(
    c: &mut Checker,
    raw: &RawStack,
    kind: StackKind,
    region: &Option<(String, Position)>,
) -> Network {
    let net = raw.network.as_ref().map(|n| &n.value);
    let default_cidr = match kind {
        StackKind::Monolith => "10.43.0.0/16",
        StackKind::Asg => "10.42.0.0/16",
        StackKind::Swarm => "10.44.0.0/16",
        StackKind::Eks => "10.45.0.0/16",
    };
    let vpc_cidr = match net.and_then(|n| n.cidr.as_ref()) {
        None => default_cidr.parse().expect("default CIDR"),
        Some(v) => match v.value.parse::<Cidr>() {
            Ok(cidr) if !(16..=28).contains(&cidr.prefix) => {
                c.error(
                    v.into(),
                    "network.cidr",
                    format!(
                        "a VPC block must be between /16 and /28, not /{}",
                        cidr.prefix
                    ),
                    Some("use a block such as 10.42.0.0/16".into()),
                );
                cidr
            }
            Ok(cidr) if !cidr.is_private() => {
                c.error(v.into(), "network.cidr", format!("{cidr} is public address space"),
                    Some("use a private (RFC 1918) block inside 10.0.0.0/8, 172.16.0.0/12 or 192.168.0.0/16".into()));
                cidr
            }
            Ok(cidr) => cidr,
            Err(e) => {
                c.error(
                    v.into(),
                    "network.cidr",
                    e,
                    Some("write it as address/prefix, e.g. 10.42.0.0/16".into()),
                );
                default_cidr.parse().expect("default CIDR")
            }
        },
    };
    let subnets_needed: usize = if kind == StackKind::Monolith { 1 } else { 2 };
    let mut public_subnets = Vec::new();
    match net.and_then(|n| n.public_subnets.as_ref()) {
        None => {
            let base = u32::from(vpc_cidr.network);
            for i in 0..subnets_needed as u32 {
                let network = std::net::Ipv4Addr::from(base + ((i + 1) << 8));
                public_subnets.push(Cidr {
                    network,
                    prefix: 24,
                });
            }
        }
        Some(list) => {
            if list.value.len() < subnets_needed
                || (kind != StackKind::Monolith && list.value.len() > 6)
            {
                let why = if kind == StackKind::Monolith {
                    "a monolith needs at least one subnet".to_string()
                } else {
                    "a load balancer needs subnets in at least two availability zones (and at most six are used)".to_string()
                };
                c.error(list.into(), "network.public_subnets", format!("{} subnet(s) given: {why}", list.value.len()),
                    Some("list one CIDR block per availability zone, e.g. [10.42.1.0/24, 10.42.2.0/24]".into()));
            }
            for (i, s) in list.value.iter().enumerate() {
                let field = format!("network.public_subnets[{i}]");
                match s.value.parse::<Cidr>() {
                    Err(e) => c.error(
                        s.into(),
                        &field,
                        e,
                        Some("write it as address/prefix, e.g. 10.42.1.0/24".into()),
                    ),
                    Ok(cidr) => {
                        if !(16..=28).contains(&cidr.prefix) {
                            c.error(
                                s.into(),
                                &field,
                                format!(
                                    "a subnet must be between /16 and /28, not /{}",
                                    cidr.prefix
                                ),
                                None,
                            );
                        } else if !vpc_cidr.contains(cidr) {
                            c.error(
                                s.into(),
                                &field,
                                format!("{cidr} is outside the VPC block {vpc_cidr}"),
                                Some(format!("pick a block inside {vpc_cidr}")),
                            );
                        } else if let Some(other) =
                            public_subnets.iter().find(|o: &&Cidr| o.overlaps(cidr))
                        {
                            c.error(
                                s.into(),
                                &field,
                                format!("{cidr} overlaps {other}"),
                                Some("give every subnet its own block".into()),
                            );
                        }
                        public_subnets.push(cidr);
                    }
                }
            }
        }
    }
    let availability_zones = availability_zones(c, net, region, &public_subnets);
    Network {
        cidr: vpc_cidr,
        public_subnets,
        availability_zones,
    }
}

/// One zone per public subnet, in the stack's region, none twice.
fn availability_zones(
    c: &mut Checker,
    net: Option<&RawNetwork>,
    region: &Option<(String, Position)>,
    public_subnets: &[Cidr],
) -> Vec<String> {
    let mut availability_zones = Vec::new();
    if let Some(azs) = net.and_then(|n| n.availability_zones.as_ref()) {
        if azs.value.len() != public_subnets.len() {
            c.error(
                azs.into(),
                "network.availability_zones",
                format!(
                    "{} zones for {} subnets",
                    azs.value.len(),
                    public_subnets.len()
                ),
                Some(
                    "list exactly one availability zone per public subnet, in the same order"
                        .into(),
                ),
            );
        }
        for (i, az) in azs.value.iter().enumerate() {
            let field = format!("network.availability_zones[{i}]");
            let region_part = az
                .value
                .trim_end_matches(|ch: char| ch.is_ascii_lowercase());
            if az.value.len() == region_part.len() || !known_region(region_part) {
                c.error(
                    az.into(),
                    &field,
                    format!("`{}` is not an availability zone name", az.value),
                    Some("use a zone such as us-east-1a".into()),
                );
            } else if let Some((r, _)) = &region
                && r != region_part
            {
                c.error(
                    az.into(),
                    &field,
                    format!("{} is not in the stack's region {r}", az.value),
                    None,
                );
            }
            if availability_zones.contains(&az.value) {
                c.error(
                    az.into(),
                    &field,
                    format!("{} is listed twice", az.value),
                    Some(
                        "use a different zone for each subnet so the load balancer spans two zones"
                            .into(),
                    ),
                );
            }
            availability_zones.push(az.value.clone());
        }
    }
    availability_zones
}
