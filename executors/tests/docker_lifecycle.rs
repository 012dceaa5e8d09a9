//! Engine and image life cycle of the Docker executor, against the real engine: the
//! reaper, `prepare()` checks, pull policies and pull failures, an unreachable engine.

#[path = "fixtures/docker/harness.rs"]
mod harness;
#[path = "fixtures/docker/images.rs"]
mod images;

use std::collections::HashMap;

use bollard::models::ContainerCreateBody;
use faas_executors::docker::{
    DockerConfig, DockerExecutor, LABEL_EXECUTION_ID, LABEL_INSTALLATION, LABEL_MANAGED_BY,
    LABEL_WORKER_ID,
};
use faas_runtime::Error;
use faas_runtime::model::PullPolicy;
use faas_runtime::ports::{Executor, Termination};
use harness::{config, executor, executor_with, function, image_mut, request};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Starts a labelled container the way a worker of the test installation that died
/// mid-execution leaves it.
async fn orphan(docker: &bollard::Docker, worker: &str, execution: &str) -> String {
    orphan_of(docker, Some(harness::TEST_INSTALLATION), worker, execution).await
}

/// Like [`orphan`], for `installation` (`None`: without the label, as older releases).
async fn orphan_of(
    docker: &bollard::Docker,
    installation: Option<&str>,
    worker: &str,
    execution: &str,
) -> String {
    let image = images::script_image(docker, "idle", "sleep 600").await;
    orphan_running(docker, installation, worker, execution, image).await
}

/// Like [`orphan_of`], running `image`.
async fn orphan_running(
    docker: &bollard::Docker,
    installation: Option<&str>,
    worker: &str,
    execution: &str,
    image: String,
) -> String {
    let mut labels = HashMap::from([
        (LABEL_MANAGED_BY.to_string(), "faas".to_string()),
        (LABEL_EXECUTION_ID.to_string(), execution.to_string()),
        (LABEL_WORKER_ID.to_string(), worker.to_string()),
    ]);
    if let Some(installation) = installation {
        labels.insert(LABEL_INSTALLATION.to_string(), installation.to_string());
    }
    let body = ContainerCreateBody {
        image: Some(image),
        labels: Some(labels),
        ..Default::default()
    };
    let id = docker.create_container(None, body).await.unwrap().id;
    docker.start_container(&id, None).await.unwrap();
    id
}

#[tokio::test]
async fn reap_removes_containers_of_dead_workers_and_keeps_live_ones() {
    let docker = images::docker().await;
    let pid = std::process::id();
    let dead_worker = format!("dead-worker-{pid}");
    let live_worker = format!("live-worker-{pid}");
    let dead = orphan(&docker, &dead_worker, "exec-dead").await;
    let live = orphan(&docker, &live_worker, "exec-live").await;
    let executor = executor("reaper").await;
    let removed = executor
        .reap(|_, worker| worker != dead_worker)
        .await
        .unwrap();
    assert!(removed >= 1);
    let gone = docker.inspect_container(&dead, None).await;
    assert!(gone.is_err(), "the dead worker's container is still there");
    assert!(docker.inspect_container(&live, None).await.is_ok());
    executor
        .reap(|_, worker| worker != live_worker)
        .await
        .unwrap();
    assert!(docker.inspect_container(&live, None).await.is_err());
}

#[tokio::test]
async fn reap_leaves_other_installations_and_unlabelled_containers_alone() {
    let docker = images::docker().await;
    let pid = std::process::id();
    let dead_worker = format!("gone-worker-{pid}");
    let other = orphan_of(
        &docker,
        Some("another-installation"),
        &dead_worker,
        "exec-a",
    )
    .await;
    let old = orphan_of(&docker, None, &dead_worker, "exec-old").await;
    let ours = orphan(&docker, &dead_worker, "exec-ours").await;
    let executor = executor("installations").await;
    executor
        .reap(|_, worker| worker != dead_worker)
        .await
        .unwrap();
    assert!(docker.inspect_container(&ours, None).await.is_err());
    for (kept, what) in [(&other, "another installation's"), (&old, "an unlabelled")] {
        let alive = docker.inspect_container(kept, None).await;
        assert!(alive.is_ok(), "{what} container was removed");
    }
    for id in [other, old] {
        force_remove(&docker, &id).await;
    }
}

async fn force_remove(docker: &bollard::Docker, id: &str) {
    let rm = bollard::query_parameters::RemoveContainerOptionsBuilder::default()
        .force(true)
        .build();
    docker.remove_container(id, Some(rm)).await.unwrap();
}

/// Waits until container `id` has ended.
async fn wait_ended(docker: &bollard::Docker, id: &str) {
    for _ in 0..100 {
        let state = docker.inspect_container(id, None).await.unwrap().state;
        if state.and_then(|s| s.running) == Some(false) {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("container {id} did not end");
}

#[tokio::test]
async fn reap_removes_long_ended_containers_of_other_installations_only() {
    let docker = images::docker().await;
    let pid = std::process::id();
    let worker = format!("killed-worker-{pid}");
    let quick = images::script_image(&docker, "quick", "true").await;
    let ended_other = orphan_running(
        &docker,
        Some("wiped-installation"),
        &worker,
        "exec-e1",
        quick.clone(),
    )
    .await;
    let ended_old = orphan_running(&docker, None, &worker, "exec-e2", quick).await;
    let running_other = orphan_of(&docker, Some("wiped-installation"), &worker, "exec-r").await;
    for id in [&ended_other, &ended_old] {
        wait_ended(&docker, id).await;
    }
    // Ended, but not long enough ago: kept.
    let patient = executor("ended-patient").await;
    patient.reap(|_, _| true).await.unwrap();
    for id in [&ended_other, &ended_old, &running_other] {
        assert!(docker.inspect_container(id, None).await.is_ok());
    }
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    let mut config = config("ended");
    config.ended_grace = std::time::Duration::from_secs(1);
    let executor = executor_with(config).await;
    executor.reap(|_, _| true).await.unwrap();
    for id in [&ended_other, &ended_old] {
        let gone = docker.inspect_container(id, None).await;
        assert!(gone.is_err(), "a long-ended leftover {id} is still there");
    }
    let alive = docker.inspect_container(&running_other, None).await;
    assert!(
        alive.is_ok(),
        "a running container of another installation was removed"
    );
    force_remove(&docker, &running_other).await;
}

#[tokio::test]
async fn connect_removes_what_an_earlier_life_of_the_same_worker_left() {
    let docker = images::docker().await;
    let config = config("restart");
    let left = orphan(&docker, &config.worker_id, "exec-before-restart").await;
    let _executor = executor_with(config).await;
    assert!(docker.inspect_container(&left, None).await.is_err());
}

#[tokio::test]
async fn prepare_checks_the_reference_and_never_policy_presence() {
    let executor = executor("prepare").await;
    let image = images::script_image(&images::docker().await, "ok", "echo '{}'").await;
    let mut f = function("Not A/Valid:ref");
    match executor.prepare(&f, None).await {
        Err(Error::Invalid(why)) => assert!(why.contains("image reference"), "{why}"),
        other => panic!("expected Invalid, got {other:?}"),
    }
    f.runnable = faas_runtime::model::Runnable::Wasm(Default::default());
    assert!(matches!(
        executor.prepare(&f, None).await,
        Err(Error::Invalid(_))
    ));
    f.runnable = faas_runtime::model::Runnable::Image(faas_runtime::model::ImageSpec {
        pull_policy: Some(PullPolicy::Never),
        ..faas_runtime::model::ImageSpec::new("faas-test-absent:never")
    });
    match executor.prepare(&f, None).await {
        Err(Error::Invalid(why)) => assert!(why.contains("not present"), "{why}"),
        other => panic!("expected Invalid, got {other:?}"),
    }
    image_mut(&mut f).image_url = image;
    executor.prepare(&f, None).await.unwrap();
    image_mut(&mut f).image_url = "registry.example/unpulled:1".to_string();
    image_mut(&mut f).pull_policy = None;
    executor.prepare(&f, None).await.unwrap();
}

#[tokio::test]
async fn missing_image_with_policy_never_is_a_trap() {
    let executor = executor("never").await;
    let mut req = request("faas-test-absent:never", "{}");
    image_mut(&mut req.function).pull_policy = Some(PullPolicy::Never);
    let raw = executor.execute(req).await.unwrap();
    match raw.termination {
        Termination::Trap(why) => assert!(why.contains("not present"), "{why}"),
        other => panic!("expected a trap, got {other:?}"),
    }
}

#[tokio::test]
async fn image_whose_entrypoint_is_missing_is_a_trap() {
    let executor = executor("no-entrypoint").await;
    let docker = images::docker().await;
    let entrypoint = serde_json::json!(["/bin/not-there"]);
    let image = images::image_with(&docker, "broken", &entrypoint, &HashMap::new()).await;
    let req = request(&image, "{}");
    let execution_id = req.execution_id.clone();
    let raw = executor.execute(req).await.unwrap();
    match raw.termination {
        Termination::Trap(why) => assert!(why.contains("failed to start"), "{why}"),
        other => panic!("expected a trap, got {other:?}"),
    }
    harness::finish(&executor).await;
    assert!(
        harness::containers_of(&docker, &execution_id)
            .await
            .is_empty()
    );
}

#[tokio::test]
async fn image_env_stays_and_the_request_env_wins() {
    let executor = executor("image-env").await;
    let docker = images::docker().await;
    let entrypoint = serde_json::json!(["/bin/sh", "-c", "echo \"$GREETING $API_KEY\""]);
    let env = HashMap::from([("GREETING", "hello"), ("API_KEY", "from-image")]);
    let image = images::image_with(&docker, "image-env", &entrypoint, &env).await;
    let mut req = request(&image, "{}");
    req.env
        .push(("API_KEY".to_string(), "from-secret".to_string()));
    let raw = executor.execute(req).await.unwrap();
    assert_eq!(String::from_utf8_lossy(&raw.stdout), "hello from-secret\n");
    harness::finish(&executor).await;
}

#[tokio::test]
async fn pull_failure_is_a_trap_not_an_error() {
    let executor = executor("pull").await;
    // Nothing listens on port 1 of the loopback: the pull fails at once.
    for policy in [PullPolicy::IfNotPresent, PullPolicy::Always] {
        let mut req = request("localhost:1/faas-test/absent:1", "{}");
        image_mut(&mut req.function).pull_policy = Some(policy);
        let raw = executor.execute(req).await.unwrap();
        match raw.termination {
            Termination::Trap(why) => assert!(why.starts_with("image pull failed"), "{why}"),
            other => panic!("expected a trap, got {other:?}"),
        }
    }
}

#[tokio::test]
async fn executor_default_policy_applies_when_the_function_sets_none() {
    let executor = executor_with(DockerConfig {
        default_pull_policy: PullPolicy::Never,
        ..config("default-policy")
    })
    .await;
    let mut req = request("localhost:1/faas-test/absent:1", "{}");
    image_mut(&mut req.function).pull_policy = None;
    let raw = executor.execute(req).await.unwrap();
    match raw.termination {
        Termination::Trap(why) => assert!(why.contains("pull policy is never"), "{why}"),
        other => panic!("expected a trap, got {other:?}"),
    }
}

#[tokio::test]
async fn unreachable_engine_is_unavailable_and_a_live_one_is_ready() {
    let config = config("unreachable");
    let down = DockerExecutor::connect_with_host("unix:///nonexistent/docker.sock", config).await;
    match down {
        Err(e @ Error::Unavailable(_)) => assert!(e.is_retryable()),
        other => panic!(
            "expected Unavailable, got {:?}",
            other.map(|_| "an executor")
        ),
    }
    executor("ready").await.ready().await.unwrap();
}

/// Answers like an engine (version, empty container list, ping) on a unix socket,
/// enough for `connect()`, until the task is aborted.
async fn fake_engine(listener: tokio::net::UnixListener) {
    while let Ok((mut socket, _)) = listener.accept().await {
        let mut head = Vec::new();
        let mut buf = [0u8; 1024];
        while !head.windows(4).any(|w| w == b"\r\n\r\n") {
            match socket.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => head.extend_from_slice(&buf[..n]),
            }
        }
        let line = String::from_utf8_lossy(&head)
            .lines()
            .next()
            .unwrap_or_default()
            .to_string();
        let body = if line.contains("/version") {
            r#"{"ApiVersion":"1.41","Version":"20.10.0","MinAPIVersion":"1.12"}"#
        } else if line.contains("/containers/json") {
            "[]"
        } else {
            "OK"
        };
        let response = format!(
            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\
             Connection: close\r\n\r\n{body}",
            body.len()
        );
        let _ = socket.write_all(response.as_bytes()).await;
    }
}

#[tokio::test]
async fn engine_going_down_makes_ready_and_execute_unavailable() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("docker.sock");
    let listener = tokio::net::UnixListener::bind(&socket).unwrap();
    let engine = tokio::spawn(fake_engine(listener));
    let host = format!("unix://{}", socket.display());
    let executor = DockerExecutor::connect_with_host(&host, config("going-down"))
        .await
        .unwrap();
    executor.ready().await.unwrap();
    engine.abort();
    let _ = engine.await;
    std::fs::remove_file(&socket).unwrap();
    match executor.ready().await {
        Err(e @ Error::Unavailable(_)) => assert!(e.to_string().contains("unreachable"), "{e}"),
        other => panic!("expected Unavailable, got {other:?}"),
    }
    match executor.execute(request("faas-test-any:1", "{}")).await {
        Err(e) => assert!(e.is_retryable(), "{e}"),
        Ok(raw) => panic!("expected an error, got {raw:?}"),
    }
}
