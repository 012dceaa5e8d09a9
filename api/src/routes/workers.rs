//! `GET /api/workers` (admin): the workers' heartbeats, so operators see who runs.

use axum::Extension;
use axum::extract::State;
use faas_runtime::worker::presence::{self, WorkerPresence};
use serde::Serialize;

use crate::auth::Caller;
use crate::error::{ApiError, ApiJson, ApiResult};
use crate::state::AppState;

/// A worker and whether its heartbeat is recent.
#[derive(Serialize, utoipa::ToSchema)]
pub struct WorkerView {
    /// The heartbeat record.
    #[serde(flatten)]
    pub presence: WorkerPresence,
    /// False when the last heartbeat is older than 20 s.
    pub live: bool,
}

/// `{"workers": [...]}`.
#[derive(Serialize, utoipa::ToSchema)]
pub struct WorkerList {
    /// Workers by id.
    pub workers: Vec<WorkerView>,
}

/// Lists the workers' heartbeats (admin only).
#[utoipa::path(get, path = "/api/workers", tag = "workers", security(("bearer" = [])),
    responses((status = 200, description = "The workers", body = WorkerList),
        (status = 403, description = "The caller is not an admin", body = crate::error::ErrorBody)))]
pub async fn list(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
) -> ApiResult<ApiJson<WorkerList>> {
    if !caller.is_admin() {
        return Err(ApiError::forbidden("listing workers needs the admin role"));
    }
    let workers = presence::list(&state.store).await?;
    Ok(ApiJson(WorkerList {
        workers: workers
            .into_iter()
            .map(|p| WorkerView {
                live: p.is_live(),
                presence: p,
            })
            .collect(),
    }))
}
