//! The app artifact that the bake installs into the AMI: a Linux x86_64 `bookstore-app` binary when
//! one is at hand, otherwise the app's source (embedded in this CLI at build time), which the
//! builder instance compiles. Its sha256 names the AMI, so a second `up` with the same app bakes
//! nothing.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use serde::Serialize;

use crate::error::Error;

mod embedded {
    include!(concat!(env!("OUT_DIR"), "/app_source.rs"));
}

/// The Rust toolchain the builder installs for a source build: the workspace's `rust-version`.
pub const RUST_TOOLCHAIN: &str = env!("CARGO_PKG_RUST_VERSION");

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ArtifactKind {
    Binary,
    Source,
}

impl ArtifactKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ArtifactKind::Binary => "binary",
            ArtifactKind::Source => "source",
        }
    }
}

/// Where the app comes from, as the user chose it.
#[derive(Debug, Clone)]
pub enum AppChoice {
    /// A Linux x86_64 `bookstore-app` next to this executable, else the source.
    Auto,
    Binary(PathBuf),
    Source,
}

#[derive(Debug, Clone, Serialize)]
pub struct Artifact {
    pub kind: ArtifactKind,
    pub sha256: String,
    pub size: u64,
    /// The binary's path; `None` for the embedded source.
    pub path: Option<PathBuf>,
}

impl Artifact {
    pub fn resolve(choice: &AppChoice) -> Result<Artifact, Error> {
        match choice {
            AppChoice::Binary(path) => Artifact::binary(path).map_err(|problem| Error::Usage {
                message: format!("--app-binary {}: {problem}", path.display()),
                hint: "pass a Linux x86_64 build of bookstore-app (`cargo build --release -p bookstore-app` on Linux), or --build-app-on-builder to compile it on the builder instance".into(),
            }),
            AppChoice::Source => Ok(Artifact::source()),
            AppChoice::Auto => Ok(sibling_binary()
                .and_then(|p| Artifact::binary(&p).ok())
                .unwrap_or_else(Artifact::source)),
        }
    }

    fn binary(path: &Path) -> Result<Artifact, String> {
        let bytes = std::fs::read(path).map_err(|e| format!("cannot read it: {e}"))?;
        if !is_linux_x86_64_elf(&bytes) {
            return Err("it is not a Linux x86_64 executable (ELF, x86-64)".into());
        }
        Ok(Artifact {
            kind: ArtifactKind::Binary,
            sha256: sha256_hex(&bytes),
            size: bytes.len() as u64,
            path: Some(path.to_path_buf()),
        })
    }

    fn source() -> Artifact {
        let archive = source_archive();
        Artifact {
            kind: ArtifactKind::Source,
            sha256: sha256_hex(archive),
            size: archive.len() as u64,
            path: None,
        }
    }

    /// The bytes to upload; checked against the hash taken when the plan was made.
    pub fn bytes(&self) -> Result<Vec<u8>, String> {
        let bytes = match &self.path {
            Some(path) => std::fs::read(path)
                .map_err(|e| format!("cannot read the app binary {}: {e}", path.display()))?,
            None => source_archive().to_vec(),
        };
        if sha256_hex(&bytes) != self.sha256 {
            return Err("the app artifact changed while bookstore was running".into());
        }
        Ok(bytes)
    }

    /// Its key in the artifact bucket: content-addressed, so uploads are idempotent.
    pub fn object_key(&self) -> String {
        match self.kind {
            ArtifactKind::Binary => binary_object_key(&self.sha256),
            ArtifactKind::Source => format!("app/{}/bookstore-app-source.tar", self.sha256),
        }
    }
}

/// Where a binary artifact of this sha256 is in the artifact bucket.
pub fn binary_object_key(sha256: &str) -> String {
    format!("app/{sha256}/bookstore-app")
}

/// `bookstore-app` beside this executable: where `cargo build --workspace` and the release
/// archive put it. Only a Linux x86_64 CLI may use its sibling as the instances' binary.
/// The `bookstore-app` beside this executable: a build on Linux x86_64, or the Linux x86_64 app a
/// release archive carries beside the CLI of any platform (checked to be one by `binary`).
fn sibling_binary() -> Option<PathBuf> {
    let path = std::env::current_exe()
        .ok()?
        .parent()?
        .join("bookstore-app");
    path.is_file().then_some(path)
}

fn is_linux_x86_64_elf(bytes: &[u8]) -> bool {
    // ELF magic, 64-bit class, and e_machine EM_X86_64 (62, little-endian at offset 18).
    bytes.len() > 20 && bytes[..4] == *b"\x7fELF" && bytes[4] == 2 && bytes[18..20] == [62, 0]
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    // ring's SHA-256 is assembly, fast even in an unoptimised build.
    ring::digest::digest(&ring::digest::SHA256, bytes)
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The app's source as a tar archive, byte-for-byte the same on every run (fixed modes and times),
/// so its hash changes only when the source does.
pub fn source_archive() -> &'static [u8] {
    static ARCHIVE: OnceLock<Vec<u8>> = OnceLock::new();
    ARCHIVE.get_or_init(|| {
        let mut tar = Vec::new();
        for (path, bytes) in embedded::APP_SOURCE {
            if *path == "Cargo.toml" {
                let manifest = app_workspace_manifest(&String::from_utf8_lossy(bytes));
                tar_entry(&mut tar, path, manifest.as_bytes());
            } else {
                tar_entry(&mut tar, path, bytes);
            }
        }
        tar.extend_from_slice(&[0u8; 1024]);
        tar
    })
}

/// The workspace manifest reduced to the app: the CLI's own package and its sources stay out.
fn app_workspace_manifest(root: &str) -> String {
    let mut out = String::from(
        "# Generated by bookstore from the workspace manifest: the app alone.\n[workspace]\nmembers = [\"app\"]\nresolver = \"3\"\n",
    );
    let mut keep = false;
    for line in root.lines() {
        if line.starts_with('[') {
            let header = line.trim();
            keep = header == "[workspace.package]"
                || header == "[workspace.dependencies]"
                || header.starts_with("[profile.release");
            if keep {
                out.push('\n');
            }
        }
        if keep {
            out.push_str(line);
            out.push('\n');
        }
    }
    out
}

/// One ustar entry: a 512-byte header, then the data padded to 512 bytes.
fn tar_entry(tar: &mut Vec<u8>, path: &str, data: &[u8]) {
    let mut header = [0u8; 512];
    let name = path.as_bytes();
    assert!(name.len() < 100, "{path}: tar names stop at 99 bytes");
    header[..name.len()].copy_from_slice(name);
    let mut field = |at: usize, width: usize, value: u64| {
        let text = format!("{value:0w$o}\0", w = width - 1);
        header[at..at + width].copy_from_slice(text.as_bytes());
    };
    field(100, 8, 0o644); // mode
    field(108, 8, 0); // uid
    field(116, 8, 0); // gid
    field(124, 12, data.len() as u64);
    field(136, 12, 1_700_000_000); // mtime: fixed
    header[156] = b'0';
    header[257..263].copy_from_slice(b"ustar\0");
    header[263..265].copy_from_slice(b"00");
    header[148..156].copy_from_slice(b"        ");
    let sum: u32 = header.iter().map(|b| u32::from(*b)).sum();
    header[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
    tar.extend_from_slice(&header);
    tar.extend_from_slice(data);
    tar.resize(tar.len().div_ceil(512) * 512, 0);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn source_archive_unpacks_into_a_workspace_that_cargo_resolves() {
        let dir = std::env::temp_dir().join(format!("bookstore-src-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let archive = dir.join("src.tar");
        std::fs::write(&archive, source_archive()).unwrap();
        let untar = std::process::Command::new("tar")
            .arg("-xf")
            .arg(&archive)
            .arg("-C")
            .arg(&dir)
            .status()
            .unwrap();
        assert!(untar.success());
        assert!(dir.join("app/src/main.rs").is_file());
        assert!(dir.join("app/migrations").is_dir());
        assert!(!dir.join("src/main.rs").exists(), "the CLI stays out");
        // Cargo loads every manifest of the reduced workspace (the lock file travels with it).
        let meta = std::process::Command::new(env!("CARGO"))
            .args([
                "metadata",
                "--offline",
                "--no-deps",
                "--format-version",
                "1",
            ])
            .current_dir(&dir)
            .output()
            .unwrap();
        assert!(
            meta.status.success(),
            "{}",
            String::from_utf8_lossy(&meta.stderr)
        );
        let text = String::from_utf8_lossy(&meta.stdout);
        assert!(text.contains("\"name\":\"bookstore-app\""), "{text}");
        assert!(!text.contains("\"name\":\"bookstore\""), "{text}");
        std::fs::remove_dir_all(&dir).unwrap();
        // Deterministic: the same bytes (and hash) every time.
        assert_eq!(
            sha256_hex(source_archive()),
            Artifact::source().sha256,
            "stable hash"
        );
    }

    #[test]
    fn only_linux_x86_64_executables_are_accepted_as_binaries() {
        let mut elf = vec![0u8; 64];
        elf[..4].copy_from_slice(b"\x7fELF");
        elf[4] = 2;
        elf[18] = 62;
        assert!(is_linux_x86_64_elf(&elf));
        elf[18] = 183; // aarch64
        assert!(!is_linux_x86_64_elf(&elf));
        assert!(!is_linux_x86_64_elf(b"#!/bin/sh\necho hi\n"));
    }
}
