//! Where the baked app comes from: the source the CLI carries (built on the builder), an explicit
//! binary (checked before anything is made), and a new app that replaces the image.

mod common;

use std::io::Read;
use std::path::Path;

use common::{ENV, Moto, TempDir};

fn sibling_app() -> std::path::PathBuf {
    Path::new(env!("CARGO_BIN_EXE_bookstore")).with_file_name("bookstore-app")
}

fn image_tags(moto: &Moto) -> Vec<(String, String, String)> {
    let aws = moto.aws();
    aws.rt.block_on(async {
        let out = aws
            .ec2
            .describe_images()
            .owners("self")
            .send()
            .await
            .unwrap();
        out.images()
            .iter()
            .map(|i| {
                let tag = |k: &str| {
                    i.tags()
                        .iter()
                        .find(|t| t.key() == Some(k))
                        .and_then(|t| t.value())
                        .unwrap_or_default()
                        .to_string()
                };
                (
                    i.image_id().unwrap().to_string(),
                    tag("bookstore:key"),
                    tag("bookstore:artifact-sha256"),
                )
            })
            .collect()
    })
}

#[test]
fn building_on_the_builder_uploads_the_embedded_source_and_uses_a_bigger_builder() {
    let moto = Moto::start(0.0);
    let dir = TempDir::new("bake-source");
    let bake = moto
        .run(
            dir.path(),
            &[
                "bake",
                "--stack",
                "asg",
                "--env",
                ENV,
                "--build-app-on-builder",
            ],
        )
        .ok();
    assert!(bake.stdout.contains("image_id = ami-"), "{}", bake.stdout);
    let images = image_tags(&moto);
    assert_eq!(images.len(), 1);
    let artifact_sha256 = &images[0].2;
    let aws = moto.aws();
    let builder = aws.builders().remove(0);
    let (archive, builder_type, user_data) = aws.rt.block_on(async {
        let bucket = aws.artifact_bucket().await;
        let object = aws
            .s3
            .get_object()
            .bucket(&bucket)
            .key(format!("app/{artifact_sha256}/bookstore-app-source.tar"))
            .send()
            .await
            .expect("the source archive is in the bucket under its hash");
        let archive = object.body.collect().await.unwrap().into_bytes().to_vec();
        let user_data = aws.user_data_of(builder.instance_id().unwrap()).await;
        (
            archive,
            builder.instance_type().unwrap().as_str().to_string(),
            user_data,
        )
    });
    assert_eq!(
        &common::sha256_bytes(&archive),
        artifact_sha256,
        "the image names the archive it was built from"
    );
    assert_eq!(builder_type, "t3.medium", "linking needs 2 GB");
    assert!(user_data.contains("artifact_kind='source'"), "{user_data}");
    // The archive is the app's workspace: it unpacks into a manifest and the app's sources.
    let tar = dir.path().join("src.tar");
    std::fs::write(&tar, &archive).unwrap();
    let out = dir.path().join("src");
    std::fs::create_dir_all(&out).unwrap();
    let untar = std::process::Command::new("tar")
        .arg("-xf")
        .arg(&tar)
        .arg("-C")
        .arg(&out)
        .status()
        .unwrap();
    assert!(untar.success());
    let mut manifest = String::new();
    std::fs::File::open(out.join("Cargo.toml"))
        .unwrap()
        .read_to_string(&mut manifest)
        .unwrap();
    assert!(manifest.contains("members = [\"app\"]"), "{manifest}");
    assert!(out.join("app/src/main.rs").is_file());
    assert!(out.join("Cargo.lock").is_file());
    moto.down_leaves_nothing(dir.path());
}

#[test]
fn an_app_binary_that_is_not_linux_x86_64_is_refused_before_any_aws_call() {
    let moto = Moto::start(0.0);
    let dir = TempDir::new("bake-bad-binary");
    let script = dir.write("bookstore-app", "#!/bin/sh\necho not an ELF\n");
    let refused = moto.run(
        dir.path(),
        &[
            "up",
            "--stack",
            "asg",
            "--env",
            ENV,
            "--app-binary",
            script.to_str().unwrap(),
        ],
    );
    assert_eq!(refused.code, 1);
    assert!(
        refused.stderr.contains("--app-binary") && refused.stderr.contains("Linux x86_64"),
        "{}",
        refused.stderr
    );
    assert!(
        moto.mutating_calls().is_empty(),
        "{:?}",
        moto.mutating_calls()
    );
}

#[test]
fn a_new_app_bakes_a_new_image_moves_the_launch_template_and_drops_the_old_image() {
    let moto = Moto::start(0.0);
    let dir = TempDir::new("bake-new-app");
    moto.run(dir.path(), &["up", "--stack", "asg", "--env", ENV])
        .ok();
    let first = image_tags(&moto);
    assert_eq!(first.len(), 1);
    // Another build of the app: the same executable with other bytes.
    let mut bytes = std::fs::read(sibling_app()).unwrap();
    bytes.extend_from_slice(b"\0another build");
    let new_app = dir.path().join("bookstore-app");
    std::fs::write(&new_app, &bytes).unwrap();
    let plan = moto.run(
        dir.path(),
        &[
            "plan",
            "--stack",
            "asg",
            "--env",
            ENV,
            "--app-binary",
            new_app.to_str().unwrap(),
        ],
    );
    assert_eq!(plan.code, 2);
    assert!(
        plan.stdout.contains(&format!("- delete {}", first[0].1))
            && plan.stdout.contains("~ update lt"),
        "{}",
        plan.stdout
    );
    let up_new_app = [
        "up",
        "--stack",
        "asg",
        "--env",
        ENV,
        "--app-binary",
        new_app.to_str().unwrap(),
    ];
    moto.run(dir.path(), &up_new_app).ok();
    let second = image_tags(&moto);
    assert_eq!(second.len(), 1, "the old image is gone: {second:?}");
    assert_ne!(second[0].0, first[0].0);
    assert_eq!(second[0].2, common::sha256_bytes(&bytes));
    let aws = moto.aws();
    let image_in_template = aws
        .rt
        .block_on(aws.launch_template_data())
        .image_id()
        .unwrap()
        .to_string();
    assert_eq!(image_in_template, second[0].0);
    // The running instances were rolled onto the new image, and the group remembers it.
    assert_eq!(moto.count("StartInstanceRefresh"), 1);
    let group_images = aws.rt.block_on(async {
        let groups = aws
            .asg
            .describe_auto_scaling_groups()
            .auto_scaling_group_names("bs-t-asg-asg")
            .send()
            .await
            .unwrap();
        let ids: Vec<String> = groups.auto_scaling_groups()[0]
            .instances()
            .iter()
            .map(|i| i.instance_id().unwrap().to_string())
            .collect();
        assert_eq!(ids.len(), 2);
        let out = aws
            .ec2
            .describe_instances()
            .set_instance_ids(Some(ids))
            .send()
            .await
            .unwrap();
        out.reservations()
            .iter()
            .flat_map(|r| r.instances())
            .map(|i| i.image_id().unwrap().to_string())
            .collect::<Vec<_>>()
    });
    assert_eq!(group_images, vec![second[0].0.clone(); 2]);
    moto.clear_calls();
    let again = moto.run(dir.path(), &up_new_app).ok();
    assert!(again.stdout.contains("Nothing to do"), "{}", again.stdout);
    assert!(
        moto.mutating_calls().is_empty(),
        "{:?}",
        moto.mutating_calls()
    );
    moto.down_leaves_nothing(dir.path());
}

#[test]
fn a_long_bake_in_a_ci_log_is_never_silent() {
    let moto = Moto::start(0.0);
    moto.configure(r#"{"bake_seconds": 5}"#);
    let dir = TempDir::new("bake-heartbeat");
    // Without a TTY, as in CI; the heartbeat's period shortened from 10 s to 1 s for the test.
    let out = moto
        .cli(dir.path(), &["bake", "--stack", "asg", "--env", ENV])
        .env("BOOKSTORE_HEARTBEAT_SECS", "1")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let stamps: Vec<f64> = stderr
        .lines()
        .filter_map(|l| l.strip_prefix('[')?.split_once("s]"))
        .filter_map(|(t, _)| t.trim().parse().ok())
        .collect();
    let gaps: Vec<f64> = stamps.windows(2).map(|w| w[1] - w[0]).collect();
    let widest = gaps.iter().copied().fold(0.0, f64::max);
    assert!(
        // A 1 s period; in a debug build the SDK's signing of the artifact upload (a SHA-256 of
        // the body, on the runtime) delays one tick by up to ~1 s.
        stamps.last().copied().unwrap_or(0.0) > 5.0 && widest < 3.0,
        "a line at least every heartbeat (widest gap {widest:.1} s):\n{stderr}"
    );
    let beats = stderr
        .lines()
        .filter(|l| l.contains("still in progress: ami-") && l.contains("(creating "))
        .count();
    assert!(
        beats >= 3,
        "the bake's create is named while it runs:\n{stderr}"
    );
    // Its phases, in order, each as it starts: upload, builder, install with its time, image.
    let mut at = 0;
    for phase in [
        "uploading the app binary (",
        "launching the builder (t3.",
        "installing the app for ",
        "installed; creating the image from builder i-",
        "available; terminating the builder",
    ] {
        let found = stderr[at..]
            .find(phase)
            .unwrap_or_else(|| panic!("no `{phase}` after the previous phase:\n{stderr}"));
        at += found;
    }
    // The heartbeat repeats the phase with its time.
    assert!(
        stderr.lines().any(|l| l.contains("still in progress: ami-")
            && l.contains("installing the app for ")),
        "{stderr}"
    );
}
