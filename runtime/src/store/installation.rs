//! The installation id: one per data set (the embedded database in FAAS_DATA_DIR, or
//! the NATS account's buckets), created once by whichever process asks first. Every
//! process of an installation reads the same id; two installations sharing a Docker
//! engine tell their containers apart by it.

use bytes::Bytes;

use super::{Store, buckets as b};
use crate::{Error, Result};

/// Key of the id in [`b::INSTALLATION`].
const ID_KEY: &str = "id";

impl Store {
    /// This installation's id, created (with `create`, so concurrent first calls of
    /// several processes agree on one) when the data set has none yet.
    pub async fn installation_id(&self) -> Result<String> {
        if let Some(id) = self.read_installation_id().await? {
            return Ok(id);
        }
        let fresh = crate::model::new_id();
        match self
            .kv()
            .create(b::INSTALLATION, ID_KEY, Bytes::from(fresh.clone()))
            .await
        {
            Ok(_) => {
                tracing::info!(installation.id = %fresh, "installation id created");
                Ok(fresh)
            }
            // Another process created it first: its id is the one.
            Err(Error::Conflict(_)) => self.read_installation_id().await?.ok_or_else(|| {
                Error::Internal("the installation id vanished after a conflict".to_string())
            }),
            Err(e) => Err(e),
        }
    }

    async fn read_installation_id(&self) -> Result<Option<String>> {
        let Some(entry) = self.kv().get(b::INSTALLATION, ID_KEY).await? else {
            return Ok(None);
        };
        let id = String::from_utf8(entry.value.to_vec())
            .map_err(|_| Error::Internal("the installation id is not UTF-8".to_string()))?;
        Ok(Some(id))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::embedded::{Db, EmbeddedKv};

    #[tokio::test]
    async fn installation_id_is_created_once_and_kept_with_the_data() {
        let dir = tempfile::tempdir().unwrap();
        let first = {
            let store = Store::new(Arc::new(EmbeddedKv::new(Db::open(dir.path()).unwrap())));
            let calls = (0..8).map(|_| {
                let store = store.clone();
                tokio::spawn(async move { store.installation_id().await.unwrap() })
            });
            let ids: Vec<String> = futures::future::try_join_all(calls).await.unwrap();
            assert!(ids.iter().all(|id| id == &ids[0]), "one id: {ids:?}");
            ids[0].clone()
        };
        let reopened = Store::new(Arc::new(EmbeddedKv::new(Db::open(dir.path()).unwrap())));
        assert_eq!(reopened.installation_id().await.unwrap(), first);
        let other = tempfile::tempdir().unwrap();
        let elsewhere = Store::new(Arc::new(EmbeddedKv::new(Db::open(other.path()).unwrap())));
        assert_ne!(elsewhere.installation_id().await.unwrap(), first);
    }
}
