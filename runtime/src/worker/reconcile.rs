//! The reconciler: repairs what a cut between two writes can leave behind.
//!
//! On NATS a submit is several writes and a publish; a process that dies between
//! them leaves an active record the stream does not hold. The embedded backend
//! accepts a submit in one transaction, but its final write and the removal of the
//! active markers are two statements. Every pass looks at each active id:
//!
//! - no record (the submit was cut before it): the markers are removed;
//! - a final record: the markers are removed;
//! - a pending or running record whose message the queue does not hold: it is
//!   queued again, under the same id (never a duplicate message).
//!
//! Ids younger than `min_age` are left alone: their submit may still be going on.

use std::time::Duration;

use bytes::Bytes;
use tokio_util::sync::CancellationToken;

use crate::Result;
use crate::ports::WorkQueue;
use crate::store::Store;

/// What one pass did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Reconciled {
    /// Active executions queued again.
    pub requeued: usize,
    /// Stale active markers removed.
    pub forgotten: usize,
}

/// One pass over the active executions.
pub async fn reconcile_once(
    store: &Store,
    queue: &dyn WorkQueue,
    min_age: Duration,
) -> Result<Reconciled> {
    let mut done = Reconciled::default();
    for id in store.active_executions(0).await? {
        if age(&id).is_some_and(|a| a < min_age) {
            continue;
        }
        match store.get_execution(&id, None).await? {
            Some((e, _)) if !e.status.is_final() => {
                if !queue.holds(&id).await? {
                    queue.requeue(&id, Bytes::from(id.clone())).await?;
                    tracing::info!(execution.id = %id, "active execution was not queued; queued again");
                    done.requeued += 1;
                }
            }
            _ => {
                store.forget_active(&id).await?;
                done.forgotten += 1;
            }
        }
    }
    Ok(done)
}

/// Runs a pass every `every` until `stop`.
pub async fn reconcile_forever(
    store: Store,
    queue: std::sync::Arc<dyn WorkQueue>,
    every: Duration,
    min_age: Duration,
    stop: CancellationToken,
) {
    loop {
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = stop.cancelled() => return,
        }
        match reconcile_once(&store, queue.as_ref(), min_age).await {
            Ok(r) if r != Reconciled::default() => {
                tracing::info!(requeued = r.requeued, forgotten = r.forgotten, "reconciled")
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "reconcile pass failed; next pass retries"),
        }
    }
}

/// How long ago a UUID v7 id was made (`None` for other ids).
fn age(id: &str) -> Option<Duration> {
    let ts = uuid::Uuid::parse_str(id).ok()?.get_timestamp()?;
    let (secs, nanos) = ts.to_unix();
    let made = std::time::UNIX_EPOCH + Duration::new(secs, nanos);
    Some(
        std::time::SystemTime::now()
            .duration_since(made)
            .unwrap_or_default(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn age_reads_uuid_v7_time() {
        let id = crate::model::new_id();
        assert!(age(&id).unwrap() < Duration::from_secs(5));
        assert!(age("not-a-uuid").is_none());
    }
}
