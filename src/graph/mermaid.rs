//! Mermaid (`flowchart LR`): renders in GitHub and GitLab Markdown as it is.

use std::fmt::Write;

use super::{Graph, Group, as_group};

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

fn subgraph(g: &Graph, group: &Group, depth: usize, out: &mut String) {
    let pad = "  ".repeat(depth);
    let _ = writeln!(
        out,
        "{pad}subgraph g_{}[\"{}\"]",
        mid(&group.id),
        text(&group.label)
    );
    for n in g
        .nodes
        .iter()
        .filter(|n| n.group.as_deref() == Some(&group.id))
    {
        node(n, depth + 1, out);
    }
    for child in g
        .used_groups()
        .into_iter()
        .filter(|c| c.parent.as_deref() == Some(&group.id))
    {
        subgraph(g, child, depth + 1, out);
    }
    let _ = writeln!(out, "{pad}end");
}

fn node(n: &super::Node, depth: usize, out: &mut String) {
    let _ = writeln!(
        out,
        "{}{}(\"<b>{}</b><br/>{}\")",
        "  ".repeat(depth),
        mid(&n.id),
        text(&n.title),
        text(&n.detail)
    );
}

pub fn render(g: &Graph) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "---\ntitle: {}\n---", g.title.replace('`', ""));
    let _ = writeln!(out, "flowchart LR");
    for n in g.nodes.iter().filter(|n| n.group.is_none()) {
        node(n, 1, &mut out);
    }
    for group in g.used_groups().into_iter().filter(|c| c.parent.is_none()) {
        subgraph(g, group, 1, &mut out);
    }
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
