//! `app.services: split` on the eks stack, through the real binary against the strict emulator
//! and the fake Kubernetes API (which checks the EKS token and Kubernetes' schemas): a target
//! group, NodePort and rule per service, the nodes in all three groups; a set-up Job before the
//! services' own Secrets; a rotation of RDS's master password re-derives the services' passwords
//! and keeps the keys; then the objects the cluster holds are run for real on this machine (the
//! Job's container against MariaDB, the three Deployments' containers with what their volumes
//! mount); back to one process, and `down` leaves nothing.

mod common;

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::web::{free_port, get, http, mariadb, mariadb_as, mysql_parts, register};
use common::{ENV, Moto, Run, TempDir, decode_text};
use serde_json::Value;

const SERVICES: [&str; 3] = ["accounts", "catalog", "orders"];

/// The built-in eks stack, named `shop`, split (the catalog with 3 replicas, the others the
/// stack's 2) or not.
fn stack(split: bool) -> String {
    let text = std::fs::read_to_string(common::manifest_dir().join("stacks/eks.yaml")).unwrap();
    let text = text.replacen("name: eks", "name: shop", 1);
    if split {
        let with = text.replacen(
            "  health_check_path: /healthz\n",
            "  health_check_path: /healthz\n  services: split\n  replicas:\n    catalog: 3\n",
            1,
        );
        assert_ne!(
            with, text,
            "stacks/eks.yaml has no app.health_check_path line"
        );
        with
    } else {
        text
    }
}

fn cluster() -> String {
    format!("bs-{ENV}-shop-cluster")
}

fn run(moto: &Moto, dir: &Path, args: &[&str]) -> Run {
    Run::from(
        moto.cli_with_rds_ca(dir, args)
            .output()
            .expect("run bookstore"),
    )
}

fn up(moto: &Moto, dir: &Path) -> Value {
    run(
        moto,
        dir,
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
    .json()
}

fn status_of(moto: &Moto, dir: &Path) -> Value {
    run(
        moto,
        dir,
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
    .json()
}

/// The objects the cluster's API holds, by `Kind/name`.
fn objects(moto: &Moto) -> BTreeMap<String, Value> {
    moto.kube()[cluster()]["objects"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| {
            (
                format!(
                    "{}/{}",
                    o["kind"].as_str().unwrap(),
                    o["metadata"]["name"].as_str().unwrap()
                ),
                o.clone(),
            )
        })
        .collect()
}

/// The decoded data of a Secret.
fn data(objects: &BTreeMap<String, Value>, secret: &str) -> BTreeMap<String, String> {
    objects[&format!("Secret/{secret}")]["data"]
        .as_object()
        .unwrap_or_else(|| panic!("{secret} has no data"))
        .iter()
        .map(|(k, v)| (k.clone(), decode_text(v.as_str().unwrap())))
        .collect()
}

/// The set-up Jobs' names but those in `seen` (Kubernetes removes a finished one after a day).
fn new_job(objects: &BTreeMap<String, Value>, seen: &[&str]) -> String {
    let jobs: Vec<&str> = objects
        .keys()
        .filter_map(|k| k.strip_prefix("Job/"))
        .filter(|j| !seen.contains(j))
        .collect();
    assert_eq!(jobs.len(), 1, "{jobs:?}");
    jobs[0].to_string()
}

fn password(json: &str) -> String {
    serde_json::from_str::<Value>(json).unwrap()["password"]
        .as_str()
        .unwrap()
        .to_string()
}

/// Each target group's port and its targets' states, by port.
fn groups(aws: &common::Aws) -> Vec<(i32, Vec<String>)> {
    aws.rt.block_on(async {
        let tgs = aws.elb.describe_target_groups().send().await.unwrap();
        let mut out = Vec::new();
        for t in tgs.target_groups() {
            let states = aws.target_states(t.target_group_arn().unwrap()).await;
            out.push((t.port().unwrap(), states));
        }
        out.sort();
        out
    })
}

fn healthy(n: usize) -> Vec<String> {
    vec!["healthy".to_string(); n]
}

/// The apply requests (PATCH) the cluster's API received, in order.
fn patches(moto: &Moto) -> Vec<String> {
    moto.kube()[cluster()]["requests"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["method"] == "PATCH")
        .map(|r| {
            let path = r["path"].as_str().unwrap();
            path.split('?').next().unwrap().to_string()
        })
        .collect()
}

#[test]
fn eks_split_runs_each_service_from_its_own_secret_survives_a_rotation_and_switches_both_ways() {
    let mysql = std::env::var("BOOKSTORE_TEST_MYSQL_URL")
        .expect("BOOKSTORE_TEST_MYSQL_URL is not set: run scripts/test.sh, which starts MariaDB");
    let moto = Moto::start(0.3);
    let dir = TempDir::new("eks-split");
    dir.write("shop.yaml", &stack(true));
    // A set-up Job that fails (the database refused it, say) stops `up` before any service gets
    // a password, says where its log is, and the next `up` runs it again.
    moto.configure(r#"{"kube_job_fails": true}"#);
    let failed = run(
        &moto,
        dir.path(),
        &["up", "--stack", "shop.yaml", "--env", ENV],
    );
    assert_ne!(failed.code, 0);
    assert!(
        failed
            .stderr
            .contains("the split's database set-up (Job split-setup-")
            && failed
                .stderr
                .contains("kubectl -n bookstore logs job/split-setup-")
            && failed.stderr.contains("bookstore up"),
        "{}",
        failed.stderr
    );
    let half = objects(&moto);
    assert!(
        !half
            .keys()
            .any(|k| k.ends_with("-db") || k.starts_with("Deployment/")),
        "{:?}",
        half.keys()
    );
    moto.configure(r#"{"kube_job_fails": false}"#);
    let result = up(&moto, dir.path());
    let deleted: Vec<Value> = moto.kube()[cluster()]["requests"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["method"] == "DELETE" && r["path"].as_str().unwrap().contains("/jobs/"))
        .cloned()
        .collect();
    assert_eq!(
        deleted.len(),
        1,
        "the failed Job, to run it again: {deleted:?}"
    );

    // The cluster holds the split: a set-up Job, the keys, a Secret, Deployment, internal and
    // public Service per service; nothing of the single process.
    let objects = objects(&moto);
    let job = new_job(&objects, &[]);
    let mut want = vec![
        "Namespace/bookstore".to_string(),
        "PersistentVolume/bookstore-uploads".into(),
        "PersistentVolumeClaim/uploads".into(),
        "Secret/db-credentials".into(),
        "Secret/split-keys".into(),
        format!("Job/{job}"),
    ];
    for s in SERVICES {
        want.extend([
            format!("Secret/{s}-db"),
            format!("Deployment/{s}"),
            format!("Service/{s}"),
            format!("Service/{s}-web"),
        ]);
    }
    want.sort();
    assert_eq!(objects.keys().cloned().collect::<Vec<_>>(), want);
    assert!(job.starts_with("split-setup-"), "{job}");
    // The Job, then the services' Secrets: their accounts exist before their passwords are used.
    let order = patches(&moto);
    let at = |suffix: &str| {
        order
            .iter()
            .position(|p| p.ends_with(suffix))
            .unwrap_or_else(|| panic!("{suffix} in {order:?}"))
    };
    assert!(
        at(&format!("/jobs/{job}")) < at("/secrets/accounts-db"),
        "{order:?}"
    );
    assert!(
        at("/secrets/orders-db") < at("/deployments/accounts"),
        "{order:?}"
    );
    let job_spec = &objects[&format!("Job/{job}")]["spec"]["template"]["spec"];
    assert_eq!(
        job_spec["containers"][0]["args"],
        serde_json::json!(["split-setup", "--users-only"])
    );
    for (i, s) in SERVICES.iter().enumerate() {
        let d = &objects[&format!("Deployment/{s}")];
        let replicas = if *s == "catalog" { 3 } else { 2 };
        assert_eq!(d["spec"]["replicas"], replicas, "{s}");
        assert_eq!(
            d["status"]["availableReplicas"], replicas,
            "up waited for {s}"
        );
        let web = &objects[&format!("Service/{s}-web")];
        assert_eq!(web["spec"]["type"], "NodePort");
        assert_eq!(web["spec"]["ports"][0]["nodePort"], 30081 + i as u64);
        let internal = &objects[&format!("Service/{s}")];
        assert_eq!(internal["spec"]["type"], "ClusterIP", "never a node port");
        assert_eq!(internal["spec"]["ports"][0]["port"], 9081 + i as u64);
        let account = data(&objects, &format!("{s}-db"));
        let creds: Value = serde_json::from_str(&account["db.json"]).unwrap();
        assert_eq!(creds["username"], format!("bookstore_{s}"));
        assert_eq!(password(&account["db.json"]).len(), 43);
        // Only the master Secret's mount is the Job's; a service's mounts its own account.
        let volumes = serde_json::to_string(&d["spec"]["template"]["spec"]["volumes"]).unwrap();
        assert!(!volumes.contains("\"db-credentials\"}"), "{volumes}");
        assert!(volumes.contains(&format!("\"{s}-db\"")), "{volumes}");
    }
    let keys = data(&objects, "split-keys");
    assert_eq!(keys["internal-key"].len(), 64, "{keys:?}");
    let master = password(&data(&objects, "db-credentials")["db.json"]);
    let derived: Vec<String> = SERVICES
        .iter()
        .map(|s| password(&data(&objects, &format!("{s}-db"))["db.json"]))
        .collect();

    // AWS: a target group per service on its NodePort, the nodes in all three, rules by path,
    // the nodes' group opening those ports to the load balancer only.
    let aws = moto.aws();
    assert_eq!(
        groups(&aws),
        [
            (30081, healthy(2)),
            (30082, healthy(2)),
            (30083, healthy(2))
        ]
    );
    aws.rt.block_on(async {
        let g = aws
            .eks
            .describe_nodegroup()
            .cluster_name(cluster())
            .nodegroup_name(format!("bs-{ENV}-shop-nodes"))
            .send()
            .await
            .unwrap();
        let asg = g
            .nodegroup()
            .unwrap()
            .resources()
            .unwrap()
            .auto_scaling_groups()[0]
            .name()
            .unwrap()
            .to_string();
        let attached = aws
            .asg
            .describe_load_balancer_target_groups()
            .auto_scaling_group_name(&asg)
            .send()
            .await
            .unwrap();
        assert_eq!(attached.load_balancer_target_groups().len(), 3);
        let lbs = aws.elb.describe_load_balancers().send().await.unwrap();
        let listeners = aws
            .elb
            .describe_listeners()
            .load_balancer_arn(lbs.load_balancers()[0].load_balancer_arn().unwrap())
            .send()
            .await
            .unwrap();
        let mut rules = 0;
        for l in listeners.listeners() {
            let r = aws
                .elb
                .describe_rules()
                .listener_arn(l.listener_arn().unwrap())
                .send()
                .await
                .unwrap();
            rules += r
                .rules()
                .iter()
                .filter(|r| r.is_default() != Some(true))
                .count();
        }
        assert_eq!(
            rules, 2,
            "accounts' and orders' rules; the catalog is the default"
        );
        let group = aws.security_group_keyed("sg-nodes").await;
        let rules = group.ip_permissions();
        let mut opened: Vec<i32> = rules.iter().map(|r| r.from_port().unwrap()).collect();
        opened.sort();
        assert_eq!(opened, [30081, 30082, 30083]);
        assert!(
            rules
                .iter()
                .all(|r| r.ip_ranges().is_empty() && r.user_id_group_pairs().len() == 1),
            "{rules:?}"
        );
    });
    // No password anywhere but in the cluster.
    let journal = std::fs::read_to_string(
        dir.path()
            .join(".bookstore/shop")
            .join(ENV)
            .join("journal.jsonl"),
    )
    .unwrap();
    for secret in derived.iter().chain([&master, &keys["internal-key"]]) {
        assert!(!journal.contains(secret.as_str()));
        assert!(!result.to_string().contains(secret.as_str()));
    }

    // `status`: each service's pods and health; nothing drifted. A second `up` changes nothing.
    let status = status_of(&moto, dir.path());
    let resources = status["resources"].as_array().unwrap();
    assert!(
        resources
            .iter()
            .all(|r| r["drift"].as_array().unwrap().is_empty()),
        "{status}"
    );
    let app = resources.iter().find(|r| r["key"] == "app").unwrap();
    assert!(
        app.to_string()
            .contains("accounts 2/2, catalog 3/3, orders 2/2 available"),
        "{app}"
    );
    let pods = status["pods"].as_array().unwrap();
    assert_eq!(pods.len(), 7, "{status}");
    for (s, n) in [("accounts", 2), ("catalog", 3), ("orders", 2)] {
        assert_eq!(
            pods.iter().filter(|p| p["service"] == s).count(),
            n,
            "{status}"
        );
    }
    moto.clear_calls();
    let before = patches(&moto).len();
    up(&moto, dir.path());
    assert_eq!(patches(&moto).len(), before, "no apply on a no-op up");
    assert_eq!(moto.mutating_calls(), Vec::<String>::new());

    // RDS rotates the master password (here: to the test MariaDB's privileged account, which
    // the Job then uses for real): `status` says so, `up` runs a new Job, the services' passwords
    // follow the master, the keys do not.
    let (root, root_password, _, _) = mysql_parts(&mysql);
    aws.rt.block_on(async {
        let dbs = aws.rds.describe_db_instances().send().await.unwrap();
        let arn = dbs.db_instances()[0]
            .master_user_secret()
            .unwrap()
            .secret_arn()
            .unwrap()
            .to_string();
        aws.secrets
            .put_secret_value()
            .secret_id(arn)
            .secret_string(
                serde_json::json!({ "username": root, "password": root_password }).to_string(),
            )
            .send()
            .await
            .unwrap();
    });
    let status = status_of(&moto, dir.path());
    assert!(status.to_string().contains("rotated"), "{status}");
    up(&moto, dir.path());
    let rotated = self::objects(&moto);
    // A new Job for the new master password.
    let new_job = new_job(&rotated, &[&job]);
    assert_eq!(data(&rotated, "split-keys"), keys, "the keys stay");
    for (s, old) in SERVICES.iter().zip(&derived) {
        let new = password(&data(&rotated, &format!("{s}-db"))["db.json"]);
        assert_ne!(&new, old, "{s}'s password follows the master");
    }

    // For real: the Job's container makes the accounts on MariaDB, then the three services run
    // from what their Deployments mount and answer as one shop.
    for_real(&mysql, dir.path(), &rotated, &new_job);

    // Back to one process: the split's objects, groups and rules go.
    dir.write("shop.yaml", &stack(false));
    up(&moto, dir.path());
    let single = self::objects(&moto);
    let left: Vec<&String> = single
        .keys()
        .filter(|k| !k.starts_with("Job/")) // removed by Kubernetes a day after it finished
        .collect();
    assert_eq!(
        left,
        [
            "Deployment/bookstore",
            "Namespace/bookstore",
            "PersistentVolume/bookstore-uploads",
            "PersistentVolumeClaim/uploads",
            "Secret/db-credentials",
            "Service/bookstore"
        ]
    );
    assert_eq!(groups(&aws), [(30080, healthy(2))]);

    // And from one process to the split: the single process's Deployment and Service go once the
    // three are there; the nodes move to the three groups.
    dir.write("shop.yaml", &stack(true));
    up(&moto, dir.path());
    let again = self::objects(&moto);
    for s in SERVICES {
        assert_eq!(
            again[&format!("Deployment/{s}")]["status"]["availableReplicas"],
            if s == "catalog" { 3 } else { 2 },
            "{s}"
        );
    }
    assert!(
        !again.contains_key("Deployment/bookstore"),
        "{:?}",
        again.keys()
    );
    assert!(
        !again.contains_key("Service/bookstore"),
        "{:?}",
        again.keys()
    );
    assert_eq!(data(&again, "split-keys")["internal-key"].len(), 64);
    assert_eq!(
        groups(&aws),
        [
            (30081, healthy(2)),
            (30082, healthy(2)),
            (30083, healthy(2))
        ]
    );
    moto.down_leaves_nothing_of(dir.path(), "shop.yaml");
}

/// A container of a pod spec as this machine runs it: the image's entrypoint is the app binary;
/// each volume mount is a directory under `root` holding what the volume would (a Secret's keys,
/// or nothing); `rewrite` maps the cluster's addresses to this machine's.
fn container(
    root: &Path,
    pod: &Value,
    objects: &BTreeMap<String, Value>,
    rewrite: &dyn Fn(&str) -> String,
) -> Command {
    let c = &pod["containers"][0];
    let volumes = pod["volumes"].as_array().unwrap();
    let mut mounts = Vec::new();
    for m in c["volumeMounts"].as_array().unwrap() {
        let at = m["mountPath"].as_str().unwrap();
        let local = root.join(at.trim_start_matches('/'));
        std::fs::create_dir_all(&local).unwrap();
        let v = volumes.iter().find(|v| v["name"] == m["name"]).unwrap();
        let mut files: Vec<(String, String)> = Vec::new();
        if let Some(name) = v["secret"]["secretName"].as_str() {
            files.extend(data(objects, name));
        }
        for source in v["projected"]["sources"].as_array().into_iter().flatten() {
            let secret = data(objects, source["secret"]["name"].as_str().unwrap());
            for item in source["secret"]["items"].as_array().unwrap() {
                let key = item["key"].as_str().unwrap();
                files.push((item["path"].as_str().unwrap().into(), secret[key].clone()));
            }
        }
        for (name, text) in files {
            std::fs::write(local.join(name), text).unwrap();
        }
        mounts.push(at.to_string());
    }
    let app: PathBuf = Path::new(env!("CARGO_BIN_EXE_bookstore")).with_file_name("bookstore-app");
    let mut cmd = Command::new(app);
    for a in c["args"].as_array().into_iter().flatten() {
        cmd.arg(a.as_str().unwrap());
    }
    cmd.env_clear();
    for e in c["env"].as_array().unwrap() {
        let value = e["value"].as_str().unwrap();
        let value = if mounts.iter().any(|m| value.starts_with(m.as_str())) {
            format!("{}{value}", root.display())
        } else {
            rewrite(value)
        };
        cmd.env(e["name"].as_str().unwrap(), value);
    }
    cmd
}

struct Stop(Vec<(String, Child)>);

impl Drop for Stop {
    fn drop(&mut self) {
        for (_, c) in &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn for_real(mysql: &str, dir: &Path, objects: &BTreeMap<String, Value>, job: &str) {
    let ca = std::env::var("BOOKSTORE_TEST_MYSQL_CA").unwrap();
    for s in SERVICES {
        mariadb(
            mysql,
            &format!(
                "DROP DATABASE IF EXISTS bookstore_{s}; DROP USER IF EXISTS 'bookstore_{s}'@'%'"
            ),
        );
    }
    mariadb(mysql, "CREATE DATABASE IF NOT EXISTS bookstore");
    let (_, _, host, port) = mysql_parts(mysql);
    let endpoint = {
        let env =
            objects["Deployment/accounts"]["spec"]["template"]["spec"]["containers"][0]["env"]
                .as_array()
                .unwrap()
                .clone();
        let url = env.iter().find(|e| e["name"] == "DATABASE_URL").unwrap()["value"]
            .as_str()
            .unwrap()
            .to_string();
        url.trim_start_matches("mysql://")
            .split('/')
            .next()
            .unwrap()
            .to_string()
    };
    // Every container port of the services, moved to a free port here.
    let mut moved: Vec<(u64, u16)> = Vec::new();
    for s in SERVICES {
        let c = &objects[&format!("Deployment/{s}")]["spec"]["template"]["spec"]["containers"][0];
        for p in c["ports"].as_array().unwrap() {
            moved.push((p["containerPort"].as_u64().unwrap(), free_port()));
        }
    }
    let rewrite = |value: &str| -> String {
        let mut v = value.to_string();
        for (from, to) in &moved {
            v = v.replace(&format!(":{from}"), &format!(":{to}"));
        }
        let mut v = v
            .replace(&endpoint, &format!("{host}:{port}"))
            .replace("/etc/bookstore/rds-ca.pem", &ca)
            .replace("0.0.0.0:", "127.0.0.1:");
        for s in SERVICES {
            v = v.replace(&format!("http://{s}:"), "http://127.0.0.1:");
        }
        v
    };

    // The Job: its container with the master Secret, as the Job's pod runs it.
    let job_pod = &objects[&format!("Job/{job}")]["spec"]["template"]["spec"];
    let out = container(&dir.join("job"), job_pod, objects, &rewrite)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "the set-up Job's container: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );

    let mut services = Stop(Vec::new());
    for s in SERVICES {
        let pod = &objects[&format!("Deployment/{s}")]["spec"]["template"]["spec"];
        let child = container(&dir.join(s), pod, objects, &rewrite)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        services.0.push((s.to_string(), child));
    }
    // A service's public port here, and its probes' paths.
    let http_port = |s: &str| -> u16 {
        let c = &objects[&format!("Deployment/{s}")]["spec"]["template"]["spec"]["containers"][0];
        let p = c["ports"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == "http")
            .unwrap()["containerPort"]
            .as_u64()
            .unwrap();
        moved.iter().find(|(from, _)| *from == p).unwrap().1
    };
    let start = Instant::now();
    for s in SERVICES {
        let c = &objects[&format!("Deployment/{s}")]["spec"]["template"]["spec"]["containers"][0];
        for probe in ["startupProbe", "livenessProbe", "readinessProbe"] {
            let path = c[probe]["httpGet"]["path"].as_str().unwrap();
            loop {
                if let Some((200, _)) = get(http_port(s), path) {
                    break;
                }
                for (name, c) in &mut services.0 {
                    if let Ok(Some(exit)) = c.try_wait() {
                        let mut err = String::new();
                        c.stderr.take().unwrap().read_to_string(&mut err).unwrap();
                        panic!("{name} exited ({exit}):\n{err}");
                    }
                }
                assert!(
                    start.elapsed() < Duration::from_secs(60),
                    "{s}'s {probe} ({path}) never answered 200: {:?}",
                    get(http_port(s), path)
                );
                std::thread::sleep(Duration::from_millis(200));
            }
        }
        // And the load balancer's check, which includes the peers.
        assert_eq!(get(http_port(s), "/healthz").map(|r| r.0), Some(200), "{s}");
    }

    // One shop: an identity made by accounts is honoured by catalog and orders.
    let cookies = register(http_port("accounts"));
    let (anonymous, _, _) = http(http_port("catalog"), "GET", "/sell", "", "");
    let (known, head, _) = http(http_port("catalog"), "GET", "/sell", &cookies, "");
    assert_eq!((anonymous, known), (303, 200), "{head}");
    let (orders, _, body) = http(http_port("orders"), "GET", "/orders", &cookies, "");
    assert_eq!(orders, 200, "{body}");

    // Each service's account reaches its own database only.
    let catalog = data(objects, "catalog-db");
    let creds: Value = serde_json::from_str(&catalog["db.json"]).unwrap();
    let user = creds["username"].as_str().unwrap();
    let pass = creds["password"].as_str().unwrap();
    let (ok, _, err) = mariadb_as(
        mysql,
        user,
        pass,
        "SELECT COUNT(*) FROM bookstore_catalog.books",
    );
    assert!(ok, "{err}");
    let (ok, _, err) = mariadb_as(
        mysql,
        user,
        pass,
        "SELECT COUNT(*) FROM bookstore_accounts.users",
    );
    assert!(
        !ok && err.contains("denied"),
        "catalog's account read accounts' users: {err}"
    );
}

/// `render` of the split writes every object the cluster gets, one file each; they pass
/// Kubernetes' own schemas in strict mode and carry no secret value.
#[test]
fn the_rendered_split_manifests_pass_the_schema_check_and_hold_no_secret() {
    let dir = TempDir::new("eks-split-render");
    dir.write("shop.yaml", &stack(true));
    common::run_ok(
        Command::new(env!("CARGO_BIN_EXE_bookstore"))
            .current_dir(dir.path())
            .args(["render", "--stack", "shop.yaml", "--out", "rendered"]),
    );
    let folder = dir.path().join("rendered/app/kubernetes");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&folder)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    let names: Vec<String> = files
        .iter()
        .map(|f| f.file_name().unwrap().to_str().unwrap().to_string())
        .collect();
    let mut want = vec![
        "namespace.yaml".to_string(),
        "bookstore-uploads-persistentvolume.yaml".into(),
        "uploads-persistentvolumeclaim.yaml".into(),
        "db-credentials-secret.yaml".into(),
        "split-keys-secret.yaml".into(),
    ];
    for s in SERVICES {
        want.extend([
            format!("{s}-db-secret.yaml"),
            format!("{s}-deployment.yaml"),
            format!("{s}-service.yaml"),
            format!("{s}-web-service.yaml"),
        ]);
    }
    let job: Vec<&String> = names.iter().filter(|n| n.ends_with("-job.yaml")).collect();
    assert_eq!(job.len(), 1, "{names:?}");
    want.push(job[0].clone());
    want.sort();
    assert_eq!(names, want);
    let check = Command::new(common::manifest_dir().join(".venv/bin/kubernetes-validate"))
        .args(["--strict", "--kubernetes-version", "1.35.0"])
        .args(&files)
        .output()
        .expect("kubernetes-validate (scripts/install-moto.sh installs it)");
    let report = String::from_utf8_lossy(&check.stdout).into_owned()
        + &String::from_utf8_lossy(&check.stderr);
    assert!(check.status.success(), "{report}");
    assert_eq!(report.matches("INFO").count(), files.len(), "{report}");
    for f in &files {
        let text = std::fs::read_to_string(f).unwrap();
        assert!(
            !text
                .lines()
                .any(|l| l.starts_with("data:") || l.starts_with("stringData:")),
            "{}: {text}",
            f.display()
        );
    }
}
