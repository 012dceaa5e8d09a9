//! `/api/functions/{id}/http` and `/api/functions/{id}/keys`: whether a function is
//! served at `/fn/{username}/{function}`, who may call it, and its access keys
//! (shown once when made, kept as SHA-256 hashes).

use axum::Extension;
use axum::extract::State;
use axum::http::StatusCode;
use faas_runtime::model::{HttpKey, HttpSettings};
use serde::Serialize;

use super::functions::{is_id, owned};
use crate::auth::Caller;
use crate::error::{ApiError, ApiJson, ApiPath, ApiResult, ErrorBody};
use crate::state::AppState;

/// A key as listed: never the key itself.
#[derive(Serialize, utoipa::ToSchema)]
pub struct KeyInfo {
    /// Stable id (what `DELETE` takes).
    pub id: String,
    /// The first characters of the key.
    pub prefix: String,
    /// Creation time.
    #[schema(format = DateTime)]
    pub created_at: String,
}

impl From<&HttpKey> for KeyInfo {
    fn from(k: &HttpKey) -> Self {
        KeyInfo {
            id: k.id.clone(),
            prefix: k.prefix.clone(),
            created_at: super::rfc3339(k.created_at),
        }
    }
}

/// A key just made: the only time the key is shown.
#[derive(Serialize, utoipa::ToSchema)]
pub struct NewKey {
    /// Stable id.
    pub id: String,
    /// The first characters of the key.
    pub prefix: String,
    /// The key: send it as `Authorization: Bearer <key>`. Not shown again.
    pub key: String,
    /// Creation time.
    #[schema(format = DateTime)]
    pub created_at: String,
}

/// `{"keys": [...]}`.
#[derive(Serialize, utoipa::ToSchema)]
pub struct KeyList {
    /// The function's keys, oldest first.
    pub keys: Vec<KeyInfo>,
}

/// The function's HTTP settings.
#[utoipa::path(get, path = "/api/functions/{id}/http", tag = "functions", security(("bearer" = [])),
    params(("id" = String, Path, description = "The function's id")),
    responses((status = 200, description = "The settings (disabled unless set)", body = HttpSettings),
        (status = 404, description = "No such function of the caller's", body = ErrorBody)))]
pub async fn get(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<ApiJson<HttpSettings>> {
    let f = owned(&state, &caller, &id).await?;
    Ok(ApiJson(state.store.http_settings(&f.id).await?))
}

/// Sets whether the function is served at `/fn/{username}/{function}`, who may
/// call it (`public`, or `key`: holders of one of its keys), and the hosts its
/// guest may send requests to (`allowed_outbound_hosts`, normalised in the answer).
#[utoipa::path(put, path = "/api/functions/{id}/http", tag = "functions", security(("bearer" = [])),
    params(("id" = String, Path, description = "The function's id")),
    request_body = HttpSettings,
    responses((status = 200, description = "The settings now", body = HttpSettings),
        (status = 400, description = "An entry of `allowed_outbound_hosts` is not `http(s)://host[:port]`, or there are more than 32 (`invalid_outbound_host`)", body = ErrorBody),
        (status = 404, description = "No such function of the caller's", body = ErrorBody)))]
pub async fn put(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    ApiPath(id): ApiPath<String>,
    ApiJson(mut settings): ApiJson<HttpSettings>,
) -> ApiResult<ApiJson<HttpSettings>> {
    let f = owned(&state, &caller, &id).await?;
    settings
        .validate()
        .map_err(|why| ApiError::bad_request("invalid_outbound_host", why))?;
    state.store.put_http_settings(&f.id, &settings).await?;
    tracing::info!(function.id = %f.id, enabled = settings.enabled, access = ?settings.access,
        outbound_hosts = settings.allowed_outbound_hosts.len(), "HTTP settings changed");
    Ok(ApiJson(settings))
}

/// Makes an access key; the answer is the only time the key is shown.
#[utoipa::path(post, path = "/api/functions/{id}/keys", tag = "functions", security(("bearer" = [])),
    params(("id" = String, Path, description = "The function's id")),
    responses((status = 201, description = "The key, shown once", body = NewKey),
        (status = 404, description = "No such function of the caller's", body = ErrorBody),
        (status = 409, description = "The function has the most keys it may have (`conflict`)", body = ErrorBody)))]
pub async fn create_key(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<(StatusCode, ApiJson<NewKey>)> {
    let f = owned(&state, &caller, &id).await?;
    let (record, key) = state.store.create_http_key(&f.id).await?;
    tracing::info!(function.id = %f.id, key.id = %record.id, "HTTP key made");
    let made = NewKey {
        id: record.id,
        prefix: record.prefix,
        key,
        created_at: super::rfc3339(record.created_at),
    };
    Ok((StatusCode::CREATED, ApiJson(made)))
}

/// The function's keys: ids and prefixes, never the keys.
#[utoipa::path(get, path = "/api/functions/{id}/keys", tag = "functions", security(("bearer" = [])),
    params(("id" = String, Path, description = "The function's id")),
    responses((status = 200, description = "The keys", body = KeyList),
        (status = 404, description = "No such function of the caller's", body = ErrorBody)))]
pub async fn list_keys(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<ApiJson<KeyList>> {
    let f = owned(&state, &caller, &id).await?;
    let keys = state.store.http_keys(&f.id).await?;
    Ok(ApiJson(KeyList {
        keys: keys.iter().map(KeyInfo::from).collect(),
    }))
}

/// Revokes a key at once.
#[utoipa::path(delete, path = "/api/functions/{id}/keys/{key_id}", tag = "functions", security(("bearer" = [])),
    params(("id" = String, Path, description = "The function's id"),
        ("key_id" = String, Path, description = "The key's id")),
    responses((status = 204, description = "Revoked"),
        (status = 404, description = "No such function of the caller's, or no such key of it", body = ErrorBody)))]
pub async fn delete_key(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    ApiPath((id, key_id)): ApiPath<(String, String)>,
) -> ApiResult<StatusCode> {
    let f = owned(&state, &caller, &id).await?;
    if !is_id(&key_id) {
        return Err(ApiError::not_found("key"));
    }
    state.store.delete_http_key(&f.id, &key_id).await?;
    tracing::info!(function.id = %f.id, key.id = %key_id, "HTTP key revoked");
    Ok(StatusCode::NO_CONTENT)
}
