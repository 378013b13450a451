//! One function per command: resolve the config, talk to the engine, return the result as data
//! (`print::Report`), which one printer per format shows on stdout. Nothing here knows a stack's
//! resource keys: outputs and status details come from each kind. A command returns the exit
//! code of a successful run with its report (plan: 0 or 2).

use std::collections::BTreeMap;

use std::sync::Arc;

use crate::aws::{Cx, Observed, Owner};
use crate::cli::{Cli, Command, Target};
use crate::config::Config;
use crate::engine::{self, Action, Engine};
use crate::env_ops::{Done, confirm, connect_to, discover, forget, locked, teardown};
use crate::error::Error;
use crate::journal::Journal;
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
            ttl,
            lock,
        } => {
            let run = Run {
                parallelism: *parallelism,
                lock_wait: lock.lock_wait,
                ttl: *ttl,
                bake_only: false,
            };
            up(target, run, &cli, &report).await
        }
        Command::Bake {
            target,
            parallelism,
            lock,
        } => {
            let run = Run {
                parallelism: *parallelism,
                lock_wait: lock.lock_wait,
                ttl: None,
                bake_only: true,
            };
            up(target, run, &cli, &report).await
        }
        Command::Down {
            target,
            yes,
            parallelism,
            lock,
        } => down(target, *yes, *parallelism, lock.lock_wait, &cli, &report).await,
        Command::Ls { region } => crate::fleet::ls(region.as_deref(), &report).await,
        Command::Gc {
            region,
            yes,
            parallelism,
        } => crate::fleet::gc(region.as_deref(), *yes, *parallelism, &cli, &report).await,
        Command::Status(t) => status(t, &cli, &report).await,
        Command::Outputs(t) => outputs(t, &cli, &report).await,
        Command::Render { target, out } => render(target, out, &cli).await,
        Command::Doctor(t) => doctor(t, &cli).await,
        Command::Graph { target, format } => graph(target, *format, &cli).await,
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

/// How an `up` or `bake` runs.
struct Run {
    parallelism: u16,
    lock_wait: std::time::Duration,
    ttl: Option<std::time::Duration>,
    bake_only: bool,
}

/// Clients plus the STS preflight: proves the credentials before anything else happens.
/// This stack's and env's ownership: what its resources are tagged with and found by.
fn owner(config: &Config) -> Owner {
    Owner {
        stack: config.stack.name.clone(),
        env: config.env.clone(),
        extra_tags: config.stack.tags.clone(),
    }
}

async fn connect(config: &Config, report: &Arc<Reporter>, verb: &str) -> Result<Arc<Cx>, Error> {
    let what = format!(
        "region {} (from {}); stack {} env {}",
        config.region, config.region_source, config.stack.name, config.env
    );
    connect_to(
        &config.region,
        owner(config),
        report,
        &config.command(verb),
        &what,
    )
    .await
}

async fn validate(t: &Target, cli: &Cli, _report: &Arc<Reporter>) -> Done {
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

async fn graph(t: &Target, format: crate::graph::Format, cli: &Cli) -> Done {
    let config = config(t, cli).await?;
    let source = crate::graph::render(&config.plan()?, format);
    Ok((0, Report::Drawn(print::Drawn { format, source })))
}

async fn render(t: &Target, out: &std::path::Path, cli: &Cli) -> Done {
    let config = config(t, cli).await?;
    let rendered = crate::render::render(&config.plan()?, out)?;
    if cli.output == crate::report::OutputFormat::Text {
        eprint!("{}", crate::print::text::user_data_summary(&rendered));
    }
    Ok((0, Report::Rendered(rendered)))
}

async fn plan(t: &Target, cli: &Cli, report: &Arc<Reporter>) -> Done {
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
async fn up(t: &Target, run: Run, cli: &Cli, report: &Arc<Reporter>) -> Done {
    let config = config(t, cli).await?;
    let bake_only = run.bake_only;
    // The whole plan is built and validated before anything is locked or called.
    let plan = config.plan()?;
    eks_needs(&config, &plan, bake_only)?;
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
    roles_exist(&config, &cx, report).await?;
    let cost = crate::cost::estimate(&plan, &config.region);
    if !bake_only {
        report.info(&crate::cost::summary(&cost));
    }
    let work = up_locked(
        &config,
        plan,
        &run,
        cost.hourly_usd,
        Arc::clone(&journal),
        &cx,
        report,
    );
    locked(&cx, &journal, &rerun, run.lock_wait, report, work).await
}

/// What the eks stack needs of this run before anything is made: it bakes no machine image, and
/// its container image is built here from the Linux app binary (the source cannot be compiled
/// here).
fn eks_needs(config: &Config, plan: &Plan, bake_only: bool) -> Result<(), Error> {
    if config.stack.kind() != crate::stack::StackKind::Eks {
        return Ok(());
    }
    if bake_only {
        return Err(Error::Usage {
            message: "the eks stack bakes no machine image: its app runs from a container image in its ECR repository".into(),
            hint: "`bookstore bake` is for the asg, swarm and monolith stacks".into(),
        });
    }
    // The plan's artifact, resolved and hashed once.
    let source = plan.resources.iter().any(|d| {
        matches!(&d.spec, crate::aws::Spec::Workload(w) if w.app.kind == crate::artifact::ArtifactKind::Source)
    });
    if source {
        return Err(Error::Usage {
            message: "the eks stack runs the app from a container image that bookstore builds from the Linux x86_64 bookstore-app binary, and there is none beside bookstore (a release archive carries it) nor given with --app-binary".into(),
            hint: format!(
                "build it (`cargo build --release -p bookstore-app` on Linux x86_64), then `{} --app-binary target/release/bookstore-app`; nothing was created",
                config.command("up")
            ),
        });
    }
    Ok(())
}

/// The account's own roles an eks stack runs on, found by name before anything is made: a
/// missing one must not leave half a stack behind.
async fn roles_exist(config: &Config, cx: &Cx, report: &Arc<Reporter>) -> Result<(), Error> {
    let crate::stack::Topology::Eks(eks) = &config.stack.topology else {
        return Ok(());
    };
    let k = &eks.kubernetes;
    for (field, part) in [
        ("kubernetes.cluster_role", &k.cluster_role),
        ("kubernetes.node_role", &k.node_role),
    ] {
        match crate::aws::cluster::find_role(cx, part).await {
            Ok(arn) => report.info(&format!("{field}: {arn}")),
            Err(e) => {
                return Err(Error::Aws {
                    resource: field.to_string(),
                    action: "find".into(),
                    message: e.message,
                    hint: format!(
                        "nothing was created; `{}` again once the role exists",
                        config.command("up")
                    ),
                });
            }
        }
    }
    Ok(())
}

/// `up` once this run holds the env's lock: observe, diff, guard, record, converge.
async fn up_locked(
    config: &Config,
    mut plan: Plan,
    run: &Run,
    hourly_usd: f64,
    journal: Arc<Journal>,
    cx: &Arc<Cx>,
    report: &Arc<Reporter>,
) -> Done {
    let bake_only = run.bake_only;
    let rerun = config.command(if bake_only { "bake" } else { "up" });
    let mut observed = engine::observe(cx, Kind::ALL).await?;
    if bake_only {
        let image = plan.image_key().unwrap_or_default().to_string();
        plan = plan.closure(&image);
        // Only what the bake needs is compared: nothing else counts as extra.
        observed.retain(|o| plan.get(&o.key).is_some());
    }
    let diff = engine::diff(&plan, &observed);
    if config.stack.sandbox == crate::stack::Sandbox::LearnerLab {
        crate::guard::check(cx, &plan, &diff, &rerun).await?;
    }
    if diff.has_changes() || run.ttl.is_some() {
        record(config, cx, run.ttl, hourly_usd, &rerun).await?;
    }
    let engine = Engine {
        kinds: Arc::new(engine::AwsKinds),
        cx: Arc::clone(cx),
        journal,
        report: Arc::clone(report),
        parallelism: run.parallelism.into(),
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
            scope: scope(config),
            nothing_to_do,
            summary,
            outputs: outputs_of(config, &plan, &observed),
            elapsed_seconds: report.elapsed().as_secs_f64(),
        }),
    ))
}

/// The env's record in the account, before the first create: its age, `--ttl` expiry (kept when
/// this run sets none) and estimated cost, for `ls` and `gc`.
async fn record(
    config: &Config,
    cx: &Cx,
    ttl: Option<std::time::Duration>,
    hourly_usd: f64,
    rerun: &str,
) -> Result<(), Error> {
    let (stack, env) = (&config.stack.name, &config.env);
    let aws = |e: crate::aws::AwsError| {
        engine::aws_error(
            &e,
            "recording",
            &format!("env {env} of stack {stack} in the account"),
            rerun,
        )
    };
    let old = crate::state::read_record(cx, stack, env)
        .await
        .map_err(aws)?;
    let now = crate::state::now();
    let record = crate::state::Record {
        stack: stack.clone(),
        env: env.clone(),
        region: config.region.clone(),
        created: old.as_ref().map_or(now, |o| o.created),
        expires: ttl
            .map(|t| now + t.as_secs())
            .or_else(|| old.as_ref().and_then(|o| o.expires)),
        hourly_usd,
        stack_ref: config.stack_ref.clone(),
    };
    // Only when it changes: a no-op `up` writes nothing.
    if old.as_ref() == Some(&record) {
        return Ok(());
    }
    crate::state::write_record(cx, &record).await.map_err(aws)
}

async fn down(
    t: &Target,
    yes: bool,
    parallelism: u16,
    lock_wait: std::time::Duration,
    cli: &Cli,
    report: &Arc<Reporter>,
) -> Done {
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
    let work = async {
        let targets = discover(&cx, &journal, &rerun).await?;
        let owned = targets.iter().filter(|o| o.owned).count();
        if owned > 0 && !yes {
            confirm(&format!(
                "Delete {owned} resources of stack {} env {} in {}?",
                config.stack.name, config.env, config.region
            ))?;
        }
        let deleted = if owned == 0 {
            vec![]
        } else {
            teardown(
                &cx,
                Arc::clone(&journal),
                report,
                parallelism,
                &rerun,
                targets,
            )
            .await?
        };
        forget(&cx, &rerun).await?;
        Ok((owned, deleted))
    };
    let (owned, deleted) = locked(&cx, &journal, &rerun, lock_wait, report, work).await?;
    Ok((
        0,
        Report::Deleted(Deleted {
            scope: scope(&config),
            deleted,
            nothing_to_do: owned == 0,
            elapsed_seconds: report.elapsed().as_secs_f64(),
        }),
    ))
}

async fn status(t: &Target, cli: &Cli, report: &Arc<Reporter>) -> Done {
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

async fn outputs(t: &Target, cli: &Cli, report: &Arc<Reporter>) -> Done {
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
