//! What the commands do with one env, whichever command it is (`up`, `down`, `gc` of many envs):
//! connect with the credentials proven, run under the env's lock, find everything of it (tags and
//! journal), tear it down in order, forget its record, and ask before deleting.

use std::io::{IsTerminal, Write};
use std::sync::Arc;

use crate::aws::{Cx, Observed, Owner};
use crate::engine::{self, Engine};
use crate::error::Error;
use crate::journal::{Event, Journal};
use crate::plan::Kind;
use crate::print::Report;
use crate::report::Reporter;

pub(crate) type Done = Result<(i32, Report), Error>;

/// Clients for `region` as `owner`, after the credentials are proven; says who and where.
pub(crate) async fn connect_to(
    region: &str,
    owner: Owner,
    report: &Arc<Reporter>,
    rerun: &str,
    what: &str,
) -> Result<Arc<Cx>, Error> {
    let cx = Cx::connect(region, owner).await;
    let _ = cx.progress.set(Arc::clone(report));
    let (account, arn) = cx.whoami().await.map_err(|e| {
        engine::aws_error(
            &e,
            "checking",
            "the credentials (STS GetCallerIdentity)",
            rerun,
        )
    })?;
    report.info(&format!("AWS account {account} as {arn}; {what}"));
    Ok(Arc::new(cx))
}

/// Runs `work` under the env's lock in the account, released however `work` ends; a lock taken
/// over by another run (this one stalled past its lease) stops the work at once.
pub(crate) async fn locked<T>(
    cx: &Arc<Cx>,
    journal: &Journal,
    rerun: &str,
    wait: std::time::Duration,
    report: &Reporter,
    work: impl std::future::Future<Output = Result<T, Error>>,
) -> Result<T, Error> {
    let here = journal.path().parent().unwrap_or(journal.path());
    let env = (cx.owner.stack.as_str(), cx.owner.env.as_str());
    let lock = crate::state::lock(cx, env, here, rerun, wait, report).await?;
    let result = tokio::select! {
        r = work => r,
        why = lock.lost() => Err(Error::LockLost(why)),
    };
    lock.release().await;
    result
}

/// Everything of `cx.owner`'s env: its tags ∪ its journal (ids the journal knows that the tag sweep
/// did not find are looked up by id).
pub(crate) async fn discover(
    cx: &Arc<Cx>,
    journal: &Journal,
    rerun: &str,
) -> Result<Vec<Observed>, Error> {
    let mut targets = engine::observe(cx, Kind::ALL).await?;
    for (kind, key, id) in journal.live()? {
        if targets.iter().any(|o| o.id == id) {
            continue;
        }
        let mut probe = Observed::new(kind, key.clone(), id.clone());
        probe.owned = false;
        match kind.imp().refresh(cx, &probe).await {
            Ok(Some(found)) => targets.push(found),
            Ok(None) => journal.record(Event::Deleted, kind, &key, "", Some(&id))?,
            Err(e) => {
                return Err(engine::aws_error(
                    &e,
                    "looking up",
                    &format!("{key} ({id}) from the journal"),
                    rerun,
                ));
            }
        }
    }
    Ok(targets)
}

/// Deletes `targets` in reverse dependency order, then says exactly what is left (an error
/// when anything is).
pub(crate) async fn teardown(
    cx: &Arc<Cx>,
    journal: Arc<Journal>,
    report: &Arc<Reporter>,
    parallelism: u16,
    rerun: &str,
    targets: Vec<Observed>,
) -> Result<Vec<String>, Error> {
    let engine = Engine {
        kinds: Arc::new(engine::AwsKinds),
        cx: Arc::clone(cx),
        journal,
        report: Arc::clone(report),
        parallelism: parallelism.into(),
        rerun: rerun.to_string(),
    };
    let deleted = tokio::select! {
        d = engine.teardown(targets) => d,
        _ = tokio::signal::ctrl_c() => return Err(Error::Interrupted { rerun: rerun.to_string() }),
    };
    let left: Vec<String> = engine::observe(cx, Kind::ALL)
        .await?
        .into_iter()
        .map(|o| format!("{} {} {} ({})", o.kind.as_str(), o.key, o.id, o.state))
        .collect();
    match deleted {
        Ok(d) if left.is_empty() => Ok(d),
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

/// Deletes the env's record once nothing of it is left.
pub(crate) async fn forget(cx: &Cx, rerun: &str) -> Result<(), Error> {
    crate::state::delete_record(cx, &cx.owner.stack, &cx.owner.env)
        .await
        .map_err(|e| engine::aws_error(&e, "deleting", "the env's record in the account", rerun))
}

pub(crate) fn confirm(question: &str) -> Result<(), Error> {
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
