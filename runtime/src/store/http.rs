//! HTTP settings of functions (bucket `http_settings`, by function id) and their
//! access keys (bucket `http_keys`, `<function id>.<key id>`). Deleting a function
//! deletes both ([`Store::delete_function`]).

use super::{Store, buckets as b, owner_key};
use crate::model::http::{HttpKey, HttpSettings, key_sha256, new_key};
use crate::model::{new_id, now};
use crate::ports::Scan;
use crate::{Error, Result};

/// Most keys a function may have.
pub const MAX_HTTP_KEYS: usize = 100;

impl Store {
    /// The function's HTTP settings (disabled when never set).
    pub async fn http_settings(&self, function_id: &str) -> Result<HttpSettings> {
        Ok(self
            .get_json(b::HTTP_SETTINGS, function_id)
            .await?
            .map(|(s, _)| s)
            .unwrap_or_default())
    }

    /// Replaces the function's HTTP settings.
    pub async fn put_http_settings(&self, function_id: &str, s: &HttpSettings) -> Result<()> {
        self.put_json(b::HTTP_SETTINGS, function_id, s)
            .await
            .map(drop)
    }

    /// Makes a key for the function; returns its record and the key itself (not
    /// stored). `Conflict` past [`MAX_HTTP_KEYS`].
    pub async fn create_http_key(&self, function_id: &str) -> Result<(HttpKey, String)> {
        if self.http_keys(function_id).await?.len() >= MAX_HTTP_KEYS {
            return Err(Error::Conflict(format!(
                "a function has at most {MAX_HTTP_KEYS} keys; revoke one first"
            )));
        }
        let key = new_key();
        let record = HttpKey {
            id: new_id(),
            function_id: function_id.to_string(),
            prefix: key
                .chars()
                .take(crate::model::http::KEY_PREFIX_CHARS)
                .collect(),
            sha256: key_sha256(&key),
            created_at: now(),
        };
        let at = owner_key(function_id, &record.id);
        self.create_json(b::HTTP_KEYS, &at, &record).await?;
        Ok((record, key))
    }

    /// The function's keys, oldest first.
    pub async fn http_keys(&self, function_id: &str) -> Result<Vec<HttpKey>> {
        let scan = Scan {
            prefix: format!("{function_id}."),
            ..Scan::default()
        };
        self.kv()
            .scan(b::HTTP_KEYS, scan)
            .await?
            .into_iter()
            .map(|(_, e)| serde_json::from_slice(&e.value).map_err(Error::from))
            .collect()
    }

    /// Revokes a key; `NotFound` when the function has no such key.
    pub async fn delete_http_key(&self, function_id: &str, key_id: &str) -> Result<()> {
        let at = owner_key(function_id, key_id);
        if self.kv().get(b::HTTP_KEYS, &at).await?.is_none() {
            return Err(Error::NotFound("key not found".into()));
        }
        self.kv().delete(b::HTTP_KEYS, &at).await
    }

    /// Removes the function's HTTP settings and keys.
    pub(crate) async fn delete_http_of(&self, function_id: &str) -> Result<()> {
        for key in self.http_keys(function_id).await? {
            let at = owner_key(function_id, &key.id);
            self.kv().delete(b::HTTP_KEYS, &at).await?;
        }
        self.kv().delete(b::HTTP_SETTINGS, function_id).await
    }
}
