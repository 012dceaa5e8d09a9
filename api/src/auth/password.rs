//! Argon2id password hashing (m = 19 MiB, t = 2, p = 1) on the blocking pool, at most
//! `max_concurrent` at once: a caller waits at most `max_wait` for a slot, and at most
//! [`WAITERS_PER_SLOT`] callers per slot wait; beyond either, 503 with `Retry-After`
//! (never an unbounded queue of 19 MiB hashes).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use argon2::password_hash::{
    PasswordHash, PasswordHasher, PasswordVerifier, SaltString, rand_core::OsRng,
};
use argon2::{Algorithm, Argon2, Params, Version};
use axum::http::StatusCode;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::error::ApiError;

/// Callers that may wait for a hashing slot, per slot.
pub const WAITERS_PER_SLOT: usize = 16;

/// How many hashes run at once and how long a caller waits for a slot.
#[derive(Debug, Clone)]
pub struct HashLimits {
    /// Hashes or verifications at once (each holds 19 MiB).
    pub max_concurrent: usize,
    /// Longest wait for a slot before answering 503.
    pub max_wait: Duration,
}

impl Default for HashLimits {
    /// One per core (hashing is CPU-bound: more at once only adds 19 MiB each),
    /// two seconds.
    fn default() -> Self {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        HashLimits {
            max_concurrent: cores,
            max_wait: Duration::from_secs(2),
        }
    }
}

/// Hashes and verifies passwords.
pub struct Hasher {
    argon: Argon2<'static>,
    dummy: String,
    slots: Arc<Semaphore>,
    waiting: AtomicUsize,
    max_waiting: usize,
    max_wait: Duration,
}

impl Hasher {
    /// OWASP's argon2id parameters.
    pub fn new(limits: HashLimits) -> Result<Self, String> {
        let params = Params::new(19 * 1024, 2, 1, None).map_err(|e| e.to_string())?;
        let argon = Argon2::new(Algorithm::Argon2id, Version::V0x13, params);
        let salt = SaltString::generate(&mut OsRng);
        let dummy = argon
            .hash_password(b"dummy password for timing", &salt)
            .map_err(|e| e.to_string())?
            .to_string();
        Ok(Hasher {
            argon,
            dummy,
            slots: Arc::new(Semaphore::new(limits.max_concurrent.max(1))),
            waiting: AtomicUsize::new(0),
            max_waiting: limits.max_concurrent.max(1) * WAITERS_PER_SLOT,
            max_wait: limits.max_wait,
        })
    }

    /// A hashing slot, or 503 when none frees up within `max_wait` or too many
    /// callers wait already.
    async fn slot(&self) -> Result<OwnedSemaphorePermit, ApiError> {
        if let Ok(permit) = self.slots.clone().try_acquire_owned() {
            return Ok(permit);
        }
        // Counted out on drop, also when the request goes away while waiting.
        let _waiter = Waiter::enter(&self.waiting, self.max_waiting).ok_or_else(busy)?;
        match tokio::time::timeout(self.max_wait, self.slots.clone().acquire_owned()).await {
            Ok(Ok(permit)) => Ok(permit),
            _ => Err(busy()),
        }
    }

    pub async fn hash(&self, password: String) -> Result<String, ApiError> {
        let permit = self.slot().await?;
        let argon = self.argon.clone();
        // The permit moves into the blocking task: it is held until the hash is
        // done even if the request goes away.
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            let salt = SaltString::generate(&mut OsRng);
            argon
                .hash_password(password.as_bytes(), &salt)
                .map(|h| h.to_string())
        })
        .await
        .map_err(|e| faas_runtime::Error::Internal(e.to_string()))?
        .map_err(|e| faas_runtime::Error::Internal(format!("password hashing failed: {e}")).into())
    }

    /// True when `password` matches `hash`; `None` burns the same time against a
    /// dummy hash and is false. Err only when no slot is free (503).
    pub async fn verify(&self, password: String, hash: Option<String>) -> Result<bool, ApiError> {
        let permit = self.slot().await?;
        let argon = self.argon.clone();
        let known = hash.is_some();
        let hash = hash.unwrap_or_else(|| self.dummy.clone());
        let ok = tokio::task::spawn_blocking(move || {
            let _permit = permit;
            PasswordHash::new(&hash)
                .map(|parsed| argon.verify_password(password.as_bytes(), &parsed).is_ok())
                .unwrap_or(false)
        })
        .await
        .unwrap_or(false);
        Ok(ok && known)
    }
}

/// One caller waiting for a slot.
struct Waiter<'a>(&'a AtomicUsize);

impl<'a> Waiter<'a> {
    fn enter(count: &'a AtomicUsize, max: usize) -> Option<Self> {
        let waiter = Waiter(count);
        (count.fetch_add(1, Ordering::SeqCst) < max).then_some(waiter)
    }
}

impl Drop for Waiter<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

fn busy() -> ApiError {
    ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "overloaded",
        "too many password checks at once; retry shortly",
    )
    .with_retry_after(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one_slot() -> Hasher {
        Hasher::new(HashLimits {
            max_concurrent: 1,
            max_wait: Duration::from_secs(30),
        })
        .unwrap()
    }

    #[tokio::test]
    async fn callers_beyond_the_waiting_room_are_turned_away_at_once() {
        let h = one_slot();
        let calls = (0..WAITERS_PER_SLOT + 2).map(|_| h.hash("password123".into()));
        let results = futures::future::join_all(calls).await;
        let busy = results.iter().filter(|r| r.is_err()).count();
        assert_eq!(
            busy, 1,
            "one slot, {WAITERS_PER_SLOT} waiting, one turned away"
        );
        let e = results.into_iter().find_map(Result::err).unwrap();
        assert_eq!((e.status.as_u16(), e.retry_after), (503, Some(1)));
    }

    #[tokio::test]
    async fn a_caller_that_goes_away_leaves_the_waiting_room() {
        let h = one_slot();
        let held = h.slots.clone().try_acquire_owned().unwrap();
        for _ in 0..(WAITERS_PER_SLOT * 4) {
            let gave_up = tokio::time::timeout(Duration::from_millis(1), h.slot()).await;
            assert!(gave_up.is_err());
        }
        assert_eq!(h.waiting.load(Ordering::SeqCst), 0);
        drop(held);
        assert!(h.verify("x".into(), None).await.is_ok());
    }
}
