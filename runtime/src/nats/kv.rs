//! [`NatsKv`]: the key-value port on JetStream key-value buckets. Each logical
//! bucket is a JetStream bucket (file storage, history 1) created on first use.
//! Revisions are the stream sequences, so they grow across deletes and re-creates.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use async_nats::jetstream::kv::{
    self, CreateErrorKind, EntryErrorKind, Operation, PutErrorKind, UpdateErrorKind,
};
use async_nats::jetstream::stream::StorageType;
use async_trait::async_trait;
use bytes::Bytes;
use std::future::IntoFuture;

use futures::TryStreamExt;

use super::link::{Link, check_bucket, is_stream_not_found};
use crate::ports::{Entry, KvStore, KvWrite, Scan};
use crate::{Error, Result};

/// Values read at once (concurrently) while a scan fills its page.
const SCAN_FETCH: usize = 32;

/// Key-value state in JetStream buckets; cheap to clone.
#[derive(Clone)]
pub struct NatsKv {
    link: Link,
    buckets: Arc<Mutex<HashMap<String, kv::Store>>>,
}

impl NatsKv {
    pub(crate) fn new(link: Link) -> Self {
        NatsKv {
            link,
            buckets: Arc::new(Mutex::new(HashMap::new())),
        }
    }

    fn cached(&self, name: &str) -> Option<kv::Store> {
        let map = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        map.get(name).cloned()
    }

    /// The bucket's handle, creating the bucket on first use.
    async fn bucket(&self, name: &str) -> Result<kv::Store> {
        if let Some(store) = self.cached(name) {
            return Ok(store);
        }
        check_bucket(name)?;
        let store = self.link.run("open bucket", self.open(name)).await??;
        tracing::debug!(bucket = name, "NATS key-value bucket ready");
        let mut map = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        Ok(map.entry(name.to_string()).or_insert(store).clone())
    }

    async fn open(&self, name: &str) -> Result<kv::Store> {
        let js = self.link.js();
        match js.get_key_value(name).await {
            Ok(store) => Ok(store),
            Err(e) if is_stream_not_found(&e) => {
                let config = kv::Config {
                    bucket: name.to_string(),
                    history: 1,
                    storage: StorageType::File,
                    num_replicas: self.link.replicas(),
                    ..Default::default()
                };
                match js.create_key_value(config).await {
                    Ok(store) => Ok(store),
                    // Another process created it first.
                    Err(_) => js
                        .get_key_value(name)
                        .await
                        .map_err(|e| self.link.fault("open bucket", e)),
                }
            }
            Err(e) => Err(self.link.fault("open bucket", e)),
        }
    }

    /// The live (not deleted) entry under `key`.
    async fn live(&self, store: &kv::Store, key: &str) -> Result<Option<Entry>> {
        match self.link.run("read", store.entry(key)).await? {
            Ok(Some(e)) if e.operation == Operation::Put => Ok(Some(Entry {
                value: e.value,
                revision: e.revision,
            })),
            Ok(_) => Ok(None),
            Err(e) if e.kind() == EntryErrorKind::InvalidKey => Err(invalid_key(key)),
            Err(e) => Err(self.link.fault("read", e)),
        }
    }

    /// The bucket's keys starting with `prefix`, ascending. Deletes purge a key's
    /// subject, so only live keys are listed (a delete marker written by an older
    /// release is listed until migrated; reads skip it).
    async fn keys(&self, store: &kv::Store, prefix: &str) -> Result<Vec<String>> {
        let filter = subject_filter(&store.prefix, prefix);
        let subjects = self
            .link
            .run("list keys", store.stream.info_with_subjects(&filter))
            .await?
            .map_err(|e| self.link.fault("list keys", e))?;
        let subjects: Vec<(String, usize)> = self
            .link
            .run("list keys", subjects.try_collect())
            .await?
            .map_err(|e| self.link.fault("list keys", e))?;
        let mut keys = Vec::new();
        for (subject, _) in subjects {
            if let Some(key) = subject.strip_prefix(&store.prefix)
                && key.starts_with(prefix)
            {
                keys.push(key.to_string());
            }
        }
        keys.sort_unstable();
        Ok(keys)
    }
}

/// The subject filter covering every key that starts with `prefix`: whole tokens
/// of the prefix, then `>`; the partial last token is checked by the caller.
fn subject_filter(bucket_prefix: &str, prefix: &str) -> String {
    let whole = prefix.rfind('.').map_or("", |i| &prefix[..=i]);
    format!("{bucket_prefix}{whole}>")
}

fn invalid_key(key: &str) -> Error {
    Error::Invalid(format!("invalid key {key:?}"))
}

/// Orders and bounds `keys` by the scan's direction and cursor.
fn page_order(mut keys: Vec<String>, scan: &Scan) -> Vec<String> {
    if let Some(after) = &scan.after {
        keys.retain(|k| match scan.descending {
            false => k > after,
            true => k < after,
        });
    }
    if scan.descending {
        keys.reverse();
    }
    keys
}

#[async_trait]
impl KvStore for NatsKv {
    async fn get(&self, bucket: &str, key: &str) -> Result<Option<Entry>> {
        let store = self.bucket(bucket).await?;
        self.live(&store, key).await
    }

    async fn create(&self, bucket: &str, key: &str, value: Bytes) -> Result<u64> {
        let store = self.bucket(bucket).await?;
        let created = self.link.run("create", store.create(key, value)).await?;
        created.map_err(|e| match e.kind() {
            CreateErrorKind::AlreadyExists => Error::Conflict(format!("key {key} exists")),
            CreateErrorKind::InvalidKey => invalid_key(key),
            _ => self.link.fault("create", e),
        })
    }

    async fn update(&self, bucket: &str, key: &str, value: Bytes, revision: u64) -> Result<u64> {
        let store = self.bucket(bucket).await?;
        // Revision 0 would mean "only if absent" to JetStream: not an update.
        let result = match revision {
            0 => None,
            _ => Some(
                self.link
                    .run("update", store.update(key, value, revision))
                    .await?,
            ),
        };
        match result {
            Some(Ok(rev)) => Ok(rev),
            Some(Err(e)) if e.kind() == UpdateErrorKind::InvalidKey => Err(invalid_key(key)),
            Some(Err(e)) if e.kind() != UpdateErrorKind::WrongLastRevision => {
                Err(self.link.fault("update", e))
            }
            _ => match self.live(&store, key).await? {
                Some(e) => Err(Error::Conflict(format!(
                    "key {key} is at revision {}, not {revision}",
                    e.revision
                ))),
                None => Err(Error::NotFound(format!("key {key}"))),
            },
        }
    }

    async fn put(&self, bucket: &str, key: &str, value: Bytes) -> Result<u64> {
        let store = self.bucket(bucket).await?;
        let put = self.link.run("put", store.put(key, value)).await?;
        put.map_err(|e| match e.kind() {
            PutErrorKind::InvalidKey => invalid_key(key),
            _ => self.link.fault("put", e),
        })
    }

    /// Removes every message of the key's subject (not a delete marker), so deleted
    /// keys leave nothing behind for listings and counts to wade through.
    async fn delete(&self, bucket: &str, key: &str) -> Result<()> {
        let store = self.bucket(bucket).await?;
        if key.is_empty() || key.contains(['*', '>', ' ']) || key.starts_with('.') {
            return Err(invalid_key(key));
        }
        let subject = format!("{}{key}", store.prefix);
        self.link
            .run("delete", store.stream.purge().filter(subject).into_future())
            .await?
            .map(|_| ())
            .map_err(|e| self.link.fault("delete", e))
    }

    async fn compact(&self, bucket: &str) -> Result<()> {
        let store = self.bucket(bucket).await?;
        for key in self.keys(&store, "").await? {
            if self.live(&store, &key).await?.is_none() {
                self.delete(bucket, &key).await?;
            }
        }
        Ok(())
    }

    async fn count(&self, bucket: &str, prefix: &str) -> Result<u64> {
        let store = self.bucket(bucket).await?;
        Ok(self.keys(&store, prefix).await?.len() as u64)
    }

    async fn apply(&self, writes: Vec<KvWrite>) -> Result<Vec<u64>> {
        let mut revs = Vec::with_capacity(writes.len());
        for w in writes {
            revs.push(match w {
                KvWrite::Create { bucket, key, value } => self.create(&bucket, &key, value).await?,
                KvWrite::Put { bucket, key, value } => self.put(&bucket, &key, value).await?,
                KvWrite::Delete { bucket, key } => self.delete(&bucket, &key).await.map(|_| 0)?,
            });
        }
        Ok(revs)
    }

    async fn scan(&self, bucket: &str, scan: Scan) -> Result<Vec<(String, Entry)>> {
        let store = self.bucket(bucket).await?;
        let keys = page_order(self.keys(&store, &scan.prefix).await?, &scan);
        let want = if scan.limit == 0 {
            usize::MAX
        } else {
            scan.limit
        };
        let mut out = Vec::new();
        let mut next = 0;
        while out.len() < want && next < keys.len() {
            let take = (want - out.len()).min(SCAN_FETCH).min(keys.len() - next);
            let batch = &keys[next..next + take];
            next += take;
            let entries =
                futures::future::try_join_all(batch.iter().map(|k| self.live(&store, k))).await?;
            // Keys deleted since the listing are skipped.
            out.extend(
                batch
                    .iter()
                    .zip(entries)
                    .filter_map(|(k, e)| e.map(|e| (k.clone(), e))),
            );
        }
        Ok(out)
    }

    async fn ping(&self) -> Result<()> {
        self.link
            .run("ping", self.link.js().query_account())
            .await?
            .map(|_| ())
            .map_err(|e| self.link.fault("ping", e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subject_filter_keeps_whole_tokens() {
        assert_eq!(subject_filter("$KV.b.", ""), "$KV.b.>");
        assert_eq!(subject_filter("$KV.b.", "abc"), "$KV.b.>");
        assert_eq!(subject_filter("$KV.b.", "a.b."), "$KV.b.a.b.>");
        assert_eq!(subject_filter("$KV.b.", "a.bc"), "$KV.b.a.>");
    }

    #[test]
    fn page_order_applies_cursor_and_direction() {
        let keys = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let scan = Scan {
            after: Some("b".into()),
            descending: true,
            ..Scan::default()
        };
        assert_eq!(page_order(keys(&["a", "b", "c"]), &scan), keys(&["a"]));
        let scan = Scan {
            after: Some("a".into()),
            ..Scan::default()
        };
        assert_eq!(page_order(keys(&["a", "b", "c"]), &scan), keys(&["b", "c"]));
    }
}
