//! The executor port: runs one execution of a function under the function contract
//! (CONTRACT.md §1) and reports what happened, leaving the status mapping (§2) to
//! [`crate::outcome`].

use std::path::PathBuf;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;

use crate::Result;
use crate::model::{Function, RuntimeKind};

/// An object the execution may read: `object_inputs` named it and the owner has it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectGrant {
    /// The alias used in `object_inputs`.
    pub alias: String,
    /// The function whose bucket holds it.
    pub function_id: String,
    /// The object's name.
    pub name: String,
    /// Size in bytes.
    pub size: u64,
    /// Content type given at upload.
    pub content_type: String,
}

impl ObjectGrant {
    /// `<function_id>/<name>`, as written in the input.
    pub fn key(&self) -> String {
        format!("{}/{}", self.function_id, self.name)
    }
}

/// Everything an executor needs for one run.
#[derive(Debug, Clone)]
pub struct ExecutionRequest {
    /// The execution's id.
    pub execution_id: String,
    /// Delivery attempt (1-based).
    pub attempt: u32,
    /// The function to run.
    pub function: Function,
    /// The input JSON text (argv[1] when at most 64 KiB, and stdin).
    pub input: String,
    /// The environment: requested secrets (upper-cased names) and documented variables.
    pub env: Vec<(String, String)>,
    /// Objects the execution may read.
    pub objects: Vec<ObjectGrant>,
    /// A host directory holding `<function_id>/<name>` for every grant (wasm mounts it
    /// read-only at `/objects`).
    pub objects_dir: Option<PathBuf>,
    /// Hard wall-clock limit.
    pub timeout: Duration,
    /// Memory limit in bytes.
    pub memory_limit: u64,
    /// stdout cap in bytes.
    pub stdout_cap: usize,
    /// stderr cap in bytes.
    pub stderr_cap: usize,
}

/// Largest input passed in argv; larger inputs come on stdin only.
pub const MAX_ARGV_INPUT: usize = 64 * 1024;

impl ExecutionRequest {
    /// The argv input, or `None` when the input is too large for argv.
    pub fn argv_input(&self) -> Option<&str> {
        (self.input.len() <= MAX_ARGV_INPUT).then_some(self.input.as_str())
    }
}

/// How the guest stopped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Termination {
    /// Exited (or returned) with this code.
    Exited(i32),
    /// A typed component returned `err(message)`.
    GuestError(String),
    /// Killed at its timeout.
    TimedOut,
    /// Killed for exceeding its memory limit.
    MemoryExceeded,
    /// Trapped (wasm) or crashed; the message says why.
    Trap(String),
}

/// What an executor observed; [`crate::outcome::classify`] turns it into a record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawOutcome {
    /// How it stopped.
    pub termination: Termination,
    /// Captured stdout (at most the cap).
    pub stdout: Vec<u8>,
    /// Captured stderr (at most the cap).
    pub stderr: Vec<u8>,
    /// stdout went past its cap.
    pub stdout_overflow: bool,
    /// stderr went past its cap.
    pub stderr_overflow: bool,
}

/// Runs functions of one [`RuntimeKind`].
///
/// A guest's failure (trap, non-zero exit, timeout) is `Ok(RawOutcome)`; `Err` is
/// an infrastructure fault the worker retries.
#[async_trait]
pub trait Executor: Send + Sync + 'static {
    /// The runtime this executor serves.
    fn kind(&self) -> RuntimeKind;
    /// Validates (and compiles, caches, pulls...) a function at deploy time.
    /// `artifact` is the wasm module for wasm functions. `Invalid` explains a refusal.
    async fn prepare(&self, function: &Function, artifact: Option<Bytes>) -> Result<()>;
    /// Runs one execution.
    async fn execute(&self, request: ExecutionRequest) -> Result<RawOutcome>;
    /// Drops what was cached for a deleted function (called only when no other
    /// function shares it, e.g. the same wasm module).
    async fn forget(&self, _function: &Function) {}
    /// Fails with `Unavailable` when the executor cannot run anything now.
    async fn ready(&self) -> Result<()> {
        Ok(())
    }
}

/// Indexes executors by the runtime they serve (the last one of a kind wins).
pub fn by_kind(
    executors: Vec<std::sync::Arc<dyn Executor>>,
) -> std::collections::HashMap<RuntimeKind, std::sync::Arc<dyn Executor>> {
    executors.into_iter().map(|e| (e.kind(), e)).collect()
}
