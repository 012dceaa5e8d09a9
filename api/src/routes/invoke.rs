//! `POST /api/functions/{id}/invoke`: a submit that waits for the answer.

use axum::Extension;
use axum::extract::State;
use axum::http::header::LOCATION;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::Response;
use faas_runtime::model::Execution;
use serde::Deserialize;

use super::executions::{IdempotencyHeader, WaitQuery, idempotency_key, prepare_at, start, wait};
use super::versions::VersionChoice;
use crate::auth::Caller;
use crate::error::{ApiJson, ApiPath, ApiQuery, ApiResult, ErrorBody};
use crate::state::AppState;
use crate::trace::TraceContext;

/// Default `?wait=` of an invoke (seconds).
pub const DEFAULT_WAIT_SECS: u64 = 30;

/// An invocation: a submission of the function in the path.
#[derive(Deserialize, utoipa::ToSchema)]
pub struct Invoke {
    /// The input, as in a submission.
    #[schema(schema_with = super::executions::input_schema)]
    pub input: Option<serde_json::Value>,
    /// Where to POST the final record, signed, as in a submission.
    #[schema(schema_with = super::executions::callback_url_schema)]
    pub callback_url: Option<String>,
    /// The version to run (default: the newest); not with `alias`.
    #[schema(minimum = 1, maximum = 1_000_000_000_000_000_u64)]
    pub version: Option<u64>,
    /// The alias whose version to run (`latest`: the newest); not with `version`.
    #[schema(pattern = "^[A-Za-z0-9_-][A-Za-z0-9._-]{0,127}$")]
    pub alias: Option<String>,
}

/// Runs one of the caller's functions and answers with its final record when it
/// ends within `wait` seconds (default 30). It is an ordinary durable execution:
/// past the wait the answer is 202 with the record so far and a `Location` to
/// fetch it by (`GET /api/executions/{id}?wait=` waits on).
#[utoipa::path(post, path = "/api/functions/{id}/invoke", tag = "executions", request_body = Invoke, security(("bearer" = [])),
    params(("id" = String, Path, description = "The function's id"), WaitQuery, IdempotencyHeader),
    responses((status = 200, description = "The execution ended within the wait: its final record (`completed`, `failed`, `timed_out` or `cancelled`)", body = Execution),
        (status = 202, description = "Still pending or running when the wait ended: the record so far; `Location: /api/executions/{id}`. With an `Idempotency-Key` used before, `Idempotent-Replayed: true`", body = Execution),
        (status = 429, description = "A per-user quota is reached (`quota_exceeded`, names the quota; `Retry-After` for rates)", body = ErrorBody),
        (status = 400, description = "Invalid input or `wait`, an unknown secret, a refused `callback_url` (`invalid_callback_url`), a malformed `Idempotency-Key`, both `version` and `alias` or version 0 (`invalid_version`), or a malformed body", body = ErrorBody),
        (status = 404, description = "No such function of the caller's, or no such version or alias of it", body = ErrorBody),
        (status = 409, description = "A request with the same `Idempotency-Key` is still being accepted", body = ErrorBody),
        (status = 413, description = "The input is larger than the operator's limit", body = ErrorBody),
        (status = 422, description = "The `Idempotency-Key` was used with a different request (`idempotency_mismatch`)", body = ErrorBody),
        (status = 503, description = "The queue is full or a backend is unavailable", body = ErrorBody)))]
pub async fn invoke(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    trace: Option<Extension<TraceContext>>,
    ApiPath(function_id): ApiPath<String>,
    ApiQuery(q): ApiQuery<WaitQuery>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<Invoke>,
) -> ApiResult<Response> {
    let wait = q.duration(&state, DEFAULT_WAIT_SECS)?;
    let key = idempotency_key(&headers)?;
    let choice = VersionChoice {
        version: body.version,
        alias: body.alias,
    };
    let mut exec = prepare_at(
        &state,
        &caller,
        &function_id,
        &choice,
        body.input,
        body.callback_url,
    )
    .await?;
    exec.traceparent = trace.map(|Extension(t)| t.header());
    let started = start(&state, &caller, exec, key.as_deref().map(|k| (k, &choice))).await?;
    let exec = wait::until_final(&state, &caller.id, &started.exec.id, wait).await?;
    if exec.status.is_final() {
        return Ok(started.respond(StatusCode::OK, &exec, HeaderMap::new()));
    }
    Ok(started.respond(StatusCode::ACCEPTED, &exec, location(&exec)))
}

fn location(exec: &Execution) -> HeaderMap {
    let mut h = HeaderMap::new();
    if let Ok(v) = HeaderValue::from_str(&format!("/api/executions/{}", exec.id)) {
        h.insert(LOCATION, v);
    }
    h
}
