//! `GET/PUT /api/users/{id}/quotas`: a user's limits and usage; admins set
//! per-user overrides of the operator's defaults.

use axum::Extension;
use axum::extract::State;
use faas_runtime::model::{MAX_QUOTA, Quotas};

use crate::auth::Caller;
use crate::error::{ApiError, ApiJson, ApiPath, ApiResult};
use crate::quotas::{QuotaView, view};
use crate::state::AppState;

/// Limits and usage of a user: yourself, or anyone for an admin.
#[utoipa::path(get, path = "/api/users/{id}/quotas", tag = "users", security(("bearer" = [])),
    params(("id" = String, Path, description = "User id")),
    responses((status = 200, body = QuotaView), (status = 401, body = crate::error::ErrorBody), (status = 404, body = crate::error::ErrorBody)))]
pub async fn get(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<ApiJson<QuotaView>> {
    if id != caller.id && !caller.is_admin() {
        return Err(ApiError::not_found("user"));
    }
    existing(&state, &id).await?;
    Ok(ApiJson(view(&state, &id).await?))
}

/// Sets a user's overrides (admin only): the fields given replace the stored
/// ones; `null` returns a field to the default; `0` means no limit.
#[utoipa::path(put, path = "/api/users/{id}/quotas", tag = "users", security(("bearer" = [])),
    params(("id" = String, Path, description = "User id")), request_body = Quotas,
    responses((status = 200, body = QuotaView), (status = 400, body = crate::error::ErrorBody), (status = 401, body = crate::error::ErrorBody), (status = 403, body = crate::error::ErrorBody), (status = 404, body = crate::error::ErrorBody)))]
pub async fn put(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    ApiPath(id): ApiPath<String>,
    ApiJson(body): ApiJson<serde_json::Map<String, serde_json::Value>>,
) -> ApiResult<ApiJson<QuotaView>> {
    if !caller.is_admin() {
        return Err(ApiError::forbidden("setting quotas needs the admin role"));
    }
    existing(&state, &id).await?;
    let mut stored = serde_json::to_value(state.store.get_quotas(&id).await?)
        .map_err(|e| faas_runtime::Error::Internal(e.to_string()))?;
    for (k, v) in body {
        let ok = match &v {
            serde_json::Value::Null => true,
            serde_json::Value::Number(n) => n.as_u64().is_some_and(|n| n <= MAX_QUOTA),
            _ => false,
        };
        if !ok {
            return Err(ApiError::bad_request(
                "invalid_quota",
                format!("{k} must be a whole number 0-{MAX_QUOTA}, or null"),
            ));
        }
        stored[k] = v;
    }
    let quotas: Quotas = serde_json::from_value(strip_nulls(stored))
        .map_err(|e| ApiError::bad_request("invalid_quota", format!("quotas: {e}")))?;
    state.store.put_quotas(&id, &quotas).await?;
    state.meter.forget(&id);
    tracing::info!(user.id = %id, ?quotas, "quotas set");
    Ok(ApiJson(view(&state, &id).await?))
}

async fn existing(state: &AppState, id: &str) -> ApiResult<()> {
    if !super::functions::is_id(id) || state.store.get_user(id).await?.is_none() {
        return Err(ApiError::not_found("user"));
    }
    Ok(())
}

fn strip_nulls(mut v: serde_json::Value) -> serde_json::Value {
    if let Some(map) = v.as_object_mut() {
        map.retain(|_, v| !v.is_null());
    }
    v
}
