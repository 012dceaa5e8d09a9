//! The login throttle's memory through the real router on the embedded backend:
//! oversized credentials are refused before anything is kept, and many distinct
//! failed usernames from many addresses leave a bounded table.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{Request, StatusCode};
use faas_api::auth::{Auth, HashLimits, LimiterConfig, LoginLimiter};
use faas_api::{ApiLimits, AppState};
use faas_runtime::embedded::{Db, EmbeddedKv, EmbeddedObjects, EmbeddedQueue, QueueConfig};
use faas_runtime::sealing::SecretBox;
use faas_runtime::store::Store;
use http_body_util::BodyExt;
use tower::ServiceExt;

async fn state(dir: &std::path::Path, limiter: LimiterConfig) -> AppState {
    let db = Db::open(dir).unwrap();
    let auth = Auth::new(
        &[9u8; 32],
        Duration::from_secs(60),
        LoginLimiter::new(limiter),
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

/// POSTs `/auth/login` from `peer`; returns the status.
async fn login(state: &AppState, peer: SocketAddr, username: &str) -> StatusCode {
    let body = serde_json::json!({"username": username, "password": "wrongpassword"});
    let mut req = Request::post("/auth/login")
        .header("content-type", "application/json")
        .body(Body::from(body.to_string()))
        .unwrap();
    req.extensions_mut().insert(ConnectInfo(peer));
    let res = faas_api::router(state.clone()).oneshot(req).await.unwrap();
    let status = res.status();
    let _ = res.into_body().collect().await;
    status
}

fn peer(n: u32) -> SocketAddr {
    SocketAddr::from((std::net::Ipv4Addr::from(0x0a00_0000 + n), 40000))
}

#[tokio::test]
async fn a_two_megabyte_username_is_refused_quickly_and_not_kept() {
    let dir = tempfile::tempdir().unwrap();
    let state = state(dir.path(), LimiterConfig::default()).await;
    let huge = "a".repeat(2_000_000);
    let t = Instant::now();
    // Beyond the 16 KiB cap of the auth routes' bodies: 413 before anything is parsed.
    assert_eq!(
        login(&state, peer(1), &huge).await,
        StatusCode::PAYLOAD_TOO_LARGE
    );
    let elapsed = t.elapsed();
    assert!(elapsed < Duration::from_secs(1), "{elapsed:?}");
    assert_eq!(state.auth.limiter.tracked(), 0, "nothing kept");
}

#[tokio::test]
async fn the_throttle_table_stays_bounded_under_many_distinct_failed_usernames() {
    let dir = tempfile::tempdir().unwrap();
    let config = LimiterConfig {
        max_keys: 32,
        ..LimiterConfig::default()
    };
    let state = state(dir.path(), config).await;
    let mut most = 0;
    for n in 0..120 {
        let status = login(&state, peer(n), &format!("nobody{n}")).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        most = most.max(state.auth.limiter.tracked());
    }
    println!("120 distinct usernames from 120 addresses: at most {most} keys tracked");
    assert!(most <= 32, "{most} keys");
}

#[tokio::test]
async fn a_server_without_connection_info_fails_closed() {
    let dir = tempfile::tempdir().unwrap();
    let state = state(dir.path(), LimiterConfig::default()).await;
    let req = Request::post("/auth/login")
        .header("content-type", "application/json")
        .body(Body::from(r#"{"username":"ada","password":"password123"}"#))
        .unwrap();
    let res = faas_api::router(state).oneshot(req).await.unwrap();
    assert_eq!(res.status(), StatusCode::INTERNAL_SERVER_ERROR);
}
