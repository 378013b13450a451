//! The files bookstore renders for instances (`templates/` in the repository, embedded here):
//! the builder's user-data that installs the app into the AMI, the systemd unit and the secret
//! fetcher it installs, and the app instances' user-data. Placeholders are `{{name}}`; scalar
//! values are shell-quoted, files go into quoted heredocs.

use crate::artifact::sha256_hex;

pub const BAKE: &str = include_str!("../templates/bake.sh");
pub const UNIT: &str = include_str!("../templates/bookstore.service");
pub const FETCH_DB_SECRET: &str = include_str!("../templates/fetch-db-secret");
pub const USER_DATA: &str = include_str!("../templates/user-data.sh");

/// Quotes a value for a POSIX shell: '…', with embedded quotes closed and escaped.
pub fn shell_quote(value: &str) -> String {
    format!("'{}'", value.replace('\'', r"'\''"))
}

pub enum Value<'a> {
    /// A scalar, shell-quoted.
    Shell(&'a str),
    /// A file's text, inserted as is into a quoted heredoc.
    File(&'a str),
}

/// Fills every `{{name}}`. The templates are part of this binary, so a placeholder without a value
/// (or a file that contains its heredoc's terminator) is a bug: it panics, and the tests catch it.
pub fn render(template: &str, values: &[(&str, Value)]) -> String {
    let mut out = template.to_string();
    for (name, value) in values {
        let placeholder = format!("{{{{{name}}}}}");
        assert!(out.contains(&placeholder), "template has no {placeholder}");
        let text = match value {
            Value::Shell(s) => shell_quote(s),
            Value::File(f) => {
                assert!(
                    !f.contains("_EOF"),
                    "file text contains a heredoc terminator"
                );
                f.trim_end().to_string()
            }
        };
        out = out.replace(&placeholder, &text);
    }
    assert!(
        !out.contains("{{"),
        "template left a placeholder without a value"
    );
    out
}

/// The sha256 of everything the bake installs besides the app: a change in them bakes a new AMI.
pub fn install_templates_sha256() -> String {
    sha256_hex(format!("{BAKE}\0{UNIT}\0{FETCH_DB_SECRET}").as_bytes())
}

/// The builder's user-data.
pub fn bake_script(artifact_url: &str, artifact_sha256: &str, artifact_kind: &str) -> String {
    render(
        BAKE,
        &[
            ("artifact_url", Value::Shell(artifact_url)),
            ("artifact_sha256", Value::Shell(artifact_sha256)),
            ("artifact_kind", Value::Shell(artifact_kind)),
            (
                "rust_toolchain",
                Value::Shell(crate::artifact::RUST_TOOLCHAIN),
            ),
            ("fetch_db_secret", Value::File(FETCH_DB_SECRET)),
            ("unit", Value::File(UNIT)),
        ],
    )
}

/// What the app instances need to know; no secret among it.
pub struct InstanceConfig<'a> {
    pub region: &'a str,
    pub app_port: u16,
    /// `host:port`, empty without a database.
    pub db_endpoint: &'a str,
    pub db_secret_arn: &'a str,
    pub file_system_id: &'a str,
}

/// The app instances' user-data.
pub fn user_data(c: &InstanceConfig) -> String {
    let port = c.app_port.to_string();
    render(
        USER_DATA,
        &[
            ("region", Value::Shell(c.region)),
            ("app_port", Value::Shell(&port)),
            ("db_endpoint", Value::Shell(c.db_endpoint)),
            ("db_secret_arn", Value::Shell(c.db_secret_arn)),
            ("file_system_id", Value::Shell(c.file_system_id)),
        ],
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_quoted_for_the_shell() {
        assert_eq!(shell_quote("a b"), "'a b'");
        assert_eq!(shell_quote("it's"), r"'it'\''s'");
        let url = "https://b.s3.amazonaws.com/k?X-Amz-Signature=abc&X-Amz-Date=1";
        let script = bake_script(url, "00ff", "binary");
        assert!(script.contains(&format!("artifact_url='{url}'")));
        assert!(script.contains("[Service]"), "the unit is inside");
    }
}
