//! Tokens that end (password change, log out everywhere, by an admin), `GET /api/me`,
//! readiness details only for admins, and the start-up admin that is never promoted
//! without its password.

use std::sync::Arc;

use faas::platform::Platform;
use faas_runtime::model::{Role, User, new_id, now};
use serde_json::json;

use crate::harness::{Api, TestApp, config};

#[tokio::test]
async fn a_password_change_needs_the_old_one_and_ends_earlier_tokens() {
    let app = TestApp::start(&[]).await;
    let api = &app.api;
    let (first, _) = api.user("ada").await;
    let second = api.login("ada", "password123").await;
    let change = |token: &str, body| {
        let req = api
            .http
            .put(api.url("/api/me/password"))
            .bearer_auth(token)
            .json(&body);
        api.send(req)
    };
    change(
        &first,
        json!({"old_password": "wrong-password", "new_password": "newpassword1"}),
    )
    .await
    .expect_error(401, "unauthorized");
    change(
        &first,
        json!({"old_password": "password123", "new_password": "short"}),
    )
    .await
    .expect_error(400, "invalid_password");
    change(&first, json!({"new_password": "newpassword1"}))
        .await
        .expect_error(400, "malformed_json");
    api.get(&first, "/api/me").await.expect(200);
    let fresh = change(
        &first,
        json!({"old_password": "password123", "new_password": "newpassword1"}),
    )
    .await
    .expect(200);
    for old in [&first, &second] {
        api.get(old, "/api/functions")
            .await
            .expect_error(401, "unauthorized");
    }
    let fresh = fresh["token"].as_str().unwrap();
    api.get(fresh, "/api/functions").await.expect(200);
    let login = |p: &str| {
        api.send(
            api.http
                .post(api.url("/auth/login"))
                .json(&json!({"username": "ada", "password": p})),
        )
    };
    login("password123").await.expect_error(401, "unauthorized");
    login("newpassword1").await.expect(200);
    app.stop().await;
}

#[tokio::test]
async fn logout_all_ends_every_token_and_an_admin_can_end_anyones() {
    let app = TestApp::start(&[]).await;
    let api = &app.api;
    let (ada, ada_id) = api.user("ada").await;
    let ada2 = api.login("ada", "password123").await;
    let (bob, bob_id) = api.user("bob").await;
    api.post(&ada, "/auth/logout-all", json!({}))
        .await
        .expect(204);
    for t in [&ada, &ada2] {
        api.get(t, "/api/me")
            .await
            .expect_error(401, "unauthorized");
    }
    api.get(&bob, "/api/me").await.expect(200);
    let ada = api.login("ada", "password123").await;
    api.get(&ada, "/api/me").await.expect(200);
    api.post(&ada, &format!("/api/users/{bob_id}/logout-all"), json!({}))
        .await
        .expect_error(404, "not_found");
    api.get(&bob, "/api/me").await.expect(200);
    let root = api.login("root", "rootpassword").await;
    api.post(&root, &format!("/api/users/{bob_id}/logout-all"), json!({}))
        .await
        .expect(204);
    api.get(&bob, "/api/me")
        .await
        .expect_error(401, "unauthorized");
    api.get(&ada, "/api/me").await.expect(200);
    api.post(&root, "/api/users/no-such-user/logout-all", json!({}))
        .await
        .expect_error(404, "not_found");
    api.post(&ada, &format!("/api/users/{ada_id}/logout-all"), json!({}))
        .await
        .expect(204);
    api.get(&ada, "/api/me")
        .await
        .expect_error(401, "unauthorized");
    app.stop().await;
}

#[tokio::test]
async fn me_shows_the_caller_and_no_secret() {
    let app = TestApp::start(&[]).await;
    let api = &app.api;
    let (t, id) = api.user("Ada").await;
    let me = api.get(&t, "/api/me").await.expect(200);
    assert_eq!(
        (&me["id"], &me["username"], &me["role"]),
        (&json!(id), &json!("Ada"), &json!("user"))
    );
    assert!(me["created_at"].is_string() && me.get("password_hash").is_none());
    api.get("", "/api/me")
        .await
        .expect_error(401, "unauthorized");
    let doc = api.get("", "/api/openapi.json").await.expect(200);
    for (path, method) in [
        ("/api/me", "get"),
        ("/api/me/password", "put"),
        ("/auth/logout-all", "post"),
        ("/api/users/{id}/logout-all", "post"),
    ] {
        assert!(
            doc["paths"][path][method].is_object(),
            "{method} {path} documented"
        );
    }
    println!("MeView schema: {}", doc["components"]["schemas"]["MeView"]);
    app.stop().await;
}

#[tokio::test]
async fn readiness_details_are_for_admins_only() {
    let app = TestApp::start(&[]).await;
    let api = &app.api;
    let (user, _) = api.user("ada").await;
    let anonymous = api.send(api.http.get(api.url("/readyz"))).await.expect(200);
    assert_eq!(anonymous, json!({"status": "ready"}));
    for token in [user.as_str(), "garbage"] {
        assert_eq!(
            api.get(token, "/readyz").await.expect(200),
            json!({"status": "ready"})
        );
    }
    let root = api.login("root", "rootpassword").await;
    let details = api.get(&root, "/readyz").await.expect(200);
    assert_eq!(details["status"], "ready");
    assert!(details["queue"]["pending"].is_number(), "{details}");
    assert_eq!(details["executors"]["wasm"], "ready", "{details}");
    app.stop().await;
}

/// An account registered under the admin's name before the admin existed.
async fn register_squatter(data: &std::path::Path) {
    let platform = Platform::start(config(data, &[])).await.unwrap();
    let api = Api::new(&format!("http://{}", platform.addr.unwrap()));
    api.user("eve").await;
    platform.stop().await;
}

async fn start_with_admin(
    data: &std::path::Path,
    name: &str,
    password: &str,
) -> anyhow::Result<Platform> {
    let mut c = config(data, &[]);
    c.admin_username = Some(name.into());
    c.admin_password = Some(password.into());
    Platform::start(c).await
}

#[tokio::test]
async fn the_startup_admin_never_promotes_an_account_without_its_password() {
    let data = tempfile::tempdir().unwrap();
    register_squatter(data.path()).await;
    let err = start_with_admin(data.path(), "EVE", "not-eves-password")
        .await
        .err()
        .expect("refuses to start");
    let msg = format!("{err:#}");
    assert!(
        msg.contains("refusing to promote") && msg.contains("eve"),
        "{msg}"
    );
    let cli = std::process::Command::new(env!("CARGO_BIN_EXE_faas"))
        .args(["admin", "eve", "--password", "not-eves-password"])
        .arg(format!("--data-dir={}", data.path().display()))
        .env_remove("FAAS_ADMIN_PASSWORD")
        .output()
        .unwrap();
    assert!(!cli.status.success(), "faas admin refuses too");
    assert!(String::from_utf8_lossy(&cli.stderr).contains("refusing to promote"));
    let platform = start_with_admin(data.path(), "eve", "password123")
        .await
        .expect("the account's own password promotes it");
    let api = Api::new(&format!("http://{}", platform.addr.unwrap()));
    let eve = api.login("eve", "password123").await;
    let me = api.get(&eve, "/api/me").await.expect(200);
    assert_eq!(me["role"], "admin");
    platform.stop().await;
}

#[tokio::test]
async fn the_refused_admin_stays_a_user() {
    let data = tempfile::tempdir().unwrap();
    register_squatter(data.path()).await;
    assert!(
        start_with_admin(data.path(), "eve", "wrong-password")
            .await
            .is_err()
    );
    let platform = Platform::start(config(data.path(), &[])).await.unwrap();
    let api = Api::new(&format!("http://{}", platform.addr.unwrap()));
    let eve = api.login("eve", "password123").await;
    assert_eq!(api.get(&eve, "/api/me").await.expect(200)["role"], "user");
    platform.stop().await;
}

/// Writes an account the way the code before canonical usernames did: indexed by
/// its exact username.
async fn legacy_account(
    store: &faas_runtime::store::Store,
    auth: &faas_api::auth::Auth,
    name: &str,
) {
    let user = User {
        id: new_id(),
        username: name.into(),
        password_hash: auth
            .hash_password(format!("{name}-password"))
            .await
            .unwrap(),
        role: Role::User,
        created_at: now(),
        token_generation: 0,
    };
    let kv = store.kv();
    kv.create("usernames", name, user.id.clone().into_bytes().into())
        .await
        .unwrap();
    store.create_json("users", &user.id, &user).await.unwrap();
}

#[tokio::test]
async fn accounts_from_before_canonical_usernames_still_log_in() {
    let data = tempfile::tempdir().unwrap();
    {
        let db = faas_runtime::embedded::Db::open(data.path()).unwrap();
        let store =
            faas_runtime::store::Store::new(Arc::new(faas_runtime::embedded::EmbeddedKv::new(db)));
        let auth = faas_api::auth::Auth::new(
            &[7u8; 32],
            std::time::Duration::from_secs(60),
            faas_api::auth::LoginLimiter::new(Default::default()),
            Default::default(),
        )
        .unwrap();
        for name in ["Bob", "Dan", "dan"] {
            legacy_account(&store, &auth, name).await;
        }
    }
    let platform = Platform::start(config(data.path(), &[])).await.unwrap();
    let api = Api::new(&format!("http://{}", platform.addr.unwrap()));
    for (name, password) in [
        ("Bob", "Bob"),
        ("bob", "Bob"),
        ("BOB", "Bob"),
        ("Dan", "Dan"),
        ("dan", "dan"),
    ] {
        let t = api.login(name, &format!("{password}-password")).await;
        let me = api.get(&t, "/api/me").await.expect(200);
        assert_eq!(me["username"], password, "{name} logs into {password}");
    }
    api.send(
        api.http
            .post(api.url("/auth/register"))
            .json(&json!({"username": "bOb", "password": "password123"})),
    )
    .await
    .expect_error(409, "conflict");
    platform.stop().await;
}
