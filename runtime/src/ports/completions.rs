//! [`Completions`]: the signal that an execution's record changed state, so that
//! a waiter (invoke, long poll, event stream) answers without polling.
//!
//! A waiter subscribes *before* it reads the record: a change written after the
//! read is then always signalled. The signal carries only the new status; the
//! waiter reads the record again. Publishing is best effort (a lost signal costs a
//! waiter its deadline, never a wrong answer): the record stays the truth.

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use futures::{Stream, StreamExt};
use tokio::sync::broadcast;

use crate::Result;
use crate::model::ExecutionStatus;

/// The state changes of one execution, from the moment of subscribing.
pub struct Changes {
    inner: Pin<Box<dyn Stream<Item = ExecutionStatus> + Send>>,
}

impl Changes {
    /// Changes read from `stream`.
    pub fn new(stream: impl Stream<Item = ExecutionStatus> + Send + 'static) -> Self {
        Changes {
            inner: Box::pin(stream),
        }
    }

    /// The next new status; `None` when the source is gone.
    pub async fn next(&mut self) -> Option<ExecutionStatus> {
        self.inner.next().await
    }
}

/// Where state changes of executions are announced and awaited.
#[async_trait]
pub trait Completions: Send + Sync + 'static {
    /// Starts listening to `execution_id`'s changes (registered when this returns).
    async fn subscribe(&self, execution_id: &str) -> Result<Changes>;
    /// Announces that `execution_id` is now `status` (after the record is written).
    async fn publish(&self, execution_id: &str, status: ExecutionStatus);
}

/// Signals within one process (`faas serve`): a broadcast channel per execution
/// that someone waits on, removed with its last subscriber. Publishing to an
/// execution nobody waits on costs one map lookup.
#[derive(Clone, Default)]
pub struct LocalCompletions {
    waiters: Arc<Mutex<HashMap<String, broadcast::Sender<ExecutionStatus>>>>,
}

/// Statuses buffered per waiter (an execution has at most three changes).
const CHANNEL_CAPACITY: usize = 8;

impl LocalCompletions {
    /// An empty set of waiters.
    pub fn new() -> Self {
        Self::default()
    }

    /// How many executions have waiters (tests: entries are cleaned up).
    pub fn watched(&self) -> usize {
        self.lock().len()
    }

    fn lock(
        &self,
    ) -> std::sync::MutexGuard<'_, HashMap<String, broadcast::Sender<ExecutionStatus>>> {
        self.waiters.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// One subscriber's receiver; removes the execution's channel once the last
/// receiver is gone.
struct Waiter {
    rx: Option<broadcast::Receiver<ExecutionStatus>>,
    waiters: LocalCompletions,
    id: String,
}

impl Waiter {
    async fn recv(&mut self) -> Option<ExecutionStatus> {
        let rx = self.rx.as_mut()?;
        loop {
            match rx.recv().await {
                Ok(status) => return Some(status),
                Err(broadcast::error::RecvError::Lagged(_)) => continue,
                Err(broadcast::error::RecvError::Closed) => return None,
            }
        }
    }
}

impl Drop for Waiter {
    fn drop(&mut self) {
        drop(self.rx.take());
        let mut map = self.waiters.lock();
        if map.get(&self.id).is_some_and(|tx| tx.receiver_count() == 0) {
            map.remove(&self.id);
        }
    }
}

#[async_trait]
impl Completions for LocalCompletions {
    async fn subscribe(&self, execution_id: &str) -> Result<Changes> {
        let rx = self
            .lock()
            .entry(execution_id.to_string())
            .or_insert_with(|| broadcast::channel(CHANNEL_CAPACITY).0)
            .subscribe();
        let waiter = Waiter {
            rx: Some(rx),
            waiters: self.clone(),
            id: execution_id.to_string(),
        };
        let stream = futures::stream::unfold(waiter, |mut w| async move {
            let status = w.recv().await?;
            Some((status, w))
        });
        Ok(Changes::new(stream))
    }

    async fn publish(&self, execution_id: &str, status: ExecutionStatus) {
        if let Some(tx) = self.lock().get(execution_id) {
            let _ = tx.send(status);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn local_completions_wake_subscribers_and_forget_them_when_dropped() {
        let c = LocalCompletions::new();
        c.publish("a", ExecutionStatus::Running).await;
        let mut one = c.subscribe("a").await.unwrap();
        let mut two = c.subscribe("a").await.unwrap();
        assert_eq!(c.watched(), 1);
        c.publish("a", ExecutionStatus::Completed).await;
        assert_eq!(one.next().await, Some(ExecutionStatus::Completed));
        assert_eq!(two.next().await, Some(ExecutionStatus::Completed));
        drop(one);
        assert_eq!(c.watched(), 1);
        drop(two);
        assert_eq!(c.watched(), 0, "the last waiter's channel is removed");
    }
}
