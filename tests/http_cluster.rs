//! Functions as HTTP endpoints in the cluster (issue 13): real processes of the
//! real binary on a real nats-server. `faas api` (with FAAS_HTTP_ADDRESS: its own
//! functions-only listener too) and one `faas worker` with FAAS_HTTP_ADDRESS and no
//! JWT_SECRET. Through the worker's listener: a wasi:http component and a command
//! module answer as they do on the API's listener; public, key (401 without or with
//! a wrong or revoked key, 200 with one) and disabled (404) access; no route of the
//! API. And `faas serve` with FAAS_HTTP_ADDRESS in process: the same there.
//!
//! Needs `nats-server` on PATH (`make test-deps`).

#[path = "support/cluster.rs"]
mod cluster;
#[path = "support/harness.rs"]
mod harness;
#[path = "../runtime/tests/support/nats_server.rs"]
mod nats_server;

use std::time::Duration;

use cluster::{Cluster, Proc};
use harness::{Api, TestApp, sample};
use serde_json::{Value, json};

/// The log line of a functions' listener (`addr=` names the bound address).
const LISTENING: &str = "HTTP endpoints are listening";

/// The bound address of `p`'s functions listener, from its log.
fn functions_addr(p: &Proc) -> String {
    let line = cluster::wait_for_log(p, LISTENING, Duration::from_secs(60));
    assert!(
        !line.is_empty(),
        "faas {} logged no {LISTENING:?}:\n{}",
        p.role,
        p.log_text()
    );
    let addr = line.split("addr=").nth(1).expect("addr= field");
    format!("http://{}", addr.split_whitespace().next().unwrap())
}

/// `method path` on `base` with an optional bearer key and body: status and JSON
/// body (the text as a JSON string when it is not JSON).
async fn call(
    http: &reqwest::Client,
    base: &str,
    method: reqwest::Method,
    path: &str,
    key: Option<&str>,
    body: &str,
) -> (u16, Value) {
    let mut req = http.request(method, format!("{base}{path}"));
    if let Some(key) = key {
        req = req.bearer_auth(key);
    }
    let res = req.body(body.to_string()).send().await.expect("sent");
    let status = res.status().as_u16();
    let text = res.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

async fn get(http: &reqwest::Client, base: &str, path: &str, key: Option<&str>) -> (u16, Value) {
    call(http, base, reqwest::Method::GET, path, key, "").await
}

/// Deploys a sample (5 s timeout); returns its id.
async fn deploy(api: &Api, token: &str, name: &str, file: &str) -> String {
    let f = api
        .deploy(token, name, sample(file), &[("timeout_secs", "5")])
        .await
        .expect(201);
    f["id"].as_str().unwrap().to_string()
}

async fn set_http(api: &Api, token: &str, fid: &str, enabled: bool, access: &str) {
    let body = json!({"enabled": enabled, "access": access});
    let path = format!("/api/functions/{fid}/http");
    assert_eq!(api.put(token, &path, body.clone()).await.expect(200), body);
    propagated().await;
}

/// Waits out the documented bound (docs/http-functions.md): another process (the
/// worker) sees a change to a function's HTTP settings or keys within 0.5 s; the
/// process that took the change sees it at once.
async fn propagated() {
    tokio::time::sleep(std::time::Duration::from_millis(600)).await;
}

/// What a command module saw of a request (the adapter's INPUT), without what
/// differs by listener (the full URL's host, the forwarding peers).
fn seen(out: &Value) -> Value {
    let http = &out["input"]["http"];
    json!({
        "method": http["method"], "path": http["path"], "query": http["query"],
        "body": http["body"], "custom": http["headers"]["x-custom"],
        "function": http["headers"]["x-faas-function"],
        "authorization": http["headers"]["authorization"],
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_worker_serves_the_functions_endpoints_as_the_api_does_and_nothing_else() {
    let mut c = Cluster::start(0, &[("FAAS_HTTP_ADDRESS", "127.0.0.1:0")]);
    // The worker verifies no token: it starts without JWT_SECRET (empty is unset).
    let env = [("FAAS_HTTP_ADDRESS", "127.0.0.1:0"), ("JWT_SECRET", "")]
        .map(|(k, v)| (k.to_string(), v.to_string()));
    let log = c.logs_dir().join("worker-http.log");
    c.workers
        .push(cluster::spawn(&c.nats.url(), "worker", &log, &env));
    let worker = functions_addr(&c.workers[0]);
    let api_functions = functions_addr(&c.api);
    let api = Api::new(&c.base);
    let http = reqwest::Client::new();
    let bases = [c.base.as_str(), api_functions.as_str(), worker.as_str()];

    let (ann, _) = api.user("ann").await;
    let json_api = deploy(&api, &ann, "json-api", "rust-http-api.wasm").await;
    let hello = deploy(&api, &ann, "c-hello", "c-hello.wasm").await;
    let greet = "/fn/ann/json-api/greet?name=x";

    // Disabled by default: 404 everywhere.
    for base in bases {
        let (status, body) = get(&http, base, greet, None).await;
        assert_eq!(
            (status, &body["error"]),
            (404, &json!("not_found")),
            "{base}"
        );
    }

    // Public: the wasi:http component answers on the worker as on the API.
    set_http(&api, &ann, &json_api, true, "public").await;
    for base in bases {
        let (status, body) = get(&http, base, greet, None).await;
        assert_eq!(status, 200, "{base}: {body}");
        assert_eq!(body, json!({"greeting": "hello, x"}), "{base}");
        let (status, body) = get(&http, base, "/fn/ANN/Json-Api/nowhere", None).await;
        assert_eq!(
            (status, &body["error"]),
            (404, &json!("not_found")),
            "{base}"
        );
        assert_eq!(body["message"], "no route /nowhere", "the guest's own 404");
    }
    for base in bases {
        let (status, body) = call(
            &http,
            base,
            reqwest::Method::POST,
            "/fn/ann/json-api/sum",
            None,
            r#"{"numbers": [1, 2, 3.5]}"#,
        )
        .await;
        assert_eq!(
            (status, body),
            (200, json!({"sum": 6.5, "count": 3})),
            "{base}"
        );
    }

    // A command module through the adapter, run by the worker's own executor.
    set_http(&api, &ann, &hello, true, "public").await;
    let mut answers = Vec::new();
    for base in bases {
        let res = http
            .post(format!("{base}/fn/ann/c-hello/some/path?q=1"))
            .header("x-custom", "yes")
            .body("hi there")
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200, "{base}");
        assert_eq!(res.headers()["content-type"], "application/json");
        answers.push(seen(&res.json().await.unwrap()));
    }
    let expected = json!({"method": "POST", "path": "/some/path", "query": "q=1",
        "body": "hi there", "custom": "yes", "function": "ann/c-hello", "authorization": null});
    assert_eq!(answers, vec![expected; 3], "the listeners agree");

    key_access(&api, &http, &ann, &json_api, &hello, &bases).await;

    // Disabled again: 404, as for another user's or an unknown function.
    set_http(&api, &ann, &json_api, false, "public").await;
    let (bob, _) = api.user("bob").await;
    let _ = deploy(&api, &bob, "private", "rust-http-api.wasm").await;
    for path in [greet, "/fn/bob/private/greet", "/fn/nobody/json-api/greet"] {
        for base in bases {
            let (status, body) = get(&http, base, path, None).await;
            assert_eq!(
                (status, &body["error"]),
                (404, &json!("not_found")),
                "{base}{path}"
            );
        }
    }

    no_api_on_functions_listeners(&http, &ann, &[&api_functions, &worker]).await;
    // The worker still runs queued executions (the API process runs none).
    let done = api.run(&ann, &hello, json!({"n": 1})).await;
    assert_eq!(done["status"], "completed", "{done}");
    c.assert_alive();
}

/// Key access on every listener: 401 without a key, with a wrong one and with a
/// revoked one; 200 with a valid one, which the guest never sees.
async fn key_access(
    api: &Api,
    http: &reqwest::Client,
    ann: &str,
    json_api: &str,
    hello: &str,
    bases: &[&str],
) {
    set_http(api, ann, json_api, true, "key").await;
    set_http(api, ann, hello, true, "key").await;
    let made = api
        .post(ann, &format!("/api/functions/{hello}/keys"), json!({}))
        .await
        .expect(201);
    let key = made["key"].as_str().unwrap().to_string();
    let other = api
        .post(ann, &format!("/api/functions/{json_api}/keys"), json!({}))
        .await
        .expect(201);
    let json_key = other["key"].as_str().unwrap();
    propagated().await;
    let greet = "/fn/ann/json-api/greet?name=k";
    for base in bases {
        for wrong in [None, Some("not-a-key"), Some(key.as_str())] {
            let (status, body) = get(http, base, greet, wrong).await;
            assert_eq!(
                (status, &body["error"]),
                (401, &json!("unauthorized")),
                "{base} {wrong:?}"
            );
        }
        let (status, body) = get(http, base, greet, Some(json_key)).await;
        assert_eq!(
            (status, body),
            (200, json!({"greeting": "hello, k"})),
            "{base}"
        );
        let (status, body) = get(http, base, "/fn/ann/c-hello", Some(&key)).await;
        assert_eq!(status, 200, "{base}: {body}");
        assert_eq!(
            seen(&body)["authorization"],
            Value::Null,
            "the key never reaches the guest"
        );
    }
    let id = made["id"].as_str().unwrap();
    api.delete(ann, &format!("/api/functions/{hello}/keys/{id}"))
        .await
        .expect(204);
    propagated().await;
    for base in bases {
        let (status, _) = get(http, base, "/fn/ann/c-hello", Some(&key)).await;
        assert_eq!(status, 401, "{base}: a revoked key");
    }
}

/// A functions listener serves `/healthz` and nothing of the API (404), even with
/// a valid token.
async fn no_api_on_functions_listeners(http: &reqwest::Client, token: &str, bases: &[&str]) {
    for base in bases {
        let (status, body) = get(http, base, "/healthz", None).await;
        assert_eq!((status, body), (200, json!({"status": "ok"})), "{base}");
        for path in [
            "/api/functions",
            "/api/me",
            "/api/openapi.json",
            "/readyz",
            "/metrics",
            "/",
        ] {
            let (status, body) = get(http, base, path, Some(token)).await;
            assert_eq!(
                (status, &body["error"]),
                (404, &json!("not_found")),
                "{base}{path}"
            );
        }
        let login = json!({"username": "ann", "password": "password123"}).to_string();
        for path in ["/auth/login", "/auth/register"] {
            let (status, _) = call(http, base, reqwest::Method::POST, path, None, &login).await;
            assert_eq!(status, 404, "{base}{path}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn faas_serve_with_an_http_address_serves_functions_there_too() {
    let app = TestApp::start(&["--http-addr=127.0.0.1:0"]).await;
    let platform = app.platform.as_ref().unwrap();
    let functions = format!("http://{}", platform.functions_addr.expect("bound"));
    assert_ne!(Some(platform.functions_addr.unwrap()), platform.addr);
    let (ann, _) = app.api.user("ann").await;
    let fid = deploy(&app.api, &ann, "json-api", "rust-http-api.wasm").await;
    set_http(&app.api, &ann, &fid, true, "public").await;
    let http = reqwest::Client::new();
    for base in [app.api.base.as_str(), functions.as_str()] {
        let (status, body) = get(&http, base, "/fn/ann/json-api/greet?name=s", None).await;
        assert_eq!(
            (status, body),
            (200, json!({"greeting": "hello, s"})),
            "{base}"
        );
    }
    no_api_on_functions_listeners(&http, &ann, &[&functions]).await;
    // The API's own listener keeps the whole API.
    app.api.get(&ann, "/api/me").await.expect(200);
    app.stop().await;
}
