//! The network part: a VPC, one public subnet per zone, an internet gateway and the route table
//! that sends the subnets' traffic to it.

use super::{Builder, Ref};
use super::{InternetGatewaySpec, RouteTableSpec, SubnetSpec, VpcSpec};

pub struct Network {
    pub vpc: Ref,
    pub subnets: Vec<Ref>,
    /// The subnets' zones, in the same order.
    pub zones: Vec<String>,
    /// The route table: whoever needs the internet at boot depends on it.
    pub routes: Ref,
}

pub fn public(b: &mut Builder) -> Network {
    let stack = b.stack;
    let vpc = b.add(
        "vpc",
        VpcSpec {
            cidr: stack.network.cidr.to_string(),
        },
    );
    let zones = stack.availability_zones(b.region);
    let mut subnets = Vec::new();
    for (i, (cidr, zone)) in stack.network.public_subnets.iter().zip(&zones).enumerate() {
        let key = format!("subnet-{}", (b'a' + i as u8) as char);
        subnets.push(b.add(
            &key,
            SubnetSpec {
                vpc: vpc.clone(),
                cidr: cidr.to_string(),
                availability_zone: zone.clone(),
            },
        ));
    }
    let igw = b.add("igw", InternetGatewaySpec { vpc: vpc.clone() });
    let routes = b.add(
        "routes",
        RouteTableSpec {
            vpc: vpc.clone(),
            internet_gateway: igw,
            subnets: subnets.clone(),
        },
    );
    Network {
        vpc,
        subnets,
        zones,
        routes,
    }
}
