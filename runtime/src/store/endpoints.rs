//! [`EndpointCache`]: what `/fn/{username}/{function}` needs to serve a request
//! (the function, its HTTP settings and the hashes of its keys), read at most
//! [`ENDPOINT_TTL`] ago, so that a served request costs no store read.
//!
//! Every write through this process's [`Store`] to a bucket an endpoint is made
//! of bumps a generation ([`Watched`]); an entry read under an older generation
//! is not used. A change made by another process (an API process of a cluster,
//! a worker serving `/fn`) is seen within [`ENDPOINT_TTL`], as for tokens
//! ([`super::USER_TTL`]).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use bytes::Bytes;

use super::{Store, buckets as b};
use crate::Result;
use crate::model::http::{HttpSettings, constant_time_eq, key_sha256};
use crate::model::{Function, validate_name};
use crate::ports::{Entry, KvStore, KvWrite, Scan};

/// How old a cached endpoint may be (a revoked key, a disabled function or a
/// redeploy made by another process is seen within it).
pub const ENDPOINT_TTL: Duration = Duration::from_millis(500);

/// Most endpoints cached; beyond it, expired entries are dropped first.
const MAX_CACHED: usize = 10_000;

/// The buckets an endpoint is read from: a write to any of them invalidates
/// every cached endpoint of this process.
const WATCHED: [&str; 7] = [
    b::USERS,
    b::USERNAMES,
    b::FUNCTIONS,
    b::FUNCTION_NAMES,
    b::FUNCTION_VERSIONS,
    b::HTTP_SETTINGS,
    b::HTTP_KEYS,
];

/// A function as its HTTP endpoint serves it.
#[derive(Debug, Clone)]
pub struct Endpoint {
    /// The function (its current version).
    pub function: Function,
    /// Its HTTP settings (`enabled` may be false: the caller answers 404).
    pub settings: HttpSettings,
    /// The env its guest sees: the newest version's `env` (the version that
    /// runs), `FAAS_FUNCTION_ID` and `FAAS_FUNCTION_VERSION`.
    pub guest_env: Arc<[(String, String)]>,
    /// The SHA-256 (hex) of each of its access keys.
    key_hashes: Arc<[String]>,
}

impl Endpoint {
    /// True when `presented` is one of the function's keys. Every hash is
    /// compared in constant time, and all of them are compared.
    pub fn key_matches(&self, presented: &str) -> bool {
        let hash = key_sha256(presented);
        self.key_hashes
            .iter()
            .fold(false, |found, k| constant_time_eq(k, &hash) | found)
    }
}

/// A cached lookup: when it started, under which generation, and its answer.
type Cached = (Instant, u64, Option<Endpoint>);

/// Recently read endpoints by (username as given, lower-case function name),
/// absent ones too.
#[derive(Default)]
pub(crate) struct EndpointCache {
    generation: Arc<AtomicU64>,
    entries: Mutex<HashMap<(String, String), Cached>>,
}

impl EndpointCache {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<(String, String), Cached>> {
        self.entries.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    fn fresh(&self, key: &(String, String)) -> Option<Option<Endpoint>> {
        let generation = self.generation();
        self.lock()
            .get(key)
            .filter(|(at, g, _)| *g == generation && at.elapsed() < ENDPOINT_TTL)
            .map(|(_, _, e)| e.clone())
    }

    fn keep(&self, key: (String, String), read: (Instant, u64), endpoint: Option<Endpoint>) {
        let mut map = self.lock();
        if map.len() >= MAX_CACHED {
            let generation = self.generation();
            map.retain(|_, (at, g, _)| *g == generation && at.elapsed() < ENDPOINT_TTL);
            if map.len() >= MAX_CACHED {
                map.clear();
            }
        }
        map.insert(key, (read.0, read.1, endpoint));
    }

    /// Wraps `kv` so that its writes to the watched buckets invalidate this cache.
    pub(crate) fn watch(&self, kv: Arc<dyn KvStore>) -> Arc<dyn KvStore> {
        Arc::new(Watched {
            inner: kv,
            generation: self.generation.clone(),
        })
    }
}

impl Store {
    /// The endpoint `/fn/{username}/{function}` names (both in any letter case),
    /// as read at most [`ENDPOINT_TTL`] ago; `None` when the user or the function
    /// does not exist. Writes through this store are seen at once.
    pub async fn endpoint(&self, username: &str, function: &str) -> Result<Option<Endpoint>> {
        if validate_name("function", function).is_err() {
            return Ok(None);
        }
        // The username as given: accounts older than canonical usernames may
        // differ only in letter case, and `find_user` tries the exact name first.
        let key = (username.to_string(), function.to_lowercase());
        if let Some(e) = self.endpoints.fresh(&key) {
            return Ok(e);
        }
        let read = (Instant::now(), self.endpoints.generation());
        let endpoint = self.read_endpoint(username, function).await?;
        self.endpoints.keep(key, read, endpoint.clone());
        Ok(endpoint)
    }

    async fn read_endpoint(&self, username: &str, name: &str) -> Result<Option<Endpoint>> {
        let Some((user, _)) = self.find_user(username).await? else {
            return Ok(None);
        };
        let Some(function) = self.find_function(&user.id, name).await? else {
            return Ok(None);
        };
        let settings = self.http_settings(&function.id).await?;
        let key_hashes = self
            .http_keys(&function.id)
            .await?
            .into_iter()
            .map(|k| k.sha256)
            .collect();
        let n = function.versions.latest_version.max(1);
        let mut guest_env = match self.get_version(&function, n).await? {
            Some(v) => v.env_vars(),
            None => Vec::new(),
        };
        guest_env.push(("FAAS_FUNCTION_ID".into(), function.id.clone()));
        guest_env.push(("FAAS_FUNCTION_VERSION".into(), n.to_string()));
        Ok(Some(Endpoint {
            function,
            settings,
            guest_env: guest_env.into(),
            key_hashes,
        }))
    }
}

/// A [`KvStore`] that bumps a generation after every write to a watched bucket.
struct Watched {
    inner: Arc<dyn KvStore>,
    generation: Arc<AtomicU64>,
}

impl Watched {
    /// Bumps the generation if `bucket` is watched; called after the write, so
    /// an entry read before it (under the older generation) is not used again.
    fn wrote(&self, bucket: &str) {
        if WATCHED.contains(&bucket) {
            self.generation.fetch_add(1, Ordering::AcqRel);
        }
    }

    fn after<T>(&self, bucket: &str, result: Result<T>) -> Result<T> {
        self.wrote(bucket);
        result
    }
}

#[async_trait]
impl KvStore for Watched {
    async fn get(&self, bucket: &str, key: &str) -> Result<Option<Entry>> {
        self.inner.get(bucket, key).await
    }
    async fn create(&self, bucket: &str, key: &str, value: Bytes) -> Result<u64> {
        let r = self.inner.create(bucket, key, value).await;
        self.after(bucket, r)
    }
    async fn update(&self, bucket: &str, key: &str, value: Bytes, revision: u64) -> Result<u64> {
        let r = self.inner.update(bucket, key, value, revision).await;
        self.after(bucket, r)
    }
    async fn put(&self, bucket: &str, key: &str, value: Bytes) -> Result<u64> {
        let r = self.inner.put(bucket, key, value).await;
        self.after(bucket, r)
    }
    async fn delete(&self, bucket: &str, key: &str) -> Result<()> {
        let r = self.inner.delete(bucket, key).await;
        self.after(bucket, r)
    }
    async fn scan(&self, bucket: &str, scan: Scan) -> Result<Vec<(String, Entry)>> {
        self.inner.scan(bucket, scan).await
    }
    async fn count(&self, bucket: &str, prefix: &str) -> Result<u64> {
        self.inner.count(bucket, prefix).await
    }
    async fn apply(&self, writes: Vec<KvWrite>) -> Result<Vec<u64>> {
        let buckets: Vec<String> = writes.iter().map(|w| w.bucket().to_string()).collect();
        let r = self.inner.apply(writes).await;
        buckets.iter().for_each(|bucket| self.wrote(bucket));
        r
    }
    async fn compact(&self, bucket: &str) -> Result<()> {
        self.inner.compact(bucket).await
    }
    async fn ping(&self) -> Result<()> {
        self.inner.ping().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::embedded::{Db, EmbeddedKv};
    use crate::model::{Role, User, now};

    /// A store with user `Ann` owning function `n`, and a second store over the
    /// same database (another process).
    async fn setup(dir: &std::path::Path) -> (Store, Store, Function) {
        let db = Db::open(dir).unwrap();
        let s = Store::new(Arc::new(EmbeddedKv::new(db.clone())));
        let other = Store::new(Arc::new(EmbeddedKv::new(db)));
        let user = User {
            id: "u".into(),
            username: "Ann".into(),
            password_hash: String::new(),
            role: Role::User,
            created_at: now(),
            token_generation: 0,
        };
        s.create_user(&user).await.unwrap();
        let f = Function::fixture("u");
        s.create_function(&f).await.unwrap();
        (s, other, f)
    }

    #[tokio::test]
    async fn an_endpoint_is_found_in_any_letter_case_and_absent_ones_are_none() {
        let dir = tempfile::tempdir().unwrap();
        let (s, _, f) = setup(dir.path()).await;
        let e = s.endpoint("ann", "N").await.unwrap().unwrap();
        assert_eq!(e.function.id, f.id);
        assert!(!e.settings.enabled);
        assert!(s.endpoint("ann", "m").await.unwrap().is_none());
        assert!(s.endpoint("bob", "n").await.unwrap().is_none());
        assert!(s.endpoint("ann", "bad name!").await.unwrap().is_none());
    }

    #[tokio::test]
    async fn writes_through_the_store_are_seen_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let (s, _, f) = setup(dir.path()).await;
        assert!(
            !s.endpoint("ann", "n")
                .await
                .unwrap()
                .unwrap()
                .settings
                .enabled
        );
        let on = HttpSettings {
            enabled: true,
            ..HttpSettings::default()
        };
        s.put_http_settings(&f.id, &on).await.unwrap();
        let e = s.endpoint("ann", "n").await.unwrap().unwrap();
        assert!(
            e.settings.enabled,
            "a settings write drops the cached entry"
        );
        assert!(!e.key_matches("k"));

        let (record, key) = s.create_http_key(&f.id).await.unwrap();
        assert!(
            s.endpoint("ann", "n")
                .await
                .unwrap()
                .unwrap()
                .key_matches(&key)
        );
        s.delete_http_key(&f.id, &record.id).await.unwrap();
        let e = s.endpoint("ann", "n").await.unwrap().unwrap();
        assert!(!e.key_matches(&key), "a revoked key is refused at once");

        s.delete_function(&f).await.unwrap();
        assert!(s.endpoint("ann", "n").await.unwrap().is_none());
    }

    #[tokio::test]
    async fn another_process_change_is_seen_within_the_ttl() {
        let dir = tempfile::tempdir().unwrap();
        let (s, other, f) = setup(dir.path()).await;
        let (_, key) = s.create_http_key(&f.id).await.unwrap();
        assert!(
            s.endpoint("ann", "n")
                .await
                .unwrap()
                .unwrap()
                .key_matches(&key)
        );
        for k in other.http_keys(&f.id).await.unwrap() {
            other.delete_http_key(&f.id, &k.id).await.unwrap();
        }
        let started = Instant::now();
        while s
            .endpoint("ann", "n")
            .await
            .unwrap()
            .unwrap()
            .key_matches(&key)
        {
            assert!(started.elapsed() < ENDPOINT_TTL + Duration::from_millis(300));
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}
