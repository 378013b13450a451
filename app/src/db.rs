//! The database: one `AnyPool` for SQLite (embedded default) or MySQL/MariaDB (production), the
//! schema migrations for both, run at start-up under a lock so replicas starting together do not
//! race, and the few places where the two engines differ.

use std::sync::Arc;
use std::time::Duration;

use sqlx::any::{AnyPoolOptions, AnyRow};
use sqlx::{AnyPool, Executor, Row};

use crate::reads::Reads;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Engine {
    Sqlite,
    Mysql,
}

impl Engine {
    /// The engine a database URL names (the configuration admits `sqlite:` or `mysql://`).
    pub fn of(url: &str) -> Engine {
        if url.starts_with("sqlite:") {
            Engine::Sqlite
        } else {
            Engine::Mysql
        }
    }
}

#[derive(Clone)]
pub struct Db {
    /// Writes, transactions and the rare reads.
    pub pool: AnyPool,
    /// The hot reads, on each engine's own driver.
    pub reads: Arc<Reads>,
    pub engine: Engine,
}

/// The domains, each owning its tables. One database holds all three (the single process), or
/// each service has its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Domain {
    Accounts,
    Catalog,
    Orders,
}

impl Domain {
    pub const ALL: [Domain; 3] = [Domain::Accounts, Domain::Catalog, Domain::Orders];

    pub fn name(self) -> &'static str {
        match self {
            Domain::Accounts => "accounts",
            Domain::Catalog => "catalog",
            Domain::Orders => "orders",
        }
    }

    fn migrations(self) -> &'static [Migration] {
        match self {
            Domain::Accounts => crate::accounts::MIGRATIONS,
            Domain::Catalog => crate::catalog::MIGRATIONS,
            Domain::Orders => crate::orders::MIGRATIONS,
        }
    }
}

/// One step of a domain's schema, in each engine's dialect.
pub struct Migration {
    pub version: i64,
    pub sqlite: &'static str,
    pub mysql: &'static str,
}

/// Versions up to this one were made before the domains had their own: each domain has its part
/// of them. `domain_migrations` records which domain applied which version; `schema_migrations`
/// still records these shared versions as it always did, so a database made by an earlier release
/// (all parts applied, no domain rows) needs nothing.
const SHARED_UP_TO: i64 = 4;

pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

impl Db {
    pub async fn connect(url: &str, max_connections: u32) -> Result<Db, sqlx::Error> {
        sqlx::any::install_default_drivers();
        let engine = Engine::of(url);
        let options = AnyPoolOptions::new()
            .max_connections(max_connections)
            .min_connections(1)
            .acquire_timeout(Duration::from_secs(10));
        let options = if engine == Engine::Sqlite {
            // Writers queue for up to 5 s instead of failing with SQLITE_BUSY; foreign keys on.
            options.after_connect(|conn, _| {
                Box::pin(async move {
                    conn.execute("PRAGMA busy_timeout = 5000").await?;
                    conn.execute("PRAGMA foreign_keys = ON").await?;
                    conn.execute("PRAGMA synchronous = NORMAL").await?;
                    Ok(())
                })
            })
        } else {
            options
        };
        let pool = options.connect(url).await?;
        if engine == Engine::Sqlite {
            // WAL lets readers run beside the writer; it is a property of the file, set once. Only
            // the first replica sets it: switching needs the file to itself, which another replica
            // starting at the same moment may hold (SQLITE_BUSY without waiting), so ask first.
            for attempt in 1.. {
                let mode: String = sqlx::query("PRAGMA journal_mode")
                    .fetch_one(&pool)
                    .await?
                    .try_get(0)?;
                if mode.eq_ignore_ascii_case("wal") {
                    break;
                }
                match sqlx::query("PRAGMA journal_mode = WAL")
                    .execute(&pool)
                    .await
                {
                    Ok(_) => break,
                    Err(sqlx::Error::Database(e))
                        if attempt < 50 && e.message().contains("locked") =>
                    {
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                    Err(e) => return Err(e),
                }
            }
        }
        let reads = Arc::new(Reads::open(url, max_connections).await?);
        Ok(Db {
            pool,
            reads,
            engine,
        })
    }

    /// Applies the migrations of `domains` not applied yet. Replicas starting at the same time serialize on a
    /// lock: MySQL's named lock, or SQLite's write lock (BEGIN IMMEDIATE).
    pub async fn migrate(&self, domains: &[Domain]) -> Result<(), sqlx::Error> {
        let mut conn = self.pool.acquire().await?;
        match self.engine {
            Engine::Mysql => {
                let got: i64 =
                    sqlx::query("SELECT COALESCE(GET_LOCK('bookstore_migrations', 120), 0)")
                        .fetch_one(&mut *conn)
                        .await?
                        .try_get(0)?;
                if got != 1 {
                    return Err(sqlx::Error::Protocol(
                        "another replica held the migration lock for 120 s".into(),
                    ));
                }
            }
            Engine::Sqlite => {
                conn.execute("BEGIN IMMEDIATE").await?;
            }
        }
        let result = self.apply(&mut conn, domains).await;
        match self.engine {
            Engine::Mysql => {
                sqlx::query("SELECT RELEASE_LOCK('bookstore_migrations')")
                    .execute(&mut *conn)
                    .await?;
            }
            Engine::Sqlite => {
                conn.execute(if result.is_ok() { "COMMIT" } else { "ROLLBACK" })
                    .await?;
            }
        }
        result
    }

    async fn apply(
        &self,
        conn: &mut sqlx::AnyConnection,
        domains: &[Domain],
    ) -> Result<(), sqlx::Error> {
        conn.execute("CREATE TABLE IF NOT EXISTS schema_migrations (version BIGINT PRIMARY KEY, applied_at BIGINT NOT NULL)").await?;
        conn.execute("CREATE TABLE IF NOT EXISTS domain_migrations (domain VARCHAR(16) NOT NULL, version BIGINT NOT NULL, applied_at BIGINT NOT NULL, PRIMARY KEY (domain, version))").await?;
        let shared: Vec<i64> = sqlx::query("SELECT version FROM schema_migrations")
            .fetch_all(&mut *conn)
            .await?
            .iter()
            .map(|r| r.get::<i64, _>(0))
            .collect();
        let own: Vec<(String, i64)> = sqlx::query("SELECT domain, version FROM domain_migrations")
            .fetch_all(&mut *conn)
            .await?
            .iter()
            .map(|r| (r.get::<String, _>(0), r.get::<i64, _>(1)))
            .collect();
        // A shared version in `schema_migrations` with no domain's row in `domain_migrations` was
        // applied whole, by a release from before the domains.
        let applied = |domain: Domain, version: i64| {
            own.iter().any(|(d, v)| d == domain.name() && *v == version)
                || (version <= SHARED_UP_TO
                    && shared.contains(&version)
                    && !own.iter().any(|(_, v)| *v == version))
        };
        let mut recorded = shared.clone();
        // Version by version, each domain's part in the order of `domains`.
        let mut versions: Vec<i64> = domains
            .iter()
            .flat_map(|d| d.migrations().iter().map(|m| m.version))
            .collect();
        versions.sort_unstable();
        versions.dedup();
        for version in versions {
            for &domain in domains {
                let Some(m) = domain.migrations().iter().find(|m| m.version == version) else {
                    continue;
                };
                if applied(domain, version) {
                    continue;
                }
                let script = if self.engine == Engine::Sqlite {
                    m.sqlite
                } else {
                    m.mysql
                };
                for statement in statements(script) {
                    conn.execute(sqlx::AssertSqlSafe(statement)).await?;
                }
                sqlx::query(
                    "INSERT INTO domain_migrations (domain, version, applied_at) VALUES (?, ?, ?)",
                )
                .bind(domain.name())
                .bind(version)
                .bind(now())
                .execute(&mut *conn)
                .await?;
                if version <= SHARED_UP_TO && !recorded.contains(&version) {
                    sqlx::query(
                        "INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)",
                    )
                    .bind(version)
                    .bind(now())
                    .execute(&mut *conn)
                    .await?;
                    recorded.push(version);
                }
                tracing::info!(domain = domain.name(), version, "applied schema migration");
            }
        }
        Ok(())
    }
}

/// Splits a migration script into statements (`;` at the end of a line), dropping comments.
fn statements(script: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut current = String::new();
    for line in script.lines() {
        let line = line.trim_end();
        if line.trim_start().starts_with("--") || line.is_empty() {
            continue;
        }
        current.push_str(line);
        current.push('\n');
        if line.ends_with(';') {
            out.push(current.trim().trim_end_matches(';').to_string());
            current.clear();
        }
    }
    out
}

/// The id of a row just inserted with `sql` (an INSERT with `?` placeholders bound by `bind`).
/// SQLite says it through RETURNING; MySQL through LAST_INSERT_ID on the same connection.
pub async fn insert_id(
    conn: &mut sqlx::AnyConnection,
    engine: Engine,
    sql: &'static str,
    bind: impl FnOnce(
        sqlx::query::Query<'_, sqlx::Any, sqlx::any::AnyArguments>,
    ) -> sqlx::query::Query<'_, sqlx::Any, sqlx::any::AnyArguments>,
) -> Result<i64, sqlx::Error> {
    match engine {
        Engine::Sqlite => {
            let with_returning = format!("{sql} RETURNING id");
            let row: AnyRow = bind(sqlx::query(sqlx::AssertSqlSafe(with_returning)))
                .fetch_one(&mut *conn)
                .await?;
            row.try_get(0)
        }
        Engine::Mysql => {
            let done = bind(sqlx::query(sql)).execute(&mut *conn).await?;
            match done.last_insert_id() {
                Some(id) => Ok(id),
                None => sqlx::query("SELECT LAST_INSERT_ID()")
                    .fetch_one(&mut *conn)
                    .await?
                    .try_get::<i64, _>(0),
            }
        }
    }
}

impl Db {
    /// Uses `url`'s credentials for every connection opened from now on (both pools). Open
    /// connections stay: MySQL keeps a session authenticated when its password changes.
    pub fn set_url(&self, url: &str) -> Result<(), sqlx::Error> {
        use std::str::FromStr;
        self.pool
            .set_connect_options(sqlx::any::AnyConnectOptions::from_str(url)?);
        if let Reads::Mysql(connections) = &*self.reads {
            connections.set_options(sqlx::mysql::MySqlConnectOptions::from_str(url)?);
        }
        Ok(())
    }
}

/// RDS rotates its managed password (every 7 days): the host rewrites the secret file, and the app
/// picks the new credentials up within seconds, before any new connection needs them, instead of
/// failing health checks until it is replaced.
pub async fn watch_secret(db: Db, config: std::sync::Arc<crate::Config>) {
    let Some(path) = config.db_secret_file.clone() else {
        return;
    };
    let mut last = std::fs::read(&path).ok();
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        tick.tick().await;
        let now = tokio::fs::read(&path).await.ok();
        if now.is_none() || now == last {
            continue;
        }
        last = now;
        match config.reread_credentials() {
            Ok(Some(url)) => match db.set_url(&url) {
                Ok(()) => {
                    tracing::info!(file = %path.display(), "database credentials changed: new connections use them")
                }
                Err(e) => {
                    tracing::warn!(error = %e, "the new database credentials do not make a valid URL")
                }
            },
            Ok(None) => {}
            Err(e) => tracing::warn!(error = %e, "cannot read the new database secret"),
        }
    }
}

/// `select` (`SELECT … FROM table`) of the rows whose `id` is one of `ids`, each asked once: the
/// batched lookups behind the ports (titles, names), one statement for a page's worth.
pub async fn by_ids(db: &Db, select: &str, ids: &[i64]) -> Result<Vec<AnyRow>, sqlx::Error> {
    let mut ids = ids.to_vec();
    ids.sort_unstable();
    ids.dedup();
    if ids.is_empty() {
        return Ok(vec![]);
    }
    let sql = format!("{select} WHERE id IN ({})", vec!["?"; ids.len()].join(", "));
    let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
    for id in ids {
        q = q.bind(id);
    }
    q.fetch_all(&db.pool).await
}
