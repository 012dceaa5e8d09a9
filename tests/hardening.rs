//! Hardening of the front door against careless and hostile use: submits cut by
//! the client, a full queue at restart, listings of large executions, records
//! larger than a NATS message, quotas, unique names, objects never served as pages.

#[path = "support/harness.rs"]
mod harness;
#[path = "../runtime/tests/support/nats_server.rs"]
mod nats_server;

use std::io::Write;
use std::time::{Duration, Instant};

use harness::{Api, TestApp};
use serde_json::{Value, json};

/// Every execution the store holds is final (none stuck pending or running).
async fn wait_all_final(api: &Api, token: &str, within: Duration) -> usize {
    let deadline = Instant::now() + within;
    loop {
        let all = api.all_executions(token).await;
        let total = all.len();
        let open = all
            .iter()
            .filter(|e| matches!(e["status"].as_str(), Some("pending" | "running")))
            .count();
        if open == 0 {
            return total;
        }
        assert!(
            Instant::now() < deadline,
            "{open} of {total} executions never finished"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Sends a submit on a raw connection and closes it after `after` (no reply read).
fn cut_submit(addr: &str, token: &str, body: &str, after: Duration) {
    let Ok(mut s) = std::net::TcpStream::connect(addr) else {
        return;
    };
    let req = format!(
        "POST /api/executions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    let _ = s.write_all(req.as_bytes());
    std::thread::sleep(after);
    // An EOF in the middle of a request makes the server drop the connection (and
    // with it the handler's future) at once.
    let _ = s.shutdown(std::net::Shutdown::Both);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn submit_survives_cut_connections() {
    let app = TestApp::start(&["--quota-submissions-per-minute=0"]).await;
    let (token, _) = app.api.user("cutter").await;
    let fid = app.api.deploy_sample(&token, "c-hello.wasm").await;
    let addr = app.api.base.trim_start_matches("http://").to_string();
    let body = json!({"function_id": fid, "input": {"direct_inputs": {"name": "x"}}}).to_string();
    let mut threads = Vec::new();
    for t in 0..8u64 {
        let (addr, token, body) = (addr.clone(), token.clone(), body.clone());
        threads.push(std::thread::spawn(move || {
            for i in 0..40u64 {
                cut_submit(
                    &addr,
                    &token,
                    &body,
                    Duration::from_micros((i * 97 + t * 31) % 2000),
                );
            }
        }));
    }
    for t in threads {
        t.join().unwrap();
    }
    let total = wait_all_final(&app.api, &token, Duration::from_secs(60)).await;
    eprintln!("{total} of 320 cut submits were accepted; all of them finished");
    app.stop().await;
}

#[tokio::test]
async fn listing_200_executions_with_1mib_outputs_stays_small() {
    let app = TestApp::start(&["--quota-submissions-per-minute=0"]).await;
    let (token, _) = app.api.user("lister").await;
    let fid = app.api.deploy_sample(&token, "c-hello.wasm").await;
    let input = json!({"direct_inputs": {"pad": "p".repeat(1_000_000)}});
    let mut ids = Vec::new();
    for _ in 0..200 {
        ids.push(app.api.submit(&token, &fid, input.clone()).await);
    }
    wait_all_final(&app.api, &token, Duration::from_secs(300)).await;
    let res = app
        .api
        .http
        .get(app.api.url("/api/executions?limit=200"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let text = res.text().await.unwrap();
    let page: Value = serde_json::from_str(&text).unwrap();
    let items = page["executions"].as_array().unwrap();
    assert_eq!(items.len(), 200);
    assert!(
        items
            .iter()
            .all(|e| e["output"].is_null() && e["input"].is_null())
    );
    assert!(
        items[0]["output_bytes"].as_u64().unwrap() > 1_000_000,
        "{}",
        items[0]
    );
    eprintln!("200-item page: {} bytes", text.len());
    assert!(text.len() < 200 * 1024, "page is {} bytes", text.len());
    let one = app
        .api
        .get(&token, &format!("/api/executions/{}", ids[0]))
        .await
        .expect(200);
    assert!(one["output"].as_str().unwrap().len() > 1_000_000);
    app.stop().await;
}

#[tokio::test]
async fn nats_records_hold_1mib_input_and_output() {
    let nats = nats_server::NatsServer::start();
    let url = format!("--nats-url={}", nats.url());
    let extra = [
        url.as_str(),
        "--jwt-secret=a-test-signing-key-of-at-least-32-bytes!!",
        "--secrets-key=7d1c2a1f0e9b8c7d6e5f4a3b2c1d0e9f8a7b6c5d4e3f2a1b0c9d8e7f6a5b4c3d",
    ];
    let app = TestApp::start(&extra).await;
    let (token, _) = app.api.user("bigio").await;
    let fid = app.api.deploy_sample(&token, "c-hello.wasm").await;
    let pad = "\u{1}".repeat(100_000) + &"b".repeat(330_000);
    let input = json!({"direct_inputs": {"pad": pad}});
    assert!(input.to_string().len() > 900_000);
    let e = app.api.run(&token, &fid, input.clone()).await;
    assert_eq!(e["status"], "completed", "{}", e["error"]);
    assert_eq!(e["attempt"], 1, "ran once");
    assert_eq!(e["result"]["input"], input);
    assert!(e["output"].as_str().unwrap().len() > 900_000);
    app.stop().await;
}

#[tokio::test]
async fn quotas_are_enforced_per_user_and_set_by_admins() {
    let app = TestApp::start(&[
        "--quota-functions=1",
        "--quota-secrets=1",
        "--quota-object-bytes=1000",
        "--quota-submissions-per-minute=3",
    ])
    .await;
    let api = &app.api;
    let (token, uid) = api.user("quoted").await;
    let fid = api.deploy_sample(&token, "c-hello.wasm").await;
    api.deploy(&token, "second", harness::sample("c-hello.wasm"), &[])
        .await
        .expect_error(429, "quota_exceeded");
    let secret = json!({"name": "one", "value": "v"});
    api.post(&token, "/api/secrets", secret).await.expect(201);
    api.post(&token, "/api/secrets", json!({"name": "two", "value": "v"}))
        .await
        .expect_error(429, "quota_exceeded");
    api.upload(
        &token,
        &fid,
        "a.bin",
        vec![0; 600],
        "application/octet-stream",
    )
    .await
    .expect(201);
    let over = api
        .upload(
            &token,
            &fid,
            "b.bin",
            vec![0; 600],
            "application/octet-stream",
        )
        .await
        .expect_error(429, "quota_exceeded");
    assert!(
        over["message"]
            .as_str()
            .unwrap()
            .contains("max_object_bytes")
    );
    // Replacing an object counts only the new size.
    api.upload(
        &token,
        &fid,
        "a.bin",
        vec![0; 900],
        "application/octet-stream",
    )
    .await
    .expect(201);
    for _ in 0..3 {
        api.submit(&token, &fid, json!({})).await;
    }
    let res = api
        .http
        .post(api.url("/api/executions"))
        .bearer_auth(&token)
        .json(&json!({"function_id": fid}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 429);
    assert!(res.headers().get("retry-after").is_some());
    // A user cannot raise their own limits; an admin can.
    let path = format!("/api/users/{uid}/quotas");
    api.put(&token, &path, json!({"max_functions": 5}))
        .await
        .expect_error(403, "forbidden");
    let admin = api.login("root", "rootpassword").await;
    api.put(&admin, &path, json!({"max_functions": "x"}))
        .await
        .expect_error(400, "invalid_quota");
    let v = api
        .put(
            &admin,
            &path,
            json!({"max_functions": 5, "submissions_per_minute": 0}),
        )
        .await
        .expect(200);
    assert_eq!(v["limits"]["max_functions"], 5);
    assert_eq!(v["usage"]["functions"], 1);
    assert_eq!(v["usage"]["object_bytes"], 900);
    api.deploy(&token, "second", harness::sample("c-hello.wasm"), &[])
        .await
        .expect(201);
    api.submit(&token, &fid, json!({})).await;
    let mine = api.get(&token, &path).await.expect(200);
    assert_eq!(mine["limits"]["submissions_per_minute"], 0);
    let me = api.get(&token, "/api/me").await.expect(200);
    assert_eq!(me["quotas"]["limits"]["max_functions"], 5);
    assert_eq!(me["quotas"]["usage"]["functions"], 2);
    assert_eq!(me["quotas"]["usage"]["secrets"], 1);
    app.stop().await;
}

#[tokio::test]
async fn names_are_unique_per_user_whatever_their_case() {
    let app = TestApp::start(&[]).await;
    let api = &app.api;
    let (token, _) = api.user("namer").await;
    let (other, _) = api.user("other").await;
    let wasm = harness::sample("c-hello.wasm");
    api.deploy(&token, "Thumbs", wasm.clone(), &[])
        .await
        .expect(201);
    api.deploy(&token, "thumbs", wasm.clone(), &[])
        .await
        .expect_error(409, "conflict");
    api.deploy(&other, "thumbs", wasm.clone(), &[])
        .await
        .expect(201);
    api.post(
        &token,
        "/api/secrets",
        json!({"name": "api_key", "value": "a"}),
    )
    .await
    .expect(201);
    api.post(
        &token,
        "/api/secrets",
        json!({"name": "API_KEY", "value": "b"}),
    )
    .await
    .expect_error(409, "conflict");
    // Dots anywhere but first are fine, also in index keys on NATS.
    api.deploy(&token, "a..b.", wasm.clone(), &[])
        .await
        .expect(201);
    api.deploy(&token, "A..B.", wasm.clone(), &[])
        .await
        .expect_error(409, "conflict");
    let long = "d".repeat(5000);
    api.deploy(&token, "described", wasm.clone(), &[("description", &long)])
        .await
        .expect_error(400, "invalid_description");
    let huge = "d".repeat(2 * 1024 * 1024);
    api.deploy(&token, "described", wasm, &[("description", &huge)])
        .await
        .expect_error(400, "invalid_field");
    app.stop().await;
}

#[tokio::test]
async fn objects_download_as_attachments_never_as_pages() {
    let app = TestApp::start(&[]).await;
    let api = &app.api;
    let (token, _) = api.user("pager").await;
    let fid = api.deploy_sample(&token, "c-hello.wasm").await;
    let page = b"<html><script>alert(document.cookie)</script></html>".to_vec();
    api.upload(&token, &fid, "x.html", page, "text/html")
        .await
        .expect(201);
    let res = api
        .http
        .get(api.url(&format!("/api/function-objects/{fid}/x.html")))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let h = res.headers();
    assert!(
        h["content-disposition"]
            .to_str()
            .unwrap()
            .starts_with("attachment")
    );
    assert_eq!(h["x-content-type-options"], "nosniff");
    assert!(
        h["content-security-policy"]
            .to_str()
            .unwrap()
            .contains("sandbox")
    );
    let r = api
        .http
        .post(api.url(&format!("/api/function-objects/{fid}/y.bin")))
        .bearer_auth(&token)
        .header("content-type", "x".repeat(300))
        .body("abc")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400, "an oversized Content-Type is refused");
    app.stop().await;
}

/// Peak resident memory of a process (VmHWM), in MiB.
fn peak_rss_mib(pid: u32) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let kb: f64 = status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap();
    kb / 1024.0
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_stays_bounded_under_hostile_load() {
    let data = tempfile::tempdir().unwrap();
    let (mut child, base) = harness::spawn_serve(
        data.path(),
        &[
            ("FAAS_QUOTA_SUBMISSIONS_PER_MINUTE", "0"),
            ("RUST_LOG", "warn,faas=info"),
        ],
    );
    let pid = child.id();
    let api = Api::new(&base);
    let idle = peak_rss_mib(pid);
    // Log in first: the burst below locks this address out of logins for a while.
    let (token, _) = api.user("heavy").await;
    // Oversized and parallel credentials: 2 MB usernames, a burst of wrong logins.
    let huge = "u".repeat(2 * 1024 * 1024);
    let mut calls = Vec::new();
    for i in 0..40 {
        let (api, huge) = (api.clone(), huge.clone());
        calls.push(tokio::spawn(async move {
            let body = json!({"username": if i % 2 == 0 { huge } else { format!("nobody{i}") }, "password": "wrong-password"});
            // Small logins get a client of their own: a pooled connection that the
            // server just closed under a 2 MB body must not be reused for them.
            let http = if i % 2 == 0 { api.http.clone() } else { reqwest::Client::new() };
            let sent = http.post(api.url("/auth/login")).json(&body).send().await;
            // A 2 MB body meets the 16 KiB cap of the auth routes: 413 as soon as the
            // headers arrive, and the connection closes under a client still writing.
            match sent {
                Ok(res) => Some(res.status().as_u16()),
                Err(e) if i % 2 == 0 && (e.is_request() || e.is_body()) => None,
                Err(e) => panic!("login {i}: {e}"),
            }
        }));
    }
    for c in calls {
        if let Some(status) = c.await.unwrap() {
            assert!(
                [400, 401, 413, 429, 503].contains(&status),
                "login answered {status}"
            );
        }
    }
    let fid = api.deploy_sample(&token, "c-hello.wasm").await;
    // Cut submits, then large inputs and outputs, then a listing of them.
    let addr = base.trim_start_matches("http://").to_string();
    let body = json!({"function_id": fid, "input": {}}).to_string();
    let cutter = {
        let (addr, token) = (addr.clone(), token.clone());
        std::thread::spawn(move || {
            for i in 0..200u64 {
                cut_submit(&addr, &token, &body, Duration::from_micros(i * 13 % 1500));
            }
        })
    };
    let pad = json!({"direct_inputs": {"pad": "p".repeat(1_000_000)}});
    let mut ids = Vec::new();
    for _ in 0..30 {
        ids.push(api.submit(&token, &fid, pad.clone()).await);
    }
    cutter.join().unwrap();
    wait_all_final(&api, &token, Duration::from_secs(120)).await;
    for _ in 0..5 {
        api.get(&token, "/api/executions?limit=200")
            .await
            .expect(200);
    }
    for id in ids.iter().take(5) {
        api.get(&token, &format!("/api/executions/{id}"))
            .await
            .expect(200);
    }
    let peak = peak_rss_mib(pid);
    eprintln!("faas serve RSS: {idle:.1} MiB idle, {peak:.1} MiB peak under hostile load");
    let _ = child.kill();
    let _ = child.wait();
    assert!(peak < 100.0, "peak RSS {peak:.1} MiB");
}
