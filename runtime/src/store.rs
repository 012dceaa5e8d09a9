//! [`Store`]: typed repositories (users, functions, executions, secrets, the
//! installation id, callback deliveries and keys, the HTTP settings and keys of
//! functions, their schedules, worker presence) over any [`KvStore`].
//! Records are JSON; secondary indexes are extra keys (`<owner>.<id>`) so that every
//! backend only needs get/create/update/scan.

mod callback_keys;
mod callbacks;
mod endpoints;
mod executions;
mod grants;
mod http;
mod idempotency;
mod installation;
pub mod migrate;
mod records;
mod schedules;
pub mod spill;
mod user_cache;
mod users;
mod versions;
mod workers;

use std::sync::Arc;

use bytes::Bytes;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::ports::{Completions, KvStore, LocalCompletions, Scan};
use crate::{Error, Result};

pub use callback_keys::{CallbackKey, CallbackKeyRecord};
pub use callbacks::{PendingCallback, now_ms};
pub use endpoints::{ENDPOINT_TTL, Endpoint};
pub use executions::ExecutionFilter;
pub use grants::{Grant, grant_key};
pub use http::MAX_HTTP_KEYS;
pub use idempotency::{Claim, IDEMPOTENCY_TTL, IdempotencyRecord};
pub use schedules::MAX_SCHEDULES;
pub use user_cache::USER_TTL;
pub use versions::version_key;

/// Bucket names.
pub mod buckets {
    /// Users by id.
    pub const USERS: &str = "users";
    /// Canonical username -> user id (uniqueness); older records may be keyed by
    /// the exact username.
    pub const USERNAMES: &str = "usernames";
    /// Functions by id.
    pub const FUNCTIONS: &str = "functions";
    /// `<owner>.<function id>` index.
    pub const FUNCTIONS_BY_OWNER: &str = "functions_by_owner";
    /// Executions by id.
    pub const EXECUTIONS: &str = "executions";
    /// `<owner>.<execution id>` index.
    pub const EXECUTIONS_BY_OWNER: &str = "executions_by_owner";
    /// Ids of executions not yet final (for recovery).
    pub const EXECUTIONS_ACTIVE: &str = "executions_active";
    /// `<owner>.<execution id>` of executions not yet final (quotas).
    pub const EXECUTIONS_ACTIVE_BY_OWNER: &str = "executions_active_by_owner";
    /// Chunks of large execution fields (see [`super::spill`]).
    pub const EXECUTION_DATA: &str = "execution_data";
    /// Secrets by id.
    pub const SECRETS: &str = "secrets";
    /// `<owner>.<name>` -> secret id (uniqueness and lookup by name).
    pub const SECRET_NAMES: &str = "secret_names";
    /// Capability grants of running executions, by token hash.
    pub const GRANTS: &str = "grants";
    /// Worker heartbeats, by worker id.
    pub const WORKERS: &str = "workers";
    /// Per-user quota overrides, by user id.
    pub const QUOTAS: &str = "quotas";
    /// `<owner>.<lower-case function name>` -> function id (unique names).
    pub const FUNCTION_NAMES: &str = "function_names";
    /// The installation's id (one key, created once).
    pub const INSTALLATION: &str = "installation";
    /// `<owner>.<sha256 of an Idempotency-Key>` -> the execution it made.
    pub const IDEMPOTENCY: &str = "idempotency";
    /// Pending callback deliveries, by execution id.
    pub const CALLBACKS: &str = "callbacks";
    /// Per-user callback signing keys (sealed), by user id.
    pub const CALLBACK_KEYS: &str = "callback_keys";
    /// Function id -> its HTTP settings.
    pub const HTTP_SETTINGS: &str = "http_settings";
    /// `<function id>.<key id>` -> an access key of the function's endpoint (hashed).
    pub const HTTP_KEYS: &str = "http_keys";
    /// `<function id>.<version, 20 digits>` -> a version of a function.
    pub const FUNCTION_VERSIONS: &str = "function_versions";
    /// Schedules by id.
    pub const SCHEDULES: &str = "schedules";
    /// `<function id>.<schedule id>` index.
    pub const SCHEDULES_BY_FUNCTION: &str = "schedules_by_function";
    /// Every bucket above.
    pub const ALL: &[&str] = &[
        USERS,
        USERNAMES,
        FUNCTIONS,
        FUNCTIONS_BY_OWNER,
        EXECUTIONS,
        EXECUTIONS_BY_OWNER,
        EXECUTIONS_ACTIVE,
        EXECUTIONS_ACTIVE_BY_OWNER,
        EXECUTION_DATA,
        SECRETS,
        SECRET_NAMES,
        GRANTS,
        WORKERS,
        QUOTAS,
        FUNCTION_NAMES,
        INSTALLATION,
        IDEMPOTENCY,
        CALLBACKS,
        CALLBACK_KEYS,
        HTTP_SETTINGS,
        HTTP_KEYS,
        FUNCTION_VERSIONS,
        SCHEDULES,
        SCHEDULES_BY_FUNCTION,
    ];
}

/// A page of records and the cursor of the next page.
#[derive(Debug, Clone)]
pub struct Page<T> {
    /// The records, newest first.
    pub items: Vec<T>,
    /// Pass as `cursor` to get the next page; `None` on the last page.
    pub next_cursor: Option<String>,
}

/// Typed access to the platform's state.
#[derive(Clone)]
pub struct Store {
    kv: Arc<dyn KvStore>,
    completions: Arc<dyn Completions>,
    users: Arc<user_cache::UserCache>,
    endpoints: Arc<endpoints::EndpointCache>,
    callbacks_due: Arc<tokio::sync::Notify>,
}

impl Store {
    /// Typed repositories over `kv`, announcing state changes of executions
    /// within this process ([`LocalCompletions`]).
    pub fn new(kv: Arc<dyn KvStore>) -> Self {
        let endpoints = Arc::new(endpoints::EndpointCache::default());
        Store {
            kv: endpoints.watch(kv),
            completions: Arc::new(LocalCompletions::new()),
            users: Arc::default(),
            endpoints,
            callbacks_due: Arc::default(),
        }
    }

    /// The same repositories announcing state changes through `completions`
    /// (NATS: to every process).
    pub fn with_completions(mut self, completions: Arc<dyn Completions>) -> Self {
        self.completions = completions;
        self
    }

    /// Where state changes of executions are announced: every
    /// [`Store::update_execution`] publishes the new status after its write.
    pub fn completions(&self) -> &Arc<dyn Completions> {
        &self.completions
    }

    /// Notified in this process when an execution whose callback is pending becomes
    /// final (the deliverer then looks at once instead of at its next scan).
    pub fn callbacks_due(&self) -> &Arc<tokio::sync::Notify> {
        &self.callbacks_due
    }

    /// The underlying key-value port.
    pub fn kv(&self) -> &Arc<dyn KvStore> {
        &self.kv
    }

    /// Reads and decodes a record with its revision.
    pub async fn get_json<T: DeserializeOwned>(
        &self,
        bucket: &str,
        key: &str,
    ) -> Result<Option<(T, u64)>> {
        match self.kv.get(bucket, key).await? {
            Some(e) => Ok(Some((serde_json::from_slice(&e.value)?, e.revision))),
            None => Ok(None),
        }
    }

    /// Encodes and creates a record (`Conflict` if present).
    pub async fn create_json<T: Serialize>(&self, bucket: &str, key: &str, v: &T) -> Result<u64> {
        self.kv.create(bucket, key, encode(v)?).await
    }

    /// Encodes and updates a record at `revision`.
    pub async fn update_json<T: Serialize>(
        &self,
        bucket: &str,
        key: &str,
        v: &T,
        revision: u64,
    ) -> Result<u64> {
        self.kv.update(bucket, key, encode(v)?, revision).await
    }

    /// Encodes and writes a record unconditionally.
    pub async fn put_json<T: Serialize>(&self, bucket: &str, key: &str, v: &T) -> Result<u64> {
        self.kv.put(bucket, key, encode(v)?).await
    }

    /// Ids listed in an `<owner>.<id>` index, newest first, after `cursor`.
    pub(crate) async fn index_page(
        &self,
        index: &str,
        owner: &str,
        cursor: Option<&str>,
        limit: usize,
    ) -> Result<Vec<String>> {
        let prefix = format!("{owner}.");
        let rows = self
            .kv
            .scan(
                index,
                Scan {
                    after: cursor.map(|c| format!("{prefix}{c}")),
                    prefix: prefix.clone(),
                    limit,
                    descending: true,
                },
            )
            .await?;
        Ok(rows
            .into_iter()
            .filter_map(|(k, _)| k.strip_prefix(&prefix).map(str::to_string))
            .collect())
    }
}

fn encode<T: Serialize>(v: &T) -> Result<Bytes> {
    serde_json::to_vec(v)
        .map(Bytes::from)
        .map_err(|e| Error::Internal(format!("encode record: {e}")))
}

/// Index key `<owner>.<id>`.
pub(crate) fn owner_key(owner: &str, id: &str) -> String {
    format!("{owner}.{id}")
}
