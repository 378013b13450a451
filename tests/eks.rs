//! The eks stack through the real binary against the strict emulator: the stack file validates
//! and prices itself; `up` makes the cluster on the lab's own role (found by name, prefix and
//! suffix and all), in standard support, with API access for its creator; the nodes from the
//! hardened template, registered in the load balancer's target group; the app's image built by
//! the CLI and pushed through the registry API to a real registry standing in for ECR (pulled and
//! run by a real dockerd), its Kubernetes objects applied to a fake API server that checks the
//! EKS token and Kubernetes' schemas; a no-op `up`; SIGKILL and resume; `down` leaves nothing.

mod common;

use std::path::Path;

use common::{ENV, Moto, Run, TempDir, docker};

fn experimental(moto: &Moto, dir: &Path, args: &[&str]) -> Run {
    Run::from(
        moto.cli_with_rds_ca(dir, args)
            .output()
            .expect("run bookstore"),
    )
}

#[test]
fn eks_stack_validates_prices_and_up_refuses_it_without_the_app_binary() {
    let moto = Moto::start(0.0);
    let dir = TempDir::new("eks-validate");
    let v = moto
        .run(
            dir.path(),
            &["--output", "json", "validate", "--stack", "eks"],
        )
        .ok()
        .json();
    assert_eq!(v["stack"]["kind"], "eks", "{v}");
    assert_eq!(v["stack"]["kubernetes"]["version"], "1.35", "{v}");
    assert_eq!(v["stack"]["kubernetes"]["nodes"], 2, "{v}");
    let resources: Vec<&str> = v["resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r.as_str().unwrap())
        .collect();
    for key in ["cluster", "repo", "sg-nodes", "alb", "tg", "db", "efs"] {
        assert!(resources.contains(&key), "{key} planned: {resources:?}");
    }

    // Its image is built here from the Linux app binary: without one, nothing is made.
    moto.clear_calls();
    let refused = moto.run(
        dir.path(),
        &[
            "up",
            "--stack",
            "eks",
            "--env",
            ENV,
            "--build-app-on-builder",
        ],
    );
    assert_eq!(refused.code, 1, "{}", refused.stderr);
    assert!(
        refused
            .stderr
            .contains("from the Linux x86_64 bookstore-app binary"),
        "{}",
        refused.stderr
    );
    assert!(
        refused.stderr.contains("nothing was created"),
        "{}",
        refused.stderr
    );
    assert!(moto.mutating_calls().is_empty());
    let bake = moto.run(dir.path(), &["bake", "--stack", "eks", "--env", ENV]);
    assert!(
        bake.stderr.contains("bakes no machine image"),
        "{}",
        bake.stderr
    );

    // Versions past standard support, too many nodes for the lab, a kubernetes section elsewhere.
    let bad = dir.write(
        "bad.yaml",
        "version: 1\nname: k\nkind: eks\nkubernetes:\n  version: \"1.33\"\n  nodes: 9\n  node_port: 8080\n",
    );
    let out = moto.run(dir.path(), &["validate", "--stack", bad.to_str().unwrap()]);
    assert_ne!(out.code, 0);
    for expected in [
        "bad.yaml:5:12: kubernetes.version: Kubernetes 1.33 is past EKS's standard support",
        "bad.yaml:6:10: kubernetes.nodes: 9 nodes",
        "bad.yaml:7:14: kubernetes.node_port",
    ] {
        assert!(out.stderr.contains(expected), "{expected}:\n{}", out.stderr);
    }
    let asg = dir.write(
        "asg.yaml",
        "version: 1\nname: a\nkind: asg\nkubernetes:\n  nodes: 2\n",
    );
    let out = moto.run(dir.path(), &["validate", "--stack", asg.to_str().unwrap()]);
    assert!(
        out.stderr
            .contains("kubernetes: an asg stack takes no `kubernetes` section"),
        "{}",
        out.stderr
    );

    // The cluster is priced beside the rest; it starts no instance of its own (yet: the nodes).
    let plan = moto
        .run(
            dir.path(),
            &["--output", "json", "plan", "--stack", "eks", "--env", ENV],
        )
        .json();
    let lines = plan["cost"]["lines"].as_array().unwrap();
    let cluster = lines.iter().find(|l| l["key"] == "cluster").unwrap();
    assert_eq!(cluster["hourly_usd"], 0.1, "{cluster}");
    assert!(lines.iter().any(|l| l["key"] == "repo"), "{plan}");
    let nodes = lines.iter().find(|l| l["key"] == "nodes").unwrap();
    assert!(
        nodes["what"]
            .as_str()
            .unwrap()
            .starts_with("2 × (t3.medium"),
        "{nodes}"
    );
}

#[test]
fn eks_up_makes_the_cluster_on_the_lab_role_and_down_removes_everything() {
    let moto = Moto::start(0.3);
    let dir = TempDir::new("eks");
    let up = || {
        experimental(
            &moto,
            dir.path(),
            &["--output", "json", "up", "--stack", "eks", "--env", ENV],
        )
        .ok()
        .json()
    };
    let result = up();
    assert!(
        result["outputs"]["url"]
            .as_str()
            .unwrap()
            .starts_with("https://bs-t-eks-alb"),
        "{result}"
    );
    assert_eq!(
        result["outputs"]["kubeconfig"],
        format!("aws eks update-kubeconfig --name bs-{ENV}-eks-cluster --region us-east-1"),
        "{result}"
    );

    let aws = moto.aws();
    aws.rt.block_on(async {
        let name = format!("bs-{ENV}-eks-cluster");
        let c = aws.eks.describe_cluster().name(&name).send().await.unwrap();
        let c = c.cluster().unwrap();
        assert_eq!(c.status().unwrap().as_str(), "ACTIVE");
        assert_eq!(c.version(), Some("1.35"));
        let role = c.role_arn().unwrap();
        assert!(
            role.ends_with("-LabEksClusterRole-Ke9s0hySLUDZ"),
            "the lab's role, found by name: {role}"
        );
        assert_eq!(
            c.upgrade_policy().unwrap().support_type().unwrap().as_str(),
            "STANDARD",
            "no extended-support price"
        );
        assert_eq!(
            c.access_config()
                .unwrap()
                .authentication_mode()
                .unwrap()
                .as_str(),
            "API"
        );
        let tags = c.tags().unwrap();
        assert_eq!(tags.get("bookstore:env").map(String::as_str), Some(ENV));
        let subnets = c.resources_vpc_config().unwrap().subnet_ids();
        assert_eq!(subnets.len(), 2);

        let repos = aws.ecr.describe_repositories().send().await.unwrap();
        let r = &repos.repositories()[0];
        assert_eq!(
            r.repository_name(),
            Some(format!("bs-{ENV}-eks-repo").as_str())
        );
        assert_eq!(r.image_tag_mutability().unwrap().as_str(), "IMMUTABLE");
        assert!(r.image_scanning_configuration().unwrap().scan_on_push());
        assert_eq!(
            r.encryption_configuration()
                .unwrap()
                .encryption_type()
                .as_str(),
            "AES256"
        );

        // The nodes' group: the NodePort from the load balancer's group, nothing else.
        let nodes_group = aws.security_group_keyed("sg-nodes").await;
        let rules = nodes_group.ip_permissions();
        assert_eq!(rules.len(), 1, "{rules:?}");
        assert_eq!(rules[0].from_port(), Some(30080));
        assert!(rules[0].ip_ranges().is_empty(), "no CIDR: {rules:?}");
        assert_eq!(rules[0].user_id_group_pairs().len(), 1);

        let tgs = aws.elb.describe_target_groups().send().await.unwrap();
        assert_eq!(tgs.target_groups()[0].port(), Some(30080));

        // The node group on the lab's node role, from the hardened template, two t3.medium nodes.
        let g = aws
            .eks
            .describe_nodegroup()
            .cluster_name(&name)
            .nodegroup_name(format!("bs-{ENV}-eks-nodes"))
            .send()
            .await
            .unwrap();
        let g = g.nodegroup().unwrap();
        assert_eq!(g.status().unwrap().as_str(), "ACTIVE");
        assert!(
            g.node_role()
                .unwrap()
                .ends_with("-LabEksNodeRole-Ke9s0hySLUDZ"),
            "{:?}",
            g.node_role()
        );
        assert_eq!(g.instance_types(), ["t3.medium"]);
        assert_eq!(g.scaling_config().unwrap().desired_size(), Some(2));
        assert_eq!(g.ami_type().unwrap().as_str(), "AL2023_x86_64_STANDARD");
        let template_id = g.launch_template().unwrap().id().unwrap().to_string();
        let versions = aws
            .ec2
            .describe_launch_template_versions()
            .launch_template_id(&template_id)
            .send()
            .await
            .unwrap();
        let data = versions.launch_template_versions()[0]
            .launch_template_data()
            .unwrap();
        let imds = data.metadata_options().unwrap();
        assert_eq!(imds.http_tokens().unwrap().as_str(), "required", "IMDSv2");
        assert_eq!(
            imds.http_put_response_hop_limit(),
            Some(1),
            "no pod reaches the node role"
        );
        let script = common::decode_text(data.user_data().unwrap());
        assert!(
            script.contains("install -d -o 10001 -g 10001 -m 0750"),
            "the covers directory for the app's user: {script}"
        );
        let root = data.block_device_mappings()[0].ebs().unwrap();
        assert_eq!(root.encrypted(), Some(true));
        assert!(data.iam_instance_profile().is_none(), "EKS refuses one");
        let cluster_sg = c
            .resources_vpc_config()
            .unwrap()
            .cluster_security_group_id()
            .unwrap();
        let mut want = vec![
            cluster_sg.to_string(),
            nodes_group.group_id().unwrap().to_string(),
        ];
        want.sort();
        let mut have = data.security_group_ids().to_vec();
        have.sort();
        assert_eq!(have, want, "EKS's cluster group and the nodes' own");

        // EKS's Auto Scaling group of the nodes is attached to the target group, and `up` ended
        // with both nodes registered and healthy there.
        let asg = g.resources().unwrap().auto_scaling_groups()[0]
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
        let tg = tgs.target_groups()[0].target_group_arn().unwrap();
        assert_eq!(
            attached.load_balancer_target_groups()[0].load_balancer_target_group_arn(),
            Some(tg)
        );
        assert_eq!(aws.target_states(tg).await, ["healthy", "healthy"]);
    });
    // The nodes run, spread over the two zones.
    let nodes = aws.instances_tagged("eks:nodegroup-name", &format!("bs-{ENV}-eks-nodes"));
    let running: Vec<_> = nodes
        .iter()
        .filter(|i| i.state().unwrap().name().unwrap().as_str() == "running")
        .collect();
    assert_eq!(running.len(), 2, "{nodes:?}");
    let zones: std::collections::BTreeSet<_> = running
        .iter()
        .map(|i| i.placement().unwrap().availability_zone().unwrap())
        .collect();
    assert_eq!(zones.len(), 2);
    // Started from the template: in its two groups, with IMDSv2.
    for i in &running {
        let mut groups: Vec<&str> = i
            .security_groups()
            .iter()
            .map(|g| g.group_id().unwrap())
            .collect();
        groups.sort();
        assert_eq!(groups.len(), 2, "{i:?}");
        let imds = i.metadata_options().unwrap();
        assert_eq!(imds.http_tokens().unwrap().as_str(), "required", "{i:?}");
    }

    // The app's objects as the cluster's API holds them: applied with the caller's EKS token,
    // checked against Kubernetes' schemas, with the database credentials from RDS's secret.
    let kube = moto.kube();
    let api = &kube[format!("bs-{ENV}-eks-cluster")];
    let objects = api["objects"].as_array().unwrap();
    let kinds: Vec<&str> = objects
        .iter()
        .map(|o| o["kind"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        [
            "Namespace",
            "PersistentVolume",
            "PersistentVolumeClaim",
            "Secret",
            "Deployment",
            "Service"
        ],
        "{api}"
    );
    let deployment = objects.iter().find(|o| o["kind"] == "Deployment").unwrap();
    assert_eq!(
        deployment["status"]["availableReplicas"], 2,
        "up waited for it"
    );
    let image = deployment["spec"]["template"]["spec"]["containers"][0]["image"]
        .as_str()
        .unwrap();
    assert!(
        image.starts_with("123456789012.dkr.ecr.us-east-1.amazonaws.com/bs-t-eks-repo:"),
        "{image}"
    );
    // Run by digest: the image the CLI built and pushed through the registry API, which ECR
    // knows by its tag and digest.
    let (tagged, digest) = image.split_once('@').expect("uri:tag@digest");
    let tag = tagged.rsplit_once(':').unwrap().1;
    let ecr = aws.rt.block_on(async {
        aws.ecr
            .describe_images()
            .repository_name(format!("bs-{ENV}-eks-repo"))
            .send()
            .await
            .unwrap()
    });
    let pushed = &ecr.image_details()[0];
    assert_eq!(pushed.image_tags(), [tag]);
    assert_eq!(pushed.image_digest(), Some(digest));
    let registry = moto.registry();
    let requests = registry["requests"].as_array().unwrap();
    let uploads = requests.iter().filter(|r| r["method"] == "POST").count();
    assert_eq!(uploads, 3, "the config and two layers: {registry}");
    assert!(
        requests
            .iter()
            .all(|r| r["status"].as_u64().unwrap() < 300 || r["method"] == "HEAD"),
        "{registry}"
    );
    let pod = &deployment["spec"]["template"]["spec"];
    assert_eq!(pod["securityContext"]["runAsNonRoot"], true);
    assert_eq!(pod["automountServiceAccountToken"], false);
    // The covers: EFS as a PersistentVolume bound to the namespace's claim (the `restricted`
    // standard refuses an inline `nfs` volume).
    let volumes = pod["volumes"].as_array().unwrap();
    let uploads = volumes.iter().find(|v| v["name"] == "uploads").unwrap();
    assert_eq!(uploads["persistentVolumeClaim"]["claimName"], "uploads");
    let pv = objects
        .iter()
        .find(|o| o["kind"] == "PersistentVolume")
        .unwrap();
    assert!(
        pv["spec"]["nfs"]["server"]
            .as_str()
            .unwrap()
            .ends_with(".efs.us-east-1.amazonaws.com"),
        "{pv}"
    );
    assert_eq!(pv["spec"]["claimRef"]["name"], "uploads");
    let service = objects.iter().find(|o| o["kind"] == "Service").unwrap();
    assert_eq!(service["spec"]["type"], "NodePort");
    assert_eq!(service["spec"]["ports"][0]["nodePort"], 30080);
    let secret = objects.iter().find(|o| o["kind"] == "Secret").unwrap();
    let creds = common::decode_text(secret["data"]["db.json"].as_str().unwrap());
    assert!(creds.contains("password"), "the RDS secret's JSON");
    let password = serde_json::from_str::<serde_json::Value>(&creds).unwrap()["password"]
        .as_str()
        .unwrap()
        .to_string();
    // The password is nowhere but in the cluster: not in the journal, not on stdout or stderr.
    let journal = std::fs::read_to_string(
        dir.path()
            .join(".bookstore/eks")
            .join(ENV)
            .join("journal.jsonl"),
    )
    .unwrap();
    assert!(!journal.contains(&password));
    assert!(!result.to_string().contains(&password));

    // `status`: every resource as planned, the cluster's nodes; `doctor` names the roles it found.
    let status = moto
        .run(
            dir.path(),
            &["--output", "json", "status", "--stack", "eks", "--env", ENV],
        )
        .ok()
        .json();
    let resources = status["resources"].as_array().unwrap();
    assert!(
        resources
            .iter()
            .all(|r| r["drift"].as_array().unwrap().is_empty()),
        "{status}"
    );
    let nodes = status["nodes"].as_array().unwrap();
    assert_eq!(nodes.len(), 2, "{status}");
    assert!(nodes.iter().all(|n| n["state"] == "running"), "{status}");
    let pods = status["pods"].as_array().unwrap();
    assert_eq!(pods.len(), 2, "{status}");
    assert!(
        pods.iter()
            .all(|p| p["phase"] == "Running" && p["restarts"] == "0"),
        "{status}"
    );
    let doctor = moto
        .run(
            dir.path(),
            &["--output", "json", "doctor", "--stack", "eks", "--env", ENV],
        )
        .json();
    let checks = doctor["checks"].as_array().unwrap();
    for role in ["eks cluster role", "eks node role"] {
        let c = checks.iter().find(|c| c["check"] == role).unwrap();
        assert_eq!(c["verdict"], "ok", "{c}");
    }

    // Converged: a second `up` changes nothing, in AWS or in the cluster.
    let patches = |kube: &serde_json::Value| {
        kube[format!("bs-{ENV}-eks-cluster")]["requests"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|r| r["method"] != "GET")
            .count()
    };
    let before = patches(&moto.kube());
    let registry_before = moto.registry()["requests"].as_array().unwrap().len();
    moto.clear_calls();
    up();
    assert_eq!(moto.mutating_calls(), Vec::<String>::new());
    assert_eq!(patches(&moto.kube()), before, "no apply on a no-op up");
    assert_eq!(
        moto.registry()["requests"].as_array().unwrap().len(),
        registry_before,
        "nothing pushed, nothing asked of the registry"
    );

    // RDS rotates the password: `status` says the cluster's copy is stale, and `up` puts the new
    // one in the Secret (the pods' mounted file follows).
    let rotated = aws.rt.block_on(async {
        let list = aws.secrets.list_secrets().send().await.unwrap();
        let arn = list.secret_list()[0].arn().unwrap().to_string();
        let new = creds.replace(&password, "rotated-Pa55word");
        aws.secrets
            .put_secret_value()
            .secret_id(&arn)
            .secret_string(&new)
            .send()
            .await
            .unwrap();
        new
    });
    let status = moto
        .run(
            dir.path(),
            &["--output", "json", "status", "--stack", "eks", "--env", ENV],
        )
        .ok()
        .json();
    let app = status["resources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["key"] == "app")
        .unwrap();
    assert_eq!(
        app["drift"],
        serde_json::json!(["credentials: rotated → current"]),
        "{app}"
    );
    up();
    let secret = moto.kube()[format!("bs-{ENV}-eks-cluster")]["objects"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["kind"] == "Secret")
        .unwrap()
        .clone();
    assert_eq!(
        common::decode_text(secret["data"]["db.json"].as_str().unwrap()),
        rotated
    );

    moto.run(
        dir.path(),
        &["down", "--stack", "eks", "--env", ENV, "--yes"],
    )
    .ok();
    let left = moto.aws().everything(ENV);
    assert!(left.is_empty(), "left after down: {left:?}");
    assert!(moto.violations().is_empty(), "{:?}", moto.violations());
}

/// No AWS call made anything (the env's lock bookkeeping aside).
#[track_caller]
fn nothing_made(moto: &Moto) {
    let made: Vec<String> = moto
        .mutating_calls()
        .into_iter()
        .filter(|c| !common::is_lock_bookkeeping(c))
        .collect();
    assert!(made.is_empty(), "{made:?}");
}

#[test]
fn a_missing_role_stops_up_before_anything_is_made() {
    let moto = Moto::start(0.0);
    let dir = TempDir::new("eks-role");
    let stack = dir.write(
        "eks.yaml",
        "version: 1\nname: eks\nkind: eks\nkubernetes:\n  cluster_role: NoSuchEksRole\n",
    );
    moto.clear_calls();
    let out = experimental(
        &moto,
        dir.path(),
        &["up", "--stack", stack.to_str().unwrap(), "--env", ENV],
    );
    assert_ne!(out.code, 0);
    assert!(
        out.stderr
            .contains("no IAM role in this account has `NoSuchEksRole`"),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("nothing was created"), "{}", out.stderr);
    nothing_made(&moto);
}

#[test]
fn the_nodes_count_against_the_lab_instance_limit_before_anything_is_made() {
    let moto = Moto::start(0.0);
    let dir = TempDir::new("eks-guard");
    let ids = moto.aws().run_foreign_instances(8);
    moto.clear_calls();
    let refused = experimental(&moto, dir.path(), &["up", "--stack", "eks", "--env", ENV]);
    assert_eq!(refused.code, 1, "{}", refused.stderr);
    assert!(
        refused.stderr.contains("10 running instances")
            && refused.stderr.contains(&ids[0])
            && refused.stderr.contains("nodes +2")
            && refused.stderr.contains("nothing was created"),
        "{}",
        refused.stderr
    );
    nothing_made(&moto);
}

/// The fake cluster API bites: `aws eks get-token`'s token works at its own cluster only, a forged
/// one never; apply needs its content type and a field manager; an object with a field
/// Kubernetes' schema does not have is refused.
#[test]
fn the_fake_cluster_api_takes_only_its_own_token_and_valid_objects() {
    let moto = Moto::start(0.0);
    let out = std::process::Command::new(common::manifest_dir().join(".venv/bin/python"))
        .arg(common::manifest_dir().join("tests/harness/fake_kube_probe.py"))
        .arg(moto.port.to_string())
        .output()
        .expect("run tests/harness/fake_kube_probe.py");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let codes: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    for (case, code) in [
        ("no token", 401),
        ("another cluster's token", 401),
        ("a forged token", 401),
        ("its own token", 404),
        ("apply without fieldManager", 422),
        ("apply as a merge patch", 415),
        ("apply", 201),
        ("an unknown field", 422),
    ] {
        assert_eq!(codes[case], code, "{case}: {codes}");
    }
    // A namespace that enforces the `restricted` pod security standard: a pod with an inline
    // `nfs` volume is refused (the Deployment never has it), one with an emptyDir runs.
    let nfs = &codes["restricted: an nfs volume's pods"];
    assert_eq!(nfs[0], 0, "{codes}");
    assert!(
        nfs[1]
            .as_str()
            .unwrap_or_default()
            .contains(r#"violates PodSecurity "restricted:latest": restricted volume types (volume "v" uses restricted volume type "nfs")"#),
        "{codes}"
    );
    assert_eq!(
        codes["restricted: an emptyDir's pods"],
        serde_json::json!([1]),
        "{codes}"
    );
}

/// `bookstore render --stack eks --out DIR/rendered` (no AWS call).
fn render(dir: &Path) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_bookstore"))
        .current_dir(dir)
        .args(["render", "--stack", "eks", "--out", "rendered"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `render --stack eks` writes the app's Kubernetes objects; they pass Kubernetes' own schemas
/// in strict mode (no field the API does not have) and carry no secret value.
#[test]
fn the_rendered_manifests_pass_the_schema_check_in_strict_mode() {
    let dir = TempDir::new("eks-render");
    render(dir.path());
    let folder = dir.path().join("rendered/app/kubernetes");
    let mut files: Vec<_> = std::fs::read_dir(&folder)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    let names: Vec<_> = files
        .iter()
        .map(|f| f.file_name().unwrap().to_str().unwrap().to_string())
        .collect();
    assert_eq!(
        names,
        [
            "deployment.yaml",
            "namespace.yaml",
            "persistentvolume.yaml",
            "persistentvolumeclaim.yaml",
            "secret.yaml",
            "service.yaml"
        ]
    );
    let check =
        std::process::Command::new(common::manifest_dir().join(".venv/bin/kubernetes-validate"))
            .args(["--strict", "--kubernetes-version", "1.35.0"])
            .args(&files)
            .output()
            .expect("kubernetes-validate (scripts/install-moto.sh installs it)");
    let report = String::from_utf8_lossy(&check.stdout).into_owned()
        + &String::from_utf8_lossy(&check.stderr);
    assert!(check.status.success(), "{report}");
    assert_eq!(report.matches("INFO").count(), 6, "{report}");
    let secret = std::fs::read_to_string(folder.join("secret.yaml")).unwrap();
    assert!(
        !secret
            .lines()
            .any(|l| l.starts_with("data:") || l.starts_with("stringData:")),
        "{secret}"
    );
}

fn journal(dir: &Path) -> String {
    std::fs::read_to_string(dir.join(".bookstore/eks").join(ENV).join("journal.jsonl"))
        .unwrap_or_default()
}

/// Starts `up` and SIGKILLs it once the journal says a resource of `kind` was created (and is
/// being waited for).
fn kill_after_created(moto: &Moto, dir: &Path, kind: &str) {
    let mut run = moto
        .cli_with_rds_ca(dir, &["up", "--stack", "eks", "--env", ENV])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let start = std::time::Instant::now();
    let created = format!(r#""event":"created","kind":"{kind}""#);
    while !journal(dir).contains(&created) {
        assert!(
            start.elapsed() < std::time::Duration::from_secs(180),
            "{}",
            journal(dir)
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    run.kill().unwrap();
    run.wait().unwrap();
}

#[test]
fn sigkill_during_the_cluster_and_node_group_waits_then_up_resumes_without_a_second_one() {
    let moto = Moto::start(1.5);
    let dir = TempDir::new("eks-kill");
    kill_after_created(&moto, dir.path(), "cluster");
    moto.clear_calls();
    kill_after_created(&moto, dir.path(), "node-group");
    assert_eq!(
        moto.count("CreateCluster"),
        0,
        "the killed run's cluster is adopted"
    );
    moto.clear_calls();
    experimental(&moto, dir.path(), &["up", "--stack", "eks", "--env", ENV]).ok();
    assert_eq!(moto.count("CreateCluster"), 0);
    assert_eq!(
        moto.count("CreateNodegroup"),
        0,
        "the killed run's node group is adopted"
    );
    let nodes = moto
        .aws()
        .instances_tagged("eks:nodegroup-name", &format!("bs-{ENV}-eks-nodes"));
    assert_eq!(nodes.len(), 2, "{nodes:?}");
    moto.run(
        dir.path(),
        &["down", "--stack", "eks", "--env", ENV, "--yes"],
    )
    .ok();
    let left = moto.aws().everything(ENV);
    assert!(left.is_empty(), "left after down: {left:?}");
}

/// The nodes' user data, as rendered: one MIME part that EKS's nodeadm runs beside its own; its
/// script passes shellcheck and, run for real (with `mount` and `umount` stood in for, as the
/// test machine has no EFS), makes the covers directory owned by the app's user, 0750.
#[test]
fn each_node_makes_the_covers_directory_for_the_app_user() {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let dir = TempDir::new("eks-uploads");
    render(dir.path());
    let user_data =
        std::fs::read_to_string(dir.path().join("rendered/node-template/user-data")).unwrap();
    assert!(user_data.starts_with("MIME-Version: 1.0\n"), "{user_data}");
    let script = user_data
        .split("Content-Type: text/x-shellscript; charset=\"us-ascii\"\n\n")
        .nth(1)
        .and_then(|rest| rest.split("\n--BOOKSTORE--").next())
        .expect("a shell part")
        .to_string();
    assert!(script.starts_with("#!/bin/bash\n"), "{script}");
    common::shellcheck(dir.path(), "uploads.sh", &script);

    // `mount` records what it was asked; the directory is made on the "file system".
    let bin = dir.path().join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    for (name, body) in [
        ("mount", "#!/bin/sh\necho \"$@\" >>\"$MOUNT_LOG\"\n"),
        ("umount", "#!/bin/sh\necho \"umount $*\" >>\"$MOUNT_LOG\"\n"),
    ] {
        let path = bin.join(name);
        std::fs::write(&path, body).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let efs = dir.path().join("efs");
    let log = dir.path().join("mount.log");
    let run = std::process::Command::new("bash")
        .arg("-c")
        .arg(&script)
        .env(
            "PATH",
            format!("{}:{}", bin.display(), std::env::var("PATH").unwrap()),
        )
        .env("BOOKSTORE_EFS_MOUNT", &efs)
        .env("MOUNT_LOG", &log)
        .output()
        .unwrap();
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let mounts = std::fs::read_to_string(&log).unwrap();
    assert!(
        mounts.starts_with("-t nfs4 -o nfsvers=4.1,")
            && mounts.contains(".efs.us-east-1.amazonaws.com:/ ")
            && mounts.contains("umount "),
        "{mounts}"
    );
    let uploads = std::fs::metadata(efs.join("uploads")).unwrap();
    if running_as_root() {
        assert_eq!((uploads.uid(), uploads.gid()), (10001, 10001));
    } else {
        eprintln!("skipped: the owner check needs root (install -o)");
    }
    assert_eq!(uploads.permissions().mode() & 0o777, 0o750);
}

fn running_as_root() -> bool {
    std::process::Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

fn deployment_of(moto: &Moto) -> serde_json::Value {
    moto.kube()[format!("bs-{ENV}-eks-cluster")]["objects"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["kind"] == "Deployment")
        .unwrap()
        .clone()
}

/// The image the CLI built and pushed is real: the test's dockerd pulls it from the registry that
/// stands in for ECR and runs it as the Deployment does (its user, environment, read-only root,
/// the writable directories the pod mounts, no capabilities), and the app answers its health
/// path. A new app binary then pushes only what changed (the app layer and the config, not the
/// system layer) and the Deployment moves to the new digest.
#[test]
fn the_pushed_image_runs_as_the_deployment_runs_it_and_a_new_app_pushes_one_layer() {
    let moto = Moto::start(0.3);
    let dir = TempDir::new("eks-image");
    experimental(&moto, dir.path(), &["up", "--stack", "eks", "--env", ENV]).ok();
    let deployment = deployment_of(&moto);
    let container = &deployment["spec"]["template"]["spec"]["containers"][0];
    let image = container["image"].as_str().unwrap();
    let digest = image.split_once('@').unwrap().1.to_string();
    let upstream = moto.registry()["upstream"].as_u64().unwrap();
    let local = format!("127.0.0.1:{upstream}/bs-{ENV}-eks-repo@{digest}");
    let (ok, out) = docker(&["pull", "-q", &local]);
    assert!(ok, "docker pull {local}: {out}");

    let pod = &deployment["spec"]["template"]["spec"];
    let uid = pod["securityContext"]["runAsUser"].as_u64().unwrap();
    let mut args: Vec<String> = vec![
        "run".into(),
        "-d".into(),
        "--read-only".into(),
        "--cap-drop=ALL".into(),
        "--security-opt=no-new-privileges".into(),
        format!("--user={uid}:{uid}"),
        format!("--tmpfs=/data:uid={uid},gid={uid},mode=0750"),
        "--tmpfs=/tmp".into(),
        "-p".into(),
        "127.0.0.1::8080".into(),
    ];
    // The Deployment's environment, but the database: the app's default (SQLite in the pod's
    // /data) instead of RDS, which is not here.
    for e in container["env"].as_array().unwrap() {
        let name = e["name"].as_str().unwrap();
        if [
            "DATABASE_URL",
            "BOOKSTORE_DB_SECRET_FILE",
            "BOOKSTORE_UPLOADS_DIR",
        ]
        .contains(&name)
        {
            continue;
        }
        args.push(format!("--env={name}={}", e["value"].as_str().unwrap()));
    }
    args.push(local.clone());
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let (ok, id) = docker(&args);
    assert!(ok, "docker run: {id}");
    let id = id.trim().to_string();
    let (_, port) = docker(&["port", &id, "8080/tcp"]);
    let port = port.trim().rsplit(':').next().unwrap().to_string();
    let health = deployment["spec"]["template"]["spec"]["containers"][0]["readinessProbe"]
        ["httpGet"]["path"]
        .as_str()
        .unwrap()
        .to_string();
    let started = std::time::Instant::now();
    let answer = loop {
        let got = std::process::Command::new("curl")
            .args(["-s", "-o", "/dev/null", "-w", "%{http_code}"])
            .arg(format!("http://127.0.0.1:{port}{health}"))
            .output()
            .unwrap();
        let code = String::from_utf8_lossy(&got.stdout).to_string();
        if code == "200" || started.elapsed() > std::time::Duration::from_secs(30) {
            break code;
        }
        std::thread::sleep(std::time::Duration::from_millis(250));
    };
    let (_, logs) = docker(&["logs", &id]);
    let (_, user) = docker(&["inspect", "-f", "{{.Config.User}}", &id]);
    docker(&["rm", "-f", &id]);
    assert_eq!(answer, "200", "the app's health path: {logs}");
    assert_eq!(user.trim(), format!("{uid}:{uid}"));

    // A new app: the same binary with bytes appended (still the same program, another sha256).
    let (app, _) = common::another_build(dir.path());
    let seen = moto.registry()["requests"].as_array().unwrap().len();
    experimental(
        &moto,
        dir.path(),
        &[
            "up",
            "--stack",
            "eks",
            "--env",
            ENV,
            "--app-binary",
            app.to_str().unwrap(),
        ],
    )
    .ok();
    let registry = moto.registry();
    let since = &registry["requests"].as_array().unwrap()[seen..];
    let uploads = since.iter().filter(|r| r["method"] == "POST").count();
    assert_eq!(uploads, 2, "the app layer and the config only: {since:?}");
    let rolled = deployment_of(&moto);
    let new_image = rolled["spec"]["template"]["spec"]["containers"][0]["image"]
        .as_str()
        .unwrap();
    assert_ne!(new_image, image);
    assert!(!new_image.ends_with(&digest), "{new_image}");
    assert_eq!(rolled["metadata"]["generation"], 2, "{rolled}");
    moto.run(
        dir.path(),
        &["down", "--stack", "eks", "--env", ENV, "--yes"],
    )
    .ok();
    assert!(moto.aws().everything(ENV).is_empty());
}
