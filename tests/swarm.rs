//! The swarm stack through the real binary against the strict emulator: five nodes (IMDSv2,
//! encrypted roots, managers spread over the zones) in one security group that opens the swarm
//! ports only to itself and the app port only to the load balancer's group; the load balancer's
//! targets are the nodes, 80 → 301, 443 with the TLS 1.2+ policy; RDS and EFS as in asg; an empty
//! token store and no secret in any user-data; the rendered scripts pass shellcheck; a no-op `up`;
//! SIGKILL during the nodes' wait, then `up` resumes without a second node; `down` leaves nothing.

mod common;

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use aws_sdk_ec2::types::Filter;
use common::{ENV, Moto, TempDir, heredoc, shellcheck};

fn filter(name: &str, value: &str) -> Filter {
    Filter::builder().name(name).values(value).build()
}

fn up(moto: &Moto, dir: &Path) -> serde_json::Value {
    moto.run(
        dir,
        &["--output", "json", "up", "--stack", "swarm", "--env", ENV],
    )
    .ok()
    .json()
}

/// (key, id, zone, state) of the stack's nodes that are not terminated.
fn nodes(moto: &Moto) -> Vec<(String, String, String, String)> {
    let aws = moto.aws();
    aws.rt.block_on(async {
        let out = aws
            .ec2
            .describe_instances()
            .filters(filter("tag:bookstore:kind", "instance"))
            .filters(filter("tag:bookstore:stack", "swarm"))
            .send()
            .await
            .unwrap();
        let mut all: Vec<_> = out
            .reservations()
            .iter()
            .flat_map(|r| r.instances())
            .filter(|i| i.state().unwrap().name().unwrap().as_str() != "terminated")
            .map(|i| {
                let key = i
                    .tags()
                    .iter()
                    .find(|t| t.key() == Some("bookstore:key"))
                    .and_then(|t| t.value())
                    .unwrap()
                    .to_string();
                (
                    key,
                    i.instance_id().unwrap().to_string(),
                    i.placement()
                        .unwrap()
                        .availability_zone()
                        .unwrap()
                        .to_string(),
                    i.state().unwrap().name().unwrap().as_str().to_string(),
                )
            })
            .collect();
        all.sort();
        all
    })
}

fn journal(dir: &Path) -> String {
    std::fs::read_to_string(dir.join(".bookstore/swarm").join(ENV).join("journal.jsonl"))
        .unwrap_or_default()
}

#[test]
fn swarm_up_audits_clean_is_idempotent_and_down_removes_everything() {
    let moto = Moto::start(0.3);
    let dir = TempDir::new("swarm");
    let result = up(&moto, dir.path());
    assert!(
        result["outputs"]["url"]
            .as_str()
            .unwrap()
            .starts_with("https://bs-t-swarm-alb"),
        "{result}"
    );
    let running = nodes(&moto);
    let keys: Vec<&str> = running.iter().map(|n| n.0.as_str()).collect();
    assert_eq!(
        keys,
        [
            "manager-1",
            "manager-2",
            "manager-3",
            "worker-1",
            "worker-2"
        ]
    );
    assert!(running.iter().all(|n| n.3 == "running"), "{running:?}");
    let manager_zones: std::collections::BTreeSet<&str> =
        running[..3].iter().map(|n| n.2.as_str()).collect();
    assert_eq!(manager_zones.len(), 2, "managers spread over both zones");

    let aws = moto.aws();
    let builder = aws.builders()[0].instance_id().unwrap().to_string();
    aws.rt.block_on(async {
        let ids: Vec<String> = running.iter().map(|n| n.1.clone()).collect();
        let out = aws
            .ec2
            .describe_instances()
            .set_instance_ids(Some(ids.clone()))
            .send()
            .await
            .unwrap();
        let instances: Vec<_> = out
            .reservations()
            .iter()
            .flat_map(|r| r.instances())
            .collect();
        let mut groups = std::collections::BTreeSet::new();
        for i in &instances {
            assert_eq!(
                i.metadata_options()
                    .unwrap()
                    .http_tokens()
                    .unwrap()
                    .as_str(),
                "required",
                "IMDSv2"
            );
            assert_eq!(
                i.metadata_options().unwrap().http_put_response_hop_limit(),
                Some(1),
                "no container reaches the node's credentials"
            );
            assert!(i.key_name().is_none(), "no SSH key pair");
            for g in i.network_interfaces().iter().flat_map(|n| n.groups()) {
                groups.insert(g.group_id().unwrap().to_string());
            }
        }
        assert_eq!(groups.len(), 1, "one security group for every node");
        let sg_swarm = groups.into_iter().next().unwrap();
        let vols = aws
            .ec2
            .describe_volumes()
            .filters(
                Filter::builder()
                    .name("attachment.instance-id")
                    .set_values(Some(ids.clone()))
                    .build(),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(vols.volumes().len(), 5, "a root volume per node");
        for v in vols.volumes() {
            assert_eq!(v.encrypted(), Some(true), "{v:?}");
        }

        // The swarm's group: swarm ports from itself only, the app port from the LB's group only.
        let sgs = aws
            .ec2
            .describe_security_groups()
            .filters(filter("tag:bookstore:env", ENV))
            .send()
            .await
            .unwrap();
        let lb_group = sgs
            .security_groups()
            .iter()
            .find(|g| g.tags().iter().any(|t| t.value() == Some("sg-lb")))
            .unwrap()
            .group_id()
            .unwrap()
            .to_string();
        let swarm = sgs
            .security_groups()
            .iter()
            .find(|g| g.group_id() == Some(sg_swarm.as_str()))
            .unwrap();
        let mut rules: Vec<(String, i32, String)> = swarm
            .ip_permissions()
            .iter()
            .flat_map(|p| {
                assert!(p.ip_ranges().is_empty(), "no CIDR into the nodes: {p:?}");
                p.user_id_group_pairs().iter().map(|pair| {
                    (
                        p.ip_protocol().unwrap().to_string(),
                        p.from_port().unwrap(),
                        pair.group_id().unwrap().to_string(),
                    )
                })
            })
            .collect();
        rules.sort();
        let mut expected = vec![
            ("tcp".to_string(), 2377, sg_swarm.clone()),
            ("tcp".to_string(), 7946, sg_swarm.clone()),
            ("tcp".to_string(), 8080, lb_group.clone()),
            ("udp".to_string(), 4789, sg_swarm.clone()),
            ("udp".to_string(), 7946, sg_swarm.clone()),
        ];
        expected.sort();
        assert_eq!(rules, expected);
        let lb = sgs
            .security_groups()
            .iter()
            .find(|g| g.group_id() == Some(lb_group.as_str()))
            .unwrap();
        let mut open: Vec<i32> = lb
            .ip_permissions()
            .iter()
            .map(|p| {
                assert_eq!(p.ip_ranges()[0].cidr_ip(), Some("0.0.0.0/0"));
                p.from_port().unwrap()
            })
            .collect();
        open.sort();
        assert_eq!(open, [80, 443], "only 80 and 443 from the internet");

        // The load balancer: its targets are the nodes, 80 → 301, 443 with the TLS policy.
        let tgs = aws
            .elb
            .describe_target_groups()
            .names("bs-t-swarm-tg")
            .send()
            .await
            .unwrap();
        let tg = &tgs.target_groups()[0];
        assert_eq!(tg.health_check_path(), Some("/healthz"));
        let health = aws
            .elb
            .describe_target_health()
            .target_group_arn(tg.target_group_arn().unwrap())
            .send()
            .await
            .unwrap();
        let mut targets: Vec<String> = health
            .target_health_descriptions()
            .iter()
            .map(|d| d.target().unwrap().id().unwrap().to_string())
            .collect();
        targets.sort();
        let mut node_ids = ids.clone();
        node_ids.sort();
        assert_eq!(targets, node_ids);
        let lbs = aws
            .elb
            .describe_load_balancers()
            .names("bs-t-swarm-alb")
            .send()
            .await
            .unwrap();
        let listeners = aws
            .elb
            .describe_listeners()
            .load_balancer_arn(lbs.load_balancers()[0].load_balancer_arn().unwrap())
            .send()
            .await
            .unwrap();
        let http = listeners
            .listeners()
            .iter()
            .find(|l| l.port() == Some(80))
            .unwrap();
        let redirect = http.default_actions()[0].redirect_config().unwrap();
        assert_eq!(redirect.status_code().map(|s| s.as_str()), Some("HTTP_301"));
        let https = listeners
            .listeners()
            .iter()
            .find(|l| l.port() == Some(443))
            .unwrap();
        assert_eq!(
            https.ssl_policy(),
            Some("ELBSecurityPolicy-TLS13-1-2-Res-2021-06")
        );

        // RDS and EFS as in asg.
        let dbs = aws.rds.describe_db_instances().send().await.unwrap();
        let db = &dbs.db_instances()[0];
        assert_eq!(db.storage_encrypted(), Some(true));
        assert_eq!(db.publicly_accessible(), Some(false));
        let fs = aws.efs.describe_file_systems().send().await.unwrap();
        assert_eq!(fs.file_systems()[0].encrypted(), Some(true));

        // The token store starts empty; no user-data holds a secret; the leader's holds the
        // stack file; every script passes shellcheck.
        let secrets = aws.secrets.list_secrets().send().await.unwrap();
        let store = secrets
            .secret_list()
            .iter()
            .find(|s| s.name() == Some("bs-t-swarm-swarm-tokens"))
            .expect("the token store");
        let value = aws
            .secrets
            .get_secret_value()
            .secret_id(store.arn().unwrap())
            .send()
            .await
            .unwrap();
        assert_eq!(value.secret_string(), Some("{}"));
        // The release names the baked image and carries a presigned URL of its very binary.
        let release = release_of(&aws).await;
        let stack_image = heredoc(
            &aws.user_data_of(&running[0].1).await,
            "BOOKSTORE_STACK_EOF",
        )
        .lines()
        .find_map(|l| l.trim().strip_prefix("image: ").map(str::to_string))
        .unwrap();
        assert_eq!(release["image"], stack_image.as_str(), "{release}");
        let app = std::fs::read(
            std::path::PathBuf::from(env!("CARGO_BIN_EXE_bookstore"))
                .with_file_name("bookstore-app"),
        )
        .unwrap();
        assert_eq!(download(release["url"].as_str().unwrap()), app);
        let status = secret_named(&aws, "bs-t-swarm-swarm-status").await;
        assert_eq!(
            status.0.as_deref(),
            Some("{}"),
            "the leader fills the status"
        );
        let dir = TempDir::new("swarm-scripts");
        let bake = aws.user_data_of(&builder).await;
        shellcheck(dir.path(), "bake.sh", &bake);
        shellcheck(
            dir.path(),
            "bookstore-swarm-node",
            &heredoc(&bake, "BOOKSTORE_NODE_EOF"),
        );
        shellcheck(
            dir.path(),
            "bookstore-build-image",
            &heredoc(&bake, "BOOKSTORE_BUILD_EOF"),
        );
        shellcheck(
            dir.path(),
            "bookstore-swarm-sync",
            &heredoc(&bake, "BOOKSTORE_SYNC_EOF"),
        );
        verify_units(dir.path(), &bake);
        for (key, id, _, _) in &running {
            let user_data = aws.user_data_of(id).await;
            shellcheck(dir.path(), &format!("{key}.sh"), &user_data);
            let role = match key.as_str() {
                "manager-1" => "leader",
                k if k.starts_with("manager") => "manager",
                _ => "worker",
            };
            assert!(user_data.contains(&format!("node='{role}'")), "{user_data}");
            assert!(user_data.contains(&format!("tokens_secret_arn='{}'", store.arn().unwrap())));
            assert!(user_data.contains(&format!("status_secret_arn='{}'", status.1)));
            assert!(user_data.contains("release_secret_arn='arn:"));
            for secret in ["password", "SWMTKN", "BEGIN PRIVATE KEY"] {
                assert!(
                    !user_data.contains(secret),
                    "{key}'s user-data holds {secret}"
                );
            }
            let stack = heredoc(&user_data, "BOOKSTORE_STACK_EOF");
            assert!(stack.contains("replicas: 5") && stack.contains("order: start-first"));
            assert!(stack.contains(r#"test: ["CMD", "/bookstore-app", "healthcheck"]"#));
            assert!(stack.contains("failure_action: rollback"));
            assert!(
                stack.contains("external: true"),
                "the credentials are a swarm secret"
            );
        }
    });

    moto.clear_calls();
    let again = up(&moto, dir.path());
    assert_eq!(again["nothing_to_do"], true, "{again}");
    assert!(
        moto.mutating_calls().is_empty(),
        "{:?}",
        moto.mutating_calls()
    );
    let status = moto
        .run(
            dir.path(),
            &[
                "--output", "json", "status", "--stack", "swarm", "--env", ENV,
            ],
        )
        .ok()
        .json();
    let instances = status["instances"].as_array().unwrap();
    assert_eq!(instances.len(), 5, "{status}");
    for i in instances {
        let expected = match i["key"].as_str().unwrap() {
            "manager-1" => "leader",
            k if k.starts_with("manager") => "manager",
            _ => "worker",
        };
        assert_eq!(i["swarm_role"], expected, "{status}");
        assert_eq!(i["state"], "running");
    }
    assert_eq!(status["targets"].as_array().unwrap().len(), 5, "{status}");

    moto.run(
        dir.path(),
        &["down", "--stack", "swarm", "--env", ENV, "--yes"],
    )
    .ok();
    let left = moto.aws().everything(ENV);
    assert!(left.is_empty(), "left after down: {left:?}");
}

#[test]
fn sigkill_during_the_nodes_wait_then_up_resumes_without_a_second_node() {
    let moto = Moto::start(3.0);
    let dir = TempDir::new("swarm-kill");
    let mut run = moto
        .cli(dir.path(), &["up", "--stack", "swarm", "--env", ENV])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let start = Instant::now();
    while journal(dir.path())
        .matches(r#""event":"created","kind":"instance""#)
        .count()
        < 5
    {
        assert!(
            start.elapsed() < Duration::from_secs(180),
            "{}",
            journal(dir.path())
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    run.kill().unwrap();
    run.wait().unwrap();
    assert_eq!(nodes(&moto).len(), 5);
    moto.clear_calls();
    up(&moto, dir.path());
    assert_eq!(
        moto.count("RunInstances"),
        0,
        "the killed run's nodes are adopted"
    );
    let running = nodes(&moto);
    assert!(running.iter().all(|n| n.3 == "running"), "{running:?}");
    moto.run(
        dir.path(),
        &["down", "--stack", "swarm", "--env", ENV, "--yes"],
    )
    .ok();
    let left = moto.aws().everything(ENV);
    assert!(left.is_empty(), "left after down: {left:?}");
}

/// systemd accepts the node's units (the bootstrap, the sync and its timer), their executables
/// pointed into `dir`.
fn verify_units(dir: &std::path::Path, bake: &str) {
    use std::os::unix::fs::PermissionsExt;
    if std::process::Command::new("systemd-analyze")
        .arg("--version")
        .output()
        .is_err()
    {
        eprintln!("systemd-analyze is not on this machine: the swarm's units are not verified");
        return;
    }
    let bin = dir.join("libexec");
    std::fs::create_dir_all(&bin).unwrap();
    for exe in ["bookstore-swarm-node", "bookstore-swarm-sync"] {
        let path = bin.join(exe);
        std::fs::write(&path, "#!/bin/sh\n").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let mut units = Vec::new();
    for (marker, file) in [
        ("BOOKSTORE_UNIT_EOF", "bookstore-swarm-node.service"),
        ("BOOKSTORE_SYNC_UNIT_EOF", "bookstore-swarm-sync.service"),
        ("BOOKSTORE_SYNC_TIMER_EOF", "bookstore-swarm-sync.timer"),
    ] {
        let text = heredoc(bake, marker).replace(
            "/usr/local/libexec/bookstore/",
            &format!("{}/", bin.display()),
        );
        let path = dir.join(file);
        std::fs::write(&path, text).unwrap();
        units.push(path);
    }
    let out = std::process::Command::new("systemd-analyze")
        .args(["verify", "--man=no"])
        .args(&units)
        .output()
        .unwrap();
    let complaints = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && complaints.trim().is_empty(),
        "systemd-analyze verify:\n{complaints}"
    );
}

/// A secret's value and ARN, by name.
async fn secret_named(aws: &common::Aws, name: &str) -> (Option<String>, String) {
    let secrets = aws.secrets.list_secrets().send().await.unwrap();
    let arn = secrets
        .secret_list()
        .iter()
        .find(|s| s.name() == Some(name))
        .and_then(|s| s.arn())
        .unwrap_or_else(|| panic!("no secret {name}"))
        .to_string();
    let value = aws
        .secrets
        .get_secret_value()
        .secret_id(&arn)
        .send()
        .await
        .unwrap();
    (value.secret_string().map(str::to_string), arn)
}

async fn release_of(aws: &common::Aws) -> serde_json::Value {
    let (value, _) = secret_named(aws, "bs-t-swarm-swarm-release").await;
    serde_json::from_str(&value.unwrap()).unwrap()
}

/// What a node's curl gets from a presigned URL.
fn download(url: &str) -> Vec<u8> {
    common::run_ok(std::process::Command::new("curl").args([
        "--fail",
        "--silent",
        "--show-error",
        url,
    ]))
    .stdout
}

#[test]
fn a_new_app_never_replaces_the_running_swarm_nodes() {
    let moto = Moto::start(0.0);
    let dir = TempDir::new("swarm-new-app");
    up(&moto, dir.path());
    let before = nodes(&moto);
    let (new_app, bytes) = common::another_build(dir.path());
    moto.clear_calls();
    let run = moto
        .run(
            dir.path(),
            &[
                "up",
                "--stack",
                "swarm",
                "--env",
                ENV,
                "--app-binary",
                new_app.to_str().unwrap(),
            ],
        )
        .ok();
    // The new image is baked, but replacing all five nodes at once would lose the swarm: the
    // release names the new app instead, for the nodes to roll onto.
    assert_eq!(moto.count("CreateImage"), 1);
    assert_eq!(
        moto.count("PutSecretValue"),
        1,
        "{:?}",
        moto.mutating_calls()
    );
    let aws = moto.aws();
    let release = aws.rt.block_on(release_of(&aws));
    let sha = common::sha256_bytes(&bytes);
    assert_eq!(release["sha256"], sha.as_str());
    assert_eq!(
        release["image"],
        format!("bookstore.local/app:{}", &sha[..12])
    );
    assert_eq!(download(release["url"].as_str().unwrap()), bytes);
    assert_eq!(
        moto.count("TerminateInstances"),
        1,
        "only the builder: {:?}",
        moto.mutating_calls()
    );
    assert_eq!(nodes(&moto), before, "the same nodes");
    assert!(
        run.stdout.contains("Drifted and left as they are: ") && run.stdout.contains("manager-1"),
        "{}",
        run.stdout
    );
    assert!(
        run.stderr
            .contains("reaches the running swarm through its release"),
        "{}",
        run.stderr
    );
    moto.run(
        dir.path(),
        &["down", "--stack", "swarm", "--env", ENV, "--yes"],
    )
    .ok();
    let left = moto.aws().everything(ENV);
    assert!(left.is_empty(), "left after down: {left:?}");
}
