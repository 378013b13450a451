//! Mermaid (`flowchart LR`): renders in GitHub and GitLab Markdown as it is.

use std::fmt::Write;

use super::{Graph, Visit, as_group};

/// Mermaid ids: letters, digits and underscores; a group's is its subgraph's.
fn mid(id: &str) -> String {
    if let Some(group) = as_group(id) {
        return format!("g_{}", mid(group));
    }
    id.chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect()
}

/// Mermaid labels: in double quotes, with `"` as an entity.
fn text(s: &str) -> String {
    s.replace('"', "#quot;")
}

fn nested(g: &Graph, out: &mut String) {
    g.walk(&mut |step, depth| {
        let pad = "  ".repeat(depth);
        let _ = match step {
            Visit::Open(group) => writeln!(
                out,
                "{pad}subgraph g_{}[\"{}\"]",
                mid(&group.id),
                text(&group.label)
            ),
            Visit::Node(n) => writeln!(
                out,
                "{pad}{}(\"<b>{}</b><br/>{}\")",
                mid(&n.id),
                text(&n.title),
                text(&n.detail)
            ),
            Visit::Close => writeln!(out, "{pad}end"),
        };
    });
}

pub fn render(g: &Graph) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "---\ntitle: {}\n---", g.title.replace('`', ""));
    let _ = writeln!(out, "flowchart LR");
    nested(g, &mut out);
    for e in &g.edges {
        if e.traffic {
            let _ = writeln!(
                out,
                "  {} ==>|\"{}\"| {}",
                mid(&e.from),
                text(&e.label),
                mid(&e.to)
            );
        } else {
            let _ = writeln!(out, "  {} -.-> {}", mid(&e.from), mid(&e.to));
        }
    }
    out
}
