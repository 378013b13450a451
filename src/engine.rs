//! Executes a plan against AWS through the `ResourceKind` trait; it knows no service by name.
//!
//! * observe: every kind's owned resources, all kinds at once;
//! * diff: desired vs observed → create / wait / update / keep / delete, with drift;
//! * up: a DAG walk that starts each resource as soon as its dependencies are ready, bounded by a
//!   semaphore; intent is journaled before each create; waits poll with growing, jittered delays
//!   within a per-kind budget; an expired token aborts everything at once;
//! * teardown: kinds in reverse dependency order (independent kinds in parallel), retrying
//!   DependencyViolation/ResourceInUse with backoff, waiting until each resource is gone.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;

use crate::aws::{AwsError, Cx, Deps, ErrorClass, Observed, ResourceKind};
use crate::error::Error;
use crate::journal::{Event, Journal};
use crate::plan::{Desired, Kind, Plan};
use crate::report::{Phase, Reporter};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Action {
    Create,
    /// Exists but is not ready yet (e.g. a run was interrupted during its wait).
    Wait,
    Update,
    /// Drifted in something that cannot change in place: deleted, then created again.
    Replace,
    Keep,
    Delete,
}

#[derive(Debug, Clone, Serialize)]
pub struct Step {
    pub key: String,
    pub kind: Kind,
    pub name: String,
    pub action: Action,
    pub id: Option<String>,
    pub state: Option<String>,
    /// `field: have → want` for each difference from the stack.
    pub drift: Vec<String>,
}

/// What exists, matched against what is wanted.
pub struct Diff {
    pub steps: Vec<Step>,
    /// Resources found by key, for the ones the plan wants.
    pub existing: BTreeMap<String, Observed>,
    /// Owned resources the plan does not want (a changed stack, a duplicate): deleted by `up`.
    pub extras: Vec<Observed>,
}

impl Diff {
    pub fn has_changes(&self) -> bool {
        self.steps.iter().any(|s| s.action != Action::Keep)
    }
}

#[derive(Debug, Default, Serialize)]
pub struct Summary {
    pub created: Vec<String>,
    pub updated: Vec<String>,
    pub waited: Vec<String>,
    pub unchanged: Vec<String>,
    pub deleted: Vec<String>,
    /// Drift that cannot be fixed in place.
    pub drifted: Vec<String>,
}

/// Where the engine finds the module that manages each kind: AWS's modules in the CLI
/// (`AwsKinds`), fakes in the engine's own tests.
pub trait Registry: Send + Sync {
    fn imp(&self, kind: Kind) -> &dyn ResourceKind;
}

/// The AWS modules of the registry (`Kind::imp`).
pub struct AwsKinds;

impl Registry for AwsKinds {
    fn imp(&self, kind: Kind) -> &dyn ResourceKind {
        kind.imp()
    }
}

pub struct Engine {
    pub kinds: Arc<dyn Registry>,
    pub cx: Arc<Cx>,
    pub journal: Arc<Journal>,
    pub report: Arc<Reporter>,
    pub parallelism: usize,
    /// The command that resumes this run, for messages.
    pub rerun: String,
}

/// Every owned resource of these kinds, observed in parallel.
pub async fn observe(cx: &Arc<Cx>, kinds: &[Kind]) -> Result<Vec<Observed>, Error> {
    observe_in(Arc::new(AwsKinds), cx, kinds).await
}

/// `observe`, with the modules of `registry`.
pub async fn observe_in(
    registry: Arc<dyn Registry>,
    cx: &Arc<Cx>,
    kinds: &[Kind],
) -> Result<Vec<Observed>, Error> {
    let mut set = JoinSet::new();
    for &kind in kinds {
        let (cx, registry) = (Arc::clone(cx), Arc::clone(&registry));
        set.spawn(async move { (kind, registry.imp(kind).observe(&cx).await) });
    }
    let mut all = Vec::new();
    let mut first_error = None;
    while let Some(joined) = set.join_next().await {
        let (kind, result) = joined.expect("observe task panicked");
        match result {
            Ok(found) => all.extend(found),
            Err(e) => {
                let err = aws_error(&e, "listing", kind.as_str(), "");
                if matches!(err, Error::Credentials { .. }) {
                    set.abort_all();
                    return Err(err);
                }
                first_error.get_or_insert(err);
            }
        }
    }
    match first_error {
        Some(e) => Err(e),
        None => Ok(all),
    }
}

/// Turns an AWS error on a resource into the CLI error, naming the resource and the way out.
pub fn aws_error(e: &AwsError, action: &str, resource: &str, rerun: &str) -> Error {
    match e.class {
        ErrorClass::Credentials => Error::Credentials {
            message: format!("AWS refused the credentials while {action} {resource} ({e})"),
            rerun: if rerun.is_empty() {
                "the same bookstore command".into()
            } else {
                rerun.into()
            },
        },
        ErrorClass::Throttling => Error::Aws {
            resource: resource.into(),
            action: action.into(),
            message: e.to_string(),
            hint: format!(
                "AWS kept throttling after several retries; wait a minute and run `{rerun}` again: it resumes"
            ),
        },
        _ => Error::Aws {
            resource: resource.into(),
            action: action.into(),
            message: e.to_string(),
            hint: if rerun.is_empty() {
                "fix the cause above and run the command again".into()
            } else {
                format!(
                    "fix the cause above, then run `{rerun}`: it resumes and creates nothing twice"
                )
            },
        },
    }
}

fn label(key: &str, name: &str) -> String {
    if name.is_empty() {
        key.to_string()
    } else {
        format!("{key} ({name})")
    }
}

/// A delay with ±20 % jitter, so parallel pollers do not beat in step.
fn jitter(d: Duration) -> Duration {
    d.mul_f64(0.8 + fastrand::f64() * 0.4)
}

/// Compares the plan with what exists.
pub fn diff(plan: &Plan, observed: &[Observed]) -> Diff {
    diff_in(&AwsKinds, plan, observed)
}

/// `diff`, with the modules of `registry`.
pub fn diff_in(registry: &dyn Registry, plan: &Plan, observed: &[Observed]) -> Diff {
    let wanted: HashSet<&str> = plan.resources.iter().map(|r| r.key.as_str()).collect();
    let mut existing: BTreeMap<String, Observed> = BTreeMap::new();
    let mut extras = Vec::new();
    for o in observed {
        let kind_matches = plan.get(&o.key).is_some_and(|d| d.kind == o.kind);
        if wanted.contains(o.key.as_str()) && kind_matches && !existing.contains_key(&o.key) {
            existing.insert(o.key.clone(), o.clone());
        } else {
            extras.push(o.clone());
        }
    }
    let mut steps = Vec::new();
    for want in &plan.resources {
        let Some(have) = existing.get(&want.key) else {
            steps.push(Step {
                key: want.key.clone(),
                kind: want.kind,
                name: want.name.clone(),
                action: Action::Create,
                id: None,
                state: None,
                drift: vec![],
            });
            continue;
        };
        let drift = drift_of(registry, want, have, &existing);
        let action = if must_replace(registry, want, &drift) {
            Action::Replace
        } else if !drift.is_empty() {
            Action::Update
        } else if !have.ready {
            Action::Wait
        } else {
            Action::Keep
        };
        steps.push(Step {
            key: want.key.clone(),
            kind: want.kind,
            name: want.name.clone(),
            action,
            id: Some(have.id.clone()),
            state: Some(have.state.clone()),
            drift,
        });
    }
    // A resource whose dependency is about to be made (a new image for a new app, say) refers to
    // the old one: it is updated once the new one exists.
    let creating: HashSet<String> = steps
        .iter()
        .filter(|s| s.action == Action::Create)
        .map(|s| s.key.clone())
        .collect();
    for (want, step) in plan.resources.iter().zip(steps.iter_mut()) {
        if step.action != Action::Keep {
            continue;
        }
        for dep in want.depends_on.iter().filter(|d| creating.contains(*d)) {
            step.action = Action::Update;
            step.drift
                .push(format!("{dep}: (to be created) → refers to the new one"));
        }
    }
    for o in &extras {
        steps.push(Step {
            key: o.key.clone(),
            kind: o.kind,
            name: o.name.clone(),
            action: Action::Delete,
            id: Some(o.id.clone()),
            state: Some(o.state.clone()),
            drift: vec![],
        });
    }
    Diff {
        steps,
        existing,
        extras,
    }
}

/// `field: have → want` for every fact that differs. Skipped while a dependency is missing (its
/// id, which the facts refer to, is not known yet).
fn drift_of(
    registry: &dyn Registry,
    want: &Desired,
    have: &Observed,
    existing: &BTreeMap<String, Observed>,
) -> Vec<String> {
    match deps_of(want, existing) {
        Some(deps) => drift_with(registry, want, have, &deps),
        None => vec![],
    }
}

/// True when a drifted field is one the kind cannot change in place.
fn must_replace(registry: &dyn Registry, want: &Desired, drift: &[String]) -> bool {
    let kind = registry.imp(want.kind);
    drift
        .iter()
        .filter_map(|d| d.split(':').next())
        .any(|field| kind.replaces(want, field))
}

fn drift_with(
    registry: &dyn Registry,
    want: &Desired,
    have: &Observed,
    deps: &Deps,
) -> Vec<String> {
    let expected = registry.imp(want.kind).expected_facts(want, deps);
    expected
        .iter()
        .filter_map(|(field, value)| {
            let actual = have.facts.get(field).map(String::as_str).unwrap_or("");
            (actual != value).then(|| {
                format!(
                    "{field}: {} → {}",
                    if actual.is_empty() { "(none)" } else { actual },
                    if value.is_empty() { "(none)" } else { value }
                )
            })
        })
        .collect()
}

fn deps_of(want: &Desired, done: &BTreeMap<String, Observed>) -> Option<Deps> {
    want.depends_on
        .iter()
        .map(|d| Some((d.clone(), done.get(d)?.clone())))
        .collect()
}

type TaskResult = Result<(Observed, Outcome), Error>;

enum Outcome {
    Created,
    Updated,
    Waited,
    Unchanged,
    Drifted,
}

impl Engine {
    /// Creates, waits for and updates what the plan needs, then deletes what it no longer wants.
    /// Returns what happened and every resource of the plan as it now is (for the outputs).
    pub async fn up(&self, plan: &Plan, diff: Diff) -> Result<(Summary, Vec<Observed>), Error> {
        let journaled: HashSet<String> = self
            .journal
            .live()?
            .into_iter()
            .map(|(_, _, id)| id)
            .collect();
        let actions: HashMap<String, Action> = diff
            .steps
            .iter()
            .map(|s| (s.key.clone(), s.action))
            .collect();
        let mut summary = Summary::default();
        let mut remaining: Vec<&Desired> = plan.resources.iter().collect();
        let mut done: BTreeMap<String, Observed> = BTreeMap::new();
        let mut running: JoinSet<(String, TaskResult)> = JoinSet::new();
        let permits = Arc::new(Semaphore::new(self.parallelism.max(1)));
        let mut first_error: Option<Error> = None;

        loop {
            // Start everything whose dependencies are ready; resources with nothing to do are
            // done at once, which may free others, so scan until nothing changes.
            let mut progressed = first_error.is_none();
            while progressed {
                progressed = false;
                let mut i = 0;
                while i < remaining.len() {
                    let want = remaining[i];
                    let Some(deps) = deps_of(want, &done) else {
                        i += 1;
                        continue;
                    };
                    remaining.remove(i);
                    let existing = diff.existing.get(&want.key).cloned();
                    if let Some(have) = &existing
                        && !journaled.contains(&have.id)
                    {
                        self.journal.record(
                            Event::Adopted,
                            want.kind,
                            &want.key,
                            &want.name,
                            Some(&have.id),
                        )?;
                    }
                    // A dependency updated in this run (a new launch template version, say) can
                    // make a resource that matched the stack drift: compare again with it.
                    let redrifted = match (&existing, actions.get(&want.key)) {
                        (Some(have), Some(Action::Keep)) => {
                            !drift_with(&*self.kinds, want, have, &deps).is_empty()
                        }
                        _ => false,
                    };
                    if actions.get(&want.key) == Some(&Action::Keep) && !redrifted {
                        let have = existing.expect("kept resources exist");
                        self.report
                            .resource(&want.key, want.kind, Phase::Exists, &have.id);
                        summary.unchanged.push(want.key.clone());
                        done.insert(want.key.clone(), have);
                        progressed = true;
                        continue;
                    }
                    let task = Task {
                        kinds: Arc::clone(&self.kinds),
                        cx: Arc::clone(&self.cx),
                        journal: Arc::clone(&self.journal),
                        report: Arc::clone(&self.report),
                        rerun: self.rerun.clone(),
                        want: want.clone(),
                        existing,
                        update: redrifted
                            || matches!(
                                actions.get(&want.key),
                                Some(Action::Update | Action::Replace)
                            ),
                        deps,
                    };
                    let permits = Arc::clone(&permits);
                    running.spawn(async move {
                        let _permit = permits
                            .acquire_owned()
                            .await
                            .expect("semaphore is never closed");
                        let key = task.want.key.clone();
                        (key, task.run().await)
                    });
                }
            }
            let Some(joined) = running.join_next().await else {
                break;
            };
            let (key, result) = joined.expect("resource task panicked");
            match result {
                Ok((observed, outcome)) => {
                    match outcome {
                        Outcome::Created => summary.created.push(key.clone()),
                        Outcome::Updated => summary.updated.push(key.clone()),
                        Outcome::Waited => summary.waited.push(key.clone()),
                        Outcome::Unchanged => summary.unchanged.push(key.clone()),
                        Outcome::Drifted => summary.drifted.push(key.clone()),
                    }
                    done.insert(key, observed);
                }
                Err(e) => {
                    if matches!(e, Error::Credentials { .. }) {
                        // Every other call would fail the same way: stop now.
                        running.abort_all();
                        return Err(e);
                    }
                    first_error.get_or_insert(e);
                }
            }
        }
        if let Some(e) = first_error {
            for want in remaining {
                self.report.resource(
                    &want.key,
                    want.kind,
                    Phase::Skipped,
                    "not started: a resource it needs failed",
                );
            }
            return Err(e);
        }
        if !remaining.is_empty() {
            // Plan::validate makes this unreachable; if it ever happens, it is not "Done".
            return Err(Error::Unstarted {
                keys: remaining.iter().map(|r| r.key.clone()).collect(),
            });
        }
        if !diff.extras.is_empty() {
            self.report.info(&format!(
                "deleting {} resource(s) the stack no longer describes",
                diff.extras.len()
            ));
            summary.deleted = self.teardown(diff.extras).await?;
        }
        Ok((summary, done.into_values().collect()))
    }

    /// Deletes these owned resources in reverse dependency order. Returns the keys deleted.
    pub async fn teardown(&self, targets: Vec<Observed>) -> Result<Vec<String>, Error> {
        let mut by_kind: BTreeMap<Kind, Vec<Observed>> = BTreeMap::new();
        for o in targets {
            if o.owned {
                by_kind.entry(o.kind).or_default().push(o);
            } else {
                self.report.warn(&format!(
                    "{} {} does not carry this stack's bookstore tags: left alone",
                    o.kind.as_str(),
                    o.id
                ));
            }
        }
        // One channel per kind: None while running, Some(ok) when finished.
        let mut senders = HashMap::new();
        let mut receivers = HashMap::new();
        for &kind in by_kind.keys() {
            let (tx, rx) = watch::channel(None::<bool>);
            senders.insert(kind, tx);
            receivers.insert(kind, rx);
        }
        let permits = Arc::new(Semaphore::new(self.parallelism.max(1)));
        let mut kinds = JoinSet::new();
        for (kind, items) in by_kind {
            let blockers: Vec<watch::Receiver<Option<bool>>> = self
                .kinds
                .imp(kind)
                .teardown_after()
                .iter()
                .filter_map(|k| receivers.get(k).cloned())
                .collect();
            let tx = senders.remove(&kind).expect("one sender per kind");
            let ctx = DeleteCx {
                kinds: Arc::clone(&self.kinds),
                cx: Arc::clone(&self.cx),
                journal: Arc::clone(&self.journal),
                report: Arc::clone(&self.report),
                rerun: self.rerun.clone(),
                permits: Arc::clone(&permits),
            };
            kinds.spawn(async move {
                let result = delete_kind(ctx, kind, items, blockers).await;
                let _ = tx.send(Some(result.is_ok()));
                result
            });
        }
        let mut deleted = Vec::new();
        let mut first_error = None;
        while let Some(joined) = kinds.join_next().await {
            match joined.expect("teardown task panicked") {
                Ok(keys) => deleted.extend(keys),
                Err(e) => {
                    if matches!(e, Error::Credentials { .. }) {
                        kinds.abort_all();
                        return Err(e);
                    }
                    first_error.get_or_insert(e);
                }
            }
        }
        match first_error {
            Some(e) => Err(e),
            None => Ok(deleted),
        }
    }
}

struct Task {
    kinds: Arc<dyn Registry>,
    cx: Arc<Cx>,
    journal: Arc<Journal>,
    report: Arc<Reporter>,
    rerun: String,
    want: Desired,
    existing: Option<Observed>,
    update: bool,
    deps: Deps,
}

impl Task {
    fn fail(&self, action: &str, e: &AwsError) -> Error {
        self.report.resource(
            &self.want.key,
            self.want.kind,
            Phase::Failed,
            &e.to_string(),
        );
        aws_error(
            e,
            action,
            &label(&self.want.key, &self.want.name),
            &self.rerun,
        )
    }

    async fn run(self) -> TaskResult {
        let kind = self.kinds.imp(self.want.kind);
        let (key, k) = (&self.want.key, self.want.kind);
        // Something still pending (a run killed during its wait) is waited for before it is
        // compared or changed: AWS refuses most changes to a resource that is not ready.
        let existing = match &self.existing {
            Some(have) if !have.ready && self.update => {
                Some(self.wait_ready(kind, have.clone()).await?)
            }
            other => other.clone(),
        };
        let drift = existing
            .as_ref()
            .map(|have| drift_with(&*self.kinds, &self.want, have, &self.deps))
            .unwrap_or_default();
        let replace = self.update && must_replace(&*self.kinds, &self.want, &drift);
        let (have, mut outcome) = match &existing {
            Some(have) if replace => {
                self.report.resource(
                    key,
                    k,
                    Phase::Updating,
                    &format!("replacing {} ({})", have.id, drift.join("; ")),
                );
                delete_one(&self.deleting(), have.clone()).await?;
                (self.create(kind).await?, Outcome::Updated)
            }
            Some(have) if self.update => {
                self.report.resource(key, k, Phase::Updating, &have.id);
                let fixed = kind
                    .update(&self.cx, &self.want, have, &self.deps)
                    .await
                    .map_err(|e| self.fail("updating", &e))?;
                if fixed {
                    let fresh = kind
                        .refresh(&self.cx, have)
                        .await
                        .map_err(|e| self.fail("reading", &e))?;
                    (fresh.unwrap_or_else(|| have.clone()), Outcome::Updated)
                } else {
                    self.report
                        .resource(key, k, Phase::Drifted, kind.stuck_hint(&self.want));
                    (have.clone(), Outcome::Drifted)
                }
            }
            Some(have) => (have.clone(), Outcome::Unchanged),
            None => (self.create(kind).await?, Outcome::Created),
        };
        let mut have = if have.ready {
            have
        } else {
            if matches!(outcome, Outcome::Unchanged) {
                outcome = Outcome::Waited;
            }
            self.wait_ready(kind, have).await?
        };
        // A new resource finishes what needs it running (an instance's volume and address).
        let created = matches!(outcome, Outcome::Created) || replace;
        if created && kind.converge_after_create() {
            let drift = drift_with(&*self.kinds, &self.want, &have, &self.deps);
            if !drift.is_empty() {
                self.report
                    .resource(key, k, Phase::Updating, &drift.join("; "));
                kind.update(&self.cx, &self.want, &have, &self.deps)
                    .await
                    .map_err(|e| self.fail("finishing", &e))?;
                if let Some(fresh) = kind
                    .refresh(&self.cx, &have)
                    .await
                    .map_err(|e| self.fail("reading", &e))?
                {
                    have = fresh;
                }
                // What the converge finished may be what readiness needs (a monolith's app
                // answers once its Elastic IP is associated).
                if !have.ready {
                    have = self.wait_ready(kind, have).await?;
                }
            }
        }
        match outcome {
            Outcome::Drifted => {}
            Outcome::Updated => self.report.resource(key, k, Phase::Updated, &have.id),
            _ => self.report.resource(key, k, Phase::Ready, &have.id),
        }
        Ok((have, outcome))
    }

    /// What deleting needs, for a resource this task replaces.
    fn deleting(&self) -> Deleting<'_> {
        Deleting {
            kinds: &*self.kinds,
            cx: &self.cx,
            journal: &self.journal,
            report: &self.report,
            rerun: &self.rerun,
        }
    }

    /// Journals the intent, creates the resource and journals its id.
    async fn create(&self, kind: &dyn ResourceKind) -> Result<Observed, Error> {
        let (key, k) = (&self.want.key, self.want.kind);
        self.journal
            .record(Event::Intent, k, key, &self.want.name, None)?;
        self.report
            .resource(key, k, Phase::Creating, &self.want.name);
        let created = kind
            .create(&self.cx, &self.want, &self.deps)
            .await
            .map_err(|e| self.fail("creating", &e))?;
        self.journal
            .record(Event::Created, k, key, &self.want.name, Some(&created.id))?;
        Ok(created)
    }

    async fn wait_ready(
        &self,
        kind: &dyn ResourceKind,
        mut have: Observed,
    ) -> Result<Observed, Error> {
        let budget = kind.budget();
        // BOOKSTORE_READY_BUDGET_SECS caps every wait (a CI job's own budget; the tests).
        let ready_budget = std::env::var("BOOKSTORE_READY_BUDGET_SECS")
            .ok()
            .and_then(|v| v.parse::<u64>().ok())
            .map_or(budget.ready, |s| budget.ready.min(Duration::from_secs(s)));
        let started = Instant::now();
        let mut delay = Duration::from_secs(1);
        loop {
            let detail = match have.attrs.get("waiting_for") {
                Some(w) => format!("{} — {w}", have.state),
                None => have.state.clone(),
            };
            self.report
                .resource(&self.want.key, self.want.kind, Phase::Waiting, &detail);
            if started.elapsed() > ready_budget {
                self.report
                    .resource(&self.want.key, self.want.kind, Phase::Failed, "timed out");
                let state = match kind.diagnose(&self.cx, &have).await {
                    Some(why) => format!("{} — {why}", have.state),
                    None => have.state.clone(),
                };
                return Err(Error::Timeout {
                    resource: label(&self.want.key, &have.id),
                    goal: "ready",
                    state,
                    waited_secs: started.elapsed().as_secs(),
                    hint: format!(
                        "it may still finish: run `bookstore status` to look, and `{}` to resume waiting",
                        self.rerun
                    ),
                });
            }
            tokio::time::sleep(jitter(delay)).await;
            delay = (delay + Duration::from_secs(1)).min(budget.poll_max);
            match kind.refresh(&self.cx, &have).await {
                Ok(Some(fresh)) if fresh.ready => return Ok(fresh),
                Ok(Some(fresh)) => have = fresh,
                Ok(None) => {
                    let e = AwsError::other(
                        "it disappeared while bookstore was waiting for it (deleted outside bookstore?)",
                    );
                    return Err(self.fail("waiting for", &e));
                }
                // A throttled poll is not a failure of the resource: look again later.
                Err(e) if e.class == ErrorClass::Throttling => {}
                Err(e) => return Err(self.fail("waiting for", &e)),
            }
        }
    }
}

struct DeleteCx {
    kinds: Arc<dyn Registry>,
    cx: Arc<Cx>,
    journal: Arc<Journal>,
    report: Arc<Reporter>,
    rerun: String,
    permits: Arc<Semaphore>,
}

async fn delete_kind(
    ctx: DeleteCx,
    kind: Kind,
    items: Vec<Observed>,
    blockers: Vec<watch::Receiver<Option<bool>>>,
) -> Result<Vec<String>, Error> {
    for mut rx in blockers {
        let ok = match rx.wait_for(Option::is_some).await {
            Ok(v) => v.unwrap_or(false),
            Err(_) => false,
        };
        if !ok {
            for o in &items {
                ctx.report.resource(
                    &o.key,
                    kind,
                    Phase::Skipped,
                    "not deleted: something that uses it could not be deleted",
                );
            }
            return Err(Error::Leftovers {
                left: items
                    .iter()
                    .map(|o| format!("{} {} ({})", kind.as_str(), o.key, o.id))
                    .collect(),
                hint: format!("see the first error above, then run `{}` again", ctx.rerun),
            });
        }
    }
    let ctx = Arc::new(ctx);
    let mut set = JoinSet::new();
    for o in items {
        let ctx = Arc::clone(&ctx);
        set.spawn(async move {
            let _permit = ctx
                .permits
                .acquire()
                .await
                .expect("semaphore is never closed");
            let deleting = Deleting {
                kinds: &*ctx.kinds,
                cx: &ctx.cx,
                journal: &ctx.journal,
                report: &ctx.report,
                rerun: &ctx.rerun,
            };
            delete_one(&deleting, o).await
        });
    }
    let mut deleted = Vec::new();
    let mut first_error = None;
    while let Some(joined) = set.join_next().await {
        match joined.expect("delete task panicked") {
            Ok(key) => deleted.push(key),
            Err(e) => {
                if matches!(e, Error::Credentials { .. }) {
                    set.abort_all();
                    return Err(e);
                }
                first_error.get_or_insert(e);
            }
        }
    }
    match first_error {
        Some(e) => Err(e),
        None => Ok(deleted),
    }
}

/// How long a resource may refuse deletion because something still uses it, and how long it may
/// take to disappear.
const DELETE_BUDGET: Duration = Duration::from_secs(900);

/// Where a deletion reports and journals: `down`, extras after `up`, and a replaced resource.
struct Deleting<'a> {
    kinds: &'a dyn Registry,
    cx: &'a Cx,
    journal: &'a Journal,
    report: &'a Reporter,
    rerun: &'a str,
}

/// Deletes one resource, retrying while something still uses it, and waits until it is gone.
async fn delete_one(ctx: &Deleting<'_>, mut have: Observed) -> Result<String, Error> {
    let kind = ctx.kinds.imp(have.kind);
    let name = label(&have.key, &have.id);
    let (key, k) = (have.key.clone(), have.kind);
    let fail = |e: &AwsError| {
        ctx.report.resource(&key, k, Phase::Failed, &e.to_string());
        aws_error(e, "deleting", &name, ctx.rerun)
    };
    ctx.report
        .resource(&have.key, have.kind, Phase::Deleting, &have.id);
    let started = Instant::now();
    let mut delay = Duration::from_secs(2);
    let mut gone = false;
    loop {
        match kind.delete(ctx.cx, &have).await {
            Ok(()) => break,
            Err(e) if e.class == ErrorClass::NotFound => {
                gone = true;
                break;
            }
            Err(e)
                if matches!(e.class, ErrorClass::Dependency | ErrorClass::Throttling)
                    && started.elapsed() < DELETE_BUDGET =>
            {
                ctx.report.resource(
                    &have.key,
                    have.kind,
                    Phase::Retrying,
                    &format!("still in use, retrying: {e}"),
                );
                tokio::time::sleep(jitter(delay)).await;
                delay = (delay * 2).min(Duration::from_secs(20));
                // What it is attached to may have changed meanwhile.
                match kind.refresh(ctx.cx, &have).await {
                    Ok(Some(fresh)) => {
                        let owned = have.owned;
                        have = fresh;
                        have.owned = owned;
                    }
                    Ok(None) => {
                        gone = true;
                        break;
                    }
                    Err(e) => return Err(fail(&e)),
                }
            }
            Err(e) => return Err(fail(&e)),
        }
    }
    let mut poll = Duration::from_secs(1);
    while !gone {
        match kind.refresh(ctx.cx, &have).await {
            Ok(None) => gone = true,
            Ok(Some(o)) if o.state == "deleted" => gone = true,
            Ok(Some(o)) => {
                if started.elapsed() > DELETE_BUDGET {
                    return Err(Error::Timeout {
                        resource: name.clone(),
                        goal: "deleted",
                        state: o.state,
                        waited_secs: started.elapsed().as_secs(),
                        hint: format!("run `{}` again to keep waiting", ctx.rerun),
                    });
                }
                ctx.report
                    .resource(&have.key, have.kind, Phase::Deleting, &o.state);
                tokio::time::sleep(jitter(poll)).await;
                poll = (poll + Duration::from_secs(1)).min(kind.budget().poll_max);
            }
            Err(e) if e.class == ErrorClass::Throttling => tokio::time::sleep(jitter(poll)).await,
            Err(e) => return Err(fail(&e)),
        }
    }
    ctx.journal.record(
        Event::Deleted,
        have.kind,
        &have.key,
        &have.name,
        Some(&have.id),
    )?;
    ctx.report
        .resource(&have.key, have.kind, Phase::Deleted, &have.id);
    Ok(have.key.clone())
}

/// The engine over fake kinds: an in-memory world, no AWS, no emulator, each test in milliseconds.
#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use async_trait::async_trait;

    use super::*;
    use crate::aws::{Actions, Budget, Charge, Drawing, Module, Owner, Place, Want};
    use crate::plan::{Spec, VpcSpec};
    use crate::report::OutputFormat;

    /// What the fakes share: the live resources by id, what happened in order, and the failures a
    /// test injects.
    #[derive(Default)]
    struct World {
        live: BTreeMap<String, Observed>,
        events: Vec<String>,
        /// The stack's configuration of each key, as `expected_facts` gives it.
        wanted: BTreeMap<String, BTreeMap<String, String>>,
        fail_create: HashMap<String, ErrorClass>,
        /// How long a create of this key takes.
        slow: HashMap<String, Duration>,
        next: u32,
        creating: usize,
        most_creating: usize,
    }

    type Shared = Arc<Mutex<World>>;

    struct Fake {
        kind: Kind,
        after: &'static [Kind],
        replace: &'static [&'static str],
        world: Shared,
    }

    #[async_trait]
    impl Module for Fake {
        /// Every fake resource is planned with a VPC's spec; the kind is the fake's own.
        type Spec = VpcSpec;

        fn drawing(&self, _: &VpcSpec) -> Drawing {
            Drawing {
                detail: String::new(),
                place: Place::Stores,
            }
        }

        fn cost(&self, _: &str, _: &VpcSpec, _: &[Desired]) -> Vec<Charge> {
            vec![]
        }

        fn instances_started(&self, _: &VpcSpec) -> u32 {
            0
        }

        fn budget(&self) -> Budget {
            Budget {
                ready: Duration::from_secs(5),
                poll_max: Duration::from_millis(10),
            }
        }

        fn actions(&self) -> Actions {
            Actions {
                observe: &[],
                change: &[],
            }
        }

        async fn observe(&self, _: &Cx) -> Result<Vec<Observed>, AwsError> {
            let w = self.world.lock().unwrap();
            Ok(w.live
                .values()
                .filter(|o| o.kind == self.kind)
                .cloned()
                .collect())
        }

        async fn refresh(&self, _: &Cx, have: &Observed) -> Result<Option<Observed>, AwsError> {
            Ok(self.world.lock().unwrap().live.get(&have.id).cloned())
        }

        async fn create(
            &self,
            _: &Cx,
            want: &Want<'_, VpcSpec>,
            _: &Deps,
        ) -> Result<Observed, AwsError> {
            let slow = {
                let mut w = self.world.lock().unwrap();
                w.events.push(format!("create {}", want.key));
                w.creating += 1;
                w.most_creating = w.most_creating.max(w.creating);
                w.slow
                    .get(want.key)
                    .copied()
                    .unwrap_or(Duration::from_millis(5))
            };
            tokio::time::sleep(slow).await;
            let mut w = self.world.lock().unwrap();
            w.creating -= 1;
            if let Some(class) = w.fail_create.get(want.key) {
                return Err(AwsError {
                    code: Some("Injected".into()),
                    message: format!("{} refused", want.key),
                    class: *class,
                });
            }
            w.next += 1;
            let mut o = Observed::new(
                self.kind,
                want.key,
                format!("{}-{}", self.kind.as_str(), w.next),
            );
            o.owned = true;
            o.facts = w.wanted.get(want.key).cloned().unwrap_or_default();
            w.events.push(format!("created {}", want.key));
            w.live.insert(o.id.clone(), o.clone());
            Ok(o)
        }

        fn expected_facts(&self, want: &Want<'_, VpcSpec>, _: &Deps) -> BTreeMap<String, String> {
            let w = self.world.lock().unwrap();
            w.wanted.get(want.key).cloned().unwrap_or_default()
        }

        async fn update(
            &self,
            _: &Cx,
            want: &Want<'_, VpcSpec>,
            have: &Observed,
            _: &Deps,
        ) -> Result<bool, AwsError> {
            let mut w = self.world.lock().unwrap();
            w.events.push(format!("update {}", want.key));
            let facts = w.wanted.get(want.key).cloned().unwrap_or_default();
            if let Some(o) = w.live.get_mut(&have.id) {
                o.facts = facts;
            }
            Ok(true)
        }

        async fn delete(&self, _: &Cx, have: &Observed) -> Result<(), AwsError> {
            let mut w = self.world.lock().unwrap();
            // AWS's rule, which the engine's order must respect: nothing that must go first is left.
            let blocked = w.live.values().any(|o| self.after.contains(&o.kind));
            if blocked {
                return Err(AwsError {
                    code: Some("DependencyViolation".into()),
                    message: format!("{} is still in use", have.key),
                    class: ErrorClass::Other,
                });
            }
            w.events.push(format!("delete {}", have.key));
            w.live.remove(&have.id);
            Ok(())
        }

        fn teardown_after(&self) -> &'static [Kind] {
            self.after
        }

        fn replace_fields(&self) -> &'static [&'static str] {
            self.replace
        }
    }

    const FAKED: &[Kind] = &[Kind::Vpc, Kind::Subnet, Kind::SecurityGroup, Kind::Instance];

    struct Fakes(HashMap<Kind, Fake>);

    impl Registry for Fakes {
        fn imp(&self, kind: Kind) -> &dyn ResourceKind {
            &self.0[&kind]
        }
    }

    /// A network, two subnets and a group in it, an instance in the first subnet with the group.
    fn plan() -> Plan {
        let r = |key: &str, kind: Kind, deps: &[&str]| Desired {
            key: key.into(),
            kind,
            name: String::new(),
            depends_on: deps.iter().map(|d| d.to_string()).collect(),
            spec: Spec::Vpc(VpcSpec {
                cidr: "10.0.0.0/16".into(),
            }),
        };
        Plan {
            stack: "fake".into(),
            env: "test".into(),
            region: "us-east-1".into(),
            resources: vec![
                r("vpc", Kind::Vpc, &[]),
                r("subnet-a", Kind::Subnet, &["vpc"]),
                r("subnet-b", Kind::Subnet, &["vpc"]),
                r("sg", Kind::SecurityGroup, &["vpc"]),
                r("app", Kind::Instance, &["subnet-a", "sg"]),
            ],
            endpoint: None,
        }
    }

    /// The journal's directory, removed with the test.
    struct Dir(std::path::PathBuf);

    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    struct Test {
        world: Shared,
        engine: Engine,
        _dir: Dir,
    }

    async fn setup() -> Test {
        let world: Shared = Arc::default();
        {
            let mut w = world.lock().unwrap();
            for key in ["vpc", "subnet-a", "subnet-b", "sg", "app"] {
                w.wanted.insert(
                    key.into(),
                    BTreeMap::from([("size".to_string(), "1".to_string())]),
                );
            }
        }
        let fake = |kind, after, replace| {
            (
                kind,
                Fake {
                    kind,
                    after,
                    replace,
                    world: Arc::clone(&world),
                },
            )
        };
        let kinds = Fakes(HashMap::from([
            fake(Kind::Vpc, &[Kind::Subnet, Kind::SecurityGroup][..], &[][..]),
            fake(Kind::Subnet, &[Kind::Instance][..], &[][..]),
            fake(Kind::SecurityGroup, &[Kind::Instance][..], &[][..]),
            fake(Kind::Instance, &[][..], &["image"][..]),
        ]));
        let dir = Dir(std::env::temp_dir().join(format!(
            "bookstore-engine-{}-{}",
            std::process::id(),
            fastrand::u64(..)
        )));
        let owner = Owner {
            stack: "fake".into(),
            env: "test".into(),
            extra_tags: BTreeMap::new(),
        };
        let engine = Engine {
            kinds: Arc::new(kinds),
            cx: Arc::new(Cx::connect("us-east-1", owner).await),
            journal: Arc::new(Journal::open(&dir.0, "fake", "test", "up").unwrap()),
            report: Reporter::new(OutputFormat::Json),
            parallelism: 4,
            rerun: "bookstore up --stack fake".into(),
        };
        Test {
            world,
            engine,
            _dir: dir,
        }
    }

    impl Test {
        async fn up(&self) -> Result<Summary, Error> {
            let observed = observe_in(Arc::clone(&self.engine.kinds), &self.engine.cx, FAKED)
                .await
                .unwrap();
            let diff = diff_in(&*self.engine.kinds, &plan(), &observed);
            self.engine.up(&plan(), diff).await.map(|(s, _)| s)
        }

        async fn diff(&self) -> Diff {
            let observed = observe_in(Arc::clone(&self.engine.kinds), &self.engine.cx, FAKED)
                .await
                .unwrap();
            diff_in(&*self.engine.kinds, &plan(), &observed)
        }

        fn events(&self) -> Vec<String> {
            self.world.lock().unwrap().events.clone()
        }

        /// Where `event` happened in the run.
        fn at(&self, event: &str) -> usize {
            let events = self.events();
            events
                .iter()
                .position(|e| e == event)
                .unwrap_or_else(|| panic!("no {event:?} in {events:?}"))
        }
    }

    fn actions(diff: &Diff) -> BTreeMap<String, Action> {
        diff.steps
            .iter()
            .map(|s| (s.key.clone(), s.action))
            .collect()
    }

    #[tokio::test]
    async fn up_creates_in_dependency_order_and_independent_resources_at_once() {
        let t = setup().await;
        let summary = t.up().await.unwrap();
        assert_eq!(summary.created.len(), 5, "{summary:?}");
        for (before, after) in [
            ("created vpc", "create subnet-a"),
            ("created vpc", "create subnet-b"),
            ("created vpc", "create sg"),
            ("created subnet-a", "create app"),
            ("created sg", "create app"),
        ] {
            assert!(
                t.at(before) < t.at(after),
                "{before} before {after}: {:?}",
                t.events()
            );
        }
        assert_eq!(
            t.world.lock().unwrap().most_creating,
            3,
            "the subnets and the group are created at once"
        );
        // Intent is journaled before each create, the id after: all five are live in the journal.
        assert_eq!(t.engine.journal.live().unwrap().len(), 5);
    }

    #[tokio::test]
    async fn a_second_up_keeps_everything_and_drift_is_updated_or_replaced() {
        let t = setup().await;
        t.up().await.unwrap();
        let again = t.diff().await;
        assert!(!again.has_changes(), "{:?}", actions(&again));
        let before = t.events().len();
        let summary = t.up().await.unwrap();
        assert_eq!(summary.unchanged.len(), 5);
        assert_eq!(
            t.events().len(),
            before,
            "a no-op up calls nothing that changes"
        );

        {
            let mut w = t.world.lock().unwrap();
            w.wanted
                .get_mut("subnet-a")
                .unwrap()
                .insert("size".into(), "2".into());
            w.wanted
                .get_mut("app")
                .unwrap()
                .insert("image".into(), "ami-2".into());
        }
        let diff = t.diff().await;
        let steps = actions(&diff);
        assert_eq!(steps["subnet-a"], Action::Update);
        assert_eq!(
            steps["app"],
            Action::Replace,
            "an image cannot change in place"
        );
        assert_eq!(steps["vpc"], Action::Keep);
        let drift = &diff
            .steps
            .iter()
            .find(|s| s.key == "subnet-a")
            .unwrap()
            .drift;
        assert_eq!(drift, &["size: 1 → 2"]);
        let old_app = diff.existing["app"].id.clone();
        let summary = t.engine.up(&plan(), diff).await.unwrap().0;
        assert_eq!(summary.updated.len(), 2, "{summary:?}");
        assert!(t.at("update subnet-a") > 0);
        assert!(t.at("delete app") < t.events().iter().rposition(|e| e == "create app").unwrap());
        let new_app = t.diff().await.existing["app"].id.clone();
        assert_ne!(old_app, new_app, "replaced: a new instance");
        assert!(!t.diff().await.has_changes());
    }

    #[tokio::test]
    async fn a_dependency_about_to_be_made_updates_what_refers_to_it() {
        let t = setup().await;
        t.up().await.unwrap();
        let sg = t.diff().await.existing["sg"].id.clone();
        t.world.lock().unwrap().live.remove(&sg);
        let diff = t.diff().await;
        let steps = actions(&diff);
        assert_eq!(steps["sg"], Action::Create);
        assert_eq!(steps["app"], Action::Update, "it refers to the old group");
        let step = diff.steps.iter().find(|s| s.key == "app").unwrap();
        assert_eq!(step.drift, ["sg: (to be created) → refers to the new one"]);
    }

    #[tokio::test]
    async fn teardown_goes_in_reverse_dependency_order_and_leaves_nothing() {
        let t = setup().await;
        t.up().await.unwrap();
        let all = t.diff().await.existing.into_values().collect::<Vec<_>>();
        let mut deleted = t.engine.teardown(all).await.unwrap();
        deleted.sort();
        assert_eq!(deleted, ["app", "sg", "subnet-a", "subnet-b", "vpc"]);
        for (first, then) in [
            ("delete app", "delete subnet-a"),
            ("delete app", "delete sg"),
            ("delete subnet-a", "delete vpc"),
            ("delete subnet-b", "delete vpc"),
            ("delete sg", "delete vpc"),
        ] {
            assert!(
                t.at(first) < t.at(then),
                "{first} before {then}: {:?}",
                t.events()
            );
        }
        assert!(t.world.lock().unwrap().live.is_empty());
        assert!(
            t.engine.journal.live().unwrap().is_empty(),
            "the journal saw every deletion"
        );
    }

    #[tokio::test]
    async fn a_resource_the_stack_no_longer_describes_is_deleted_by_up() {
        let t = setup().await;
        t.up().await.unwrap();
        let mut stray = Observed::new(Kind::Instance, "old-app", "instance-99");
        stray.owned = true;
        t.world.lock().unwrap().live.insert(stray.id.clone(), stray);
        let diff = t.diff().await;
        assert_eq!(actions(&diff)["old-app"], Action::Delete);
        let summary = t.engine.up(&plan(), diff).await.unwrap().0;
        assert_eq!(summary.deleted, ["old-app"]);
        // Only owned resources are touched.
        let mut foreign = Observed::new(Kind::Instance, "theirs", "instance-100");
        foreign.owned = false;
        t.world
            .lock()
            .unwrap()
            .live
            .insert(foreign.id.clone(), foreign.clone());
        assert!(t.engine.teardown(vec![foreign]).await.unwrap().is_empty());
        assert!(t.world.lock().unwrap().live.contains_key("instance-100"));
    }

    #[tokio::test]
    async fn a_failure_stops_what_depends_on_it_and_the_rerun_resumes_without_creating_twice() {
        let t = setup().await;
        t.world
            .lock()
            .unwrap()
            .fail_create
            .insert("subnet-a".into(), ErrorClass::Other);
        let e = t.up().await.unwrap_err();
        assert!(
            matches!(&e, Error::Aws { resource, .. } if resource == "subnet-a"),
            "{e:?}"
        );
        let events = t.events();
        assert!(
            !events.contains(&"create app".to_string()),
            "app needs subnet-a: {events:?}"
        );
        assert!(
            events.contains(&"created subnet-b".to_string())
                && events.contains(&"created sg".to_string())
        );

        t.world.lock().unwrap().fail_create.clear();
        let summary = t.up().await.unwrap();
        let mut created = summary.created.clone();
        created.sort();
        assert_eq!(created, ["app", "subnet-a"], "only what was missing");
        let creates = |key: &str| {
            t.events()
                .iter()
                .filter(|e| **e == format!("created {key}"))
                .count()
        };
        for key in ["vpc", "subnet-b", "sg"] {
            assert_eq!(creates(key), 1, "{key} created once");
        }
    }

    #[tokio::test]
    async fn refused_credentials_abort_everything_at_once() {
        let t = setup().await;
        {
            let mut w = t.world.lock().unwrap();
            w.fail_create.insert("sg".into(), ErrorClass::Credentials);
            w.slow.insert("subnet-b".into(), Duration::from_secs(30));
        }
        let started = Instant::now();
        let e = t.up().await.unwrap_err();
        assert!(matches!(e, Error::Credentials { .. }), "{e:?}");
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "no waiting for the 30-second create: {:?}",
            started.elapsed()
        );
        assert!(!t.events().contains(&"created subnet-b".to_string()));
    }

    #[tokio::test]
    async fn a_dependency_nothing_makes_is_an_unstarted_error_not_done() {
        let t = setup().await;
        let mut plan = plan();
        plan.resources[4].depends_on.push("nowhere".into());
        let e = t
            .engine
            .up(&plan, diff_in(&*t.engine.kinds, &plan, &[]))
            .await
            .unwrap_err();
        assert!(
            matches!(&e, Error::Unstarted { keys } if keys == &["app"]),
            "{e:?}"
        );
    }
}
