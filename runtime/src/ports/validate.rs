//! The validator port: checks what a deploy or a new version uploads to run,
//! without running it and without a worker. The API calls it; the executors'
//! crate implements it (compile-checking wasm, checking image references), so a
//! process that serves the API needs no executor to accept a deploy.

use async_trait::async_trait;
use bytes::Bytes;

use crate::Result;
use crate::model::{ImageSpec, Runnable, RuntimeKind};

/// What a deploy or a new version uploads to run, before it is checked: one arm
/// per executor, as [`Runnable`].
#[derive(Debug, Clone)]
pub enum Upload {
    /// The bytes of a wasm module or component.
    Wasm(Bytes),
    /// An image reference with its settings.
    Image(ImageSpec),
}

impl Upload {
    /// The runtime that would run it.
    pub fn kind(&self) -> RuntimeKind {
        match self {
            Upload::Wasm(_) => RuntimeKind::Wasm,
            Upload::Image(_) => RuntimeKind::Docker,
        }
    }
}

/// Checks uploads.
#[async_trait]
pub trait Validator: Send + Sync + 'static {
    /// Checks `upload` and returns what a version of it runs (for wasm: its
    /// digest, size and kind). `Invalid` says why it is refused; `Overloaded` when
    /// too many checks run at once.
    async fn validate(&self, upload: Upload) -> Result<Runnable>;
}
