//! [`DockerExecutor`]: runs image functions as hardened, single-use containers on the
//! Docker engine, under the function contract (CONTRACT.md §1).
//!
//! - [`reference`](mod@reference): image reference syntax (checked at deploy time);
//! - `allow`: the operator's allow-list of images (deploy time and run time);
//! - `image`: pull policy, pulls with the operator's credentials inside the
//!   execution's time budget, the image's argv and labels;
//! - `pulled`: the images the platform pulled, removed once no function uses them;
//! - `spec`: the container definition (argv, env, stdin) and its hardening;
//! - `run`: attach, start, stdin, capped demultiplexed output, exit, timeout, OOM;
//! - `paths`: an execution in a container created for it (cold) or in a warm one;
//! - `capture`: the capped output buffers;
//! - `network`: the functions' network, for executions that read objects;
//! - `reap`: the in-flight set, listing and removal of labelled containers (only
//!   this installation's: [`DockerConfig::installation_id`]);
//! - `errors`: engine errors to [`faas_runtime::Error`];
//! - `warm`: warm, single-use containers behind the in-container agent.
//!
//! Wiring: call [`DockerExecutor::reap`] periodically with the platform's liveness
//! view, and [`DockerExecutor::shutdown`] on the way out (containers are removed in the
//! background after each execution). A container reaches an API bound on the host at
//! the functions' network's gateway ([`DockerExecutor::ensure_network`]); an API running
//! in a container on that network is reachable by its name. Keep the `bollard` log
//! target at `info` or above: at `debug` it logs request bodies, env (secrets) included.

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use bollard::Docker;
use bytes::Bytes;
use faas_runtime::model::{Function, PullPolicy, RuntimeKind};
use faas_runtime::ports::{ExecutionRequest, Executor, RawOutcome, Termination};
use faas_runtime::{Error, Result};
use tokio::time::Instant;
use tokio_util::task::TaskTracker;

mod allow;
mod capture;
mod ends;
mod errors;
mod image;
mod network;
mod paths;
mod pulled;
mod reap;
pub mod reference;
mod run;
mod spec;
mod warm;

pub use allow::AllowedImages;
pub use network::ICC_OPTION;
pub use reap::ManagedContainer;
pub use reference::ImageRef;
pub use spec::{
    LABEL_ATTEMPT, LABEL_EXECUTION_ID, LABEL_FUNCTION_ID, LABEL_INSTALLATION, LABEL_MANAGED_BY,
    LABEL_PREFIX, LABEL_WARM, LABEL_WORKER_ID, MANAGED_BY,
};
pub use warm::WarmConfig;

/// Longest wait for the engine's first answer (connect, ping).
const ENGINE_TIMEOUT: Duration = Duration::from_secs(10);

/// How the Docker executor runs containers; the composition root fills it from
/// configuration (`NETWORK_NAME`, `FAAS_DOCKER_*`).
#[derive(Debug, Clone)]
pub struct DockerConfig {
    /// Network of containers that read objects (`NETWORK_NAME`); created (internal
    /// bridge) when missing. Other containers get network mode `none`.
    pub network: String,
    /// Pull policy of functions that set none.
    pub default_pull_policy: PullPolicy,
    /// Registry credentials: user, password and server (`None`: Docker Hub). Sent only
    /// when pulling from that registry.
    pub registry_auth: Option<(String, String, Option<String>)>,
    /// `uid:gid` the function runs as; empty keeps the image's user.
    pub user: String,
    /// CPU limit in cores.
    pub cpus: f64,
    /// Most processes (and threads) one container may have.
    pub pids_limit: i64,
    /// Size of the private writable `/tmp` in MiB.
    pub tmp_size_mb: u64,
    /// This worker's id, written on every container it creates.
    pub worker_id: String,
    /// The installation's id (`Store::installation_id`), written on every container;
    /// the reaper touches only containers of this installation.
    pub installation_id: String,
    /// Images functions may use (`FAAS_ALLOWED_IMAGES`).
    pub allowed_images: AllowedImages,
    /// Where the list of images the platform pulled is kept (`None`: in memory).
    pub pulled_images_file: Option<PathBuf>,
    /// Warm pools (`FAAS_WARM_*`).
    pub warm: WarmConfig,
    /// A labelled container of another installation (or without the label) that
    /// ended longer ago than this is removed by [`DockerExecutor::reap`]: no
    /// process reads an ended container of its own that long (its results are
    /// taken, and it is removed, within seconds of its end). Such leftovers come
    /// from a process that was killed, whose data directory is gone or was never
    /// started again.
    pub ended_grace: Duration,
}

impl Default for DockerConfig {
    fn default() -> Self {
        DockerConfig {
            network: "faas-functions".to_string(),
            default_pull_policy: PullPolicy::IfNotPresent,
            registry_auth: None,
            user: "65534:65534".to_string(),
            cpus: 1.0,
            pids_limit: 128,
            tmp_size_mb: 64,
            worker_id: format!("worker-{}", std::process::id()),
            installation_id: "default".to_string(),
            allowed_images: AllowedImages::default(),
            pulled_images_file: None,
            warm: WarmConfig::default(),
            ended_grace: Duration::from_secs(600),
        }
    }
}

/// Runs `docker` functions: a fresh container per execution, removed afterwards.
#[derive(Debug)]
pub struct DockerExecutor {
    docker: Docker,
    config: DockerConfig,
    in_flight: reap::InFlight,
    cleanup: TaskTracker,
    pulled: pulled::PulledImages,
    /// Set once the operator was told of containers without an installation label.
    warned_unlabelled: AtomicBool,
    warm: warm::Warm,
}

impl DockerExecutor {
    /// Connects to the local engine (`DOCKER_HOST`, else `/var/run/docker.sock`) and
    /// removes what an earlier life of this worker left. `Unavailable` when no engine
    /// answers.
    pub async fn connect(config: DockerConfig) -> Result<Self> {
        let docker = Docker::connect_with_local_defaults()
            .map_err(|err| errors::to_runtime("connecting to the docker engine", err))?;
        Self::start(docker, config).await
    }

    /// Like [`DockerExecutor::connect`], to the engine at `host` (`unix:///path`,
    /// `tcp://host:port`).
    pub async fn connect_with_host(host: &str, config: DockerConfig) -> Result<Self> {
        let docker = Docker::connect_with_host(host)
            .map_err(|err| errors::to_runtime("connecting to the docker engine", err))?;
        Self::start(docker, config).await
    }

    async fn start(docker: Docker, config: DockerConfig) -> Result<Self> {
        let docker = tokio::time::timeout(ENGINE_TIMEOUT, docker.negotiate_version())
            .await
            .map_err(|_| Error::Unavailable("the docker engine did not answer".to_string()))?
            .map_err(|err| errors::to_runtime("connecting to the docker engine", err))?;
        let pulled = pulled::PulledImages::load(config.pulled_images_file.clone()).await;
        let warm = warm::Warm::start(docker.clone(), config.clone());
        let executor = DockerExecutor {
            docker,
            config,
            warm,
            in_flight: reap::InFlight::default(),
            cleanup: TaskTracker::new(),
            pulled,
            warned_unlabelled: AtomicBool::new(false),
        };
        let own = executor.config.worker_id.clone();
        let removed = executor.reap(|_, worker| worker != own).await?;
        tracing::info!(removed, worker.id = %own, "connected to the docker engine");
        Ok(executor)
    }

    /// The configuration in force.
    pub fn config(&self) -> &DockerConfig {
        &self.config
    }

    /// Every container the platform labelled, on this engine.
    pub async fn managed_containers(&self) -> Result<Vec<ManagedContainer>> {
        reap::list_managed(&self.docker).await
    }

    /// Removes this installation's labelled containers whose execution is over or
    /// whose worker is gone: `is_live(execution_id, worker_id)` says which to keep
    /// (`None` for a warm container, which has no execution yet: keep it while its
    /// worker lives). Executions running in this executor and its own warm containers
    /// are always kept; containers of other installations, or without an installation
    /// label, are left alone while they run, and removed once they ended more than
    /// [`DockerConfig::ended_grace`] ago. Returns how many were removed; a failed removal is
    /// logged and left to the next reap. Called at start-up for this worker's own
    /// leftovers; the worker calls it periodically for everyone's (compute the live
    /// set first: the predicate is synchronous).
    pub async fn reap(&self, is_live: impl Fn(Option<&str>, &str) -> bool) -> Result<usize> {
        let mut removed = 0;
        for container in reap::list_managed(&self.docker).await? {
            let remove = match self.is_ours(&container) {
                true => !self.is_kept(&container, &is_live),
                false => self.is_left_over(&container).await,
            };
            if !remove {
                continue;
            }
            tracing::info!(
                container.id = %container.id,
                execution.id = %container.execution_id,
                worker.id = %container.worker_id,
                "removing an orphaned function container"
            );
            match reap::remove(&self.docker, &container.id).await {
                Ok(()) => removed += 1,
                Err(err) => tracing::warn!(
                    container.id = %container.id,
                    error = %err,
                    "removing an orphaned container failed; the next reap retries"
                ),
            }
        }
        Ok(removed)
    }

    /// True for a container still in use: an execution running here, a warm
    /// container of this executor, or what `is_live` keeps.
    fn is_kept(
        &self,
        container: &ManagedContainer,
        is_live: &impl Fn(Option<&str>, &str) -> bool,
    ) -> bool {
        let mine = container.worker_id == self.config.worker_id;
        if container.warm {
            return match mine {
                true => self.warm.owns(&container.name, &container.id),
                false => is_live(None, &container.worker_id),
            };
        }
        if mine && self.in_flight.contains(&container.execution_id) {
            return true;
        }
        is_live(Some(&container.execution_id), &container.worker_id)
    }

    /// True for an ended container of another installation (or an unlabelled one)
    /// that ended more than [`DockerConfig::ended_grace`] ago.
    async fn is_left_over(&self, container: &ManagedContainer) -> bool {
        container.exited
            && reap::ended_before(&self.docker, &container.id, self.config.ended_grace).await
    }

    /// True for containers of this installation; says once that unlabelled ones
    /// (made by an older release, or by another platform) are left alone while they run.
    fn is_ours(&self, container: &ManagedContainer) -> bool {
        match &container.installation {
            Some(id) => *id == self.config.installation_id,
            None => {
                if !self.warned_unlabelled.swap(true, Ordering::Relaxed) {
                    tracing::warn!(
                        container.id = %container.id,
                        ended_grace_secs = self.config.ended_grace.as_secs(),
                        "function containers without a faas.installation label are left \
                         alone while they run (made by an older release or another \
                         platform); remove them by hand once they are not needed (ended ones \
                         are removed ended_grace_secs after their end)"
                    );
                }
                false
            }
        }
    }

    /// True when the platform pulled images that are still on the engine.
    pub fn has_pulled_images(&self) -> bool {
        !self.pulled.is_empty()
    }

    /// Removes the images the platform pulled that none of `referenced` (the image
    /// references of every function of the installation) names, unless a container
    /// still uses them. Images the operator provided are never removed. Returns how
    /// many were removed.
    pub async fn remove_unused_images<'a>(
        &self,
        referenced: impl IntoIterator<Item = &'a str>,
    ) -> Result<usize> {
        let referenced: HashSet<String> = referenced
            .into_iter()
            .filter_map(|r| ImageRef::parse(r).ok())
            .map(|r| r.canonical().to_string())
            .collect();
        pulled::remove_unused(&self.docker, &self.pulled, &referenced).await
    }

    /// Ensures the functions' network exists (re-created if someone removed it);
    /// returns its gateway: the address at which a container on it reaches a server
    /// bound on the host (build `API_BASE_URL` from it when the API runs on the host).
    pub async fn ensure_network(&self) -> Result<Option<String>> {
        network::ensure(&self.docker, &self.config.network).await
    }

    /// How many warm containers of `function_id` wait for a job.
    pub fn warm_ready(&self, function_id: &str) -> usize {
        self.warm.ready(function_id)
    }

    /// The functions that have warm containers.
    pub fn warm_functions(&self) -> Vec<String> {
        self.warm.functions()
    }

    /// Removes the warm containers of `function_id` whose image reference and memory
    /// limit (MiB) `keep` refuses: none of the function's versions in use runs them
    /// (the function was deleted or redeployed). Returns how many were removed.
    pub fn retain_warm(&self, function_id: &str, keep: impl Fn(&str, u64) -> bool) -> usize {
        self.warm
            .retain(function_id, |key| keep(&key.image, key.memory_limit >> 20))
    }

    /// Removes the warm containers (waiting at most `grace`), then waits (at most
    /// `grace`) for background container removals to finish.
    pub async fn shutdown(&self, grace: Duration) {
        self.warm.shutdown(grace).await;
        self.cleanup.close();
        if tokio::time::timeout(grace, self.cleanup.wait())
            .await
            .is_err()
        {
            tracing::warn!("container removals still running at shutdown; reap removes them");
        }
    }

    fn policy(&self, function: &Function) -> PullPolicy {
        function
            .runnable
            .image()
            .and_then(|i| i.pull_policy)
            .unwrap_or(self.config.default_pull_policy)
    }
}

/// A name no other container has: the execution, its attempt and a random suffix.
fn container_name(request: &ExecutionRequest) -> String {
    let token: String = request
        .execution_id
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-')
        .take(64)
        .collect();
    let suffix = uuid_suffix();
    format!("faas-{token}-a{}-{suffix}", request.attempt)
}

/// 12 hex digits from the process's random source.
fn uuid_suffix() -> String {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    format!("{:012x}", h.finish() & 0xffff_ffff_ffff)
}

/// A guest-fault outcome with nothing captured.
fn trap(message: String) -> RawOutcome {
    ended(Termination::Trap(message))
}

/// An outcome with nothing captured.
fn ended(termination: Termination) -> RawOutcome {
    RawOutcome {
        termination,
        stdout: Vec::new(),
        stderr: Vec::new(),
        stdout_overflow: false,
        stderr_overflow: false,
    }
}

/// The function's parsed image reference.
fn image_of(function: &Function) -> Result<ImageRef> {
    let image = function
        .runnable
        .image()
        .ok_or_else(|| Error::Invalid("not an image function".to_string()))?;
    ImageRef::parse(&image.image_url)
}

#[async_trait]
impl Executor for DockerExecutor {
    fn kind(&self) -> RuntimeKind {
        RuntimeKind::Docker
    }

    /// Checks the image reference and the allow-list; with pull policy `never`, that
    /// the image is present.
    async fn prepare(&self, function: &Function, _artifact: Option<Bytes>) -> Result<()> {
        let image = image_of(function)?;
        self.config
            .allowed_images
            .check(&image)
            .map_err(Error::Invalid)?;
        if self.policy(function) != PullPolicy::Never {
            return Ok(());
        }
        match image::inspect(&self.docker, &image).await? {
            None => Err(Error::Invalid(format!(
                "image {} is not present on the docker engine and its pull policy is never",
                image.as_str()
            ))),
            Some(Err(reason)) => Err(Error::Invalid(reason)),
            Some(Ok(_)) => Ok(()),
        }
    }

    #[tracing::instrument(skip_all, fields(
        execution.id = %request.execution_id,
        function.id = %request.function.id,
        attempt = request.attempt,
    ))]
    async fn execute(&self, request: ExecutionRequest) -> Result<RawOutcome> {
        // The budget covers the pull, the container's creation and its run.
        let deadline = Instant::now() + request.timeout;
        let image = match image_of(&request.function).and_then(|image| {
            let allowed = self.config.allowed_images.check(&image);
            allowed.map(|()| image).map_err(Error::Invalid)
        }) {
            Ok(image) => image,
            Err(err) => return Ok(trap(err.to_string())),
        };
        let policy = self.policy(&request.function);
        let auth = &self.config.registry_auth;
        let resolved = image::resolve(&self.docker, &image, policy, auth, deadline, &self.pulled);
        let local = match resolved.await? {
            Ok(local) => local,
            Err(image::Unusable::Fault(reason)) => return Ok(trap(reason)),
            Err(image::Unusable::TimedOut) => return Ok(ended(Termination::TimedOut)),
        };
        if !request.objects.is_empty() {
            self.ensure_network().await?;
        }
        if Instant::now() >= deadline {
            return Ok(ended(Termination::TimedOut));
        }
        let _running = self.in_flight.enter(&request.execution_id);
        // Warm containers have no network: executions that read objects run cold.
        let key = (request.objects.is_empty() && self.warm.enabled()).then(|| warm::Key {
            function_id: request.function.id.clone(),
            image: image.as_str().to_string(),
            image_id: local.id.clone(),
            memory_limit: request.memory_limit,
        });
        let outcome = match key.as_ref().and_then(|key| self.warm.take(key)) {
            Some(taken) => self.run_warm(taken, &local, &request, deadline).await,
            None => {
                self.run_cold(&image, local.clone(), &request, deadline)
                    .await
            }
        };
        if let Some(key) = &key {
            let warm = request.function.runnable.image().and_then(|i| i.warm);
            self.warm.refill(key, warm, &local);
        }
        outcome
    }

    /// Removes the warm containers of a deleted function.
    async fn forget(&self, function: &Function) {
        let removed = self.warm.retain(&function.id, |_| false);
        if removed > 0 {
            tracing::info!(function.id = %function.id, removed, "warm containers removed");
        }
    }

    /// Pings the engine.
    async fn ready(&self) -> Result<()> {
        match tokio::time::timeout(ENGINE_TIMEOUT, self.docker.ping()).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(err)) => Err(errors::to_runtime("pinging the docker engine", err)),
            Err(_) => Err(Error::Unavailable(
                "pinging the docker engine: no answer in time".to_string(),
            )),
        }
    }
}
