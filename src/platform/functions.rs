//! The functions' own listener (FAAS_HTTP_ADDRESS): `/fn/...` and `/healthz` only.
//!
//! In the cluster every `faas worker` serves the functions' HTTP endpoints there
//! with its own executors and concurrency slots; `faas serve` and `faas api` serve
//! them on the API's listener and, when FAAS_HTTP_ADDRESS is set, there too (the
//! same state, so the same slots). A worker verifies no token: its state gets a
//! throw-away signing key ([`tokenless_auth`]) that nothing of its router uses.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use faas_api::AppState;
use faas_api::auth::{Auth, HashLimits, LimiterConfig, LoginLimiter};
use faas_runtime::ports::{Executor, HttpHandler};
use faas_runtime::sealing::SecretBox;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::backend::Ports;
use crate::config::ServeConfig;

/// The message of the log line naming the bound address (`addr=`).
pub const LISTENING: &str = "functions' HTTP endpoints are listening";

/// An [`Auth`] over a random key, with the smallest login throttle: for processes
/// that serve no route taking a token or a password (`faas capabilities`, a
/// worker's functions listener), so they need no JWT_SECRET.
pub(super) fn tokenless_auth() -> anyhow::Result<Auth> {
    let unused = SecretBox::generate_key();
    let limiter = LoginLimiter::new(LimiterConfig {
        account_max: 1,
        address_max: 1,
        window: Duration::from_secs(1),
        max_keys: 1,
        ..Default::default()
    });
    let hashing = HashLimits {
        max_concurrent: 1,
        max_wait: Duration::ZERO,
    };
    Auth::new(&unused, Duration::from_secs(1), limiter, hashing).map_err(anyhow::Error::msg)
}

/// The state of a worker's functions listener: the process's executors and HTTP
/// handler, the real secret box, the configured limits.
pub(super) fn worker_state(
    c: &ServeConfig,
    ports: &Ports,
    executors: Vec<Arc<dyn Executor>>,
    http: Arc<dyn HttpHandler>,
    secrets: SecretBox,
) -> anyhow::Result<AppState> {
    let state = AppState::new(
        ports.store.clone(),
        ports.queue.clone(),
        ports.objects.clone(),
        executors,
        tokenless_auth()?,
        secrets,
        super::limits(c),
    );
    Ok(state.with_http_handler(http))
}

/// Binds `at` and serves the functions' endpoints there until `stop`.
pub(super) async fn spawn_listener(
    at: SocketAddr,
    state: AppState,
    stop: &CancellationToken,
    tasks: &mut Vec<JoinHandle<()>>,
) -> anyhow::Result<SocketAddr> {
    let app = faas_api::routes::functions_router(state);
    let bound = super::spawn_router(at, "FAAS_HTTP_ADDRESS", app, stop, tasks).await?;
    tracing::info!(addr = %bound, "{LISTENING}");
    Ok(bound)
}
