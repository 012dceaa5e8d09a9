//! Preparing executions on a real `faas serve`: an object named twice survives,
//! a rotated secrets key ends executions `failed` with the cause instead of
//! leaving them pending, a deploy nothing can run is refused at once, a module
//! two functions share outlives one delete, and start-up removes a dead
//! process's staging.

#[path = "support/harness.rs"]
mod harness;

use std::time::{Duration, Instant};

use faas::platform::Platform;
use harness::{Api, TestApp, config, sample};
use serde_json::json;
use sha2::Digest;

#[tokio::test]
async fn an_object_named_twice_in_one_execution_stays_intact() {
    let app = TestApp::start(&[]).await;
    let api = &app.api;
    let (t, _) = api.user("ada").await;
    let f = api.deploy_sample(&t, "rust-read-object.wasm").await;
    let content = b"line one\nline two\n".to_vec();
    let meta = api
        .upload(&t, &f, "notes.txt", content.clone(), "text/plain")
        .await
        .expect(201);
    let key = format!("{f}/notes.txt");
    let run = api
        .run(&t, &f, json!({"object_inputs": {"a": key, "b": key}}))
        .await;
    assert_eq!(run["status"], "completed", "{run}");
    assert_eq!(run["result"]["objects"]["a"]["bytes"], 18, "{run}");
    assert_eq!(run["result"]["objects"]["b"]["bytes"], 18, "{run}");
    let res = api
        .http
        .get(api.url(&format!("/api/function-objects/{f}/notes.txt")))
        .bearer_auth(&t)
        .send()
        .await
        .unwrap();
    let body = res.bytes().await.unwrap();
    assert_eq!(
        body.as_ref(),
        content.as_slice(),
        "the stored object is whole"
    );
    assert_eq!(
        meta["sha256"].as_str().unwrap(),
        hex::encode(sha2::Sha256::digest(&body))
    );
    // It still runs (and downloads) after that.
    let again = api.run(&t, &f, json!({"object_inputs": {"a": key}})).await;
    assert_eq!(again["result"]["objects"]["a"]["bytes"], 18, "{again}");
    app.stop().await;
}

const KEY_ONE: &str = "3f9a1c5e7b2d4068a1c3e5f7092b4d6f8e0a2c4e6a8b0d2f4163758a9bcdef01";
const KEY_TWO: &str = "c0ffee4b1d2e3f405162738495a6b7c8d9e0f1a2b3c4d5e6f708192a3b4c5d6e";

async fn start(data: &std::path::Path, extra: &[&str]) -> (Platform, Api) {
    let p = Platform::start(config(data, extra)).await.expect("starts");
    let api = Api::new(&format!("http://{}", p.addr.unwrap()));
    (p, api)
}

#[tokio::test]
async fn a_rotated_secrets_key_fails_executions_with_the_cause() {
    let data = tempfile::tempdir().unwrap();
    let first = [
        &format!("--secrets-key={KEY_ONE}")[..],
        "--prepare-max-retries=3",
    ];
    let (p, api) = start(data.path(), &first).await;
    let (t, _) = api.user("ada").await;
    let f = api.deploy_sample(&t, "rust-read-secret.wasm").await;
    api.post(&t, "/api/secrets", json!({"name": "api_key", "value": "v"}))
        .await
        .expect(201);
    p.stop().await;
    let second = [
        &format!("--secrets-key={KEY_TWO}")[..],
        "--prepare-max-retries=3",
    ];
    let (p, api) = start(data.path(), &second).await;
    let t = api.login("ada", "password123").await;
    let id = api.submit(&t, &f, json!({"secrets": ["api_key"]})).await;
    let done = api.wait(&t, &id, Duration::from_secs(30)).await;
    assert_eq!(done["status"], "failed", "{done}");
    let error = done["error"].as_str().unwrap();
    assert!(
        error.contains("secret api_key could not be decrypted: the secrets key changed"),
        "{error}"
    );
    // Executions without secrets are not affected.
    let ok = api.run(&t, &f, json!({})).await;
    assert_eq!(ok["status"], "completed", "{ok}");
    p.stop().await;
}

#[tokio::test]
async fn an_image_deploy_that_nothing_can_run_is_refused_at_once() {
    let app = TestApp::start(&["--docker=off"]).await;
    let api = &app.api;
    let (t, _) = api.user("ada").await;
    let started = Instant::now();
    let body = json!({"name": "img", "image_url": "registry.local/team/fn:1.0"});
    let r = api.post(&t, "/api/functions", body).await;
    let took = started.elapsed();
    let r = r.expect_error(400, "runtime_unavailable");
    assert!(r["message"].as_str().unwrap().contains("docker"), "{r}");
    assert!(took < Duration::from_secs(2), "answered in {took:?}");
    let list = api.get(&t, "/api/functions").await.expect(200);
    assert_eq!(
        list["functions"].as_array().unwrap().len(),
        0,
        "nothing created"
    );
    app.stop().await;
}

fn artifacts(data: &std::path::Path, sha: &str) -> usize {
    std::fs::read_dir(data.join("compiled"))
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with(sha))
        .count()
}

#[tokio::test]
async fn a_module_two_users_share_outlives_one_delete() {
    let app = TestApp::start(&[]).await;
    let api = &app.api;
    let (a, _) = api.user("ada").await;
    let (b, _) = api.user("bob").await;
    let fa = api
        .deploy(&a, "hello", sample("rust-hello.wasm"), &[])
        .await
        .expect(201);
    let fb = api
        .deploy(&b, "hello", sample("rust-hello.wasm"), &[])
        .await
        .expect(201);
    let sha = fa["module_sha256"].as_str().unwrap();
    assert_eq!(fb["module_sha256"].as_str().unwrap(), sha);
    let module = app.data.path().join("objects/modules").join(sha);
    assert_eq!(artifacts(app.data.path(), sha), 1);
    let fa = fa["id"].as_str().unwrap();
    let fb = fb["id"].as_str().unwrap();
    api.delete(&a, &format!("/api/functions/{fa}"))
        .await
        .expect(204);
    assert_eq!(
        artifacts(app.data.path(), sha),
        1,
        "bob's compiled module stays"
    );
    assert!(module.exists(), "bob's module bytes stay");
    let run = api.run(&b, fb, json!({})).await;
    assert_eq!(run["status"], "completed", "{run}");
    api.delete(&b, &format!("/api/functions/{fb}"))
        .await
        .expect(204);
    assert_eq!(artifacts(app.data.path(), sha), 0, "unused: dropped");
    assert!(!module.exists(), "unused module bytes removed");
    app.stop().await;
}

#[tokio::test]
async fn start_up_removes_the_staging_a_dead_process_left() {
    let data = tempfile::tempdir().unwrap();
    let left = data.path().join("staging/dead-worker/exec-1/fn");
    std::fs::create_dir_all(&left).unwrap();
    std::fs::write(left.join("obj"), b"half-staged").unwrap();
    let (p, _api) = start(data.path(), &[]).await;
    let rest: Vec<_> = std::fs::read_dir(data.path().join("staging"))
        .unwrap()
        .flatten()
        .collect();
    assert!(rest.is_empty(), "staging swept: {rest:?}");
    p.stop().await;
}

#[path = "../runtime/tests/support/nats_server.rs"]
mod nats_server;

/// `faas api` on NATS runs no worker: it asks the workers' heartbeats whether any
/// of them runs container functions.
#[tokio::test]
async fn faas_api_on_nats_accepts_an_image_only_when_a_live_worker_runs_docker() {
    use faas_runtime::model::RuntimeKind;
    use faas_runtime::store::{Store, buckets};
    use faas_runtime::worker::presence::WorkerPresence;
    let nats = nats_server::NatsServer::start();
    let data = tempfile::tempdir().unwrap();
    let extra = [
        format!("--nats-url={}", nats.url()),
        format!("--secrets-key={KEY_ONE}"),
        "--jwt-secret=preparation-test-jwt-secret-0123456789abcdef".to_string(),
    ];
    let extra: Vec<&str> = extra.iter().map(String::as_str).collect();
    let p = Platform::start_roles(config(data.path(), &extra), faas::platform::Roles::Api)
        .await
        .expect("faas api starts");
    let api = Api::new(&format!("http://{}", p.addr.unwrap()));
    let (t, _) = api.user("ada").await;
    let image = json!({"name": "img", "image_url": "registry.local/team/fn:1.0"});
    api.post(&t, "/api/functions", image.clone())
        .await
        .expect_error(400, "runtime_unavailable");
    // A live worker that runs only wasm does not help; one that runs docker does.
    let backend = faas_runtime::nats::connect(&nats.url(), Default::default())
        .await
        .unwrap();
    let store = Store::new(std::sync::Arc::new(backend.kv));
    let now = time::OffsetDateTime::now_utc();
    let mut worker = WorkerPresence {
        worker_id: "w-wasm".into(),
        host: String::new(),
        running: 0,
        max_concurrent: 1,
        runtimes: vec![RuntimeKind::Wasm],
        started_at: now,
        last_seen: now,
    };
    store
        .put_json(buckets::WORKERS, "w-wasm", &worker)
        .await
        .unwrap();
    api.post(&t, "/api/functions", image.clone())
        .await
        .expect_error(400, "runtime_unavailable");
    worker.worker_id = "w-docker".into();
    worker.runtimes = vec![RuntimeKind::Docker, RuntimeKind::Wasm];
    store
        .put_json(buckets::WORKERS, "w-docker", &worker)
        .await
        .unwrap();
    let f = api.post(&t, "/api/functions", image).await.expect(201);
    assert_eq!(f["runtime"], "docker");
    p.stop().await;
}
