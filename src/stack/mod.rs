//! Stack files: where they come from (built in or a path), and the typed, validated stack the
//! planner works from. Parsing and validation never touch AWS.

mod cidr;
mod raw;
mod validate;
mod yaml_error;

pub use cidr::Cidr;
#[cfg(test)]
pub use validate::parse as validate_text;
pub use validate::{
    Diagnostic, Diagnostics, LAB_MAX_INSTANCES, LAB_REGIONS, known_region, valid_env_name,
};

use std::collections::BTreeMap;
use std::path::Path;

use crate::error::Error;

/// The built-in stacks, embedded so the binary works from any directory.
pub const BUILT_IN: &[(&str, &str)] = &[
    ("monolith", include_str!("../../stacks/monolith.yaml")),
    ("asg", include_str!("../../stacks/asg.yaml")),
    ("swarm", include_str!("../../stacks/swarm.yaml")),
    ("eks", include_str!("../../stacks/eks.yaml")),
];

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum StackKind {
    Monolith,
    Asg,
    Swarm,
    Eks,
}

impl StackKind {
    pub fn as_str(self) -> &'static str {
        match self {
            StackKind::Monolith => "monolith",
            StackKind::Asg => "asg",
            StackKind::Swarm => "swarm",
            StackKind::Eks => "eks",
        }
    }

    /// "a monolith", "an asg": for messages.
    pub fn with_article(self) -> String {
        let name = self.as_str();
        let article = if name.starts_with(['a', 'e', 'i', 'o', 'u']) {
            "an"
        } else {
            "a"
        };
        format!("{article} {name}")
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Sandbox {
    /// AWS Academy Learner Lab: its limits are errors.
    LearnerLab,
    None,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum TlsMode {
    None,
    SelfSigned,
    Acm,
    /// Let's Encrypt for `tls.domain`, HTTP-01 (monolith).
    Letsencrypt,
    /// Let's Encrypt for the Elastic IP itself: the `shortlived` profile, no domain (monolith).
    LetsencryptIp,
}

impl TlsMode {
    pub fn as_str(self) -> &'static str {
        match self {
            TlsMode::None => "none",
            TlsMode::SelfSigned => "self-signed",
            TlsMode::Acm => "acm",
            TlsMode::Letsencrypt => "letsencrypt",
            TlsMode::LetsencryptIp => "letsencrypt-ip",
        }
    }
}

/// Where the monolith's MariaDB runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Placement {
    SameVm,
    SeparateVm,
}

/// The monolith's own database: MariaDB on a VM, its files on an encrypted data volume.
#[derive(Debug, Clone, serde::Serialize)]
pub struct VmDatabase {
    pub placement: Placement,
    pub volume_gb: u32,
    /// `down` snapshots the data volume(s) before deleting them.
    pub final_snapshot: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ScalingMetric {
    RequestCount,
    Cpu,
}

/// A value's position in the stack file, for errors found after parsing (e.g. the region, which is
/// only known once flags and the environment are resolved).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Position {
    pub line: u64,
    pub column: u64,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct Stack {
    /// What to call the file in messages: a path, or `stacks/asg.yaml (built-in)`.
    pub source: String,
    pub name: String,
    pub region: Option<(String, Position)>,
    pub sandbox: Sandbox,
    pub tags: BTreeMap<String, String>,
    pub network: Network,
    pub app: App,
    pub tls: Tls,
    pub instances: Instances,
    /// The kind of stack, with the sections only that kind has.
    #[serde(flatten)]
    pub topology: Topology,
}

/// What differs between the kinds of stack: each holds its own sections, and nothing it does
/// not use, so the planner of a kind needs no "a validated X has its Y".
#[derive(Debug, Clone, serde::Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Topology {
    Monolith(MonolithStack),
    Asg(AsgStack),
    Swarm(SwarmStack),
    Eks(EksStack),
}

/// One VM (or an app VM and a database VM), its own MariaDB, its own TLS.
#[derive(Debug, Clone, serde::Serialize)]
pub struct MonolithStack {
    pub database: VmDatabase,
}

/// An Auto Scaling group of baked instances behind the load balancer, RDS and EFS.
#[derive(Debug, Clone, serde::Serialize)]
pub struct AsgStack {
    pub load_balancer: LoadBalancer,
    pub scaling: Scaling,
    pub database: Database,
    pub file_system: FileSystem,
}

/// A Docker Swarm of baked nodes behind the load balancer, RDS and EFS.
#[derive(Debug, Clone, serde::Serialize)]
pub struct SwarmStack {
    pub load_balancer: LoadBalancer,
    pub swarm: Swarm,
    pub database: Database,
    pub file_system: FileSystem,
}

/// A Kubernetes cluster (EKS) on the Learner Lab's roles, its managed nodes behind the load
/// balancer, RDS and EFS; the app's image in the env's own ECR repository.
#[derive(Debug, Clone, serde::Serialize)]
pub struct EksStack {
    pub load_balancer: LoadBalancer,
    pub kubernetes: Kubernetes,
    pub database: Database,
    pub file_system: FileSystem,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct Kubernetes {
    /// A minor version in EKS's standard support (extended support costs 6 times more).
    pub version: String,
    /// What the cluster's IAM role name contains (the lab's carries a prefix and a suffix).
    pub cluster_role: String,
    /// What the nodes' IAM role name contains.
    pub node_role: String,
    /// The managed node group's size.
    pub nodes: u32,
    /// The app's pods (a Deployment's replicas).
    pub replicas: u32,
    /// The port every node opens for the app's NodePort Service (only to the load balancer).
    pub node_port: u16,
}

impl Topology {
    pub fn kind(&self) -> StackKind {
        match self {
            Topology::Monolith(_) => StackKind::Monolith,
            Topology::Asg(_) => StackKind::Asg,
            Topology::Swarm(_) => StackKind::Swarm,
            Topology::Eks(_) => StackKind::Eks,
        }
    }
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct Network {
    pub cidr: Cidr,
    pub public_subnets: Vec<Cidr>,
    /// Empty means `<region>a`, `<region>b`, … chosen once the region is known.
    pub availability_zones: Vec<String>,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct App {
    pub port: u16,
    pub health_check_path: String,
    pub services: Services,
    /// The split's services that the stack file gives their own replicas (swarm, eks); the
    /// others take the stack's `replicas`.
    pub replicas: BTreeMap<AppService, u32>,
}

impl App {
    /// How many replicas `service` runs where the stack's number is `default`.
    pub fn replicas_of(&self, service: AppService, default: u32) -> u32 {
        self.replicas.get(&service).copied().unwrap_or(default)
    }
}

/// How the app runs: one process, or the split's three services (accounts, catalog, orders),
/// each with its own port, database schema and user, behind the load balancer's path rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Services {
    Single,
    Split,
}

/// One service of the split. Its public port is the app's port + 1, 2, 3; its internal API (the
/// other services call it, never the internet) the app's port + 1001, 1002, 1003.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum AppService {
    Accounts,
    Catalog,
    Orders,
}

/// The highest offset from `app.port` that the split uses.
pub const SPLIT_PORT_SPAN: u16 = 1003;

impl AppService {
    pub const ALL: [AppService; 3] = [
        AppService::Accounts,
        AppService::Catalog,
        AppService::Orders,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            AppService::Accounts => "accounts",
            AppService::Catalog => "catalog",
            AppService::Orders => "orders",
        }
    }

    fn offset(self) -> u16 {
        match self {
            AppService::Accounts => 1,
            AppService::Catalog => 2,
            AppService::Orders => 3,
        }
    }

    pub fn port(self, app: &App) -> u16 {
        self.port_from(app.port)
    }

    pub fn port_from(self, app_port: u16) -> u16 {
        app_port + self.offset()
    }

    pub fn internal_port_from(self, app_port: u16) -> u16 {
        app_port + 1000 + self.offset()
    }

    /// The ALB path patterns that send a request to this service; none for the catalog, which
    /// takes what no rule matches (the listener's default action). From the app's own table.
    pub fn path_patterns(self) -> &'static [&'static str] {
        routing::ROUTES
            .iter()
            .find(|(name, _)| *name == self.as_str())
            .map_or(&[], |(_, patterns)| patterns)
    }

    /// Where this service's rule comes in the routing table (the load balancer tries rules in
    /// this order too); `None` for the default's.
    pub fn rule_rank(self) -> Option<usize> {
        routing::ROUTES
            .iter()
            .position(|(name, _)| *name == self.as_str())
    }

    /// The service behind the listener's default action.
    pub fn default_route() -> AppService {
        AppService::ALL
            .into_iter()
            .find(|s| s.as_str() == routing::DEFAULT)
            .expect("the app's default service is one of the three")
    }
}

/// The app's routing table (app/src/routing.rs), compiled into the CLI as well: the listener
/// rules cannot disagree with what each service serves.
#[allow(dead_code)] // the CLI uses the table; the app uses the matcher too
#[path = "../../app/src/routing.rs"]
pub mod routing;

#[derive(Debug, Clone, serde::Serialize)]
pub struct Tls {
    pub mode: TlsMode,
    pub domain: Option<String>,
    /// The ACME directory for the Let's Encrypt modes (tests point it at a local server).
    pub acme_server: String,
}

/// Let's Encrypt's production directory.
pub const LETSENCRYPT_DIRECTORY: &str = "https://acme-v02.api.letsencrypt.org/directory";

#[derive(Debug, Clone, serde::Serialize)]
pub struct LoadBalancer {
    pub ssl_policy: String,
    pub idle_timeout_seconds: u32,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct Instances {
    pub instance_type: String,
    pub min: u32,
    pub max: u32,
    pub desired: u32,
    pub volume_gb: u32,
    pub volume_type: String,
    pub instance_profile: Option<String>,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct Scaling {
    pub metric: ScalingMetric,
    pub target: u32,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct Database {
    pub engine_version: String,
    pub instance_class: String,
    pub storage_gb: u32,
    pub storage_type: String,
    pub backup_retention_days: u32,
    pub multi_az: bool,
    pub final_snapshot: bool,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct FileSystem {
    pub encrypted: bool,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct Swarm {
    pub managers: u32,
    pub workers: u32,
    /// App tasks of the swarm service.
    pub replicas: u32,
}

impl Stack {
    pub fn kind(&self) -> StackKind {
        self.topology.kind()
    }

    /// Loads `asg` (a built-in) or `./x.yaml` (a file), then parses and validates it.
    pub fn load(reference: &str) -> Result<Stack, Error> {
        let (source, text) = read(reference)?;
        validate::parse(&source, &text).map_err(Error::InvalidStack)
    }

    /// The availability zones to use in `region`: the stack's, or `<region>a`, `<region>b`, ….
    pub fn availability_zones(&self, region: &str) -> Vec<String> {
        if !self.network.availability_zones.is_empty() {
            return self.network.availability_zones.clone();
        }
        (0..self.network.public_subnets.len())
            .map(|i| format!("{region}{}", (b'a' + i as u8) as char))
            .collect()
    }
}

fn is_path(reference: &str) -> bool {
    reference.contains('/')
        || reference.contains(std::path::MAIN_SEPARATOR)
        || reference.ends_with(".yaml")
        || reference.ends_with(".yml")
}

fn read(reference: &str) -> Result<(String, String), Error> {
    if !is_path(reference) {
        return match BUILT_IN.iter().find(|(name, _)| *name == reference) {
            Some((name, text)) => Ok((format!("stacks/{name}.yaml (built-in)"), text.to_string())),
            None => Err(Error::Usage {
                message: format!("there is no built-in stack named `{reference}`"),
                hint: format!(
                    "use one of {}, or a path to your own file such as `./{reference}.yaml`",
                    BUILT_IN
                        .iter()
                        .map(|(n, _)| *n)
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            }),
        };
    }
    let path = Path::new(reference);
    match std::fs::read_to_string(path) {
        Ok(text) => Ok((reference.to_string(), text)),
        Err(e) => Err(Error::Usage {
            message: format!("cannot read stack file {reference}: {e}"),
            hint: "check the path, or pass a built-in stack name: monolith, asg, swarm, eks".into(),
        }),
    }
}
