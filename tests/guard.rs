//! The Learner Lab's account-wide limit of 9 running instances, checked by `up` before it creates
//! anything: what already runs in the account (any stack, any env, by hand) plus what the run adds.

mod common;

use common::{ENV, Moto, TempDir};

#[test]
fn up_refuses_before_any_create_when_the_account_would_run_more_than_nine_instances() {
    let moto = Moto::start(0.0);
    let dir = TempDir::new("guard");
    let aws = moto.aws();
    // Eight instances someone started by hand, in the same account and region.
    let ids = aws.run_foreign_instances(8);
    let before = moto.mutating_calls().len();
    // The monolith adds its VM and the bake's builder: 8 + 2 = 10.
    let refused = moto.run(dir.path(), &["up", "--stack", "monolith", "--env", ENV]);
    assert_eq!(refused.code, 1, "{}", refused.stderr);
    assert!(
        refused.stderr.contains("10 running instances")
            && refused.stderr.contains("limit of 9")
            && refused.stderr.contains(&ids[0])
            && refused.stderr.contains("vm +1")
            && refused.stderr.contains("nothing was created"),
        "{}",
        refused.stderr
    );
    assert_eq!(
        moto.mutating_calls()[before..].to_vec(),
        Vec::<String>::new(),
        "nothing was created"
    );

    // One of them stopped: 7 + 2 = 9 fits.
    aws.rt.block_on(async {
        aws.ec2
            .terminate_instances()
            .instance_ids(&ids[0])
            .send()
            .await
            .unwrap();
    });
    moto.run(dir.path(), &["up", "--stack", "monolith", "--env", ENV])
        .ok();
    moto.run(
        dir.path(),
        &["down", "--stack", "monolith", "--env", ENV, "--yes"],
    )
    .ok();
}
