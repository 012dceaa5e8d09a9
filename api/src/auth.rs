//! Authentication: argon2id passwords, HS256 JWTs, login throttling, and the
//! middleware that turns a bearer token into the request's [`Caller`].

mod limiter;
mod password;
mod token;

use std::time::Duration;

use axum::extract::{Request, State};
use axum::http::header::AUTHORIZATION;
use axum::middleware::Next;
use axum::response::Response;
use faas_runtime::model::Role;

pub use limiter::LoginLimiter;
pub use token::Claims;

use crate::error::ApiError;
use crate::state::AppState;

/// The authenticated user of a request.
#[derive(Debug, Clone)]
pub struct Caller {
    /// User id.
    pub id: String,
    /// Role at the time of the request.
    pub role: Role,
}

impl Caller {
    /// True for admins.
    pub fn is_admin(&self) -> bool {
        self.role == Role::Admin
    }
}

/// Password hashing, token signing and login throttling.
pub struct Auth {
    tokens: token::Tokens,
    hasher: password::Hasher,
    /// Failed-login throttle.
    pub limiter: LoginLimiter,
}

impl Auth {
    /// `secret` signs tokens (at least 32 bytes); tokens live `ttl`.
    pub fn new(secret: &[u8], ttl: Duration, limiter: LoginLimiter) -> Result<Self, String> {
        if secret.len() < 32 {
            return Err("JWT_SECRET must be at least 32 bytes".into());
        }
        Ok(Auth {
            tokens: token::Tokens::new(secret, ttl),
            hasher: password::Hasher::new()?,
            limiter,
        })
    }

    /// Hashes a password (argon2id) off the async runtime.
    pub async fn hash_password(&self, password: String) -> Result<String, ApiError> {
        self.hasher.hash(password).await
    }

    /// Checks a password against a stored hash; with `None` it burns the same time
    /// against a dummy hash so unknown users cannot be told apart.
    pub async fn verify_password(&self, password: String, hash: Option<String>) -> bool {
        self.hasher.verify(password, hash).await
    }

    /// A signed token for a user and its expiry (Unix seconds).
    pub fn issue(&self, user_id: &str, role: Role) -> Result<(String, i64), ApiError> {
        self.tokens.issue(user_id, role)
    }

    /// The claims of a valid token.
    pub fn verify(&self, token: &str) -> Result<Claims, ApiError> {
        self.tokens.verify(token)
    }
}

/// Middleware: requires `Authorization: Bearer <token>` of an existing user.
pub async fn require_auth(
    State(state): State<AppState>,
    mut req: Request,
    next: Next,
) -> Result<Response, ApiError> {
    let header = req
        .headers()
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| ApiError::unauthorized("missing Authorization: Bearer <token>"))?;
    let token = header
        .strip_prefix("Bearer ")
        .ok_or_else(|| ApiError::unauthorized("Authorization must be a Bearer token"))?;
    let claims = state.auth.verify(token.trim())?;
    let (user, _) = state
        .store
        .get_user(&claims.sub)
        .await?
        .ok_or_else(|| ApiError::unauthorized("the token's user no longer exists"))?;
    req.extensions_mut().insert(Caller {
        id: user.id,
        role: user.role,
    });
    Ok(next.run(req).await)
}
