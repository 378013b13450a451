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

pub struct Engine {
    pub cx: Arc<Cx>,
    pub journal: Arc<Journal>,
    pub report: Arc<Reporter>,
    pub parallelism: usize,
    /// The command that resumes this run, for messages.
    pub rerun: String,
}

/// Every owned resource of these kinds, observed in parallel.
pub async fn observe(cx: &Arc<Cx>, kinds: &[Kind]) -> Result<Vec<Observed>, Error> {
    let mut set = JoinSet::new();
    for &kind in kinds {
        let cx = Arc::clone(cx);
        set.spawn(async move { (kind, kind.imp().observe(&cx).await) });
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
        let drift = drift_of(want, have, &existing);
        let action = if must_replace(want, &drift) {
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
fn drift_of(want: &Desired, have: &Observed, existing: &BTreeMap<String, Observed>) -> Vec<String> {
    match deps_of(want, existing) {
        Some(deps) => drift_with(want, have, &deps),
        None => vec![],
    }
}

/// True when a drifted field is one the kind cannot change in place.
fn must_replace(want: &Desired, drift: &[String]) -> bool {
    let kind = want.kind.imp();
    drift
        .iter()
        .filter_map(|d| d.split(':').next())
        .any(|field| kind.replaces(want, field))
}

fn drift_with(want: &Desired, have: &Observed, deps: &Deps) -> Vec<String> {
    let expected = want.kind.imp().expected_facts(want, deps);
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
                            !drift_with(want, have, &deps).is_empty()
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
            let blockers: Vec<watch::Receiver<Option<bool>>> = kind
                .teardown_after()
                .iter()
                .filter_map(|k| receivers.get(k).cloned())
                .collect();
            let tx = senders.remove(&kind).expect("one sender per kind");
            let ctx = DeleteCx {
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
        let kind = self.want.kind.imp();
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
            .map(|have| drift_with(&self.want, have, &self.deps))
            .unwrap_or_default();
        let replace = self.update && must_replace(&self.want, &drift);
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
            let drift = drift_with(&self.want, &have, &self.deps);
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
    cx: &'a Cx,
    journal: &'a Journal,
    report: &'a Reporter,
    rerun: &'a str,
}

/// Deletes one resource, retrying while something still uses it, and waits until it is gone.
async fn delete_one(ctx: &Deleting<'_>, mut have: Observed) -> Result<String, Error> {
    let kind = have.kind.imp();
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
