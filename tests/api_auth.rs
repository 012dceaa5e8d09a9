//! Users and authentication through the real HTTP server: registration, login,
//! tokens (expired, tampered, `alg: none`), throttling, roles; canonical usernames and
//! the throttle's bounds in `throttle`, tokens that end and the start-up admin in
//! `sessions`.

#[path = "support/harness.rs"]
mod harness;
#[path = "api_auth/sessions.rs"]
mod sessions;
#[path = "api_auth/throttle.rs"]
mod throttle;

use harness::TestApp;
use serde_json::json;

#[tokio::test]
async fn register_login_and_validation() {
    let app = TestApp::start(&[]).await;
    let api = &app.api;
    let reg = |body| api.send(api.http.post(api.url("/auth/register")).json(&body));
    let u = reg(json!({"username": "ada", "password": "password123", "role": "admin"}))
        .await
        .expect(201);
    assert_eq!(u["role"], "user", "registration never grants admin");
    assert!(
        u.get("password").is_none() && u.get("password_hash").is_none(),
        "no password in {u}"
    );
    reg(json!({"username": "ada", "password": "password123"}))
        .await
        .expect_error(409, "conflict");
    reg(json!({"username": "a", "password": "password123"}))
        .await
        .expect_error(400, "invalid_username");
    reg(json!({"username": "bob", "password": "short"}))
        .await
        .expect_error(400, "invalid_password");
    reg(json!({"username": "bob"}))
        .await
        .expect_error(400, "malformed_json");
    let raw = api
        .send(
            api.http
                .post(api.url("/auth/register"))
                .header("content-type", "application/json")
                .body("{not json"),
        )
        .await;
    raw.expect_error(400, "malformed_json");
    let no_ct = api
        .send(api.http.post(api.url("/auth/register")).body("{}"))
        .await;
    no_ct.expect_error(415, "unsupported_media_type");
    let ok = api
        .send(
            api.http
                .post(api.url("/auth/login"))
                .json(&json!({"username": "ada", "password": "password123"})),
        )
        .await
        .expect(200);
    assert!(ok["token"].as_str().unwrap().len() > 20 && ok["expires_at"].is_string());
    app.stop().await;
}

#[tokio::test]
async fn unknown_user_and_wrong_password_look_the_same_and_are_throttled() {
    let app = TestApp::start(&["--login-max-failures=3"]).await;
    let api = &app.api;
    api.user("ada").await;
    let login = |u: &str, p: &str| {
        api.send(
            api.http
                .post(api.url("/auth/login"))
                .json(&json!({"username": u, "password": p})),
        )
    };
    let t0 = std::time::Instant::now();
    let wrong = login("ada", "wrongpassword").await;
    let t_wrong = t0.elapsed();
    let t1 = std::time::Instant::now();
    let unknown = login("nobody", "wrongpassword").await;
    let t_unknown = t1.elapsed();
    assert_eq!(
        (wrong.status, &wrong.body),
        (unknown.status, &unknown.body),
        "same status and body"
    );
    assert_eq!(wrong.status, 401);
    let ratio = t_wrong.as_secs_f64() / t_unknown.as_secs_f64();
    println!(
        "login timing: wrong password {t_wrong:?}, unknown user {t_unknown:?} (ratio {ratio:.2})"
    );
    assert!(
        t_unknown.as_millis() >= 5,
        "unknown users also pay for a hash ({t_unknown:?})"
    );
    login("ada", "wrongpassword").await.expect(401);
    login("ada", "wrongpassword").await.expect(401);
    login("ada", "wrongpassword")
        .await
        .expect_error(429, "too_many_attempts");
    login("ada", "password123")
        .await
        .expect_error(429, "too_many_attempts");
    app.stop().await;
}

#[tokio::test]
async fn bad_tokens_are_401() {
    let secret = "0123456789abcdef0123456789abcdef-test";
    let app = TestApp::start(&[&format!("--jwt-secret={secret}")]).await;
    let api = &app.api;
    let (token, id) = api.user("ada").await;
    api.get(&token, "/api/functions").await.expect(200);
    api.send(api.http.get(api.url("/api/functions")))
        .await
        .expect_error(401, "unauthorized");
    api.get("garbage", "/api/functions")
        .await
        .expect_error(401, "unauthorized");
    let mut tampered = token.clone();
    tampered.pop();
    tampered.push(if token.ends_with('A') { 'B' } else { 'A' });
    api.get(&tampered, "/api/functions")
        .await
        .expect_error(401, "unauthorized");
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let key = jsonwebtoken::EncodingKey::from_secret(secret.as_bytes());
    let sign = |claims: serde_json::Value, alg| {
        jsonwebtoken::encode(&jsonwebtoken::Header::new(alg), &claims, &key).unwrap()
    };
    let expired = sign(
        json!({"sub": id, "role": "user", "iat": now - 7200, "exp": now - 3600}),
        jsonwebtoken::Algorithm::HS256,
    );
    api.get(&expired, "/api/functions")
        .await
        .expect_error(401, "unauthorized");
    let no_exp = sign(
        json!({"sub": id, "role": "user", "iat": now}),
        jsonwebtoken::Algorithm::HS256,
    );
    api.get(&no_exp, "/api/functions")
        .await
        .expect_error(401, "unauthorized");
    let hs512 = sign(
        json!({"sub": id, "role": "user", "iat": now, "exp": now + 60}),
        jsonwebtoken::Algorithm::HS512,
    );
    api.get(&hs512, "/api/functions")
        .await
        .expect_error(401, "unauthorized");
    use base64::Engine;
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let none = format!(
        "{}.{}.",
        b64.encode(br#"{"alg":"none","typ":"JWT"}"#),
        b64.encode(json!({"sub": id, "role": "admin", "iat": now, "exp": now + 60}).to_string())
    );
    api.get(&none, "/api/functions")
        .await
        .expect_error(401, "unauthorized");
    let valid = sign(
        json!({"sub": id, "role": "user", "iat": now, "exp": now + 60}),
        jsonwebtoken::Algorithm::HS256,
    );
    api.get(&valid, "/api/functions").await.expect(200);
    app.stop().await;
}

#[tokio::test]
async fn users_routes_respect_roles() {
    let app = TestApp::start(&[]).await;
    let api = &app.api;
    let (ada, ada_id) = api.user("ada").await;
    let (_bob, bob_id) = api.user("bob").await;
    let root = api.login("root", "rootpassword").await;
    api.get(&ada, "/api/users")
        .await
        .expect_error(403, "forbidden");
    let all = api.get(&root, "/api/users").await.expect(200);
    let names: Vec<&str> = all["users"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["username"].as_str().unwrap())
        .collect();
    assert!(
        names.contains(&"ada") && names.contains(&"bob") && names.contains(&"root"),
        "{names:?}"
    );
    assert!(
        all.to_string().find("argon2").is_none(),
        "no hashes in listings"
    );
    let page = api.get(&root, "/api/users?limit=2").await.expect(200);
    assert_eq!(page["users"].as_array().unwrap().len(), 2);
    let cursor = page["next_cursor"].as_str().expect("a next page");
    let rest = api
        .get(&root, &format!("/api/users?limit=2&cursor={cursor}"))
        .await
        .expect(200);
    assert_eq!(rest["users"].as_array().unwrap().len(), 1);
    api.get(&root, "/api/users?limit=0")
        .await
        .expect_error(400, "invalid_query");
    assert_eq!(
        api.get(&ada, &format!("/api/users/{ada_id}"))
            .await
            .expect(200)["username"],
        "ada"
    );
    api.get(&ada, &format!("/api/users/{bob_id}"))
        .await
        .expect_error(404, "not_found");
    assert_eq!(
        api.get(&root, &format!("/api/users/{bob_id}"))
            .await
            .expect(200)["username"],
        "bob"
    );
    app.stop().await;
}
