//! [`NatsQueue`]: the work-queue port on a JetStream stream with work-queue
//! retention and one durable pull consumer shared by every worker.
//!
//! - enqueue publishes with `Nats-Msg-Id` = the message id (duplicates inside the
//!   stream's duplicate window are dropped) and waits for the server's PubAck, so
//!   an accepted message is stored; a full stream (`DiscardPolicy::New`) refuses
//!   it and enqueue fails with `Overloaded`;
//! - lease is one pull request for up to `max` messages that waits up to `wait`
//!   for the first; the attempt is the server's delivery count;
//! - ack, nack and extend are `+ACK`, `-NAK {delay}` and `+WPI` sent to the
//!   delivery's reply subject, each confirmed by the server (double ack).
//!
//! The consumer never gives up on a message (`max_deliver` unlimited): the worker
//! counts attempts itself.

use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::consumer::{AckPolicy, PullConsumer, pull};
use async_nats::jetstream::context::PublishErrorKind;
use async_nats::jetstream::message::PublishMessage;
use async_nats::jetstream::stream::{self, DiscardPolicy, RetentionPolicy, StorageType};
use async_nats::jetstream::{AckKind, ErrorCode};
use async_trait::async_trait;
use bytes::Bytes;
use futures::StreamExt;
use tokio::time::Instant;

use super::NatsConfig;
use super::leases::Leases;
use super::link::{Link, api_code};
use crate::ports::{Delivery, QueueStats, WorkQueue};
use crate::{Error, Result};

/// Pause before asking again when the server ends a pull early without messages.
const REPULL_PAUSE: Duration = Duration::from_millis(20);

/// A durable queue on NATS JetStream; cheap to clone.
#[derive(Clone)]
pub struct NatsQueue {
    link: Link,
    consumer: PullConsumer,
    subject: String,
    ack_wait: Duration,
    leases: Arc<Leases>,
}

impl NatsQueue {
    /// Creates or updates the stream and its consumer as `config` describes.
    pub(crate) async fn open(link: Link, config: &NatsConfig) -> Result<Self> {
        let js = link.js();
        js.create_or_update_stream(stream::Config {
            name: config.stream.clone(),
            subjects: vec![config.subject.clone()],
            retention: RetentionPolicy::WorkQueue,
            storage: StorageType::File,
            max_messages: i64::try_from(config.max_messages).unwrap_or(i64::MAX),
            discard: DiscardPolicy::New,
            duplicate_window: config.duplicate_window,
            ..Default::default()
        })
        .await
        .map_err(|e| link.fault("create the queue stream", e))?;
        let consumer: PullConsumer = js
            .create_consumer_on_stream(
                pull::Config {
                    durable_name: Some(config.consumer.clone()),
                    ack_policy: AckPolicy::Explicit,
                    ack_wait: config.ack_wait,
                    max_deliver: -1,
                    ..Default::default()
                },
                &config.stream,
            )
            .await
            .map_err(|e| link.fault("create the queue consumer", e))?;
        tracing::info!(stream = %config.stream, consumer = %config.consumer, "NATS queue ready");
        Ok(NatsQueue {
            link,
            consumer,
            subject: config.subject.clone(),
            ack_wait: config.ack_wait,
            leases: Arc::new(Leases::new(config.ack_wait)),
        })
    }

    /// One pull request: up to `max` messages, waiting up to `expires` for the first.
    async fn pull(&self, max: usize, expires: Duration) -> Result<Vec<Delivery>> {
        self.link
            .run("lease", self.pull_batch(max, expires))
            .await?
    }

    async fn pull_batch(&self, max: usize, expires: Duration) -> Result<Vec<Delivery>> {
        let mut request = self.consumer.fetch().max_messages(max);
        if !expires.is_zero() {
            request = request.expires(expires);
        }
        let mut batch = request
            .messages()
            .await
            .map_err(|e| self.link.fault("lease", e))?;
        let mut out = Vec::new();
        while let Some(message) = batch.next().await {
            match message {
                Ok(m) => out.extend(self.delivery(m)),
                // Messages already received are leased: hand them out.
                Err(e) if !out.is_empty() => {
                    tracing::warn!(error = %e, "pull ended early");
                    break;
                }
                Err(e) => return Err(self.link.fault("lease", e)),
            }
        }
        Ok(out)
    }

    /// The delivery of `m`, recorded as a live lease.
    fn delivery(&self, m: async_nats::jetstream::Message) -> Option<Delivery> {
        let (Ok(info), Some(reply)) = (m.info(), m.reply.as_ref()) else {
            tracing::warn!(subject = %m.subject, "message without JetStream metadata; skipped");
            return None;
        };
        let id = m
            .headers
            .as_ref()
            .and_then(|h| h.get(async_nats::header::NATS_MESSAGE_ID))
            .map(|v| v.as_str().to_string())
            .unwrap_or_else(|| info.stream_sequence.to_string());
        let lease = reply.to_string();
        let attempt = u32::try_from(info.delivered).unwrap_or(u32::MAX);
        self.leases.grant(&id, &lease);
        Some(Delivery {
            id,
            payload: m.payload.clone(),
            attempt,
            lease,
        })
    }

    /// Acks or naks `d`, confirmed by the server; the lease is gone afterwards.
    async fn settle(&self, d: &Delivery, kind: AckKind, what: &str) -> Result<()> {
        let held = self.leases.take(d)?;
        match self.link.request(what, d.lease.clone(), kind.into()).await {
            Ok(_) => Ok(()),
            Err(e) => {
                self.leases.restore(d, held);
                Err(e)
            }
        }
    }
}

/// Maps a failed publish: a full stream is `Overloaded`.
fn publish_error(link: &Link, e: async_nats::jetstream::context::PublishError) -> Error {
    if api_code(&e) == Some(ErrorCode::STREAM_STORE_FAILED) {
        return Error::Overloaded(format!("the queue is full: {e}"));
    }
    match e.kind() {
        PublishErrorKind::MaxPayloadExceeded => Error::TooLarge(format!("queue message: {e}")),
        _ => link.fault("enqueue", e),
    }
}

#[async_trait]
impl WorkQueue for NatsQueue {
    async fn enqueue(&self, id: &str, payload: Bytes) -> Result<()> {
        let message = PublishMessage::build().payload(payload).message_id(id);
        let publish = async {
            let js = self.link.js();
            js.send_publish(self.subject.clone(), message).await?.await
        };
        let ack = self
            .link
            .run("enqueue", publish)
            .await?
            .map_err(|e| publish_error(&self.link, e))?;
        if ack.duplicate {
            tracing::debug!(id, "duplicate enqueue dropped");
        }
        Ok(())
    }

    async fn lease(&self, max: usize, wait: Duration) -> Result<Vec<Delivery>> {
        let deadline = Instant::now() + wait;
        loop {
            let got = self
                .pull(
                    max.max(1),
                    deadline.saturating_duration_since(Instant::now()),
                )
                .await?;
            // The server may end a pull early (e.g. other pulls are waiting for
            // the same messages): ask again until the wait is over.
            if !got.is_empty() || Instant::now() + REPULL_PAUSE >= deadline {
                return Ok(got);
            }
            tokio::time::sleep(REPULL_PAUSE).await;
        }
    }

    async fn ack(&self, d: &Delivery) -> Result<()> {
        self.settle(d, AckKind::Ack, "ack").await
    }

    async fn nack(&self, d: &Delivery, delay: Duration) -> Result<()> {
        let delay = (!delay.is_zero()).then_some(delay);
        self.settle(d, AckKind::Nak(delay), "nack").await
    }

    async fn extend(&self, d: &Delivery) -> Result<()> {
        self.leases.check(d)?;
        self.link
            .request("extend", d.lease.clone(), AckKind::Progress.into())
            .await?;
        self.leases.renew(d);
        Ok(())
    }

    async fn stats(&self) -> Result<QueueStats> {
        let info = self
            .link
            .run("queue stats", self.consumer.get_info())
            .await?
            .map_err(|e| self.link.fault("queue stats", e))?;
        Ok(QueueStats {
            pending: info.num_pending,
            in_flight: info.num_ack_pending as u64,
        })
    }

    fn ack_wait(&self) -> Duration {
        self.ack_wait
    }
}
