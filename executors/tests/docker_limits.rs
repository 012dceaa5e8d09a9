//! Limits and isolation of the Docker executor, against the real engine: timeout, OOM,
//! fork bomb, stdout flood, the hardening of a running container, and the network of
//! executions that read objects.

#[path = "fixtures/docker/harness.rs"]
mod harness;
#[path = "fixtures/docker/images.rs"]
mod images;

use std::sync::Arc;
use std::time::{Duration, Instant};

use faas_executors::docker::{
    LABEL_EXECUTION_ID, LABEL_FUNCTION_ID, LABEL_MANAGED_BY, LABEL_WORKER_ID,
};
use faas_runtime::ports::{Executor, ObjectGrant, Termination};
use harness::{assert_gone_soon, containers_of, executor, request, text};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[tokio::test]
async fn timeout_kills_and_removes_the_container() {
    let executor = executor("timeout").await;
    let docker = images::docker().await;
    let image = images::script_image(&docker, "sleep", "echo started; sleep 60").await;
    let mut req = request(&image, "{}");
    req.timeout = Duration::from_secs(2);
    let execution_id = req.execution_id.clone();
    let started = Instant::now();
    let raw = executor.execute(req).await.unwrap();
    let took = started.elapsed();
    assert_eq!(raw.termination, Termination::TimedOut);
    assert_eq!(
        text(&raw.stdout),
        "started\n",
        "output before the kill is kept"
    );
    assert!(took < Duration::from_secs(8), "took {took:?}");
    let left = containers_of(&docker, &execution_id).await;
    assert!(left.is_empty(), "container still there: {left:?}");
}

#[tokio::test]
async fn memory_hog_is_reported_as_memory_exceeded() {
    let executor = executor("oom").await;
    let docker = images::docker().await;
    // The engine reports OOMKilled only when the container's exit code is not 0.
    let script = "echo allocating; dd if=/dev/zero of=/dev/null bs=64M count=1 && echo survived";
    let image = images::script_image(&docker, "hog", script).await;
    let mut req = request(&image, "{}");
    req.memory_limit = 16 << 20;
    let execution_id = req.execution_id.clone();
    let raw = executor.execute(req).await.unwrap();
    assert_eq!(
        raw.termination,
        Termination::MemoryExceeded,
        "stdout {:?} stderr {:?}",
        text(&raw.stdout),
        text(&raw.stderr)
    );
    assert_gone_soon(&docker, &execution_id).await;
}

#[tokio::test]
async fn fork_bomb_hits_the_pids_limit_and_the_host_is_fine() {
    let executor = executor("forkbomb").await;
    let docker = images::docker().await;
    let script = "b() { b | b & }; b; sleep 30";
    let image = images::script_image(&docker, "forkbomb", script).await;
    let mut req = request(&image, "{}");
    req.timeout = Duration::from_secs(4);
    let execution_id = req.execution_id.clone();
    let started = Instant::now();
    let raw = executor.execute(req).await.unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "{:?}",
        started.elapsed()
    );
    assert!(
        matches!(
            raw.termination,
            Termination::TimedOut | Termination::Exited(_)
        ),
        "{:?}",
        raw.termination
    );
    assert!(
        text(&raw.stderr).contains("fork"),
        "the pids limit should have refused forks: {:?}",
        text(&raw.stderr)
    );
    let host = std::process::Command::new("/bin/true").status();
    assert!(host.is_ok_and(|s| s.success()), "the host can still fork");
    assert_gone_soon(&docker, &execution_id).await;
}

#[tokio::test]
async fn stdout_flood_is_capped_flagged_and_stopped() {
    let executor = executor("flood").await;
    let docker = images::docker().await;
    let image = images::script_image(&docker, "flood", "yes flood").await;
    let mut req = request(&image, "{}");
    req.stdout_cap = 64 * 1024;
    let execution_id = req.execution_id.clone();
    let started = Instant::now();
    let raw = executor.execute(req).await.unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    assert!(raw.stdout_overflow);
    assert!(!raw.stderr_overflow);
    assert_eq!(raw.stdout.len(), 64 * 1024);
    assert!(raw.stdout.starts_with(b"flood\nflood\n"));
    assert!(
        matches!(raw.termination, Termination::Trap(_)),
        "{:?}",
        raw.termination
    );
    assert!(containers_of(&docker, &execution_id).await.is_empty());
}

#[tokio::test]
async fn running_container_is_hardened_and_labelled() {
    let executor = Arc::new(executor("hardening").await);
    let docker = images::docker().await;
    let image = images::script_image(&docker, "nap", "sleep 3; echo '{}'").await;
    let req = request(&image, "{}");
    let (execution_id, function_id) = (req.execution_id.clone(), req.function.id.clone());
    let running = tokio::spawn({
        let executor = executor.clone();
        async move { executor.execute(req).await }
    });
    let id = loop {
        if let Some(c) = containers_of(&docker, &execution_id).await.pop() {
            break c.id.expect("container id");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let inspected = docker.inspect_container(&id, None).await.unwrap();
    let host = inspected.host_config.expect("host config");
    assert_eq!(host.cap_drop, Some(vec!["ALL".to_string()]));
    assert!(
        host.security_opt
            .unwrap_or_default()
            .iter()
            .any(|o| o.starts_with("no-new-privileges"))
    );
    assert_eq!(host.readonly_rootfs, Some(true));
    let tmpfs = host.tmpfs.unwrap_or_default();
    let tmp = tmpfs.get("/tmp").expect("a tmpfs at /tmp");
    assert!(tmp.contains("noexec") && tmp.contains("size=64m"), "{tmp}");
    assert_eq!(host.pids_limit, Some(128));
    assert_eq!(host.memory, Some(64 << 20));
    assert_eq!(host.memory_swap, Some(64 << 20));
    assert_eq!(host.nano_cpus, Some(1_000_000_000));
    assert_eq!(host.network_mode.as_deref(), Some("none"));
    assert_eq!(host.privileged, Some(false));
    let log = host.log_config.expect("log config");
    assert_eq!(log.typ.as_deref(), Some("json-file"));
    assert!(log.config.unwrap_or_default().contains_key("max-size"));
    let config = inspected.config.expect("config");
    assert_eq!(config.user.as_deref(), Some("65534:65534"));
    let labels = config.labels.unwrap_or_default();
    assert_eq!(labels[LABEL_MANAGED_BY], "faas");
    assert_eq!(labels[LABEL_EXECUTION_ID], execution_id);
    assert_eq!(labels[LABEL_FUNCTION_ID], function_id);
    assert_eq!(labels[LABEL_WORKER_ID], executor.config().worker_id);
    let raw = running.await.unwrap().unwrap();
    assert_eq!(raw.termination, Termination::Exited(0));
    assert_gone_soon(&docker, &execution_id).await;
}

#[tokio::test]
async fn cancelled_execution_leaves_no_container() {
    let executor = Arc::new(executor("cancel").await);
    let docker = images::docker().await;
    let image = images::script_image(&docker, "sleep", "echo started; sleep 60").await;
    let req = request(&image, "{}");
    let execution_id = req.execution_id.clone();
    let running = tokio::spawn({
        let executor = executor.clone();
        async move { executor.execute(req).await }
    });
    while containers_of(&docker, &execution_id).await.is_empty() {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    running.abort();
    assert!(running.await.unwrap_err().is_cancelled());
    assert_gone_soon(&docker, &execution_id).await;
    harness::finish(&executor).await;
}

/// Serves one request on `listener`, answering `body`; returns the request line.
async fn serve_once(listener: tokio::net::TcpListener, body: &'static str) -> String {
    let (mut socket, _) = listener.accept().await.expect("accept");
    let mut buf = vec![0u8; 4096];
    let n = socket.read(&mut buf).await.expect("read the request");
    let head = String::from_utf8_lossy(&buf[..n]).into_owned();
    let response = format!(
        "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    socket.write_all(response.as_bytes()).await.expect("answer");
    head.lines().next().unwrap_or_default().to_string()
}

#[tokio::test]
async fn execution_with_objects_reaches_the_api_on_the_functions_network() {
    let executor = executor("objects").await;
    let docker = images::docker().await;
    // Created when missing, as an internal bridge (a leftover is removed first).
    let _ = docker.remove_network(harness::TEST_NETWORK).await;
    let gateway = executor.ensure_network().await.unwrap().expect("a gateway");
    let network = docker
        .inspect_network(harness::TEST_NETWORK, None)
        .await
        .unwrap();
    assert_eq!(network.internal, Some(true));
    let listener = tokio::net::TcpListener::bind((gateway.as_str(), 0))
        .await
        .unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = tokio::spawn(serve_once(listener, "object bytes"));
    // busybox-static's wget crashes here; nc speaks HTTP/1.0 just as well.
    let script = r#"
        u=${API_BASE_URL#http://}; hostport=${u%%/*}; prefix=/${u#*/}
        printf 'GET %s/%s/doc.txt HTTP/1.0\r\n\r\n' "$prefix" "$FAAS_FUNCTION_ID" |
            nc -w 5 "${hostport%:*}" "${hostport#*:}" | tr -d '\r' | sed '1,/^$/d'
    "#;
    let image = images::script_image(&docker, "fetch", script).await;
    let mut req = request(&image, "{}");
    let base = format!("http://{gateway}:{port}/api/function-objects");
    req.env.retain(|(name, _)| name != "API_BASE_URL");
    req.env.push(("API_BASE_URL".to_string(), base));
    req.objects.push(ObjectGrant {
        alias: "doc".to_string(),
        function_id: req.function.id.clone(),
        name: "doc.txt".to_string(),
        size: 12,
        content_type: "text/plain".to_string(),
    });
    let function_id = req.function.id.clone();
    let raw = executor.execute(req).await.unwrap();
    assert_eq!(
        raw.termination,
        Termination::Exited(0),
        "{}",
        text(&raw.stderr)
    );
    assert_eq!(text(&raw.stdout), "object bytes");
    let line = tokio::time::timeout(Duration::from_secs(5), server)
        .await
        .unwrap()
        .unwrap();
    let expected = format!("GET /api/function-objects/{function_id}/doc.txt HTTP/1.0");
    assert_eq!(line, expected);
    harness::finish(&executor).await;
}
