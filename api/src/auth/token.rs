//! HS256 JSON Web Tokens: the algorithm is pinned, `exp`, `iat` and `sub` required.

use std::time::Duration;

use faas_runtime::model::Role;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

use crate::error::ApiError;

/// What a token says.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Claims {
    /// User id.
    pub sub: String,
    /// Role when issued (the middleware re-reads the user).
    pub role: Role,
    /// Issued at (Unix seconds).
    pub iat: i64,
    /// Expires at (Unix seconds).
    pub exp: i64,
    /// The user's token generation when issued; the middleware refuses the token
    /// once the user's generation has moved on (0 in tokens older than the claim).
    #[serde(default)]
    pub tgen: u64,
}

pub struct Tokens {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
    ttl: Duration,
}

impl Tokens {
    pub fn new(secret: &[u8], ttl: Duration) -> Self {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_required_spec_claims(&["exp", "iat", "sub"]);
        validation.leeway = 5;
        Tokens {
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
            validation,
            ttl,
        }
    }

    pub fn issue(
        &self,
        user_id: &str,
        role: Role,
        generation: u64,
    ) -> Result<(String, i64), ApiError> {
        let iat = time::OffsetDateTime::now_utc().unix_timestamp();
        let exp = iat + self.ttl.as_secs() as i64;
        let claims = Claims {
            sub: user_id.to_string(),
            role,
            iat,
            exp,
            tgen: generation,
        };
        let token =
            jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
                .map_err(|e| faas_runtime::Error::Internal(format!("token signing failed: {e}")))?;
        Ok((token, exp))
    }

    pub fn verify(&self, token: &str) -> Result<Claims, ApiError> {
        jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation)
            .map(|d| d.claims)
            .map_err(|e| {
                let why = match e.kind() {
                    jsonwebtoken::errors::ErrorKind::ExpiredSignature => "token expired",
                    _ => "invalid token",
                };
                ApiError::unauthorized(why)
            })
    }
}
