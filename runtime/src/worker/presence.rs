//! Worker presence: every worker writes a heartbeat record (bucket `workers`) so
//! operators (`GET /api/workers`) and the autoscaler can see who is alive.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use tokio_util::sync::CancellationToken;

use crate::model::RuntimeKind;
use crate::store::Store;

/// How often a worker refreshes its record.
pub const HEARTBEAT_EVERY: Duration = Duration::from_secs(5);

/// A record older than this belongs to a worker that is gone.
pub const HEARTBEAT_STALE: Duration = Duration::from_secs(20);

/// One worker's heartbeat.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct WorkerPresence {
    /// Worker id.
    pub worker_id: String,
    /// Host name.
    pub host: String,
    /// Executions running now.
    pub running: usize,
    /// Its concurrency limit.
    pub max_concurrent: usize,
    /// The runtimes it can run (its executors).
    #[serde(default)]
    pub runtimes: Vec<RuntimeKind>,
    /// Start time.
    #[serde(with = "time::serde::rfc3339")]
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub started_at: OffsetDateTime,
    /// Last heartbeat.
    #[serde(with = "time::serde::rfc3339")]
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub last_seen: OffsetDateTime,
}

impl WorkerPresence {
    /// True when the heartbeat is recent.
    pub fn is_live(&self) -> bool {
        OffsetDateTime::now_utc() - self.last_seen < HEARTBEAT_STALE
    }
}

/// Writes the heartbeat until `stop`, then removes it.
pub(super) async fn announce(
    store: Store,
    mut me: WorkerPresence,
    running: Arc<AtomicUsize>,
    stop: CancellationToken,
) {
    loop {
        me.running = running.load(Ordering::Relaxed);
        me.last_seen = OffsetDateTime::now_utc();
        if let Err(e) = store.put_worker(&me).await {
            tracing::warn!(error = %e, "worker heartbeat failed");
        }
        tokio::select! {
            _ = tokio::time::sleep(HEARTBEAT_EVERY) => {}
            _ = stop.cancelled() => break,
        }
    }
    let _ = store.delete_worker(&me.worker_id).await;
}

/// Every worker record, live or stale, by id.
pub async fn list(store: &Store) -> crate::Result<Vec<WorkerPresence>> {
    store.list_workers().await
}

/// True when a live worker other than `me` offers `runtime`.
pub async fn offered_elsewhere(
    store: &Store,
    runtime: RuntimeKind,
    me: &str,
) -> crate::Result<bool> {
    Ok(list(store)
        .await?
        .iter()
        .any(|p| p.worker_id != me && p.is_live() && p.runtimes.contains(&runtime)))
}

/// True when a live worker offers `runtime` (what a deploy checks when its own
/// process cannot run the function).
pub async fn offered(store: &Store, runtime: RuntimeKind) -> crate::Result<bool> {
    offered_elsewhere(store, runtime, "").await
}

/// Removes every heartbeat record: for a single-process deployment at start-up,
/// when every recorded worker is an earlier, dead life of this process.
pub async fn clear(store: &Store) -> crate::Result<usize> {
    let all = list(store).await?;
    for p in &all {
        store.delete_worker(&p.worker_id).await?;
    }
    Ok(all.len())
}
