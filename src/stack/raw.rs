//! The stack file exactly as written: every value keeps its line and column so that validation can
//! point at it. Unknown keys are rejected by serde. Numbers are read as i64 so that a negative or
//! oversized count gets our range message rather than a type error.

use serde::Deserialize;
use serde_saphyr::Spanned;
use std::collections::BTreeMap;

pub type Field<T> = Option<Spanned<T>>;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawStack {
    pub version: Spanned<i64>,
    pub name: Spanned<String>,
    pub kind: Spanned<String>,
    pub region: Field<String>,
    pub sandbox: Field<String>,
    pub tags: Field<BTreeMap<String, String>>,
    pub network: Field<RawNetwork>,
    pub app: Field<RawApp>,
    pub tls: Field<RawTls>,
    pub load_balancer: Field<RawLoadBalancer>,
    pub instances: Field<RawInstances>,
    pub scaling: Field<RawScaling>,
    pub database: Field<RawDatabase>,
    pub file_system: Field<RawFileSystem>,
    pub swarm: Field<RawSwarm>,
    pub kubernetes: Field<RawKubernetes>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawNetwork {
    pub cidr: Field<String>,
    pub public_subnets: Field<Vec<Spanned<String>>>,
    pub availability_zones: Field<Vec<Spanned<String>>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawApp {
    pub port: Field<i64>,
    pub health_check_path: Field<String>,
    pub services: Field<String>,
    /// The split's replicas per service (swarm, eks): `{catalog: 4}`.
    pub replicas: Field<BTreeMap<String, Spanned<i64>>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTls {
    pub mode: Field<String>,
    pub domain: Field<String>,
    pub acme_server: Field<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawLoadBalancer {
    pub ssl_policy: Field<String>,
    pub idle_timeout_seconds: Field<i64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawInstances {
    #[serde(rename = "type")]
    pub instance_type: Field<String>,
    pub min: Field<i64>,
    pub max: Field<i64>,
    pub desired: Field<i64>,
    pub volume_gb: Field<i64>,
    pub volume_type: Field<String>,
    pub instance_profile: Field<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawScaling {
    pub metric: Field<String>,
    pub target: Field<i64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawDatabase {
    pub engine_version: Field<String>,
    pub instance_class: Field<String>,
    pub storage_gb: Field<i64>,
    pub storage_type: Field<String>,
    pub backup_retention_days: Field<i64>,
    pub multi_az: Field<bool>,
    pub final_snapshot: Field<bool>,
    /// Monolith only: `same-vm` or `separate-vm`.
    pub placement: Field<String>,
    /// Monolith only: the data volume's size.
    pub volume_gb: Field<i64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawFileSystem {
    pub encrypted: Field<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSwarm {
    pub managers: Field<i64>,
    pub workers: Field<i64>,
    pub replicas: Field<i64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawKubernetes {
    pub version: Field<String>,
    pub cluster_role: Field<String>,
    pub node_role: Field<String>,
    pub nodes: Field<i64>,
    pub replicas: Field<i64>,
    pub node_port: Field<i64>,
}
