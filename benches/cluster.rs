//! Throughput and latency of rust-hello through NATS (nats-server, one `faas api`
//! and two `faas worker` processes) beside the embedded `faas serve` (one process),
//! in the same run. Prints only; never asserts times.
//!
//! `cargo bench --bench cluster` (release) or `cargo bench --profile dev --bench cluster`.
//! BENCH_N (default 2000) executions, BENCH_C (default 8) concurrent HTTP submitters.
//!
//! Two phases per target:
//! - load: N executions submitted by C submitters as fast as the API accepts them;
//!   executions/s = N / (first submit .. last completion observed by the client).
//!   Latency under load = server timestamps completed_at - created_at of each record
//!   (no polling bias), plus the client-side HTTP submit latency.
//! - unloaded: 200 executions one at a time, each polled (1 ms) until completed:
//!   the client-observed submit-to-completed latency.

#[path = "../tests/support/cluster.rs"]
mod cluster;
#[path = "../tests/support/harness.rs"]
mod harness;
#[path = "../runtime/tests/support/nats_server.rs"]
mod nats_server;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use harness::Api;
use serde_json::{Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

struct Stats {
    n: usize,
    wall: Duration,
    submit_phase: Duration,
    per_sec: f64,
    submit_p50: f64,
    submit_p99: f64,
    server_p50: f64,
    server_p99: f64,
    unloaded_p50: f64,
    unloaded_p99: f64,
    /// Unloaded phase breakdown (server timestamps, p50 ms): HTTP submit as seen by the
    /// client, created->started (queue + dispatch + claim), run (duration_ms),
    /// started->completed (run + result write).
    u_submit_p50: f64,
    u_queue_p50: f64,
    u_run_p50: f64,
    u_finish_p50: f64,
    failed: usize,
}

fn pct(v: &mut [f64], p: f64) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let i = ((v.len() as f64 - 1.0) * p).round() as usize;
    v[i]
}

fn ts(v: &Value) -> OffsetDateTime {
    OffsetDateTime::parse(v.as_str().expect("timestamp"), &Rfc3339).expect("rfc3339")
}

async fn get_exec(api: &Api, token: &str, id: &str) -> Value {
    api.get(token, &format!("/api/executions/{id}"))
        .await
        .expect(200)
}

async fn measure(label: &str, base: &str, n: usize, c: usize) -> Stats {
    let api = Api::new(base);
    let (token, _) = api.user("bench").await;
    let hello = api.deploy_sample(&token, "rust-hello.wasm").await;
    // Warm-up (module compile, connections).
    for i in 0..20 {
        api.run(
            &token,
            &hello,
            json!({"direct_inputs": {"name": format!("w{i}")}}),
        )
        .await;
    }

    // Load phase.
    let start = Instant::now();
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for _ in 0..c {
        let (api, token, hello, next) = (api.clone(), token.clone(), hello.clone(), next.clone());
        tasks.push(tokio::spawn(async move {
            let mut out = Vec::new();
            loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if i >= n {
                    return out;
                }
                let t = Instant::now();
                let id = api
                    .submit(
                        &token,
                        &hello,
                        json!({"direct_inputs": {"name": format!("b{i}")}}),
                    )
                    .await;
                out.push((id, t.elapsed().as_secs_f64() * 1e3));
            }
        }));
    }
    let mut ids = Vec::new();
    let mut submit_ms = Vec::new();
    for t in tasks {
        for (id, ms) in t.await.unwrap() {
            ids.push(id);
            submit_ms.push(ms);
        }
    }
    let submit_phase = start.elapsed();
    // Completion: poll the outstanding ids (most are done by now).
    let mut records = Vec::with_capacity(n);
    let mut pending: Vec<String> = ids.clone();
    while !pending.is_empty() {
        let mut still = Vec::new();
        for id in pending {
            let e = get_exec(&api, &token, &id).await;
            if matches!(e["status"].as_str(), Some("pending" | "running")) {
                still.push(id);
            } else {
                records.push(e);
            }
        }
        pending = still;
        if !pending.is_empty() {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
    let wall = start.elapsed();
    let failed = records
        .iter()
        .filter(|e| e["status"] != "completed")
        .count();
    let mut server_ms: Vec<f64> = records
        .iter()
        .filter(|e| e["status"] == "completed")
        .map(|e| (ts(&e["completed_at"]) - ts(&e["created_at"])).as_seconds_f64() * 1e3)
        .collect();

    // Unloaded phase: one at a time, client-observed.
    let mut unloaded = Vec::new();
    let (mut u_submit, mut u_queue, mut u_run, mut u_finish) = (vec![], vec![], vec![], vec![]);
    for i in 0..200 {
        let t = Instant::now();
        let id = api
            .submit(
                &token,
                &hello,
                json!({"direct_inputs": {"name": format!("u{i}")}}),
            )
            .await;
        u_submit.push(t.elapsed().as_secs_f64() * 1e3);
        loop {
            let e = get_exec(&api, &token, &id).await;
            if e["status"] == "completed" {
                let (c, s, d) = (
                    ts(&e["created_at"]),
                    ts(&e["started_at"]),
                    ts(&e["completed_at"]),
                );
                u_queue.push((s - c).as_seconds_f64() * 1e3);
                u_finish.push((d - s).as_seconds_f64() * 1e3);
                u_run.push(e["duration_ms"].as_f64().unwrap_or(f64::NAN));
                break;
            }
            assert!(e["status"] == "pending" || e["status"] == "running", "{e}");
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        unloaded.push(t.elapsed().as_secs_f64() * 1e3);
    }

    let s = Stats {
        n,
        wall,
        submit_phase,
        per_sec: n as f64 / wall.as_secs_f64(),
        submit_p50: pct(&mut submit_ms, 0.5),
        submit_p99: pct(&mut submit_ms, 0.99),
        server_p50: pct(&mut server_ms, 0.5),
        server_p99: pct(&mut server_ms, 0.99),
        unloaded_p50: pct(&mut unloaded, 0.5),
        unloaded_p99: pct(&mut unloaded, 0.99),
        u_submit_p50: pct(&mut u_submit, 0.5),
        u_queue_p50: pct(&mut u_queue, 0.5),
        u_run_p50: pct(&mut u_run, 0.5),
        u_finish_p50: pct(&mut u_finish, 0.5),
        failed,
    };
    println!(
        "{label:<8} {} execs in {:.2} s (submits done at {:.2} s): {:.0} executions/s; \
         submit HTTP p50 {:.2} ms p99 {:.2} ms; created->completed under load p50 {:.1} ms p99 {:.1} ms; \
         unloaded submit->completed (client, 1 ms polling) p50 {:.2} ms p99 {:.2} ms; not completed: {}",
        s.n,
        s.wall.as_secs_f64(),
        s.submit_phase.as_secs_f64(),
        s.per_sec,
        s.submit_p50,
        s.submit_p99,
        s.server_p50,
        s.server_p99,
        s.unloaded_p50,
        s.unloaded_p99,
        s.failed
    );
    println!(
        "{label:<8} unloaded breakdown p50: submit HTTP {:.2} ms, created->started {:.2} ms, run (duration_ms) {:.1} ms, started->completed {:.2} ms",
        s.u_submit_p50, s.u_queue_p50, s.u_run_p50, s.u_finish_p50
    );
    s
}

/// `faas serve` on the embedded backend; killed when dropped.
struct Serve(Child, #[allow(dead_code)] tempfile::TempDir);
impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn spawn_serve() -> (Serve, String) {
    let data = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_faas"))
        .arg("serve")
        .env_remove("NATS_URL")
        .env("SERVER_ADDRESS", "127.0.0.1:0")
        .env("FAAS_DATA_DIR", data.path())
        .env("FAAS_DOCKER", "off")
        .env("RUST_LOG", "warn,faas=info")
        // Load tests measure the platform, not the per-user quotas.
        .env("FAAS_QUOTA_SUBMISSIONS_PER_MINUTE", "0")
        .env("FAAS_QUOTA_ACTIVE_EXECUTIONS", "0")
        .env("FAAS_REGISTER_MAX_PER_ADDRESS", "0")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn faas serve");
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut sent = false;
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if !sent && let Some(rest) = line.split("addr=").nth(1) {
                let _ = tx.send(rest.split_whitespace().next().unwrap_or("").to_string());
                sent = true;
            }
        }
    });
    let addr = rx
        .recv_timeout(Duration::from_secs(60))
        .expect("faas serve logs its address");
    (Serve(child, data), format!("http://{addr}"))
}

fn main() {
    // `cargo bench` passes `--bench`; ignore arguments.
    let n: usize = std::env::var("BENCH_N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2000);
    let c: usize = std::env::var("BENCH_C")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(8);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    println!(
        "cluster bench: {n} rust-hello executions, {c} concurrent submitters, {} cores, binary {}",
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(0),
        env!("CARGO_BIN_EXE_faas")
    );
    let embedded = {
        let (_serve, base) = spawn_serve();
        rt.block_on(measure("embedded", &base, n, c))
    };
    let nats = {
        let cl = cluster::Cluster::start(2, &[]);
        let base = cl.base.clone();
        let s = rt.block_on(measure("nats", &base, n, c));
        drop(cl);
        s
    };
    println!(
        "ratio nats/embedded: executions/s {:.2}x; submit p50 {:.2}x; created->completed p50 {:.2}x p99 {:.2}x; unloaded p50 {:.2}x p99 {:.2}x",
        nats.per_sec / embedded.per_sec,
        nats.submit_p50 / embedded.submit_p50,
        nats.server_p50 / embedded.server_p50,
        nats.server_p99 / embedded.server_p99,
        nats.unloaded_p50 / embedded.unloaded_p50,
        nats.unloaded_p99 / embedded.unloaded_p99,
    );
    println!("target (NATS, 2 cores): >= 3000 executions/s, p50 <= 3 ms");
}
