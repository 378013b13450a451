//! The monolith stack through the real binary against the strict emulator: every resource checked
//! by describe calls (only 80/443 open, IMDSv2, every volume encrypted, the Elastic IP on the
//! serving instance, no secret in user-data), a no-op `up`, a new app that replaces the instance
//! and keeps the same data volume, runs killed during the instance wait and interrupted during the
//! volume attach, kinds that share EC2 instances without touching each other's, and `down`.

mod common;

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use aws_sdk_ec2::types::Filter;
use common::{ENV, Moto, TempDir, heredoc};

fn filter(name: &str, value: &str) -> Filter {
    Filter::builder().name(name).values(value).build()
}

fn up(moto: &Moto, dir: &Path, extra: &[&str]) -> serde_json::Value {
    let mut args = vec![
        "--output", "json", "up", "--stack", "monolith", "--env", ENV,
    ];
    args.extend_from_slice(extra);
    moto.run(dir, &args).ok().json()
}

fn down_leaves_nothing(moto: &Moto, dir: &Path) {
    moto.run(dir, &["down", "--stack", "monolith", "--env", ENV, "--yes"])
        .ok();
    let left = moto.aws().everything(ENV);
    assert!(left.is_empty(), "left after down: {left:?}");
}

/// The stack's instances of the `instance` kind that are not terminated: (id, state).
fn vms(moto: &Moto) -> Vec<(String, String)> {
    moto.aws()
        .instances_tagged("bookstore:kind", "instance")
        .iter()
        .map(|i| {
            (
                i.instance_id().unwrap().to_string(),
                i.state().unwrap().name().unwrap().as_str().to_string(),
            )
        })
        .filter(|(_, s)| s != "terminated")
        .collect()
}

struct Audit {
    instance: String,
    data_volume: String,
    public_ip: String,
}

/// Everything the issue's audit asks, through describe calls.
fn audit(moto: &Moto) -> Audit {
    let running = vms(moto);
    assert_eq!(running.len(), 1, "{running:?}");
    let aws = moto.aws();
    aws.rt.block_on(async {
        let id = running[0].0.clone();
        let out = aws
            .ec2
            .describe_instances()
            .instance_ids(&id)
            .send()
            .await
            .unwrap();
        let i = &out.reservations()[0].instances()[0];
        assert_eq!(i.state().unwrap().name().unwrap().as_str(), "running");
        let md = i.metadata_options().unwrap();
        assert_eq!(md.http_tokens().unwrap().as_str(), "required", "IMDSv2");
        assert_eq!(md.http_put_response_hop_limit(), Some(1));
        assert_eq!(
            i.iam_instance_profile()
                .unwrap()
                .arn()
                .unwrap()
                .rsplit('/')
                .next(),
            Some("LabInstanceProfile")
        );
        assert!(i.key_name().is_none(), "no SSH key pair");

        // Security group: 80 and 443 from anywhere, nothing else at all.
        let groups: Vec<String> = i
            .network_interfaces()
            .iter()
            .flat_map(|n| n.groups())
            .filter_map(|g| g.group_id().map(str::to_string))
            .collect();
        assert_eq!(groups.len(), 1, "{groups:?}");
        let sg = aws
            .ec2
            .describe_security_groups()
            .group_ids(&groups[0])
            .send()
            .await
            .unwrap();
        let mut rules: Vec<(i32, i32, Vec<String>)> = sg.security_groups()[0]
            .ip_permissions()
            .iter()
            .map(|p| {
                assert!(p.user_id_group_pairs().is_empty(), "{p:?}");
                assert!(p.ipv6_ranges().is_empty(), "{p:?}");
                (
                    p.from_port().unwrap(),
                    p.to_port().unwrap(),
                    p.ip_ranges()
                        .iter()
                        .map(|r| r.cidr_ip().unwrap().to_string())
                        .collect(),
                )
            })
            .collect();
        rules.sort();
        assert_eq!(
            rules,
            vec![
                (80, 80, vec!["0.0.0.0/0".to_string()]),
                (443, 443, vec!["0.0.0.0/0".to_string()])
            ]
        );

        // Every volume of the instance is encrypted; the data volume is the stack's, at /dev/sdf.
        let vols = aws
            .ec2
            .describe_volumes()
            .filters(filter("attachment.instance-id", &id))
            .send()
            .await
            .unwrap();
        assert_eq!(vols.volumes().len(), 2, "root + data: {vols:?}");
        let mut data_volume = String::new();
        for v in vols.volumes() {
            assert_eq!(v.encrypted(), Some(true), "{v:?}");
            let device = v.attachments()[0].device().unwrap();
            let kind = v
                .tags()
                .iter()
                .find(|t| t.key() == Some("bookstore:kind"))
                .and_then(|t| t.value());
            if device == "/dev/sdf" {
                assert_eq!(kind, Some("volume"));
                assert_eq!(v.volume_type().unwrap().as_str(), "gp3");
                assert_eq!(
                    v.availability_zone(),
                    i.placement().unwrap().availability_zone()
                );
                data_volume = v.volume_id().unwrap().to_string();
            } else {
                assert_eq!(kind, None, "the root volume is not a data volume");
            }
        }
        assert!(!data_volume.is_empty(), "no data volume attached");

        // The Elastic IP is the serving instance's address.
        let eips = aws
            .ec2
            .describe_addresses()
            .filters(filter("tag:bookstore:env", ENV))
            .send()
            .await
            .unwrap();
        assert_eq!(eips.addresses().len(), 1);
        let eip = &eips.addresses()[0];
        assert_eq!(eip.instance_id(), Some(id.as_str()));
        assert_eq!(i.public_ip_address(), eip.public_ip());
        let public_ip = eip.public_ip().unwrap().to_string();

        // The user-data wires settings only: no password, no key, the address for the certificate.
        let user_data = aws.user_data_of(&id).await;
        assert!(
            user_data.contains(&format!("public_ip='{public_ip}'")),
            "{user_data}"
        );
        assert!(
            user_data.contains(&format!("data_volume_id='{data_volume}'")),
            "{user_data}"
        );
        assert!(user_data.contains("tls_mode='letsencrypt-ip'"));
        for secret in [
            "password=",
            "PASSWORD=",
            "BEGIN PRIVATE KEY",
            "aws_secret_access_key",
        ] {
            assert!(
                !user_data.contains(secret),
                "user-data holds {secret}:\n{user_data}"
            );
        }
        Audit {
            instance: id,
            data_volume,
            public_ip,
        }
    })
}

#[test]
fn monolith_up_audits_clean_is_idempotent_keeps_its_data_volume_across_a_new_app_and_down_removes_everything()
 {
    let moto = Moto::start(0.3);
    let dir = TempDir::new("monolith");
    let result = up(&moto, dir.path(), &[]);
    let first = audit(&moto);
    assert_eq!(
        result["outputs"]["url"],
        format!("https://{}/", first.public_ip)
    );
    assert_eq!(result["outputs"]["instance_id"], first.instance);
    assert_eq!(result["outputs"]["data_volume_id"], first.data_volume);

    moto.clear_calls();
    let again = up(&moto, dir.path(), &[]);
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
                "--output", "json", "status", "--stack", "monolith", "--env", ENV,
            ],
        )
        .ok()
        .json();
    let instances = status["instances"].as_array().unwrap();
    assert_eq!(instances.len(), 1, "{status}");
    assert_eq!(instances[0]["id"], first.instance);
    assert_eq!(instances[0]["public_ip"], first.public_ip);
    assert_eq!(instances[0]["data_volume"], first.data_volume);
    assert_eq!(
        status["outputs"]["url"],
        format!("https://{}/", first.public_ip)
    );
    assert!(
        status["resources"]
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["drift"].as_array().unwrap().is_empty()),
        "{status}"
    );

    // A new app: a new image, the instance replaced, the same data volume and address on it.
    let mut bytes = std::fs::read(sibling_app()).unwrap();
    bytes.extend_from_slice(b"\0another build");
    let new_app = dir.path().join("bookstore-app");
    std::fs::write(&new_app, &bytes).unwrap();
    let app = ["--app-binary", new_app.to_str().unwrap()];
    let plan = moto.run(
        dir.path(),
        &["plan", "--stack", "monolith", "--env", ENV, app[0], app[1]],
    );
    assert_eq!(plan.code, 2);
    assert!(plan.stdout.contains("vm"), "{}", plan.stdout);
    moto.clear_calls();
    up(&moto, dir.path(), &app);
    let second = audit(&moto);
    assert_ne!(second.instance, first.instance, "a new instance");
    assert_eq!(
        second.data_volume, first.data_volume,
        "the same data volume"
    );
    assert_eq!(second.public_ip, first.public_ip, "the same address");
    assert_eq!(moto.count("CreateVolume"), 0);
    assert_eq!(
        moto.count("TerminateInstances"),
        2,
        "the builder and the old VM"
    );
    moto.clear_calls();
    up(&moto, dir.path(), &app);
    assert!(
        moto.mutating_calls().is_empty(),
        "{:?}",
        moto.mutating_calls()
    );

    down_leaves_nothing(&moto, dir.path());
}

/// The bookstore-app next to the test binaries, as in the bake tests.
fn sibling_app() -> PathBuf {
    let exe = PathBuf::from(env!("CARGO_BIN_EXE_bookstore"));
    exe.with_file_name("bookstore-app")
}

fn journal(dir: &Path) -> String {
    std::fs::read_to_string(
        dir.join(".bookstore/monolith")
            .join(ENV)
            .join("journal.jsonl"),
    )
    .unwrap_or_default()
}

#[test]
fn sigkill_during_the_instance_wait_and_a_failed_attach_resume_without_a_second_instance() {
    let moto = Moto::start(3.0);
    let dir = TempDir::new("monolith-kill");
    let mut run = moto
        .cli(dir.path(), &["up", "--stack", "monolith", "--env", ENV])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let start = Instant::now();
    while !journal(dir.path()).contains(r#""event":"created","kind":"instance""#) {
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "{}",
            journal(dir.path())
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    run.kill().unwrap();
    run.wait().unwrap();
    let pending = vms(&moto);
    assert_eq!(pending.len(), 1);
    assert_eq!(pending[0].1, "pending", "killed during the instance's wait");

    // The attach fails for good this time: up stops, naming the step; the instance stays.
    moto.fault(r#"[{"action": "AttachVolume", "code": "InternalFailure", "status": 500, "message": "We encountered an internal error"}]"#);
    moto.clear_calls();
    let failed = moto.run(dir.path(), &["up", "--stack", "monolith", "--env", ENV]);
    assert_eq!(failed.code, 1, "{}", failed.stderr);
    assert!(failed.stderr.contains("vm"), "{}", failed.stderr);
    assert_eq!(
        moto.count("RunInstances"),
        0,
        "the killed run's instance is adopted"
    );
    moto.clear_faults();

    moto.clear_calls();
    up(&moto, dir.path(), &[]);
    assert_eq!(moto.count("RunInstances"), 0);
    assert_eq!(moto.count("AttachVolume"), 1);
    audit(&moto);
    down_leaves_nothing(&moto, dir.path());
}

#[test]
fn a_builder_group_instances_and_a_vm_of_one_env_never_touch_each_other() {
    let moto = Moto::start(0.0);
    let dir = TempDir::new("monolith-kinds");
    up(&moto, dir.path(), &[]);
    let vm = audit(&moto).instance;
    let aws = moto.aws();
    // Instances of the same stack and env that other kinds made: a bake's builder and an Auto
    // Scaling group's instance (tags as those kinds and AWS set them).
    let (builder, group_instance) = aws.rt.block_on(async {
        let subnets = aws
            .ec2
            .describe_subnets()
            .filters(filter("tag:bookstore:env", ENV))
            .send()
            .await
            .unwrap();
        let subnet = subnets.subnets()[0].subnet_id().unwrap().to_string();
        let image = aws
            .ec2
            .describe_images()
            .owners("self")
            .send()
            .await
            .unwrap()
            .images()[0]
            .image_id()
            .unwrap()
            .to_string();
        let launch = |tags: Vec<(&str, &str)>| {
            let spec = aws_sdk_ec2::types::TagSpecification::builder()
                .resource_type(aws_sdk_ec2::types::ResourceType::Instance)
                .set_tags(Some(
                    [
                        ("bookstore:managed-by", "bookstore"),
                        ("bookstore:stack", "monolith"),
                        ("bookstore:env", ENV),
                    ]
                    .into_iter()
                    .chain(tags)
                    .map(|(k, v)| aws_sdk_ec2::types::Tag::builder().key(k).value(v).build())
                    .collect(),
                ))
                .build();
            aws.ec2
                .run_instances()
                .image_id(&image)
                .instance_type(aws_sdk_ec2::types::InstanceType::T3Micro)
                .min_count(1)
                .max_count(1)
                .subnet_id(&subnet)
                .tag_specifications(spec)
                .send()
        };
        let builder = launch(vec![
            ("bookstore:key", "builder"),
            ("bookstore:bakes", "ami-0000000000"),
        ])
        .await
        .unwrap();
        // AWS reserves aws: tags (only Auto Scaling itself sets aws:autoscaling:groupName, and
        // the harness refuses them as AWS does): the group's propagated key stands for the group.
        let group = launch(vec![("bookstore:key", "asg")]).await.unwrap();
        (
            builder.instances()[0].instance_id().unwrap().to_string(),
            group.instances()[0].instance_id().unwrap().to_string(),
        )
    });
    let plan = moto
        .run(
            dir.path(),
            &[
                "--output", "json", "plan", "--stack", "monolith", "--env", ENV,
            ],
        )
        .json();
    let steps = plan["steps"].as_array().unwrap();
    let of = |id: &str| {
        steps
            .iter()
            .filter(|s| s["id"] == id)
            .cloned()
            .collect::<Vec<_>>()
    };
    let vm_steps = of(&vm);
    assert_eq!(vm_steps.len(), 1);
    assert_eq!(vm_steps[0]["kind"], "instance");
    assert_eq!(vm_steps[0]["action"], "keep");
    let builder_steps = of(&builder);
    assert_eq!(builder_steps.len(), 1, "{plan}");
    assert_eq!(
        builder_steps[0]["kind"], "builder",
        "only the builder kind takes its builder"
    );
    assert!(
        of(&group_instance).is_empty(),
        "no kind of the monolith takes a group's instance: {plan}"
    );

    moto.clear_calls();
    up(&moto, dir.path(), &[]);
    let running: Vec<String> = vms(&moto).into_iter().map(|(id, _)| id).collect();
    assert_eq!(
        running,
        vec![vm.clone()],
        "the VM is unchanged and the only VM"
    );
    assert_eq!(moto.count("RunInstances"), 0);
    let states = aws.rt.block_on(async {
        let out = aws
            .ec2
            .describe_instances()
            .instance_ids(&builder)
            .instance_ids(&group_instance)
            .send()
            .await
            .unwrap();
        out.reservations()
            .iter()
            .flat_map(|r| r.instances())
            .map(|i| {
                (
                    i.instance_id().unwrap().to_string(),
                    i.state().unwrap().name().unwrap().as_str().to_string(),
                )
            })
            .collect::<std::collections::BTreeMap<_, _>>()
    });
    assert_eq!(
        states[&builder], "terminated",
        "the builder kind removed its leftover builder"
    );
    assert_eq!(
        states[&group_instance], "running",
        "the group's instance is left alone"
    );
    aws.rt
        .block_on(
            aws.ec2
                .terminate_instances()
                .instance_ids(&group_instance)
                .send(),
        )
        .unwrap();
    down_leaves_nothing(&moto, dir.path());
}

#[test]
fn separate_vm_puts_mariadb_on_a_private_vm_open_to_the_app_group_only() {
    let moto = Moto::start(0.0);
    let dir = TempDir::new("monolith-split");
    let stack = std::fs::read_to_string(common::manifest_dir().join("stacks/monolith.yaml"))
        .unwrap()
        .replace("placement: same-vm", "placement: separate-vm");
    dir.write("split.yaml", &stack);
    moto.run(dir.path(), &["up", "--stack", "./split.yaml", "--env", ENV])
        .ok();
    let aws = moto.aws();
    aws.rt.block_on(async {
        let out = aws
            .ec2
            .describe_instances()
            .filters(filter("tag:bookstore:kind", "instance"))
            .send()
            .await
            .unwrap();
        let all: Vec<_> = out
            .reservations()
            .iter()
            .flat_map(|r| r.instances())
            .collect();
        assert_eq!(all.len(), 2);
        let key = |i: &&aws_sdk_ec2::types::Instance| {
            i.tags()
                .iter()
                .find(|t| t.key() == Some("bookstore:key"))
                .unwrap()
                .value()
                .unwrap()
                .to_string()
        };
        let db = all.iter().find(|i| key(i) == "db-vm").unwrap();
        let app = all.iter().find(|i| key(i) == "vm").unwrap();
        assert!(
            db.public_ip_address().is_none(),
            "the database VM has no public address"
        );
        let group = |i: &aws_sdk_ec2::types::Instance| {
            i.network_interfaces()[0].groups()[0]
                .group_id()
                .unwrap()
                .to_string()
        };
        let sg = aws
            .ec2
            .describe_security_groups()
            .group_ids(group(db))
            .send()
            .await
            .unwrap();
        let rules = sg.security_groups()[0].ip_permissions();
        assert_eq!(rules.len(), 1, "{rules:?}");
        assert_eq!(rules[0].from_port(), Some(3306));
        assert!(rules[0].ip_ranges().is_empty(), "no CIDR: {rules:?}");
        assert_eq!(
            rules[0].user_id_group_pairs()[0].group_id().unwrap(),
            group(app),
            "from the app VM's group"
        );
        let user_data = aws.user_data_of(app.instance_id().unwrap()).await;
        assert!(
            user_data.contains(&format!("db_host='{}'", db.private_ip_address().unwrap())),
            "{user_data}"
        );
        let vols = aws
            .ec2
            .describe_volumes()
            .filters(filter("tag:bookstore:kind", "volume"))
            .send()
            .await
            .unwrap();
        assert_eq!(vols.volumes().len(), 2, "a data volume each");
    });
    // The shared credentials: generated into Secrets Manager, never in either user-data; the
    // database VM's setup reads them for real (AWS CLI against the emulator).
    let builder = aws.builders()[0].instance_id().unwrap().to_string();
    let db = aws.instance_tagged("bookstore:key", "db-vm");
    let (secret, bake, db_user_data) = aws.rt.block_on(async {
        let secrets = aws.secrets.list_secrets().send().await.unwrap();
        assert_eq!(secrets.secret_list().len(), 1);
        let arn = secrets.secret_list()[0].arn().unwrap().to_string();
        let value = aws
            .secrets
            .get_secret_value()
            .secret_id(&arn)
            .send()
            .await
            .unwrap()
            .secret_string()
            .unwrap()
            .to_string();
        (
            (arn, value),
            aws.user_data_of(&builder).await,
            aws.user_data_of(&db).await,
        )
    });
    let v: serde_json::Value = serde_json::from_str(&secret.1).unwrap();
    assert_eq!(v["username"], "bookstore");
    let password = v["password"].as_str().unwrap();
    assert!(password.len() == 48 && password.chars().all(|c| c.is_ascii_hexdigit()));
    assert!(!db_user_data.contains(password) && !bake.contains(password));
    assert!(db_user_data.contains(&format!("db_secret_arn='{}'", secret.0)));
    assert!(db_user_data.contains("role='db'"));
    let setup = heredoc(&bake, "BOOKSTORE_SETUP_EOF");
    let root = dir.path().join("db-vm");
    let d = |p: &str| root.join(p).display().to_string();
    let settings = format!(
        "role='db'\ndata_volume_id=''\ndata_dir='{}'\netc_dir='{}'\nrun_dir='{}'\napp_port='8080'\nmysql_conf='{}'\nmysql_socket='{}'\nmysql_port='3306'\nmysql_user='mysql'\nservice_user='mysql'\ntls_mode='none'\nnginx_conf='{}'\nhttp_port='80'\nhttps_port='443'\ndb_secret_arn='{}'\nregion='us-east-1'\n",
        d("data"),
        d("etc"),
        d("run"),
        d("my.cnf"),
        d("mysqld/mysql.sock"),
        d("nginx.conf"),
        secret.0
    );
    std::fs::create_dir_all(&root).unwrap();
    std::fs::write(root.join("settings.env"), settings).unwrap();
    std::fs::write(root.join("setup"), &setup).unwrap();
    let venv_bin = common::manifest_dir().join(".venv/bin");
    let out = std::process::Command::new("bash")
        .arg(root.join("setup"))
        .arg("prepare")
        .env("BOOKSTORE_MONOLITH_ENV", root.join("settings.env"))
        .env(
            "PATH",
            format!("{}:{}", venv_bin.display(), std::env::var("PATH").unwrap()),
        )
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .env("AWS_ENDPOINT_URL", &moto.url)
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("AWS_CONFIG_FILE", root.join("none"))
        .env("AWS_SHARED_CREDENTIALS_FILE", root.join("none"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "setup: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let kept = std::fs::read_to_string(root.join("data/secrets/db.json")).unwrap();
    assert_eq!(
        kept.trim(),
        secret.1.trim(),
        "the database VM uses the shared credentials"
    );
    let cnf = std::fs::read_to_string(root.join("my.cnf")).unwrap();
    assert!(
        cnf.contains("bind-address=0.0.0.0"),
        "the group, not the bind, limits who connects"
    );
    assert!(!cnf.contains(password));
    assert!(
        !root.join("nginx.conf").exists(),
        "no proxy on the database VM"
    );

    moto.run(
        dir.path(),
        &["down", "--stack", "./split.yaml", "--env", ENV, "--yes"],
    )
    .ok();
    let left = moto.aws().everything(ENV);
    assert!(left.is_empty(), "left after down: {left:?}");
}
