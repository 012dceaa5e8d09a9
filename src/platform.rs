//! [`Platform`]: the API and an in-process worker pool on the embedded backend.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use faas_api::auth::{Auth, LoginLimiter};
use faas_api::{ApiLimits, AppState};
use faas_executors::wasmtime::{WasmtimeConfig, WasmtimeExecutor};
use faas_runtime::embedded::{Db, EmbeddedKv, EmbeddedObjects, EmbeddedQueue, QueueConfig};
use faas_runtime::model::Role;
use faas_runtime::ports::{Executor, ObjectStore, WorkQueue};
use faas_runtime::sealing::SecretBox;
use faas_runtime::store::Store;
use faas_runtime::worker::{Worker, WorkerConfig};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::config::{DockerMode, ServeConfig};

/// A running `faas serve`.
pub struct Platform {
    /// The address the API listens on.
    pub addr: std::net::SocketAddr,
    shutdown: CancellationToken,
    api: JoinHandle<std::io::Result<()>>,
    worker: JoinHandle<()>,
}

impl Platform {
    /// Opens the data directory, starts the worker pool and serves the API.
    pub async fn start(config: ServeConfig) -> anyhow::Result<Platform> {
        let db = Db::open(&config.data_dir).context("open the data directory")?;
        let store = Store::new(Arc::new(EmbeddedKv::new(db.clone())));
        let queue_config = QueueConfig {
            ack_wait: Duration::from_secs(config.ack_wait_secs.max(1)),
            max_messages: config.queue_max,
        };
        let queue: Arc<dyn WorkQueue> =
            Arc::new(EmbeddedQueue::open(db.clone(), queue_config).await?);
        let objects: Arc<dyn ObjectStore> = Arc::new(EmbeddedObjects::new(db.clone())?);
        let secrets = SecretBox::new(&crate::keys::secrets_key(
            config.secrets_key.as_deref(),
            db.dir(),
        )?);
        let jwt = crate::keys::jwt_secret(config.jwt_secret.as_deref(), db.dir())?;
        let limiter = LoginLimiter::new(
            config.login_max_failures,
            Duration::from_secs(config.login_window_secs),
        );
        let auth = Auth::new(&jwt, Duration::from_secs(config.token_ttl_secs), limiter)
            .map_err(anyhow::Error::msg)?;
        let executors = executors(&config, &objects).await?;
        let listener = TcpListener::bind(config.addr)
            .await
            .with_context(|| format!("bind {}", config.addr))?;
        let addr = listener.local_addr()?;
        let state = AppState::new(
            store.clone(),
            queue.clone(),
            objects.clone(),
            executors.clone(),
            auth,
            secrets.clone(),
            limits(&config),
        );
        ensure_admin(&state, &config).await?;
        let worker = Worker::new(
            store,
            queue,
            objects,
            executors,
            secrets,
            worker_config(&config, addr, db.dir()),
        );
        let requeued = worker.requeue_unfinished().await?;
        tracing::info!(requeued, "unfinished executions back in the queue");
        let shutdown = CancellationToken::new();
        let worker = tokio::spawn(worker.run(shutdown.clone()));
        let api_stop = shutdown.clone();
        let api = tokio::spawn(faas_api::serve(listener, state, async move {
            api_stop.cancelled().await
        }));
        tracing::info!(%addr, data_dir = %config.data_dir.display(), "faas serve is listening");
        Ok(Platform {
            addr,
            shutdown,
            api,
            worker,
        })
    }

    /// Stops taking requests and work; waits for in-flight executions (grace period).
    pub async fn stop(self) {
        self.shutdown.cancel();
        let _ = self.api.await;
        let _ = self.worker.await;
    }
}

async fn executors(
    config: &ServeConfig,
    objects: &Arc<dyn ObjectStore>,
) -> anyhow::Result<Vec<Arc<dyn Executor>>> {
    let wasm = WasmtimeExecutor::new(
        WasmtimeConfig {
            cache_dir: config.data_dir.join("compiled"),
            max_instances: (config.max_concurrent as u32).max(1) * 2,
            max_memory_mb: config.max_memory_mb,
            tmp_cap_bytes: config.tmp_cap_bytes,
        },
        objects.clone(),
    )?;
    let list: Vec<Arc<dyn Executor>> = vec![Arc::new(wasm)];
    if config.docker != DockerMode::Off {
        tracing::info!("the Docker executor is not built into this version yet");
    }
    Ok(list)
}

fn limits(c: &ServeConfig) -> ApiLimits {
    ApiLimits {
        max_object_bytes: c.max_object_bytes,
        max_module_bytes: c.max_module_bytes,
        default_timeout_secs: c.default_timeout_secs.min(c.max_timeout_secs),
        max_timeout_secs: c.max_timeout_secs,
        default_memory_mb: c.default_memory_mb.min(c.max_memory_mb),
        max_memory_mb: c.max_memory_mb,
        ..ApiLimits::default()
    }
}

fn worker_config(
    c: &ServeConfig,
    addr: std::net::SocketAddr,
    data: &std::path::Path,
) -> WorkerConfig {
    WorkerConfig {
        worker_id: format!("serve-{}", std::process::id()),
        max_concurrent: c.max_concurrent.max(1),
        max_attempts: c.max_attempts.max(1),
        max_timeout: Duration::from_secs(c.max_timeout_secs),
        stdout_cap: c.output_cap_bytes,
        stderr_cap: c.output_cap_bytes,
        api_base_url: c
            .api_base_url
            .clone()
            .unwrap_or_else(|| format!("http://{addr}")),
        staging_dir: data.join("staging"),
        grace: Duration::from_secs(c.grace_secs),
    }
}

/// Creates (or promotes) the configured start-up admin.
async fn ensure_admin(state: &AppState, c: &ServeConfig) -> anyhow::Result<()> {
    let (Some(name), Some(password)) = (&c.admin_username, &c.admin_password) else {
        return Ok(());
    };
    promote_or_create(&state.store, &state.auth, name, password).await
}

/// Makes `name` an admin, creating the account with `password` if needed.
pub async fn promote_or_create(
    store: &Store,
    auth: &Auth,
    name: &str,
    password: &str,
) -> anyhow::Result<()> {
    faas_api::routes::auth::validate_username(name).map_err(|e| anyhow::anyhow!(e.message))?;
    match store.find_user(name).await? {
        Some((mut user, rev)) if user.role != Role::Admin => {
            user.role = Role::Admin;
            store.update_user(&user, rev).await?;
            tracing::info!(username = name, "promoted to admin");
        }
        Some(_) => {}
        None => {
            faas_api::routes::auth::validate_password(password)
                .map_err(|e| anyhow::anyhow!(e.message))?;
            faas_api::routes::auth::create_user(
                store,
                auth,
                name.to_string(),
                password.to_string(),
                Role::Admin,
            )
            .await
            .map_err(|e| anyhow::anyhow!(e.message))?;
            tracing::info!(username = name, "admin account created");
        }
    }
    Ok(())
}
