//! `POST /auth/register`, `POST /auth/login` and `POST /auth/logout-all`.

use axum::Extension;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use faas_runtime::model::{Role, User, new_id, now};
use serde::{Deserialize, Serialize};

use faas_runtime::store::Store;

use super::users::UserView;
use crate::auth::{Auth, Caller, ClientAddr, Registration};
use crate::error::{ApiError, ApiJson, ApiResult};
use crate::state::AppState;

/// Registration or login payload.
#[derive(Deserialize, utoipa::ToSchema)]
pub struct Credentials {
    /// 3-64 characters of `A-Z a-z 0-9 . _ -` (ASCII only), unique regardless of
    /// letter case: `Ada` and `ada` are the same account.
    #[schema(min_length = 3, max_length = 64, pattern = "^[A-Za-z0-9._-]{3,64}$")]
    pub username: String,
    /// 8 characters to 1024 bytes.
    #[schema(min_length = 8, max_length = 1024)]
    pub password: String,
}

/// A login's answer.
#[derive(Serialize, utoipa::ToSchema)]
pub struct TokenView {
    /// Bearer token for `Authorization`.
    pub token: String,
    /// Expiry, RFC 3339.
    pub expires_at: String,
}

/// Longest username (bytes).
pub const MAX_USERNAME_BYTES: usize = 64;
/// Longest password (bytes).
pub const MAX_PASSWORD_BYTES: usize = 1024;

/// Checks the shape of a username: 3-64 characters of `A-Z a-z 0-9 . _ -` (the
/// length first, so a huge one costs nothing).
pub fn validate_username(name: &str) -> ApiResult<()> {
    let ok = (3..=MAX_USERNAME_BYTES).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(ApiError::bad_request(
            "invalid_username",
            "username must be 3-64 characters of A-Z a-z 0-9 . _ -",
        ))
    }
}

/// Checks a new password: at least 8 characters, at most 1024 bytes.
pub fn validate_password(p: &str) -> ApiResult<()> {
    if p.len() <= MAX_PASSWORD_BYTES && p.chars().count() >= 8 {
        Ok(())
    } else {
        Err(invalid_password())
    }
}

/// Bounds a password that is checked (not set): at most 1024 bytes.
pub fn bound_password(p: &str) -> ApiResult<()> {
    if p.len() <= MAX_PASSWORD_BYTES {
        Ok(())
    } else {
        Err(invalid_password())
    }
}

fn invalid_password() -> ApiError {
    ApiError::bad_request(
        "invalid_password",
        "password must be 8 characters to 1024 bytes",
    )
}

/// Creates a user with role `user` (a `role` field in the body is ignored). Open
/// unless the operator closed registration (`FAAS_REGISTRATION=closed`); counted per
/// client address (`FAAS_REGISTER_MAX_PER_ADDRESS` per `FAAS_REGISTER_WINDOW_SECS`).
#[utoipa::path(post, path = "/auth/register", tag = "auth", request_body = Credentials,
    responses((status = 201, body = UserView),
        (status = 400, description = "invalid username, password or JSON", body = crate::error::ErrorBody),
        (status = 403, description = "registration is closed: an admin creates accounts (POST /api/users)", body = crate::error::ErrorBody),
        (status = 409, description = "the username is taken (in any letter case)", body = crate::error::ErrorBody),
        (status = 413, body = crate::error::ErrorBody), (status = 415, body = crate::error::ErrorBody),
        (status = 429, description = "this client address registered too many accounts (Retry-After)", body = crate::error::ErrorBody),
        (status = 503, description = "password hashing is saturated (Retry-After)", body = crate::error::ErrorBody)))]
pub async fn register(
    State(state): State<AppState>,
    client: ClientAddr,
    ApiJson(c): ApiJson<Credentials>,
) -> ApiResult<impl IntoResponse> {
    if state.auth.limiter.registration() == Registration::Closed {
        return Err(ApiError::forbidden(
            "registration is closed; an admin creates accounts",
        ));
    }
    validate_username(&c.username)?;
    validate_password(&c.password)?;
    state
        .auth
        .limiter
        .reserve_registration(client.0)
        .map_err(|wait| {
            ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "too_many_registrations",
                format!("too many accounts registered from this address; retry in {wait} s"),
            )
            .with_retry_after(wait)
        })?;
    let user = new_account(&state, c, Role::User).await?;
    Ok((StatusCode::CREATED, ApiJson(UserView::from(&user))))
}

/// Creates an account after the checks of its route: 409 when the name is taken.
pub(crate) async fn new_account(state: &AppState, c: Credentials, role: Role) -> ApiResult<User> {
    validate_username(&c.username)?;
    validate_password(&c.password)?;
    if state.store.find_user(&c.username).await?.is_some() {
        return Err(
            faas_runtime::Error::Conflict(format!("username {} is taken", c.username)).into(),
        );
    }
    create_user(&state.store, &state.auth, c.username, c.password, role).await
}

/// Creates a user with the given role (registration, start-up admin, `faas admin`).
pub async fn create_user(
    store: &Store,
    auth: &Auth,
    username: String,
    password: String,
    role: Role,
) -> ApiResult<User> {
    let password_hash = auth.hash_password(password).await?;
    let user = User {
        id: new_id(),
        username,
        password_hash,
        role,
        created_at: now(),
        token_generation: 0,
    };
    store.create_user(&user).await?;
    tracing::info!(user.id = %user.id, username = %user.username, "user registered");
    Ok(user)
}

/// Exchanges credentials for a token. Unknown users and wrong passwords get the same
/// answer in similar time. Attempts are counted per account (any letter case) and
/// per client address before the password is checked; beyond the limit, 429.
#[utoipa::path(post, path = "/auth/login", tag = "auth", request_body = Credentials,
    responses((status = 200, body = TokenView),
        (status = 400, description = "username or password of an impossible shape", body = crate::error::ErrorBody),
        (status = 401, body = crate::error::ErrorBody),
        (status = 413, body = crate::error::ErrorBody), (status = 415, body = crate::error::ErrorBody),
        (status = 429, description = "too many attempts for the account or address (Retry-After)", body = crate::error::ErrorBody),
        (status = 503, description = "password hashing is saturated (Retry-After)", body = crate::error::ErrorBody)))]
pub async fn login(
    State(state): State<AppState>,
    ClientAddr(client): ClientAddr,
    ApiJson(c): ApiJson<Credentials>,
) -> ApiResult<impl IntoResponse> {
    validate_username(&c.username)?;
    bound_password(&c.password)?;
    let attempt = state.auth.reserve(&c.username, client)?;
    let found = match state.store.find_user(&c.username).await {
        Ok(found) => found,
        Err(e) => {
            attempt.refund();
            return Err(e.into());
        }
    };
    let hash = found.as_ref().map(|(u, _)| u.password_hash.clone());
    let ok = state.auth.settle(attempt, c.password, hash).await?;
    match found {
        Some((user, _)) if ok => Ok(ApiJson(token_view(&state.auth, &user)?)),
        _ => Err(ApiError::unauthorized("invalid username or password")),
    }
}

/// Ends every token of the caller, this one included.
#[utoipa::path(post, path = "/auth/logout-all", tag = "auth", security(("bearer" = [])),
    responses((status = 204, description = "every earlier token is revoked"),
        (status = 401, body = crate::error::ErrorBody)))]
pub async fn logout_all(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
) -> ApiResult<StatusCode> {
    state.store.revoke_tokens(&caller.id).await?;
    tracing::info!(user.id = %caller.id, "every token revoked");
    Ok(StatusCode::NO_CONTENT)
}

/// A fresh token for `user` in its current token generation.
pub(crate) fn token_view(auth: &Auth, user: &User) -> ApiResult<TokenView> {
    let (token, exp) = auth.issue(user)?;
    let expires_at = time::OffsetDateTime::from_unix_timestamp(exp)
        .map(super::rfc3339)
        .unwrap_or_default();
    Ok(TokenView { token, expires_at })
}
