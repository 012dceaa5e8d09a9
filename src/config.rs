//! Command-line and environment configuration of every `faas` process.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, ValueEnum};
use faas_executors::docker::WarmConfig;

/// Whether to run container functions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum DockerMode {
    /// Use the Docker engine when one answers at start-up.
    Auto,
    /// Require a Docker engine: refuse to start when none answers.
    On,
    /// Never run container functions.
    Off,
}

/// Settings of `faas serve`, `faas api` and `faas worker` (each uses what its role needs).
#[derive(Debug, Clone, Args)]
pub struct ServeConfig {
    /// NATS server URL: state, queue and objects in JetStream (required by `faas api` and
    /// `faas worker`; without it `faas serve` uses the embedded backend in FAAS_DATA_DIR).
    #[arg(long, env = "NATS_URL")]
    pub nats_url: Option<String>,
    /// Credentials, TLS and replication of the NATS connection.
    #[command(flatten)]
    pub nats: NatsArgs,
    /// Address the API listens on.
    #[arg(long, env = "SERVER_ADDRESS", default_value = "127.0.0.1:8080")]
    pub addr: SocketAddr,
    /// Directory for the database, objects, compiled modules and generated keys.
    #[arg(long, env = "FAAS_DATA_DIR", default_value = "./data")]
    pub data_dir: PathBuf,
    /// HS256 signing key for tokens (>= 32 bytes); generated into the data dir when absent.
    #[arg(long, env = "JWT_SECRET", hide_env_values = true)]
    pub jwt_secret: Option<String>,
    /// 32-byte key (64 hex chars) sealing secrets at rest; generated into the data dir when absent.
    #[arg(long, env = "FAAS_SECRETS_KEY", hide_env_values = true)]
    pub secrets_key: Option<String>,
    /// Ensure an admin account with this username at start-up (with FAAS_ADMIN_PASSWORD);
    /// an existing non-admin account of that name is promoted only if the password is its own.
    #[arg(long, env = "FAAS_ADMIN_USERNAME")]
    pub admin_username: Option<String>,
    /// Password of the start-up admin account.
    #[arg(long, env = "FAAS_ADMIN_PASSWORD", hide_env_values = true)]
    pub admin_password: Option<String>,
    /// Most executions run at once by this process.
    #[arg(long, env = "MAX_CONCURRENT_EXECUTIONS", default_value_t = 10)]
    pub max_concurrent: usize,
    /// Deliveries after which an execution is failed for good.
    #[arg(long, env = "FAAS_MAX_ATTEMPTS", default_value_t = 5)]
    pub max_attempts: u32,
    /// Times an execution may be handed back because its preparation failed (e.g. a
    /// secret the key cannot open) or no executor was ready, before it fails with the
    /// cause (with the retry back-off, 20 is about 7 minutes).
    #[arg(long, env = "FAAS_PREPARE_MAX_RETRIES", default_value_t = 20)]
    pub prepare_max_retries: u32,
    /// Seconds a leased execution stays invisible without a heartbeat before redelivery.
    #[arg(long, env = "FAAS_ACK_WAIT_SECS", default_value_t = 30)]
    pub ack_wait_secs: u64,
    /// Most messages the queue holds; submits beyond answer 503.
    #[arg(long, env = "FAAS_QUEUE_MAX", default_value_t = 100_000)]
    pub queue_max: u64,
    /// Default timeout of a function (seconds).
    #[arg(long, env = "FAAS_DEFAULT_TIMEOUT_SECS", default_value_t = 300)]
    pub default_timeout_secs: u64,
    /// Operator cap on any function's timeout (seconds).
    #[arg(long, env = "FAAS_MAX_TIMEOUT_SECS", default_value_t = 900)]
    pub max_timeout_secs: u64,
    /// Longest `?wait=` of an invoke or a long poll (seconds).
    #[arg(long, env = "FAAS_INVOKE_MAX_WAIT_SECS", default_value_t = 300)]
    pub invoke_max_wait_secs: u64,
    /// Callback URLs may name loopback, private, link-local and CGNAT addresses
    /// (cloud-metadata addresses stay refused).
    #[arg(long, env = "FAAS_CALLBACK_ALLOW_PRIVATE", default_value_t = false, action = clap::ArgAction::Set)]
    pub callback_allow_private: bool,
    /// Wait after a callback's first failed attempt (milliseconds); it doubles after
    /// each, up to 5 minutes.
    #[arg(long, env = "FAAS_CALLBACK_RETRY_BASE_MS", default_value_t = 1000)]
    pub callback_retry_base_ms: u64,
    /// This API process delivers callbacks (`false`: it only records them; another
    /// API process of the installation delivers).
    #[arg(long, env = "FAAS_CALLBACK_DELIVERY", default_value_t = true, action = clap::ArgAction::Set)]
    pub callback_delivery: bool,
    /// Finished executions (records and stored outputs) are deleted this long after
    /// they ended (seconds; 0 keeps them forever).
    #[arg(long, env = "FAAS_RETENTION_SECS", default_value_t = 30 * 24 * 3600)]
    pub retention_secs: u64,
    /// How often each API process looks for executions past the retention (seconds).
    #[arg(long, env = "FAAS_RETENTION_SWEEP_SECS", default_value_t = 3600)]
    pub retention_sweep_secs: u64,
    /// Default memory limit of a function (MiB).
    #[arg(long, env = "FAAS_DEFAULT_MEMORY_MB", default_value_t = 512)]
    pub default_memory_mb: u64,
    /// Operator cap on any function's memory (MiB).
    #[arg(long, env = "FAAS_MAX_MEMORY_MB", default_value_t = 2048)]
    pub max_memory_mb: u64,
    /// stdout and stderr cap per execution (bytes).
    #[arg(long, env = "FAAS_OUTPUT_CAP_BYTES", default_value_t = 1024 * 1024)]
    pub output_cap_bytes: usize,
    /// Largest request body of a function's HTTP endpoint, /fn/... (bytes); more is 413.
    #[arg(long, env = "FAAS_HTTP_MAX_BODY_BYTES", default_value_t = 32 * 1024 * 1024)]
    pub http_max_body_bytes: u64,
    /// HTTP requests to functions served at once by this process; more answer 429. Each
    /// takes a slot of the wasm instance pool (besides two per concurrent execution).
    #[arg(long, env = "FAAS_HTTP_MAX_CONCURRENT", default_value_t = 64)]
    pub http_max_concurrent: usize,
    /// HTTP requests one function serves at once in this process; more answer 429.
    #[arg(
        long,
        env = "FAAS_HTTP_MAX_CONCURRENT_PER_FUNCTION",
        default_value_t = 16
    )]
    pub http_max_concurrent_per_function: usize,
    /// Seconds a request or response body of a function's HTTP endpoint may stall
    /// before the exchange is cut.
    #[arg(long, env = "FAAS_HTTP_IDLE_TIMEOUT_SECS", default_value_t = 30)]
    pub http_idle_timeout_secs: u64,
    /// Calls of functions' HTTP endpoints written as execution records (`trigger:
    /// "http"`): `errors` (failed, timed out or 5xx), `all`, or `none`.
    #[arg(long, env = "FAAS_HTTP_RECORD", default_value = "errors")]
    pub http_record: faas_api::routes::endpoint::HttpRecord,
    /// Guests' outbound HTTP requests may reach loopback, private, link-local and CGNAT
    /// addresses (cloud-metadata addresses stay refused).
    #[arg(long, env = "FAAS_OUTBOUND_ALLOW_PRIVATE", default_value_t = false, action = clap::ArgAction::Set)]
    pub outbound_allow_private: bool,
    /// Seconds an outbound HTTP request of a guest may take to connect, to answer its
    /// head, and to pause within its response body (each).
    #[arg(long, env = "FAAS_OUTBOUND_TIMEOUT_SECS", default_value_t = 30)]
    pub outbound_timeout_secs: u64,
    /// Largest response body of an outbound HTTP request of a guest (bytes).
    #[arg(long, env = "FAAS_OUTBOUND_MAX_RESPONSE_BYTES", default_value_t = 16 * 1024 * 1024)]
    pub outbound_max_response_bytes: u64,
    /// Largest object upload (bytes).
    #[arg(long, env = "FAAS_MAX_OBJECT_BYTES", default_value_t = 100 * 1024 * 1024)]
    pub max_object_bytes: u64,
    /// Largest wasm module upload (bytes).
    #[arg(long, env = "FAAS_MAX_MODULE_BYTES", default_value_t = 64 * 1024 * 1024)]
    pub max_module_bytes: usize,
    /// Size cap of a wasm execution's private /tmp (bytes).
    #[arg(long, env = "FAAS_TMP_CAP_BYTES", default_value_t = 16 * 1024 * 1024)]
    pub tmp_cap_bytes: u64,
    /// Bytes of compiled wasm modules kept in memory (least recently used are dropped
    /// and reload from the disk cache).
    #[arg(long, env = "FAAS_WASM_CACHE_BYTES", default_value_t = 256 * 1024 * 1024)]
    pub wasm_cache_bytes: u64,
    /// Wasm compilations that may run at once (0: one per CPU); deploys beyond wait.
    #[arg(long, env = "FAAS_WASM_MAX_COMPILES", default_value_t = 0)]
    pub wasm_max_compiles: usize,
    /// Seconds a deploy waits for a compilation slot before answering 503.
    #[arg(long, env = "FAAS_WASM_COMPILE_WAIT_SECS", default_value_t = 30)]
    pub wasm_compile_wait_secs: u64,
    /// URL at which functions reach this API (objects over API_BASE_URL); default http://SERVER_ADDRESS.
    #[arg(long, env = "API_BASE_URL")]
    pub api_base_url: Option<String>,
    /// Lifetime of login tokens (seconds).
    #[arg(long, env = "FAAS_TOKEN_TTL_SECS", default_value_t = 86_400)]
    pub token_ttl_secs: u64,
    /// Password attempts per account (any letter case) per window before 429; an
    /// attempt counts from its start, a success clears the account's count.
    #[arg(long, env = "FAAS_LOGIN_MAX_FAILURES", default_value_t = 5)]
    pub login_max_failures: u32,
    /// Password attempts per client address (IPv4, or IPv6 /64) per window before 429.
    #[arg(
        long,
        env = "FAAS_LOGIN_MAX_FAILURES_PER_ADDRESS",
        default_value_t = 20
    )]
    pub login_max_failures_per_address: u32,
    /// The login-attempt window (seconds).
    #[arg(long, env = "FAAS_LOGIN_WINDOW_SECS", default_value_t = 300)]
    pub login_window_secs: u64,
    /// Most accounts and addresses the login throttle tracks (memory bound); beyond,
    /// expired and then the oldest entries are dropped.
    #[arg(long, env = "FAAS_LOGIN_TRACKED_KEYS", default_value_t = 20_000)]
    pub login_tracked_keys: usize,
    /// Reverse proxies (IPs or CIDR blocks, comma-separated) whose X-Forwarded-For names
    /// the client for the login throttle; from any other peer the header is ignored.
    #[arg(long, env = "FAAS_TRUSTED_PROXIES", value_delimiter = ',')]
    pub trusted_proxies: Vec<faas_api::auth::Cidr>,
    /// Who may create accounts: `open` (anyone, through POST /auth/register) or
    /// `closed` (only admins, through POST /api/users).
    #[arg(long, env = "FAAS_REGISTRATION", default_value = "open")]
    pub registration: faas_api::auth::Registration,
    /// Accounts one client address may register per FAAS_REGISTER_WINDOW_SECS (then
    /// 429); 0 = no limit.
    #[arg(long, env = "FAAS_REGISTER_MAX_PER_ADDRESS", default_value_t = 10)]
    pub register_max_per_address: u32,
    /// The window of FAAS_REGISTER_MAX_PER_ADDRESS, in seconds.
    #[arg(long, env = "FAAS_REGISTER_WINDOW_SECS", default_value_t = 3600)]
    pub register_window_secs: u64,
    /// Password hashes (argon2id, 19 MiB each) computed at once; 0 = one per core.
    #[arg(long, env = "FAAS_MAX_CONCURRENT_HASHES", default_value_t = 0)]
    pub max_concurrent_hashes: usize,
    /// Longest wait for a hashing slot (milliseconds) before 503 with Retry-After.
    #[arg(long, env = "FAAS_HASH_WAIT_MS", default_value_t = 2_000)]
    pub hash_wait_ms: u64,
    /// Seconds in-flight executions may finish after SIGTERM/Ctrl-C before being handed back.
    #[arg(long, env = "FAAS_SHUTDOWN_GRACE_SECS", default_value_t = 30)]
    pub grace_secs: u64,
    /// Container functions: auto (when an engine answers), on, off.
    #[arg(long, env = "FAAS_DOCKER", value_enum, default_value = "auto")]
    pub docker: DockerMode,
    /// Most warm containers (started ahead, single-use) at once, all image functions
    /// together; 0 turns warm containers off (every execution starts its container).
    #[arg(long, env = "FAAS_WARM_MAX_CONTAINERS", default_value_t = WarmConfig::default().max_containers)]
    pub warm_max_containers: u32,
    /// Most memory of warm containers at once (the sum of their limits), in MiB.
    #[arg(long, env = "FAAS_WARM_MAX_MEMORY_MB", default_value_t = WarmConfig::default().max_memory_mb)]
    pub warm_max_memory_mb: u64,
    /// Seconds after its last invocation that a function keeps its warm containers.
    #[arg(long, env = "FAAS_WARM_IDLE_SECS", default_value_t = WarmConfig::default().idle.as_secs())]
    pub warm_idle_secs: u64,
    /// Seconds between sweeps for orphaned function containers.
    #[arg(long, env = "FAAS_REAP_INTERVAL_SECS", default_value_t = 60)]
    pub reap_interval_secs: u64,
    /// Default per-user quota: executions queued or running at once (0 = none).
    #[arg(long, env = "FAAS_QUOTA_ACTIVE_EXECUTIONS", default_value_t = 1_000)]
    pub quota_active_executions: u64,
    /// Default per-user quota: submissions per minute, per API process (0 = none).
    #[arg(
        long,
        env = "FAAS_QUOTA_SUBMISSIONS_PER_MINUTE",
        default_value_t = 1_200
    )]
    pub quota_submissions_per_minute: u64,
    /// Default per-user quota: bytes of stored objects (0 = none).
    #[arg(long, env = "FAAS_QUOTA_OBJECT_BYTES", default_value_t = 1024 * 1024 * 1024)]
    pub quota_object_bytes: u64,
    /// Default per-user quota: functions (0 = none).
    #[arg(long, env = "FAAS_QUOTA_FUNCTIONS", default_value_t = 100)]
    pub quota_functions: u64,
    /// Default per-user quota: secrets (0 = none).
    #[arg(long, env = "FAAS_QUOTA_SECRETS", default_value_t = 100)]
    pub quota_secrets: u64,
    /// Docker network of containers that read objects.
    #[arg(long, env = "NETWORK_NAME", default_value = "faas-functions")]
    pub network_name: String,
    /// Images functions may use: comma-separated glob patterns (`registry.local/team/*,python:3.*`); `*` allows all.
    #[arg(long, env = "FAAS_ALLOWED_IMAGES", default_value = "*")]
    pub allowed_images: String,
    /// Address of a listener serving only the object capability route and /healthz
    /// (`faas capabilities`; also served by `faas api`/`faas serve` when set).
    #[arg(long, env = "FAAS_CAPABILITY_ADDRESS")]
    pub capability_addr: Option<SocketAddr>,
    /// Address of a health listener for `faas worker`: GET /healthz answers 200 while
    /// the worker's heartbeat is fresh, else 503.
    #[arg(long, env = "FAAS_HEALTH_ADDRESS")]
    pub health_addr: Option<SocketAddr>,
    /// Address of a listener serving only GET /metrics (Prometheus). Unset: the API's
    /// listener serves /metrics (`faas serve`, `faas api`), or the health listener does
    /// (`faas worker`).
    #[arg(long, env = "FAAS_METRICS_ADDRESS")]
    pub metrics_addr: Option<SocketAddr>,
    /// Address of a listener serving only the functions' HTTP endpoints (`/fn/...`)
    /// and /healthz: how `faas worker` serves them in the cluster; `faas serve` and
    /// `faas api` serve them on the API's listener and, when set, here too.
    #[arg(long, env = "FAAS_HTTP_ADDRESS")]
    pub http_addr: Option<SocketAddr>,
}

/// How every process connects to NATS (all optional; NATS_URL may list several
/// servers of a cluster, comma-separated).
#[derive(Debug, Clone, Default, Args)]
pub struct NatsArgs {
    /// NATS user name (with FAAS_NATS_PASSWORD).
    #[arg(long = "nats-user", env = "FAAS_NATS_USER")]
    pub user: Option<String>,
    /// NATS password.
    #[arg(
        long = "nats-password",
        env = "FAAS_NATS_PASSWORD",
        hide_env_values = true
    )]
    pub password: Option<String>,
    /// NATS authentication token.
    #[arg(long = "nats-token", env = "FAAS_NATS_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// NATS credentials file (.creds: JWT and NKey seed).
    #[arg(long = "nats-creds", env = "FAAS_NATS_CREDS")]
    pub creds: Option<PathBuf>,
    /// PEM CA certificate that signed the NATS servers' certificates (turns TLS on).
    #[arg(long = "nats-ca", env = "FAAS_NATS_CA")]
    pub ca: Option<PathBuf>,
    /// PEM client certificate for mutual TLS (with FAAS_NATS_KEY).
    #[arg(long = "nats-cert", env = "FAAS_NATS_CERT")]
    pub cert: Option<PathBuf>,
    /// PEM private key of FAAS_NATS_CERT.
    #[arg(long = "nats-key", env = "FAAS_NATS_KEY")]
    pub key: Option<PathBuf>,
    /// Refuse to talk to NATS without TLS.
    #[arg(long = "nats-tls", env = "FAAS_NATS_TLS", default_value_t = false)]
    pub tls: bool,
    /// Replicas of the queue stream, key-value buckets and object stores (1, 3 or 5;
    /// the same in every process).
    #[arg(
        long = "nats-replicas",
        env = "FAAS_NATS_REPLICAS",
        default_value_t = 1
    )]
    pub replicas: usize,
}

impl NatsArgs {
    /// The runtime's connection settings.
    pub fn auth(&self) -> faas_runtime::nats::NatsAuth {
        faas_runtime::nats::NatsAuth {
            user: self.user.clone(),
            password: self.password.clone(),
            token: self.token.clone(),
            creds_file: self.creds.clone(),
            ca_file: self.ca.clone(),
            client_cert: self.cert.clone(),
            client_key: self.key.clone(),
            require_tls: self.tls,
        }
    }
}

/// Settings of `faas autoscaler`.
#[derive(Debug, Clone, Args)]
pub struct AutoscalerConfig {
    /// NATS server URL (the queue whose backlog is watched).
    #[arg(long, env = "NATS_URL", default_value = "nats://127.0.0.1:4222")]
    pub nats_url: String,
    /// Credentials, TLS and replication of the NATS connection.
    #[command(flatten)]
    pub nats: NatsArgs,
    /// Fewest worker containers.
    #[arg(long, env = "MIN_WORKERS", default_value_t = 2)]
    pub min_workers: u32,
    /// Most worker containers.
    #[arg(long, env = "MAX_WORKERS", default_value_t = 10)]
    pub max_workers: u32,
    /// Backlog per worker above which to add workers.
    #[arg(long, env = "SCALE_UP_THRESHOLD", default_value_t = 3.0)]
    pub scale_up_threshold: f64,
    /// Backlog per worker below which to remove one.
    #[arg(long, env = "SCALE_DOWN_THRESHOLD", default_value_t = 2.0)]
    pub scale_down_threshold: f64,
    /// Time between decisions (e.g. `30s`, `1m`).
    #[arg(long, env = "CHECK_INTERVAL", default_value = "30s", value_parser = parse_duration)]
    pub check_interval: std::time::Duration,
    /// Quiet time after a change (e.g. `30s`).
    #[arg(long, env = "COOLDOWN_PERIOD", default_value = "30s", value_parser = parse_duration)]
    pub cooldown_period: std::time::Duration,
    /// Label that marks the worker containers to clone and remove.
    #[arg(long, env = "FAAS_WORKER_LABEL", default_value = "faas.role=worker")]
    pub worker_label: String,
    /// The workers' FAAS_SHUTDOWN_GRACE_SECS: a removed worker gets this plus a margin
    /// to drain (SIGTERM, then kill).
    #[arg(long, env = "FAAS_SHUTDOWN_GRACE_SECS", default_value_t = 30)]
    pub grace_secs: u64,
    /// Address of a health listener: GET /healthz answers 200 while the scaling loop
    /// runs and NATS and the Docker engine answer, else 503.
    #[arg(long, env = "FAAS_HEALTH_ADDRESS")]
    pub health_addr: Option<SocketAddr>,
}

/// `cmd` (and its subcommands) with every setting whose environment variable is set
/// but empty treated as unset: compose's `${VAR:-}` passes `""`, which would otherwise
/// reach the setting as an empty value (or fail to parse as a number).
pub fn ignore_empty_env(cmd: clap::Command) -> clap::Command {
    cmd.mut_args(|arg| {
        let empty = arg
            .get_env()
            .and_then(std::env::var_os)
            .is_some_and(|v| v.is_empty());
        if empty {
            arg.env(None::<&'static str>)
        } else {
            arg
        }
    })
    .mut_subcommands(ignore_empty_env)
}

/// The environment variables `cmd` and its subcommands read, sorted, once each.
pub fn env_names(cmd: &clap::Command) -> Vec<String> {
    let mut names: Vec<String> = cmd
        .get_arguments()
        .filter_map(|a| a.get_env())
        .map(|n| n.to_string_lossy().into_owned())
        .chain(cmd.get_subcommands().flat_map(env_names))
        .collect();
    names.sort();
    names.dedup();
    names
}

/// Parses `30s`, `2m`, `500ms` or plain seconds.
pub fn parse_duration(s: &str) -> Result<std::time::Duration, String> {
    let s = s.trim();
    let (num, unit) = s
        .find(|c: char| !c.is_ascii_digit())
        .map_or((s, "s"), |i| s.split_at(i));
    let n: u64 = num
        .parse()
        .map_err(|_| format!("{s:?} is not a duration like 30s"))?;
    match unit {
        "ms" => Ok(std::time::Duration::from_millis(n)),
        "s" => Ok(std::time::Duration::from_secs(n)),
        "m" => Ok(std::time::Duration::from_secs(n * 60)),
        "h" => Ok(std::time::Duration::from_secs(n * 3600)),
        _ => Err(format!("{s:?}: unknown unit (use ms, s, m or h)")),
    }
}

impl ServeConfig {
    /// The Docker executor's warm pools.
    pub fn warm_config(&self) -> WarmConfig {
        WarmConfig {
            max_containers: self.warm_max_containers,
            max_memory_mb: self.warm_max_memory_mb,
            idle: std::time::Duration::from_secs(self.warm_idle_secs.max(1)),
        }
    }

    /// The login throttle's limits.
    pub fn limiter(&self) -> faas_api::auth::LimiterConfig {
        faas_api::auth::LimiterConfig {
            account_max: self.login_max_failures,
            address_max: self.login_max_failures_per_address,
            window: std::time::Duration::from_secs(self.login_window_secs),
            max_keys: self.login_tracked_keys,
            trusted_proxies: self.trusted_proxies.clone(),
            register_max: self.register_max_per_address,
            register_window: std::time::Duration::from_secs(self.register_window_secs),
            registration: self.registration,
        }
    }

    /// The password hasher's limits.
    pub fn hashing(&self) -> faas_api::auth::HashLimits {
        let default = faas_api::auth::HashLimits::default();
        faas_api::auth::HashLimits {
            max_concurrent: match self.max_concurrent_hashes {
                0 => default.max_concurrent,
                n => n,
            },
            max_wait: std::time::Duration::from_millis(self.hash_wait_ms),
        }
    }
}
