//! `bookstore render --stack S --out DIR`: every file the stack would put on its machines, for
//! review or to adapt by hand, without any AWS call. Per resource that boots a machine (the bake's
//! builder, a launch template, an instance) `DIR/<key>/` gets its user-data as it would be sent —
//! with `<key …>` placeholders where only AWS knows the value (ids, ARNs, endpoints) — and, under
//! `DIR/<key>/files/`, each file that user-data writes (units, scripts, proxy config, the swarm's
//! stack file) at its path on the machine.

use std::path::{Path, PathBuf};

use crate::aws::{Deps, Observed};
use crate::error::Error;
use crate::plan::{Plan, Spec};

/// What `render` wrote, for the printers.
#[derive(Debug, serde::Serialize)]
pub struct Rendered {
    pub dir: PathBuf,
    pub files: Vec<PathBuf>,
}

/// Values only AWS knows, as placeholders that say what they stand for.
fn placeholders(plan: &Plan, keys: &[String]) -> Deps {
    keys.iter()
        .filter_map(|key| plan.resources.iter().find(|r| &r.key == key))
        .map(|r| {
            let mut o = Observed::new(r.kind, &r.key, format!("<{} id>", r.key));
            for attr in ["endpoint", "secret_arn", "public_ip", "private_ip"] {
                o.attrs.insert(
                    attr.into(),
                    format!("<{} {}>", r.key, attr.replace('_', " ")),
                );
            }
            if let Spec::Image { artifact, .. } = &r.spec {
                o.facts
                    .insert("artifact_sha256".into(), artifact.sha256.clone());
            }
            (r.key.clone(), o)
        })
        .collect()
}

/// The files a script writes with `cat >PATH <<'MARKER'` … `MARKER`, nested ones too.
fn heredoc_files(script: &str) -> Vec<(String, String)> {
    let mut found = Vec::new();
    let mut lines = script.lines();
    while let Some(line) = lines.next() {
        let Some((path, marker)) = line
            .trim_start()
            .strip_prefix("cat >")
            .and_then(|rest| rest.split_once(" <<'"))
            .and_then(|(path, m)| Some((path, m.strip_suffix('\'')?)))
        else {
            continue;
        };
        let body: Vec<&str> = lines.by_ref().take_while(|l| *l != marker).collect();
        let body = body.join("\n") + "\n";
        found.extend(heredoc_files(&body));
        found.push((path.to_string(), body));
    }
    found
}

fn write(path: &Path, text: &str) -> Result<(), Error> {
    let io = |e: std::io::Error| Error::Io {
        context: format!("writing {}", path.display()),
        source: e,
    };
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(io)?;
    }
    std::fs::write(path, text).map_err(io)
}

pub fn render(plan: &Plan, dir: &Path) -> Result<Rendered, Error> {
    let mut files = Vec::new();
    for want in &plan.resources {
        let deps = placeholders(plan, &want.depends_on);
        for (name, text) in want.kind.imp().machine_files(want, &deps) {
            let base = dir.join(&want.key);
            let path = base.join(&name);
            write(&path, &text)?;
            files.push(path);
            for (on_machine, body) in heredoc_files(&text) {
                let path = base.join("files").join(on_machine.trim_start_matches('/'));
                write(&path, &body)?;
                files.push(path);
            }
        }
    }
    Ok(Rendered {
        dir: dir.to_path_buf(),
        files,
    })
}
