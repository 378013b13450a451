//! `app.services: split` through the real binary against the strict emulator: one target group
//! per service, the listener's path rules made from the app's own routing table, the security
//! group chain, the instances' user-data, a no-op `up`, the way back to one process, and `down`.

mod common;

use std::collections::BTreeMap;

use aws_sdk_ec2::types::Filter;
use common::{ENV, Moto, TempDir, decode_text};

/// The app's routing table and ALB pattern matcher, as the app and the CLI compile them.
#[allow(dead_code)]
#[path = "../app/src/routing.rs"]
mod routing;

const SPLIT: &str = "version: 1\nname: shop\nkind: asg\napp:\n  services: split\n";
const SINGLE: &str = "version: 1\nname: shop\nkind: asg\n";

/// Paths a shop sees, including the edges of each pattern.
const PATHS: &[&str] = &[
    "/",
    "/books",
    "/books/7",
    "/books/7/edit",
    "/books/buy",
    "/books/7/buyer",
    "/books/7/buy",
    "/books/a/b/buy",
    "/sell",
    "/static/app.css",
    "/covers/3.webp",
    "/register",
    "/login",
    "/Login",
    "/logout",
    "/admin",
    "/admin/users",
    "/orders",
    "/orders/9",
    "/orders/9/pay",
    "/ordersx",
    "/sales",
    "/healthz",
];

struct Routes {
    /// (priority, patterns, target group name), as AWS holds the listener's rules.
    rules: Vec<(u32, Vec<String>, String)>,
    default: String,
}

impl Routes {
    /// What the load balancer does with a path: the first rule by priority whose pattern
    /// matches, else the default action.
    fn target(&self, path: &str) -> &str {
        self.rules
            .iter()
            .find(|(_, patterns, _)| patterns.iter().any(|p| routing::matches(p, path)))
            .map_or(&self.default, |(_, _, tg)| tg)
    }
}

fn filter(name: &str, value: &str) -> Filter {
    Filter::builder().name(name).values(value).build()
}

#[test]
fn asg_split_routes_by_path_to_a_target_group_per_service_and_goes_back_and_away() {
    let moto = Moto::start(0.0);
    let dir = TempDir::new("asg-split");
    dir.write("shop.yaml", SPLIT);
    let plan = moto
        .run(dir.path(), &["plan", "--stack", "shop.yaml", "--env", ENV])
        .stdout;
    for key in [
        "tg-accounts",
        "tg-catalog",
        "tg-orders",
        "rule-accounts",
        "rule-orders",
    ] {
        assert!(plan.contains(key), "{key} not planned:\n{plan}");
    }
    moto.run(dir.path(), &["up", "--stack", "shop.yaml", "--env", ENV])
        .ok();
    let aws = moto.aws();
    let tg_name = |service: &str| format!("bs-{ENV}-shop-tg{}", &service[..1]);

    aws.rt.block_on(async {
        // One target group per service, on its own port, each checking the service's health.
        let mut ports = BTreeMap::new();
        let mut arn_name = BTreeMap::new();
        for (service, port) in [("accounts", 8081), ("catalog", 8082), ("orders", 8083)] {
            let out = aws
                .elb
                .describe_target_groups()
                .names(tg_name(service))
                .send()
                .await
                .unwrap_or_else(|e| panic!("no target group for {service}: {e:?}"));
            let tg = &out.target_groups()[0];
            assert_eq!(tg.port(), Some(port), "{service}");
            assert_eq!(tg.health_check_path(), Some("/healthz"));
            ports.insert(service, port);
            arn_name.insert(
                tg.target_group_arn().unwrap().to_string(),
                service.to_string(),
            );
        }

        // The HTTPS listener: the catalog by default, accounts and orders by path.
        let alb = aws
            .elb
            .describe_load_balancers()
            .names(format!("bs-{ENV}-shop-alb"))
            .send()
            .await
            .unwrap();
        let listeners = aws
            .elb
            .describe_listeners()
            .load_balancer_arn(alb.load_balancers()[0].load_balancer_arn().unwrap())
            .send()
            .await
            .unwrap();
        let https = listeners
            .listeners()
            .iter()
            .find(|l| l.port() == Some(443))
            .unwrap();
        let http = listeners
            .listeners()
            .iter()
            .find(|l| l.port() == Some(80))
            .unwrap();
        let rules_of = |arn: String| {
            let elb = aws.elb.clone();
            async move {
                elb.describe_rules()
                    .listener_arn(arn)
                    .send()
                    .await
                    .unwrap()
                    .rules()
                    .to_vec()
            }
        };
        assert!(
            rules_of(http.listener_arn().unwrap().to_string())
                .await
                .iter()
                .all(|r| r.is_default() == Some(true)),
            "port 80 only redirects"
        );
        let rules = rules_of(https.listener_arn().unwrap().to_string()).await;
        let forward = |r: &aws_sdk_elasticloadbalancingv2::types::Rule| {
            arn_name[r.actions()[0].target_group_arn().unwrap()].clone()
        };
        let mut routes = Routes {
            rules: vec![],
            default: String::new(),
        };
        for r in &rules {
            if r.is_default() == Some(true) {
                routes.default = forward(r);
                continue;
            }
            let patterns: Vec<String> = r
                .conditions()
                .iter()
                .flat_map(|c| c.path_pattern_config().unwrap().values().to_vec())
                .collect();
            routes
                .rules
                .push((r.priority().unwrap().parse().unwrap(), patterns, forward(r)));
        }
        routes.rules.sort_by_key(|(p, _, _)| *p);
        assert_eq!(routes.default, "catalog");
        assert_eq!(
            routes
                .rules
                .iter()
                .map(|(p, _, tg)| (*p, tg.as_str()))
                .collect::<Vec<_>>(),
            [(10, "accounts"), (20, "orders")]
        );
        // The load balancer sends each path where the app's services expect it.
        for path in PATHS {
            assert_eq!(
                routes.target(path),
                routing::service_of(path),
                "{path} goes elsewhere than the app serves it"
            );
        }

        // Only the load balancer reaches the three ports; nothing opens the internal API.
        let sgs = aws
            .ec2
            .describe_security_groups()
            .filters(filter("tag:bookstore:env", ENV))
            .send()
            .await
            .unwrap();
        let by_key = |key: &str| {
            sgs.security_groups()
                .iter()
                .find(|g| {
                    g.tags()
                        .iter()
                        .any(|t| t.key() == Some("bookstore:key") && t.value() == Some(key))
                })
                .unwrap_or_else(|| panic!("no security group {key}"))
                .clone()
        };
        let (lb, app) = (by_key("sg-lb"), by_key("sg-app"));
        let mut opened: Vec<i32> = app
            .ip_permissions()
            .iter()
            .map(|p| {
                assert_eq!(p.from_port(), p.to_port());
                assert!(p.ip_ranges().is_empty(), "no CIDR into the app: {p:?}");
                assert_eq!(p.user_id_group_pairs().len(), 1);
                assert_eq!(p.user_id_group_pairs()[0].group_id(), lb.group_id());
                p.from_port().unwrap()
            })
            .collect();
        opened.sort();
        assert_eq!(opened, [8081, 8082, 8083]);

        // Every instance in all three target groups; request-count scaling follows one of them.
        let group = aws
            .asg
            .describe_auto_scaling_groups()
            .auto_scaling_group_names(format!("bs-{ENV}-shop-asg"))
            .send()
            .await
            .unwrap();
        let group = &group.auto_scaling_groups()[0];
        let mut attached: Vec<&str> = group
            .target_group_arns()
            .iter()
            .map(|a| arn_name[a].as_str())
            .collect();
        attached.sort();
        assert_eq!(attached, ["accounts", "catalog", "orders"]);

        // The instances' user-data names the services, ports and internal ports; no secret.
        let user_data = decode_text(
            aws.launch_template_data_of("shop")
                .await
                .user_data()
                .unwrap(),
        );
        assert!(
            user_data
                .contains("split_services='accounts:8081:9081 catalog:8082:9082 orders:8083:9083'"),
            "{user_data}"
        );
        assert!(!user_data.to_lowercase().contains("password="));
    });

    // Nothing to do the second time.
    moto.clear_calls();
    let again = moto
        .run(dir.path(), &["up", "--stack", "shop.yaml", "--env", ENV])
        .ok();
    assert!(again.stdout.contains("Nothing to do"), "{}", again.stdout);
    assert!(
        moto.mutating_calls().is_empty(),
        "no-op up mutated: {:?}",
        moto.mutating_calls()
    );
    let status_of = |moto: &Moto| {
        moto.run(
            dir.path(),
            &[
                "--output",
                "json",
                "status",
                "--stack",
                "shop.yaml",
                "--env",
                ENV,
            ],
        )
        .ok()
        .json()
    };
    let status = status_of(&moto);
    assert!(
        status["resources"]
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["drift"].as_array().unwrap().is_empty()),
        "{status}"
    );
    // Each instance answers in all three groups (up waited for that).
    let instances = status["instances"].as_array().unwrap();
    assert_eq!(instances.len(), 2, "{status}");
    for i in instances {
        assert_eq!(i["target_health"], "healthy", "{status}");
    }
    // One service failing its checks shows by name, with the load balancer's reason.
    moto.configure(
        r#"{"target_health": {"*:8083": {"state": "unhealthy", "reason": "Target.FailedHealthChecks", "description": "Health checks failed with these codes: [503]"}}}"#,
    );
    let status = status_of(&moto);
    moto.configure(r#"{"target_health": null}"#);
    for i in status["instances"].as_array().unwrap() {
        assert_eq!(
            i["target_health"], "accounts healthy, catalog healthy, orders unhealthy",
            "{status}"
        );
        assert_eq!(
            i["target_reason"], "orders Target.FailedHealthChecks",
            "{status}"
        );
    }

    // Back to one process: the rules and the services' groups go, one group on 8080 comes.
    dir.write("shop.yaml", SINGLE);
    let back = moto
        .run(
            dir.path(),
            &[
                "--output",
                "json",
                "up",
                "--stack",
                "shop.yaml",
                "--env",
                ENV,
            ],
        )
        .ok()
        .json();
    let deleted: Vec<&str> = back["summary"]["deleted"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d.as_str().unwrap())
        .collect();
    for key in [
        "rule-accounts",
        "rule-orders",
        "tg-accounts",
        "tg-catalog",
        "tg-orders",
    ] {
        assert!(deleted.contains(&key), "{key} not deleted: {back}");
    }
    aws.rt.block_on(async {
        let group = aws
            .asg
            .describe_auto_scaling_groups()
            .auto_scaling_group_names(format!("bs-{ENV}-shop-asg"))
            .send()
            .await
            .unwrap();
        let tg = aws
            .elb
            .describe_target_groups()
            .names(format!("bs-{ENV}-shop-tg"))
            .send()
            .await
            .unwrap();
        assert_eq!(
            group.auto_scaling_groups()[0].target_group_arns(),
            [tg.target_groups()[0]
                .target_group_arn()
                .unwrap()
                .to_string()]
        );
    });
    assert_eq!(
        moto.run(dir.path(), &["plan", "--stack", "shop.yaml", "--env", ENV])
            .code,
        0,
        "single again: nothing left to do"
    );

    moto.down_leaves_nothing_of(dir.path(), "shop.yaml");
}

#[test]
fn split_is_refused_where_it_cannot_run_and_on_ports_it_cannot_have() {
    let dir = TempDir::new("split-refused");
    let moto = Moto::start(0.0);
    dir.write(
        "eks.yaml",
        "version: 1\nname: shop\nkind: eks\napp:\n  services: split\nkubernetes:\n  node_port: 32765\n  nodes: 2\n  replicas: 9\n",
    );
    let refused = moto.run(dir.path(), &["plan", "--stack", "eks.yaml", "--env", ENV]);
    assert_ne!(refused.code, 0);
    assert!(
        refused.stderr.contains("eks.yaml:7")
            && refused.stderr.contains("kubernetes.node_port")
            && refused.stderr.contains("32764")
            && refused.stderr.contains("eks.yaml:9")
            && refused.stderr.contains("27 pods do not fit on 2 nodes"),
        "{}",
        refused.stderr
    );
    dir.write(
        "mono.yaml",
        "version: 1\nname: shop\nkind: monolith\napp:\n  services: split\ndatabase:\n  placement: separate-vm\n",
    );
    let refused = moto.run(dir.path(), &["plan", "--stack", "mono.yaml", "--env", ENV]);
    assert!(
        refused.stderr.contains("mono.yaml:5") && refused.stderr.contains("same VM"),
        "{}",
        refused.stderr
    );
    dir.write(
        "high.yaml",
        "version: 1\nname: shop\nkind: asg\napp:\n  port: 65000\n  services: split\n",
    );
    let refused = moto.run(dir.path(), &["plan", "--stack", "high.yaml", "--env", ENV]);
    assert_ne!(refused.code, 0);
    assert!(
        refused.stderr.contains("app.services") && refused.stderr.contains("64532"),
        "{}",
        refused.stderr
    );
    dir.write(
        "typo.yaml",
        "version: 1\nname: shop\nkind: asg\napp:\n  services: micro\n",
    );
    let refused = moto.run(dir.path(), &["plan", "--stack", "typo.yaml", "--env", ENV]);
    assert!(
        refused.stderr.contains("single, split"),
        "{}",
        refused.stderr
    );
    // Replicas per service: the split on swarm and eks only, named services, 1–50.
    for (stack, wanted) in [
        (
            "version: 1\nname: shop\nkind: asg\napp:\n  services: split\n  replicas:\n    catalog: 2\n",
            "scale with instances.min/max/desired",
        ),
        (
            "version: 1\nname: shop\nkind: swarm\napp:\n  replicas:\n    catalog: 2\n",
            "add `services: split`",
        ),
        (
            "version: 1\nname: shop\nkind: swarm\napp:\n  services: split\n  replicas:\n    books: 2\n",
            "`books` is not a service of the split",
        ),
        (
            "version: 1\nname: shop\nkind: eks\napp:\n  services: split\n  replicas:\n    orders: 60\n",
            "app.replicas.orders: 60 is out of range",
        ),
    ] {
        dir.write("replicas.yaml", stack);
        let refused = moto.run(
            dir.path(),
            &["plan", "--stack", "replicas.yaml", "--env", ENV],
        );
        assert_ne!(refused.code, 0, "{stack}");
        assert!(
            refused.stderr.contains("replicas.yaml:") && refused.stderr.contains(wanted),
            "{stack}: {}",
            refused.stderr
        );
    }
    assert!(moto.mutating_calls().is_empty());
}

/// The monolith split changes nothing AWS sees but the VM's settings: the same resources, a
/// no-op `up` that mutates nothing, and `down` that leaves nothing.
#[test]
fn monolith_split_is_the_same_resources_with_the_split_in_its_settings() {
    let moto = Moto::start(0.0);
    let dir = TempDir::new("monolith-split-stack");
    dir.write(
        "ms.yaml",
        "version: 1\nname: ms\nkind: monolith\napp:\n  services: split\n",
    );
    let up = moto
        .run(
            dir.path(),
            &["--output", "json", "up", "--stack", "ms.yaml", "--env", ENV],
        )
        .ok()
        .json();
    let created: Vec<&str> = up["summary"]["created"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d.as_str().unwrap())
        .collect();
    assert!(
        !created
            .iter()
            .any(|k| k.starts_with("tg") || k.starts_with("rule")),
        "{up}"
    );
    let aws = moto.aws();
    let vm = aws.instance_tagged("bookstore:kind", "instance");
    let user_data = aws.rt.block_on(aws.user_data_of(&vm));
    assert!(
        user_data
            .contains("split_services='accounts:8081:9081 catalog:8082:9082 orders:8083:9083'"),
        "{user_data}"
    );
    moto.clear_calls();
    let again = moto
        .run(dir.path(), &["up", "--stack", "ms.yaml", "--env", ENV])
        .ok();
    assert!(again.stdout.contains("Nothing to do"), "{}", again.stdout);
    assert!(
        moto.mutating_calls().is_empty(),
        "{:?}",
        moto.mutating_calls()
    );
    moto.down_leaves_nothing_of(dir.path(), "ms.yaml");
}

/// The swarm split: the three services published on every node, a target group each with every
/// node registered, the same rules as asg, the swarm group opening the three ports to the load
/// balancer only; the leader's user-data carries the split's stack file and settings.
#[test]
fn swarm_split_registers_every_node_in_each_service_group() {
    let moto = Moto::start(0.0);
    let dir = TempDir::new("swarm-split-stack");
    dir.write(
        "sw.yaml",
        "version: 1\nname: sw\nkind: swarm\napp:\n  services: split\n  replicas:\n    catalog: 4\n",
    );
    moto.run(dir.path(), &["up", "--stack", "sw.yaml", "--env", ENV])
        .ok();
    let aws = moto.aws();
    let leader = aws.instance_tagged("bookstore:key", "manager-1");
    let user_data = aws.rt.block_on(aws.user_data_of(&leader));
    // The catalog's own replicas; the others take swarm.replicas (5).
    let stack = common::heredoc(&user_data, "BOOKSTORE_STACK_EOF");
    let doc: serde_json::Value = serde_saphyr::from_str(&stack).unwrap();
    for (service, n) in [("accounts", 5), ("catalog", 4), ("orders", 5)] {
        assert_eq!(doc["services"][service]["deploy"]["replicas"], n, "{stack}");
    }
    for needed in [
        "split_services='accounts:8081:9081 catalog:8082:9082 orders:8083:9083'",
        "database_url='mysql://",
        "BOOKSTORE_ACCOUNTS_URL: \"http://accounts:9081\"",
        "name: bookstore-identity-key-v1",
    ] {
        assert!(user_data.contains(needed), "{needed}:\n{user_data}");
    }
    aws.rt.block_on(async {
        for (service, port) in [("accounts", 8081), ("catalog", 8082), ("orders", 8083)] {
            let out = aws
                .elb
                .describe_target_groups()
                .names(format!("bs-{ENV}-sw-tg{}", &service[..1]))
                .send()
                .await
                .unwrap();
            let tg = &out.target_groups()[0];
            assert_eq!(tg.port(), Some(port));
            let health = aws
                .elb
                .describe_target_health()
                .target_group_arn(tg.target_group_arn().unwrap())
                .send()
                .await
                .unwrap();
            assert_eq!(
                health.target_health_descriptions().len(),
                5,
                "every node in {service}'s group"
            );
        }
        let sgs = aws
            .ec2
            .describe_security_groups()
            .filters(filter("tag:bookstore:key", "sg-swarm"))
            .send()
            .await
            .unwrap();
        let mut from_lb: Vec<i32> = sgs.security_groups()[0]
            .ip_permissions()
            .iter()
            .filter(|p| {
                p.user_id_group_pairs()
                    .iter()
                    .all(|g| g.group_id() != sgs.security_groups()[0].group_id())
            })
            .map(|p| p.from_port().unwrap())
            .collect();
        from_lb.sort();
        assert_eq!(from_lb, [8081, 8082, 8083]);
    });
    moto.clear_calls();
    let again = moto
        .run(dir.path(), &["up", "--stack", "sw.yaml", "--env", ENV])
        .ok();
    assert!(again.stdout.contains("Nothing to do"), "{}", again.stdout);
    assert!(
        moto.mutating_calls().is_empty(),
        "{:?}",
        moto.mutating_calls()
    );
    moto.down_leaves_nothing_of(dir.path(), "sw.yaml");
}
