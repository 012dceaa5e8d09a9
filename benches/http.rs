//! Functions as HTTP endpoints against `wasmtime serve` (issue 13). One run prints,
//! side by side, wrk's requests/s and p50 on loopback for:
//!
//! - `wasmtime serve` 48.0.8 (pooling allocator) on samples/wasm/rust-http-hello.wasm:
//!   the reference, installed on first use with `cargo install wasmtime-cli
//!   --version 48.0.8 --locked` into BENCH_TOOLS_DIR (default /var/tmp/faas-bench-tools);
//! - `GET /healthz` of the same `faas serve`: a native axum handler, the upper bound;
//! - `/fn/{user}/{function}` public on the same component, 32 connections and 1;
//! - the same with an access key (`Authorization: Bearer`);
//! - a command module (rust-hello) through the adapter.
//!
//! Ratios are against `wasmtime serve`. Both servers stay up and every row is measured
//! BENCH_ROUNDS times (default 3) interleaved with the others; the median round is
//! printed, so drift on a shared machine hits the reference and the platform alike.
//! Prints only; never asserts times.
//! `cargo bench --bench http` (release). BENCH_SECS (default 5) per row, BENCH_C
//! (default 32) connections of the loaded rows; BENCH_FAAS_BIN runs another build of
//! `faas`; wrk is installed with apt-get when missing (root).

#[path = "../tests/support/cluster.rs"]
mod cluster;
#[path = "../tests/support/harness.rs"]
mod harness;
#[path = "../runtime/tests/support/nats_server.rs"]
mod nats_server;

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use harness::Api;
use serde_json::json;

/// The `wasmtime serve` the platform is measured against.
const WASMTIME_VERSION: &str = "48.0.8";

/// What wrk measured in one row.
#[derive(Clone, Copy, Default)]
struct Row {
    rate: f64,
    p50_us: f64,
    p99_us: f64,
    errors: u64,
}

fn secs() -> u64 {
    std::env::var("BENCH_SECS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5)
}

fn connections() -> usize {
    std::env::var("BENCH_C")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(32)
}

fn have(cmd: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {cmd}")])
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// wrk on PATH (apt-get install when missing and possible).
fn ensure_wrk() {
    if have("wrk") {
        return;
    }
    eprintln!("[bench] installing wrk with apt-get");
    let ok = Command::new("sh")
        .args([
            "-c",
            "apt-get install -y wrk >/dev/null 2>&1 || (apt-get update >/dev/null && apt-get install -y wrk >/dev/null)",
        ])
        .status()
        .is_ok_and(|s| s.success());
    assert!(ok && have("wrk"), "wrk is needed: apt-get install -y wrk");
}

/// The `wasmtime` CLI of WASMTIME_VERSION, built once into the tools dir.
fn ensure_wasmtime() -> PathBuf {
    let dir = PathBuf::from(
        std::env::var("BENCH_TOOLS_DIR").unwrap_or_else(|_| "/var/tmp/faas-bench-tools".into()),
    )
    .join(format!("wasmtime-{WASMTIME_VERSION}"));
    let bin = dir.join("bin/wasmtime");
    if bin.exists() {
        return bin;
    }
    eprintln!(
        "[bench] cargo install wasmtime-cli {WASMTIME_VERSION} into {} (once; ~20 min on 2 cores)",
        dir.display()
    );
    let t = Instant::now();
    let status = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .args(["install", "wasmtime-cli", "--locked", "--version"])
        .arg(WASMTIME_VERSION)
        .arg("--root")
        .arg(&dir)
        .env("CARGO_TARGET_DIR", dir.join("build"))
        .status()
        .expect("run cargo install");
    assert!(
        status.success() && bin.exists(),
        "cargo install wasmtime-cli failed"
    );
    let _ = std::fs::remove_dir_all(dir.join("build"));
    eprintln!(
        "[bench] wasmtime-cli built in {:.0} s",
        t.elapsed().as_secs_f64()
    );
    bin
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// Kills the child when dropped.
struct Guard(Child);

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `wasmtime serve` on `component`; returns it and its base URL once it answers.
fn wasmtime_serve(bin: &Path, component: &Path) -> (Guard, String) {
    let port = free_port();
    let child = Command::new(bin)
        .args(["serve", "-S", "cli", "-O", "pooling-allocator=y", "--addr"])
        .arg(format!("127.0.0.1:{port}"))
        .arg(component)
        .env_remove("RUST_BACKTRACE")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn wasmtime serve");
    let base = format!("http://127.0.0.1:{port}");
    wait_answer(&format!("{base}/"));
    (Guard(child), base)
}

fn wait_answer(url: &str) {
    let addr = url
        .trim_start_matches("http://")
        .split('/')
        .next()
        .unwrap_or_default()
        .to_string();
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if std::net::TcpStream::connect(&addr).is_ok() {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("{url} does not answer");
}

/// wrk with `c` connections for BENCH_SECS on `url`.
fn wrk(url: &str, c: usize, header: Option<&str>) -> Row {
    let mut cmd = Command::new("wrk");
    cmd.arg(format!("-t{}", c.clamp(1, 2)))
        .arg(format!("-c{c}"))
        .arg(format!("-d{}s", secs()))
        .arg("--latency");
    if let Some(h) = header {
        cmd.args(["-H", h]);
    }
    let out = cmd.arg(url).output().expect("run wrk");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "wrk failed: {text}");
    parse_wrk(&text)
}

fn parse_wrk(text: &str) -> Row {
    let mut row = Row::default();
    for line in text.lines().map(str::trim) {
        let mut words = line.split_whitespace();
        match (words.next(), words.next()) {
            (Some("Requests/sec:"), Some(v)) => row.rate = v.parse().unwrap_or(f64::NAN),
            (Some("50%"), Some(v)) => row.p50_us = micros(v),
            (Some("99%"), Some(v)) => row.p99_us = micros(v),
            (Some("Non-2xx"), _) => {
                row.errors += line
                    .rsplit(' ')
                    .next()
                    .and_then(|n| n.parse().ok())
                    .unwrap_or(0)
            }
            (Some("Socket"), _) => {
                row.errors += line
                    .split(',')
                    .filter_map(|p| p.split_whitespace().last()?.parse::<u64>().ok())
                    .sum::<u64>()
            }
            _ => {}
        }
    }
    row
}

/// wrk's `1.23ms` / `456.00us` / `1.20s` in microseconds.
fn micros(v: &str) -> f64 {
    let (num, scale) = if let Some(n) = v.strip_suffix("us") {
        (n, 1.0)
    } else if let Some(n) = v.strip_suffix("ms") {
        (n, 1e3)
    } else if let Some(n) = v.strip_suffix('s') {
        (n, 1e6)
    } else {
        (v, 1.0)
    };
    num.parse::<f64>().map_or(f64::NAN, |n| n * scale)
}

/// One `faas serve` with the hello component public, keyed, and rust-hello.
struct Platform {
    _child: Guard,
    _data: tempfile::TempDir,
    base: String,
    key: String,
}

async fn platform(c: usize) -> Platform {
    let data = tempfile::tempdir().expect("data dir");
    let limit = (c * 2).to_string();
    let (child, base) = harness::spawn_serve_bin(
        &cluster::faas_bin(),
        data.path(),
        &[
            ("RUST_LOG", "warn,faas=info"),
            ("FAAS_HTTP_MAX_CONCURRENT", &limit),
            ("FAAS_HTTP_MAX_CONCURRENT_PER_FUNCTION", &limit),
        ],
        None,
    );
    let child = Guard(child);
    let api = Api::new(&base);
    let (token, _) = api.user("bench").await;
    let mut key = String::new();
    for (name, sample, access) in [
        ("hello", "rust-http-hello.wasm", "public"),
        ("keyed", "rust-http-hello.wasm", "key"),
        ("adapter", "rust-hello.wasm", "public"),
    ] {
        let f = api
            .deploy(&token, name, harness::sample(sample), &[])
            .await
            .expect(201);
        let id = f["id"].as_str().expect("id").to_string();
        api.put(
            &token,
            &format!("/api/functions/{id}/http"),
            json!({"enabled": true, "access": access}),
        )
        .await
        .expect(200);
        if access == "key" {
            let k = api
                .post(&token, &format!("/api/functions/{id}/keys"), json!({}))
                .await
                .expect(201);
            key = k["key"].as_str().expect("key").to_string();
        }
    }
    Platform {
        _child: child,
        _data: data,
        base,
        key,
    }
}

fn print_row(name: &str, r: Row, reference: Row, by_rate: bool) {
    let ratio = if by_rate {
        format!("{:.2}x req/s", r.rate / reference.rate)
    } else {
        format!("{:.2}x p50", r.p50_us / reference.p50_us)
    };
    println!(
        "| {name:<44} | {:>9.0} | {:>8.0} | {:>8.0} | {:>6} | {ratio:>14} |",
        r.rate, r.p50_us, r.p99_us, r.errors
    );
}

/// Rounds of the interleaved rows (BENCH_ROUNDS, default 3): each row is the median.
fn rounds() -> usize {
    std::env::var("BENCH_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3)
        .max(1)
}

/// The round with the median rate (by p50 when `by_rate` is false).
fn median(mut rows: Vec<Row>, by_rate: bool) -> Row {
    let key = |r: &Row| if by_rate { r.rate } else { r.p50_us };
    rows.sort_by(|a, b| key(a).total_cmp(&key(b)));
    rows[rows.len() / 2]
}

/// What one round measures, in the order it runs.
const ROWS: [&str; 7] = [
    "ref", "ref1", "native", "public", "public1", "keyed", "adapter",
];

fn main() {
    // SAFETY: single-threaded here, before any runtime or child exists.
    unsafe { std::env::remove_var("RUST_BACKTRACE") };
    ensure_wrk();
    let wasmtime = ensure_wasmtime();
    let c = connections();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");
    let hello = harness::root().join("samples/wasm/rust-http-hello.wasm");
    println!(
        "http bench: rust-http-hello, wrk {} s per row, c={c}, {} rounds interleaved (median), {} cores, binary {}",
        secs(),
        rounds(),
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        cluster::faas_bin()
    );
    // Both servers stay up; every round measures every row, so drift on this shared
    // machine hits the reference and the platform alike.
    let (_ws, ws_base) = wasmtime_serve(&wasmtime, &hello);
    let p = rt.block_on(platform(c));
    let auth = format!("Authorization: Bearer {}", p.key);
    let url = |row: &str| match row {
        "ref" | "ref1" => format!("{ws_base}/"),
        "native" => format!("{}/healthz", p.base),
        "public" | "public1" => format!("{}/fn/bench/hello/", p.base),
        "keyed" => format!("{}/fn/bench/keyed/", p.base),
        _ => format!("{}/fn/bench/adapter/", p.base),
    };
    let measure = |row: &str| {
        let conns = if row.ends_with('1') { 1 } else { c };
        let header = (row == "keyed").then_some(auth.as_str());
        wrk(&url(row), conns, header)
    };
    for row in ["ref", "public", "adapter"] {
        measure(row); // warm-up: compiled code paged in, pools filled
    }
    let mut got: Vec<Vec<Row>> = vec![Vec::new(); ROWS.len()];
    for _ in 0..rounds() {
        for (i, row) in ROWS.iter().enumerate() {
            got[i].push(measure(row));
        }
    }
    let m = |row: &str| {
        let i = ROWS.iter().position(|r| *r == row).expect("a row");
        median(got[i].clone(), !row.ends_with('1'))
    };
    let (reference, reference_1) = (m("ref"), m("ref1"));
    println!(
        "| {:<44} | {:>9} | {:>8} | {:>8} | {:>6} | {:>14} |",
        "path", "req/s", "p50 µs", "p99 µs", "errors", "vs wasmtime"
    );
    println!(
        "|{:-<46}|{:-<11}|{:-<10}|{:-<10}|{:-<8}|{:-<16}|",
        "", "", "", "", "", ""
    );
    let rc = format!("c={c}");
    print_row(
        &format!("wasmtime serve {WASMTIME_VERSION}, {rc}"),
        reference,
        reference,
        true,
    );
    print_row("wasmtime serve, c=1", reference_1, reference_1, false);
    print_row(
        &format!("native axum /healthz (upper bound), {rc}"),
        m("native"),
        reference,
        true,
    );
    print_row(
        &format!("/fn public, {rc} (aim >= 0.85x)"),
        m("public"),
        reference,
        true,
    );
    print_row(
        "/fn public, c=1 (aim p50 <= 300 µs)",
        m("public1"),
        reference_1,
        false,
    );
    print_row(
        &format!("/fn with a key, {rc} (aim >= 0.8x)"),
        m("keyed"),
        reference,
        true,
    );
    print_row(
        &format!("command module via the adapter, {rc}"),
        m("adapter"),
        reference,
        true,
    );
}
