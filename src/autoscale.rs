//! `faas autoscaler`: watches the NATS queue's backlog and scales worker containers
//! through the Docker API ([`faas_executors::scaler::DockerScaler`]).

use std::future::Future;
use std::sync::Arc;

use anyhow::Context;
use faas_executors::scaler::DockerScaler;
use faas_runtime::autoscaler::{self, ScalePolicy, WorkerScaler};
use faas_runtime::nats::{NatsConfig, connect};
use faas_runtime::ports::WorkQueue;
use tokio_util::sync::CancellationToken;

use crate::config::AutoscalerConfig;
use crate::health::Check;

/// Runs the autoscaler until `shutdown` completes.
pub async fn run(c: AutoscalerConfig, shutdown: impl Future<Output = ()>) -> anyhow::Result<()> {
    let config = NatsConfig {
        replicas: c.nats.replicas,
        auth: c.nats.auth(),
        ..NatsConfig::default()
    };
    let nats = connect(&c.nats_url, config).await.with_context(|| {
        format!(
            "connect to NATS at {}",
            faas_runtime::nats::redact(&c.nats_url)
        )
    })?;
    let (key, value) = c
        .worker_label
        .split_once('=')
        .context("FAAS_WORKER_LABEL must be key=value")?;
    let scaler = DockerScaler::connect(key, value, c.grace_secs).await?;
    let policy = ScalePolicy {
        min: c.min_workers,
        max: c.max_workers,
        up: c.scale_up_threshold,
        down: c.scale_down_threshold,
        cooldown: c.cooldown_period,
    };
    tracing::info!(?policy, interval = ?c.check_interval, label = %c.worker_label, "autoscaler started");
    let queue: Arc<dyn WorkQueue> = Arc::new(nats.queue);
    let scaler: Arc<dyn WorkerScaler> = Arc::new(scaler);
    let stop = CancellationToken::new();
    let ended = CancellationToken::new();
    let interval = c.check_interval;
    let looped = tokio::spawn({
        let (queue, scaler, stop, ended) =
            (queue.clone(), scaler.clone(), stop.clone(), ended.clone());
        async move {
            autoscaler::run(queue, scaler, policy, interval, stop).await;
            ended.cancel();
        }
    });
    let health = match c.health_addr {
        Some(at) => Some(
            crate::health::spawn(
                at,
                check(queue, scaler, ended),
                axum::Router::new(),
                stop.clone(),
            )
            .await?
            .1,
        ),
        None => None,
    };
    shutdown.await;
    stop.cancel();
    let _ = looped.await;
    if let Some(h) = health {
        let _ = h.await;
    }
    Ok(())
}

/// Healthy while the scaling loop runs and both what it reads (the queue on NATS)
/// and what it drives (the Docker engine) answer.
fn check(
    queue: Arc<dyn WorkQueue>,
    scaler: Arc<dyn WorkerScaler>,
    ended: CancellationToken,
) -> Check {
    Arc::new(move || {
        let (queue, scaler, ended) = (queue.clone(), scaler.clone(), ended.clone());
        Box::pin(async move {
            if ended.is_cancelled() {
                return Err("the scaling loop has stopped".into());
            }
            queue.stats().await.map_err(|e| format!("queue: {e}"))?;
            scaler.workers().await.map_err(|e| format!("docker: {e}"))?;
            Ok(())
        })
    })
}
