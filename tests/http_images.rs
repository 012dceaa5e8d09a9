//! Image functions as HTTP endpoints, through the adapter and the real Docker
//! engine: the request is the container's INPUT, a completed run answers 200 with
//! its stdout JSON, a failed one 500 with the error JSON, and (FAAS_HTTP_RECORD=all)
//! both become records with `trigger: "http"` keeping the container's stderr.

#[path = "support/harness.rs"]
mod harness;
#[path = "support/images.rs"]
mod images;

use std::time::{Duration, Instant};

use harness::TestApp;
use serde_json::{Value, json};

const FAILING: &str = "faas-test-http-failing:1";

/// Creates an image function and serves it publicly; returns its id.
async fn public_image(app: &TestApp, token: &str, name: &str, image: &str) -> String {
    let f = app
        .api
        .post(token, "/api/functions", json!({"name": name, "image_url": image, "pull_policy": "never", "timeout_secs": 30, "memory_mb": 64}))
        .await
        .expect(201);
    assert_eq!(f["runtime"], "docker");
    let fid = f["id"].as_str().unwrap().to_string();
    app.api
        .put(
            token,
            &format!("/api/functions/{fid}/http"),
            json!({"enabled": true, "access": "public"}),
        )
        .await
        .expect(200);
    fid
}

/// The record of the owner's one call of `fid`, once written.
async fn record_of(app: &TestApp, token: &str, fid: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let page = app.api.get(token, "/api/executions").await.expect(200);
        let found = page["executions"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["function_id"] == fid)
            .cloned();
        if let Some(e) = found {
            let id = e["id"].as_str().unwrap();
            return app
                .api
                .get(token, &format!("/api/executions/{id}"))
                .await
                .expect(200);
        }
        assert!(Instant::now() < deadline, "no record of {fid}: {page}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_image_function_answers_over_http_through_the_adapter() {
    let image = images::static_fn_image();
    images::busybox_image(FAILING, "echo the image gave up >&2; exit 3");
    let app = TestApp::start(&["--docker=on", "--http-record=all"]).await;
    let (t, _) = app.api.user("ada").await;
    let ok = public_image(&app, &t, "static", image).await;
    let failing = public_image(&app, &t, "failing", FAILING).await;

    let res = app
        .api
        .http
        .post(app.api.url("/fn/ada/static/some/path?q=1"))
        .json(&json!({"name": "Ada"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["content-type"], "application/json");
    let out: Value = res.json().await.unwrap();
    // static-fn prints {"hello", "secrets", "objects", "api_base_url"}: it saw no
    // direct inputs (its INPUT is the request), no secrets and no objects.
    assert_eq!(out["hello"], "world", "{out}");
    assert_eq!(out["secrets"], json!({}));
    assert_eq!(out["objects"], json!({}));

    let res = app
        .api
        .http
        .post(app.api.url("/fn/ada/failing"))
        .json(&json!({"name": "Ada"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 500);
    assert_eq!(res.headers()["content-type"], "application/json");
    let err: Value = res.json().await.unwrap();
    assert_eq!(
        err,
        json!({"error": "function_failed", "message": "the image gave up"})
    );

    let record = record_of(&app, &t, &ok).await;
    assert_eq!(record["trigger"], "http");
    assert_eq!(record["status"], "completed", "{record}");
    assert_eq!(record["http_status"], 200);
    assert_eq!(record["result"]["hello"], "world");
    let logs = record["logs"].as_str().unwrap();
    assert!(logs.contains("static-fn called with"), "{logs}");
    let record = record_of(&app, &t, &failing).await;
    assert_eq!(record["status"], "failed", "{record}");
    assert_eq!(record["http_status"], 500);
    assert_eq!(record["exit_code"], 3);
    assert_eq!(record["error"], "the image gave up");
    app.stop().await;
}
