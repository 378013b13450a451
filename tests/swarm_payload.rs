//! The swarm payload on a real Docker engine (Debian's docker.io, a private dockerd started by the
//! test command): the app's image built by the rendered `bookstore-build-image` from the app binary
//! (nothing pulled: there is no registry), the rendered stack file deployed on a single-node swarm,
//! the replicas healthy through the app's own probe, a killed container replaced, the database
//! credentials reaching the app as a swarm secret (it migrates MariaDB with them) without showing in
//! `docker inspect`, and a rolling update (start-first) under load, its failed requests counted.
//!
//! This kernel has no IPVS, so the routing mesh and the service VIP do not answer here: the test
//! adapts the rendered stack to DNS round robin without a published port and reaches the service
//! from a probe task (busybox's shell running curl, imported from this machine's binaries) on the
//! stack's network. What that
//! leaves untested: `mode: ingress` publishing and the VIP the load balancer's traffic goes through.

mod common;

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use common::{
    ENV, Moto, TempDir, adapt, docker, docker_ok, heredoc, probe_image, sql_as_root, wait_until,
};

/// The ARN of the stack's swarm secret `swarm-<what>`.
fn secret_arn(aws: &common::Aws, what: &str) -> String {
    let name = format!("bs-{ENV}-swarm-swarm-{what}");
    aws.rt.block_on(async {
        let list = aws.secrets.list_secrets().send().await.unwrap();
        list.secret_list()
            .iter()
            .find(|s| s.name() == Some(name.as_str()))
            .and_then(|s| s.arn())
            .unwrap_or_else(|| panic!("no secret {name}"))
            .to_string()
    })
}

/// PATH with the AWS CLI of the emulator's virtualenv first (the nodes' `aws`).
fn aws_cli_path() -> String {
    format!(
        "{}:{}",
        common::manifest_dir().join(".venv/bin").display(),
        std::env::var("PATH").unwrap_or_default()
    )
}

/// The load balancer's view, from inside the stack's network: every request is a new curl, so it
/// resolves the service anew and opens a new connection, ~20 a second, as a target group's traffic
/// reaches whichever tasks are in the service's DNS at that moment.
/// A failure says what curl saw: the HTTP status (000: none) and curl's exit code (7: refused,
/// 28: timed out). A request fails when it gets no 200 within 5 s: a task that is gone still fails
/// it (its address drops the connection, which hangs to the timeout), a reply slower than 2 s
/// under CI's load (the emulator suites run beside this one) does not. With 2 s, one request in
/// ~1,430 timed out (no refusal) in two CI runs of three.
const PROBE: &str = "while true; do \
    code=$(/usr/bin/curl -s -o /dev/null -w '%{http_code}' --max-time 5 http://app:8080/healthz); \
    rc=$?; if [ \"$code\" = 200 ]; then echo ok; else echo \"failed $code $rc\"; fi; \
    /bin/busybox usleep 30000; done";

/// Healthy tasks of the service: container ids.
fn healthy(service: &str) -> Vec<String> {
    let out = docker_ok(&[
        "ps",
        "-q",
        "--filter",
        &format!("label=com.docker.swarm.service.name={service}"),
        "--filter",
        "health=healthy",
    ]);
    let mut ids: Vec<String> = out.lines().map(str::to_string).collect();
    ids.sort();
    ids
}

#[test]
fn the_rendered_stack_runs_on_a_real_swarm_keeps_its_replicas_and_rolls_a_new_app_from_the_cli() {
    let Ok(_) = std::env::var("BOOKSTORE_TEST_DOCKER_HOST") else {
        panic!(
            "BOOKSTORE_TEST_DOCKER_HOST is not set: run scripts/test.sh, which starts a private dockerd (scripts/docker.sh)"
        );
    };
    let socket = std::env::var("BOOKSTORE_TEST_MYSQL_SOCKET")
        .expect("BOOKSTORE_TEST_MYSQL_SOCKET: run scripts/test.sh, which starts MariaDB");
    let moto = Moto::start(0.0);
    let dir = TempDir::new("swarm-payload");
    moto.run(dir.path(), &["up", "--stack", "swarm", "--env", ENV])
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
    assert!(image.starts_with("bookstore.local/app:"), "{image}");

    // The image, as the bake builds it: from the binary, nothing pulled.
    let app = PathBuf::from(env!("CARGO_BIN_EXE_bookstore")).with_file_name("bookstore-app");
    let build = |binary: &PathBuf, tag: &str| {
        let host = std::env::var("BOOKSTORE_TEST_DOCKER_HOST").unwrap();
        let out = Command::new("bash")
            .arg(&build_image)
            .arg(binary)
            .arg(tag)
            .env("DOCKER_HOST", host)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "build-image: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    build(&app, &image);
    probe_image(&dir);
    // A fresh engine: the leader's bootstrap makes the swarm.
    let _ = docker(&["swarm", "leave", "--force"]);

    // The credentials: a database user of this test, its password only in the swarm secret.
    let name = format!("bs{}", std::process::id());
    let password = format!("{:032x}", fastrand::u128(..));
    sql_as_root(
        &socket,
        &format!(
            "CREATE DATABASE IF NOT EXISTS {name}; CREATE USER IF NOT EXISTS '{name}'@'localhost' IDENTIFIED BY '{password}'; GRANT ALL ON {name}.* TO '{name}'@'localhost'"
        ),
    );
    let secret = format!("{name}-db-credentials");
    let credentials = format!(r#"{{"username":"{name}","password":"{password}"}}"#);
    let db_secret_arn = aws.rt.block_on(async {
        let made = aws
            .secrets
            .create_secret()
            .name(format!("{name}-rds"))
            .secret_string(&credentials)
            .send()
            .await
            .unwrap();
        made.arn().unwrap().to_string()
    });

    // This machine's adaptations of the rendered file (see the module comment).
    let uploads = dir.path().join("uploads");
    std::fs::create_dir_all(&uploads).unwrap();
    let _ = Command::new("chown")
        .args(["10001:10001"])
        .arg(&uploads)
        .status();
    let ports = &stack
        [stack.find("    ports:\n").unwrap()..stack.find("    # The app's own probe").unwrap()]
        .to_string();
    adapt(&mut stack, ports, "");
    adapt(
        &mut stack,
        "    deploy:\n",
        "    deploy:\n      endpoint_mode: dnsrr\n",
    );
    let url_line = stack
        .lines()
        .find(|l| l.contains("DATABASE_URL"))
        .unwrap()
        .to_string();
    assert!(
        url_line.contains("ssl-mode=verify_identity"),
        "RDS over verified TLS: {url_line}"
    );
    adapt(
        &mut stack,
        &url_line,
        &format!("      DATABASE_URL: \"mysql://localhost/{name}?socket=/run/mysqld/mysqld.sock\""),
    );
    adapt(
        &mut stack,
        "source: /mnt/efs/uploads",
        &format!("source: {}", uploads.display()),
    );
    adapt(
        &mut stack,
        "        target: /data/uploads\n",
        &format!(
            "        target: /data/uploads\n      - type: bind\n        source: {socket}\n        target: /run/mysqld/mysqld.sock\n"
        ),
    );
    adapt(
        &mut stack,
        "name: bookstore-db-credentials-v1",
        &format!("name: {secret}"),
    );
    let stack_file = dir.write("stack.yml", &stack);

    // The node's own scripts from the bake (templates/swarm/node and sync), run here as the leader
    // runs them, against this engine and the emulator's secrets, with the settings its user-data
    // writes (plus this machine's paths and address).
    let script = |marker: &str, file: &str| dir.write(file, &heredoc(&bake, marker));
    let node_script = script("BOOKSTORE_NODE_EOF", "bookstore-swarm-node");
    let sync_script = script("BOOKSTORE_SYNC_EOF", "bookstore-swarm-sync");
    // Executable, as the bake installs it.
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&build_image, std::fs::Permissions::from_mode(0o755)).unwrap();
    let arn = |what: &str| secret_arn(&aws, what);
    let service = format!("{name}_app");
    let settings = dir.write(
        "swarm.env",
        &[
            "node=leader".to_string(),
            "key=manager-1".into(),
            "region=us-east-1".into(),
            format!("tokens_secret_arn={}", arn("tokens")),
            format!("release_secret_arn={}", arn("release")),
            format!("status_secret_arn={}", arn("status")),
            format!("db_secret_arn={db_secret_arn}"),
            format!("secret_name={secret}"),
            "file_system_id=".into(),
            format!("uploads={}", uploads.display()),
            format!("stack_file={}", stack_file.display()),
            format!("stack_name={name}"),
            "advertise_address=127.0.0.1".into(),
            format!("service={service}"),
            format!("build_image={}", build_image.display()),
            format!("state_dir={}", dir.path().join("sync-state").display()),
        ]
        .join("\n"),
    );
    let run = |script: &PathBuf| {
        let out = Command::new("bash")
            .arg(script)
            .env("BOOKSTORE_SWARM_ENV", &settings)
            .env(
                "DOCKER_HOST",
                std::env::var("BOOKSTORE_TEST_DOCKER_HOST").unwrap(),
            )
            .env("PATH", aws_cli_path())
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
    assert!(log.contains("swarm initialised, stack deployed"), "{log}");
    assert!(!log.contains("SWMTKN") && !log.contains(&password), "{log}");
    // The join tokens went to the token store, and only there; the leader marked itself.
    let tokens_arn = arn("tokens");
    let tokens: serde_json::Value = serde_json::from_str(&aws.rt.block_on(async {
        let v = aws
            .secrets
            .get_secret_value()
            .secret_id(&tokens_arn)
            .send()
            .await
            .unwrap();
        v.secret_string().unwrap().to_string()
    }))
    .unwrap();
    for role in ["manager", "worker"] {
        assert_eq!(
            tokens[role].as_str().unwrap(),
            docker_ok(&["swarm", "join-token", "-q", role]).trim()
        );
    }
    assert_eq!(tokens["address"], "127.0.0.1:2377");
    let label = docker_ok(&[
        "node",
        "inspect",
        "self",
        "--format",
        "{{index .Spec.Labels \"bookstore.key\"}}",
    ]);
    assert_eq!(label.trim(), "manager-1");
    assert!(run(&node_script).contains("already in the swarm"));
    wait_until("5 healthy replicas", 180, || {
        let n = healthy(&service).len();
        if n != 5 {
            let (_, ps) = docker(&["service", "ps", "--no-trunc", &service]);
            eprintln!("{n} healthy:\n{ps}");
        }
        n == 5
    });
    assert!(
        sql_as_root(&socket, &format!("SHOW TABLES FROM {name}")).contains("books"),
        "the app migrated with the secret's credentials"
    );
    let inspect = docker_ok(&["service", "inspect", &service]);
    assert!(
        !inspect.contains(&password),
        "the password is not in the service's definition"
    );
    let one = healthy(&service)[0].clone();
    assert!(!docker_ok(&["inspect", &one]).contains(&password));

    // A killed container is replaced.
    docker_ok(&["kill", &one]);
    wait_until("a replacement", 120, || {
        let now = healthy(&service);
        now.len() == 5 && !now.contains(&one)
    });

    // The leader's sync reports Docker's view, which the CLI's `status` shows.
    let sync = || run(&sync_script);
    sync();
    let swarm = |image: &str| {
        let status = moto
            .run(
                dir.path(),
                &[
                    "status", "--stack", "swarm", "--env", ENV, "--output", "json",
                ],
            )
            .ok()
            .json();
        let text = status.to_string();
        let sections = &status;
        let node = &sections["swarm_nodes"][0];
        assert_eq!(
            (
                node["role"].as_str(),
                node["state"].as_str(),
                node["availability"].as_str(),
                node["leader"].as_str()
            ),
            (Some("manager"), Some("ready"), Some("active"), Some("true")),
            "{text}"
        );
        let svc = &sections["swarm_service"][0];
        assert_eq!(svc["name"], service.as_str(), "{text}");
        (
            svc["image"].as_str() == Some(image) && svc["replicas"] == "5/5",
            text,
        )
    };
    let (now, text) = swarm(&image);
    assert!(now, "status shows the running image: {text}");

    // A new app through the CLI: `up` bakes it and writes the release; the nodes' sync downloads
    // the binary, builds the image and rolls the service (start-first) under load, counted from
    // inside the stack's network.
    let (new_app, bytes) = common::another_build(dir.path());
    moto.run(
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
    let next = format!(
        "bookstore.local/app:{}",
        &common::sha256_bytes(&bytes)[..12]
    );
    // (An engine kept from an earlier run may have it: this run must build it.)
    let _ = docker(&["rmi", "--force", &next]);
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
        PROBE,
    ]);
    std::thread::sleep(Duration::from_secs(3));
    let log = sync();
    assert!(log.contains(&format!("built {next}")), "{log}");
    assert!(
        log.contains(&format!("rolled {service} to {next}")),
        "{log}"
    );
    let updated = docker_ok(&[
        "service",
        "inspect",
        "--format",
        "{{.Spec.TaskTemplate.ContainerSpec.Image}}",
        &service,
    ]);
    assert_eq!(updated.trim(), next);
    assert_eq!(healthy(&service).len(), 5);
    // The roll is over (the sync waited for it): two seconds more of traffic, then the count.
    std::thread::sleep(Duration::from_secs(2));
    let logs = docker_ok(&["service", "logs", "--raw", &probe]);
    let codes: Vec<&str> = logs
        .lines()
        .filter(|l| *l == "ok" || l.starts_with("failed"))
        .collect();
    let failures: Vec<&&str> = codes.iter().filter(|c| **c != "ok").collect();
    let failed = failures.len();
    eprintln!(
        "rolling update: {failed} of {} requests failed (a new connection and DNS lookup each; no IPVS here){}",
        codes.len(),
        if failures.is_empty() {
            String::new()
        } else {
            format!(": {failures:?} (HTTP status, curl's exit code)")
        }
    );
    assert!(codes.len() >= 500, "{} answers:\n{logs}", codes.len());
    assert_eq!(failed, 0, "requests failed during the roll");
    docker_ok(&["service", "rm", &probe]);
    sync();
    let (now, text) = swarm(&next);
    assert!(now, "status shows the new image: {text}");

    // RDS rotates the password: Docker secrets cannot change, so the sync makes a new one from the
    // new value and rolls the service onto it; the new tasks log in with the new password.
    // (One replica is enough to see the roll onto the new secret, in a fifth of the time.)
    docker_ok(&[
        "service",
        "scale",
        "--detach=false",
        &format!("{service}=1"),
    ]);
    wait_until("1 healthy task", 60, || healthy(&service).len() == 1);
    let before = healthy(&service);
    let rotated = format!("{:032x}", fastrand::u128(..));
    sql_as_root(
        &socket,
        &format!("ALTER USER '{name}'@'localhost' IDENTIFIED BY '{rotated}'"),
    );
    aws.rt.block_on(async {
        aws.secrets
            .put_secret_value()
            .secret_id(&db_secret_arn)
            .secret_string(format!(r#"{{"username":"{name}","password":"{rotated}"}}"#))
            .send()
            .await
            .unwrap();
    });
    let log = sync();
    assert!(
        log.contains(&format!("rolled {service} onto {secret}-")),
        "{log}"
    );
    assert!(!log.contains(&rotated), "{log}");
    let used = docker_ok(&[
        "service",
        "inspect",
        "--format",
        "{{range .Spec.TaskTemplate.ContainerSpec.Secrets}}{{.SecretName}}{{end}}",
        &service,
    ]);
    assert!(used.trim().starts_with(&format!("{secret}-")), "{used}");
    let secrets = docker_ok(&["secret", "ls", "--format", "{{.Name}}"]);
    assert!(
        !secrets.lines().any(|l| l == secret),
        "the old secret is removed: {secrets}"
    );
    wait_until("a healthy task on the new credentials", 120, || {
        let now = healthy(&service);
        now.len() == 1 && now.iter().all(|id| !before.contains(id))
    });
    assert!(!docker_ok(&["service", "inspect", &service]).contains(&rotated));
    let again = sync();
    assert!(!again.contains("rolling"), "nothing more to roll: {again}");

    // (scripts/docker.sh stop leaves the swarm, which removes whatever is left of it.)
    docker_ok(&["stack", "rm", &name]);
    sql_as_root(
        &socket,
        &format!("DROP DATABASE {name}; DROP USER '{name}'@'localhost'"),
    );
}
