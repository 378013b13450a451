//! The local journal: an append-only JSON-lines record of every resource bookstore is about to
//! create (intent, written and fsynced *before* the call), created, adopted or deleted. With the
//! ownership tags it lets `up` resume and `down` find everything after a crash, a Ctrl-C or an
//! expired token. One lock per stack and environment keeps two runs from racing.

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::error::Error;
use crate::plan::Kind;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Event {
    /// About to call Create*: if the process dies now, the tags still find what was made.
    Intent,
    Created,
    /// Found already existing with our tags and taken over.
    Adopted,
    Deleted,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Entry {
    pub ts: u64,
    pub event: Event,
    pub kind: Kind,
    pub key: String,
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
}

pub struct Journal {
    path: PathBuf,
    file: Mutex<File>,
    /// Held (flock) for the life of the run; the OS releases it if the process dies.
    _lock: File,
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

impl Journal {
    /// Opens `<state_dir>/<stack>/<env>/journal.jsonl`, taking the lock beside it.
    pub fn open(state_dir: &Path, stack: &str, env: &str, command: &str) -> Result<Journal, Error> {
        let dir = state_dir.join(stack).join(env);
        std::fs::create_dir_all(&dir).map_err(Error::io(format!(
            "cannot create the state directory {}",
            dir.display()
        )))?;
        let lock_path = dir.join("lock");
        let mut lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .read(true)
            .write(true)
            .open(&lock_path)
            .map_err(Error::io(format!("cannot open {}", lock_path.display())))?;
        if lock.try_lock().is_err() {
            let holder = std::fs::read_to_string(&lock_path).unwrap_or_default();
            return Err(Error::Locked {
                path: lock_path.display().to_string(),
                holder: holder.trim().to_string(),
                hint: "wait for the other run on this machine to finish; the lock is released when its process exits, even if it crashed".into(),
            });
        }
        lock.set_len(0).ok();
        let _ = writeln!(
            lock,
            "pid {} running `{command}` since {} (unix time)",
            std::process::id(),
            now()
        );
        let path = dir.join("journal.jsonl");
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(Error::io(format!(
                "cannot open the journal {}",
                path.display()
            )))?;
        Ok(Journal {
            path,
            file: Mutex::new(file),
            _lock: lock,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends one entry and waits until it is on disk.
    pub fn record(
        &self,
        event: Event,
        kind: Kind,
        key: &str,
        name: &str,
        id: Option<&str>,
    ) -> Result<(), Error> {
        let entry = Entry {
            ts: now(),
            event,
            kind,
            key: key.into(),
            name: name.into(),
            id: id.map(str::to_string),
        };
        let mut line = serde_json::to_string(&entry).expect("journal entries serialize");
        line.push('\n');
        let mut file = self.file.lock().expect("journal lock");
        file.write_all(line.as_bytes())
            .and_then(|()| file.sync_data())
            .map_err(Error::io(format!(
                "cannot write the journal {}",
                self.path.display()
            )))
    }

    /// Resources recorded as created or adopted and not deleted since: (kind, key, id).
    pub fn live(&self) -> Result<Vec<(Kind, String, String)>, Error> {
        let file = match File::open(&self.path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => {
                return Err(Error::io(format!(
                    "cannot read the journal {}",
                    self.path.display()
                ))(e));
            }
        };
        let mut live: BTreeMap<String, (Kind, String)> = BTreeMap::new();
        for line in BufReader::new(file).lines() {
            let line = line.map_err(Error::io(format!(
                "cannot read the journal {}",
                self.path.display()
            )))?;
            // A line cut short by a crash is skipped: the tags still find that resource.
            let Ok(entry) = serde_json::from_str::<Entry>(&line) else {
                continue;
            };
            let Some(id) = entry.id else { continue };
            match entry.event {
                Event::Created | Event::Adopted => {
                    live.insert(id, (entry.kind, entry.key));
                }
                Event::Deleted => {
                    live.remove(&id);
                }
                Event::Intent => {}
            }
        }
        Ok(live
            .into_iter()
            .map(|(id, (kind, key))| (kind, key, id))
            .collect())
    }
}
