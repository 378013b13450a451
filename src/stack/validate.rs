//! Raw stack → validated `Stack`. Every problem is collected (not just the first), each with the
//! file, line, column and field, what is wrong, and what to do about it.

use std::collections::BTreeMap;

use serde_saphyr::Spanned;

use super::raw::{Field, RawStack};
use super::*;
mod app;
mod database;
mod file_system;
mod instances;
mod kubernetes;
mod load_balancer;
mod network;
mod scaling;
mod swarm;
mod tls;

pub use crate::diagnostics::{Diagnostic, Diagnostics};

/// Regions where the AWS services this tool uses are generally available.
const REGIONS: &[&str] = &[
    "us-east-1",
    "us-east-2",
    "us-west-1",
    "us-west-2",
    "ca-central-1",
    "ca-west-1",
    "sa-east-1",
    "eu-west-1",
    "eu-west-2",
    "eu-west-3",
    "eu-central-1",
    "eu-central-2",
    "eu-north-1",
    "eu-south-1",
    "eu-south-2",
    "ap-south-1",
    "ap-south-2",
    "ap-northeast-1",
    "ap-northeast-2",
    "ap-northeast-3",
    "ap-southeast-1",
    "ap-southeast-2",
    "ap-southeast-3",
    "ap-southeast-4",
    "ap-east-1",
    "me-south-1",
    "me-central-1",
    "af-south-1",
    "il-central-1",
    "mx-central-1",
];
pub const LAB_REGIONS: &[&str] = &["us-east-1", "us-west-2"];
const LAB_INSTANCE_SIZES: &[&str] = &["nano", "micro", "small", "medium", "large"];
const LAB_DB_SIZES: &[&str] = &["micro", "small", "medium"];
/// The Learner Lab's running-instance limit for the whole account (20 or more deactivates it).
pub const LAB_MAX_INSTANCES: u32 = 9;
const LAB_MAX_GB: i64 = 100;
const NO_SANDBOX_HINT: &str = "or set `sandbox: none` at the top of the file if this is not an AWS Academy Learner Lab account";

pub fn known_region(region: &str) -> bool {
    REGIONS.contains(&region)
}

struct Checker<'a> {
    file: &'a str,
    found: Vec<Diagnostic>,
}

#[derive(Clone, Copy)]
struct At(u64, u64);

impl<T> From<&Spanned<T>> for At {
    fn from(s: &Spanned<T>) -> Self {
        At(s.referenced.line(), s.referenced.column())
    }
}

impl<'a> Checker<'a> {
    fn error(&mut self, at: At, field: &str, message: impl Into<String>, hint: Option<String>) {
        self.found.push(Diagnostic {
            file: self.file.to_string(),
            line: at.0,
            column: at.1,
            field: field.to_string(),
            message: message.into(),
            hint,
        });
    }

    /// An integer field within `min..=max`, or `default` when absent.
    fn int(
        &mut self,
        value: &Field<i64>,
        parent: At,
        field: &str,
        default: i64,
        range: (i64, i64),
        hint: Option<&str>,
    ) -> u32 {
        let Some(v) = value else {
            return default as u32;
        };
        if v.value < range.0 || v.value > range.1 {
            self.error(
                v.into(),
                field,
                format!(
                    "{} is out of range: it must be between {} and {}",
                    v.value, range.0, range.1
                ),
                hint.map(str::to_string),
            );
            let _ = parent;
            return default as u32;
        }
        v.value as u32
    }

    /// One of `allowed`, or `default` when absent.
    fn choice(
        &mut self,
        value: &Field<String>,
        field: &str,
        allowed: &[&str],
        default: &str,
    ) -> String {
        match value {
            None => default.to_string(),
            Some(v) if allowed.contains(&v.value.as_str()) => v.value.clone(),
            Some(v) => {
                self.error(
                    v.into(),
                    field,
                    format!("`{}` is not allowed here", v.value),
                    Some(format!("use one of: {}", allowed.join(", "))),
                );
                default.to_string()
            }
        }
    }
}

fn at_of<T>(f: &Field<T>, fallback: At) -> At {
    f.as_ref().map_or(fallback, At::from)
}

/// Parses the YAML text and validates it. `source` names the file in every message.
pub fn parse(source: &str, text: &str) -> Result<Stack, Diagnostics> {
    let options = serde_saphyr::options! { with_snippet: false };
    let raw: RawStack = match serde_saphyr::from_str_with_options(text, options) {
        Ok(raw) => raw,
        Err(e) => {
            let (line, column) = e.location().map_or((1, 1), |l| (l.line(), l.column()));
            let ours = super::yaml_error::explain(&e);
            return Err(Diagnostics(vec![Diagnostic {
                file: source.to_string(),
                line,
                column,
                field: String::new(),
                message: ours.message,
                hint: Some(format!(
                    "{}; `bookstore validate --stack {source}` checks the file again without touching AWS",
                    ours.hint
                )),
            }]));
        }
    };
    let mut c = Checker {
        file: source,
        found: Vec::new(),
    };
    let stack = check(&mut c, source, raw);
    if c.found.is_empty() {
        Ok(stack)
    } else {
        // In the file's order, whichever section found them.
        c.found.sort_by_key(|d| (d.line, d.column));
        Err(Diagnostics(c.found))
    }
}

fn valid_name(s: &str, max: usize) -> bool {
    !s.is_empty()
        && s.len() <= max
        && s.starts_with(|c: char| c.is_ascii_lowercase())
        && !s.ends_with('-')
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

/// Names go into load balancer and target group names, which AWS caps at 32 characters.
pub const MAX_NAME_LEN: usize = 12;

pub fn valid_env_name(s: &str) -> bool {
    valid_name(s, MAX_NAME_LEN)
}

fn check(c: &mut Checker, source: &str, raw: RawStack) -> Stack {
    let top = At(1, 1);
    if raw.version.value != 1 {
        c.error(
            (&raw.version).into(),
            "version",
            format!("unsupported version {}", raw.version.value),
            Some("this bookstore reads version 1 stack files; set `version: 1`".into()),
        );
    }
    let name = raw.name.value.clone();
    if !valid_name(&name, MAX_NAME_LEN) {
        c.error((&raw.name).into(), "name", format!("`{name}` is not a valid stack name"),
            Some(format!("use 1 to {MAX_NAME_LEN} lower-case letters, digits and hyphens, starting with a letter")));
    }
    let kind = match raw.kind.value.as_str() {
        "monolith" => StackKind::Monolith,
        "asg" => StackKind::Asg,
        "swarm" => StackKind::Swarm,
        "eks" => StackKind::Eks,
        other => {
            c.error(
                (&raw.kind).into(),
                "kind",
                format!("unknown stack kind `{other}`"),
                Some("use one of: monolith, asg, swarm, eks".into()),
            );
            StackKind::Asg
        }
    };
    let region = raw.region.as_ref().map(|r| {
        let at = At::from(r);
        if !known_region(&r.value) {
            c.error(
                at,
                "region",
                format!("`{}` is not an AWS region this tool knows", r.value),
                Some("use a region code such as us-east-1 or us-west-2".into()),
            );
        }
        (
            r.value.clone(),
            Position {
                line: at.0,
                column: at.1,
            },
        )
    });
    let sandbox = match c
        .choice(
            &raw.sandbox,
            "sandbox",
            &["learner-lab", "none"],
            "learner-lab",
        )
        .as_str()
    {
        "none" => Sandbox::None,
        _ => Sandbox::LearnerLab,
    };
    let lab = sandbox == Sandbox::LearnerLab;
    if lab
        && let Some((r, pos)) = &region
        && !LAB_REGIONS.contains(&r.as_str())
    {
        c.error(
            At(pos.line, pos.column),
            "region",
            format!("the Learner Lab allows only us-east-1 and us-west-2, not {r}"),
            Some(format!("pick one of them, {NO_SANDBOX_HINT}")),
        );
    }

    let tags = check_tags(c, &raw.tags);

    let network = network::network(c, &raw, kind, &region);
    let app = app::app(c, &raw);
    let tls = tls::tls(c, &raw, kind, top);
    let instances = instances::instances(c, &raw, kind, lab, top);
    // Each kind reads its own sections and refuses the others'.
    let topology = match kind {
        StackKind::Monolith => {
            load_balancer::refuse(c, &raw);
            scaling::refuse(c, &raw, kind);
            file_system::refuse(c, &raw, kind);
            swarm::refuse(c, &raw, kind);
            kubernetes::refuse(c, &raw, kind);
            Topology::Monolith(MonolithStack {
                database: database::vm(c, &raw, lab, top),
            })
        }
        StackKind::Asg => {
            swarm::refuse(c, &raw, kind);
            kubernetes::refuse(c, &raw, kind);
            Topology::Asg(AsgStack {
                load_balancer: load_balancer::load_balancer(c, &raw, top),
                scaling: scaling::scaling(c, &raw, top),
                database: database::rds(c, &raw, kind, lab, top),
                file_system: file_system::file_system(c, &raw),
            })
        }
        StackKind::Swarm => {
            scaling::refuse(c, &raw, kind);
            kubernetes::refuse(c, &raw, kind);
            Topology::Swarm(SwarmStack {
                load_balancer: load_balancer::load_balancer(c, &raw, top),
                swarm: swarm::swarm(c, &raw, lab, top),
                database: database::rds(c, &raw, kind, lab, top),
                file_system: file_system::file_system(c, &raw),
            })
        }
        StackKind::Eks => {
            scaling::refuse(c, &raw, kind);
            swarm::refuse(c, &raw, kind);
            Topology::Eks(EksStack {
                load_balancer: load_balancer::load_balancer(c, &raw, top),
                kubernetes: kubernetes::kubernetes(c, &raw, lab, top),
                database: database::rds(c, &raw, kind, lab, top),
                file_system: file_system::file_system(c, &raw),
            })
        }
    };

    Stack {
        source: source.to_string(),
        name,
        region,
        sandbox,
        tags,
        network,
        app,
        tls,
        instances,
        topology,
    }
}

fn check_tags(c: &mut Checker, raw: &Field<BTreeMap<String, String>>) -> BTreeMap<String, String> {
    let Some(tags) = raw else {
        return BTreeMap::new();
    };
    let at = At::from(tags);
    if tags.value.len() > 40 {
        c.error(
            at,
            "tags",
            format!(
                "{} tags given; at most 40 fit beside the ones bookstore adds",
                tags.value.len()
            ),
            None,
        );
    }
    for (k, v) in &tags.value {
        let lower = k.to_ascii_lowercase();
        if lower.starts_with("aws:") || lower.starts_with("bookstore:") || k == "Name" {
            c.error(at, &format!("tags.{k}"), format!("the tag key `{k}` is reserved"),
                Some("keys starting with aws: or bookstore:, and Name, are set by AWS or by bookstore".into()));
        } else if k.is_empty() || k.len() > 128 || v.len() > 256 {
            c.error(
                at,
                &format!("tags.{k}"),
                "tag keys must be 1–128 characters and values at most 256",
                None,
            );
        }
    }
    tags.value.clone()
}

fn valid_domain(d: &str) -> bool {
    d.len() <= 253
        && d.contains('.')
        && d.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .chars()
                    .all(|ch| ch.is_ascii_alphanumeric() || ch == '-')
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn built_in_stacks_are_valid() {
        for (name, text) in BUILT_IN {
            let stack = parse(name, text).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(stack.name, *name);
        }
    }

    #[test]
    fn errors_carry_line_column_and_field() {
        let text = "version: 1\nname: x\nkind: asg\ninstances:\n  min: 3\n  max: 12\n";
        let errors = parse("x.yaml", text).unwrap_err().0;
        let max = errors
            .iter()
            .find(|d| d.field == "instances.max")
            .expect("max error");
        assert_eq!((max.line, max.column), (6, 8));
        assert!(max.message.contains("Learner Lab"));
    }
}
