//! The text printer: what a person reads after each command.

use std::collections::BTreeMap;
use std::fmt::Write;

use super::{Converged, Deleted, Planned, Report, Status, Validated};
use crate::engine::Action;

pub fn render(report: &Report) -> String {
    let mut out = String::new();
    match report {
        Report::Validated(v) => validated(&mut out, v),
        Report::Planned(p) => planned(&mut out, p),
        Report::Converged(c) => converged(&mut out, c),
        Report::Deleted(d) => deleted(&mut out, d),
        Report::Status(s) => status(&mut out, s),
        Report::Outputs(o) => outputs(&mut out, o),
        Report::Doctor(d) => {
            for c in &d.checks {
                let verdict = match c.verdict {
                    crate::doctor::Verdict::Ok => "OK",
                    crate::doctor::Verdict::Warn => "WARN",
                    crate::doctor::Verdict::Fail => "FAIL",
                };
                let _ = writeln!(out, "{verdict:<5} {:<17} {}", c.check, c.detail);
                if !c.fix.is_empty() {
                    let _ = writeln!(out, "{:<23} fix: {}", "", c.fix);
                }
            }
        }
        Report::Rendered(r) => {
            for f in &r.files {
                let _ = writeln!(out, "{}", f.display());
            }
        }
        Report::Envs(e) => envs(&mut out, e),
        Report::Drawn(d) => out.push_str(&d.source),
        Report::Collected(c) => {
            let list = |v: &[String]| {
                if v.is_empty() {
                    "none".to_string()
                } else {
                    v.join(", ")
                }
            };
            let _ = writeln!(out, "deleted (expired): {}", list(&c.deleted));
            if !c.busy.is_empty() {
                let _ = writeln!(
                    out,
                    "expired but busy (another run holds it): {}",
                    list(&c.busy)
                );
            }
            let _ = writeln!(out, "kept: {}", list(&c.kept));
        }
    }
    out
}

/// `3h12m`, `45s`: an age or a time left, to the minute past an hour.
fn span(secs: u64) -> String {
    match secs {
        0..60 => format!("{secs}s"),
        60..3600 => format!("{}m", secs / 60),
        3600..86_400 => format!("{}h{:02}m", secs / 3600, secs % 3600 / 60),
        _ => format!("{}d{:02}h", secs / 86_400, secs % 86_400 / 3600),
    }
}

fn envs(out: &mut String, e: &super::Envs) {
    if e.envs.is_empty() {
        let _ = writeln!(out, "no bookstore env in {}", e.region);
        return;
    }
    let _ = writeln!(
        out,
        "{:<12} {:<12} {:>7} {:<16} {:>9} {:>8}  NOTE",
        "STACK", "ENV", "AGE", "EXPIRES", "RESOURCES", "$/HOUR"
    );
    let now = crate::state::now();
    for r in &e.envs {
        let expires = match r.expires {
            None => "never (no ttl)".to_string(),
            Some(t) if t <= now => format!("expired {} ago", span(now - t)),
            Some(t) => format!("in {}", span(t - now)),
        };
        let _ = writeln!(
            out,
            "{:<12} {:<12} {:>7} {:<16} {:>9} {:>8}  {}",
            r.stack,
            r.env,
            r.age_seconds.map_or("?".to_string(), span),
            expires,
            r.resources,
            r.hourly_usd.map_or("?".to_string(), |h| format!("{h:.3}")),
            r.locked_by
                .as_ref()
                .map_or(String::new(), |h| format!("busy: {h}"))
        );
    }
    let _ = writeln!(
        out,
        "{} env(s) in {}; together about ${:.3}/hour (a $100 budget: {:.0} days)",
        e.envs.len(),
        e.region,
        e.hourly_usd,
        if e.hourly_usd > 0.0 {
            100.0 / e.hourly_usd / 24.0
        } else {
            f64::INFINITY
        }
    );
}

fn validated(out: &mut String, v: &Validated) {
    let detail = if v.resources.is_empty() {
        "(this kind is not provisioned yet)".to_string()
    } else {
        format!(
            "{} resources: {}",
            v.resources.len(),
            v.resources.join(", ")
        )
    };
    let _ = writeln!(
        out,
        "{}: valid {} stack `{}` for env {} in {} — {detail}",
        v.source,
        v.stack.kind().as_str(),
        v.stack.name,
        v.env,
        v.region
    );
}

fn planned(out: &mut String, p: &Planned) {
    let count = |a: Action| p.steps.iter().filter(|s| s.action == a).count();
    for s in &p.steps {
        let (mark, word) = match s.action {
            Action::Create => ("+", "create"),
            Action::Wait => ("…", "wait"),
            Action::Update => ("~", "update"),
            Action::Replace => ("±", "replace"),
            Action::Keep => ("=", "keep"),
            Action::Delete => ("-", "delete"),
        };
        let id = s.id.as_deref().unwrap_or(&s.name);
        let _ = writeln!(
            out,
            "{mark} {word:<6} {:<16} {:<18} {id}",
            s.key,
            s.kind.as_str()
        );
        for d in &s.drift {
            let _ = writeln!(out, "           {d}");
        }
    }
    let _ = writeln!(
        out,
        "Plan: {} to create, {} to update, {} to replace, {} to delete, {} to wait for, {} unchanged.",
        count(Action::Create),
        count(Action::Update),
        count(Action::Replace),
        count(Action::Delete),
        count(Action::Wait),
        count(Action::Keep)
    );
    let c = &p.cost;
    let _ = writeln!(
        out,
        "\nCost in {} (on-demand list prices of {}), running around the clock:",
        c.region, c.prices_as_of
    );
    for l in &c.lines {
        let _ = writeln!(
            out,
            "  {:<16} ${:>7.4}/h  ${:>7.2}/month  {}",
            l.key, l.hourly_usd, l.monthly_usd, l.what
        );
    }
    let _ = writeln!(
        out,
        "  {:<16} ${:>7.4}/h  ${:>7.2}/month  a $100 Learner Lab budget lasts {:.0} days",
        "total", c.hourly_usd, c.monthly_usd, c.days_per_100_usd
    );
    for u in &c.unpriced {
        let _ = writeln!(out, "  not priced: {u}");
    }
    let _ = writeln!(out, "  ({})", c.note);
}

fn converged(out: &mut String, c: &Converged) {
    let s = &c.summary;
    if c.nothing_to_do {
        let _ = writeln!(
            out,
            "Nothing to do: all {} resources of {}/{} are up to date (no changes made).",
            s.unchanged.len(),
            c.scope.stack,
            c.scope.env
        );
    } else {
        let _ = writeln!(
            out,
            "Done in {:.1}s: {} created, {} updated, {} waited for, {} unchanged, {} deleted.",
            c.elapsed_seconds,
            s.created.len(),
            s.updated.len(),
            s.waited.len(),
            s.unchanged.len(),
            s.deleted.len()
        );
        if !s.drifted.is_empty() {
            let _ = writeln!(
                out,
                "Drifted and left as they are: {}",
                s.drifted.join(", ")
            );
        }
    }
    outputs(out, &c.outputs);
}

fn deleted(out: &mut String, d: &Deleted) {
    if d.nothing_to_do {
        let _ = writeln!(
            out,
            "Nothing to delete: no resources of stack {} env {} in {}.",
            d.scope.stack, d.scope.env, d.scope.region
        );
    } else {
        let _ = writeln!(
            out,
            "Deleted {} resources of stack {} env {} in {:.1}s; nothing is left.",
            d.deleted.len(),
            d.scope.stack,
            d.scope.env,
            d.elapsed_seconds
        );
    }
}

fn status(out: &mut String, s: &Status) {
    let c = &s.cost;
    let _ = writeln!(
        out,
        "{:<16} {:<18} {:<24} {:<52} drift",
        "KEY", "KIND", "STATE", "ID"
    );
    for r in &s.resources {
        let _ = writeln!(
            out,
            "{:<16} {:<18} {:<24} {:<52} {}",
            r.key,
            r.kind.as_str(),
            r.state,
            r.id.as_deref().unwrap_or("-"),
            if r.drift.is_empty() {
                "-".to_string()
            } else {
                r.drift.join("; ")
            }
        );
    }
    for (name, rows) in &s.sections {
        if rows.is_empty() {
            let _ = writeln!(out, "{name}: none yet");
            continue;
        }
        let _ = writeln!(out, "{name}:");
        for row in rows {
            let fields: Vec<String> = row
                .iter()
                .filter(|(_, v)| !v.is_empty())
                .map(|(k, v)| format!("{k}={v}"))
                .collect();
            let _ = writeln!(out, "  {}", fields.join(" "));
        }
    }
    if c.hourly_usd > 0.0 {
        let _ = writeln!(
            out,
            "cost of what exists now: about ${:.3}/hour (${:.2}/month); a $100 budget lasts {:.0} days at this rate (list prices of {})",
            c.hourly_usd, c.monthly_usd, c.days_per_100_usd, c.prices_as_of
        );
    } else {
        let _ = writeln!(
            out,
            "cost of what exists now: nothing that is charged by the hour"
        );
    }
    outputs(out, &s.outputs);
}

fn outputs(out: &mut String, o: &BTreeMap<String, String>) {
    for (k, v) in o {
        let _ = writeln!(out, "{k} = {v}");
    }
}

/// `render`'s user data sizes, for a person (stderr in text mode; JSON has them as data).
pub fn user_data_summary(r: &crate::render::Rendered) -> String {
    let mut out = String::new();
    let Some(first) = r.user_data.first() else {
        return out;
    };
    let _ = writeln!(
        out,
        "user data at its longest (gzip, as sent; AWS takes {} bytes):",
        first.limit
    );
    for s in &r.user_data {
        let _ = writeln!(
            out,
            "  {:<14} {:<22} {:>6} bytes text  {:>6} sent  {:>6} to spare",
            s.key, s.file, s.text_bytes, s.sent_bytes, s.margin
        );
    }
    out
}
