//! The examples (examples/): every `bookstore` command line of the CI pipelines is accepted by the
//! CLI's own parser (clap: an unknown flag or a bad value exits 2, before `--help` is reached),
//! and every stack they use validates.

use std::path::{Path, PathBuf};
use std::process::Command;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn bookstore(args: &[String]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_bookstore"))
        .current_dir(root())
        .args(args)
        .env_clear()
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .output()
        .unwrap()
}

/// The `bookstore …` commands of a pipeline file: the command up to a redirection, pipe or `||`,
/// with the CI's variables given sample values and the shell's quotes removed.
fn command_lines(file: &Path) -> Vec<Vec<String>> {
    let text = std::fs::read_to_string(file).unwrap();
    text.lines()
        .filter_map(|line| {
            let start = line.find("bookstore ")?;
            let before = line[..start].trim();
            // A command: alone on its line, after `run:` or a YAML list's `-`.
            if !matches!(before, "" | "-" | "run:" | "- run:") {
                return None;
            }
            let command = line[start..]
                .split(['>', '|', ';', '&'])
                .next()
                .unwrap()
                .replace("${{ github.event.pull_request.number }}", "17")
                .replace("$BOOKSTORE_ENV", "pr-17")
                .replace('"', "");
            let words: Vec<String> = command.split_whitespace().map(str::to_string).collect();
            (words.len() > 1 && !words[1].starts_with('-')).then_some(words[1..].to_vec())
        })
        .collect()
}

#[test]
fn every_example_command_parses_and_every_example_stack_validates() {
    let mut stacks = Vec::new();
    let mut seen = 0;
    for file in [
        "examples/github-actions/preview.yml",
        "examples/gitlab-ci/.gitlab-ci.yml",
    ] {
        let lines = command_lines(&root().join(file));
        let verbs: Vec<&str> = lines.iter().map(|l| l[0].as_str()).collect();
        assert!(
            ["up", "down", "gc", "ls"].iter().all(|v| verbs.contains(v)),
            "{file}: {verbs:?}"
        );
        // Every env a pipeline makes expires, and queues behind a run still busy with it.
        for up in lines.iter().filter(|l| l[0] == "up") {
            assert!(
                up.contains(&"--ttl".to_string()) && up.contains(&"--lock-wait".to_string()),
                "{file}: {up:?}"
            );
        }
        for args in lines {
            seen += 1;
            let mut with_help = args.clone();
            with_help.push("--help".into());
            let out = bookstore(&with_help);
            assert!(
                out.status.success(),
                "{file}: `bookstore {}` is refused by the parser:\n{}",
                args.join(" "),
                String::from_utf8_lossy(&out.stderr)
            );
            if let Some(i) = args.iter().position(|a| a == "--stack") {
                stacks.push(args[i + 1].clone());
            }
        }
    }
    assert!(seen >= 5, "only {seen} command lines found");
    stacks.sort();
    stacks.dedup();
    assert!(!stacks.is_empty());
    for stack in stacks {
        let out = bookstore(&["validate".into(), "--stack".into(), stack.clone()]);
        assert!(
            out.status.success(),
            "{stack}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
