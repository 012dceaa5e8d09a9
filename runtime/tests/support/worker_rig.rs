//! A worker on the embedded backend in a temp dir, with a scripted executor, for
//! the worker tests. Include with `#[path = "support/worker_rig.rs"] mod worker_rig;`.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use faas_runtime::embedded::{Db, EmbeddedKv, EmbeddedObjects, EmbeddedQueue, QueueConfig};
use faas_runtime::model::{Execution, Function, RuntimeKind, new_id, now};
use faas_runtime::ports::{ExecutionRequest, Executor, RawOutcome, Termination, WorkQueue};
use faas_runtime::sealing::SecretBox;
use faas_runtime::store::Store;
use faas_runtime::worker::{Worker, WorkerConfig};
use faas_runtime::{Error, Result};
use tokio_util::sync::CancellationToken;

/// Unavailable for the first `down_for` readiness checks, then echoes the input --
/// or, when the execution has staged objects, prints each staged file's bytes.
pub struct Flaky {
    pub down_for: u32,
    pub checks: AtomicU32,
    pub runs: AtomicU32,
}

impl Flaky {
    pub fn new(down_for: u32) -> Arc<Self> {
        Arc::new(Flaky {
            down_for,
            checks: AtomicU32::new(0),
            runs: AtomicU32::new(0),
        })
    }
}

#[async_trait]
impl Executor for Flaky {
    fn kind(&self) -> RuntimeKind {
        RuntimeKind::Docker
    }
    async fn prepare(&self, _: &Function, _: Option<Bytes>) -> Result<()> {
        Ok(())
    }
    async fn ready(&self) -> Result<()> {
        if self.checks.fetch_add(1, Ordering::SeqCst) < self.down_for {
            return Err(Error::Unavailable("engine down".into()));
        }
        Ok(())
    }
    async fn execute(&self, r: ExecutionRequest) -> Result<RawOutcome> {
        self.runs.fetch_add(1, Ordering::SeqCst);
        let stdout = match &r.objects_dir {
            None => r.input.into_bytes(),
            Some(dir) => {
                let mut out = Vec::new();
                for g in &r.objects {
                    let bytes = std::fs::read(dir.join(&g.function_id).join(&g.name))
                        .map_err(|e| Error::io("read staged object", e))?;
                    out.extend_from_slice(&bytes);
                    out.push(b'|');
                }
                out
            }
        };
        Ok(RawOutcome {
            termination: Termination::Exited(0),
            stdout,
            stderr: b"log line\n".to_vec(),
            stdout_overflow: false,
            stderr_overflow: false,
        })
    }
}

pub struct Rig {
    pub store: Store,
    pub queue: Arc<EmbeddedQueue>,
    pub objects: Arc<EmbeddedObjects>,
    pub stop: CancellationToken,
    pub function: Function,
    pub dir: tempfile::TempDir,
}

/// Worker settings for a rig in `dir`.
pub fn config(dir: &Path, max_attempts: u32, max_deferrals: u32) -> WorkerConfig {
    WorkerConfig {
        worker_id: "test".into(),
        max_concurrent: 2,
        max_attempts,
        max_deferrals,
        max_timeout: Duration::from_secs(60),
        stdout_cap: 1024,
        stderr_cap: 1024,
        api_base_url: "http://127.0.0.1:1".into(),
        staging_dir: dir.join("staging"),
        grace: Duration::from_secs(1),
    }
}

/// A running worker with `executor`, sealing secrets with `key`.
pub async fn rig_with(
    executor: Arc<dyn Executor>,
    max_attempts: u32,
    max_deferrals: u32,
    key: &[u8; 32],
) -> Rig {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path()).unwrap();
    let store = Store::new(Arc::new(EmbeddedKv::new(db.clone())));
    let cfg = QueueConfig {
        ack_wait: Duration::from_secs(2),
        max_messages: 1000,
    };
    let queue = Arc::new(EmbeddedQueue::open(db.clone(), cfg).await.unwrap());
    let objects = Arc::new(EmbeddedObjects::new(db).unwrap());
    let worker = Worker::new(
        store.clone(),
        queue.clone(),
        objects.clone(),
        vec![executor],
        SecretBox::new(key),
        config(dir.path(), max_attempts, max_deferrals),
    );
    let stop = CancellationToken::new();
    tokio::spawn(worker.run(stop.clone()));
    let function = docker_function("u1");
    store.create_function(&function).await.unwrap();
    Rig {
        store,
        queue,
        objects,
        stop,
        function,
        dir,
    }
}

/// A running worker with `executor` and at most `max_attempts` attempts.
pub async fn rig(executor: Arc<dyn Executor>, max_attempts: u32) -> Rig {
    rig_with(executor, max_attempts, 20, &SecretBox::generate_key()).await
}

pub fn docker_function(owner: &str) -> Function {
    Function {
        id: new_id(),
        owner_id: owner.into(),
        name: "f".into(),
        description: String::new(),
        runtime: RuntimeKind::Docker,
        image_url: Some("img".into()),
        pull_policy: None,
        warm: None,
        module_sha256: None,
        module_size: None,
        timeout_secs: 10,
        memory_mb: 64,
        created_at: now(),
        versions: Default::default(),
    }
}

pub async fn submit(rig: &Rig, exec: &Execution) {
    rig.store.create_execution(exec).await.unwrap();
    rig.queue
        .enqueue(&exec.id, Bytes::from(exec.id.clone()))
        .await
        .unwrap();
}

pub async fn wait_final(store: &Store, id: &str) -> Execution {
    for _ in 0..600 {
        let (e, _) = store.get_execution(id, None).await.unwrap().unwrap();
        if e.status.is_final() {
            return e;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("execution {id} never became final");
}

/// Every file under `dir`, recursively.
pub fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return out;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(files_under(&p));
        } else {
            out.push(p);
        }
    }
    out
}
