//! The one error type of the CLI. Every variant knows its exit code and the next thing to do.

use crate::diagnostics::Diagnostics;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Bad flags or an unknown stack: nothing was attempted.
    #[error("{message}")]
    Usage { message: String, hint: String },

    /// The stack file does not validate: nothing was attempted.
    #[error("{0}")]
    InvalidStack(Diagnostics),

    /// The plan a stack produced is not a valid DAG: a bug in bookstore, caught before any AWS call.
    #[error("the plan is invalid at `{key}`: {message}")]
    InvalidPlan { key: String, message: String },

    /// The engine finished with planned resources it never started: a bug, never "Done".
    #[error("{} planned resource(s) were never started: {}", .keys.len(), .keys.join(", "))]
    Unstarted { keys: Vec<String> },

    /// Credentials are missing, expired or refused. Never retried: a retry cannot fix it.
    #[error("{message}")]
    Credentials { message: String, rerun: String },

    /// An AWS call failed for good (after the SDK's retries), on a named resource.
    #[error("{action} {resource}: {message}")]
    Aws {
        resource: String,
        action: String,
        message: String,
        hint: String,
    },

    /// A resource did not become ready (or gone) within its time budget.
    #[error("{resource} was not {goal} after {waited_secs} s (last state: {state})")]
    Timeout {
        resource: String,
        goal: &'static str,
        state: String,
        waited_secs: u64,
        hint: String,
    },

    /// Another bookstore process holds the lock for this stack and environment.
    #[error("another bookstore run holds the lock {path}: {holder}")]
    Locked {
        path: String,
        holder: String,
        hint: String,
    },

    /// Another run took this env's lock over while this one ran (it stalled past its lease).
    #[error("{0}")]
    LockLost(String),

    /// `down` finished but these resources still exist.
    #[error("{} resource(s) could not be deleted:\n{}", .left.len(), .left.iter().map(|l| format!("  - {l}")).collect::<Vec<_>>().join("\n"))]
    Leftovers { left: Vec<String>, hint: String },

    /// The user said no, or there is no TTY to ask and no --yes.
    #[error("{0}")]
    NotConfirmed(String),

    #[error("interrupted; everything created so far is recorded")]
    Interrupted { rerun: String },

    #[error("{context}: {source}")]
    Io {
        context: String,
        source: std::io::Error,
    },
}

impl Error {
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Credentials { .. } => 3,
            Error::Locked { .. } | Error::LockLost(_) => 4,
            Error::Interrupted { .. } => 130,
            _ => 1,
        }
    }

    /// A short machine-readable name for `--output json`.
    pub fn kind(&self) -> &'static str {
        match self {
            Error::Usage { .. } => "usage",
            Error::InvalidStack(_) => "invalid-stack",
            Error::InvalidPlan { .. } => "invalid-plan",
            Error::Unstarted { .. } => "unstarted",
            Error::Credentials { .. } => "credentials",
            Error::Aws { .. } => "aws",
            Error::Timeout { .. } => "timeout",
            Error::Locked { .. } => "locked",
            Error::LockLost(_) => "lock-lost",
            Error::Leftovers { .. } => "leftovers",
            Error::NotConfirmed(_) => "not-confirmed",
            Error::Interrupted { .. } => "interrupted",
            Error::Io { .. } => "io",
        }
    }

    /// What to do next, as a sentence with the command to run.
    pub fn hint(&self) -> Option<String> {
        match self {
            Error::Usage { hint, .. } => Some(hint.clone()),
            Error::InvalidStack(_) => None, // each diagnostic carries its own hint
            Error::InvalidPlan { .. } | Error::Unstarted { .. } => Some(
                "nothing more was attempted; this is a bookstore bug: please report it with the stack file".into(),
            ),
            Error::Credentials { rerun, .. } => Some(format!(
                "refresh the credentials (Learner Lab: start the lab, open AWS Details → AWS CLI, and export or paste them into ~/.aws/credentials), then run `{rerun}`: it resumes where it stopped"
            )),
            Error::Aws { hint, .. }
            | Error::Timeout { hint, .. }
            | Error::Leftovers { hint, .. }
            | Error::Locked { hint, .. } => Some(hint.clone()),
            Error::LockLost(_) => Some(
                "another run now works on this env; let it finish, then run `bookstore status` to see where the env stands".into(),
            ),
            Error::NotConfirmed(_) => Some("pass --yes to confirm without a prompt".into()),
            Error::Interrupted { rerun } => Some(format!(
                "run `{rerun}` to resume, or `bookstore down` with the same --stack and --env to remove what was created"
            )),
            Error::Io { .. } => None,
        }
    }

    pub fn io(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> Error {
        let context = context.into();
        move |source| Error::Io { context, source }
    }

    pub fn to_json(&self) -> serde_json::Value {
        let mut v = serde_json::json!({
            "error": {
                "kind": self.kind(),
                "message": self.to_string(),
                "hint": self.hint(),
                "exit_code": self.exit_code(),
            }
        });
        if let Error::InvalidStack(d) = self {
            v["error"]["diagnostics"] = serde_json::to_value(&d.0).unwrap_or_default();
        }
        if let Error::Leftovers { left, .. } = self {
            v["error"]["left"] = serde_json::to_value(left).unwrap_or_default();
        }
        v
    }
}
