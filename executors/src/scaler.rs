//! [`DockerScaler`]: the autoscaler's [`WorkerScaler`] on the Docker API. Worker
//! containers carry a label (e.g. `faas.role=worker`); scaling up clones the first
//! running one (image, command, env, labels, mounts, networks); scaling down stops a
//! container with SIGTERM and a grace period (the worker drains, handing unfinished
//! executions back to the queue), then removes it. Clones are removed first.
//!
//! Only containers the operator started (or that this scaler cloned) count: a
//! function container never does, even when its image carries the worker label (the
//! Docker executor voids an image's `faas.*` labels, and any container labelled
//! `faas.managed-by` is skipped here).

use std::collections::HashMap;

use async_trait::async_trait;
use bollard::Docker;
use bollard::models::{ContainerCreateBody, ContainerInspectResponse, NetworkingConfig};
use bollard::query_parameters::{
    CreateContainerOptionsBuilder, InspectContainerOptions, ListContainersOptionsBuilder,
    RemoveContainerOptionsBuilder, StopContainerOptionsBuilder,
};
use faas_runtime::autoscaler::WorkerScaler;
use faas_runtime::{Error, Result};

use crate::docker::LABEL_MANAGED_BY;

/// Label marking containers the autoscaler created.
pub const LABEL_SCALED: &str = "faas.scaled-by";

/// Seconds a stopped worker gets beyond its own grace period before SIGKILL: after
/// the grace it hands unfinished executions back and removes its function containers
/// (up to 10 s), which must not be cut short.
pub const STOP_MARGIN_SECS: u64 = 20;

/// Scales labelled worker containers on the local Docker engine.
pub struct DockerScaler {
    docker: Docker,
    label: (String, String),
    grace_secs: u64,
}

fn unavailable(what: &str) -> impl Fn(bollard::errors::Error) -> Error + '_ {
    move |e| Error::Unavailable(format!("docker {what}: {e}"))
}

impl DockerScaler {
    /// Connects to the local engine; workers are containers labelled `key=value` and
    /// drain within `grace_secs` (their FAAS_SHUTDOWN_GRACE_SECS).
    pub async fn connect(key: &str, value: &str, grace_secs: u64) -> Result<Self> {
        let docker = Docker::connect_with_local_defaults().map_err(unavailable("connect"))?;
        docker.ping().await.map_err(unavailable("ping"))?;
        Ok(DockerScaler {
            docker,
            label: (key.to_string(), value.to_string()),
            grace_secs,
        })
    }

    /// The stop timeout given to the engine: the workers' grace plus [`STOP_MARGIN_SECS`].
    pub fn stop_timeout_secs(&self) -> u64 {
        stop_timeout_secs(self.grace_secs)
    }

    async fn running(&self) -> Result<Vec<(String, bool)>> {
        let filters = HashMap::from([
            (
                "label".to_string(),
                vec![format!("{}={}", self.label.0, self.label.1)],
            ),
            ("status".to_string(), vec!["running".to_string()]),
        ]);
        let options = ListContainersOptionsBuilder::default()
            .filters(&filters)
            .build();
        let list = self
            .docker
            .list_containers(Some(options))
            .await
            .map_err(unavailable("list"))?;
        let mut out: Vec<(String, bool)> = list
            .into_iter()
            .filter_map(|c| {
                let labels = c.labels.unwrap_or_default();
                if labels.contains_key(LABEL_MANAGED_BY) {
                    // A function container: never a worker, whatever its image says.
                    return None;
                }
                Some((c.id?, labels.contains_key(LABEL_SCALED)))
            })
            .collect();
        out.sort_by_key(|(id, cloned)| (*cloned, id.clone()));
        Ok(out)
    }

    async fn clone_of(&self, template: &ContainerInspectResponse) -> Result<String> {
        let config = template.config.clone().unwrap_or_default();
        let mut labels = config.labels.clone().unwrap_or_default();
        labels.insert(LABEL_SCALED.into(), "autoscaler".into());
        labels.retain(|k, _| !k.starts_with("com.docker.compose."));
        let networks = template
            .network_settings
            .as_ref()
            .and_then(|n| n.networks.clone())
            .unwrap_or_default();
        let endpoints = networks
            .into_iter()
            .map(|(name, mut ep)| {
                ep.ip_address = None;
                ep.mac_address = None;
                ep.endpoint_id = None;
                ep.network_id = None;
                (name, ep)
            })
            .collect();
        let body = ContainerCreateBody {
            image: config.image,
            cmd: config.cmd,
            entrypoint: config.entrypoint,
            env: config.env,
            user: config.user,
            working_dir: config.working_dir,
            healthcheck: config.healthcheck,
            stop_signal: config.stop_signal,
            stop_timeout: config.stop_timeout,
            labels: Some(labels),
            host_config: template.host_config.clone().map(|mut h| {
                h.port_bindings = None;
                h
            }),
            networking_config: Some(NetworkingConfig {
                endpoints_config: Some(endpoints),
            }),
            ..Default::default()
        };
        let base = template
            .name
            .as_deref()
            .unwrap_or("/faas-worker")
            .trim_start_matches('/');
        let suffix = uuid_suffix();
        let name = format!(
            "{}-scaled-{suffix}",
            base.split("-scaled-").next().unwrap_or(base)
        );
        let options = CreateContainerOptionsBuilder::default().name(&name).build();
        let created = self
            .docker
            .create_container(Some(options), body)
            .await
            .map_err(unavailable("create"))?;
        self.docker
            .start_container(&created.id, None)
            .await
            .map_err(unavailable("start"))?;
        Ok(created.id)
    }
}

fn stop_timeout_secs(grace_secs: u64) -> u64 {
    grace_secs.saturating_add(STOP_MARGIN_SECS)
}

fn uuid_suffix() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!("{:x}{:x}", std::process::id(), nanos)
}

#[async_trait]
impl WorkerScaler for DockerScaler {
    async fn workers(&self) -> Result<Vec<String>> {
        Ok(self
            .running()
            .await?
            .into_iter()
            .map(|(id, _)| id)
            .collect())
    }

    async fn add(&self, n: u32) -> Result<()> {
        let running = self.running().await?;
        let Some((template_id, _)) = running.first() else {
            return Err(Error::NotFound(format!(
                "no running container labelled {}={} to clone",
                self.label.0, self.label.1
            )));
        };
        let template = self
            .docker
            .inspect_container(template_id, None::<InspectContainerOptions>)
            .await
            .map_err(unavailable("inspect"))?;
        for _ in 0..n {
            let id = self.clone_of(&template).await?;
            tracing::info!(container = %id, "worker added");
        }
        Ok(())
    }

    async fn remove(&self, ids: &[String]) -> Result<()> {
        for id in ids {
            let secs = i32::try_from(self.stop_timeout_secs()).unwrap_or(i32::MAX);
            let stop = StopContainerOptionsBuilder::default().t(secs).build();
            if let Err(e) = self.docker.stop_container(id, Some(stop)).await {
                tracing::warn!(container = %id, error = %e, "stopping a worker failed");
            }
            let rm = RemoveContainerOptionsBuilder::default().force(true).build();
            self.docker
                .remove_container(id, Some(rm))
                .await
                .map_err(unavailable("remove"))?;
            tracing::info!(container = %id, "worker drained and removed");
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_drained_worker_gets_more_than_its_own_grace_before_sigkill() {
        for grace in [0, 2, 30, 300] {
            assert!(stop_timeout_secs(grace) >= grace + 10, "grace {grace}");
        }
        assert_eq!(stop_timeout_secs(u64::MAX), u64::MAX);
    }
}
