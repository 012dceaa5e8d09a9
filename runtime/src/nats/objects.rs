//! [`NatsObjects`]: the object-store port on JetStream object stores, one per
//! logical bucket (stream `OBJ_<bucket>`, file storage), created by the first put.
//! Content type and hex SHA-256 live in each object's metadata; reads stream the
//! chunks and never hold a whole object in memory.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use async_nats::jetstream::object_store::{
    self, GetErrorKind, InfoErrorKind, ObjectInfo, ObjectStore as JsObjectStore,
};
use async_nats::jetstream::stream::{StorageType, Stream};
use async_trait::async_trait;
use futures::{StreamExt, TryStreamExt};

use super::link::{Link, check_bucket, is_stream_not_found};
use super::upload::{self, META_CONTENT_TYPE, META_SHA256, Target};
use crate::model::ObjectMeta;
use crate::ports::{BodyStream, ByteStream, ObjectStore};
use crate::{Error, Result};

/// Read buffer of a streamed get.
const READ_BUFFER: usize = 64 * 1024;

/// One opened bucket: the async-nats handle and its stream (for purges).
#[derive(Clone)]
struct Bucket {
    store: JsObjectStore,
    stream: Stream,
}

/// Object storage in JetStream object stores; cheap to clone.
#[derive(Clone)]
pub struct NatsObjects {
    link: Link,
    buckets: Arc<Mutex<HashMap<String, Bucket>>>,
}

impl NatsObjects {
    pub(crate) fn new(link: Link) -> Self {
        NatsObjects {
            link,
            buckets: Arc::new(Mutex::new(HashMap::new())),
        }
    }

    fn cache(&self) -> std::sync::MutexGuard<'_, HashMap<String, Bucket>> {
        self.buckets.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The bucket's handles; `None` when it does not exist and `create` is false.
    async fn open(&self, name: &str, create: bool) -> Result<Option<Bucket>> {
        if let Some(b) = self.cache().get(name).cloned() {
            return Ok(Some(b));
        }
        check_part("bucket", name)?;
        check_bucket(name)?;
        let bucket = self
            .link
            .run("open bucket", self.fetch(name, create))
            .await??;
        if let Some(b) = &bucket {
            self.cache().insert(name.to_string(), b.clone());
        }
        Ok(bucket)
    }

    async fn fetch(&self, name: &str, create: bool) -> Result<Option<Bucket>> {
        let js = self.link.js();
        let store = match js.get_object_store(name).await {
            Ok(store) => store,
            Err(e) if is_stream_not_found(&e) && !create => return Ok(None),
            Err(e) if is_stream_not_found(&e) => {
                let config = object_store::Config {
                    bucket: name.to_string(),
                    storage: StorageType::File,
                    num_replicas: self.link.replicas(),
                    ..Default::default()
                };
                js.create_object_store(config)
                    .await
                    .map_err(|e| self.link.fault("create bucket", e))?
            }
            Err(e) => return Err(self.link.fault("open bucket", e)),
        };
        let stream = js
            .get_stream(format!("OBJ_{name}"))
            .await
            .map_err(|e| self.link.fault("open bucket", e))?;
        Ok(Some(Bucket { store, stream }))
    }

    /// The live (not deleted) object's info.
    async fn info(&self, b: &Bucket, name: &str) -> Result<ObjectInfo> {
        check_part("object", name)?;
        match self
            .link
            .run("read object info", b.store.info(name))
            .await?
        {
            Ok(info) if !info.deleted => Ok(info),
            Ok(_) => Err(not_found(name)),
            Err(e) if e.kind() == InfoErrorKind::NotFound => Err(not_found(name)),
            Err(e) if e.kind() == InfoErrorKind::InvalidName => Err(invalid_name(name)),
            Err(e) => Err(self.link.fault("read object info", e)),
        }
    }

    /// The nuid of the live object `name` replaces, reopening a stale bucket handle
    /// (the bucket was deleted elsewhere) once.
    async fn previous(&self, bucket: &str, name: &str) -> Result<(Bucket, Option<String>)> {
        for _ in 0..2 {
            let b = self
                .open(bucket, true)
                .await?
                .ok_or_else(|| not_found(bucket))?;
            match self.info(&b, name).await {
                Ok(info) => return Ok((b, Some(info.nuid))),
                Err(Error::NotFound(_)) => return Ok((b, None)),
                Err(Error::Unavailable(e)) => {
                    tracing::debug!(error = %e, bucket, "reopening the bucket");
                    self.cache().remove(bucket);
                }
                Err(e) => return Err(e),
            }
        }
        Err(Error::Unavailable(format!(
            "bucket {bucket} cannot be opened"
        )))
    }
}

/// Refuses path tricks and names the object store cannot hold.
fn check_part(kind: &str, part: &str) -> Result<()> {
    if part.is_empty() || part.starts_with('.') || part.contains(['/', '\\', '\0']) {
        return Err(Error::Invalid(format!("invalid {kind} name {part:?}")));
    }
    Ok(())
}

fn not_found(name: &str) -> Error {
    Error::NotFound(format!("object {name}"))
}

fn invalid_name(name: &str) -> Error {
    Error::Invalid(format!("invalid object name {name:?}"))
}

/// The port's metadata of a stored object.
fn meta(info: &ObjectInfo) -> ObjectMeta {
    let field = |k: &str| info.metadata.get(k).cloned().unwrap_or_default();
    ObjectMeta {
        name: info.name.clone(),
        size: info.size as u64,
        content_type: field(META_CONTENT_TYPE),
        sha256: field(META_SHA256),
        created_at: info.modified.unwrap_or(time::OffsetDateTime::UNIX_EPOCH),
    }
}

#[async_trait]
impl ObjectStore for NatsObjects {
    async fn put(
        &self,
        bucket: &str,
        name: &str,
        content_type: &str,
        body: BodyStream<'_>,
        max_size: u64,
    ) -> Result<ObjectMeta> {
        check_part("object", name)?;
        let (b, previous) = self.previous(bucket, name).await?;
        let target = Target {
            link: &self.link,
            stream: &b.stream,
            bucket,
            name,
            content_type,
        };
        let info = upload::upload(&target, body, max_size, previous).await?;
        Ok(meta(&info))
    }

    async fn get(&self, bucket: &str, name: &str) -> Result<(ObjectMeta, ByteStream)> {
        let b = self
            .open(bucket, false)
            .await?
            .ok_or_else(|| not_found(name))?;
        check_part("object", name)?;
        let object = self.link.run("read object", b.store.get(name)).await?;
        let object = object.map_err(|e| match e.kind() {
            GetErrorKind::NotFound => not_found(name),
            GetErrorKind::InvalidName => invalid_name(name),
            _ => self.link.fault("read object", e),
        })?;
        let meta = meta(object.info());
        let body = tokio_util::io::ReaderStream::with_capacity(object, READ_BUFFER);
        Ok((meta, body.boxed()))
    }

    async fn head(&self, bucket: &str, name: &str) -> Result<ObjectMeta> {
        let b = self
            .open(bucket, false)
            .await?
            .ok_or_else(|| not_found(name))?;
        Ok(meta(&self.info(&b, name).await?))
    }

    async fn list(&self, bucket: &str) -> Result<Vec<ObjectMeta>> {
        let Some(b) = self.open(bucket, false).await? else {
            return Ok(Vec::new());
        };
        let list = async {
            let listing = b.store.list().await.map_err(|e| e.to_string())?;
            let infos: Vec<ObjectInfo> = listing.try_collect().await.map_err(|e| e.to_string())?;
            Ok::<_, String>(infos)
        };
        let infos = self
            .link
            .run("list objects", list)
            .await?
            .map_err(|e| self.link.fault("list objects", e))?;
        let mut out: Vec<ObjectMeta> = infos.iter().map(meta).collect();
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    async fn delete(&self, bucket: &str, name: &str) -> Result<()> {
        let b = self
            .open(bucket, false)
            .await?
            .ok_or_else(|| not_found(name))?;
        self.info(&b, name).await?;
        self.link
            .run("delete object", b.store.delete(name))
            .await?
            .map_err(|e| self.link.fault("delete object", e))
    }

    async fn delete_bucket(&self, bucket: &str) -> Result<()> {
        check_part("bucket", bucket)?;
        check_bucket(bucket)?;
        self.cache().remove(bucket);
        let deleted = self.link.js().delete_object_store(bucket);
        match self.link.run("delete bucket", deleted).await? {
            Ok(()) => Ok(()),
            Err(e) if is_stream_not_found(&e) => Ok(()),
            Err(e) => Err(self.link.fault("delete bucket", e)),
        }
    }
}
