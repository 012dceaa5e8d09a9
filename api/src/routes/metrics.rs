//! `GET /metrics`: this process's metrics in the Prometheus text format (names in
//! [`faas_runtime::metrics`]), and [`meter`], the layer that counts every request by
//! its route template, never by its raw path.

use std::sync::Arc;
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::header::CONTENT_TYPE;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::state::AppState;

/// Renders the process's metrics as Prometheus text (the binary owns the recorder).
pub type RenderMetrics = Arc<dyn Fn() -> String + Send + Sync>;

/// The Prometheus text format's content type.
pub const PROMETHEUS_TEXT: &str = "text/plain; version=0.0.4; charset=utf-8";

/// The process's metrics; 404 when they are served on a listener of their own
/// (FAAS_METRICS_ADDRESS) instead.
#[utoipa::path(get, path = "/metrics", tag = "health",
    responses((status = 200, description = "Prometheus text format: executions, queue, workers, HTTP requests, compile cache", content_type = "text/plain", body = String),
        (status = 404, description = "Metrics are served on FAAS_METRICS_ADDRESS instead", body = ErrorBody)))]
pub async fn metrics(State(state): State<AppState>) -> ApiResult<Response> {
    let render = state
        .metrics
        .clone()
        .ok_or_else(|| ApiError::not_found("metrics (see FAAS_METRICS_ADDRESS)"))?;
    faas_runtime::metrics::observe(state.queue.as_ref(), &state.store).await;
    Ok(([(CONTENT_TYPE, PROMETHEUS_TEXT)], render()).into_response())
}

/// Counts the request by route template and status, and times it to its response head.
pub async fn meter(req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned());
    let started = Instant::now();
    let res = next.run(req).await;
    let route = route.as_deref().unwrap_or("unmatched");
    faas_runtime::metrics::http_request(route, res.status().as_u16(), started.elapsed());
    res
}
