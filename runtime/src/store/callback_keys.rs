//! Callback signing keys: `callback_keys/<user id>` -> [`CallbackKeyRecord`], the
//! key sealed at rest like secrets ([`SecretBox`], bound to the user's id).
//!
//! A key is made on its first read with a KV `create`, so concurrent first reads
//! (of one process or several) agree on one key; a rotation replaces it.

use rand::RngCore;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::{Store, buckets as b};
use crate::model::now;
use crate::sealing::SecretBox;
use crate::{Error, Result};

/// A user's callback key as stored.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CallbackKeyRecord {
    /// Nonce and ciphertext of the key text.
    pub sealed: Vec<u8>,
    /// When this key was made.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

/// A user's callback key in the clear.
#[derive(Debug, Clone, PartialEq)]
pub struct CallbackKey {
    /// The key text (64 hex digits); its bytes are the HMAC-SHA256 key.
    pub key: String,
    /// When it was made.
    pub created_at: OffsetDateTime,
}

/// Most create-or-read rounds while the key keeps changing.
const KEY_ATTEMPTS: usize = 4;

fn context(owner: &str) -> String {
    format!("callback-key.{owner}")
}

fn fresh_key() -> String {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    hex::encode(bytes)
}

impl Store {
    /// `owner`'s callback key, made (revision-checked) when there is none yet.
    pub async fn callback_key(&self, owner: &str, sealing: &SecretBox) -> Result<CallbackKey> {
        for _ in 0..KEY_ATTEMPTS {
            if let Some(key) = self.read_callback_key(owner, sealing).await? {
                return Ok(key);
            }
            let (record, key) = seal(owner, sealing)?;
            match self.create_json(b::CALLBACK_KEYS, owner, &record).await {
                Ok(_) => return Ok(key),
                // Another request made it first: its key is the one.
                Err(Error::Conflict(_)) => continue,
                Err(e) => return Err(e),
            }
        }
        Err(Error::Conflict(
            "the callback key kept changing; retry".into(),
        ))
    }

    /// Replaces `owner`'s callback key with a fresh one; later deliveries are
    /// signed with it.
    pub async fn rotate_callback_key(
        &self,
        owner: &str,
        sealing: &SecretBox,
    ) -> Result<CallbackKey> {
        let (record, key) = seal(owner, sealing)?;
        self.put_json(b::CALLBACK_KEYS, owner, &record).await?;
        Ok(key)
    }

    async fn read_callback_key(
        &self,
        owner: &str,
        sealing: &SecretBox,
    ) -> Result<Option<CallbackKey>> {
        let Some((record, _)) = self
            .get_json::<CallbackKeyRecord>(b::CALLBACK_KEYS, owner)
            .await?
        else {
            return Ok(None);
        };
        let plain = sealing.open(&record.sealed, &context(owner))?;
        let key = String::from_utf8(plain)
            .map_err(|_| Error::Internal("a callback key is not text".into()))?;
        Ok(Some(CallbackKey {
            key,
            created_at: record.created_at,
        }))
    }
}

fn seal(owner: &str, sealing: &SecretBox) -> Result<(CallbackKeyRecord, CallbackKey)> {
    let key = fresh_key();
    let created_at = now();
    let record = CallbackKeyRecord {
        sealed: sealing.seal(key.as_bytes(), &context(owner))?,
        created_at,
    };
    Ok((record, CallbackKey { key, created_at }))
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::embedded::{Db, EmbeddedKv};

    #[tokio::test]
    async fn concurrent_first_reads_agree_and_a_rotation_replaces_the_sealed_key() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::new(Arc::new(EmbeddedKv::new(Db::open(dir.path()).unwrap())));
        let sealing = SecretBox::new(&SecretBox::generate_key());
        let reads = (0..8).map(|_| store.callback_key("u", &sealing));
        let keys = futures::future::try_join_all(reads).await.unwrap();
        assert!(keys.iter().all(|k| k == &keys[0]), "one key for all");
        assert_eq!(keys[0].key.len(), 64);
        let raw = store
            .kv()
            .get(b::CALLBACK_KEYS, "u")
            .await
            .unwrap()
            .unwrap();
        let text = String::from_utf8_lossy(&raw.value);
        assert!(!text.contains(&keys[0].key), "sealed at rest");
        let rotated = store.rotate_callback_key("u", &sealing).await.unwrap();
        assert_ne!(rotated.key, keys[0].key);
        assert_eq!(store.callback_key("u", &sealing).await.unwrap(), rotated);
        assert_ne!(store.callback_key("v", &sealing).await.unwrap(), rotated);
    }
}
