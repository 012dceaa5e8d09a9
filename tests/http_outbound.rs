//! Outbound HTTP of guests (issue 13): a `wasi:http/proxy` component
//! (`samples/rust/http-fetch`) served at `/fn/...` fetches URLs of a real HTTP
//! server on 127.0.0.1 in this test. Denied by default; a listed host on a
//! loopback address is refused unless the operator allows private addresses
//! (FAAS_OUTBOUND_ALLOW_PRIVATE), and served when it does; hosts not listed stay
//! denied; metadata addresses always refused; the response size and the wait for
//! an answer are bounded. Plus the validation of `allowed_outbound_hosts`.

#[path = "support/harness.rs"]
mod harness;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::extract::Request;
use axum::routing::get;
use harness::{TestApp, sample};
use serde_json::{Value, json};

/// Bytes of the operator's cap on response bodies in these tests.
const CAP: usize = 4096;

/// A local HTTP server recording the requests it saw (`<host header> <path?query>`).
struct Upstream {
    addr: SocketAddr,
    seen: Arc<Mutex<Vec<String>>>,
}

impl Upstream {
    async fn start() -> Upstream {
        let seen: Arc<Mutex<Vec<String>>> = Arc::default();
        let log = seen.clone();
        let record = move |req: &Request| {
            let host = req
                .headers()
                .get("host")
                .and_then(|h| h.to_str().ok())
                .unwrap_or("-");
            let line = format!("{host} {}", req.uri());
            log.lock().unwrap().push(line);
        };
        let (r1, r2, r3, r4) = (record.clone(), record.clone(), record.clone(), record);
        let app = Router::new()
            .route(
                "/hello",
                get(move |req: Request| async move {
                    r1(&req);
                    "hello from upstream"
                }),
            )
            .route(
                "/big",
                get(move |req: Request| async move {
                    r2(&req);
                    vec![b'x'; CAP + 1]
                }),
            )
            .route(
                "/big-stream",
                get(move |req: Request| async move {
                    r3(&req);
                    let chunks = (0..=CAP / 1024)
                        .map(|_| Ok::<_, std::io::Error>(bytes::Bytes::from(vec![b'y'; 1024])));
                    Body::from_stream(futures::stream::iter(chunks))
                }),
            )
            .route(
                "/hang",
                get(move |req: Request| async move {
                    r4(&req);
                    std::future::pending::<()>().await;
                    ""
                }),
            );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        Upstream { addr, seen }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    fn seen(&self) -> Vec<String> {
        self.seen.lock().unwrap().clone()
    }
}

/// A platform with `extra` settings, user ann and the fetch sample served
/// publicly at /fn/ann/fetch; returns the app, ann's token and the settings path.
async fn start(extra: &[&str]) -> (TestApp, String, String) {
    let app = TestApp::start(extra).await;
    let (token, _) = app.api.user("ann").await;
    let f = app
        .api
        .deploy(
            &token,
            "fetch",
            sample("rust-http-fetch.wasm"),
            &[("timeout_secs", "20")],
        )
        .await
        .expect(201);
    let settings = format!("/api/functions/{}/http", f["id"].as_str().unwrap());
    allow(&app, &token, &settings, &[]).await;
    (app, token, settings)
}

/// Sets the function's outbound list (public access); returns the settings as stored.
async fn allow(app: &TestApp, token: &str, settings: &str, hosts: &[&str]) -> Value {
    let body = json!({"enabled": true, "access": "public", "allowed_outbound_hosts": hosts});
    app.api.put(token, settings, body).await.expect(200)
}

/// Has the guest fetch `target`: (status, JSON answer).
async fn fetch(app: &TestApp, target: &str) -> (u16, Value) {
    let mut url = reqwest::Url::parse(&app.api.url("/fn/ann/fetch/")).unwrap();
    url.query_pairs_mut().append_pair("url", target);
    let res = app.api.http.get(url).send().await.unwrap();
    let status = res.status().as_u16();
    let text = res.text().await.unwrap();
    let body = serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON: {text}"));
    (status, body)
}

/// Asserts the guest's request failed with the `wasi:http` error `code`.
#[track_caller]
fn assert_failed(got: (u16, Value), code: &str) {
    let (status, body) = got;
    assert_eq!(status, 502, "{body}");
    let error = body["error"].as_str().unwrap_or_default();
    assert!(error.contains(code), "{code} expected, got {body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn outbound_is_denied_by_default_and_private_addresses_need_the_operator() {
    let upstream = Upstream::start().await;
    let (app, ann, settings) = start(&[]).await;
    let hello = upstream.url("/hello");

    // No list: denied before anything leaves the sandbox.
    assert_failed(fetch(&app, &hello).await, "HttpRequestDenied");

    // Listed, but 127.0.0.1 is a loopback address: refused at connect time.
    let listed = format!("http://{}", upstream.addr);
    allow(&app, &ann, &settings, &[&listed]).await;
    assert_failed(fetch(&app, &hello).await, "DestinationIpProhibited");
    // The same through a loopback name and an IPv4-mapped IPv6 literal.
    let port = upstream.addr.port();
    let names = [
        format!("http://localhost:{port}"),
        format!("http://[::ffff:127.0.0.1]:{port}"),
    ];
    allow(&app, &ann, &settings, &[&names[0], &names[1]]).await;
    for name in &names {
        let got = fetch(&app, &format!("{name}/hello")).await;
        assert_failed(got, "DestinationIpProhibited");
    }
    assert!(upstream.seen().is_empty(), "{:?}", upstream.seen());
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_listed_local_host_is_served_with_the_operator_setting_and_bounded() {
    let upstream = Upstream::start().await;
    let cap = CAP.to_string();
    let (app, ann, settings) = start(&[
        "--outbound-allow-private=true",
        "--outbound-timeout-secs=1",
        "--outbound-max-response-bytes",
        &cap,
    ])
    .await;

    // Still denied by default.
    assert_failed(
        fetch(&app, &upstream.url("/hello")).await,
        "HttpRequestDenied",
    );
    assert!(upstream.seen().is_empty());

    // Listed: served, the query kept and the Host header the listed one.
    let listed = format!("http://{}", upstream.addr);
    allow(&app, &ann, &settings, &[&listed, "http://169.254.169.254"]).await;
    let (status, body) = fetch(&app, &upstream.url("/hello?x=1")).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body, json!({"status": 200, "body": "hello from upstream"}));
    assert_eq!(upstream.seen(), [format!("{} /hello?x=1", upstream.addr)]);

    // Not on the list: another port, another scheme, another name.
    let port = upstream.addr.port();
    for other in [
        format!("http://127.0.0.1:{}/hello", port.wrapping_add(1).max(1)),
        format!("https://{}/hello", upstream.addr),
        format!("http://localhost:{port}/hello"),
    ] {
        assert_failed(fetch(&app, &other).await, "HttpRequestDenied");
    }
    // Metadata addresses stay refused, listed and with the operator setting.
    let got = fetch(&app, "http://169.254.169.254/latest/meta-data/").await;
    assert_failed(got, "DestinationIpProhibited");
    assert_eq!(upstream.seen().len(), 1, "{:?}", upstream.seen());

    // Larger than the cap: declared, or streamed past it.
    assert_failed(
        fetch(&app, &upstream.url("/big")).await,
        "HttpResponseBodySize",
    );
    // A body cut mid-stream fails the guest's read; wasmtime-wasi-http 48 passes
    // that error as text (its `http-error-code` is none).
    let got = fetch(&app, &upstream.url("/big-stream")).await;
    assert_failed(got, "body size exceeds limit");

    // A server that never answers: cut after the timeout; the next request is served.
    let t = Instant::now();
    assert_failed(
        fetch(&app, &upstream.url("/hang")).await,
        "HttpResponseTimeout",
    );
    let took = t.elapsed();
    assert!(
        took >= Duration::from_millis(900) && took < Duration::from_secs(10),
        "{took:?}"
    );
    let (status, body) = fetch(&app, &upstream.url("/hello")).await;
    assert_eq!(
        (status, &body["body"]),
        (200, &json!("hello from upstream"))
    );
    assert_eq!(upstream.seen().len(), 5, "{:?}", upstream.seen());
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn allowed_outbound_hosts_are_validated_and_normalised() {
    let (app, ann, settings) = start(&[]).await;
    let stored = allow(
        &app,
        &ann,
        &settings,
        &[
            "HTTPS://API.Example.com:443/",
            "https://api.example.com",
            "https://*.example.com:8443",
            "http://[::1]:8080",
        ],
    )
    .await;
    let hosts = json!([
        "https://api.example.com",
        "https://*.example.com:8443",
        "http://[::1]:8080"
    ]);
    assert_eq!(stored["allowed_outbound_hosts"], hosts);
    let got = app.api.get(&ann, &settings).await.expect(200);
    assert_eq!(got["allowed_outbound_hosts"], hosts);

    let too_many: Vec<String> = (0..33)
        .map(|i| format!("https://h{i}.example.com"))
        .collect();
    for bad in [
        json!(["ftp://example.com"]),
        json!(["example.com"]),
        json!(["https://example.com/path"]),
        json!(["https://user@example.com"]),
        json!(["https://example.com:0"]),
        json!(["https://a.*.example.com"]),
        json!([format!("https://{}.com", "a".repeat(300))]),
        json!(too_many),
    ] {
        let body = json!({"enabled": true, "allowed_outbound_hosts": bad});
        let r = app.api.put(&ann, &settings, body).await;
        let err = r.expect_error(400, "invalid_outbound_host");
        assert!(
            err["message"]
                .as_str()
                .unwrap()
                .contains("allowed_outbound_hosts"),
            "{err}"
        );
    }
    let r = app
        .api
        .put(
            &ann,
            &settings,
            json!({"enabled": true, "allowed_outbound_hosts": "https://x.example"}),
        )
        .await;
    assert_eq!(r.status, 400, "{}", r.body);
    // Nothing of the refused settings was kept.
    let got = app.api.get(&ann, &settings).await.expect(200);
    assert_eq!(got["allowed_outbound_hosts"], hosts);
    app.stop().await;
}
