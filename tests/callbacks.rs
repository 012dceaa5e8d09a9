//! Signed callbacks (issue 9) through the real HTTP server on both backends: a
//! receiver on 127.0.0.1 gets the final record with a signature that verifies
//! against `GET /api/callback-key`, a 500 is retried, a rotation signs later
//! deliveries with the new key, a pending delivery survives a restart, and the SSRF
//! guard refuses what it must at submit.

#[path = "support/harness.rs"]
mod harness;
#[path = "../runtime/tests/support/nats_server.rs"]
mod nats_server;

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use bytes::Bytes;
use faas::platform::Platform;
use harness::{Api, TestApp};
use hmac::{Hmac, Mac};
use nats_server::NatsServer;
use serde_json::{Value, json};
use sha2::Sha256;
use tokio::net::TcpListener;

/// Private receivers allowed (the receiver is on 127.0.0.1), quick retries.
const ALLOW: &[&str] = &[
    "--callback-allow-private=true",
    "--callback-retry-base-ms=200",
];

/// A platform on the embedded backend, or on NATS (API and workers in one process).
async fn start(nats: Option<&NatsServer>, extra: &[&str]) -> TestApp {
    TestApp::start_on(nats.map(NatsServer::url).as_deref(), extra).await
}

/// One request a receiver got.
#[derive(Debug, Clone)]
struct Hit {
    headers: HeaderMap,
    body: Bytes,
}

/// A callback receiver on 127.0.0.1: answers the statuses it is given in turn,
/// then 200, and keeps what it got.
#[derive(Clone, Default)]
struct Receiver {
    hits: Arc<Mutex<Vec<Hit>>>,
    answers: Arc<Mutex<VecDeque<u16>>>,
}

impl Receiver {
    async fn on(listener: TcpListener, answers: &[u16]) -> (Receiver, String) {
        let r = Receiver::default();
        r.answers.lock().unwrap().extend(answers);
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        let app = Router::new()
            .route("/hook", post(receive))
            .with_state(r.clone());
        tokio::spawn(async move { axum::serve(listener, app).await });
        (r, url)
    }

    async fn start(answers: &[u16]) -> (Receiver, String) {
        Self::on(TcpListener::bind("127.0.0.1:0").await.unwrap(), answers).await
    }

    fn hits(&self) -> Vec<Hit> {
        self.hits.lock().unwrap().clone()
    }
}

async fn receive(State(r): State<Receiver>, headers: HeaderMap, body: Bytes) -> StatusCode {
    r.hits.lock().unwrap().push(Hit { headers, body });
    let status = r.answers.lock().unwrap().pop_front().unwrap_or(200);
    StatusCode::from_u16(status).unwrap()
}

/// True when `hit` carries a valid `Faas-Signature` of its body under `key`.
fn verifies(hit: &Hit, key: &str) -> bool {
    let header = hit.headers["faas-signature"].to_str().unwrap();
    let (t, v1) = header
        .split_once(',')
        .map(|(t, v)| {
            (
                t.strip_prefix("t=").unwrap(),
                v.strip_prefix("v1=").unwrap(),
            )
        })
        .unwrap();
    let age = time::OffsetDateTime::now_utc().unix_timestamp() - t.parse::<i64>().unwrap();
    assert!((0..120).contains(&age), "signed {age} s ago");
    let mut mac = Hmac::<Sha256>::new_from_slice(key.as_bytes()).unwrap();
    mac.update(format!("{t}.").as_bytes());
    mac.update(&hit.body);
    mac.verify_slice(&hex::decode(v1).unwrap()).is_ok()
}

async fn callback_key(api: &Api, token: &str) -> String {
    api.get(token, "/api/callback-key").await.expect(200)["key"]
        .as_str()
        .unwrap()
        .to_string()
}

async fn submit(api: &Api, token: &str, fid: &str, callback_url: &str) -> String {
    let body = json!({"function_id": fid, "input": {"n": 1}, "callback_url": callback_url});
    api.post(token, "/api/executions", body).await.expect(202)["id"]
        .as_str()
        .unwrap()
        .to_string()
}

/// The execution once its callback is no longer pending (or `within` passed).
async fn settled(api: &Api, token: &str, id: &str, within: Duration) -> Value {
    let t = Instant::now();
    loop {
        let e = api
            .get(token, &format!("/api/executions/{id}"))
            .await
            .expect(200);
        if e["callback"]["state"] != "pending" || t.elapsed() > within {
            return e;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A 500 then a 200: delivered on the second attempt, both signed; an invoke's
/// callback too; after a rotation deliveries verify with the new key only.
async fn delivers_signed_retries_and_rotates(nats: Option<&NatsServer>) {
    let app = start(nats, ALLOW).await;
    let (token, _) = app.api.user("hooked").await;
    let fid = app.api.deploy_sample(&token, "c-hello.wasm").await;
    let key = callback_key(&app.api, &token).await;
    assert_eq!(key.len(), 64);
    assert_eq!(callback_key(&app.api, &token).await, key, "made once");

    let (receiver, url) = Receiver::start(&[500]).await;
    let id = submit(&app.api, &token, &fid, &url).await;
    let e = settled(&app.api, &token, &id, Duration::from_secs(20)).await;
    assert_eq!(e["status"], "completed", "{e}");
    assert_eq!(e["callback"]["state"], "delivered", "{e}");
    assert_eq!(e["callback"]["attempts"], 2, "{e}");
    assert_eq!(e["callback"]["last_status"], 200, "{e}");
    assert_eq!(e["callback"]["url"], url.as_str());
    let hits = receiver.hits();
    assert_eq!(hits.len(), 2, "one retry after the 500");
    for hit in &hits {
        assert!(verifies(hit, &key), "the signature verifies");
        assert_eq!(hit.headers["faas-execution-id"], id.as_str());
        assert_eq!(hit.headers["content-type"], "application/json");
        let record: Value = serde_json::from_slice(&hit.body).unwrap();
        assert_eq!(record["id"], id.as_str());
        assert_eq!(record["status"], "completed");
        assert_eq!(record["result"], e["result"], "the final record");
    }

    // An invoke's callback, then a rotation: the next delivery uses the new key.
    let rotated = app
        .api
        .post(&token, "/api/callback-key/rotate", json!({}))
        .await
        .expect(200)["key"]
        .as_str()
        .unwrap()
        .to_string();
    assert_ne!(rotated, key);
    assert_eq!(callback_key(&app.api, &token).await, rotated);
    let (receiver, url) = Receiver::start(&[]).await;
    let body = json!({"input": {"n": 2}, "callback_url": url});
    let invoked = app
        .api
        .post(
            &token,
            &format!("/api/functions/{fid}/invoke?wait=20"),
            body,
        )
        .await
        .expect(200);
    let id = invoked["id"].as_str().unwrap();
    let e = settled(&app.api, &token, id, Duration::from_secs(20)).await;
    assert_eq!(e["callback"]["state"], "delivered", "{e}");
    assert_eq!(e["callback"]["attempts"], 1, "{e}");
    let hits = receiver.hits();
    assert_eq!(hits.len(), 1);
    assert!(verifies(&hits[0], &rotated), "signed with the new key");
    assert!(!verifies(&hits[0], &key), "not with the old one");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn embedded_callbacks_are_signed_retried_and_rotated() {
    delivers_signed_retries_and_rotates(None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn nats_callbacks_are_signed_retried_and_rotated() {
    let nats = NatsServer::start();
    delivers_signed_retries_and_rotates(Some(&nats)).await;
}

/// Without the allow setting a loopback receiver is refused at submit; bad URLs
/// are 400 with or without it; the key is per caller and needs a token.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn callback_urls_and_keys_are_checked() {
    // No delivery from this one: its accepted URLs name hosts off this machine.
    let app = start(None, &["--callback-delivery=false"]).await;
    let (token, _) = app.api.user("guarded").await;
    let fid = app.api.deploy_sample(&token, "c-hello.wasm").await;
    let refused = [
        "http://127.0.0.1:8080/hook".to_string(),
        "http://localhost/hook".into(),
        "http://0x7f.1/".into(),
        "http://[::ffff:127.0.0.1]/".into(),
        "http://10.0.0.1/".into(),
        "http://169.254.169.254/latest/meta-data/".into(),
        "ftp://example.com/hook".into(),
        "http://exa mple.com/".into(),
        "not a url".into(),
        format!("http://example.com/{}", "a".repeat(2048 - 19 + 1)),
    ];
    assert_eq!(refused[9].len(), 2049);
    for url in &refused {
        let body = json!({"function_id": fid, "callback_url": url});
        app.api
            .post(&token, "/api/executions", body)
            .await
            .expect_error(400, "invalid_callback_url");
        let body = json!({"callback_url": url});
        app.api
            .post(&token, &format!("/api/functions/{fid}/invoke"), body)
            .await
            .expect_error(400, "invalid_callback_url");
    }
    // Exactly 2 KiB is fine, and the record shows the pending callback.
    let longest = format!("http://example.com/{}", "a".repeat(2048 - 19));
    let body = json!({"function_id": fid, "callback_url": longest});
    let e = app
        .api
        .post(&token, "/api/executions", body)
        .await
        .expect(202);
    assert_eq!(e["callback"]["state"], "pending", "{e}");
    assert_eq!(e["callback"]["attempts"], 0);
    assert_eq!(e["callback"]["last_status"], Value::Null);

    // The idempotency key covers the callback URL.
    let send = |url: &str| {
        app.api
            .http
            .post(app.api.url("/api/executions"))
            .bearer_auth(&token)
            .header("Idempotency-Key", "cb-1")
            .json(&json!({"function_id": fid, "callback_url": url}))
    };
    assert_eq!(app.api.send(send("https://a.example/x")).await.status, 202);
    let again = app.api.send(send("https://a.example/x")).await;
    assert_eq!(again.status, 202);
    app.api
        .send(send("https://b.example/x"))
        .await
        .expect_error(422, "idempotency_mismatch");

    // Keys: per caller, stable, and only with a token.
    let (other, _) = app.api.user("someone").await;
    let mine = callback_key(&app.api, &token).await;
    assert_ne!(callback_key(&app.api, &other).await, mine);
    assert_eq!(callback_key(&app.api, &token).await, mine);
    app.api
        .get("not-a-token", "/api/callback-key")
        .await
        .expect_error(401, "unauthorized");
    app.api
        .post("not-a-token", "/api/callback-key/rotate", json!({}))
        .await
        .expect_error(401, "unauthorized");
    app.stop().await;

    // With the allow setting, metadata addresses stay refused.
    let app = start(
        None,
        &["--callback-allow-private=true", "--callback-delivery=false"],
    )
    .await;
    let (token, _) = app.api.user("allowed").await;
    let fid = app.api.deploy_sample(&token, "c-hello.wasm").await;
    for url in [
        "http://169.254.169.254/latest/meta-data/",
        "http://[fd00:ec2::254]/",
        "http://100.100.100.200/",
        "http://[::ffff:a9fe:a9fe]/",
        "http://0.0.0.0:80/",
        "http://224.0.0.1/",
        "ftp://127.0.0.1/",
    ] {
        let body = json!({"function_id": fid, "callback_url": url});
        app.api
            .post(&token, "/api/executions", body)
            .await
            .expect_error(400, "invalid_callback_url");
    }
    let body = json!({"function_id": fid, "callback_url": "http://127.0.0.1:9/hook"});
    app.api
        .post(&token, "/api/executions", body)
        .await
        .expect(202);
    app.stop().await;
}

/// The receiver is down when the execution ends; `faas serve` restarts; the
/// receiver comes up: the delivery written before the restart is made.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_pending_delivery_survives_a_restart() {
    let mut app = start(None, ALLOW).await;
    let (token, _) = app.api.user("patient").await;
    let fid = app.api.deploy_sample(&token, "c-hello.wasm").await;
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let url = format!("http://127.0.0.1:{port}/hook");
    let id = submit(&app.api, &token, &fid, &url).await;
    let t = Instant::now();
    let e = loop {
        let e = app
            .api
            .get(&token, &format!("/api/executions/{id}"))
            .await
            .expect(200);
        if e["callback"]["attempts"].as_u64() >= Some(1) || t.elapsed() > Duration::from_secs(20) {
            break e;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(e["status"], "completed", "{e}");
    assert_eq!(e["callback"]["state"], "pending", "{e}");
    assert_eq!(e["callback"]["last_status"], Value::Null, "no answer: {e}");
    assert!(e["callback"]["last_error"].is_string(), "{e}");

    app.platform.take().unwrap().stop().await;
    let platform = Platform::start(harness::config(app.data.path(), ALLOW))
        .await
        .expect("the platform restarts");
    app.api = Api::new(&format!("http://{}", platform.addr.unwrap()));
    app.platform = Some(platform);
    let token = app.api.login("patient", "password123").await;
    let (receiver, _) =
        Receiver::on(TcpListener::bind(("127.0.0.1", port)).await.unwrap(), &[]).await;
    let e = settled(&app.api, &token, &id, Duration::from_secs(30)).await;
    assert_eq!(e["callback"]["state"], "delivered", "{e}");
    assert!(e["callback"]["attempts"].as_u64() >= Some(2), "{e}");
    let hits = receiver.hits();
    assert_eq!(hits.len(), 1, "delivered once");
    assert!(verifies(&hits[0], &callback_key(&app.api, &token).await));
    app.stop().await;
}
