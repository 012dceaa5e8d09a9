//! `faas-api`: the REST API of the FaaS platform on axum.
//!
//! - [`routes`]: the router, one module per resource (auth, users, functions,
//!   executions, objects, secrets, health);
//! - [`auth`]: argon2id passwords, HS256 tokens, login throttling, the auth middleware;
//! - [`error`]: [`error::ApiError`], the one mapping of errors to JSON responses;
//! - [`state`]: [`state::AppState`], the ports the handlers use;
//! - [`openapi`]: the generated OpenAPI document;
//! - [`quotas`]: per-user limits and their checks;
//! - [`trace`]: the W3C trace context of each request, kept on executions;
//! - [`callbacks`]: signed callbacks of final records (SSRF guard, deliverer);
//! - [`scheduler`]: the loop that runs the ticks of schedules, in every API process.
//!
//! [`serve`] runs the router on a listener until a shutdown signal;
//! [`serve_router`] serves any of the routers, e.g. the functions' endpoints alone
//! ([`routes::functions_router`], a worker's listener);
//! [`serve_with_gateway`] does too, but answers connections that arrive on the
//! functions' network gateway with the capability routes only.

pub mod auth;
pub mod callbacks;
pub mod error;
pub mod openapi;
pub mod quotas;
pub mod routes;
pub mod scheduler;
pub mod state;
pub mod trace;

use std::convert::Infallible;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};

use axum::extract::{ConnectInfo, MatchedPath};
use axum::http::Request;
use axum::serve::{IncomingStream, ListenerExt};
use axum::{Extension, Router};
use tokio::net::TcpListener;
use tower::Layer;
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

/// Like [`serve`] on a listener bound to every address, except that a connection
/// made to `gateway` (the functions' network's gateway: function containers reach the
/// host there) gets only what [`serve_capabilities`] serves. A connection whose local
/// address cannot be read is treated as one from the gateway.
pub async fn serve_with_gateway(
    listener: TcpListener,
    state: AppState,
    gateway: IpAddr,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let full = traced(router(state.clone()));
    let capabilities = traced(routes::capability_router(state));
    let gateway = gateway.to_canonical();
    let make = tower::service_fn(move |incoming: IncomingStream<'_, TcpListener>| {
        let remote = *incoming.remote_addr();
        // Responses written in parts (a head, then body chunks) must not wait on
        // Nagle's algorithm for the client's delayed ACK (~40 ms a response).
        let _ = incoming.io().set_nodelay(true);
        let on_gateway = incoming
            .io()
            .local_addr()
            .map_or(true, |local| local.ip().to_canonical() == gateway);
        let app = if on_gateway {
            capabilities.clone()
        } else {
            full.clone()
        };
        std::future::ready(Ok::<_, Infallible>(
            Extension(ConnectInfo(remote)).layer(app),
        ))
    });
    axum::serve(listener, make)
        .with_graceful_shutdown(shutdown)
        .await
}

/// Serves `app` on `listener` until `shutdown` completes, with the tracing span per
/// request of [`serve`] and `TCP_NODELAY` on every connection.
pub async fn serve_router(
    listener: TcpListener,
    app: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    // Responses written in parts (a head, then body chunks: streamed bodies of
    // functions) must not wait on Nagle's algorithm for the client's delayed ACK.
    let listener = listener.tap_io(|tcp| {
        let _ = tcp.set_nodelay(true);
    });
    axum::serve(
        listener,
        traced(app).into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown)
    .await
}

/// `app` with a tracing span per request (method, matched path, status).
fn traced(app: Router) -> Router {
    let trace = TraceLayer::new_for_http()
        .make_span_with(|req: &Request<_>| {
            let path = req
                .extensions()
                .get::<MatchedPath>()
                .map(MatchedPath::as_str)
                .unwrap_or("unmatched");
            let span = tracing::info_span!("request", method = %req.method(), path, status = tracing::field::Empty, trace_id = tracing::field::Empty);
            if let Some(ctx) = req.extensions().get::<crate::trace::TraceContext>() {
                ctx.join(&span);
            }
            span
        })
        .on_response(
            |res: &axum::http::Response<_>, latency: std::time::Duration, span: &tracing::Span| {
                span.record("status", res.status().as_u16());
                tracing::debug!(latency_ms = latency.as_millis() as u64, "response");
            },
        );
    app.layer(trace)
        .layer(axum::middleware::from_fn(crate::trace::propagate))
}
