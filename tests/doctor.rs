//! `bookstore doctor` through the real binary: it passes on the emulator's Learner Lab account, and
//! fails naming the cause and the fix when the instance profile is missing or the account already
//! runs too many instances. It only reads: no mutating call.

mod common;

use common::{ENV, Moto, TempDir};

fn doctor(moto: &Moto, dir: &std::path::Path) -> (i32, serde_json::Value) {
    let run = moto.run(
        dir,
        &["--output", "json", "doctor", "--stack", "asg", "--env", ENV],
    );
    (run.code, run.json())
}

fn verdict<'a>(report: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["check"] == name)
        .unwrap_or_else(|| panic!("no check {name}: {report}"))
}

#[test]
fn doctor_passes_on_the_lab_and_names_a_missing_profile_and_the_instance_limit() {
    let moto = Moto::start(0.0);
    let dir = TempDir::new("doctor");
    let (code, report) = doctor(&moto, dir.path());
    assert_eq!(code, 0, "{report}");
    for c in report["checks"].as_array().unwrap() {
        assert_eq!(c["verdict"], "ok", "{report}");
    }
    assert!(
        verdict(&report, "credentials")["detail"]
            .as_str()
            .unwrap()
            .contains("account 123456789012"),
        "{report}"
    );
    assert_eq!(
        verdict(&report, "instance profile")["detail"],
        "LabInstanceProfile (role LabRole)"
    );
    assert!(
        verdict(&report, "instances")["detail"]
            .as_str()
            .unwrap()
            .starts_with("0 running in the account; a new asg env adds 3"),
        "{report}"
    );
    assert!(
        moto.mutating_calls().is_empty(),
        "{:?}",
        moto.mutating_calls()
    );

    // Seven instances started by hand: with the asg's 3, over the 9.
    let aws = moto.aws();
    aws.run_foreign_instances(7);
    let (code, report) = doctor(&moto, dir.path());
    assert_eq!(code, 1, "{report}");
    let instances = verdict(&report, "instances");
    assert_eq!(instances["verdict"], "fail", "{report}");
    assert!(
        instances["detail"]
            .as_str()
            .unwrap()
            .contains("10 of the Learner Lab's 9"),
        "{report}"
    );
    assert!(
        instances["fix"]
            .as_str()
            .unwrap()
            .contains("bookstore down")
    );

    // No instance profile: the lab's credentials are not these.
    aws.rt.block_on(async {
        aws.iam
            .remove_role_from_instance_profile()
            .instance_profile_name("LabInstanceProfile")
            .role_name("LabRole")
            .send()
            .await
            .unwrap();
        aws.iam
            .delete_instance_profile()
            .instance_profile_name("LabInstanceProfile")
            .send()
            .await
            .unwrap();
    });
    let (code, report) = doctor(&moto, dir.path());
    assert_eq!(code, 1);
    let profile = verdict(&report, "instance profile");
    assert_eq!(profile["verdict"], "fail", "{report}");
    assert_eq!(
        profile["detail"],
        "LabInstanceProfile does not exist in this account"
    );
    assert!(
        profile["fix"]
            .as_str()
            .unwrap()
            .contains("instance_profile: none")
    );

    // Text for people: a verdict per line, the fix under a failure.
    let text = moto.run(dir.path(), &["doctor", "--stack", "asg", "--env", ENV]);
    assert_eq!(text.code, 1);
    assert!(
        text.stdout.contains("FAIL  instance profile"),
        "{}",
        text.stdout
    );
    assert!(text.stdout.contains("OK    credentials"), "{}", text.stdout);
}

/// `doctor` proves with IAM's policy simulator every action the stack needs, of the caller and of
/// the role behind the instance profile: a denied one fails naming the action and what in the
/// stack needs it; a simulator the credentials may not call is a warning, not a verdict.
#[test]
fn doctor_proves_the_permissions_and_names_a_missing_one() {
    let moto = Moto::start(0.0);
    let dir = TempDir::new("doctor-permissions");
    let (code, report) = doctor(&moto, dir.path());
    assert_eq!(code, 0, "{report}");
    assert_eq!(verdict(&report, "permissions")["verdict"], "ok", "{report}");
    assert_eq!(
        verdict(&report, "machine actions")["verdict"],
        "ok",
        "{report}"
    );
    let cli = report["permissions"]["cli"].as_array().unwrap();
    for needed in [
        "ec2:CreateLaunchTemplate",
        "autoscaling:CreateAutoScalingGroup",
        "iam:PassRole",
        "rds:CreateDBInstance",
    ] {
        assert!(cli.iter().any(|a| a == needed), "{needed}: {report}");
    }
    assert_eq!(
        report["permissions"]["machine_role"],
        "arn:aws:iam::123456789012:role/LabRole"
    );

    // The caller may not make launch templates.
    moto.configure(r#"{"iam_denied": {"*": ["ec2:CreateLaunchTemplate"]}}"#);
    let (code, report) = doctor(&moto, dir.path());
    assert_eq!(code, 1, "{report}");
    let c = verdict(&report, "permissions");
    assert_eq!(c["verdict"], "fail", "{report}");
    let detail = c["detail"].as_str().unwrap();
    assert!(
        detail.contains("ec2:CreateLaunchTemplate (asg: launch-template `lt`)"),
        "{detail}"
    );
    assert!(!c["fix"].as_str().unwrap().is_empty());

    // The machines' role may not read secrets.
    moto.configure(
        r#"{"iam_denied": {"arn:aws:iam::123456789012:role/LabRole": ["secretsmanager:GetSecretValue"]}}"#,
    );
    let (code, report) = doctor(&moto, dir.path());
    assert_eq!(code, 1, "{report}");
    assert_eq!(verdict(&report, "permissions")["verdict"], "ok", "{report}");
    let c = verdict(&report, "machine actions");
    assert_eq!(c["verdict"], "fail", "{report}");
    assert!(
        c["detail"]
            .as_str()
            .unwrap()
            .contains("secretsmanager:GetSecretValue (asg: the instances read the database secret"),
        "{report}"
    );

    // Credentials that may not ask the simulator: unproved, said as a warning.
    moto.configure(r#"{"iam_denied": null, "iam_simulator_refused": true}"#);
    let (code, report) = doctor(&moto, dir.path());
    assert_eq!(code, 0, "{report}");
    let c = verdict(&report, "permissions");
    assert_eq!(c["verdict"], "warn", "{report}");
    assert!(
        c["fix"]
            .as_str()
            .unwrap()
            .contains("iam:SimulatePrincipalPolicy"),
        "{report}"
    );
    assert!(
        moto.mutating_calls().is_empty(),
        "{:?}",
        moto.mutating_calls()
    );
}

/// Every AWS call in every script a stack puts on its machines is an action `doctor` proves for
/// the machines' role: the scripts are read as rendered (`aws <service> … <command>`, and shell
/// functions that wrap `aws <service>`), so a new call without its permission fails here.
#[test]
fn every_aws_call_in_the_machines_scripts_is_proved_by_doctor() {
    let moto = Moto::start(0.0);
    let dir = TempDir::new("doctor-machines");
    for stack in ["asg", "monolith", "swarm"] {
        let report = moto
            .run(
                dir.path(),
                &["--output", "json", "doctor", "--stack", stack, "--env", ENV],
            )
            .json();
        let proved: Vec<String> = report["permissions"]["machines"]
            .as_array()
            .unwrap_or_else(|| panic!("{stack}: {report}"))
            .iter()
            .map(|a| a.as_str().unwrap().to_string())
            .collect();
        let rendered = dir.path().join(format!("rendered-{stack}"));
        moto.run(
            dir.path(),
            &[
                "render",
                "--stack",
                stack,
                "--env",
                ENV,
                "--out",
                rendered.to_str().unwrap(),
            ],
        )
        .ok();
        let mut calls = std::collections::BTreeSet::new();
        for file in files_under(&rendered) {
            calls.extend(aws_cli_calls(&std::fs::read_to_string(&file).unwrap()));
        }
        assert!(
            !calls.is_empty(),
            "{stack}: no AWS call found in its scripts"
        );
        for call in &calls {
            assert!(
                proved.contains(call),
                "{stack}: its machines call {call}, which doctor does not prove ({proved:?})"
            );
        }
    }
}

fn files_under(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(files_under(&path));
        } else {
            out.push(path);
        }
    }
    out
}

/// `aws secretsmanager get-secret-value …` → `secretsmanager:GetSecretValue`, through shell
/// functions too (`aws_sm() { aws secretsmanager --region "$r" "$@"; }` then `aws_sm put-secret-value`).
fn aws_cli_calls(script: &str) -> Vec<String> {
    let camel = |cmd: &str| -> String {
        cmd.split('-')
            .map(|w| {
                let mut c = w.chars();
                c.next()
                    .map(|f| f.to_ascii_uppercase().to_string() + c.as_str())
                    .unwrap_or_default()
            })
            .collect()
    };
    let is_command = |t: &str| {
        !t.is_empty()
            && t.chars()
                .all(|c| c.is_ascii_lowercase() || c == '-' || c.is_ascii_digit())
    };
    let mut wrappers: Vec<(String, String)> = Vec::new();
    let mut calls = Vec::new();
    for line in script.lines() {
        let tokens: Vec<&str> = line.split_whitespace().collect();
        for (i, t) in tokens.iter().enumerate() {
            let t = t.trim_start_matches(['(', '$', '`']);
            if t == "aws" && i + 1 < tokens.len() && is_command(tokens[i + 1]) {
                let service = tokens[i + 1];
                // The command: the first plain word after the service, skipping options and
                // their values.
                let mut j = i + 2;
                let mut command = None;
                while j < tokens.len() {
                    let w = tokens[j];
                    if w.starts_with("--") {
                        j += 2;
                        continue;
                    }
                    if is_command(w) {
                        command = Some(w);
                    }
                    break;
                }
                match command {
                    Some(c) => calls.push(format!("{service}:{}", camel(c))),
                    None => {
                        // A wrapper: `name() { aws <service> … "$@"; }`.
                        if let Some(name) = tokens.first().and_then(|f| f.strip_suffix("()")) {
                            wrappers.push((name.to_string(), service.to_string()));
                        }
                    }
                }
            }
        }
    }
    for line in script.lines() {
        let tokens: Vec<&str> = line.split_whitespace().collect();
        for (i, t) in tokens.iter().enumerate() {
            let t = t.trim_start_matches(['(', '$', '`']);
            if let Some((_, service)) = wrappers.iter().find(|(n, _)| n == t)
                && let Some(next) = tokens.get(i + 1)
                && is_command(next)
            {
                calls.push(format!("{service}:{}", camel(next)));
            }
        }
    }
    calls
}
