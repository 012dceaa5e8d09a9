//! Warm, single-use containers: per function version, containers created, started
//! and attached ahead of time, each running the agent ([`agent`]) and waiting for
//! exactly one job. An execution takes one (else runs cold), sends its job (argv,
//! env with the secrets, stdin) over the attach stream, and the container is removed
//! when the job ends; the pool refills in the background. No container serves two
//! executions, and no secret is ever in a container's configuration.
//!
//! - `pool`: the bookkeeping (targets, global caps, idle window);
//! - `agent`: the agent's bytes, its volume and the job frame (cold containers run
//!   the agent too, see `paths`).
//!
//! Warm containers have no network: executions that read objects run cold.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use bollard::Docker;
use bollard::container::AttachContainerResults;
use bollard::query_parameters::CreateContainerOptionsBuilder;
use faas_runtime::Result;
use futures::{FutureExt, StreamExt};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::image::LocalImage;
use super::{DockerConfig, errors, reap, run, spec};

pub(crate) mod agent;
mod pool;

pub(crate) use pool::Key;

/// Warm pools' settings (`FAAS_WARM_*`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct WarmConfig {
    /// Most warm containers at once, all functions together (0: no warm containers).
    pub max_containers: u32,
    /// Most memory of warm containers at once (sum of their limits), in MiB.
    pub max_memory_mb: u64,
    /// A function not invoked for this long keeps no warm container.
    pub idle: Duration,
}

impl Default for WarmConfig {
    fn default() -> Self {
        WarmConfig {
            max_containers: 16,
            max_memory_mb: 4096,
            idle: Duration::from_secs(600),
        }
    }
}

/// A started container waiting for its job, with the attach stream it reads it from.
pub(crate) struct Ready {
    id: String,
    attach: AttachContainerResults,
}

/// A warm container taken for one execution; the reaper keeps it until it drops.
pub(crate) struct Taken {
    /// Engine id.
    pub(crate) id: String,
    /// Its stdin, stdout and stderr.
    pub(crate) attach: AttachContainerResults,
    /// Keeps the reaper away until dropped (after the container's removal started).
    pub(crate) owned: Owned,
}

/// Keeps a container in the owned set until dropped.
pub(crate) struct Owned {
    warm: Arc<Inner>,
    id: String,
}

impl Drop for Owned {
    fn drop(&mut self) {
        self.warm.lock().disown(&self.id);
    }
}

/// The warm pools of one executor.
#[derive(Clone)]
pub(crate) struct Warm(Arc<Inner>);

struct Inner {
    docker: Docker,
    config: DockerConfig,
    pools: Mutex<pool::Pools<Ready>>,
    /// The agent's volume, once filled by this process.
    volume: tokio::sync::Mutex<VolumeState>,
    tasks: TaskTracker,
    stop: CancellationToken,
}

impl std::fmt::Debug for Warm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Warm").finish_non_exhaustive()
    }
}

impl Inner {
    fn lock(&self) -> std::sync::MutexGuard<'_, pool::Pools<Ready>> {
        self.pools.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Warm {
    /// Pools of `config.warm`; starts the sweeper that scales idle pools to zero.
    pub(crate) fn start(docker: Docker, config: DockerConfig) -> Self {
        let warm = config.warm;
        let caps = pool::Caps {
            max_containers: warm.max_containers,
            max_memory: warm.max_memory_mb.saturating_mul(1 << 20),
            idle: warm.idle,
        };
        let inner = Arc::new(Inner {
            docker,
            config,
            pools: Mutex::new(pool::Pools::new(caps)),
            volume: tokio::sync::Mutex::new(VolumeState::Unknown),
            tasks: TaskTracker::new(),
            stop: CancellationToken::new(),
        });
        let tick = (warm.idle / 4).clamp(Duration::from_millis(200), Duration::from_secs(5));
        inner
            .tasks
            .spawn(sweep_forever(Arc::downgrade(&inner), tick));
        Warm(inner)
    }

    /// True when warm containers are on.
    pub(crate) fn enabled(&self) -> bool {
        self.0.config.warm.max_containers > 0
    }

    /// A live waiting container of `key`, if any (dead ones are dropped on the way).
    pub(crate) fn take(&self, key: &Key) -> Option<Taken> {
        loop {
            let mut ready = self.0.lock().take(key)?;
            // Output or an end before the job means the container is gone (killed,
            // engine restarted): never use it.
            if ready.attach.output.next().now_or_never().is_some() {
                tracing::debug!(container.id = %ready.id, "a warm container died while waiting");
                self.remove(ready.id);
                continue;
            }
            let owned = Owned {
                warm: self.0.clone(),
                id: ready.id.clone(),
            };
            return Some(Taken {
                id: ready.id,
                attach: ready.attach,
                owned,
            });
        }
    }

    /// Records a use of `key` and makes the containers its pool lacks (`wanted`, the
    /// function's `warm`, else one), in the background.
    pub(crate) fn refill(&self, key: &Key, wanted: Option<u32>, local: &LocalImage) {
        if !self.enabled() || self.0.stop.is_cancelled() {
            return;
        }
        let n = self.0.lock().used(key, wanted.unwrap_or(1), Instant::now());
        for _ in 0..n {
            let (inner, key, local) = (self.0.clone(), key.clone(), local.clone());
            self.0.tasks.spawn(async move {
                match make(&inner, &key, &local).await {
                    Ok(ready) => {
                        let extra = inner.lock().filled(&key, ready);
                        if let Some(extra) = extra {
                            Warm(inner).remove(extra.id);
                        }
                    }
                    Err(err) => {
                        tracing::warn!(
                            function.id = %key.function_id,
                            error = %err,
                            "making a warm container failed; executions run cold for a while"
                        );
                        inner.lock().fill_failed(&key, Instant::now());
                    }
                }
            });
        }
    }

    /// Removes the warm containers of `function_id` whose key `keep` refuses.
    pub(crate) fn retain(&self, function_id: &str, keep: impl Fn(&Key) -> bool) -> usize {
        let gone = self.0.lock().retain(function_id, keep);
        let n = gone.len();
        for ready in gone {
            self.remove(ready.id);
        }
        n
    }

    /// The agent's volume, filled (once per process) through a created container of
    /// `image` if need be.
    pub(crate) async fn agent_volume(&self, image: &str) -> Result<String> {
        volume(&self.0, image).await
    }

    /// Containers of `function_id` waiting for a job.
    pub(crate) fn ready(&self, function_id: &str) -> usize {
        self.0.lock().ready(function_id)
    }

    /// The functions that have warm containers (or are about to).
    pub(crate) fn functions(&self) -> Vec<String> {
        self.0.lock().functions()
    }

    /// True for a warm container this executor made and has not removed.
    pub(crate) fn owns(&self, name: &str, id: &str) -> bool {
        let pools = self.0.lock();
        pools.owns(id) || pools.owns(name)
    }

    /// Stops refilling and removes every warm container, waiting up to `grace`.
    pub(crate) async fn shutdown(&self, grace: Duration) {
        self.0.stop.cancel();
        let left = self.0.lock().drain();
        for ready in left {
            self.remove(ready.id);
        }
        self.0.tasks.close();
        if tokio::time::timeout(grace, self.0.tasks.wait())
            .await
            .is_err()
        {
            tracing::warn!("warm containers still being removed at shutdown; reap removes them");
        }
    }

    /// Removes a warm container in the background (the reaper catches a failure).
    fn remove(&self, id: String) {
        let inner = self.0.clone();
        self.0.tasks.spawn(async move {
            if let Err(err) = reap::remove(&inner.docker, &id).await {
                tracing::warn!(container.id = %id, error = %err, "removing a warm container failed");
            }
            inner.lock().disown(&id);
        });
    }
}

/// Scales idle pools to zero every `tick`, until the pools go away or stop.
async fn sweep_forever(inner: std::sync::Weak<Inner>, tick: Duration) {
    loop {
        let Some(strong) = inner.upgrade() else {
            return;
        };
        let stop = strong.stop.clone();
        let idle = strong.lock().sweep(Instant::now());
        if !idle.is_empty() {
            tracing::debug!(removed = idle.len(), "idle warm containers removed");
        }
        let warm = Warm(strong);
        for ready in idle {
            warm.remove(ready.id);
        }
        drop(warm);
        tokio::select! {
            () = tokio::time::sleep(tick) => {}
            () = stop.cancelled() => return,
        }
    }
}

/// Creates, attaches and starts one warm container of `key`.
async fn make(inner: &Arc<Inner>, key: &Key, local: &LocalImage) -> Result<Ready> {
    let volume = volume(inner, &key.image).await?;
    let name = format!(
        "faas-warm-{}-{}",
        token(&key.function_id),
        super::uuid_suffix()
    );
    inner.lock().own(&name);
    let made = create_and_start(inner, key, local, &volume, &name).await;
    match made {
        Ok(ready) => {
            let mut pools = inner.lock();
            pools.own(&ready.id);
            pools.disown(&name);
            Ok(ready)
        }
        Err(err) => {
            let _ = reap::remove(&inner.docker, &name).await;
            inner.lock().disown(&name);
            Err(err)
        }
    }
}

async fn create_and_start(
    inner: &Inner,
    key: &Key,
    local: &LocalImage,
    volume: &str,
    name: &str,
) -> Result<Ready> {
    let labels = spec::warm_labels(&key.function_id, &inner.config, &local.labels);
    let body = spec::agent_body(
        &key.image,
        labels,
        key.memory_limit,
        spec::NO_NETWORK,
        volume,
        &inner.config,
    );
    let options = CreateContainerOptionsBuilder::default().name(name).build();
    let created = inner
        .docker
        .create_container(Some(options), body)
        .await
        .map_err(|err| errors::to_runtime("creating a warm container", err))?;
    let attach = run::attach(&inner.docker, &created.id).await?;
    inner
        .docker
        .start_container(&created.id, None)
        .await
        .map_err(|err| errors::to_runtime("starting a warm container", err))?;
    Ok(Ready {
        id: created.id,
        attach,
    })
}

/// How long a failed fill of the agent's volume is not tried again.
const VOLUME_RETRY: Duration = Duration::from_secs(60);

/// The agent's volume: filled once per process (with `image`, present locally); a
/// failure is remembered for [`VOLUME_RETRY`].
async fn volume(inner: &Inner, image: &str) -> Result<String> {
    let mut volume = inner.volume.lock().await;
    match &*volume {
        VolumeState::Ready(name) => return Ok(name.clone()),
        VolumeState::Failed(at, why) if at.elapsed() < VOLUME_RETRY => {
            return Err(faas_runtime::Error::Unavailable(why.clone()));
        }
        _ => {}
    }
    match agent::fill_volume(&inner.docker, image).await {
        Ok(name) => {
            *volume = VolumeState::Ready(name.clone());
            Ok(name)
        }
        Err(err) => {
            *volume = VolumeState::Failed(Instant::now(), err.to_string());
            Err(err)
        }
    }
}

/// Whether this process filled the agent's volume.
enum VolumeState {
    Unknown,
    Ready(String),
    Failed(Instant, String),
}

/// At most 32 characters of `id` fit for a container name.
fn token(id: &str) -> String {
    id.chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-')
        .take(32)
        .collect()
}
