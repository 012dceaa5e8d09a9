//! Executions per second and latency of a hello module through the
//! `WasmtimeExecutor`, warm and cold, beside a floor measured in the same run: the
//! same module through a bare `InstancePre::instantiate_async` + `_start` loop on
//! the same engine, with a fresh WASI context and stdout pipe per run.
//!
//! Prints numbers; never asserts times. Run: `cargo bench -p faas-executors --bench wasm`
//! (append `-- wat` or `-- c-hello` to run one module only).
//! The module is `samples/wasm/c-hello.wasm` when present, and always the minimal
//! `tests/fixtures/hello.wat`.

#[path = "../tests/common/mod.rs"]
mod common;

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use common::{Harness, fixture, request};
use faas_executors::wasmtime::WasmtimeExecutor;
use faas_runtime::ports::{Executor, Termination};
use wasmtime::{Engine, InstancePre, Linker, Module, Store};
use wasmtime_wasi::WasiCtxBuilder;
use wasmtime_wasi::p1::WasiP1Ctx;
use wasmtime_wasi::p2::pipe::{MemoryInputPipe, MemoryOutputPipe};

const INPUT: &str = r#"{"direct_inputs":{"name":"Ada"}}"#;
const WARMUP: usize = 300;
const RUNS: usize = 10_000;
const COLD_RUNS: usize = 10;

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");
    let filter: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let wanted =
        |label: &str| filter.is_empty() || filter.iter().any(|f| label.contains(f.as_str()));
    rt.block_on(async {
        let c_hello = Path::new(env!("CARGO_MANIFEST_DIR")).join("../samples/wasm/c-hello.wasm");
        match std::fs::read(&c_hello) {
            Ok(bytes) if wanted("c-hello") => {
                bench_module("c-hello.wasm (wasi-libc C)", &bytes).await
            }
            Ok(_) => {}
            Err(_) => println!("(samples/wasm/c-hello.wasm not found: WAT hello only)\n"),
        }
        if wanted("hello.wat") {
            bench_module("hello.wat (minimal WASI)", &fixture("hello.wat")).await;
        }
        if wanted("probe") {
            let label = "probe.wasm echo (C; imports path_open, so gets a /tmp)";
            bench_case(label, &fixture("probe.wasm"), "echo").await;
        }
    });
}

async fn bench_module(label: &str, bytes: &[u8]) {
    bench_case(label, bytes, INPUT).await;
}

async fn bench_case(label: &str, bytes: &[u8], input: &'static str) {
    println!(
        "== {label}, {} bytes; {RUNS} warm runs after {WARMUP} warm-up",
        bytes.len()
    );
    let h = Harness::new();

    let started = Instant::now();
    let f = h.deploy(bytes).await.expect("deploy");
    let compile = started.elapsed();
    let started = Instant::now();
    check(&h.executor, &f, input).await;
    let first = started.elapsed();
    println!("deploy-time compile (prepare)        {:>10}", us(compile));
    println!(
        "cold after deploy: first execute     {:>10}   (prepare + first = {})",
        us(first),
        us(compile + first)
    );
    cold_after_restart(&h, &f, input).await;

    let floor = warm_floor(h.executor.engine(), bytes, input).await;
    let executor = warm_executor(&h.executor, &f, input).await;
    print_stats("floor: bare InstancePre + _start", &floor);
    print_stats("executor, warm, sequential", &executor);
    let concurrent = concurrent_throughput(Arc::new(h.restart()), &f, input).await;
    println!("executor, warm, 2 concurrent        {concurrent:>10.0} exec/s");
    println!(
        "ratio executor/floor: p50 {:.2}x, p99 {:.2}x, mean {:.2}x\n",
        ratio(&executor, &floor, 0.50),
        ratio(&executor, &floor, 0.99),
        mean(&executor).as_secs_f64() / mean(&floor).as_secs_f64(),
    );
}

/// New executors on the same cache directory; each one's first execution.
async fn cold_after_restart(h: &Harness, f: &faas_runtime::model::Function, input: &str) {
    let mut starts = Vec::new();
    let mut firsts = Vec::new();
    for _ in 0..COLD_RUNS {
        let started = Instant::now();
        let restarted = h.restart();
        starts.push(started.elapsed());
        let started = Instant::now();
        check(&restarted, f, input).await;
        firsts.push(started.elapsed());
        assert_eq!(restarted.compilations(), 0, "a restart must not recompile");
    }
    print_stats("new executor (engine + pool)", &starts);
    print_stats("cold after restart: first execute", &firsts);
}

async fn check(executor: &WasmtimeExecutor, f: &faas_runtime::model::Function, input: &str) {
    let out = executor.execute(request(f, input)).await.expect("execute");
    assert_eq!(out.termination, Termination::Exited(0), "{out:?}");
    assert!(!out.stdout.is_empty());
}

async fn warm_executor(
    executor: &WasmtimeExecutor,
    f: &faas_runtime::model::Function,
    input: &str,
) -> Vec<Duration> {
    let req = request(f, input);
    let mut times = Vec::with_capacity(RUNS);
    for i in 0..WARMUP + RUNS {
        let started = Instant::now();
        let out = executor.execute(req.clone()).await.expect("execute");
        let took = started.elapsed();
        assert_eq!(out.termination, Termination::Exited(0));
        if i >= WARMUP {
            times.push(took);
        }
    }
    times
}

/// Two tasks (one per core) running executions back to back.
async fn concurrent_throughput(
    executor: Arc<WasmtimeExecutor>,
    f: &faas_runtime::model::Function,
    input: &str,
) -> f64 {
    let per_task = RUNS / 2;
    let started = Instant::now();
    let tasks: Vec<_> = (0..2)
        .map(|_| {
            let (executor, req) = (executor.clone(), request(f, input));
            tokio::spawn(async move {
                for _ in 0..per_task {
                    executor.execute(req.clone()).await.expect("execute");
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.expect("task");
    }
    (2 * per_task) as f64 / started.elapsed().as_secs_f64()
}

struct FloorState {
    wasi: WasiP1Ctx,
}

/// The same module with bare Wasmtime on the same engine.
async fn warm_floor(engine: &Engine, bytes: &[u8], input: &str) -> Vec<Duration> {
    let mut linker = Linker::<FloorState>::new(engine);
    wasmtime_wasi::p1::add_to_linker_async(&mut linker, |s| &mut s.wasi).expect("link");
    let module = Module::new(engine, bytes).expect("compile");
    let pre = linker.instantiate_pre(&module).expect("instantiate_pre");
    let mut times = Vec::with_capacity(RUNS);
    for i in 0..WARMUP + RUNS {
        let started = Instant::now();
        let out = floor_once(engine, &pre, input).await;
        let took = started.elapsed();
        assert!(!out.is_empty());
        if i >= WARMUP {
            times.push(took);
        }
    }
    times
}

async fn floor_once(engine: &Engine, pre: &InstancePre<FloorState>, input: &str) -> Bytes {
    let stdout = MemoryOutputPipe::new(1 << 20);
    let wasi = WasiCtxBuilder::new()
        .args(&["hello", input])
        .stdin(MemoryInputPipe::new(Bytes::copy_from_slice(
            input.as_bytes(),
        )))
        .stdout(stdout.clone())
        .build_p1();
    let mut store = Store::new(engine, FloorState { wasi });
    store.set_epoch_deadline(1);
    store.epoch_deadline_async_yield_and_update(1);
    let instance = pre
        .instantiate_async(&mut store)
        .await
        .expect("instantiate");
    let start = instance
        .get_typed_func::<(), ()>(&mut store, "_start")
        .expect("_start");
    if let Err(e) = start.call_async(&mut store, ()).await {
        let code = e.downcast_ref::<wasmtime_wasi::I32Exit>().map(|x| x.0);
        assert_eq!(code, Some(0), "floor run failed: {e}");
    }
    stdout.contents()
}

fn quantile(times: &[Duration], q: f64) -> Duration {
    let mut sorted = times.to_vec();
    sorted.sort();
    let i = ((sorted.len() as f64 - 1.0) * q).round() as usize;
    sorted.get(i).copied().unwrap_or_default()
}

fn mean(times: &[Duration]) -> Duration {
    times.iter().sum::<Duration>() / times.len().max(1) as u32
}

fn ratio(a: &[Duration], b: &[Duration], q: f64) -> f64 {
    quantile(a, q).as_secs_f64() / quantile(b, q).as_secs_f64()
}

fn print_stats(label: &str, times: &[Duration]) {
    let per_sec = times.len() as f64 / times.iter().sum::<Duration>().as_secs_f64();
    println!(
        "{label:<36} {per_sec:>10.0} exec/s   p50 {:>9}   p99 {:>9}   (n={})",
        us(quantile(times, 0.50)),
        us(quantile(times, 0.99)),
        times.len()
    );
}

fn us(d: Duration) -> String {
    if d >= Duration::from_millis(10) {
        format!("{:.1} ms", d.as_secs_f64() * 1e3)
    } else {
        format!("{:.1} µs", d.as_secs_f64() * 1e6)
    }
}
