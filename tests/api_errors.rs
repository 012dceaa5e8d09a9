//! Every error the API answers is the JSON error body, including the ones the HTTP
//! framework produces (405, 404, 413, 415, 400 from extractors), through the real
//! server; and the served OpenAPI document carries the operator's limits.

#[path = "support/harness.rs"]
mod harness;

use harness::{Reply, TestApp, sample};
use reqwest::header::{ALLOW, CONTENT_TYPE};

/// Sends and returns the reply with its headers.
async fn send(req: reqwest::RequestBuilder) -> (Reply, reqwest::header::HeaderMap) {
    let res = req.send().await.expect("request sent");
    let headers = res.headers().clone();
    let status = res.status().as_u16();
    let text = res.text().await.unwrap_or_default();
    let body = serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text));
    (Reply { status, body }, headers)
}

fn is_json(h: &reqwest::header::HeaderMap) -> bool {
    h.get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"))
}

#[tokio::test]
async fn wrong_method_is_a_json_405_with_allow() {
    let app = TestApp::start(&[]).await;
    let api = &app.api;
    let (t, _) = api.user("ada").await;
    let cases = [
        (reqwest::Method::DELETE, "/auth/login", "POST"),
        (reqwest::Method::PUT, "/api/functions", "GET,HEAD,POST"),
        (
            reqwest::Method::PATCH,
            "/api/secrets/x",
            "GET,HEAD,PUT,DELETE",
        ),
        (reqwest::Method::POST, "/healthz", "GET,HEAD"),
    ];
    for (method, path, allow) in cases {
        let (reply, headers) = send(
            api.http
                .request(method.clone(), api.url(path))
                .bearer_auth(&t),
        )
        .await;
        assert!(is_json(&headers), "{method} {path}: JSON content type");
        let body = reply.expect_error(405, "method_not_allowed");
        assert!(body["message"].as_str().unwrap().contains(method.as_str()));
        let got = headers.get(ALLOW).expect("Allow header").to_str().unwrap();
        let mut got: Vec<&str> = got.split(',').map(str::trim).collect();
        let mut want: Vec<&str> = allow.split(',').collect();
        got.sort();
        want.sort();
        assert_eq!(got, want, "{method} {path}: Allow");
    }
    app.stop().await;
}

#[tokio::test]
async fn framework_errors_are_json_error_bodies() {
    let app = TestApp::start(&["--max-module-bytes=400000"]).await;
    let api = &app.api;
    let (t, _) = api.user("ada").await;
    let f = api.deploy_sample(&t, "rust-hello.wasm").await;
    let http = &api.http;
    let url = |p: &str| api.url(p);
    // 404 fallback, with and without a token.
    let (r, h) = send(http.get(url("/api/nope")).bearer_auth(&t)).await;
    assert!(is_json(&h));
    r.expect_error(404, "not_found");
    // 415: a JSON route given text.
    let (r, h) = send(
        http.post(url("/api/secrets"))
            .bearer_auth(&t)
            .header(CONTENT_TYPE, "text/plain")
            .body("name=x"),
    )
    .await;
    assert!(is_json(&h));
    r.expect_error(415, "unsupported_media_type");
    // 400: malformed JSON, a wrong field type, a bad query.
    let bad_json = http
        .post(url("/api/secrets"))
        .bearer_auth(&t)
        .header(CONTENT_TYPE, "application/json")
        .body("{not json");
    send(bad_json).await.0.expect_error(400, "malformed_json");
    let wrong_type = api
        .post(
            &t,
            "/api/secrets",
            serde_json::json!({"name": 5, "value": "v"}),
        )
        .await;
    wrong_type.expect_error(400, "malformed_json");
    for q in ["limit=0", "limit=201", "limit=abc", "status=nope"] {
        let r = api.get(&t, &format!("/api/executions?{q}")).await;
        r.expect_error(400, "invalid_query");
    }
    // 413: a JSON body over the body limit (2 MiB), and a module over its limit.
    let big = format!("{{\"name\":\"x\",\"value\":\"{}\"}}", "v".repeat(3 << 20));
    let (r, h) = send(
        http.post(url("/api/secrets"))
            .bearer_auth(&t)
            .header(CONTENT_TYPE, "application/json")
            .body(big),
    )
    .await;
    assert!(is_json(&h));
    r.expect_error(413, "payload_too_large");
    api.deploy(&t, "big", vec![0u8; 500_000], &[])
        .await
        .expect_error(413, "payload_too_large");
    // Bad multipart: no boundary, and a truncated body.
    for ct in ["multipart/form-data", "multipart/form-data; boundary=XYZ"] {
        let (r, h) = send(
            http.post(url("/api/functions"))
                .bearer_auth(&t)
                .header(CONTENT_TYPE, ct)
                .body("--XYZ\r\nContent-Disposition: form-data; name=\"name\"\r\n\r\nx"),
        )
        .await;
        assert!(is_json(&h), "{ct}");
        r.expect_error(400, "malformed_multipart");
        let (r, _) = send(
            http.post(url(&format!("/api/function-objects/{f}/x.bin")))
                .bearer_auth(&t)
                .header(CONTENT_TYPE, ct)
                .body("--XYZ\r\nContent-Disposition: form-data; name=\"file\"\r\n\r\nx"),
        )
        .await;
        // Cut inside the file part: the store sees the upload interrupted.
        let code = r.body["error"].as_str().unwrap_or_default().to_string();
        assert!(
            r.status == 400 && ["malformed_multipart", "invalid_request"].contains(&code.as_str()),
            "{ct}: {:?}",
            r
        );
    }
    // 401 without a token, on every kind of route.
    for p in ["/api/functions", "/api/secrets/x", "/api/nope-but-authed/x"] {
        let (r, h) = send(http.get(url(p))).await;
        assert!(is_json(&h), "{p}");
        assert!(matches!(r.status, 401 | 404), "{p}: {}", r.status);
    }
    app.stop().await;
}

#[tokio::test]
async fn field_constraints_of_the_document_are_enforced() {
    let app = TestApp::start(&[]).await;
    let api = &app.api;
    let (t, _) = api.user("ada").await;
    let long = "d".repeat(4097);
    api.deploy(
        &t,
        "f",
        sample("rust-hello.wasm"),
        &[("description", &long)],
    )
    .await
    .expect_error(400, "invalid_description");
    let ok = "d".repeat(4096);
    api.deploy(&t, "f", sample("rust-hello.wasm"), &[("description", &ok)])
        .await
        .expect(201);
    // Secret values are bounded in characters, as JSON Schema's maxLength counts.
    let wide = "é".repeat(64 * 1024);
    let v = serde_json::json!({"name": "wide", "value": wide});
    api.post(&t, "/api/secrets", v).await.expect(201);
    let v = serde_json::json!({"name": "wider", "value": format!("{wide}é")});
    api.post(&t, "/api/secrets", v)
        .await
        .expect_error(413, "payload_too_large");
    app.stop().await;
}

#[tokio::test]
async fn served_document_carries_the_operator_limits() {
    let app = TestApp::start(&["--max-timeout-secs=77", "--max-memory-mb=99"]).await;
    let doc = app.api.get("", "/api/openapi.json").await.expect(200);
    for form in ["ImageFunction", "WasmFunctionForm"] {
        let props = &doc["components"]["schemas"][form]["properties"];
        assert_eq!(props["timeout_secs"]["maximum"], 77, "{form}");
        assert_eq!(props["timeout_secs"]["minimum"], 1, "{form}");
        assert_eq!(props["memory_mb"]["maximum"], 99, "{form}");
    }
    app.stop().await;
}

#[tokio::test]
async fn object_upload_takes_only_a_file_part() {
    let app = TestApp::start(&[]).await;
    let api = &app.api;
    let (t, _) = api.user("ada").await;
    let f = api.deploy_sample(&t, "rust-hello.wasm").await;
    let path = format!("/api/function-objects/{f}/doc.txt");
    let part = |name: &str, body: &str| {
        format!("--XYZ\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{body}\r\n")
    };
    let upload = |body: String| {
        api.http
            .post(api.url(&path))
            .bearer_auth(&t)
            .header(CONTENT_TYPE, "multipart/form-data; boundary=XYZ")
            .body(body)
    };
    let leading = format!("{}{}--XYZ--\r\n", part("other", "x"), part("file", "kept?"));
    send(upload(leading))
        .await
        .0
        .expect_error(400, "invalid_field");
    api.get(&t, &path).await.expect_error(404, "not_found");
    let trailing = format!("{}{}--XYZ--\r\n", part("file", "kept?"), part("other", "x"));
    send(upload(trailing))
        .await
        .0
        .expect_error(400, "invalid_field");
    api.get(&t, &path).await.expect_error(404, "not_found");
    let only = format!("{}--XYZ--\r\n", part("file", "kept"));
    send(upload(only)).await.0.expect(201);
    let res = api
        .http
        .get(api.url(&path))
        .bearer_auth(&t)
        .send()
        .await
        .unwrap();
    assert_eq!(res.text().await.unwrap(), "kept");
    app.stop().await;
}
