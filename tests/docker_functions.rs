//! Image functions through `faas serve` against the real Docker engine: the sample
//! `samples/docker/static-fn` (FROM scratch) is built here, deployed, and run with an
//! object (fetched over the capability `API_BASE_URL`) and a secret.

#[path = "support/harness.rs"]
mod harness;
#[path = "support/images.rs"]
mod images;

use std::process::Command;

use harness::TestApp;
use serde_json::json;

#[tokio::test]
async fn an_image_function_runs_end_to_end_with_an_object_and_a_secret() {
    const IMAGE: &str = images::STATIC_FN;
    images::static_fn_image();
    let app = TestApp::start(&["--docker=on"]).await;
    let api = &app.api;
    let root = api.login("root", "rootpassword").await;
    let ready = api.get(&root, "/readyz").await.expect(200);
    assert_eq!(ready["executors"]["docker"], "ready", "{ready}");
    let (t, _) = api.user("ada").await;
    let f = api
        .post(&t, "/api/functions", json!({"name": "static", "image_url": IMAGE, "pull_policy": "never", "timeout_secs": 30, "memory_mb": 64}))
        .await
        .expect(201);
    assert_eq!(f["runtime"], "docker");
    let fid = f["id"].as_str().unwrap();
    api.upload(
        &t,
        fid,
        "notes.txt",
        b"first line\nsecond\n".to_vec(),
        "text/plain",
    )
    .await
    .expect(201);
    api.upload(
        &t,
        fid,
        "private.txt",
        b"not granted".to_vec(),
        "text/plain",
    )
    .await
    .expect(201);
    api.post(
        &t,
        "/api/secrets",
        json!({"name": "api_token", "value": "abcdef"}),
    )
    .await
    .expect(201);
    let run = api
        .run(&t, fid, json!({"direct_inputs": {"name": "Ada"}, "object_inputs": {"doc": format!("{fid}/notes.txt")}, "secrets": ["api_token"]}))
        .await;
    assert_eq!(run["status"], "completed", "{run}");
    assert_eq!(run["result"]["hello"], "Ada");
    assert_eq!(run["result"]["secrets"]["API_TOKEN"], 6);
    assert_eq!(
        run["result"]["objects"]["doc"],
        json!({"bytes": 18, "first_line": "first line"})
    );
    assert!(run["logs"].as_str().unwrap().contains("static-fn called"));
    let base = run["result"]["api_base_url"].as_str().unwrap().to_string();
    assert!(
        base.contains("/api/exec-objects/"),
        "a capability URL: {base}"
    );
    let after = reqwest::get(format!("{base}/{fid}/notes.txt"))
        .await
        .unwrap();
    assert_eq!(
        after.status(),
        404,
        "the capability is void once the execution ended"
    );
    let denied = api
        .run(
            &t,
            fid,
            json!({"object_inputs": {"doc": format!("{fid}/nope.txt")}}),
        )
        .await;
    assert_eq!(
        denied["status"], "failed",
        "a missing object fails before running: {denied}"
    );
    let failing = api.run(&t, fid, json!("\"a JSON string\"")).await;
    assert_eq!(
        failing["status"], "completed",
        "JSON text input is passed through: {failing}"
    );
    // Warm containers wait while the platform runs; none is left once it stops.
    app.stop().await;
    let leftovers = Command::new("docker")
        .args([
            "ps",
            "-aq",
            "--filter",
            &format!("label=faas.function-id={fid}"),
        ])
        .output()
        .unwrap();
    let mut left = String::from_utf8_lossy(&leftovers.stdout)
        .trim()
        .to_string();
    for _ in 0..50 {
        if left.is_empty() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        let again = Command::new("docker")
            .args([
                "ps",
                "-aq",
                "--filter",
                &format!("label=faas.function-id={fid}"),
            ])
            .output()
            .unwrap();
        left = String::from_utf8_lossy(&again.stdout).trim().to_string();
    }
    assert!(left.is_empty(), "no container of ours is left: {left}");
}
