//! Stack files through the real binary: the built-ins validate; broken files are refused with the
//! file, line, column and field, before any AWS call.

mod common;

use common::{Moto, TempDir};

#[test]
fn every_built_in_stack_validates() {
    let moto = Moto::start(0.0);
    let dir = TempDir::new("validate");
    for stack in ["monolith", "asg", "swarm"] {
        let run = moto
            .run(
                dir.path(),
                &["--output", "json", "validate", "--stack", stack],
            )
            .ok();
        let v = run.json();
        assert_eq!(v["valid"], true, "{stack}");
        assert_eq!(v["stack"]["kind"], stack);
    }
    let text = moto
        .run(dir.path(), &["validate", "--stack", "asg"])
        .ok()
        .stdout;
    assert!(
        text.contains("valid asg stack") && text.contains("listener-https"),
        "{text}"
    );
    assert!(
        moto.calls().is_empty(),
        "validate must not call AWS: {:?}",
        moto.calls()
    );
}

const HEAD: &str = "version: 1\nname: shop\nkind: asg\n";

/// (description, file body, expected `line:col: field` prefix after the file name, expected words)
const BROKEN: &[(&str, &str, &str, &str)] = &[
    (
        "unknown key",
        "version: 1\nname: shop\nkind: asg\nnetwrok:\n  cidr: 10.0.0.0/16\n",
        ":4:1",
        "netwrok",
    ),
    (
        "bad cidr",
        "version: 1\nname: shop\nkind: asg\nnetwork:\n  cidr: 10.0.0.0/33\n",
        ":5:9: network.cidr",
        "prefix",
    ),
    (
        "public cidr",
        "version: 1\nname: shop\nkind: asg\nnetwork:\n  cidr: 8.8.0.0/16\n",
        ":5:9: network.cidr",
        "public",
    ),
    (
        "subnet outside the vpc",
        "version: 1\nname: shop\nkind: asg\nnetwork:\n  cidr: 10.42.0.0/16\n  public_subnets: [10.42.1.0/24, 10.99.2.0/24]\n",
        ":6:34: network.public_subnets[1]",
        "outside the VPC",
    ),
    (
        "one subnet for a load balancer",
        "version: 1\nname: shop\nkind: asg\nnetwork:\n  public_subnets: [10.42.1.0/24]\n",
        ":5:19: network.public_subnets",
        "two availability zones",
    ),
    (
        "desired above max",
        "version: 1\nname: shop\nkind: asg\ninstances:\n  min: 1\n  max: 3\n  desired: 5\n",
        ":7:12: instances.desired",
        "min ≤ desired ≤ max",
    ),
    (
        "min above max",
        "version: 1\nname: shop\nkind: asg\ninstances:\n  min: 4\n  max: 3\n  desired: 3\n",
        ":5:8: instances.min",
        "above max",
    ),
    (
        "learner lab instance count",
        "version: 1\nname: shop\nkind: asg\ninstances:\n  max: 12\n",
        ":5:8: instances.max",
        "limit of 9",
    ),
    (
        "learner lab region",
        "version: 1\nname: shop\nkind: asg\nregion: eu-west-1\n",
        ":4:9: region",
        "us-east-1 and us-west-2",
    ),
    (
        "unknown region",
        "version: 1\nname: shop\nkind: asg\nregion: mars-north-1\n",
        ":4:9: region",
        "not an AWS region",
    ),
    (
        "learner lab instance size",
        "version: 1\nname: shop\nkind: asg\ninstances:\n  type: m5.4xlarge\n",
        ":5:9: instances.type",
        "sandbox: none",
    ),
    (
        "learner lab volume",
        "version: 1\nname: shop\nkind: asg\ninstances:\n  volume_gb: 500\n",
        ":5:14: instances.volume_gb",
        "100 GB",
    ),
    (
        "learner lab database class",
        "version: 1\nname: shop\nkind: asg\ndatabase:\n  instance_class: db.r5.large\n",
        ":5:19: database.instance_class",
        "up to medium",
    ),
    (
        "acm without domain",
        "version: 1\nname: shop\nkind: asg\ntls:\n  mode: acm\n",
        ":5:9: tls.domain",
        "needs a domain",
    ),
    (
        "unknown tls mode",
        "version: 1\nname: shop\nkind: asg\ntls:\n  mode: maybe\n",
        ":5:9: tls.mode",
        "self-signed",
    ),
    (
        "port as text",
        "version: 1\nname: shop\nkind: asg\napp:\n  port: https\n",
        ":5:9",
        "expected a whole number",
    ),
    (
        "low port",
        "version: 1\nname: shop\nkind: asg\napp:\n  port: 80\n",
        ":5:9: app.port",
        "1024",
    ),
    (
        "reserved tag",
        "version: 1\nname: shop\nkind: asg\ntags:\n  bookstore:env: x\n",
        ":5:3: tags.bookstore:env",
        "reserved",
    ),
    (
        "bad name",
        "version: 1\nname: My_Shop\nkind: asg\n",
        ":2:7: name",
        "lower-case",
    ),
    (
        "unknown kind",
        "version: 1\nname: shop\nkind: lambda\n",
        ":3:7: kind",
        "monolith, asg, swarm",
    ),
    (
        "yaml syntax",
        "version: 1\nname: [shop\nkind: asg\n",
        ":",
        "shop.yaml",
    ),
    (
        "even swarm managers",
        "version: 1\nname: shop\nkind: swarm\nswarm:\n  managers: 2\n",
        ":5:13: swarm.managers",
        "odd",
    ),
    (
        "RDS settings on a monolith",
        "version: 1\nname: shop\nkind: monolith\ndatabase:\n  storage_gb: 20\n",
        ":5:15: database.storage_gb",
        "runs MariaDB on its own VM",
    ),
    (
        "a domain with the IP certificate mode",
        "version: 1\nname: shop\nkind: monolith\ntls:\n  mode: letsencrypt-ip\n  domain: shop.example.org\n",
        ":6:11: tls.domain",
        "takes no domain",
    ),
    (
        "an ACME server that is not https",
        "version: 1\nname: shop\nkind: monolith\ntls:\n  acme_server: http://127.0.0.1/dir\n",
        ":5:16: tls.acme_server",
        "https:// ACME directory URL",
    ),
    (
        "a monolith database placement on asg",
        "version: 1\nname: shop\nkind: asg\ndatabase:\n  placement: separate-vm\n",
        ":5:14: database.placement",
        "monolith setting",
    ),
    (
        "an unknown placement",
        "version: 1\nname: shop\nkind: monolith\ndatabase:\n  placement: other-vm\n",
        ":5:14: database.placement",
        "same-vm, separate-vm",
    ),
    (
        "a data volume over the lab's limit",
        "version: 1\nname: shop\nkind: monolith\ndatabase:\n  volume_gb: 500\n",
        ":5:14: database.volume_gb",
        "at most 100 GB",
    ),
];

#[test]
fn broken_stacks_are_refused_with_position_and_no_aws_call() {
    let moto = Moto::start(0.0);
    let dir = TempDir::new("broken");
    for (what, body, position, words) in BROKEN {
        dir.write("shop.yaml", body);
        for verb in ["validate", "up"] {
            let run = moto.run(dir.path(), &[verb, "--stack", "./shop.yaml", "--env", "t"]);
            assert_eq!(
                run.code, 1,
                "{what} ({verb}) should fail with exit 1:\n{}",
                run.stderr
            );
            let expected = format!("./shop.yaml{position}");
            assert!(
                run.stderr.contains(&expected),
                "{what} ({verb}): expected `{expected}` in:\n{}",
                run.stderr
            );
            assert!(
                run.stderr.contains(words),
                "{what} ({verb}): expected `{words}` in:\n{}",
                run.stderr
            );
        }
    }
    assert!(
        moto.calls().is_empty(),
        "a broken stack must not reach AWS: {:?}",
        moto.calls()
    );
    assert!(
        !dir.path().join(".bookstore").exists(),
        "a broken stack must not even open a journal"
    );
}

#[test]
fn all_problems_are_reported_at_once_and_as_json() {
    let moto = Moto::start(0.0);
    let dir = TempDir::new("many");
    dir.write(
        "shop.yaml",
        &format!("{HEAD}instances:\n  type: t3.2xlarge\n  max: 20\ntls:\n  mode: acm\n"),
    );
    let run = moto.run(
        dir.path(),
        &["--output", "json", "validate", "--stack", "shop.yaml"],
    );
    assert_eq!(run.code, 1);
    let v = run.json();
    assert_eq!(v["error"]["kind"], "invalid-stack");
    let fields: Vec<&str> = v["error"]["diagnostics"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["field"].as_str().unwrap())
        .collect();
    for f in ["instances.type", "instances.max", "tls.domain"] {
        assert!(fields.contains(&f), "{f} missing from {fields:?}");
    }
    let max = v["error"]["diagnostics"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["field"] == "instances.max")
        .unwrap();
    assert_eq!(
        (max["line"].as_u64(), max["column"].as_u64()),
        (Some(6), Some(8))
    );
}

#[test]
fn sandbox_none_lifts_the_learner_lab_limits() {
    let moto = Moto::start(0.0);
    let dir = TempDir::new("nosandbox");
    dir.write(
        "shop.yaml",
        &format!(
            "{HEAD}sandbox: none\nregion: eu-west-1\ninstances:\n  type: m5.4xlarge\n  max: 12\n"
        ),
    );
    moto.run(dir.path(), &["validate", "--stack", "shop.yaml"])
        .ok();
}

#[test]
fn region_flag_and_environment_are_checked_too() {
    let moto = Moto::start(0.0);
    let dir = TempDir::new("region");
    let run = moto.run(
        dir.path(),
        &["validate", "--stack", "asg", "--region", "eu-west-1"],
    );
    assert_eq!(run.code, 1);
    assert!(
        run.stderr.contains("--region") && run.stderr.contains("us-east-1 and us-west-2"),
        "{}",
        run.stderr
    );
    let run = moto.run(
        dir.path(),
        &["validate", "--stack", "asg", "--env", "Bad_Env"],
    );
    assert_eq!(run.code, 1);
    assert!(
        run.stderr.contains("not a valid environment name"),
        "{}",
        run.stderr
    );
    let run = moto.run(dir.path(), &["validate", "--stack", "nope"]);
    assert_eq!(run.code, 1);
    assert!(
        run.stderr.contains("no built-in stack named `nope`")
            && run.stderr.contains("monolith, asg, swarm"),
        "{}",
        run.stderr
    );
    let run = moto.run(dir.path(), &["validate", "--stack", "./missing.yaml"]);
    assert_eq!(run.code, 1);
    assert!(
        run.stderr.contains("cannot read stack file ./missing.yaml"),
        "{}",
        run.stderr
    );
}

/// Each class of YAML error is told in our words — where, what is wrong, what to do — and never
/// in the parser's words to its own programmer (option names, Rust types, serde's phrasing).
#[test]
fn yaml_errors_are_told_in_our_words() {
    let moto = Moto::start(0.0);
    let dir = TempDir::new("yaml-errors");
    // (what, body, expected position, expected words)
    let cases: &[(&str, &str, &str, &str)] = &[
        (
            "duplicate key",
            "version: 1\nname: shop\nkind: asg\ndatabase:\n  storage_gb: 20\ndatabase:\n  storage_gb: 30\n",
            ":6:1",
            "`database` is set twice",
        ),
        (
            "tab indentation",
            "version: 1\nname: shop\nkind: asg\nnetwork:\n\tcidr: 10.0.0.0/16\n",
            ":5:",
            "tab",
        ),
        (
            "unclosed quote",
            "version: 1\nname: \"shop\nkind: asg\n",
            ":",
            "not closed",
        ),
        (
            "value where a key belongs",
            "version: 1\nname: shop\nkind: asg\napp:\n  port: 8080\n health_check_path: /h\n",
            ":6:",
            "indent",
        ),
        (
            "list where a section belongs",
            "version: 1\nname: shop\nkind: asg\nnetwork:\n  - 10.0.0.0/16\n",
            ":5:",
            "a section of `key: value` lines",
        ),
        (
            "text where a number belongs",
            "version: 1\nname: shop\nkind: asg\napp:\n  port: eighty\n",
            ":5:9",
            "whole number",
        ),
        (
            "missing required field",
            "name: shop\nkind: asg\n",
            ":2:1",
            "`version` is missing",
        ),
        (
            "two documents",
            "version: 1\nname: shop\nkind: asg\n---\nversion: 1\n",
            ":",
            "more than one YAML document",
        ),
        (
            "unknown alias",
            "version: 1\nname: *shop\nkind: asg\n",
            ":2:",
            "anchor",
        ),
        ("empty file", "", ":1:1", "empty"),
    ];
    let library_words = [
        "DuplicateKeyPolicy",
        "Options",
        "i64",
        "u32",
        "serde",
        "struct ",
        "invalid type",
        "did not find expected",
    ];
    for (what, body, position, words) in cases {
        dir.write("shop.yaml", body);
        let run = moto.run(dir.path(), &["validate", "--stack", "./shop.yaml"]);
        assert_eq!(run.code, 1, "{what}: {}", run.stderr);
        assert!(
            run.stderr.contains(&format!("./shop.yaml{position}")),
            "{what}: expected ./shop.yaml{position} in:\n{}",
            run.stderr
        );
        assert!(
            run.stderr.contains(words),
            "{what}: expected `{words}` in:\n{}",
            run.stderr
        );
        for w in library_words {
            assert!(
                !run.stderr.contains(w),
                "{what}: the parser's words `{w}` reached the user:\n{}",
                run.stderr
            );
        }
        assert!(
            run.stderr.contains("validate --stack ./shop.yaml"),
            "{what}: no next step in:\n{}",
            run.stderr
        );
    }
    assert!(moto.calls().is_empty(), "{:?}", moto.calls());
}
