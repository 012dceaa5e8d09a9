//! [`WasmCheck`]: what a deploy asks of a wasm upload -- its digest, size and
//! kind, and that it compiles and links against what the executor offers -- with
//! the executor's engine configuration, so the compiled artifact it leaves in the
//! disk cache is the one executions load.

use std::sync::Arc;

use bytes::Bytes;
use faas_runtime::Result;
use faas_runtime::model::{WasmKind, WasmModule};
use faas_runtime::ports::ObjectStore;
use sha2::{Digest, Sha256};
use wasmtime::Precompiled;

use super::WasmtimeConfig;
use super::artifacts::{Artifacts, wasm_kind};

/// Compile-checks wasm uploads. Cheap to clone.
#[derive(Clone)]
pub struct WasmCheck {
    artifacts: Arc<Artifacts>,
}

impl WasmCheck {
    /// A check of its own, for a process without a [`super::WasmtimeExecutor`]:
    /// an engine built from `config` (the executors' configuration, so their
    /// engines load what it compiles), no worker, no modules bucket.
    pub fn new(config: &WasmtimeConfig) -> Result<Self> {
        let (_engine, artifacts) = super::compiler(config, None::<Arc<dyn ObjectStore>>)?;
        Ok(Self::sharing(Arc::new(artifacts)))
    }

    /// The check over an executor's caches.
    pub(crate) fn sharing(artifacts: Arc<Artifacts>) -> Self {
        WasmCheck { artifacts }
    }

    /// Checks `bytes`: a wasm module or component that compiles and links (a
    /// preview1 command or a supported component world). `Invalid` says why not;
    /// `Overloaded` when too many compilations run.
    pub async fn check(&self, bytes: Bytes) -> Result<WasmModule> {
        let kind = match wasm_kind(&bytes)? {
            Precompiled::Module => WasmKind::Module,
            Precompiled::Component => WasmKind::Component,
        };
        let module = WasmModule {
            module_sha256: hex::encode(Sha256::digest(&bytes)),
            module_size: bytes.len() as u64,
            module_kind: Some(kind),
        };
        self.artifacts
            .get(&module.module_sha256, Some(bytes))
            .await?;
        Ok(module)
    }
}
