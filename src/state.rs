//! What bookstore keeps in the account beside an env's resources: one private, encrypted bucket per
//! account and region, `bookstore-state-<account>-<region>` (tagged `bookstore:role=state`, no
//! stack or env: no kind lists it, `down` leaves it; empty, it costs nothing). Per stack and env:
//!
//! * a lock, `locks/<stack>/<env>.json`, taken with a conditional PUT (`If-None-Match: *`) before
//!   anything is observed or created, so two CI runners on one env never both create (EC2 takes no
//!   idempotency token for a VPC). Its holder renews the lease while the run lasts; a lock whose
//!   lease ran out (a crashed or killed run) is taken over with a PUT conditional on its ETag, so
//!   one of several waiters wins; the holder deletes it at the end (conditional on its own ETag).
//! * a record, `envs/<stack>/<env>.json`: when the env was made, its expiry (`up --ttl`) and its
//!   estimated $/hour, written before the first create, so `ls` and `gc` find every env and its
//!   expiry without a journal. `down` and `gc` delete it once nothing of the env is left.

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::ServerSideEncryption;
use serde::{Deserialize, Serialize};

use crate::aws::{AwsError, Cx, ErrorClass, TAG_MANAGED_BY, bucket};
use crate::error::Error;
use crate::report::Reporter;

/// The tag that tells the state bucket from an env's buckets.
const TAG_ROLE: &str = "bookstore:role";

pub fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

pub fn bucket_name(cx: &Cx) -> String {
    let account = cx.account.get().map(String::as_str).unwrap_or("unknown");
    format!("bookstore-state-{account}-{}", cx.region)
}

fn lock_key(stack: &str, env: &str) -> String {
    format!("locks/{stack}/{env}.json")
}

fn record_key(stack: &str, env: &str) -> String {
    format!("envs/{stack}/{env}.json")
}

/// Creates the state bucket the first time this account and region need it.
async fn ensure_bucket(cx: &Cx) -> Result<(), AwsError> {
    let name = bucket_name(cx);
    match cx.s3.head_bucket().bucket(&name).send().await {
        Ok(_) => return Ok(()),
        Err(e) => {
            let e = AwsError::from(e);
            if e.class != ErrorClass::NotFound {
                return Err(e);
            }
        }
    }
    bucket::create_bucket(cx, &name).await?;
    let tags = vec![
        (TAG_MANAGED_BY.to_string(), "bookstore".to_string()),
        (TAG_ROLE.to_string(), "state".to_string()),
        ("Name".to_string(), name.clone()),
    ];
    bucket::make_private(cx, &name, tags).await
}

/// Did S3 refuse a conditional write because its condition failed (or raced another one)?
fn condition_failed(e: &AwsError) -> bool {
    matches!(
        e.code.as_deref(),
        Some("PreconditionFailed" | "ConditionalRequestConflict")
    ) || e.message.contains("412")
}

fn no_bucket(e: &AwsError) -> bool {
    e.code.as_deref() == Some("NoSuchBucket")
}

/// An object's body and ETag, or `None` when there is none.
async fn get(cx: &Cx, key: &str) -> Result<Option<(Vec<u8>, String)>, AwsError> {
    match cx
        .s3
        .get_object()
        .bucket(bucket_name(cx))
        .key(key)
        .send()
        .await
    {
        Ok(out) => {
            let etag = out.e_tag().unwrap_or_default().to_string();
            let body = out
                .body
                .collect()
                .await
                .map_err(|e| AwsError::other(format!("reading s3 object {key}: {e}")))?;
            Ok(Some((body.to_vec(), etag)))
        }
        Err(e) => {
            let e = AwsError::from(e);
            if e.class == ErrorClass::NotFound {
                Ok(None)
            } else {
                Err(e)
            }
        }
    }
}

enum Condition<'a> {
    Absent,
    Etag(&'a str),
    None,
}

/// PUT with a condition; the new ETag.
async fn put(cx: &Cx, key: &str, body: Vec<u8>, when: Condition<'_>) -> Result<String, AwsError> {
    let mut request = cx
        .s3
        .put_object()
        .bucket(bucket_name(cx))
        .key(key)
        .content_type("application/json")
        .server_side_encryption(ServerSideEncryption::Aes256)
        .body(ByteStream::from(body));
    request = match when {
        Condition::Absent => request.if_none_match("*"),
        Condition::Etag(etag) => request.if_match(etag),
        Condition::None => request,
    };
    let out = request.send().await?;
    Ok(out.e_tag().unwrap_or_default().to_string())
}

/// What a lock object says about its holder.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Holder {
    pub holder: String,
    pub command: String,
    pub since: u64,
    pub expires: u64,
    /// Unique per run: two runs never write the same bytes (so never the same ETag).
    pub token: String,
    /// `<host>:<state directory>` of the holder. A run that holds the local lock of that same
    /// directory knows the holder is dead (killed, or its token expired before it could release):
    /// it takes over at once instead of waiting out the lease.
    #[serde(default)]
    pub place: String,
}

impl Holder {
    fn describe(&self) -> String {
        let now = now();
        format!(
            "{} running `{}` for {}s (lease {})",
            self.holder,
            self.command,
            now.saturating_sub(self.since),
            if self.expires > now {
                format!("renewed, ends in {}s", self.expires - now)
            } else {
                format!("ran out {}s ago", now - self.expires)
            }
        )
    }
}

fn lease() -> Duration {
    // BOOKSTORE_LOCK_LEASE_SECS: the tests shorten it to see an expired lock taken over.
    let secs = std::env::var("BOOKSTORE_LOCK_LEASE_SECS")
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
        .filter(|s| *s >= 1)
        .unwrap_or(600);
    Duration::from_secs(secs)
}

fn hostname() -> String {
    std::env::var("HOSTNAME")
        .or_else(|_| std::env::var("COMPUTERNAME"))
        .ok()
        .or_else(|| std::fs::read_to_string("/etc/hostname").ok())
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "unknown-host".into())
}

/// The env's lock, held until `release` (or until its lease runs out if this process dies).
pub struct Lock {
    cx: Arc<Cx>,
    key: String,
    /// This run's token in the lock object.
    token: String,
    etag: Arc<Mutex<String>>,
    renew: tokio::task::JoinHandle<()>,
    lost: tokio::sync::watch::Receiver<Option<String>>,
}

/// Takes the lock of `stack`/`env`, waiting up to `wait` for another holder. `here` is the
/// directory whose local lock this process holds (its journal's).
pub async fn lock(
    cx: &Arc<Cx>,
    (stack, env): (&str, &str),
    here: &std::path::Path,
    command: &str,
    wait: Duration,
    report: &Reporter,
) -> Result<Lock, Error> {
    let here = std::fs::canonicalize(here).unwrap_or_else(|_| here.to_path_buf());
    let host = hostname();
    let place = format!("{host}:{}", here.display());
    let key = lock_key(stack, env);
    let url = format!("s3://{}/{key}", bucket_name(cx));
    let aws =
        |e: AwsError| crate::engine::aws_error(&e, "taking", &format!("the lock {url}"), command);
    let started_at = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let me = Holder {
        holder: format!("{host} pid {}", std::process::id()),
        command: command.to_string(),
        since: started_at.as_secs(),
        expires: started_at.as_secs() + lease().as_secs(),
        token: format!(
            "{}-{}-{}",
            std::process::id(),
            started_at.as_secs(),
            started_at.subsec_nanos()
        ),
        place: place.clone(),
    };
    let started = std::time::Instant::now();
    let mut said = None::<std::time::Instant>;
    loop {
        let body = serde_json::to_vec(&me).expect("lock json");
        match put(cx, &key, body.clone(), Condition::Absent).await {
            Ok(etag) => return Ok(Lock::hold(cx, key, etag, me)),
            Err(e) if no_bucket(&e) => {
                ensure_bucket(cx).await.map_err(aws)?;
                continue;
            }
            Err(e) if condition_failed(&e) => {}
            Err(e) => return Err(aws(e)),
        }
        // Someone holds it: take it over if its lease ran out, else wait or give up.
        let Some((held, etag)) = get(cx, &key).await.map_err(aws)? else {
            continue; // released in between
        };
        let holder: Option<Holder> = serde_json::from_slice(&held).ok();
        let expired = holder.as_ref().is_none_or(|h| h.expires < now());
        let dead = holder.as_ref().is_some_and(|h| h.place == place);
        if expired || dead {
            match put(cx, &key, body, Condition::Etag(&etag)).await {
                Ok(new) => {
                    report.warn(&format!(
                        "took over the lock {url} ({}): {}",
                        if dead {
                            "its holder ran from this directory and is gone"
                        } else {
                            "its lease ran out"
                        },
                        holder.map_or("it was unreadable".into(), |h| h.describe())
                    ));
                    return Ok(Lock::hold(cx, key, new, me));
                }
                Err(e) if condition_failed(&e) || e.class == ErrorClass::NotFound => continue,
                Err(e) => return Err(aws(e)),
            }
        }
        let holder = holder.map_or_else(String::new, |h| h.describe());
        if started.elapsed() >= wait {
            return Err(Error::Locked {
                path: url,
                holder,
                hint: if wait.is_zero() {
                    "wait for the other run to finish, or pass --lock-wait 30m to queue behind it; a crashed run's lock is taken over once its lease (10 min) runs out".into()
                } else {
                    format!(
                        "the other run still holds it after --lock-wait {}s; run again later, or wait longer",
                        wait.as_secs()
                    )
                },
            });
        }
        if said.is_none_or(|t| t.elapsed() >= Duration::from_secs(10)) {
            report.info(&format!(
                "waiting for the lock {url} ({}s of {}s): {holder}",
                started.elapsed().as_secs(),
                wait.as_secs()
            ));
            said = Some(std::time::Instant::now());
        }
        let left = wait.saturating_sub(started.elapsed());
        tokio::time::sleep(left.min(Duration::from_secs(2))).await;
    }
}

impl Lock {
    fn hold(cx: &Arc<Cx>, key: String, etag: String, me: Holder) -> Lock {
        let token = me.token.clone();
        let etag = Arc::new(Mutex::new(etag));
        let (tx, lost) = tokio::sync::watch::channel(None);
        let renew = {
            let (cx, key, etag) = (Arc::clone(cx), key.clone(), Arc::clone(&etag));
            tokio::spawn(async move {
                let lease = lease();
                let mut me = me;
                loop {
                    tokio::time::sleep(lease / 4).await;
                    me.expires = now() + lease.as_secs();
                    let body = serde_json::to_vec(&me).expect("lock json");
                    let current = etag.lock().expect("lock etag").clone();
                    match put(&cx, &key, body, Condition::Etag(&current)).await {
                        Ok(new) => *etag.lock().expect("lock etag") = new,
                        Err(e) if condition_failed(&e) || e.class == ErrorClass::NotFound => {
                            let _ = tx.send(Some(format!(
                                "this run lost the lock s3://{}/{key}: another run took it over after the lease ran out",
                                bucket_name(&cx)
                            )));
                            return;
                        }
                        // Unreachable S3 for a moment: the lease has three more renewals of slack.
                        Err(_) => {}
                    }
                }
            })
        };
        Lock {
            cx: Arc::clone(cx),
            key,
            token,
            etag,
            renew,
            lost,
        }
    }

    /// Resolves if another run took the lock (this one stalled past its lease): stop at once.
    pub async fn lost(&self) -> String {
        let mut lost = self.lost.clone();
        match lost.wait_for(Option::is_some).await {
            Ok(v) => v.clone().unwrap_or_default(),
            Err(_) => std::future::pending().await,
        }
    }

    /// Deletes the lock if it is still this run's: a DELETE conditional on its ETag; where S3
    /// refuses the condition itself (not a 412), read it back and delete it if its token is ours.
    /// If even that fails (an expired token), the lease runs out and the next run takes it over.
    pub async fn release(self) {
        self.renew.abort();
        let etag = self.etag.lock().expect("lock etag").clone();
        let bucket = bucket_name(&self.cx);
        let conditional = self
            .cx
            .s3
            .delete_object()
            .bucket(&bucket)
            .key(&self.key)
            .if_match(etag)
            .send()
            .await;
        let Err(e) = conditional else { return };
        let e = AwsError::from(e);
        if condition_failed(&e) || e.class == ErrorClass::NotFound {
            return; // someone else's now, or gone
        }
        if let Ok(Some((body, _))) = get(&self.cx, &self.key).await
            && serde_json::from_slice::<Holder>(&body).is_ok_and(|h| h.token == self.token)
        {
            let _ = self
                .cx
                .s3
                .delete_object()
                .bucket(&bucket)
                .key(&self.key)
                .send()
                .await;
        }
    }
}

/// One env as the account records it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Record {
    pub stack: String,
    pub env: String,
    pub region: String,
    /// Unix time of the first `up`.
    pub created: u64,
    /// Unix time after which `gc` deletes the env; none without `--ttl`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires: Option<u64>,
    /// The plan's estimate at the last `up`.
    pub hourly_usd: f64,
    /// The stack as the user named it (a built-in or a file).
    pub stack_ref: String,
}

pub async fn read_record(cx: &Cx, stack: &str, env: &str) -> Result<Option<Record>, AwsError> {
    match get(cx, &record_key(stack, env)).await {
        Ok(Some((body, _))) => Ok(serde_json::from_slice(&body).ok()),
        Ok(None) => Ok(None),
        Err(e) if no_bucket(&e) => Ok(None),
        Err(e) => Err(e),
    }
}

/// Writes the record (the caller has read the one there and found it different).
pub async fn write_record(cx: &Cx, record: &Record) -> Result<(), AwsError> {
    let body = serde_json::to_vec_pretty(record).expect("record json");
    let key = record_key(&record.stack, &record.env);
    match put(cx, &key, body.clone(), Condition::None).await {
        Err(e) if no_bucket(&e) => {
            ensure_bucket(cx).await?;
            put(cx, &key, body, Condition::None).await.map(|_| ())
        }
        other => other.map(|_| ()),
    }
}

pub async fn delete_record(cx: &Cx, stack: &str, env: &str) -> Result<(), AwsError> {
    match cx
        .s3
        .delete_object()
        .bucket(bucket_name(cx))
        .key(record_key(stack, env))
        .send()
        .await
    {
        Ok(_) => Ok(()),
        Err(e) => {
            let e = AwsError::from(e);
            if e.class == ErrorClass::NotFound {
                Ok(())
            } else {
                Err(e)
            }
        }
    }
}

/// Every env record of this account and region.
pub async fn records(cx: &Cx) -> Result<Vec<Record>, AwsError> {
    let mut found = Vec::new();
    let mut pages = cx
        .s3
        .list_objects_v2()
        .bucket(bucket_name(cx))
        .prefix("envs/")
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        let page = match page {
            Ok(p) => p,
            Err(e) => {
                let e = AwsError::from(e);
                return if no_bucket(&e) { Ok(found) } else { Err(e) };
            }
        };
        for object in page.contents() {
            let Some(key) = object.key() else { continue };
            if let Some((body, _)) = get(cx, key).await?
                && let Ok(record) = serde_json::from_slice::<Record>(&body)
            {
                found.push(record);
            }
        }
    }
    Ok(found)
}

/// Who holds an env's lock now, if anyone (for `ls` and `gc`).
pub async fn holder(cx: &Cx, stack: &str, env: &str) -> Result<Option<Holder>, AwsError> {
    match get(cx, &lock_key(stack, env)).await {
        Ok(found) => Ok(found.and_then(|(body, _)| serde_json::from_slice(&body).ok())),
        Err(e) if no_bucket(&e) => Ok(None),
        Err(e) => Err(e),
    }
}
