//! Schema versions of the stored state and the forward migrations between them.
//!
//! The version lives in the `meta` bucket (key `schema`) of the key-value store,
//! so the embedded backend and NATS carry it alike. At start-up every process
//! calls [`Store::migrate`]:
//!
//! - state without a version but with records was written by the release before
//!   versions (schema 1) and is migrated;
//! - an older version is migrated step by step; every step is idempotent, so
//!   processes that start together on NATS may both run it;
//! - a newer version is refused: a binary never rewrites state it does not know.
//!
//! Schema 2 added: unique function names (`function_names`), case-insensitive
//! secret names, the per-owner index of active executions, canonical usernames,
//! and hard deletes on NATS (delete markers of schema 1 are purged).

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use super::records::name_key;
use super::{Store, buckets as b, owner_key};
use crate::model::{Function, Secret};
use crate::ports::Scan;
use crate::{Error, Result};

/// The schema this binary writes.
pub const SCHEMA_VERSION: u32 = 2;

/// Bucket of platform metadata.
pub const META: &str = "meta";

const SCHEMA_KEY: &str = "schema";

/// The stored schema record.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct SchemaRecord {
    version: u32,
    /// The release that last wrote it.
    written_by: String,
}

/// What [`Store::migrate`] found and did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Migrated {
    /// The version found (`0` for empty state).
    pub from: u32,
    /// The version now.
    pub to: u32,
}

impl Store {
    /// Brings the state to [`SCHEMA_VERSION`]; `Invalid` when it is newer.
    pub async fn migrate(&self) -> Result<Migrated> {
        let found: Option<(SchemaRecord, u64)> = self.get_json(META, SCHEMA_KEY).await?;
        let from = match &found {
            Some((r, _)) => r.version,
            None if self.is_empty().await? => 0,
            None => 1,
        };
        if from > SCHEMA_VERSION {
            let by = found.map(|(r, _)| r.written_by).unwrap_or_default();
            return Err(Error::Invalid(format!(
                "the stored state has schema {from} (written by faas {by}); this faas {} knows schema {SCHEMA_VERSION} at most. Run the newer release; nothing was changed",
                env!("CARGO_PKG_VERSION")
            )));
        }
        if from == 1 {
            tracing::info!(from, to = SCHEMA_VERSION, "migrating the stored state");
            self.to_v2().await?;
        }
        if from < SCHEMA_VERSION {
            self.write_version(found.map(|(_, rev)| rev)).await?;
        }
        Ok(Migrated {
            from,
            to: SCHEMA_VERSION,
        })
    }

    async fn is_empty(&self) -> Result<bool> {
        for bucket in [b::USERS, b::FUNCTIONS, b::EXECUTIONS] {
            if self.kv().count(bucket, "").await? > 0 {
                return Ok(false);
            }
        }
        Ok(true)
    }

    async fn write_version(&self, rev: Option<u64>) -> Result<()> {
        let record = SchemaRecord {
            version: SCHEMA_VERSION,
            written_by: env!("CARGO_PKG_VERSION").to_string(),
        };
        let written = match rev {
            Some(rev) => self.update_json(META, SCHEMA_KEY, &record, rev).await,
            None => self.create_json(META, SCHEMA_KEY, &record).await,
        };
        match written {
            // Another process migrated at the same time.
            Ok(_) | Err(Error::Conflict(_)) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Schema 1 -> 2. Idempotent.
    async fn to_v2(&self) -> Result<()> {
        for bucket in b::ALL {
            self.kv().compact(bucket).await?;
        }
        for (_, e) in self.kv().scan(b::FUNCTIONS, Scan::default()).await? {
            let f: Function = serde_json::from_slice(&e.value)?;
            let key = name_key(&f.owner_id, &f.name);
            create_ignoring_conflict(self, b::FUNCTION_NAMES, &key, &f.id).await?;
        }
        for (_, e) in self.kv().scan(b::SECRETS, Scan::default()).await? {
            let s: Secret = serde_json::from_slice(&e.value)?;
            let key = name_key(&s.owner_id, &s.name);
            create_ignoring_conflict(self, b::SECRET_NAMES, &key, &s.id).await?;
            let legacy = owner_key(&s.owner_id, &s.name);
            let points_here = |e: Option<crate::ports::Entry>| {
                e.is_some_and(|e| e.value.as_ref() == s.id.as_bytes())
            };
            if legacy != key
                && points_here(self.kv().get(b::SECRET_NAMES, &key).await?)
                && points_here(self.kv().get(b::SECRET_NAMES, &legacy).await?)
            {
                self.kv().delete(b::SECRET_NAMES, &legacy).await?;
            }
        }
        for id in self.active_executions(0).await? {
            if let Some((e, _)) = self.get_execution(&id, None).await?
                && !e.status.is_final()
            {
                let key = owner_key(&e.owner_id, &e.id);
                self.kv()
                    .put(b::EXECUTIONS_ACTIVE_BY_OWNER, &key, Bytes::new())
                    .await?;
            }
        }
        Ok(())
    }
}

/// Creates `key` unless it exists (a name taken twice in schema 1 keeps its first
/// owner; the other stays reachable by id).
async fn create_ignoring_conflict(store: &Store, bucket: &str, key: &str, id: &str) -> Result<()> {
    match store
        .kv()
        .create(bucket, key, Bytes::from(id.to_string()))
        .await
    {
        Ok(_) | Err(Error::Conflict(_)) => Ok(()),
        Err(e) => Err(e),
    }
}
