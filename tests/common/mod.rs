//! Test world: a strict, slow moto (tests/harness/strict_moto.py) on a free 127.0.0.1 port per
//! test, the real `bookstore` binary run against it, and SDK clients to check what it made.

#![allow(dead_code)]

pub mod web;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

pub const ENV: &str = "t";

pub fn manifest_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn python() -> PathBuf {
    if let Some(p) = std::env::var_os("BOOKSTORE_TEST_PYTHON") {
        return PathBuf::from(p);
    }
    let venv = manifest_dir().join(".venv/bin/python");
    assert!(
        venv.exists(),
        "no moto virtualenv at {}: run `scripts/test.sh` (it installs moto), or set BOOKSTORE_TEST_PYTHON",
        venv.display()
    );
    venv
}

pub struct Moto {
    child: Child,
    pub port: u16,
    pub url: String,
    /// Where the emulated VMs answer their health check on their Elastic IPs (443 on AWS).
    pub health_port: u16,
}

impl Drop for Moto {
    /// Every request AWS would have refused (the harness checks each against AWS's API models and
    /// documented limits) fails the test that sent it, and is listed for the end of the run
    /// (`BOOKSTORE_HARNESS_VIOLATIONS`, which scripts/test.sh prints): no test can opt out.
    fn drop(&mut self) {
        let seen = self.violations();
        let _ = self.child.kill();
        let _ = self.child.wait();
        if seen.is_empty() {
            return;
        }
        let test = std::thread::current()
            .name()
            .unwrap_or("a test")
            .to_string();
        let lines: Vec<String> = seen
            .iter()
            .map(|v| {
                format!(
                    "{test}: {} {} [{}] {}: {}",
                    v["service"].as_str().unwrap_or_default(),
                    v["action"].as_str().unwrap_or_default(),
                    v["rule"].as_str().unwrap_or_default(),
                    v["code"].as_str().unwrap_or_default(),
                    v["message"].as_str().unwrap_or_default()
                )
            })
            .collect();
        if let Some(log) = std::env::var_os("BOOKSTORE_HARNESS_VIOLATIONS")
            && let Ok(mut f) = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(log)
        {
            let _ = f.write_all(format!("{}\n", lines.join("\n")).as_bytes());
        }
        if !std::thread::panicking() {
            panic!(
                "AWS would refuse {} request(s) this test sent:\n{}",
                lines.len(),
                lines.join("\n")
            );
        }
    }
}

pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    pub fn from(out: Output) -> Run {
        Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| {
            panic!(
                "stdout is not JSON ({e}):\n{}\nstderr:\n{}",
                self.stdout, self.stderr
            )
        })
    }

    #[track_caller]
    pub fn ok(self) -> Run {
        assert_eq!(
            self.code, 0,
            "expected success\nstdout:\n{}\nstderr:\n{}",
            self.stdout, self.stderr
        );
        self
    }
}

impl Moto {
    /// Starts the harness; `pending` seconds of provisioning for VPCs, subnets and load balancers.
    pub fn start(pending: f64) -> Moto {
        Moto::start_with(pending, &[])
    }

    /// As `start`, with extra environment for moto (e.g. MOTO_ACM_VALIDATION_WAIT).
    pub fn start_with(pending: f64, env: &[(&str, &str)]) -> Moto {
        let mut child = Command::new(python())
            .arg(manifest_dir().join("tests/harness/strict_moto.py"))
            .args(["--port", "0", "--pending-seconds", &pending.to_string()])
            .envs(env.iter().copied())
            .stdout(Stdio::piped())
            // BOOKSTORE_HARNESS_LOG=FILE keeps the harness's own errors (moto's tracebacks).
            .stderr(match std::env::var_os("BOOKSTORE_HARNESS_LOG") {
                Some(path) => std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(path)
                    .map(Stdio::from)
                    .unwrap_or_else(|_| Stdio::null()),
                None => Stdio::null(),
            })
            .spawn()
            .expect("start the moto harness");
        let mut out = BufReader::new(child.stdout.take().expect("stdout"));
        let mut value = |name: &str| -> u16 {
            let mut line = String::new();
            out.read_line(&mut line).expect("read the harness port");
            line.trim()
                .strip_prefix(name)
                .and_then(|p| p.parse().ok())
                .unwrap_or_else(|| panic!("harness said {line:?}, not {name}"))
        };
        let port = value("PORT=");
        let health_port = value("HEALTH_PORT=");
        Moto {
            child,
            port,
            url: format!("http://127.0.0.1:{port}"),
            health_port,
        }
    }

    fn http(&self, method: &str, path: &str, body: &str) -> String {
        self.try_http(method, path, body)
            .unwrap_or_else(|e| panic!("harness {method} {path}: {e}"))
    }

    fn try_http(&self, method: &str, path: &str, body: &str) -> std::io::Result<String> {
        let mut s = TcpStream::connect(("127.0.0.1", self.port))?;
        s.set_read_timeout(Some(Duration::from_secs(30))).ok();
        write!(
            s,
            "{method} {path} HTTP/1.0\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )?;
        let mut response = String::new();
        s.read_to_string(&mut response)?;
        Ok(response
            .split_once("\r\n\r\n")
            .map(|(_, b)| b.to_string())
            .unwrap_or_default())
    }

    /// Every AWS call the harness received, as (service, action).
    pub fn calls(&self) -> Vec<(String, String)> {
        self.call_log()
            .iter()
            .map(|c| {
                (
                    c["service"].as_str().unwrap_or_default().to_string(),
                    c["action"].as_str().unwrap_or_default().to_string(),
                )
            })
            .collect()
    }

    /// The harness's log of calls, each `{service, action, operation, checked, t}`.
    fn call_log(&self) -> Vec<serde_json::Value> {
        let v: serde_json::Value =
            serde_json::from_str(&self.http("GET", "/_harness/calls", "")).expect("calls JSON");
        v.as_array().expect("array").clone()
    }

    /// What each EKS cluster's fake API server holds: `{cluster: {objects, requests}}`.
    /// The harness's stand-in for ECR's registry endpoint: its requests, and the port of the
    /// registry behind it (for a test's dockerd to pull from).
    pub fn registry(&self) -> serde_json::Value {
        serde_json::from_str(&self.http("GET", "/_harness/registry", "")).expect("registry JSON")
    }

    pub fn kube(&self) -> serde_json::Value {
        serde_json::from_str(&self.http("GET", "/_harness/kube", "")).expect("kube JSON")
    }

    /// The requests AWS would refuse that the harness has seen (and answered as AWS does).
    pub fn violations(&self) -> Vec<serde_json::Value> {
        self.try_http("GET", "/_harness/violations", "")
            .ok()
            .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
            .and_then(|v| v.as_array().cloned())
            .unwrap_or_default()
    }

    /// Takes back the violations a rule test caused on purpose, one per `(action, rule)`, and
    /// returns what is left.
    pub fn take_violations(&self, expected: &[(&str, &str)]) -> Vec<serde_json::Value> {
        let body = serde_json::to_string(
            &expected
                .iter()
                .map(|(a, r)| serde_json::json!({"action": a, "rule": r}))
                .collect::<Vec<_>>(),
        )
        .unwrap();
        serde_json::from_str::<serde_json::Value>(&self.http(
            "DELETE",
            "/_harness/violations",
            &body,
        ))
        .ok()
        .and_then(|v| v.as_array().cloned())
        .unwrap_or_default()
    }

    pub fn clear_calls(&self) {
        self.http("DELETE", "/_harness/calls", "");
    }

    /// Calls that change something (anything but Describe/List/Get). The env lock's bookkeeping
    /// in the account's state bucket (`bookstore-state-…`: the bucket itself the first time, the
    /// lock's PUT and DELETE on every run) changes no resource and is left out; the env records
    /// there are not (a no-op `up` must not rewrite its record).
    pub fn mutating_calls(&self) -> Vec<String> {
        self.calls()
            .into_iter()
            .map(|(_, a)| a)
            .filter(|a| {
                !["Describe", "List", "Get", "Simulate", "GET ", "HEAD "]
                    .iter()
                    .any(|read| a.starts_with(read))
            })
            .filter(|a| !is_lock_bookkeeping(a))
            .collect()
    }

    pub fn count(&self, action: &str) -> usize {
        self.calls().iter().filter(|(_, a)| a == action).count()
    }

    /// Injects faults: `[{"action": "CreateSubnet", "code": "Throttling", "count": 3}]`.
    pub fn fault(&self, json: &str) {
        self.http("POST", "/_harness/faults", json);
    }

    pub fn clear_faults(&self) {
        self.http("DELETE", "/_harness/faults", "");
    }

    pub fn set_delays(&self, pending: f64, create_call: f64) {
        self.http(
            "POST",
            "/_harness/config",
            &format!("{{\"pending_seconds\": {pending}, \"create_call_seconds\": {create_call}}}"),
        );
    }

    /// `down --yes` succeeds and nothing of the test env is left in any service.
    pub fn down_leaves_nothing(&self, dir: &Path) {
        self.down_leaves_nothing_of(dir, "asg");
    }

    /// `down --yes` of `stack` succeeds and nothing of the test env is left in any service.
    pub fn down_leaves_nothing_of(&self, dir: &Path, stack: &str) {
        self.down_leaves_nothing_in(dir, stack, ENV);
    }

    /// `down --yes` of `stack` in `env` succeeds, nothing of the env is left in any service, and
    /// every call the harness received was read and checked against AWS's models.
    pub fn down_leaves_nothing_in(&self, dir: &Path, stack: &str, env: &str) {
        self.run(dir, &["down", "--stack", stack, "--env", env, "--yes"])
            .ok();
        let left = self.aws().everything(env);
        assert!(left.is_empty(), "{stack}: left after down: {left:?}");
        let unchecked = self.unchecked_calls();
        assert!(
            unchecked.is_empty(),
            "{stack}: calls the harness could not check against AWS's models: {unchecked:?}"
        );
    }

    /// Every call as IAM names the permission it needs (`ec2:RunInstances`, `s3:ListBucket` for a
    /// HeadBucket): the operation the harness read it as, under the service's IAM prefix (the
    /// signing name).
    pub fn iam_actions(&self) -> std::collections::BTreeSet<String> {
        self.call_log()
            .iter()
            .filter_map(|c| {
                let service = c["service"].as_str()?;
                let op = c["operation"].as_str()?;
                Some(iam_action(service, op))
            })
            .collect()
    }

    /// Calls the harness received but could not read as an AWS API call of a known model (so
    /// could not check): none, or the model check proves nothing.
    pub fn unchecked_calls(&self) -> Vec<String> {
        self.call_log()
            .iter()
            .filter(|c| c["checked"] == false)
            .map(|c| format!("{} {}", c["service"], c["action"]))
            .collect()
    }

    /// Changes the harness's runtime settings, e.g. `{"bake_seconds": 5, "bake_fails": true}`.
    pub fn configure(&self, json: &str) {
        self.http("POST", "/_harness/config", json);
    }

    /// The real binary, pointed at this harness only, working in `dir`.
    pub fn cli(&self, dir: &Path, args: &[&str]) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_bookstore"));
        cmd.current_dir(dir)
            .args(args)
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("AWS_ACCESS_KEY_ID", "test")
            .env("AWS_SECRET_ACCESS_KEY", "test")
            .env("AWS_SESSION_TOKEN", "test-session")
            .env("AWS_REGION", "us-east-1")
            .env("AWS_ENDPOINT_URL", &self.url)
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .env("AWS_CONFIG_FILE", dir.join("no-aws-config"))
            .env(
                "AWS_SHARED_CREDENTIALS_FILE",
                dir.join("no-aws-credentials"),
            )
            .env("NO_COLOR", "1")
            // The emulated VMs' proxies answer on this port of their Elastic IPs.
            .env("BOOKSTORE_HTTPS_PROBE_PORT", self.health_port.to_string())
            .env("BOOKSTORE_HTTP_PROBE_PORT", self.health_port.to_string())
            .stdin(Stdio::null());
        cmd
    }

    /// The CLI with RDS's CA bundle from a file (the machine has no internet): the test MariaDB's
    /// CA stands in for it (the eks stack bakes it into the app's image).
    pub fn cli_with_rds_ca(&self, dir: &Path, args: &[&str]) -> Command {
        let ca = std::env::var("BOOKSTORE_TEST_MYSQL_CA").expect(
            "BOOKSTORE_TEST_MYSQL_CA is not set: run scripts/test.sh, which starts MariaDB with its CA",
        );
        let mut cmd = self.cli(dir, args);
        cmd.env("BOOKSTORE_RDS_CA_BUNDLE", ca);
        cmd
    }

    pub fn run(&self, dir: &Path, args: &[&str]) -> Run {
        Run::from(self.cli(dir, args).output().expect("run bookstore"))
    }

    pub fn aws(&self) -> Aws {
        Aws::new(&self.url)
    }
}

/// A temporary working directory, removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(name: &str) -> TempDir {
        let dir = std::env::temp_dir().join(format!(
            "bookstore-test-{name}-{}-{}",
            std::process::id(),
            fastrand::u64(..)
        ));
        std::fs::create_dir_all(&dir).expect("temp dir");
        TempDir(dir)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }

    pub fn write(&self, name: &str, text: &str) -> PathBuf {
        self.write_bytes(name, text.as_bytes())
    }

    pub fn write_bytes(&self, name: &str, bytes: &[u8]) -> PathBuf {
        let p = self.0.join(name);
        std::fs::write(&p, bytes).expect("write file");
        p
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// SDK clients against the harness, for checking what the CLI made.
pub struct Aws {
    pub rt: tokio::runtime::Runtime,
    pub ec2: aws_sdk_ec2::Client,
    pub elb: aws_sdk_elasticloadbalancingv2::Client,
    pub acm: aws_sdk_acm::Client,
    pub rds: aws_sdk_rds::Client,
    pub efs: aws_sdk_efs::Client,
    pub asg: aws_sdk_autoscaling::Client,
    pub s3: aws_sdk_s3::Client,
    pub secrets: aws_sdk_secretsmanager::Client,
    pub iam: aws_sdk_iam::Client,
    pub eks: aws_sdk_eks::Client,
    pub ecr: aws_sdk_ecr::Client,
}

impl Aws {
    pub fn new(url: &str) -> Aws {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let conf = rt.block_on(
            aws_config::defaults(aws_config::BehaviorVersion::latest())
                .region(aws_config::Region::new("us-east-1"))
                .endpoint_url(url)
                .credentials_provider(aws_sdk_ec2::config::Credentials::new(
                    "test", "test", None, None, "test",
                ))
                .http_client(
                    aws_smithy_http_client::Builder::new()
                        .tls_provider(aws_smithy_http_client::tls::Provider::Rustls(
                            aws_smithy_http_client::tls::rustls_provider::CryptoMode::Ring,
                        ))
                        .build_https(),
                )
                .load(),
        );
        Aws {
            iam: aws_sdk_iam::Client::new(&conf),
            ec2: aws_sdk_ec2::Client::new(&conf),
            elb: aws_sdk_elasticloadbalancingv2::Client::new(&conf),
            acm: aws_sdk_acm::Client::new(&conf),
            rds: aws_sdk_rds::Client::new(&conf),
            efs: aws_sdk_efs::Client::new(&conf),
            asg: aws_sdk_autoscaling::Client::new(&conf),
            s3: aws_sdk_s3::Client::from_conf(
                aws_sdk_s3::config::Builder::from(&conf)
                    .force_path_style(true)
                    .build(),
            ),
            secrets: aws_sdk_secretsmanager::Client::new(&conf),
            eks: aws_sdk_eks::Client::new(&conf),
            ecr: aws_sdk_ecr::Client::new(&conf),
            rt,
        }
    }

    fn tag_filter(key: &str, value: &str) -> aws_sdk_ec2::types::Filter {
        aws_sdk_ec2::types::Filter::builder()
            .name(format!("tag:{key}"))
            .values(value)
            .build()
    }

    /// Every EC2 network resource tagged for this env, as "kind id".
    pub fn tagged_ec2(&self, env: &str) -> Vec<String> {
        self.rt.block_on(async {
            let f = || vec![Self::tag_filter("bookstore:env", env)];
            let mut left = Vec::new();
            for v in self
                .ec2
                .describe_vpcs()
                .set_filters(Some(f()))
                .send()
                .await
                .unwrap()
                .vpcs()
            {
                left.push(format!("vpc {}", v.vpc_id().unwrap()));
            }
            for s in self
                .ec2
                .describe_subnets()
                .set_filters(Some(f()))
                .send()
                .await
                .unwrap()
                .subnets()
            {
                left.push(format!("subnet {}", s.subnet_id().unwrap()));
            }
            for g in self
                .ec2
                .describe_security_groups()
                .set_filters(Some(f()))
                .send()
                .await
                .unwrap()
                .security_groups()
            {
                left.push(format!("sg {}", g.group_id().unwrap()));
            }
            for g in self
                .ec2
                .describe_internet_gateways()
                .set_filters(Some(f()))
                .send()
                .await
                .unwrap()
                .internet_gateways()
            {
                left.push(format!("igw {}", g.internet_gateway_id().unwrap()));
            }
            for r in self
                .ec2
                .describe_route_tables()
                .set_filters(Some(f()))
                .send()
                .await
                .unwrap()
                .route_tables()
            {
                left.push(format!("rtb {}", r.route_table_id().unwrap()));
            }
            for v in self
                .ec2
                .describe_volumes()
                .set_filters(Some(f()))
                .send()
                .await
                .unwrap()
                .volumes()
            {
                left.push(format!("volume {}", v.volume_id().unwrap()));
            }
            for a in self
                .ec2
                .describe_addresses()
                .set_filters(Some(f()))
                .send()
                .await
                .unwrap()
                .addresses()
            {
                left.push(format!("address {}", a.allocation_id().unwrap()));
            }
            left
        })
    }

    /// Load balancers, target groups and certificates that still exist (moto holds only ours).
    pub fn elb_and_acm(&self) -> Vec<String> {
        self.rt.block_on(async {
            let mut left = Vec::new();
            for lb in self
                .elb
                .describe_load_balancers()
                .send()
                .await
                .unwrap()
                .load_balancers()
            {
                left.push(format!("lb {}", lb.load_balancer_name().unwrap()));
            }
            for tg in self
                .elb
                .describe_target_groups()
                .send()
                .await
                .unwrap()
                .target_groups()
            {
                left.push(format!("tg {}", tg.target_group_name().unwrap()));
            }
            let includes = aws_sdk_acm::types::Filters::builder()
                .key_types(aws_sdk_acm::types::KeyAlgorithm::Rsa2048)
                .key_types(aws_sdk_acm::types::KeyAlgorithm::EcPrime256v1)
                .build();
            for c in self
                .acm
                .list_certificates()
                .includes(includes)
                .send()
                .await
                .unwrap()
                .certificate_summary_list()
            {
                left.push(format!("cert {}", c.certificate_arn().unwrap()));
            }
            left
        })
    }

    /// Databases, DB subnet groups, file systems and mount targets that still exist.
    pub fn rds_and_efs(&self) -> Vec<String> {
        self.rt.block_on(async {
            let mut left = Vec::new();
            for d in self
                .rds
                .describe_db_instances()
                .send()
                .await
                .unwrap()
                .db_instances()
            {
                left.push(format!("db {}", d.db_instance_identifier().unwrap()));
            }
            for g in self
                .rds
                .describe_db_subnet_groups()
                .send()
                .await
                .unwrap()
                .db_subnet_groups()
            {
                left.push(format!(
                    "db-subnet-group {}",
                    g.db_subnet_group_name().unwrap()
                ));
            }
            for f in self
                .efs
                .describe_file_systems()
                .send()
                .await
                .unwrap()
                .file_systems()
            {
                left.push(format!("efs {}", f.file_system_id()));
                for m in self
                    .efs
                    .describe_mount_targets()
                    .file_system_id(f.file_system_id())
                    .send()
                    .await
                    .unwrap()
                    .mount_targets()
                {
                    left.push(format!("mount-target {}", m.mount_target_id()));
                }
            }
            left
        })
    }

    /// Live instances, images and snapshots of this account, launch templates, Auto Scaling
    /// groups and buckets (moto holds only what the tests made).
    pub fn compute_and_storage(&self, env: &str) -> Vec<String> {
        self.rt.block_on(async {
            let mut left = Vec::new();
            let instances = self.ec2.describe_instances().send().await.unwrap();
            for i in instances.reservations().iter().flat_map(|r| r.instances()) {
                let state = i
                    .state()
                    .and_then(|s| s.name())
                    .map(|n| n.as_str().to_string());
                if state.as_deref() != Some("terminated") {
                    left.push(format!("instance {} {state:?}", i.instance_id().unwrap()));
                }
            }
            let images = self
                .ec2
                .describe_images()
                .owners("self")
                .send()
                .await
                .unwrap();
            for i in images.images() {
                left.push(format!("image {}", i.image_id().unwrap()));
            }
            let snapshots = self
                .ec2
                .describe_snapshots()
                .owner_ids("self")
                .send()
                .await
                .unwrap();
            // moto gives each of its public images a snapshot too; only those of an image made
            // here (CreateImage), or tagged by bookstore, count.
            for s in snapshots.snapshots() {
                let from_create_image = s
                    .description()
                    .is_some_and(|d| d.starts_with("Created by CreateImage"));
                let tagged = s.tags().iter().any(|t| t.key() == Some("bookstore:env"));
                if from_create_image || tagged {
                    left.push(format!("snapshot {}", s.snapshot_id().unwrap()));
                }
            }
            let templates = self.ec2.describe_launch_templates().send().await.unwrap();
            for t in templates.launch_templates() {
                left.push(format!(
                    "launch-template {}",
                    t.launch_template_name().unwrap()
                ));
            }
            let groups = self
                .asg
                .describe_auto_scaling_groups()
                .send()
                .await
                .unwrap();
            for g in groups.auto_scaling_groups() {
                left.push(format!("asg {}", g.auto_scaling_group_name().unwrap()));
            }
            let secrets = self.secrets.list_secrets().send().await.unwrap();
            // Ours only (bookstore's tags): RDS keeps its managed secrets itself.
            for s in secrets.secret_list() {
                if s.tags().iter().any(|t| t.key() == Some("bookstore:env")) {
                    left.push(format!("secret {}", s.name().unwrap()));
                }
            }
            let buckets = self.s3.list_buckets().send().await.unwrap();
            for b in buckets.buckets() {
                let name = b.name().unwrap();
                if !is_state_bucket(name) {
                    left.push(format!("bucket {name}"));
                    continue;
                }
                // The state bucket stays; this env's lock or record in it must not.
                let objects = self.s3.list_objects_v2().bucket(name).send().await.unwrap();
                for o in objects.contents() {
                    let key = o.key().unwrap();
                    if key.ends_with(&format!("/{env}.json")) {
                        left.push(format!("state object {key}"));
                    }
                }
            }
            left
        })
    }

    /// The name of the env's artifact bucket (the one bucket that is not the account's state).
    pub async fn artifact_bucket(&self) -> String {
        let buckets = self.s3.list_buckets().send().await.unwrap();
        buckets
            .buckets()
            .iter()
            .filter_map(|b| b.name())
            .find(|n| !is_state_bucket(n))
            .expect("an artifact bucket")
            .to_string()
    }

    /// The data of the stack's launch template (`bs-t-asg-lt`) in its default version.
    pub async fn launch_template_data(&self) -> aws_sdk_ec2::types::ResponseLaunchTemplateData {
        self.launch_template_data_of("asg").await
    }

    /// The data of this stack's launch template (`bs-t-<stack>-lt`) in its default version.
    pub async fn launch_template_data_of(
        &self,
        stack: &str,
    ) -> aws_sdk_ec2::types::ResponseLaunchTemplateData {
        let versions = self
            .ec2
            .describe_launch_template_versions()
            .launch_template_name(format!("bs-{ENV}-{stack}-lt"))
            .versions("$Default")
            .send()
            .await
            .unwrap();
        versions.launch_template_versions()[0]
            .launch_template_data()
            .unwrap()
            .clone()
    }

    /// An instance's user-data as text.
    /// The security group the CLI made for `key` (its `bookstore:key` tag), with its rules.
    pub async fn security_group_keyed(&self, key: &str) -> aws_sdk_ec2::types::SecurityGroup {
        let out = self
            .ec2
            .describe_security_groups()
            .filters(
                aws_sdk_ec2::types::Filter::builder()
                    .name("tag:bookstore:key")
                    .values(key)
                    .build(),
            )
            .send()
            .await
            .unwrap();
        out.security_groups()
            .first()
            .unwrap_or_else(|| panic!("no security group {key}"))
            .clone()
    }

    /// Each target's state in a target group, as the load balancer reports them.
    pub async fn target_states(&self, target_group_arn: &str) -> Vec<String> {
        let health = self
            .elb
            .describe_target_health()
            .target_group_arn(target_group_arn)
            .send()
            .await
            .unwrap();
        health
            .target_health_descriptions()
            .iter()
            .map(|d| {
                d.target_health()
                    .unwrap()
                    .state()
                    .unwrap()
                    .as_str()
                    .to_string()
            })
            .collect()
    }

    pub async fn user_data_of(&self, instance_id: &str) -> String {
        let attribute = self
            .ec2
            .describe_instance_attribute()
            .instance_id(instance_id)
            .attribute(aws_sdk_ec2::types::InstanceAttributeName::UserData)
            .send()
            .await
            .unwrap();
        decode_text(attribute.user_data().unwrap().value().unwrap())
    }

    /// The bake's builder instances (tag `bookstore:key=builder`), terminated ones included.
    pub fn builders(&self) -> Vec<aws_sdk_ec2::types::Instance> {
        self.instances_tagged("bookstore:key", "builder")
    }

    /// Instances with this tag, terminated ones included.
    pub fn instances_tagged(&self, key: &str, value: &str) -> Vec<aws_sdk_ec2::types::Instance> {
        self.rt.block_on(async {
            let out = self
                .ec2
                .describe_instances()
                .filters(Self::tag_filter(key, value))
                .send()
                .await
                .unwrap();
            out.reservations()
                .iter()
                .flat_map(|r| r.instances())
                .cloned()
                .collect()
        })
    }

    /// `n` instances started by hand (no bookstore tags) in the account: their ids.
    pub fn run_foreign_instances(&self, n: i32) -> Vec<String> {
        self.rt.block_on(async {
            let image = self
                .ec2
                .describe_images()
                .owners("amazon")
                .send()
                .await
                .unwrap()
                .images()[0]
                .image_id()
                .unwrap()
                .to_string();
            let out = self
                .ec2
                .run_instances()
                .image_id(image)
                .instance_type(aws_sdk_ec2::types::InstanceType::T3Micro)
                .min_count(n)
                .max_count(n)
                .send()
                .await
                .unwrap();
            out.instances()
                .iter()
                .map(|i| i.instance_id().unwrap().to_string())
                .collect()
        })
    }

    /// The id of the one instance with this tag.
    pub fn instance_tagged(&self, key: &str, value: &str) -> String {
        let found = self.instances_tagged(key, value);
        assert_eq!(found.len(), 1, "instances tagged {key}={value}: {found:?}");
        found[0].instance_id().unwrap().to_string()
    }

    pub fn everything(&self, env: &str) -> Vec<String> {
        let mut all = self.tagged_ec2(env);
        all.extend(self.elb_and_acm());
        all.extend(self.rds_and_efs());
        all.extend(self.compute_and_storage(env));
        all.extend(self.clusters_and_repositories());
        all
    }

    /// Every EKS cluster and ECR repository, as "kind name" (each test has its own emulator).
    pub fn clusters_and_repositories(&self) -> Vec<String> {
        self.rt.block_on(async {
            let mut all = Vec::new();
            let clusters = self.eks.list_clusters().send().await.expect("ListClusters");
            all.extend(clusters.clusters().iter().map(|c| format!("cluster {c}")));
            let repos = self
                .ecr
                .describe_repositories()
                .send()
                .await
                .expect("DescribeRepositories");
            all.extend(
                repos
                    .repositories()
                    .iter()
                    .map(|r| format!("repository {}", r.repository_name().unwrap_or_default())),
            );
            all
        })
    }
}

/// The IAM action behind an operation: the operation's name under the service's prefix, except
/// where IAM names S3's permissions otherwise.
pub fn iam_action(service: &str, operation: &str) -> String {
    let s3 = [
        ("HeadBucket", "ListBucket"),
        ("HeadObject", "GetObject"),
        ("ListObjectsV2", "ListBucket"),
        ("ListObjects", "ListBucket"),
        ("ListBuckets", "ListAllMyBuckets"),
        ("DeleteObjects", "DeleteObject"),
        ("GetBucketEncryption", "GetEncryptionConfiguration"),
        ("PutBucketEncryption", "PutEncryptionConfiguration"),
        ("GetPublicAccessBlock", "GetBucketPublicAccessBlock"),
        ("PutPublicAccessBlock", "PutBucketPublicAccessBlock"),
    ];
    let op = match service {
        "s3" => s3
            .iter()
            .find(|(o, _)| *o == operation)
            .map_or(operation, |(_, a)| a),
        _ => operation,
    };
    let prefix = if service == "tagging" { "tag" } else { service };
    format!("{prefix}:{op}")
}

/// A call on the state bucket that is not about an env record.
pub fn is_lock_bookkeeping(action: &str) -> bool {
    let Some((method, path)) = action.split_once(' ') else {
        return false;
    };
    let Some(rest) = path.strip_prefix("/bookstore-state-") else {
        return false;
    };
    ["PUT", "DELETE"].contains(&method) && !rest.contains("/envs/")
}

/// The account's state bucket (locks and env records), which `down` leaves in place.
pub fn is_state_bucket(name: &str) -> bool {
    name.starts_with("bookstore-state-")
}

/// Base64 (user-data as AWS returns it) to text.
/// User data back as text: base64, then gzip (as bookstore sends it, and cloud-init reads it).
pub fn decode_text(b64: &str) -> String {
    let bytes = aws_smithy_types::base64::decode(b64).unwrap();
    assert!(
        bytes.len() <= 16_384,
        "user data of {} bytes: AWS takes 16384 at most",
        bytes.len()
    );
    if bytes.starts_with(&[0x1f, 0x8b]) {
        let mut text = String::new();
        flate2::read::GzDecoder::new(&bytes[..])
            .read_to_string(&mut text)
            .expect("gzip user data");
        return text;
    }
    String::from_utf8(bytes).unwrap()
}

/// The sha256 of a file, as lower-case hex.
pub fn sha256_file(path: &Path) -> String {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    sha256_bytes(&bytes)
}

pub fn sha256_bytes(bytes: &[u8]) -> String {
    ring::digest::digest(&ring::digest::SHA256, bytes)
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The text of the quoted heredoc `<<'MARKER'` … `MARKER` in a script.
/// Runs a command that must succeed; its output (the failure shows its stderr).
#[track_caller]
pub fn run_ok(cmd: &mut Command) -> Output {
    let out = cmd.output().expect("run the command");
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Another build of the app (its bytes and the path of a copy in `dir`): the same binary with
/// bytes appended, so it has another sha256 and still runs.
pub fn another_build(dir: &Path) -> (PathBuf, Vec<u8>) {
    let mut bytes = std::fs::read(
        PathBuf::from(env!("CARGO_BIN_EXE_bookstore")).with_file_name("bookstore-app"),
    )
    .unwrap();
    bytes.extend_from_slice(b"\0another build");
    let path = dir.join("bookstore-app-next");
    std::fs::write(&path, &bytes).unwrap();
    (path, bytes)
}

/// The docker CLI against the private dockerd that scripts/test.sh starts: success and output.
pub fn docker(args: &[&str]) -> (bool, String) {
    let host = std::env::var("BOOKSTORE_TEST_DOCKER_HOST").expect(
        "BOOKSTORE_TEST_DOCKER_HOST is not set: run scripts/test.sh, which starts a private dockerd (scripts/docker.sh)",
    );
    let out = Command::new("docker")
        .env("DOCKER_HOST", host)
        .args(args)
        .output()
        .expect("docker CLI");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr),
    )
}

pub fn heredoc(script: &str, marker: &str) -> String {
    let start = script
        .find(&format!("<<'{marker}'\n"))
        .unwrap_or_else(|| panic!("no heredoc {marker}"));
    let body = &script[start..];
    let body = &body[body.find('\n').unwrap() + 1..];
    let end = body.find(&format!("\n{marker}\n")).unwrap();
    format!("{}\n", &body[..end])
}

/// shellcheck (Debian's, installed by scripts/test.sh) passes on the script, written to `dir`.
pub fn shellcheck(dir: &Path, name: &str, script: &str) {
    let path = dir.join(name);
    std::fs::write(&path, script).unwrap();
    let out = Command::new("shellcheck")
        .args(["--severity=style", "--shell=bash"])
        .arg(&path)
        .output()
        .expect("shellcheck is installed by scripts/test.sh (Debian package shellcheck)");
    assert!(
        out.status.success(),
        "shellcheck {name}:\n{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

#[track_caller]
pub fn docker_ok(args: &[&str]) -> String {
    let (ok, out) = docker(args);
    assert!(ok, "docker {args:?}: {out}");
    out
}

/// The probe's image: Debian's static busybox (the loop's shell) and curl with the libraries it
/// links, imported: nothing pulled.
pub fn probe_image(dir: &TempDir) {
    let root = dir.path().join("probe-root");
    let host = std::env::var("BOOKSTORE_TEST_DOCKER_HOST").unwrap();
    let script = r#"set -euo pipefail
root=$1
install -D -m 0755 /bin/busybox "$root/bin/busybox"
install -D -m 0755 /usr/bin/curl "$root/usr/bin/curl"
ldd /usr/bin/curl | grep -oE '/[^ ]+' | sort -u | while read -r lib; do install -D -m 0755 "$lib" "$root$lib"; done
tar -C "$root" -c . | docker import - bookstore.local/probe:test"#;
    assert!(
        std::path::Path::new("/bin/busybox").exists(),
        "/bin/busybox: scripts/test.sh installs busybox-static"
    );
    run_ok(
        Command::new("bash")
            .arg("-c")
            .arg(script)
            .arg("-")
            .arg(&root)
            .env("DOCKER_HOST", host),
    );
}

/// Polls `ok` every half second until it holds; fails the test after `limit` seconds.
pub fn wait_until(what: &str, limit: u64, mut ok: impl FnMut() -> bool) {
    let started = std::time::Instant::now();
    while !ok() {
        assert!(
            started.elapsed() < Duration::from_secs(limit),
            "{what} never happened"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// Runs `query` as MariaDB's root over the test server's socket; fails the test if it fails.
pub fn sql_as_root(socket: &str, query: &str) -> String {
    let out = Command::new("mariadb")
        .args([
            "--no-defaults",
            "-S",
            socket,
            "-uroot",
            "-N",
            "-B",
            "-e",
            query,
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Replaces `from` (which must be there) in a rendered stack file.
pub fn adapt(stack: &mut String, from: &str, to: &str) {
    assert!(
        stack.contains(from),
        "the rendered stack has no `{from}`:\n{stack}"
    );
    *stack = stack.replace(from, to);
}
