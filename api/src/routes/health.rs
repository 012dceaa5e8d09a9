//! `/healthz` (alive) and `/readyz` (state, queue and executors reachable).

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use serde_json::json;

use crate::error::ApiJson;
use crate::state::AppState;

/// The process is alive.
#[utoipa::path(get, path = "/healthz", tag = "health",
    responses((status = 200, description = "`{\"status\": \"ok\"}`", body = Object)))]
pub async fn healthz() -> impl IntoResponse {
    ApiJson(json!({"status": "ok"}))
}

/// Every dependency answers; 503 names what does not.
#[utoipa::path(get, path = "/readyz", tag = "health",
    responses((status = 200, description = "Ready: `status`, `problems`, `queue`, `executors`", body = Object),
        (status = 503, description = "Not ready: `problems` names what does not answer", body = Object)))]
pub async fn readyz(State(state): State<AppState>) -> impl IntoResponse {
    let mut problems = serde_json::Map::new();
    if let Err(e) = state.store.kv().ping().await {
        problems.insert("state".into(), json!(e.to_string()));
    }
    let queue = match state.queue.stats().await {
        Ok(s) => json!({"pending": s.pending, "in_flight": s.in_flight}),
        Err(e) => {
            problems.insert("queue".into(), json!(e.to_string()));
            json!(null)
        }
    };
    let mut executors = serde_json::Map::new();
    for (kind, ex) in &state.executors {
        let name = format!("{kind:?}").to_lowercase();
        match ex.ready().await {
            Ok(()) => executors.insert(name, json!("ready")),
            Err(e) => executors.insert(name, json!(e.to_string())),
        };
    }
    let status = if problems.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let word = if problems.is_empty() {
        "ready"
    } else {
        "unavailable"
    };
    (
        status,
        ApiJson(
            json!({"status": word, "problems": problems, "queue": queue, "executors": executors}),
        ),
    )
}
