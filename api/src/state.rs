//! [`AppState`]: the ports and settings every handler reaches.

use std::collections::HashMap;
use std::sync::Arc;

use faas_runtime::model::RuntimeKind;
use faas_runtime::ports::{Executor, HttpHandler, ObjectStore, Validator, WorkQueue};
use faas_runtime::sealing::SecretBox;
use faas_runtime::store::Store;

use crate::auth::Auth;

/// Size and value limits of the API.
#[derive(Debug, Clone)]
pub struct ApiLimits {
    /// Largest JSON request body.
    pub max_json_bytes: usize,
    /// Largest uploaded object.
    pub max_object_bytes: u64,
    /// Largest wasm module.
    pub max_module_bytes: usize,
    /// Longest secret value, in characters (JSON Schema `maxLength`).
    pub max_secret_chars: usize,
    /// Largest execution input.
    pub max_input_bytes: usize,
    /// Default and cap of a function's timeout (seconds).
    pub default_timeout_secs: u64,
    /// Operator cap of a function's timeout (seconds).
    pub max_timeout_secs: u64,
    /// Default memory of a function (MiB).
    pub default_memory_mb: u64,
    /// Operator cap of a function's memory (MiB).
    pub max_memory_mb: u64,
    /// Longest `?wait=` of an invoke or a long poll (seconds).
    pub max_wait_secs: u64,
    /// Default per-user quotas (`0` = no limit).
    pub quotas: faas_runtime::model::Quotas,
    /// Callback URLs may name loopback, private and link-local addresses
    /// (FAAS_CALLBACK_ALLOW_PRIVATE; never cloud-metadata ones).
    pub callback_allow_private: bool,
    /// Largest request body of a function's HTTP endpoint.
    pub http_max_body_bytes: u64,
    /// HTTP requests to functions served at once, all functions together.
    pub http_max_concurrent: usize,
    /// HTTP requests one function serves at once.
    pub http_max_concurrent_per_function: usize,
    /// Longest pause within a streamed request or response body (seconds).
    pub http_idle_timeout_secs: u64,
    /// stdout and stderr cap of a function answering over HTTP.
    pub http_output_cap_bytes: usize,
    /// Which calls of the functions' endpoints are written as execution records.
    pub http_record: crate::routes::endpoint::HttpRecord,
    /// Bounds of guests' outbound HTTP requests (FAAS_OUTBOUND_*).
    pub outbound: faas_runtime::outbound::OutboundLimits,
}

impl Default for ApiLimits {
    fn default() -> Self {
        ApiLimits {
            max_json_bytes: 2 * 1024 * 1024,
            max_object_bytes: 100 * 1024 * 1024,
            max_module_bytes: 64 * 1024 * 1024,
            max_secret_chars: 64 * 1024,
            max_input_bytes: 1024 * 1024,
            default_timeout_secs: 300,
            max_timeout_secs: 900,
            default_memory_mb: 512,
            max_memory_mb: 2048,
            max_wait_secs: 300,
            quotas: crate::quotas::defaults(),
            callback_allow_private: false,
            http_max_body_bytes: 32 * 1024 * 1024,
            http_max_concurrent: 64,
            http_max_concurrent_per_function: 16,
            http_idle_timeout_secs: 30,
            http_output_cap_bytes: 1024 * 1024,
            http_record: crate::routes::endpoint::HttpRecord::Errors,
            outbound: faas_runtime::outbound::OutboundLimits::default(),
        }
    }
}

/// Shared state of the router.
#[derive(Clone)]
pub struct AppState {
    /// Typed state.
    pub store: Store,
    /// The execution queue.
    pub queue: Arc<dyn WorkQueue>,
    /// Objects and modules.
    pub objects: Arc<dyn ObjectStore>,
    /// The executors of this process: they run the functions' HTTP endpoints
    /// (`/fn`) and report readiness; a deploy needs none of them.
    pub executors: HashMap<RuntimeKind, Arc<dyn Executor>>,
    /// Checks what deploys and new versions upload; `None` on a listener that
    /// takes no deploys (503).
    pub validator: Option<Arc<dyn Validator>>,
    /// Passwords, tokens, login throttling.
    pub auth: Arc<Auth>,
    /// Secret sealing key.
    pub secrets: SecretBox,
    /// Limits.
    pub limits: Arc<ApiLimits>,
    /// Quota counters of this process.
    pub meter: Arc<crate::quotas::Meter>,
    /// Renders `GET /metrics`; `None` when this listener does not serve them.
    pub metrics: Option<crate::routes::metrics::RenderMetrics>,
    /// Serves functions that are HTTP handlers (`wasi:http/proxy` components).
    pub http: Option<Arc<dyn HttpHandler>>,
    /// Concurrency slots of the functions' HTTP endpoints.
    pub slots: Arc<crate::routes::endpoint::Slots>,
    /// Metrics and records of the calls of the functions' HTTP endpoints.
    pub records: Arc<crate::routes::endpoint::Recorder>,
}

impl AppState {
    /// State over the given ports.
    pub fn new(
        store: Store,
        queue: Arc<dyn WorkQueue>,
        objects: Arc<dyn ObjectStore>,
        executors: Vec<Arc<dyn Executor>>,
        auth: Auth,
        secrets: SecretBox,
        limits: ApiLimits,
    ) -> Self {
        let slots = crate::routes::endpoint::Slots::new(
            limits.http_max_concurrent,
            limits.http_max_concurrent_per_function,
        );
        let records = crate::routes::endpoint::Recorder::new(store.clone(), limits.http_record);
        AppState {
            store,
            queue,
            objects,
            executors: faas_runtime::ports::by_kind(executors),
            validator: None,
            auth: Arc::new(auth),
            secrets,
            limits: Arc::new(limits),
            meter: Arc::new(crate::quotas::Meter::default()),
            metrics: None,
            http: None,
            slots: Arc::new(slots),
            records: Arc::new(records),
        }
    }

    /// The same state serving `GET /metrics` with `render`.
    pub fn with_metrics(mut self, render: crate::routes::metrics::RenderMetrics) -> Self {
        self.metrics = Some(render);
        self
    }

    /// The same state taking deploys, checked by `validator`.
    pub fn with_validator(mut self, validator: Arc<dyn Validator>) -> Self {
        self.validator = Some(validator);
        self
    }

    /// The same state serving HTTP handler functions with `handler`.
    pub fn with_http_handler(mut self, handler: Arc<dyn HttpHandler>) -> Self {
        self.http = Some(handler);
        self
    }
}
