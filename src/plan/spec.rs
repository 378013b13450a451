//! What each planned resource should be: one `Spec` variant per kind, and the keys it depends on.

use serde::Serialize;

use super::Kind;
use super::bake::Recipe;
use crate::artifact::{Artifact, ArtifactKind};
use crate::stack::{Scaling, TlsMode};

#[derive(Debug, Clone, Serialize)]
pub struct Ingress {
    pub protocol: Protocol,
    pub port: u16,
    /// `None`: from anywhere (0.0.0.0/0). `Some(key)`: from the security group with that key only
    /// (its own key: from the members of the group itself).
    pub from_group: Option<String>,
    pub description: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    Tcp,
    Udp,
}

impl Protocol {
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Tcp => "tcp",
            Protocol::Udp => "udp",
        }
    }
}

#[derive(Debug, Clone, Serialize)]
#[serde(tag = "action", rename_all = "kebab-case")]
pub enum ListenerAction {
    /// HTTP 301 to the same host and path on HTTPS 443.
    RedirectToHttps,
    Forward {
        target_group: String,
    },
}

#[derive(Debug, Clone, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Spec {
    Vpc {
        cidr: String,
    },
    Subnet {
        vpc: String,
        cidr: String,
        availability_zone: String,
    },
    InternetGateway {
        vpc: String,
    },
    RouteTable {
        vpc: String,
        internet_gateway: String,
        subnets: Vec<String>,
    },
    SecurityGroup {
        vpc: String,
        description: String,
        ingress: Vec<Ingress>,
    },
    /// `self-signed`: generated and imported; its names are the load balancer's DNS name (and the
    /// domain, if any). `acm`: requested from ACM with DNS validation.
    Certificate {
        load_balancer: Option<String>,
        domain: Option<String>,
        self_signed: bool,
    },
    LoadBalancer {
        subnets: Vec<String>,
        security_groups: Vec<String>,
        idle_timeout_seconds: u32,
    },
    TargetGroup {
        vpc: String,
        port: u16,
        health_check_path: String,
    },
    DbSubnetGroup {
        subnets: Vec<String>,
    },
    Database {
        subnet_group: String,
        security_group: String,
        engine_version: String,
        instance_class: String,
        storage_gb: u32,
        storage_type: String,
        backup_retention_days: u32,
        multi_az: bool,
        final_snapshot: bool,
    },
    FileSystem,
    MountTarget {
        file_system: String,
        subnet: String,
        security_group: String,
    },
    Listener {
        load_balancer: String,
        port: u16,
        action: ListenerAction,
        certificate: Option<String>,
        ssl_policy: Option<String>,
    },
    /// The private, encrypted bucket the bake uploads the app artifact to.
    Bucket,
    /// The baked AMI: the app installed on Amazon Linux 2023 by a builder instance.
    Image {
        bucket: String,
        subnet: String,
        /// The builder downloads packages: the subnet's route to the internet must exist.
        routes: String,
        security_group: String,
        instance_type: String,
        volume_gb: u32,
        artifact: Artifact,
        /// What the builder installs besides the app.
        recipe: Recipe,
        templates_sha256: String,
    },
    LaunchTemplate {
        image: String,
        security_group: String,
        instance_type: String,
        volume_gb: u32,
        volume_type: String,
        instance_profile: Option<String>,
        app_port: u16,
        region: String,
        database: Option<String>,
        file_system: Option<String>,
        /// Instances mount the file system at boot: its mount targets must exist first.
        mount_targets: Vec<String>,
    },
    AutoScalingGroup {
        launch_template: String,
        subnets: Vec<String>,
        target_group: String,
        load_balancer: String,
        min: u32,
        max: u32,
        desired: u32,
        health_check_grace_seconds: u32,
        scaling: Option<Scaling>,
    },
    /// A public IPv4 address that stays with the stack across instance stops and replacements.
    ElasticIp,
    /// An encrypted EBS data volume that outlives instances (the monolith's database files).
    Volume {
        availability_zone: String,
        size_gb: u32,
        volume_type: String,
        /// `down` snapshots it first.
        final_snapshot: bool,
    },
    /// A Secrets Manager secret: generated database credentials shared by two VMs, or an empty
    /// store the swarm's first manager writes its join tokens to.
    Secret {
        contents: SecretContents,
    },
    /// The instances registered as targets of a target group (the swarm's nodes).
    Targets {
        target_group: String,
        instances: Vec<String>,
    },
    /// One EC2 instance from the baked image, with its data volume attached and, when public, its
    /// Elastic IP associated. Replaced (never changed in place) when its image or type changes.
    Instance {
        image: String,
        subnet: String,
        /// The instance downloads at boot (certificates): the subnet's route must exist.
        routes: String,
        security_group: String,
        instance_type: String,
        root_volume_gb: u32,
        volume_type: String,
        instance_profile: Option<String>,
        /// The Elastic IP to associate (a public instance), or none (a private one).
        address: Option<String>,
        /// The stack's data volume to attach, if the instance has one.
        data_volume: Option<String>,
        /// The database credentials' secret, when they are shared between VMs.
        secret: Option<String>,
        region: String,
        /// What the instance runs: its user-data is rendered from this.
        role: InstanceRole,
    },
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
#[serde(tag = "contents", rename_all = "kebab-case")]
pub enum SecretContents {
    /// `{"username": "bookstore", "password": <48 random hex digits>}`.
    DbCredentials,
    /// `{}`: filled by the instances (the swarm's join tokens).
    Empty,
    /// The app image the swarm should run: `{"image", "sha256", "url"}`, the URL a presigned GET
    /// of the app binary in the artifact bucket. Written again when the app changes; the nodes
    /// build the image from it and the swarm's leader rolls the service (templates/swarm/sync).
    Release {
        /// The image that carries the app (its artifact's sha256 names the release).
        image: String,
        /// The artifact bucket the binary is in.
        bucket: String,
        /// The app's sha256 (it names the image: `bookstore.local/app:<12 hex>`) and its kind:
        /// only a binary can be downloaded by the nodes.
        sha256: String,
        artifact: ArtifactKind,
    },
    /// `{}`: the swarm's leader reports what Docker sees into it (nodes, service, replicas).
    SwarmStatus,
}

impl SecretContents {
    pub fn as_str(&self) -> &'static str {
        match self {
            SecretContents::DbCredentials => "db-credentials",
            SecretContents::Empty => "swarm-tokens",
            SecretContents::Release { .. } => "release",
            SecretContents::SwarmStatus => "swarm-status",
        }
    }
}

/// A swarm node's part in the bootstrap.
#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum SwarmNode {
    /// The first manager: `swarm init`, publishes the join tokens, deploys the stack.
    Leader,
    Manager,
    Worker,
}

impl SwarmNode {
    pub fn as_str(self) -> &'static str {
        match self {
            SwarmNode::Leader => "leader",
            SwarmNode::Manager => "manager",
            SwarmNode::Worker => "worker",
        }
    }
}

/// What an instance runs.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(tag = "role", rename_all = "kebab-case")]
pub enum InstanceRole {
    /// App + proxy, and the database too unless `database` names the database VM's key.
    App {
        app_port: u16,
        tls_mode: TlsMode,
        domain: Option<String>,
        acme_server: String,
        database: Option<String>,
    },
    /// MariaDB only, for the app VM's security group.
    Database,
    /// A Docker Swarm node; the app runs as a swarm service from the stack file.
    Swarm {
        node: SwarmNode,
        /// The secret the leader writes the join tokens to.
        tokens: String,
        /// The secret naming the app image to run (written by bookstore).
        release: String,
        /// The secret the swarm's leader reports Docker's view to.
        status: String,
        app_port: u16,
        replicas: u32,
        database: Option<String>,
        file_system: Option<String>,
        /// Nodes mount the file system at boot: its mount targets must exist first.
        mount_targets: Vec<String>,
    },
}

impl Spec {
    /// The kind a resource with this spec must be.
    pub fn kind(&self) -> Kind {
        match self {
            Spec::Vpc { .. } => Kind::Vpc,
            Spec::Subnet { .. } => Kind::Subnet,
            Spec::InternetGateway { .. } => Kind::InternetGateway,
            Spec::RouteTable { .. } => Kind::RouteTable,
            Spec::SecurityGroup { .. } => Kind::SecurityGroup,
            Spec::Certificate { .. } => Kind::Certificate,
            Spec::LoadBalancer { .. } => Kind::LoadBalancer,
            Spec::TargetGroup { .. } => Kind::TargetGroup,
            Spec::DbSubnetGroup { .. } => Kind::DbSubnetGroup,
            Spec::Database { .. } => Kind::Database,
            Spec::FileSystem => Kind::FileSystem,
            Spec::MountTarget { .. } => Kind::MountTarget,
            Spec::Listener { .. } => Kind::Listener,
            Spec::Bucket => Kind::Bucket,
            Spec::Image { .. } => Kind::Image,
            Spec::LaunchTemplate { .. } => Kind::LaunchTemplate,
            Spec::AutoScalingGroup { .. } => Kind::AutoScalingGroup,
            Spec::ElasticIp => Kind::ElasticIp,
            Spec::Secret { .. } => Kind::Secret,
            Spec::Targets { .. } => Kind::Targets,
            Spec::Volume { .. } => Kind::Volume,
            Spec::Instance { .. } => Kind::Instance,
        }
    }

    /// The keys of the resources this one needs to exist first.
    pub fn dependencies(&self) -> Vec<String> {
        let mut deps: Vec<String> = match self {
            Spec::Vpc { .. }
            | Spec::FileSystem
            | Spec::Bucket
            | Spec::ElasticIp
            | Spec::Secret {
                contents:
                    SecretContents::DbCredentials | SecretContents::Empty | SecretContents::SwarmStatus,
            }
            | Spec::Volume { .. } => vec![],
            Spec::Secret {
                contents: SecretContents::Release { image, bucket, .. },
            } => vec![image.clone(), bucket.clone()],
            Spec::Instance {
                image,
                subnet,
                routes,
                security_group,
                address,
                data_volume,
                secret,
                role,
                ..
            } => {
                let mut d = vec![
                    image.clone(),
                    subnet.clone(),
                    routes.clone(),
                    security_group.clone(),
                ];
                d.extend(data_volume.iter().cloned());
                d.extend(address.iter().cloned());
                d.extend(secret.iter().cloned());
                match role {
                    InstanceRole::App {
                        database: Some(db), ..
                    } => d.push(db.clone()),
                    InstanceRole::Swarm {
                        tokens,
                        release,
                        status,
                        database,
                        file_system,
                        mount_targets,
                        ..
                    } => {
                        d.extend([tokens.clone(), release.clone(), status.clone()]);
                        d.extend(database.iter().cloned());
                        d.extend(file_system.iter().cloned());
                        d.extend(mount_targets.iter().cloned());
                    }
                    _ => {}
                }
                d
            }
            Spec::Image {
                bucket,
                subnet,
                routes,
                security_group,
                ..
            } => vec![
                bucket.clone(),
                subnet.clone(),
                routes.clone(),
                security_group.clone(),
            ],
            Spec::LaunchTemplate {
                image,
                security_group,
                database,
                file_system,
                mount_targets,
                ..
            } => {
                let mut d = vec![image.clone(), security_group.clone()];
                d.extend(database.iter().cloned());
                d.extend(file_system.iter().cloned());
                d.extend(mount_targets.iter().cloned());
                d
            }
            Spec::AutoScalingGroup {
                launch_template,
                subnets,
                target_group,
                load_balancer,
                ..
            } => {
                let mut d = vec![
                    launch_template.clone(),
                    target_group.clone(),
                    load_balancer.clone(),
                ];
                d.extend(subnets.iter().cloned());
                d
            }
            Spec::DbSubnetGroup { subnets } => subnets.clone(),
            Spec::Database {
                subnet_group,
                security_group,
                ..
            } => vec![subnet_group.clone(), security_group.clone()],
            Spec::MountTarget {
                file_system,
                subnet,
                security_group,
            } => vec![file_system.clone(), subnet.clone(), security_group.clone()],
            Spec::Subnet { vpc, .. }
            | Spec::InternetGateway { vpc }
            | Spec::TargetGroup { vpc, .. } => {
                vec![vpc.clone()]
            }
            Spec::RouteTable {
                vpc,
                internet_gateway,
                subnets,
            } => {
                let mut d = vec![vpc.clone(), internet_gateway.clone()];
                d.extend(subnets.iter().cloned());
                d
            }
            Spec::SecurityGroup { vpc, ingress, .. } => {
                let mut d = vec![vpc.clone()];
                d.extend(ingress.iter().filter_map(|i| i.from_group.clone()));
                d
            }
            Spec::Targets {
                target_group,
                instances,
            } => {
                let mut d = vec![target_group.clone()];
                d.extend(instances.iter().cloned());
                d
            }
            Spec::Certificate { load_balancer, .. } => load_balancer.iter().cloned().collect(),
            Spec::LoadBalancer {
                subnets,
                security_groups,
                ..
            } => subnets.iter().chain(security_groups).cloned().collect(),
            Spec::Listener {
                load_balancer,
                action,
                certificate,
                ..
            } => {
                let mut d = vec![load_balancer.clone()];
                if let ListenerAction::Forward { target_group } = action {
                    d.push(target_group.clone());
                }
                d.extend(certificate.iter().cloned());
                d
            }
        };
        deps.sort();
        deps.dedup();
        deps
    }
}
