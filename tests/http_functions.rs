//! Functions as HTTP endpoints (issue 13), through the real server: a wasi:http
//! component served per request (bodies streamed both ways, status, headers, path
//! and query kept), its failures (no response 500, spin 504 and the slot freed),
//! access (public, keys, disabled, other users), the adapter for command modules,
//! and the unhappy paths of the settings routes. Access is checked on both backends.

#[path = "support/harness.rs"]
mod harness;
#[path = "../runtime/tests/support/nats_server.rs"]
mod nats_server;

use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::StreamExt;
use harness::{TestApp, sample};
use nats_server::NatsServer;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

/// A platform on the embedded backend, or on NATS when `nats` is given.
async fn start(nats: Option<&NatsServer>, extra: &[&str]) -> TestApp {
    TestApp::start_on(nats.map(NatsServer::url).as_deref(), extra).await
}

/// Deploys a sample under `name` with a timeout; returns its id.
async fn deploy(app: &TestApp, token: &str, name: &str, file: &str, timeout: u64) -> String {
    let t = timeout.to_string();
    let f = app
        .api
        .deploy(token, name, sample(file), &[("timeout_secs", &t)])
        .await
        .expect(201);
    f["id"].as_str().unwrap().to_string()
}

/// Sets a function's HTTP settings.
async fn set_http(app: &TestApp, token: &str, fid: &str, enabled: bool, access: &str) {
    let body = json!({"enabled": enabled, "access": access});
    let got = app
        .api
        .put(token, &format!("/api/functions/{fid}/http"), body.clone())
        .await
        .expect(200);
    assert_eq!(got, body);
}

fn url(app: &TestApp, path: &str) -> String {
    app.api.url(path)
}

async fn text(res: reqwest::Response) -> (u16, reqwest::header::HeaderMap, String) {
    let status = res.status().as_u16();
    let headers = res.headers().clone();
    (status, headers, res.text().await.unwrap())
}

async fn get(app: &TestApp, path: &str) -> (u16, reqwest::header::HeaderMap, String) {
    text(app.api.http.get(url(app, path)).send().await.unwrap()).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_wasi_http_component_serves_get_and_keeps_status_headers_path_and_query() {
    let app = start(None, &[]).await;
    let (token, _) = app.api.user("ann").await;
    let fid = deploy(&app, &token, "http-hello", "rust-http-hello.wasm", 5).await;
    set_http(&app, &token, &fid, true, "public").await;

    let (status, headers, body) = get(&app, "/fn/ann/http-hello").await;
    assert_eq!(
        (status, body.as_str()),
        (200, "hello from a wasi:http component\n")
    );
    assert_eq!(headers["x-sample"], "http-hello");
    // Owner and function names in any letter case, as elsewhere in the API.
    let (status, _, _) = get(&app, "/fn/ANN/Http-Hello/").await;
    assert_eq!(status, 200);

    let (status, headers, body) = get(&app, "/fn/ann/http-hello/status/418").await;
    assert_eq!((status, body.as_str()), (418, "status 418\n"));
    assert_eq!(headers["x-status"], "418");

    let (status, headers, body) = get(&app, "/fn/ann/http-hello/info?x=1&y=two").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(headers["content-type"], "application/json");
    let info: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(info["method"], "GET");
    assert_eq!(info["path_with_query"], "/info?x=1&y=two");
    let h = &info["headers"];
    assert_eq!(h["x-faas-function"], "ann/http-hello");
    assert!(
        h["x-faas-full-url"]
            .as_str()
            .unwrap()
            .ends_with("/fn/ann/http-hello/info?x=1&y=two"),
        "{h}"
    );
    assert_eq!(h["x-forwarded-for"], "127.0.0.1");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_10_mb_body_is_streamed_both_ways() {
    let app = start(None, &[]).await;
    let (token, _) = app.api.user("ann").await;
    let fid = deploy(&app, &token, "http-hello", "rust-http-hello.wasm", 60).await;
    set_http(&app, &token, &fid, true, "public").await;

    const CHUNK: usize = 64 * 1024;
    const CHUNKS: usize = 160; // 10 MiB
    let chunk = |i: usize| Bytes::from(vec![(i % 251) as u8; CHUNK]);
    let mut sent = Sha256::new();
    for i in 0..CHUNKS {
        sent.update(chunk(i));
    }
    let body = futures::stream::iter((0..CHUNKS).map(move |i| Ok::<_, std::io::Error>(chunk(i))));
    let res = app
        .api
        .http
        .post(url(&app, "/fn/ann/http-hello/echo"))
        .header("content-type", "application/octet-stream")
        .body(reqwest::Body::wrap_stream(body))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["content-type"], "application/octet-stream");
    let (mut got, mut len) = (Sha256::new(), 0usize);
    let mut stream = res.bytes_stream();
    while let Some(part) = stream.next().await {
        let part = part.unwrap();
        len += part.len();
        got.update(&part);
    }
    assert_eq!(len, CHUNK * CHUNKS);
    assert_eq!(got.finalize(), sent.finalize());
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn no_response_is_500_and_a_spin_is_504_then_the_next_request_is_served() {
    let app = start(None, &["--http-max-concurrent-per-function=1"]).await;
    let (token, _) = app.api.user("ann").await;
    let fid = deploy(&app, &token, "http-hello", "rust-http-hello.wasm", 1).await;
    set_http(&app, &token, &fid, true, "public").await;

    let started = Instant::now();
    let (status, _, body) = get(&app, "/fn/ann/http-hello/no-response").await;
    assert_eq!(status, 500, "{body}");
    let err: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(err["error"], "function_failed");
    assert!(
        started.elapsed() < Duration::from_millis(900),
        "at once, not at the timeout"
    );

    // One slot per function: a request while the spin runs is refused at once.
    let spinning = {
        let (http, u) = (app.api.http.clone(), url(&app, "/fn/ann/http-hello/spin"));
        tokio::spawn(async move { http.get(u).send().await.unwrap() })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (status, headers, body) = get(&app, "/fn/ann/http-hello").await;
    assert_eq!(status, 429, "{body}");
    assert_eq!(headers["retry-after"], "1");

    let started = Instant::now();
    let (status, _, body) = text(spinning.await.unwrap()).await;
    assert_eq!(status, 504, "{body}");
    assert_eq!(
        serde_json::from_str::<Value>(&body).unwrap()["error"],
        "timed_out"
    );
    assert!(started.elapsed() < Duration::from_secs(3));
    let (status, _, body) = get(&app, "/fn/ann/http-hello").await;
    assert_eq!(status, 200, "the slot is free again: {body}");
    app.stop().await;
}

async fn access_public_key_disabled_and_other_users(nats: Option<&NatsServer>) {
    let app = start(nats, &[]).await;
    let (ann, _) = app.api.user("ann").await;
    let (bob, _) = app.api.user("bob").await;
    let fid = deploy(&app, &ann, "http-hello", "rust-http-hello.wasm", 5).await;
    let settings = format!("/api/functions/{fid}/http");
    let keys = format!("/api/functions/{fid}/keys");

    // Disabled by default: the same 404 as a function that does not exist.
    let got = app.api.get(&ann, &settings).await.expect(200);
    assert_eq!(got, json!({"enabled": false, "access": "key"}));
    let (status, _, disabled) = get(&app, "/fn/ann/http-hello").await;
    let (status2, _, unknown) = get(&app, "/fn/ann/nothing-here").await;
    assert_eq!((status, status2), (404, 404));
    assert_eq!(disabled, unknown);

    // Key access: 401 without a key or with a wrong one, 200 with one.
    set_http(&app, &ann, &fid, true, "key").await;
    let (status, _, body) = get(&app, "/fn/ann/http-hello").await;
    assert_eq!(status, 401, "{body}");
    assert_eq!(
        serde_json::from_str::<Value>(&body).unwrap()["error"],
        "unauthorized"
    );
    let made = app.api.post(&ann, &keys, json!({})).await.expect(201);
    let key = made["key"].as_str().unwrap().to_string();
    let key_id = made["id"].as_str().unwrap().to_string();
    assert!(key.starts_with(made["prefix"].as_str().unwrap()));
    let call = |k: &str| {
        app.api
            .http
            .get(url(&app, "/fn/ann/http-hello/info"))
            .bearer_auth(k)
            .send()
    };
    let (status, _, _) = text(call("fnk_wrong").await.unwrap()).await;
    assert_eq!(status, 401);
    let (status, _, body) = text(call(&key).await.unwrap()).await;
    assert_eq!(status, 200, "{body}");
    let info: Value = serde_json::from_str(&body).unwrap();
    assert!(
        info["headers"].get("authorization").is_none(),
        "the key never reaches the guest: {info}"
    );

    // Listed without the key itself; revoked: 401 again.
    let listed = app.api.get(&ann, &keys).await.expect(200);
    assert_eq!(listed["keys"].as_array().unwrap().len(), 1);
    assert_eq!(listed["keys"][0]["id"], key_id.as_str());
    assert!(!listed.to_string().contains(&key), "{listed}");
    app.api
        .delete(&ann, &format!("{keys}/{key_id}"))
        .await
        .expect(204);
    let (status, _, _) = text(call(&key).await.unwrap()).await;
    assert_eq!(status, 401);
    app.api
        .delete(&ann, &format!("{keys}/{key_id}"))
        .await
        .expect_error(404, "not_found");

    // Another user's function: its settings and keys are 404, as is a path under a
    // user who has no such function; public serves anyone.
    app.api
        .get(&bob, &settings)
        .await
        .expect_error(404, "not_found");
    app.api
        .put(
            &bob,
            &settings,
            json!({"enabled": true, "access": "public"}),
        )
        .await
        .expect_error(404, "not_found");
    app.api
        .post(&bob, &keys, json!({}))
        .await
        .expect_error(404, "not_found");
    let (status, _, _) = get(&app, "/fn/bob/http-hello").await;
    assert_eq!(status, 404);
    set_http(&app, &ann, &fid, true, "public").await;
    let (status, _, _) = get(&app, "/fn/ann/http-hello").await;
    assert_eq!(status, 200);

    // Disabled again: 404; deleted: its settings go with it (a new function of the
    // same name starts disabled).
    set_http(&app, &ann, &fid, false, "public").await;
    let (status, _, body) = get(&app, "/fn/ann/http-hello").await;
    assert_eq!((status, body), (404, unknown.clone()));
    set_http(&app, &ann, &fid, true, "public").await;
    app.api
        .delete(&ann, &format!("/api/functions/{fid}"))
        .await
        .expect(204);
    let again = deploy(&app, &ann, "http-hello", "rust-http-hello.wasm", 5).await;
    let got = app
        .api
        .get(&ann, &format!("/api/functions/{again}/http"))
        .await
        .expect(200);
    assert_eq!(got["enabled"], false);
    let (status, _, _) = get(&app, "/fn/ann/http-hello").await;
    assert_eq!(status, 404);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn access_public_key_disabled_and_other_users_embedded() {
    access_public_key_disabled_and_other_users(None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn access_public_key_disabled_and_other_users_nats() {
    let nats = NatsServer::start();
    access_public_key_disabled_and_other_users(Some(&nats)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_command_module_answers_through_the_adapter() {
    let app = start(None, &[]).await;
    let (token, _) = app.api.user("ann").await;
    let fid = deploy(&app, &token, "c-hello", "c-hello.wasm", 5).await;
    set_http(&app, &token, &fid, true, "public").await;
    let res = app
        .api
        .http
        .post(url(&app, "/fn/ann/c-hello/some/path?q=1"))
        .header("x-custom", "yes")
        .body("hi there")
        .send()
        .await
        .unwrap();
    let (status, headers, body) = text(res).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(headers["content-type"], "application/json");
    let out: Value = serde_json::from_str(&body).unwrap();
    let http = &out["input"]["http"];
    assert_eq!(http["method"], "POST");
    assert_eq!(http["path"], "/some/path");
    assert_eq!(http["query"], "q=1");
    assert_eq!(http["body"], "hi there");
    assert_eq!(http["headers"]["x-custom"], "yes");
    assert_eq!(http["headers"]["x-faas-function"], "ann/c-hello");

    // A body that is not UTF-8 arrives as base64.
    let res = app
        .api
        .http
        .post(url(&app, "/fn/ann/c-hello"))
        .body(vec![0xffu8, 0x00, 0x01])
        .send()
        .await
        .unwrap();
    let (status, _, body) = text(res).await;
    assert_eq!(status, 200, "{body}");
    let out: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(out["input"]["http"]["body"], "/wAB");
    assert_eq!(out["input"]["http"]["body_base64"], true);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn unhappy_paths_of_the_endpoint_and_the_settings_routes() {
    let app = start(None, &["--http-max-body-bytes=1024"]).await;
    let (ann, _) = app.api.user("ann").await;
    let (bob, _) = app.api.user("bob").await;
    let fid = deploy(&app, &ann, "http-hello", "rust-http-hello.wasm", 5).await;
    let settings = format!("/api/functions/{fid}/http");
    set_http(&app, &ann, &fid, true, "public").await;

    // A body over the cap: 413, whether its length is declared or streamed. The server
    // answers before reading the body and closes that connection: a client of their
    // own, so that no later request reuses it from the shared pool.
    let oversize = reqwest::Client::new();
    let res = oversize
        .post(url(&app, "/fn/ann/http-hello/echo"))
        .body(vec![b'x'; 2048])
        .send()
        .await
        .unwrap();
    let (status, _, body) = text(res).await;
    assert_eq!(status, 413, "{body}");
    assert_eq!(
        serde_json::from_str::<Value>(&body).unwrap()["error"],
        "payload_too_large"
    );
    let c = deploy(&app, &ann, "c-hello", "c-hello.wasm", 5).await;
    set_http(&app, &ann, &c, true, "public").await;
    let chunks = futures::stream::iter((0..4).map(|_| Ok::<_, std::io::Error>(vec![b'x'; 512])));
    let res = oversize
        .post(url(&app, "/fn/ann/c-hello"))
        .body(reqwest::Body::wrap_stream(chunks))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 413);

    // Malformed settings: 400; a bad token: 401; another owner: 404.
    for bad in [
        json!({"enabled": "yes"}),
        json!({"enabled": true, "access": "everyone"}),
        json!({"enabled": true, "extra": 1}),
        json!({}),
    ] {
        let r = app.api.put(&ann, &settings, bad.clone()).await;
        assert_eq!(r.status, 400, "{bad}: {}", r.body);
    }
    app.api
        .put(
            &ann,
            &settings,
            json!({"enabled": true, "access": "public"}),
        )
        .await
        .expect(200);
    for (method, path) in [
        ("GET", settings.clone()),
        ("PUT", settings.clone()),
        ("GET", format!("/api/functions/{fid}/keys")),
        ("POST", format!("/api/functions/{fid}/keys")),
        ("DELETE", format!("/api/functions/{fid}/keys/x")),
    ] {
        let req = app
            .api
            .http
            .request(method.parse().unwrap(), url(&app, &path))
            .bearer_auth("not-a-token")
            .json(&json!({"enabled": true}));
        let r = app.api.send(req).await;
        assert_eq!(r.status, 401, "{method} {path}: {}", r.body);
    }
    app.api
        .delete(&bob, &format!("/api/functions/{fid}/keys/some-key"))
        .await
        .expect_error(404, "not_found");
    app.api
        .delete(&ann, &format!("/api/functions/{fid}/keys/a.b*"))
        .await
        .expect_error(404, "not_found");
    app.stop().await;
}
