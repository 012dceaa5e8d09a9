//! The `faas` command: the platform's processes (`serve` (API + workers), `api`,
//! `worker`, `capabilities`, `autoscaler`, `admin`, `healthcheck`) and the client
//! commands of [`faas::cli`] (`login`, `fn`, `invoke`, `exec`, `obj`, `secret`, ...).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};
use faas::config::{AutoscalerConfig, ServeConfig, ignore_empty_env, parse_duration};
use faas::platform::{Platform, Roles, promote_or_create};
use tracing_subscriber::EnvFilter;

/// A self-hosted Function-as-a-Service platform.
#[derive(Parser)]
#[command(name = "faas", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the API and a worker pool in one process on the embedded backend.
    Serve(Box<ServeConfig>),
    /// Run the API only (state on NATS: needs NATS_URL).
    Api(Box<ServeConfig>),
    /// Run a worker pool only (state on NATS: needs NATS_URL).
    Worker(Box<ServeConfig>),
    /// Serve only the object capability route function containers use, on
    /// FAAS_CAPABILITY_ADDRESS (state on NATS: needs NATS_URL).
    Capabilities(Box<ServeConfig>),
    /// Scale worker containers on the queue's backlog (Docker API).
    Autoscaler(Box<AutoscalerConfig>),
    /// Create an admin account, or promote an existing user (given its own password),
    /// in a data directory (while no `faas serve` uses it).
    Admin(AdminArgs),
    /// GET an http:// URL; exit 0 on a 2xx answer, else 1 (container health checks).
    Healthcheck(HealthcheckArgs),
    #[command(flatten)]
    Client(faas::cli::Command),
}

#[derive(clap::Args)]
struct HealthcheckArgs {
    /// The URL, e.g. http://127.0.0.1:8080/readyz.
    url: String,
    /// How long to wait for the answer (e.g. `3s`).
    #[arg(long, default_value = "3s", value_parser = parse_duration)]
    timeout: Duration,
}

#[derive(clap::Args)]
struct AdminArgs {
    /// Username to create or promote.
    username: String,
    /// Password of the new account, or of the existing account to promote.
    #[arg(long, env = "FAAS_ADMIN_PASSWORD", hide_env_values = true)]
    password: Option<String>,
    /// The data directory of the platform.
    #[arg(long, env = "FAAS_DATA_DIR", default_value = "./data")]
    data_dir: PathBuf,
}

fn main() -> anyhow::Result<()> {
    return_large_allocations_to_the_os();
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(run_cli())
}

/// glibc raises its mmap threshold after the first large free, so later 19 MiB
/// argon2 blocks, 2 MiB bodies and 1 MiB outputs come from per-thread arenas that
/// never shrink: under a burst of logins on the blocking pool, RSS grew to 275 MiB.
/// A fixed threshold keeps every allocation of 256 KiB or more an mmap, returned to
/// the OS when freed, and fewer arenas bound the fragmentation of small ones.
fn return_large_allocations_to_the_os() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only tunes the allocator; called before any other thread exists.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 256 * 1024);
        libc::mallopt(libc::M_ARENA_MAX, 4);
    }
}

async fn run_cli() -> anyhow::Result<()> {
    // An empty RUST_LOG (compose's `${RUST_LOG:-}`) means the default, as for every setting.
    let filter = std::env::var("RUST_LOG")
        .ok()
        .filter(|f| !f.trim().is_empty())
        .and_then(|f| EnvFilter::try_new(f).ok())
        .unwrap_or_else(|| EnvFilter::new("info,tower_http=info,cranelift=warn,wasmtime=warn"));
    let _telemetry = faas::telemetry::init(filter);
    let matches = ignore_empty_env(Cli::command()).get_matches();
    let cli = Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    match cli.command {
        Command::Serve(config) => run(Platform::start_roles(*config, Roles::All)).await,
        Command::Api(config) => run(Platform::start_roles(*config, Roles::Api)).await,
        Command::Worker(config) => run(Platform::start_roles(*config, Roles::Worker)).await,
        Command::Capabilities(config) => run(Platform::start_capabilities(*config)).await,
        Command::Autoscaler(config) => faas::autoscale::run(*config, shutdown_signal()).await,
        Command::Admin(args) => admin(args).await,
        Command::Healthcheck(args) => {
            faas::health::probe(&args.url, args.timeout).await?;
            Ok(())
        }
        Command::Client(command) => {
            std::process::exit(faas::cli::run(command, Cli::command()).await)
        }
    }
}

async fn run(start: impl Future<Output = anyhow::Result<Platform>>) -> anyhow::Result<()> {
    let platform = start.await?;
    shutdown_signal().await;
    tracing::info!("shutting down: no new work; in-flight executions get the grace period");
    platform.stop().await;
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
}

async fn admin(args: AdminArgs) -> anyhow::Result<()> {
    let db = faas_runtime::embedded::Db::open(&args.data_dir)
        .context("open the data directory (is `faas serve` running on it?)")?;
    let store =
        faas_runtime::store::Store::new(Arc::new(faas_runtime::embedded::EmbeddedKv::new(db)));
    let auth = faas_api::auth::Auth::new(
        &[0u8; 32],
        Duration::from_secs(60),
        faas_api::auth::LoginLimiter::new(Default::default()),
        Default::default(),
    )
    .map_err(anyhow::Error::msg)?;
    store.index_canonical_usernames().await?;
    let password = args.password.unwrap_or_default();
    promote_or_create(&store, &auth, &args.username, &password).await?;
    tracing::info!(username = %args.username, "is an admin");
    Ok(())
}
