//! `/api/executions`: submit, list, get, cancel.

use axum::Extension;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use faas_runtime::input::{normalize, parse};
use faas_runtime::model::{Execution, ExecutionStatus, ExecutionSummary, now};
use faas_runtime::store::ExecutionFilter;
use serde::{Deserialize, Serialize};

use crate::auth::Caller;
use crate::error::{ApiError, ApiJson, ApiPath, ApiQuery, ApiResult};
use crate::state::AppState;

/// A submission.
#[derive(Deserialize, utoipa::ToSchema)]
pub struct Submit {
    /// The function to run.
    pub function_id: String,
    /// A JSON object, or a string holding JSON (default `{}`).
    #[schema(value_type = Object)]
    pub input: Option<serde_json::Value>,
}

/// Filters and paging of a listing.
#[derive(Deserialize, utoipa::IntoParams)]
pub struct ExecutionQuery {
    /// Only this function's executions.
    pub function_id: Option<String>,
    /// Only this status (`pending`, `running`, `completed`, `failed`, `timed_out`, `cancelled`).
    pub status: Option<String>,
    /// Page size (1-200, default 50).
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
    responses((status = 202, body = Execution), (status = 400, body = crate::error::ErrorBody), (status = 404, body = crate::error::ErrorBody), (status = 503, body = crate::error::ErrorBody)))]
pub async fn submit(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    ApiJson(body): ApiJson<Submit>,
) -> ApiResult<impl IntoResponse> {
    let function = super::functions::owned(&state, &caller, &body.function_id).await?;
    let input = body.input.unwrap_or_else(|| serde_json::json!({}));
    let text = normalize(&input).map_err(|e| ApiError::bad_request("invalid_input", strip(e)))?;
    if text.len() > state.limits.max_input_bytes {
        return Err(ApiError::too_large(format!(
            "input is larger than {} bytes",
            state.limits.max_input_bytes
        )));
    }
    let parsed = parse(&text).map_err(|e| ApiError::bad_request("invalid_input", strip(e)))?;
    for name in &parsed.secrets {
        if state.store.find_secret(&caller.id, name).await?.is_none() {
            return Err(ApiError::bad_request(
                "unknown_secret",
                format!("secret {name:?} does not exist"),
            ));
        }
    }
    crate::quotas::check_submit(&state, &caller.id).await?;
    let exec = Execution::pending(&function, text);
    accept(&state, exec.clone()).await?;
    tracing::info!(execution.id = %exec.id, function.id = %function.id, "execution queued");
    Ok((StatusCode::ACCEPTED, ApiJson(exec)))
}

/// Records and queues `exec` on a task of its own, so a client that goes away
/// cannot stop it halfway; a failure rolls back what was written.
pub(crate) async fn accept(state: &AppState, exec: Execution) -> ApiResult<()> {
    let (store, queue) = (state.store.clone(), state.queue.clone());
    let task = tokio::spawn(async move {
        let result = store.accept_execution(queue.as_ref(), &exec).await;
        if result.is_err()
            && let Err(e) = store.discard_execution(&exec).await
        {
            tracing::warn!(execution.id = %exec.id, error = %e, "rollback of a failed submit failed; the reconciler finishes it");
        }
        result
    });
    match task.await {
        Ok(result) => result.map(|_| ()).map_err(ApiError::from),
        Err(e) => Err(faas_runtime::Error::Internal(format!("submit task failed: {e}")).into()),
    }
}

fn strip(e: faas_runtime::Error) -> String {
    match e {
        faas_runtime::Error::Invalid(m) => m,
        other => other.to_string(),
    }
}

/// Lists the caller's executions, newest first.
#[utoipa::path(get, path = "/api/executions", tag = "executions", params(ExecutionQuery), security(("bearer" = [])),
    responses((status = 200, body = ExecutionList), (status = 400, body = crate::error::ErrorBody)))]
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

/// One of the caller's executions.
#[utoipa::path(get, path = "/api/executions/{id}", tag = "executions", security(("bearer" = [])),
    responses((status = 200, body = Execution), (status = 404, body = crate::error::ErrorBody)))]
pub async fn get(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<ApiJson<Execution>> {
    let (exec, _) = state
        .store
        .get_execution(&id, Some(&caller.id))
        .await?
        .ok_or_else(|| ApiError::not_found("execution"))?;
    Ok(ApiJson(exec))
}

/// Cancels a pending or running execution (a running attempt's result is discarded).
#[utoipa::path(post, path = "/api/executions/{id}/cancel", tag = "executions", security(("bearer" = [])),
    responses((status = 200, body = Execution), (status = 404, body = crate::error::ErrorBody), (status = 409, body = crate::error::ErrorBody)))]
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
