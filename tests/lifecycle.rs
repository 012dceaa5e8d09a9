//! Function lifecycle (issue 12) through the real server on both backends:
//! versions (a second one changes what `latest` runs), aliases (pin, move,
//! roll back), the version an execution records, per-version env, retry of a
//! final execution (same version after the alias moved), and the hostile inputs
//! of every route.

#[path = "support/harness.rs"]
mod harness;
#[path = "../runtime/tests/support/nats_server.rs"]
mod nats_server;

use std::time::Duration;

use harness::{Reply, TestApp, sample};
use nats_server::NatsServer;
use reqwest::multipart::{Form, Part};
use serde_json::{Value, json};

/// A platform on the embedded backend, or on NATS when `nats` is given.
async fn start(nats: Option<&NatsServer>) -> TestApp {
    TestApp::start_on(nats.map(NatsServer::url).as_deref(), &[]).await
}

/// Posts a new wasm version of `fid` with extra form fields.
async fn new_version(
    app: &TestApp,
    token: &str,
    fid: &str,
    file: &str,
    extra: &[(&str, &str)],
) -> Reply {
    let mut form = Form::new().part("module", Part::bytes(sample(file)).file_name("fn.wasm"));
    for (k, v) in extra {
        form = form.text(k.to_string(), v.to_string());
    }
    let req = app
        .api
        .http
        .post(app.api.url(&format!("/api/functions/{fid}/versions")))
        .bearer_auth(token)
        .multipart(form);
    app.api.send(req).await
}

/// Submits `body` (with `function_id`) and waits for the final record.
async fn run(app: &TestApp, token: &str, fid: &str, mut body: Value) -> Value {
    body["function_id"] = json!(fid);
    let e = app
        .api
        .post(token, "/api/executions", body)
        .await
        .expect(202);
    let id = e["id"].as_str().unwrap();
    let done = app.api.wait(token, id, Duration::from_secs(60)).await;
    assert_eq!(done["status"], "completed", "{done}");
    done
}

/// True when the record ran c-hello (version 1 in these tests).
fn ran_hello(e: &Value) -> bool {
    e["result"]["hello"] == "world"
}

/// The env var names rust-read-secret saw (version 2 in these tests).
fn env_keys(e: &Value) -> Vec<String> {
    e["result"]["env_keys"]
        .as_array()
        .unwrap_or_else(|| panic!("not rust-read-secret's output: {e}"))
        .iter()
        .map(|k| k.as_str().unwrap().to_string())
        .collect()
}

async fn put_alias(app: &TestApp, token: &str, fid: &str, alias: &str, version: u64) {
    let path = format!("/api/functions/{fid}/aliases/{alias}");
    let got = app
        .api
        .put(token, &path, json!({"version": version}))
        .await
        .expect(200);
    assert_eq!(got, json!({"name": alias, "version": version}));
}

async fn versions_and_aliases(nats: Option<&NatsServer>) {
    let app = start(nats).await;
    let (token, _) = app.api.user("shipper").await;
    let fid = app.api.deploy_sample(&token, "c-hello.wasm").await;
    let f = app
        .api
        .get(&token, &format!("/api/functions/{fid}"))
        .await
        .expect(200);
    assert_eq!(
        (&f["latest_version"], &f["versions"]),
        (&json!(1), &json!([1]))
    );
    let first = run(&app, &token, &fid, json!({})).await;
    assert!(ran_hello(&first), "{first}");
    assert_eq!(first["function_version"], 1);

    // A second version with env becomes latest.
    let env = r#"{"greeting":"bonjour"}"#;
    let v2 = new_version(&app, &token, &fid, "rust-read-secret.wasm", &[("env", env)])
        .await
        .expect(201);
    assert_eq!(v2["version"], 2);
    assert_eq!(v2["aliases"], json!(["latest"]));
    assert_eq!(
        v2["env"],
        json!({"greeting": "bonjour"}),
        "env in the clear"
    );
    let latest = run(&app, &token, &fid, json!({})).await;
    assert_eq!(latest["function_version"], 2);
    assert!(
        env_keys(&latest).contains(&"GREETING".to_string()),
        "{latest}"
    );

    // An alias pins version 1; moving it rolls forward and back.
    put_alias(&app, &token, &fid, "stable", 1).await;
    let pinned = run(&app, &token, &fid, json!({"alias": "stable"})).await;
    assert!(
        ran_hello(&pinned) && pinned["function_version"] == 1,
        "{pinned}"
    );
    put_alias(&app, &token, &fid, "stable", 2).await;
    let moved = run(&app, &token, &fid, json!({"alias": "stable"})).await;
    assert_eq!(moved["function_version"], 2);
    put_alias(&app, &token, &fid, "stable", 1).await;
    let back = run(&app, &token, &fid, json!({"alias": "stable"})).await;
    assert!(ran_hello(&back), "rolled back: {back}");
    let by_number = run(&app, &token, &fid, json!({"version": 2})).await;
    assert_eq!(by_number["function_version"], 2);

    // Invoke takes the same choice.
    let invoked = app
        .api
        .post(
            &token,
            &format!("/api/functions/{fid}/invoke"),
            json!({"alias": "stable"}),
        )
        .await
        .expect(200);
    assert!(ran_hello(&invoked) && invoked["function_version"] == 1);
    let invoked = app
        .api
        .post(
            &token,
            &format!("/api/functions/{fid}/invoke"),
            json!({"version": 2}),
        )
        .await
        .expect(200);
    assert_eq!(invoked["function_version"], 2);

    // Aliased versions stay: `stable` holds 1, `latest` holds 2.
    for n in [1, 2] {
        app.api
            .delete(&token, &format!("/api/functions/{fid}/versions/{n}"))
            .await
            .expect_error(409, "conflict");
    }
    let listed = app
        .api
        .get(&token, &format!("/api/functions/{fid}/versions"))
        .await
        .expect(200);
    let aliases: Vec<&Value> = listed["versions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| &v["aliases"])
        .collect();
    assert_eq!(aliases, [&json!(["stable"]), &json!(["latest"])]);
    let all = app
        .api
        .get(&token, &format!("/api/functions/{fid}/aliases"))
        .await
        .expect(200);
    assert_eq!(
        all["aliases"],
        json!([{"name": "latest", "version": 2}, {"name": "stable", "version": 1}])
    );
    let f = app
        .api
        .get(&token, &format!("/api/functions/{fid}"))
        .await
        .expect(200);
    assert_eq!(f["latest_version"], 2);
    assert_eq!(f["aliases"], json!({"stable": 1}));

    // Retry runs the version the original ran, though the alias moved since.
    put_alias(&app, &token, &fid, "stable", 2).await;
    let retried = app
        .api
        .post(
            &token,
            &format!("/api/executions/{}/retry", back["id"].as_str().unwrap()),
            json!({}),
        )
        .await
        .expect(202);
    assert_eq!(retried["retry_of"], back["id"]);
    let done = app
        .api
        .wait(
            &token,
            retried["id"].as_str().unwrap(),
            Duration::from_secs(60),
        )
        .await;
    assert!(ran_hello(&done) && done["function_version"] == 1, "{done}");
    assert_eq!(done["input"], back["input"]);

    // Version 1 is free now: it goes, and nothing can run it any more.
    app.api
        .delete(&token, &format!("/api/functions/{fid}/versions/1"))
        .await
        .expect(204);
    app.api
        .post(
            &token,
            "/api/executions",
            json!({"function_id": fid, "version": 1}),
        )
        .await
        .expect_error(404, "not_found");
    app.api
        .post(
            &token,
            &format!("/api/executions/{}/retry", back["id"].as_str().unwrap()),
            json!({}),
        )
        .await
        .expect_error(404, "not_found");
    let v3 = new_version(&app, &token, &fid, "c-hello.wasm", &[])
        .await
        .expect(201);
    assert_eq!(v3["version"], 3, "numbers are never reused");
    assert!(ran_hello(&run(&app, &token, &fid, json!({})).await));

    // Deleting the function deletes its versions and aliases.
    app.api
        .delete(&token, &format!("/api/functions/{fid}"))
        .await
        .expect(204);
    app.api
        .get(&token, &format!("/api/functions/{fid}/versions"))
        .await
        .expect_error(404, "not_found");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn embedded_versions_aliases_env_and_retry() {
    versions_and_aliases(None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn nats_versions_aliases_env_and_retry() {
    let nats = NatsServer::start();
    versions_and_aliases(Some(&nats)).await;
}

/// Malformed numbers and names are 400, missing versions and aliases 404,
/// another user's function 404, a retry of a running execution 409.
async fn hostile(nats: Option<&NatsServer>) {
    let app = start(nats).await;
    let (token, _) = app.api.user("owner").await;
    let (other, _) = app.api.user("intruder").await;
    let fid = app.api.deploy_sample(&token, "c-hello.wasm").await;
    let base = format!("/api/functions/{fid}");
    for bad in ["0", "abc", "-1", "1.5", "+1", "00x"] {
        app.api
            .get(&token, &format!("{base}/versions/{bad}"))
            .await
            .expect_error(400, "invalid_version");
        app.api
            .delete(&token, &format!("{base}/versions/{bad}"))
            .await
            .expect_error(400, "invalid_version");
    }
    for missing in ["7", "99999999999999999999999"] {
        app.api
            .get(&token, &format!("{base}/versions/{missing}"))
            .await
            .expect_error(404, "not_found");
    }
    app.api
        .put(
            &token,
            &format!("{base}/aliases/latest"),
            json!({"version": 1}),
        )
        .await
        .expect_error(400, "invalid_alias");
    app.api
        .delete(&token, &format!("{base}/aliases/latest"))
        .await
        .expect_error(400, "invalid_alias");
    app.api
        .put(
            &token,
            &format!("{base}/aliases/.hidden"),
            json!({"version": 1}),
        )
        .await
        .expect_error(400, "invalid_alias");
    app.api
        .put(
            &token,
            &format!("{base}/aliases/prod"),
            json!({"version": 9}),
        )
        .await
        .expect_error(404, "not_found");
    app.api
        .put(
            &token,
            &format!("{base}/aliases/prod"),
            json!({"version": 0}),
        )
        .await
        .expect_error(400, "invalid_version");
    app.api
        .put(
            &token,
            &format!("{base}/aliases/prod"),
            json!({"version": "1"}),
        )
        .await
        .expect_error(400, "malformed_json");
    app.api
        .get(&token, &format!("{base}/aliases/prod"))
        .await
        .expect_error(404, "not_found");
    app.api
        .delete(&token, &format!("{base}/aliases/prod"))
        .await
        .expect_error(404, "not_found");
    let submit = |body: Value| {
        let mut body = body;
        body["function_id"] = json!(fid);
        app.api.post(&token, "/api/executions", body)
    };
    submit(json!({"version": 1, "alias": "latest"}))
        .await
        .expect_error(400, "invalid_version");
    submit(json!({"version": 0}))
        .await
        .expect_error(400, "invalid_version");
    submit(json!({"version": 2}))
        .await
        .expect_error(404, "not_found");
    submit(json!({"alias": "nope"}))
        .await
        .expect_error(404, "not_found");
    submit(json!({"version": -1}))
        .await
        .expect_error(400, "malformed_json");

    // Env is checked like secrets' names, with bounded values.
    let long = json!({"a": "x".repeat(4097)}).to_string();
    for env in [
        r#"{"FAAS_X":"1"}"#,
        r#"{"bad name":"1"}"#,
        "not json",
        &long,
    ] {
        let r = new_version(&app, &token, &fid, "c-hello.wasm", &[("env", env)]).await;
        assert_eq!(r.status, 400, "{env}: {}", r.body);
    }
    let image = json!({"image_url": "alpine:3", "env": {"a": 1}});
    app.api
        .post(&token, &format!("{base}/versions"), image)
        .await
        .expect_error(400, "malformed_json");
    new_version(&app, &token, &fid, "c-hello.wasm", &[("module_bad", "x")])
        .await
        .expect_error(400, "invalid_field");
    let garbage = app
        .api
        .http
        .post(app.api.url(&format!("{base}/versions")))
        .bearer_auth(&token)
        .multipart(Form::new().part("module", Part::bytes(b"not wasm".to_vec())));
    app.api
        .send(garbage)
        .await
        .expect_error(400, "invalid_module");

    // Another user's function does not exist for them.
    app.api
        .get(&other, &format!("{base}/versions"))
        .await
        .expect_error(404, "not_found");
    new_version(&app, &other, &fid, "c-hello.wasm", &[])
        .await
        .expect_error(404, "not_found");
    app.api
        .put(
            &other,
            &format!("{base}/aliases/prod"),
            json!({"version": 1}),
        )
        .await
        .expect_error(404, "not_found");
    app.api
        .delete(&other, &format!("{base}/versions/1"))
        .await
        .expect_error(404, "not_found");
    let mine = app.api.run(&token, &fid, json!({})).await;
    let retry = format!("/api/executions/{}/retry", mine["id"].as_str().unwrap());
    app.api
        .post(&other, &retry, json!({}))
        .await
        .expect_error(404, "not_found");
    app.api
        .post("not-a-token", &retry, json!({}))
        .await
        .expect_error(401, "unauthorized");

    // A retry waits for the end.
    let spin = app.api.deploy_sample(&token, "c-spin.wasm").await;
    let running = app
        .api
        .submit(&token, &spin, json!({"direct_inputs": {"ms": 5000}}))
        .await;
    app.api
        .post(
            &token,
            &format!("/api/executions/{running}/retry"),
            json!({}),
        )
        .await
        .expect_error(409, "conflict");
    app.api
        .post(
            &token,
            &format!("/api/executions/{running}/cancel"),
            json!({}),
        )
        .await
        .expect(200);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn embedded_lifecycle_refuses_hostile_inputs() {
    hostile(None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn nats_lifecycle_refuses_hostile_inputs() {
    let nats = NatsServer::start();
    hostile(Some(&nats)).await;
}

/// Submits `body` with `Idempotency-Key: key`.
async fn submit_keyed(app: &TestApp, token: &str, key: &str, body: Value) -> Reply {
    let req = app.api.http.post(app.api.url("/api/executions"));
    let req = req.bearer_auth(token).header("idempotency-key", key);
    app.api.send(req.json(&body)).await
}

/// The version shows to the guest (queued and over `/fn`), an idempotency key
/// covers the version asked for, the versions list pages, a retry keeps the
/// original's callback.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn versions_reach_guests_keys_pages_and_retries() {
    let app = TestApp::start_on(None, &["--callback-allow-private=true"]).await;
    let (token, _) = app.api.user("pager").await;
    let fid = app.api.deploy_sample(&token, "c-hello.wasm").await;
    new_version(&app, &token, &fid, "rust-read-secret.wasm", &[])
        .await
        .expect(201);
    let queued = run(&app, &token, &fid, json!({})).await;
    assert!(env_keys(&queued).contains(&"FAAS_FUNCTION_VERSION".to_string()));

    // `/fn` runs latest (version 2) with the version in its env.
    let http = json!({"enabled": true, "access": "public"});
    let path = format!("/api/functions/{fid}/http");
    app.api.put(&token, &path, http).await.expect(200);
    let req = app.api.http.get(app.api.url("/fn/pager/c-hello"));
    let served = app.api.send(req).await.expect(200);
    assert!(env_keys(&json!({"result": served})).contains(&"FAAS_FUNCTION_VERSION".to_string()));

    // One key, one request: another version under the same key is refused.
    let body = json!({"function_id": fid, "version": 1});
    let first = submit_keyed(&app, &token, "k1", body.clone())
        .await
        .expect(202);
    let again = submit_keyed(&app, &token, "k1", body).await.expect(202);
    assert_eq!(first["id"], again["id"]);
    let other = json!({"function_id": fid, "version": 2});
    submit_keyed(&app, &token, "k1", other)
        .await
        .expect_error(422, "idempotency_mismatch");

    // A page at a time.
    let list = format!("/api/functions/{fid}/versions");
    let page = app
        .api
        .get(&token, &format!("{list}?limit=1"))
        .await
        .expect(200);
    assert_eq!(
        (
            page["versions"][0]["version"].clone(),
            page["next_cursor"].clone()
        ),
        (json!(1), json!("1"))
    );
    let page = app
        .api
        .get(&token, &format!("{list}?limit=1&cursor=1"))
        .await
        .expect(200);
    assert_eq!(page["versions"][0]["version"], 2);
    assert!(page.get("next_cursor").is_none(), "{page}");
    app.api
        .get(&token, &format!("{list}?cursor=x"))
        .await
        .expect_error(400, "invalid_query");

    // A retry is delivered where the original was.
    let hook = "http://127.0.0.1:9/hook";
    let body = json!({"version": 1, "callback_url": hook});
    let e = run(&app, &token, &fid, body).await;
    let retry = format!("/api/executions/{}/retry", e["id"].as_str().unwrap());
    let retried = app.api.post(&token, &retry, json!({})).await.expect(202);
    assert_eq!(retried["callback"]["url"], json!(hook), "{retried}");
    app.stop().await;
}
