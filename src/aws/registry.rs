//! The one list of kinds and their modules: each kind's module and the spec it owns. `Spec`, the
//! plan's union of every kind's spec, is generated from it, and `Kind::imp`'s match is
//! exhaustive, so a new kind does not compile until it has a module, a spec, a drawing, a price
//! and an instance count.

use serde::Serialize;

use super::{KindSpec, ResourceKind};
use super::{
    auto_scaling_group, bucket, certificate, cluster, database, elastic_ip, file_system, image,
    instance, internet_gateway, launch_template, listener, listener_rule, load_balancer,
    node_group, node_template, repository, route_table, secret, security_group, subnet,
    target_group, targets, volume, vpc, workload,
};
use crate::kinds::Kind;

/// One resource of the plan: what it should be, under which key and name.
#[derive(Debug, Clone, Serialize)]
pub struct Desired {
    pub key: String,
    pub kind: Kind,
    /// The Name tag, and the AWS name where the kind has one.
    pub name: String,
    pub depends_on: Vec<String>,
    pub spec: Spec,
}

/// The spec of a kind that is never planned (a bake's builder: found by its tags, removed once
/// the image exists). It has no value, so no plan can hold one.
#[derive(Debug, Clone, Serialize)]
pub enum NoSpec {}

impl KindSpec for NoSpec {
    fn of(_: &Spec) -> Option<&NoSpec> {
        None
    }
}

macro_rules! kinds {
    ($($variant:ident => $module:ident::$imp:ident($spec:ident);)*) => {
        /// What each planned resource should be: its kind's own spec.
        #[derive(Debug, Clone, Serialize)]
        #[serde(tag = "kind", rename_all = "kebab-case")]
        pub enum Spec {
            $($variant($module::$spec),)*
        }

        impl Spec {
            /// The kind a resource with this spec must be.
            pub fn kind(&self) -> Kind {
                match self {
                    $(Spec::$variant(_) => Kind::$variant,)*
                }
            }
        }

        $(
            impl From<$module::$spec> for Spec {
                fn from(spec: $module::$spec) -> Spec {
                    Spec::$variant(spec)
                }
            }

            impl KindSpec for $module::$spec {
                fn of(spec: &Spec) -> Option<&Self> {
                    match spec {
                        Spec::$variant(s) => Some(s),
                        #[allow(unreachable_patterns)]
                        _ => None,
                    }
                }
            }
        )*

        impl Kind {
            /// The module that finds, creates, waits for, updates and deletes this kind.
            pub fn imp(self) -> &'static dyn ResourceKind {
                match self {
                    $(Kind::$variant => &$module::$imp,)*
                    Kind::Builder => &image::Builders,
                }
            }
        }
    };
}

kinds! {
    Vpc => vpc::Vpcs(VpcSpec);
    Subnet => subnet::Subnets(SubnetSpec);
    InternetGateway => internet_gateway::InternetGateways(InternetGatewaySpec);
    RouteTable => route_table::RouteTables(RouteTableSpec);
    SecurityGroup => security_group::SecurityGroups(SecurityGroupSpec);
    Certificate => certificate::Certificates(CertificateSpec);
    LoadBalancer => load_balancer::LoadBalancers(LoadBalancerSpec);
    TargetGroup => target_group::TargetGroups(TargetGroupSpec);
    Listener => listener::Listeners(ListenerSpec);
    ListenerRule => listener_rule::ListenerRules(ListenerRuleSpec);
    DbSubnetGroup => database::DbSubnetGroups(DbSubnetGroupSpec);
    Database => database::Databases(DatabaseSpec);
    FileSystem => file_system::FileSystems(FileSystemSpec);
    MountTarget => file_system::MountTargets(MountTargetSpec);
    Bucket => bucket::Buckets(BucketSpec);
    Image => image::Images(ImageSpec);
    LaunchTemplate => launch_template::LaunchTemplates(LaunchTemplateSpec);
    AutoScalingGroup => auto_scaling_group::AutoScalingGroups(AutoScalingGroupSpec);
    ElasticIp => elastic_ip::ElasticIps(ElasticIpSpec);
    Volume => volume::Volumes(VolumeSpec);
    Secret => secret::Secrets(SecretSpec);
    Targets => targets::Targets(TargetsSpec);
    Instance => instance::Instances(InstanceSpec);
    Repository => repository::Repositories(RepositorySpec);
    Cluster => cluster::Clusters(ClusterSpec);
    NodeTemplate => node_template::NodeTemplates(NodeTemplateSpec);
    NodeGroup => node_group::NodeGroups(NodeGroupSpec);
    Workload => workload::Workloads(WorkloadSpec);
}

impl Spec {
    /// The keys of the resources this one needs to exist first: every `Ref` in it.
    pub fn dependencies(&self) -> Vec<String> {
        crate::reference::refs_of(self)
    }
}
