//! The kinds of AWS resources bookstore manages: one line per kind, its name. `Kind` and
//! `Kind::ALL` are generated from this one list. The module that manages each kind, and the spec
//! it owns, are named in `aws::registry`, whose exhaustive match makes a kind without a module a
//! compile error (so no kind can exist without being observed and deleted); each module declares
//! its own teardown order (`Module::teardown_after`). This module depends on nothing of the crate.

macro_rules! registry {
    ($($(#[$doc:meta])* $variant:ident => $name:literal;)*) => {
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

        }
    };
}

registry! {
    Vpc => "vpc";
    Subnet => "subnet";
    InternetGateway => "internet-gateway";
    RouteTable => "route-table";
    SecurityGroup => "security-group";
    Certificate => "certificate";
    LoadBalancer => "load-balancer";
    TargetGroup => "target-group";
    Listener => "listener";
    ListenerRule => "listener-rule";
    DbSubnetGroup => "db-subnet-group";
    Database => "database";
    FileSystem => "file-system";
    MountTarget => "mount-target";
    Bucket => "bucket";
    Image => "image";
    /// A bake's builder instance: never planned, found by its tags and removed once the AMI exists.
    Builder => "builder";
    LaunchTemplate => "launch-template";
    AutoScalingGroup => "auto-scaling-group";
    ElasticIp => "elastic-ip";
    Volume => "volume";
    Instance => "instance";
    Secret => "secret";
    Targets => "targets";
    Repository => "repository";
    Cluster => "cluster";
    NodeTemplate => "node-template";
    NodeGroup => "node-group";
    Workload => "workload";
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
