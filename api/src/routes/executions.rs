//! `/api/executions`: submit, list, get, cancel.

mod start;
pub mod wait;

use axum::Extension;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use faas_runtime::model::{Execution, ExecutionStatus, ExecutionSummary, now};
use faas_runtime::store::ExecutionFilter;
use serde::{Deserialize, Serialize};

use crate::auth::Caller;
use crate::error::{ApiError, ApiJson, ApiPath, ApiQuery, ApiResult, ErrorBody};
use crate::routes::versions::VersionChoice;
use crate::state::AppState;
use crate::trace::TraceContext;

pub use start::{IDEMPOTENCY_KEY_PATTERN, Started, idempotency_key, prepare, prepare_at, start};
pub use wait::{WaitQuery, events};

/// A submission.
#[derive(Deserialize, utoipa::ToSchema)]
pub struct Submit {
    /// The function to run (one of the caller's).
    pub function_id: String,
    /// The input (default `{}`; at most the operator's input limit, else 413). A string
    /// holding JSON text is also taken.
    #[schema(schema_with = input_schema)]
    pub input: Option<serde_json::Value>,
    /// Where to POST the final record, signed (see `GET /api/callback-key`).
    #[schema(schema_with = callback_url_schema)]
    pub callback_url: Option<String>,
    /// The version to run (default: the newest); not with `alias`.
    #[schema(minimum = 1, maximum = 1_000_000_000_000_000_u64)]
    pub version: Option<u64>,
    /// The alias whose version to run (`latest`: the newest); not with `version`.
    #[schema(pattern = "^[A-Za-z0-9_-][A-Za-z0-9._-]{0,127}$")]
    pub alias: Option<String>,
}

/// The schema of `callback_url`.
pub(crate) fn callback_url_schema() -> utoipa::openapi::schema::Schema {
    let schema = serde_json::json!({
        "type": ["string", "null"],
        "maxLength": crate::callbacks::guard::MAX_URL_BYTES,
        "description": "An http or https URL (at most 2 KiB, no whitespace) to which the execution's \
            final record (the JSON `GET /api/executions/{id}` answers) is POSTed when it ends, with \
            `Content-Type: application/json`, `Faas-Execution-Id: <id>` and \
            `Faas-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of \"<t>.<raw body>\">` keyed by \
            the caller's key (`GET /api/callback-key`). A 2xx answer is a delivery; anything else \
            is retried with exponential backoff (from 1 s, doubling, at most 5 min apart) for up to an \
            hour after the execution ended. The record's `callback` shows the delivery. Loopback, \
            private, link-local, multicast and cloud-metadata addresses are refused (400 \
            `invalid_callback_url`; names are checked when they are resolved, at delivery) unless the \
            operator allows private receivers (never metadata ones).",
    });
    serde_json::from_value(schema).unwrap_or_default()
}

/// `"<function_id>/<object name>"` of `object_inputs` (`faas_runtime::input::parse`).
pub const OBJECT_REF_PATTERN: &str = "^[^/.]+/[A-Za-z0-9_-][A-Za-z0-9._-]{0,127}$";

/// The schema of `input`: any JSON object; `secrets` and `object_inputs` have a
/// meaning to the platform.
pub(crate) fn input_schema() -> utoipa::openapi::schema::Schema {
    let schema = serde_json::json!({
        "type": ["object", "null"],
        "description": "Any JSON object (default, and for null, `{}`; at most the operator's input limit, \
            else 413). `secrets` names secrets of the caller's to give the function (each \
            must exist, else 400 `unknown_secret`); `object_inputs` maps aliases to objects \
            as `\"<function_id>/<object name>\"`. A string holding JSON text is also taken.",
        "properties": {
            "secrets": {"type": "array", "items": {"type": "string", "pattern": crate::openapi::NAME_PATTERN}},
            "object_inputs": {
                "type": "object",
                "additionalProperties": {"type": "string", "pattern": OBJECT_REF_PATTERN},
            },
        },
        "additionalProperties": true,
    });
    serde_json::from_value(schema).unwrap_or_default()
}

/// Filters and paging of a listing.
#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ExecutionQuery {
    /// Only this function's executions.
    pub function_id: Option<String>,
    /// Only this status (`pending`, `running`, `completed`, `failed`, `timed_out`, `cancelled`).
    #[param(value_type = Option<ExecutionStatus>)]
    pub status: Option<String>,
    /// Page size (1-200, default 50).
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<usize>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

/// `{"executions": [...]}`: summaries; read one by id for its input, output and logs.
#[derive(Serialize, utoipa::ToSchema)]
pub struct ExecutionList {
    /// The page, newest first.
    pub executions: Vec<ExecutionSummary>,
    /// Cursor of the next page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

/// Queues an execution; answers at once with status `pending`.
#[utoipa::path(post, path = "/api/executions", tag = "executions", request_body = Submit, security(("bearer" = [])),
    params(IdempotencyHeader),
    responses((status = 202, description = "Queued (`pending`); with an `Idempotency-Key` used before (same user, same request, within 24 h), the execution that request made, with `Idempotent-Replayed: true`", body = Execution),
        (status = 429, description = "A per-user quota is reached (`quota_exceeded`, names the quota; `Retry-After` for rates)", body = ErrorBody),
        (status = 400, description = "Invalid input, an unknown secret, a refused `callback_url` (`invalid_callback_url`), a malformed `Idempotency-Key`, both `version` and `alias` or version 0 (`invalid_version`), or a malformed body", body = ErrorBody),
        (status = 404, description = "No such function of the caller's, or no such version or alias of it", body = ErrorBody),
        (status = 409, description = "A request with the same `Idempotency-Key` is still being accepted", body = ErrorBody),
        (status = 413, description = "The input is larger than the operator's limit", body = ErrorBody),
        (status = 422, description = "The `Idempotency-Key` was used with a different request (`idempotency_mismatch`; the request includes `callback_url`)", body = ErrorBody),
        (status = 503, description = "The queue is full or a backend is unavailable", body = ErrorBody)))]
pub async fn submit(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    trace: Option<Extension<TraceContext>>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<Submit>,
) -> ApiResult<Response> {
    let key = idempotency_key(&headers)?;
    let choice = VersionChoice {
        version: body.version,
        alias: body.alias,
    };
    let mut exec = prepare_at(
        &state,
        &caller,
        &body.function_id,
        &choice,
        body.input,
        body.callback_url,
    )
    .await?;
    exec.traceparent = trace.map(|Extension(t)| t.header());
    let started = start(&state, &caller, exec, key.as_deref().map(|k| (k, &choice))).await?;
    if !started.replayed {
        tracing::info!(execution.id = %started.exec.id, function.id = %started.exec.function_id, "execution queued");
    }
    Ok(started.respond(StatusCode::ACCEPTED, &started.exec, HeaderMap::new()))
}

/// The optional `Idempotency-Key` header of submit and invoke.
#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Header)]
pub struct IdempotencyHeader {
    /// 1-255 printable ASCII characters. The same key from the same user within
    /// 24 h returns the execution the first request made (never run twice), with
    /// `Idempotent-Replayed: true`; with a different request it is a 422.
    #[serde(rename = "Idempotency-Key")]
    #[param(
        rename = "Idempotency-Key",
        pattern = "^[\\x21-\\x7E]([\\x20-\\x7E]{0,253}[\\x21-\\x7E])?$"
    )]
    pub idempotency_key: Option<String>,
}

/// Lists the caller's executions, newest first.
#[utoipa::path(get, path = "/api/executions", tag = "executions", params(ExecutionQuery), security(("bearer" = [])),
    responses((status = 200, description = "A page of the caller's executions", body = ExecutionList),
        (status = 400, description = "Invalid `status`, `limit` or query", body = ErrorBody)))]
pub async fn list(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    ApiQuery(q): ApiQuery<ExecutionQuery>,
) -> ApiResult<ApiJson<ExecutionList>> {
    let status = match q.status.as_deref() {
        None => None,
        Some(s) => Some(ExecutionStatus::parse(s).ok_or_else(|| {
            ApiError::bad_request("invalid_query", format!("unknown status {s:?}"))
        })?),
    };
    let filter = ExecutionFilter {
        function_id: q.function_id,
        status,
    };
    let page = state
        .store
        .list_executions(
            &caller.id,
            &filter,
            q.cursor.as_deref(),
            super::page_limit(q.limit)?,
        )
        .await?;
    Ok(ApiJson(ExecutionList {
        executions: page.items,
        next_cursor: page.next_cursor,
    }))
}

/// One of the caller's executions; with `?wait=SECONDS`, a long poll: answers as
/// soon as the execution is final, or with its state when the wait ends.
#[utoipa::path(get, path = "/api/executions/{id}", tag = "executions", security(("bearer" = [])),
    params(("id" = String, Path, description = "The execution's id"), WaitQuery),
    responses((status = 200, description = "The execution (final, or as it is when the wait ends)", body = Execution),
        (status = 400, description = "`wait` is not a number of seconds up to the operator's cap", body = ErrorBody),
        (status = 404, description = "No such execution of the caller's", body = ErrorBody)))]
pub async fn get(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    ApiPath(id): ApiPath<String>,
    ApiQuery(q): ApiQuery<WaitQuery>,
) -> ApiResult<ApiJson<Execution>> {
    let wait = q.duration(&state, 0)?;
    let exec = wait::until_final(&state, &caller.id, &id, wait).await?;
    Ok(ApiJson(exec))
}

/// Cancels a pending or running execution (a running attempt's result is discarded).
#[utoipa::path(post, path = "/api/executions/{id}/cancel", tag = "executions", security(("bearer" = [])),
    params(("id" = String, Path, description = "The execution's id")),
    responses((status = 200, description = "Cancelled", body = Execution),
        (status = 404, description = "No such execution of the caller's", body = ErrorBody),
        (status = 409, description = "The execution is already final", body = ErrorBody)))]
pub async fn cancel(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<ApiJson<Execution>> {
    for _ in 0..5 {
        let (mut exec, rev) = state
            .store
            .get_execution(&id, Some(&caller.id))
            .await?
            .ok_or_else(|| ApiError::not_found("execution"))?;
        if exec.status.is_final() {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                "conflict",
                format!("execution is already {}", exec.status.as_str()),
            ));
        }
        exec.status = ExecutionStatus::Cancelled;
        exec.error = Some("cancelled by its owner".into());
        exec.completed_at = Some(now());
        match state.store.update_execution(&exec, rev).await {
            Ok(_) => return Ok(ApiJson(exec)),
            Err(faas_runtime::Error::Conflict(_)) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(ApiError::new(
        StatusCode::CONFLICT,
        "conflict",
        "the execution kept changing; retry",
    ))
}

/// Runs a final execution again: a new execution with the same input (so the
/// same secrets and objects) and the same function version, even if an alias
/// moved since, linked to it by `retry_of`. Quotas apply; no callback is carried.
#[utoipa::path(post, path = "/api/executions/{id}/retry", tag = "executions", security(("bearer" = [])),
    params(("id" = String, Path, description = "The execution's id")),
    responses((status = 202, description = "Queued (`pending`), with `retry_of`", body = Execution),
        (status = 404, description = "No such execution of the caller's, or its function or version was deleted", body = ErrorBody),
        (status = 409, description = "The execution is not final yet", body = ErrorBody),
        (status = 429, description = "A per-user quota is reached (`quota_exceeded`)", body = ErrorBody),
        (status = 503, description = "The queue is full or a backend is unavailable", body = ErrorBody)))]
pub async fn retry(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    trace: Option<Extension<TraceContext>>,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Response> {
    if !super::functions::is_id(&id) {
        return Err(ApiError::not_found("execution"));
    }
    let (old, _) = state
        .store
        .get_execution(&id, Some(&caller.id))
        .await?
        .ok_or_else(|| ApiError::not_found("execution"))?;
    if !old.status.is_final() {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "conflict",
            format!(
                "execution is still {}; retry a final one",
                old.status.as_str()
            ),
        ));
    }
    let function = super::functions::owned(&state, &caller, &old.function_id).await?;
    let choice = VersionChoice {
        version: Some(old.function_version.unwrap_or(1)),
        alias: None,
    };
    choice.resolve(&function)?;
    let mut exec = Execution::pending(&function, old.input.clone());
    exec.function_version = choice.version;
    exec.retry_of = Some(old.id.clone());
    // The original's callback URL, delivered afresh (checked again: the
    // operator's settings may have changed since).
    exec.callback = match &old.callback {
        Some(cb) => Some(start::pending_callback(&state, &cb.url)?),
        None => None,
    };
    exec.traceparent = trace.map(|Extension(t)| t.header());
    let started = start(&state, &caller, exec, None).await?;
    tracing::info!(execution.id = %started.exec.id, retry_of = %old.id, "execution retried");
    Ok(started.respond(StatusCode::ACCEPTED, &started.exec, HeaderMap::new()))
}
