//! Lake files on S3-compatible object storage (`object_store`'s AWS client): the same keys as the local layout
//! under a bucket and prefix.
//!
//! A rewrite is GET (keeping the `ETag`) → the update → encode in memory → one conditional PUT: `If-Match: <etag>`
//! when the object existed, `If-None-Match: *` when it did not. A 412 (another writer got there first) or a 409
//! means: read again, run the update on the new bytes, try again, with jittered backoff. Lake files are
//! deterministic (the same rows give the same bytes), so a PUT whose outcome is unknown (a timeout, a dropped
//! connection) is resolved by reading the object back: if it holds exactly the bytes sent, the write happened.
//! No lock, no temporary object: a reader sees the old object or the new one, never a part.
//!
//! Every PUT carries its body's SHA-256 checksum, so a store never keeps a body cut short by a killed writer.
//!
//! [`ObjectLakeStore::probe`] refuses a store that ignores conditional requests (it would lose updates silently).
//! Deletes of emptied files are unconditional (the `object_store` API has no conditional delete): a writer that
//! empties a file while another adds rows to it can lose those rows; `replace` that empties a whole file of a
//! month other writers are writing is the one case to avoid on object storage.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use bytes::Bytes;
use object_store::aws::{AmazonS3Builder, AmazonS3ConfigKey, Checksum, S3ConditionalPut};
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload, UpdateVersion};

use super::{check_key, Change, Published, Store};
use crate::error::{Error, Result};
use crate::parquet_io;

/// Attempts of one rewrite before it gives up (each lost race re-reads and re-merges).
const ATTEMPTS: u32 = 64;

/// Conditional writes this process lost to another writer (and retried from a fresh read), for tests and reports.
static CONFLICTS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// How many conditional writes this process has lost to other writers and retried.
#[must_use]
pub fn conflicts() -> u64 {
    CONFLICTS.load(std::sync::atomic::Ordering::Relaxed)
}

fn runtime() -> Result<&'static tokio::runtime::Runtime> {
    static RUNTIME: OnceLock<std::result::Result<tokio::runtime::Runtime, String>> =
        OnceLock::new();
    RUNTIME
        .get_or_init(|| {
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .thread_name("ticklake-store")
                .enable_all()
                .build()
                .map_err(|e| e.to_string())
        })
        .as_ref()
        .map_err(|e| {
            Error::InvalidArgument(format!("cannot start the object store's runtime: {e}"))
        })
}

/// A lake in a bucket (and an optional prefix) of an S3-compatible store.
#[derive(Debug)]
pub struct ObjectLakeStore {
    store: Arc<dyn ObjectStore>,
    url: String,
    prefix: String,
}

impl ObjectLakeStore {
    /// Opens `url` (`s3://bucket/prefix`) with `object_store`'s AWS configuration keys (`aws_endpoint`,
    /// `aws_region`, `aws_access_key_id`, `aws_secret_access_key`, `aws_allow_http`, ... or their short forms
    /// `endpoint`, `region`, ...); credentials not given are taken from the environment (`AWS_*`).
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] for a URL that is not `s3://bucket[/prefix]` or an unknown option (the message
    /// names the key, never a value).
    pub fn open(url: &str, options: &[(String, String)]) -> Result<Self> {
        let rest = url.strip_prefix("s3://").ok_or_else(|| {
            Error::InvalidArgument(format!("{url:?} is not an s3://bucket/prefix URL"))
        })?;
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        if bucket.is_empty() {
            return Err(Error::InvalidArgument(format!("{url:?} names no bucket")));
        }
        let prefix = prefix.trim_matches('/').to_owned();
        // Every PUT names its body's SHA-256 (`x-amz-checksum-sha256`), so the store refuses a body cut short: a
        // writer killed after its PUT's headers and before the first body byte otherwise leaves an empty object
        // in SeaweedFS (tests/test_object_crash.py), whatever the signed payload hash says.
        let mut builder = AmazonS3Builder::from_env()
            .with_bucket_name(bucket)
            .with_conditional_put(S3ConditionalPut::ETagMatch)
            .with_checksum_algorithm(Checksum::SHA256);
        for (key, value) in options {
            let parsed: AmazonS3ConfigKey = key.parse().map_err(|_| {
                Error::InvalidArgument(format!(
                    "unknown storage option {key:?} (object_store's AWS keys)"
                ))
            })?;
            builder = builder.with_config(parsed, value);
        }
        let store = builder.build().map_err(|e| {
            Error::InvalidArgument(format!(
                "cannot open {url}: {}",
                scrub(&e.to_string(), options)
            ))
        })?;
        Ok(Self {
            store: Arc::new(store),
            url: url.trim_end_matches('/').to_owned(),
            prefix,
        })
    }

    /// [`ObjectLakeStore::open`], once per (URL, options) in a process: the HTTP client and its connections are
    /// reused by every later call.
    ///
    /// # Errors
    /// As [`ObjectLakeStore::open`].
    pub fn shared(url: &str, options: &[(String, String)]) -> Result<Arc<Self>> {
        type Cache = Mutex<HashMap<(String, Vec<(String, String)>), Arc<ObjectLakeStore>>>;
        static CACHE: OnceLock<Cache> = OnceLock::new();
        let mut sorted = options.to_vec();
        sorted.sort();
        let key = (url.to_owned(), sorted);
        let cache = CACHE.get_or_init(|| Mutex::new(HashMap::new()));
        if let Some(found) = cache.lock().map_err(|_| poisoned())?.get(&key) {
            return Ok(Arc::clone(found));
        }
        let opened = Arc::new(Self::open(url, options)?);
        cache
            .lock()
            .map_err(|_| poisoned())?
            .insert(key, Arc::clone(&opened));
        Ok(opened)
    }

    fn object(&self, key: &str) -> ObjectPath {
        if self.prefix.is_empty() {
            ObjectPath::from(key)
        } else {
            ObjectPath::from(format!("{}/{key}", self.prefix))
        }
    }

    fn failed(&self, key: &str, what: &str, err: &object_store::Error) -> Error {
        Error::Io {
            path: self.locate(key).into(),
            source: std::io::Error::other(format!("{what} failed: {err}")),
        }
    }

    /// Checks that the store honours conditional PUTs, with a probe object under `.ticklake/probe/`: a second
    /// create of the same key and an update with a stale `ETag` must both be refused.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] when the store ignores them (writes would lose updates), or the store's error.
    pub fn probe(&self) -> Result<()> {
        let rt = runtime()?;
        let key = format!(
            ".ticklake/probe/{}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos())
        );
        let path = self.object(&key);
        rt.block_on(async {
            self.store
                .put_opts(&path, PutPayload::from_static(b"1"), PutOptions::from(PutMode::Create))
                .await
                .map_err(|e| self.failed(&key, "the conditional-write probe", &e))?;
            let again = self
                .store
                .put_opts(&path, PutPayload::from_static(b"2"), PutOptions::from(PutMode::Create))
                .await;
            let stale = self
                .store
                .put_opts(
                    &path,
                    PutPayload::from_static(b"3"),
                    PutOptions::from(PutMode::Update(UpdateVersion {
                        e_tag: Some("\"0123456789abcdef0123456789abcdef\"".to_owned()),
                        version: None,
                    })),
                )
                .await;
            let _ = self.store.delete(&path).await;
            let refused = |r: &std::result::Result<object_store::PutResult, object_store::Error>| {
                matches!(
                    r,
                    Err(object_store::Error::AlreadyExists { .. }
                        | object_store::Error::Precondition { .. })
                )
            };
            if !refused(&again) || !refused(&stale) {
                return Err(Error::InvalidArgument(format!(
                    "{}: the store ignores conditional writes (If-None-Match / If-Match); concurrent writers \
                     would lose each other's rows, so ticklake refuses to write to it",
                    self.url
                )));
            }
            Ok(())
        })
    }

    /// The `(key, size, etag)` of the objects under `folder` (`bars/1m`), keys relative to the lake's root, sorted;
    /// the `ETag` (empty when the store sends none) names the object's version, so a reader can cache its footer.
    ///
    /// # Errors
    /// The store's error naming the folder.
    pub fn list(&self, folder: &str) -> Result<Vec<(String, u64, String)>> {
        use futures_util::TryStreamExt;
        let rt = runtime()?;
        let prefix = self.object(folder);
        let strip = if self.prefix.is_empty() {
            0
        } else {
            self.prefix.len() + 1
        };
        let mut found: Vec<(String, u64, String)> = rt.block_on(async {
            self.store
                .list(Some(&prefix))
                .map_ok(|meta| {
                    (
                        meta.location.as_ref()[strip..].to_owned(),
                        meta.size,
                        meta.e_tag.unwrap_or_default(),
                    )
                })
                .try_collect()
                .await
                .map_err(|e| self.failed(folder, "listing", &e))
        })?;
        found.sort();
        Ok(found)
    }
}

fn poisoned() -> Error {
    Error::InvalidArgument("the object store cache was poisoned by a panic".to_owned())
}

/// Replaces every option value (credentials) found in `text` with `***`.
fn scrub(text: &str, options: &[(String, String)]) -> String {
    let mut out = text.to_owned();
    for (_, value) in options {
        if value.len() >= 4 {
            out = out.replace(value.as_str(), "***");
        }
    }
    out
}

fn backoff(attempt: u32) -> Duration {
    let base = 20u64 << attempt.min(6);
    let jitter = u64::from(std::process::id() % 17) + u64::from(attempt) * 7 % 23;
    Duration::from_millis(base.min(1_000) + jitter)
}

impl Store for ObjectLakeStore {
    fn locate(&self, key: &str) -> String {
        format!("{}/{key}", self.url)
    }

    fn rewrite(
        &self,
        key: &str,
        update: &mut dyn FnMut(Option<&Bytes>) -> Result<Change>,
    ) -> Result<Published> {
        check_key(key)?;
        let rt = runtime()?;
        let path = self.object(key);
        let location = self.locate(key);
        for attempt in 0..ATTEMPTS {
            // GET, keeping the ETag the conditional PUT will name.
            let stored: Option<(Bytes, Option<String>)> = rt.block_on(async {
                match self.store.get(&path).await {
                    Ok(got) => {
                        let e_tag = got.meta.e_tag.clone();
                        let bytes = got
                            .bytes()
                            .await
                            .map_err(|e| self.failed(key, "reading", &e))?;
                        Ok(Some((bytes, e_tag)))
                    }
                    Err(object_store::Error::NotFound { .. }) => Ok(None),
                    Err(e) => Err(self.failed(key, "reading", &e)),
                }
            })?;
            let change = update(stored.as_ref().map(|(b, _)| b))?;
            let (bytes, written) = match change {
                Change::Keep { rows } => return Ok(Published::Unchanged { rows }),
                Change::Remove if stored.is_none() => return Ok(Published::Unchanged { rows: 0 }),
                Change::Remove => {
                    rt.block_on(self.store.delete(&path)).or_else(|e| match e {
                        object_store::Error::NotFound { .. } => Ok(()),
                        e => Err(self.failed(key, "deleting", &e)),
                    })?;
                    return Ok(Published::Removed);
                }
                Change::Write(batch, options) => {
                    parquet_io::encode_checked(&batch, &options, std::path::Path::new(&location))?
                }
            };
            let mode = match &stored {
                Some((_, e_tag)) => PutMode::Update(UpdateVersion {
                    e_tag: e_tag.clone(),
                    version: None,
                }),
                None => PutMode::Create,
            };
            let sent = bytes.clone();
            let put = rt.block_on(self.store.put_opts(
                &path,
                PutPayload::from_bytes(bytes),
                PutOptions::from(mode),
            ));
            match put {
                Ok(_) => return Ok(Published::Written(written)),
                Err(
                    object_store::Error::Precondition { .. }
                    | object_store::Error::AlreadyExists { .. }
                    | object_store::Error::NotFound { .. },
                ) => {
                    // Another writer won this round: read its result and merge into that.
                    CONFLICTS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    std::thread::sleep(backoff(attempt));
                }
                Err(e) => {
                    // Outcome unknown: the write happened exactly when the object now holds the bytes sent.
                    let now = rt.block_on(async {
                        match self.store.get(&path).await {
                            Ok(got) => got.bytes().await.ok(),
                            Err(_) => None,
                        }
                    });
                    if now.as_ref() == Some(&sent) {
                        return Ok(Published::Written(written));
                    }
                    if attempt + 1 >= 3 {
                        return Err(self.failed(key, "writing", &e));
                    }
                    std::thread::sleep(backoff(attempt));
                }
            }
        }
        Err(Error::Io {
            path: location.into(),
            source: std::io::Error::other(format!(
                "other writers won {ATTEMPTS} conditional writes in a row; try again"
            )),
        })
    }
}
