//! What each planned resource should be: one `Spec` variant per kind, and the keys it depends on.

use serde::Serialize;

use super::Kind;
use super::bake::Recipe;
pub use super::reference::Ref;
use crate::artifact::{Artifact, ArtifactKind};
use crate::stack::{Scaling, TlsMode};

#[derive(Debug, Clone, Serialize)]
pub struct Ingress {
    pub protocol: Protocol,
    pub port: u16,
    /// `None`: from anywhere (0.0.0.0/0). `Some(key)`: from the security group with that key only
    /// (its own key: from the members of the group itself).
    pub from_group: Option<Ref>,
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
        target_group: Ref,
    },
}

#[derive(Debug, Clone, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Spec {
    Vpc {
        cidr: String,
    },
    Subnet {
        vpc: Ref,
        cidr: String,
        availability_zone: String,
    },
    InternetGateway {
        vpc: Ref,
    },
    RouteTable {
        vpc: Ref,
        internet_gateway: Ref,
        subnets: Vec<Ref>,
    },
    SecurityGroup {
        vpc: Ref,
        description: String,
        ingress: Vec<Ingress>,
    },
    /// `self-signed`: generated and imported; its names are the load balancer's DNS name (and the
    /// domain, if any). `acm`: requested from ACM with DNS validation.
    Certificate {
        load_balancer: Option<Ref>,
        domain: Option<String>,
        self_signed: bool,
    },
    LoadBalancer {
        subnets: Vec<Ref>,
        security_groups: Vec<Ref>,
        idle_timeout_seconds: u32,
    },
    TargetGroup {
        vpc: Ref,
        port: u16,
        health_check_path: String,
    },
    DbSubnetGroup {
        subnets: Vec<Ref>,
    },
    Database {
        subnet_group: Ref,
        security_group: Ref,
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
        file_system: Ref,
        subnet: Ref,
        security_group: Ref,
    },
    Listener {
        load_balancer: Ref,
        port: u16,
        action: ListenerAction,
        certificate: Option<Ref>,
        ssl_policy: Option<String>,
    },
    /// The private, encrypted bucket the bake uploads the app artifact to.
    Bucket,
    /// The baked AMI: the app installed on Amazon Linux 2023 by a builder instance.
    Image {
        bucket: Ref,
        subnet: Ref,
        /// The builder downloads packages: the subnet's route to the internet must exist.
        routes: Ref,
        security_group: Ref,
        instance_type: String,
        volume_gb: u32,
        artifact: Artifact,
        /// What the builder installs besides the app.
        recipe: Recipe,
        templates_sha256: String,
    },
    LaunchTemplate {
        image: Ref,
        security_group: Ref,
        instance_type: String,
        volume_gb: u32,
        volume_type: String,
        instance_profile: Option<String>,
        app_port: u16,
        region: String,
        database: Option<Ref>,
        file_system: Option<Ref>,
        /// Instances mount the file system at boot: its mount targets must exist first.
        mount_targets: Vec<Ref>,
    },
    AutoScalingGroup {
        launch_template: Ref,
        subnets: Vec<Ref>,
        target_group: Ref,
        load_balancer: Ref,
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
        target_group: Ref,
        instances: Vec<Ref>,
    },
    /// One EC2 instance from the baked image, with its data volume attached and, when public, its
    /// Elastic IP associated. Replaced (never changed in place) when its image or type changes.
    Instance {
        image: Ref,
        subnet: Ref,
        /// The instance downloads at boot (certificates): the subnet's route must exist.
        routes: Ref,
        security_group: Ref,
        instance_type: String,
        root_volume_gb: u32,
        volume_type: String,
        instance_profile: Option<String>,
        /// The Elastic IP to associate (a public instance), or none (a private one).
        address: Option<Ref>,
        /// The stack's data volume to attach, if the instance has one.
        data_volume: Option<Ref>,
        /// The database credentials' secret, when they are shared between VMs.
        secret: Option<Ref>,
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
        image: Ref,
        /// The artifact bucket the binary is in.
        bucket: Ref,
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
        database: Option<Ref>,
    },
    /// MariaDB only, for the app VM's security group.
    Database,
    /// A Docker Swarm node; the app runs as a swarm service from the stack file.
    Swarm {
        node: SwarmNode,
        /// The secret the leader writes the join tokens to.
        tokens: Ref,
        /// The secret naming the app image to run (written by bookstore).
        release: Ref,
        /// The secret the swarm's leader reports Docker's view to.
        status: Ref,
        app_port: u16,
        replicas: u32,
        database: Option<Ref>,
        file_system: Option<Ref>,
        /// Nodes mount the file system at boot: its mount targets must exist first.
        mount_targets: Vec<Ref>,
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

    /// The keys of the resources this one needs to exist first: every `Ref` in it.
    pub fn dependencies(&self) -> Vec<String> {
        super::reference::refs_of(self)
    }
}
