//! Wiring of the Docker executor: connect when configured, the capability listener
//! on the functions' network gateway, and the periodic reaper of orphaned containers.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use faas_executors::docker::{DockerConfig, DockerExecutor};
use faas_runtime::store::Store;
use faas_runtime::worker::presence;
use tokio_util::sync::CancellationToken;

use crate::config::{DockerMode, ServeConfig};

/// The Docker executor, if the mode asks for it and (for `auto`) an engine answers.
pub async fn connect(
    c: &ServeConfig,
    worker_id: &str,
) -> anyhow::Result<Option<Arc<DockerExecutor>>> {
    if c.docker == DockerMode::Off {
        return Ok(None);
    }
    let config = DockerConfig {
        network: c.network_name.clone(),
        worker_id: worker_id.to_string(),
        ..DockerConfig::default()
    };
    match DockerExecutor::connect(config).await {
        Ok(d) => Ok(Some(Arc::new(d))),
        Err(e) if c.docker == DockerMode::Auto => {
            tracing::info!(reason = %e, "no Docker engine: image functions are disabled (FAAS_DOCKER=auto)");
            Ok(None)
        }
        Err(e) => Err(anyhow::anyhow!(
            "FAAS_DOCKER=on but the Docker engine is unavailable: {e}"
        )),
    }
}

/// Removes labelled containers whose execution is no longer active or whose worker
/// no longer sends heartbeats: at once, then every `every` until `stop`.
pub async fn reap_forever(
    docker: Arc<DockerExecutor>,
    store: Store,
    every: Duration,
    stop: CancellationToken,
) {
    loop {
        match reap_once(&docker, &store).await {
            Ok(0) => {}
            Ok(removed) => tracing::info!(removed, "orphaned function containers removed"),
            Err(e) => tracing::warn!(error = %e, "reaping containers failed"),
        }
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = stop.cancelled() => return,
        }
    }
}

async fn reap_once(docker: &DockerExecutor, store: &Store) -> faas_runtime::Result<usize> {
    let active: HashSet<String> = store.active_executions(0).await?.into_iter().collect();
    let live: HashSet<String> = presence::list(store)
        .await?
        .into_iter()
        .filter(|p| p.is_live())
        .map(|p| p.worker_id)
        .collect();
    docker
        .reap(|exec, worker| active.contains(exec) && live.contains(worker))
        .await
}
