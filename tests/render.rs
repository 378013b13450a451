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
