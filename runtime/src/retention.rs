//! Retention: finished executions that ended longer ago than the operator's
//! retention are deleted in the background with everything stored for them (the
//! chunks of their input, output and logs, every attempt's; their index entry;
//! a callback entry left behind), on every backend.
//!
//! Execution ids are UUID v7, so the `executions` bucket is in creation order: a
//! sweep walks it oldest first and stops at the first id made after the cutoff
//! (nothing made later can have ended before it). On NATS a delete purges the
//! key's subject ([`crate::nats::NatsKv`]), so no delete marker is left behind
//! and the buckets do not grow with deleted records.

use std::time::Duration;

use time::OffsetDateTime;
use tokio_util::sync::CancellationToken;

use crate::Result;
use crate::model::now;
use crate::ports::Scan;
use crate::store::spill::StoredExecution;
use crate::store::{Store, buckets as b};

/// Records read per page of a sweep.
const PAGE: usize = 200;

/// What one sweep did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Swept {
    /// Records read.
    pub examined: usize,
    /// Executions deleted.
    pub deleted: usize,
}

impl Store {
    /// Deletes the executions that reached a final state before `cutoff` (those
    /// without an end time: created before it), with their chunks and entries.
    pub async fn sweep_executions(&self, cutoff: OffsetDateTime) -> Result<Swept> {
        let mut swept = Swept::default();
        let mut after = None;
        loop {
            let scan = Scan {
                after: after.clone(),
                limit: PAGE,
                ..Scan::default()
            };
            let rows = self.kv().scan(b::EXECUTIONS, scan).await?;
            let Some((last, _)) = rows.last() else {
                return Ok(swept);
            };
            after = Some(last.clone());
            for (id, entry) in rows {
                if id_time(&id).is_some_and(|made| made > cutoff) {
                    return Ok(swept);
                }
                swept.examined += 1;
                let Ok(stored) = serde_json::from_slice::<StoredExecution>(&entry.value) else {
                    tracing::warn!(execution.id = %id, "unreadable execution record kept");
                    continue;
                };
                let e = &stored.exec;
                let ended = e.completed_at.unwrap_or(e.created_at);
                if e.status.is_final() && ended < cutoff {
                    self.delete_finished(&stored).await?;
                    swept.deleted += 1;
                }
            }
        }
    }

    /// Removes a final execution: its chunks (every attempt's), index and
    /// callback entries, then the record (a cut halfway leaves the record, and
    /// the next sweep finishes).
    async fn delete_finished(&self, stored: &StoredExecution) -> Result<()> {
        let e = &stored.exec;
        let chunks = Scan {
            prefix: format!("{}.", e.id),
            ..Scan::default()
        };
        for (key, _) in self.kv().scan(b::EXECUTION_DATA, chunks).await? {
            self.kv().delete(b::EXECUTION_DATA, &key).await?;
        }
        self.kv()
            .delete(b::EXECUTIONS_BY_OWNER, &format!("{}.{}", e.owner_id, e.id))
            .await?;
        self.remove_callback_entry(&e.id).await?;
        self.kv().delete(b::EXECUTIONS, &e.id).await
    }
}

/// The creation time of a UUID v7 id (`None` for other ids).
fn id_time(id: &str) -> Option<OffsetDateTime> {
    let ts = uuid::Uuid::parse_str(id).ok()?.get_timestamp()?;
    let (secs, nanos) = ts.to_unix();
    let at = i128::from(secs) * 1_000_000_000 + i128::from(nanos);
    OffsetDateTime::from_unix_timestamp_nanos(at).ok()
}

/// Sweeps every `every` until `stop`: executions that ended more than `keep` ago
/// are deleted. A failed sweep is logged and tried again at the next one.
pub async fn run(store: Store, keep: Duration, every: Duration, stop: CancellationToken) {
    loop {
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = stop.cancelled() => return,
        }
        let cutoff = now() - keep;
        match store.sweep_executions(cutoff).await {
            Ok(s) if s.deleted > 0 => {
                crate::metrics::retention_deleted(s.deleted as u64);
                tracing::info!(
                    deleted = s.deleted,
                    examined = s.examined,
                    "retention sweep"
                );
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "retention sweep failed; the next one retries"),
        }
    }
}

#[cfg(test)]
mod tests;
