//! The caller's own account: `GET /api/me` and `PUT /api/me/password`.

use axum::Extension;
use axum::extract::State;
use serde::{Deserialize, Serialize};

use super::auth::{TokenView, bound_password, token_view, validate_password};
use super::users::UserView;
use crate::auth::{Caller, ClientAddr};
use crate::error::{ApiError, ApiJson, ApiResult};
use crate::state::AppState;

/// The caller's account (a struct so that more about the caller can be added).
#[derive(Serialize, utoipa::ToSchema)]
pub struct MeView {
    /// The account.
    #[serde(flatten)]
    pub user: UserView,
    /// The caller's limits and what they use.
    pub quotas: crate::quotas::QuotaView,
}

/// A password change.
#[derive(Deserialize, utoipa::ToSchema)]
pub struct PasswordChange {
    /// The current password (at most 1024 bytes).
    #[schema(max_length = 1024)]
    pub old_password: String,
    /// The new password: 8 characters to 1024 bytes.
    #[schema(min_length = 8, max_length = 1024)]
    pub new_password: String,
}

/// The caller's account.
#[utoipa::path(get, path = "/api/me", tag = "users", security(("bearer" = [])),
    responses((status = 200, body = MeView), (status = 401, body = crate::error::ErrorBody)))]
pub async fn get(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
) -> ApiResult<ApiJson<MeView>> {
    let (user, _) = state
        .store
        .get_user(&caller.id)
        .await?
        .ok_or_else(|| ApiError::unauthorized("the token's user no longer exists"))?;
    Ok(ApiJson(MeView {
        user: UserView::from(&user),
        quotas: crate::quotas::view(&state, &caller.id).await?,
    }))
}

/// Changes the caller's password (the current one is required, and attempts are
/// throttled like logins). Every earlier token of the account stops working; the
/// answer carries a new one.
#[utoipa::path(put, path = "/api/me/password", tag = "users", request_body = PasswordChange,
    security(("bearer" = [])),
    responses((status = 200, description = "changed; every earlier token is revoked", body = TokenView),
        (status = 400, description = "the new password is not 8 characters to 1024 bytes", body = crate::error::ErrorBody),
        (status = 401, description = "no valid token, or the current password is wrong", body = crate::error::ErrorBody),
        (status = 413, body = crate::error::ErrorBody), (status = 415, body = crate::error::ErrorBody),
        (status = 429, description = "too many attempts (Retry-After)", body = crate::error::ErrorBody),
        (status = 503, description = "password hashing is saturated (Retry-After)", body = crate::error::ErrorBody)))]
pub async fn change_password(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    ClientAddr(client): ClientAddr,
    ApiJson(change): ApiJson<PasswordChange>,
) -> ApiResult<ApiJson<TokenView>> {
    bound_password(&change.old_password)?;
    validate_password(&change.new_password)?;
    let (user, _) = state
        .store
        .get_user(&caller.id)
        .await?
        .ok_or_else(|| ApiError::unauthorized("the token's user no longer exists"))?;
    let attempt = state.auth.reserve(&user.username, client)?;
    let ok = state
        .auth
        .settle(attempt, change.old_password, Some(user.password_hash))
        .await?;
    if !ok {
        return Err(ApiError::unauthorized("the current password is wrong"));
    }
    let hash = state.auth.hash_password(change.new_password).await?;
    let user = state.store.set_password(&caller.id, &hash).await?;
    tracing::info!(user.id = %user.id, "password changed; earlier tokens revoked");
    Ok(ApiJson(token_view(&state.auth, &user)?))
}
