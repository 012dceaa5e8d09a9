//! Preparing an attempt: objects are staged without ever writing the store, the
//! attempt's grant and staging directory go away on every path, preparation faults
//! and unready executors end in `failed` within the operator's bound, and start-up
//! sweeps what a dead process left.

#[path = "support/worker_rig.rs"]
mod worker_rig;

use std::sync::atomic::Ordering;

use bytes::Bytes;
use faas_runtime::model::{
    Execution, ExecutionStatus, RuntimeKind, Secret, new_id, now, objects_bucket,
};
use faas_runtime::ports::{ObjectStore, Scan};
use faas_runtime::sealing::SecretBox;
use faas_runtime::store::{Grant, Store, buckets};
use faas_runtime::worker::Worker;
use faas_runtime::worker::presence::WorkerPresence;
use futures::StreamExt;
use sha2::{Digest, Sha256};
use worker_rig::{Flaky, Rig, files_under, rig, rig_with, submit, wait_final};

async fn put_object(rig: &Rig, name: &str, bytes: &'static [u8]) {
    let body = futures::stream::once(async move { Ok(Bytes::from_static(bytes)) }).boxed();
    rig.objects
        .put(
            &objects_bucket(&rig.function.id),
            name,
            "text/plain",
            body,
            1 << 20,
        )
        .await
        .unwrap();
}

/// Downloads an object and checks it against its recorded size and sha256.
async fn assert_intact(rig: &Rig, name: &str, expected: &[u8]) {
    let (meta, mut body) = rig
        .objects
        .get(&objects_bucket(&rig.function.id), name)
        .await
        .unwrap();
    let mut bytes = Vec::new();
    while let Some(chunk) = body.next().await {
        bytes.extend_from_slice(&chunk.unwrap());
    }
    assert_eq!(bytes, expected, "object {name} content");
    assert_eq!(meta.size, bytes.len() as u64, "object {name} size");
    assert_eq!(
        meta.sha256,
        hex::encode(Sha256::digest(&bytes)),
        "object {name} sha256"
    );
}

async fn grants(store: &Store) -> Vec<String> {
    let rows = store
        .kv()
        .scan(buckets::GRANTS, Scan::default())
        .await
        .unwrap();
    rows.into_iter().map(|(k, _)| k).collect()
}

#[tokio::test]
async fn an_object_named_twice_is_staged_once_and_the_store_keeps_it() {
    let flaky = Flaky::new(0);
    let rig = rig(flaky.clone(), 3).await;
    put_object(&rig, "x", b"precious bytes").await;
    let path = rig
        .objects
        .local_path(&objects_bucket(&rig.function.id), "x")
        .unwrap();
    assert!(
        std::fs::metadata(&path).unwrap().permissions().readonly(),
        "stored read-only"
    );
    let key = format!("{}/x", rig.function.id);
    let input = serde_json::json!({"object_inputs": {"a": key, "b": key}}).to_string();
    let exec = Execution::pending(&rig.function, input);
    submit(&rig, &exec).await;
    let done = wait_final(&rig.store, &exec.id).await;
    assert_eq!(done.status, ExecutionStatus::Completed, "{done:?}");
    assert_eq!(
        done.output.as_deref(),
        Some("precious bytes|"),
        "the function saw it, once"
    );
    assert_intact(&rig, "x", b"precious bytes").await;
    // A second run over the same object (links again) still leaves it whole.
    let exec = Execution::pending(&rig.function, exec.input.clone());
    submit(&rig, &exec).await;
    assert_eq!(
        wait_final(&rig.store, &exec.id).await.status,
        ExecutionStatus::Completed
    );
    assert_intact(&rig, "x", b"precious bytes").await;
    assert!(
        files_under(&rig.dir.path().join("staging")).is_empty(),
        "staging removed"
    );
    assert!(grants(&rig.store).await.is_empty(), "grant removed");
    rig.stop.cancel();
}

#[tokio::test]
async fn a_failed_stage_leaves_the_store_intact_and_nothing_behind() {
    let flaky = Flaky::new(0);
    let rig = rig(flaky.clone(), 3).await;
    put_object(&rig, "a", b"first").await;
    put_object(&rig, "b", b"second").await;
    // `b` keeps its metadata but loses its file: staging fails after `a` is staged.
    let bucket = objects_bucket(&rig.function.id);
    std::fs::remove_file(rig.objects.local_path(&bucket, "b").unwrap()).unwrap();
    let f = &rig.function.id;
    let input =
        serde_json::json!({"object_inputs": {"a": format!("{f}/a"), "b": format!("{f}/b")}});
    let exec = Execution::pending(&rig.function, input.to_string());
    submit(&rig, &exec).await;
    let done = wait_final(&rig.store, &exec.id).await;
    assert_eq!(done.status, ExecutionStatus::Failed, "{done:?}");
    assert_eq!(flaky.runs.load(Ordering::SeqCst), 0);
    assert_intact(&rig, "a", b"first").await;
    assert!(
        files_under(&rig.dir.path().join("staging")).is_empty(),
        "half-built stage removed"
    );
    assert!(
        grants(&rig.store).await.is_empty(),
        "no grant outlives the attempt"
    );
    rig.stop.cancel();
}

#[tokio::test]
async fn a_secret_the_key_cannot_open_fails_the_execution_within_the_bound() {
    let flaky = Flaky::new(0);
    let rig = rig_with(flaky.clone(), 5, 3, &SecretBox::generate_key()).await;
    // Sealed under another key: as after FAAS_SECRETS_KEY was changed.
    let old = SecretBox::new(&SecretBox::generate_key());
    let id = new_id();
    let secret = Secret {
        sealed: old.seal(b"v", &id).unwrap(),
        id,
        owner_id: rig.function.owner_id.clone(),
        name: "api_key".into(),
        created_at: now(),
        updated_at: now(),
    };
    rig.store.create_secret(&secret).await.unwrap();
    let exec = Execution::pending(&rig.function, r#"{"secrets":["api_key"]}"#.into());
    submit(&rig, &exec).await;
    let done = wait_final(&rig.store, &exec.id).await;
    assert_eq!(done.status, ExecutionStatus::Failed, "{done:?}");
    let error = done.error.as_deref().unwrap();
    assert!(
        error.contains("secret api_key could not be decrypted"),
        "{error}"
    );
    assert!(error.contains("secrets key changed"), "{error}");
    assert_eq!(done.deferrals, 2, "two deferrals, failed at the third");
    assert_eq!(done.attempt, 1, "never ran: no attempt used");
    assert_eq!(flaky.runs.load(Ordering::SeqCst), 0);
    assert!(rig.store.active_executions(0).await.unwrap().is_empty());
    rig.stop.cancel();
}

#[tokio::test]
async fn an_executor_that_never_gets_ready_fails_the_execution_within_the_bound() {
    let flaky = Flaky::new(u32::MAX);
    let rig = rig_with(flaky.clone(), 5, 3, &SecretBox::generate_key()).await;
    let exec = Execution::pending(&rig.function, "{}".into());
    submit(&rig, &exec).await;
    let done = wait_final(&rig.store, &exec.id).await;
    assert_eq!(done.status, ExecutionStatus::Failed, "{done:?}");
    let error = done.error.as_deref().unwrap();
    assert!(error.contains("no docker executor is available"), "{error}");
    assert!(error.contains("engine down"), "{error}");
    assert_eq!(flaky.checks.load(Ordering::SeqCst), 3);
    assert_eq!(flaky.runs.load(Ordering::SeqCst), 0);
    rig.stop.cancel();
}

#[tokio::test]
async fn a_runtime_no_worker_offers_fails_the_execution_with_the_reason() {
    let flaky = Flaky::new(0);
    let rig = rig_with(flaky.clone(), 5, 2, &SecretBox::generate_key()).await;
    let mut wasm = worker_rig::docker_function("u1");
    wasm.runnable = faas_runtime::model::Runnable::Wasm(faas_runtime::model::WasmModule {
        module_sha256: "0".repeat(64),
        ..Default::default()
    });
    wasm.name = "wasm-twin".into();
    rig.store.create_function(&wasm).await.unwrap();
    let exec = Execution::pending(&wasm, "{}".into());
    submit(&rig, &exec).await;
    let done = wait_final(&rig.store, &exec.id).await;
    assert_eq!(done.status, ExecutionStatus::Failed, "{done:?}");
    let error = done.error.as_deref().unwrap();
    assert!(error.contains("no wasm executor is available"), "{error}");
    rig.stop.cancel();
}

fn grant_for(execution_id: &str, expires_in: i64) -> Grant {
    Grant {
        execution_id: execution_id.into(),
        owner_id: "u1".into(),
        keys: vec!["f/x".into()],
        expires_at: time::OffsetDateTime::now_utc().unix_timestamp() + expires_in,
    }
}

#[tokio::test]
async fn start_up_sweeps_dead_staging_and_stale_grants() {
    let rig = rig(Flaky::new(0), 3).await;
    rig.stop.cancel();
    let running = Execution::pending(&rig.function, "{}".into());
    rig.store.create_execution(&running).await.unwrap();
    let mut finished = Execution::pending(&rig.function, "{}".into());
    let rev = rig.store.create_execution(&finished).await.unwrap();
    finished.status = ExecutionStatus::Completed;
    rig.store.update_execution(&finished, rev).await.unwrap();
    rig.store
        .put_grant("live", &grant_for(&running.id, 600))
        .await
        .unwrap();
    rig.store
        .put_grant("expired", &grant_for(&running.id, -1))
        .await
        .unwrap();
    rig.store
        .put_grant("final", &grant_for(&finished.id, 600))
        .await
        .unwrap();
    rig.store
        .put_grant("orphan", &grant_for("gone", 600))
        .await
        .unwrap();
    let staging = tempfile::tempdir().unwrap();
    for owner in ["dead-worker", "live-worker"] {
        let dir = staging.path().join(owner).join("exec-1").join("f");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("x"), b"left behind").unwrap();
    }
    let now = time::OffsetDateTime::now_utc();
    let live = WorkerPresence {
        worker_id: "live-worker".into(),
        host: String::new(),
        running: 1,
        max_concurrent: 1,
        runtimes: vec![RuntimeKind::Docker],
        started_at: now,
        last_seen: now,
    };
    rig.store
        .put_json(buckets::WORKERS, "live-worker", &live)
        .await
        .unwrap();
    let mut cfg = worker_rig::config(staging.path(), 3, 3);
    cfg.staging_dir = staging.path().to_path_buf();
    let worker = Worker::new(
        rig.store.clone(),
        rig.queue.clone(),
        rig.objects.clone(),
        vec![],
        SecretBox::new(&SecretBox::generate_key()),
        cfg,
    );
    // Shared staging (NATS workers on one host): only dead workers' dirs go.
    let (staged, swept) = worker.sweep_leftovers(false).await.unwrap();
    assert_eq!((staged, swept), (1, 3));
    assert!(!staging.path().join("dead-worker").exists());
    assert!(staging.path().join("live-worker").exists());
    assert_eq!(grants(&rig.store).await, vec!["live".to_string()]);
    // This process alone (embedded): everything goes.
    let (staged, swept) = worker.sweep_leftovers(true).await.unwrap();
    assert_eq!((staged, swept), (1, 1));
    assert!(files_under(staging.path()).is_empty());
    assert!(grants(&rig.store).await.is_empty());
}
