//! The worker: leases executions from the [`WorkQueue`], prepares their secrets and
//! objects, runs them through an [`Executor`] and records the outcome with
//! revision-checked writes, so a stale attempt never overwrites a newer one.
//!
//! - `attempt`: one delivery from lease to ack (claim, prepare, run, record);
//! - `context`: secrets, object grants and staging for one attempt;
//! - `guard`: the one owner of an attempt's grant and staging directory, and the
//!   start-up sweep of what a dead process left;
//! - `defer`: bounded retries of preparation faults and unready executors;
//! - [`presence`]: the heartbeat that shows a worker is alive and what it runs;
//! - [`reconcile`]: queues again what a cut between two writes left unqueued.

mod attempt;
mod cancel;
mod context;
mod defer;
mod guard;
pub mod presence;
pub mod reconcile;

pub use crate::store::{Grant, grant_key};
pub use guard::sweep_staging;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::model::RuntimeKind;
use crate::ports::{Executor, ObjectStore, WorkQueue};
use crate::sealing::SecretBox;
use crate::store::Store;

/// Worker settings.
#[derive(Debug, Clone)]
pub struct WorkerConfig {
    /// This worker's id (labels, logs, heartbeats).
    pub worker_id: String,
    /// Most executions run at once (`MAX_CONCURRENT_EXECUTIONS`).
    pub max_concurrent: usize,
    /// Deliveries after which an execution is failed for good.
    pub max_attempts: u32,
    /// Deferrals (failed preparations, no ready executor) after which an execution
    /// fails with their cause.
    pub max_deferrals: u32,
    /// Operator cap on any function's timeout.
    pub max_timeout: Duration,
    /// stdout cap in bytes.
    pub stdout_cap: usize,
    /// stderr cap in bytes.
    pub stderr_cap: usize,
    /// Base of `API_BASE_URL` given to functions (the API's object route prefix).
    pub api_base_url: String,
    /// Where objects are staged for an execution (`<staging_dir>/<worker_id>/...`).
    pub staging_dir: PathBuf,
    /// How long in-flight executions may finish after shutdown begins.
    pub grace: Duration,
}

/// Everything a worker reaches.
pub struct Worker {
    store: Store,
    queue: Arc<dyn WorkQueue>,
    objects: Arc<dyn ObjectStore>,
    executors: HashMap<RuntimeKind, Arc<dyn Executor>>,
    secrets: SecretBox,
    config: WorkerConfig,
}

impl Worker {
    /// A worker over the given ports.
    pub fn new(
        store: Store,
        queue: Arc<dyn WorkQueue>,
        objects: Arc<dyn ObjectStore>,
        executors: Vec<Arc<dyn Executor>>,
        secrets: SecretBox,
        config: WorkerConfig,
    ) -> Arc<Self> {
        let executors = crate::ports::by_kind(executors);
        Arc::new(Worker {
            store,
            queue,
            objects,
            executors,
            secrets,
            config,
        })
    }

    /// Queues again every execution that is not final and not queued, whatever the
    /// queue's cap, and drops stale active markers. Run at start-up by the process
    /// that owns the queue (embedded backend).
    pub async fn requeue_unfinished(&self) -> crate::Result<usize> {
        let done =
            reconcile::reconcile_once(&self.store, self.queue.as_ref(), Duration::ZERO).await?;
        Ok(done.requeued)
    }

    /// Runs until `shutdown` fires, then lets in-flight executions finish within the
    /// grace period and hands the rest back to the queue.
    pub async fn run(self: Arc<Self>, shutdown: CancellationToken) {
        let permits = Arc::new(Semaphore::new(self.config.max_concurrent.max(1)));
        let hard_stop = CancellationToken::new();
        let mut tasks = JoinSet::new();
        let running = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let presence = tokio::spawn(presence::announce(
            self.store.clone(),
            self.presence(),
            running.clone(),
            shutdown.clone(),
        ));
        tracing::info!(worker.id = %self.config.worker_id, max_concurrent = self.config.max_concurrent, "worker started");
        let slots = self.config.max_concurrent.max(1) as f64;
        crate::metrics::worker_slots(slots);
        while !shutdown.is_cancelled() {
            while tasks.try_join_next().is_some() {}
            let acquired = tokio::select! {
                p = permits.clone().acquire_owned() => p,
                _ = shutdown.cancelled() => break,
            };
            let Ok(first) = acquired else { break };
            let mut held = vec![first];
            while let Ok(p) = permits.clone().try_acquire_owned() {
                held.push(p);
            }
            let leased = tokio::select! {
                r = self.queue.lease(held.len(), Duration::from_secs(1)) => r,
                _ = shutdown.cancelled() => break,
            };
            let deliveries = match leased {
                Ok(d) => d,
                Err(e) => {
                    tracing::warn!(error = %e, "queue lease failed; retrying");
                    tokio::time::sleep(Duration::from_millis(500)).await;
                    continue;
                }
            };
            for (delivery, permit) in deliveries.into_iter().zip(held.drain(..)) {
                let worker = self.clone();
                let stop = hard_stop.clone();
                let running = running.clone();
                tasks.spawn(async move {
                    running.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    crate::metrics::worker_slot_busy(1.0);
                    worker.attempt(delivery, stop).await;
                    crate::metrics::worker_slot_busy(-1.0);
                    running.fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
                    drop(permit);
                });
            }
        }
        self.drain(tasks, hard_stop).await;
        crate::metrics::worker_slots(-slots);
        let _ = presence.await;
    }

    fn presence(&self) -> presence::WorkerPresence {
        let now = time::OffsetDateTime::now_utc();
        presence::WorkerPresence {
            worker_id: self.config.worker_id.clone(),
            host: std::env::var("HOSTNAME").unwrap_or_default(),
            running: 0,
            max_concurrent: self.config.max_concurrent,
            runtimes: self.runtimes(),
            started_at: now,
            last_seen: now,
        }
    }

    /// The runtimes this worker has executors for, in a stable order.
    pub fn runtimes(&self) -> Vec<RuntimeKind> {
        let mut kinds: Vec<RuntimeKind> = self.executors.keys().copied().collect();
        kinds.sort_by_key(|k| k.as_str());
        kinds
    }

    /// Removes what dead processes left. When `exclusive` (this process alone runs
    /// attempts, as on the embedded backend): the whole staging directory and every
    /// grant. Else: staging directories of workers with no live heartbeat, and
    /// grants that expired or whose execution is final. Run at start-up, before
    /// [`Worker::run`]; returns (staging entries, grants) removed.
    pub async fn sweep_leftovers(&self, exclusive: bool) -> crate::Result<(usize, usize)> {
        let root = self.config.staging_dir.clone();
        let live: Option<Vec<String>> = match exclusive {
            true => None,
            false => Some(
                presence::list(&self.store)
                    .await?
                    .into_iter()
                    .filter(|p| p.is_live())
                    .map(|p| p.worker_id)
                    .collect(),
            ),
        };
        let staged = tokio::task::spawn_blocking(move || {
            let keep = live.map(|ids| move |name: &str| ids.iter().any(|id| id == name));
            sweep_staging(&root, keep.as_ref().map(|k| k as &dyn Fn(&str) -> bool))
        })
        .await
        .map_err(|e| crate::Error::Internal(format!("staging sweep failed: {e}")))?;
        let grants = self.store.sweep_grants(exclusive).await?;
        Ok((staged, grants))
    }

    async fn drain(&self, mut tasks: JoinSet<()>, hard_stop: CancellationToken) {
        tracing::info!(
            in_flight = tasks.len(),
            grace_secs = self.config.grace.as_secs(),
            "worker draining"
        );
        let all_done = async { while tasks.join_next().await.is_some() {} };
        if tokio::time::timeout(self.config.grace, all_done)
            .await
            .is_err()
        {
            tracing::warn!("grace period over: handing unfinished executions back to the queue");
            hard_stop.cancel();
            while tasks.join_next().await.is_some() {}
        }
        tracing::info!("worker stopped");
    }
}
