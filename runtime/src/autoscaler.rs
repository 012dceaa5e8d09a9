//! The autoscaler: watches the queue's backlog and the live workers, and adds or
//! removes worker instances through a [`WorkerScaler`].
//!
//! - [`policy`]: [`policy::decide`], the pure decision (thresholds, min/max,
//!   cooldown) with its unit and simulation tests;
//! - this module: the [`WorkerScaler`] port and the loop [`run`].

pub mod policy;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use tokio_util::sync::CancellationToken;

use crate::Result;
use crate::ports::WorkQueue;
pub use policy::{Decision, Observation, ScalePolicy, decide};

/// Starts and stops worker instances (containers, processes, ...).
#[async_trait]
pub trait WorkerScaler: Send + Sync + 'static {
    /// Ids of the worker instances that are running, the ones to remove first last.
    async fn workers(&self) -> Result<Vec<String>>;
    /// Starts `n` more instances.
    async fn add(&self, n: u32) -> Result<()>;
    /// Drains (SIGTERM, grace period) and removes these instances.
    async fn remove(&self, ids: &[String]) -> Result<()>;
}

/// Runs the control loop every `interval` until `shutdown`.
pub async fn run(
    queue: Arc<dyn WorkQueue>,
    scaler: Arc<dyn WorkerScaler>,
    policy: ScalePolicy,
    interval: Duration,
    shutdown: CancellationToken,
) {
    let started = tokio::time::Instant::now();
    let mut last_change: Option<Duration> = None;
    loop {
        match step(
            queue.as_ref(),
            scaler.as_ref(),
            &policy,
            started.elapsed(),
            last_change,
        )
        .await
        {
            Ok(true) => last_change = Some(started.elapsed()),
            Ok(false) => {}
            Err(e) => tracing::warn!(error = %e, "autoscaler step failed"),
        }
        tokio::select! {
            _ = tokio::time::sleep(interval) => {}
            _ = shutdown.cancelled() => return,
        }
    }
}

/// One observation and decision; true when it changed the worker count.
async fn step(
    queue: &dyn WorkQueue,
    scaler: &dyn WorkerScaler,
    policy: &ScalePolicy,
    now: Duration,
    last_change: Option<Duration>,
) -> Result<bool> {
    let stats = queue.stats().await?;
    let workers = scaler.workers().await?;
    let obs = Observation {
        backlog: stats.pending + stats.in_flight,
        workers: workers.len() as u32,
        now,
        last_change,
    };
    let decision = decide(policy, &obs);
    tracing::info!(
        backlog = obs.backlog,
        workers = obs.workers,
        ?decision,
        "autoscaler"
    );
    match decision {
        Decision::Hold(_) => Ok(false),
        Decision::ScaleTo(n) if n > obs.workers => scaler.add(n - obs.workers).await.map(|_| true),
        Decision::ScaleTo(n) => {
            let excess = (obs.workers - n) as usize;
            let victims: Vec<String> = workers.iter().rev().take(excess).cloned().collect();
            scaler.remove(&victims).await.map(|_| true)
        }
    }
}
