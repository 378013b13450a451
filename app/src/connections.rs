//! The MySQL connections of one event loop's hot reads, kept without sqlx's pool: the pool pings
//! the server when it hands a connection out and again when it takes it back, so every read cost
//! three round trips, each one more wake-up of a server thread. Here a read is one round trip.
//!
//! A connection left idle a while may have been closed by the server (`wait_timeout`) or the
//! network: one idle longer than `IDLE_MAX` is not reused, and a read that fails on a reused
//! connection is tried once more on a new one (reads change nothing, so a retry is safe).

use std::sync::{Mutex, RwLock};
use std::time::{Duration, Instant};

use sqlx::mysql::{MySql, MySqlArguments, MySqlConnectOptions, MySqlConnection, MySqlRow};
use sqlx::query::Query;
use sqlx::{ConnectOptions, Connection};

/// Idle longer than this, a connection is closed rather than trusted.
const IDLE_MAX: Duration = Duration::from_secs(300);
/// Opening a connection waits this long at most, as the pools' acquire does.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

pub struct Connections {
    /// Replaced when the credentials rotate: connections opened later use them.
    options: RwLock<MySqlConnectOptions>,
    idle: Mutex<Vec<(MySqlConnection, Instant)>>,
    /// Reads at once (one connection each): at most `max` connections.
    slots: tokio::sync::Semaphore,
}

impl Connections {
    /// Checks the URL and the server with one connection, kept for the first read.
    pub async fn open(url: &str, max: u32) -> Result<Connections, sqlx::Error> {
        let options: MySqlConnectOptions = url.parse()?;
        let first = options.connect().await?;
        Ok(Connections {
            options: RwLock::new(options),
            idle: Mutex::new(vec![(first, Instant::now())]),
            slots: tokio::sync::Semaphore::new(max.max(1) as usize),
        })
    }

    pub fn set_options(&self, options: MySqlConnectOptions) {
        *self.options.write().unwrap_or_else(|e| e.into_inner()) = options;
    }

    /// Every row of the query `build` makes (again for a retry).
    pub async fn rows<'q>(
        &self,
        build: impl Fn() -> Query<'q, MySql, MySqlArguments>,
    ) -> Result<Vec<MySqlRow>, sqlx::Error> {
        let _slot = self
            .slots
            .acquire()
            .await
            .map_err(|_| sqlx::Error::PoolClosed)?;
        if let Some(mut conn) = self.reuse() {
            match build().fetch_all(&mut conn).await {
                Ok(rows) => {
                    self.put(conn);
                    return Ok(rows);
                }
                // The server may have closed it: the error is told only if a new one fails too.
                Err(e) => tracing::debug!(error = %e, "a reused MySQL connection failed: retrying"),
            }
        }
        let mut conn = self.connect().await?;
        let rows = build().fetch_all(&mut conn).await?;
        self.put(conn);
        Ok(rows)
    }

    fn reuse(&self) -> Option<MySqlConnection> {
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        while let Some((conn, since)) = idle.pop() {
            if since.elapsed() < IDLE_MAX {
                return Some(conn);
            }
            // Closing politely would wait on a server that may be gone: just drop it.
            drop(conn);
        }
        None
    }

    fn put(&self, conn: MySqlConnection) {
        self.idle
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push((conn, Instant::now()));
    }

    async fn connect(&self) -> Result<MySqlConnection, sqlx::Error> {
        let options = self
            .options
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        tokio::time::timeout(CONNECT_TIMEOUT, MySqlConnection::connect_with(&options))
            .await
            .map_err(|_| sqlx::Error::PoolTimedOut)?
    }
}
