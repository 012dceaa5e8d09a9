//! Throughput and latency of the NATS backend on a local `nats-server` (spawned by
//! the test harness). Prints numbers; asserts nothing about time.
//!
//! `cargo bench -p faas-runtime --bench nats_queue` (needs `nats-server` on PATH).
//!
//! - batched: N messages enqueued (64 publishes in flight), then leased in
//!   batches of 64 with each batch's acks sent in parallel;
//! - per execution, one after the other: KV create, enqueue, lease, KV update
//!   (revision-checked), ack: the path one execution takes through the backend.

#[path = "../tests/support/nats_server.rs"]
mod nats_server;

use std::time::{Duration, Instant};

use bytes::Bytes;
use faas_runtime::nats::{self, NatsConfig};
use faas_runtime::ports::{KvStore, WorkQueue};
use futures::{StreamExt, TryStreamExt};
use nats_server::NatsServer;

const MESSAGES: usize = 5_000;
const LEASE_BATCH: usize = 64;
const PUBLISHES_IN_FLIGHT: usize = 64;
const SEQUENTIAL: usize = 500;

/// Errors of the bench binary (no `anyhow` in this crate).
type BenchResult<T = ()> = Result<T, Box<dyn std::error::Error>>;

fn main() -> BenchResult {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(async {
        let server = NatsServer::start();
        batched(&server).await?;
        sequential(&server).await
    })
}

fn config(tag: &str) -> NatsConfig {
    NatsConfig {
        stream: format!("BENCH_{tag}"),
        subject: format!("bench.{tag}"),
        consumer: format!("bench_{tag}"),
        ack_wait: Duration::from_secs(30),
        max_messages: 1_000_000,
        ..NatsConfig::default()
    }
}

fn rate(n: usize, d: Duration) -> String {
    format!(
        "{n} in {:.3} s = {:.0}/s",
        d.as_secs_f64(),
        n as f64 / d.as_secs_f64()
    )
}

async fn batched(server: &NatsServer) -> BenchResult {
    let q = nats::connect(&server.url(), config("batched")).await?.queue;
    let payload = Bytes::from(vec![b'x'; 36]);
    let started = Instant::now();
    futures::stream::iter(0..MESSAGES)
        .map(|i| {
            let (q, p) = (q.clone(), payload.clone());
            async move { q.enqueue(&format!("m{i}"), p).await }
        })
        .buffer_unordered(PUBLISHES_IN_FLIGHT)
        .try_collect::<()>()
        .await?;
    let enqueued = started.elapsed();
    let drain_started = Instant::now();
    let mut done = 0;
    while done < MESSAGES {
        let got = q.lease(LEASE_BATCH, Duration::from_secs(2)).await?;
        futures::future::try_join_all(got.iter().map(|d| q.ack(d))).await?;
        done += got.len();
    }
    let drained = drain_started.elapsed();
    println!(
        "NATS queue, batched ({PUBLISHES_IN_FLIGHT} publishes in flight, lease {LEASE_BATCH}, parallel acks):"
    );
    println!(
        "  enqueue (PubAck awaited)      {}",
        rate(MESSAGES, enqueued)
    );
    println!(
        "  lease + double ack            {}",
        rate(MESSAGES, drained)
    );
    println!(
        "  end to end                    {}",
        rate(MESSAGES, started.elapsed())
    );
    Ok(())
}

/// Per-step and total latencies of one execution's path, run one after the other.
async fn sequential(server: &NatsServer) -> BenchResult {
    let b = nats::connect(&server.url(), config("sequential")).await?;
    let (kv, q) = (b.kv, b.queue);
    let record = Bytes::from(vec![b'r'; 400]);
    kv.put("executions", "warmup", record.clone()).await?;
    let mut steps: [Vec<Duration>; 6] = Default::default();
    for i in 0..SEQUENTIAL {
        let id = format!("e{i}");
        let t = Instant::now();
        let rev = kv.create("executions", &id, record.clone()).await?;
        let t1 = Instant::now();
        q.enqueue(&id, Bytes::from(id.clone())).await?;
        let t2 = Instant::now();
        let d = q.lease(1, Duration::from_secs(2)).await?;
        let t3 = Instant::now();
        let d = d.into_iter().next().ok_or("nothing leased")?;
        kv.update("executions", &id, record.clone(), rev).await?;
        let t4 = Instant::now();
        q.ack(&d).await?;
        let t5 = Instant::now();
        for (s, (a, b)) in
            steps
                .iter_mut()
                .zip([(t, t1), (t1, t2), (t2, t3), (t3, t4), (t4, t5), (t, t5)])
        {
            s.push(b - a);
        }
    }
    println!("NATS per-execution path, sequential ({SEQUENTIAL} executions; p50 / p90 / p99):");
    let names = [
        "KV create",
        "enqueue",
        "lease",
        "KV update",
        "double ack",
        "total",
    ];
    for (name, s) in names.iter().zip(steps.iter_mut()) {
        s.sort_unstable();
        let p = |q: f64| s[((s.len() - 1) as f64 * q) as usize].as_secs_f64() * 1e6;
        println!(
            "  {name:<12} {:>8.0} / {:>8.0} / {:>8.0} us",
            p(0.5),
            p(0.9),
            p(0.99)
        );
    }
    Ok(())
}
