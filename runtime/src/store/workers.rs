//! Worker presence records (bucket `workers`): each worker's heartbeat, read by
//! `GET /api/workers`, the autoscaler, and a worker deciding whether another one
//! can run a runtime it cannot ([`crate::worker::presence`]).

use super::{Store, buckets as b};
use crate::Result;
use crate::ports::Scan;
use crate::worker::presence::WorkerPresence;

impl Store {
    /// Writes (or refreshes) a worker's heartbeat.
    pub async fn put_worker(&self, me: &WorkerPresence) -> Result<()> {
        self.put_json(b::WORKERS, &me.worker_id, me).await.map(drop)
    }

    /// Removes a worker's heartbeat (absent is fine).
    pub async fn delete_worker(&self, worker_id: &str) -> Result<()> {
        self.kv().delete(b::WORKERS, worker_id).await
    }

    /// One worker's heartbeat, if it has one.
    pub async fn get_worker(&self, worker_id: &str) -> Result<Option<WorkerPresence>> {
        Ok(self.get_json(b::WORKERS, worker_id).await?.map(|(p, _)| p))
    }

    /// Every worker's heartbeat, live or stale.
    pub async fn list_workers(&self) -> Result<Vec<WorkerPresence>> {
        let rows = self.kv().scan(b::WORKERS, Scan::default()).await?;
        rows.into_iter()
            .map(|(_, e)| serde_json::from_slice(&e.value).map_err(crate::Error::from))
            .collect()
    }
}
