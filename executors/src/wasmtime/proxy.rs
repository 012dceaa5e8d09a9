//! `wasi:http/proxy` components served per request, as `wasmtime serve` does: the
//! whole of WASI 0.2 (no preopens, no sockets, stdout/stderr captured as the
//! function's logs) plus `wasi:http`, a fresh [`Store`] per request from the
//! pooling allocator with the memory limiter and the epoch deadline of executions,
//! and both bodies streamed. Outbound requests go through [`super::outbound`]
//! under the function's policy.
//!
//! The guest runs on its own task so that it can keep writing the response body
//! after it has set the response; that task ends at the exchange's deadline at the
//! latest (the store, its instance and its pool slot are dropped then).

use std::io;
use std::sync::Arc;
use std::time::Instant;

use faas_runtime::ports::{GuestLogs, HttpOutcome, HttpRequest, HttpResponse};
use faas_runtime::{Error, Result};
use futures::{StreamExt, TryStreamExt};
use http_body_util::{BodyExt, StreamBody};
use wasmtime::Store;
use wasmtime::component::ResourceTable;
use wasmtime_wasi::{WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};
use wasmtime_wasi_http::p2::bindings::ProxyPre;
use wasmtime_wasi_http::p2::bindings::http::types::Scheme;
use wasmtime_wasi_http::p2::body::HyperOutgoingBody;
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

use super::limits::Limiter;
use super::outbound::Outbound;
use super::pipe::CappedPipe;
use super::run::{instantiation_error, new_store};
use super::{Prepared, Shared};

/// Store data of one HTTP request.
pub(crate) struct HttpState {
    wasi: WasiCtx,
    table: ResourceTable,
    http: WasiHttpCtx,
    hooks: Outbound,
    limiter: Limiter,
}

impl WasiView for HttpState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl WasiHttpView for HttpState {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView {
            ctx: &mut self.http,
            table: &mut self.table,
            hooks: &mut self.hooks,
        }
    }
}

/// How the guest's task ended.
enum TaskEnd {
    /// `handle` returned.
    Returned,
    /// The guest trapped or failed to instantiate.
    Failed(wasmtime::Error),
    /// The deadline passed.
    TimedOut,
}

/// Serves `request` with the proxy component `prepared`.
pub(crate) async fn serve(
    shared: &Shared,
    prepared: Arc<Prepared>,
    request: HttpRequest,
) -> Result<HttpOutcome> {
    let now = Instant::now();
    let deadline = now.checked_add(request.timeout).unwrap_or(now);
    let memory = request
        .memory_limit
        .min(shared.config.max_memory_mb.saturating_mul(1 << 20));
    let stdout = CappedPipe::new("stdout", request.logs_cap);
    let stderr = CappedPipe::new("stderr", request.logs_cap);
    let state = HttpState {
        wasi: wasi_ctx(&stdout, &stderr, &request.env),
        table: ResourceTable::new(),
        http: WasiHttpCtx::new(),
        hooks: Outbound::new(request.outbound),
        limiter: Limiter::new(memory),
    };
    let mut store = new_store(&shared.engine, state, |s| &mut s.limiter, deadline);
    let body = request
        .body
        .map_ok(http_body::Frame::data)
        .map_err(read_error);
    let incoming = http::Request::from_parts(request.head, StreamBody::new(body));
    let (tx, rx) = tokio::sync::oneshot::channel();
    let setup = |e: wasmtime::Error| Error::Internal(format!("cannot pass the request: {e}"));
    let req = store
        .data_mut()
        .http()
        .new_incoming_request(Scheme::Http, incoming)
        .map_err(setup)?;
    let out = store
        .data_mut()
        .http()
        .new_response_outparam(tx)
        .map_err(setup)?;
    let function = request.function.id.clone();
    let logs = request.logs;
    let task = tokio::spawn(async move {
        let run = async {
            let pre = match &prepared.entry {
                super::Entry::Proxy(pre) => pre,
                _ => return TaskEnd::Failed(wasmtime::format_err!("not an HTTP handler")),
            };
            run_guest(pre, &mut store, req, out).await
        };
        let end = tokio::time::timeout_at(deadline.into(), run)
            .await
            .unwrap_or(TaskEnd::TimedOut);
        drop(store);
        let printed = log_output(&function, &stdout, &stderr);
        if let Some(logs) = logs {
            let _ = logs.send(printed);
        }
        end
    });
    match rx.await {
        Ok(Ok(response)) => Ok(HttpOutcome::Response(into_response(response))),
        Ok(Err(code)) => Ok(HttpOutcome::NoResponse(format!(
            "the function answered with an error: {code:?}"
        ))),
        Err(_) => match task.await {
            Ok(TaskEnd::TimedOut) => Ok(HttpOutcome::TimedOut),
            Ok(TaskEnd::Returned) => Ok(HttpOutcome::NoResponse(
                "the function returned without setting a response".into(),
            )),
            Ok(TaskEnd::Failed(e)) => {
                let e = instantiation_error(e)?;
                Ok(HttpOutcome::NoResponse(failure(&e)))
            }
            Err(e) => Err(Error::Internal(format!("the request task failed: {e}"))),
        },
    }
}

async fn run_guest(
    pre: &ProxyPre<HttpState>,
    store: &mut Store<HttpState>,
    req: wasmtime::component::Resource<wasmtime_wasi_http::p2::types::HostIncomingRequest>,
    out: wasmtime::component::Resource<wasmtime_wasi_http::p2::types::HostResponseOutparam>,
) -> TaskEnd {
    let proxy = match pre.instantiate_async(&mut *store).await {
        Ok(proxy) => proxy,
        Err(e) => return TaskEnd::Failed(e),
    };
    let called = proxy
        .wasi_http_incoming_handler()
        .call_handle(&mut *store, req, out)
        .await;
    match called {
        Ok(()) => TaskEnd::Returned,
        Err(e)
            if matches!(
                e.downcast_ref::<wasmtime::Trap>(),
                Some(wasmtime::Trap::Interrupt)
            ) =>
        {
            TaskEnd::TimedOut
        }
        Err(e) => TaskEnd::Failed(e),
    }
}

/// WASI 0.2 with `env`, without preopens and without network; stdio captured.
fn wasi_ctx(stdout: &CappedPipe, stderr: &CappedPipe, env: &[(String, String)]) -> WasiCtx {
    WasiCtxBuilder::new()
        .envs(env)
        .stdout(stdout.clone())
        .stderr(stderr.clone())
        .allow_tcp(false)
        .allow_udp(false)
        .allow_ip_name_lookup(false)
        .socket_addr_check(|_, _| Box::pin(async { false }))
        .build()
}

fn read_error(e: io::Error) -> wasmtime_wasi_http::Error {
    if e.kind() == io::ErrorKind::TimedOut {
        wasmtime_wasi_http::Error::ConnectionReadTimeout
    } else {
        wasmtime_wasi_http::Error::HttpProtocolError
    }
}

fn into_response(response: http::Response<HyperOutgoingBody>) -> HttpResponse {
    let (head, body) = response.into_parts();
    let body = body
        .into_data_stream()
        .map_err(|e| io::Error::other(e.to_string()))
        .boxed();
    HttpResponse { head, body }
}

fn failure(e: &wasmtime::Error) -> String {
    match e.downcast_ref::<wasmtime::Trap>() {
        Some(trap) => format!("trap: {trap}"),
        None => format!("trap: {}", super::artifacts::describe(e)),
    }
}

/// What the guest printed, traced as the function's logs and returned.
fn log_output(function: &str, stdout: &CappedPipe, stderr: &CappedPipe) -> GuestLogs {
    let mut printed = GuestLogs::default();
    for (stream, pipe, into) in [
        ("stdout", stdout, &mut printed.stdout),
        ("stderr", stderr, &mut printed.stderr),
    ] {
        let (bytes, overflow) = pipe.take();
        printed.overflow |= overflow;
        if !bytes.is_empty() {
            let text = String::from_utf8_lossy(&bytes);
            tracing::info!(function.id = %function, output = stream, overflow, text = %text, "guest output");
            *into = text.into_owned();
        }
    }
    printed
}
