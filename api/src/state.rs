//! [`AppState`]: the ports and settings every handler reaches.

use std::collections::HashMap;
use std::sync::Arc;

use faas_runtime::model::RuntimeKind;
use faas_runtime::ports::{Executor, ObjectStore, WorkQueue};
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
    /// Executors, for deploy-time validation.
    pub executors: HashMap<RuntimeKind, Arc<dyn Executor>>,
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
        AppState {
            store,
            queue,
            objects,
            executors: faas_runtime::ports::by_kind(executors),
            auth: Arc::new(auth),
            secrets,
            limits: Arc::new(limits),
            meter: Arc::new(crate::quotas::Meter::default()),
            metrics: None,
        }
    }

    /// The same state serving `GET /metrics` with `render`.
    pub fn with_metrics(mut self, render: crate::routes::metrics::RenderMetrics) -> Self {
        self.metrics = Some(render);
        self
    }
}
