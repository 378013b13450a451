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
    /// Each machine's user data at its longest, against AWS's 16 KB.
    pub user_data: Vec<UserDataSize>,
}

/// Values only AWS knows, as placeholders that say what they stand for.
fn placeholders(plan: &Plan, keys: &[String]) -> Deps {
    stand_ins(plan, keys, |key, what, _| format!("<{key} {what}>"))
}

/// Values only AWS knows at the longest AWS gives them, in random characters (as real ids,
/// tokens and signatures are, so they compress no better than those): what a machine's user
/// data can grow to. `len` is that longest length.
fn longest(plan: &Plan, keys: &[String]) -> Deps {
    let mut rng = fastrand::Rng::with_seed(16_384);
    stand_ins(plan, keys, move |_, _, len| {
        (0..len).map(|_| rng.alphanumeric()).collect()
    })
}

/// The longest of each value AWS fills in: resource ids (`vol-` and 17 hex digits: 21), ARNs and
/// endpoints (a secret's ARN with a 36-character RDS name is ~110; 200 leaves room), and the
/// presigned URL of the app artifact (a Learner Lab session token alone is ~1,000 characters
/// and grows when URL-encoded; 3,000 leaves room).
const ID_LEN: usize = 32;
const ARN_LEN: usize = 200;
const PRESIGNED_URL_LEN: usize = 3000;

fn stand_ins(
    plan: &Plan,
    keys: &[String],
    mut value: impl FnMut(&str, &str, usize) -> String,
) -> Deps {
    keys.iter()
        .filter_map(|key| plan.resources.iter().find(|r| &r.key == key))
        .map(|r| {
            let mut o = Observed::new(r.kind, &r.key, value(&r.key, "id", ID_LEN));
            for attr in ["endpoint", "secret_arn", "public_ip", "private_ip", "uri"] {
                o.attrs
                    .insert(attr.into(), value(&r.key, &attr.replace('_', " "), ARN_LEN));
            }
            o.attrs.insert(
                "presigned_url".into(),
                format!(
                    "https://{}",
                    value(&r.key, "presigned url", PRESIGNED_URL_LEN)
                ),
            );
            if let Spec::Image(image) = &r.spec {
                let artifact = &image.artifact;
                o.facts
                    .insert("artifact_sha256".into(), artifact.sha256.clone());
            }
            (r.key.clone(), o)
        })
        .collect()
}

/// A machine's user data: its size as text and as sent (gzip), at the longest values AWS fills
/// in, against AWS's limit.
#[derive(Debug, Clone, serde::Serialize)]
pub struct UserDataSize {
    pub key: String,
    pub file: String,
    pub text_bytes: usize,
    pub sent_bytes: usize,
    pub limit: usize,
    pub margin: usize,
}

/// Every machine's user data at its longest; the plan is refused (before any AWS call) when one
/// would exceed AWS's limit.
pub fn user_data_sizes(plan: &Plan) -> Vec<UserDataSize> {
    let mut sizes = Vec::new();
    for want in &plan.resources {
        let deps = longest(plan, &want.depends_on);
        for (file, text) in want.kind.imp().machine_files(want, &deps) {
            let sent = crate::aws::launch::compress(&text).len();
            sizes.push(UserDataSize {
                key: want.key.clone(),
                file,
                text_bytes: text.len(),
                sent_bytes: sent,
                limit: crate::aws::launch::USER_DATA_MAX,
                margin: crate::aws::launch::USER_DATA_MAX.saturating_sub(sent),
            });
        }
    }
    sizes
}

/// Refuses a plan with a machine whose user data AWS would refuse.
pub fn check_user_data(plan: &Plan) -> Result<(), Error> {
    match user_data_sizes(plan)
        .into_iter()
        .find(|s| s.sent_bytes > s.limit)
    {
        None => Ok(()),
        Some(s) => Err(Error::InvalidPlan {
            key: s.key,
            message: format!(
                "its user data can reach {} bytes compressed ({} as text); AWS takes at most {}",
                s.sent_bytes, s.text_bytes, s.limit
            ),
        }),
    }
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
        for (name, text) in want.kind.imp().cluster_files(want, &deps) {
            let path = dir.join(&want.key).join(&name);
            write(&path, &text)?;
            files.push(path);
        }
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
        user_data: user_data_sizes(plan),
    })
}
