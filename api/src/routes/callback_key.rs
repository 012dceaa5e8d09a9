//! The caller's callback signing key: `GET /api/callback-key` (made on first read)
//! and `POST /api/callback-key/rotate`. Deliveries of the caller's executions are
//! signed with it (see [`crate::callbacks::sign`]).

use axum::Extension;
use axum::extract::State;
use faas_runtime::store::CallbackKey;
use serde::Serialize;

use crate::auth::Caller;
use crate::error::{ApiJson, ApiResult, ErrorBody};
use crate::state::AppState;

/// A callback signing key.
#[derive(Serialize, utoipa::ToSchema)]
pub struct CallbackKeyView {
    /// The key: 64 hex digits. Its bytes as written (not the bytes the hex
    /// digits encode) are the HMAC-SHA256 key of `Faas-Signature`.
    pub key: String,
    /// When the key was made (RFC 3339).
    pub created_at: String,
}

impl From<CallbackKey> for CallbackKeyView {
    fn from(k: CallbackKey) -> Self {
        CallbackKeyView {
            key: k.key,
            created_at: super::rfc3339(k.created_at),
        }
    }
}

/// The caller's key for verifying callbacks, made on first read (concurrent first
/// reads get the same key).
#[utoipa::path(get, path = "/api/callback-key", tag = "executions", security(("bearer" = [])),
    responses((status = 200, description = "The caller's callback signing key. A callback is a POST of the execution's final record (the JSON `GET /api/executions/{id}` answers) with `Content-Type: application/json`, `Faas-Execution-Id: <id>` and `Faas-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 keyed by this key of \"<t>.<raw body>\">`", body = CallbackKeyView),
        (status = 401, description = "No valid bearer token", body = ErrorBody)))]
pub async fn get(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
) -> ApiResult<ApiJson<CallbackKeyView>> {
    let key = state.store.callback_key(&caller.id, &state.secrets).await?;
    Ok(ApiJson(key.into()))
}

/// Replaces the caller's callback key; deliveries from now on are signed with the
/// new one (a delivery under way may still carry the old one).
#[utoipa::path(post, path = "/api/callback-key/rotate", tag = "executions", security(("bearer" = [])),
    responses((status = 200, description = "The new key", body = CallbackKeyView),
        (status = 401, description = "No valid bearer token", body = ErrorBody)))]
pub async fn rotate(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
) -> ApiResult<ApiJson<CallbackKeyView>> {
    let key = state
        .store
        .rotate_callback_key(&caller.id, &state.secrets)
        .await?;
    tracing::info!(user.id = %caller.id, "callback key rotated");
    Ok(ApiJson(key.into()))
}
