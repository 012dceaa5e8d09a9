//! The router: every route of CONTRACT.md §3, one module per resource.

pub mod auth;
pub mod callback_key;
pub mod endpoint;
pub mod executions;
pub mod functions;
pub mod health;
pub mod http_settings;
pub mod invoke;
pub mod me;
pub mod metrics;
pub mod objects;
pub mod pages;
pub mod quotas;
pub mod schedules;
pub mod secrets;
pub mod users;
pub mod versions;
pub mod workers;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::middleware::from_fn_with_state;
use axum::routing::{any, delete, get, post, put};
use time::OffsetDateTime;

use crate::error::{ApiError, ApiResult};
use crate::state::AppState;

/// RFC 3339 text of a time.
pub(crate) fn rfc3339(t: OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

/// A page size: default 50, 1-200.
pub(crate) fn page_limit(limit: Option<usize>) -> ApiResult<usize> {
    match limit.unwrap_or(50) {
        n @ 1..=200 => Ok(n),
        _ => Err(ApiError::bad_request(
            "invalid_query",
            "limit must be 1-200",
        )),
    }
}

/// Largest body of `/auth/register` and `/auth/login` (bytes).
pub const AUTH_BODY_MAX: usize = 16 * 1024;

/// All routes with their state.
pub fn router(state: AppState) -> Router {
    let json_limit = DefaultBodyLimit::max(state.limits.max_json_bytes);
    let upload_limit = DefaultBodyLimit::max(state.limits.max_module_bytes + 1024 * 1024);
    let authed = Router::new()
        .route("/api/users", get(users::list).post(users::create))
        .route("/api/users/{id}", get(users::get))
        .route("/api/users/{id}/quotas", get(quotas::get).put(quotas::put))
        .route("/api/users/{id}/logout-all", post(users::logout_all))
        .route("/api/me", get(me::get))
        .route("/api/me/password", put(me::change_password))
        .route("/auth/logout-all", post(auth::logout_all))
        .route("/api/workers", get(workers::list))
        .route(
            "/api/functions",
            get(functions::list)
                .post(functions::create)
                .layer(upload_limit),
        )
        .route(
            "/api/functions/{id}",
            get(functions::get).delete(functions::delete),
        )
        .route(
            "/api/functions/{id}/versions",
            get(versions::list)
                .post(versions::create)
                .layer(upload_limit),
        )
        .route(
            "/api/functions/{id}/versions/{version}",
            get(versions::get).delete(versions::delete),
        )
        .route("/api/functions/{id}/aliases", get(versions::list_aliases))
        .route(
            "/api/functions/{id}/aliases/{alias}",
            get(versions::get_alias)
                .put(versions::put_alias)
                .delete(versions::delete_alias),
        )
        .route(
            "/api/executions",
            get(executions::list).post(executions::submit),
        )
        .route("/api/executions/{id}", get(executions::get))
        .route("/api/executions/{id}/cancel", post(executions::cancel))
        .route("/api/executions/{id}/retry", post(executions::retry))
        .route("/api/executions/{id}/events", get(executions::events))
        .route("/api/functions/{id}/invoke", post(invoke::invoke))
        .route("/api/callback-key", get(callback_key::get))
        .route("/api/callback-key/rotate", post(callback_key::rotate))
        .route(
            "/api/functions/{id}/http",
            get(http_settings::get).put(http_settings::put),
        )
        .route(
            "/api/functions/{id}/keys",
            get(http_settings::list_keys).post(http_settings::create_key),
        )
        .route(
            "/api/functions/{id}/keys/{key_id}",
            delete(http_settings::delete_key),
        )
        .route(
            "/api/functions/{id}/schedules",
            get(schedules::list).post(schedules::create),
        )
        .route(
            "/api/functions/{id}/schedules/{schedule_id}",
            get(schedules::get)
                .patch(schedules::patch)
                .delete(schedules::delete),
        )
        .route("/api/function-objects/{function_id}", get(objects::list))
        .route(
            "/api/function-objects/{function_id}/{name}",
            get(objects::download)
                .delete(objects::delete)
                .post(objects::upload)
                .layer(DefaultBodyLimit::disable()),
        )
        .route("/api/secrets", get(secrets::list).post(secrets::create))
        .route(
            "/api/secrets/{id}",
            get(secrets::get)
                .put(secrets::update)
                .delete(secrets::delete),
        )
        .route_layer(from_fn_with_state(state.clone(), crate::auth::require_auth));
    // Credentials are small: 64 + 1024 bytes, even fully \u-escaped well under 16 KiB.
    let auth_limit = DefaultBodyLimit::max(AUTH_BODY_MAX);
    Router::new()
        .route("/auth/register", post(auth::register).layer(auth_limit))
        .route("/auth/login", post(auth::login).layer(auth_limit))
        .route(
            "/api/exec-objects/{token}/{function_id}/{name}",
            get(objects::capability),
        )
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .route("/api/openapi.json", get(crate::openapi::serve))
        .route("/metrics", get(metrics::metrics))
        .route("/", get(pages::console_page))
        .route("/console/console.js", get(pages::console_script))
        .route("/console/console.css", get(pages::console_style))
        .route("/api/docs", get(pages::docs_page))
        .route("/api/docs/docs.js", get(pages::docs_script))
        .route("/api/docs/docs.css", get(pages::docs_style))
        .merge(authed)
        .fallback(crate::error::fallback)
        .layer(json_limit)
        .layer(axum::middleware::from_fn(metrics::meter))
        .layer(axum::middleware::from_fn(crate::error::json_errors))
        .merge(endpoint_router())
        .with_state(state)
}

/// The functions' endpoints: no token, no body limit of the API (the endpoint
/// streams with its own cap), and the guest's own error answers passed on as they
/// are (outside the JSON error middleware).
fn endpoint_router() -> Router<AppState> {
    Router::new()
        .route("/fn/{username}/{function}", any(endpoint::call))
        // `{*rest}` does not match an empty rest: the guest sees `/` here.
        .route("/fn/{username}/{function}/", any(endpoint::call_rest))
        .route(
            "/fn/{username}/{function}/{*rest}",
            any(endpoint::call_rest),
        )
        .layer(DefaultBodyLimit::disable())
}

/// Only the functions' endpoints (`/fn/...`) and `/healthz`: the listener of
/// FAAS_HTTP_ADDRESS (every `faas worker` in the cluster). Nothing of the API: any
/// other path is the JSON 404 of the API's fallback.
pub fn functions_router(state: AppState) -> Router {
    Router::new()
        .route("/healthz", get(health::healthz))
        .fallback(crate::error::fallback)
        .layer(axum::middleware::from_fn(crate::error::json_errors))
        .merge(endpoint_router())
        .with_state(state)
}

/// Only the capability route (`/api/exec-objects/...`) and `/healthz`: what function
/// containers may reach on the listener bound to their network's gateway.
pub fn capability_router(state: AppState) -> Router {
    Router::new()
        .route(
            "/api/exec-objects/{token}/{function_id}/{name}",
            get(objects::capability),
        )
        .route("/healthz", get(health::healthz))
        .fallback(crate::error::fallback)
        .layer(axum::middleware::from_fn(crate::error::json_errors))
        .with_state(state)
}
