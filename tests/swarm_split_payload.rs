//! The swarm split on a real Docker engine (the private dockerd of the test command): the leader's
//! bootstrap (templates/swarm/node, as the bake installs it) makes the three services' databases
//! and users with `bookstore-app split-setup` from the master secret, turns their credentials and
//! keys into swarm secrets and deploys the split's stack file; the three services become healthy
//! (their health includes the peers they call by service name) and each answers its own paths,
//! asked from a probe task on the stack's network. As in tests/swarm_payload.rs, this kernel has
//! no IPVS: the stack is adapted to DNS round robin without published ports.

mod common;

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use common::{
    ENV, Moto, TempDir, adapt, docker, docker_ok, heredoc, probe_image, sql_as_root, wait_until,
};

const SERVICES: [&str; 3] = ["accounts", "catalog", "orders"];

#[test]
fn the_split_stack_deploys_on_a_real_swarm_and_each_service_answers_its_paths() {
    let Ok(host) = std::env::var("BOOKSTORE_TEST_DOCKER_HOST") else {
        panic!(
            "BOOKSTORE_TEST_DOCKER_HOST is not set: run scripts/test.sh, which starts a private dockerd"
        );
    };
    let socket = std::env::var("BOOKSTORE_TEST_MYSQL_SOCKET")
        .expect("BOOKSTORE_TEST_MYSQL_SOCKET: run scripts/test.sh, which starts MariaDB");
    let mysql = std::env::var("BOOKSTORE_TEST_MYSQL_URL")
        .expect("BOOKSTORE_TEST_MYSQL_URL: run scripts/test.sh, which starts MariaDB");
    let moto = Moto::start(0.0);
    let dir = TempDir::new("swarm-split-payload");
    dir.write(
        "sw.yaml",
        "version: 1\nname: sw\nkind: swarm\napp:\n  services: split\n",
    );
    moto.run(dir.path(), &["up", "--stack", "sw.yaml", "--env", ENV])
        .ok();
    let aws = moto.aws();
    let builder = aws.builders()[0].instance_id().unwrap().to_string();
    let id = aws.instance_tagged("bookstore:key", "manager-1");
    let (bake, leader) = aws.rt.block_on(async {
        (
            aws.user_data_of(&builder).await,
            aws.user_data_of(&id).await,
        )
    });
    let build_image = dir.write(
        "bookstore-build-image",
        &heredoc(&bake, "BOOKSTORE_BUILD_EOF"),
    );
    let mut stack = heredoc(&leader, "BOOKSTORE_STACK_EOF");
    let image = stack
        .lines()
        .find_map(|l| l.trim().strip_prefix("image: "))
        .unwrap()
        .to_string();
    let app = PathBuf::from(env!("CARGO_BIN_EXE_bookstore")).with_file_name("bookstore-app");
    // This build's app, not an image an earlier run left under the same tag.
    let _ = docker(&["rmi", "--force", &image]);
    let out = Command::new("bash")
        .arg(&build_image)
        .arg(&app)
        .arg(&image)
        .env("DOCKER_HOST", &host)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "build-image: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let _ = docker(&["swarm", "leave", "--force"]);
    for service in ["accounts", "catalog", "orders"] {
        sql_as_root(
            &socket,
            &format!(
                "DROP DATABASE IF EXISTS bookstore_{service}; DROP USER IF EXISTS 'bookstore_{service}'@'%'"
            ),
        );
    }
    sql_as_root(&socket, "DROP DATABASE IF EXISTS bookstore_split");

    // The master secret: a privileged user of its own (RDS's master account; its password is
    // rotated below), as RDS keeps it.
    let user = "bookstore_sw_master";
    let password = format!("{:032x}", fastrand::u128(..));
    sql_as_root(
        &socket,
        &format!(
            "DROP USER IF EXISTS '{user}'@'%'; CREATE USER '{user}'@'%' IDENTIFIED BY '{password}'; GRANT ALL PRIVILEGES ON *.* TO '{user}'@'%' WITH GRANT OPTION"
        ),
    );
    let master_arn = aws.rt.block_on(async {
        aws.secrets
            .create_secret()
            .name("sw-split-master")
            .secret_string(format!(
                r#"{{"username":"{user}","password":"{password}"}}"#
            ))
            .send()
            .await
            .unwrap()
            .arn()
            .unwrap()
            .to_string()
    });
    let tcp = mysql
        .rsplit_once('@')
        .unwrap()
        .1
        .trim_end_matches('/')
        .to_string();

    // This machine's adaptations (no IPVS: DNS round robin, no published ports; MariaDB's socket).
    let uploads = dir.path().join("uploads");
    std::fs::create_dir_all(&uploads).unwrap();
    let _ = Command::new("chown")
        .args(["10001:10001"])
        .arg(&uploads)
        .status();
    let lines: Vec<String> = stack.lines().map(str::to_string).collect();
    let mut kept = Vec::new();
    let mut skip = false;
    for l in lines {
        if l == "    ports:" {
            skip = true;
            continue;
        }
        if skip && l.starts_with("      - {target:") {
            continue;
        }
        skip = false;
        kept.push(l);
    }
    stack = kept.join("\n") + "\n";
    adapt(
        &mut stack,
        "x-deploy: &deploy\n",
        "x-deploy: &deploy\n  endpoint_mode: dnsrr\n",
    );
    adapt(&mut stack, "      replicas: 5\n", "      replicas: 1\n");
    // A roll watched for a second, not 20 (the rotation below rolls the three services).
    adapt(&mut stack, "    delay: 5s\n", "    delay: 0s\n");
    adapt(&mut stack, "    monitor: 20s\n", "    monitor: 1s\n");
    for service in ["accounts", "catalog", "orders"] {
        let line = stack
            .lines()
            .find(|l| l.contains("DATABASE_URL") && l.contains(&format!("bookstore_{service}")))
            .unwrap()
            .to_string();
        adapt(
            &mut stack,
            &line,
            &format!(
                "      DATABASE_URL: \"mysql://localhost/bookstore_{service}?socket=/run/mysqld/mysqld.sock\""
            ),
        );
    }
    adapt(
        &mut stack,
        "source: /mnt/efs/uploads",
        &format!("source: {}", uploads.display()),
    );
    adapt(
        &mut stack,
        "      target: /data/uploads\n",
        &format!(
            "      target: /data/uploads\n    - type: bind\n      source: {socket}\n      target: /run/mysqld/mysqld.sock\n"
        ),
    );
    let stack_file = dir.write("stack.yml", &stack);

    let node_script = dir.write(
        "bookstore-swarm-node",
        &heredoc(&bake, "BOOKSTORE_NODE_EOF"),
    );
    let secret_arn = |what: &str| {
        let name = format!("bs-{ENV}-sw-swarm-{what}");
        aws.rt.block_on(async {
            aws.secrets
                .list_secrets()
                .send()
                .await
                .unwrap()
                .secret_list()
                .iter()
                .find(|s| s.name() == Some(name.as_str()))
                .and_then(|s| s.arn())
                .unwrap()
                .to_string()
        })
    };
    let rendered = heredoc(&leader, "BOOKSTORE_SETTINGS_EOF");
    let split_line = rendered
        .lines()
        .find(|l| l.starts_with("split_services="))
        .unwrap()
        .to_string();
    let name = "swsplit";
    let settings = dir.write(
        "swarm.env",
        &[
            "node=leader".to_string(),
            "key=manager-1".into(),
            "region=us-east-1".into(),
            format!("tokens_secret_arn={}", secret_arn("tokens")),
            format!("release_secret_arn={}", secret_arn("release")),
            format!("status_secret_arn={}", secret_arn("status")),
            format!("db_secret_arn={master_arn}"),
            "secret_name=unused".into(),
            "file_system_id=".into(),
            format!("uploads={}", uploads.display()),
            format!("stack_file={}", stack_file.display()),
            format!("stack_name={name}"),
            "advertise_address=127.0.0.1".into(),
            split_line,
            format!("database_url='mysql://{tcp}/mysql'"),
            format!("app_bin={}", app.display()),
            format!("state_dir={}", dir.path().join("state").display()),
        ]
        .join("\n"),
    );
    // A node's script as its unit runs it here: this engine, the emulator's secrets.
    let run = |script: &PathBuf| {
        let out = Command::new("bash")
            .arg(script)
            .env("BOOKSTORE_SWARM_ENV", &settings)
            .env("DOCKER_HOST", &host)
            .env(
                "PATH",
                format!(
                    "{}:{}",
                    common::manifest_dir().join(".venv/bin").display(),
                    std::env::var("PATH").unwrap_or_default()
                ),
            )
            .env("AWS_ACCESS_KEY_ID", "test")
            .env("AWS_SECRET_ACCESS_KEY", "test")
            .env("AWS_ENDPOINT_URL", &moto.url)
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .output()
            .unwrap();
        let log = String::from_utf8_lossy(&out.stdout).into_owned()
            + &String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{}: {log}", script.display());
        log
    };
    let log = run(&node_script);
    assert!(log.contains("stack deployed"), "{log}");
    // No service's password reaches the log (they are derived, long, and only in the secrets).
    for service in ["accounts", "catalog", "orders"] {
        let creds: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(dir.path().join(format!("state/split/{service}-db.json")))
                .unwrap(),
        )
        .unwrap();
        let secret = creds["password"].as_str().unwrap();
        assert!(secret.len() >= 40 && !log.contains(secret), "{log}");
    }

    for service in ["accounts", "catalog", "orders"] {
        let svc = format!("{name}_{service}");
        let started = Instant::now();
        loop {
            let ids = docker_ok(&[
                "ps",
                "-q",
                "--filter",
                &format!("label=com.docker.swarm.service.name={svc}"),
                "--filter",
                "health=healthy",
            ]);
            if !ids.trim().is_empty() {
                break;
            }
            if started.elapsed() > Duration::from_secs(90) {
                let (_, ps) = docker(&["service", "ps", "--no-trunc", &svc]);
                let (_, logs) = docker(&["service", "logs", "--raw", "--tail", "30", &svc]);
                panic!("{svc} never healthy:\n{ps}\n{logs}");
            }
            std::thread::sleep(Duration::from_millis(500));
        }
    }
    // From inside the stack's network, as the load balancer's groups reach them: each service its
    // own paths, and each one's full health (its database and the peers it calls by name).
    probe_image(&dir);
    let checks = [
        ("accounts:8081", "/login", "200"),
        ("accounts:8081", "/orders", "404"),
        ("catalog:8082", "/", "200"),
        ("catalog:8082", "/login", "404"),
        ("orders:8083", "/orders", "303"),
        ("accounts:8081", "/healthz", "200"),
        ("catalog:8082", "/healthz", "200"),
        ("orders:8083", "/healthz", "200"),
    ];
    let script: String = checks
        .iter()
        .map(|(host, path, _)| {
            format!("echo \"{host}{path} $(/usr/bin/curl -s -o /dev/null -w '%{{http_code}}' --max-time 5 http://{host}{path})\"; ")
        })
        .collect::<String>()
        + "echo done; /bin/busybox sleep 300";
    let probe = format!("{name}-probe");
    docker_ok(&[
        "service",
        "create",
        "--detach",
        "--name",
        &probe,
        "--network",
        &format!("{name}_default"),
        "--restart-condition",
        "none",
        "--entrypoint",
        "/bin/busybox",
        "bookstore.local/probe:test",
        "sh",
        "-c",
        &script,
    ]);
    let mut logs = String::new();
    wait_until("the probe's answers", 60, || {
        logs = docker(&["service", "logs", "--raw", &probe]).1;
        logs.contains("done")
    });
    for (host, path, code) in checks {
        assert!(
            logs.lines().any(|l| l == format!("{host}{path} {code}")),
            "{host}{path} should answer {code}:\n{logs}"
        );
    }
    docker_ok(&["service", "rm", &probe]);

    // The leader's sync: nothing to roll (same image, same credentials), and it reports the three
    // services, which `status` shows.
    let sync_script = dir.write(
        "bookstore-swarm-sync",
        &heredoc(&bake, "BOOKSTORE_SYNC_EOF"),
    );
    let log = run(&sync_script);
    assert!(!log.contains("rolling"), "{log}");
    let status_arn = secret_arn("status");
    let report = aws.rt.block_on(async {
        aws.secrets
            .get_secret_value()
            .secret_id(&status_arn)
            .send()
            .await
            .unwrap()
            .secret_string()
            .unwrap()
            .to_string()
    });
    let report: serde_json::Value = serde_json::from_str(&report).unwrap();
    let names: Vec<&str> = report["services"]
        .as_array()
        .unwrap_or_else(|| panic!("{report}"))
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            format!("{name}_accounts"),
            format!("{name}_catalog"),
            format!("{name}_orders")
        ],
        "{report}"
    );
    let status = moto
        .run(
            dir.path(),
            &[
                "status", "--stack", "sw.yaml", "--env", ENV, "--output", "json",
            ],
        )
        .ok()
        .json();
    let rows = status["swarm_service"].as_array().unwrap();
    assert_eq!(rows.len(), 3, "{status}");
    assert!(rows.iter().all(|r| r["replicas"] == "1/1"), "{status}");
    let secrets = docker_ok(&["secret", "ls", "--format", "{{.Name}}"]);
    for s in [
        "bookstore-accounts-db-v1",
        "bookstore-internal-key-v1",
        "bookstore-identity-key-v1",
    ] {
        assert!(secrets.lines().any(|l| l == s), "{secrets}");
    }

    // RDS rotates the master password: the sync's split-setup gives each service's user its new
    // derived password and the sync rolls each service onto a new Docker secret with it (Docker
    // secrets cannot change); the new tasks pass their health check (their database) with it, and
    // the old secrets go. No password reaches the log.
    let containers = |service: &str| -> Vec<String> {
        docker_ok(&[
            "ps",
            "--quiet",
            "--filter",
            &format!("label=com.docker.swarm.service.name={name}_{service}"),
            "--filter",
            "health=healthy",
        ])
        .lines()
        .map(str::to_string)
        .collect()
    };
    let before: Vec<Vec<String>> = SERVICES.iter().map(|s| containers(s)).collect();
    let rotated = format!("{:032x}", fastrand::u128(..));
    sql_as_root(
        &socket,
        &format!("ALTER USER '{user}'@'%' IDENTIFIED BY '{rotated}'"),
    );
    aws.rt.block_on(async {
        aws.secrets
            .put_secret_value()
            .secret_id(&master_arn)
            .secret_string(format!(r#"{{"username":"{user}","password":"{rotated}"}}"#))
            .send()
            .await
            .unwrap();
    });
    let log = run(&sync_script);
    for (service, old) in SERVICES.iter().zip(&before) {
        assert!(
            log.contains(&format!(
                "rolling {name}_{service} onto the secret bookstore-{service}-db-"
            )),
            "{log}"
        );
        let used = docker_ok(&[
            "service",
            "inspect",
            "--format",
            "{{range .Spec.TaskTemplate.ContainerSpec.Secrets}}{{.SecretName}} {{end}}",
            &format!("{name}_{service}"),
        ]);
        assert!(
            used.contains(&format!("bookstore-{service}-db-"))
                && !used.contains(&format!("bookstore-{service}-db-v1")),
            "{service}: {used}"
        );
        wait_until(
            &format!("a healthy {service} task on the new password"),
            120,
            || {
                let now = containers(service);
                !now.is_empty() && now.iter().all(|c| !old.contains(c))
            },
        );
    }
    assert!(!log.contains(&rotated), "{log}");
    let secrets = docker_ok(&["secret", "ls", "--format", "{{.Name}}"]);
    assert!(
        !secrets.lines().any(|l| l.ends_with("-db-v1")),
        "the old secrets are removed: {secrets}"
    );
    let again = run(&sync_script);
    assert!(!again.contains("rolling"), "nothing more to roll: {again}");

    docker_ok(&["stack", "rm", name]);
    sql_as_root(&socket, &format!("DROP USER '{user}'@'%'"));
}
