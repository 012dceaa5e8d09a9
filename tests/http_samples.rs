//! The HTTP samples (issue 13) through `/fn/{user}/{name}/...` on a real `faas serve`:
//! the JSON API in Python (componentize-py) and JavaScript (componentize-js), both
//! `wasi:http/proxy` components built by `samples/build.sh large`, answer GET and POST
//! with status, content type and JSON, and every request meets a fresh instance. The
//! per-request latency of each language, the Rust sample's included, is printed (p50 of
//! 20 sequential requests on one connection) for comparison.

#[path = "support/harness.rs"]
mod harness;

use std::time::Instant;

use harness::{TestApp, root, sample};
use serde_json::{Value, json};

/// Requests timed per language.
const TIMED: usize = 20;

/// A component built by `samples/build.sh large` (not committed: too large).
fn built(name: &str) -> Vec<u8> {
    let path = root().join("samples/build").join(name);
    std::fs::read(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e} (run `samples/build.sh large`; `make test` does)",
            path.display()
        )
    })
}

/// Deploys `module` as `name`, serves it publicly, and returns its `/fn/...` prefix.
async fn serve(app: &TestApp, token: &str, user: &str, name: &str, module: Vec<u8>) -> String {
    let t0 = Instant::now();
    let f = app.api.deploy(token, name, module, &[]).await.expect(201);
    eprintln!("deploy (validate + compile) {name}: {:?}", t0.elapsed());
    let fid = f["id"].as_str().unwrap();
    let body = json!({"enabled": true, "access": "public"});
    let got = app
        .api
        .put(token, &format!("/api/functions/{fid}/http"), body.clone())
        .await
        .expect(200);
    assert_eq!(got, body);
    format!("/fn/{user}/{name}")
}

/// Sends `req`; returns the status and the body as JSON, asserting a JSON content type.
async fn call(req: reqwest::RequestBuilder) -> (u16, Value) {
    let res = req.send().await.expect("request sent");
    let status = res.status().as_u16();
    let kind = res.headers().get("content-type").cloned();
    let text = res.text().await.unwrap();
    assert_eq!(
        kind.as_ref().and_then(|v| v.to_str().ok()),
        Some("application/json"),
        "status {status}: {text}"
    );
    let body = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"));
    (status, body)
}

/// The JSON API's contract, as the Python and JS samples implement it.
async fn check_api(app: &TestApp, prefix: &str, lang: &str) {
    let http = &app.api.http;
    let get = |path: &str| http.get(app.api.url(&format!("{prefix}{path}")));
    let post = |path: &str| http.post(app.api.url(&format!("{prefix}{path}")));

    let (status, body) = call(get("/greet?name=Ada%20L")).await;
    assert_eq!(status, 200, "{lang}: {body}");
    assert_eq!(body, json!({"greeting": "hello, Ada L", "lang": lang}));
    let (_, body) = call(get("/greet")).await;
    assert_eq!(body["greeting"], "hello, world", "{lang}: {body}");

    let numbers = json!({"numbers": [1, 2, 3.5]});
    let (status, body) = call(post("/sum").json(&numbers)).await;
    assert_eq!(status, 200, "{lang}: {body}");
    assert_eq!(body, json!({"sum": 6.5, "count": 3, "lang": lang}));

    for bad in [
        &b"{not json"[..],
        br#"{"numbers": [1, "two"]}"#,
        br#"{"n": 1}"#,
    ] {
        let (status, body) = call(post("/sum").body(bad.to_vec())).await;
        assert_eq!(
            (status, &body["error"]),
            (400, &json!("bad_request")),
            "{lang}: {body}"
        );
    }
    let (status, body) = call(get("/nowhere")).await;
    assert_eq!(
        (status, &body["error"]),
        (404, &json!("not_found")),
        "{lang}: {body}"
    );
    let (status, body) = call(get("/sum")).await;
    assert_eq!(status, 404, "{lang}: GET /sum is no route: {body}");

    // Module state does not outlive a request: each one meets a fresh instance.
    for _ in 0..3 {
        let (status, body) = call(get("/")).await;
        assert_eq!(status, 200, "{lang}: {body}");
        assert_eq!(
            body["requests_served"], 1,
            "{lang}: a fresh instance: {body}"
        );
        assert_eq!(body["lang"], lang);
    }
}

/// Times `TIMED` sequential GETs of `path` (after one untimed) and prints the p50.
async fn latency(app: &TestApp, url_path: &str, lang: &str) {
    let url = app.api.url(url_path);
    let first = Instant::now();
    let res = app.api.http.get(&url).send().await.unwrap();
    assert_eq!(res.status(), 200, "{lang}");
    let first = first.elapsed();
    let mut took = Vec::with_capacity(TIMED);
    for _ in 0..TIMED {
        let t0 = Instant::now();
        let res = app.api.http.get(&url).send().await.unwrap();
        assert_eq!(res.status(), 200, "{lang}");
        res.bytes().await.unwrap();
        took.push(t0.elapsed());
    }
    took.sort();
    let p50 = took[TIMED / 2];
    eprintln!(
        "{lang} http-api GET {url_path}: first {first:?}, p50 {p50:?}, min {:?}, max {:?} ({TIMED} requests)",
        took[0],
        took[TIMED - 1]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_python_json_api_answers_get_and_post_on_a_fresh_instance_each_time() {
    let app = TestApp::start(&[]).await;
    let (token, _) = app.api.user("ada").await;
    let prefix = serve(&app, &token, "ada", "py-api", built("python-http-api.wasm")).await;
    check_api(&app, &prefix, "python").await;
    latency(&app, &format!("{prefix}/greet?name=x"), "python").await;
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_js_json_api_answers_get_and_post_on_a_fresh_instance_each_time() {
    let app = TestApp::start(&[]).await;
    let (token, _) = app.api.user("bob").await;
    let prefix = serve(&app, &token, "bob", "js-api", built("js-http-api.wasm")).await;
    check_api(&app, &prefix, "js").await;
    latency(&app, &format!("{prefix}/greet?name=x"), "js").await;
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_rust_json_api_answers_for_comparison() {
    let app = TestApp::start(&[]).await;
    let (token, _) = app.api.user("cyd").await;
    let prefix = serve(&app, &token, "cyd", "rs-api", sample("rust-http-api.wasm")).await;
    let (status, body) = call(
        app.api
            .http
            .get(app.api.url(&format!("{prefix}/greet?name=x"))),
    )
    .await;
    assert_eq!((status, body), (200, json!({"greeting": "hello, x"})));
    let url = app.api.url(&format!("{prefix}/sum"));
    let (status, body) = call(app.api.http.post(url).json(&json!({"numbers": [1, 2]}))).await;
    assert_eq!((status, body), (200, json!({"sum": 3.0, "count": 2})));
    latency(&app, &format!("{prefix}/greet?name=x"), "rust").await;
    app.stop().await;
}
