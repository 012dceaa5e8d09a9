//! Canonical usernames, the login throttle (per account, per address, reserved before
//! the password is checked), edge bounds and the bounded password hasher.

use std::time::{Duration, Instant};

use futures::future::join_all;
use serde_json::json;

use crate::harness::{Api, Reply, TestApp};

fn login<'a>(api: &'a Api, u: &str, p: &str) -> impl Future<Output = Reply> + use<'a> {
    let req = api
        .http
        .post(api.url("/auth/login"))
        .json(&json!({"username": u, "password": p}));
    api.send(req)
}

fn register<'a>(api: &'a Api, u: &str, p: &str) -> impl Future<Output = Reply> + use<'a> {
    let req = api
        .http
        .post(api.url("/auth/register"))
        .json(&json!({"username": u, "password": p}));
    api.send(req)
}

#[tokio::test]
async fn usernames_are_unique_in_any_letter_case_and_ascii_only() {
    let app = TestApp::start(&[]).await;
    let api = &app.api;
    let ada = register(api, "Ada", "password123").await.expect(201);
    assert_eq!(ada["username"], "Ada", "shown as registered");
    register(api, "ADMIN", "password123").await.expect(201);
    register(api, "admin", "password123")
        .await
        .expect_error(409, "conflict");
    register(api, "ROOT", "password123")
        .await
        .expect_error(409, "conflict");
    for name in ["ädmin", "admın", "ａｄｍｉｎ", "ad min"] {
        register(api, name, "password123")
            .await
            .expect_error(400, "invalid_username");
    }
    for name in ["ada", "ADA", "Ada"] {
        login(api, name, "password123").await.expect(200);
    }
    let users = api
        .get(&api.login("root", "rootpassword").await, "/api/users")
        .await
        .expect(200);
    assert_eq!(users["users"].as_array().unwrap().len(), 3, "{users}");
    app.stop().await;
}

#[tokio::test]
async fn the_case_variant_throttle_bypass_is_closed() {
    let app = TestApp::start(&["--login-max-failures=3"]).await;
    let api = &app.api;
    // The old bypass: register a case variant of the target, guess, reset the
    // shared counter by logging into the variant, guess again.
    register(api, "ROOT", "password123")
        .await
        .expect_error(409, "conflict");
    api.user("eve").await;
    login(api, "root", "guess-one").await.expect(401);
    login(api, "ROOT", "guess-two").await.expect(401);
    login(api, "eve", "password123").await.expect(200);
    login(api, "Root", "guess-three").await.expect(401);
    let locked = login(api, "root", "rootpassword").await;
    locked.expect_error(429, "too_many_attempts");
    login(api, "eve", "password123").await.expect(200);
    app.stop().await;
}

#[tokio::test]
async fn a_parallel_burst_cannot_pass_the_throttle_before_its_failures_count() {
    let app = TestApp::start(&[
        "--login-max-failures=5",
        "--login-max-failures-per-address=1000",
    ])
    .await;
    let api = &app.api;
    api.user("ada").await;
    let replies = join_all((0..20).map(|i| login(api, "ada", &format!("wrong-guess-{i}")))).await;
    let checked = replies.iter().filter(|r| r.status == 401).count();
    let throttled = replies.iter().filter(|r| r.status == 429).count();
    println!("burst of 20: {checked} checked (401), {throttled} throttled (429)");
    assert!(checked <= 5, "{checked} guesses reached the password check");
    assert_eq!(checked + throttled, 20, "{replies:?}");
    app.stop().await;
}

#[tokio::test]
async fn attempts_are_also_counted_per_client_address() {
    let app = TestApp::start(&[
        "--login-max-failures=100",
        "--login-max-failures-per-address=4",
    ])
    .await;
    let api = &app.api;
    api.user("ada").await;
    for n in 0..4 {
        login(api, &format!("nobody{n}"), "wrongpassword")
            .await
            .expect(401);
    }
    let res = api
        .http
        .post(api.url("/auth/login"))
        .json(&json!({"username": "nobody9", "password": "wrongpassword"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 429);
    let wait: u64 = res.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=300).contains(&wait), "Retry-After {wait}");
    login(api, "ada", "password123")
        .await
        .expect_error(429, "too_many_attempts");
    app.stop().await;
}

#[tokio::test]
async fn oversized_credentials_are_refused_at_the_edge() {
    let app = TestApp::start(&["--login-max-failures-per-address=3"]).await;
    let api = &app.api;
    let huge = "a".repeat(2_000_000);
    let t = Instant::now();
    // Beyond the 16 KiB body cap of the auth routes: 413 before anything is parsed.
    login(api, &huge, "password123")
        .await
        .expect_error(413, "payload_too_large");
    register(api, &huge, "password123")
        .await
        .expect_error(413, "payload_too_large");
    // Within it, a username over 64 bytes is refused before anything is hashed.
    let long_name = "a".repeat(65);
    login(api, &long_name, "password123")
        .await
        .expect_error(400, "invalid_username");
    register(api, &long_name, "password123")
        .await
        .expect_error(400, "invalid_username");
    let long = "p".repeat(1025);
    login(api, "ada", &long)
        .await
        .expect_error(400, "invalid_password");
    register(api, "ada", &long)
        .await
        .expect_error(400, "invalid_password");
    // 1026 bytes in 342 characters: the bound is in bytes.
    register(api, "ada", &"€".repeat(342))
        .await
        .expect_error(400, "invalid_password");
    let elapsed = t.elapsed();
    println!("five oversized requests answered in {elapsed:?}");
    assert!(elapsed < Duration::from_secs(3), "{elapsed:?}");
    // Refused before any attempt was reserved: the address (3 attempts) is untouched.
    for _ in 0..10 {
        login(api, &huge, "password123").await.expect(413);
        login(api, &long_name, "password123").await.expect(400);
    }
    api.login("root", "rootpassword").await;
    app.stop().await;
}

#[tokio::test]
async fn password_hashing_is_bounded_and_answers_503_when_saturated() {
    let app = TestApp::start(&["--max-concurrent-hashes=1", "--hash-wait-ms=1"]).await;
    let api = &app.api;
    let sends = (0..8).map(|i| {
        api.http
            .post(api.url("/auth/register"))
            .json(&json!({"username": format!("user{i}"), "password": "password123"}))
            .send()
    });
    let mut created = 0;
    let mut busy = 0;
    for res in join_all(sends).await {
        let res = res.unwrap();
        match res.status().as_u16() {
            201 => created += 1,
            503 => {
                assert_eq!(res.headers()["retry-after"], "1");
                let body: serde_json::Value = res.json().await.unwrap();
                assert_eq!(body["error"], "overloaded", "{body}");
                busy += 1;
            }
            other => panic!("unexpected status {other}"),
        }
    }
    println!("8 parallel registrations, 1 hashing slot: {created} created, {busy} busy");
    assert!(created >= 1 && busy >= 1, "{created} created, {busy} busy");
    app.stop().await;
}

fn login_via<'a>(api: &'a Api, u: &str, forwarded: &str) -> impl Future<Output = Reply> + use<'a> {
    let req = api
        .http
        .post(api.url("/auth/login"))
        .header("x-forwarded-for", forwarded)
        .json(&json!({"username": u, "password": "wrongpassword"}));
    api.send(req)
}

#[tokio::test]
async fn forwarded_addresses_count_only_from_trusted_proxies() {
    let limits = [
        "--login-max-failures=100",
        "--login-max-failures-per-address=2",
    ];
    // Not trusted: a client rotating X-Forwarded-For stays one address.
    let app = TestApp::start(&limits).await;
    let api = &app.api;
    login_via(api, "nobody1", "198.51.100.1").await.expect(401);
    login_via(api, "nobody2", "198.51.100.2").await.expect(401);
    login_via(api, "nobody3", "198.51.100.3")
        .await
        .expect_error(429, "too_many_attempts");
    app.stop().await;
    // Behind a trusted proxy (the test client's 127.0.0.1), each forwarded client has
    // its own count, and entries left of the proxy's own are ignored.
    let app = TestApp::start(&[
        limits[0],
        limits[1],
        "--trusted-proxies=127.0.0.1,10.0.0.0/8",
    ])
    .await;
    let api = &app.api;
    login_via(api, "nobody1", "198.51.100.7").await.expect(401);
    login_via(api, "nobody2", "198.51.100.7").await.expect(401);
    login_via(api, "nobody3", "198.51.100.8, 198.51.100.7")
        .await
        .expect_error(429, "too_many_attempts");
    login_via(api, "nobody4", "198.51.100.8").await.expect(401);
    app.stop().await;
}

#[tokio::test]
async fn registrations_are_counted_per_client_address() {
    let app = TestApp::start(&["--register-max-per-address=3"]).await;
    let api = &app.api;
    for name in ["reg-one", "reg-two"] {
        register(api, name, "password123").await.expect(201);
    }
    // A taken name counts too: probing names costs attempts.
    register(api, "reg-one", "password123")
        .await
        .expect_error(409, "conflict");
    let refused = api
        .send(
            api.http
                .post(api.url("/auth/register"))
                .json(&json!({"username": "reg-three", "password": "password123"})),
        )
        .await;
    let body = refused.expect_error(429, "too_many_registrations");
    assert!(
        body["message"].as_str().unwrap().contains("retry in"),
        "{body}"
    );
    // Malformed requests are refused before they are counted; logins are apart.
    register(api, "x", "password123")
        .await
        .expect_error(400, "invalid_username");
    login(api, "reg-one", "password123").await.expect(200);
    // An admin still creates accounts.
    let root = api.login("root", "rootpassword").await;
    api.post(
        &root,
        "/api/users",
        json!({"username": "reg-three", "password": "password123"}),
    )
    .await
    .expect(201);
    app.stop().await;
}

#[tokio::test]
async fn closed_registration_leaves_account_creation_to_admins() {
    let app = TestApp::start(&["--registration=closed"]).await;
    let api = &app.api;
    register(api, "outsider", "password123")
        .await
        .expect_error(403, "forbidden");
    let root = api.login("root", "rootpassword").await;
    let made = api
        .post(
            &root,
            "/api/users",
            json!({"username": "Staff", "password": "password123", "role": "admin"}),
        )
        .await
        .expect(201);
    assert_eq!(made["role"], "admin", "{made}");
    api.post(
        &root,
        "/api/users",
        json!({"username": "staff", "password": "password123"}),
    )
    .await
    .expect_error(409, "conflict");
    api.post(
        &root,
        "/api/users",
        json!({"username": "bad", "password": "password123", "role": "owner"}),
    )
    .await
    .expect_error(400, "malformed_json");
    let staff = api.login("STAFF", "password123").await;
    let user = api
        .post(
            &staff,
            "/api/users",
            json!({"username": "plain", "password": "password123", "role": "user"}),
        )
        .await
        .expect(201);
    assert_eq!(user["role"], "user", "{user}");
    let plain = api.login("plain", "password123").await;
    api.post(
        &plain,
        "/api/users",
        json!({"username": "other", "password": "password123"}),
    )
    .await
    .expect_error(403, "forbidden");
    api.post(
        "not-a-token",
        "/api/users",
        json!({"username": "other", "password": "password123"}),
    )
    .await
    .expect_error(401, "unauthorized");
    app.stop().await;
}

#[tokio::test]
async fn auth_bodies_are_capped_at_16_kib() {
    let app = TestApp::start(&[]).await;
    let api = &app.api;
    let big = "a".repeat(20 * 1024);
    for path in ["/auth/register", "/auth/login"] {
        let reply = api
            .send(
                api.http
                    .post(api.url(path))
                    .json(&json!({"username": "ada", "password": big})),
            )
            .await;
        assert_eq!(reply.status, 413, "{path}: {}", reply.body);
        assert!(reply.body["error"].is_string(), "{path}: {}", reply.body);
    }
    // Just under the cap, a long password is refused by its own rule (400).
    let long = "b".repeat(15 * 1024);
    register(api, "ada", &long)
        .await
        .expect_error(400, "invalid_password");
    app.stop().await;
}
