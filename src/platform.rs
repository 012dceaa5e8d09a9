//! [`Platform`]: the processes of the platform. `faas serve` runs the API and a
//! worker pool together; `faas api` and `faas worker` run one role each on NATS.
//!
//! - [`functions`]: the functions' own HTTP listener (FAAS_HTTP_ADDRESS).

pub mod functions;

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use faas_api::auth::{Auth, LoginLimiter};
use faas_api::routes::auth::{create_user, validate_password, validate_username};
use faas_api::{ApiLimits, AppState};
use faas_executors::DeployValidator;
use faas_executors::docker::AllowedImages;
use faas_executors::wasmtime::{WasmtimeConfig, WasmtimeExecutor};
use faas_runtime::model::Role;
use faas_runtime::ports::{Executor, HttpHandler, Validator};
use faas_runtime::store::Store;
use faas_runtime::worker::reconcile::reconcile_forever;
use faas_runtime::worker::{Worker, WorkerConfig};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::backend::Ports;
use crate::config::ServeConfig;

/// How often an API process on NATS looks for accepted executions that a cut
/// left unqueued.
const RECONCILE_EVERY: Duration = Duration::from_secs(15);

/// Executions younger than this are not reconciled (their submit may be going on).
const RECONCILE_MIN_AGE: Duration = Duration::from_secs(30);

/// Which parts a process runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Roles {
    /// API and workers (`faas serve`).
    All,
    /// The API only (`faas api`).
    Api,
    /// Workers only (`faas worker`).
    Worker,
}

/// A running process of the platform.
pub struct Platform {
    /// The address the API listens on (unset for a worker).
    pub addr: Option<SocketAddr>,
    /// The address of the functions' own listener (FAAS_HTTP_ADDRESS), when set.
    pub functions_addr: Option<SocketAddr>,
    shutdown: CancellationToken,
    tasks: Vec<JoinHandle<()>>,
    docker: Option<Arc<faas_executors::docker::DockerExecutor>>,
}

impl Platform {
    /// Starts `faas serve`: API and workers in one process.
    pub async fn start(config: ServeConfig) -> anyhow::Result<Platform> {
        Self::start_roles(config, Roles::All).await
    }

    /// Starts the given roles.
    pub async fn start_roles(config: ServeConfig, roles: Roles) -> anyhow::Result<Platform> {
        let ports = Ports::open(&config).await?;
        if roles != Roles::All && !ports.shared {
            anyhow::bail!(
                "`faas api` and `faas worker` need NATS_URL (state shared between processes)"
            );
        }
        let secrets = ports.secret_box(&config)?;
        let worker_id = worker_id();
        // A worker without FAAS_HTTP_ADDRESS serves no HTTP request: no pool slots for them.
        let serves_http = roles != Roles::Worker || config.http_addr.is_some();
        let executors = executors(&config, &ports, &worker_id, serves_http).await?;
        let shutdown = CancellationToken::new();
        let mut tasks = Vec::new();
        let mut addr = None;
        let mut functions_addr = None;
        let mut functions_base = config.api_base_url.clone();
        let metrics = crate::metrics::render();
        if let (Some(at), Some(render)) = (config.metrics_addr, metrics.clone()) {
            let app = crate::metrics::router(render, ports.queue.clone(), ports.store.clone());
            let (_, task) = crate::metrics::spawn_listener(at, app, shutdown.clone()).await?;
            tasks.push(task);
        }
        // Served by the roles' own listener unless it has one of its own.
        let inline_metrics = metrics.filter(|_| config.metrics_addr.is_none());
        if roles != Roles::Worker {
            let mut state = api_state(&config, &ports, executors.all.clone(), secrets.clone())?
                .with_http_handler(executors.http.clone())
                .with_validator(executors.validator.clone());
            if let Some(render) = inline_metrics.clone() {
                state = state.with_metrics(render);
            }
            ensure_admin(&state, &config).await?;
            let gateway = match &executors.docker {
                Some(d) => functions_gateway(d).await?,
                None => None,
            };
            let bound = spawn_api(&config, state.clone(), gateway, &shutdown, &mut tasks).await?;
            if let Some(at) = config.capability_addr {
                spawn_capability_listener(at, state.clone(), &shutdown, &mut tasks).await?;
            }
            if let Some(at) = config.http_addr {
                // The same state as the API's listener: the same concurrency slots.
                let bound =
                    functions::spawn_listener(at, state.clone(), &shutdown, &mut tasks).await?;
                functions_addr = Some(bound);
            }
            if config.callback_delivery {
                tasks.push(tokio::spawn(faas_api::callbacks::run(
                    ports.store.clone(),
                    secrets.clone(),
                    delivery_config(&config),
                    shutdown.clone(),
                )));
            }
            tasks.push(tokio::spawn(faas_api::scheduler::run(
                state.clone(),
                shutdown.clone(),
            )));
            if config.retention_secs > 0 {
                tasks.push(tokio::spawn(faas_runtime::retention::run(
                    ports.store.clone(),
                    Duration::from_secs(config.retention_secs),
                    Duration::from_secs(config.retention_sweep_secs.max(1)),
                    shutdown.clone(),
                )));
            }
            if ports.shared {
                tasks.push(tokio::spawn(reconcile_forever(
                    ports.store.clone(),
                    ports.queue.clone(),
                    RECONCILE_EVERY,
                    RECONCILE_MIN_AGE,
                    shutdown.clone(),
                )));
            }
            if functions_base.is_none() {
                functions_base = Some(match gateway {
                    Some(gateway) => {
                        spawn_gateway_listener(gateway, bound, state, &shutdown, &mut tasks).await?
                    }
                    None => format!("http://{bound}"),
                });
            }
            addr = Some(bound);
        }
        if roles != Roles::Api {
            let base = functions_base.unwrap_or_else(|| format!("http://{}", config.addr));
            if let (Roles::Worker, Some(at)) = (roles, config.http_addr) {
                let state = functions::worker_state(
                    &config,
                    &ports,
                    executors.all.clone(),
                    executors.http.clone(),
                    secrets.clone(),
                )?;
                let bound = functions::spawn_listener(at, state, &shutdown, &mut tasks).await?;
                functions_addr = Some(bound);
            }
            if let Some(at) = config.health_addr {
                let check = crate::health::worker_heartbeat(ports.store.clone(), worker_id.clone());
                let extra = match inline_metrics.filter(|_| roles == Roles::Worker) {
                    Some(render) => {
                        crate::metrics::router(render, ports.queue.clone(), ports.store.clone())
                    }
                    None => axum::Router::new(),
                };
                tasks.push(
                    crate::health::spawn(at, check, extra, shutdown.clone())
                        .await?
                        .1,
                );
            }
            let w = Worker::new(
                ports.store.clone(),
                ports.queue.clone(),
                ports.objects.clone(),
                executors.all,
                secrets,
                worker_config(&config, worker_id, base, &ports),
            );
            // Staging and grants a dead process left: on the embedded backend this
            // process alone stages in the data dir; NATS workers may share a host's
            // data dir, so there only dirs of workers without a heartbeat go.
            let (staged, grants) = w.sweep_leftovers(!ports.shared).await?;
            tracing::info!(staged, grants, "swept what earlier processes left");
            if !ports.shared {
                // One process owns the embedded queue: anything not final and not queued
                // is queued again (whatever the cap), stale active markers dropped. On
                // NATS the API processes' reconciler does this while running.
                let requeued = w.requeue_unfinished().await?;
                let dead = faas_runtime::worker::presence::clear(&ports.store).await?;
                tracing::info!(
                    requeued,
                    dead_workers = dead,
                    "unfinished executions back in the queue"
                );
            }
            if let Some(d) = executors.docker.clone() {
                tasks.push(tokio::spawn(crate::docker::reap_forever(
                    d,
                    ports.store.clone(),
                    Duration::from_secs(config.reap_interval_secs.max(1)),
                    shutdown.clone(),
                )));
            }
            tasks.push(tokio::spawn(w.run(shutdown.clone())));
        }
        Ok(Platform {
            addr,
            functions_addr,
            shutdown,
            tasks,
            docker: executors.docker,
        })
    }

    /// Starts `faas capabilities`: only the object capability route (and /healthz) on
    /// FAAS_CAPABILITY_ADDRESS, over NATS. What function containers reach in compose,
    /// so nothing else of the API (no /auth, no token routes) is on their network.
    /// Needs no JWT_SECRET nor FAAS_SECRETS_KEY: it verifies no token, opens no secret.
    pub async fn start_capabilities(config: ServeConfig) -> anyhow::Result<Platform> {
        let at = config
            .capability_addr
            .context("`faas capabilities` needs FAAS_CAPABILITY_ADDRESS")?;
        anyhow::ensure!(
            config.nats_url.is_some(),
            "`faas capabilities` needs NATS_URL"
        );
        let ports = Ports::open(&config).await?;
        let unused = faas_runtime::sealing::SecretBox::generate_key();
        let state = AppState::new(
            ports.store.clone(),
            ports.queue.clone(),
            ports.objects.clone(),
            Vec::new(),
            functions::tokenless_auth()?,
            faas_runtime::sealing::SecretBox::new(&unused),
            limits(&config),
        );
        let shutdown = CancellationToken::new();
        let mut tasks = Vec::new();
        let bound = spawn_capability_listener(at, state, &shutdown, &mut tasks).await?;
        Ok(Platform {
            addr: Some(bound),
            functions_addr: None,
            shutdown,
            tasks,
            docker: None,
        })
    }

    /// Stops taking requests and work; waits for in-flight executions (grace period).
    pub async fn stop(self) {
        self.shutdown.cancel();
        for task in self.tasks {
            let _ = task.await;
        }
        if let Some(d) = self.docker {
            d.shutdown(Duration::from_secs(10)).await;
        }
    }
}

fn worker_id() -> String {
    let host = std::env::var("HOSTNAME").unwrap_or_else(|_| "local".into());
    format!(
        "{host}-{}-{}",
        std::process::id(),
        &faas_runtime::model::new_id()[24..]
    )
}

/// Binds and serves the API. Bound to every address, connections that arrive on the
/// functions' `gateway` get only the capability routes (function containers reach
/// the host there; they must not reach the rest of the API).
async fn spawn_api(
    c: &ServeConfig,
    state: AppState,
    gateway: Option<IpAddr>,
    stop: &CancellationToken,
    tasks: &mut Vec<JoinHandle<()>>,
) -> anyhow::Result<SocketAddr> {
    let listener = TcpListener::bind(c.addr)
        .await
        .with_context(|| format!("bind {}", c.addr))?;
    let bound = listener.local_addr()?;
    let stop = stop.clone();
    let split = gateway.filter(|_| bound.ip().is_unspecified());
    tasks.push(tokio::spawn(async move {
        let shutdown = async move { stop.cancelled().await };
        let served = match split {
            Some(gateway) => faas_api::serve_with_gateway(listener, state, gateway, shutdown).await,
            None => faas_api::serve(listener, state, shutdown).await,
        };
        if let Err(e) = served {
            tracing::error!(error = %e, "the API server failed");
        }
    }));
    tracing::info!(addr = %bound, data_dir = %c.data_dir.display(), "faas is listening");
    Ok(bound)
}

/// Serves only the capability route (and /healthz) on `at` (FAAS_CAPABILITY_ADDRESS).
async fn spawn_capability_listener(
    at: SocketAddr,
    state: AppState,
    stop: &CancellationToken,
    tasks: &mut Vec<JoinHandle<()>>,
) -> anyhow::Result<SocketAddr> {
    let app = faas_api::routes::capability_router(state);
    let bound = spawn_router(at, "FAAS_CAPABILITY_ADDRESS", app, stop, tasks).await?;
    tracing::info!(addr = %bound, "capability-only listener (object route for functions)");
    Ok(bound)
}

/// Binds `at` (what the setting `setting` says) and serves `app` there until `stop`.
async fn spawn_router(
    at: SocketAddr,
    setting: &'static str,
    app: axum::Router,
    stop: &CancellationToken,
    tasks: &mut Vec<JoinHandle<()>>,
) -> anyhow::Result<SocketAddr> {
    let listener = TcpListener::bind(at)
        .await
        .with_context(|| format!("bind {setting} {at}"))?;
    let bound = listener.local_addr()?;
    let stop = stop.clone();
    tasks.push(tokio::spawn(async move {
        let shutdown = async move { stop.cancelled().await };
        if let Err(e) = faas_api::serve_router(listener, app, shutdown).await {
            tracing::error!(error = %e, setting, "a listener failed");
        }
    }));
    Ok(bound)
}

/// The functions' network's gateway: where function containers reach the host.
async fn functions_gateway(
    docker: &faas_executors::docker::DockerExecutor,
) -> anyhow::Result<Option<IpAddr>> {
    let Some(gateway) = docker.ensure_network().await? else {
        return Ok(None);
    };
    let ip = gateway
        .parse()
        .with_context(|| format!("the functions' network gateway {gateway:?}"))?;
    Ok(Some(ip))
}

/// Function containers reach the host at their network's gateway: serve the
/// capability route there (same port when free) and return that base URL. An API
/// bound to every address already answers there (capability routes only).
async fn spawn_gateway_listener(
    gateway: IpAddr,
    api: SocketAddr,
    state: AppState,
    stop: &CancellationToken,
    tasks: &mut Vec<JoinHandle<()>>,
) -> anyhow::Result<String> {
    if api.ip().is_unspecified() {
        return Ok(format!("http://{}", SocketAddr::new(gateway, api.port())));
    }
    let listener = match TcpListener::bind((gateway, api.port())).await {
        Ok(l) => l,
        Err(_) => TcpListener::bind((gateway, 0))
            .await
            .with_context(|| format!("bind the functions' gateway {gateway}"))?,
    };
    let bound = listener.local_addr()?;
    let stop = stop.clone();
    tasks.push(tokio::spawn(async move {
        if let Err(e) =
            faas_api::serve_capabilities(listener, state, async move { stop.cancelled().await })
                .await
        {
            tracing::error!(error = %e, "the functions' listener failed");
        }
    }));
    tracing::info!(addr = %bound, "object capability URLs for containers served on the functions' network");
    Ok(format!("http://{bound}"))
}

fn api_state(
    c: &ServeConfig,
    ports: &Ports,
    executors: Vec<Arc<dyn Executor>>,
    secrets: faas_runtime::sealing::SecretBox,
) -> anyhow::Result<AppState> {
    let jwt = ports.jwt_secret(c)?;
    let auth = Auth::new(
        &jwt,
        Duration::from_secs(c.token_ttl_secs),
        LoginLimiter::new(c.limiter()),
        c.hashing(),
    )
    .map_err(anyhow::Error::msg)?;
    Ok(AppState::new(
        ports.store.clone(),
        ports.queue.clone(),
        ports.objects.clone(),
        executors,
        auth,
        secrets,
        limits(c),
    ))
}

/// The executors of a process: Wasmtime always, Docker when configured and reachable.
struct Executors {
    all: Vec<Arc<dyn Executor>>,
    /// Serves `wasi:http/proxy` functions (the Wasmtime executor).
    http: Arc<dyn HttpHandler>,
    /// Checks deploys: wasm with the Wasmtime executor's engine and caches (what
    /// it compiles, executions here find compiled), images against the
    /// allow-list. No executor is asked.
    validator: Arc<dyn Validator>,
    docker: Option<Arc<faas_executors::docker::DockerExecutor>>,
}

async fn executors(
    config: &ServeConfig,
    ports: &Ports,
    worker_id: &str,
    serves_http: bool,
) -> anyhow::Result<Executors> {
    let objects = &ports.objects;
    let http_slots = match serves_http {
        true => config.http_max_concurrent.min(u32::MAX as usize / 4) as u32,
        false => 0,
    };
    let wasm = WasmtimeExecutor::new(
        WasmtimeConfig {
            cache_dir: config.data_dir.join("compiled"),
            // Executions (twice: a draining attempt and its successor) and HTTP requests.
            max_instances: (config.max_concurrent as u32).max(1) * 2 + http_slots,
            max_memory_mb: config.max_memory_mb,
            tmp_cap_bytes: config.tmp_cap_bytes,
            max_compiles: config.wasm_max_compiles,
            compile_wait: Duration::from_secs(config.wasm_compile_wait_secs),
            cache_bytes: config.wasm_cache_bytes,
        },
        objects.clone(),
    )?;
    let wasm = Arc::new(wasm);
    let validator = Arc::new(DeployValidator::new(
        wasm.check(),
        AllowedImages::parse(&config.allowed_images),
    ));
    let http: Arc<dyn HttpHandler> = wasm.clone();
    let mut all: Vec<Arc<dyn Executor>> = vec![wasm];
    let docker = crate::docker::connect(config, &ports.store, worker_id).await?;
    if let Some(d) = &docker {
        all.push(d.clone());
    }
    Ok(Executors {
        all,
        docker,
        http,
        validator,
    })
}

fn limits(c: &ServeConfig) -> ApiLimits {
    ApiLimits {
        max_object_bytes: c.max_object_bytes,
        max_module_bytes: c.max_module_bytes,
        default_timeout_secs: c.default_timeout_secs.min(c.max_timeout_secs),
        max_timeout_secs: c.max_timeout_secs,
        default_memory_mb: c.default_memory_mb.min(c.max_memory_mb),
        max_memory_mb: c.max_memory_mb,
        max_wait_secs: c.invoke_max_wait_secs,
        http_max_body_bytes: c.http_max_body_bytes,
        http_max_concurrent: c.http_max_concurrent,
        http_max_concurrent_per_function: c.http_max_concurrent_per_function,
        http_idle_timeout_secs: c.http_idle_timeout_secs,
        http_record: c.http_record,
        http_output_cap_bytes: c.output_cap_bytes,
        quotas: faas_runtime::model::Quotas {
            max_active_executions: Some(c.quota_active_executions),
            submissions_per_minute: Some(c.quota_submissions_per_minute),
            max_object_bytes: Some(c.quota_object_bytes),
            max_functions: Some(c.quota_functions),
            max_secrets: Some(c.quota_secrets),
        },
        callback_allow_private: c.callback_allow_private,
        outbound: outbound_limits(c),
        ..ApiLimits::default()
    }
}

fn outbound_limits(c: &ServeConfig) -> faas_runtime::outbound::OutboundLimits {
    let timeout = Duration::from_secs(c.outbound_timeout_secs.max(1));
    faas_runtime::outbound::OutboundLimits {
        allow_private: c.outbound_allow_private,
        connect_timeout: timeout,
        first_byte_timeout: timeout,
        between_bytes_timeout: timeout,
        max_response_bytes: c.outbound_max_response_bytes,
        ..Default::default()
    }
}

fn delivery_config(c: &ServeConfig) -> faas_api::callbacks::DeliveryConfig {
    faas_api::callbacks::DeliveryConfig {
        allow_private: c.callback_allow_private,
        retry_base: Duration::from_millis(c.callback_retry_base_ms.max(1)),
        ..Default::default()
    }
}

fn worker_config(
    c: &ServeConfig,
    worker_id: String,
    api_base_url: String,
    ports: &Ports,
) -> WorkerConfig {
    WorkerConfig {
        worker_id,
        max_concurrent: c.max_concurrent.max(1),
        max_attempts: c.max_attempts.max(1),
        max_deferrals: c.prepare_max_retries.max(1),
        max_timeout: Duration::from_secs(c.max_timeout_secs),
        stdout_cap: c.output_cap_bytes,
        stderr_cap: c.output_cap_bytes,
        api_base_url,
        staging_dir: ports.data_dir.join("staging"),
        grace: Duration::from_secs(c.grace_secs),
    }
}

/// Indexes old accounts by canonical username, then creates (or, with its own
/// password, promotes) the configured start-up admin.
async fn ensure_admin(state: &AppState, c: &ServeConfig) -> anyhow::Result<()> {
    let added = state.store.index_canonical_usernames().await?;
    if added > 0 {
        tracing::info!(added, "usernames indexed case-insensitively");
    }
    let (Some(name), Some(password)) = (&c.admin_username, &c.admin_password) else {
        return Ok(());
    };
    promote_or_create(&state.store, &state.auth, name, password).await
}

/// Makes `name` an admin: creates the account with `password`, or promotes an
/// existing account only when `password` is that account's password (never
/// silently: someone may have registered the name first).
pub async fn promote_or_create(
    store: &Store,
    auth: &Auth,
    name: &str,
    password: &str,
) -> anyhow::Result<()> {
    validate_username(name).map_err(|e| anyhow::anyhow!(e.message))?;
    match store.find_user(name).await? {
        Some((user, _)) if user.role == Role::Admin => Ok(()),
        Some((user, _)) => {
            let own = validate_password(password).is_ok()
                && auth
                    .verify_password(password.to_string(), Some(user.password_hash.clone()))
                    .await
                    .map_err(|e| anyhow::anyhow!(e.message))?;
            if !own {
                anyhow::bail!(
                    "refusing to promote the existing account {:?} to admin: it is not an admin and \
                     the admin password given (FAAS_ADMIN_PASSWORD or --password) is not its password. \
                     Someone may have registered this name first; give that account's password to \
                     promote it, or choose another admin username.",
                    user.username
                );
            }
            store
                .modify_user(&user.id, |u| u.role = Role::Admin)
                .await?;
            tracing::warn!(username = %user.username, "existing account promoted to admin (its password was given)");
            Ok(())
        }
        None => {
            validate_password(password).map_err(|e| anyhow::anyhow!(e.message))?;
            create_user(
                store,
                auth,
                name.to_string(),
                password.to_string(),
                Role::Admin,
            )
            .await
            .map_err(|e| anyhow::anyhow!(e.message))?;
            tracing::info!(username = name, "admin account created");
            Ok(())
        }
    }
}
