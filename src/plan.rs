//! The stack as data: a DAG of desired resources with deterministic keys and names. Pure: no AWS.
//! The engine executes it; `bookstore plan` prints it next to what exists.

use serde::Serialize;

use crate::artifact::{Artifact, sha256_hex};
use crate::stack::{Scaling, Stack, StackKind, TlsMode};

/// Every kind of AWS resource bookstore manages.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, serde::Deserialize,
)]
#[serde(rename_all = "kebab-case")]
pub enum Kind {
    Vpc,
    Subnet,
    InternetGateway,
    RouteTable,
    SecurityGroup,
    Certificate,
    LoadBalancer,
    TargetGroup,
    Listener,
    DbSubnetGroup,
    Database,
    FileSystem,
    MountTarget,
    Bucket,
    Image,
    /// A bake's builder instance: never planned, found by its tags and removed once the AMI exists.
    Builder,
    LaunchTemplate,
    AutoScalingGroup,
}

impl Kind {
    pub const ALL: &'static [Kind] = &[
        Kind::Vpc,
        Kind::Subnet,
        Kind::InternetGateway,
        Kind::RouteTable,
        Kind::SecurityGroup,
        Kind::Certificate,
        Kind::LoadBalancer,
        Kind::TargetGroup,
        Kind::Listener,
        Kind::DbSubnetGroup,
        Kind::Database,
        Kind::FileSystem,
        Kind::MountTarget,
        Kind::Bucket,
        Kind::Image,
        Kind::Builder,
        Kind::LaunchTemplate,
        Kind::AutoScalingGroup,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Vpc => "vpc",
            Kind::Subnet => "subnet",
            Kind::InternetGateway => "internet-gateway",
            Kind::RouteTable => "route-table",
            Kind::SecurityGroup => "security-group",
            Kind::Certificate => "certificate",
            Kind::LoadBalancer => "load-balancer",
            Kind::TargetGroup => "target-group",
            Kind::Listener => "listener",
            Kind::DbSubnetGroup => "db-subnet-group",
            Kind::Database => "database",
            Kind::FileSystem => "file-system",
            Kind::MountTarget => "mount-target",
            Kind::Bucket => "bucket",
            Kind::Image => "image",
            Kind::Builder => "builder",
            Kind::LaunchTemplate => "launch-template",
            Kind::AutoScalingGroup => "auto-scaling-group",
        }
    }

    /// Kinds whose resources must all be gone before one of this kind can be deleted: the reverse
    /// of the creation order, at the level of kinds, so `down` works without a stack's plan (a
    /// resource found by tags alone) and runs independent kinds in parallel.
    pub fn teardown_after(self) -> &'static [Kind] {
        match self {
            Kind::Listener | Kind::Database | Kind::MountTarget => &[],
            Kind::AutoScalingGroup | Kind::Builder | Kind::Bucket => &[],
            Kind::LaunchTemplate => &[Kind::AutoScalingGroup],
            // Instances may still be launching from it; a builder may be making it.
            Kind::Image => &[Kind::AutoScalingGroup, Kind::LaunchTemplate, Kind::Builder],
            Kind::LoadBalancer => &[Kind::Listener],
            Kind::Certificate => &[Kind::Listener, Kind::LoadBalancer],
            Kind::TargetGroup => &[Kind::Listener, Kind::LoadBalancer, Kind::AutoScalingGroup],
            Kind::DbSubnetGroup => &[Kind::Database],
            Kind::FileSystem => &[Kind::MountTarget],
            // A load balancer, a database and a mount target hold network interfaces in the subnets
            // and their security groups; the load balancer also maps public addresses that keep the
            // internet gateway attached.
            // Deleting an Auto Scaling group ends once its instances have terminated.
            Kind::SecurityGroup => &[
                Kind::LoadBalancer,
                Kind::Database,
                Kind::MountTarget,
                Kind::AutoScalingGroup,
                Kind::Builder,
            ],
            Kind::InternetGateway | Kind::RouteTable => {
                &[Kind::LoadBalancer, Kind::AutoScalingGroup, Kind::Builder]
            }
            Kind::Subnet => &[
                Kind::AutoScalingGroup,
                Kind::Builder,
                Kind::LoadBalancer,
                Kind::RouteTable,
                Kind::Database,
                Kind::DbSubnetGroup,
                Kind::MountTarget,
            ],
            Kind::Vpc => &[
                Kind::Subnet,
                Kind::SecurityGroup,
                Kind::InternetGateway,
                Kind::RouteTable,
                Kind::TargetGroup,
            ],
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Ingress {
    pub port: u16,
    /// `None`: from anywhere (0.0.0.0/0). `Some(key)`: from the security group with that key only.
    pub from_group: Option<String>,
    pub description: String,
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
}

impl Spec {
    /// The keys of the resources this one needs to exist first.
    pub fn dependencies(&self) -> Vec<String> {
        let mut deps: Vec<String> = match self {
            Spec::Vpc { .. } | Spec::FileSystem | Spec::Bucket => vec![],
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

#[derive(Debug, Clone, Serialize)]
pub struct Desired {
    pub key: String,
    pub kind: Kind,
    /// The Name tag, and the AWS name where the kind has one.
    pub name: String,
    pub depends_on: Vec<String>,
    pub spec: Spec,
}

#[derive(Debug, Clone, Serialize)]
pub struct Plan {
    pub stack: String,
    pub env: String,
    pub region: String,
    pub resources: Vec<Desired>,
}

/// What the bake installs: the app artifact and the install templates. Their combined hash names
/// the AMI's plan key (`ami-<10 hex>`), so a new app bakes a new image and an unchanged one bakes
/// nothing.
#[derive(Debug, Clone, Serialize)]
pub struct BakeInput {
    pub artifact: Artifact,
    pub templates_sha256: String,
}

impl BakeInput {
    pub fn image_key(&self) -> String {
        let both =
            sha256_hex(format!("{}:{}", self.artifact.sha256, self.templates_sha256).as_bytes());
        format!("ami-{}", &both[..10])
    }
}

/// How long instances may boot before the load balancer's health checks count.
const HEALTH_CHECK_GRACE_SECONDS: u32 = 300;

/// The plan key of the mount target in the subnet with key `subnet_key` (`subnet-a` → `efs-mount-a`).
/// Mount targets cannot be tagged, so the observer derives their key the same way.
pub fn mount_target_key(subnet_key: &str) -> String {
    format!("efs-mount-{}", subnet_key.trim_start_matches("subnet-"))
}

/// `bs-<env>-<stack>`: short, because load balancer and target group names stop at 32 characters.
pub fn name_prefix(stack: &str, env: &str) -> String {
    format!("bs-{env}-{stack}")
}

impl Plan {
    /// The desired resources for `stack` in `env`. Only the asg kind is provisioned so far.
    pub fn build(stack: &Stack, env: &str, region: &str, bake: &BakeInput) -> Plan {
        let prefix = name_prefix(&stack.name, env);
        let mut resources = Vec::new();
        let mut add = |key: &str, kind: Kind, spec: Spec| {
            resources.push(Desired {
                key: key.to_string(),
                kind,
                name: format!("{prefix}-{key}"),
                depends_on: spec.dependencies(),
                spec,
            });
        };
        if stack.kind == StackKind::Asg {
            add(
                "vpc",
                Kind::Vpc,
                Spec::Vpc {
                    cidr: stack.network.cidr.to_string(),
                },
            );
            let zones = stack.availability_zones(region);
            let mut subnets = Vec::new();
            for (i, (cidr, zone)) in stack.network.public_subnets.iter().zip(&zones).enumerate() {
                let key = format!("subnet-{}", (b'a' + i as u8) as char);
                add(
                    &key,
                    Kind::Subnet,
                    Spec::Subnet {
                        vpc: "vpc".into(),
                        cidr: cidr.to_string(),
                        availability_zone: zone.clone(),
                    },
                );
                subnets.push(key);
            }
            add(
                "igw",
                Kind::InternetGateway,
                Spec::InternetGateway { vpc: "vpc".into() },
            );
            add(
                "routes",
                Kind::RouteTable,
                Spec::RouteTable {
                    vpc: "vpc".into(),
                    internet_gateway: "igw".into(),
                    subnets: subnets.clone(),
                },
            );
            let tls = stack.tls.mode != TlsMode::None;
            let mut lb_ingress = vec![Ingress {
                port: 80,
                from_group: None,
                description: "HTTP from anywhere".into(),
            }];
            if tls {
                lb_ingress.push(Ingress {
                    port: 443,
                    from_group: None,
                    description: "HTTPS from anywhere".into(),
                });
            }
            add(
                "sg-lb",
                Kind::SecurityGroup,
                Spec::SecurityGroup {
                    vpc: "vpc".into(),
                    description: "bookstore load balancer: HTTP/HTTPS from anywhere".into(),
                    ingress: lb_ingress,
                },
            );
            add(
                "sg-app",
                Kind::SecurityGroup,
                Spec::SecurityGroup {
                    vpc: "vpc".into(),
                    description: "bookstore app instances: app port from the load balancer only"
                        .into(),
                    ingress: vec![Ingress {
                        port: stack.app.port,
                        from_group: Some("sg-lb".into()),
                        description: "app port from the load balancer".into(),
                    }],
                },
            );
            if stack.database.is_some() {
                add(
                    "sg-db",
                    Kind::SecurityGroup,
                    Spec::SecurityGroup {
                        vpc: "vpc".into(),
                        description: "bookstore database: MySQL from the app instances only".into(),
                        ingress: vec![Ingress {
                            port: 3306,
                            from_group: Some("sg-app".into()),
                            description: "MySQL from the app".into(),
                        }],
                    },
                );
            }
            if stack.file_system.is_some() {
                add(
                    "sg-efs",
                    Kind::SecurityGroup,
                    Spec::SecurityGroup {
                        vpc: "vpc".into(),
                        description: "bookstore file system: NFS from the app instances only"
                            .into(),
                        ingress: vec![Ingress {
                            port: 2049,
                            from_group: Some("sg-app".into()),
                            description: "NFS from the app".into(),
                        }],
                    },
                );
            }
            if let Some(db) = &stack.database {
                add(
                    "db-subnets",
                    Kind::DbSubnetGroup,
                    Spec::DbSubnetGroup {
                        subnets: subnets.clone(),
                    },
                );
                add(
                    "db",
                    Kind::Database,
                    Spec::Database {
                        subnet_group: "db-subnets".into(),
                        security_group: "sg-db".into(),
                        engine_version: db.engine_version.clone(),
                        instance_class: db.instance_class.clone(),
                        storage_gb: db.storage_gb,
                        storage_type: db.storage_type.clone(),
                        backup_retention_days: db.backup_retention_days,
                        multi_az: db.multi_az,
                        final_snapshot: db.final_snapshot,
                    },
                );
            }
            if stack.file_system.is_some() {
                add("efs", Kind::FileSystem, Spec::FileSystem);
                for subnet in &subnets {
                    let key = mount_target_key(subnet);
                    add(
                        &key,
                        Kind::MountTarget,
                        Spec::MountTarget {
                            file_system: "efs".into(),
                            subnet: subnet.clone(),
                            security_group: "sg-efs".into(),
                        },
                    );
                }
            }
            let lb = stack
                .load_balancer
                .clone()
                .unwrap_or_else(|| crate::stack::LoadBalancer {
                    ssl_policy: "ELBSecurityPolicy-TLS13-1-2-2021-06".into(),
                    idle_timeout_seconds: 60,
                });
            add(
                "alb",
                Kind::LoadBalancer,
                Spec::LoadBalancer {
                    subnets: subnets.clone(),
                    security_groups: vec!["sg-lb".into()],
                    idle_timeout_seconds: lb.idle_timeout_seconds,
                },
            );
            add(
                "tg",
                Kind::TargetGroup,
                Spec::TargetGroup {
                    vpc: "vpc".into(),
                    port: stack.app.port,
                    health_check_path: stack.app.health_check_path.clone(),
                },
            );
            if tls {
                let self_signed = stack.tls.mode == TlsMode::SelfSigned;
                add(
                    "cert",
                    Kind::Certificate,
                    Spec::Certificate {
                        load_balancer: self_signed.then(|| "alb".to_string()),
                        domain: stack.tls.domain.clone(),
                        self_signed,
                    },
                );
                add(
                    "listener-http",
                    Kind::Listener,
                    Spec::Listener {
                        load_balancer: "alb".into(),
                        port: 80,
                        action: ListenerAction::RedirectToHttps,
                        certificate: None,
                        ssl_policy: None,
                    },
                );
                add(
                    "listener-https",
                    Kind::Listener,
                    Spec::Listener {
                        load_balancer: "alb".into(),
                        port: 443,
                        action: ListenerAction::Forward {
                            target_group: "tg".into(),
                        },
                        certificate: Some("cert".into()),
                        ssl_policy: Some(lb.ssl_policy.clone()),
                    },
                );
            } else {
                add(
                    "listener-http",
                    Kind::Listener,
                    Spec::Listener {
                        load_balancer: "alb".into(),
                        port: 80,
                        action: ListenerAction::Forward {
                            target_group: "tg".into(),
                        },
                        certificate: None,
                        ssl_policy: None,
                    },
                );
            }
            add("artifacts", Kind::Bucket, Spec::Bucket);
            let image = bake.image_key();
            add(
                &image,
                Kind::Image,
                Spec::Image {
                    bucket: "artifacts".into(),
                    subnet: subnets[0].clone(),
                    routes: "routes".into(),
                    security_group: "sg-app".into(),
                    instance_type: stack.instances.instance_type.clone(),
                    volume_gb: stack.instances.volume_gb,
                    artifact: bake.artifact.clone(),
                    templates_sha256: bake.templates_sha256.clone(),
                },
            );
            add(
                "lt",
                Kind::LaunchTemplate,
                Spec::LaunchTemplate {
                    image,
                    security_group: "sg-app".into(),
                    instance_type: stack.instances.instance_type.clone(),
                    volume_gb: stack.instances.volume_gb,
                    volume_type: stack.instances.volume_type.clone(),
                    instance_profile: stack.instances.instance_profile.clone(),
                    app_port: stack.app.port,
                    region: region.to_string(),
                    database: stack.database.as_ref().map(|_| "db".to_string()),
                    file_system: stack.file_system.as_ref().map(|_| "efs".to_string()),
                    mount_targets: if stack.file_system.is_some() {
                        subnets.iter().map(|s| mount_target_key(s)).collect()
                    } else {
                        vec![]
                    },
                },
            );
            add(
                "asg",
                Kind::AutoScalingGroup,
                Spec::AutoScalingGroup {
                    launch_template: "lt".into(),
                    subnets: subnets.clone(),
                    target_group: "tg".into(),
                    load_balancer: "alb".into(),
                    min: stack.instances.min,
                    max: stack.instances.max,
                    desired: stack.instances.desired,
                    health_check_grace_seconds: HEALTH_CHECK_GRACE_SECONDS,
                    scaling: stack.scaling.clone(),
                },
            );
        }
        Plan {
            stack: stack.name.clone(),
            env: env.to_string(),
            region: region.to_string(),
            resources,
        }
    }

    pub fn get(&self, key: &str) -> Option<&Desired> {
        self.resources.iter().find(|r| r.key == key)
    }

    /// The resource with this key and everything it needs, in plan order (`bookstore bake`).
    pub fn closure(&self, key: &str) -> Plan {
        let mut wanted = std::collections::HashSet::new();
        let mut todo = vec![key.to_string()];
        while let Some(k) = todo.pop() {
            if let Some(r) = self.get(&k)
                && wanted.insert(k)
            {
                todo.extend(r.depends_on.iter().cloned());
            }
        }
        Plan {
            resources: self
                .resources
                .iter()
                .filter(|r| wanted.contains(&r.key))
                .cloned()
                .collect(),
            ..self.clone()
        }
    }

    /// The key of the baked image, if the plan has one.
    pub fn image_key(&self) -> Option<&str> {
        self.resources
            .iter()
            .find(|r| r.kind == Kind::Image)
            .map(|r| r.key.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn asg_plan_is_a_dag_in_dependency_order() {
        let stack = Stack::load("asg").unwrap();
        let bake = BakeInput {
            artifact: Artifact::resolve(&crate::artifact::AppChoice::Source).unwrap(),
            templates_sha256: crate::templates::install_templates_sha256(),
        };
        let plan = Plan::build(&stack, "dev", "us-east-1", &bake);
        let mut seen = std::collections::HashSet::new();
        for r in &plan.resources {
            for d in &r.depends_on {
                assert!(
                    seen.contains(d.as_str()),
                    "{} depends on {d}, which comes later",
                    r.key
                );
            }
            seen.insert(r.key.as_str());
            assert!(r.name.len() <= 32, "{} is too long for an AWS name", r.name);
        }
        let https = plan.get("listener-https").unwrap();
        assert!(https.depends_on.contains(&"cert".to_string()));
        // The slow branches do not wait for each other: the bake needs only the network.
        let image = plan.image_key().unwrap().to_string();
        let closure: Vec<String> = plan
            .closure(&image)
            .resources
            .into_iter()
            .map(|r| r.key)
            .collect();
        for independent in ["db", "efs", "alb", "asg", "lt"] {
            assert!(!closure.contains(&independent.to_string()), "{closure:?}");
        }
        let asg = plan.get("asg").unwrap();
        for needed in ["lt", "tg", "subnet-a", "subnet-b"] {
            assert!(asg.depends_on.contains(&needed.to_string()));
        }
    }
}
