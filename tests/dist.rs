//! Install without Rust: `scripts/dist.sh plan` is what the release workflow builds, and an archive
//! of this machine's target (packed by `scripts/dist.sh build` from the test's own binaries)
//! installs with `scripts/install.sh` the way the one-liner does, carrying the Linux x86_64 app that
//! the installed CLI then bakes (no build on the builder). A tampered archive is refused.

mod common;

use std::path::Path;
use std::process::Command;

use common::{TempDir, manifest_dir, sha256_file};

fn run(cmd: &mut Command) -> (bool, String, String) {
    let out = cmd.output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn dist(args: &[&str]) -> Command {
    let mut cmd = Command::new("bash");
    cmd.arg(manifest_dir().join("scripts/dist.sh")).args(args);
    cmd
}

fn install(release: &Path, into: &Path) -> (bool, String, String) {
    run(Command::new("sh")
        .arg(manifest_dir().join("scripts/install.sh"))
        .env(
            "BOOKSTORE_RELEASE_URL",
            format!("file://{}", release.display()),
        )
        .env("BOOKSTORE_INSTALL_DIR", into)
        .env("HOME", into))
}

#[test]
fn the_plan_is_the_release_workflow_and_every_archive_carries_the_linux_app() {
    // The installer is POSIX sh (macOS's and Debian's), the packer bash.
    for (script, shell) in [("install.sh", "sh"), ("dist.sh", "bash")] {
        let out = Command::new("shellcheck")
            .args(["--severity=style", "--shell", shell])
            .arg(manifest_dir().join("scripts").join(script))
            .output()
            .expect("shellcheck is installed by scripts/test.sh");
        assert!(
            out.status.success(),
            "{script}: {}",
            String::from_utf8_lossy(&out.stdout)
        );
    }
    let (ok, plan, err) = run(&mut dist(&["plan"]));
    assert!(ok, "{err}");
    let targets: Vec<&str> = plan
        .lines()
        .skip(1)
        .map(|l| l.split_whitespace().next().unwrap())
        .collect();
    assert_eq!(targets.len(), 5, "{plan}");
    for line in plan.lines().skip(1) {
        assert!(line.contains(" bookstore-app "), "{line}");
    }
    for os in ["linux", "apple-darwin", "windows"] {
        assert!(targets.iter().any(|t| t.contains(os)), "{os}: {targets:?}");
    }
    let workflow =
        std::fs::read_to_string(manifest_dir().join(".github/workflows/release.yml")).unwrap();
    let matrix: Vec<&str> = workflow
        .lines()
        .filter_map(|l| l.trim().strip_prefix("- { target: "))
        .filter_map(|l| l.split(',').next())
        .collect();
    assert_eq!(
        matrix, targets,
        "the release workflow builds the plan's targets"
    );
}

#[test]
fn an_archive_installs_with_the_one_liner_and_bakes_its_own_app() {
    let dir = TempDir::new("dist");
    let cli = Path::new(env!("CARGO_BIN_EXE_bookstore"));
    let app = cli.with_file_name("bookstore-app");
    let release = dir.path().join("release");
    let (ok, out, err) = run(&mut dist(&[
        "build",
        "--profile",
        "dev",
        "--bin",
        cli.to_str().unwrap(),
        "--app",
        app.to_str().unwrap(),
        "--out",
        release.to_str().unwrap(),
    ]));
    assert!(ok, "{err}");
    let archive = Path::new(out.trim());
    assert!(archive.is_file(), "{out}");
    let sums = std::fs::read_to_string(release.join(format!(
        "{}.sha256",
        archive.file_name().unwrap().to_str().unwrap()
    )))
    .unwrap();
    assert!(sums.starts_with(&sha256_file(archive)), "{sums}");

    let bin = dir.path().join("bin");
    let (ok, out, err) = install(&release, &bin);
    assert!(ok, "{out}{err}");
    assert!(out.contains("installed bookstore 0."), "{out}");
    assert_eq!(sha256_file(&bin.join("bookstore-app")), sha256_file(&app));
    // The installed CLI finds the app beside itself: its bake uploads that binary, by its hash.
    let rendered = dir.path().join("rendered");
    let (ok, _, err) = run(Command::new(bin.join("bookstore"))
        .current_dir(dir.path())
        .args(["render", "--stack", "asg", "--region", "us-east-1", "--out"])
        .arg(&rendered));
    assert!(ok, "{err}");
    let bake = std::fs::read_dir(&rendered)
        .unwrap()
        .filter_map(|e| {
            let p = e.unwrap().path().join("builder-user-data.sh");
            p.is_file().then_some(p)
        })
        .next()
        .expect("the bake's user-data");
    let script = std::fs::read_to_string(bake).unwrap();
    assert!(
        script.contains(&sha256_file(&app)) && script.contains("binary"),
        "the bake takes the installed app binary"
    );

    // One byte changed in the archive: refused, nothing installed.
    let mut bytes = std::fs::read(archive).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0xff;
    std::fs::write(archive, bytes).unwrap();
    let elsewhere = dir.path().join("bin2");
    let (ok, out, err) = install(&release, &elsewhere);
    assert!(!ok, "{out}");
    assert!(err.contains("the release says"), "{err}");
    assert!(!elsewhere.join("bookstore").exists());
}
