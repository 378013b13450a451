//! `bookstore-app split-setup`: on a machine that runs the split's three services against one
//! MySQL server with a master account (the asg stack's instances and RDS), makes each service's
//! database and user, and writes what the services read: each one's credentials, the internal key
//! they share and the key accounts signs identities with.
//!
//! The services' database passwords are derived from the master password (HMAC-SHA256, a label
//! per service), so every instance writes the same ones without storing anything new, and a
//! rotation of the master password (RDS rotates it every 7 days) rotates them: run again (the
//! secret timer does), the users get their new passwords and the files change, which the services
//! notice. The two keys must not follow a rotation (a service restarted alone would then disagree
//! with the others of its machine): they are made once, at random, by the first instance, and kept
//! in the server in `bookstore_split.split_keys`, which only the master account can read.
//! The three services of one machine run as one Unix user, so they share a trust boundary there;
//! what the split separates is the database: each user can reach its own schema only.
//!
//! Without BOOKSTORE_SPLIT_DIR (a single-process machine) it does nothing, so the secret timer
//! can run it everywhere.

use std::path::Path;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use ring::signature::{Ed25519KeyPair, KeyPair};
use sqlx::Connection as _;

use crate::config::{parse_secret, read_secret_file};
pub use crate::split_derive::{SERVICES, database_of, password_of};

/// An Ed25519 key from a seed, as the PKCS#8 v2 document `bookstore-app identity-key` prints
/// (ring's own layout: the seed, then the public key).
pub fn identity_key(seed: &[u8; 32]) -> Result<String, String> {
    let pair = Ed25519KeyPair::from_seed_unchecked(seed).map_err(|_| "cannot make a key")?;
    let mut der = hex_bytes("3053020101300506032b657004220420");
    der.extend_from_slice(seed);
    der.extend_from_slice(&hex_bytes("a123032100"));
    der.extend_from_slice(pair.public_key().as_ref());
    Ed25519KeyPair::from_pkcs8(&der).map_err(|_| "the key does not parse")?;
    Ok(STANDARD.encode(der))
}

/// 32 random bytes as hex, for a key made once.
fn random_hex() -> Result<String, String> {
    use ring::rand::SecureRandom as _;
    let mut bytes = [0u8; 32];
    ring::rand::SystemRandom::new()
        .fill(&mut bytes)
        .map_err(|_| "no randomness from the system")?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

fn hex_bytes(hex: &str) -> Vec<u8> {
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).expect("hex"))
        .collect()
}

/// Writes `text` to `path` (mode 0600) unless it already holds it: the services watch these
/// files, and an unchanged one must not look rotated. Atomic: a reader sees old or new.
fn write_if_changed(path: &Path, text: &str) -> Result<bool, String> {
    if std::fs::read_to_string(path).is_ok_and(|old| old == text) {
        return Ok(false);
    }
    let tmp = path.with_extension("tmp");
    {
        use std::io::Write as _;
        use std::os::unix::fs::OpenOptionsExt as _;
        let _ = std::fs::remove_file(&tmp);
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)
            .map_err(|e| format!("cannot write {}: {e}", tmp.display()))?;
        f.write_all(text.as_bytes())
            .map_err(|e| format!("cannot write {}: {e}", tmp.display()))?;
    }
    std::fs::rename(&tmp, path).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    Ok(true)
}

/// Makes the databases and users (idempotent) and nothing else: on the eks stack the CLI puts
/// the same derived passwords and its own keys into Kubernetes Secrets.
pub async fn users(config: &crate::Config) -> Result<String, String> {
    let (mut conn, master) = connect(config).await?;
    make_users(&mut conn, &master).await?;
    let _ = conn.close().await;
    Ok(SERVICES
        .iter()
        .map(|s| format!("ready {}\n", database_of(s)))
        .collect())
}

/// The master connection, holding the setup lock, and the master password.
async fn connect(config: &crate::Config) -> Result<(sqlx::MySqlConnection, String), String> {
    let secret_file = config.db_secret_file.as_ref().ok_or(
        "split-setup reads the master credentials from BOOKSTORE_DB_SECRET_FILE, which is not set",
    )?;
    let (_, master) = parse_secret(&read_secret_file(secret_file)?)?;
    if !config.database_url.starts_with("mysql://") {
        return Err("split-setup needs DATABASE_URL to name the MySQL server (mysql://…)".into());
    }
    let mut conn = sqlx::mysql::MySqlConnection::connect(&config.database_url)
        .await
        .map_err(|e| format!("cannot connect to the database as its master user: {e}"))?;
    // Instances booting together run this at once; one at a time keeps the grants tidy. The
    // lock goes with the connection.
    let locked: Option<i64> = sqlx::query_scalar("SELECT GET_LOCK('bookstore_split_setup', 60)")
        .fetch_one(&mut conn)
        .await
        .map_err(|e| e.to_string())?;
    if locked != Some(1) {
        return Err("another instance held the setup lock for 60 s; run again".into());
    }
    Ok((conn, master))
}

async fn make_users(conn: &mut sqlx::MySqlConnection, master: &str) -> Result<(), String> {
    for service in SERVICES {
        let name = database_of(service);
        let password = password_of(master, service);
        for sql in [
            format!("CREATE DATABASE IF NOT EXISTS `{name}` CHARACTER SET utf8mb4"),
            format!("CREATE USER IF NOT EXISTS '{name}'@'%' IDENTIFIED BY '{password}'"),
            // After a rotation of the master password, the new derived one.
            format!("ALTER USER '{name}'@'%' IDENTIFIED BY '{password}'"),
            format!("GRANT ALL PRIVILEGES ON `{name}`.* TO '{name}'@'%'"),
        ] {
            sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
                .execute(&mut *conn)
                .await
                .map_err(|e| format!("setting up {name}: {e}"))?;
        }
    }
    Ok(())
}

/// Makes the databases and users (idempotent), then writes the files into `dir`. Returns what
/// it did, one line per file written.
pub async fn run(config: &crate::Config, dir: &Path) -> Result<String, String> {
    let (mut conn, master) = connect(config).await?;
    make_users(&mut conn, &master).await?;
    // The keys: made once by whichever instance comes first, read by every other.
    for sql in [
        "CREATE DATABASE IF NOT EXISTS `bookstore_split` CHARACTER SET utf8mb4".to_string(),
        "CREATE TABLE IF NOT EXISTS `bookstore_split`.`split_keys` (name VARCHAR(32) PRIMARY KEY, value CHAR(64) NOT NULL)".to_string(),
        format!(
            "INSERT IGNORE INTO `bookstore_split`.`split_keys` (name, value) VALUES ('internal', '{}'), ('identity', '{}')",
            random_hex()?,
            random_hex()?
        ),
    ] {
        sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
            .execute(&mut conn)
            .await
            .map_err(|e| format!("keeping the split's keys: {e}"))?;
    }
    let key = |name: &'static str| {
        sqlx::query_scalar::<_, String>(
            "SELECT value FROM `bookstore_split`.`split_keys` WHERE name = ?",
        )
        .bind(name)
    };
    let internal = key("internal")
        .fetch_one(&mut conn)
        .await
        .map_err(|e| format!("reading the split's keys: {e}"))?;
    let identity_seed: [u8; 32] = hex_bytes(
        &key("identity")
            .fetch_one(&mut conn)
            .await
            .map_err(|e| format!("reading the split's keys: {e}"))?,
    )
    .try_into()
    .map_err(|_| "the identity key kept in bookstore_split is damaged")?;
    let _ = sqlx::query("SELECT RELEASE_LOCK('bookstore_split_setup')")
        .execute(&mut conn)
        .await;
    let _ = conn.close().await;

    {
        use std::os::unix::fs::DirBuilderExt as _;
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(|e| format!("cannot make {}: {e}", dir.display()))?;
    }
    let mut files = vec![
        ("internal-key".to_string(), internal),
        ("identity-key".to_string(), identity_key(&identity_seed)?),
    ];
    for service in SERVICES {
        let creds = serde_json::json!({
            "username": database_of(service),
            "password": password_of(&master, service),
        });
        files.push((format!("{service}-db.json"), creds.to_string()));
    }
    let mut report = String::new();
    for (name, text) in files {
        let changed = write_if_changed(&dir.join(&name), &text)?;
        report.push_str(&format!(
            "{} {name}\n",
            if changed { "wrote" } else { "unchanged" }
        ));
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_stable_distinct_and_follow_the_master_and_keys_parse() {
        assert_eq!(password_of("m", "catalog"), password_of("m", "catalog"));
        assert_ne!(password_of("m", "catalog"), password_of("m", "orders"));
        assert_ne!(password_of("m", "catalog"), password_of("n", "catalog"));
        assert_eq!(password_of("m", "catalog").len(), 43);
        // The shared file's own base64url is the base64 crate's.
        use base64::engine::general_purpose::URL_SAFE_NO_PAD;
        for master in ["m", "a longer master password", ""] {
            let tag = crate::split_derive::derive(master, "bookstore split database orders");
            assert_eq!(password_of(master, "orders"), URL_SAFE_NO_PAD.encode(tag));
        }
        assert_ne!(random_hex().unwrap(), random_hex().unwrap());
        let key = identity_key(&[7; 32]).unwrap();
        assert_eq!(key, identity_key(&[7; 32]).unwrap());
        assert_ne!(key, identity_key(&[8; 32]).unwrap());
        // The split's accounts service reads it as it reads a generated key.
        let der = STANDARD.decode(&key).unwrap();
        assert!(Ed25519KeyPair::from_pkcs8(&der).is_ok());
    }
}
