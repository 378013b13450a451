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
