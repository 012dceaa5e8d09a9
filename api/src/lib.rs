//! `faas-api`: the REST API of the FaaS platform on axum.
//!
//! - [`routes`]: the router, one module per resource (auth, users, functions,
//!   executions, objects, secrets, health);
//! - [`auth`]: argon2id passwords, HS256 tokens, login throttling, the auth middleware;
//! - [`error`]: [`error::ApiError`], the one mapping of errors to JSON responses;
//! - [`state`]: [`state::AppState`], the ports the handlers use;
//! - [`openapi`]: the generated OpenAPI document;
//! - [`quotas`]: per-user limits and their checks.
//!
//! [`serve`] runs the router on a listener until a shutdown signal.

pub mod auth;
pub mod error;
pub mod openapi;
pub mod quotas;
pub mod routes;
pub mod state;

use std::future::Future;
use std::net::SocketAddr;

use axum::extract::MatchedPath;
use axum::http::Request;
use tokio::net::TcpListener;
use tower_http::trace::TraceLayer;

pub use routes::router;
pub use state::{ApiLimits, AppState};

/// Serves the API on `listener` until `shutdown` completes, with a tracing span per
/// request (method, matched path, status).
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    serve_router(listener, router(state), shutdown).await
}

/// Serves only what function containers need (see [`routes::capability_router`]).
pub async fn serve_capabilities(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    serve_router(listener, routes::capability_router(state), shutdown).await
}

async fn serve_router(
    listener: TcpListener,
    app: axum::Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let trace = TraceLayer::new_for_http()
        .make_span_with(|req: &Request<_>| {
            let path = req
                .extensions()
                .get::<MatchedPath>()
                .map(MatchedPath::as_str)
                .unwrap_or("unmatched");
            tracing::info_span!("request", method = %req.method(), path, status = tracing::field::Empty)
        })
        .on_response(
            |res: &axum::http::Response<_>, latency: std::time::Duration, span: &tracing::Span| {
                span.record("status", res.status().as_u16());
                tracing::debug!(latency_ms = latency.as_millis() as u64, "response");
            },
        );
    axum::serve(
        listener,
        app.layer(trace)
            .into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown)
    .await
}
