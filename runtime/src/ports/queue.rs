//! A durable work queue with leases (visibility timeouts) and redelivery.

use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;

use crate::Result;
use crate::ports::KvWrite;

/// A message handed to one consumer until it is acked, nacked or its lease expires.
#[derive(Debug, Clone)]
pub struct Delivery {
    /// The message id given at enqueue (the execution id).
    pub id: String,
    /// The message body.
    pub payload: Bytes,
    /// 1 for the first delivery, 2 for the first redelivery, ...
    pub attempt: u32,
    /// Identifies this lease. The embedded queue refuses an ack with an expired lease;
    /// NATS refuses it only within the process that leased it. Either way a stale
    /// attempt's result is fenced by the revision-checked final write, not the ack.
    pub lease: String,
}

/// Queue depth, for the autoscaler and `/readyz`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct QueueStats {
    /// Waiting to be delivered (embedded: including delayed redeliveries; NATS counts
    /// a message nacked with a delay as in flight until it is redelivered).
    pub pending: u64,
    /// Delivered and not yet acked.
    pub in_flight: u64,
}

/// At-least-once delivery of messages to competing consumers.
///
/// A delivered message stays invisible for the queue's ack wait; [`WorkQueue::extend`]
/// renews it while work goes on. Without an ack it is delivered again with a
/// higher `attempt`.
#[async_trait]
pub trait WorkQueue: Send + Sync + 'static {
    /// Adds a message; an id already queued is not added twice.
    /// `Overloaded` when the queue is full.
    async fn enqueue(&self, id: &str, payload: Bytes) -> Result<()> {
        self.enqueue_with(Vec::new(), id, payload).await.map(|_| ())
    }
    /// Applies `writes` to the key-value store and adds a message, as one unit where
    /// the backend can: the embedded backend does both in one transaction (all or
    /// nothing); NATS applies the writes, then publishes, so a cut in between leaves
    /// records without a message, which [`crate::worker::reconcile`] queues again.
    /// `Overloaded` (nothing written) when the queue is full. Returns the writes'
    /// revisions.
    async fn enqueue_with(
        &self,
        writes: Vec<KvWrite>,
        id: &str,
        payload: Bytes,
    ) -> Result<Vec<u64>>;
    /// Re-adds a message that was accepted before (start-up recovery, reconciler):
    /// never refused by the queue's cap, and an id the queue still holds is not
    /// added twice.
    async fn requeue(&self, id: &str, payload: Bytes) -> Result<()>;
    /// True while the queue holds a message with this id (waiting, delayed or leased).
    async fn holds(&self, id: &str) -> Result<bool>;
    /// Up to `max` messages, waiting up to `wait` for the first.
    async fn lease(&self, max: usize, wait: Duration) -> Result<Vec<Delivery>>;
    /// Done: removes the message. `Conflict` if the lease was lost.
    async fn ack(&self, delivery: &Delivery) -> Result<()>;
    /// Not done: deliver again after `delay`.
    async fn nack(&self, delivery: &Delivery, delay: Duration) -> Result<()>;
    /// Still working: renews the lease. `Conflict` if it was lost.
    async fn extend(&self, delivery: &Delivery) -> Result<()>;
    /// How deep the queue is.
    async fn stats(&self) -> Result<QueueStats>;
    /// The lease length (ack wait) of this queue.
    fn ack_wait(&self) -> Duration;
}
