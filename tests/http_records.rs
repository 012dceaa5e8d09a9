//! Calls of functions' HTTP endpoints after the call: a client that stops reading
//! is cut by the idle timeout (the slot freed long before the function's timeout),
//! every call is counted in the metrics, and failed calls (or all, or none:
//! FAAS_HTTP_RECORD) become execution records with `trigger: "http"` that only
//! their owner reads and that never count as active.

#[path = "support/harness.rs"]
mod harness;

use std::time::{Duration, Instant};

use harness::{TestApp, sample};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Deploys a sample with a timeout and serves it publicly; returns its id.
async fn public(app: &TestApp, token: &str, name: &str, file: &str, timeout: u64) -> String {
    let t = timeout.to_string();
    let f = app
        .api
        .deploy(token, name, sample(file), &[("timeout_secs", &t)])
        .await
        .expect(201);
    let fid = f["id"].as_str().unwrap().to_string();
    let settings = json!({"enabled": true, "access": "public"});
    app.api
        .put(token, &format!("/api/functions/{fid}/http"), settings)
        .await
        .expect(200);
    fid
}

async fn call(app: &TestApp, path: &str) -> (u16, String) {
    let res = app.api.http.get(app.api.url(path)).send().await.unwrap();
    let status = res.status().as_u16();
    (status, res.text().await.unwrap())
}

/// The owner's executions, newest first.
async fn executions(app: &TestApp, token: &str) -> Vec<Value> {
    let page = app.api.get(token, "/api/executions").await.expect(200);
    page["executions"].as_array().unwrap().clone()
}

/// Waits until the owner has `n` executions (records are written off the
/// response's path), then a little longer to see that no more come.
async fn wait_for(app: &TestApp, token: &str, n: usize) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let got = executions(app, token).await;
        if got.len() >= n || Instant::now() > deadline {
            tokio::time::sleep(Duration::from_millis(300)).await;
            return executions(app, token).await;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The value of the first series of `name` whose labels include all of `labels`.
fn series(text: &str, name: &str, labels: &[&str]) -> Option<f64> {
    text.lines()
        .filter(|l| l.starts_with(&format!("{name}{{")))
        .find(|l| labels.iter().all(|want| l.contains(want)))
        .and_then(|l| l.rsplit(' ').next()?.parse().ok())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_client_that_stops_reading_is_cut_and_frees_the_slot() {
    const LEN: usize = 64 << 20;
    let app = TestApp::start(&[
        "--http-idle-timeout-secs=1",
        "--http-max-concurrent-per-function=1",
        "--http-max-body-bytes=134217728",
    ])
    .await;
    let (token, _) = app.api.user("ann").await;
    public(&app, &token, "http-hello", "rust-http-hello.wasm", 60).await;

    // A raw client with a small receive buffer: it sends a 64 MiB body to /echo,
    // reads the head and a little of the answer, then stops reading.
    let addr: std::net::SocketAddr = app.api.base.trim_start_matches("http://").parse().unwrap();
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(8 * 1024).unwrap();
    let conn = socket.connect(addr).await.unwrap();
    let (mut rd, mut wr) = conn.into_split();
    let writer = tokio::spawn(async move {
        let head = format!(
            "POST /fn/ann/http-hello/echo HTTP/1.1\r\nhost: test\r\n\
             content-type: application/octet-stream\r\ncontent-length: {LEN}\r\n\r\n"
        );
        wr.write_all(head.as_bytes()).await?;
        let chunk = vec![b'x'; 64 * 1024];
        for _ in 0..LEN / chunk.len() {
            wr.write_all(&chunk).await?;
        }
        Ok::<_, std::io::Error>(wr)
    });
    let mut got = Vec::new();
    let mut buf = vec![0u8; 16 * 1024];
    while got.len() < 64 * 1024 {
        let n = tokio::time::timeout(Duration::from_secs(10), rd.read(&mut buf))
            .await
            .expect("the echo answers")
            .unwrap();
        assert!(n > 0, "the connection ended early");
        got.extend_from_slice(&buf[..n]);
    }
    let text = String::from_utf8_lossy(&got[..64]).to_string();
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    let stopped = Instant::now();

    // The stalled exchange holds the function's only slot, until the idle timeout
    // cuts it: then the next request is served, long before the 60 s timeout.
    let (status, body) = call(&app, "/fn/ann/http-hello").await;
    assert_eq!(
        status, 429,
        "the slot is held while the body stalls: {body}"
    );
    let served = loop {
        let (status, body) = call(&app, "/fn/ann/http-hello").await;
        if status == 200 {
            break stopped.elapsed();
        }
        assert_eq!(status, 429, "{body}");
        assert!(
            stopped.elapsed() < Duration::from_secs(10),
            "the slot is still held after 10 s"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    eprintln!("served again {served:?} after the client stopped reading");

    // The first connection was cut, not ended as if complete: reading on drains
    // what was buffered and then meets the end (or a reset), without the last chunk.
    let mut total = got.len();
    let mut tail = Vec::new();
    let ended = tokio::time::timeout(Duration::from_secs(30), async {
        loop {
            match rd.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => {
                    total += n;
                    tail.extend_from_slice(&buf[..n]);
                    let keep = tail.len().saturating_sub(16);
                    tail.drain(..keep);
                }
            }
        }
    })
    .await;
    assert!(ended.is_ok(), "the cut connection ends");
    assert!(total < LEN, "{total} bytes: the body was cut");
    assert!(!tail.ends_with(b"0\r\n\r\n"), "no final chunk after a cut");
    writer.abort();

    // The cut call is a failed record (FAAS_HTTP_RECORD=errors).
    let records = wait_for(&app, &token, 1).await;
    assert_eq!(records.len(), 1, "{records:?}");
    assert_eq!(records[0]["trigger"], "http");
    assert_eq!(records[0]["status"], "failed");
    assert_eq!(records[0]["http_status"], 200);
    let error = records[0]["error"].as_str().unwrap();
    assert!(error.contains("stopped reading"), "{error}");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn by_default_failed_calls_are_recorded_for_their_owner_only_and_counted() {
    let app = TestApp::start(&["--quota-active-executions=1"]).await;
    let (ann, _) = app.api.user("ann").await;
    let (bob, _) = app.api.user("bob").await;
    let fid = public(&app, &ann, "http-hello", "rust-http-hello.wasm", 5).await;

    assert_eq!(call(&app, "/fn/ann/http-hello").await.0, 200);
    assert_eq!(call(&app, "/fn/ann/http-hello/status/404").await.0, 404);
    let (status, body) = call(&app, "/fn/ann/http-hello/no-response?x=1").await;
    assert_eq!(status, 500, "{body}");

    // Only the failed call is recorded, final at once, with trigger "http".
    let records = wait_for(&app, &ann, 1).await;
    assert_eq!(
        records.len(),
        1,
        "the 200 and the 404 make none: {records:?}"
    );
    let listed = &records[0];
    assert_eq!(listed["trigger"], "http");
    assert_eq!(listed["http_status"], 500);
    assert_eq!(listed["status"], "failed");
    assert_eq!(listed["function_id"], fid.as_str());
    let id = listed["id"].as_str().unwrap();
    let record = app
        .api
        .get(&ann, &format!("/api/executions/{id}"))
        .await
        .expect(200);
    assert_eq!(record["trigger"], "http");
    assert_eq!(record["status"], "failed");
    assert_eq!(record["http_status"], 500);
    assert!(
        record["error"]
            .as_str()
            .unwrap()
            .contains("without setting a response"),
        "{record}"
    );
    let input: Value = serde_json::from_str(record["input"].as_str().unwrap()).unwrap();
    assert_eq!(
        input,
        json!({"http": {"method": "GET", "path": "/fn/ann/http-hello/no-response", "query": "x=1"}})
    );
    assert!(record["duration_ms"].is_u64());
    assert!(record["started_at"].is_string() && record["completed_at"].is_string());

    // Another user cannot read it; it is not active (the quota of one active
    // execution still admits a submission) and it was never queued.
    app.api
        .get(&bob, &format!("/api/executions/{id}"))
        .await
        .expect_error(404, "not_found");
    assert!(executions(&app, &bob).await.is_empty());
    let me = app.api.get(&ann, "/api/me").await.expect(200);
    assert_eq!(me["quotas"]["usage"]["active_executions"], 0, "{me}");
    let c = app.api.deploy_sample(&ann, "c-hello.wasm").await;
    let queued = app.api.run(&ann, &c, json!({})).await;
    assert_eq!(queued["status"], "completed", "{queued}");
    assert_eq!(queued["trigger"], "api");

    // Every call that found its function is counted, by function id and status.
    let text = app
        .api
        .http
        .get(app.api.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let function = format!("function=\"{fid}\"");
    for status in ["200", "404", "500"] {
        let labels = [function.as_str(), &format!("status=\"{status}\"")];
        let n = series(&text, "faas_function_http_calls_total", &labels);
        assert_eq!(n, Some(1.0), "{status}: {text}");
    }
    let timed = series(
        &text,
        "faas_function_http_call_duration_seconds_count",
        &[&function],
    );
    assert_eq!(timed, Some(3.0), "{text}");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn with_all_successes_are_recorded_too_and_adapter_runs_keep_their_output() {
    let app = TestApp::start(&["--http-record=all"]).await;
    let (ann, _) = app.api.user("ann").await;
    let hello = public(&app, &ann, "http-hello", "rust-http-hello.wasm", 5).await;
    let c = public(&app, &ann, "c-hello", "c-hello.wasm", 5).await;

    assert_eq!(call(&app, "/fn/ann/http-hello").await.0, 200);
    let records = wait_for(&app, &ann, 1).await;
    assert_eq!(records.len(), 1, "{records:?}");
    assert_eq!(records[0]["function_id"], hello.as_str());
    assert_eq!(records[0]["trigger"], "http");
    assert_eq!(records[0]["status"], "completed");
    assert_eq!(records[0]["http_status"], 200);

    // A command module through the adapter: its stdout is the record's output.
    let (status, body) = call(&app, "/fn/ann/c-hello/a/b").await;
    assert_eq!(status, 200, "{body}");
    let records = wait_for(&app, &ann, 2).await;
    assert_eq!(records.len(), 2, "{records:?}");
    let id = records
        .iter()
        .find(|r| r["function_id"] == c.as_str())
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let record = app
        .api
        .get(&ann, &format!("/api/executions/{id}"))
        .await
        .expect(200);
    assert_eq!(record["status"], "completed", "{record}");
    assert_eq!(record["trigger"], "http");
    assert_eq!(record["http_status"], 200);
    assert_eq!(record["exit_code"], 0);
    let printed: Value = serde_json::from_str(record["output"].as_str().unwrap()).unwrap();
    assert_eq!(printed, serde_json::from_str::<Value>(&body).unwrap());
    assert_eq!(record["result"]["input"]["http"]["path"], "/a/b");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn with_none_nothing_is_recorded_but_calls_are_counted() {
    let app = TestApp::start(&["--http-record=none"]).await;
    let (ann, _) = app.api.user("ann").await;
    let fid = public(&app, &ann, "http-hello", "rust-http-hello.wasm", 5).await;
    assert_eq!(call(&app, "/fn/ann/http-hello/no-response").await.0, 500);
    assert_eq!(call(&app, "/fn/ann/http-hello").await.0, 200);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(executions(&app, &ann).await.is_empty());
    let text = app
        .api
        .http
        .get(app.api.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let function = format!("function=\"{fid}\"");
    let labels = [function.as_str(), "status=\"500\""];
    let n = series(&text, "faas_function_http_calls_total", &labels);
    assert_eq!(n, Some(1.0), "{text}");
    app.stop().await;
}
