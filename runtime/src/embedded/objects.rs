//! [`EmbeddedObjects`]: objects as files under `<data>/objects/<bucket>/<name>`,
//! metadata in the `objects` table. A put streams to a temp file (hashing and
//! counting as it goes), makes it read-only (0444), then renames it into place:
//! readers never see a partial object, a refused upload leaves nothing behind, and
//! a stored file is never written again (a replacement is a new file).

use std::path::PathBuf;

use async_trait::async_trait;
use futures::StreamExt;
use rusqlite::{OptionalExtension, params};
use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt;

use super::db::{Db, sql};
use crate::model::ObjectMeta;
use crate::ports::{BodyStream, ByteStream, ObjectStore};
use crate::{Error, Result};

/// Object files plus SQLite metadata.
#[derive(Clone)]
pub struct EmbeddedObjects {
    db: Db,
    root: PathBuf,
}

impl EmbeddedObjects {
    /// The object store of `db`, under `<data>/objects`.
    pub fn new(db: Db) -> Result<Self> {
        let root = db.dir().join("objects");
        std::fs::create_dir_all(root.join(".tmp")).map_err(|e| Error::io("objects dir", e))?;
        Ok(EmbeddedObjects { db, root })
    }

    fn path(&self, bucket: &str, name: &str) -> Result<PathBuf> {
        check_part("bucket", bucket)?;
        check_part("object", name)?;
        Ok(self.root.join(bucket).join(name))
    }

    async fn meta(&self, bucket: &str, name: &str) -> Result<ObjectMeta> {
        self.db.lookup(|c| {
            c.prepare_cached(
                "SELECT name, size, content_type, sha256, created_at FROM objects WHERE bucket = ?1 AND name = ?2",
            )
            .and_then(|mut st| st.query_row(params![bucket, name], row_meta).optional())
            .map_err(sql)?
            .ok_or_else(|| Error::NotFound(format!("object {name}")))
        })
    }
}

/// Refuses path tricks in bucket and object names.
fn check_part(kind: &str, part: &str) -> Result<()> {
    if part.is_empty() || part.starts_with('.') || part.contains(['/', '\\', '\0']) {
        return Err(Error::Invalid(format!("invalid {kind} name {part:?}")));
    }
    Ok(())
}

fn row_meta(r: &rusqlite::Row<'_>) -> rusqlite::Result<ObjectMeta> {
    let created: String = r.get(4)?;
    Ok(ObjectMeta {
        name: r.get(0)?,
        size: r.get::<_, i64>(1)? as u64,
        content_type: r.get(2)?,
        sha256: r.get(3)?,
        created_at: time::OffsetDateTime::parse(
            &created,
            &time::format_description::well_known::Rfc3339,
        )
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH),
    })
}

/// Streams `body` into `tmp`, refusing past `max_size`; returns (size, sha256).
async fn spool(tmp: &PathBuf, mut body: BodyStream<'_>, max_size: u64) -> Result<(u64, String)> {
    let mut file = tokio::fs::File::create(tmp)
        .await
        .map_err(|e| Error::io("create temp object", e))?;
    let mut hasher = Sha256::new();
    let mut size = 0u64;
    while let Some(chunk) = body.next().await {
        let chunk = chunk.map_err(|e| Error::Invalid(format!("upload interrupted: {e}")))?;
        size += chunk.len() as u64;
        if size > max_size {
            return Err(Error::TooLarge(format!(
                "object is larger than the limit of {max_size} bytes"
            )));
        }
        hasher.update(&chunk);
        file.write_all(&chunk)
            .await
            .map_err(|e| Error::io("write object", e))?;
    }
    file.sync_all()
        .await
        .map_err(|e| Error::io("sync object", e))?;
    drop(file);
    read_only(tmp).await?;
    Ok((size, hex::encode(hasher.finalize())))
}

/// Makes a spooled object read-only before it is placed: stored files are immutable.
async fn read_only(path: &PathBuf) -> Result<()> {
    let mut perms = tokio::fs::metadata(path)
        .await
        .map_err(|e| Error::io("stat object", e))?
        .permissions();
    perms.set_readonly(true);
    tokio::fs::set_permissions(path, perms)
        .await
        .map_err(|e| Error::io("protect object", e))
}

#[async_trait]
impl ObjectStore for EmbeddedObjects {
    async fn put(
        &self,
        bucket: &str,
        name: &str,
        content_type: &str,
        body: BodyStream<'_>,
        max_size: u64,
    ) -> Result<ObjectMeta> {
        let dest = self.path(bucket, name)?;
        let tmp = self
            .root
            .join(".tmp")
            .join(uuid::Uuid::new_v4().to_string());
        let spooled = spool(&tmp, body, max_size).await;
        let (size, sha256) = match spooled {
            Ok(v) => v,
            Err(e) => {
                let _ = tokio::fs::remove_file(&tmp).await;
                return Err(e);
            }
        };
        if let Some(dir) = dest.parent() {
            tokio::fs::create_dir_all(dir)
                .await
                .map_err(|e| Error::io("create bucket dir", e))?;
        }
        tokio::fs::rename(&tmp, &dest)
            .await
            .map_err(|e| Error::io("place object", e))?;
        let meta = ObjectMeta {
            name: name.to_string(),
            size,
            content_type: content_type.to_string(),
            sha256,
            created_at: crate::model::now(),
        };
        let (b, m) = (bucket.to_string(), meta.clone());
        self.db
            .call(move |c| {
                let created = m
                    .created_at
                    .format(&time::format_description::well_known::Rfc3339)
                    .map_err(|e| Error::Internal(e.to_string()))?;
                c.execute(
                    "INSERT OR REPLACE INTO objects (bucket, name, size, content_type, sha256, created_at)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                    params![b, m.name, m.size as i64, m.content_type, m.sha256, created],
                )
                .map_err(sql)
            })
            .await?;
        Ok(meta)
    }

    async fn get(&self, bucket: &str, name: &str) -> Result<(ObjectMeta, ByteStream)> {
        let meta = self.meta(bucket, name).await?;
        let file = tokio::fs::File::open(self.path(bucket, name)?)
            .await
            .map_err(|e| match e.kind() {
                std::io::ErrorKind::NotFound => Error::NotFound(format!("object {name}")),
                _ => Error::io("open object", e),
            })?;
        let stream = tokio_util::io::ReaderStream::with_capacity(file, 64 * 1024);
        Ok((meta, stream.boxed()))
    }

    async fn head(&self, bucket: &str, name: &str) -> Result<ObjectMeta> {
        self.meta(bucket, name).await
    }

    async fn list(&self, bucket: &str) -> Result<Vec<ObjectMeta>> {
        let b = bucket.to_string();
        self.db
            .read(move |c| {
                let mut stmt = c
                    .prepare_cached(
                        "SELECT name, size, content_type, sha256, created_at FROM objects WHERE bucket = ?1 ORDER BY name",
                    )
                    .map_err(sql)?;
                let rows = stmt.query_map(params![b], row_meta).map_err(sql)?;
                rows.collect::<Result<Vec<_>, _>>().map_err(sql)
            })
            .await
    }

    async fn delete(&self, bucket: &str, name: &str) -> Result<()> {
        let path = self.path(bucket, name)?;
        let (b, n) = (bucket.to_string(), name.to_string());
        let removed = self
            .db
            .call(move |c| {
                c.execute(
                    "DELETE FROM objects WHERE bucket = ?1 AND name = ?2",
                    params![b, n],
                )
                .map_err(sql)
            })
            .await?;
        if removed == 0 {
            return Err(Error::NotFound(format!("object {name}")));
        }
        match tokio::fs::remove_file(&path).await {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(Error::io("remove object", e)),
        }
    }

    async fn delete_bucket(&self, bucket: &str) -> Result<()> {
        check_part("bucket", bucket)?;
        let b = bucket.to_string();
        self.db
            .call(move |c| {
                c.execute("DELETE FROM objects WHERE bucket = ?1", params![b])
                    .map_err(sql)
            })
            .await?;
        match tokio::fs::remove_dir_all(self.root.join(bucket)).await {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(Error::io("remove bucket", e)),
        }
    }

    fn local_path(&self, bucket: &str, name: &str) -> Option<PathBuf> {
        self.path(bucket, name).ok()
    }
}
