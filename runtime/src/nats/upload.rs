//! The streamed upload behind [`super::NatsObjects`]'s `put`, in the object-store
//! layout async-nats reads (`$O.<bucket>.C.<nuid>` chunks, `$O.<bucket>.M.<name>`
//! metadata rolled up to its last value).
//!
//! Chunks go out under a fresh nuid while the body is hashed and counted. Only
//! when the whole body is stored does new metadata point at them; then the chunks
//! of the object it replaced are purged. A refused (`TooLarge`) or failed upload
//! purges its own chunks and never touches the metadata: the previous object, if
//! any, stays whole.

use std::collections::{HashMap, VecDeque};

use async_nats::HeaderMap;
use async_nats::jetstream::context::PublishAckFuture;
use async_nats::jetstream::object_store::{ObjectInfo, ObjectOptions};
use async_nats::jetstream::stream::Stream;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE;
use bytes::{Bytes, BytesMut};
use futures::StreamExt;
use sha2::{Digest, Sha256};

use super::link::Link;
use crate::ports::BodyStream;
use crate::{Error, Result};

/// Size of one stored chunk (the async-nats default).
pub(crate) const CHUNK_SIZE: usize = 128 * 1024;
/// Chunk publishes awaiting their PubAck at once.
const ACK_WINDOW: usize = 8;
/// Metadata key of the content type.
pub(crate) const META_CONTENT_TYPE: &str = "content-type";
/// Metadata key of the hex SHA-256.
pub(crate) const META_SHA256: &str = "sha256";

/// Where an upload goes.
pub(crate) struct Target<'a> {
    pub(crate) link: &'a Link,
    pub(crate) stream: &'a Stream,
    pub(crate) bucket: &'a str,
    pub(crate) name: &'a str,
    pub(crate) content_type: &'a str,
}

/// What the chunk phase stored.
struct Stored {
    size: usize,
    chunks: usize,
    sha256: [u8; 32],
}

/// Stores `body` as `target`'s object, replacing the one whose chunks are under
/// `previous` (its nuid); returns the new metadata as stored.
pub(crate) async fn upload(
    target: &Target<'_>,
    body: BodyStream<'_>,
    max_size: u64,
    previous: Option<String>,
) -> Result<ObjectInfo> {
    let nuid = uuid::Uuid::new_v4().simple().to_string();
    let chunk_subject = format!("$O.{}.C.{nuid}", target.bucket);
    let mut acks = VecDeque::new();
    let stored = match send_chunks(target, &chunk_subject, body, max_size, &mut acks).await {
        Ok(s) => s,
        Err(e) => {
            // Chunks still on their way would outlive a purge sent before them.
            for ack in acks {
                let _ = stored(target.link, ack).await;
            }
            purge(target, &chunk_subject).await;
            return Err(e);
        }
    };
    let info = publish_meta(target, &object_info(target, nuid, &stored)).await?;
    if let Some(old) = previous {
        purge(target, &format!("$O.{}.C.{old}", target.bucket)).await;
    }
    Ok(info)
}

/// The metadata of the object whose chunks `stored` describes.
fn object_info(target: &Target<'_>, nuid: String, stored: &Stored) -> ObjectInfo {
    ObjectInfo {
        name: target.name.to_string(),
        description: None,
        metadata: HashMap::from([
            (
                META_CONTENT_TYPE.to_string(),
                target.content_type.to_string(),
            ),
            (META_SHA256.to_string(), hex::encode(stored.sha256)),
        ]),
        headers: None,
        options: Some(ObjectOptions {
            link: None,
            max_chunk_size: Some(CHUNK_SIZE),
        }),
        bucket: target.bucket.to_string(),
        nuid,
        size: stored.size,
        chunks: stored.chunks,
        modified: Some(crate::model::now()),
        digest: Some(format!("SHA-256={}", URL_SAFE.encode(stored.sha256))),
        deleted: false,
    }
}

/// Publishes the body in chunks, refusing past `max_size`.
async fn send_chunks(
    target: &Target<'_>,
    subject: &str,
    mut body: BodyStream<'_>,
    max_size: u64,
    acks: &mut VecDeque<PublishAckFuture>,
) -> Result<Stored> {
    let mut hasher = Sha256::new();
    let mut buf = BytesMut::with_capacity(CHUNK_SIZE);
    let (mut size, mut chunks) = (0u64, 0usize);
    while let Some(piece) = body.next().await {
        let piece = piece.map_err(|e| Error::Invalid(format!("upload interrupted: {e}")))?;
        size += piece.len() as u64;
        if size > max_size {
            return Err(Error::TooLarge(format!(
                "object is larger than the limit of {max_size} bytes"
            )));
        }
        hasher.update(&piece);
        buf.extend_from_slice(&piece);
        while buf.len() >= CHUNK_SIZE {
            let chunk = buf.split_to(CHUNK_SIZE).freeze();
            send_chunk(target, subject, chunk, acks).await?;
            chunks += 1;
        }
    }
    if !buf.is_empty() {
        send_chunk(target, subject, buf.freeze(), acks).await?;
        chunks += 1;
    }
    while let Some(ack) = acks.pop_front() {
        ack.await
            .map_err(|e| target.link.fault("store a chunk", e))?;
    }
    let size = usize::try_from(size).map_err(|_| Error::TooLarge("object size".into()))?;
    Ok(Stored {
        size,
        chunks,
        sha256: hasher.finalize().into(),
    })
}

/// Publishes one chunk, keeping at most [`ACK_WINDOW`] PubAcks outstanding.
async fn send_chunk(
    t: &Target<'_>,
    subject: &str,
    chunk: Bytes,
    acks: &mut VecDeque<PublishAckFuture>,
) -> Result<()> {
    let publish = t.link.js().publish(subject.to_string(), chunk);
    let ack = t
        .link
        .run("send a chunk", publish)
        .await?
        .map_err(|e| t.link.fault("send a chunk", e))?;
    acks.push_back(ack);
    if acks.len() > ACK_WINDOW
        && let Some(oldest) = acks.pop_front()
    {
        stored(t.link, oldest).await?;
    }
    Ok(())
}

/// Waits for a chunk's PubAck.
async fn stored(link: &Link, ack: PublishAckFuture) -> Result<()> {
    link.run("store a chunk", ack.into_future())
        .await?
        .map(|_| ())
        .map_err(|e| link.fault("store a chunk", e))
}

/// Publishes `info` as the object's only metadata; returns it as stored.
async fn publish_meta(t: &Target<'_>, info: &ObjectInfo) -> Result<ObjectInfo> {
    let data = serde_json::to_vec(info)?;
    let subject = format!("$O.{}.M.{}", t.bucket, URL_SAFE.encode(t.name));
    let mut headers = HeaderMap::new();
    headers.insert(async_nats::header::NATS_ROLLUP, "sub");
    let publish = async {
        let js = t.link.js();
        js.publish_with_headers(subject, headers, Bytes::from(data.clone()))
            .await?
            .await
    };
    t.link
        .run("store object metadata", publish)
        .await?
        .map_err(|e| t.link.fault("store object metadata", e))?;
    // Read back through the same encoding a `get` uses, so both agree exactly.
    Ok(serde_json::from_slice(&data)?)
}

/// Removes chunks nothing points at; a failure only leaks space, so it is logged.
async fn purge(t: &Target<'_>, subject: &str) {
    if let Err(e) = t.stream.purge().filter(subject).await {
        tracing::warn!(error = %e, subject, "could not purge object chunks; space leaks");
    }
}
