//! `faas-executors`: the executors of the FaaS platform, each implementing the
//! [`faas_runtime::ports::Executor`] port.
//!
//! - [`wasmtime`]: [`wasmtime::WasmtimeExecutor`] runs wasm modules and components
//!   in-process (WASI preview1 commands, `wasi:cli/command` and `faas:function`
//!   components), fenced by timeouts, memory limits and output caps.

pub mod wasmtime;
