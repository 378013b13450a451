//! One function per command: resolve the config, talk to the engine, print the result on stdout
//! (text or one JSON object). Returns the exit code of a successful run (plan: 0 or 2).

use std::collections::BTreeMap;
use std::io::{IsTerminal, Write};
use std::sync::Arc;

use serde_json::json;

use crate::aws::{Cx, Observed, Owner, group_instances, kind_impl, target_health};
use crate::cli::{Cli, Command, Target};
use crate::config::Config;
use crate::engine::{self, Action, Engine};
use crate::error::Error;
use crate::journal::{Event, Journal};
use crate::plan::{Kind, Plan};
use crate::report::{OutputFormat, Reporter};
use crate::stack::{StackKind, TlsMode};

pub async fn run(cli: Cli) -> Result<i32, Error> {
    let report = Reporter::new(cli.output);
    let _heartbeat = report.start_heartbeat();
    let result = match &cli.command {
        Command::Validate(t) => validate(t, &cli, &report).await,
        Command::Plan(t) => plan(t, &cli, &report).await,
        Command::Up {
            target,
            parallelism,
        } => up(target, *parallelism, false, &cli, &report).await,
        Command::Bake {
            target,
            parallelism,
        } => up(target, *parallelism, true, &cli, &report).await,
        Command::Down {
            target,
            yes,
            parallelism,
        } => down(target, *yes, *parallelism, &cli, &report).await,
        Command::Status(t) => status(t, &cli, &report).await,
        Command::Outputs(t) => outputs(t, &cli, &report).await,
    };
    report.finish();
    result
}

fn print_json(value: &serde_json::Value) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(
        out,
        "{}",
        serde_json::to_string_pretty(value).expect("json")
    );
}

fn print_text(text: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{text}");
}

async fn config(t: &Target, cli: &Cli) -> Result<Config, Error> {
    Config::resolve(t, cli.state_dir.clone()).await
}

fn require_provisioned(config: &Config) -> Result<(), Error> {
    if config.stack.kind == StackKind::Asg {
        Ok(())
    } else {
        Err(Error::NotProvisioned {
            kind: config.stack.kind.as_str().into(),
        })
    }
}

/// Clients plus the STS preflight: proves the credentials before anything else happens.
async fn connect(config: &Config, report: &Reporter, verb: &str) -> Result<Arc<Cx>, Error> {
    let owner = Owner {
        stack: config.stack.name.clone(),
        env: config.env.clone(),
        extra_tags: config.stack.tags.clone(),
    };
    let cx = Cx::connect(&config.region, owner).await;
    let (account, arn) = cx.whoami().await.map_err(|e| {
        engine::aws_error(
            &e,
            "checking",
            "the credentials (STS GetCallerIdentity)",
            &config.command(verb),
        )
    })?;
    report.info(&format!(
        "AWS account {account} as {arn}; region {} (from {}); stack {} env {}",
        config.region, config.region_source, config.stack.name, config.env
    ));
    Ok(Arc::new(cx))
}

async fn validate(t: &Target, cli: &Cli, _report: &Reporter) -> Result<i32, Error> {
    let config = config(t, cli).await?;
    let plan = config.plan()?;
    let keys: Vec<&str> = plan.resources.iter().map(|r| r.key.as_str()).collect();
    match cli.output {
        OutputFormat::Json => print_json(&json!({
            "valid": true,
            "source": config.stack.source,
            "stack": config.stack,
            "env": config.env,
            "region": config.region,
            "resources": keys,
        })),
        OutputFormat::Text => {
            let detail = if keys.is_empty() {
                "(this kind is not provisioned yet)".to_string()
            } else {
                format!("{} resources: {}", keys.len(), keys.join(", "))
            };
            print_text(&format!(
                "{}: valid {} stack `{}` for env {} in {} — {detail}",
                config.stack.source,
                config.stack.kind.as_str(),
                config.stack.name,
                config.env,
                config.region
            ));
        }
    }
    Ok(0)
}

async fn plan(t: &Target, cli: &Cli, report: &Reporter) -> Result<i32, Error> {
    let config = config(t, cli).await?;
    require_provisioned(&config)?;
    let cx = connect(&config, report, "plan").await?;
    let plan = config.plan()?;
    let observed = engine::observe(&cx, Kind::ALL).await?;
    let diff = engine::diff(&plan, &observed);
    let count = |a: Action| diff.steps.iter().filter(|s| s.action == a).count();
    let changes = diff.has_changes();
    match cli.output {
        OutputFormat::Json => print_json(&json!({
            "stack": config.stack.name, "env": config.env, "region": config.region,
            "changes": changes, "steps": diff.steps,
        })),
        OutputFormat::Text => {
            for s in &diff.steps {
                let (mark, word) = match s.action {
                    Action::Create => ("+", "create"),
                    Action::Wait => ("…", "wait"),
                    Action::Update => ("~", "update"),
                    Action::Keep => ("=", "keep"),
                    Action::Delete => ("-", "delete"),
                };
                let id = s.id.as_deref().unwrap_or(&s.name);
                print_text(&format!(
                    "{mark} {word:<6} {:<16} {:<18} {id}",
                    s.key,
                    s.kind.as_str()
                ));
                for d in &s.drift {
                    print_text(&format!("           {d}"));
                }
            }
            print_text(&format!(
                "Plan: {} to create, {} to update, {} to delete, {} to wait for, {} unchanged.",
                count(Action::Create),
                count(Action::Update),
                count(Action::Delete),
                count(Action::Wait),
                count(Action::Keep)
            ));
        }
    }
    Ok(if changes { 2 } else { 0 })
}

/// `up`, or with `bake_only` the AMI and what it needs: the rest of the stack is left as it is.
async fn up(
    t: &Target,
    parallelism: u16,
    bake_only: bool,
    cli: &Cli,
    report: &Arc<Reporter>,
) -> Result<i32, Error> {
    let config = config(t, cli).await?;
    require_provisioned(&config)?;
    let verb = if bake_only { "bake" } else { "up" };
    let rerun = config.command(verb);
    let journal = Arc::new(Journal::open(
        &config.state_dir,
        &config.stack.name,
        &config.env,
        &rerun,
    )?);
    let cx = connect(&config, report, verb).await?;
    report.info(&format!("journal: {}", journal.path().display()));
    let mut plan = config.plan()?;
    let mut observed = engine::observe(&cx, Kind::ALL).await?;
    if bake_only {
        let image = plan.image_key().unwrap_or_default().to_string();
        plan = plan.closure(&image);
        // Only what the bake needs is compared: nothing else counts as extra.
        observed.retain(|o| plan.get(&o.key).is_some());
    }
    let diff = engine::diff(&plan, &observed);
    let engine = Engine {
        cx: Arc::clone(&cx),
        journal,
        report: Arc::clone(report),
        parallelism: parallelism.into(),
        rerun: rerun.clone(),
    };
    // The engine hands back every resource as it left it: no second listing for the outputs.
    let (summary, observed, nothing_to_do) = if diff.has_changes() {
        let work = engine.up(&plan, diff);
        let (summary, converged) = tokio::select! {
            s = work => s?,
            _ = tokio::signal::ctrl_c() => return Err(Error::Interrupted { rerun }),
        };
        (summary, converged, false)
    } else {
        let unchanged = diff.steps.iter().map(|s| s.key.clone()).collect();
        (
            engine::Summary {
                unchanged,
                ..Default::default()
            },
            observed,
            true,
        )
    };
    let outputs = outputs_of(&config, &plan, &observed);
    match cli.output {
        OutputFormat::Json => print_json(&json!({
            "stack": config.stack.name, "env": config.env, "region": config.region,
            "nothing_to_do": nothing_to_do, "summary": summary, "outputs": outputs,
            "elapsed_seconds": report.elapsed().as_secs_f64(),
        })),
        OutputFormat::Text => {
            if nothing_to_do {
                print_text(&format!(
                    "Nothing to do: all {} resources of {}/{} are up to date (no changes made).",
                    summary.unchanged.len(),
                    config.stack.name,
                    config.env
                ));
            } else {
                print_text(&format!(
                    "Done in {:.1}s: {} created, {} updated, {} waited for, {} unchanged, {} deleted.",
                    report.elapsed().as_secs_f64(),
                    summary.created.len(),
                    summary.updated.len(),
                    summary.waited.len(),
                    summary.unchanged.len(),
                    summary.deleted.len()
                ));
                if !summary.drifted.is_empty() {
                    print_text(&format!(
                        "Drifted and left as they are: {}",
                        summary.drifted.join(", ")
                    ));
                }
            }
            print_outputs(&outputs);
        }
    }
    Ok(0)
}

async fn down(
    t: &Target,
    yes: bool,
    parallelism: u16,
    cli: &Cli,
    report: &Arc<Reporter>,
) -> Result<i32, Error> {
    let config = config(t, cli).await?;
    let rerun = config.command("down");
    let journal = Arc::new(Journal::open(
        &config.state_dir,
        &config.stack.name,
        &config.env,
        &rerun,
    )?);
    let cx = connect(&config, report, "down").await?;
    report.info(&format!("journal: {}", journal.path().display()));
    let mut targets = engine::observe(&cx, Kind::ALL).await?;
    // Journal ∪ tags: ids the journal knows that the tag sweep did not find are looked up by id.
    for (kind, key, id) in journal.live()? {
        if targets.iter().any(|o| o.id == id) {
            continue;
        }
        let mut probe = Observed::new(kind, key.clone(), id.clone());
        probe.owned = false;
        match kind_impl(kind).refresh(&cx, &probe).await {
            Ok(Some(found)) => targets.push(found),
            Ok(None) => journal.record(Event::Deleted, kind, &key, "", Some(&id))?,
            Err(e) => {
                return Err(engine::aws_error(
                    &e,
                    "looking up",
                    &format!("{key} ({id}) from the journal"),
                    &rerun,
                ));
            }
        }
    }
    let owned = targets.iter().filter(|o| o.owned).count();
    if owned == 0 {
        match cli.output {
            OutputFormat::Json => print_json(
                &json!({"stack": config.stack.name, "env": config.env, "region": config.region, "deleted": [], "nothing_to_do": true}),
            ),
            OutputFormat::Text => print_text(&format!(
                "Nothing to delete: no resources of stack {} env {} in {}.",
                config.stack.name, config.env, config.region
            )),
        }
        return Ok(0);
    }
    if !yes {
        confirm(&format!(
            "Delete {owned} resources of stack {} env {} in {}?",
            config.stack.name, config.env, config.region
        ))?;
    }
    let engine = Engine {
        cx: Arc::clone(&cx),
        journal,
        report: Arc::clone(report),
        parallelism: parallelism.into(),
        rerun: rerun.clone(),
    };
    let deleted = tokio::select! {
        d = engine.teardown(targets) => d,
        _ = tokio::signal::ctrl_c() => return Err(Error::Interrupted { rerun }),
    };
    // Whatever happened, say exactly what is left.
    let left: Vec<String> = engine::observe(&cx, Kind::ALL)
        .await?
        .into_iter()
        .map(|o| format!("{} {} {} ({})", o.kind.as_str(), o.key, o.id, o.state))
        .collect();
    let deleted = match deleted {
        Ok(d) if left.is_empty() => d,
        Ok(_) => {
            return Err(Error::Leftovers {
                left,
                hint: format!(
                    "run `{rerun}` again; if it keeps failing, delete them in the AWS console"
                ),
            });
        }
        Err(e) => {
            if !left.is_empty() {
                report.warn(&format!("still there: {}", left.join("; ")));
            }
            return Err(e);
        }
    };
    match cli.output {
        OutputFormat::Json => print_json(
            &json!({"stack": config.stack.name, "env": config.env, "region": config.region, "deleted": deleted, "nothing_to_do": false}),
        ),
        OutputFormat::Text => print_text(&format!(
            "Deleted {} resources of stack {} env {} in {:.1}s; nothing is left.",
            deleted.len(),
            config.stack.name,
            config.env,
            report.elapsed().as_secs_f64()
        )),
    }
    Ok(0)
}

fn confirm(question: &str) -> Result<(), Error> {
    if !(std::io::stdin().is_terminal() && std::io::stderr().is_terminal()) {
        return Err(Error::NotConfirmed(format!(
            "{question} There is no terminal to ask on."
        )));
    }
    eprint!("{question} [y/N] ");
    let _ = std::io::stderr().flush();
    let mut answer = String::new();
    std::io::stdin()
        .read_line(&mut answer)
        .map_err(Error::io("cannot read the answer"))?;
    if matches!(answer.trim(), "y" | "Y" | "yes" | "YES") {
        Ok(())
    } else {
        Err(Error::NotConfirmed("nothing was deleted".into()))
    }
}

async fn status(t: &Target, cli: &Cli, report: &Reporter) -> Result<i32, Error> {
    let config = config(t, cli).await?;
    require_provisioned(&config)?;
    let cx = connect(&config, report, "status").await?;
    let plan = config.plan()?;
    let observed = engine::observe(&cx, Kind::ALL).await?;
    let diff = engine::diff(&plan, &observed);
    let mut health = Vec::new();
    if let Some(tg) = diff.existing.get("tg") {
        health = target_health(&cx, &tg.id)
            .await
            .map_err(|e| engine::aws_error(&e, "reading target health of", "tg", ""))?;
    }
    // Each instance of the group with its target health; then targets outside the group.
    let instances: Vec<serde_json::Value> = diff
        .existing
        .get("asg")
        .map(group_instances)
        .unwrap_or_default()
        .into_iter()
        .map(|i| {
            let target = health
                .iter()
                .find(|(id, _)| *id == i.id)
                .map_or("not registered", |(_, h)| h.as_str());
            json!({"id": i.id, "availability_zone": i.availability_zone, "lifecycle": i.lifecycle,
                   "health": i.health, "target_health": target})
        })
        .collect();
    health.retain(|(id, _)| !instances.iter().any(|i| i["id"] == id.as_str()));
    let outputs = outputs_of(&config, &plan, &observed);
    let rows: Vec<serde_json::Value> = diff
        .steps
        .iter()
        .map(|s| {
            let state = match s.action {
                Action::Create => "missing".to_string(),
                Action::Delete => format!(
                    "{} (not in the stack: `up` deletes it)",
                    s.state.clone().unwrap_or_default()
                ),
                _ => s.state.clone().unwrap_or_default(),
            };
            json!({"key": s.key, "kind": s.kind, "id": s.id, "state": state, "drift": s.drift})
        })
        .collect();
    match cli.output {
        OutputFormat::Json => print_json(&json!({
            "stack": config.stack.name, "env": config.env, "region": config.region,
            "resources": rows,
            "instances": instances,
            "targets": health.iter().map(|(id, state)| json!({"id": id, "health": state})).collect::<Vec<_>>(),
            "outputs": outputs,
        })),
        OutputFormat::Text => {
            print_text(&format!(
                "{:<16} {:<18} {:<24} {:<52} drift",
                "KEY", "KIND", "STATE", "ID"
            ));
            for r in &rows {
                let drift: Vec<String> = r["drift"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|d| d.as_str().map(str::to_string))
                    .collect();
                print_text(&format!(
                    "{:<16} {:<18} {:<24} {:<52} {}",
                    r["key"].as_str().unwrap_or_default(),
                    r["kind"].as_str().unwrap_or_default(),
                    r["state"].as_str().unwrap_or_default(),
                    r["id"].as_str().unwrap_or("-"),
                    if drift.is_empty() {
                        "-".to_string()
                    } else {
                        drift.join("; ")
                    }
                ));
            }
            if !instances.is_empty() {
                print_text("instances:");
                for i in &instances {
                    print_text(&format!(
                        "  {} {} {} ec2:{} target:{}",
                        i["id"].as_str().unwrap_or_default(),
                        i["availability_zone"].as_str().unwrap_or_default(),
                        i["lifecycle"].as_str().unwrap_or_default(),
                        i["health"].as_str().unwrap_or_default(),
                        i["target_health"].as_str().unwrap_or_default()
                    ));
                }
            }
            if !health.is_empty() {
                print_text("other targets:");
                for (id, state) in &health {
                    print_text(&format!("  {id} {state}"));
                }
            } else if instances.is_empty() && diff.existing.contains_key("tg") {
                print_text("targets: none registered yet");
            }
            print_outputs(&outputs);
        }
    }
    Ok(0)
}

async fn outputs(t: &Target, cli: &Cli, report: &Reporter) -> Result<i32, Error> {
    let config = config(t, cli).await?;
    require_provisioned(&config)?;
    let cx = connect(&config, report, "outputs").await?;
    let plan = config.plan()?;
    let observed = engine::observe(
        &cx,
        &[
            Kind::Vpc,
            Kind::Subnet,
            Kind::LoadBalancer,
            Kind::TargetGroup,
            Kind::Certificate,
            Kind::Listener,
            Kind::Database,
            Kind::FileSystem,
            Kind::Image,
            Kind::AutoScalingGroup,
        ],
    )
    .await?;
    let outputs = outputs_of(&config, &plan, &observed);
    match cli.output {
        OutputFormat::Json => print_json(&serde_json::to_value(&outputs).expect("json")),
        OutputFormat::Text => print_outputs(&outputs),
    }
    Ok(0)
}

/// URL and ids from what exists. Empty values are left out.
fn outputs_of(config: &Config, plan: &Plan, observed: &[Observed]) -> BTreeMap<String, String> {
    let by_key = |key: &str| observed.iter().find(|o| o.key == key);
    let mut out = BTreeMap::new();
    if let Some(lb) = by_key("alb") {
        let dns = lb.attr("dns_name").to_string();
        let https = by_key("listener-https").is_some();
        out.insert(
            "url".into(),
            format!("{}://{dns}/", if https { "https" } else { "http" }),
        );
        out.insert("load_balancer_dns".into(), dns);
        out.insert("load_balancer_arn".into(), lb.id.clone());
    }
    for (key, name) in [
        ("vpc", "vpc_id"),
        ("tg", "target_group_arn"),
        ("cert", "certificate_arn"),
    ] {
        if let Some(o) = by_key(key) {
            out.insert(name.into(), o.id.clone());
        }
    }
    if let Some(db) = by_key("db") {
        out.insert("db_endpoint".into(), db.attr("endpoint").to_string());
        out.insert("db_secret_arn".into(), db.attr("secret_arn").to_string());
    }
    if let Some(fs) = by_key("efs") {
        out.insert("file_system_id".into(), fs.id.clone());
    }
    if let Some(group) = by_key("asg") {
        out.insert("auto_scaling_group".into(), group.id.clone());
    }
    // The image the plan wants; an older one may still exist until `up` removes it.
    if let Some(image) = observed
        .iter()
        .find(|o| o.kind == Kind::Image && Some(o.key.as_str()) == plan.image_key())
    {
        out.insert("image_id".into(), image.id.clone());
    }
    let subnets: Vec<&str> = observed
        .iter()
        .filter(|o| o.kind == Kind::Subnet)
        .map(|o| o.id.as_str())
        .collect();
    if !subnets.is_empty() {
        out.insert("subnet_ids".into(), subnets.join(","));
    }
    if config.stack.tls.mode == TlsMode::SelfSigned && out.contains_key("url") {
        out.insert("note".into(), "the certificate is self-signed: browsers warn until you use tls.mode acm with your own domain".into());
    }
    out.retain(|_, v| !v.is_empty());
    out
}

fn print_outputs(outputs: &BTreeMap<String, String>) {
    for (k, v) in outputs {
        print_text(&format!("{k} = {v}"));
    }
}
