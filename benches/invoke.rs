//! How close calling a function comes to the HTTP floor (issue 9): one run prints,
//! side by side, the floor (an authenticated `GET /api/functions/{id}` on the same
//! server), the embedded synchronous invoke (`POST /api/functions/{id}/invoke` of
//! rust-hello, which echoes its input), submit alone and the queue's drain, the
//! Wasmtime executor alone, invoke on NATS (nats-server, one `faas api` and two
//! `faas worker` processes of the same binary), and where an execution's time goes
//! (created -> started -> completed, from the records' own timestamps). Ratios are
//! against the floor. Prints only; never asserts times. Loopback only.
//!
//! `cargo bench --bench invoke` (release). BENCH_SECS (default 3) bounds each
//! loaded row, BENCH_C (default 32) is the loaded concurrency; BENCH_FAAS_BIN
//! runs another build of `faas` as the servers (before/after figures).

#[path = "../tests/support/cluster.rs"]
mod cluster;
#[path = "../executors/tests/common/mod.rs"]
mod common;
#[path = "../tests/support/harness.rs"]
mod harness;
#[path = "../runtime/tests/support/nats_server.rs"]
mod nats_server;

use std::future::Future;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use faas_runtime::ports::{Executor, Termination};
use harness::Api;
use serde_json::{Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// What one closed-loop run measured.
#[derive(Default)]
struct Load {
    /// Client-observed latency of each request (ms).
    lat: Vec<f64>,
    /// Requests per second over the run.
    rate: f64,
    /// The execution records answered (invoke), for the per-stage breakdown.
    records: Vec<Value>,
}

impl Load {
    fn p(&self, q: f64) -> f64 {
        pct(&self.lat, q)
    }
}

fn pct(v: &[f64], q: f64) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    let mut v = v.to_vec();
    v.sort_by(|a, b| a.total_cmp(b));
    v[((v.len() as f64 - 1.0) * q).round() as usize]
}

fn secs() -> Duration {
    let s = std::env::var("BENCH_SECS")
        .ok()
        .and_then(|v| v.parse::<f64>().ok())
        .unwrap_or(3.0);
    Duration::from_secs_f64(s)
}

/// `c` clients each calling `call` back to back for `dur`; `call` answers the
/// record to keep (or `Value::Null`).
async fn closed_loop<F, Fut>(c: usize, dur: Duration, call: F) -> Load
where
    F: Fn(usize) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Value> + Send,
{
    let start = Instant::now();
    let deadline = start + dur;
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for _ in 0..c {
        let (call, next) = (call.clone(), next.clone());
        tasks.push(tokio::spawn(async move {
            let (mut lat, mut recs) = (Vec::new(), Vec::new());
            while Instant::now() < deadline {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let t = Instant::now();
                let rec = call(i).await;
                lat.push(t.elapsed().as_secs_f64() * 1e3);
                if !rec.is_null() {
                    recs.push(rec);
                }
            }
            (lat, recs)
        }));
    }
    let mut out = Load::default();
    for t in tasks {
        let (lat, recs) = t.await.expect("client task");
        out.lat.extend(lat);
        out.records.extend(recs);
    }
    out.rate = out.lat.len() as f64 / start.elapsed().as_secs_f64();
    out
}

/// The calls a row makes, on one server, as one user with one rust-hello.
#[derive(Clone)]
struct Target {
    api: Api,
    token: String,
    fid: String,
}

impl Target {
    async fn new(base: &str) -> Target {
        let api = Api::new(base);
        let (token, _) = api.user("bench").await;
        let fid = api.deploy_sample(&token, "rust-hello.wasm").await;
        Target { api, token, fid }
    }

    async fn floor(&self) -> Value {
        let path = format!("/api/functions/{}", self.fid);
        let r = self.api.get(&self.token, &path).await;
        assert_eq!(r.status, 200, "floor GET");
        Value::Null
    }

    async fn invoke(&self, i: usize) -> Value {
        let path = format!("/api/functions/{}/invoke?wait=60", self.fid);
        let body = json!({"input": {"direct_inputs": {"name": format!("b{i}")}}});
        let e = self.api.post(&self.token, &path, body).await.expect(200);
        assert_eq!(e["status"], "completed", "{e}");
        e
    }

    async fn submit(&self, i: usize) -> Value {
        let input = json!({"direct_inputs": {"name": format!("s{i}")}});
        json!(self.api.submit(&self.token, &self.fid, input).await)
    }

    /// Waits (long poll) until every execution in `ids` is final.
    async fn drain(&self, ids: &[Value]) {
        for id in ids {
            let path = format!("/api/executions/{}?wait=60", id.as_str().unwrap_or(""));
            let e = self.api.get(&self.token, &path).await.expect(200);
            assert_eq!(e["status"], "completed", "{e}");
        }
    }

    async fn warm(&self) {
        for i in 0..200 {
            self.invoke(i).await;
            self.floor().await;
        }
    }

    fn invoke_loop(&self, c: usize) -> impl Future<Output = Load> + use<> {
        let t = self.clone();
        closed_loop(c, secs(), move |i| {
            let t = t.clone();
            async move { t.invoke(i).await }
        })
    }
}

/// Per-stage p50 (ms) of answered records: created->started, started->completed,
/// and the run itself (`duration_ms`).
fn stages(records: &[Value]) -> (f64, f64, f64) {
    let ts = |v: &Value| OffsetDateTime::parse(v.as_str().unwrap_or(""), &Rfc3339).ok();
    let (mut queue, mut finish, mut run) = (vec![], vec![], vec![]);
    for e in records {
        let (Some(c), Some(s), Some(d)) = (
            ts(&e["created_at"]),
            ts(&e["started_at"]),
            ts(&e["completed_at"]),
        ) else {
            continue;
        };
        queue.push((s - c).as_seconds_f64() * 1e3);
        finish.push((d - s).as_seconds_f64() * 1e3);
        run.push(e["duration_ms"].as_f64().unwrap_or(f64::NAN));
    }
    (pct(&queue, 0.5), pct(&finish, 0.5), pct(&run, 0.5))
}

/// The Wasmtime executor alone on rust-hello: (p50 µs, executions/s sequential).
async fn executor_alone(dur: Duration) -> (f64, f64) {
    let h = common::Harness::new();
    let f = h
        .deploy(&harness::sample("rust-hello.wasm"))
        .await
        .expect("deploy");
    let input = r#"{"direct_inputs":{"name":"Ada"}}"#;
    let run = || async {
        let out = h.executor.execute(common::request(&f, input)).await;
        assert_eq!(out.expect("execute").termination, Termination::Exited(0));
    };
    for _ in 0..300 {
        run().await;
    }
    let (start, mut lat) = (Instant::now(), Vec::new());
    while start.elapsed() < dur {
        let t = Instant::now();
        run().await;
        lat.push(t.elapsed().as_secs_f64() * 1e6);
    }
    (
        pct(&lat, 0.5),
        lat.len() as f64 / start.elapsed().as_secs_f64(),
    )
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
    let data = tempfile::tempdir().expect("data dir");
    let log = data.path().join("serve.log");
    let file = std::fs::File::create(&log).expect("log file");
    let child = Command::new(cluster::faas_bin())
        .arg("serve")
        .env_remove("NATS_URL")
        .env_remove("RUST_BACKTRACE")
        .env("SERVER_ADDRESS", "127.0.0.1:0")
        .env("FAAS_DATA_DIR", data.path().join("data"))
        .env("FAAS_DOCKER", "off")
        .env("RUST_LOG", "warn,faas=info")
        // Load measures the platform, not the per-user quotas.
        .env("FAAS_QUOTA_SUBMISSIONS_PER_MINUTE", "0")
        .env("FAAS_QUOTA_ACTIVE_EXECUTIONS", "0")
        .env("FAAS_REGISTER_MAX_PER_ADDRESS", "0")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(file)
        .spawn()
        .expect("spawn faas serve");
    // Owned at once: a failed start below still kills and reaps the child.
    let serve = Serve(child, data);
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        if let Some(rest) = text.split("addr=").nth(1) {
            let addr = rest.split_whitespace().next().unwrap_or("").to_string();
            return (serve, format!("http://{addr}"));
        }
        assert!(
            Instant::now() < deadline,
            "faas serve did not start: {text}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Every figure of one run.
#[derive(Default)]
struct Figures {
    floor1: Load,
    floor32: Load,
    inv1: Load,
    inv32: Load,
    submit32: Load,
    drain_rate: f64,
    exec_us: f64,
    exec_rate: f64,
    nats1: Load,
    nats32: Load,
}

async fn embedded(fig: &mut Figures, c: usize) {
    let (_serve, base) = spawn_serve();
    let t = Target::new(&base).await;
    t.warm().await;
    let f = t.clone();
    let floor = move |_| {
        let f = f.clone();
        async move { f.floor().await }
    };
    fig.floor1 = closed_loop(1, secs(), floor.clone()).await;
    fig.floor32 = closed_loop(c, secs(), floor).await;
    fig.inv1 = t.invoke_loop(1).await;
    fig.inv32 = t.invoke_loop(c).await;
    let s = t.clone();
    let started = Instant::now();
    fig.submit32 = closed_loop(c, secs(), move |i| {
        let s = s.clone();
        async move { s.submit(i).await }
    })
    .await;
    t.drain(&fig.submit32.records).await;
    fig.drain_rate = fig.submit32.records.len() as f64 / started.elapsed().as_secs_f64();
}

async fn nats(fig: &mut Figures, c: usize) {
    let cl = cluster::Cluster::start(2, &[]);
    let t = Target::new(&cl.base).await;
    t.warm().await;
    fig.nats1 = t.invoke_loop(1).await;
    fig.nats32 = t.invoke_loop(c).await;
    drop(cl);
}

fn print(fig: &Figures, c: usize) {
    let floor_p50 = fig.floor1.p(0.5);
    let floor_rate = fig.floor32.rate;
    let row = |path: &str, one: Option<&Load>, many: Option<&Load>| {
        let (p50, p99) = one.map_or((f64::NAN, f64::NAN), |l| (l.p(0.5), l.p(0.99)));
        let (rate, mp50) = many.map_or((f64::NAN, f64::NAN), |l| (l.rate, l.p(0.5)));
        println!(
            "| {path:<34} | {:>8.3} | {:>8.3} | {:>8.0} | {:>8.2} | {:>6.2}x | {:>6.3}x |",
            p50,
            p99,
            rate,
            mp50,
            p50 / floor_p50,
            rate / floor_rate
        );
    };
    println!(
        "\n| path (c=1 ms; c={c} per s, ms)      | c=1 p50  | c=1 p99  | c={c:<2} /s  | c={c:<2} p50 | p50/flr | rate/flr |"
    );
    println!("|{}", "---|".repeat(7));
    row(
        "floor: GET /api/functions/{id}",
        Some(&fig.floor1),
        Some(&fig.floor32),
    );
    row(
        "embedded invoke (200, completed)",
        Some(&fig.inv1),
        Some(&fig.inv32),
    );
    row("embedded submit alone (202)", None, Some(&fig.submit32));
    row(
        "NATS 1 api + 2 workers invoke",
        Some(&fig.nats1),
        Some(&fig.nats32),
    );
    println!(
        "embedded queue drain after the submit row: {:.0} executions/s ({} submitted)",
        fig.drain_rate,
        fig.submit32.records.len()
    );
    println!(
        "executor alone (Wasmtime, rust-hello, sequential): p50 {:.1} µs, {:.0} executions/s",
        fig.exec_us, fig.exec_rate
    );
    for (label, l) in [
        ("embedded c=1 ", &fig.inv1),
        ("embedded c=32", &fig.inv32),
        ("NATS     c=1 ", &fig.nats1),
        ("NATS     c=32", &fig.nats32),
    ] {
        let (q, f, r) = stages(&l.records);
        println!(
            "per-stage p50 {label}: created->started {q:.3} ms, started->completed {f:.3} ms (run {r:.0} ms), client {:.3} ms",
            l.p(0.5)
        );
    }
    println!(
        "aims: embedded c=1 p50 <= 1 ms, p99 <= 3 ms; c={c} >= 5000/s (>= 0.2x floor); NATS c={c} >= 3000/s, p50 <= 3 ms"
    );
}

fn main() {
    // SAFETY: single-threaded here, before any runtime or child exists.
    unsafe { std::env::remove_var("RUST_BACKTRACE") };
    let c: usize = std::env::var("BENCH_C")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(32);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");
    println!(
        "invoke bench: rust-hello, {:.1} s per loaded row, c={c}, {} cores, binary {}",
        secs().as_secs_f64(),
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        cluster::faas_bin()
    );
    let mut fig = Figures::default();
    rt.block_on(async {
        embedded(&mut fig, c).await;
        (fig.exec_us, fig.exec_rate) = executor_alone(secs().min(Duration::from_secs(1))).await;
        nats(&mut fig, c).await;
    });
    print(&fig, c);
}
