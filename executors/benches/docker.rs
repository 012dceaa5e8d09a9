//! Per-execution latency of a hello image through [`DockerExecutor`], cold (a
//! container per execution) and warm (a pre-started single-use container behind the
//! agent), beside `docker run --rm -i --network none` and `docker exec -i` into a
//! running container of the same image, in the same run (interleaved, so all see the
//! same machine); then 10 concurrent warm invocations. Prints p50/p99 and ratios;
//! never asserts.
//!
//! `cargo bench -p faas-executors --bench docker` (runs: `FAAS_BENCH_RUNS`, default 30).

#[path = "../tests/fixtures/docker/harness.rs"]
mod harness;
#[path = "../tests/fixtures/docker/images.rs"]
mod images;

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use faas_executors::docker::{DockerConfig, DockerExecutor, WarmConfig};
use faas_runtime::model::Function;
use faas_runtime::ports::{Executor, Termination};

const HELLO: &str = r#"echo '{"hello":"world"}'"#;
const INPUT: &str = r#"{"direct_inputs":{"name":"Ada"}}"#;
/// Concurrent warm invocations of the last row.
const CONCURRENT: usize = 10;

struct Bench {
    cold: DockerExecutor,
    warm: DockerExecutor,
    image: String,
    /// One function for every warm run (one pool).
    function: Function,
    /// A running container of the image for `docker exec`.
    exec_target: String,
}

fn main() {
    let runs: usize = std::env::var("FAAS_BENCH_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(30);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime");
    let bench = rt.block_on(setup());
    let mut rows: [Vec<Duration>; 4] = Default::default();
    for i in 0..runs + 3 {
        let took = [
            docker_run(&bench.image),
            docker_exec(&bench.exec_target),
            rt.block_on(cold(&bench)),
            rt.block_on(warm(&bench)),
        ];
        if i >= 3 {
            for (row, took) in rows.iter_mut().zip(took) {
                row.push(took);
            }
        }
    }
    let rounds = rt.block_on(concurrent(&bench, 5));
    rt.block_on(async {
        bench.cold.shutdown(Duration::from_secs(30)).await;
        bench.warm.shutdown(Duration::from_secs(30)).await;
    });
    let _ = Command::new("docker")
        .args(["rm", "-f", &bench.exec_target])
        .output();
    report(runs, &mut rows, &rounds);
}

async fn setup() -> Bench {
    let docker = images::docker().await;
    let image = images::script_image(&docker, "hello", HELLO).await;
    let cold = harness::executor_with(DockerConfig {
        warm: WarmConfig {
            max_containers: 0,
            ..WarmConfig::default()
        },
        ..harness::config("bench-cold")
    })
    .await;
    let warm = harness::executor("bench-warm").await;
    let mut function = harness::function(&image);
    if let Some(image) = function.runnable.image_mut() {
        image.warm = Some(CONCURRENT as u32);
    }
    let out = Command::new("docker")
        .args([
            "run",
            "-d",
            "--network",
            "none",
            "--entrypoint",
            "/bin/sleep",
        ])
        .args([&image, "3600"])
        .output()
        .expect("docker run -d");
    let exec_target = String::from_utf8_lossy(&out.stdout).trim().to_string();
    Bench {
        cold,
        warm,
        image,
        function,
        exec_target,
    }
}

/// One execution through the executor without warm containers.
async fn cold(bench: &Bench) -> Duration {
    let req = harness::request(&bench.image, INPUT);
    let started = Instant::now();
    let outcome = bench.cold.execute(req).await;
    check("cold", outcome, started.elapsed())
}

/// One execution through the executor once a warm container waits (not timed).
async fn warm(bench: &Bench) -> Duration {
    wait_ready(bench, 1).await;
    let mut req = harness::request(&bench.image, INPUT);
    req.function = bench.function.clone();
    let started = Instant::now();
    let outcome = bench.warm.execute(req).await;
    check("warm", outcome, started.elapsed())
}

/// Waits (up to 30 s) until `n` warm containers wait.
async fn wait_ready(bench: &Bench, n: usize) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while bench.warm.warm_ready(&bench.function.id) < n && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn check(
    what: &str,
    outcome: faas_runtime::Result<faas_runtime::ports::RawOutcome>,
    took: Duration,
) -> Duration {
    match outcome {
        Ok(raw) if raw.termination == Termination::Exited(0) => {}
        other => println!("unexpected {what} outcome: {other:?}"),
    }
    took
}

/// `rounds` times: waits for CONCURRENT warm containers, then runs CONCURRENT
/// executions at once; returns each round's wall time.
async fn concurrent(bench: &Bench, rounds: usize) -> Vec<Duration> {
    let mut times = Vec::new();
    for _ in 0..rounds {
        wait_ready(bench, CONCURRENT).await;
        let started = Instant::now();
        let runs = (0..CONCURRENT).map(|_| {
            let mut req = harness::request(&bench.image, INPUT);
            req.function = bench.function.clone();
            bench.warm.execute(req)
        });
        for outcome in futures::future::join_all(runs).await {
            check("concurrent warm", outcome, Duration::ZERO);
        }
        times.push(started.elapsed());
    }
    times
}

/// One `docker run --rm -i --network none <image> INPUT` with INPUT on stdin too.
fn docker_run(image: &str) -> Duration {
    cli(&["run", "--rm", "-i", "--network", "none", image, INPUT])
}

/// One `docker exec -i <container> sh -c HELLO fn INPUT` with INPUT on stdin too.
fn docker_exec(container: &str) -> Duration {
    cli(&["exec", "-i", container, "/bin/sh", "-c", HELLO, "fn", INPUT])
}

fn cli(args: &[&str]) -> Duration {
    let started = Instant::now();
    let child = Command::new("docker")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn();
    let result = child.and_then(|mut child| {
        if let Some(mut stdin) = child.stdin.take() {
            stdin.write_all(INPUT.as_bytes())?;
        }
        child.wait_with_output()
    });
    let took = started.elapsed();
    match result {
        Ok(out) if out.status.success() => {}
        other => println!("unexpected docker {} result: {other:?}", args[0]),
    }
    took
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn report(runs: usize, rows: &mut [Vec<Duration>; 4], rounds: &[Duration]) {
    let names = [
        "docker run --rm -i (CLI)",
        "docker exec -i (CLI)",
        "executor, cold",
        "executor, warm",
    ];
    println!("docker executor latency, {runs} runs each (hello image, interleaved)");
    println!("| path | p50 ms | p99 ms |");
    println!("|---|---|---|");
    let mut p50 = [0.0; 4];
    for (i, row) in rows.iter_mut().enumerate() {
        row.sort();
        p50[i] = ms(percentile(row, 50.0));
        let p99 = ms(percentile(row, 99.0));
        println!("| {} | {:.1} | {:.1} |", names[i], p50[i], p99);
    }
    println!(
        "ratio executor cold / docker run   p50 {:.2}x",
        p50[2] / p50[0]
    );
    println!(
        "ratio executor warm / docker exec  p50 {:.2}x",
        p50[3] / p50[1]
    );
    println!(
        "ratio executor warm / docker run   p50 {:.2}x",
        p50[3] / p50[0]
    );
    let mut rounds = rounds.to_vec();
    rounds.sort();
    if let Some(median) = rounds.get(rounds.len() / 2) {
        println!(
            "{CONCURRENT} concurrent warm invocations: median round {:.1} ms = {:.1} executions/s ({} rounds)",
            ms(*median),
            CONCURRENT as f64 / median.as_secs_f64(),
            rounds.len()
        );
    }
}
