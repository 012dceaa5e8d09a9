//! The in-container agent against the real engine: the first fill of its volume by
//! several executors at once never lets a container start on a half-written agent,
//! and a result read up to the agent's end marks is whole (a large stdout, stderr,
//! the exit status).
//!
//! Its own test binary: it removes the agent's volume to watch a first fill, which
//! must not happen while another test's containers use it.

#[path = "fixtures/docker/harness.rs"]
mod harness;
#[path = "fixtures/docker/images.rs"]
mod images;

use std::time::{Duration, Instant};

use bollard::query_parameters::{ListVolumesOptionsBuilder, RemoveVolumeOptionsBuilder};
use faas_executors::docker::{DockerConfig, WarmConfig};
use faas_runtime::ports::{Executor, Termination};
use harness::text;

/// The tests of this binary one at a time: one removes the agent's volume, which an
/// executor that already filled it would then miss.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Removes every agent volume no container uses (a volume in use stays: the engine
/// refuses); returns how many went.
async fn remove_agent_volumes(docker: &bollard::Docker) -> usize {
    let listed = docker
        .list_volumes(Some(ListVolumesOptionsBuilder::default().build()))
        .await
        .expect("list volumes");
    let mut removed = 0;
    for volume in listed.volumes.unwrap_or_default() {
        if volume.name.starts_with("faas-agent-") {
            let options = RemoveVolumeOptionsBuilder::default().build();
            if docker
                .remove_volume(&volume.name, Some(options))
                .await
                .is_ok()
            {
                removed += 1;
            }
        }
    }
    removed
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_first_fills_never_start_a_half_written_agent() {
    let _alone = ONE_AT_A_TIME.lock().await;
    let docker = images::docker().await;
    let image = images::script_image(&docker, "agent-fill", "echo \"{\\\"n\\\":$1}\"").await;
    let removed = remove_agent_volumes(&docker).await;
    eprintln!("agent volumes removed before the race: {removed}");
    // Four executors (as four processes on one engine would be), no warm pools: each
    // fills the volume before its first container, all at once.
    let mut executors = Vec::new();
    for i in 0..4 {
        let config = DockerConfig {
            warm: WarmConfig {
                max_containers: 0,
                ..WarmConfig::default()
            },
            ..harness::config(&format!("agent-fill-{i}"))
        };
        executors.push(harness::executor_with(config).await);
    }
    let image = &image;
    let runs = executors.iter().enumerate().flat_map(|(i, executor)| {
        (0..3).map(move |j| {
            let n = i * 10 + j;
            let req = harness::request(image, &n.to_string());
            async move { (n, executor.execute(req).await) }
        })
    });
    for (n, outcome) in futures::future::join_all(runs).await {
        let raw = outcome.unwrap_or_else(|e| panic!("run {n}: {e}"));
        assert_eq!(
            raw.termination,
            Termination::Exited(0),
            "run {n}: {}",
            text(&raw.stderr)
        );
        assert_eq!(text(&raw.stdout), format!("{{\"n\":{n}}}\n"), "run {n}");
    }
    for executor in &executors {
        harness::finish(executor).await;
    }
}

#[tokio::test]
async fn a_result_read_up_to_the_end_marks_is_whole() {
    let _alone = ONE_AT_A_TIME.lock().await;
    let docker = images::docker().await;
    let script = "head -c 3000000 /dev/zero | tr '\\0' a; echo; echo to-stderr >&2; exit $1";
    let image = images::script_image(&docker, "agent-whole", script).await;
    let executor = harness::executor("agent-whole").await;
    for code in [0, 3] {
        let mut req = harness::request(&image, &code.to_string());
        req.stdout_cap = 4 << 20;
        let started = Instant::now();
        let raw = executor.execute(req).await.expect("a run");
        assert_eq!(raw.termination, Termination::Exited(code));
        assert!(!raw.stdout_overflow);
        assert_eq!(raw.stdout.len(), 3_000_001, "the whole stdout");
        assert!(raw.stdout[..3_000_000].iter().all(|&b| b == b'a'));
        assert_eq!(raw.stdout[3_000_000], b'\n');
        assert_eq!(
            text(&raw.stderr),
            "to-stderr\n",
            "no end mark left in stderr"
        );
        assert!(started.elapsed() < Duration::from_secs(15));
    }
    harness::finish(&executor).await;
}
