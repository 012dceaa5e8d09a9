//! Calling a function and getting its answer without polling (issue 9), through
//! the real HTTP server on both backends: synchronous invoke (200, or 202 with a
//! `Location` past the wait), the long poll, the event stream, idempotency keys.
//! Multi-threaded runtimes: a spinning guest must not hold up the waiters' timers.

#[path = "support/harness.rs"]
mod harness;
#[path = "../runtime/tests/support/nats_server.rs"]
mod nats_server;

use std::time::{Duration, Instant};

use harness::TestApp;
use nats_server::NatsServer;
use serde_json::{Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// A platform on the embedded backend, or on NATS when `nats` is given.
async fn start(nats: Option<&NatsServer>, extra: &[&str]) -> TestApp {
    TestApp::start_on(nats.map(NatsServer::url).as_deref(), extra).await
}

fn spin(ms: u64) -> Value {
    json!({"input": {"direct_inputs": {"ms": ms}}})
}

async fn invoke(
    app: &TestApp,
    token: &str,
    fid: &str,
    query: &str,
    body: Value,
) -> reqwest::Response {
    app.api
        .http
        .post(app.api.url(&format!("/api/functions/{fid}/invoke{query}")))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .unwrap()
}

async fn invoke_answers_200_with_the_result(nats: Option<&NatsServer>) {
    let app = start(nats, &[]).await;
    let (token, _) = app.api.user("invoker").await;
    let fid = app.api.deploy_sample(&token, "c-hello.wasm").await;
    let input = json!({"direct_inputs": {"greeting": "hi"}});
    let res = invoke(&app, &token, &fid, "?wait=20", json!({"input": input})).await;
    assert_eq!(res.status(), 200);
    let e: Value = res.json().await.unwrap();
    assert_eq!(e["status"], "completed", "{e}");
    assert_eq!(e["result"]["input"], input);
    // A missing function and a wait beyond the operator's cap are refused.
    let res = invoke(&app, &token, "nope", "", json!({})).await;
    assert_eq!(res.status(), 404);
    let res = invoke(&app, &token, &fid, "?wait=301", json!({})).await;
    assert_eq!(res.status(), 400);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn embedded_invoke_answers_200_with_the_result() {
    invoke_answers_200_with_the_result(None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn nats_invoke_answers_200_with_the_result() {
    let nats = NatsServer::start();
    invoke_answers_200_with_the_result(Some(&nats)).await;
}

/// Past the wait: 202 with the record and its `Location`; a long poll on it then
/// answers within ~100 ms of the end, not at the end of its own wait.
async fn invoke_past_the_wait_then_long_poll(nats: Option<&NatsServer>) {
    let app = start(nats, &[]).await;
    let (token, _) = app.api.user("patient").await;
    let fid = app.api.deploy_sample(&token, "c-spin.wasm").await;
    let t = Instant::now();
    let res = invoke(&app, &token, &fid, "?wait=1", spin(3000)).await;
    let waited = t.elapsed();
    assert_eq!(res.status(), 202);
    let location = res.headers()["location"].to_str().unwrap().to_string();
    let e: Value = res.json().await.unwrap();
    assert!(
        matches!(e["status"].as_str(), Some("pending" | "running")),
        "{e}"
    );
    assert_eq!(
        location,
        format!("/api/executions/{}", e["id"].as_str().unwrap())
    );
    assert!(
        waited >= Duration::from_millis(950) && waited < Duration::from_secs(3),
        "{waited:?}"
    );

    let t = Instant::now();
    let done = app
        .api
        .get(&token, &format!("{location}?wait=30"))
        .await
        .expect(200);
    let answered = OffsetDateTime::now_utc();
    assert_eq!(done["status"], "completed", "{done}");
    assert!(t.elapsed() < Duration::from_secs(10));
    let ended = OffsetDateTime::parse(done["completed_at"].as_str().unwrap(), &Rfc3339).unwrap();
    let lag = answered - ended;
    eprintln!("long poll answered {lag} after the execution ended");
    assert!(
        lag < time::Duration::milliseconds(150),
        "long poll lag {lag}"
    );
    // A short long poll of a running execution answers with its state at the end.
    let slow = invoke(&app, &token, &fid, "?wait=0", spin(2000)).await;
    assert_eq!(slow.status(), 202);
    let id = slow.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let t = Instant::now();
    let e = app
        .api
        .get(&token, &format!("/api/executions/{id}?wait=1"))
        .await
        .expect(200);
    assert!(
        matches!(e["status"].as_str(), Some("pending" | "running")),
        "{e}"
    );
    assert!(t.elapsed() >= Duration::from_millis(950));
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn embedded_invoke_past_the_wait_then_long_poll() {
    invoke_past_the_wait_then_long_poll(None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn nats_invoke_past_the_wait_then_long_poll() {
    let nats = NatsServer::start();
    invoke_past_the_wait_then_long_poll(Some(&nats)).await;
}

/// The statuses of the `execution` events of an SSE body.
fn event_statuses(body: &str) -> Vec<String> {
    body.split("\n\n")
        .filter(|block| block.lines().any(|l| l == "event: execution"))
        .filter_map(|block| block.lines().find_map(|l| l.strip_prefix("data: ")))
        .map(|data| {
            serde_json::from_str::<Value>(data).unwrap()["status"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect()
}

async fn events(app: &TestApp, token: &str, id: &str) -> (u16, String) {
    let res = app
        .api
        .http
        .get(app.api.url(&format!("/api/executions/{id}/events")))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    let status = res.status().as_u16();
    let body = tokio::time::timeout(Duration::from_secs(30), res.text())
        .await
        .expect("the stream ends after the final event")
        .unwrap();
    (status, body)
}

/// On a one-slot worker busy with a first spin, a second one waits pending: its
/// stream shows pending, running, completed, and ends.
async fn events_stream_every_state_and_end(nats: Option<&NatsServer>) {
    let app = start(nats, &["--max-concurrent=1"]).await;
    let (token, _) = app.api.user("watcher").await;
    let fid = app.api.deploy_sample(&token, "c-spin.wasm").await;
    let first = app
        .api
        .submit(&token, &fid, json!({"direct_inputs": {"ms": 4000}}))
        .await;
    let second = app
        .api
        .submit(&token, &fid, json!({"direct_inputs": {"ms": 300}}))
        .await;
    let (status, body) = events(&app, &token, &second).await;
    assert_eq!(status, 200);
    assert_eq!(
        event_statuses(&body),
        ["pending", "running", "completed"],
        "{body}"
    );
    // Already final: one event.
    let (_, body) = events(&app, &token, &first).await;
    assert_eq!(event_statuses(&body), ["completed"], "{body}");
    let (status, _) = events(&app, &token, "no-such-execution").await;
    assert_eq!(status, 404);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn embedded_events_stream_every_state_and_end() {
    events_stream_every_state_and_end(None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn nats_events_stream_every_state_and_end() {
    let nats = NatsServer::start();
    events_stream_every_state_and_end(Some(&nats)).await;
}

async fn post_keyed(
    app: &TestApp,
    token: &str,
    path: &str,
    key: &str,
    body: &Value,
) -> reqwest::Response {
    app.api
        .http
        .post(app.api.url(path))
        .bearer_auth(token)
        .header("Idempotency-Key", key)
        .json(body)
        .send()
        .await
        .unwrap()
}

/// Replays, a mismatch, a malformed key, and 20 concurrent duplicates that
/// make one execution.
async fn idempotency_keys_run_once(nats: Option<&NatsServer>) {
    let app = start(nats, &[]).await;
    let (token, _) = app.api.user("careful").await;
    let fid = app.api.deploy_sample(&token, "c-hello.wasm").await;
    let body = json!({"function_id": fid, "input": {"direct_inputs": {"n": 1}}});
    let first = post_keyed(&app, &token, "/api/executions", "order-1", &body).await;
    assert_eq!(first.status(), 202);
    assert!(first.headers().get("idempotent-replayed").is_none());
    let id = first.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let again = post_keyed(&app, &token, "/api/executions", "order-1", &body).await;
    assert_eq!(again.status(), 202);
    assert_eq!(again.headers()["idempotent-replayed"], "true");
    assert_eq!(again.json::<Value>().await.unwrap()["id"], id.as_str());
    // Invoke with the same key and the same request: the same execution, final.
    let path = format!("/api/functions/{fid}/invoke?wait=20");
    let invoked = post_keyed(
        &app,
        &token,
        &path,
        "order-1",
        &json!({"input": {"direct_inputs": {"n": 1}}}),
    )
    .await;
    assert_eq!(invoked.status(), 200);
    assert_eq!(invoked.headers()["idempotent-replayed"], "true");
    let e = invoked.json::<Value>().await.unwrap();
    assert_eq!(
        (e["id"].as_str(), e["attempt"].as_i64()),
        (Some(id.as_str()), Some(1))
    );
    // A different body: 422; another user's same key is theirs.
    let other = json!({"function_id": fid, "input": {"direct_inputs": {"n": 2}}});
    let res = post_keyed(&app, &token, "/api/executions", "order-1", &other).await;
    assert_eq!(res.status(), 422);
    assert_eq!(
        res.json::<Value>().await.unwrap()["error"],
        "idempotency_mismatch"
    );
    let bad = post_keyed(&app, &token, "/api/executions", &"k".repeat(256), &body).await;
    assert_eq!(bad.status(), 400);

    let race = json!({"function_id": fid, "input": {"direct_inputs": {"n": 3}}});
    let answers = futures::future::join_all(
        (0..20).map(|_| post_keyed(&app, &token, "/api/executions", "race-key", &race)),
    )
    .await;
    let mut ids = Vec::new();
    for r in answers {
        assert_eq!(r.status(), 202);
        ids.push(
            r.json::<Value>().await.unwrap()["id"]
                .as_str()
                .unwrap()
                .to_string(),
        );
    }
    ids.dedup();
    assert_eq!(ids.len(), 1, "20 duplicates made one execution: {ids:?}");
    let done = app
        .api
        .get(&token, &format!("/api/executions/{}?wait=20", ids[0]))
        .await
        .expect(200);
    assert_eq!(
        (done["status"].as_str(), done["attempt"].as_i64()),
        (Some("completed"), Some(1))
    );
    let list = app
        .api
        .get(&token, &format!("/api/executions?function_id={fid}"))
        .await
        .expect(200);
    assert_eq!(
        list["executions"].as_array().unwrap().len(),
        2,
        "order-1 and race-key, once each"
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn embedded_idempotency_keys_run_once() {
    idempotency_keys_run_once(None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn nats_idempotency_keys_run_once() {
    let nats = NatsServer::start();
    idempotency_keys_run_once(Some(&nats)).await;
}

/// An API process and a worker process (each its own NATS connection): the API
/// answers an invoke and a long poll as soon as the worker ends the run.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn nats_api_process_answers_when_a_worker_process_ends_the_run() {
    use faas::platform::{Platform, Roles};
    let nats = NatsServer::start();
    let url = format!("--nats-url={}", nats.url());
    let extra = [
        url.as_str(),
        "--jwt-secret=a-test-signing-key-of-at-least-32-bytes!!",
        "--secrets-key=7d1c2a1f0e9b8c7d6e5f4a3b2c1d0e9f8a7b6c5d4e3f2a1b0c9d8e7f6a5b4c3d",
    ];
    let (api_dir, worker_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let api_process = Platform::start_roles(harness::config(api_dir.path(), &extra), Roles::Api)
        .await
        .unwrap();
    let worker = Platform::start_roles(harness::config(worker_dir.path(), &extra), Roles::Worker)
        .await
        .unwrap();
    let api = harness::Api::new(&format!("http://{}", api_process.addr.unwrap()));
    let (token, _) = api.user("remote").await;
    let hello = api.deploy_sample(&token, "c-hello.wasm").await;
    let spin_fn = api.deploy_sample(&token, "c-spin.wasm").await;
    let res = api
        .http
        .post(api.url(&format!("/api/functions/{hello}/invoke?wait=20")))
        .bearer_auth(&token)
        .json(&json!({"input": {}}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let res = api
        .http
        .post(api.url(&format!("/api/functions/{spin_fn}/invoke?wait=1")))
        .bearer_auth(&token)
        .json(&spin(1500))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 202);
    let location = res.headers()["location"].to_str().unwrap().to_string();
    let done = api
        .get(&token, &format!("{location}?wait=20"))
        .await
        .expect(200);
    let answered = OffsetDateTime::now_utc();
    assert_eq!(done["status"], "completed", "{done}");
    let ended = OffsetDateTime::parse(done["completed_at"].as_str().unwrap(), &Rfc3339).unwrap();
    let lag = answered - ended;
    eprintln!("across processes, the long poll answered {lag} after the run ended");
    assert!(
        lag < time::Duration::milliseconds(150),
        "long poll lag {lag}"
    );
    worker.stop().await;
    api_process.stop().await;
}

/// A cancel is a state change too: a long poll on the execution answers at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn long_poll_wakes_on_cancel() {
    let app = start(None, &["--max-concurrent=1"]).await;
    let (token, _) = app.api.user("canceller").await;
    let fid = app.api.deploy_sample(&token, "c-spin.wasm").await;
    let busy = app
        .api
        .submit(&token, &fid, json!({"direct_inputs": {"ms": 3000}}))
        .await;
    let queued = app
        .api
        .submit(&token, &fid, json!({"direct_inputs": {"ms": 10}}))
        .await;
    let poll = {
        let (api, token, id) = (app.api.clone(), token.clone(), queued.clone());
        tokio::spawn(async move {
            let t = Instant::now();
            let e = api
                .get(&token, &format!("/api/executions/{id}?wait=20"))
                .await
                .expect(200);
            (e, t.elapsed())
        })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    let t = Instant::now();
    app.api
        .post(
            &token,
            &format!("/api/executions/{queued}/cancel"),
            json!({}),
        )
        .await
        .expect(200);
    let (e, _) = poll.await.unwrap();
    assert_eq!(e["status"], "cancelled", "{e}");
    assert!(t.elapsed() < Duration::from_secs(1), "{:?}", t.elapsed());
    app.api.wait(&token, &busy, Duration::from_secs(30)).await;
    app.stop().await;
}
