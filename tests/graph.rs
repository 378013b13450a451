//! `bookstore graph`: each built-in stack's picture in the three formats, checked by real
//! parsers (Python's XML parser for the SVG, Graphviz's `dot` for DOT, Mermaid's grammar rules
//! for what we emit), against the plan's facts; and the README's pictures are the command's
//! output today (regenerate them with `scripts/graphs.sh`).

mod common;

use std::collections::HashSet;
use std::path::Path;
use std::process::Command;

use common::{TempDir, manifest_dir};

const STACKS: [&str; 4] = ["asg", "monolith", "swarm", "eks"];

fn graph(dir: &Path, stack: &str, format: &str) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_bookstore"))
        .current_dir(dir)
        .args([
            "graph",
            "--stack",
            stack,
            "--region",
            "us-east-1",
            "--format",
            format,
        ])
        .env_remove("AWS_ENDPOINT_URL")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn svg_is_well_formed_and_shows_the_plan() {
    let dir = TempDir::new("graph-svg");
    for stack in STACKS {
        let svg = graph(dir.path(), stack, "svg");
        let file = dir.write(&format!("{stack}.svg"), &svg);
        // Parsed by a real XML parser; the root is an SVG element with a size.
        let check = Command::new("python3")
            .args([
                "-c",
                "import sys, xml.etree.ElementTree as E; r = E.parse(sys.argv[1]).getroot(); \
                 assert r.tag == '{http://www.w3.org/2000/svg}svg', r.tag; \
                 assert float(r.get('width')) > 400 and float(r.get('height')) > 300; \
                 print(len(list(r.iter('{http://www.w3.org/2000/svg}path'))))",
            ])
            .arg(&file)
            .output()
            .unwrap();
        assert!(
            check.status.success(),
            "{stack}.svg: {}",
            String::from_utf8_lossy(&check.stderr)
        );
        let arrows: usize = String::from_utf8_lossy(&check.stdout)
            .trim()
            .parse()
            .unwrap();
        assert!(arrows >= 4, "{stack}: {arrows} arrows");
        // Every planned resource but the VPC and security groups (boxes) is a node; the image is
        // `ami` (its key carries the app's hash).
        let validated = Command::new(env!("CARGO_BIN_EXE_bookstore"))
            .args(["validate", "--stack", stack, "--output", "json"])
            .output()
            .unwrap();
        let v: serde_json::Value = serde_json::from_slice(&validated.stdout).unwrap();
        for key in v["resources"].as_array().unwrap() {
            let key = key.as_str().unwrap();
            let shown = if key.starts_with("ami-") {
                "ami"
            } else if key.starts_with("sg-") {
                &format!("security group {key}")
            } else if key == "vpc" {
                "VPC 10."
            } else {
                key
            };
            assert!(
                svg.contains(&format!(">{shown}")),
                "{stack}: {key} not drawn"
            );
        }
        assert!(svg.contains(">internet<"), "{stack}");
    }
    // The traffic is what the security groups admit, with their ports.
    let asg = graph(dir.path(), "asg", "svg");
    for label in ["tcp 80, 443", "tcp 8080", "tcp 3306", "tcp 2049"] {
        assert!(asg.contains(&format!(">{label}<")), "asg lacks {label}");
    }
    let monolith = graph(dir.path(), "monolith", "svg");
    assert!(monolith.contains(">tcp 80, 443<"));
    assert!(
        !monolith.contains(">tcp 3306<"),
        "same-vm: no database port is open"
    );
}

#[test]
fn dot_is_accepted_by_graphviz() {
    let dir = TempDir::new("graph-dot");
    let dot = which("dot").expect("Graphviz's dot: run scripts/test.sh, which installs graphviz");
    for stack in STACKS {
        let source = graph(dir.path(), stack, "dot");
        let file = dir.write(&format!("{stack}.dot"), &source);
        let out = Command::new(&dot).arg("-Tsvg").arg(&file).output().unwrap();
        assert!(
            out.status.success() && out.stderr.is_empty(),
            "{stack}.dot: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        // Clusters for the VPC and each security group; the swarm's traffic reaches its group.
        assert!(source.contains("subgraph \"cluster_vpc\""), "{stack}");
        assert!(source.contains("\"cluster_sg-"), "{stack}");
    }
    let swarm = graph(dir.path(), "swarm", "dot");
    assert!(
        swarm.contains("lhead=\"cluster_sg-swarm\"") && swarm.contains("label=\"tcp 8080\""),
        "{swarm}"
    );
}

/// What Mermaid's flowchart grammar needs of what we emit: a `flowchart` header, every
/// `subgraph` closed by `end`, every edge between declared nodes or subgraphs, ids that are
/// plain words, labels quoted.
#[test]
fn mermaid_is_a_well_formed_flowchart() {
    let dir = TempDir::new("graph-mermaid");
    for stack in STACKS {
        let source = graph(dir.path(), stack, "mermaid");
        let mut lines = source.lines().map(str::trim).filter(|l| !l.is_empty());
        assert_eq!(lines.next(), Some("---"));
        assert!(lines.next().unwrap().starts_with("title: "));
        assert_eq!(lines.next(), Some("---"));
        assert_eq!(lines.next(), Some("flowchart LR"));
        let word =
            |s: &str| !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        let (mut declared, mut depth, mut edges) = (HashSet::new(), 0i32, 0);
        for line in lines {
            if let Some(rest) = line.strip_prefix("subgraph ") {
                let (id, label) = rest.split_once('[').expect(line);
                assert!(
                    word(id) && label.starts_with('"') && label.ends_with("\"]"),
                    "{line}"
                );
                declared.insert(id.to_string());
                depth += 1;
            } else if line == "end" {
                depth -= 1;
                assert!(depth >= 0, "{stack}: `end` without a subgraph");
            } else if let Some((from, rest)) = line.split_once(" -.-> ").or_else(|| {
                line.split_once(" ==>|")
                    .map(|(f, r)| (f, r.split_once("| ").expect(line).1))
            }) {
                assert!(
                    declared.contains(from),
                    "{stack}: {from} is not declared before {line}"
                );
                assert!(
                    declared.contains(rest),
                    "{stack}: {rest} is not declared in {line}"
                );
                edges += 1;
            } else {
                let (id, label) = line.split_once("(\"").expect(line);
                assert!(word(id) && label.ends_with("\")"), "{stack}: {line}");
                assert!(!label[..label.len() - 2].contains('"'), "{stack}: {line}");
                declared.insert(id.to_string());
            }
        }
        assert_eq!(depth, 0, "{stack}: unclosed subgraph");
        assert!(edges >= 4, "{stack}: {edges} edges");
    }
}

#[test]
fn the_readme_pictures_are_what_the_command_draws_now() {
    let dir = TempDir::new("graph-readme");
    let readme = std::fs::read_to_string(manifest_dir().join("README.md")).unwrap();
    for stack in STACKS {
        let path = format!("docs/graphs/{stack}.svg");
        assert!(
            readme.contains(&format!("]({path})")),
            "README does not embed {path}"
        );
        let committed = std::fs::read_to_string(manifest_dir().join(&path))
            .unwrap_or_else(|e| panic!("{path}: {e}; run scripts/graphs.sh"));
        assert!(
            committed == graph(dir.path(), stack, "svg"),
            "{path} is stale: run scripts/graphs.sh and commit the result"
        );
    }
}

fn which(program: &str) -> Option<std::path::PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join(program))
            .find(|p| p.is_file())
    })
}
