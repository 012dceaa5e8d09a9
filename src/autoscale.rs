//! `faas autoscaler`: watches the NATS queue's backlog and scales worker containers
//! through the Docker API ([`faas_executors::scaler::DockerScaler`]).

use std::future::Future;
use std::sync::Arc;

use anyhow::Context;
use faas_executors::scaler::DockerScaler;
use faas_runtime::autoscaler::{self, ScalePolicy};
use faas_runtime::nats::{NatsConfig, connect};
use tokio_util::sync::CancellationToken;

use crate::config::AutoscalerConfig;

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
    let stop = CancellationToken::new();
    let looped = tokio::spawn(autoscaler::run(
        Arc::new(nats.queue),
        Arc::new(scaler),
        policy,
        c.check_interval,
        stop.clone(),
    ));
    shutdown.await;
    stop.cancel();
    let _ = looped.await;
    Ok(())
}
