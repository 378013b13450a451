//! The files bookstore renders for instances (`templates/` in the repository, embedded here):
//! the builder's user-data that installs the app into the AMI, the systemd unit and the secret
//! fetcher it installs, and the app instances' user-data. Placeholders are `{{name}}`; scalar
//! values are shell-quoted, files go into quoted heredocs.

use serde::Serialize;

use crate::artifact::sha256_hex;
use std::collections::BTreeMap;

use crate::stack::{AppService, Services, routing};

/// What the builder installs besides the app: each stack kind has its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Recipe {
    /// The app and its unit, for instances behind a load balancer with RDS and EFS.
    Asg,
    /// The app, MariaDB and the TLS proxy with its ACME client, for one VM.
    Monolith,
    /// Docker, the app and its container image built on the builder, for swarm nodes.
    Swarm,
}

pub const BAKE: &str = include_str!("../templates/bake.sh");
pub const UNIT: &str = include_str!("../templates/bookstore.service");
pub const FETCH_DB_SECRET: &str = include_str!("../templates/fetch-db-secret");
pub const SPLIT_UNIT: &str = include_str!("../templates/bookstore@.service");
pub const SPLIT_SETUP_UNIT: &str = include_str!("../templates/bookstore-split.service");
pub const SECRET_UNIT: &str = include_str!("../templates/bookstore-secret.service");
pub const SECRET_TIMER: &str = include_str!("../templates/bookstore-secret.timer");
pub const USER_DATA: &str = include_str!("../templates/user-data.sh");
pub const INSTALL_APP: &str = include_str!("../templates/install-app.sh");
pub const SWARM_BAKE: &str = include_str!("../templates/swarm/bake.sh");
pub const SWARM_NODE: &str = include_str!("../templates/swarm/node");
pub const SWARM_BUILD_IMAGE: &str = include_str!("../templates/swarm/build-image");
pub const SWARM_UNIT: &str = include_str!("../templates/swarm/bookstore-swarm-node.service");
pub const SWARM_SYNC: &str = include_str!("../templates/swarm/sync");
pub const SWARM_SYNC_UNIT: &str = include_str!("../templates/swarm/bookstore-swarm-sync.service");
pub const SWARM_SYNC_TIMER: &str = include_str!("../templates/swarm/bookstore-swarm-sync.timer");
pub const SWARM_USER_DATA: &str = include_str!("../templates/swarm/user-data.sh");
pub const SWARM_STACK: &str = include_str!("../templates/swarm/stack.yml");
pub const SWARM_STACK_SPLIT: &str = include_str!("../templates/swarm/stack-split.yml");
pub const MONOLITH_BAKE: &str = include_str!("../templates/monolith/bake.sh");
pub const MONOLITH_SETUP: &str = include_str!("../templates/monolith/setup");
pub const MONOLITH_CERT: &str = include_str!("../templates/monolith/cert");
pub const MONOLITH_NGINX: &str = include_str!("../templates/monolith/nginx.conf");
pub const MONOLITH_SETUP_UNIT: &str = include_str!("../templates/monolith/bookstore-setup.service");
pub const MONOLITH_UNIT: &str = include_str!("../templates/monolith/bookstore.service");
pub const MONOLITH_SPLIT_UNIT: &str = include_str!("../templates/monolith/bookstore@.service");
pub const MONOLITH_CERT_UNIT: &str = include_str!("../templates/monolith/bookstore-cert.service");
pub const MONOLITH_CERT_TIMER: &str = include_str!("../templates/monolith/bookstore-cert.timer");
pub const MONOLITH_USER_DATA: &str = include_str!("../templates/monolith/user-data.sh");

/// Quotes a value for a POSIX shell: '…', with embedded quotes closed and escaped.
pub fn shell_quote(value: &str) -> String {
    format!("'{}'", value.replace('\'', r"'\''"))
}

pub enum Value<'a> {
    /// A scalar, shell-quoted.
    Shell(&'a str),
    /// A value inserted as it is (YAML of the stack file: validated values only).
    Raw(&'a str),
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
            Value::Raw(s) => s.to_string(),
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

/// The sha256 of everything the recipe's bake installs besides the app: a change in them bakes a
/// new AMI.
pub fn install_templates_sha256(recipe: Recipe) -> String {
    match recipe {
        Recipe::Asg => sha256_hex(
            [
                BAKE,
                INSTALL_APP,
                UNIT,
                FETCH_DB_SECRET,
                SPLIT_UNIT,
                SPLIT_SETUP_UNIT,
                SECRET_UNIT,
                SECRET_TIMER,
            ]
            .join("\0")
            .as_bytes(),
        ),
        Recipe::Swarm => sha256_hex(
            [
                SWARM_BAKE,
                INSTALL_APP,
                SWARM_NODE,
                SWARM_BUILD_IMAGE,
                SWARM_UNIT,
                SWARM_SYNC,
                SWARM_SYNC_UNIT,
                SWARM_SYNC_TIMER,
            ]
            .join("\0")
            .as_bytes(),
        ),
        Recipe::Monolith => sha256_hex(
            [
                MONOLITH_BAKE,
                INSTALL_APP,
                MONOLITH_SETUP,
                MONOLITH_CERT,
                MONOLITH_NGINX,
                MONOLITH_SETUP_UNIT,
                MONOLITH_UNIT,
                MONOLITH_SPLIT_UNIT,
                MONOLITH_CERT_UNIT,
                MONOLITH_CERT_TIMER,
            ]
            .join("\0")
            .as_bytes(),
        ),
    }
}

/// The AWS actions the recipe's scripts call on the machines with the instance profile (the
/// tests read every rendered script and fail on a call missing here), and what calls each.
pub fn machine_actions(recipe: Recipe) -> &'static [(&'static str, &'static str)] {
    match recipe {
        Recipe::Asg => &[(
            "secretsmanager:GetSecretValue",
            "the instances read the database secret (fetch-db-secret)",
        )],
        Recipe::Monolith => &[(
            "secretsmanager:GetSecretValue",
            "a separate database VM and its app VM read their shared credentials (setup)",
        )],
        Recipe::Swarm => &[
            (
                "secretsmanager:GetSecretValue",
                "the nodes read the join tokens, the database secret and the release (node, sync)",
            ),
            (
                "secretsmanager:PutSecretValue",
                "the leader writes the join tokens and the swarm's status (node, sync)",
            ),
        ],
    }
}

/// The builder's user-data for this recipe: the artifact and the app's install are common to all,
/// each recipe adds its own files.
pub fn bake_script(
    recipe: Recipe,
    artifact_url: &str,
    artifact_sha256: &str,
    artifact_kind: &str,
) -> String {
    let mut values = vec![
        ("artifact_url", Value::Shell(artifact_url)),
        ("artifact_sha256", Value::Shell(artifact_sha256)),
        ("artifact_kind", Value::Shell(artifact_kind)),
        (
            "rust_toolchain",
            Value::Shell(crate::artifact::RUST_TOOLCHAIN),
        ),
        ("install_app", Value::File(INSTALL_APP)),
    ];
    let template = match recipe {
        Recipe::Asg => {
            values.extend([
                ("fetch_db_secret", Value::File(FETCH_DB_SECRET)),
                ("unit", Value::File(UNIT)),
                ("split_unit", Value::File(SPLIT_UNIT)),
                ("split_setup_unit", Value::File(SPLIT_SETUP_UNIT)),
                ("secret_unit", Value::File(SECRET_UNIT)),
                ("secret_timer", Value::File(SECRET_TIMER)),
            ]);
            BAKE
        }
        Recipe::Monolith => {
            values.extend([
                ("setup", Value::File(MONOLITH_SETUP)),
                ("cert", Value::File(MONOLITH_CERT)),
                ("nginx_conf", Value::File(MONOLITH_NGINX)),
                ("setup_unit", Value::File(MONOLITH_SETUP_UNIT)),
                ("unit", Value::File(MONOLITH_UNIT)),
                ("split_unit", Value::File(MONOLITH_SPLIT_UNIT)),
                ("cert_unit", Value::File(MONOLITH_CERT_UNIT)),
                ("cert_timer", Value::File(MONOLITH_CERT_TIMER)),
            ]);
            MONOLITH_BAKE
        }
        Recipe::Swarm => {
            values.extend([
                ("build_image", Value::File(SWARM_BUILD_IMAGE)),
                ("node", Value::File(SWARM_NODE)),
                ("unit", Value::File(SWARM_UNIT)),
                ("sync", Value::File(SWARM_SYNC)),
                ("sync_unit", Value::File(SWARM_SYNC_UNIT)),
                ("sync_timer", Value::File(SWARM_SYNC_TIMER)),
            ]);
            SWARM_BAKE
        }
    };
    render(template, &values)
}

/// What the app instances need to know; no secret among it.
pub struct InstanceConfig<'a> {
    pub region: &'a str,
    pub app_port: u16,
    /// `host:port`, empty without a database.
    pub db_endpoint: &'a str,
    pub db_secret_arn: &'a str,
    pub file_system_id: &'a str,
    /// Empty for one process; the split's services as `name:port:internal-port`, space-separated.
    pub split_services: &'a str,
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
            ("split_services", Value::Shell(c.split_services)),
        ],
    )
}

/// What a monolith instance needs to know; no secret among it.
pub struct MonolithConfig<'a> {
    /// `app` or `db`.
    pub role: &'a str,
    pub data_volume_id: &'a str,
    pub app_port: u16,
    /// The database VM's private address; empty: MariaDB on this VM.
    pub db_host: &'a str,
    pub tls_mode: &'a str,
    pub public_ip: &'a str,
    pub domain: &'a str,
    pub acme_server: &'a str,
    /// The shared credentials' secret (separate database VM); empty: made on the VM.
    pub db_secret_arn: &'a str,
    pub region: &'a str,
    /// One process or the split (its services and nginx's routes to them).
    pub services: Services,
}

/// A monolith instance's user-data.
pub fn monolith_user_data(c: &MonolithConfig) -> String {
    let port = c.app_port.to_string();
    render(
        MONOLITH_USER_DATA,
        &[
            ("role", Value::Shell(c.role)),
            ("data_volume_id", Value::Shell(c.data_volume_id)),
            ("app_port", Value::Shell(&port)),
            ("db_host", Value::Shell(c.db_host)),
            ("tls_mode", Value::Shell(c.tls_mode)),
            ("public_ip", Value::Shell(c.public_ip)),
            ("domain", Value::Shell(c.domain)),
            ("acme_server", Value::Shell(c.acme_server)),
            ("db_secret_arn", Value::Shell(c.db_secret_arn)),
            ("region", Value::Shell(c.region)),
            (
                "split_services",
                Value::Shell(&split_services(c.services, c.app_port)),
            ),
            ("split_routes", Value::Shell(&nginx_routes(c.services))),
        ],
    )
}

/// The split's services for the machines' scripts, `name:port:internal-port` space-separated;
/// empty for one process.
pub fn split_services(services: Services, app_port: u16) -> String {
    match services {
        Services::Single => String::new(),
        Services::Split => AppService::ALL
            .iter()
            .map(|s| {
                format!(
                    "{}:{}:{}",
                    s.as_str(),
                    s.port_from(app_port),
                    s.internal_port_from(app_port)
                )
            })
            .collect::<Vec<_>>()
            .join(" "),
    }
}

/// An ALB path pattern as an nginx `location`: exact without wildcards, a prefix (that stops the
/// regex search) for a single trailing `*`, else an anchored regex. For the table's patterns,
/// which no two services share, nginx then picks the service the load balancer's rules would.
pub fn nginx_location(pattern: &str) -> String {
    let wild = |c: char| c == '*' || c == '?';
    match pattern.find(wild) {
        None => format!("= {pattern}"),
        Some(i) if i == pattern.len() - 1 && pattern.ends_with('*') => {
            format!("^~ {}", &pattern[..i])
        }
        Some(_) => {
            let mut re = String::from("~ ^");
            for c in pattern.chars() {
                match c {
                    '*' => re.push_str(".*"),
                    '?' => re.push('.'),
                    '.' | '$' | '+' | '(' | ')' | '[' | ']' | '{' | '}' | '|' | '^' | '\\' => {
                        re.push('\\');
                        re.push(c);
                    }
                    c => re.push(c),
                }
            }
            re.push('$');
            re
        }
    }
}

/// nginx's routes for the split, `service|location` pairs `;`-separated, in the routing table's
/// order, the default service at `/` last; empty for one process.
pub fn nginx_routes(services: Services) -> String {
    match services {
        Services::Single => String::new(),
        Services::Split => {
            let mut routes: Vec<String> = routing::ROUTES
                .iter()
                .flat_map(|(service, patterns)| {
                    patterns
                        .iter()
                        .map(move |p| format!("{service}|{}", nginx_location(p)))
                })
                .collect();
            routes.push(format!("{}|/", routing::DEFAULT));
            routes.join(";")
        }
    }
}

/// What a swarm node needs to know; no secret among it.
pub struct SwarmConfig<'a> {
    /// `leader`, `manager` or `worker`.
    pub node: &'a str,
    /// The node's plan key (`manager-2`): a replacement takes the place of the node it replaces.
    pub key: &'a str,
    pub region: &'a str,
    pub tokens_secret_arn: &'a str,
    /// The secret naming the app image to run, written by bookstore.
    pub release_secret_arn: &'a str,
    /// The secret the swarm's leader reports Docker's view to.
    pub status_secret_arn: &'a str,
    pub app_port: u16,
    pub replicas: u32,
    /// The split's services with replicas of their own; the others run `replicas`.
    pub service_replicas: &'a BTreeMap<AppService, u32>,
    /// The app image's tag: the first 12 hex digits of the artifact's sha256.
    pub image_tag: &'a str,
    /// `host:port` of RDS; empty: SQLite in the container (tests only).
    pub db_endpoint: &'a str,
    pub db_secret_arn: &'a str,
    pub file_system_id: &'a str,
    /// One service, or the split's three (each with `replicas`).
    pub services: Services,
}

/// The swarm secret's name: versioned, as an in-use secret cannot be replaced.
pub const SWARM_DB_SECRET: &str = "bookstore-db-credentials-v1";

/// The app's container image on the nodes, named by its artifact's sha256 (12 hex digits suffice).
pub fn swarm_image(sha256: &str) -> String {
    format!("bookstore.local/app:{}", &sha256[..sha256.len().min(12)])
}

/// The compose-format stack file the leader deploys. `publish_mode` is `ingress` on AWS (every
/// node answers the load balancer through the routing mesh) and `host` where there is no IPVS.
pub fn swarm_stack(c: &SwarmConfig, publish_mode: &str, uploads: &str) -> String {
    let port = c.app_port.to_string();
    let replicas = c.replicas.to_string();
    let image = swarm_image(c.image_tag);
    let database_url = |name: &str| {
        format!(
            "mysql://{}/{name}?ssl-mode=verify_identity&ssl-ca=/etc/bookstore/rds-ca.pem",
            c.db_endpoint
        )
    };
    if c.services == Services::Split {
        let mut values: Vec<(String, String)> = vec![
            ("image".into(), image),
            ("uploads".into(), uploads.into()),
            ("publish_mode".into(), publish_mode.into()),
        ];
        for s in AppService::ALL {
            let name = s.as_str();
            values.extend([
                (format!("{name}_port"), s.port_from(c.app_port).to_string()),
                (
                    format!("{name}_internal"),
                    s.internal_port_from(c.app_port).to_string(),
                ),
                (
                    format!("{name}_database_url"),
                    database_url(&format!("bookstore_{name}")),
                ),
                (
                    format!("{name}_replicas"),
                    c.service_replicas
                        .get(&s)
                        .copied()
                        .unwrap_or(c.replicas)
                        .to_string(),
                ),
            ]);
        }
        let values: Vec<(&str, Value)> = values
            .iter()
            .map(|(k, v)| (k.as_str(), Value::Raw(v)))
            .collect();
        return render(SWARM_STACK_SPLIT, &values);
    }
    let (database_url, secret_file) = if c.db_endpoint.is_empty() {
        ("sqlite:///data/bookstore.db?mode=rwc".to_string(), "")
    } else {
        (database_url("bookstore"), "/run/secrets/db.json")
    };
    render(
        SWARM_STACK,
        &[
            ("image", Value::Raw(&image)),
            ("app_port", Value::Raw(&port)),
            ("database_url", Value::Raw(&database_url)),
            ("db_secret_file", Value::Raw(secret_file)),
            ("uploads", Value::Raw(uploads)),
            ("publish_mode", Value::Raw(publish_mode)),
            ("replicas", Value::Raw(&replicas)),
            ("secret_name", Value::Raw(SWARM_DB_SECRET)),
        ],
    )
}

/// A swarm node's user-data: its settings and, for the leader to deploy, the stack file.
pub fn swarm_user_data(c: &SwarmConfig) -> String {
    let stack = swarm_stack(c, "ingress", "/mnt/efs/uploads");
    let master_url = match c.services {
        Services::Split => format!(
            "mysql://{}/bookstore?ssl-mode=verify_identity&ssl-ca=/etc/bookstore/rds-ca.pem",
            c.db_endpoint
        ),
        Services::Single => String::new(),
    };
    render(
        SWARM_USER_DATA,
        &[
            ("node", Value::Shell(c.node)),
            ("key", Value::Shell(c.key)),
            ("region", Value::Shell(c.region)),
            ("tokens_secret_arn", Value::Shell(c.tokens_secret_arn)),
            ("release_secret_arn", Value::Shell(c.release_secret_arn)),
            ("status_secret_arn", Value::Shell(c.status_secret_arn)),
            ("db_secret_arn", Value::Shell(c.db_secret_arn)),
            ("secret_name", Value::Shell(SWARM_DB_SECRET)),
            ("file_system_id", Value::Shell(c.file_system_id)),
            (
                "split_services",
                Value::Shell(&split_services(c.services, c.app_port)),
            ),
            ("database_url", Value::Shell(&master_url)),
            ("stack", Value::File(&stack)),
        ],
    )
}

pub const EKS_UPLOADS: &str = include_str!("../templates/eks/uploads.sh");

/// An eks node's user data: one MIME part, the covers directory's script, which EKS's nodeadm
/// runs beside its own configuration. Plain text (nodeadm reads the MIME itself).
pub fn eks_node_user_data(efs_server: &str) -> String {
    let script = render(EKS_UPLOADS, &[("efs", Value::Shell(efs_server))]);
    format!(
        "MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=\"BOOKSTORE\"\n\n--BOOKSTORE\nContent-Type: text/x-shellscript; charset=\"us-ascii\"\n\n{script}\n--BOOKSTORE--\n"
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn alb_patterns_become_nginx_locations() {
        assert_eq!(nginx_location("/login"), "= /login");
        assert_eq!(nginx_location("/admin/*"), "^~ /admin/");
        assert_eq!(nginx_location("/books/*/buy"), "~ ^/books/.*/buy$");
        assert_eq!(nginx_location("/a.b?"), "~ ^/a\\.b.$");
        let routes = nginx_routes(Services::Split);
        assert!(routes.starts_with("accounts|= /register;"), "{routes}");
        assert!(
            routes.ends_with(";orders|~ ^/books/.*/buy$;catalog|/"),
            "{routes}"
        );
        assert_eq!(nginx_routes(Services::Single), "");
    }

    use super::*;

    #[test]
    fn values_are_quoted_for_the_shell() {
        assert_eq!(shell_quote("a b"), "'a b'");
        assert_eq!(shell_quote("it's"), r"'it'\''s'");
        let url = "https://b.s3.amazonaws.com/k?X-Amz-Signature=abc&X-Amz-Date=1";
        let script = bake_script(Recipe::Asg, url, "00ff", "binary");
        assert!(script.contains(&format!("artifact_url='{url}'")));
        assert!(script.contains("[Service]"), "the unit is inside");
    }
}
