//! The worker against the embedded backend, with a scripted executor standing in
//! for a real one where the test needs an infrastructure fault on demand.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use faas_runtime::embedded::{Db, EmbeddedKv, EmbeddedObjects, EmbeddedQueue, QueueConfig};
use faas_runtime::model::{Execution, ExecutionStatus, Function, RuntimeKind, new_id, now};
use faas_runtime::ports::{ExecutionRequest, Executor, RawOutcome, Termination, WorkQueue};
use faas_runtime::sealing::SecretBox;
use faas_runtime::store::Store;
use faas_runtime::worker::{Worker, WorkerConfig};
use faas_runtime::{Error, Result};
use tokio_util::sync::CancellationToken;

/// Unavailable for the first `down_for` readiness checks, then echoes the input.
struct Flaky {
    down_for: u32,
    checks: AtomicU32,
    runs: AtomicU32,
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
        Ok(RawOutcome {
            termination: Termination::Exited(0),
            stdout: r.input.into_bytes(),
            stderr: b"log line\n".to_vec(),
            stdout_overflow: false,
            stderr_overflow: false,
        })
    }
}

struct Rig {
    store: Store,
    queue: Arc<EmbeddedQueue>,
    stop: CancellationToken,
    function: Function,
    _dir: tempfile::TempDir,
}

async fn rig(executor: Arc<dyn Executor>, max_attempts: u32) -> Rig {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path()).unwrap();
    let store = Store::new(Arc::new(EmbeddedKv::new(db.clone())));
    let cfg = QueueConfig {
        ack_wait: Duration::from_secs(2),
        max_messages: 1000,
    };
    let queue = Arc::new(EmbeddedQueue::open(db.clone(), cfg).await.unwrap());
    let objects = Arc::new(EmbeddedObjects::new(db).unwrap());
    let config = WorkerConfig {
        worker_id: "test".into(),
        max_concurrent: 2,
        max_attempts,
        max_timeout: Duration::from_secs(60),
        stdout_cap: 1024,
        stderr_cap: 1024,
        api_base_url: "http://127.0.0.1:1".into(),
        staging_dir: dir.path().join("staging"),
        grace: Duration::from_secs(1),
    };
    let secrets = SecretBox::new(&SecretBox::generate_key());
    let worker = Worker::new(
        store.clone(),
        queue.clone(),
        objects,
        vec![executor],
        secrets,
        config,
    );
    let stop = CancellationToken::new();
    tokio::spawn(worker.run(stop.clone()));
    let function = Function {
        id: new_id(),
        owner_id: "u1".into(),
        name: "f".into(),
        description: String::new(),
        runtime: RuntimeKind::Docker,
        image_url: Some("img".into()),
        pull_policy: None,
        module_sha256: None,
        module_size: None,
        timeout_secs: 10,
        memory_mb: 64,
        created_at: now(),
    };
    store.create_function(&function).await.unwrap();
    Rig {
        store,
        queue,
        stop,
        function,
        _dir: dir,
    }
}

async fn submit(rig: &Rig, exec: &Execution) {
    rig.store.create_execution(exec).await.unwrap();
    rig.queue
        .enqueue(&exec.id, Bytes::from(exec.id.clone()))
        .await
        .unwrap();
}

async fn wait_final(store: &Store, id: &str) -> Execution {
    for _ in 0..400 {
        let (e, _) = store.get_execution(id, None).await.unwrap().unwrap();
        if e.status.is_final() {
            return e;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("execution {id} never became final");
}

#[tokio::test]
async fn an_unavailable_executor_delays_without_using_attempts() {
    let flaky = Arc::new(Flaky {
        down_for: 3,
        checks: AtomicU32::new(0),
        runs: AtomicU32::new(0),
    });
    let rig = rig(flaky.clone(), 2).await;
    let exec = Execution::pending(&rig.function, "{\"ok\":true}".into());
    submit(&rig, &exec).await;
    let done = wait_final(&rig.store, &exec.id).await;
    assert_eq!(done.status, ExecutionStatus::Completed, "{done:?}");
    assert_eq!(
        done.attempt, 1,
        "waiting for the engine did not use attempts"
    );
    assert_eq!(done.result, Some(serde_json::json!({"ok": true})));
    assert_eq!(done.logs.as_deref(), Some("log line\n"));
    assert!(flaky.checks.load(Ordering::SeqCst) >= 4);
    assert_eq!(flaky.runs.load(Ordering::SeqCst), 1);
    assert_eq!(rig.queue.stats().await.unwrap().pending, 0, "acked");
    rig.stop.cancel();
}

#[tokio::test]
async fn an_execution_out_of_attempts_fails_for_good() {
    let flaky = Arc::new(Flaky {
        down_for: 0,
        checks: AtomicU32::new(0),
        runs: AtomicU32::new(0),
    });
    let rig = rig(flaky.clone(), 3).await;
    let mut exec = Execution::pending(&rig.function, "{}".into());
    exec.attempt = 3;
    exec.error = Some("worker died".into());
    submit(&rig, &exec).await;
    let done = wait_final(&rig.store, &exec.id).await;
    assert_eq!(done.status, ExecutionStatus::Failed);
    assert!(
        done.error
            .as_deref()
            .unwrap()
            .contains("gave up after 3 attempts"),
        "{done:?}"
    );
    assert_eq!(flaky.runs.load(Ordering::SeqCst), 0);
    assert!(
        rig.store.active_executions(0).await.unwrap().is_empty(),
        "no longer active"
    );
    rig.stop.cancel();
}

#[tokio::test]
async fn a_deleted_function_or_missing_secret_fails_the_execution() {
    let flaky = Arc::new(Flaky {
        down_for: 0,
        checks: AtomicU32::new(0),
        runs: AtomicU32::new(0),
    });
    let rig = rig(flaky.clone(), 3).await;
    let exec = Execution::pending(&rig.function, "{\"secrets\":[\"gone\"]}".into());
    submit(&rig, &exec).await;
    let done = wait_final(&rig.store, &exec.id).await;
    assert_eq!(done.status, ExecutionStatus::Failed);
    assert!(
        done.error.as_deref().unwrap().contains("secret gone"),
        "{done:?}"
    );
    rig.store.delete_function(&rig.function).await.unwrap();
    let exec = Execution::pending(&rig.function, "{}".into());
    submit(&rig, &exec).await;
    let done = wait_final(&rig.store, &exec.id).await;
    assert!(
        done.error.as_deref().unwrap().contains("deleted"),
        "{done:?}"
    );
    assert_eq!(flaky.runs.load(Ordering::SeqCst), 0);
    rig.stop.cancel();
}
