//! `plan` says what each built-in stack costs, per resource and in total, in text and in JSON.

mod common;

use common::{ENV, Moto, TempDir};

#[test]
fn plan_shows_each_stacks_cost_per_resource_and_in_total() {
    let moto = Moto::start(0.0);
    let dir = TempDir::new("cost");
    for stack in ["monolith", "asg", "swarm"] {
        let json = moto.run(
            dir.path(),
            &["plan", "--stack", stack, "--env", ENV, "--output", "json"],
        );
        assert_eq!(json.code, 2, "{stack}: changes to make: {}", json.stderr);
        let v: serde_json::Value = serde_json::from_str(&json.stdout).unwrap();
        let cost = &v["cost"];
        let lines = cost["lines"].as_array().unwrap();
        let sum: f64 = lines
            .iter()
            .map(|l| l["hourly_usd"].as_f64().unwrap())
            .sum();
        let total = cost["hourly_usd"].as_f64().unwrap();
        assert!((sum - total).abs() < 1e-9 && total > 0.0, "{stack}: {cost}");
        assert!(
            (cost["monthly_usd"].as_f64().unwrap() - total * 730.0).abs() < 1e-6,
            "{stack}: a month is 730 hours"
        );
        let days = cost["days_per_100_usd"].as_f64().unwrap();
        assert!((days - 100.0 / (total * 24.0)).abs() < 1e-6);
        assert_eq!(cost["prices_as_of"], "2026-12-01");
        assert!(
            cost["unpriced"].as_array().unwrap().is_empty(),
            "{stack}: {cost}"
        );
        let keys: Vec<&str> = lines.iter().map(|l| l["key"].as_str().unwrap()).collect();
        match stack {
            "asg" => assert!(
                keys.contains(&"alb") && keys.contains(&"db") && keys.contains(&"asg"),
                "{keys:?}"
            ),
            "swarm" => assert!(
                keys.iter()
                    .filter(|k| k.starts_with("manager-") || k.starts_with("worker-"))
                    .count()
                    == 5,
                "{keys:?}"
            ),
            _ => assert!(keys.contains(&"vm") && keys.contains(&"eip"), "{keys:?}"),
        }
        println!(
            "{stack}: ${total:.4}/h, ${:.2}/month, $100 lasts {days:.0} days",
            total * 730.0
        );

        let text = moto.run(dir.path(), &["plan", "--stack", stack, "--env", ENV]);
        assert!(
            text.stdout.contains("Cost in us-east-1")
                && text.stdout.contains("a $100 Learner Lab budget lasts"),
            "{}",
            text.stdout
        );
    }
    // `up` says it before it starts; `status` prices what exists (nothing before `up`).
    let before = moto.run(
        dir.path(),
        &[
            "status", "--stack", "monolith", "--env", ENV, "--output", "json",
        ],
    );
    let v: serde_json::Value = serde_json::from_str(&before.stdout).unwrap();
    assert_eq!(
        v["cost"]["hourly_usd"].as_f64(),
        Some(0.0),
        "{}",
        before.stdout
    );
    let up = moto.run(dir.path(), &["up", "--stack", "monolith", "--env", ENV]);
    assert!(up.stderr.contains("cost: about $"), "{}", up.stderr);
    let planned: serde_json::Value = serde_json::from_str(
        &moto
            .run(
                dir.path(),
                &[
                    "plan", "--stack", "monolith", "--env", ENV, "--output", "json",
                ],
            )
            .stdout,
    )
    .unwrap();
    let after = moto.run(dir.path(), &["status", "--stack", "monolith", "--env", ENV]);
    let expected = planned["cost"]["hourly_usd"].as_f64().unwrap();
    assert!(
        after.stdout.contains(&format!("about ${expected:.3}/hour")),
        "status prices every resource once all exist: {}",
        after.stdout
    );
}
