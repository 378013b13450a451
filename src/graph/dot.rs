//! Graphviz DOT: `bookstore graph --format dot | dot -Tpng > stack.png`.

use std::fmt::Write;

use super::{Graph, Visit, as_group};

fn quote(s: &str) -> String {
    format!("\"{}\"", escape(s))
}

fn escape(s: &str) -> String {
    s.replace('\\', "\\\\").replace('"', "\\\"")
}

fn nested(g: &Graph, out: &mut String) {
    g.walk(&mut |step, depth| {
        let pad = "  ".repeat(depth);
        let _ = match step {
            Visit::Open(group) => writeln!(
                out,
                "{pad}subgraph {} {{\n{pad}  label={};",
                quote(&format!("cluster_{}", group.id)),
                quote(&group.label)
            ),
            // `\n` inside a quoted label is DOT's line break.
            Visit::Node(n) => writeln!(
                out,
                "{pad}{} [label=\"{}\\n{}\"];",
                quote(&n.id),
                escape(&n.title),
                escape(&n.detail)
            ),
            Visit::Close => writeln!(out, "{pad}}}"),
        };
    });
}

pub fn render(g: &Graph) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "digraph bookstore {{");
    let _ = writeln!(out, "  label={}; labelloc=t;", quote(&g.title));
    let _ = writeln!(out, "  rankdir=LR; compound=true; fontname=\"Helvetica\";");
    let _ = writeln!(
        out,
        "  node [shape=box, style=\"rounded\", fontname=\"Helvetica\", fontsize=10];"
    );
    let _ = writeln!(out, "  edge [fontname=\"Helvetica\", fontsize=9];");
    nested(g, &mut out);
    // A group's end: an arrow to one of its nodes, clipped at the cluster (compound=true).
    let end = |id: &str| -> (String, Option<String>) {
        match as_group(id) {
            Some(group) => (
                g.nodes
                    .iter()
                    .find(|n| n.group.as_deref() == Some(group))
                    .map_or_else(|| group.to_string(), |n| n.id.clone()),
                Some(format!("cluster_{group}")),
            ),
            None => (id.to_string(), None),
        }
    };
    for e in &g.edges {
        let mut style = if e.traffic {
            format!("label={}, penwidth=2", quote(&e.label))
        } else {
            "style=dashed, color=gray40".to_string()
        };
        let ((from, tail), (to, head)) = (end(&e.from), end(&e.to));
        if let Some(c) = tail {
            style.push_str(&format!(", ltail={}", quote(&c)));
        }
        if let Some(c) = head {
            style.push_str(&format!(", lhead={}", quote(&c)));
        }
        let _ = writeln!(out, "  {} -> {} [{style}];", quote(&from), quote(&to));
    }
    let _ = writeln!(out, "}}");
    out
}
