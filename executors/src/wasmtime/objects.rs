//! The `faas:function/objects` import: lists and reads the objects the execution
//! was granted (those its input named), and nothing else.

use std::path::PathBuf;

use faas_runtime::ports::ObjectGrant;
use tokio::io::AsyncReadExt;

use super::bindings::{ObjectError, ObjectInfo, ObjectsHost};
use super::state::ComponentState;

/// The grants of one execution and the host directory holding them as
/// `<function_id>/<name>`.
#[derive(Debug, Default)]
pub(crate) struct ObjectAccess {
    grants: Vec<ObjectGrant>,
    dir: Option<PathBuf>,
}

impl ObjectAccess {
    /// Access to `grants`, read from `dir`.
    pub(crate) fn new(grants: Vec<ObjectGrant>, dir: Option<PathBuf>) -> Self {
        ObjectAccess { grants, dir }
    }

    fn list(&self) -> Vec<ObjectInfo> {
        self.grants
            .iter()
            .map(|g| ObjectInfo {
                key: g.key(),
                size: g.size,
                content_type: g.content_type.clone(),
            })
            .collect()
    }

    async fn read(&self, key: &str, max_bytes: u64) -> Result<Vec<u8>, ObjectError> {
        let grant = self
            .grants
            .iter()
            .find(|g| g.key() == key)
            .ok_or(ObjectError::NotFound)?;
        let dir = self
            .dir
            .as_ref()
            .ok_or_else(|| ObjectError::Unavailable("objects are not staged".into()))?;
        let path = dir.join(&grant.function_id).join(&grant.name);
        let unavailable = |e: std::io::Error| ObjectError::Unavailable(e.kind().to_string());
        let file = tokio::fs::File::open(&path).await.map_err(unavailable)?;
        let size = file.metadata().await.map_err(unavailable)?.len();
        if size > max_bytes {
            return Err(ObjectError::TooLarge(size));
        }
        let mut bytes = Vec::with_capacity(usize::try_from(size).unwrap_or(0));
        // `take` guards against a file that grew since `metadata`.
        file.take(max_bytes)
            .read_to_end(&mut bytes)
            .await
            .map_err(unavailable)?;
        Ok(bytes)
    }
}

impl ObjectsHost for ComponentState {
    async fn list_objects(&mut self) -> Vec<ObjectInfo> {
        self.objects.list()
    }

    async fn read(&mut self, key: String, max_bytes: u64) -> Result<Vec<u8>, ObjectError> {
        self.objects.read(&key, max_bytes).await
    }
}
