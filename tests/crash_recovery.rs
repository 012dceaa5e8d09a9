//! `kill -9` of the real `faas serve` binary with executions queued and running:
//! after a restart on the same data directory every one reaches a final state.
//! Also: SIGTERM lets in-flight executions finish within the grace period.

#[path = "support/harness.rs"]
mod harness;

use std::process::Command;
use std::time::Duration;

use harness::{Api, spawn_serve};
use serde_json::json;

#[tokio::test]
async fn kill_9_loses_nothing() {
    let data = tempfile::tempdir().unwrap();
    let (mut child, base) = spawn_serve(data.path(), &[("MAX_CONCURRENT_EXECUTIONS", "2")]);
    let api = Api::new(&base);
    let (t, _) = api.user("ada").await;
    let spin = api.deploy_sample(&t, "c-spin.wasm").await;
    let hello = api.deploy_sample(&t, "rust-hello.wasm").await;
    let mut ids = Vec::new();
    for i in 0..6 {
        ids.push(
            api.submit(&t, &spin, json!({"direct_inputs": {"ms": 3000 + i * 100}}))
                .await,
        );
    }
    for i in 0..40 {
        ids.push(
            api.submit(
                &t,
                &hello,
                json!({"direct_inputs": {"name": i.to_string()}}),
            )
            .await,
        );
    }
    let all = api.get(&t, "/api/executions?limit=200").await.expect(200);
    let count = |s: &str| {
        all["executions"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["status"] == s)
            .count()
    };
    let (running, pending) = (count("running"), count("pending"));
    println!(
        "at kill -9: {running} running, {pending} pending, {} completed of {}",
        count("completed"),
        ids.len()
    );
    assert!(running + pending > 0, "the test kills with work in flight");
    child.kill().unwrap();
    child.wait().unwrap();
    let (mut child, base) = spawn_serve(data.path(), &[]);
    let api = Api::new(&base);
    let t = api.login("ada", "password123").await;
    let mut statuses = std::collections::BTreeMap::new();
    for id in &ids {
        let e = api.wait(&t, id, Duration::from_secs(120)).await;
        *statuses
            .entry(e["status"].as_str().unwrap().to_string())
            .or_insert(0) += 1;
        assert_eq!(e["status"], "completed", "{e}");
    }
    println!("after restart: {statuses:?}");
    child.kill().unwrap();
    child.wait().unwrap();
}

#[tokio::test]
async fn sigterm_lets_in_flight_executions_finish() {
    let data = tempfile::tempdir().unwrap();
    let (child, base) = spawn_serve(data.path(), &[("FAAS_SHUTDOWN_GRACE_SECS", "20")]);
    let api = Api::new(&base);
    let (t, _) = api.user("ada").await;
    let spin = api.deploy_sample(&t, "c-spin.wasm").await;
    let id = api
        .submit(&t, &spin, json!({"direct_inputs": {"ms": 1500}}))
        .await;
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while api
        .get(&t, &format!("/api/executions/{id}"))
        .await
        .expect(200)["status"]
        != "running"
    {
        assert!(std::time::Instant::now() < deadline, "execution starts");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let pid = child.id().to_string();
    Command::new("kill").args(["-TERM", &pid]).status().unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "clean exit after SIGTERM: {:?}",
        out.status
    );
    let (mut child, base) = spawn_serve(data.path(), &[]);
    let api = Api::new(&base);
    let t = api.login("ada", "password123").await;
    let e = api
        .get(&t, &format!("/api/executions/{id}"))
        .await
        .expect(200);
    assert_eq!(
        e["status"], "completed",
        "finished within the grace period before exit: {e}"
    );
    assert_eq!(e["attempt"], 1);
    child.kill().unwrap();
    child.wait().unwrap();
}
