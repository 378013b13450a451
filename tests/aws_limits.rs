//! Every stack at the longest names bookstore allows (a 12-character stack name and env), up, up
//! again and down against the harness, which checks every request against AWS's API models and
//! documented limits (names of load balancers, target groups, RDS identifiers, buckets, security
//! groups, launch templates and groups; tags; user data): AWS takes each one. And every action
//! called is one `doctor` proves for the stack.

mod common;

use common::{Moto, TempDir};

const LONG_ENV: &str = "abcdefghijkl";

#[test]
fn every_stack_at_its_longest_names_is_taken_by_aws_and_leaves_nothing() {
    let moto = Moto::start(0.0);
    let dir = TempDir::new("longest-names");
    for (kind, name) in [
        ("asg", "asglongnames"),
        ("monolith", "monolithlong"),
        ("swarm", "swarmlongest"),
        ("eks", "ekslongnames"),
    ] {
        // The eks image takes RDS's CA bundle from a file here (no internet).
        let run = |args: &[&str]| {
            let mut cmd = moto.cli(dir.path(), args);
            if let Ok(ca) = std::env::var("BOOKSTORE_TEST_MYSQL_CA") {
                cmd.env("BOOKSTORE_RDS_CA_BUNDLE", ca);
            }
            common::Run::from(cmd.output().expect("run bookstore"))
        };
        assert_eq!(name.len(), 12);
        let built_in =
            std::fs::read_to_string(common::manifest_dir().join(format!("stacks/{kind}.yaml")))
                .unwrap();
        let body = built_in.replacen(&format!("name: {kind}\n"), &format!("name: {name}\n"), 1);
        assert_ne!(body, built_in, "{kind}: the name line is replaced");
        dir.write(&format!("{name}.yaml"), &body);
        let file = format!("./{name}.yaml");
        moto.clear_calls();
        run(&["up", "--stack", &file, "--env", LONG_ENV]).ok();
        let mut called = moto.iam_actions();
        let unchecked = moto.unchecked_calls();
        assert!(
            unchecked.is_empty(),
            "{kind}: calls the harness could not check: {unchecked:?}"
        );
        moto.clear_calls();
        let again = run(&["up", "--stack", &file, "--env", LONG_ENV]).ok();
        assert!(
            moto.mutating_calls().is_empty(),
            "{kind}: a second up changes nothing: {:?}\n{}",
            moto.mutating_calls(),
            again.stderr
        );
        // Down (also checks that nothing is left and every call was checked), then the actions
        // of the second up and of down.
        moto.down_leaves_nothing_in(dir.path(), &file, LONG_ENV);
        called.extend(moto.iam_actions());
        // Every action the CLI called is one `doctor` proves for this stack: the list in
        // src/permissions.rs and the kinds' `actions` is complete.
        let doctor = moto
            .run(
                dir.path(),
                &[
                    "--output", "json", "doctor", "--stack", &file, "--env", LONG_ENV,
                ],
            )
            .json();
        let proved: std::collections::BTreeSet<String> = doctor["permissions"]["cli"]
            .as_array()
            .unwrap_or_else(|| panic!("{kind}: doctor lists no permissions: {doctor}"))
            .iter()
            .map(|a| a.as_str().unwrap().to_string())
            .collect();
        let missing: Vec<&String> = called.difference(&proved).collect();
        assert!(
            missing.is_empty(),
            "{kind}: the CLI called actions doctor does not prove: {missing:?}"
        );
        // The violations (none, or this test fails when the emulator is dropped) are counted
        // per stack so the failing one is named.
        let seen = moto.violations();
        assert!(seen.is_empty(), "{kind}: AWS would refuse {seen:?}");
    }
}
