//! `/healthz` (alive) and `/readyz` (state and queue reachable; details for admins).

use axum::extract::State;
use axum::http::header::AUTHORIZATION;
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use serde_json::json;

use crate::auth::authenticate;
use crate::error::ApiJson;
use crate::state::AppState;

/// The process is alive.
#[utoipa::path(get, path = "/healthz", tag = "health",
    responses((status = 200, description = "`{\"status\": \"ok\"}`", body = Object)))]
pub async fn healthz() -> impl IntoResponse {
    ApiJson(json!({"status": "ok"}))
}

/// Every dependency answers: 200 `{"status": "ready"}`, else 503
/// `{"status": "unavailable"}`. Only an admin's bearer token also gets the details
/// (problems, queue depth, executors); anyone else, the status alone.
#[utoipa::path(get, path = "/readyz", tag = "health", security((), ("bearer" = [])),
    responses((status = 200, description = "ready; details only for an admin", body = Object),
        (status = 503, description = "a dependency is unavailable; details only for an admin", body = Object)))]
pub async fn readyz(State(state): State<AppState>, headers: HeaderMap) -> impl IntoResponse {
    let admin = headers.contains_key(AUTHORIZATION)
        && authenticate(&state, &headers)
            .await
            .is_ok_and(|c| c.is_admin());
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
    let (status, word) = if problems.is_empty() {
        (StatusCode::OK, "ready")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "unavailable")
    };
    if !admin {
        return (status, ApiJson(json!({"status": word})));
    }
    let mut executors = serde_json::Map::new();
    for (kind, ex) in &state.executors {
        let name = format!("{kind:?}").to_lowercase();
        match ex.ready().await {
            Ok(()) => executors.insert(name, json!("ready")),
            Err(e) => executors.insert(name, json!(e.to_string())),
        };
    }
    (
        status,
        ApiJson(
            json!({"status": word, "problems": problems, "queue": queue, "executors": executors}),
        ),
    )
}
