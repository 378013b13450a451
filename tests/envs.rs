//! Living with many envs in one account: `up --ttl`, `ls`, `gc`, and the env lock that lives in
//! the account (an S3 object taken with a conditional PUT), through the real binary against the
//! harness, which decides S3's conditional writes atomically as S3 does.

mod common;

use std::process::Stdio;
use std::time::{Duration, Instant};

use common::{Moto, Run, TempDir};

const STATE: &str = "bookstore-state-123456789012-us-east-1";

fn json_of(out: std::process::Output) -> (Run, serde_json::Value) {
    let run = Run::from(out);
    let v = serde_json::from_str(&run.stdout).unwrap_or(serde_json::Value::Null);
    (run, v)
}

/// Writes a lock object for `stack`/`env` as another machine's run would.
fn foreign_lock(moto: &Moto, stack: &str, env: &str, expires_in: i64) {
    let aws = moto.aws();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let body = serde_json::json!({
        "holder": "runner-7 pid 4242",
        "command": format!("bookstore up --stack {stack} --env {env}"),
        "since": now - 30,
        "expires": now + expires_in,
        "token": "foreign",
        "place": "runner-7:/builds/.bookstore/x",
    });
    aws.rt.block_on(async {
        aws.s3
            .put_object()
            .bucket(STATE)
            .key(format!("locks/{stack}/{env}.json"))
            .body(body.to_string().into_bytes().into())
            .send()
            .await
            .unwrap();
    });
}

/// Whether `stack`/`env`'s lock object exists in the state bucket.
fn locked(moto: &Moto, stack: &str, env: &str) -> bool {
    let aws = moto.aws();
    aws.rt.block_on(async {
        aws.s3
            .head_object()
            .bucket(STATE)
            .key(format!("locks/{stack}/{env}.json"))
            .send()
            .await
            .is_ok()
    })
}

fn remove_lock(moto: &Moto, stack: &str, env: &str) {
    let aws = moto.aws();
    aws.rt.block_on(async {
        aws.s3
            .delete_object()
            .bucket(STATE)
            .key(format!("locks/{stack}/{env}.json"))
            .send()
            .await
            .unwrap();
    });
}

fn ls(moto: &Moto, dir: &TempDir) -> Vec<serde_json::Value> {
    let (run, v) = json_of(
        moto.cli(dir.path(), &["ls", "--output", "json"])
            .output()
            .unwrap(),
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    v["envs"].as_array().unwrap().clone()
}

/// `gc --yes --output json`, which must succeed.
fn gc(moto: &Moto, dir: &TempDir) -> serde_json::Value {
    let (run, v) = json_of(
        moto.cli(dir.path(), &["gc", "--yes", "--output", "json"])
            .output()
            .unwrap(),
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    v
}

#[test]
fn ttl_ls_and_gc_across_two_stacks_without_a_journal() {
    let moto = Moto::start(0.5);
    let (one, two, ci) = (
        TempDir::new("ttl-a"),
        TempDir::new("ttl-b"),
        TempDir::new("ttl-ci"),
    );
    // Two envs of two stacks at once (two locks): one expires in 3 s, one in an hour.
    let ups =
        [(&one, "monolith", "a", "3s"), (&two, "asg", "b", "1h")].map(|(dir, stack, env, ttl)| {
            moto.cli(
                dir.path(),
                &["up", "--stack", stack, "--env", env, "--ttl", ttl],
            )
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
        });
    for child in ups {
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    // `ls` from a directory with no journal: both, with stack, age, expiry, resources and cost.
    let envs = ls(&moto, &ci);
    assert_eq!(envs.len(), 2, "{envs:#?}");
    let find = |envs: &[serde_json::Value], stack: &str, env: &str| {
        envs.iter()
            .find(|e| e["stack"] == stack && e["env"] == env)
            .cloned()
            .unwrap_or_else(|| panic!("{stack}/{env} not in {envs:#?}"))
    };
    let a = find(&envs, "monolith", "a");
    let b = find(&envs, "asg", "b");
    let expiry =
        |e: &serde_json::Value| e["expires"].as_u64().unwrap() - e["created"].as_u64().unwrap();
    assert!((1..=30).contains(&expiry(&a)), "{a}");
    assert!((3500..=3700).contains(&expiry(&b)), "{b}");
    for e in [&a, &b] {
        assert!(e["resources"].as_u64().unwrap() >= 8, "{e}");
        assert!(e["locked_by"].is_null(), "{e}");
    }
    // The same cost `plan` shows for each stack.
    for (e, stack, env) in [(&a, "monolith", "a"), (&b, "asg", "b")] {
        let (_, plan) = json_of(
            moto.cli(
                ci.path(),
                &["plan", "--stack", stack, "--env", env, "--output", "json"],
            )
            .output()
            .unwrap(),
        );
        let planned = plan["cost"]["hourly_usd"].as_f64().unwrap();
        assert!(
            (e["hourly_usd"].as_f64().unwrap() - planned).abs() < 1e-9,
            "{e} vs {planned}"
        );
    }
    let text = Run::from(moto.cli(ci.path(), &["ls"]).output().unwrap()).ok();
    assert!(
        text.stdout.contains("monolith")
            && text.stdout.contains("asg")
            && text.stdout.contains("2 env(s)"),
        "{}",
        text.stdout
    );
    let b_resources = b["resources"].as_u64().unwrap();

    // Wait until `a` has expired.
    let deadline = Instant::now() + Duration::from_secs(30);
    while !ls(&moto, &ci)
        .iter()
        .any(|e| e["env"] == "a" && e["expired"] == true)
    {
        assert!(Instant::now() < deadline, "env a never expired");
        std::thread::sleep(Duration::from_millis(500));
    }
    let before = moto.mutating_calls().len();
    // Without a terminal and without --yes: nothing is deleted.
    let asked = Run::from(moto.cli(ci.path(), &["gc"]).output().unwrap());
    assert_eq!(asked.code, 1, "{}", asked.stderr);
    assert!(
        asked.stderr.contains("monolith/a") && asked.stderr.contains("--yes"),
        "{}",
        asked.stderr
    );
    assert_eq!(
        moto.mutating_calls()[before..].to_vec(),
        Vec::<String>::new()
    );

    // An expired env that another run holds is busy, not garbage.
    foreign_lock(&moto, "monolith", "a", 600);
    let v = gc(&moto, &ci);
    assert_eq!(v["busy"], serde_json::json!(["monolith/a"]), "{v}");
    assert_eq!(v["deleted"], serde_json::json!([]), "{v}");
    assert!(!moto.aws().tagged_ec2("a").is_empty());
    remove_lock(&moto, "monolith", "a");

    // gc --yes from the journal-less directory: a goes, b (not expired) stays as it was.
    let v = gc(&moto, &ci);
    assert_eq!(v["deleted"], serde_json::json!(["monolith/a"]), "{v}");
    assert_eq!(v["kept"], serde_json::json!(["asg/b"]), "{v}");
    // Of env a, nothing (its network by tag, anything named for it); all the rest is b's.
    let left: Vec<String> = moto
        .aws()
        .everything("a")
        .into_iter()
        .filter(|l| l.contains("bs-a-") || l.contains("/a.json"))
        .chain(moto.aws().tagged_ec2("a"))
        .collect();
    assert!(left.is_empty(), "left of a: {left:?}");
    let envs = ls(&moto, &ci);
    assert_eq!(envs.len(), 1, "{envs:#?}");
    assert_eq!(
        find(&envs, "asg", "b")["resources"].as_u64(),
        Some(b_resources)
    );
    // Nothing expired now: gc does nothing at all.
    let before = moto.mutating_calls().len();
    Run::from(moto.cli(ci.path(), &["gc", "--yes"]).output().unwrap()).ok();
    assert_eq!(
        moto.mutating_calls()[before..].to_vec(),
        Vec::<String>::new()
    );

    // `down` removes b's record with it; then the account holds nothing of either env.
    moto.run(
        two.path(),
        &["down", "--stack", "asg", "--env", "b", "--yes"],
    )
    .ok();
    for env in ["a", "b"] {
        let left = moto.aws().everything(env);
        assert!(left.is_empty(), "left of {env}: {left:?}");
    }
    assert!(ls(&moto, &ci).is_empty());
}

#[test]
fn two_runners_on_one_env_make_one_vpc_and_a_busy_env_exits_4() {
    let moto = Moto::start(0.5);
    let runners = [TempDir::new("lock-1"), TempDir::new("lock-2")];
    let args = [
        "up",
        "--stack",
        "monolith",
        "--env",
        "t",
        "--lock-wait",
        "3m",
    ];
    // Two CI runners (two state directories, no shared file) on one env at once.
    let children: Vec<_> = runners
        .iter()
        .map(|d| {
            moto.cli(d.path(), &args)
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let runs: Vec<Run> = children
        .into_iter()
        .map(|c| Run::from(c.wait_with_output().unwrap()).ok())
        .collect();
    assert_eq!(moto.count("CreateVpc"), 1, "exactly one VPC for the env");
    assert_eq!(moto.count("RunInstances"), 2, "one builder, one VM");
    let waited: Vec<&Run> = runs
        .iter()
        .filter(|r| r.stderr.contains("waiting for the lock"))
        .collect();
    assert_eq!(waited.len(), 1, "one run queued behind the other");
    assert!(
        waited[0]
            .stderr
            .contains("running `bookstore up --stack monolith --env t`"),
        "{}",
        waited[0].stderr
    );

    // Without --lock-wait, a run that finds the env busy exits 4 at once, naming the holder,
    // and creates nothing.
    let mut down = moto
        .cli(
            runners[0].path(),
            &["down", "--stack", "monolith", "--env", "t", "--yes"],
        )
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while !locked(&moto, "monolith", "t") {
        assert!(Instant::now() < deadline, "down never took the lock");
        std::thread::sleep(Duration::from_millis(20));
    }
    let busy = moto.run(
        runners[1].path(),
        &["up", "--stack", "monolith", "--env", "t"],
    );
    assert!(down.wait().unwrap().success());
    assert_eq!(busy.code, 4, "{}", busy.stderr);
    assert!(
        busy.stderr.contains("holds the lock s3://bookstore-state-")
            && busy
                .stderr
                .contains("running `bookstore down --stack monolith --env t`")
            && busy.stderr.contains("--lock-wait"),
        "{}",
        busy.stderr
    );
    assert_eq!(
        moto.count("CreateVpc"),
        1,
        "the refused run created nothing"
    );
    assert!(moto.aws().everything("t").is_empty());

    // Another machine's live lock: --lock-wait 2s gives up after about 2 s with exit 4.
    foreign_lock(&moto, "monolith", "t", 600);
    let started = Instant::now();
    let waited = moto.run(
        runners[1].path(),
        &[
            "up",
            "--stack",
            "monolith",
            "--env",
            "t",
            "--lock-wait",
            "2s",
        ],
    );
    assert_eq!(waited.code, 4, "{}", waited.stderr);
    assert!(started.elapsed() >= Duration::from_secs(2));
    assert!(
        waited.stderr.contains("runner-7 pid 4242"),
        "{}",
        waited.stderr
    );
    // Its lease ran out (the runner died): the next run takes it over and works.
    foreign_lock(&moto, "monolith", "t", -5);
    let took = moto
        .run(
            runners[1].path(),
            &["up", "--stack", "monolith", "--env", "t"],
        )
        .ok();
    assert!(
        took.stderr.contains("took over the lock"),
        "{}",
        took.stderr
    );
    assert!(took.stderr.contains("lease ran out"), "{}", took.stderr);
    // Where S3 refuses the conditional DELETE itself (not a 412), the run reads the lock back and
    // deletes it as its own: the next run goes at once.
    moto.fault(&format!(
        r#"[{{"service": "s3", "action": "DELETE /{STATE}/locks/monolith/t.json", "code": "NotImplemented", "status": 501, "count": 1}}]"#
    ));
    moto.run(
        runners[1].path(),
        &["up", "--stack", "monolith", "--env", "t"],
    )
    .ok();
    moto.clear_faults();
    assert!(
        moto.calls()
            .iter()
            .filter(|(_, a)| a.starts_with("DELETE /bookstore-state-"))
            .count()
            >= 2,
        "the refused DELETE, then the plain one"
    );
    assert!(!locked(&moto, "monolith", "t"), "the lock was released");
    moto.run(
        runners[1].path(),
        &["down", "--stack", "monolith", "--env", "t", "--yes"],
    )
    .ok();
    assert!(moto.aws().everything("t").is_empty());
}
