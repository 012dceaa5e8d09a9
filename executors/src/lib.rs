//! `faas-executors`: the executors of the FaaS platform, each implementing the
//! [`faas_runtime::ports::Executor`] port, and the autoscaler's Docker scaler.
//!
//! - [`wasmtime`]: [`wasmtime::WasmtimeExecutor`] runs wasm modules and components
//!   in-process (WASI preview1 commands, `wasi:cli/command` and `faas:function`
//!   components), fenced by timeouts, memory limits and output caps;
//! - [`docker`]: [`docker::DockerExecutor`], image functions in hardened single-use
//!   containers;
//! - [`scaler`]: [`scaler::DockerScaler`], worker containers added and drained on
//!   the autoscaler's decisions;
//! - [`validate`]: [`validate::DeployValidator`], the deploy-time check of wasm
//!   uploads and image references that the API calls (no worker, no engine).

pub mod docker;
pub mod scaler;
pub mod validate;
pub mod wasmtime;

pub use validate::{DeployValidator, ValidationError, validate_image};
