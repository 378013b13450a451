//! Credentials beyond environment variables: an `AWS_PROFILE` whose credentials come from a
//! `credential_process` (what `aws sso login`-style helpers and vaults use) works with the real
//! binary, and the process is what supplied them.

mod common;

use common::{ENV, Moto, Run, TempDir};

#[test]
fn a_profile_with_a_credential_process_is_used() {
    let moto = Moto::start(0.0);
    let dir = TempDir::new("credentials");
    let marker = dir.path().join("process-ran");
    let helper = dir.write(
        "helper.sh",
        &format!(
            "#!/bin/sh\ntouch '{}'\necho '{{\"Version\": 1, \"AccessKeyId\": \"from-process\", \"SecretAccessKey\": \"s\", \"SessionToken\": \"t\"}}'\n",
            marker.display()
        ),
    );
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&helper, std::fs::Permissions::from_mode(0o755)).unwrap();
    let config = dir.write(
        "aws-config",
        &format!(
            "[profile lab]\ncredential_process = {}\nregion = us-east-1\n",
            helper.display()
        ),
    );
    let run = Run::from(
        moto.cli(
            dir.path(),
            &["--output", "json", "doctor", "--stack", "asg", "--env", ENV],
        )
        .env_remove("AWS_ACCESS_KEY_ID")
        .env_remove("AWS_SECRET_ACCESS_KEY")
        .env_remove("AWS_SESSION_TOKEN")
        .env("AWS_CONFIG_FILE", &config)
        .env("AWS_PROFILE", "lab")
        .output()
        .unwrap(),
    );
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    assert!(
        marker.exists(),
        "the credential process supplied the credentials"
    );
    let report = run.json();
    assert_eq!(report["checks"][0]["check"], "credentials");
    assert_eq!(report["checks"][0]["verdict"], "ok", "{report}");
}
