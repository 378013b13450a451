//! The `swarm` stack: a Docker Swarm of EC2 nodes (managers spread over the zones, then workers)
//! behind the HTTPS load balancer, with RDS MySQL and EFS for the covers. The nodes are plain
//! instances, not an Auto Scaling group: a manager's identity must be stable. They talk to each
//! other on the swarm ports only within their own security group, and the load balancer reaches
//! the app port only; the first manager publishes the join tokens through a Secrets Manager secret.

use super::bake::{BakeInput, BakeOptions, Recipe};
use super::{
    Builder, Ingress, InstanceRole, Protocol, SecretContents, SwarmNode, bake, database, edge,
    files, network,
};
use super::{InstanceSpec, SecretSpec, SecurityGroupSpec, TargetsSpec};
use crate::stack::SwarmStack;

pub fn build(b: &mut Builder, topology: &SwarmStack, input: &BakeInput) {
    let stack = b.stack;
    let swarm = &topology.swarm;
    let net = network::public(b);
    let sg_lb = edge::security_group(b, &net);
    let sg = "sg-swarm";
    // The published ports the load balancer reaches: the app's, or each service's of the split
    // (their internal APIs go over the overlay network, which the swarm ports already carry).
    let (targets, app_ports) = edge::app_targets(
        stack.app.services,
        &sg_lb,
        stack.app.port,
        |s| s.port(&stack.app),
        ("app port", "service"),
    );
    let rule = |protocol, port, from: &str, description: &str| Ingress {
        protocol,
        port,
        from_group: Some(from.into()),
        description: description.into(),
    };
    let sg_swarm = b.add(
        sg,
        SecurityGroupSpec {
            vpc: net.vpc.clone(),
            description: "bookstore swarm nodes: app port from the load balancer, swarm ports between nodes only".into(),
            ingress: app_ports
                .into_iter()
                .chain([
                rule(Protocol::Tcp, 2377, sg, "swarm management (Raft) between nodes"),
                rule(Protocol::Tcp, 7946, sg, "swarm gossip between nodes"),
                rule(Protocol::Udp, 7946, sg, "swarm gossip between nodes"),
                rule(Protocol::Udp, 4789, sg, "overlay network (VXLAN) between nodes"),
            ])
            .collect(),
        },
    );
    let db = database::managed(b, &net, &sg_swarm, &topology.database);
    let files = files::efs(b, &net, &sg_swarm, &topology.file_system);
    let edge = edge::load_balancer(b, &net, sg_lb, &topology.load_balancer, targets);
    let tokens = b.add(
        "swarm-tokens",
        SecretSpec {
            contents: SecretContents::Empty,
        },
    );
    let image_key = bake::image(
        b,
        input,
        &net,
        BakeOptions {
            recipe: Recipe::Swarm,
            security_group: &sg_swarm,
            instance_type: &stack.instances.instance_type,
            volume_gb: stack.instances.volume_gb,
        },
    );
    let image = image_key;
    let release = b.add(
        "swarm-release",
        SecretSpec {
            contents: SecretContents::Release {
                image: image.clone(),
                bucket: bake::BUCKET.into(),
                sha256: input.artifact.sha256.clone(),
                artifact: input.artifact.kind,
            },
        },
    );
    let status = b.add(
        "swarm-status",
        SecretSpec {
            contents: SecretContents::SwarmStatus,
        },
    );
    let region = b.region.to_string();
    let mut nodes = Vec::new();
    let names = (1..=swarm.managers)
        .map(|i| {
            (
                format!("manager-{i}"),
                if i == 1 {
                    SwarmNode::Leader
                } else {
                    SwarmNode::Manager
                },
            )
        })
        .chain((1..=swarm.workers).map(|i| (format!("worker-{i}"), SwarmNode::Worker)));
    for (i, (key, node)) in names.enumerate() {
        // Round-robin over the zones: managers first, so a zone's loss keeps the quorum.
        let subnet = net.subnets[i % net.subnets.len()].clone();
        nodes.push(b.add(
            &key,
            InstanceSpec {
                image: image.clone(),
                subnet,
                routes: net.routes.clone(),
                security_group: sg_swarm.clone(),
                instance_type: stack.instances.instance_type.clone(),
                root_volume_gb: stack.instances.volume_gb,
                volume_type: stack.instances.volume_type.clone(),
                instance_profile: stack.instances.instance_profile.clone(),
                address: None,
                data_volume: None,
                secret: None,
                region: region.clone(),
                role: InstanceRole::Swarm {
                    node,
                    tokens: tokens.clone(),
                    release: release.clone(),
                    status: status.clone(),
                    app_port: stack.app.port,
                    services: stack.app.services,
                    replicas: swarm.replicas,
                    service_replicas: stack.app.replicas.clone(),
                    database: Some(db.clone()),
                    file_system: Some(files.file_system.clone()),
                    mount_targets: files.mount_targets.clone(),
                },
            },
        ));
    }
    // Every node in each group: a swarm publishes a port on every node.
    for group in &edge.target_groups {
        let (key, short) = match group.as_str() {
            "tg" => ("tg-targets".to_string(), "tg-targets".to_string()),
            // `tg-accounts-targets`, named `…-tgt-a` within AWS's 32 characters.
            other => (format!("{other}-targets"), format!("tgt-{}", &other[3..4])),
        };
        b.add_as(
            &key,
            &short,
            TargetsSpec {
                target_group: group.clone(),
                instances: nodes.clone(),
            },
        );
    }
}
