//! Accounts' side of every request (`ports::Identity`), in process: the session's user on the
//! hot-read connections, and users' names for pages that show them.

use std::collections::HashMap;
use std::sync::Mutex;

use sqlx::Row;

use crate::connections::Value;
use crate::db::{Db, now};
use crate::error::AppResult;
use crate::ports::{Identity, User};
use crate::reads::Reads;
use crate::web::token_hash;

/// Names by user id, as read. A name never changes once registered, so what is kept is never
/// stale; bounded, it starts over when full.
#[derive(Default)]
pub struct Names(Mutex<HashMap<i64, String>>);

const NAMES_KEPT: usize = 10_000;

impl Names {
    fn get(&self, id: i64) -> Option<String> {
        self.0.lock().ok()?.get(&id).cloned()
    }

    /// The names known of `ids`, and the ids (each once) still to read.
    pub fn split(&self, ids: &[i64]) -> (HashMap<i64, String>, Vec<i64>) {
        let mut found = HashMap::new();
        let mut missing = Vec::new();
        for &id in ids {
            match self.get(id) {
                Some(name) => {
                    found.insert(id, name);
                }
                None => missing.push(id),
            }
        }
        missing.sort_unstable();
        missing.dedup();
        (found, missing)
    }

    pub fn keep(&self, found: &HashMap<i64, String>) {
        if let Ok(mut names) = self.0.lock() {
            if names.len() + found.len() > NAMES_KEPT {
                names.clear();
            }
            names.extend(found.iter().map(|(id, n)| (*id, n.clone())));
        }
    }
}

/// Accounts in this process.
pub struct Local<'a> {
    pub db: &'a Db,
    pub names: &'a Names,
}

impl Identity for Local<'_> {
    async fn session_user(&self, token: &str) -> AppResult<Option<User>> {
        const SELECT: &str = "SELECT u.id, u.name, u.is_admin";
        const REST: &str = "FROM sessions s JOIN users u ON u.id = s.user_id WHERE s.token_hash = ? AND s.expires_at > ?";
        self.db
            .reads
            .one(
                SELECT,
                REST,
                vec![Value::Text(token_hash(token)), Value::Id(now())],
                |r| {
                    Ok(User {
                        id: r.get(0)?,
                        name: r.get(1)?,
                        is_admin: r.get::<_, i64>(2)? != 0,
                    })
                },
                |r| {
                    Ok(User {
                        id: r.try_get(0)?,
                        name: r.try_get(1)?,
                        is_admin: r.try_get::<i64, _>(2)? != 0,
                    })
                },
            )
            .await
    }

    async fn names(&self, ids: &[i64]) -> AppResult<HashMap<i64, String>> {
        let (mut found, missing) = self.names.split(ids);
        let read: HashMap<i64, String> = match missing.as_slice() {
            [] => HashMap::new(),
            // One name (a book's seller): on the hot-read connections.
            [id] => one_name(&self.db.reads, *id).await?.into_iter().collect(),
            ids => crate::db::by_ids(self.db, "SELECT id, name FROM users", ids)
                .await?
                .iter()
                .map(|r| (r.get(0), r.get(1)))
                .collect(),
        };
        self.names.keep(&read);
        found.extend(read);
        Ok(found)
    }
}

async fn one_name(reads: &Reads, id: i64) -> AppResult<Option<(i64, String)>> {
    reads
        .one(
            "SELECT u.id, u.name",
            "FROM users u WHERE u.id = ?",
            vec![Value::Id(id)],
            |r| Ok((r.get(0)?, r.get(1)?)),
            |r| Ok((r.try_get(0)?, r.try_get(1)?)),
        )
        .await
}
