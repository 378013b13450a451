//! The module that manages each kind: the one place that maps a `Kind` to its code. The match is
//! exhaustive, so a new kind does not compile until it has a module here.

use super::ResourceKind;
use crate::kinds::Kind;

impl Kind {
    /// The module that finds, creates, waits for, updates and deletes this kind.
    pub fn imp(self) -> &'static dyn ResourceKind {
        match self {
            Kind::Vpc => &super::vpc::Vpcs,
            Kind::Subnet => &super::subnet::Subnets,
            Kind::InternetGateway => &super::internet_gateway::InternetGateways,
            Kind::RouteTable => &super::route_table::RouteTables,
            Kind::SecurityGroup => &super::security_group::SecurityGroups,
            Kind::Certificate => &super::certificate::Certificates,
            Kind::LoadBalancer => &super::load_balancer::LoadBalancers,
            Kind::TargetGroup => &super::target_group::TargetGroups,
            Kind::Listener => &super::listener::Listeners,
            Kind::DbSubnetGroup => &super::database::DbSubnetGroups,
            Kind::Database => &super::database::Databases,
            Kind::FileSystem => &super::file_system::FileSystems,
            Kind::MountTarget => &super::file_system::MountTargets,
            Kind::Bucket => &super::bucket::Buckets,
            Kind::Image => &super::image::Images,
            Kind::Builder => &super::image::Builders,
            Kind::LaunchTemplate => &super::launch_template::LaunchTemplates,
            Kind::AutoScalingGroup => &super::auto_scaling_group::AutoScalingGroups,
            Kind::ElasticIp => &super::elastic_ip::ElasticIps,
            Kind::Volume => &super::volume::Volumes,
            Kind::Instance => &super::instance::Instances,
            Kind::Secret => &super::secret::Secrets,
            Kind::Targets => &super::targets::Targets,
        }
    }
}
