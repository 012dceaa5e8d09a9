//! Cancel stops the guest (issue 9): cancelling a running execution interrupts a
//! spinning wasm guest or removes a sleeping container, frees the worker's slot at
//! once (a second invoke on a one-slot worker completes within 2 s), and the record
//! stays `cancelled`. On the embedded backend, on NATS with the worker in another
//! process than the API, and on Docker.

#[path = "support/cluster.rs"]
mod cluster;
#[path = "support/harness.rs"]
mod harness;
#[path = "../runtime/tests/support/nats_server.rs"]
mod nats_server;

use std::process::Command;
use std::time::{Duration, Instant};

use harness::{Api, TestApp};
use serde_json::{Value, json};

/// Within this much of the cancel, a second invoke on the one freed slot has ended.
const FREED_WITHIN: Duration = Duration::from_secs(2);

/// Waits until execution `id` is `running`.
async fn until_running(api: &Api, token: &str, id: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let e = api
            .get(token, &format!("/api/executions/{id}"))
            .await
            .expect(200);
        match e["status"].as_str() {
            Some("running") => return,
            Some("pending") => {}
            _ => panic!("execution ended before it was cancelled: {e}"),
        }
        assert!(Instant::now() < deadline, "never ran: {e}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Starts `long` (it occupies the only slot), cancels it while it runs, and proves
/// the slot is free: `quick` invoked right after completes within [`FREED_WITHIN`].
/// Returns the cancelled execution's id.
async fn cancel_frees_the_slot(
    api: &Api,
    token: &str,
    long: (&str, Value),
    quick: (&str, Value),
) -> String {
    let started = api
        .post(
            token,
            &format!("/api/functions/{}/invoke?wait=0", long.0),
            json!({"input": long.1}),
        )
        .await
        .expect(202);
    let id = started["id"].as_str().unwrap().to_string();
    until_running(api, token, &id).await;
    // Running for a moment: the guest is inside its loop, not starting up.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let cancelled_at = Instant::now();
    let c = api
        .post(token, &format!("/api/executions/{id}/cancel"), json!({}))
        .await
        .expect(200);
    assert_eq!(c["status"], "cancelled", "{c}");
    let second = api
        .post(
            token,
            &format!("/api/functions/{}/invoke?wait=10", quick.0),
            json!({"input": quick.1}),
        )
        .await
        .expect(200);
    let took = cancelled_at.elapsed();
    assert_eq!(second["status"], "completed", "{second}");
    assert!(
        took <= FREED_WITHIN,
        "the slot was freed only after {took:?}"
    );
    eprintln!("cancel to the next execution completed: {took:?}");
    // A second cancel is a conflict; the record stays cancelled (the stopped run
    // never overwrites it).
    api.post(token, &format!("/api/executions/{id}/cancel"), json!({}))
        .await
        .expect_error(409, "conflict");
    tokio::time::sleep(Duration::from_millis(500)).await;
    let e = api
        .get(token, &format!("/api/executions/{id}"))
        .await
        .expect(200);
    assert_eq!(e["status"], "cancelled", "{e}");
    id
}

fn spin(ms: u64) -> Value {
    json!({"direct_inputs": {"ms": ms}})
}

async fn deploy_spin(api: &Api, token: &str) -> String {
    let f = api
        .deploy(
            token,
            "spin",
            harness::sample("c-spin.wasm"),
            &[("timeout_secs", "60")],
        )
        .await
        .expect(201);
    f["id"].as_str().unwrap().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn embedded_cancel_stops_a_spinning_wasm_guest() {
    let app = TestApp::start(&["--max-concurrent=1"]).await;
    let (token, _) = app.api.user("canceller").await;
    let spin_id = deploy_spin(&app.api, &token).await;
    let hello = app.api.deploy_sample(&token, "c-hello.wasm").await;
    let id = cancel_frees_the_slot(
        &app.api,
        &token,
        (&spin_id, spin(60_000)),
        (&hello, json!({})),
    )
    .await;
    // The guest is gone: shutting down does not wait for a 60 s spin.
    let stopping = Instant::now();
    app.stop().await;
    assert!(
        stopping.elapsed() < Duration::from_secs(4),
        "shutdown waited {:?}",
        stopping.elapsed()
    );
    assert!(!id.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn nats_cancel_reaches_a_worker_in_another_process() {
    let mut c = cluster::Cluster::start(1, &[("MAX_CONCURRENT_EXECUTIONS", "1")]);
    let api = Api::new(&c.base);
    let (token, _) = api.user("remote-canceller").await;
    let spin_id = deploy_spin(&api, &token).await;
    let hello = api.deploy_sample(&token, "c-hello.wasm").await;
    cancel_frees_the_slot(&api, &token, (&spin_id, spin(60_000)), (&hello, json!({}))).await;
    assert_eq!(
        c.count_in_worker_logs("the guest was stopped"),
        1,
        "the worker stopped the guest"
    );
    c.assert_alive();
}

fn docker(args: &[&str]) -> String {
    let out = Command::new("docker")
        .args(args)
        .output()
        .expect("docker CLI");
    assert!(
        out.status.success(),
        "docker {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A FROM-scratch busybox image running `script`.
fn busybox_image(tag: &str, script: &str) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy("/bin/busybox", dir.path().join("busybox"))
        .expect("busybox-static (make test-deps)");
    // The input follows the entrypoint in argv; `sh -c` leaves it unused.
    let dockerfile = format!(
        "FROM scratch\nCOPY busybox /bin/busybox\nENTRYPOINT [\"/bin/busybox\", \"sh\", \"-c\", \"{script}\", \"fn\"]\n"
    );
    std::fs::write(dir.path().join("Dockerfile"), dockerfile).unwrap();
    docker(&["build", "-q", "-t", tag, dir.path().to_str().unwrap()]);
}

async fn deploy_image(api: &Api, token: &str, name: &str, image: &str) -> String {
    let f = api
        .post(token, "/api/functions", json!({"name": name, "image_url": image, "pull_policy": "never", "timeout_secs": 60, "memory_mb": 32}))
        .await
        .expect(201);
    f["id"].as_str().unwrap().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn embedded_cancel_removes_a_sleeping_container() {
    busybox_image("faas-test-cancel-sleeper:1", "sleep 60");
    busybox_image("faas-test-cancel-quick:1", "echo '{\\\"ok\\\": true}'");
    let app = TestApp::start(&["--docker=on", "--max-concurrent=1"]).await;
    let (token, _) = app.api.user("container-canceller").await;
    let sleeper = deploy_image(&app.api, &token, "sleeper", "faas-test-cancel-sleeper:1").await;
    let quick = deploy_image(&app.api, &token, "quick", "faas-test-cancel-quick:1").await;
    let id =
        cancel_frees_the_slot(&app.api, &token, (&sleeper, json!({})), (&quick, json!({}))).await;
    // The container is gone, not left sleeping for a minute.
    let filter = format!("label=faas.execution-id={id}");
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let left = docker(&["ps", "-aq", "--filter", &filter]);
        if left.trim().is_empty() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the cancelled execution's container is still there: {left}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    app.stop().await;
}
