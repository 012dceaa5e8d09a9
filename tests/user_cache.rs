//! The user record behind each request's token is cached briefly
//! (`faas_runtime::store::USER_TTL`): through the real HTTP server on the embedded
//! backend, a change made through this process's store applies to the next
//! request, and one made by another process (a second `Store` over the same
//! database, with a cache of its own) applies within a second: a revoked token,
//! a deleted user, a new role.

use std::sync::Arc;
use std::time::{Duration, Instant};

use faas_api::auth::{Auth, HashLimits, LoginLimiter};
use faas_api::{ApiLimits, AppState};
use faas_runtime::embedded::{Db, EmbeddedKv, EmbeddedObjects, EmbeddedQueue, QueueConfig};
use faas_runtime::model::{Role, User, new_id, now};
use faas_runtime::sealing::SecretBox;
use faas_runtime::store::Store;
use reqwest::StatusCode;

/// The API served on 127.0.0.1 (until the test ends) and a second store over the
/// same database ("another process").
struct Setup {
    state: AppState,
    base: String,
    other: Store,
}

async fn setup(dir: &std::path::Path) -> Setup {
    let db = Db::open(dir).unwrap();
    let kv = Arc::new(EmbeddedKv::new(db.clone()));
    let auth = Auth::new(
        &[9u8; 32],
        Duration::from_secs(600),
        LoginLimiter::new(Default::default()),
        HashLimits::default(),
    )
    .unwrap();
    let state = AppState::new(
        Store::new(kv.clone()),
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
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(faas_api::serve(
        listener,
        state.clone(),
        std::future::pending(),
    ));
    Setup {
        state,
        base,
        other: Store::new(kv),
    }
}

async fn user(state: &AppState) -> (User, String) {
    let u = User {
        id: new_id(),
        username: format!("u{}", &new_id()[24..]),
        password_hash: "unused".into(),
        role: Role::User,
        created_at: now(),
        token_generation: 0,
    };
    state.store.create_user(&u).await.unwrap();
    let (token, _) = state.auth.issue(&u).unwrap();
    (u, token)
}

async fn get(s: &Setup, path: &str, token: &str) -> StatusCode {
    reqwest::Client::new()
        .get(format!("{}{path}", s.base))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .status()
}

/// How long until `path` answers `want` (polled every 10 ms, for at most 3 s).
async fn until(s: &Setup, path: &str, token: &str, want: StatusCode) -> Duration {
    let t = Instant::now();
    while get(s, path, token).await != want {
        assert!(t.elapsed() < Duration::from_secs(3), "{path} never {want}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    t.elapsed()
}

#[tokio::test]
async fn a_token_revoked_through_this_process_is_refused_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let s = setup(dir.path()).await;
    let (u, token) = user(&s.state).await;
    assert_eq!(get(&s, "/api/me", &token).await, StatusCode::OK);
    s.state.store.revoke_tokens(&u.id).await.unwrap();
    assert_eq!(get(&s, "/api/me", &token).await, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn changes_made_by_another_process_apply_within_a_second() {
    let dir = tempfile::tempdir().unwrap();
    let s = setup(dir.path()).await;
    let other = &s.other;

    // A new role: the admin-only listing opens within a second.
    let (u, token) = user(&s.state).await;
    assert_eq!(get(&s, "/api/users", &token).await, StatusCode::FORBIDDEN);
    other
        .modify_user(&u.id, |u| u.role = Role::Admin)
        .await
        .unwrap();
    let took = until(&s, "/api/users", &token, StatusCode::OK).await;
    assert!(took < Duration::from_secs(1), "role change took {took:?}");

    // A revoked token.
    assert_eq!(get(&s, "/api/me", &token).await, StatusCode::OK);
    other.revoke_tokens(&u.id).await.unwrap();
    let took = until(&s, "/api/me", &token, StatusCode::UNAUTHORIZED).await;
    assert!(took < Duration::from_secs(1), "revocation took {took:?}");

    // A deleted user.
    let (u, token) = user(&s.state).await;
    assert_eq!(get(&s, "/api/me", &token).await, StatusCode::OK);
    other.kv().delete("users", &u.id).await.unwrap();
    let took = until(&s, "/api/me", &token, StatusCode::UNAUTHORIZED).await;
    assert!(took < Duration::from_secs(1), "deletion took {took:?}");
}
