//! `ANY /fn/{username}/{function}` and `ANY /fn/{username}/{function}/{*rest}`:
//! functions as HTTP endpoints, served synchronously without the queue.
//!
//! A function is found by its owner's username and its name (both in any letter
//! case); one that is not enabled for HTTP answers the same 404 as one that does
//! not exist. `key` access wants `Authorization: Bearer <key>` (401 otherwise),
//! and the header never reaches the guest. The guest sees the path after the
//! function's prefix (`/{rest}` and the query) plus `x-faas-function`,
//! `x-faas-full-url` and `x-forwarded-for`.
//!
//! A `wasi:http/proxy` component handles the request itself through the
//! [`HttpHandler`] port, both bodies streamed; every other function runs through
//! its executor with the request as its INPUT ([`faas_runtime::adapter`]).
//!
//! - [`body`]: the body cap and the idle timeout of both bodies;
//! - [`head`]: a response's head waits briefly for its body's start (one write for a
//!   short response; a complete body sent whole, without a pump);
//! - [`pump`]: bodies copied by a task of their own, so that a reader that stops
//!   reading is cut by the idle timeout too (the slot and the sandbox freed);
//! - [`record`]: every call counted in the metrics; failed ones (or all, or none:
//!   FAAS_HTTP_RECORD) written as execution records with `trigger: "http"`;
//! - [`slots`]: the global and per-function concurrency limits (429 when full).

pub mod body;
pub mod head;
pub mod pump;
pub mod record;
pub mod slots;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::header::{AUTHORIZATION, CONTENT_LENGTH, HOST};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use faas_runtime::model::{Function, HttpAccess, new_id, validate_name};
use faas_runtime::outbound::OutboundPolicy;
use faas_runtime::outcome::{Limits, classify};
use faas_runtime::ports::{ByteStream, ExecutionRequest, HttpHandler, HttpOutcome, HttpRequest};
use faas_runtime::store::Endpoint;
use futures::{StreamExt, TryStreamExt};

pub use record::{Call, HttpRecord, Recorder};
pub use slots::{Slot, Slots};

use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::state::AppState;

/// Serves a request to the root of a function's endpoint.
#[utoipa::path(method(get, post, put, delete, patch), path = "/fn/{username}/{function}", tag = "endpoints",
    params(("username" = String, Path, description = "The owner's username (any letter case)"),
        ("function" = String, Path, description = "The function's name (any letter case)")),
    request_body(content = Vec<u8>, content_type = "*/*", description = "Passed to the function, streamed"),
    responses((status = 200, description = "The function's response: a wasi:http component sets status, headers and body; other functions answer 200 with their stdout, or what an `http_response` result says"),
        (status = 401, description = "The function wants a key: none or a wrong one was presented (`unauthorized`)", body = ErrorBody),
        (status = 404, description = "No such user or function, or the function is not enabled for HTTP (`not_found`)", body = ErrorBody),
        (status = 413, description = "The body is larger than FAAS_HTTP_MAX_BODY_BYTES", body = ErrorBody),
        (status = 429, description = "The function or the platform serves as many requests as allowed (`too_many_requests`, `Retry-After`)", body = ErrorBody),
        (status = 500, description = "The function failed or set no response (`function_failed`)", body = ErrorBody),
        (status = 504, description = "The function ran past its timeout (`timed_out`)", body = ErrorBody)))]
pub async fn call(State(state): State<AppState>, req: Request) -> Response {
    serve(&state, req)
        .await
        .unwrap_or_else(IntoResponse::into_response)
}

/// Serves a request to a path under a function's endpoint (the guest sees `/{rest}`).
#[utoipa::path(method(get, post, put, delete, patch), path = "/fn/{username}/{function}/{rest}", tag = "endpoints",
    params(("username" = String, Path, description = "The owner's username (any letter case)"),
        ("function" = String, Path, description = "The function's name (any letter case)"),
        ("rest" = String, Path, description = "The path the function sees (after a `/`)")),
    request_body(content = Vec<u8>, content_type = "*/*", description = "Passed to the function, streamed"),
    responses((status = 200, description = "The function's response (see the route without a rest)"),
        (status = 401, description = "The function wants a key: none or a wrong one was presented (`unauthorized`)", body = ErrorBody),
        (status = 404, description = "No such user or function, or the function is not enabled for HTTP (`not_found`)", body = ErrorBody),
        (status = 413, description = "The body is larger than FAAS_HTTP_MAX_BODY_BYTES", body = ErrorBody),
        (status = 429, description = "The function or the platform serves as many requests as allowed (`too_many_requests`, `Retry-After`)", body = ErrorBody),
        (status = 500, description = "The function failed or set no response (`function_failed`)", body = ErrorBody),
        (status = 504, description = "The function ran past its timeout (`timed_out`)", body = ErrorBody)))]
pub async fn call_rest(State(state): State<AppState>, req: Request) -> Response {
    serve(&state, req)
        .await
        .unwrap_or_else(IntoResponse::into_response)
}

/// Where a request goes: owner, function and the rest of the path.
struct Target {
    username: String,
    function: String,
    rest: String,
}

fn target(path: &str) -> Option<Target> {
    let mut parts = path.strip_prefix("/fn/")?.splitn(3, '/');
    Some(Target {
        username: parts.next()?.to_string(),
        function: parts.next()?.to_string(),
        rest: parts.next().unwrap_or("").to_string(),
    })
}

async fn serve(state: &AppState, req: Request) -> ApiResult<Response> {
    let (parts, body) = req.into_parts();
    let to = target(parts.uri.path()).ok_or_else(|| ApiError::not_found("function"))?;
    let endpoint = find(state, &to).await?;
    let call = state.records.begin(
        &endpoint.function,
        &parts,
        timeout(state, &endpoint.function),
    );
    let served = serve_found(state, &call, endpoint, to, parts, body).await;
    if let Err(e) = &served {
        call.refused(e.status.as_u16());
    }
    served
}

/// Serves a request to `function`, found and enabled; `call` counts and records it.
async fn serve_found(
    state: &AppState,
    call: &Call,
    endpoint: Endpoint,
    to: Target,
    mut parts: Parts,
    body: Body,
) -> ApiResult<Response> {
    authorize(&endpoint, &mut parts)?;
    let Endpoint {
        function,
        settings,
        guest_env,
        ..
    } = endpoint;
    let max = state.limits.http_max_body_bytes;
    let declared = parts
        .headers
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    if declared.is_some_and(|n| n > max) {
        return Err(ApiError::too_large(format!(
            "the body is larger than {max} bytes"
        )));
    }
    let slot = state.slots.take(&function.id).ok_or_else(|| {
        ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "too_many_requests",
            "the function serves as many requests as it may; retry shortly",
        )
        .with_retry_after(1)
    })?;
    guest_head(&mut parts, &to)?;
    let env = guest_env.to_vec();
    let idle = Duration::from_secs(state.limits.http_idle_timeout_secs.max(1));
    let empty = axum::body::HttpBody::is_end_stream(&body);
    let body: ByteStream = body
        .into_data_stream()
        .map_err(std::io::Error::other)
        .boxed();
    let body = body::guarded(body, max, idle, ());
    if let Some(handler) = &state.http
        && handler.handles(&function).await?
    {
        let body = if empty {
            body
        } else {
            pump::pump(body, idle, |_| {}, "the function")
        };
        let outbound = OutboundPolicy::new(
            &settings.allowed_outbound_hosts,
            state.limits.outbound.clone(),
        );
        return via_handler(
            state,
            handler.clone(),
            (function, env, outbound),
            parts,
            body,
            (slot, call),
        )
        .await;
    }
    via_executor(state, (function, env), parts, body, (slot, call)).await
}

/// The endpoint `to` names, if it is enabled for HTTP (from the store's
/// [`faas_runtime::store::Endpoint`] cache: no store read on a warm path).
async fn find(state: &AppState, to: &Target) -> ApiResult<Endpoint> {
    let missing = || ApiError::not_found("function");
    if crate::routes::auth::validate_username(&to.username).is_err()
        || validate_name("function", &to.function).is_err()
    {
        return Err(missing());
    }
    let endpoint = state
        .store
        .endpoint(&to.username, &to.function)
        .await?
        .ok_or_else(missing)?;
    if !endpoint.settings.enabled {
        return Err(missing());
    }
    Ok(endpoint)
}

/// Checks the key of a `key` function, and removes `Authorization` either way.
fn authorize(endpoint: &Endpoint, parts: &mut Parts) -> ApiResult<()> {
    let presented = parts.headers.remove(AUTHORIZATION);
    if endpoint.settings.access == HttpAccess::Public {
        return Ok(());
    }
    let key = presented
        .as_ref()
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
        .filter(|k| !k.is_empty())
        .ok_or_else(|| {
            ApiError::unauthorized("this function wants `Authorization: Bearer <key>`")
        })?;
    if endpoint.key_matches(key) {
        Ok(())
    } else {
        Err(ApiError::unauthorized(
            "the key is not one of this function's",
        ))
    }
}

/// Rewrites the request as the guest sees it: `/{rest}` and the query, plus the
/// `x-faas-*` and `x-forwarded-for` headers.
fn guest_head(parts: &mut Parts, to: &Target) -> ApiResult<()> {
    let original = parts.uri.clone();
    let path = match original.query() {
        Some(q) => format!("/{}?{q}", to.rest),
        None => format!("/{}", to.rest),
    };
    parts.uri = path
        .parse()
        .map_err(|_| ApiError::bad_request("invalid_path", "the path is not a valid URI"))?;
    let host = match parts.headers.get(HOST).and_then(|h| h.to_str().ok()) {
        Some(h) => h.to_string(),
        None => {
            parts
                .headers
                .insert(HOST, HeaderValue::from_static("localhost"));
            "localhost".to_string()
        }
    };
    let full = original
        .path_and_query()
        .map_or(original.path(), |pq| pq.as_str());
    let headers = [
        (
            "x-faas-function",
            format!("{}/{}", to.username, to.function),
        ),
        ("x-faas-full-url", format!("http://{host}{full}")),
    ];
    for (name, value) in headers {
        if let Ok(v) = HeaderValue::from_str(&value) {
            parts.headers.insert(name, v);
        }
    }
    if let Some(ConnectInfo(peer)) = parts.extensions.get::<ConnectInfo<SocketAddr>>() {
        let ip = peer.ip().to_canonical().to_string();
        let value = match parts
            .headers
            .get("x-forwarded-for")
            .and_then(|v| v.to_str().ok())
        {
            Some(before) => format!("{before}, {ip}"),
            None => ip,
        };
        if let Ok(v) = HeaderValue::from_str(&value) {
            parts.headers.insert("x-forwarded-for", v);
        }
    }
    Ok(())
}

fn timeout(state: &AppState, f: &Function) -> Duration {
    Duration::from_secs(
        f.timeout_secs
            .clamp(1, state.limits.max_timeout_secs.max(1)),
    )
}

async fn via_handler(
    state: &AppState,
    handler: Arc<dyn HttpHandler>,
    (function, env, outbound): (Function, Vec<(String, String)>, OutboundPolicy),
    head: Parts,
    body: ByteStream,
    (slot, call): (Slot, &Call),
) -> ApiResult<Response> {
    let request = HttpRequest {
        head,
        body,
        timeout: timeout(state, &function),
        memory_limit: function.memory_mb.saturating_mul(1 << 20),
        logs_cap: state.limits.http_output_cap_bytes,
        logs: call.logs_sender(),
        env,
        function,
        outbound,
    };
    let failed = |status: StatusCode, code: &'static str, why: String| {
        call.ended(status.as_u16(), record::failure(status), Some(why.clone()));
        Err(ApiError::new(status, code, why))
    };
    match handler.handle(request).await? {
        HttpOutcome::Response(r) => {
            let idle = Duration::from_secs(state.limits.http_idle_timeout_secs.max(1));
            let body = body::guarded(r.body, u64::MAX, idle, ());
            let status = r.head.status.as_u16();
            let body = match head::start(body, head::WAIT).await {
                head::Start::Whole(bytes) => {
                    drop(slot);
                    call.body_ended(status, pump::End::Complete);
                    return Ok(Response::from_parts(r.head, Body::from(bytes)));
                }
                head::Start::Streaming(body) => body,
            };
            let call = call.clone();
            let on_end = move |end| {
                drop(slot);
                call.body_ended(status, end);
            };
            let body = pump::pump(body, idle, on_end, "the client");
            Ok(Response::from_parts(r.head, Body::from_stream(body)))
        }
        HttpOutcome::NoResponse(why) => {
            failed(StatusCode::INTERNAL_SERVER_ERROR, "function_failed", why)
        }
        HttpOutcome::TimedOut => failed(
            StatusCode::GATEWAY_TIMEOUT,
            "timed_out",
            "the function did not answer within its timeout".into(),
        ),
    }
}

/// Runs a function that is not an HTTP handler with the request as its INPUT.
async fn via_executor(
    state: &AppState,
    (function, env): (Function, Vec<(String, String)>),
    head: Parts,
    body: ByteStream,
    (_slot, call): (Slot, &Call),
) -> ApiResult<Response> {
    let kind = function.runnable.kind();
    let executor = state.executors.get(&kind).ok_or_else(|| {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            format!("no {} executor runs in this process", kind.as_str()),
        )
    })?;
    let bytes = collect(body).await?;
    let limits = Limits {
        timeout_secs: timeout(state, &function).as_secs(),
        memory_mb: function.memory_mb,
        stdout_cap: state.limits.http_output_cap_bytes,
        stderr_cap: state.limits.http_output_cap_bytes,
    };
    let request = ExecutionRequest {
        execution_id: new_id(),
        attempt: 1,
        input: faas_runtime::adapter::input(&head, &bytes),
        env,
        objects: Vec::new(),
        objects_dir: None,
        timeout: Duration::from_secs(limits.timeout_secs),
        memory_limit: function.memory_mb.saturating_mul(1 << 20),
        stdout_cap: limits.stdout_cap,
        stderr_cap: limits.stderr_cap,
        function,
    };
    let raw = executor.execute(request).await?;
    let fields = classify(&raw, limits);
    let response = faas_runtime::adapter::response(&fields);
    call.ran(response.status().as_u16(), &fields);
    Ok(response.map(Body::from))
}

async fn collect(mut body: ByteStream) -> ApiResult<Vec<u8>> {
    let mut bytes = Vec::new();
    while let Some(chunk) = body.next().await {
        match chunk {
            Ok(chunk) => bytes.extend_from_slice(&chunk),
            Err(e) if body::is_too_large(&e) => return Err(ApiError::too_large(e.to_string())),
            Err(e) => {
                return Err(ApiError::bad_request("body_unreadable", e.to_string()));
            }
        }
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_split_owner_function_and_rest() {
        let t = target("/fn/ann/hello/a/b").unwrap();
        assert_eq!((t.username.as_str(), t.function.as_str()), ("ann", "hello"));
        assert_eq!(t.rest, "a/b");
        let t = target("/fn/ann/hello").unwrap();
        assert_eq!(t.rest, "");
        assert!(target("/fn/ann").is_none());
    }
}
