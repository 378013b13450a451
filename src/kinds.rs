//! The registry of resource kinds: one line per kind, naming it and the module that manages it.
//! `Kind`, `Kind::ALL` and `Kind::imp` are generated from this one list, so a kind cannot exist
//! without being observed and deleted (a kind left out of `ALL` would leak its resources), and
//! each module declares its own teardown order (`ResourceKind::teardown_after`).

use crate::aws::{self, ResourceKind};

macro_rules! registry {
    ($($(#[$doc:meta])* $variant:ident => $name:literal, $imp:path;)*) => {
        /// Every kind of AWS resource bookstore manages.
        #[derive(
            Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize,
            serde::Deserialize,
        )]
        pub enum Kind {
            $($(#[$doc])* #[serde(rename = $name)] $variant,)*
        }

        impl Kind {
            pub const ALL: &'static [Kind] = &[$(Kind::$variant,)*];

            pub fn as_str(self) -> &'static str {
                match self {
                    $(Kind::$variant => $name,)*
                }
            }

            /// The module that finds, creates, waits for, updates and deletes this kind.
            pub fn imp(self) -> &'static dyn ResourceKind {
                match self {
                    $(Kind::$variant => &$imp,)*
                }
            }
        }
    };
}

registry! {
    Vpc => "vpc", aws::vpc::Vpcs;
    Subnet => "subnet", aws::subnet::Subnets;
    InternetGateway => "internet-gateway", aws::internet_gateway::InternetGateways;
    RouteTable => "route-table", aws::route_table::RouteTables;
    SecurityGroup => "security-group", aws::security_group::SecurityGroups;
    Certificate => "certificate", aws::certificate::Certificates;
    LoadBalancer => "load-balancer", aws::load_balancer::LoadBalancers;
    TargetGroup => "target-group", aws::target_group::TargetGroups;
    Listener => "listener", aws::listener::Listeners;
    DbSubnetGroup => "db-subnet-group", aws::database::DbSubnetGroups;
    Database => "database", aws::database::Databases;
    FileSystem => "file-system", aws::file_system::FileSystems;
    MountTarget => "mount-target", aws::file_system::MountTargets;
    Bucket => "bucket", aws::bucket::Buckets;
    Image => "image", aws::image::Images;
    /// A bake's builder instance: never planned, found by its tags and removed once the AMI exists.
    Builder => "builder", aws::image::Builders;
    LaunchTemplate => "launch-template", aws::launch_template::LaunchTemplates;
    AutoScalingGroup => "auto-scaling-group", aws::auto_scaling_group::AutoScalingGroups;
    ElasticIp => "elastic-ip", aws::elastic_ip::ElasticIps;
    Volume => "volume", aws::volume::Volumes;
    Instance => "instance", aws::instance::Instances;
    Secret => "secret", aws::secret::Secrets;
    Targets => "targets", aws::targets::Targets;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_match_serde_and_are_unique() {
        let mut seen = std::collections::HashSet::new();
        for &k in Kind::ALL {
            assert_eq!(serde_json::to_value(k).unwrap(), k.as_str());
            assert!(seen.insert(k.as_str()), "{} twice", k.as_str());
        }
    }

    /// `down` waits, kind by kind, for what must go first: a cycle would wait forever.
    #[test]
    fn teardown_order_has_no_cycle() {
        fn visit(k: Kind, path: &mut Vec<Kind>) {
            assert!(!path.contains(&k), "teardown cycle: {path:?} → {k:?}");
            path.push(k);
            for &after in k.imp().teardown_after() {
                visit(after, path);
            }
            path.pop();
        }
        for &k in Kind::ALL {
            visit(k, &mut vec![]);
        }
    }
}
