//! Warm, single-use containers of the Docker executor, against the real engine: a
//! warm run gives what a cold one gives, no container serves two executions, the
//! scratch dir is fresh, secrets never reach a container's configuration, warm
//! containers are hardened like cold ones, timeouts, floods and OOM behave as cold,
//! pools scale to zero and refill, and the reaper and `forget` remove what they must.

#[path = "fixtures/docker/harness.rs"]
mod harness;
#[path = "fixtures/docker/images.rs"]
mod images;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use bollard::Docker;
use bollard::query_parameters::ListContainersOptionsBuilder;
use faas_executors::docker::{
    DockerExecutor, LABEL_EXECUTION_ID, LABEL_FUNCTION_ID, LABEL_WARM, WarmConfig,
};
use faas_runtime::model::Function;
use faas_runtime::ports::{ExecutionRequest, Executor, Termination};
use harness::{json, text};

/// `$1` (INPUT) picks what the function does; by default it reports its container
/// (hostname), whether an earlier run left a file in /tmp, its argv input and stdin.
const SCRIPT: &str = r#"case "$1" in
*sleep*) echo started; sleep 60;;
*flood*) yes flood;;
*hog*) echo allocating; dd if=/dev/zero of=/dev/null bs=64M count=1 && echo survived;;
*env*) env | sort;;
*) seen=false; [ -e /tmp/mark ] && seen=true; touch /tmp/mark; in=$(cat);
   echo "{\"host\":\"$(hostname)\",\"seen\":$seen,\"argv\":$1,\"stdin\":$in}"; echo note >&2;;
esac"#;

const SECRET: &str = "s3cret-warm-value";

async fn image(docker: &Docker) -> String {
    images::script_image(docker, "warm", SCRIPT).await
}

async fn executor_with_warm(test: &str, warm: WarmConfig) -> DockerExecutor {
    let config = harness::config(test);
    harness::executor_with(faas_executors::docker::DockerConfig { warm, ..config }).await
}

/// A request of `function` (the same function across requests: one pool).
fn request_of(function: &Function, input: &str) -> ExecutionRequest {
    let image = function
        .runnable
        .image()
        .map(|i| i.image_url.clone())
        .unwrap_or_default();
    let mut req = harness::request(&image, input);
    req.function = function.clone();
    req.memory_limit = function.memory_mb << 20;
    for (name, value) in &mut req.env {
        if name == "FAAS_FUNCTION_ID" {
            value.clone_from(&function.id);
        }
    }
    req
}

/// Running warm containers of `function_id`.
async fn warm_of(docker: &Docker, function_id: &str) -> Vec<String> {
    let filters = HashMap::from([
        (
            "label".to_string(),
            vec![
                format!("{LABEL_FUNCTION_ID}={function_id}"),
                format!("{LABEL_WARM}=true"),
            ],
        ),
        ("status".to_string(), vec!["running".to_string()]),
    ]);
    let options = ListContainersOptionsBuilder::default()
        .filters(&filters)
        .build();
    let list = docker.list_containers(Some(options)).await.expect("list");
    list.into_iter().filter_map(|c| c.id).collect()
}

/// Waits (up to 20 s) until `function_id` has `n` running warm containers, all of
/// them waiting for a job: a container whose run just ended (a zero exit is final at
/// the agent's end mark) may still be running while it is removed, and is not one.
async fn wait_warm(
    executor: &DockerExecutor,
    docker: &Docker,
    function_id: &str,
    n: usize,
) -> Vec<String> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let ids = warm_of(docker, function_id).await;
        let ready = executor.warm_ready(function_id);
        if ids.len() == n && ready == n {
            return ids;
        }
        assert!(
            Instant::now() < deadline,
            "{function_id}: {} warm containers running, {ready} ready, want {n}",
            ids.len()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Waits (up to 10 s) until container `id` is gone.
async fn assert_removed(docker: &Docker, id: &str) {
    for _ in 0..100 {
        if docker.inspect_container(id, None).await.is_err() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("container {id} was not removed");
}

#[tokio::test]
async fn warm_runs_match_cold_ones_and_never_share_a_container() {
    let executor = executor_with_warm("warm-match", WarmConfig::default()).await;
    let docker = images::docker().await;
    let f = harness::function(&image(&docker).await);
    let input = r#"{"direct_inputs":{"n":1}}"#;
    let cold = executor.execute(request_of(&f, input)).await.unwrap();
    let first = wait_warm(&executor, &docker, &f.id, 1).await;
    let warm = executor.execute(request_of(&f, input)).await.unwrap();
    let second = wait_warm(&executor, &docker, &f.id, 1).await;
    let again = executor.execute(request_of(&f, input)).await.unwrap();
    for raw in [&cold, &warm, &again] {
        assert_eq!(
            raw.termination,
            Termination::Exited(0),
            "{}",
            text(&raw.stderr)
        );
        assert_eq!(text(&raw.stderr), "note\n");
    }
    let (cold, warm, again) = (json(&cold.stdout), json(&warm.stdout), json(&again.stdout));
    for out in [&cold, &warm, &again] {
        assert_eq!(out["argv"], serde_json::json!({"direct_inputs": {"n": 1}}));
        assert_eq!(out["stdin"], out["argv"], "INPUT on stdin too");
        assert_eq!(out["seen"], false, "a fresh /tmp: {out}");
    }
    assert_eq!(warm["host"].as_str().unwrap(), &first[0][..12], "ran warm");
    assert_eq!(
        again["host"].as_str().unwrap(),
        &second[0][..12],
        "ran warm"
    );
    assert_ne!(first, second, "each warm container serves one execution");
    assert_ne!(cold["host"], warm["host"]);
    assert_removed(&docker, &first[0]).await;
    harness::finish(&executor).await;
    assert!(
        warm_of(&docker, &f.id).await.is_empty(),
        "shutdown removes them"
    );
}

#[tokio::test]
async fn warm_containers_are_hardened_and_never_hold_a_secret() {
    let executor = executor_with_warm("warm-hardening", WarmConfig::default()).await;
    let docker = images::docker().await;
    let f = harness::function(&image(&docker).await);
    let with_secret = |input: &str| {
        let mut req = request_of(&f, input);
        req.env.push(("API_KEY".to_string(), SECRET.to_string()));
        req
    };
    let cold = executor.execute(with_secret("env")).await.unwrap();
    let id = wait_warm(&executor, &docker, &f.id, 1).await.remove(0);
    let inspected = docker.inspect_container(&id, None).await.unwrap();
    assert_secret_free(&inspected);
    let host = inspected.host_config.clone().unwrap();
    assert_eq!(host.cap_drop, Some(vec!["ALL".to_string()]));
    assert_eq!(
        host.security_opt,
        Some(vec!["no-new-privileges".to_string()])
    );
    assert_eq!(host.readonly_rootfs, Some(true));
    assert_eq!(host.privileged, Some(false));
    assert_eq!(host.network_mode.as_deref(), Some("none"));
    assert_eq!(host.memory, Some(64 << 20));
    assert_eq!(host.memory, host.memory_swap);
    assert_eq!(host.nano_cpus, Some(1_000_000_000));
    assert_eq!(host.pids_limit, Some(128));
    let tmp = host.tmpfs.unwrap_or_default();
    assert!(tmp["/tmp"].contains("size=64m"), "{tmp:?}");
    let log = host.log_config.unwrap();
    assert_eq!(log.config.unwrap()["max-size"], "1m");
    let mounts = inspected.mounts.clone().unwrap_or_default();
    assert!(
        mounts
            .iter()
            .any(|m| m.rw == Some(false) && m.destination.as_deref() == Some("/.faas-agent")),
        "the agent is mounted read-only: {mounts:?}"
    );
    let config = inspected.config.clone().unwrap();
    assert_eq!(config.user.as_deref(), Some("65534:65534"));
    assert_eq!(config.labels.unwrap()[LABEL_EXECUTION_ID], "");
    // While it runs with the secret, its configuration still holds none.
    let mut sleeper = with_secret("sleep");
    sleeper.timeout = Duration::from_secs(2);
    let look = async {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let during = docker.inspect_container(&id, None).await.unwrap();
        assert_eq!(during.state.as_ref().and_then(|s| s.running), Some(true));
        assert_secret_free(&during);
    };
    let (raw, ()) = tokio::join!(executor.execute(sleeper), look);
    assert_eq!(raw.unwrap().termination, Termination::TimedOut);
    let id = wait_warm(&executor, &docker, &f.id, 1).await.remove(0);
    let warm = executor.execute(with_secret("env")).await.unwrap();
    assert_removed(&docker, &id).await;
    let env = |raw: &faas_runtime::ports::RawOutcome| -> Vec<String> {
        text(&raw.stdout)
            .lines()
            .filter(|l| !l.starts_with("HOSTNAME=") && !l.starts_with("FAAS_EXECUTION_ID="))
            .map(str::to_string)
            .collect()
    };
    assert!(text(&warm.stdout).contains(&format!("API_KEY={SECRET}\n")));
    assert_eq!(env(&cold), env(&warm), "the same environment, warm or cold");
    harness::finish(&executor).await;
}

/// No secret in env, argv or labels.
fn assert_secret_free(inspected: &bollard::models::ContainerInspectResponse) {
    let config = inspected.config.clone().unwrap();
    let shown = format!(
        "{:?} {:?} {:?} {:?} {:?}",
        config.env, config.cmd, config.entrypoint, config.labels, inspected.args
    );
    assert!(
        !shown.contains(SECRET),
        "secret in the configuration: {shown}"
    );
}

#[tokio::test]
async fn timeout_flood_and_oom_behave_as_cold_on_the_warm_path() {
    let executor = executor_with_warm("warm-limits", WarmConfig::default()).await;
    let docker = images::docker().await;
    let mut f = harness::function(&image(&docker).await);
    f.memory_mb = 16;
    executor.execute(request_of(&f, "{}")).await.unwrap();

    let id = wait_warm(&executor, &docker, &f.id, 1).await.remove(0);
    let mut req = request_of(&f, "sleep");
    req.timeout = Duration::from_secs(2);
    let started = Instant::now();
    let raw = executor.execute(req).await.unwrap();
    assert_eq!(raw.termination, Termination::TimedOut);
    assert_eq!(text(&raw.stdout), "started\n");
    assert!(
        started.elapsed() < Duration::from_secs(6),
        "{:?}",
        started.elapsed()
    );
    assert!(
        docker.inspect_container(&id, None).await.is_err(),
        "killed and removed"
    );

    let id = wait_warm(&executor, &docker, &f.id, 1).await.remove(0);
    let mut req = request_of(&f, "flood");
    req.stdout_cap = 64 * 1024;
    let raw = executor.execute(req).await.unwrap();
    assert!(raw.stdout_overflow);
    assert_eq!(raw.stdout.len(), 64 * 1024);
    assert!(
        matches!(raw.termination, Termination::Trap(_)),
        "{:?}",
        raw.termination
    );
    assert_removed(&docker, &id).await;

    let id = wait_warm(&executor, &docker, &f.id, 1).await.remove(0);
    let raw = executor.execute(request_of(&f, "hog")).await.unwrap();
    assert_eq!(
        raw.termination,
        Termination::MemoryExceeded,
        "{} {}",
        text(&raw.stdout),
        text(&raw.stderr)
    );
    assert_removed(&docker, &id).await;
    harness::finish(&executor).await;
}

#[tokio::test]
async fn pools_scale_to_zero_when_idle_and_refill_on_use() {
    let warm = WarmConfig {
        idle: Duration::from_secs(2),
        ..WarmConfig::default()
    };
    let executor = executor_with_warm("warm-idle", warm).await;
    let docker = images::docker().await;
    let mut f = harness::function(&image(&docker).await);
    executor.execute(request_of(&f, "{}")).await.unwrap();
    let id = wait_warm(&executor, &docker, &f.id, 1).await.remove(0);
    wait_warm(&executor, &docker, &f.id, 0).await;
    assert_removed(&docker, &id).await;
    executor.execute(request_of(&f, "{}")).await.unwrap();
    wait_warm(&executor, &docker, &f.id, 1).await;
    set_warm(&mut f, Some(2));
    executor.execute(request_of(&f, "{}")).await.unwrap();
    wait_warm(&executor, &docker, &f.id, 2).await;
    harness::finish(&executor).await;

    let executor = executor_with_warm("warm-off", warm).await;
    let mut f = harness::function(&image(&docker).await);
    set_warm(&mut f, Some(0));
    executor.execute(request_of(&f, "{}")).await.unwrap();
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(
        warm_of(&docker, &f.id).await.is_empty(),
        "warm = 0 keeps none"
    );
    harness::finish(&executor).await;
}

#[tokio::test]
async fn the_reaper_keeps_own_warm_containers_and_forget_removes_them() {
    let executor = executor_with_warm("warm-reap", WarmConfig::default()).await;
    let docker = images::docker().await;
    let f = harness::function(&image(&docker).await);
    executor.execute(request_of(&f, "{}")).await.unwrap();
    let id = wait_warm(&executor, &docker, &f.id, 1).await.remove(0);
    let own = executor.config().worker_id.clone();
    executor.reap(|_, worker| worker != own).await.unwrap();
    assert_eq!(warm_of(&docker, &f.id).await, vec![id.clone()], "own: kept");
    executor.forget(&f).await;
    assert_removed(&docker, &id).await;

    // Another worker's warm containers go once that worker is gone.
    executor.execute(request_of(&f, "{}")).await.unwrap();
    let id = wait_warm(&executor, &docker, &f.id, 1).await.remove(0);
    let other = harness::executor("warm-reap-other").await;
    other.reap(|_, _| true).await.unwrap();
    assert_eq!(
        warm_of(&docker, &f.id).await,
        vec![id.clone()],
        "worker live"
    );
    other.reap(|_, worker| worker != own).await.unwrap();
    assert_removed(&docker, &id).await;
    harness::finish(&other).await;
    harness::finish(&executor).await;
}

/// Sets the warm-pool size of an image function.
fn set_warm(f: &mut faas_runtime::model::Function, n: Option<u32>) {
    if let Some(image) = f.runnable.image_mut() {
        image.warm = n;
    }
}
