//! Embeds the app's source (its manifest, code, templates, static files and migrations, plus the
//! workspace manifest and lock file) into the CLI, so that a user whose machine is not Linux x86_64
//! can still bake an AMI: the builder instance compiles it (see `src/artifact.rs`).

use std::path::{Path, PathBuf};

const ROOTS: &[&str] = &[
    "Cargo.toml",
    "Cargo.lock",
    "app/Cargo.toml",
    "app/src",
    "app/templates",
    "app/static",
    "app/migrations",
];

fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", dir.display()))
        .map(|e| e.expect("directory entry").path())
        .collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            walk(&path, out);
        } else {
            out.push(path);
        }
    }
}

fn main() {
    let root = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    for entry in ROOTS {
        let path = root.join(entry);
        println!("cargo:rerun-if-changed={}", path.display());
        if path.is_dir() {
            walk(&path, &mut files);
        } else {
            files.push(path);
        }
    }
    let mut code = String::from("pub const APP_SOURCE: &[(&str, &[u8])] = &[\n");
    for file in &files {
        let relative = file
            .strip_prefix(&root)
            .expect("under the manifest dir")
            .to_string_lossy()
            .replace('\\', "/");
        code.push_str(&format!(
            "    ({relative:?}, include_bytes!({:?})),\n",
            file.display().to_string()
        ));
    }
    code.push_str("];\n");
    let out = PathBuf::from(std::env::var("OUT_DIR").expect("OUT_DIR")).join("app_source.rs");
    std::fs::write(out, code).expect("write app_source.rs");
}
