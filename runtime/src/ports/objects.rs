//! Streamed object storage in named buckets.

use std::path::PathBuf;

use async_trait::async_trait;
use bytes::Bytes;
use futures::stream::BoxStream;

use crate::Result;
use crate::model::ObjectMeta;

/// A stream of body chunks (what `get` returns).
pub type ByteStream = BoxStream<'static, std::io::Result<Bytes>>;

/// A stream of body chunks borrowed from a request (what `put` takes).
pub type BodyStream<'a> = BoxStream<'a, std::io::Result<Bytes>>;

/// Buckets of named objects, written and read as streams.
#[async_trait]
pub trait ObjectStore: Send + Sync + 'static {
    /// Stores `body` under `bucket/name`, replacing any previous object, refusing
    /// (`TooLarge`) past `max_size` bytes without keeping a partial object.
    async fn put(
        &self,
        bucket: &str,
        name: &str,
        content_type: &str,
        body: BodyStream<'_>,
        max_size: u64,
    ) -> Result<ObjectMeta>;
    /// The object's metadata and content.
    async fn get(&self, bucket: &str, name: &str) -> Result<(ObjectMeta, ByteStream)>;
    /// The object's metadata.
    async fn head(&self, bucket: &str, name: &str) -> Result<ObjectMeta>;
    /// All objects of a bucket, by name.
    async fn list(&self, bucket: &str) -> Result<Vec<ObjectMeta>>;
    /// Removes one object; `NotFound` if absent.
    async fn delete(&self, bucket: &str, name: &str) -> Result<()>;
    /// Removes a bucket and everything in it; absent buckets are fine.
    async fn delete_bucket(&self, bucket: &str) -> Result<()>;
    /// A host file holding the object's bytes, when the backend keeps one
    /// (lets executors link instead of copy). Callers must not write to it.
    fn local_path(&self, _bucket: &str, _name: &str) -> Option<PathBuf> {
        None
    }
}
