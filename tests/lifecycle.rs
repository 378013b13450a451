//! up → check every resource through describe calls → no-op up → status/outputs → down, through
//! the real binary against the strict emulator.

mod common;

use aws_sdk_ec2::types::Filter;
use common::{ENV, Moto, TempDir};

fn filter(name: &str, value: &str) -> Filter {
    Filter::builder().name(name).values(value).build()
}

#[test]
fn asg_part_one_up_is_correct_idempotent_and_down_removes_everything() {
    let moto = Moto::start(1.0);
    let dir = TempDir::new("lifecycle");
    let aws = moto.aws();

    let plan = moto.run(dir.path(), &["plan", "--stack", "asg", "--env", ENV]);
    assert_eq!(
        plan.code, 2,
        "plan with changes exits 2:\n{}{}",
        plan.stdout, plan.stderr
    );
    assert!(
        plan.stdout.contains("Plan: 23 to create"),
        "{}",
        plan.stdout
    );
    assert!(
        moto.mutating_calls().is_empty(),
        "plan must not change anything: {:?}",
        moto.mutating_calls()
    );

    let up = moto
        .run(
            dir.path(),
            &["--output", "json", "up", "--stack", "asg", "--env", ENV],
        )
        .ok();
    let result = up.json();
    assert_eq!(
        result["summary"]["created"].as_array().unwrap().len(),
        23,
        "{result}"
    );
    let url = result["outputs"]["url"].as_str().unwrap();
    assert!(url.starts_with("https://bs-t-asg-alb"), "{url}");
    // JSON events stream on stderr, one object per line.
    for line in up.stderr.lines() {
        serde_json::from_str::<serde_json::Value>(line)
            .unwrap_or_else(|e| panic!("stderr line is not JSON ({e}): {line}"));
    }

    aws.rt.block_on(async {
        // Network: one VPC, two subnets in two zones, an attached gateway, a default route.
        let vpcs = aws
            .ec2
            .describe_vpcs()
            .filters(filter("tag:bookstore:env", ENV))
            .send()
            .await
            .unwrap();
        assert_eq!(vpcs.vpcs().len(), 1);
        let vpc = &vpcs.vpcs()[0];
        let vpc_id = vpc.vpc_id().unwrap();
        assert_eq!(vpc.cidr_block(), Some("10.42.0.0/16"));
        let tags: Vec<(&str, &str)> = vpc
            .tags()
            .iter()
            .map(|t| (t.key().unwrap(), t.value().unwrap()))
            .collect();
        for expected in [
            ("bookstore:stack", "asg"),
            ("bookstore:env", ENV),
            ("bookstore:managed-by", "bookstore"),
            ("Name", "bs-t-asg-vpc"),
            ("project", "bookstore"),
        ] {
            assert!(
                tags.contains(&expected),
                "tag {expected:?} missing: {tags:?}"
            );
        }
        let subnets = aws
            .ec2
            .describe_subnets()
            .filters(filter("vpc-id", vpc_id))
            .send()
            .await
            .unwrap();
        let mut zones: Vec<&str> = subnets
            .subnets()
            .iter()
            .map(|s| s.availability_zone().unwrap())
            .collect();
        zones.sort();
        assert_eq!(zones, ["us-east-1a", "us-east-1b"]);
        assert!(
            subnets
                .subnets()
                .iter()
                .all(|s| s.map_public_ip_on_launch() == Some(true))
        );
        let igws = aws
            .ec2
            .describe_internet_gateways()
            .filters(filter("attachment.vpc-id", vpc_id))
            .send()
            .await
            .unwrap();
        assert_eq!(igws.internet_gateways().len(), 1);
        let igw = igws.internet_gateways()[0].internet_gateway_id().unwrap();
        let rts = aws
            .ec2
            .describe_route_tables()
            .filters(filter("tag:bookstore:key", "routes"))
            .filters(filter("tag:bookstore:env", ENV))
            .send()
            .await
            .unwrap();
        let rt = &rts.route_tables()[0];
        assert!(rt.routes().iter().any(
            |r| r.destination_cidr_block() == Some("0.0.0.0/0") && r.gateway_id() == Some(igw)
        ));
        assert_eq!(
            rt.associations()
                .iter()
                .filter(|a| a.subnet_id().is_some())
                .count(),
            2
        );

        // Security groups: tiers reference groups, never CIDRs; only the load balancer is open.
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
        };
        let (lb, app, db, efs) = (
            by_key("sg-lb"),
            by_key("sg-app"),
            by_key("sg-db"),
            by_key("sg-efs"),
        );
        let mut lb_ports: Vec<i32> = lb
            .ip_permissions()
            .iter()
            .map(|p| p.from_port().unwrap())
            .collect();
        lb_ports.sort();
        assert_eq!(lb_ports, [80, 443]);
        assert!(lb.ip_permissions().iter().all(|p| {
            p.ip_ranges()
                .iter()
                .all(|r| r.cidr_ip() == Some("0.0.0.0/0"))
        }));
        for (group, port, source) in [(app, 8080, lb), (db, 3306, app), (efs, 2049, app)] {
            assert_eq!(group.ip_permissions().len(), 1, "{:?}", group.group_name());
            let p = &group.ip_permissions()[0];
            assert_eq!((p.from_port(), p.to_port()), (Some(port), Some(port)));
            assert!(
                p.ip_ranges().is_empty(),
                "{:?} must not allow a CIDR",
                group.group_name()
            );
            assert_eq!(p.user_id_group_pairs()[0].group_id(), source.group_id());
        }

        // Load balancer, target group and listeners.
        let lbs = aws
            .elb
            .describe_load_balancers()
            .names("bs-t-asg-alb")
            .send()
            .await
            .unwrap();
        let alb = &lbs.load_balancers()[0];
        assert_eq!(alb.scheme().map(|s| s.as_str()), Some("internet-facing"));
        assert_eq!(alb.availability_zones().len(), 2);
        assert_eq!(alb.security_groups(), [lb.group_id().unwrap().to_string()]);
        let tgs = aws
            .elb
            .describe_target_groups()
            .names("bs-t-asg-tg")
            .send()
            .await
            .unwrap();
        let tg = &tgs.target_groups()[0];
        assert_eq!(
            (tg.port(), tg.health_check_path()),
            (Some(8080), Some("/healthz"))
        );
        let listeners = aws
            .elb
            .describe_listeners()
            .load_balancer_arn(alb.load_balancer_arn().unwrap())
            .send()
            .await
            .unwrap();
        let http = listeners
            .listeners()
            .iter()
            .find(|l| l.port() == Some(80))
            .expect("listener 80");
        let redirect = http.default_actions()[0]
            .redirect_config()
            .expect("80 redirects");
        assert_eq!(
            (redirect.protocol(), redirect.port()),
            (Some("HTTPS"), Some("443"))
        );
        assert_eq!(redirect.status_code().map(|s| s.as_str()), Some("HTTP_301"));
        let https = listeners
            .listeners()
            .iter()
            .find(|l| l.port() == Some(443))
            .expect("listener 443");
        assert_eq!(https.protocol().map(|p| p.as_str()), Some("HTTPS"));
        assert_eq!(
            https.ssl_policy(),
            Some("ELBSecurityPolicy-TLS13-1-2-Res-2021-06")
        );
        assert_eq!(
            https.default_actions()[0].target_group_arn(),
            tg.target_group_arn()
        );
        let cert_arn = https.certificates()[0].certificate_arn().unwrap();
        let cert = aws
            .acm
            .describe_certificate()
            .certificate_arn(cert_arn)
            .send()
            .await
            .unwrap();
        let cert = cert.certificate().unwrap();
        assert_eq!(cert.r#type().map(|t| t.as_str()), Some("IMPORTED"));
        assert!(
            cert.subject_alternative_names()
                .contains(&alb.dns_name().unwrap().to_string()),
            "{:?}",
            cert.subject_alternative_names()
        );
        // Database: encrypted, private, only in the database group, password managed by RDS.
        let dbs = aws
            .rds
            .describe_db_instances()
            .db_instance_identifier("bs-t-asg-db")
            .send()
            .await
            .unwrap();
        let db = &dbs.db_instances()[0];
        assert_eq!(db.storage_encrypted(), Some(true));
        assert_eq!(db.publicly_accessible(), Some(false));
        let db_groups: Vec<&str> = db
            .vpc_security_groups()
            .iter()
            .filter_map(|g| g.vpc_security_group_id())
            .collect();
        assert_eq!(db_groups, [by_key("sg-db").group_id().unwrap()]);
        assert!(
            db.master_user_secret()
                .and_then(|s| s.secret_arn())
                .is_some_and(|a| a.contains(":secret:")),
            "RDS manages the password"
        );
        assert_eq!(
            db.db_subnet_group().and_then(|g| g.db_subnet_group_name()),
            Some("bs-t-asg-db-subnets")
        );
        assert_eq!(db.db_subnet_group().unwrap().subnets().len(), 2);
        // File system: encrypted, one mount target per subnet, only in the file system group.
        let filesystems = aws.efs.describe_file_systems().send().await.unwrap();
        let fs = &filesystems.file_systems()[0];
        assert_eq!(fs.encrypted(), Some(true));
        let mounts = aws
            .efs
            .describe_mount_targets()
            .file_system_id(fs.file_system_id())
            .send()
            .await
            .unwrap();
        let mut mount_subnets: Vec<&str> = mounts
            .mount_targets()
            .iter()
            .map(|m| m.subnet_id())
            .collect();
        mount_subnets.sort();
        let mut our_subnets: Vec<&str> = subnets
            .subnets()
            .iter()
            .map(|s| s.subnet_id().unwrap())
            .collect();
        our_subnets.sort();
        assert_eq!(mount_subnets, our_subnets);
        for m in mounts.mount_targets() {
            let groups = aws
                .efs
                .describe_mount_target_security_groups()
                .mount_target_id(m.mount_target_id())
                .send()
                .await
                .unwrap();
            assert_eq!(
                groups.security_groups(),
                [by_key("sg-efs").group_id().unwrap().to_string()]
            );
        }
        // The baked image: from the app next to the CLI, tagged with its hash and the templates'.
        let app =
            std::path::Path::new(env!("CARGO_BIN_EXE_bookstore")).with_file_name("bookstore-app");
        let app_sha256 = common::sha256_file(&app);
        let images = aws
            .ec2
            .describe_images()
            .owners("self")
            .send()
            .await
            .unwrap();
        assert_eq!(images.images().len(), 1, "{images:?}");
        let image = &images.images()[0];
        let image_tag = |k: &str| {
            image
                .tags()
                .iter()
                .find(|t| t.key() == Some(k))
                .and_then(|t| t.value())
                .unwrap_or_default()
        };
        assert_eq!(image_tag("bookstore:artifact-sha256"), app_sha256);
        assert_eq!(image_tag("bookstore:templates-sha256").len(), 64);
        assert_eq!(image_tag("bookstore:env"), ENV);
        // The artifact bucket: private, encrypted, tagged, holding the artifact under its hash.
        let bucket = aws.artifact_bucket().await;
        assert!(bucket.starts_with("bs-t-asg-artifacts-"), "{bucket}");
        let block = aws
            .s3
            .get_public_access_block()
            .bucket(&bucket)
            .send()
            .await
            .unwrap();
        let block = block.public_access_block_configuration().unwrap();
        assert_eq!(
            (
                block.block_public_acls(),
                block.block_public_policy(),
                block.ignore_public_acls(),
                block.restrict_public_buckets()
            ),
            (Some(true), Some(true), Some(true), Some(true))
        );
        let sse = aws
            .s3
            .get_bucket_encryption()
            .bucket(&bucket)
            .send()
            .await
            .unwrap();
        assert_eq!(
            sse.server_side_encryption_configuration()
                .unwrap()
                .rules()
                .len(),
            1
        );
        let object = aws
            .s3
            .head_object()
            .bucket(&bucket)
            .key(format!("app/{app_sha256}/bookstore-app"))
            .send()
            .await
            .unwrap();
        assert_eq!(
            object.content_length(),
            Some(std::fs::metadata(&app).unwrap().len() as i64)
        );
        // The builder ran with IMDSv2 and an encrypted disk, and is gone.
        let builders = aws
            .ec2
            .describe_instances()
            .filters(filter("tag:bookstore:key", "builder"))
            .send()
            .await
            .unwrap();
        let builder = &builders.reservations()[0].instances()[0];
        assert_eq!(
            builder.state().unwrap().name().unwrap().as_str(),
            "terminated"
        );
        assert_eq!(
            builder
                .metadata_options()
                .unwrap()
                .http_tokens()
                .unwrap()
                .as_str(),
            "required"
        );
        // The one hardened launch: the builder too has hop limit 1 and no key pair.
        assert_eq!(
            builder
                .metadata_options()
                .unwrap()
                .http_put_response_hop_limit(),
            Some(1)
        );
        assert!(builder.key_name().is_none(), "no key pair on the builder");
        // Launch template: the baked image, the app group, IMDSv2 only, encrypted root, the lab's
        // instance profile, and user-data that wires configuration but carries no password.
        let lt = aws.launch_template_data().await;
        assert_eq!(lt.image_id(), image.image_id());
        assert_eq!(
            lt.security_group_ids(),
            [by_key("sg-app").group_id().unwrap().to_string()]
        );
        assert_eq!(
            lt.metadata_options()
                .unwrap()
                .http_tokens()
                .unwrap()
                .as_str(),
            "required"
        );
        assert_eq!(
            lt.metadata_options().unwrap().http_put_response_hop_limit(),
            Some(1)
        );
        assert!(
            lt.key_name().is_none(),
            "no key pair in the launch template"
        );
        let root = lt.block_device_mappings()[0].ebs().unwrap();
        assert_eq!(root.encrypted(), Some(true));
        assert_eq!(root.volume_type().map(|t| t.as_str()), Some("gp3"));
        assert_eq!(
            lt.iam_instance_profile().unwrap().name(),
            Some("LabInstanceProfile")
        );
        let user_data = common::decode_text(lt.user_data().unwrap());
        let secret_arn = db.master_user_secret().unwrap().secret_arn().unwrap();
        assert!(user_data.contains(secret_arn), "{user_data}");
        assert!(user_data.contains(fs.file_system_id()), "{user_data}");
        assert!(user_data.contains("bs-t-asg-db."), "{user_data}");
        assert!(
            !user_data.to_lowercase().contains("password"),
            "{user_data}"
        );
        // The group: 2/3/2 across both subnets, behind the target group, ELB health checks, a
        // request-count target-tracking policy, instances tagged.
        let groups = aws
            .asg
            .describe_auto_scaling_groups()
            .auto_scaling_group_names("bs-t-asg-asg")
            .send()
            .await
            .unwrap();
        let group = &groups.auto_scaling_groups()[0];
        assert_eq!(
            (group.min_size(), group.max_size(), group.desired_capacity()),
            (Some(2), Some(3), Some(2))
        );
        let mut group_subnets: Vec<&str> =
            group.vpc_zone_identifier().unwrap().split(',').collect();
        group_subnets.sort();
        assert_eq!(group_subnets, our_subnets);
        assert_eq!(
            group.target_group_arns(),
            [tg.target_group_arn().unwrap().to_string()]
        );
        assert_eq!(group.health_check_type(), Some("ELB"));
        assert!(group.health_check_grace_period().unwrap_or(0) > 0);
        assert_eq!(group.instances().len(), 2);
        let policies = aws
            .asg
            .describe_policies()
            .auto_scaling_group_name("bs-t-asg-asg")
            .send()
            .await
            .unwrap();
        let tracking = policies.scaling_policies()[0]
            .target_tracking_configuration()
            .unwrap();
        let metric = tracking.predefined_metric_specification().unwrap();
        assert_eq!(
            metric.predefined_metric_type().map(|m| m.as_str()),
            Some("ALBRequestCountPerTarget")
        );
        assert!(
            metric
                .resource_label()
                .unwrap()
                .starts_with("app/bs-t-asg-alb/")
        );
        assert_eq!(tracking.target_value(), Some(100.0));
        let instance_ids: Vec<String> = group
            .instances()
            .iter()
            .map(|i| i.instance_id().unwrap().to_string())
            .collect();
        let running = aws
            .ec2
            .describe_instances()
            .set_instance_ids(Some(instance_ids))
            .send()
            .await
            .unwrap();
        for i in running.reservations().iter().flat_map(|r| r.instances()) {
            assert!(
                i.tags()
                    .iter()
                    .any(|t| t.key() == Some("bookstore:env") && t.value() == Some(ENV)),
                "{:?}",
                i.tags()
            );
        }
        let tags = aws
            .elb
            .describe_tags()
            .resource_arns(http.listener_arn().unwrap())
            .send()
            .await
            .unwrap();
        assert!(
            tags.tag_descriptions()[0]
                .tags()
                .iter()
                .any(|t| t.key() == Some("bookstore:env") && t.value() == Some(ENV))
        );
    });

    // A second up changes nothing and makes no mutating call.
    moto.clear_calls();
    let again = moto
        .run(dir.path(), &["up", "--stack", "asg", "--env", ENV])
        .ok();
    assert!(again.stdout.contains("Nothing to do"), "{}", again.stdout);
    assert!(
        moto.mutating_calls().is_empty(),
        "no-op up mutated: {:?}",
        moto.mutating_calls()
    );
    assert_eq!(
        moto.run(dir.path(), &["plan", "--stack", "asg", "--env", ENV])
            .code,
        0,
        "plan after up: nothing to do → 0"
    );

    let status = moto
        .run(
            dir.path(),
            &["--output", "json", "status", "--stack", "asg", "--env", ENV],
        )
        .ok()
        .json();
    let resources = status["resources"].as_array().unwrap();
    assert_eq!(resources.len(), 23);
    assert!(
        resources
            .iter()
            .all(|r| r["drift"].as_array().unwrap().is_empty()),
        "{status}"
    );
    assert_eq!(status["outputs"]["url"], url);
    let instances = status["instances"].as_array().unwrap();
    assert_eq!(instances.len(), 2, "{status}");
    for i in instances {
        assert_eq!(i["lifecycle"], "InService", "{status}");
        assert_eq!(i["target_health"], "healthy", "up waited for it: {status}");
    }
    let outputs = moto
        .run(dir.path(), &["outputs", "--stack", "asg", "--env", ENV])
        .ok()
        .stdout;
    assert!(outputs.contains(&format!("url = {url}")), "{outputs}");
    for name in [
        "db_endpoint = bs-t-asg-db.",
        "db_secret_arn = arn:aws:secretsmanager:",
        "file_system_id = fs-",
        "image_id = ami-",
        "auto_scaling_group = bs-t-asg-asg",
    ] {
        assert!(
            outputs.contains(name),
            "{name} missing from the outputs:\n{outputs}"
        );
    }

    // Without a terminal, down needs --yes and deletes nothing without it.
    let refused = moto.run(dir.path(), &["down", "--stack", "asg", "--env", ENV]);
    assert_eq!(refused.code, 1);
    assert!(refused.stderr.contains("--yes"), "{}", refused.stderr);
    assert!(!aws.everything(ENV).is_empty());

    let down = moto
        .run(
            dir.path(),
            &["down", "--stack", "asg", "--env", ENV, "--yes"],
        )
        .ok();
    assert!(
        down.stdout.contains("Deleted 23 resources"),
        "{}\n{}",
        down.stdout,
        down.stderr
    );
    assert!(
        aws.everything(ENV).is_empty(),
        "left after down: {:?}",
        aws.everything(ENV)
    );

    let twice = moto
        .run(
            dir.path(),
            &["down", "--stack", "asg", "--env", ENV, "--yes"],
        )
        .ok();
    assert!(
        twice.stdout.contains("Nothing to delete"),
        "{}",
        twice.stdout
    );
}

#[test]
fn down_from_another_directory_without_a_journal_removes_everything() {
    let moto = Moto::start(0.0);
    let (a, b) = (TempDir::new("ci-up"), TempDir::new("ci-down"));
    moto.run(a.path(), &["up", "--stack", "asg", "--env", "pr-7"])
        .ok();
    assert!(!moto.aws().everything("pr-7").is_empty());
    let down = moto
        .run(
            b.path(),
            &["down", "--stack", "asg", "--env", "pr-7", "--yes"],
        )
        .ok();
    assert!(
        down.stdout.contains("Deleted 23 resources"),
        "{}\n{}",
        down.stdout,
        down.stderr
    );
    assert!(
        moto.aws().everything("pr-7").is_empty(),
        "{:?}",
        moto.aws().everything("pr-7")
    );
}

#[test]
fn environments_are_isolated_and_down_of_a_missing_one_succeeds() {
    let moto = Moto::start(0.0);
    let dir = TempDir::new("envs");
    moto.run(
        dir.path(),
        &[
            "up",
            "--stack",
            "asg",
            "--env",
            "pr-1",
            "--region",
            "us-east-1",
        ],
    )
    .ok();
    let missing = moto
        .run(dir.path(), &["down", "--stack", "asg", "--env", "pr-2"])
        .ok();
    assert!(
        missing.stdout.contains("Nothing to delete"),
        "{}",
        missing.stdout
    );
    moto.run(dir.path(), &["up", "--stack", "asg", "--env", "pr-2"])
        .ok();
    moto.run(
        dir.path(),
        &["down", "--stack", "asg", "--env", "pr-1", "--yes"],
    )
    .ok();
    assert!(moto.aws().tagged_ec2("pr-1").is_empty());
    assert_eq!(
        moto.aws().tagged_ec2("pr-2").len(),
        9,
        "pr-2 must be untouched: {:?}",
        moto.aws().tagged_ec2("pr-2")
    );
}

#[test]
fn tls_none_serves_http_only_and_drift_is_shown_then_repaired() {
    let moto = Moto::start(0.0);
    let dir = TempDir::new("plain");
    dir.write(
        "plain.yaml",
        "version: 1\nname: plain\nkind: asg\ntls:\n  mode: none\napp:\n  port: 9000\n",
    );
    let up = moto
        .run(
            dir.path(),
            &[
                "--output",
                "json",
                "up",
                "--stack",
                "plain.yaml",
                "--env",
                ENV,
            ],
        )
        .ok()
        .json();
    assert!(
        up["outputs"]["url"]
            .as_str()
            .unwrap()
            .starts_with("http://"),
        "{up}"
    );
    let aws = moto.aws();
    let app_group = aws.rt.block_on(async {
        let lb = aws
            .elb
            .describe_load_balancers()
            .names("bs-t-plain-alb")
            .send()
            .await
            .unwrap();
        let listeners = aws
            .elb
            .describe_listeners()
            .load_balancer_arn(lb.load_balancers()[0].load_balancer_arn().unwrap())
            .send()
            .await
            .unwrap();
        assert_eq!(
            listeners.listeners().len(),
            1,
            "no HTTPS listener without TLS"
        );
        let only = &listeners.listeners()[0];
        assert_eq!(only.port(), Some(80));
        assert!(
            only.default_actions()[0].target_group_arn().is_some(),
            "80 forwards when TLS is off"
        );
        assert!(
            aws.acm
                .list_certificates()
                .send()
                .await
                .unwrap()
                .certificate_summary_list()
                .is_empty()
        );
        let sgs = aws
            .ec2
            .describe_security_groups()
            .filters(filter("tag:bookstore:key", "sg-app"))
            .filters(filter("tag:bookstore:stack", "plain"))
            .send()
            .await
            .unwrap();
        let g = sgs.security_groups()[0].clone();
        assert_eq!(g.ip_permissions()[0].from_port(), Some(9000));
        // Someone opens the app port to the world by hand.
        aws.ec2
            .authorize_security_group_ingress()
            .group_id(g.group_id().unwrap())
            .ip_protocol("tcp")
            .from_port(22)
            .to_port(22)
            .cidr_ip("0.0.0.0/0")
            .send()
            .await
            .unwrap();
        g.group_id().unwrap().to_string()
    });
    let plan = moto.run(dir.path(), &["plan", "--stack", "plain.yaml", "--env", ENV]);
    assert_eq!(plan.code, 2, "{}", plan.stdout);
    assert!(
        plan.stdout.contains("~ update sg-app") && plan.stdout.contains("tcp/22<-0.0.0.0/0"),
        "{}",
        plan.stdout
    );
    let status = moto
        .run(
            dir.path(),
            &["status", "--stack", "plain.yaml", "--env", ENV],
        )
        .ok()
        .stdout;
    assert!(status.contains("ingress:"), "{status}");
    moto.run(dir.path(), &["up", "--stack", "plain.yaml", "--env", ENV])
        .ok();
    let ports: Vec<i32> = aws.rt.block_on(async {
        let g = aws
            .ec2
            .describe_security_groups()
            .group_ids(&app_group)
            .send()
            .await
            .unwrap();
        g.security_groups()[0]
            .ip_permissions()
            .iter()
            .map(|p| p.from_port().unwrap())
            .collect()
    });
    assert_eq!(ports, [9000], "up must revoke the hand-made rule");
    assert_eq!(
        moto.run(dir.path(), &["plan", "--stack", "plain.yaml", "--env", ENV])
            .code,
        0
    );
    moto.run(
        dir.path(),
        &["down", "--stack", "plain.yaml", "--env", ENV, "--yes"],
    )
    .ok();
    assert!(aws.everything(ENV).is_empty(), "{:?}", aws.everything(ENV));
}

#[test]
fn a_changed_stack_deletes_what_it_no_longer_describes() {
    let moto = Moto::start(0.0);
    let dir = TempDir::new("shrink");
    let tls = "version: 1\nname: shop\nkind: asg\ntls:\n  mode: self-signed\n";
    dir.write("shop.yaml", tls);
    moto.run(dir.path(), &["up", "--stack", "shop.yaml", "--env", ENV])
        .ok();
    dir.write(
        "shop.yaml",
        "version: 1\nname: shop\nkind: asg\ntls:\n  mode: none\n",
    );
    let plan = moto.run(dir.path(), &["plan", "--stack", "shop.yaml", "--env", ENV]);
    assert_eq!(plan.code, 2);
    assert!(
        plan.stdout.contains("- delete cert") && plan.stdout.contains("- delete listener-https"),
        "{}",
        plan.stdout
    );
    let up = moto
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
    let deleted: Vec<&str> = up["summary"]["deleted"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d.as_str().unwrap())
        .collect();
    assert!(
        deleted.contains(&"cert") && deleted.contains(&"listener-https"),
        "{up}"
    );
    assert!(
        up["outputs"]["url"]
            .as_str()
            .unwrap()
            .starts_with("http://")
    );
    assert_eq!(
        moto.run(dir.path(), &["plan", "--stack", "shop.yaml", "--env", ENV])
            .code,
        0
    );
}

#[test]
fn acm_mode_requests_a_certificate_and_shows_the_dns_record_to_create() {
    // moto validates a requested certificate this many seconds after the request.
    let moto = Moto::start_with(0.0, &[("MOTO_ACM_VALIDATION_WAIT", "4")]);
    let dir = TempDir::new("acm");
    dir.write(
        "acm.yaml",
        "version: 1\nname: shop\nkind: asg\ntls:\n  mode: acm\n  domain: shop.example.org\n",
    );
    let up = moto
        .run(dir.path(), &["up", "--stack", "acm.yaml", "--env", ENV])
        .ok();
    assert!(
        up.stderr.contains("PENDING_VALIDATION")
            && up.stderr.contains("create this DNS record")
            && up.stderr.contains("CNAME"),
        "the wait shows the record to create:\n{}",
        up.stderr
    );
    assert_eq!(moto.count("RequestCertificate"), 1);
    assert_eq!(moto.count("ImportCertificate"), 0);
    let aws = moto.aws();
    aws.rt.block_on(async {
        let lb = aws
            .elb
            .describe_load_balancers()
            .names("bs-t-shop-alb")
            .send()
            .await
            .unwrap();
        let listeners = aws
            .elb
            .describe_listeners()
            .load_balancer_arn(lb.load_balancers()[0].load_balancer_arn().unwrap())
            .send()
            .await
            .unwrap();
        let https = listeners
            .listeners()
            .iter()
            .find(|l| l.port() == Some(443))
            .expect("443");
        let arn = https.certificates()[0].certificate_arn().unwrap();
        let cert = aws
            .acm
            .describe_certificate()
            .certificate_arn(arn)
            .send()
            .await
            .unwrap();
        assert_eq!(
            cert.certificate().unwrap().domain_name(),
            Some("shop.example.org")
        );
        assert_eq!(
            cert.certificate().unwrap().status().map(|s| s.as_str()),
            Some("ISSUED")
        );
    });
}
