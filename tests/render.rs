//! `bookstore render`: every file each built-in stack would put on its machines, through the real
//! binary with no AWS at all (no credentials, no endpoint): the user-data of each machine and the
//! files it writes at their paths, every script passing shellcheck, nothing left unrendered.

mod common;

use std::path::Path;
use std::process::Command;

use common::{TempDir, shellcheck};

fn render(dir: &Path, stack: &str) -> Vec<String> {
    let out_dir = dir.join(stack);
    let out = common::run_ok(
        Command::new(env!("CARGO_BIN_EXE_bookstore"))
            .current_dir(dir)
            .args(["render", "--stack", stack, "--env", "t", "--out"])
            .arg(&out_dir)
            .env_clear()
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .env("PATH", std::env::var_os("PATH").unwrap_or_default()),
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| {
            l.strip_prefix(&format!("{}/", out_dir.display()))
                .unwrap_or_else(|| panic!("{l} is outside {}", out_dir.display()))
                .to_string()
        })
        .collect()
}

#[test]
fn render_writes_each_machines_files_without_aws() {
    let dir = TempDir::new("render");
    let lint = TempDir::new("render-lint");
    for (stack, expected) in [
        (
            "asg",
            vec![
                "lt/user-data.sh",
                "files/etc/systemd/system/bookstore.service",
                "files/usr/local/libexec/bookstore/fetch-db-secret",
                "files/etc/systemd/system/bookstore-secret.timer",
            ],
        ),
        (
            "monolith",
            vec![
                "vm/user-data.sh",
                "files/etc/nginx/nginx.conf",
                "files/usr/local/libexec/bookstore/bookstore-setup",
                "files/usr/local/libexec/bookstore/bookstore-cert",
            ],
        ),
        (
            "swarm",
            vec![
                "manager-1/user-data.sh",
                "worker-2/user-data.sh",
                "manager-1/files/etc/bookstore/stack.yml",
                "manager-1/files/etc/bookstore/swarm.env",
                "files/usr/local/libexec/bookstore/bookstore-swarm-node",
                "files/usr/local/libexec/bookstore/bookstore-swarm-sync",
                "files/etc/systemd/system/bookstore-swarm-sync.timer",
            ],
        ),
    ] {
        let files = render(dir.path(), stack);
        for want in &expected {
            assert!(
                files.iter().any(|f| f.ends_with(want)),
                "{stack}: no {want} in {files:#?}"
            );
        }
        assert!(
            files
                .iter()
                .any(|f| f.starts_with("ami-") && f.ends_with("/builder-user-data.sh")),
            "{stack}: the bake's script: {files:#?}"
        );
        for f in &files {
            let text = std::fs::read_to_string(dir.path().join(stack).join(f)).unwrap();
            assert!(!text.contains("{{"), "{stack}/{f} left a placeholder");
            let script = text.starts_with("#!/bin/bash") || text.starts_with("#!/usr/bin/env bash");
            if script {
                let name = format!("{stack}-{}", f.replace('/', "_"));
                shellcheck(lint.path(), &name, &text);
            }
        }
    }
    // The placeholders say what only AWS knows; no secret is in any file.
    let leader = std::fs::read_to_string(dir.path().join("swarm/manager-1/user-data.sh")).unwrap();
    assert!(
        leader.contains("tokens_secret_arn='<swarm-tokens id>'"),
        "{leader}"
    );
    assert!(leader.contains("<db endpoint>"), "{leader}");
}

/// Every machine's user data within AWS's 16,384 bytes at the longest the stack files allow:
/// 12-character stack and env names, the longest domain and ACME URL, the largest swarm (7
/// managers, 100 workers, 50 replicas, outside the Learner Lab's 9 instances), and the
/// values AWS fills in (ids, ARNs, endpoints, the presigned artifact URL with a session token) at
/// their longest, in random characters. Each size and its margin is printed.
#[test]
fn every_machines_user_data_fits_aws_limit_at_the_longest_settings() {
    let dir = TempDir::new("render-longest");
    let label = |c: char| std::iter::repeat_n(c, 63).collect::<String>();
    let domain = format!(
        "{}.{}.{}.{}",
        label('a'),
        label('b'),
        label('c'),
        "d".repeat(61)
    );
    assert_eq!(domain.len(), 253);
    let acme = format!("https://{}", "a".repeat(504));
    let stacks = [
        (
            "monolith",
            format!(
                "version: 1\nname: monolithlong\nkind: monolith\ntls:\n  mode: letsencrypt\n  domain: {domain}\n  acme_server: {acme}\napp:\n  port: 65535\n  health_check_path: /{}\ndatabase:\n  placement: separate-vm\n",
                "h".repeat(120)
            ),
        ),
        (
            "asg",
            format!(
                "version: 1\nname: asglongnames\nkind: asg\ntls:\n  mode: acm\n  domain: {domain}\napp:\n  port: 65535\n  health_check_path: /{}\n",
                "h".repeat(120)
            ),
        ),
        (
            "swarm",
            format!(
                "version: 1\nname: swarmlongest\nkind: swarm\nsandbox: none\napp:\n  port: 65535\n  health_check_path: /{}\nswarm:\n  managers: 7\n  workers: 100\n  replicas: 50\n",
                "h".repeat(120)
            ),
        ),
    ];
    for (kind, body) in stacks {
        let file = dir.write(&format!("{kind}.yaml"), &body);
        let out = common::run_ok(
            Command::new(env!("CARGO_BIN_EXE_bookstore"))
                .current_dir(dir.path())
                .args(["--output", "json", "render", "--stack"])
                .arg(&file)
                .args(["--env", "abcdefghijkl", "--out"])
                .arg(dir.path().join(kind))
                .env_clear()
                .env("AWS_EC2_METADATA_DISABLED", "true")
                .env("PATH", std::env::var_os("PATH").unwrap_or_default()),
        );
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let sizes = v["user_data"].as_array().expect("user_data sizes");
        assert!(
            sizes.iter().any(|s| s["file"] == "builder-user-data.sh"),
            "{kind}: the builder's user data is measured: {sizes:?}"
        );
        for s in sizes {
            let sent = s["sent_bytes"].as_u64().unwrap();
            eprintln!(
                "{kind:<9} {:<14} {:<22} text {:>6}  sent {:>6}  margin {:>6} of 16384",
                s["key"].as_str().unwrap(),
                s["file"].as_str().unwrap(),
                s["text_bytes"],
                sent,
                s["margin"]
            );
            assert!(sent <= 16_384, "{kind}: {s} exceeds AWS's 16384 bytes");
            // A margin for what templates grow by: a quarter of the limit.
            assert!(sent <= 12_288, "{kind}: {s} leaves less than 4 KB");
        }
    }
}
