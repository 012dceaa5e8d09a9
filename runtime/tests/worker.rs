//! The worker against the embedded backend, with a scripted executor standing in
//! for a real one where the test needs an infrastructure fault on demand.

#[path = "support/worker_rig.rs"]
mod worker_rig;

use std::sync::atomic::Ordering;

use faas_runtime::model::{Execution, ExecutionStatus};
use faas_runtime::ports::WorkQueue;
use worker_rig::{Flaky, rig, submit, wait_final};

#[tokio::test]
async fn an_unavailable_executor_delays_without_using_attempts() {
    let flaky = Flaky::new(3);
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
    let flaky = Flaky::new(0);
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
    let flaky = Flaky::new(0);
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
