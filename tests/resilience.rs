//! Runs that die half-way, throttling, server errors, expired tokens, other people's resources:
//! every case ends converged (or cleanly refused), with nothing duplicated and nothing orphaned.

mod common;

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use common::{ENV, Moto, TempDir};

fn journal(dir: &Path) -> String {
    std::fs::read_to_string(dir.join(".bookstore/asg").join(ENV).join("journal.jsonl"))
        .unwrap_or_default()
}

fn wait_for_journal(dir: &Path, needle: &str) {
    let start = Instant::now();
    while !journal(dir).contains(needle) {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "journal never got {needle}:\n{}",
            journal(dir)
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Starts `up` and SIGKILLs it as soon as the journal holds `needle`.
fn sigkill_up_after(moto: &Moto, dir: &Path, needle: &str) {
    let mut up = moto
        .cli(dir, &["up", "--stack", "asg", "--env", ENV])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_for_journal(dir, needle);
    up.kill().unwrap();
    up.wait().unwrap();
}

/// The network resources of a converged asg stack: 1 VPC, 2 subnets, 1 gateway, 1 route table, 4 groups.
const EC2_RESOURCES: usize = 9;

#[test]
fn sigkill_during_a_create_call_then_up_adopts_instead_of_duplicating() {
    let moto = Moto::start(0.0);
    let dir = TempDir::new("kill-create");
    // CreateVpc takes 3 s: the process dies while AWS is still making the VPC.
    moto.set_delays(0.0, 3.0);
    let mut up = moto
        .cli(dir.path(), &["up", "--stack", "asg", "--env", ENV])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_for_journal(dir.path(), r#""event":"intent","kind":"vpc""#);
    std::thread::sleep(Duration::from_millis(300));
    up.kill().unwrap();
    up.wait().unwrap();
    assert!(
        !journal(dir.path()).contains(r#""event":"created","kind":"vpc""#),
        "the kill came too late"
    );
    std::thread::sleep(Duration::from_secs(3)); // the in-flight CreateVpc completes server-side
    moto.set_delays(0.0, 0.0);
    let resumed = moto
        .run(dir.path(), &["up", "--stack", "asg", "--env", ENV])
        .ok();
    // Killed after CreateVpc but before DNS hostnames were switched on: adopted, then repaired.
    assert!(
        resumed.stderr.contains("vpc (vpc) updated"),
        "the VPC made before the kill is adopted and repaired:\n{}",
        resumed.stderr
    );
    assert_eq!(moto.count("CreateVpc"), 1, "no second VPC");
    assert!(journal(dir.path()).contains(r#""event":"adopted","kind":"vpc""#));
    assert_eq!(
        moto.aws().tagged_ec2(ENV).len(),
        EC2_RESOURCES,
        "{:?}",
        moto.aws().tagged_ec2(ENV)
    );
    moto.down_leaves_nothing(dir.path());
}

#[test]
fn sigkill_during_the_load_balancer_wait_then_up_resumes_and_down_cleans() {
    let moto = Moto::start(2.5);
    let dir = TempDir::new("kill-wait");
    sigkill_up_after(
        &moto,
        dir.path(),
        r#""event":"created","kind":"load-balancer""#,
    );
    let plan = moto.run(dir.path(), &["plan", "--stack", "asg", "--env", ENV]);
    assert_eq!(plan.code, 2);
    assert!(
        plan.stdout.contains("+ create cert") && plan.stdout.contains("= keep   vpc"),
        "{}",
        plan.stdout
    );
    moto.clear_calls();
    moto.run(dir.path(), &["up", "--stack", "asg", "--env", ENV])
        .ok();
    for action in [
        "CreateVpc",
        "CreateSubnet",
        "CreateLoadBalancer",
        "CreateTargetGroup",
        "CreateSecurityGroup",
    ] {
        assert_eq!(moto.count(action), 0, "{action} repeated after the kill");
    }
    assert_eq!(moto.count("ImportCertificate"), 1);
    assert_eq!(moto.count("CreateListener"), 2);
    assert_eq!(
        moto.aws().elb_and_acm().len(),
        3,
        "one LB, one TG, one certificate: {:?}",
        moto.aws().elb_and_acm()
    );
    moto.down_leaves_nothing(dir.path());
}

/// Builder instances (bookstore:key=builder) as (id, state).
fn builders(moto: &Moto) -> Vec<(String, String)> {
    moto.aws()
        .builders()
        .iter()
        .map(|i| {
            (
                i.instance_id().unwrap().to_string(),
                i.state().unwrap().name().unwrap().as_str().to_string(),
            )
        })
        .collect()
}

fn images(moto: &Moto) -> Vec<String> {
    let aws = moto.aws();
    aws.rt.block_on(async {
        let out = aws
            .ec2
            .describe_images()
            .owners("self")
            .send()
            .await
            .unwrap();
        out.images()
            .iter()
            .map(|i| i.image_id().unwrap().to_string())
            .collect()
    })
}

#[test]
fn sigkill_during_the_bake_then_up_resumes_with_the_same_builder_and_down_cleans() {
    let moto = Moto::start(0.0);
    let dir = TempDir::new("kill-bake");
    // The builder "installs" for 8 s: the process dies while it does.
    moto.configure(r#"{"bake_seconds": 8}"#);
    let mut up = moto
        .cli(dir.path(), &["up", "--stack", "asg", "--env", ENV])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_for_journal(dir.path(), r#""event":"intent","kind":"image""#);
    let start = Instant::now();
    while moto.count("RunInstances") == 0 {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "no builder launched"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_millis(500));
    up.kill().unwrap();
    up.wait().unwrap();
    let before = builders(&moto);
    assert_eq!(before.len(), 1, "{before:?}");
    assert_ne!(before[0].1, "terminated", "the kill came too late");
    assert!(images(&moto).is_empty(), "the kill came too late");

    moto.configure(r#"{"bake_seconds": 0.5}"#);
    moto.clear_calls();
    let resumed = moto
        .run(dir.path(), &["up", "--stack", "asg", "--env", ENV])
        .ok();
    assert_eq!(
        moto.count("RunInstances"),
        0,
        "the builder of the killed run is reused, not launched again:\n{}",
        resumed.stderr
    );
    assert_eq!(moto.count("CreateImage"), 1);
    let after = builders(&moto);
    assert_eq!(after.len(), 1, "{after:?}");
    assert_eq!(after[0], (before[0].0.clone(), "terminated".to_string()));
    assert_eq!(images(&moto).len(), 1);

    moto.down_leaves_nothing(dir.path());
}

#[test]
fn sigkill_during_the_database_wait_then_up_resumes_and_down_cleans() {
    let moto = Moto::start(2.0);
    let dir = TempDir::new("kill-db");
    sigkill_up_after(&moto, dir.path(), r#""event":"created","kind":"database""#);
    let plan = moto.run(dir.path(), &["plan", "--stack", "asg", "--env", ENV]);
    assert_eq!(plan.code, 2);
    assert!(plan.stdout.contains("+ create asg"), "{}", plan.stdout);
    moto.clear_calls();
    moto.run(dir.path(), &["up", "--stack", "asg", "--env", ENV])
        .ok();
    assert_eq!(
        moto.count("CreateDBInstance"),
        0,
        "the database is waited for, not made again"
    );
    assert_eq!(moto.count("CreateAutoScalingGroup"), 1);
    let left = moto.aws().rds_and_efs();
    assert_eq!(
        left.iter().filter(|l| l.starts_with("db ")).count(),
        1,
        "{left:?}"
    );
    moto.down_leaves_nothing(dir.path());
}

#[test]
fn a_failed_bake_shows_the_builder_console_and_bake_alone_makes_only_what_it_needs() {
    let moto = Moto::start(0.0);
    let dir = TempDir::new("bake-fails");
    moto.configure(r#"{"bake_fails": true}"#);
    let failed = moto.run(dir.path(), &["up", "--stack", "asg", "--env", ENV]);
    assert_eq!(failed.code, 1, "{}", failed.stderr);
    assert!(
        failed.stderr.contains("BOOKSTORE-BAKE-FAILED at line 42"),
        "{}",
        failed.stderr
    );
    assert!(
        builders(&moto)
            .iter()
            .all(|(_, state)| state == "terminated"),
        "a failed builder is not kept to be resumed: {:?}",
        builders(&moto)
    );
    assert!(images(&moto).is_empty());

    moto.configure(r#"{"bake_fails": false}"#);
    let down = moto.run(
        dir.path(),
        &["down", "--stack", "asg", "--env", ENV, "--yes"],
    );
    down.ok();
    moto.clear_calls();
    let bake = moto
        .run(dir.path(), &["bake", "--stack", "asg", "--env", ENV])
        .ok();
    assert!(bake.stdout.contains("image_id = ami-"), "{}", bake.stdout);
    for not_needed in [
        "CreateDBInstance",
        "CreateFileSystem",
        "CreateLoadBalancer",
        "CreateAutoScalingGroup",
        "CreateLaunchTemplate",
    ] {
        assert_eq!(moto.count(not_needed), 0, "bake made {not_needed}");
    }
    assert_eq!(images(&moto).len(), 1);
    // A second bake of the same app bakes nothing.
    moto.clear_calls();
    moto.run(dir.path(), &["bake", "--stack", "asg", "--env", ENV])
        .ok();
    assert!(
        moto.mutating_calls().is_empty(),
        "{:?}",
        moto.mutating_calls()
    );
    moto.down_leaves_nothing(dir.path());
}

#[test]
fn a_throttling_storm_is_retried_with_backoff() {
    let moto = Moto::start(0.0);
    let dir = TempDir::new("throttle");
    moto.fault(
        r#"[{"action": "CreateSecurityGroup", "code": "Throttling", "count": 3},
            {"action": "DescribeSubnets", "code": "RequestLimitExceeded", "count": 2, "status": 503},
            {"action": "CreateLoadBalancer", "code": "Throttling", "count": 2},
            {"action": "ImportCertificate", "code": "ThrottlingException", "count": 2}]"#,
    );
    let up = moto
        .run(dir.path(), &["up", "--stack", "asg", "--env", ENV])
        .ok();
    assert!(up.stdout.contains("23 created"), "{}", up.stdout);
    assert_eq!(
        moto.count("CreateLoadBalancer"),
        3,
        "2 throttled + 1 accepted"
    );
    assert_eq!(moto.count("ImportCertificate"), 3);
    assert_eq!(moto.count("CreateSecurityGroup"), 4 + 3);
    assert_eq!(moto.aws().tagged_ec2(ENV).len(), EC2_RESOURCES);
}

#[test]
fn a_persistent_server_error_names_the_resource_and_a_rerun_converges() {
    let moto = Moto::start(0.0);
    let dir = TempDir::new("server-error");
    moto.fault(r#"[{"action": "CreateTargetGroup", "code": "InternalFailure", "status": 500, "message": "We encountered an internal error"}]"#);
    let mut cmd = moto.cli(dir.path(), &["up", "--stack", "asg", "--env", ENV]);
    let failed = cmd.env("AWS_MAX_ATTEMPTS", "3").output().unwrap();
    let stderr = String::from_utf8_lossy(&failed.stderr);
    assert_eq!(failed.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("creating tg (bs-t-asg-tg)") && stderr.contains("InternalFailure"),
        "{stderr}"
    );
    assert!(
        stderr.contains("bookstore up --stack asg --env t"),
        "the hint names the command to re-run: {stderr}"
    );
    assert_eq!(
        moto.count("CreateTargetGroup"),
        3,
        "retried by the SDK up to AWS_MAX_ATTEMPTS"
    );
    // The redirect listener needs only the load balancer; the HTTPS one forwards to the group.
    assert!(
        !journal(dir.path()).contains("listener-https"),
        "{}",
        journal(dir.path())
    );
    moto.clear_faults();
    moto.run(dir.path(), &["up", "--stack", "asg", "--env", ENV])
        .ok();
    assert_eq!(
        moto.count("CreateVpc"),
        1,
        "the VPC from the failed run is reused"
    );
    assert_eq!(moto.aws().elb_and_acm().len(), 3);
}

#[test]
fn an_expired_token_stops_at_once_without_retrying_and_up_resumes() {
    let moto = Moto::start(0.0);
    let dir = TempDir::new("expired");
    moto.fault(r#"[{"action": "CreateSubnet", "code": "ExpiredToken", "message": "The security token included in the request is expired"}]"#);
    let run = moto.run(dir.path(), &["up", "--stack", "asg", "--env", ENV]);
    assert_eq!(run.code, 3, "{}", run.stderr);
    assert!(
        run.stderr.contains("ExpiredToken") && run.stderr.contains("refresh the credentials"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr
            .contains("run `bookstore up --stack asg --env t`"),
        "{}",
        run.stderr
    );
    assert!(
        moto.count("CreateSubnet") <= 2,
        "never retried: {} calls",
        moto.count("CreateSubnet")
    );
    assert_eq!(moto.count("CreateLoadBalancer"), 0);

    // Refused at the preflight: nothing else is even listed.
    moto.clear_faults();
    moto.clear_calls();
    moto.fault(r#"[{"action": "GetCallerIdentity", "code": "ExpiredToken", "count": 1}]"#);
    let run = moto.run(dir.path(), &["up", "--stack", "asg", "--env", ENV]);
    assert_eq!(run.code, 3, "{}", run.stderr);
    assert_eq!(moto.calls().len(), 1, "{:?}", moto.calls());

    let resumed = moto
        .run(dir.path(), &["up", "--stack", "asg", "--env", ENV])
        .ok();
    assert!(resumed.stdout.contains("created"), "{}", resumed.stdout);
    assert_eq!(
        moto.count("CreateVpc"),
        0,
        "the VPC of the first run is reused"
    );
    assert_eq!(moto.aws().tagged_ec2(ENV).len(), EC2_RESOURCES);
}

#[test]
fn down_deletes_nothing_it_does_not_own() {
    let moto = Moto::start(0.0);
    let dir = TempDir::new("owner");
    let aws = moto.aws();
    let (untagged, other_env) = aws.rt.block_on(async {
        let untagged = aws
            .ec2
            .create_vpc()
            .cidr_block("10.9.0.0/16")
            .send()
            .await
            .unwrap();
        let tag = |k: &str, v: &str| aws_sdk_ec2::types::Tag::builder().key(k).value(v).build();
        let other = aws
            .ec2
            .create_vpc()
            .cidr_block("10.8.0.0/16")
            .tag_specifications(
                aws_sdk_ec2::types::TagSpecification::builder()
                    .resource_type(aws_sdk_ec2::types::ResourceType::Vpc)
                    .tags(tag("bookstore:managed-by", "bookstore"))
                    .tags(tag("bookstore:stack", "asg"))
                    .tags(tag("bookstore:env", "someone-else"))
                    .tags(tag("bookstore:key", "vpc"))
                    .build(),
            )
            .send()
            .await
            .unwrap();
        (
            untagged.vpc().unwrap().vpc_id().unwrap().to_string(),
            other.vpc().unwrap().vpc_id().unwrap().to_string(),
        )
    });
    // A journal that (wrongly) claims the untagged VPC, as a hand-edited or foreign journal might.
    let state = dir.path().join(".bookstore/asg").join(ENV);
    std::fs::create_dir_all(&state).unwrap();
    std::fs::write(state.join("journal.jsonl"), format!("{{\"ts\":0,\"event\":\"created\",\"kind\":\"vpc\",\"key\":\"vpc\",\"name\":\"x\",\"id\":\"{untagged}\"}}\n")).unwrap();
    let down = moto
        .run(
            dir.path(),
            &["down", "--stack", "asg", "--env", ENV, "--yes"],
        )
        .ok();
    assert!(down.stdout.contains("Nothing to delete"), "{}", down.stdout);
    moto.run(dir.path(), &["up", "--stack", "asg", "--env", ENV])
        .ok();
    let down = moto
        .run(
            dir.path(),
            &["down", "--stack", "asg", "--env", ENV, "--yes"],
        )
        .ok();
    assert!(
        down.stderr.contains(&format!(
            "{untagged} does not carry this stack's bookstore tags: left alone"
        )),
        "{}",
        down.stderr
    );
    let still: Vec<String> = aws.rt.block_on(async {
        let out = aws
            .ec2
            .describe_vpcs()
            .vpc_ids(&untagged)
            .vpc_ids(&other_env)
            .send()
            .await
            .unwrap();
        out.vpcs()
            .iter()
            .map(|v| v.vpc_id().unwrap().to_string())
            .collect()
    });
    assert_eq!(still.len(), 2, "both foreign VPCs survive: {still:?}");
}

#[test]
fn a_second_run_on_the_same_environment_is_locked_out() {
    let moto = Moto::start(2.0);
    let dir = TempDir::new("lock");
    let mut first = moto
        .cli(dir.path(), &["up", "--stack", "asg", "--env", ENV])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_for_journal(dir.path(), r#""event":"intent""#);
    let second = moto.run(dir.path(), &["up", "--stack", "asg", "--env", ENV]);
    assert_eq!(second.code, 4, "{}", second.stderr);
    assert!(
        second.stderr.contains("holds the lock") && second.stderr.contains("running `bookstore up"),
        "{}",
        second.stderr
    );
    assert!(first.wait().unwrap().success());
    // The lock is released by the OS when the holder exits, even by SIGKILL.
    let mut killed = moto
        .cli(
            dir.path(),
            &["down", "--stack", "asg", "--env", ENV, "--yes"],
        )
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(500));
    killed.kill().unwrap();
    killed.wait().unwrap();
    moto.run(
        dir.path(),
        &["down", "--stack", "asg", "--env", ENV, "--yes"],
    )
    .ok();
    assert!(moto.aws().everything(ENV).is_empty());
}

#[test]
fn ctrl_c_stops_with_a_resume_hint_and_up_resumes() {
    let moto = Moto::start(2.0);
    let dir = TempDir::new("sigint");
    let up = moto
        .cli(dir.path(), &["up", "--stack", "asg", "--env", ENV])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_for_journal(dir.path(), r#""event":"created","kind":"vpc""#);
    let status = std::process::Command::new("kill")
        .args(["-INT", &up.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let out = up.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(130), "{stderr}");
    assert!(
        stderr.contains("interrupted") && stderr.contains("to resume"),
        "{stderr}"
    );
    moto.run(dir.path(), &["up", "--stack", "asg", "--env", ENV])
        .ok();
    assert_eq!(moto.count("CreateVpc"), 1);
}
