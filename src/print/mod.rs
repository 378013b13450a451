//! What each command returns, as data, and the two printers that show it on stdout: `text` for
//! people, `json` for machines (one JSON object). Commands never print.

mod json;
pub mod text;

use std::collections::BTreeMap;

use serde::Serialize;

use crate::engine::{Step, Summary};
use crate::report::OutputFormat;
use crate::stack::Stack;

/// Which stack, environment and region a result is about.
#[derive(Debug, Serialize)]
pub struct Scope {
    pub stack: String,
    pub env: String,
    pub region: String,
}

#[derive(Debug, Serialize)]
pub struct Validated {
    pub valid: bool,
    pub source: String,
    pub stack: Stack,
    pub env: String,
    pub region: String,
    /// The plan's keys; empty for a kind this version does not provision.
    pub resources: Vec<String>,
}

#[derive(Debug, Serialize)]
pub struct Planned {
    #[serde(flatten)]
    pub scope: Scope,
    pub changes: bool,
    pub steps: Vec<Step>,
    /// What the stack costs once it runs as planned.
    pub cost: crate::cost::Estimate,
}

#[derive(Debug, Serialize)]
pub struct Converged {
    #[serde(flatten)]
    pub scope: Scope,
    pub nothing_to_do: bool,
    pub summary: Summary,
    pub outputs: BTreeMap<String, String>,
    pub elapsed_seconds: f64,
}

#[derive(Debug, Serialize)]
pub struct Deleted {
    #[serde(flatten)]
    pub scope: Scope,
    pub deleted: Vec<String>,
    pub nothing_to_do: bool,
    pub elapsed_seconds: f64,
}

/// One resource's row in `status`.
#[derive(Debug, Serialize)]
pub struct Row {
    pub key: String,
    pub kind: crate::plan::Kind,
    pub id: Option<String>,
    pub state: String,
    pub drift: Vec<String>,
}

#[derive(Debug, Serialize)]
pub struct Status {
    #[serde(flatten)]
    pub scope: Scope,
    pub resources: Vec<Row>,
    /// Live detail by section (`instances`, `targets`, …), from each kind.
    #[serde(flatten)]
    pub sections: BTreeMap<String, Vec<BTreeMap<String, String>>>,
    pub outputs: BTreeMap<String, String>,
    /// What the resources that exist now cost.
    pub cost: crate::cost::Estimate,
}

#[derive(Debug, Serialize)]
#[serde(untagged)]
pub enum Report {
    Validated(Box<Validated>),
    Planned(Planned),
    Converged(Converged),
    Deleted(Deleted),
    Status(Status),
    Outputs(BTreeMap<String, String>),
    Rendered(crate::render::Rendered),
    Doctor(crate::doctor::Doctor),
    Envs(Envs),
    Drawn(Drawn),
    Collected(Collected),
}

/// A picture of the stack, in the format asked for.
#[derive(Debug, Serialize)]
pub struct Drawn {
    #[serde(serialize_with = "format_name")]
    pub format: crate::graph::Format,
    pub source: String,
}

fn format_name<S: serde::Serializer>(f: &crate::graph::Format, s: S) -> Result<S::Ok, S::Error> {
    use clap::ValueEnum;
    let name = f.to_possible_value().map(|v| v.get_name().to_string());
    s.serialize_str(name.as_deref().unwrap_or_default())
}

/// Prints a command's result on stdout in the chosen format.
pub fn print(format: OutputFormat, report: &Report) {
    let text = match format {
        OutputFormat::Json => json::render(report),
        OutputFormat::Text => text::render(report),
    };
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{}", text.trim_end());
}

/// One env as `ls` shows it.
#[derive(Debug, Clone, Serialize)]
pub struct EnvRow {
    pub stack: String,
    pub env: String,
    /// Unix time of its first `up`; none for an env found by its tags only.
    pub created: Option<u64>,
    pub age_seconds: Option<u64>,
    /// Unix time after which `gc` deletes it; none without `--ttl`.
    pub expires: Option<u64>,
    pub expired: bool,
    /// Resources found by its tags now.
    pub resources: usize,
    /// The plan's estimate at its last `up`.
    pub hourly_usd: Option<f64>,
    /// The run that holds its lock now, if any.
    pub locked_by: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct Envs {
    pub region: String,
    pub envs: Vec<EnvRow>,
    pub hourly_usd: f64,
}

#[derive(Debug, Serialize)]
pub struct Collected {
    pub region: String,
    /// `stack/env` of each env deleted.
    pub deleted: Vec<String>,
    /// Expired envs left because another run holds them.
    pub busy: Vec<String>,
    /// Envs not expired (or without a TTL), left alone.
    pub kept: Vec<String>,
}
