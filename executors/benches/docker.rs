//! Per-execution latency of a hello image through [`DockerExecutor`], beside
//! `docker run --rm -i --network none` of the same image in the same run (interleaved,
//! so both see the same machine). Prints p50/p99 and the ratio; never asserts.
//!
//! `cargo bench -p faas-executors --bench docker` (runs: `FAAS_BENCH_RUNS`, default 30).

#[path = "../tests/fixtures/docker/harness.rs"]
mod harness;
#[path = "../tests/fixtures/docker/images.rs"]
mod images;

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use faas_executors::docker::DockerExecutor;
use faas_runtime::ports::{Executor, Termination};

const HELLO: &str = r#"echo '{"hello":"world"}'"#;
const INPUT: &str = r#"{"direct_inputs":{"name":"Ada"}}"#;

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
    let (executor, image) = rt.block_on(async {
        let docker = images::docker().await;
        let image = images::script_image(&docker, "hello", HELLO).await;
        (harness::executor("bench").await, image)
    });
    for _ in 0..3 {
        rt.block_on(through_executor(&executor, &image));
        docker_run(&image);
    }
    let (mut ours, mut cli) = (Vec::with_capacity(runs), Vec::with_capacity(runs));
    for _ in 0..runs {
        ours.push(rt.block_on(through_executor(&executor, &image)));
        cli.push(docker_run(&image));
    }
    rt.block_on(executor.shutdown(Duration::from_secs(30)));
    report(runs, &mut ours, &mut cli);
}

/// One execution through the executor.
async fn through_executor(executor: &DockerExecutor, image: &str) -> Duration {
    let started = Instant::now();
    let outcome = executor.execute(harness::request(image, INPUT)).await;
    let took = started.elapsed();
    match outcome {
        Ok(raw) if raw.termination == Termination::Exited(0) => {}
        other => println!("unexpected executor outcome: {other:?}"),
    }
    took
}

/// One `docker run --rm -i --network none <image> INPUT` with INPUT on stdin too.
fn docker_run(image: &str) -> Duration {
    let started = Instant::now();
    let child = Command::new("docker")
        .args(["run", "--rm", "-i", "--network", "none", image, INPUT])
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
        other => println!("unexpected docker run result: {other:?}"),
    }
    took
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn report(runs: usize, ours: &mut [Duration], cli: &mut [Duration]) {
    ours.sort();
    cli.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let (o50, o99) = (percentile(ours, 50.0), percentile(ours, 99.0));
    let (c50, c99) = (percentile(cli, 50.0), percentile(cli, 99.0));
    println!("docker executor latency, {runs} runs each (hello image, interleaved)");
    println!(
        "  DockerExecutor::execute      p50 {:7.1} ms   p99 {:7.1} ms",
        ms(o50),
        ms(o99)
    );
    println!(
        "  docker run --rm -i (CLI)     p50 {:7.1} ms   p99 {:7.1} ms",
        ms(c50),
        ms(c99)
    );
    println!(
        "  ratio executor / docker run  p50 {:.2}x       p99 {:.2}x",
        ms(o50) / ms(c50),
        ms(o99) / ms(c99)
    );
}
