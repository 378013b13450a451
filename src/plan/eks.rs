//! The `eks` stack: an EKS cluster on the account's cluster role in two public subnets, the HTTPS
//! load balancer whose target group reaches the nodes' NodePort, RDS MySQL and EFS for the nodes'
//! security group, and the env's ECR repository for the app's image.
//! The app runs from the container image the `app` workload builds from the Linux app binary and
//! pushes to that repository. Split, each service has its own NodePort (node_port + 1, 2, 3), target
//! group and rule, and its own Deployment and Secrets on the cluster.

use super::bake::BakeInput;
use super::{Builder, database, edge, files, network};
use super::{
    ClusterSpec, NodeGroupSpec, NodeTemplateSpec, RepositorySpec, SecurityGroupSpec, SplitService,
    WorkloadSpec,
};
use crate::stack::{AppService, EksStack, Services};

pub fn build(b: &mut Builder, eks: &EksStack, bake: &BakeInput) {
    let stack = b.stack;
    let k = &eks.kubernetes;
    let net = network::public(b);
    let sg_lb = edge::security_group(b, &net);
    // The split's NodePorts: node_port + 1, 2, 3 (a switch from one process keeps the old one
    // until its Service is gone).
    let (targets, ingress) = edge::app_targets(
        stack.app.services,
        &sg_lb,
        k.node_port,
        |s| s.port_from(k.node_port),
        ("app NodePort", "NodePort"),
    );
    // The nodes' own group (beside the one EKS gives them for the control plane): the app's
    // NodePorts from the load balancer only; the database and the file system admit this group.
    // The split's internal APIs ride the cluster's network (EKS's cluster group admits the nodes
    // to each other); no group opens them. One description both ways: a new one would replace
    // the group, and the nodes with it.
    let sg_nodes = b.add(
        "sg-nodes",
        SecurityGroupSpec {
            vpc: net.vpc.clone(),
            description: "bookstore eks nodes: the app NodePort from the load balancer only".into(),
            ingress,
        },
    );
    let db = database::managed(b, &net, &sg_nodes, &eks.database);
    let files = files::efs(b, &net, &sg_nodes, &eks.file_system);
    // The target groups reach the nodes on the NodePorts (the endpoint is set by `edge`).
    let edge = edge::load_balancer(b, &net, sg_lb, &eks.load_balancer, targets);
    let repo = b.add("repo", RepositorySpec {});
    let cluster = b.add(
        "cluster",
        ClusterSpec {
            version: k.version.clone(),
            role: k.cluster_role.clone(),
            subnets: net.subnets.clone(),
        },
    );
    let template = b.add(
        "node-template",
        NodeTemplateSpec {
            cluster: cluster.clone(),
            security_group: sg_nodes.clone(),
            volume_gb: stack.instances.volume_gb,
            volume_type: stack.instances.volume_type.clone(),
            file_system: files.file_system.clone(),
            mount_targets: files.mount_targets.clone(),
            region: b.region.to_string(),
        },
    );
    let nodes = b.add(
        "nodes",
        NodeGroupSpec {
            cluster: cluster.clone(),
            template,
            subnets: net.subnets.clone(),
            role: k.node_role.clone(),
            target_groups: edge.target_groups.clone(),
            instance_type: stack.instances.instance_type.clone(),
            nodes: k.nodes,
        },
    );
    let split = match stack.app.services {
        Services::Single => vec![],
        Services::Split => AppService::ALL
            .into_iter()
            .map(|service| SplitService {
                service,
                replicas: stack.app.replicas_of(service, k.replicas),
                port: service.port(&stack.app),
                internal_port: service.internal_port_from(stack.app.port),
                node_port: service.port_from(k.node_port),
                target_group: edge
                    .group_of(service)
                    .cloned()
                    .unwrap_or_else(|| edge.target_group.clone()),
            })
            .collect(),
    };
    b.add(
        "app",
        WorkloadSpec {
            cluster,
            nodes,
            repository: repo,
            database: db,
            file_system: files.file_system,
            mount_targets: files.mount_targets,
            target_group: edge.target_group,
            replicas: k.replicas,
            app_port: stack.app.port,
            node_port: k.node_port,
            health_check_path: stack.app.health_check_path.clone(),
            app: bake.artifact.clone(),
            region: b.region.to_string(),
            split,
        },
    );
}
