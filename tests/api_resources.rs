//! Functions, executions, objects and secrets through the real HTTP server, with
//! their unhappy paths and a two-user isolation matrix.

#[path = "support/harness.rs"]
mod harness;

use harness::{TestApp, sample};
use serde_json::json;

#[tokio::test]
async fn functions_deploy_list_get_delete() {
    let app = TestApp::start(&["--max-module-bytes=400000"]).await;
    let api = &app.api;
    let (t, _) = api.user("ada").await;
    let f = api
        .deploy(
            &t,
            "hello",
            sample("rust-hello.wasm"),
            &[
                ("description", "says hello"),
                ("timeout_secs", "10"),
                ("memory_mb", "64"),
            ],
        )
        .await
        .expect(201);
    assert_eq!(
        (
            f["runtime"].as_str(),
            f["timeout_secs"].as_u64(),
            f["memory_mb"].as_u64()
        ),
        (Some("wasm"), Some(10), Some(64))
    );
    assert_eq!(f["module_sha256"].as_str().unwrap().len(), 64);
    let id = f["id"].as_str().unwrap();
    let bad = api
        .deploy(&t, "bad", b"\0asm\x01\0\0\0garbage".to_vec(), &[])
        .await;
    bad.expect_error(400, "invalid_module");
    api.deploy(&t, "bad", b"not wasm at all".to_vec(), &[])
        .await
        .expect_error(400, "invalid_module");
    api.deploy(&t, "big", vec![0u8; 500_000], &[])
        .await
        .expect_error(413, "payload_too_large");
    api.deploy(&t, "bad name!", sample("c-hello.wasm"), &[])
        .await
        .expect_error(400, "invalid_request");
    api.deploy(
        &t,
        "slow",
        sample("c-hello.wasm"),
        &[("timeout_secs", "100000")],
    )
    .await
    .expect_error(400, "invalid_timeout");
    api.deploy(&t, "x", sample("c-hello.wasm"), &[("timeout_secs", "ten")])
        .await
        .expect_error(400, "invalid_field");
    let form = reqwest::multipart::Form::new().text("name", "nomodule");
    api.send(
        api.http
            .post(api.url("/api/functions"))
            .bearer_auth(&t)
            .multipart(form),
    )
    .await
    .expect_error(400, "missing_field");
    // No Docker engine here: an image function could never run.
    api.post(
        &t,
        "/api/functions",
        json!({"name": "img", "image_url": "registry.local/team/fn:1.0"}),
    )
    .await
    .expect_error(400, "runtime_unavailable");
    let img = api
        .deploy(&t, "img", sample("c-hello.wasm"), &[])
        .await
        .expect(201);
    api.post(
        &t,
        "/api/functions",
        json!({"name": "img", "image_url": "bad image ref"}),
    )
    .await
    .expect_error(400, "invalid_image");
    let list = api.get(&t, "/api/functions").await.expect(200);
    let ids: Vec<&str> = list["functions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, vec![img["id"].as_str().unwrap(), id], "newest first");
    let one = api.get(&t, "/api/functions?limit=1").await.expect(200);
    assert_eq!(one["functions"].as_array().unwrap().len(), 1);
    let next = api
        .get(
            &t,
            &format!(
                "/api/functions?limit=1&cursor={}",
                one["next_cursor"].as_str().unwrap()
            ),
        )
        .await
        .expect(200);
    assert_eq!(next["functions"][0]["id"], id);
    assert_eq!(
        api.get(&t, &format!("/api/functions/{id}"))
            .await
            .expect(200)["name"],
        "hello"
    );
    api.delete(&t, &format!("/api/functions/{id}"))
        .await
        .expect(204);
    api.get(&t, &format!("/api/functions/{id}"))
        .await
        .expect_error(404, "not_found");
    api.delete(&t, &format!("/api/functions/{id}"))
        .await
        .expect_error(404, "not_found");
    app.stop().await;
}

#[tokio::test]
async fn executions_run_a_wasm_function_end_to_end() {
    let app = TestApp::start(&[]).await;
    let api = &app.api;
    let (t, _) = api.user("ada").await;
    let hello = api.deploy_sample(&t, "rust-hello.wasm").await;
    let done = api
        .run(&t, &hello, json!({"direct_inputs": {"name": "Ada"}}))
        .await;
    assert_eq!(done["status"], "completed", "{done}");
    assert_eq!(done["result"]["hello"], "Ada");
    assert_eq!(done["exit_code"], 0);
    assert_eq!(done["attempt"], 1);
    for field in [
        "id",
        "function_id",
        "input",
        "output",
        "logs",
        "created_at",
        "started_at",
        "completed_at",
        "duration_ms",
    ] {
        assert!(!done[field].is_null(), "{field} is set: {done}");
    }
    let as_string = api
        .run(&t, &hello, json!("{\"direct_inputs\":{\"name\":\"Str\"}}"))
        .await;
    assert_eq!(as_string["result"]["hello"], "Str");
    let c = api.deploy_sample(&t, "c-hello.wasm").await;
    assert_eq!(
        api.run(&t, &c, json!({"direct_inputs": {"name": "C"}}))
            .await["result"]["hello"],
        "C"
    );
    let post = |body| api.post(&t, "/api/executions", body);
    post(json!({"function_id": hello, "input": 42}))
        .await
        .expect_error(400, "invalid_input");
    post(json!({"function_id": hello, "input": "not json"}))
        .await
        .expect_error(400, "invalid_input");
    post(json!({"function_id": hello, "input": [1, 2]}))
        .await
        .expect_error(400, "invalid_input");
    let missing = post(json!({"function_id": hello, "input": {"secrets": ["db_password"]}}))
        .await
        .expect_error(400, "unknown_secret");
    assert!(
        missing["message"].as_str().unwrap().contains("db_password"),
        "{missing}"
    );
    post(json!({"function_id": "nope", "input": {}}))
        .await
        .expect_error(404, "not_found");
    post(json!({"input": {}}))
        .await
        .expect_error(400, "malformed_json");
    app.stop().await;
}

#[tokio::test]
async fn execution_listing_filters_paginates_and_cancels() {
    let app = TestApp::start(&["--max-concurrent=1"]).await;
    let api = &app.api;
    let (t, _) = api.user("ada").await;
    let hello = api.deploy_sample(&t, "rust-hello.wasm").await;
    let spin = api.deploy_sample(&t, "c-spin.wasm").await;
    let mut ids = Vec::new();
    for i in 0..3 {
        ids.push(
            api.submit(
                &t,
                &hello,
                json!({"direct_inputs": {"name": i.to_string()}}),
            )
            .await,
        );
    }
    for id in &ids {
        api.wait(&t, id, std::time::Duration::from_secs(30)).await;
    }
    let blocker = api
        .submit(&t, &spin, json!({"direct_inputs": {"ms": 3000}}))
        .await;
    let queued = api.submit(&t, &hello, json!({})).await;
    let cancelled = api
        .post(&t, &format!("/api/executions/{queued}/cancel"), json!({}))
        .await
        .expect(200);
    assert_eq!(cancelled["status"], "cancelled");
    api.post(&t, &format!("/api/executions/{queued}/cancel"), json!({}))
        .await
        .expect_error(409, "conflict");
    let by_fn = api
        .get(
            &t,
            &format!("/api/executions?function_id={hello}&status=completed"),
        )
        .await
        .expect(200);
    let got: Vec<&str> = by_fn["executions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        got,
        ids.iter().rev().map(String::as_str).collect::<Vec<_>>(),
        "filtered, newest first"
    );
    let p1 = api.get(&t, "/api/executions?limit=2").await.expect(200);
    assert_eq!(p1["executions"].as_array().unwrap().len(), 2);
    let p2 = api
        .get(
            &t,
            &format!(
                "/api/executions?limit=2&cursor={}",
                p1["next_cursor"].as_str().unwrap()
            ),
        )
        .await
        .expect(200);
    assert_eq!(p2["executions"].as_array().unwrap().len(), 2);
    api.get(&t, "/api/executions?status=weird")
        .await
        .expect_error(400, "invalid_query");
    api.get(&t, "/api/executions?limit=1000")
        .await
        .expect_error(400, "invalid_query");
    let final_cancelled = api
        .wait(&t, &queued, std::time::Duration::from_secs(30))
        .await;
    assert_eq!(
        final_cancelled["status"], "cancelled",
        "a cancelled execution stays cancelled"
    );
    assert_eq!(
        api.wait(&t, &blocker, std::time::Duration::from_secs(60))
            .await["status"],
        "completed"
    );
    app.stop().await;
}

#[tokio::test]
async fn objects_stream_up_and_down_with_limits() {
    let app = TestApp::start(&["--max-object-bytes=1000000"]).await;
    let api = &app.api;
    let (t, _) = api.user("ada").await;
    let f = api.deploy_sample(&t, "rust-read-object.wasm").await;
    let m = api
        .upload(
            &t,
            &f,
            "notes.txt",
            b"line one\nline two\n".to_vec(),
            "text/plain",
        )
        .await
        .expect(201);
    assert_eq!(
        (m["size"].as_u64(), m["content_type"].as_str()),
        (Some(18), Some("text/plain"))
    );
    let form = reqwest::multipart::Form::new().part(
        "file",
        reqwest::multipart::Part::bytes(vec![7u8; 5000])
            .file_name("blob.bin")
            .mime_str("application/x-blob")
            .unwrap(),
    );
    let r = api
        .send(
            api.http
                .post(api.url(&format!("/api/function-objects/{f}/blob.bin")))
                .bearer_auth(&t)
                .multipart(form),
        )
        .await
        .expect(201);
    assert_eq!(
        (r["size"].as_u64(), r["content_type"].as_str()),
        (Some(5000), Some("application/x-blob"))
    );
    let res = api
        .http
        .get(api.url(&format!("/api/function-objects/{f}/notes.txt")))
        .bearer_auth(&t)
        .send()
        .await
        .unwrap();
    assert_eq!(res.headers()["content-type"], "text/plain");
    assert_eq!(res.bytes().await.unwrap().as_ref(), b"line one\nline two\n");
    let list = api
        .get(&t, &format!("/api/function-objects/{f}"))
        .await
        .expect(200);
    let names: Vec<&str> = list["objects"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, vec!["blob.bin", "notes.txt"]);
    api.upload(
        &t,
        &f,
        "huge.bin",
        vec![0u8; 1_000_001],
        "application/octet-stream",
    )
    .await
    .expect_error(413, "payload_too_large");
    let chunks = futures::stream::iter(
        (0..40).map(|_| Ok::<_, std::io::Error>(bytes::Bytes::from(vec![1u8; 50_000]))),
    );
    let streamed = api
        .http
        .post(api.url(&format!("/api/function-objects/{f}/stream.bin")))
        .bearer_auth(&t)
        .body(reqwest::Body::wrap_stream(chunks));
    api.send(streamed)
        .await
        .expect_error(413, "payload_too_large");
    api.get(&t, &format!("/api/function-objects/{f}/stream.bin"))
        .await
        .expect_error(404, "not_found");
    api.upload(&t, &f, ".hidden", b"x".to_vec(), "text/plain")
        .await
        .expect_error(400, "invalid_request");
    api.delete(&t, &format!("/api/function-objects/{f}/blob.bin"))
        .await
        .expect(204);
    api.delete(&t, &format!("/api/function-objects/{f}/blob.bin"))
        .await
        .expect_error(404, "not_found");
    let run = api
        .run(
            &t,
            &f,
            json!({"object_inputs": {"doc": format!("{f}/notes.txt")}}),
        )
        .await;
    assert_eq!(run["status"], "completed", "{run}");
    assert_eq!(run["result"]["objects"]["doc"]["bytes"], 18);
    assert_eq!(run["result"]["objects"]["doc"]["lines"], 2);
    app.stop().await;
}

#[tokio::test]
async fn secrets_are_write_only_sealed_and_injected() {
    let app = TestApp::start(&[]).await;
    let api = &app.api;
    let (t, _) = api.user("ada").await;
    let value = "s3cr3t-value-that-must-not-leak";
    let s = api
        .post(
            &t,
            "/api/secrets",
            json!({"name": "api_key", "value": value}),
        )
        .await
        .expect(201);
    assert_eq!(s["env_var"], "API_KEY");
    assert!(!s.to_string().contains(value));
    let id = s["id"].as_str().unwrap();
    api.post(&t, "/api/secrets", json!({"name": "api_key", "value": "x"}))
        .await
        .expect_error(409, "conflict");
    api.post(
        &t,
        "/api/secrets",
        json!({"name": "bad name", "value": "x"}),
    )
    .await
    .expect_error(400, "invalid_request");
    api.post(
        &t,
        "/api/secrets",
        json!({"name": "big", "value": "x".repeat(70_000)}),
    )
    .await
    .expect_error(413, "payload_too_large");
    let listed = api.get(&t, "/api/secrets").await.expect(200);
    assert_eq!(listed["secrets"].as_array().unwrap().len(), 1);
    assert!(!listed.to_string().contains(value));
    assert_eq!(
        api.get(&t, &format!("/api/secrets/{id}")).await.expect(200)["name"],
        "api_key"
    );
    let f = api.deploy_sample(&t, "rust-read-secret.wasm").await;
    let run = api.run(&t, &f, json!({"secrets": ["api_key"]})).await;
    use sha2::Digest;
    assert_eq!(
        run["result"]["secrets"]["API_KEY"]["sha256"],
        hex::encode(sha2::Sha256::digest(value.as_bytes())),
        "{run}"
    );
    let keys: Vec<&str> = run["result"]["env_keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k.as_str().unwrap())
        .collect();
    assert_eq!(
        keys,
        vec![
            "API_BASE_URL",
            "API_KEY",
            "FAAS_EXECUTION_ID",
            "FAAS_FUNCTION_ID",
            "FAAS_FUNCTION_VERSION"
        ],
        "nothing else leaks into env"
    );
    assert!(
        !run.to_string().contains(value),
        "the value is not in the execution record"
    );
    let updated = api
        .put(
            &t,
            &format!("/api/secrets/{id}"),
            json!({"value": "second"}),
        )
        .await
        .expect(200);
    assert!(!updated.to_string().contains("second"));
    let run = api.run(&t, &f, json!({"secrets": ["api_key"]})).await;
    assert_eq!(
        run["result"]["secrets"]["API_KEY"]["sha256"],
        hex::encode(sha2::Sha256::digest(b"second"))
    );
    let db = std::fs::read(app.data.path().join("faas.db")).unwrap();
    let wal = std::fs::read(app.data.path().join("faas.db-wal")).unwrap_or_default();
    for hay in [&db, &wal] {
        assert!(
            !hay.windows(value.len()).any(|w| w == value.as_bytes()),
            "secret stored in plaintext"
        );
        assert!(
            !hay.windows(6).any(|w| w == b"second"),
            "secret stored in plaintext"
        );
    }
    api.delete(&t, &format!("/api/secrets/{id}"))
        .await
        .expect(204);
    api.get(&t, &format!("/api/secrets/{id}"))
        .await
        .expect_error(404, "not_found");
    api.put(&t, &format!("/api/secrets/{id}"), json!({"value": "x"}))
        .await
        .expect_error(404, "not_found");
    app.stop().await;
}

#[tokio::test]
async fn another_users_resources_answer_404_everywhere() {
    let app = TestApp::start(&[]).await;
    let api = &app.api;
    let (a, _) = api.user("alice").await;
    let (b, _) = api.user("bobby").await;
    let f = api.deploy_sample(&a, "rust-read-object.wasm").await;
    api.upload(&a, &f, "doc.txt", b"private".to_vec(), "text/plain")
        .await
        .expect(201);
    let s = api
        .post(&a, "/api/secrets", json!({"name": "tok", "value": "v"}))
        .await
        .expect(201);
    let sid = s["id"].as_str().unwrap();
    let e = api
        .submit(
            &a,
            &f,
            json!({"object_inputs": {"d": format!("{f}/doc.txt")}}),
        )
        .await;
    api.wait(&a, &e, std::time::Duration::from_secs(30)).await;
    let paths = [
        format!("/api/functions/{f}"),
        format!("/api/executions/{e}"),
        format!("/api/function-objects/{f}"),
        format!("/api/function-objects/{f}/doc.txt"),
        format!("/api/secrets/{sid}"),
    ];
    for p in &paths {
        api.get(&b, p).await.expect_error(404, "not_found");
    }
    api.delete(&b, &format!("/api/functions/{f}"))
        .await
        .expect_error(404, "not_found");
    api.delete(&b, &format!("/api/function-objects/{f}/doc.txt"))
        .await
        .expect_error(404, "not_found");
    api.delete(&b, &format!("/api/secrets/{sid}"))
        .await
        .expect_error(404, "not_found");
    api.put(&b, &format!("/api/secrets/{sid}"), json!({"value": "x"}))
        .await
        .expect_error(404, "not_found");
    api.upload(&b, &f, "evil.txt", b"x".to_vec(), "text/plain")
        .await
        .expect_error(404, "not_found");
    api.post(
        &b,
        "/api/executions",
        json!({"function_id": f, "input": {}}),
    )
    .await
    .expect_error(404, "not_found");
    api.post(&b, &format!("/api/executions/{e}/cancel"), json!({}))
        .await
        .expect_error(404, "not_found");
    assert!(
        api.get(&b, "/api/executions").await.expect(200)["executions"]
            .as_array()
            .unwrap()
            .is_empty()
    );
    assert!(
        api.get(&b, "/api/functions").await.expect(200)["functions"]
            .as_array()
            .unwrap()
            .is_empty()
    );
    assert!(
        api.get(&b, "/api/secrets").await.expect(200)["secrets"]
            .as_array()
            .unwrap()
            .is_empty()
    );
    let own = api.deploy_sample(&b, "rust-read-object.wasm").await;
    let stolen = api
        .run(
            &b,
            &own,
            json!({"object_inputs": {"d": format!("{f}/doc.txt")}}),
        )
        .await;
    assert_eq!(
        stolen["status"], "failed",
        "another user's object is not granted: {stolen}"
    );
    assert!(
        stolen["error"].as_str().unwrap().contains("not found"),
        "{stolen}"
    );
    api.get(&a, &format!("/api/function-objects/{f}/doc.txt"))
        .await
        .expect(200);
    app.stop().await;
}

#[tokio::test]
async fn health_readiness_openapi_and_unknown_routes() {
    let app = TestApp::start(&[]).await;
    let api = &app.api;
    assert_eq!(api.get("", "/healthz").await.expect(200)["status"], "ok");
    let root = api.login("root", "rootpassword").await;
    let ready = api.get(&root, "/readyz").await.expect(200);
    assert_eq!(ready["status"], "ready");
    assert_eq!(ready["executors"]["wasm"], "ready");
    let doc = api.get("", "/api/openapi.json").await.expect(200);
    let paths = doc["paths"].as_object().unwrap();
    for p in [
        "/auth/register",
        "/auth/login",
        "/api/users",
        "/api/users/{id}",
        "/api/functions",
        "/api/functions/{id}",
        "/api/executions",
        "/api/executions/{id}",
        "/api/function-objects/{function_id}",
        "/api/function-objects/{function_id}/{name}",
        "/api/secrets",
        "/api/secrets/{id}",
        "/healthz",
        "/readyz",
    ] {
        assert!(paths.contains_key(p), "openapi documents {p}");
    }
    assert!(doc["components"]["schemas"]["Execution"].is_object());
    api.get("", "/nope").await.expect_error(404, "not_found");
    app.stop().await;
}

#[tokio::test]
async fn the_tour_function_uses_an_object_and_a_secret() {
    let app = TestApp::start(&[]).await;
    let api = &app.api;
    let (t, _) = api.user("ada").await;
    let f = api.deploy_sample(&t, "rust-summarize.wasm").await;
    api.upload(
        &t,
        &f,
        "report.txt",
        b"quarterly numbers\n".to_vec(),
        "text/plain",
    )
    .await
    .expect(201);
    api.post(
        &t,
        "/api/secrets",
        json!({"name": "signing_key", "value": "k3y"}),
    )
    .await
    .expect(201);
    let run = api.run(&t, &f, json!({"object_inputs": {"report": format!("{f}/report.txt")}, "secrets": ["signing_key"]})).await;
    assert_eq!(run["status"], "completed", "{run}");
    use hmac::Mac;
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(b"k3y").unwrap();
    mac.update(b"quarterly numbers\n");
    assert_eq!(
        run["result"]["objects"]["report"]["hmac_sha256"],
        hex::encode(mac.finalize().into_bytes())
    );
    app.stop().await;
}
