//! Capability grants (bucket `grants`): while a grant exists and has not expired,
//! `API_BASE_URL/<function_id>/<name>` serves exactly its objects to the holder of
//! its token. The worker writes one per attempt that reads objects and removes it
//! when the attempt ends; [`Store::sweep_grants`] removes what a dead process left.

use serde::{Deserialize, Serialize};

use super::{Store, buckets as b};
use crate::Result;
use crate::ports::Scan;

/// A capability grant of one attempt.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Grant {
    /// The execution it belongs to.
    pub execution_id: String,
    /// The owner whose objects it exposes.
    pub owner_id: String,
    /// `<function_id>/<name>` keys it allows.
    pub keys: Vec<String>,
    /// Unix seconds after which it is void.
    pub expires_at: i64,
}

impl Grant {
    /// True once `expires_at` has passed.
    pub fn is_expired(&self) -> bool {
        self.expires_at <= time::OffsetDateTime::now_utc().unix_timestamp()
    }
}

/// Hex SHA-256 of a capability token: the key of its grant.
pub fn grant_key(token: &str) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(token.as_bytes()))
}

impl Store {
    /// Writes the grant stored under `key`.
    pub async fn put_grant(&self, key: &str, grant: &Grant) -> Result<()> {
        self.put_json(b::GRANTS, key, grant).await.map(drop)
    }

    /// The grant under `key`, if any (expired or not).
    pub async fn get_grant(&self, key: &str) -> Result<Option<Grant>> {
        Ok(self.get_json(b::GRANTS, key).await?.map(|(g, _)| g))
    }

    /// Removes the grant under `key` (absent is fine).
    pub async fn delete_grant(&self, key: &str) -> Result<()> {
        self.kv().delete(b::GRANTS, key).await
    }

    /// Removes every grant that has expired or whose execution is final (or gone),
    /// or every grant when `all` (no attempt is running anywhere); returns how many.
    /// Without `all` it is safe while workers run: a live attempt's grant is neither.
    pub async fn sweep_grants(&self, all: bool) -> Result<usize> {
        let rows = self.kv().scan(b::GRANTS, Scan::default()).await?;
        let mut removed = 0;
        for (key, entry) in rows {
            let stale = all
                || match serde_json::from_slice::<Grant>(&entry.value) {
                    Ok(g) if g.is_expired() => true,
                    Ok(g) => match self.get_execution(&g.execution_id, None).await? {
                        Some((e, _)) => e.status.is_final(),
                        None => true,
                    },
                    Err(_) => true,
                };
            if stale {
                self.delete_grant(&key).await?;
                removed += 1;
            }
        }
        Ok(removed)
    }
}
