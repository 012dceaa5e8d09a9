//! Key-value state with revisions (compare-and-set).

use async_trait::async_trait;
use bytes::Bytes;

use crate::Result;

/// A stored value and the revision that wrote it.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    /// The value bytes.
    pub value: Bytes,
    /// Monotonic revision; an update must name the revision it read.
    pub revision: u64,
}

/// Which keys a [`KvStore::scan`] returns.
#[derive(Debug, Clone, Default)]
pub struct Scan {
    /// Only keys starting with this.
    pub prefix: String,
    /// Only keys strictly after this one (strictly before when `descending`).
    pub after: Option<String>,
    /// At most this many (0 = no limit).
    pub limit: usize,
    /// Newest (greatest key) first.
    pub descending: bool,
}

/// One write of a batch applied with [`crate::ports::WorkQueue::enqueue_with`].
#[derive(Debug, Clone, PartialEq)]
pub enum KvWrite {
    /// Writes `key` only if absent (the whole batch fails with `Conflict` otherwise).
    Create {
        /// Bucket.
        bucket: String,
        /// Key.
        key: String,
        /// Value.
        value: Bytes,
    },
    /// Writes `key` unconditionally.
    Put {
        /// Bucket.
        bucket: String,
        /// Key.
        key: String,
        /// Value.
        value: Bytes,
    },
    /// Removes `key` if present (its revision in the answer is 0).
    Delete {
        /// Bucket.
        bucket: String,
        /// Key.
        key: String,
    },
}

impl KvWrite {
    /// The bucket written.
    pub fn bucket(&self) -> &str {
        match self {
            KvWrite::Create { bucket, .. }
            | KvWrite::Put { bucket, .. }
            | KvWrite::Delete { bucket, .. } => bucket,
        }
    }

    /// A `Delete` write.
    pub fn delete(bucket: &str, key: &str) -> Self {
        KvWrite::Delete {
            bucket: bucket.to_string(),
            key: key.to_string(),
        }
    }

    /// A `Create` write.
    pub fn create(bucket: &str, key: &str, value: Bytes) -> Self {
        KvWrite::Create {
            bucket: bucket.to_string(),
            key: key.to_string(),
            value,
        }
    }

    /// A `Put` write.
    pub fn put(bucket: &str, key: &str, value: Bytes) -> Self {
        KvWrite::Put {
            bucket: bucket.to_string(),
            key: key.to_string(),
            value,
        }
    }
}

/// Buckets of keys to values with revision-checked updates.
///
/// Keys are `[A-Za-z0-9._=-]` strings; `.` separates index parts.
#[async_trait]
pub trait KvStore: Send + Sync + 'static {
    /// The value under `key`, if any.
    async fn get(&self, bucket: &str, key: &str) -> Result<Option<Entry>>;
    /// Writes `key` only if absent; `Conflict` otherwise.
    async fn create(&self, bucket: &str, key: &str, value: Bytes) -> Result<u64>;
    /// Writes `key` only if its revision is still `revision`; `Conflict` otherwise,
    /// `NotFound` if the key is gone.
    async fn update(&self, bucket: &str, key: &str, value: Bytes, revision: u64) -> Result<u64>;
    /// Writes `key` unconditionally.
    async fn put(&self, bucket: &str, key: &str, value: Bytes) -> Result<u64>;
    /// Removes `key`; absent keys are fine.
    async fn delete(&self, bucket: &str, key: &str) -> Result<()>;
    /// Keys in order with their entries.
    async fn scan(&self, bucket: &str, scan: Scan) -> Result<Vec<(String, Entry)>>;
    /// How many live keys start with `prefix`.
    async fn count(&self, bucket: &str, prefix: &str) -> Result<u64>;
    /// Applies `writes` in order (the embedded backend in one transaction; NATS one
    /// by one, stopping at the first failure). Returns each write's revision (0 for
    /// a delete).
    async fn apply(&self, writes: Vec<KvWrite>) -> Result<Vec<u64>>;
    /// Removes what deleted keys left behind in `bucket` (NATS delete markers of
    /// older releases); nothing to do on other backends.
    async fn compact(&self, _bucket: &str) -> Result<()> {
        Ok(())
    }
    /// Fails when the store cannot be reached.
    async fn ping(&self) -> Result<()>;
}
