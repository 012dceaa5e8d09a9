//! Warm containers through `faas serve` against the real Docker engine: `warm` in the
//! deploy body (checked), warm runs after the first, no faas container ever shows a
//! secret in `docker inspect` (waiting, running or cold), a redeploy's old warm
//! containers go at the next sweep and a delete removes the function's at once.

#[path = "support/harness.rs"]
mod harness;
#[path = "support/images.rs"]
mod images;

use std::process::Command;
use std::time::{Duration, Instant};

use harness::{Api, TestApp};
use serde_json::{Value, json};

const IMAGE: &str = "faas-test-warm-e2e:1";
const SECRET: &str = "warm-e2e-secret-value";
/// Prints its hostname (the container) and the secret's length; naps on `nap`.
const SCRIPT: &str = r#"case $1 in *nap*) sleep 2;; esac; printf '{\"host\":\"%s\",\"key\":%d}' $(hostname) ${#API_TOKEN}"#;

fn docker(args: &[&str]) -> String {
    let out = Command::new("docker")
        .args(args)
        .output()
        .expect("docker CLI");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// Running warm containers of `function_id`.
fn warm_of(function_id: &str) -> Vec<String> {
    let filter = format!("label=faas.function-id={function_id}");
    let ids = docker(&[
        "ps",
        "-q",
        "--no-trunc",
        "--filter",
        &filter,
        "--filter",
        "label=faas.warm=true",
    ]);
    ids.split_whitespace().map(str::to_string).collect()
}

async fn wait_warm(function_id: &str, n: usize) -> Vec<String> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let ids = warm_of(function_id);
        if ids.len() == n {
            return ids;
        }
        assert!(
            Instant::now() < deadline,
            "{} warm containers, want {n}",
            ids.len()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Every faas container's env, argv and labels: none holds the secret.
fn assert_no_secret_anywhere() {
    let ids = docker(&["ps", "-aq", "--filter", "label=faas.managed-by=faas"]);
    for id in ids.split_whitespace() {
        let shown = docker(&[
            "inspect",
            "-f",
            "{{json .Config.Env}} {{json .Config.Cmd}} {{json .Config.Entrypoint}} {{json .Config.Labels}} {{json .Args}}",
            id,
        ]);
        assert!(
            !shown.contains(SECRET),
            "container {id} shows the secret: {shown}"
        );
    }
}

async fn deploy(api: &Api, t: &str, body: Value) -> String {
    let f = api.post(t, "/api/functions", body).await.expect(201);
    f["id"].as_str().unwrap().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn warm_containers_end_to_end() {
    images::busybox_image(IMAGE, SCRIPT);
    let app = TestApp::start(&["--docker=on", "--reap-interval-secs=1"]).await;
    let api = &app.api;
    let (t, _) = api.user("warm-ada").await;
    let body = |warm: Value| json!({"name": "warm", "image_url": IMAGE, "pull_policy": "never", "timeout_secs": 30, "memory_mb": 64, "warm": warm});
    api.post(&t, "/api/functions", body(json!(9)))
        .await
        .expect_error(400, "invalid_warm");
    let fid = deploy(api, &t, body(json!(1))).await;
    api.post(
        &t,
        "/api/secrets",
        json!({"name": "api_token", "value": SECRET}),
    )
    .await
    .expect(201);
    let input = json!({"secrets": ["api_token"]});
    let cold = api.run(&t, &fid, input.clone()).await;
    assert_eq!(cold["status"], "completed", "{cold}");
    assert_eq!(cold["result"]["key"], SECRET.len());
    let waiting = wait_warm(&fid, 1).await;
    assert_no_secret_anywhere();

    // A warm run, inspected while it runs.
    let id = api
        .submit(
            &t,
            &fid,
            json!({"secrets": ["api_token"], "direct_inputs": {"nap": true}}),
        )
        .await;
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert_no_secret_anywhere();
    let warm = api.wait(&t, &id, Duration::from_secs(30)).await;
    assert_eq!(warm["status"], "completed", "{warm}");
    assert_eq!(warm["result"]["key"], SECRET.len());
    assert_eq!(warm["result"]["host"].as_str().unwrap(), &waiting[0][..12]);
    assert_ne!(cold["result"]["host"], warm["result"]["host"]);

    // A new version with another memory limit: the old one's pool goes at the sweep.
    let old = wait_warm(&fid, 1).await;
    api.post(
        &t,
        &format!("/api/functions/{fid}/versions"),
        json!({"image_url": IMAGE, "pull_policy": "never", "memory_mb": 32}),
    )
    .await
    .expect(201);
    let deadline = Instant::now() + Duration::from_secs(10);
    while warm_of(&fid).contains(&old[0]) {
        assert!(
            Instant::now() < deadline,
            "the old version's warm container stays"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let v2 = api.run(&t, &fid, input).await;
    assert_eq!(v2["status"], "completed", "{v2}");
    wait_warm(&fid, 1).await;

    api.delete(&t, &format!("/api/functions/{fid}"))
        .await
        .expect(204);
    wait_warm(&fid, 0).await;
    app.stop().await;
}
