//! [`NatsCompletions`]: state changes of executions as core NATS messages on
//! `faas.done.<execution id>` (no JetStream: a waiter only needs the changes made
//! while it listens; the record is the truth), so an API process answers as soon
//! as a worker in another process writes the change.
//!
//! The subscription is flushed to the server before `subscribe` returns; a
//! read of the record sent afterwards on the same connection is processed after
//! it, so a change written after that read is always delivered.

use async_trait::async_trait;
use futures::StreamExt;

use super::link::Link;
use crate::Result;
use crate::model::ExecutionStatus;
use crate::ports::{Changes, Completions};

/// Subject prefix of state changes.
pub const SUBJECT_PREFIX: &str = "faas.done";

/// [`Completions`] over core NATS subjects.
#[derive(Clone)]
pub struct NatsCompletions {
    link: Link,
}

impl NatsCompletions {
    pub(crate) fn new(link: Link) -> Self {
        NatsCompletions { link }
    }
}

fn subject(execution_id: &str) -> String {
    // Ids are UUIDs; anything that is not a subject token character is replaced.
    let token: String = execution_id
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    format!("{SUBJECT_PREFIX}.{token}")
}

#[async_trait]
impl Completions for NatsCompletions {
    async fn subscribe(&self, execution_id: &str) -> Result<Changes> {
        self.link.check()?;
        let client = self.link.client();
        let sub = client
            .subscribe(subject(execution_id))
            .await
            .map_err(|e| self.link.fault("subscribe to completions", e))?;
        client
            .flush()
            .await
            .map_err(|e| self.link.fault("flush a subscription", e))?;
        let stream = sub.filter_map(|m| async move {
            std::str::from_utf8(&m.payload)
                .ok()
                .and_then(ExecutionStatus::parse)
        });
        Ok(Changes::new(stream))
    }

    async fn publish(&self, execution_id: &str, status: ExecutionStatus) {
        let payload = bytes::Bytes::from_static(status.as_str().as_bytes());
        if let Err(e) = self
            .link
            .client()
            .publish(subject(execution_id), payload)
            .await
        {
            tracing::debug!(execution.id = %execution_id, error = %e, "completion signal not sent; waiters fall back to their deadline");
        }
    }
}
