//! No orphans, nothing lost: `kill -9` of `faas serve` while an image function runs;
//! after the restart the dead worker's container is removed and the execution
//! completes on a new attempt.

#[path = "support/harness.rs"]
mod harness;

use std::process::Command;
use std::time::{Duration, Instant};

use harness::{Api, spawn_serve};
use serde_json::json;

const IMAGE: &str = "faas-test-sleeper:busybox";

/// A busybox image whose function sleeps 6 s, then prints JSON.
fn build_sleeper() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy("/bin/busybox", dir.path().join("busybox"))
        .expect("busybox-static at /bin/busybox (make test installs it)");
    std::fs::write(
        dir.path().join("Dockerfile"),
        "FROM scratch\nCOPY busybox /bin/busybox\nENTRYPOINT [\"/bin/busybox\", \"sh\", \"-c\", \"/bin/busybox sleep 6; echo '{\\\"slept\\\":true}'\"]\n",
    )
    .unwrap();
    let ok = Command::new("docker")
        .args(["build", "-q", "-t", IMAGE, "."])
        .current_dir(dir.path())
        .status()
        .expect("docker CLI");
    assert!(ok.success(), "docker build of the sleeper image");
}

fn containers(filter: &str) -> Vec<String> {
    let out = Command::new("docker")
        .args(["ps", "-aq", "--filter", filter])
        .output()
        .expect("docker ps");
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .map(str::to_string)
        .collect()
}

fn label(container: &str, key: &str) -> String {
    let out = Command::new("docker")
        .args([
            "inspect",
            "-f",
            &format!("{{{{index .Config.Labels \"{key}\"}}}}"),
            container,
        ])
        .output()
        .expect("docker inspect");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

#[tokio::test]
async fn kill_9_mid_execution_leaves_no_container_and_loses_nothing() {
    build_sleeper();
    let data = tempfile::tempdir().unwrap();
    let env = [("FAAS_DOCKER", "on"), ("FAAS_REAP_INTERVAL_SECS", "1")];
    let (mut child, base) = spawn_serve(data.path(), &env);
    let api = Api::new(&base);
    let (t, _) = api.user("ada").await;
    let f = api.post(&t, "/api/functions", json!({"name": "sleeper", "image_url": IMAGE, "pull_policy": "never", "timeout_secs": 60})).await.expect(201);
    let id = api.submit(&t, f["id"].as_str().unwrap(), json!({})).await;
    let filter = format!("label=faas.execution-id={id}");
    let deadline = Instant::now() + Duration::from_secs(30);
    let first = loop {
        if let Some(c) = containers(&filter).pop() {
            break c;
        }
        assert!(Instant::now() < deadline, "the function's container starts");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let dead_worker = label(&first, "faas.worker-id");
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(
        containers(&filter).contains(&first),
        "the container outlives the killed process"
    );
    let (mut child, base) = spawn_serve(data.path(), &env);
    let api = Api::new(&base);
    let t = api.login("ada", "password123").await;
    let done = api.wait(&t, &id, Duration::from_secs(60)).await;
    assert_eq!(done["status"], "completed", "{done}");
    assert_eq!(done["result"], json!({"slept": true}));
    assert_eq!(
        done["attempt"], 2,
        "the interrupted attempt was retried once"
    );
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let left: Vec<String> = containers("label=faas.managed-by=faas")
            .into_iter()
            .filter(|c| label(c, "faas.worker-id") == dead_worker)
            .collect();
        if left.is_empty() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the dead worker's containers are reaped: {left:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    child.kill().unwrap();
    child.wait().unwrap();
}
