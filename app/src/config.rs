//! The command line and the configuration: every flag has an environment variable (the stacks set
//! those), and defaults that need none: 127.0.0.1:8080 and SQLite in ./data.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

#[derive(Parser, Debug)]
#[command(
    name = "bookstore-app",
    version,
    about = "The BookStore: a second-hand book marketplace",
    after_help = "Without a command, `serve` runs. Every flag can also be set by the environment variable shown."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    #[command(flatten)]
    pub settings: Settings,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run the BookStore (the default).
    Serve,
    /// Exit 0 when the server on --addr answers /healthz with 200, else 1 (a probe for containers
    /// and load balancers, where the image has no shell or curl).
    Healthcheck {
        /// This process only (its database), not the services it calls: a container's liveness,
        /// where the split's services would otherwise wait on each other's health forever.
        #[arg(long)]
        own: bool,
    },
    /// Grant, revoke or list administrators, on the configured database.
    Admin {
        #[command(subcommand)]
        action: AdminAction,
    },
    /// Print a new Ed25519 key (base64 PKCS#8) for --identity-key-file: the split's accounts
    /// service signs identity tokens with it. Keep it secret, like a password.
    IdentityKey,
    /// On a machine that runs the split's services against one MySQL server: make each service's
    /// database and user with the master credentials (DATABASE_URL, BOOKSTORE_DB_SECRET_FILE) and
    /// write their credentials and keys into --split-dir, all derived from the master password.
    /// Does nothing without --split-dir (a single-process machine).
    SplitSetup {
        #[arg(long, env = "BOOKSTORE_SPLIT_DIR")]
        split_dir: Option<PathBuf>,
        /// Only the databases and users, no file (the eks stack: the CLI makes the Secrets).
        #[arg(long, conflicts_with = "split_dir")]
        users_only: bool,
    },
}

#[derive(Subcommand, Debug)]
pub enum AdminAction {
    /// Make this registered account an administrator.
    Grant { email: String },
    /// Take administration away from this account.
    Revoke { email: String },
    /// Print the administrators.
    List,
}

/// Which part of the BookStore a process serves: all of it, or one service of the split.
#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum Service {
    All,
    Accounts,
    Catalog,
    Orders,
}

impl Service {
    /// The service of the split that serves this path (the load balancer's path rules say the
    /// same): accounts the log-in pages and administration, orders buying, orders and sales,
    /// catalog everything else (the catalog, selling, covers, the home page, static files).
    pub fn serving(path: &str) -> Service {
        match crate::routing::service_of(path) {
            "accounts" => Service::Accounts,
            "orders" => Service::Orders,
            _ => Service::Catalog,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Service::All => "all",
            Service::Accounts => "accounts",
            Service::Catalog => "catalog",
            Service::Orders => "orders",
        }
    }
}

#[derive(Args, Debug, Clone)]
pub struct Settings {
    /// Serve everything (one process), or one service of the split, with its own database.
    #[arg(long, env = "BOOKSTORE_SERVICE", value_enum, default_value_t = Service::All, global = true)]
    pub service: Service,
    /// A split service's internal API (the other services call it; never route the internet to it).
    #[arg(long, env = "BOOKSTORE_INTERNAL_ADDR", global = true)]
    pub internal_addr: Option<SocketAddr>,
    /// The accounts service's internal API, http://HOST:PORT (catalog and orders need it).
    #[arg(long, env = "BOOKSTORE_ACCOUNTS_URL", global = true)]
    pub accounts_url: Option<String>,
    /// The catalog service's internal API, http://HOST:PORT (orders needs it).
    #[arg(long, env = "BOOKSTORE_CATALOG_URL", global = true)]
    pub catalog_url: Option<String>,
    /// The orders service's internal API, http://HOST:PORT (catalog needs it).
    #[arg(long, env = "BOOKSTORE_ORDERS_URL", global = true)]
    pub orders_url: Option<String>,
    /// A file with the key the services show each other (the same file on every service).
    #[arg(long, env = "BOOKSTORE_INTERNAL_KEY_FILE", global = true)]
    pub internal_key_file: Option<PathBuf>,
    /// accounts: a file of Ed25519 keys (PKCS#8, base64, one per line) that sign identity tokens;
    /// the first signs, all verify (add the new key first, drop the old one a token lifetime later).
    #[arg(long, env = "BOOKSTORE_IDENTITY_KEY_FILE", global = true)]
    pub identity_key_file: Option<PathBuf>,
    /// An identity token is good for this many seconds; then the service asks accounts again.
    #[arg(long, env = "BOOKSTORE_IDENTITY_SECS", default_value_t = 300, value_parser = clap::value_parser!(i64).range(10..=3600), global = true)]
    pub identity_secs: i64,
    /// Catalog and orders ask accounts for the sessions ended (logouts) this often.
    #[arg(long, env = "BOOKSTORE_REVOCATION_POLL_SECS", default_value_t = 2, value_parser = clap::value_parser!(u64).range(1..=60), global = true)]
    pub revocation_poll_secs: u64,
    /// Listen address.
    #[arg(
        long,
        env = "BOOKSTORE_ADDR",
        default_value = "127.0.0.1:8080",
        global = true
    )]
    pub addr: SocketAddr,
    /// Where the SQLite file and (by default) uploads live.
    #[arg(
        long,
        env = "BOOKSTORE_DATA_DIR",
        default_value = "data",
        global = true
    )]
    pub data_dir: PathBuf,
    /// sqlite://PATH or mysql://host:port/db (credentials from the secret; a password here shows in `ps`)
    /// [default: sqlite://<data dir>/bookstore.db?mode=rwc]
    #[arg(long, env = "DATABASE_URL", hide_env_values = true, global = true)]
    pub database_url: Option<String>,
    /// A file holding the AWS Secrets Manager JSON secret {"username", "password"} for a mysql:// URL;
    /// watched: when it changes (a rotation), new connections use the new credentials.
    #[arg(long, env = "BOOKSTORE_DB_SECRET_FILE", global = true)]
    pub db_secret_file: Option<PathBuf>,
    /// The same secret's JSON text itself.
    #[arg(
        long,
        env = "BOOKSTORE_DB_SECRET",
        hide_env_values = true,
        global = true
    )]
    pub db_secret: Option<String>,
    /// Where covers are stored [default: <data dir>/uploads].
    #[arg(long, env = "BOOKSTORE_UPLOADS_DIR", global = true)]
    pub uploads_dir: Option<PathBuf>,
    /// This account may become an administrator with the one-time setup token the server logs.
    #[arg(long, env = "BOOKSTORE_ADMIN_EMAIL", global = true)]
    pub admin_email: Option<String>,
    /// Proxies in front of the app that append the client's address to X-Forwarded-For: 1 behind
    /// the load balancer or the monolith's nginx, 0 when clients connect directly.
    #[arg(
        long,
        env = "BOOKSTORE_TRUSTED_PROXIES",
        default_value_t = 0,
        global = true
    )]
    pub trusted_proxies: usize,
    /// An unpaid order gives its copies back after this many seconds.
    #[arg(long, env = "BOOKSTORE_ORDER_TIMEOUT_SECS", default_value_t = 900, value_parser = clap::value_parser!(i64).range(1..), global = true)]
    pub order_timeout_secs: i64,
    /// Copies of one book a buyer may hold in unpaid orders at once.
    #[arg(long, env = "BOOKSTORE_MAX_PENDING_COPIES", default_value_t = 10, value_parser = clap::value_parser!(i64).range(1..), global = true)]
    pub max_pending_copies: i64,
    /// Cover size limit in bytes.
    #[arg(long, env = "BOOKSTORE_MAX_UPLOAD_BYTES", default_value_t = 2 * 1024 * 1024, global = true)]
    pub max_upload_bytes: usize,
    /// Database pool size.
    #[arg(long, env = "BOOKSTORE_DB_CONNECTIONS", default_value_t = 8, value_parser = clap::value_parser!(u32).range(1..), global = true)]
    pub db_connections: u32,
    /// Password hashes computed at once (each holds 19 MiB) [default: the number of cores].
    #[arg(long, env = "BOOKSTORE_HASH_WORKERS", global = true)]
    pub hash_workers: Option<usize>,
    /// Threads serving requests, each with its own event loop [default: the number of cores].
    #[arg(long, env = "BOOKSTORE_THREADS", global = true)]
    pub threads: Option<usize>,
    /// Requests served at once; more get 503 at once instead of queueing without bound.
    #[arg(
        long,
        env = "BOOKSTORE_MAX_REQUESTS",
        default_value_t = 1024,
        global = true
    )]
    pub max_requests: usize,
    /// A request still unanswered after this many seconds gets 503.
    #[arg(
        long,
        env = "BOOKSTORE_REQUEST_TIMEOUT_SECS",
        default_value_t = 30,
        global = true
    )]
    pub request_timeout_secs: u64,
    /// Seconds between sweeps (expired orders released, expired rows purged).
    #[arg(long, env = "BOOKSTORE_SWEEP_SECS", default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..), global = true)]
    pub sweep_secs: u64,
    /// A cover file no listing names is removed once older than this many seconds.
    #[arg(
        long,
        env = "BOOKSTORE_COVER_GRACE_SECS",
        default_value_t = 3600,
        global = true
    )]
    pub cover_grace_secs: u64,
}

/// A split service's place among the others.
#[derive(Clone)]
pub struct Split {
    pub service: Service,
    pub internal_addr: SocketAddr,
    /// The peers' internal APIs (host:port), those this service calls.
    pub accounts: Option<String>,
    pub catalog: Option<String>,
    pub orders: Option<String>,
    /// What every internal request carries, and every internal API checks.
    pub internal_key: String,
    /// accounts only: the signing keys' PKCS#8 documents, the first signs.
    pub identity_keys: Vec<Vec<u8>>,
    pub identity_secs: i64,
    pub revocation_poll_secs: u64,
}

impl std::fmt::Debug for Split {
    // The keys stay out of any log.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Split")
            .field("service", &self.service)
            .field("internal_addr", &self.internal_addr)
            .field("accounts", &self.accounts)
            .field("catalog", &self.catalog)
            .field("orders", &self.orders)
            .finish_non_exhaustive()
    }
}

/// The validated configuration the server runs with.
#[derive(Debug, Clone)]
pub struct Config {
    /// None: everything in this process.
    pub split: Option<Split>,
    pub addr: SocketAddr,
    pub database_url: String,
    /// Where the credentials came from, to read again after a rotation.
    pub db_secret_file: Option<PathBuf>,
    pub uploads_dir: PathBuf,
    pub admin_email: Option<String>,
    pub trusted_proxies: usize,
    pub order_timeout_secs: i64,
    pub max_pending_copies: i64,
    pub max_upload_bytes: usize,
    pub db_connections: u32,
    pub hash_workers: usize,
    pub threads: usize,
    pub max_requests: usize,
    pub request_timeout_secs: u64,
    pub sweep_secs: u64,
    pub cover_grace_secs: u64,
}

fn non_empty(v: &Option<String>) -> Option<&str> {
    v.as_deref().map(str::trim).filter(|v| !v.is_empty())
}

impl Config {
    pub fn from_settings(s: &Settings) -> Result<Config, String> {
        let mut database_url = non_empty(&s.database_url).map_or_else(
            || format!("sqlite://{}/bookstore.db?mode=rwc", s.data_dir.display()),
            str::to_string,
        );
        let db_secret_file = s
            .db_secret_file
            .clone()
            .filter(|p| !p.as_os_str().is_empty());
        if database_url.starts_with("mysql://") {
            let text = match (&db_secret_file, non_empty(&s.db_secret)) {
                (Some(path), _) => Some(read_secret_file(path)?),
                (None, Some(json)) => Some(json.to_string()),
                (None, None) => None,
            };
            if let Some(text) = text {
                let (user, password) = parse_secret(&text)?;
                database_url = with_credentials(&database_url, &user, &password)?;
            }
        } else if !database_url.starts_with("sqlite:") {
            return Err("DATABASE_URL (--database-url) must start with sqlite: or mysql://".into());
        }
        if s.max_requests == 0
            || s.request_timeout_secs == 0
            || s.hash_workers == Some(0)
            || s.threads == Some(0)
        {
            return Err(
                "--max-requests, --request-timeout-secs, --hash-workers and --threads must be above 0"
                    .into(),
            );
        }
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        let split = split(s)?;
        Ok(Config {
            split,
            addr: s.addr,
            database_url,
            db_secret_file,
            uploads_dir: s
                .uploads_dir
                .clone()
                .filter(|p| !p.as_os_str().is_empty())
                .unwrap_or_else(|| s.data_dir.join("uploads")),
            admin_email: non_empty(&s.admin_email).map(str::to_lowercase),
            trusted_proxies: s.trusted_proxies,
            order_timeout_secs: s.order_timeout_secs,
            max_pending_copies: s.max_pending_copies,
            max_upload_bytes: s.max_upload_bytes,
            db_connections: s.db_connections,
            hash_workers: s.hash_workers.unwrap_or(cores),
            threads: s.threads.unwrap_or(cores),
            max_requests: s.max_requests,
            request_timeout_secs: s.request_timeout_secs,
            sweep_secs: s.sweep_secs,
            cover_grace_secs: s.cover_grace_secs,
        })
    }

    /// The MySQL URL with the credentials the secret file holds now (after a rotation).
    pub fn reread_credentials(&self) -> Result<Option<String>, String> {
        let Some(path) = &self.db_secret_file else {
            return Ok(None);
        };
        let (user, password) = parse_secret(&read_secret_file(path)?)?;
        with_credentials(&self.database_url, &user, &password).map(Some)
    }
}

/// The split's settings, checked: each service names the peers it calls, the internal key, and
/// (accounts) its signing keys. Errors name the flag and its variable.
fn split(s: &Settings) -> Result<Option<Split>, String> {
    let service = s.service;
    if service == Service::All {
        return Ok(None);
    }
    let name = service.name();
    let internal_addr = s.internal_addr.ok_or_else(|| {
        format!("--service {name} needs --internal-addr (BOOKSTORE_INTERNAL_ADDR): the address the other services call it on")
    })?;
    let peer = |v: &Option<String>,
                flag: &str,
                var: &str,
                peer: &str|
     -> Result<Option<String>, String> {
        let Some(url) = non_empty(v) else {
            return Err(format!(
                "--service {name} calls the {peer} service: give its internal API with {flag} ({var}), such as http://10.0.1.5:9000"
            ));
        };
        let host = url
            .strip_prefix("http://")
            .map(|h| h.trim_end_matches('/'))
            .filter(|h| {
                h.rsplit_once(':')
                    .is_some_and(|(_, p)| p.parse::<u16>().is_ok())
            })
            .ok_or_else(|| format!("{flag} ({var}) must be http://HOST:PORT, not {url:?}"))?;
        Ok(Some(host.to_string()))
    };
    let needs = |p: Service| match service {
        Service::Catalog => matches!(p, Service::Accounts | Service::Orders),
        Service::Orders => matches!(p, Service::Accounts | Service::Catalog),
        _ => false,
    };
    let accounts = if needs(Service::Accounts) {
        peer(
            &s.accounts_url,
            "--accounts-url",
            "BOOKSTORE_ACCOUNTS_URL",
            "accounts",
        )?
    } else {
        None
    };
    let catalog = if needs(Service::Catalog) {
        peer(
            &s.catalog_url,
            "--catalog-url",
            "BOOKSTORE_CATALOG_URL",
            "catalog",
        )?
    } else {
        None
    };
    let orders = if needs(Service::Orders) {
        peer(
            &s.orders_url,
            "--orders-url",
            "BOOKSTORE_ORDERS_URL",
            "orders",
        )?
    } else {
        None
    };
    let key_path = s.internal_key_file.as_ref().ok_or_else(|| {
        format!("--service {name} needs --internal-key-file (BOOKSTORE_INTERNAL_KEY_FILE): the key the services show each other")
    })?;
    let internal_key = std::fs::read_to_string(key_path)
        .map_err(|e| {
            format!(
                "cannot read --internal-key-file {}: {e}",
                key_path.display()
            )
        })?
        .trim()
        .to_string();
    if internal_key.len() < 32 {
        return Err(format!(
            "the internal key in {} is shorter than 32 characters: make one with `head -c 32 /dev/urandom | base64`",
            key_path.display()
        ));
    }
    let identity_keys = if service == Service::Accounts {
        let path = s.identity_key_file.as_ref().ok_or(
            "--service accounts needs --identity-key-file (BOOKSTORE_IDENTITY_KEY_FILE): the Ed25519 keys that sign identity tokens",
        )?;
        crate::accounts::token::read_keys(path)?
    } else {
        vec![]
    };
    Ok(Some(Split {
        service,
        internal_addr,
        accounts,
        catalog,
        orders,
        internal_key,
        identity_keys,
        identity_secs: s.identity_secs,
        revocation_poll_secs: s.revocation_poll_secs,
    }))
}

pub(crate) fn read_secret_file(path: &std::path::Path) -> Result<String, String> {
    std::fs::read_to_string(path).map_err(|e| {
        format!(
            "cannot read BOOKSTORE_DB_SECRET_FILE {}: {e}",
            path.display()
        )
    })
}

/// The credentials of an AWS Secrets Manager JSON secret (`{"username", "password"}`), as RDS's
/// managed master password stores them.
pub(crate) fn parse_secret(text: &str) -> Result<(String, String), String> {
    let v: serde_json::Value =
        serde_json::from_str(text).map_err(|_| "the database secret is not JSON".to_string())?;
    let field = |k: &str| {
        v.get(k)
            .and_then(|x| x.as_str())
            .map(str::to_string)
            .ok_or_else(|| format!("the database secret has no `{k}`"))
    };
    Ok((field("username")?, field("password")?))
}

/// `mysql://host/db` + user + password → `mysql://user:password@host/db`, percent-encoded.
fn with_credentials(url: &str, user: &str, password: &str) -> Result<String, String> {
    let rest = url.strip_prefix("mysql://").ok_or("not a mysql:// URL")?;
    let host = rest.rsplit_once('@').map_or(rest, |(_, h)| h);
    Ok(format!(
        "mysql://{}:{}@{host}",
        crate::web::percent_encode(user),
        crate::web::percent_encode(password)
    ))
}

#[cfg(test)]
mod tests {
    #[test]
    fn credentials_are_encoded_into_the_url() {
        let url =
            super::with_credentials("mysql://db.example:3306/shop", "admin", "p@ss:w/rd").unwrap();
        assert_eq!(url, "mysql://admin:p%40ss%3Aw%2Frd@db.example:3306/shop");
    }
}
