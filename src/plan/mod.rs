//! The stack as data: a DAG of desired resources with deterministic keys and names. Pure: no AWS.
//! The engine executes it; `bookstore plan` prints it next to what exists.
//!
//! Each stack kind has one file (`asg.rs`, `monolith.rs`) that composes the shared parts:
//! `network` (VPC, subnets, gateway, routes), `edge` (load balancer, target group, certificate,
//! listeners), `bake` (artifact bucket and AMI), `database` (RDS), `files` (EFS). `Plan::validate`
//! checks the result before any AWS call.

mod asg;
pub mod bake;
mod database;
mod edge;
mod eks;
mod files;
mod monolith;
mod network;
mod swarm;

use std::collections::{HashMap, HashSet};

use serde::Serialize;

pub use crate::aws::auto_scaling_group::AutoScalingGroupSpec;
pub use crate::aws::bucket::BucketSpec;
pub use crate::aws::certificate::CertificateSpec;
pub use crate::aws::cluster::ClusterSpec;
pub use crate::aws::database::{DatabaseSpec, DbSubnetGroupSpec};
pub use crate::aws::elastic_ip::ElasticIpSpec;
pub use crate::aws::file_system::mount_target_key;
pub use crate::aws::file_system::{FileSystemSpec, MountTargetSpec};
pub use crate::aws::image::ImageSpec;
pub use crate::aws::instance::{InstanceRole, InstanceSpec, SwarmNode};
pub use crate::aws::internet_gateway::InternetGatewaySpec;
pub use crate::aws::launch_template::LaunchTemplateSpec;
pub use crate::aws::listener::{ListenerAction, ListenerSpec};
pub use crate::aws::listener_rule::ListenerRuleSpec;
pub use crate::aws::load_balancer::LoadBalancerSpec;
pub use crate::aws::name_prefix;
pub use crate::aws::node_group::NodeGroupSpec;
pub use crate::aws::node_template::NodeTemplateSpec;
pub use crate::aws::registry::{Desired, Spec};
pub use crate::aws::repository::RepositorySpec;
pub use crate::aws::route_table::RouteTableSpec;
pub use crate::aws::secret::{SecretContents, SecretSpec};
pub use crate::aws::security_group::{Ingress, Protocol, SecurityGroupSpec};
pub use crate::aws::subnet::SubnetSpec;
pub use crate::aws::target_group::TargetGroupSpec;
pub use crate::aws::targets::TargetsSpec;
pub use crate::aws::volume::VolumeSpec;
pub use crate::aws::vpc::VpcSpec;
pub use crate::aws::workload::{SplitService, WorkloadSpec};
pub use crate::kinds::Kind;
pub use crate::reference::Ref;
pub use bake::BakeInput;

use crate::error::Error;
use crate::stack::{Stack, Topology};

/// Where the stack answers: the resource whose attribute holds the host name or address.
#[derive(Debug, Clone, Serialize)]
pub struct Endpoint {
    pub key: String,
    pub attr: String,
    pub https: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct Plan {
    pub stack: String,
    pub env: String,
    pub region: String,
    pub resources: Vec<Desired>,
    pub endpoint: Option<Endpoint>,
}

/// A plan being assembled by a stack file and its parts.
pub struct Builder<'a> {
    pub stack: &'a Stack,
    pub region: &'a str,
    prefix: String,
    resources: Vec<Desired>,
    endpoint: Option<Endpoint>,
}

impl<'a> Builder<'a> {
    fn new(stack: &'a Stack, env: &str, region: &'a str) -> Builder<'a> {
        Builder {
            stack,
            region,
            prefix: name_prefix(&stack.name, env),
            resources: Vec::new(),
            endpoint: None,
        }
    }

    /// Adds a resource; the reference others use to depend on it.
    pub fn add(&mut self, key: &str, spec: impl Into<Spec>) -> Ref {
        self.add_as(key, key, spec)
    }

    /// Adds a resource whose AWS name ends in `short` instead of its key, where the prefix and
    /// the key would pass AWS's 32 characters (load balancers and target groups).
    pub fn add_as(&mut self, key: &str, short: &str, spec: impl Into<Spec>) -> Ref {
        let spec = spec.into();
        // A security group's rules may name the group itself: that is no dependency.
        let mut depends_on = spec.dependencies();
        depends_on.retain(|d| d != key);
        self.resources.push(Desired {
            key: key.to_string(),
            kind: spec.kind(),
            name: format!("{}-{short}", self.prefix),
            depends_on,
            spec,
        });
        Ref::from(key)
    }

    pub fn endpoint(&mut self, key: &str, attr: &str, https: bool) {
        self.endpoint = Some(Endpoint {
            key: key.into(),
            attr: attr.into(),
            https,
        });
    }
}

impl Plan {
    /// The desired resources for `stack` in `env`: one stack file per kind composes the parts.
    pub fn build(stack: &Stack, env: &str, region: &str, bake: &BakeInput) -> Result<Plan, Error> {
        let mut b = Builder::new(stack, env, region);
        match &stack.topology {
            Topology::Asg(asg) => asg::build(&mut b, asg, bake),
            Topology::Monolith(monolith) => monolith::build(&mut b, monolith, bake),
            Topology::Swarm(swarm) => swarm::build(&mut b, swarm, bake),
            Topology::Eks(eks) => eks::build(&mut b, eks, bake),
        }
        let plan = Plan {
            stack: stack.name.clone(),
            env: env.to_string(),
            region: region.to_string(),
            resources: b.resources,
            endpoint: b.endpoint,
        };
        plan.validate()?;
        Ok(plan)
    }

    /// Checks the DAG before anything runs: unique keys, dependencies that exist, no cycle, each
    /// spec of its resource's kind, an endpoint that is planned. An error names the key.
    pub fn validate(&self) -> Result<(), Error> {
        let invalid = |key: &str, message: String| Error::InvalidPlan {
            key: key.to_string(),
            message,
        };
        let mut by_key: HashMap<&str, &Desired> = HashMap::new();
        for r in &self.resources {
            if by_key.insert(&r.key, r).is_some() {
                return Err(invalid(&r.key, "the key is planned twice".into()));
            }
            if r.spec.kind() != r.kind {
                return Err(invalid(
                    &r.key,
                    format!(
                        "a {} resource with a {} spec",
                        r.kind.as_str(),
                        r.spec.kind().as_str()
                    ),
                ));
            }
        }
        for r in &self.resources {
            for d in &r.depends_on {
                if !by_key.contains_key(d.as_str()) {
                    return Err(invalid(
                        &r.key,
                        format!("it depends on `{d}`, which is not in the plan"),
                    ));
                }
            }
        }
        // Depth-first search with three colours: grey on the path, black when finished.
        let mut colour: HashMap<&str, u8> = HashMap::new();
        fn visit<'p>(
            key: &'p str,
            by_key: &HashMap<&'p str, &'p Desired>,
            colour: &mut HashMap<&'p str, u8>,
            path: &mut Vec<&'p str>,
        ) -> Result<(), Vec<&'p str>> {
            match colour.get(key) {
                Some(2) => return Ok(()),
                Some(1) => {
                    let start = path.iter().position(|k| *k == key).unwrap_or(0);
                    let mut cycle = path[start..].to_vec();
                    cycle.push(key);
                    return Err(cycle);
                }
                _ => {}
            }
            colour.insert(key, 1);
            path.push(key);
            for d in &by_key[key].depends_on {
                visit(d, by_key, colour, path)?;
            }
            path.pop();
            colour.insert(key, 2);
            Ok(())
        }
        for r in &self.resources {
            if let Err(cycle) = visit(&r.key, &by_key, &mut colour, &mut Vec::new()) {
                return Err(invalid(
                    cycle[0],
                    format!("dependency cycle: {}", cycle.join(" → ")),
                ));
            }
        }
        // What AWS would refuse in a listener rule, and two rules of one listener at one priority.
        let mut priorities = HashSet::new();
        for r in &self.resources {
            if let Spec::ListenerRule(rule) = &r.spec {
                if let Some(problem) = rule.problems().into_iter().next() {
                    return Err(invalid(&r.key, problem));
                }
                if !priorities.insert((rule.listener.to_string(), rule.priority)) {
                    return Err(invalid(
                        &r.key,
                        format!(
                            "another rule of {} has priority {}",
                            rule.listener, rule.priority
                        ),
                    ));
                }
            }
        }
        if let Some(e) = &self.endpoint
            && !by_key.contains_key(e.key.as_str())
        {
            return Err(invalid(&e.key, "the endpoint is not in the plan".into()));
        }
        Ok(())
    }

    pub fn get(&self, key: &str) -> Option<&Desired> {
        self.resources.iter().find(|r| r.key == key)
    }

    /// The resource with this key and everything it needs, in plan order (`bookstore bake`).
    pub fn closure(&self, key: &str) -> Plan {
        let mut wanted = HashSet::new();
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
            endpoint: None,
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
    use crate::artifact::Artifact;

    fn bake() -> BakeInput {
        BakeInput {
            artifact: Artifact::resolve(&crate::artifact::AppChoice::Source).unwrap(),
        }
    }

    fn assert_dag_in_order(plan: &Plan) {
        let mut seen = HashSet::new();
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
    }

    #[test]
    fn asg_plan_is_a_dag_in_dependency_order() {
        let stack = Stack::load("asg").unwrap();
        let plan = Plan::build(&stack, "dev", "us-east-1", &bake()).unwrap();
        assert_dag_in_order(&plan);
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

    #[test]
    fn monolith_plan_is_a_dag_with_its_address_volume_and_instance() {
        let stack = Stack::load("monolith").unwrap();
        let plan = Plan::build(&stack, "dev", "us-east-1", &bake()).unwrap();
        assert_dag_in_order(&plan);
        let vm = plan.get("vm").unwrap();
        for needed in ["eip", "data", "sg-web", "subnet-a", "routes"] {
            assert!(vm.depends_on.contains(&needed.to_string()), "{needed}");
        }
        assert_eq!(plan.endpoint.as_ref().unwrap().key, "eip");
        assert!(plan.resources.iter().all(|r| r.kind != Kind::LoadBalancer));
    }

    fn broken(edit: impl FnOnce(&mut Plan)) -> String {
        let stack = Stack::load("asg").unwrap();
        let mut plan = Plan::build(&stack, "dev", "us-east-1", &bake()).unwrap();
        edit(&mut plan);
        plan.validate().unwrap_err().to_string()
    }

    #[test]
    fn validate_names_the_key_of_each_mistake() {
        let e = broken(|p| p.resources[3].depends_on.push("nowhere".into()));
        assert!(e.contains("`nowhere`, which is not in the plan"), "{e}");
        let e = broken(|p| {
            let dup = p.resources[0].clone();
            p.resources.push(dup);
        });
        assert!(e.contains("vpc") && e.contains("planned twice"), "{e}");
        let e = broken(|p| p.resources[0].kind = Kind::Subnet);
        assert!(e.contains("a subnet resource with a vpc spec"), "{e}");
        let e = broken(|p| p.resources[0].depends_on.push("subnet-a".into()));
        assert!(e.contains("dependency cycle: vpc → subnet-a → vpc"), "{e}");
    }

    #[test]
    fn asg_split_rules_follow_their_listener_and_groups_and_validate_checks_them() {
        let stack = crate::stack::validate_text(
            "split.yaml",
            "version: 1\nname: shop\nkind: asg\napp:\n  services: split\n",
        )
        .unwrap();
        let plan = Plan::build(&stack, "dev", "us-east-1", &bake()).unwrap();
        assert_dag_in_order(&plan);
        assert!(plan.get("tg").is_none());
        for (rule, group) in [
            ("rule-accounts", "tg-accounts"),
            ("rule-orders", "tg-orders"),
        ] {
            let r = plan.get(rule).unwrap();
            for needed in ["listener-https", group] {
                assert!(
                    r.depends_on.contains(&needed.to_string()),
                    "{rule}: {needed}"
                );
            }
        }
        fn rule_mut<'p>(p: &'p mut Plan, key: &str) -> &'p mut ListenerRuleSpec {
            match &mut p.resources.iter_mut().find(|r| r.key == key).unwrap().spec {
                Spec::ListenerRule(r) => r,
                _ => unreachable!(),
            }
        }
        let mut twice = plan.clone();
        rule_mut(&mut twice, "rule-orders").priority = 10;
        let e = twice.validate().unwrap_err().to_string();
        assert!(
            e.contains("rule-orders") && e.contains("priority 10"),
            "{e}"
        );
        let mut wide = plan.clone();
        rule_mut(&mut wide, "rule-orders")
            .paths
            .push("/extra".into());
        rule_mut(&mut wide, "rule-orders")
            .paths
            .push("/more".into());
        let e = wide.validate().unwrap_err().to_string();
        assert!(e.contains("6 path patterns"), "{e}");
    }

    #[test]
    fn every_planned_kind_is_registered() {
        for name in ["asg", "monolith", "swarm"] {
            let stack = Stack::load(name).unwrap();
            let plan = Plan::build(&stack, "dev", "us-east-1", &bake()).unwrap();
            for r in &plan.resources {
                assert!(Kind::ALL.contains(&r.kind));
            }
        }
    }

    #[test]
    fn swarm_plan_has_five_nodes_spread_over_the_zones_and_no_self_dependency() {
        let stack = Stack::load("swarm").unwrap();
        let plan = Plan::build(&stack, "dev", "us-east-1", &bake()).unwrap();
        assert_dag_in_order(&plan);
        let nodes: Vec<&Desired> = plan
            .resources
            .iter()
            .filter(|r| r.kind == Kind::Instance)
            .collect();
        assert_eq!(nodes.len(), 5);
        let subnet_of = |key: &str| match &plan.get(key).unwrap().spec {
            Spec::Instance(i) => i.subnet.clone(),
            _ => unreachable!(),
        };
        assert_ne!(subnet_of("manager-1"), subnet_of("manager-2"));
        let sg = plan.get("sg-swarm").unwrap();
        assert!(!sg.depends_on.contains(&"sg-swarm".to_string()));
        let targets = plan.get("tg-targets").unwrap();
        assert_eq!(
            targets.depends_on.len(),
            6,
            "the target group and the 5 nodes"
        );
    }
}
