//! The database: one `AnyPool` for SQLite (embedded default) or MySQL/MariaDB (production), the
//! schema migrations for both, run at start-up under a lock so replicas starting together do not
//! race, and the few places where the two engines differ.

use std::time::Duration;

use sqlx::any::{AnyPoolOptions, AnyRow};
use sqlx::{AnyPool, Executor, Row};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Engine {
    Sqlite,
    Mysql,
}

#[derive(Clone)]
pub struct Db {
    pub pool: AnyPool,
    pub engine: Engine,
}

/// Migrations in order; each engine has its own dialect of the same schema.
const MIGRATIONS: &[(i64, &str, &str)] = &[(
    1,
    include_str!("../migrations/sqlite.sql"),
    include_str!("../migrations/mysql.sql"),
)];

pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

impl Db {
    pub async fn connect(url: &str, max_connections: u32) -> Result<Db, sqlx::Error> {
        sqlx::any::install_default_drivers();
        let engine = if url.starts_with("sqlite:") {
            Engine::Sqlite
        } else {
            Engine::Mysql
        };
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
            // WAL lets readers run beside the writer; it is a property of the file, set once.
            sqlx::query("PRAGMA journal_mode = WAL")
                .execute(&pool)
                .await?;
        }
        Ok(Db { pool, engine })
    }

    /// Applies the migrations not applied yet. Replicas starting at the same time serialize on a
    /// lock: MySQL's named lock, or SQLite's write lock (BEGIN IMMEDIATE).
    pub async fn migrate(&self) -> Result<(), sqlx::Error> {
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
        let result = self.apply(&mut conn).await;
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

    async fn apply(&self, conn: &mut sqlx::AnyConnection) -> Result<(), sqlx::Error> {
        conn.execute("CREATE TABLE IF NOT EXISTS schema_migrations (version BIGINT PRIMARY KEY, applied_at BIGINT NOT NULL)").await?;
        let applied: Vec<i64> = sqlx::query("SELECT version FROM schema_migrations")
            .fetch_all(&mut *conn)
            .await?
            .iter()
            .map(|r| r.get::<i64, _>(0))
            .collect();
        for (version, sqlite, mysql) in MIGRATIONS {
            if applied.contains(version) {
                continue;
            }
            let script = if self.engine == Engine::Sqlite {
                sqlite
            } else {
                mysql
            };
            for statement in statements(script) {
                conn.execute(sqlx::AssertSqlSafe(statement)).await?;
            }
            sqlx::query("INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)")
                .bind(version)
                .bind(now())
                .execute(&mut *conn)
                .await?;
            tracing::info!(version, "applied schema migration");
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
