//! The Wasmtime executor: runs WASI preview1 command modules, `wasi:cli/command`
//! components and `faas:function` components in-process, under the function
//! contract (CONTRACT.md §1), fenced and fast.
//!
//! Modules:
//! - `engine`: the one `Engine` (pooling allocator, copy-on-write memory images,
//!   epoch interruption, no multi-memory) and the process's one epoch ticker;
//! - `artifacts`: validation and compilation at deploy time (bounded in
//!   concurrency), the disk cache; `check`: [`WasmCheck`], that validation as a
//!   deploy asks for it (digest, kind, compiled and linked), without an executor; `memory`: the in-memory cache, bounded in bytes;
//!   `link`: the linkers and the `InstancePre` per module;
//! - `sandbox`: argv/env/stdin, `/tmp`, `/objects`, no network; `scratch`: fresh
//!   `/tmp` directories made ahead and removed behind; `pipe`: capped
//!   stdout/stderr; `limits`: the memory limiter; `run`: one execution;
//! - `proxy`: `wasi:http/proxy` components, one fresh store per HTTP request;
//!   `outbound`: their outgoing requests, under the function's outbound policy;
//! - `bindings` (the `bindgen!` output of `wit/function.wit`) and `objects` (its
//!   `objects` import); `state`: what a store holds.
//!
//! # What a guest sees
//!
//! argv `[function name, INPUT]` (no INPUT past 64 KiB), INPUT on stdin, the
//! request's env only, a fresh `/tmp` capped at `tmp_cap_bytes`, the granted
//! objects read-only under `/objects/<function_id>/<name>`, no sockets and no name
//! lookup, no other path. A `faas:function` component's `ok(s)` becomes stdout
//! (and what it prints goes to the logs with its stderr); `err(m)` becomes
//! `Termination::GuestError(m)`. Components exit through `wasi:cli/exit@0.2`,
//! which carries ok/err only: their non-zero exit code is 1.
//!
//! # Why async (and not `spawn_blocking` with the sync API)
//!
//! Guests run through `call_async` on a fiber, on the tokio worker that polls the
//! execution. The epoch callback returns `UpdateDeadline::Yield` every tick (10 ms),
//! so a compute-bound guest gives its thread back to tokio at least every tick and
//! never starves other executions or the worker's I/O. WASI preview2 is implemented
//! natively async in `wasmtime-wasi`, so host calls (clocks, stdin, files) await
//! instead of parking a thread; the sync API would need one blocked OS thread per
//! running execution and `block_on` inside every WASI call. Cancellation is simple:
//! dropping the call future drops the fiber and the store -- which is how the
//! wall-clock bound (`tokio::time::sleep_until` raced against the call) stops a
//! guest that is stuck inside a host call, where no epoch check can run. The epoch
//! callback itself also interrupts the guest past its deadline, so the two fences
//! back each other up. Fiber stacks come from the pooling allocator like memories.

mod artifacts;
mod bindings;
mod check;
mod engine;
mod limits;
mod link;
mod memory;
mod objects;
mod outbound;
mod pipe;
mod proxy;
mod run;
mod sandbox;
mod scratch;
mod state;

use std::path::PathBuf;
use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use faas_runtime::model::{Function, Runnable, RuntimeKind};
use faas_runtime::ports::{
    ExecutionRequest, Executor, HttpHandler, HttpOutcome, HttpRequest, ObjectStore, RawOutcome,
};
use faas_runtime::{Error, Result};
use wasmtime::Engine;
use wasmtime_wasi::p2::bindings::CommandPre;

use self::artifacts::{Artifacts, Bounds};
use self::bindings::FunctionPre;
pub use self::check::WasmCheck;
use self::link::Linkers;
use self::scratch::Scratch;
use self::state::{ComponentState, ModuleState};

/// Operator settings of the Wasmtime executor.
#[derive(Debug, Clone)]
pub struct WasmtimeConfig {
    /// Directory of compiled artifacts (`<sha256>-<engine hash>.cwasm`). Artifacts
    /// are loaded as native code: this directory must be writable by the platform
    /// alone.
    pub cache_dir: PathBuf,
    /// Size of the instance pool: at least the number of concurrent executions.
    pub max_instances: u32,
    /// Largest linear memory any function may have, in MiB (the pool's slot size);
    /// caps every function's own memory limit.
    pub max_memory_mb: u64,
    /// Bytes a guest may keep in its private `/tmp`.
    pub tmp_cap_bytes: u64,
    /// Compilations that may run at once (0: one per CPU).
    pub max_compiles: usize,
    /// How long a compilation may wait for its turn before the deploy is refused
    /// (`Overloaded`).
    pub compile_wait: std::time::Duration,
    /// Bytes of compiled modules kept in memory (least recently used go first;
    /// they reload from the disk cache).
    pub cache_bytes: u64,
}

/// A module linked and ready to instantiate.
pub(crate) struct Prepared {
    /// What to instantiate and call.
    pub(crate) entry: Entry,
    /// The guest imports filesystem functions. When it does not, it cannot reach
    /// `/tmp` or `/objects`, which are then not created (saving ~3 syscalls).
    pub(crate) filesystem: bool,
}

/// The entry point of a prepared module.
pub(crate) enum Entry {
    /// A WASI preview1 command module.
    Module(wasmtime::InstancePre<ModuleState>),
    /// A `wasi:cli/command` component.
    Command(CommandPre<ComponentState>),
    /// A `faas:function` component.
    Function(FunctionPre<ComponentState>),
    /// A `wasi:http/proxy` component (served per HTTP request only).
    Proxy(wasmtime_wasi_http::p2::bindings::ProxyPre<proxy::HttpState>),
}

/// What every execution shares.
pub(crate) struct Shared {
    pub(crate) engine: Engine,
    pub(crate) config: WasmtimeConfig,
    pub(crate) scratch: Scratch,
}

/// Runs wasm functions in-process with Wasmtime. Build one per process.
pub struct WasmtimeExecutor {
    shared: Arc<Shared>,
    artifacts: Arc<Artifacts>,
}

impl WasmtimeExecutor {
    /// Builds the engine and linkers; `modules` holds module bytes (bucket
    /// [`faas_runtime::model::MODULES_BUCKET`], named by their sha256) for
    /// recompiling what the disk cache lacks.
    pub fn new(config: WasmtimeConfig, modules: Arc<dyn ObjectStore>) -> Result<Self> {
        let (engine, artifacts) = compiler(&config, Some(modules))?;
        Ok(WasmtimeExecutor {
            shared: Arc::new(Shared {
                engine,
                config,
                scratch: Scratch::new()?,
            }),
            artifacts: Arc::new(artifacts),
        })
    }

    /// The deploy-time check of modules, sharing this executor's engine and
    /// caches: what it compiles, executions find compiled.
    pub fn check(&self) -> WasmCheck {
        WasmCheck::sharing(self.artifacts.clone())
    }

    /// Modules compiled by this executor so far (cache hits are not counted).
    pub fn compilations(&self) -> u64 {
        self.artifacts.compilations()
    }

    /// Bytes and count of compiled modules held in memory now.
    pub fn memory_usage(&self) -> (u64, usize) {
        self.artifacts.memory_usage()
    }

    /// The engine, for benchmarks that compare against bare Wasmtime.
    pub fn engine(&self) -> &Engine {
        &self.shared.engine
    }
}

/// The engine of `config` and its compiled-artifact caches; `modules` (the
/// modules bucket) recompiles what the disk cache lacks.
fn compiler(
    config: &WasmtimeConfig,
    modules: Option<Arc<dyn ObjectStore>>,
) -> Result<(Engine, Artifacts)> {
    let engine = engine::build(config)?;
    let linkers = Linkers::new(&engine)?;
    let max_compiles = match config.max_compiles {
        0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
        n => n,
    };
    let bounds = Bounds {
        max_compiles,
        compile_wait: config.compile_wait,
        memory_bytes: config.cache_bytes,
    };
    let artifacts = Artifacts::new(
        engine.clone(),
        linkers,
        config.cache_dir.clone(),
        modules,
        bounds,
    )?;
    Ok((engine, artifacts))
}

/// The function's module digest: 64 hex digits (it also names cache files).
fn module_sha256(function: &Function) -> Result<&str> {
    let is_digest = |s: &str| s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit());
    match &function.runnable {
        Runnable::Wasm(m) if is_digest(&m.module_sha256) => Ok(m.module_sha256.as_str()),
        Runnable::Wasm(m) if m.module_sha256.is_empty() => {
            Err(Error::Invalid("wasm function without a module".into()))
        }
        Runnable::Wasm(m) => Err(Error::Invalid(format!(
            "not a sha256 digest: {:?}",
            m.module_sha256
        ))),
        Runnable::Image(_) => Err(Error::Invalid("not a wasm function".into())),
    }
}

#[async_trait]
impl Executor for WasmtimeExecutor {
    fn kind(&self) -> RuntimeKind {
        RuntimeKind::Wasm
    }

    async fn prepare(&self, function: &Function, artifact: Option<Bytes>) -> Result<()> {
        let sha256 = module_sha256(function)?;
        self.artifacts.get(sha256, artifact).await.map(drop)
    }

    async fn execute(&self, request: ExecutionRequest) -> Result<RawOutcome> {
        let sha256 = module_sha256(&request.function)?;
        let prepared = self.artifacts.get(sha256, None).await?;
        run::run(&self.shared, &prepared, &request).await
    }

    async fn forget(&self, function: &Function) {
        if let Ok(sha256) = module_sha256(function) {
            self.artifacts.forget(sha256).await;
        }
    }
}

#[async_trait]
impl HttpHandler for WasmtimeExecutor {
    async fn handles(&self, function: &Function) -> Result<bool> {
        if function.runnable.wasm().is_none() {
            return Ok(false);
        }
        let prepared = self.artifacts.get(module_sha256(function)?, None).await?;
        Ok(matches!(prepared.entry, Entry::Proxy(_)))
    }

    async fn handle(&self, request: HttpRequest) -> Result<HttpOutcome> {
        let sha256 = module_sha256(&request.function)?;
        let prepared = self.artifacts.get(sha256, None).await?;
        proxy::serve(&self.shared, prepared, request).await
    }
}
