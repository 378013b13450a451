//! The files bookstore renders for instances, taken from where AWS keeps them after a real `up`
//! (the builder's user-data, the launch template's user-data): shellcheck passes on every script,
//! systemd accepts the unit, and the unit's own commands, run with the environment the instance
//! user-data writes, start the app on loopback against MariaDB with the password fetched from
//! (emulated) Secrets Manager.

mod common;

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::web::{free_port, get, http, mariadb, register};
use common::{ENV, Moto, TempDir, decode_text, heredoc, shellcheck};

struct Rendered {
    /// The builder's user-data (templates/bake.sh).
    bake: String,
    /// The app instances' user-data (templates/user-data.sh).
    user_data: String,
}

/// `up`, then the two user-data scripts as AWS holds them.
fn rendered(moto: &Moto, dir: &Path) -> Rendered {
    moto.run(dir, &["up", "--stack", "asg", "--env", ENV]).ok();
    let aws = moto.aws();
    let builder = aws.builders()[0].instance_id().unwrap().to_string();
    aws.rt.block_on(async {
        let bake = aws.user_data_of(&builder).await;
        let user_data = decode_text(aws.launch_template_data().await.user_data().unwrap());
        Rendered { bake, user_data }
    })
}

#[test]
fn rendered_scripts_pass_shellcheck_and_systemd_accepts_the_unit() {
    let moto = Moto::start(0.0);
    let dir = TempDir::new("templates-lint");
    let r = rendered(&moto, dir.path());
    assert!(r.bake.contains("X-Amz-Signature="), "a presigned URL");
    shellcheck(dir.path(), "bake.sh", &r.bake);
    shellcheck(dir.path(), "user-data.sh", &r.user_data);
    let fetch = heredoc(&r.bake, "BOOKSTORE_FETCH_EOF");
    shellcheck(dir.path(), "fetch-db-secret", &fetch);

    let unit = heredoc(&r.bake, "BOOKSTORE_UNIT_EOF");
    if Command::new("systemd-analyze")
        .arg("--version")
        .output()
        .is_err()
    {
        eprintln!(
            "systemd-analyze is not on this machine: the unit is checked by shellcheck'd scripts only"
        );
        return;
    }
    // verify wants the executables to exist: point them into the test directory.
    let root = dir.path().join("root");
    for exe in [
        "/usr/local/bin/bookstore-app",
        "/usr/local/libexec/bookstore/fetch-db-secret",
    ] {
        let path = root.join(exe.trim_start_matches('/'));
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, "#!/bin/sh\n").unwrap();
        make_executable(&path);
    }
    let relocate = |text: &str| {
        text.replace(
            "/usr/local/bin/",
            &format!("{}/usr/local/bin/", root.display()),
        )
        .replace(
            "/usr/local/libexec/",
            &format!("{}/usr/local/libexec/", root.display()),
        )
    };
    let unit_path = dir.path().join("bookstore.service");
    std::fs::write(&unit_path, relocate(&unit)).unwrap();
    // The credentials refresh (a timer and its service) beside it, and the split's two units.
    let mut paths = vec![unit_path];
    for (name, marker) in [
        ("bookstore-secret.service", "BOOKSTORE_SECRET_UNIT_EOF"),
        ("bookstore-secret.timer", "BOOKSTORE_SECRET_TIMER_EOF"),
        ("bookstore-split.service", "BOOKSTORE_SPLIT_SETUP_EOF"),
        ("bookstore@catalog.service", "BOOKSTORE_SPLIT_UNIT_EOF"),
    ] {
        let path = dir.path().join(name);
        std::fs::write(&path, relocate(&heredoc(&r.bake, marker))).unwrap();
        paths.push(path);
    }
    let out = Command::new("systemd-analyze")
        .args(["verify", "--man=no"])
        .args(&paths)
        .output()
        .unwrap();
    let complaints = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && complaints.trim().is_empty(),
        "systemd-analyze verify:\n{complaints}"
    );
}

fn make_executable(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

/// The value of `Key=` in the unit.
fn directive<'a>(unit: &'a str, key: &str) -> &'a str {
    unit.lines()
        .find_map(|l| l.strip_prefix(&format!("{key}=")))
        .unwrap_or_else(|| panic!("the unit has no {key}="))
}

/// What the instance's scripts need to call the emulator with the AWS CLI (from .venv), as the
/// instance profile lets them call AWS.
fn aws_env(moto: &Moto, dir: &Path) -> impl Fn(&mut Command) {
    let venv_bin = Path::new(env!("CARGO_MANIFEST_DIR")).join(".venv/bin");
    let path_var = format!(
        "{}:{}",
        venv_bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let (url, none) = (moto.url.clone(), dir.join("none"));
    move |cmd: &mut Command| {
        cmd.env("PATH", &path_var)
            .env("AWS_ACCESS_KEY_ID", "test")
            .env("AWS_SECRET_ACCESS_KEY", "test")
            .env("AWS_SESSION_TOKEN", "test")
            .env("AWS_ENDPOINT_URL", &url)
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .env("AWS_CONFIG_FILE", &none)
            .env("AWS_SHARED_CREDENTIALS_FILE", &none);
    }
}

/// A database secret in the JSON shape RDS keeps it, with the test server's credentials (from
/// its URL); returns its ARN.
fn db_secret(aws_env: &impl Fn(&mut Command), mysql: &str, name: &str) -> String {
    let (user, password) = mysql
        .trim_start_matches("mysql://")
        .split_once('@')
        .unwrap()
        .0
        .split_once(':')
        .unwrap();
    let mut create = Command::new("aws");
    aws_env(&mut create);
    let created = create
        .args([
            "secretsmanager",
            "create-secret",
            "--region",
            "us-east-1",
            "--name",
            name,
            "--query",
            "ARN",
            "--output",
            "text",
            "--secret-string",
            &format!(r#"{{"username":"{user}","password":"{password}"}}"#),
        ])
        .output()
        .unwrap();
    assert!(
        created.status.success(),
        "{}",
        String::from_utf8_lossy(&created.stderr)
    );
    String::from_utf8_lossy(&created.stdout).trim().to_string()
}

#[test]
fn the_units_commands_start_the_app_against_mariadb_with_the_secret_from_secrets_manager() {
    let mysql = std::env::var("BOOKSTORE_TEST_MYSQL_URL").unwrap_or_else(|_| {
        panic!("BOOKSTORE_TEST_MYSQL_URL is not set: run scripts/test.sh, which starts MariaDB")
    });
    let moto = Moto::start(0.0);
    let dir = TempDir::new("templates-run");
    let r = rendered(&moto, dir.path());
    let aws_env = aws_env(&moto, dir.path());
    let secret_arn = db_secret(&aws_env, &mysql, "rds!db-test");
    mariadb(
        &mysql,
        "DROP DATABASE IF EXISTS bookstore; CREATE DATABASE bookstore CHARACTER SET utf8mb4",
    );

    // The instance user-data as rendered, with this machine's values and paths: it writes the
    // environment file the unit reads.
    let etc = dir.path().join("etc");
    let uploads = dir.path().join("uploads");
    std::fs::create_dir_all(&etc).unwrap();
    std::fs::create_dir_all(&uploads).unwrap();
    let port = free_port();
    let mysql_host = mysql
        .rsplit_once('@')
        .unwrap()
        .1
        .trim_end_matches('/')
        .to_string();
    let mut script = String::new();
    for line in r.user_data.lines() {
        let replaced = if line.starts_with("db_endpoint=") {
            format!("db_endpoint='{mysql_host}'")
        } else if line.starts_with("db_secret_arn=") {
            format!("db_secret_arn='{secret_arn}'")
        } else if line.starts_with("file_system_id=") {
            "file_system_id=''".to_string()
        } else if line.starts_with("app_port=") {
            format!("app_port='{port}'")
        } else if line.trim_start().starts_with("chgrp ")
            || line.trim_start().starts_with("systemctl ")
        {
            continue; // no bookstore group or systemd here
        } else {
            line.replace("/etc/bookstore", &etc.display().to_string())
                .replace("/var/lib/bookstore/uploads", &uploads.display().to_string())
        };
        script.push_str(&replaced);
        script.push('\n');
    }
    // The image carries RDS's CA bundle there; here it is the test server's CA.
    let ca = std::env::var("BOOKSTORE_TEST_MYSQL_CA").unwrap_or_else(|_| {
        panic!(
            "BOOKSTORE_TEST_MYSQL_CA is not set: run scripts/test.sh, which starts MariaDB with TLS"
        )
    });
    std::fs::copy(&ca, etc.join("rds-ca.pem")).unwrap();
    let status = Command::new("bash")
        .arg("-c")
        .arg(&script)
        .status()
        .unwrap();
    assert!(status.success(), "user-data failed:\n{script}");
    let env_file = std::fs::read_to_string(etc.join("bookstore.env")).unwrap();
    // Credentials come from the secret at start, never from this file.
    assert!(
        !env_file.to_lowercase().contains("password") && !env_file.contains('@'),
        "{env_file}"
    );

    // The unit's commands, as systemd would run them: EnvironmentFile, ExecStartPre, ExecStart,
    // with RuntimeDirectory=/run/bookstore moved into the test directory.
    let unit = heredoc(&r.bake, "BOOKSTORE_UNIT_EOF");
    assert_eq!(
        directive(&unit, "EnvironmentFile"),
        "/etc/bookstore/bookstore.env"
    );
    let run_dir = dir.path().join("run");
    std::fs::create_dir_all(&run_dir).unwrap();
    let relocate = |s: &str| s.replace("/run/bookstore", &run_dir.display().to_string());
    let vars: Vec<(String, String)> = env_file
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), relocate(v)))
        .collect();
    let fetch_path = dir.path().join("fetch-db-secret");
    std::fs::write(&fetch_path, heredoc(&r.bake, "BOOKSTORE_FETCH_EOF")).unwrap();
    make_executable(&fetch_path);
    let app_path: PathBuf =
        Path::new(env!("CARGO_BIN_EXE_bookstore")).with_file_name("bookstore-app");
    let command = |line: &str| -> Command {
        let line = relocate(line)
            .replace(
                "/usr/local/libexec/bookstore/fetch-db-secret",
                &fetch_path.display().to_string(),
            )
            .replace(
                "/usr/local/bin/bookstore-app",
                &app_path.display().to_string(),
            );
        let mut words = line.split_whitespace();
        let mut cmd = Command::new(words.next().unwrap());
        cmd.args(words).env_clear().envs(vars.iter().cloned());
        aws_env(&mut cmd);
        cmd.current_dir(dir.path());
        cmd
    };
    let pre = command(directive(&unit, "ExecStartPre")).output().unwrap();
    assert!(
        pre.status.success(),
        "ExecStartPre: {}",
        String::from_utf8_lossy(&pre.stderr)
    );
    let secret_file = run_dir.join("db-secret.json");
    let mode = {
        use std::os::unix::fs::PermissionsExt;
        std::fs::metadata(&secret_file)
            .unwrap()
            .permissions()
            .mode()
            & 0o777
    };
    assert_eq!(mode, 0o600, "the secret is readable by the app only");

    let mut app = command(directive(&unit, "ExecStart"))
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let start = Instant::now();
    let health = loop {
        if let Some(r) = get(port, "/healthz") {
            break r;
        }
        if let Ok(Some(exit)) = app.try_wait() {
            let mut err = String::new();
            app.stderr.take().unwrap().read_to_string(&mut err).unwrap();
            panic!("the app exited ({exit}):\n{err}");
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "the app never listened"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    let home = get(port, "/");
    app.kill().unwrap();
    app.wait().unwrap();
    assert_eq!(health.0, 200, "{}", health.1);
    assert_eq!(home.map(|h| h.0), Some(200));
    // It migrated MariaDB's `bookstore` database: the wiring reached the real server.
    let tables = mariadb(&mysql, "SHOW TABLES FROM bookstore");
    assert!(tables.lines().any(|t| t == "books"), "{tables}");

    // The server's certificate is checked: with another CA in its place the app refuses to start.
    let stranger = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_string()]).unwrap();
    std::fs::write(etc.join("rds-ca.pem"), stranger.cert.pem()).unwrap();
    let mut refused = command(directive(&unit, "ExecStart"))
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let start = Instant::now();
    let exit = loop {
        if let Some(exit) = refused.try_wait().unwrap() {
            break exit;
        }
        if start.elapsed() > Duration::from_secs(60) {
            refused.kill().unwrap();
            panic!("the app kept running against a server it cannot verify");
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let mut err = String::new();
    refused
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    assert!(!exit.success(), "{err}");
    assert!(
        err.to_lowercase().contains("certificate") || err.to_lowercase().contains("tls"),
        "{err}"
    );
}

/// The split on an instance, for real: the user-data of an `app.services: split` stack writes
/// the machine's and each service's environment; bookstore-split.service's commands fetch the
/// master secret and make three databases and users on MariaDB; the three units' commands start
/// the services, which answer their health (peers included), share identities, and cannot read
/// each other's tables.
#[test]
fn the_split_units_make_three_databases_and_start_three_services_that_work_together() {
    let mysql = std::env::var("BOOKSTORE_TEST_MYSQL_URL").unwrap_or_else(|_| {
        panic!("BOOKSTORE_TEST_MYSQL_URL is not set: run scripts/test.sh, which starts MariaDB")
    });
    let ca = std::env::var("BOOKSTORE_TEST_MYSQL_CA").unwrap_or_else(|_| {
        panic!(
            "BOOKSTORE_TEST_MYSQL_CA is not set: run scripts/test.sh, which starts MariaDB with TLS"
        )
    });
    let moto = Moto::start(0.0);
    let dir = TempDir::new("templates-split");
    dir.write(
        "split.yaml",
        "version: 1\nname: split\nkind: asg\napp:\n  services: split\n",
    );
    moto.run(dir.path(), &["up", "--stack", "split.yaml", "--env", ENV])
        .ok();
    let aws = moto.aws();
    let builder = aws.builders()[0].instance_id().unwrap().to_string();
    let (bake, user_data) = aws.rt.block_on(async {
        (
            aws.user_data_of(&builder).await,
            decode_text(
                aws.launch_template_data_of("split")
                    .await
                    .user_data()
                    .unwrap(),
            ),
        )
    });
    shellcheck(dir.path(), "user-data-split.sh", &user_data);

    let aws_env = aws_env(&moto, dir.path());
    // The master secret as RDS keeps it: the test server's privileged user.
    let secret_arn = db_secret(&aws_env, &mysql, "rds!db-split");
    for service in ["accounts", "catalog", "orders"] {
        mariadb(
            &mysql,
            &format!(
                "DROP DATABASE IF EXISTS bookstore_{service}; DROP USER IF EXISTS 'bookstore_{service}'@'%'"
            ),
        );
    }
    mariadb(&mysql, "DROP DATABASE IF EXISTS bookstore_split");

    // The user-data with this machine's values: free ports for the three services.
    let etc = dir.path().join("etc");
    let uploads = dir.path().join("uploads");
    std::fs::create_dir_all(&etc).unwrap();
    std::fs::create_dir_all(&uploads).unwrap();
    std::fs::copy(&ca, etc.join("rds-ca.pem")).unwrap();
    let ports: Vec<(&str, u16, u16)> = ["accounts", "catalog", "orders"]
        .into_iter()
        .map(|s| (s, free_port(), free_port()))
        .collect();
    let split_line = ports
        .iter()
        .map(|(s, p, i)| format!("{s}:{p}:{i}"))
        .collect::<Vec<_>>()
        .join(" ");
    let mysql_host = mysql
        .rsplit_once('@')
        .unwrap()
        .1
        .trim_end_matches('/')
        .to_string();
    let mut script = String::new();
    let mut saw_split = false;
    for line in user_data.lines() {
        let replaced = if line.starts_with("db_endpoint=") {
            format!("db_endpoint='{mysql_host}'")
        } else if line.starts_with("db_secret_arn=") {
            format!("db_secret_arn='{secret_arn}'")
        } else if line.starts_with("file_system_id=") {
            "file_system_id=''".to_string()
        } else if line.starts_with("split_services=") {
            saw_split = true;
            format!("split_services='{split_line}'")
        } else if line.trim_start().starts_with("chgrp ")
            || line.trim_start().starts_with("systemctl ")
        {
            continue; // no bookstore group or systemd here
        } else {
            line.replace("/etc/bookstore", &etc.display().to_string())
                .replace("/var/lib/bookstore/uploads", &uploads.display().to_string())
        };
        script.push_str(&replaced);
        script.push('\n');
    }
    assert!(saw_split);
    let status = Command::new("bash")
        .arg("-c")
        .arg(&script)
        .status()
        .unwrap();
    assert!(status.success(), "user-data failed:\n{script}");
    for file in ["bookstore.env", "accounts.env", "catalog.env", "orders.env"] {
        let text = std::fs::read_to_string(etc.join(file)).unwrap();
        assert!(
            !text.to_lowercase().contains("password") && !text.contains('@'),
            "{file}: {text}"
        );
    }

    let run_dir = dir.path().join("run");
    std::fs::create_dir_all(&run_dir).unwrap();
    let relocate = |s: &str| s.replace("/run/bookstore", &run_dir.display().to_string());
    let env_of = |files: &[&str]| -> Vec<(String, String)> {
        let mut vars: BTreeMap<String, String> = BTreeMap::new();
        for f in files {
            for line in std::fs::read_to_string(etc.join(f)).unwrap().lines() {
                if let Some((k, v)) = line.split_once('=') {
                    vars.insert(k.to_string(), relocate(v));
                }
            }
        }
        vars.into_iter().collect()
    };
    let fetch_path = dir.path().join("fetch-db-secret");
    std::fs::write(&fetch_path, heredoc(&bake, "BOOKSTORE_FETCH_EOF")).unwrap();
    make_executable(&fetch_path);
    let app_path: PathBuf =
        Path::new(env!("CARGO_BIN_EXE_bookstore")).with_file_name("bookstore-app");
    let command = |line: &str, vars: &[(String, String)]| -> Command {
        let line = relocate(line)
            .replace(
                "/usr/local/libexec/bookstore/fetch-db-secret",
                &fetch_path.display().to_string(),
            )
            .replace(
                "/usr/local/bin/bookstore-app",
                &app_path.display().to_string(),
            );
        let mut words = line.split_whitespace();
        let mut cmd = Command::new(words.next().unwrap());
        cmd.args(words).env_clear().envs(vars.iter().cloned());
        aws_env(&mut cmd);
        cmd.current_dir(dir.path());
        cmd
    };

    // A service started before its set-up (the units only want it) exits with the reason, and
    // systemd starts it again until the files are there.
    let unit = heredoc(&bake, "BOOKSTORE_SPLIT_UNIT_EOF");
    assert_eq!(directive(&unit, "Restart"), "on-failure");
    let early = command(
        directive(&unit, "ExecStart"),
        &env_of(&["bookstore.env", "catalog.env"]),
    )
    .output()
    .unwrap();
    let why = String::from_utf8_lossy(&early.stderr);
    assert!(
        !early.status.success() && why.contains("BOOKSTORE_DB_SECRET_FILE"),
        "{why}"
    );

    // bookstore-split.service: the master secret, then the databases, users and files.
    let setup_unit = heredoc(&bake, "BOOKSTORE_SPLIT_SETUP_EOF");
    let machine = env_of(&["bookstore.env"]);
    for key in ["ExecStartPre", "ExecStart"] {
        let out = command(directive(&setup_unit, key), &machine)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{key}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let split_dir = run_dir.join("split");
    for file in [
        "internal-key",
        "identity-key",
        "accounts-db.json",
        "catalog-db.json",
        "orders-db.json",
    ] {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(split_dir.join(file))
            .unwrap_or_else(|e| panic!("{file}: {e}"))
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "{file}");
    }
    // Again (the secret timer runs it every 2 minutes): nothing changes.
    let again = command(directive(&setup_unit, "ExecStart"), &machine)
        .output()
        .unwrap();
    let again_text = String::from_utf8_lossy(&again.stdout);
    assert!(
        again.status.success() && !again_text.contains("wrote"),
        "{again_text}"
    );

    // The three units' commands, each with the machine's then its own environment.
    let mut services = Vec::new();
    for (service, _, _) in &ports {
        let vars = env_of(&["bookstore.env", &format!("{service}.env")]);
        let child = command(directive(&unit, "ExecStart"), &vars)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        services.push(child);
    }
    struct Stop(Vec<std::process::Child>);
    impl Drop for Stop {
        fn drop(&mut self) {
            for c in &mut self.0 {
                let _ = c.kill();
                let _ = c.wait();
            }
        }
    }
    let mut services = Stop(services);
    let port_of = |name: &str| ports.iter().find(|(s, _, _)| *s == name).unwrap().1;
    let start = Instant::now();
    for (service, port, _) in &ports {
        loop {
            if let Some((200, _)) = get(*port, "/healthz") {
                break;
            }
            for (i, c) in services.0.iter_mut().enumerate() {
                if let Ok(Some(exit)) = c.try_wait() {
                    let mut err = String::new();
                    c.stderr.take().unwrap().read_to_string(&mut err).unwrap();
                    panic!("{} exited ({exit}):\n{err}", ports[i].0);
                }
            }
            assert!(
                start.elapsed() < Duration::from_secs(60),
                "{service} never became healthy: {:?}",
                get(*port, "/healthz")
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    // Each serves its paths; an identity made by accounts is honoured by catalog.
    let cookies = register(port_of("accounts"));
    let (anonymous, _, _) = http(port_of("catalog"), "GET", "/sell", "", "");
    let (known, head, _) = http(port_of("catalog"), "GET", "/sell", &cookies, "");
    assert_eq!(
        (anonymous, known),
        (303, 200),
        "catalog knows who registered at accounts: {head}"
    );
    let (orders, _, body) = http(port_of("orders"), "GET", "/orders", &cookies, "");
    assert_eq!(orders, 200, "{body}");

    // Each service has its own database and user, and the database refuses the others'.
    let schemas = mariadb(&mysql, "SHOW DATABASES LIKE 'bookstore\\_%'");
    for service in ["accounts", "catalog", "orders"] {
        assert!(
            schemas.lines().any(|l| l == format!("bookstore_{service}")),
            "{schemas}"
        );
    }
    let creds: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(split_dir.join("catalog-db.json")).unwrap())
            .unwrap();
    let host = mysql_host.split_once(':').unwrap();
    let denied = Command::new("mariadb")
        .args(["-h", host.0, "-P", host.1, "-u"])
        .arg(creds["username"].as_str().unwrap())
        .args(["-N", "-e", "SELECT COUNT(*) FROM bookstore_accounts.users"])
        .env("MYSQL_PWD", creds["password"].as_str().unwrap())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&denied.stderr);
    assert!(
        !denied.status.success() && err.contains("denied"),
        "catalog's user read accounts' table: {err}"
    );
    // The keys are kept where only the master account reads them.
    let keys = Command::new("mariadb")
        .args(["-h", host.0, "-P", host.1, "-u"])
        .arg(creds["username"].as_str().unwrap())
        .args(["-N", "-e", "SELECT value FROM bookstore_split.split_keys"])
        .env("MYSQL_PWD", creds["password"].as_str().unwrap())
        .output()
        .unwrap();
    assert!(
        !keys.status.success(),
        "catalog's user read the split's keys"
    );
    let kept = mariadb(
        &mysql,
        "SELECT value FROM bookstore_split.split_keys WHERE name = 'internal'",
    );
    assert_eq!(
        kept.trim(),
        std::fs::read_to_string(split_dir.join("internal-key"))
            .unwrap()
            .trim()
    );
    let own = Command::new("mariadb")
        .args(["-h", host.0, "-P", host.1, "-u"])
        .arg(creds["username"].as_str().unwrap())
        .args(["-N", "-e", "SELECT COUNT(*) FROM bookstore_catalog.books"])
        .env("MYSQL_PWD", creds["password"].as_str().unwrap())
        .output()
        .unwrap();
    assert!(
        own.status.success(),
        "{}",
        String::from_utf8_lossy(&own.stderr)
    );
}
