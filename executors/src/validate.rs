//! Deploy-time validation without a worker: [`DeployValidator`] implements the
//! [`Validator`] port the API calls for every deploy and new version.
//!
//! - wasm: [`crate::wasmtime::WasmCheck`] computes the digest and kind, compiles
//!   and links the upload with the executors' engine configuration, and leaves
//!   the compiled artifact in the disk cache;
//! - images: [`validate_image`], a pure check of the reference's grammar and of
//!   the operator's allow-list (nothing asks a Docker engine; an image a worker
//!   cannot pull fails its execution with the reason).
//!
//! A third executor adds an arm to [`Upload`] and [`Runnable`] and one here.

use async_trait::async_trait;
use faas_runtime::model::{ImageSpec, Runnable};
use faas_runtime::ports::{Upload, Validator};

use crate::docker::{AllowedImages, ImageRef};
use crate::wasmtime::WasmCheck;

/// Why an upload is refused, or could not be checked.
#[derive(Debug, thiserror::Error)]
pub enum ValidationError {
    /// The wasm module or component is invalid (the message says why).
    #[error("{0}")]
    Module(String),
    /// The image reference is malformed or not allowed.
    #[error("{0}")]
    Image(String),
    /// The check could not run (too many compilations, I/O): not the upload's fault.
    #[error(transparent)]
    Platform(faas_runtime::Error),
}

impl From<ValidationError> for faas_runtime::Error {
    fn from(e: ValidationError) -> Self {
        match e {
            ValidationError::Module(m) | ValidationError::Image(m) => {
                faas_runtime::Error::Invalid(m)
            }
            ValidationError::Platform(e) => e,
        }
    }
}

/// Checks an image's reference and the allow-list; no engine is asked.
pub fn validate_image(image: &ImageSpec, allowed: &AllowedImages) -> Result<(), ValidationError> {
    let parsed = ImageRef::parse(&image.image_url).map_err(|e| match e {
        faas_runtime::Error::Invalid(m) => ValidationError::Image(m),
        other => ValidationError::Platform(other),
    })?;
    allowed.check(&parsed).map_err(ValidationError::Image)
}

/// The validator of a process: wasm checked with its engine configuration,
/// images against its allow-list.
#[derive(Clone)]
pub struct DeployValidator {
    wasm: WasmCheck,
    images: AllowedImages,
}

impl DeployValidator {
    /// A validator over `wasm` (an executor's [`crate::wasmtime::WasmtimeExecutor::check`]
    /// or a [`WasmCheck::new`] of its own) and the allow-list `images`.
    pub fn new(wasm: WasmCheck, images: AllowedImages) -> Self {
        DeployValidator { wasm, images }
    }

    /// Checks `upload`; the typed form of [`Validator::validate`].
    pub async fn check(&self, upload: Upload) -> Result<Runnable, ValidationError> {
        match upload {
            Upload::Wasm(bytes) => match self.wasm.check(bytes).await {
                Ok(module) => Ok(Runnable::Wasm(module)),
                Err(faas_runtime::Error::Invalid(m)) => Err(ValidationError::Module(m)),
                Err(other) => Err(ValidationError::Platform(other)),
            },
            Upload::Image(image) => {
                validate_image(&image, &self.images)?;
                Ok(Runnable::Image(image))
            }
        }
    }
}

#[async_trait]
impl Validator for DeployValidator {
    async fn validate(&self, upload: Upload) -> faas_runtime::Result<Runnable> {
        Ok(self.check(upload).await?)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use bytes::Bytes;
    use faas_runtime::model::{Function, WasmKind};
    use faas_runtime::ports::Executor;

    use super::*;
    use crate::wasmtime::{WasmtimeConfig, WasmtimeExecutor};

    fn config(dir: &std::path::Path, max_instances: u32) -> WasmtimeConfig {
        WasmtimeConfig {
            cache_dir: dir.to_path_buf(),
            max_instances,
            max_memory_mb: 64,
            tmp_cap_bytes: 1 << 20,
            max_compiles: 1,
            compile_wait: Duration::from_secs(30),
            cache_bytes: 16 << 20,
        }
    }

    fn command() -> Bytes {
        Bytes::from(
            wat::parse_str(r#"(module (func (export "_start")) (memory (export "memory") 1))"#)
                .unwrap(),
        )
    }

    #[tokio::test]
    async fn wasm_is_compile_checked_without_an_executor() {
        let dir = tempfile::tempdir().unwrap();
        let v = DeployValidator::new(
            WasmCheck::new(&config(dir.path(), 1)).unwrap(),
            AllowedImages::default(),
        );
        let ran = v.check(Upload::Wasm(command())).await.unwrap();
        let m = ran.wasm().unwrap();
        assert_eq!(m.module_kind, Some(WasmKind::Module));
        assert_eq!(m.module_size, command().len() as u64);
        assert_eq!(m.module_sha256.len(), 64);
        let garbage = v.check(Upload::Wasm(Bytes::from_static(b"not wasm"))).await;
        assert!(
            matches!(garbage, Err(ValidationError::Module(_))),
            "{garbage:?}"
        );
        let import =
            wat::parse_str(r#"(module (import "env" "f" (func)) (func (export "_start")))"#)
                .unwrap();
        let unlinkable = v.check(Upload::Wasm(Bytes::from(import))).await;
        assert!(
            matches!(unlinkable, Err(ValidationError::Module(_))),
            "{unlinkable:?}"
        );
        let no_start = wat::parse_str("(module)").unwrap();
        let refused = v.check(Upload::Wasm(Bytes::from(no_start))).await;
        assert!(
            matches!(refused, Err(ValidationError::Module(_))),
            "{refused:?}"
        );
    }

    #[tokio::test]
    async fn an_executor_on_the_same_cache_finds_what_the_check_compiled() {
        let dir = tempfile::tempdir().unwrap();
        let check = WasmCheck::new(&config(dir.path(), 1)).unwrap();
        let module = check.check(command()).await.unwrap();
        let db = faas_runtime::embedded::Db::open(dir.path()).unwrap();
        let objects = Arc::new(faas_runtime::embedded::EmbeddedObjects::new(db).unwrap());
        let executor = WasmtimeExecutor::new(config(dir.path(), 4), objects).unwrap();
        let f = Function {
            id: "f".into(),
            owner_id: "u".into(),
            name: "n".into(),
            description: String::new(),
            runnable: Runnable::Wasm(module),
            timeout_secs: 1,
            memory_mb: 16,
            created_at: faas_runtime::model::now(),
            versions: Default::default(),
        };
        executor.prepare(&f, Some(command())).await.unwrap();
        assert_eq!(executor.compilations(), 0, "loaded from the disk cache");
    }

    #[test]
    fn images_are_checked_for_grammar_and_the_allow_list() {
        let all = AllowedImages::default();
        assert!(validate_image(&ImageSpec::new("alpine:3"), &all).is_ok());
        let bad = validate_image(&ImageSpec::new("Alpine:3"), &all);
        assert!(matches!(bad, Err(ValidationError::Image(_))), "{bad:?}");
        let team = AllowedImages::parse("registry.local/team/*");
        assert!(validate_image(&ImageSpec::new("registry.local/team/fn:1"), &team).is_ok());
        match validate_image(&ImageSpec::new("alpine:3"), &team) {
            Err(ValidationError::Image(m)) => assert!(m.contains("not allowed"), "{m}"),
            other => panic!("expected a refusal, got {other:?}"),
        }
    }
}
