//! Test scaffolding shared by the executor tests: an in-memory [`ObjectStore`], the
//! fixtures, and a harness that deploys and runs them through a real
//! [`WasmtimeExecutor`].
#![allow(dead_code)]

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use faas_executors::wasmtime::{WasmtimeConfig, WasmtimeExecutor};
use faas_runtime::model::{Function, MODULES_BUCKET, ObjectMeta, RuntimeKind};
use faas_runtime::ports::{
    ByteStream, ExecutionRequest, Executor, ObjectGrant, ObjectStore, RawOutcome, Termination,
};
use faas_runtime::{Error, Result};
use futures::StreamExt;
use sha2::{Digest, Sha256};

/// An [`ObjectStore`] backed by a map, for tests.
#[derive(Default)]
pub struct MemStore {
    objects: Mutex<HashMap<(String, String), (ObjectMeta, Bytes)>>,
    /// Counts `get` calls.
    pub gets: std::sync::atomic::AtomicU64,
}

impl MemStore {
    /// Stores `bytes` directly.
    pub fn insert(&self, bucket: &str, name: &str, bytes: &[u8]) {
        let meta = ObjectMeta {
            name: name.to_string(),
            size: bytes.len() as u64,
            content_type: "application/wasm".into(),
            sha256: hex::encode(Sha256::digest(bytes)),
            created_at: faas_runtime::model::now(),
        };
        let key = (bucket.to_string(), name.to_string());
        self.objects
            .lock()
            .unwrap()
            .insert(key, (meta, Bytes::copy_from_slice(bytes)));
    }

    fn find(&self, bucket: &str, name: &str) -> Result<(ObjectMeta, Bytes)> {
        let key = (bucket.to_string(), name.to_string());
        let objects = self.objects.lock().unwrap();
        objects
            .get(&key)
            .cloned()
            .ok_or_else(|| Error::NotFound(format!("{bucket}/{name}")))
    }
}

#[async_trait]
impl ObjectStore for MemStore {
    async fn put(
        &self,
        bucket: &str,
        name: &str,
        _: &str,
        mut body: faas_runtime::ports::BodyStream<'_>,
        max: u64,
    ) -> Result<ObjectMeta> {
        let mut all = Vec::new();
        while let Some(chunk) = body.next().await {
            all.extend_from_slice(&chunk.map_err(|e| Error::io("body", e))?);
            if all.len() as u64 > max {
                return Err(Error::TooLarge(name.into()));
            }
        }
        self.insert(bucket, name, &all);
        self.head(bucket, name).await
    }

    async fn get(&self, bucket: &str, name: &str) -> Result<(ObjectMeta, ByteStream)> {
        self.gets.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let (meta, bytes) = self.find(bucket, name)?;
        Ok((
            meta,
            futures::stream::once(async move { Ok(bytes) }).boxed(),
        ))
    }

    async fn head(&self, bucket: &str, name: &str) -> Result<ObjectMeta> {
        Ok(self.find(bucket, name)?.0)
    }

    async fn list(&self, bucket: &str) -> Result<Vec<ObjectMeta>> {
        let objects = self.objects.lock().unwrap();
        Ok(objects
            .iter()
            .filter(|((b, _), _)| b == bucket)
            .map(|(_, (m, _))| m.clone())
            .collect())
    }

    async fn delete(&self, bucket: &str, name: &str) -> Result<()> {
        let key = (bucket.to_string(), name.to_string());
        self.objects
            .lock()
            .unwrap()
            .remove(&key)
            .map(drop)
            .ok_or_else(|| Error::NotFound(name.into()))
    }

    async fn delete_bucket(&self, bucket: &str) -> Result<()> {
        self.objects.lock().unwrap().retain(|(b, _), _| b != bucket);
        Ok(())
    }
}

/// The bytes of a fixture in `tests/fixtures` (`.wat` files are assembled).
pub fn fixture(name: &str) -> Vec<u8> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name);
    if name.ends_with(".wat") {
        wat::parse_file(&path).unwrap_or_else(|e| panic!("{name}: {e}"))
    } else {
        std::fs::read(&path).unwrap_or_else(|e| panic!("{name}: {e}"))
    }
}

/// Limits used by [`Harness::new`].
pub fn test_config(cache_dir: PathBuf) -> WasmtimeConfig {
    WasmtimeConfig {
        cache_dir,
        max_instances: 8,
        max_memory_mb: 256,
        tmp_cap_bytes: 1 << 20,
        max_compiles: 2,
        compile_wait: Duration::from_secs(30),
        cache_bytes: 256 << 20,
    }
}

/// An executor on a private cache directory and an in-memory module store.
pub struct Harness {
    pub executor: WasmtimeExecutor,
    pub store: Arc<MemStore>,
    pub cache: tempfile::TempDir,
}

impl Harness {
    pub fn new() -> Self {
        Self::with(|_| {})
    }

    /// A harness whose executor's settings `tune` adjusts.
    pub fn with(tune: impl FnOnce(&mut WasmtimeConfig)) -> Self {
        let cache = tempfile::tempdir().unwrap();
        let store = Arc::new(MemStore::default());
        let mut config = test_config(cache.path().to_path_buf());
        tune(&mut config);
        let executor = WasmtimeExecutor::new(config, store.clone()).unwrap();
        Harness {
            executor,
            store,
            cache,
        }
    }

    /// A second executor on the same cache directory and store ("after a restart").
    pub fn restart(&self) -> WasmtimeExecutor {
        WasmtimeExecutor::new(
            test_config(self.cache.path().to_path_buf()),
            self.store.clone(),
        )
        .unwrap()
    }

    /// Uploads `bytes` and prepares a function for them.
    pub async fn deploy(&self, bytes: &[u8]) -> Result<Function> {
        let f = function_for(bytes);
        self.store
            .insert(MODULES_BUCKET, f.module_sha256.as_deref().unwrap(), bytes);
        self.executor
            .prepare(&f, Some(Bytes::copy_from_slice(bytes)))
            .await?;
        Ok(f)
    }

    /// Deploys a fixture, which must be valid.
    pub async fn deploy_fixture(&self, name: &str) -> Function {
        self.deploy(&fixture(name))
            .await
            .unwrap_or_else(|e| panic!("{name}: {e}"))
    }

    pub async fn run(&self, f: &Function, input: &str) -> RawOutcome {
        self.executor.execute(request(f, input)).await.unwrap()
    }

    /// Checks that a normal hello still runs fine (the host is healthy).
    pub async fn assert_healthy(&self) {
        let hello = self.deploy_fixture("hello.wat").await;
        let out = self.run(&hello, "{}").await;
        assert_eq!(
            out.termination,
            Termination::Exited(0),
            "hello after a fence: {out:?}"
        );
        assert_eq!(text(&out.stdout), "hello\n");
    }
}

/// A wasm function for `bytes`.
pub fn function_for(bytes: &[u8]) -> Function {
    Function {
        id: "fn-test".into(),
        owner_id: "owner".into(),
        name: "probe".into(),
        description: String::new(),
        runtime: RuntimeKind::Wasm,
        image_url: None,
        pull_policy: None,
        warm: None,
        module_sha256: Some(hex::encode(Sha256::digest(bytes))),
        module_size: Some(bytes.len() as u64),
        timeout_secs: 10,
        memory_mb: 64,
        created_at: faas_runtime::model::now(),
        versions: Default::default(),
    }
}

/// A request with a 10 s timeout, 64 MiB of memory and 1 MiB output caps.
pub fn request(f: &Function, input: &str) -> ExecutionRequest {
    ExecutionRequest {
        execution_id: "exec-test".into(),
        attempt: 1,
        function: f.clone(),
        input: input.to_string(),
        env: vec![("FAAS_FUNCTION_ID".into(), f.id.clone())],
        objects: Vec::new(),
        objects_dir: None,
        timeout: Duration::from_secs(10),
        memory_limit: 64 << 20,
        stdout_cap: 1 << 20,
        stderr_cap: 1 << 20,
    }
}

/// Stages `files` (name, content) as objects of function `fid` in `dir`, granting
/// those whose name is in `granted`.
pub fn stage_objects(
    dir: &Path,
    fid: &str,
    files: &[(&str, &str)],
    granted: &[&str],
) -> Vec<ObjectGrant> {
    std::fs::create_dir_all(dir.join(fid)).unwrap();
    let mut grants = Vec::new();
    for (name, content) in files {
        std::fs::write(dir.join(fid).join(name), content).unwrap();
        if granted.contains(name) {
            grants.push(ObjectGrant {
                alias: name.to_string(),
                function_id: fid.to_string(),
                name: name.to_string(),
                size: content.len() as u64,
                content_type: "text/plain".into(),
            });
        }
    }
    grants
}

pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}
