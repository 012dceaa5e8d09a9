//! Observability (issue 10). `GET /metrics`: Prometheus text from every process,
//! labelled by route template and never by raw path or id; on the API's listener by
//! default, on FAAS_METRICS_ADDRESS alone when set, and on a `faas worker`'s health
//! listener. `traceparent`: taken from the request or made, answered, kept on the
//! execution record and in the worker's log lines of that execution.

#[path = "support/cluster.rs"]
mod cluster;
#[path = "support/harness.rs"]
mod harness;
#[path = "../runtime/tests/support/nats_server.rs"]
mod nats_server;

use std::net::TcpListener;
use std::time::{Duration, Instant};

use harness::TestApp;
use serde_json::json;

async fn scrape(url: &str) -> (u16, String, String) {
    let res = reqwest::get(url).await.expect("GET /metrics");
    let status = res.status().as_u16();
    let ctype = res
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    (status, ctype, res.text().await.unwrap())
}

/// Submits `fid` with an empty input, sending `traceparent` when given.
async fn submit_traced(
    api: &harness::Api,
    token: &str,
    fid: &str,
    traceparent: Option<&str>,
) -> reqwest::Response {
    let mut req = api
        .http
        .post(api.url("/api/executions"))
        .bearer_auth(token)
        .json(&json!({"function_id": fid, "input": {}}));
    if let Some(tp) = traceparent {
        req = req.header("traceparent", tp);
    }
    req.send().await.unwrap()
}

/// The value of the sample line starting with `series` (name and labels, exactly).
fn value(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.trim().parse().ok())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn metrics_count_executions_and_requests_by_route_template() {
    let app = TestApp::start(&[]).await;
    let (token, _) = app.api.user("metered").await;
    let fid = app.api.deploy_sample(&token, "c-hello.wasm").await;
    let done = app
        .api
        .run(&token, &fid, json!({"direct_inputs": {}}))
        .await;
    assert_eq!(done["status"], "completed", "{done}");
    let id = done["id"].as_str().unwrap().to_string();
    app.api
        .get("not-a-token", "/api/functions")
        .await
        .expect(401);

    let (status, ctype, text) = scrape(&app.api.url("/metrics")).await;
    assert_eq!(status, 200, "{text}");
    assert!(ctype.starts_with("text/plain"), "{ctype}");
    let completed = r#"faas_executions_total{runtime="wasm",status="completed"}"#;
    assert!(value(&text, completed).is_some_and(|v| v >= 1.0), "{text}");
    let polled = r#"faas_http_requests_total{route="/api/executions/{id}",status="200"}"#;
    assert!(value(&text, polled).is_some_and(|v| v >= 1.0), "{text}");
    let refused = r#"faas_http_requests_total{route="/api/functions",status="401"}"#;
    assert!(value(&text, refused).is_some_and(|v| v >= 1.0), "{text}");
    for histogram in [
        "faas_execution_duration_seconds_bucket{runtime=\"wasm\",le=\"0.005\"}",
        "faas_queue_wait_seconds_count",
        "faas_http_request_duration_seconds_bucket{route=\"/api/functions\",le=\"+Inf\"}",
    ] {
        assert!(
            value(&text, histogram).is_some(),
            "{histogram} missing:\n{text}"
        );
    }
    for gauge in ["faas_queue_depth", "faas_workers", "faas_worker_slots"] {
        assert!(value(&text, gauge).is_some(), "{gauge} missing:\n{text}");
    }
    assert!(value(&text, "faas_workers").unwrap() >= 1.0, "{text}");
    let cache = text
        .lines()
        .any(|l| l.starts_with("faas_wasm_compile_cache_total{result="));
    assert!(cache, "compile cache counters missing:\n{text}");
    // Bounded labels: no id, no raw path, no user name.
    for leak in [id.as_str(), fid.as_str(), "metered"] {
        assert!(!text.contains(leak), "{leak} appears in the metrics");
    }
    // An unknown path is one label, whatever was asked.
    app.api.get(&token, "/no/such/path/12345").await.expect(404);
    let (_, _, text) = scrape(&app.api.url("/metrics")).await;
    assert!(!text.contains("12345"), "a raw path became a label");
    assert!(text.contains(r#"route="unmatched""#), "{text}");
    app.stop().await;
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_metrics_address_serves_them_alone() {
    let port = free_port();
    let app = TestApp::start(&[&format!("--metrics-addr=127.0.0.1:{port}")]).await;
    let (status, _, text) = scrape(&format!("http://127.0.0.1:{port}/metrics")).await;
    assert_eq!(status, 200);
    assert!(text.contains("faas_queue_depth"), "{text}");
    let (status, _, body) = scrape(&app.api.url("/metrics")).await;
    assert_eq!(
        status, 404,
        "the API listener no longer serves them: {body}"
    );
    let err: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(err["error"], "not_found");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_worker_serves_metrics_on_its_health_listener() {
    let port = free_port();
    let health = format!("127.0.0.1:{port}");
    // The API process has no health listener: only the worker binds this address.
    let mut c = cluster::Cluster::start(1, &[("FAAS_HEALTH_ADDRESS", &health)]);
    let api = harness::Api::new(&c.base);
    let (token, _) = api.user("cluster-metered").await;
    let fid = api.deploy_sample(&token, "c-hello.wasm").await;
    let done = api.run(&token, &fid, json!({})).await;
    assert_eq!(done["status"], "completed", "{done}");
    // The worker's own counters: it ran the execution, the API process did not.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (status, _, text) = scrape(&format!("http://{health}/metrics")).await;
        assert_eq!(status, 200);
        let completed = r#"faas_executions_total{runtime="wasm",status="completed"}"#;
        if value(&text, completed).is_some_and(|v| v >= 1.0) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the worker never counted it:\n{text}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // The trace context travels with the record to the worker in another process.
    let trace_id = "0af7651916cd43dd8448eb211c80319c";
    let given = format!("00-{trace_id}-b7ad6b7169203331-01");
    let res = submit_traced(&api, &token, &fid, Some(&given)).await;
    assert_eq!(res.status(), 202);
    let answered = res.headers()["traceparent"].to_str().unwrap().to_string();
    assert!(
        answered.starts_with(&format!("00-{trace_id}-")),
        "{answered}"
    );
    let e: serde_json::Value = res.json().await.unwrap();
    let id = e["id"].as_str().unwrap();
    let done = api.wait(&token, id, Duration::from_secs(30)).await;
    assert!(
        done["traceparent"].as_str().unwrap().contains(trace_id),
        "{done}"
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    while c.count_in_worker_logs(&format!("trace_id={trace_id}")) == 0 {
        assert!(
            Instant::now() < deadline,
            "no worker log line carries the trace id"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (_, _, api_text) = scrape(&format!("{}/metrics", c.base)).await;
    assert!(api_text.contains("faas_http_requests_total"), "{api_text}");
    assert!(
        !api_text.contains(r#"status="completed""#),
        "the API process ran nothing: {api_text}"
    );
    c.assert_alive();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_request_gets_a_trace_context_and_executions_keep_it() {
    let app = TestApp::start(&[]).await;
    let (token, _) = app.api.user("traced").await;
    let fid = app.api.deploy_sample(&token, "c-hello.wasm").await;
    // The caller's trace is continued: same trace id, a new span id.
    let given = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    let res = submit_traced(&app.api, &token, &fid, Some(given)).await;
    assert_eq!(res.status(), 202);
    let answered = res.headers()["traceparent"].to_str().unwrap().to_string();
    assert!(
        answered.starts_with("00-4bf92f3577b34da6a3ce929d0e0e4736-"),
        "{answered}"
    );
    assert_ne!(answered, given);
    let e: serde_json::Value = res.json().await.unwrap();
    assert_eq!(e["traceparent"], answered.as_str());
    // None given, or a malformed one: a new trace, still recorded.
    for tp in [None, Some("00-zzzz-00f067aa0ba902b7-01")] {
        let res = submit_traced(&app.api, &token, &fid, tp).await;
        assert_eq!(res.status(), 202);
        let answered = res.headers()["traceparent"].to_str().unwrap().to_string();
        assert_eq!(answered.len(), 55, "{answered}");
        assert!(!answered.contains("4bf92f35"), "{answered}");
        let e: serde_json::Value = res.json().await.unwrap();
        assert_eq!(e["traceparent"], answered.as_str());
    }
    // Any route answers with one, errors included.
    let res = app
        .api
        .http
        .get(app.api.url("/api/functions"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
    assert!(res.headers().contains_key("traceparent"));
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_api_reference_page_is_served_from_the_binary() {
    let app = TestApp::start(&[]).await;
    let get = |path: &'static str| {
        let url = app.api.url(path);
        async move {
            let res = reqwest::get(url).await.unwrap();
            let status = res.status().as_u16();
            let headers = res.headers().clone();
            (status, headers, res.text().await.unwrap())
        }
    };
    let (status, headers, html) = get("/api/docs").await;
    assert_eq!(status, 200);
    assert!(
        headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    let csp = headers["content-security-policy"].to_str().unwrap();
    assert!(
        csp.contains("script-src 'self'") && !csp.contains("unsafe-inline"),
        "{csp}"
    );
    assert!(
        html.contains(r#"<script src="/api/docs/docs.js" defer></script>"#),
        "{html}"
    );
    assert_eq!(html.matches("<script").count(), 1, "no inline script");
    let (status, headers, js) = get("/api/docs/docs.js").await;
    assert_eq!(status, 200);
    assert!(
        headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/javascript")
    );
    assert!(js.contains("/api/openapi.json"));
    let (status, _, css) = get("/api/docs/docs.css").await;
    assert_eq!(status, 200);
    // Nothing from another host: no absolute URL in any of the three files.
    for (name, text) in [("html", &html), ("js", &js), ("css", &css)] {
        assert!(
            !text.contains("http://") && !text.contains("https://"),
            "{name} names another host"
        );
    }
    // The script parses (node is on every machine of this kind; CI runs it too).
    let file = app.data.path().join("docs.js");
    std::fs::write(&file, &js).unwrap();
    let out = std::process::Command::new("node")
        .arg("--check")
        .arg(&file)
        .output()
        .expect("node");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The page documents itself.
    let doc = app.api.get("", "/api/openapi.json").await.expect(200);
    assert!(doc["paths"]["/api/docs"]["get"].is_object());
    assert!(doc["paths"]["/metrics"]["get"].is_object());
    app.stop().await;
}

/// An OTLP/HTTP receiver on 127.0.0.1: keeps the bodies posted to `/v1/traces`.
async fn otlp_receiver() -> (String, std::sync::Arc<std::sync::Mutex<Vec<Vec<u8>>>>) {
    use axum::routing::post;
    let bodies = std::sync::Arc::new(std::sync::Mutex::new(Vec::<Vec<u8>>::new()));
    let kept = bodies.clone();
    let app = axum::Router::new().route(
        "/v1/traces",
        post(move |body: axum::body::Bytes| {
            let kept = kept.clone();
            async move {
                kept.lock().unwrap().push(body.to_vec());
                (
                    [("content-type", "application/x-protobuf")],
                    Vec::<u8>::new(),
                )
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://{addr}"), bodies)
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn spans_are_exported_over_otlp_in_the_callers_trace() {
    let (endpoint, bodies) = otlp_receiver().await;
    let data = tempfile::tempdir().unwrap();
    let (mut child, base) = harness::spawn_serve(
        data.path(),
        &[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint.as_str()),
            ("OTEL_SERVICE_NAME", "faas-under-test"),
            ("OTEL_BSP_SCHEDULE_DELAY", "100"),
        ],
    );
    let api = harness::Api::new(&base);
    let (token, _) = api.user("exported").await;
    let fid = api.deploy_sample(&token, "c-hello.wasm").await;
    let trace_hex = "5b8efff798038103d269b633813fc60c";
    let caller_span = "eee19b7ec3c1b174";
    let given = format!("00-{trace_hex}-{caller_span}-01");
    let res = submit_traced(&api, &token, &fid, Some(&given)).await;
    assert_eq!(res.status(), 202);
    let answered = res.headers()["traceparent"].to_str().unwrap().to_string();
    let e: serde_json::Value = res.json().await.unwrap();
    let done = api
        .wait(&token, e["id"].as_str().unwrap(), Duration::from_secs(30))
        .await;
    assert_eq!(done["status"], "completed");
    // The answered span id is the exported request span's, in the caller's trace.
    let own_span = answered.split('-').nth(2).unwrap().to_string();
    assert_ne!(own_span, caller_span);
    let trace = hex::decode(trace_hex).unwrap();
    let (caller, own) = (
        hex::decode(caller_span).unwrap(),
        hex::decode(&own_span).unwrap(),
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let all: Vec<u8> = bodies.lock().unwrap().concat();
        let found = contains(&all, &trace)
            && contains(&all, &caller)
            && contains(&all, &own)
            && contains(&all, b"faas-under-test")
            && contains(&all, b"execution");
        if found {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no exported span in the caller's trace ({} bodies, {} bytes): trace {} caller {} own {} service {} execution {}",
            bodies.lock().unwrap().len(),
            all.len(),
            contains(&all, &trace),
            contains(&all, &caller),
            contains(&all, &own),
            contains(&all, b"faas-under-test"),
            contains(&all, b"execution"),
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let _ = child.kill();
    let _ = child.wait();
}
