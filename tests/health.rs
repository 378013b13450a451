//! `up` ends when the app answers: the group is ready once its instances pass the load balancer's
//! health check. The harness holds the targets unhealthy (AWS's reason code and description); `up`
//! then fails naming the targets, the reason and the last console lines of a failing instance, and
//! `status` shows each target's health as the harness set it. Released, `up` resumes and creates
//! nothing again.

mod common;

use common::{ENV, Moto, Run, TempDir};

const UNHEALTHY: &str = r#"{"state": "unhealthy", "reason": "Target.FailedHealthChecks", "description": "Health checks failed with these codes: [503]"}"#;

#[test]
fn up_waits_for_healthy_targets_and_fails_with_the_load_balancers_reasons() {
    let moto = Moto::start(0.0);
    let dir = TempDir::new("health");
    moto.configure(&format!(r#"{{"target_health": {{"*": {UNHEALTHY}}}}}"#));
    let run = Run::from(
        moto.cli(dir.path(), &["up", "--stack", "asg", "--env", ENV])
            .env("BOOKSTORE_READY_BUDGET_SECS", "4")
            .output()
            .unwrap(),
    );
    assert_eq!(run.code, 1, "{}", run.stderr);
    eprintln!("{}", run.stderr);
    for needle in [
        "asg",
        "0 of at least 2 instances healthy in the load balancer",
        "unhealthy (Target.FailedHealthChecks: Health checks failed with these codes: [503])",
        "last console lines of i-",
        "bookstore status",
    ] {
        assert!(
            run.stderr.contains(needle),
            "no `{needle}` in:\n{}",
            run.stderr
        );
    }

    // `status` reports each target as the load balancer sees it.
    let aws = moto.aws();
    let ids: Vec<String> = aws
        .instances_tagged("aws:autoscaling:groupName", &format!("bs-{ENV}-asg-asg"))
        .iter()
        .filter_map(|i| i.instance_id().map(str::to_string))
        .collect();
    assert_eq!(ids.len(), 2, "{ids:?}");
    moto.configure(&format!(
        r#"{{"target_health": {{"{}": {UNHEALTHY}}}}}"#,
        ids[0]
    ));
    let status = moto
        .run(
            dir.path(),
            &["--output", "json", "status", "--stack", "asg", "--env", ENV],
        )
        .ok()
        .json();
    for i in status["instances"].as_array().unwrap() {
        let (health, reason) = (i["target_health"].as_str(), i["target_reason"].as_str());
        if i["id"] == ids[0].as_str() {
            assert_eq!(
                (health, reason),
                (Some("unhealthy"), Some("Target.FailedHealthChecks")),
                "{status}"
            );
        } else {
            assert_eq!((health, reason), (Some("healthy"), Some("")), "{status}");
        }
    }

    // The app answers again: `up` finishes what it waited for and creates nothing.
    moto.configure(r#"{"target_health": null}"#);
    moto.clear_calls();
    moto.run(dir.path(), &["up", "--stack", "asg", "--env", ENV])
        .ok();
    assert_eq!(
        moto.count("CreateAutoScalingGroup") + moto.count("RunInstances"),
        0
    );
    moto.down_leaves_nothing(dir.path());
}

/// The monolith has no load balancer: `up` waits until its app answers `GET /healthz` through the
/// VM's proxy at the Elastic IP (here the harness answers as that nginx would).
#[test]
fn monolith_up_waits_until_its_app_answers_through_the_proxy() {
    let moto = Moto::start(0.0);
    let dir = TempDir::new("health-vm");
    moto.configure(r#"{"vm_health": 503}"#);
    let run = Run::from(
        moto.cli(dir.path(), &["up", "--stack", "monolith", "--env", ENV])
            .env("BOOKSTORE_READY_BUDGET_SECS", "4")
            .output()
            .unwrap(),
    );
    assert_eq!(run.code, 1, "{}", run.stderr);
    let aws = moto.aws();
    let eip = aws.rt.block_on(async {
        let out = aws.ec2.describe_addresses().send().await.unwrap();
        out.addresses()[0].public_ip().unwrap().to_string()
    });
    for needle in [
        "vm (i-",
        "was not ready after",
        &format!(
            "the app to answer: https://{eip}:{}/healthz answered 503",
            moto.health_port
        ),
        "last console lines of i-",
    ] {
        assert!(
            run.stderr.contains(needle),
            "no `{needle}` in:\n{}",
            run.stderr
        );
    }
    // `status` says what the app answers.
    let status = || {
        moto.run(
            dir.path(),
            &[
                "--output", "json", "status", "--stack", "monolith", "--env", ENV,
            ],
        )
        .ok()
        .json()
    };
    let status_now = status();
    let vm = &status_now["instances"][0];
    assert!(vm["app"].as_str().unwrap().contains("answered 503"), "{vm}");

    // The app answers: the next `up` waits for nothing more and creates nothing.
    moto.configure(r#"{"vm_health": 200}"#);
    let creates = moto.count("RunInstances");
    let done = moto
        .run(
            dir.path(),
            &[
                "--output", "json", "up", "--stack", "monolith", "--env", ENV,
            ],
        )
        .ok();
    assert_eq!(moto.count("RunInstances"), creates, "{}", done.stderr);
    let status = status();
    assert_eq!(status["instances"][0]["app"], "answering", "{status}");
    // The certificate `status` reads is the one the VM's proxy serves on that address.
    assert!(
        status["certificates"][0]["subject"]
            .as_str()
            .unwrap()
            .contains("harness vm"),
        "{status}"
    );
    moto.down_leaves_nothing_of(dir.path(), "monolith");
}
