//! The functions-only router (a worker's FAAS_HTTP_ADDRESS listener) through the
//! real router on the embedded backend: `/healthz` and `/fn/...` answer, nothing of
//! the API does (the JSON 404 of the fallback), while the full router serves those
//! same paths.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use faas_api::auth::{Auth, HashLimits, LimiterConfig, LoginLimiter};
use faas_api::{ApiLimits, AppState};
use faas_runtime::embedded::{Db, EmbeddedKv, EmbeddedObjects, EmbeddedQueue, QueueConfig};
use faas_runtime::sealing::SecretBox;
use faas_runtime::store::Store;
use http_body_util::BodyExt;
use serde_json::Value;
use tower::ServiceExt;

async fn state(dir: &std::path::Path) -> AppState {
    let db = Db::open(dir).unwrap();
    let auth = Auth::new(
        &[9u8; 32],
        Duration::from_secs(60),
        LoginLimiter::new(LimiterConfig::default()),
        HashLimits::default(),
    )
    .unwrap();
    AppState::new(
        Store::new(Arc::new(EmbeddedKv::new(db.clone()))),
        Arc::new(
            EmbeddedQueue::open(db.clone(), QueueConfig::default())
                .await
                .unwrap(),
        ),
        Arc::new(EmbeddedObjects::new(db).unwrap()),
        Vec::new(),
        auth,
        SecretBox::new(&[3u8; 32]),
        ApiLimits::default(),
    )
}

/// Sends `method path` (a small JSON body for writes); returns status and body.
async fn send(app: &Router, method: Method, path: &str) -> (StatusCode, Value) {
    let body = match method {
        Method::GET => Body::empty(),
        _ => Body::from(r#"{"username":"ann","password":"a-long-password"}"#),
    };
    let req = Request::builder()
        .method(method)
        .uri(path)
        .header("content-type", "application/json")
        .body(body)
        .unwrap();
    let res = app.clone().oneshot(req).await.unwrap();
    let status = res.status();
    let bytes = res.into_body().collect().await.unwrap().to_bytes();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

#[tokio::test]
async fn the_functions_router_serves_fn_and_healthz_and_nothing_of_the_api() {
    let dir = tempfile::tempdir().unwrap();
    let state = state(dir.path()).await;
    let functions = faas_api::routes::functions_router(state.clone());
    let full = faas_api::router(state);

    let (status, body) = send(&functions, Method::GET, "/healthz").await;
    assert_eq!(
        (status, body["status"].as_str()),
        (StatusCode::OK, Some("ok"))
    );
    // The endpoint itself: an unknown function is its 404.
    for path in ["/fn/nobody/nothing", "/fn/nobody/nothing/a/b?c=d"] {
        let (status, body) = send(&functions, Method::GET, path).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}");
        assert_eq!(body["error"], "not_found", "{path}");
    }

    let api = [
        (Method::POST, "/auth/register"),
        (Method::POST, "/auth/login"),
        (Method::GET, "/api/me"),
        (Method::GET, "/api/functions"),
        (Method::GET, "/api/openapi.json"),
        (Method::GET, "/readyz"),
        (Method::GET, "/"),
    ];
    for (method, path) in api {
        let (on_full, _) = send(&full, method.clone(), path).await;
        assert_ne!(
            on_full,
            StatusCode::NOT_FOUND,
            "the API serves {method} {path}"
        );
        let (status, body) = send(&functions, method.clone(), path).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{method} {path}: {body}");
        assert_eq!(body["error"], "not_found", "{method} {path}: {body}");
    }
}
