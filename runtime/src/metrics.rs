//! The platform's metrics, recorded through the `metrics` facade (the binary
//! installs a Prometheus recorder; without one every call here is a no-op). Names
//! and labels are defined here once; labels are bounded sets (runtimes, statuses,
//! route templates), never raw paths; the one id is a function's, on the metrics of
//! its HTTP endpoint (bounded by the functions of the installation).
//!
//! | name | kind | labels |
//! |---|---|---|
//! | `faas_executions_total` | counter | `runtime`, `status` |
//! | `faas_execution_duration_seconds` | histogram | `runtime` |
//! | `faas_queue_wait_seconds` | histogram | |
//! | `faas_queue_depth` | gauge (at scrape) | |
//! | `faas_queue_in_flight` | gauge (at scrape) | |
//! | `faas_workers` | gauge (at scrape: live workers of the installation) | |
//! | `faas_worker_slots` / `faas_worker_slots_busy` | gauges (this process's pool) | |
//! | `faas_http_requests_total` | counter | `route`, `status` |
//! | `faas_http_request_duration_seconds` | histogram | `route` |
//! | `faas_wasm_compile_cache_total` | counter | `result` (`memory`, `disk`, `compiled`) |
//! | `faas_function_http_calls_total` | counter | `function` (id), `status` (HTTP code) |
//! | `faas_function_http_call_duration_seconds` | histogram | `function` (id) |
//! | `faas_http_records_dropped_total` | counter | |
//! | `faas_schedule_ticks_total` | counter | `result` (`run`, `duplicate`, `quota`, `failed`) |
//! | `faas_retention_deleted_total` | counter | |

use std::time::Duration;

use crate::model::{ExecutionStatus, RuntimeKind};
use crate::ports::WorkQueue;
use crate::store::Store;

/// Executions that reached a final state, by runtime and status.
pub const EXECUTIONS_TOTAL: &str = "faas_executions_total";
/// Run time of finished executions, by runtime.
pub const EXECUTION_DURATION: &str = "faas_execution_duration_seconds";
/// Time from acceptance to the start of the attempt that ran.
pub const QUEUE_WAIT: &str = "faas_queue_wait_seconds";
/// Messages waiting in the queue.
pub const QUEUE_DEPTH: &str = "faas_queue_depth";
/// Messages delivered and not yet acknowledged.
pub const QUEUE_IN_FLIGHT: &str = "faas_queue_in_flight";
/// Live workers of the installation (fresh heartbeats).
pub const WORKERS: &str = "faas_workers";
/// Execution slots of this process's worker pool.
pub const WORKER_SLOTS: &str = "faas_worker_slots";
/// Slots of this process's worker pool running an execution now.
pub const WORKER_SLOTS_BUSY: &str = "faas_worker_slots_busy";
/// HTTP requests answered, by route template and status.
pub const HTTP_REQUESTS_TOTAL: &str = "faas_http_requests_total";
/// Time to the response head, by route template.
pub const HTTP_REQUEST_DURATION: &str = "faas_http_request_duration_seconds";
/// Wasm modules looked up for a run: found compiled in memory, on disk, or compiled.
pub const WASM_COMPILE_CACHE_TOTAL: &str = "faas_wasm_compile_cache_total";

/// Calls of a function's HTTP endpoint (`/fn/...`) that found the function, by
/// function id and the HTTP status answered.
pub const FUNCTION_HTTP_CALLS_TOTAL: &str = "faas_function_http_calls_total";
/// Time from the request to the end of the response body of a function's HTTP
/// endpoint, by function id.
pub const FUNCTION_HTTP_CALL_DURATION: &str = "faas_function_http_call_duration_seconds";
/// Execution records of HTTP calls not written: too many writes waiting, or the
/// store failed (FAAS_HTTP_RECORD).
pub const HTTP_RECORDS_DROPPED_TOTAL: &str = "faas_http_records_dropped_total";
/// Ticks of schedules handled by this process: `run` (queued), `duplicate` (another
/// process made it), `quota` (skipped: over a quota), `failed` (skipped: invalid input,
/// function gone, backend fault).
pub const SCHEDULE_TICKS_TOTAL: &str = "faas_schedule_ticks_total";
/// Finished executions deleted by the retention sweep of this process.
pub const RETENTION_DELETED_TOTAL: &str = "faas_retention_deleted_total";

/// Histogram bucket bounds (seconds) for every `*_seconds` metric: 100 µs to 5 min.
pub const SECONDS_BUCKETS: &[f64] = &[
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
    5.0, 10.0, 30.0, 60.0, 300.0,
];

/// Counts an execution a worker finished and, when it ran, its duration. `runtime`
/// is `none` for one that failed before its function was known.
pub fn execution_finished(
    runtime: Option<RuntimeKind>,
    status: ExecutionStatus,
    ran: Option<Duration>,
) {
    let runtime = runtime.map_or("none", RuntimeKind::as_str);
    metrics::counter!(EXECUTIONS_TOTAL, "runtime" => runtime, "status" => status.as_str())
        .increment(1);
    if let Some(d) = ran {
        metrics::histogram!(EXECUTION_DURATION, "runtime" => runtime).record(d.as_secs_f64());
    }
}

/// Records how long an execution waited before its attempt started.
pub fn queue_waited(waited: Duration) {
    metrics::histogram!(QUEUE_WAIT).record(waited.as_secs_f64());
}

/// Adds `slots` to (or, negative, removes them from) this process's worker pools.
pub fn worker_slots(slots: f64) {
    metrics::gauge!(WORKER_SLOTS).increment(slots);
}

/// One more (`1.0`) or one fewer (`-1.0`) busy slot in this process.
pub fn worker_slot_busy(delta: f64) {
    metrics::gauge!(WORKER_SLOTS_BUSY).increment(delta);
}

/// Counts one answered HTTP request.
pub fn http_request(route: &str, status: u16, took: Duration) {
    let route = metrics::SharedString::from(route.to_string());
    metrics::counter!(HTTP_REQUESTS_TOTAL, "route" => route.clone(), "status" => status.to_string())
        .increment(1);
    metrics::histogram!(HTTP_REQUEST_DURATION, "route" => route).record(took.as_secs_f64());
}

/// Counts one call of a function's HTTP endpoint and its duration.
pub fn function_http_call(function_id: &str, status: u16, took: Duration) {
    let function = metrics::SharedString::from(function_id.to_string());
    metrics::counter!(FUNCTION_HTTP_CALLS_TOTAL, "function" => function.clone(), "status" => status.to_string())
        .increment(1);
    metrics::histogram!(FUNCTION_HTTP_CALL_DURATION, "function" => function)
        .record(took.as_secs_f64());
}

/// Counts an execution record of an HTTP call that was not written.
pub fn http_record_dropped() {
    metrics::counter!(HTTP_RECORDS_DROPPED_TOTAL).increment(1);
}

/// Counts a wasm module lookup: `memory`, `disk` or `compiled`.
pub fn wasm_compile_cache(result: &'static str) {
    metrics::counter!(WASM_COMPILE_CACHE_TOTAL, "result" => result).increment(1);
}

/// Counts a tick of a schedule by what came of it (see [`SCHEDULE_TICKS_TOTAL`]).
pub fn schedule_tick(result: &'static str) {
    metrics::counter!(SCHEDULE_TICKS_TOTAL, "result" => result).increment(1);
}

/// Counts executions deleted by a retention sweep.
pub fn retention_deleted(n: u64) {
    metrics::counter!(RETENTION_DELETED_TOTAL).increment(n);
}

/// Sets the gauges read from the shared state (queue depth, live workers), just
/// before a scrape renders them. A failing read leaves the last value.
pub async fn observe(queue: &dyn WorkQueue, store: &Store) {
    match queue.stats().await {
        Ok(stats) => {
            metrics::gauge!(QUEUE_DEPTH).set(stats.pending as f64);
            metrics::gauge!(QUEUE_IN_FLIGHT).set(stats.in_flight as f64);
        }
        Err(e) => tracing::debug!(error = %e, "queue statistics unavailable for /metrics"),
    }
    match store.list_workers().await {
        Ok(workers) => {
            let live = workers.iter().filter(|w| w.is_live()).count();
            metrics::gauge!(WORKERS).set(live as f64);
        }
        Err(e) => tracing::debug!(error = %e, "worker records unavailable for /metrics"),
    }
}
