//! Waiting on an execution without polling: the long poll of
//! `GET /api/executions/{id}?wait=`, invoke's wait, and the event stream
//! `GET /api/executions/{id}/events`. Each subscribes to the execution's changes
//! ([`faas_runtime::ports::Completions`]) before it reads the record, so no
//! change falls between the read and the wait.

use std::convert::Infallible;
use std::time::Duration;

use axum::Extension;
use axum::extract::State;
use axum::response::sse::{Event, KeepAlive, Sse};
use faas_runtime::model::{Execution, ExecutionStatus};
use futures::Stream;
use serde::Deserialize;
use tokio::time::Instant;

use crate::auth::Caller;
use crate::error::{ApiError, ApiPath, ApiResult, ErrorBody};
use crate::state::AppState;

/// `?wait=SECONDS`.
#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct WaitQuery {
    /// Seconds to wait for the execution to end (at most the operator's
    /// `FAAS_INVOKE_MAX_WAIT_SECS`, default 300, else 400).
    #[param(minimum = 0)]
    pub wait: Option<u64>,
}

impl WaitQuery {
    /// The wait asked for, `default` when absent; 400 beyond the operator's cap.
    pub fn duration(&self, state: &AppState, default: u64) -> ApiResult<Duration> {
        let secs = self.wait.unwrap_or(default.min(state.limits.max_wait_secs));
        if secs > state.limits.max_wait_secs {
            return Err(ApiError::bad_request(
                "invalid_query",
                format!("wait is at most {} seconds", state.limits.max_wait_secs),
            ));
        }
        Ok(Duration::from_secs(secs))
    }
}

/// The caller's execution `id` once it is final, or as it is after `wait`.
pub async fn until_final(
    state: &AppState,
    owner: &str,
    id: &str,
    wait: Duration,
) -> ApiResult<Execution> {
    let read = || async {
        state
            .store
            .get_execution(id, Some(owner))
            .await?
            .map(|(e, _)| e)
            .ok_or_else(|| ApiError::not_found("execution"))
    };
    if wait.is_zero() {
        return read().await;
    }
    let deadline = Instant::now() + wait;
    let mut changes = state.store.completions().subscribe(id).await?;
    let mut exec = read().await?;
    while !exec.status.is_final() {
        match tokio::time::timeout_at(deadline, changes.next()).await {
            // Not final yet (running): the record is read when it ends, or at the
            // deadline.
            Ok(Some(status)) if !status.is_final() => continue,
            Ok(Some(_)) => exec = read().await?,
            // The signal source is gone (a lost connection): read at the deadline.
            Ok(None) => {
                tokio::time::sleep_until(deadline).await;
                return read().await;
            }
            Err(_) => return read().await,
        }
    }
    Ok(exec)
}

/// Server-Sent Events of one of the caller's executions: an `execution` event
/// carrying the record at each state change, the last one final.
#[utoipa::path(get, path = "/api/executions/{id}/events", tag = "executions", security(("bearer" = [])),
    params(("id" = String, Path, description = "The execution's id")),
    responses((status = 200, description = "`text/event-stream`: an `execution` event with the record (JSON) at each state change (pending, running, final); the stream ends after the final one (an execution already final yields one event). Comment lines keep the connection alive.", content_type = "text/event-stream", body = Object),
        (status = 404, description = "No such execution of the caller's", body = ErrorBody)))]
pub async fn events(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Sse<impl Stream<Item = Result<Event, Infallible>>>> {
    let changes = state.store.completions().subscribe(&id).await?;
    let (first, _) = state
        .store
        .get_execution(&id, Some(&caller.id))
        .await?
        .ok_or_else(|| ApiError::not_found("execution"))?;
    let seed = Some((first, None::<ExecutionStatus>, changes));
    let stream = futures::stream::unfold(seed, move |seed| {
        let (state, owner) = (state.clone(), caller.id.clone());
        async move {
            let (mut exec, last, mut changes) = seed?;
            while last == Some(exec.status) {
                changes.next().await?;
                exec = match state.store.get_execution(&exec.id, Some(&owner)).await {
                    Ok(Some((e, _))) => e,
                    _ => return None,
                };
            }
            let event = Event::default()
                .event("execution")
                .json_data(&exec)
                .unwrap_or_else(|_| Event::default().comment("unencodable record"));
            let status = exec.status;
            let next = (!status.is_final()).then_some((exec, Some(status), changes));
            Some((Ok(event), next))
        }
    });
    Ok(Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(15))))
}
