//! `POST /auth/register` and `POST /auth/login`.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use faas_runtime::model::{Role, User, new_id, now};
use serde::{Deserialize, Serialize};

use faas_runtime::store::Store;

use super::users::UserView;
use crate::auth::Auth;
use crate::error::{ApiError, ApiJson, ApiResult, ErrorBody};
use crate::state::AppState;

/// Registration or login payload.
#[derive(Deserialize, utoipa::ToSchema)]
pub struct Credentials {
    /// 3-64 characters of `A-Z a-z 0-9 . _ -`.
    #[schema(pattern = "^[A-Za-z0-9._-]{3,64}$", min_length = 3, max_length = 64)]
    pub username: String,
    /// 8-1024 characters.
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

/// Checks the shape of a username.
pub fn validate_username(name: &str) -> ApiResult<()> {
    let ok = (3..=64).contains(&name.len())
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

/// Checks the length of a password.
pub fn validate_password(p: &str) -> ApiResult<()> {
    if (8..=1024).contains(&p.chars().count()) {
        Ok(())
    } else {
        Err(ApiError::bad_request(
            "invalid_password",
            "password must be 8-1024 characters",
        ))
    }
}

/// Creates a user with role `user` (a `role` field in the body is ignored).
#[utoipa::path(post, path = "/auth/register", tag = "auth", request_body = Credentials,
    responses((status = 201, description = "Registered", body = UserView),
        (status = 400, description = "Invalid username or password, or malformed JSON", body = ErrorBody),
        (status = 409, description = "The username is taken", body = ErrorBody)))]
pub async fn register(
    State(state): State<AppState>,
    ApiJson(c): ApiJson<Credentials>,
) -> ApiResult<impl IntoResponse> {
    validate_username(&c.username)?;
    validate_password(&c.password)?;
    let user = create_user(
        &state.store,
        &state.auth,
        c.username,
        c.password,
        Role::User,
    )
    .await?;
    Ok((StatusCode::CREATED, ApiJson(UserView::from(&user))))
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
    };
    store.create_user(&user).await?;
    tracing::info!(user.id = %user.id, username = %user.username, "user registered");
    Ok(user)
}

/// Exchanges credentials for a token. Unknown users and wrong passwords get the same
/// answer in similar time; repeated failures are throttled (429).
#[utoipa::path(post, path = "/auth/login", tag = "auth", request_body = Credentials,
    responses((status = 200, description = "A bearer token", body = TokenView),
        (status = 401, description = "Wrong username or password", body = ErrorBody),
        (status = 429, description = "Too many failed logins; retry later", body = ErrorBody)))]
pub async fn login(
    State(state): State<AppState>,
    ApiJson(c): ApiJson<Credentials>,
) -> ApiResult<impl IntoResponse> {
    let key = format!("user:{}", c.username.to_lowercase());
    if let Some(wait) = state.auth.limiter.check(&key) {
        return Err(ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "too_many_attempts",
            format!("too many failed logins; retry in {wait} s"),
        ));
    }
    let found = state.store.find_user(&c.username).await?;
    let hash = found.as_ref().map(|(u, _)| u.password_hash.clone());
    if !state.auth.verify_password(c.password, hash).await {
        state.auth.limiter.fail(&key);
        return Err(ApiError::unauthorized("invalid username or password"));
    }
    state.auth.limiter.succeed(&key);
    let Some((user, _)) = found else {
        return Err(ApiError::unauthorized("invalid username or password"));
    };
    let (token, exp) = state.auth.issue(&user.id, user.role)?;
    let expires_at = time::OffsetDateTime::from_unix_timestamp(exp)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_default();
    Ok(ApiJson(TokenView { token, expires_at }))
}
