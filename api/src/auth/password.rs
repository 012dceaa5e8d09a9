//! Argon2id password hashing (m = 19 MiB, t = 2, p = 1) on the blocking pool.

use argon2::password_hash::{
    PasswordHash, PasswordHasher, PasswordVerifier, SaltString, rand_core::OsRng,
};
use argon2::{Algorithm, Argon2, Params, Version};

use crate::error::ApiError;

/// Hashes and verifies passwords.
pub struct Hasher {
    argon: Argon2<'static>,
    dummy: String,
}

impl Hasher {
    /// OWASP's argon2id parameters.
    pub fn new() -> Result<Self, String> {
        let params = Params::new(19 * 1024, 2, 1, None).map_err(|e| e.to_string())?;
        let argon = Argon2::new(Algorithm::Argon2id, Version::V0x13, params);
        let salt = SaltString::generate(&mut OsRng);
        let dummy = argon
            .hash_password(b"dummy password for timing", &salt)
            .map_err(|e| e.to_string())?
            .to_string();
        Ok(Hasher { argon, dummy })
    }

    pub async fn hash(&self, password: String) -> Result<String, ApiError> {
        let argon = self.argon.clone();
        tokio::task::spawn_blocking(move || {
            let salt = SaltString::generate(&mut OsRng);
            argon
                .hash_password(password.as_bytes(), &salt)
                .map(|h| h.to_string())
        })
        .await
        .map_err(|e| faas_runtime::Error::Internal(e.to_string()))?
        .map_err(|e| faas_runtime::Error::Internal(format!("password hashing failed: {e}")).into())
    }

    pub async fn verify(&self, password: String, hash: Option<String>) -> bool {
        let argon = self.argon.clone();
        let known = hash.is_some();
        let hash = hash.unwrap_or_else(|| self.dummy.clone());
        let ok = tokio::task::spawn_blocking(move || {
            PasswordHash::new(&hash)
                .map(|parsed| argon.verify_password(password.as_bytes(), &parsed).is_ok())
                .unwrap_or(false)
        })
        .await
        .unwrap_or(false);
        ok && known
    }
}
