//! Authentication: argon2id passwords (bounded concurrency), HS256 JWTs with a
//! per-user token generation, login throttling per account and per client address,
//! and the middleware that turns a bearer token into the request's [`Caller`].
//!
//! - `client`: [`ClientAddr`], the peer address (or what trusted proxies forward);
//! - `limiter`: [`LoginLimiter`], attempts reserved before a password is checked;
//! - `password`: the argon2id [`HashLimits`]-bounded hasher;
//! - `token`: signing and checking [`Claims`].

mod client;
mod limiter;
mod password;
mod token;

use std::net::IpAddr;
use std::time::Duration;

use axum::extract::{Request, State};
use axum::http::header::AUTHORIZATION;
use axum::http::{HeaderMap, StatusCode};
use axum::middleware::Next;
use axum::response::Response;
use faas_runtime::model::{Role, User, canonical_username};

pub use client::{Cidr, ClientAddr};
pub use limiter::{Attempt, LimiterConfig, LoginLimiter, Registration};
pub use password::HashLimits;
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
    /// Password-attempt throttle.
    pub limiter: LoginLimiter,
}

impl Auth {
    /// `secret` signs tokens (at least 32 bytes); tokens live `ttl`.
    pub fn new(
        secret: &[u8],
        ttl: Duration,
        limiter: LoginLimiter,
        hashing: HashLimits,
    ) -> Result<Self, String> {
        if secret.len() < 32 {
            return Err("JWT_SECRET must be at least 32 bytes".into());
        }
        Ok(Auth {
            tokens: token::Tokens::new(secret, ttl),
            hasher: password::Hasher::new(hashing)?,
            limiter,
        })
    }

    /// Hashes a password (argon2id) off the async runtime; 503 when every hashing
    /// slot stays busy.
    pub async fn hash_password(&self, password: String) -> Result<String, ApiError> {
        self.hasher.hash(password).await
    }

    /// Checks a password against a stored hash, unthrottled (start-up, tools); with
    /// `None` it burns the same time against a dummy hash and is false.
    pub async fn verify_password(
        &self,
        password: String,
        hash: Option<String>,
    ) -> Result<bool, ApiError> {
        self.hasher.verify(password, hash).await
    }

    /// Reserves a password attempt on `username`'s account from `client`; 429 with
    /// `Retry-After` when the account or the address has used its attempts.
    pub fn reserve(&self, username: &str, client: IpAddr) -> Result<Attempt<'_>, ApiError> {
        self.limiter
            .reserve(&canonical_username(username), client)
            .map_err(|wait| {
                ApiError::new(
                    StatusCode::TOO_MANY_REQUESTS,
                    "too_many_attempts",
                    format!("too many password attempts; retry in {wait} s"),
                )
                .with_retry_after(wait)
            })
    }

    /// Checks a password for a reserved attempt and settles it: a match clears the
    /// account's counter, a mismatch stays counted, a busy hasher (503) refunds it.
    pub async fn settle(
        &self,
        attempt: Attempt<'_>,
        password: String,
        hash: Option<String>,
    ) -> Result<bool, ApiError> {
        match self.hasher.verify(password, hash).await {
            Ok(true) => {
                attempt.succeeded();
                Ok(true)
            }
            Ok(false) => Ok(false),
            Err(busy) => {
                attempt.refund();
                Err(busy)
            }
        }
    }

    /// A signed token for a user (in its current token generation) and its expiry
    /// (Unix seconds).
    pub fn issue(&self, user: &User) -> Result<(String, i64), ApiError> {
        self.tokens
            .issue(&user.id, user.role, user.token_generation)
    }

    /// The claims of a valid token.
    pub fn verify(&self, token: &str) -> Result<Claims, ApiError> {
        self.tokens.verify(token)
    }
}

/// The caller a request's `Authorization: Bearer <token>` names: a valid token of an
/// existing user, issued in the user's current token generation.
pub async fn authenticate(state: &AppState, headers: &HeaderMap) -> Result<Caller, ApiError> {
    let header = headers
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| ApiError::unauthorized("missing Authorization: Bearer <token>"))?;
    let token = header
        .strip_prefix("Bearer ")
        .ok_or_else(|| ApiError::unauthorized("Authorization must be a Bearer token"))?;
    let claims = state.auth.verify(token.trim())?;
    // Read at most USER_TTL ago: a revoked token, a deleted user or a new role
    // takes effect within it (at once when changed through this process).
    let user = state
        .store
        .current_user(&claims.sub)
        .await?
        .ok_or_else(|| ApiError::unauthorized("the token's user no longer exists"))?;
    if claims.tgen != user.token_generation {
        return Err(ApiError::unauthorized(
            "token revoked (password changed or logged out everywhere)",
        ));
    }
    Ok(Caller {
        id: user.id,
        role: user.role,
    })
}

/// Middleware: requires a bearer token (see [`authenticate`]).
pub async fn require_auth(
    State(state): State<AppState>,
    mut req: Request,
    next: Next,
) -> Result<Response, ApiError> {
    let caller = authenticate(&state, req.headers()).await?;
    req.extensions_mut().insert(caller);
    Ok(next.run(req).await)
}
