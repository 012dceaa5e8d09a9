//! Wiring of the Docker executor: connect when configured (with the installation's
//! id and the image allow-list), and the periodic sweep that removes orphaned
//! containers of this installation and the pulled images no function uses.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use faas_executors::docker::{AllowedImages, DockerConfig, DockerExecutor};
use faas_runtime::store::Store;
use faas_runtime::worker::presence;
use tokio_util::sync::CancellationToken;

use crate::config::{DockerMode, ServeConfig};

/// The Docker executor, if the mode asks for it and (for `auto`) an engine answers.
pub async fn connect(
    c: &ServeConfig,
    store: &Store,
    worker_id: &str,
) -> anyhow::Result<Option<Arc<DockerExecutor>>> {
    if c.docker == DockerMode::Off {
        return Ok(None);
    }
    let config = DockerConfig {
        network: c.network_name.clone(),
        worker_id: worker_id.to_string(),
        installation_id: store.installation_id().await?,
        allowed_images: AllowedImages::parse(&c.allowed_images),
        pulled_images_file: Some(c.data_dir.join("pulled-images")),
        warm: c.warm_config(),
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

/// Removes this installation's containers whose execution is no longer active or
/// whose worker no longer sends heartbeats, then pulled images that no function
/// uses: at once, then every `every` until `stop`.
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
        if let Err(e) = remove_unused_images(&docker, &store).await {
            tracing::warn!(error = %e, "removing unused images failed");
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
    prune_warm(docker, store).await?;
    docker
        .reap(|exec, worker| live.contains(worker) && exec.is_none_or(|exec| active.contains(exec)))
        .await
}

/// Removes the warm containers of deleted functions, and of versions that neither
/// `latest` nor an alias points at any more (a redeploy).
async fn prune_warm(docker: &DockerExecutor, store: &Store) -> faas_runtime::Result<()> {
    for id in docker.warm_functions() {
        let Some(f) = store.get_function(&id, None).await? else {
            docker.retain_warm(&id, |_, _| false);
            continue;
        };
        let mut in_use: HashSet<(String, u64)> = HashSet::new();
        in_use.extend(
            f.runnable
                .image()
                .map(|i| (i.image_url.clone(), f.memory_mb)),
        );
        for n in f.versions.aliases.values() {
            if let Some(v) = store.get_version(&f, *n).await? {
                in_use.extend(
                    v.runnable
                        .image()
                        .map(|i| (i.image_url.clone(), v.memory_mb)),
                );
            }
        }
        let removed = docker.retain_warm(&id, |image, memory_mb| {
            in_use.contains(&(image.to_string(), memory_mb))
        });
        if removed > 0 {
            tracing::info!(function.id = %id, removed, "warm containers of an unused version removed");
        }
    }
    Ok(())
}

/// Removes the images the platform pulled that no function of the installation
/// names (nothing when the platform pulled nothing, or the listing fails).
async fn remove_unused_images(
    docker: &DockerExecutor,
    store: &Store,
) -> faas_runtime::Result<usize> {
    if !docker.has_pulled_images() {
        return Ok(0);
    }
    let images = function_images(store).await?;
    docker
        .remove_unused_images(images.iter().map(String::as_str))
        .await
}

/// The image reference of every function of every user.
async fn function_images(store: &Store) -> faas_runtime::Result<Vec<String>> {
    const PAGE: usize = 500;
    let mut images = Vec::new();
    let mut users_after: Option<String> = None;
    loop {
        let users = store.list_users(users_after.as_deref(), PAGE).await?;
        for user in &users.items {
            let mut after: Option<String> = None;
            loop {
                let page = store
                    .list_functions(&user.id, after.as_deref(), PAGE)
                    .await?;
                images.extend(
                    page.items
                        .into_iter()
                        .filter_map(|f| f.runnable.image().map(|i| i.image_url.clone())),
                );
                match page.next_cursor {
                    Some(next) => after = Some(next),
                    None => break,
                }
            }
        }
        match users.next_cursor {
            Some(next) => users_after = Some(next),
            None => return Ok(images),
        }
    }
}
