//! `GET /api/users` and `POST /api/users` (admin), `GET /api/users/{id}` and
//! `POST /api/users/{id}/logout-all` (self or admin).

use axum::Extension;
use axum::extract::State;
use axum::http::StatusCode;
use faas_runtime::model::{Role, User};
use serde::{Deserialize, Serialize};

use crate::auth::Caller;
use crate::error::{ApiError, ApiJson, ApiPath, ApiQuery, ApiResult, ErrorBody};
use crate::state::AppState;

/// A user as the API shows it (never a password or hash).
#[derive(Serialize, utoipa::ToSchema)]
pub struct UserView {
    /// Id.
    pub id: String,
    /// Login name.
    pub username: String,
    /// `admin` or `user`.
    pub role: Role,
    /// Creation time, RFC 3339.
    pub created_at: String,
}

impl From<&User> for UserView {
    fn from(u: &User) -> Self {
        UserView {
            id: u.id.clone(),
            username: u.username.clone(),
            role: u.role,
            created_at: super::rfc3339(u.created_at),
        }
    }
}

/// `{"users": [...]}`.
#[derive(Serialize, utoipa::ToSchema)]
pub struct UserList {
    /// The page.
    pub users: Vec<UserView>,
    /// Cursor of the next page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

/// `limit` and `cursor`.
#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageQuery {
    /// Page size (1-200, default 50).
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<usize>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

/// Lists all users (admin only).
#[utoipa::path(get, path = "/api/users", tag = "users", params(PageQuery), security(("bearer" = [])),
    responses((status = 200, description = "A page of users", body = UserList),
        (status = 403, description = "The caller is not an admin", body = ErrorBody)))]
pub async fn list(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    ApiQuery(q): ApiQuery<PageQuery>,
) -> ApiResult<ApiJson<UserList>> {
    if !caller.is_admin() {
        return Err(ApiError::forbidden("listing users needs the admin role"));
    }
    let page = state
        .store
        .list_users(q.cursor.as_deref(), super::page_limit(q.limit)?)
        .await?;
    Ok(ApiJson(UserList {
        users: page.items.iter().map(UserView::from).collect(),
        next_cursor: page.next_cursor,
    }))
}

/// An account an admin creates.
#[derive(Deserialize, utoipa::ToSchema)]
pub struct NewUser {
    /// 3-64 characters of `A-Z a-z 0-9 . _ -`, unique regardless of letter case.
    #[schema(min_length = 3, max_length = 64, pattern = "^[A-Za-z0-9._-]{3,64}$")]
    pub username: String,
    /// 8 characters to 1024 bytes.
    #[schema(min_length = 8, max_length = 1024)]
    pub password: String,
    /// `user` (default) or `admin`.
    #[serde(default)]
    pub role: Option<Role>,
}

/// Creates an account (admin only; works whether registration is open or closed).
#[utoipa::path(post, path = "/api/users", tag = "users", request_body = NewUser, security(("bearer" = [])),
    responses((status = 201, description = "The new user", body = UserView),
        (status = 400, description = "invalid username, password, role or JSON", body = ErrorBody),
        (status = 401, body = ErrorBody),
        (status = 403, description = "The caller is not an admin", body = ErrorBody),
        (status = 409, description = "the username is taken (in any letter case)", body = ErrorBody),
        (status = 413, body = ErrorBody), (status = 415, body = ErrorBody),
        (status = 503, description = "password hashing is saturated (Retry-After)", body = ErrorBody)))]
pub async fn create(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    ApiJson(n): ApiJson<NewUser>,
) -> ApiResult<(StatusCode, ApiJson<UserView>)> {
    if !caller.is_admin() {
        return Err(ApiError::forbidden("creating users needs the admin role"));
    }
    let role = n.role.unwrap_or(Role::User);
    let c = super::auth::Credentials {
        username: n.username,
        password: n.password,
    };
    let user = super::auth::new_account(&state, c, role).await?;
    tracing::info!(user.id = %user.id, by = %caller.id, ?role, "user created by an admin");
    Ok((StatusCode::CREATED, ApiJson(UserView::from(&user))))
}

/// One user: yourself, or anyone for an admin.
#[utoipa::path(get, path = "/api/users/{id}", tag = "users", security(("bearer" = [])),
    params(("id" = String, Path, description = "The user's id")),
    responses((status = 200, description = "The user", body = UserView),
        (status = 404, description = "No such user, or not the caller (unless admin)", body = ErrorBody)))]
pub async fn get(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<ApiJson<UserView>> {
    if id != caller.id && !caller.is_admin() {
        return Err(ApiError::not_found("user"));
    }
    let (user, _) = state
        .store
        .get_user(&id)
        .await?
        .ok_or_else(|| ApiError::not_found("user"))?;
    Ok(ApiJson(UserView::from(&user)))
}

/// Ends every token of a user: yourself, or anyone for an admin.
#[utoipa::path(post, path = "/api/users/{id}/logout-all", tag = "users", security(("bearer" = [])),
    params(("id" = String, Path, description = "User id")),
    responses((status = 204, description = "every earlier token of the user is revoked"),
        (status = 401, body = crate::error::ErrorBody), (status = 404, body = crate::error::ErrorBody)))]
pub async fn logout_all(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<StatusCode> {
    if id != caller.id && !caller.is_admin() {
        return Err(ApiError::not_found("user"));
    }
    state.store.revoke_tokens(&id).await.map_err(|e| match e {
        faas_runtime::Error::NotFound(_) => ApiError::not_found("user"),
        other => other.into(),
    })?;
    tracing::info!(user.id = %id, by = %caller.id, "every token revoked");
    Ok(StatusCode::NO_CONTENT)
}
