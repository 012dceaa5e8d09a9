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

/// One client of the invoke load: invokes until the server goes away, keeping
/// the id of every execution answered 200 or 202. Odd clients ask `?wait=0`
/// (202 at once: accepted, not yet run).
async fn invoke_client(base: String, t: String, fid: String, n: usize) -> Vec<String> {
    let http = reqwest::Client::new();
    let wait = if n % 2 == 1 { 0 } else { 5 };
    let url = format!("{base}/api/functions/{fid}/invoke?wait={wait}");
    let mut answered = Vec::new();
    for i in 0.. {
        let body = json!({"input": {"direct_inputs": {"name": format!("c{n}-{i}")}}});
        let Ok(res) = http.post(&url).bearer_auth(&t).json(&body).send().await else {
            break;
        };
        let status = res.status().as_u16();
        let Ok(e) = res.json::<serde_json::Value>().await else {
            break;
        };
        assert!(matches!(status, 200 | 202), "{status}: {e}");
        answered.push(e["id"].as_str().unwrap().to_string());
    }
    answered
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_under_invoke_load_loses_no_answered_execution() {
    let data = tempfile::tempdir().unwrap();
    let unlimited = [
        ("FAAS_QUOTA_SUBMISSIONS_PER_MINUTE", "0"),
        ("FAAS_QUOTA_ACTIVE_EXECUTIONS", "0"),
    ];
    let (mut child, base) = spawn_serve(data.path(), &unlimited);
    let api = Api::new(&base);
    let (t, _) = api.user("ada").await;
    let hello = api.deploy_sample(&t, "rust-hello.wasm").await;
    let clients: Vec<_> = (0..16)
        .map(|n| tokio::spawn(invoke_client(base.clone(), t.clone(), hello.clone(), n)))
        .collect();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    child.kill().unwrap();
    child.wait().unwrap();
    let mut answered = Vec::new();
    for c in clients {
        answered.extend(c.await.unwrap());
    }
    println!("answered 200/202 before kill -9: {}", answered.len());
    assert!(answered.len() >= 50, "the load ran: {}", answered.len());

    let (mut child, base) = spawn_serve(data.path(), &unlimited);
    let api = Api::new(&base);
    let t = api.login("ada", "password123").await;
    for id in &answered {
        let e = api
            .get(&t, &format!("/api/executions/{id}?wait=60"))
            .await
            .expect(200);
        assert_eq!(e["status"], "completed", "{e}");
    }
    child.kill().unwrap();
    child.wait().unwrap();
}
