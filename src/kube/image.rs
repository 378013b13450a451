//! The app's container image, made by the CLI from the Linux `bookstore-app` binary without Docker:
//! an OCI image of two gzip layers, the system one (the libraries the binary links, taken from
//! this machine at their own paths, the RDS CA bundle, a passwd entry for the app's user, the
//! directories) and the app one (the binary alone), so a new app pushes one layer. Every byte is
//! fixed by its inputs (sorted entries, zero times, root owner but for the app's directories),
//! so the same binary gives the same digests and an unchanged app is never pushed again.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde_json::json;

use super::Error;

/// The app's user and group in the image (the Deployment runs as it; the nodes' covers directory
/// is made for it).
pub const APP_UID: u32 = 10001;
/// Where the app finds RDS's CA bundle (the database URL names it).
pub const RDS_CA_PATH: &str = "/etc/bookstore/rds-ca.pem";
/// Bumped whenever what goes into the image changes: the image's tag depends on it.
pub const RECIPE: &str = "oci-1";

pub const MANIFEST_TYPE: &str = "application/vnd.oci.image.manifest.v1+json";
const CONFIG_TYPE: &str = "application/vnd.oci.image.config.v1+json";
const LAYER_TYPE: &str = "application/vnd.oci.image.layer.v1.tar+gzip";

/// Where a dynamic binary's libraries are looked for on this machine (Debian's multiarch paths
/// first, then those of other distributions).
const LIBRARY_DIRS: &[&str] = &[
    "/lib/x86_64-linux-gnu",
    "/usr/lib/x86_64-linux-gnu",
    "/lib64",
    "/usr/lib64",
    "/lib",
    "/usr/lib",
];

/// One content-addressed blob: a layer or the config.
pub struct Blob {
    pub digest: String,
    pub media_type: &'static str,
    pub bytes: Vec<u8>,
}

pub struct Image {
    /// The config first, then the layers.
    pub blobs: Vec<Blob>,
    pub manifest: Vec<u8>,
    /// The manifest's digest: what the Deployment runs.
    pub digest: String,
}

fn sha256(bytes: &[u8]) -> String {
    format!("sha256:{}", crate::artifact::sha256_hex(bytes))
}

/// The image of the app binary `app` with `rds_ca` (PEM) as RDS's CA bundle.
pub fn build(app: Vec<u8>, rds_ca: &[u8]) -> Result<Image, Error> {
    let mut system = Tar::default();
    for dir in ["/etc", "/etc/bookstore", "/run", "/run/secrets"] {
        system.dir(dir, 0o755, 0);
    }
    system.dir("/tmp", 0o1777, 0);
    system.dir("/data", 0o750, APP_UID);
    system.dir("/data/uploads", 0o750, APP_UID);
    system.file(
        "/etc/passwd",
        0o644,
        format!("bookstore:x:{APP_UID}:{APP_UID}::/data:/nonexistent\n").into_bytes(),
    );
    system.file(
        "/etc/group",
        0o644,
        format!("bookstore:x:{APP_UID}:\n").into_bytes(),
    );
    system.file(RDS_CA_PATH, 0o644, rds_ca.to_vec());
    for (path, bytes) in libraries(&app)? {
        system.file(&path.to_string_lossy(), 0o755, bytes);
    }
    let mut app_layer = Tar::default();
    app_layer.file("/bookstore-app", 0o755, app);

    let mut blobs = Vec::new();
    let mut diff_ids = Vec::new();
    for layer in [system, app_layer] {
        let tar = layer.finish();
        diff_ids.push(sha256(&tar));
        let gz = gzip(&tar)?;
        blobs.push(Blob {
            digest: sha256(&gz),
            media_type: LAYER_TYPE,
            bytes: gz,
        });
    }
    let config = serde_json::to_vec(&json!({
        "architecture": "amd64",
        "os": "linux",
        "config": {
            "User": format!("{APP_UID}:{APP_UID}"),
            "Entrypoint": ["/bookstore-app"],
            "WorkingDir": "/data",
            "Env": ["BOOKSTORE_DATA_DIR=/data"],
        },
        "rootfs": { "type": "layers", "diff_ids": diff_ids },
    }))
    .map_err(|e| Error::new(e.to_string()))?;
    let config = Blob {
        digest: sha256(&config),
        media_type: CONFIG_TYPE,
        bytes: config,
    };
    let descriptor =
        |b: &Blob| json!({ "mediaType": b.media_type, "digest": b.digest, "size": b.bytes.len() });
    let manifest = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": MANIFEST_TYPE,
        "config": descriptor(&config),
        "layers": blobs.iter().map(descriptor).collect::<Vec<_>>(),
    }))
    .map_err(|e| Error::new(e.to_string()))?;
    blobs.insert(0, config);
    Ok(Image {
        digest: sha256(&manifest),
        blobs,
        manifest,
    })
}

fn gzip(bytes: &[u8]) -> Result<Vec<u8>, Error> {
    // GzBuilder writes no name and a zero time: the same input gives the same bytes.
    let mut gz = flate2::GzBuilder::new().write(Vec::new(), flate2::Compression::default());
    gz.write_all(bytes)
        .and_then(|_| gz.finish())
        .map_err(|e| Error::new(format!("compressing a layer: {e}")))
}

/// The dynamic loader and every library `binary` needs (and they need), read from this machine,
/// by the path each goes to in the image. None for a static binary.
fn libraries(binary: &[u8]) -> Result<BTreeMap<PathBuf, Vec<u8>>, Error> {
    let mut found = BTreeMap::new();
    let elf = Elf::parse(binary)?;
    if let Some(interp) = &elf.interpreter {
        let bytes = std::fs::read(interp).map_err(|e| {
            Error::new(format!(
                "the app binary is linked dynamically, and its loader {interp} is not on this machine ({e}): build it statically (RUSTFLAGS='-C target-feature=+crt-static') or run bookstore on Linux x86_64"
            ))
        })?;
        found.insert(PathBuf::from(interp), bytes);
    }
    let mut todo = elf.needed;
    while let Some(name) = todo.pop() {
        if found.keys().any(|p| p.file_name() == Some(name.as_ref())) {
            continue;
        }
        let Some(path) = LIBRARY_DIRS
            .iter()
            .map(|d| Path::new(d).join(&name))
            .find(|p| p.is_file())
        else {
            return Err(Error::new(format!(
                "the app binary needs {name}, which is not on this machine: build it statically (RUSTFLAGS='-C target-feature=+crt-static') or run bookstore on the Linux it was built on"
            )));
        };
        let bytes = std::fs::read(&path)
            .map_err(|e| Error::new(format!("cannot read {}: {e}", path.display())))?;
        todo.extend(Elf::parse(&bytes)?.needed);
        found.insert(path, bytes);
    }
    Ok(found)
}

/// What the image needs of an ELF64 file: its loader and the libraries it names.
struct Elf {
    interpreter: Option<String>,
    needed: Vec<String>,
}

impl Elf {
    fn parse(b: &[u8]) -> Result<Elf, Error> {
        let bad = || Error::new("the app binary is not a well-formed ELF64 file");
        // A little-endian integer of `n` bytes at `o`.
        let int = |o: usize, n: usize| -> Result<u64, Error> {
            let bytes = b.get(o..o + n).ok_or_else(bad)?;
            Ok(bytes
                .iter()
                .rev()
                .fold(0, |v, byte| (v << 8) | *byte as u64))
        };
        let u64_at = |o: usize| int(o, 8);
        let cstr = |o: usize| -> Result<String, Error> {
            let rest = b.get(o..).ok_or_else(bad)?;
            let end = rest.iter().position(|c| *c == 0).ok_or_else(bad)?;
            Ok(String::from_utf8_lossy(&rest[..end]).into_owned())
        };
        if b.get(..5) != Some(b"\x7fELF\x02") {
            return Err(bad());
        }
        let (phoff, phentsize, phnum) = (
            u64_at(0x20)? as usize,
            int(0x36, 2)? as usize,
            int(0x38, 2)?,
        );
        let mut loads = Vec::new();
        let (mut interpreter, mut dynamic) = (None, None);
        for i in 0..phnum as usize {
            let h = phoff + i * phentsize;
            let (kind, offset, vaddr, size) =
                (int(h, 4)?, u64_at(h + 8)?, u64_at(h + 16)?, u64_at(h + 32)?);
            match kind {
                1 => loads.push((vaddr, offset, size)),
                2 => dynamic = Some((offset as usize, size as usize)),
                3 => interpreter = Some(cstr(offset as usize)?),
                _ => {}
            }
        }
        let mut needed = Vec::new();
        if let Some((offset, size)) = dynamic {
            let mut names = Vec::new();
            let mut strtab = None;
            for e in (offset..offset + size).step_by(16) {
                match u64_at(e)? {
                    0 => break,
                    1 => names.push(u64_at(e + 8)?),
                    5 => strtab = Some(u64_at(e + 8)?),
                    _ => {}
                }
            }
            if !names.is_empty() {
                let vaddr = strtab.ok_or_else(bad)?;
                let (seg_vaddr, seg_offset, _) = loads
                    .iter()
                    .find(|(v, _, s)| *v <= vaddr && vaddr < v + s)
                    .ok_or_else(bad)?;
                let base = (vaddr - seg_vaddr + seg_offset) as usize;
                for n in names {
                    needed.push(cstr(base + n as usize)?);
                }
            }
        }
        Ok(Elf {
            interpreter,
            needed,
        })
    }
}

/// A tar archive (ustar) built in memory, entries sorted by path so the bytes never depend on the
/// order they were added in.
#[derive(Default)]
struct Tar {
    entries: BTreeMap<String, (u32, u32, Option<Vec<u8>>)>,
}

impl Tar {
    fn dir(&mut self, path: &str, mode: u32, owner: u32) {
        self.entries
            .insert(format!("{}/", path.trim_matches('/')), (mode, owner, None));
    }

    fn file(&mut self, path: &str, mode: u32, data: Vec<u8>) {
        // The directories on its way, if not added.
        let rel = path.trim_start_matches('/');
        let mut at = 0;
        while let Some(i) = rel[at..].find('/') {
            let dir = format!("{}/", &rel[..at + i]);
            self.entries.entry(dir).or_insert((0o755, 0, None));
            at += i + 1;
        }
        self.entries.insert(rel.to_string(), (mode, 0, Some(data)));
    }

    fn finish(self) -> Vec<u8> {
        let mut out = Vec::new();
        for (path, (mode, owner, data)) in self.entries {
            let mut h = [0u8; 512];
            let (name, prefix) = split_name(&path);
            h[..name.len()].copy_from_slice(name.as_bytes());
            let octal = |field: &mut [u8], v: u64| {
                let s = format!("{v:0width$o}\0", width = field.len() - 1);
                field.copy_from_slice(s.as_bytes());
            };
            octal(&mut h[100..108], mode as u64);
            octal(&mut h[108..116], owner as u64);
            octal(&mut h[116..124], owner as u64);
            octal(
                &mut h[124..136],
                data.as_ref().map_or(0, |d| d.len() as u64),
            );
            octal(&mut h[136..148], 0);
            h[156] = if data.is_some() { b'0' } else { b'5' };
            h[257..263].copy_from_slice(b"ustar\0");
            h[263..265].copy_from_slice(b"00");
            h[345..345 + prefix.len()].copy_from_slice(prefix.as_bytes());
            h[148..156].copy_from_slice(b"        ");
            let sum: u32 = h.iter().map(|b| *b as u32).sum();
            h[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
            out.extend_from_slice(&h);
            if let Some(d) = data {
                out.extend_from_slice(&d);
                out.resize(out.len().div_ceil(512) * 512, 0);
            }
        }
        out.extend_from_slice(&[0u8; 1024]);
        out
    }
}

/// ustar's name (100 bytes) and prefix (155 bytes) of a path.
fn split_name(path: &str) -> (&str, &str) {
    if path.len() <= 100 {
        return (path, "");
    }
    let cut = path[..path.len().min(156)]
        .rfind('/')
        .filter(|&i| path.len() - i - 1 <= 100)
        .unwrap_or(0);
    (&path[cut + 1..], &path[..cut])
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A small dynamic executable of this machine's (this test binary is 170 MB to compress).
    fn this_binary() -> PathBuf {
        let path = PathBuf::from("/bin/true");
        assert!(path.is_file(), "these tests need /bin/true (coreutils)");
        path
    }

    #[test]
    fn the_image_carries_the_binary_its_libraries_and_the_app_user_and_is_reproducible() {
        let app = std::fs::read(this_binary()).unwrap();
        let a = build(app.clone(), b"-----BEGIN CERTIFICATE-----\n").unwrap();
        let b = build(app, b"-----BEGIN CERTIFICATE-----\n").unwrap();
        assert_eq!(a.digest, b.digest, "the same inputs give the same image");
        assert_eq!(a.blobs.len(), 3);
        let manifest: serde_json::Value = serde_json::from_slice(&a.manifest).unwrap();
        assert_eq!(manifest["config"]["digest"], a.blobs[0].digest);
        assert_eq!(manifest["layers"][1]["digest"], a.blobs[2].digest);
        let config: serde_json::Value = serde_json::from_slice(&a.blobs[0].bytes).unwrap();
        assert_eq!(config["config"]["User"], "10001:10001");
        // The system layer, unpacked by tar itself: the loader, libc, the passwd entry.
        let dir = std::env::temp_dir().join(format!("bookstore-image-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let gz = dir.join("system.tar.gz");
        std::fs::write(&gz, &a.blobs[1].bytes).unwrap();
        let list = std::process::Command::new("tar")
            .args(["-tvzf"])
            .arg(&gz)
            .output()
            .unwrap();
        let list = String::from_utf8_lossy(&list.stdout).into_owned();
        let _ = std::fs::remove_dir_all(&dir);
        assert!(list.contains("etc/passwd"), "{list}");
        assert!(list.contains("libc.so.6"), "{list}");
        assert!(list.contains("ld-linux-x86-64.so.2"), "{list}");
        assert!(
            list.contains("10001/10001") && list.contains("data/uploads/"),
            "{list}"
        );
    }

    #[test]
    fn a_static_binary_needs_no_library_and_garbage_is_refused() {
        let mut elf = vec![0u8; 64];
        elf[..5].copy_from_slice(b"\x7fELF\x02");
        let parsed = Elf::parse(&elf).unwrap();
        assert!(parsed.interpreter.is_none() && parsed.needed.is_empty());
        assert!(Elf::parse(b"#!/bin/sh\n").is_err());
    }

    #[test]
    fn long_paths_split_into_prefix_and_name() {
        let long = format!("{}/{}", "d".repeat(120), "f".repeat(20));
        let (name, prefix) = split_name(&long);
        assert_eq!((name.len(), prefix.len()), (20, 120));
    }
}
