//! A full queue at restart: accepted work is queued again whatever the cap. In a
//! test binary of its own: it times a blocker execution against a restart, which
//! other platforms in the same process would disturb.

#[path = "support/harness.rs"]
mod harness;

use std::time::Duration;

use harness::{Api, config};
use serde_json::json;

#[tokio::test]
async fn full_queue_at_restart_still_starts_and_runs_everything() {
    let data = tempfile::tempdir().unwrap();
    let extra = ["--queue-max=3", "--max-concurrent=1"];
    let platform = faas::platform::Platform::start(config(data.path(), &extra))
        .await
        .unwrap();
    let api = Api::new(&format!("http://{}", platform.addr.unwrap()));
    let (token, _) = api.user("queuer").await;
    let fid = api.deploy_sample(&token, "c-spin.wasm").await;
    let mut ids = Vec::new();
    for _ in 0..3 {
        // Longer than the test config's 5 s grace: the running one is handed back.
        ids.push(
            api.submit(&token, &fid, json!({"direct_inputs": {"ms": 5500}}))
                .await,
        );
    }
    api.post(&token, "/api/executions", json!({"function_id": fid}))
        .await
        .expect_error(503, "overloaded");
    platform.stop().await;
    // The queue is at its cap with accepted work: a restart re-queues it all.
    let platform = faas::platform::Platform::start(config(data.path(), &extra))
        .await
        .expect("a full queue does not stop a restart");
    let api = Api::new(&format!("http://{}", platform.addr.unwrap()));
    let token = api.login("queuer", "password123").await;
    for id in &ids {
        let e = api.wait(&token, id, Duration::from_secs(60)).await;
        assert_eq!(e["status"], "completed", "{e}");
    }
    platform.stop().await;
}
