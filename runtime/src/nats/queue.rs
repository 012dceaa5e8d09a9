//! [`NatsQueue`]: the work-queue port on a JetStream stream with work-queue
//! retention and one durable pull consumer shared by every worker.
//!
//! - enqueue publishes on `<subject>.<id>` with `Nats-Msg-Id` = the message id
//!   (duplicates inside the stream's duplicate window are dropped) and waits for
//!   the server's PubAck, so an accepted message is stored. The per-id subject lets
//!   [`WorkQueue::holds`] ask the stream whether it still holds a message, so a
//!   re-queue never duplicates one. The cap (`max_messages`) is checked before a
//!   new message is published (from stream counts at most [`COUNT_TTL`] old);
//!   re-queues of accepted work pass it;
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
use async_nats::jetstream::stream::{
    self, DiscardPolicy, LastRawMessageErrorKind, RetentionPolicy, StorageType,
};
use async_nats::jetstream::{AckKind, ErrorCode};
use async_trait::async_trait;
use bytes::Bytes;
use futures::StreamExt;
use tokio::time::Instant;

use super::NatsConfig;
use super::kv::NatsKv;
use super::leases::Leases;
use super::link::{Link, api_code};
use crate::ports::{Delivery, KvStore, KvWrite, QueueStats, WorkQueue};
use crate::{Error, Result};

/// Pause before asking again when the server ends a pull early without messages.
const REPULL_PAUSE: Duration = Duration::from_millis(20);

/// How old the message count behind the cap check may be.
pub const COUNT_TTL: Duration = Duration::from_millis(250);

/// A durable queue on NATS JetStream; cheap to clone.
#[derive(Clone)]
pub struct NatsQueue {
    link: Link,
    kv: NatsKv,
    stream: stream::Stream,
    consumer: PullConsumer,
    subject: String,
    ack_wait: Duration,
    max_messages: u64,
    count: Arc<std::sync::Mutex<Option<(Instant, u64)>>>,
    leases: Arc<Leases>,
}

impl NatsQueue {
    /// Creates or updates the stream and its consumer as `config` describes.
    pub(crate) async fn open(link: Link, kv: NatsKv, config: &NatsConfig) -> Result<Self> {
        let js = link.js();
        js.create_or_update_stream(stream::Config {
            name: config.stream.clone(),
            // The bare subject is kept for messages of older releases.
            subjects: vec![config.subject.clone(), format!("{}.*", config.subject)],
            retention: RetentionPolicy::WorkQueue,
            storage: StorageType::File,
            // The cap is the platform's (new work only); re-queues must pass.
            max_messages: -1,
            discard: DiscardPolicy::New,
            duplicate_window: config.duplicate_window,
            num_replicas: config.replicas.max(1),
            ..Default::default()
        })
        .await
        .map_err(|e| link.fault("create the queue stream", e))?;
        let stream = js
            .get_stream(&config.stream)
            .await
            .map_err(|e| link.fault("open the queue stream", e))?;
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
            kv,
            stream,
            consumer,
            subject: config.subject.clone(),
            ack_wait: config.ack_wait,
            max_messages: config.max_messages,
            count: Arc::new(std::sync::Mutex::new(None)),
            leases: Arc::new(Leases::new(config.ack_wait)),
        })
    }

    /// `Overloaded` when the stream holds `max_messages` or more and `id` is not
    /// one of them. The count is at most [`COUNT_TTL`] old plus the messages this
    /// process published since; it is read afresh before refusing.
    async fn admit(&self, id: &str) -> Result<()> {
        let cached = self
            .cached_count()
            .filter(|(at, _)| at.elapsed() < COUNT_TTL);
        let held = match cached {
            Some((_, n)) if n < self.max_messages => n,
            _ => self.fresh_count().await?,
        };
        if held < self.max_messages {
            if let Some((_, n)) = self
                .count
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .as_mut()
            {
                *n += 1;
            }
            return Ok(());
        }
        if self.holds(id).await? {
            return Ok(());
        }
        Err(Error::Overloaded(format!(
            "the queue holds {held} messages, its limit"
        )))
    }

    async fn fresh_count(&self) -> Result<u64> {
        let mut stream = self.stream.clone();
        let info = self
            .link
            .run("queue count", stream.info())
            .await?
            .map_err(|e| self.link.fault("queue count", e))?;
        let n = info.state.messages;
        *self.count.lock().unwrap_or_else(|p| p.into_inner()) = Some((Instant::now(), n));
        Ok(n)
    }

    fn cached_count(&self) -> Option<(Instant, u64)> {
        *self.count.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Publishes one message on its own subject and waits for the PubAck.
    async fn publish(&self, id: &str, payload: Bytes) -> Result<()> {
        if id.is_empty() || id.contains(['.', '*', '>', ' ']) {
            return Err(Error::Invalid(format!("invalid message id {id:?}")));
        }
        let message = PublishMessage::build().payload(payload).message_id(id);
        let subject = format!("{}.{id}", self.subject);
        let publish = async {
            let js = self.link.js();
            js.send_publish(subject, message).await?.await
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
    async fn enqueue_with(
        &self,
        writes: Vec<KvWrite>,
        id: &str,
        payload: Bytes,
    ) -> Result<Vec<u64>> {
        self.admit(id).await?;
        let revs = self.kv.apply(writes).await?;
        self.publish(id, payload).await?;
        Ok(revs)
    }

    async fn requeue(&self, id: &str, payload: Bytes) -> Result<()> {
        if self.holds(id).await? {
            return Ok(());
        }
        self.publish(id, payload).await
    }

    async fn holds(&self, id: &str) -> Result<bool> {
        let subject = format!("{}.{id}", self.subject);
        let found = self
            .link
            .run(
                "find message",
                self.stream.get_last_raw_message_by_subject(&subject),
            )
            .await?;
        match found {
            Ok(_) => Ok(true),
            Err(e) if e.kind() == LastRawMessageErrorKind::NoMessageFound => Ok(false),
            Err(e) => Err(self.link.fault("find message", e)),
        }
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
