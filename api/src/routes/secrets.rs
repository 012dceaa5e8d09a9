//! `/api/secrets`: per-user secrets, sealed at rest; values are write-only.

use axum::Extension;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use faas_runtime::model::{Secret, new_id, now, validate_name};
use serde::{Deserialize, Serialize};

use crate::auth::Caller;
use crate::error::{ApiError, ApiJson, ApiPath, ApiResult};
use crate::state::AppState;

/// A new secret.
#[derive(Deserialize, utoipa::ToSchema)]
pub struct NewSecret {
    /// Name; functions see it upper-cased as an env var.
    pub name: String,
    /// The value (never returned).
    pub value: String,
}

/// A new value.
#[derive(Deserialize, utoipa::ToSchema)]
pub struct SecretValue {
    /// The value (never returned).
    pub value: String,
}

/// A secret's metadata.
#[derive(Serialize, utoipa::ToSchema)]
pub struct SecretView {
    /// Id.
    pub id: String,
    /// Name.
    pub name: String,
    /// The env var a function sees.
    pub env_var: String,
    /// Creation time.
    pub created_at: String,
    /// Last change of the value.
    pub updated_at: String,
}

impl From<&Secret> for SecretView {
    fn from(s: &Secret) -> Self {
        SecretView {
            id: s.id.clone(),
            name: s.name.clone(),
            env_var: s.name.to_uppercase(),
            created_at: super::rfc3339(s.created_at),
            updated_at: super::rfc3339(s.updated_at),
        }
    }
}

/// `{"secrets": [...]}`.
#[derive(Serialize, utoipa::ToSchema)]
pub struct SecretList {
    /// Metadata by name.
    pub secrets: Vec<SecretView>,
}

fn check_value(state: &AppState, v: &str) -> ApiResult<()> {
    if v.len() > state.limits.max_secret_bytes {
        return Err(ApiError::too_large(format!(
            "secret values are limited to {} bytes",
            state.limits.max_secret_bytes
        )));
    }
    if v.contains('\0') {
        return Err(ApiError::bad_request(
            "invalid_value",
            "secret values cannot contain NUL",
        ));
    }
    Ok(())
}

/// Creates a secret.
#[utoipa::path(post, path = "/api/secrets", tag = "secrets", request_body = NewSecret, security(("bearer" = [])),
    responses((status = 201, body = SecretView), (status = 400, body = crate::error::ErrorBody), (status = 409, body = crate::error::ErrorBody)))]
pub async fn create(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    ApiJson(body): ApiJson<NewSecret>,
) -> ApiResult<impl IntoResponse> {
    validate_name("secret", &body.name)?;
    check_value(&state, &body.value)?;
    crate::quotas::check_secrets(&state, &caller.id).await?;
    let id = new_id();
    let sealed = state.secrets.seal(body.value.as_bytes(), &id)?;
    let at = now();
    let secret = Secret {
        id,
        owner_id: caller.id,
        name: body.name,
        sealed,
        created_at: at,
        updated_at: at,
    };
    state.store.create_secret(&secret).await?;
    Ok((StatusCode::CREATED, ApiJson(SecretView::from(&secret))))
}

/// Lists the caller's secrets (metadata only).
#[utoipa::path(get, path = "/api/secrets", tag = "secrets", security(("bearer" = [])), responses((status = 200, body = SecretList)))]
pub async fn list(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
) -> ApiResult<ApiJson<SecretList>> {
    let secrets = state.store.list_secrets(&caller.id).await?;
    Ok(ApiJson(SecretList {
        secrets: secrets.iter().map(SecretView::from).collect(),
    }))
}

async fn owned(state: &AppState, caller: &Caller, id: &str) -> ApiResult<(Secret, u64)> {
    state
        .store
        .get_secret(id, &caller.id)
        .await?
        .ok_or_else(|| ApiError::not_found("secret"))
}

/// One secret's metadata.
#[utoipa::path(get, path = "/api/secrets/{id}", tag = "secrets", security(("bearer" = [])),
    responses((status = 200, body = SecretView), (status = 404, body = crate::error::ErrorBody)))]
pub async fn get(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<ApiJson<SecretView>> {
    Ok(ApiJson(SecretView::from(
        &owned(&state, &caller, &id).await?.0,
    )))
}

/// Replaces a secret's value.
#[utoipa::path(put, path = "/api/secrets/{id}", tag = "secrets", request_body = SecretValue, security(("bearer" = [])),
    responses((status = 200, body = SecretView), (status = 404, body = crate::error::ErrorBody)))]
pub async fn update(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    ApiPath(id): ApiPath<String>,
    ApiJson(body): ApiJson<SecretValue>,
) -> ApiResult<ApiJson<SecretView>> {
    check_value(&state, &body.value)?;
    let (mut secret, rev) = owned(&state, &caller, &id).await?;
    secret.sealed = state.secrets.seal(body.value.as_bytes(), &secret.id)?;
    secret.updated_at = now();
    state.store.update_secret(&secret, rev).await?;
    Ok(ApiJson(SecretView::from(&secret)))
}

/// Deletes a secret.
#[utoipa::path(delete, path = "/api/secrets/{id}", tag = "secrets", security(("bearer" = [])),
    responses((status = 204), (status = 404, body = crate::error::ErrorBody)))]
pub async fn delete(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<StatusCode> {
    let (secret, _) = owned(&state, &caller, &id).await?;
    state.store.delete_secret(&secret).await?;
    Ok(StatusCode::NO_CONTENT)
}
