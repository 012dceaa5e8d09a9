//! Idempotency keys: `<owner>.<sha256 of the key>` -> the execution a request
//! with that key made, and the hash of that request. A key is claimed with a
//! KV `create`, so of concurrent duplicates exactly one wins; the others read the
//! winner's record. A record older than [`IDEMPOTENCY_TTL`] counts as absent.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use time::OffsetDateTime;

use super::{Store, buckets as b, owner_key};
use crate::model::now;
use crate::{Error, Result};

/// How long a key names its execution.
pub const IDEMPOTENCY_TTL: time::Duration = time::Duration::hours(24);

/// What a key was first used for.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IdempotencyRecord {
    /// The execution the first request made.
    pub execution_id: String,
    /// Hash of the first request (function and normalized input).
    pub request_hash: String,
    /// When the key was first used.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

impl IdempotencyRecord {
    /// A fresh record of `execution_id` made by a request hashing to `request_hash`.
    pub fn new(execution_id: &str, request_hash: &str) -> Self {
        IdempotencyRecord {
            execution_id: execution_id.to_string(),
            request_hash: request_hash.to_string(),
            created_at: now(),
        }
    }

    fn expired(&self) -> bool {
        now() - self.created_at > IDEMPOTENCY_TTL
    }
}

/// The outcome of [`Store::claim_idempotency`].
#[derive(Debug, Clone, PartialEq)]
pub enum Claim {
    /// The key is now this request's: make its execution.
    Won,
    /// An earlier request holds the key (within its lifetime).
    Taken(IdempotencyRecord),
}

/// Most attempts of a claim while other requests keep changing the key.
const CLAIM_ATTEMPTS: usize = 8;

fn key_of(owner: &str, key: &str) -> String {
    owner_key(owner, &hex::encode(Sha256::digest(key.as_bytes())))
}

impl Store {
    /// Claims `key` of `owner` for `record`, or returns the live record holding it.
    pub async fn claim_idempotency(
        &self,
        owner: &str,
        key: &str,
        record: &IdempotencyRecord,
    ) -> Result<Claim> {
        let k = key_of(owner, key);
        for _ in 0..CLAIM_ATTEMPTS {
            match self.create_json(b::IDEMPOTENCY, &k, record).await {
                Ok(_) => return Ok(Claim::Won),
                Err(Error::Conflict(_)) => {}
                Err(e) => return Err(e),
            }
            match self
                .get_json::<IdempotencyRecord>(b::IDEMPOTENCY, &k)
                .await?
            {
                None => continue,
                Some((old, rev)) if old.expired() => {
                    match self.update_json(b::IDEMPOTENCY, &k, record, rev).await {
                        Ok(_) => return Ok(Claim::Won),
                        Err(Error::Conflict(_) | Error::NotFound(_)) => continue,
                        Err(e) => return Err(e),
                    }
                }
                Some((old, _)) => return Ok(Claim::Taken(old)),
            }
        }
        Err(Error::Conflict(
            "the idempotency key kept changing; retry".into(),
        ))
    }

    /// The live record of `key` of `owner`, if any.
    pub async fn find_idempotency(
        &self,
        owner: &str,
        key: &str,
    ) -> Result<Option<IdempotencyRecord>> {
        let found = self
            .get_json::<IdempotencyRecord>(b::IDEMPOTENCY, &key_of(owner, key))
            .await?;
        Ok(found.map(|(r, _)| r).filter(|r| !r.expired()))
    }

    /// Frees `key` of `owner` if it still names `execution_id` (its request failed
    /// before the execution was recorded).
    pub async fn release_idempotency(
        &self,
        owner: &str,
        key: &str,
        execution_id: &str,
    ) -> Result<()> {
        let k = key_of(owner, key);
        if let Some((r, _)) = self
            .get_json::<IdempotencyRecord>(b::IDEMPOTENCY, &k)
            .await?
            && r.execution_id == execution_id
        {
            self.kv().delete(b::IDEMPOTENCY, &k).await?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::embedded::{Db, EmbeddedKv};

    #[tokio::test]
    async fn idempotency_claim_is_won_once_and_expires_after_its_lifetime() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::new(Arc::new(EmbeddedKv::new(Db::open(dir.path()).unwrap())));
        let first = IdempotencyRecord::new("e1", "h1");
        assert_eq!(
            store.claim_idempotency("u", "k", &first).await.unwrap(),
            Claim::Won
        );
        let second = IdempotencyRecord::new("e2", "h1");
        assert_eq!(
            store.claim_idempotency("u", "k", &second).await.unwrap(),
            Claim::Taken(first.clone())
        );
        assert_eq!(
            store
                .claim_idempotency("other", "k", &second)
                .await
                .unwrap(),
            Claim::Won
        );
        let mut old = IdempotencyRecord::new("e0", "h0");
        old.created_at = now() - IDEMPOTENCY_TTL - time::Duration::minutes(1);
        store
            .put_json(b::IDEMPOTENCY, &key_of("u", "old"), &old)
            .await
            .unwrap();
        assert_eq!(store.find_idempotency("u", "old").await.unwrap(), None);
        assert_eq!(
            store.claim_idempotency("u", "old", &second).await.unwrap(),
            Claim::Won
        );
        store
            .release_idempotency("u", "k", "other-id")
            .await
            .unwrap();
        assert!(store.find_idempotency("u", "k").await.unwrap().is_some());
        store.release_idempotency("u", "k", "e1").await.unwrap();
        assert_eq!(store.find_idempotency("u", "k").await.unwrap(), None);
    }
}
