//! One function per command: resolve the config, talk to the engine, return the result as data
//! (`print::Report`), which one printer per format shows on stdout. Nothing here knows a stack's
//! resource keys: outputs and status details come from each kind. A command returns the exit
//! code of a successful run with its report (plan: 0 or 2).

use std::collections::BTreeMap;
use std::io::{IsTerminal, Write};
use std::sync::Arc;

use crate::aws::{Cx, Observed, Owner};
use crate::cli::{Cli, Command, Target};
use crate::config::Config;
use crate::engine::{self, Action, Engine};
use crate::error::Error;
use crate::journal::{Event, Journal};
use crate::plan::{Kind, Plan};
use crate::print::{self, Converged, Deleted, Planned, Report, Row, Scope, Status, Validated};
use crate::report::Reporter;
use crate::stack::TlsMode;

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
        Command::Render { target, out } => render(target, out, &cli).await,
        Command::Doctor(t) => doctor(t, &cli).await,
        Command::Completions { .. } | Command::Man => {
            unreachable!("main answers these without a runtime")
        }
    };
    report.finish();
    let (code, result) = result?;
    print::print(cli.output, &result);
    Ok(code)
}

fn scope(config: &Config) -> Scope {
    Scope {
        stack: config.stack.name.clone(),
        env: config.env.clone(),
        region: config.region.clone(),
    }
}

async fn config(t: &Target, cli: &Cli) -> Result<Config, Error> {
    Config::resolve(t, cli.state_dir.clone()).await
}

type Done = Result<(i32, Report), Error>;

/// Clients plus the STS preflight: proves the credentials before anything else happens.
/// This stack's and env's ownership: what its resources are tagged with and found by.
fn owner(config: &Config) -> Owner {
    Owner {
        stack: config.stack.name.clone(),
        env: config.env.clone(),
        extra_tags: config.stack.tags.clone(),
    }
}

async fn connect(config: &Config, report: &Reporter, verb: &str) -> Result<Arc<Cx>, Error> {
    let cx = Cx::connect(&config.region, owner(config)).await;
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

async fn validate(t: &Target, cli: &Cli, _report: &Reporter) -> Done {
    let config = config(t, cli).await?;
    let resources = config
        .plan()?
        .resources
        .into_iter()
        .map(|r| r.key)
        .collect();
    Ok((
        0,
        Report::Validated(Box::new(Validated {
            valid: true,
            source: config.stack.source.clone(),
            env: config.env.clone(),
            region: config.region.clone(),
            stack: config.stack,
            resources,
        })),
    ))
}

async fn doctor(t: &Target, cli: &Cli) -> Done {
    let config = config(t, cli).await?;
    // Not `connect`: refused credentials are one of the checks, not the end.
    let cx = Cx::connect(&config.region, owner(&config)).await;
    let doctor = crate::doctor::run(&config, &cx).await;
    Ok((i32::from(doctor.failed()), Report::Doctor(doctor)))
}

async fn render(t: &Target, out: &std::path::Path, cli: &Cli) -> Done {
    let config = config(t, cli).await?;
    let rendered = crate::render::render(&config.plan()?, out)?;
    Ok((0, Report::Rendered(rendered)))
}

async fn plan(t: &Target, cli: &Cli, report: &Reporter) -> Done {
    let config = config(t, cli).await?;
    let plan = config.plan()?;
    let cx = connect(&config, report, "plan").await?;
    let observed = engine::observe(&cx, Kind::ALL).await?;
    let diff = engine::diff(&plan, &observed);
    let changes = diff.has_changes();
    Ok((
        if changes { 2 } else { 0 },
        Report::Planned(Planned {
            scope: scope(&config),
            changes,
            steps: diff.steps,
            cost: crate::cost::estimate(&plan, &config.region),
        }),
    ))
}

/// `up`, or with `bake_only` the AMI and what it needs: the rest of the stack is left as it is.
async fn up(
    t: &Target,
    parallelism: u16,
    bake_only: bool,
    cli: &Cli,
    report: &Arc<Reporter>,
) -> Done {
    let config = config(t, cli).await?;
    // The whole plan is built and validated before anything is locked or called.
    let mut plan = config.plan()?;
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
    if !bake_only {
        report.info(&crate::cost::summary(&crate::cost::estimate(
            &plan,
            &config.region,
        )));
    }
    let mut observed = engine::observe(&cx, Kind::ALL).await?;
    if bake_only {
        let image = plan.image_key().unwrap_or_default().to_string();
        plan = plan.closure(&image);
        // Only what the bake needs is compared: nothing else counts as extra.
        observed.retain(|o| plan.get(&o.key).is_some());
    }
    let diff = engine::diff(&plan, &observed);
    if config.stack.sandbox == crate::stack::Sandbox::LearnerLab {
        crate::guard::check(&cx, &plan, &diff, &rerun).await?;
    }
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
    Ok((
        0,
        Report::Converged(Converged {
            scope: scope(&config),
            nothing_to_do,
            summary,
            outputs: outputs_of(&config, &plan, &observed),
            elapsed_seconds: report.elapsed().as_secs_f64(),
        }),
    ))
}

async fn down(t: &Target, yes: bool, parallelism: u16, cli: &Cli, report: &Arc<Reporter>) -> Done {
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
        match kind.imp().refresh(&cx, &probe).await {
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
    let done = |deleted: Vec<String>, nothing_to_do| {
        Ok((
            0,
            Report::Deleted(Deleted {
                scope: scope(&config),
                deleted,
                nothing_to_do,
                elapsed_seconds: report.elapsed().as_secs_f64(),
            }),
        ))
    };
    if owned == 0 {
        return done(vec![], true);
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
    match deleted {
        Ok(d) if left.is_empty() => done(d, false),
        Ok(_) => Err(Error::Leftovers {
            left,
            hint: format!(
                "run `{rerun}` again; if it keeps failing, delete them in the AWS console"
            ),
        }),
        Err(e) => {
            if !left.is_empty() {
                report.warn(&format!("still there: {}", left.join("; ")));
            }
            Err(e)
        }
    }
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

async fn status(t: &Target, cli: &Cli, report: &Reporter) -> Done {
    let config = config(t, cli).await?;
    let plan = config.plan()?;
    let cx = connect(&config, report, "status").await?;
    let observed = engine::observe(&cx, Kind::ALL).await?;
    let diff = engine::diff(&plan, &observed);
    let mut sections: BTreeMap<String, Vec<BTreeMap<String, String>>> = BTreeMap::new();
    for have in diff.existing.values() {
        let found = have
            .kind
            .imp()
            .details(&cx, have, &observed)
            .await
            .map_err(|e| engine::aws_error(&e, "reading the live state of", &have.key, ""))?;
        for section in found {
            sections
                .entry(section.name)
                .or_default()
                .extend(section.rows);
        }
    }
    let missing: std::collections::HashSet<String> = diff
        .steps
        .iter()
        .filter(|s| s.action == Action::Create)
        .map(|s| s.key.clone())
        .collect();
    let cost = crate::cost::estimate_of(&plan, &config.region, |k| !missing.contains(k));
    let resources = diff
        .steps
        .into_iter()
        .map(|s| Row {
            state: match s.action {
                Action::Create => "missing".to_string(),
                Action::Delete => format!(
                    "{} (not in the stack: `up` deletes it)",
                    s.state.clone().unwrap_or_default()
                ),
                _ => s.state.clone().unwrap_or_default(),
            },
            key: s.key,
            kind: s.kind,
            id: s.id,
            drift: s.drift,
        })
        .collect();
    Ok((
        0,
        Report::Status(Status {
            scope: scope(&config),
            resources,
            sections,
            outputs: outputs_of(&config, &plan, &observed),
            cost,
        }),
    ))
}

async fn outputs(t: &Target, cli: &Cli, report: &Reporter) -> Done {
    let config = config(t, cli).await?;
    let plan = config.plan()?;
    let cx = connect(&config, report, "outputs").await?;
    // Only the kinds the plan has are listed.
    let mut kinds: Vec<Kind> = plan.resources.iter().map(|r| r.kind).collect();
    kinds.sort();
    kinds.dedup();
    let observed = engine::observe(&cx, &kinds).await?;
    Ok((0, Report::Outputs(outputs_of(&config, &plan, &observed))))
}

/// The URL from the plan's endpoint, then what each planned resource contributes (values of one
/// name from several resources, such as subnets, are joined with commas). Empty values are left out.
fn outputs_of(config: &Config, plan: &Plan, observed: &[Observed]) -> BTreeMap<String, String> {
    let mut out: BTreeMap<String, String> = BTreeMap::new();
    let planned = |o: &&Observed| plan.get(&o.key).is_some_and(|d| d.kind == o.kind);
    for o in observed.iter().filter(planned) {
        for (name, value) in o.kind.imp().outputs(o) {
            out.entry(name)
                .and_modify(|v| {
                    v.push(',');
                    v.push_str(&value);
                })
                .or_insert(value);
        }
    }
    if let Some(endpoint) = &plan.endpoint
        && let Some(o) = observed.iter().find(|o| o.key == endpoint.key)
        && !o.attr(&endpoint.attr).is_empty()
    {
        let scheme = if endpoint.https { "https" } else { "http" };
        out.insert(
            "url".into(),
            format!("{scheme}://{}/", o.attr(&endpoint.attr)),
        );
    }
    if config.stack.tls.mode == TlsMode::SelfSigned && out.contains_key("url") {
        out.insert("note".into(), "the certificate is self-signed: browsers warn until you use a trusted mode (asg: acm with your own domain; monolith: letsencrypt-ip)".into());
    }
    out.retain(|_, v| !v.is_empty());
    out
}
