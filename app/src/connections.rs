//! The MySQL connections of one event loop's hot reads, kept without sqlx's pool: the pool pings
//! the server when it hands a connection out and again when it takes it back, so every read cost
//! three round trips, each one more wake-up of a server thread. Here a read is one round trip.
//!
//! A connection left idle a while may have been closed by the server (`wait_timeout`) or the
//! network: one idle longer than `IDLE_MAX` is not reused, and a read that fails on a reused
//! connection is tried once more on a new one (reads change nothing, so a retry is safe).
//!
//! Reads are made in batches (`batched`): while every connection is busy, the reads asked for
//! meanwhile wait, and the next free connection makes all those of one kind (catalog pages, book
//! pages, session lookups) in one statement — a UNION ALL of their SELECTs, each row tagged with
//! its read. Every read is still made after it was asked for (nothing is kept between requests);
//! what is shared is the server's cost per statement (a thread's wake-up, TLS, parsing, the round
//! trip), which on MariaDB is most of a page's. With a connection free, a read is made at once,
//! alone.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use sqlx::mysql::{MySql, MySqlArguments, MySqlConnectOptions, MySqlConnection, MySqlRow};
use sqlx::query::Query;
use sqlx::{ConnectOptions, Connection, Row};
use tokio::sync::{Semaphore, oneshot};

/// Idle longer than this, a connection is closed rather than trusted.
const IDLE_MAX: Duration = Duration::from_secs(300);
/// Opening a connection waits this long at most, as the pools' acquire does.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Reads in one batch at most (a statement of this many SELECTs; a catalog page's ~6 KB of rows).
const BATCH_MAX: usize = 16;

pub struct Connections {
    /// Replaced when the credentials rotate: connections opened later use them.
    options: RwLock<MySqlConnectOptions>,
    idle: Mutex<Vec<(MySqlConnection, Instant)>>,
    /// Batches at once (one connection each): at most `max` connections.
    slots: Arc<Semaphore>,
    /// Parts asked for and not yet taken by a batch.
    waiting: Mutex<Vec<Waiting>>,
    /// A batch task was started and has not taken its parts yet: the parts asked for until then
    /// are its, so no second task starts for them.
    starting: AtomicBool,
}

/// One SELECT of a batch: `select` (`SELECT` and its columns, the same for every part of a batch)
/// and `rest` (from `FROM` on, parenthesized in the UNION, so it may ORDER and LIMIT), with its
/// values in order.
pub struct Part {
    pub select: &'static str,
    pub rest: String,
    pub values: Vec<Value>,
}

/// A value to bind: owned in a `Part` (a batch outlives the request that asked), borrowed while
/// a query is built (`Value<&str>`).
pub enum Value<S = String> {
    Text(S),
    Id(i64),
}

impl Value<&str> {
    pub fn owned(&self) -> Value {
        match *self {
            Value::Text(t) => Value::Text(t.to_string()),
            Value::Id(id) => Value::Id(id),
        }
    }
}

struct Waiting {
    part: Part,
    reply: oneshot::Sender<Result<Vec<MySqlRow>, String>>,
}

impl Connections {
    /// Checks the URL and the server with one connection, kept for the first read.
    pub async fn open(url: &str, max: u32) -> Result<Connections, sqlx::Error> {
        let options: MySqlConnectOptions = url.parse()?;
        let first = options.connect().await?;
        Ok(Connections {
            options: RwLock::new(options),
            idle: Mutex::new(vec![(first, Instant::now())]),
            slots: Arc::new(Semaphore::new(max.max(1) as usize)),
            waiting: Mutex::new(Vec::new()),
            starting: AtomicBool::new(false),
        })
    }

    pub fn set_options(&self, options: MySqlConnectOptions) {
        *self.options.write().unwrap_or_else(|e| e.into_inner()) = options;
    }

    /// The rows of `part`, read alone if a connection is free, else in the next batch of its
    /// kind. Their order is the UNION's: a caller that needs an order sorts them.
    pub async fn batched(self: &Arc<Self>, part: Part) -> Result<Vec<MySqlRow>, sqlx::Error> {
        let (reply, answer) = oneshot::channel();
        self.lock_waiting().push(Waiting { part, reply });
        self.start_batch();
        match answer.await {
            Ok(rows) => rows.map_err(sqlx::Error::Protocol),
            // The batch's task ended without answering: the runtime is shutting down.
            Err(_) => Err(sqlx::Error::PoolClosed),
        }
    }

    fn lock_waiting(&self) -> std::sync::MutexGuard<'_, Vec<Waiting>> {
        self.waiting.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Starts a batch task if parts wait, a connection is free and no task is about to take them.
    /// The task takes the parts when it first runs, so the pages asked for in the same turn of the
    /// event loop share it; when it is done it starts the next batch.
    fn start_batch(self: &Arc<Self>) {
        if self.lock_waiting().is_empty() || self.starting.load(Ordering::Acquire) {
            return;
        }
        let Ok(slot) = Arc::clone(&self.slots).try_acquire_owned() else {
            return;
        };
        self.starting.store(true, Ordering::Release);
        let this = Arc::clone(self);
        tokio::spawn(async move {
            let batch = this.take_batch();
            this.starting.store(false, Ordering::Release);
            // More may wait than one batch takes: another connection may start on them.
            this.start_batch();
            if !batch.is_empty() {
                this.run(batch).await;
            }
            drop(slot);
            this.start_batch();
        });
    }

    /// The parts of the first waiting part's kind (its `select`), up to `BATCH_MAX`, ordered by
    /// their SQL so that a batch of the same pages is the same prepared statement.
    fn take_batch(&self) -> Vec<Waiting> {
        let mut waiting = self.lock_waiting();
        let Some(select) = waiting.first().map(|w| w.part.select) else {
            return Vec::new();
        };
        let mut batch = Vec::new();
        let mut i = 0;
        while i < waiting.len() && batch.len() < BATCH_MAX {
            if waiting[i].part.select == select {
                batch.push(waiting.remove(i));
            } else {
                i += 1;
            }
        }
        drop(waiting);
        batch.sort_by(|a, b| a.part.rest.cmp(&b.part.rest));
        batch
    }

    /// Reads a batch in one statement and hands each part its rows: a part's SELECT is
    /// `(<select>, <k> AS k <rest>)`, `k` its place in the batch, the last column of every row.
    async fn run(&self, batch: Vec<Waiting>) {
        let sql = batch
            .iter()
            .enumerate()
            .map(|(k, w)| format!("({}, {k} AS k {})", w.part.select, w.part.rest))
            .collect::<Vec<_>>()
            .join(" UNION ALL ");
        let rows = self
            .fetch(|| {
                let mut query = sqlx::query(sqlx::AssertSqlSafe(sql.as_str()));
                for w in &batch {
                    for value in &w.part.values {
                        query = match value {
                            Value::Text(t) => query.bind(t.as_str()),
                            Value::Id(id) => query.bind(*id),
                        };
                    }
                }
                query
            })
            .await;
        let mut parts: Vec<Vec<MySqlRow>> = batch.iter().map(|_| Vec::new()).collect();
        let rows = rows.and_then(|rows| {
            for row in rows {
                let k: i64 = row.try_get(row.len() - 1)?;
                match parts.get_mut(k as usize) {
                    Some(part) => part.push(row),
                    None => return Err(sqlx::Error::Protocol(format!("a batch row of part {k}"))),
                }
            }
            Ok(())
        });
        match rows {
            Ok(()) => {
                for (w, rows) in batch.into_iter().zip(parts) {
                    // A request that stopped waiting (its client left) no longer wants its rows.
                    let _ = w.reply.send(Ok(rows));
                }
            }
            Err(e) => {
                let e = e.to_string();
                for w in batch {
                    let _ = w.reply.send(Err(e.clone()));
                }
            }
        }
    }

    /// `build`'s rows on a connection, the caller holding a slot.
    async fn fetch<'q>(
        &self,
        build: impl Fn() -> Query<'q, MySql, MySqlArguments>,
    ) -> Result<Vec<MySqlRow>, sqlx::Error> {
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
