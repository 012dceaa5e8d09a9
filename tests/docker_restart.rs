//! The Docker engine restarted in the middle of 50 image executions: every execution
//! reaches exactly one final state (those the restart cut are retried on a new attempt),
//! and no function container is left behind.
//!
//! The restarted engine is a private `dockerd` of this test (`support/private_engine.rs`):
//! the machine's engine, which the other tests use in parallel, never goes down. `faas
//! serve` (the real binary) reaches the private engine through `DOCKER_HOST`.

#[path = "support/harness.rs"]
mod harness;
#[path = "support/private_engine.rs"]
mod private_engine;

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use harness::{Api, KillOnDrop, spawn_serve_logged};
use private_engine::PrivateEngine;
use serde_json::{Value, json};

const IMAGE: &str = "faas-test-restart:busybox";
const EXECUTIONS: usize = 50;
const MAX_ATTEMPTS: u32 = 5;

/// A busybox function that runs ~0.6 s, then echoes its input in JSON. Like most
/// runtimes (Python, Node), it ends on SIGTERM (exit 143): what the engine sends its
/// containers when it stops.
fn build_image(engine: &PrivateEngine) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy("/bin/busybox", dir.path().join("busybox"))
        .expect("busybox-static at /bin/busybox (make test-deps)");
    let script =
        "trap 'exit 143' TERM; /bin/busybox sleep 0.6 & wait $!; echo \"{\\\"echo\\\": $1}\"";
    let entrypoint = json!(["/bin/busybox", "sh", "-c", script, "fn"]);
    std::fs::write(
        dir.path().join("Dockerfile"),
        format!("FROM scratch\nCOPY busybox /bin/busybox\nENTRYPOINT {entrypoint}\n"),
    )
    .unwrap();
    let built = engine
        .docker()
        .args(["build", "-q", "-t", IMAGE, "."])
        .current_dir(dir.path())
        .output()
        .expect("docker CLI");
    assert!(
        built.status.success(),
        "docker build on the private engine: {}",
        String::from_utf8_lossy(&built.stderr)
    );
}

/// This function's executions by status.
async fn statuses(api: &Api, token: &str, fid: &str) -> HashMap<String, Value> {
    let page = api
        .get(
            token,
            &format!("/api/executions?function_id={fid}&limit=200"),
        )
        .await
        .expect(200);
    page["executions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["id"].as_str().unwrap().to_string(), e.clone()))
        .collect()
}

fn count(all: &HashMap<String, Value>, status: &str) -> usize {
    all.values().filter(|e| e["status"] == status).count()
}

/// Containers of the platform on the engine (any state).
/// The platform's containers on `engine`: (id, a warm one waiting in a pool, running).
fn managed(engine: &PrivateEngine) -> Vec<(String, bool, bool)> {
    engine
        .docker_out(&[
            "ps",
            "-a",
            "--filter",
            "label=faas.managed-by=faas",
            "--format",
            "{{.ID}} {{.Label \"faas.warm\"}} {{.State}}",
        ])
        .unwrap_or_default()
        .lines()
        .filter_map(|line| {
            let mut words = line.split_whitespace();
            let id = words.next()?.to_string();
            let rest: Vec<&str> = words.collect();
            Some((id, rest.contains(&"true"), rest.contains(&"running")))
        })
        .collect()
}

#[tokio::test]
async fn a_docker_engine_restart_loses_no_execution_and_leaves_no_container() {
    let mut engine = PrivateEngine::start();
    build_image(&engine);
    let data = tempfile::tempdir().unwrap();
    let log = data.path().join("faas.log");
    let host = engine.host();
    let network = format!("faas-restart-{}", std::process::id());
    let env = [
        ("FAAS_DOCKER", "on"),
        ("DOCKER_HOST", host.as_str()),
        ("NETWORK_NAME", network.as_str()),
        ("MAX_CONCURRENT_EXECUTIONS", "4"),
        ("FAAS_MAX_ATTEMPTS", "5"),
        // The periodic reap would hide leftovers: the executor must remove its own.
        ("FAAS_REAP_INTERVAL_SECS", "3600"),
    ];
    let (child, base) = spawn_serve_logged(data.path(), &env, Some(&log));
    let server = KillOnDrop(child);
    let api = Api::new(&base);
    let (t, _) = api.user("ada").await;
    let f = api
        .post(&t, "/api/functions", json!({"name": "sleeper", "image_url": IMAGE, "pull_policy": "never", "timeout_secs": 60}))
        .await
        .expect(201);
    let fid = f["id"].as_str().unwrap().to_string();
    let started = Instant::now();
    let mut ids = Vec::new();
    for n in 0..EXECUTIONS {
        ids.push(api.submit(&t, &fid, json!({"n": n})).await);
    }

    // Restart once some have completed and several containers run.
    let deadline = Instant::now() + Duration::from_secs(120);
    let at_restart = loop {
        let all = statuses(&api, &t, &fid).await;
        if count(&all, "completed") >= 8 && count(&all, "running") >= 2 {
            break all;
        }
        assert!(Instant::now() < deadline, "executions run: {all:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let (stop, start) = engine.restart();
    println!(
        "restart at {:.1} s: {} completed, {} running, {} pending; dockerd stopped in {stop:?}, \
         answered again {start:?} later",
        started.elapsed().as_secs_f64(),
        count(&at_restart, "completed"),
        count(&at_restart, "running"),
        count(&at_restart, "pending"),
    );

    let mut finals = BTreeMap::new();
    for id in &ids {
        let e = api.wait(&t, id, Duration::from_secs(180)).await;
        finals.insert(id.clone(), e);
    }
    println!(
        "all {EXECUTIONS} final {:.1} s after the first submission",
        started.elapsed().as_secs_f64()
    );
    let faas_log = std::fs::read_to_string(&log).unwrap_or_default();
    let mut attempts = BTreeMap::new();
    for (n, id) in ids.iter().enumerate() {
        let e = &finals[id];
        let attempt = e["attempt"].as_u64().unwrap_or(0) as u32;
        *attempts.entry(attempt).or_insert(0) += 1;
        // Every one completed with its own input's result. A failure would be either an
        // infrastructure retry that ran out of attempts (the outage outlasted them) or,
        // worse, the engine's stop recorded as the guest's own failure: say which.
        let infra = attempt == MAX_ATTEMPTS
            && e["error"]
                .as_str()
                .is_some_and(|m| m.contains("docker engine"));
        assert_eq!(
            e["status"],
            "completed",
            "{}: {e}\n{}",
            match infra {
                true => "retries of an infrastructure fault ran out",
                false => "the restart was recorded as the function's outcome",
            },
            tail(&faas_log)
        );
        assert_eq!(
            e["result"],
            json!({"echo": {"n": n}}),
            "each execution ran its own input: {e}"
        );
    }
    println!("executions by attempt: {attempts:?}");
    let retried: u32 = attempts
        .iter()
        .filter(|(a, _)| **a > 1)
        .map(|(_, c)| c)
        .sum();
    assert!(
        retried > 0,
        "the executions the restart cut ran again on a new attempt: {attempts:?}\n{}",
        tail(&faas_log)
    );

    // Exactly one final state each: exactly these records, and none changes later (no
    // stale attempt overwrites a final one).
    tokio::time::sleep(Duration::from_secs(2)).await;
    let listed = statuses(&api, &t, &fid).await;
    assert_eq!(listed.len(), EXECUTIONS, "one record per submission");
    for (id, e) in &finals {
        assert!(listed.contains_key(id), "{id} is listed");
        let again = api
            .get(&t, &format!("/api/executions/{id}"))
            .await
            .expect(200);
        for field in ["status", "attempt", "completed_at", "result", "output"] {
            assert_eq!(again[field], e[field], "{id}: {field} stays as recorded");
        }
    }
    println!(
        "why attempts were handed back: {:?}",
        retry_causes(&faas_log)
    );

    // No container left on the engine but the function's rebuilt warm pool: those the
    // restart stopped are removed as soon as it answers again, by the executor itself
    // (not by the hourly reap), and the pool holds running containers only.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let all = managed(&engine);
        let warm_running = all.iter().filter(|(_, warm, up)| *warm && *up).count();
        let left: Vec<_> = all.iter().filter(|(_, warm, up)| !(*warm && *up)).collect();
        if left.is_empty() && warm_running >= 1 {
            println!("warm pool rebuilt: {warm_running} running");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "function containers left after the run (or no warm pool): {left:?}\n{}",
            tail(&faas_log)
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    println!(
        "no container left {:.1} s after the first submission",
        started.elapsed().as_secs_f64()
    );
    drop(server);
}

/// The worker's "will retry" lines by what was being done: "pinging the docker engine"
/// (not yet claimed: a deferral, no attempt used), "inspecting the container" (an exit
/// the stopping engine caused), ...
fn retry_causes(log: &str) -> BTreeMap<String, usize> {
    let mut causes = BTreeMap::new();
    for line in log.lines().filter(|l| l.contains("will retry")) {
        let cause = line
            .split("error=unavailable: ")
            .nth(1)
            .map(|rest| rest.trim_start_matches("no docker executor is available: unavailable: "))
            .and_then(|rest| rest.split(':').next())
            .unwrap_or("other");
        *causes.entry(cause.to_string()).or_insert(0) += 1;
    }
    causes
}

/// The server's last log lines, for failure messages.
fn tail(log: &str) -> String {
    let lines: Vec<&str> = log.lines().collect();
    lines[lines.len().saturating_sub(40)..].join("\n")
}
