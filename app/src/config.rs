//! Configuration from environment variables, with defaults that need none: 127.0.0.1:8080 and
//! SQLite in ./data.

use std::net::SocketAddr;
use std::path::PathBuf;

#[derive(Debug, Clone)]
pub struct Config {
    pub addr: SocketAddr,
    pub database_url: String,
    pub uploads_dir: PathBuf,
    /// This e-mail is an admin when it registers (besides the first user).
    pub admin_email: Option<String>,
    pub order_timeout_secs: i64,
    pub max_upload_bytes: usize,
    pub db_connections: u32,
}

fn var(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

impl Config {
    pub fn from_env() -> Result<Config, String> {
        let data_dir = PathBuf::from(var("BOOKSTORE_DATA_DIR").unwrap_or_else(|| "data".into()));
        let addr = var("BOOKSTORE_ADDR").unwrap_or_else(|| "127.0.0.1:8080".into());
        let addr = addr
            .parse()
            .map_err(|_| format!("BOOKSTORE_ADDR `{addr}` is not host:port"))?;
        let mut database_url = var("DATABASE_URL")
            .unwrap_or_else(|| format!("sqlite://{}/bookstore.db?mode=rwc", data_dir.display()));
        if database_url.starts_with("mysql://") {
            if let Some(secret) = db_secret()? {
                database_url = with_credentials(&database_url, &secret.0, &secret.1)?;
            }
        } else if !database_url.starts_with("sqlite:") {
            return Err("DATABASE_URL must start with sqlite: or mysql://".into());
        }
        let number =
            |name: &str, default: i64| -> Result<i64, String> {
                match var(name) {
                    None => Ok(default),
                    Some(v) => v.parse().ok().filter(|n: &i64| *n > 0).ok_or_else(|| {
                        format!("{name} must be a positive whole number, not `{v}`")
                    }),
                }
            };
        Ok(Config {
            addr,
            database_url,
            uploads_dir: var("BOOKSTORE_UPLOADS_DIR")
                .map(PathBuf::from)
                .unwrap_or_else(|| data_dir.join("uploads")),
            admin_email: var("BOOKSTORE_ADMIN_EMAIL").map(|e| e.to_lowercase()),
            order_timeout_secs: number("BOOKSTORE_ORDER_TIMEOUT_SECS", 900)?,
            max_upload_bytes: number("BOOKSTORE_MAX_UPLOAD_BYTES", 2 * 1024 * 1024)? as usize,
            db_connections: number("BOOKSTORE_DB_CONNECTIONS", 8)? as u32,
        })
    }
}

/// The database credentials from an AWS Secrets Manager JSON secret (`{"username", "password"}`),
/// as RDS's managed master password stores them: from BOOKSTORE_DB_SECRET_FILE or BOOKSTORE_DB_SECRET.
fn db_secret() -> Result<Option<(String, String)>, String> {
    let text = match (var("BOOKSTORE_DB_SECRET_FILE"), var("BOOKSTORE_DB_SECRET")) {
        (Some(path), _) => std::fs::read_to_string(&path)
            .map_err(|e| format!("cannot read BOOKSTORE_DB_SECRET_FILE {path}: {e}"))?,
        (None, Some(json)) => json,
        (None, None) => return Ok(None),
    };
    let v: serde_json::Value =
        serde_json::from_str(&text).map_err(|_| "the database secret is not JSON".to_string())?;
    let field = |k: &str| {
        v.get(k)
            .and_then(|x| x.as_str())
            .map(str::to_string)
            .ok_or_else(|| format!("the database secret has no `{k}`"))
    };
    Ok(Some((field("username")?, field("password")?)))
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
