//! What one attempt needs besides the record: the function, the decrypted secrets
//! as env vars, the granted objects staged on disk, and the capability grant that
//! lets a container read those objects over `API_BASE_URL`.

use std::path::{Path, PathBuf};

use futures::StreamExt;
use serde::{Deserialize, Serialize};
use tokio::io::AsyncWriteExt;

use super::Worker;
use crate::input::{ObjectInput, parse};
use crate::model::{Execution, Function, objects_bucket};
use crate::ports::{ObjectGrant, ObjectStore};
use crate::store::{Store, buckets};
use crate::{Error, Result};

/// A capability grant: while it exists, `API_BASE_URL/<function_id>/<name>` serves
/// exactly these objects to whoever holds the token.
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

/// Hex SHA-256 of a capability token: the key of its grant.
pub fn grant_key(token: &str) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(token.as_bytes()))
}

/// The resolved context of one attempt.
pub(super) struct Prepared {
    pub function: Function,
    pub env: Vec<(String, String)>,
    pub grants: Vec<ObjectGrant>,
    pub staging: Option<PathBuf>,
    grant_key: Option<String>,
}

impl Prepared {
    /// Removes staged files and the capability grant.
    pub async fn cleanup(&self, store: &Store) {
        if let Some(dir) = &self.staging {
            let _ = tokio::fs::remove_dir_all(dir).await;
        }
        if let Some(key) = &self.grant_key {
            let _ = store.kv().delete(buckets::GRANTS, key).await;
        }
    }
}

impl Worker {
    /// Resolves function, secrets and objects. `Invalid`/`NotFound` fail the
    /// execution; other errors are retried.
    pub(super) async fn prepare(&self, exec: &Execution) -> Result<Prepared> {
        let function = self
            .store
            .get_function(&exec.function_id, Some(&exec.owner_id))
            .await?
            .ok_or_else(|| Error::NotFound("the function was deleted".into()))?;
        let parsed = parse(&exec.input)?;
        let mut env = self.secret_env(exec, &parsed.secrets).await?;
        let grants = self.resolve_objects(exec, &parsed.objects).await?;
        let base = self.config.api_base_url.trim_end_matches('/');
        // Without objects there is nothing to grant: the URL then answers 404 for
        // every object, and no grant record is written (two store writes saved).
        let (token, grant_key) = match grants.is_empty() {
            true => ("none".to_string(), None),
            false => {
                let token = random_token();
                let key = self.grant(exec, &function, &grants, &token).await?;
                (token, Some(key))
            }
        };
        env.push((
            "API_BASE_URL".into(),
            format!("{base}/api/exec-objects/{token}"),
        ));
        env.push(("FAAS_EXECUTION_ID".into(), exec.id.clone()));
        env.push(("FAAS_FUNCTION_ID".into(), exec.function_id.clone()));
        let staging = match grants.is_empty() {
            true => None,
            false => Some(self.stage(exec, &grants).await?),
        };
        Ok(Prepared {
            function,
            env,
            grants,
            staging,
            grant_key,
        })
    }

    /// Writes the capability grant of `token`; returns its key.
    async fn grant(
        &self,
        exec: &Execution,
        function: &Function,
        grants: &[ObjectGrant],
        token: &str,
    ) -> Result<String> {
        let key = grant_key(token);
        let grant = Grant {
            execution_id: exec.id.clone(),
            owner_id: exec.owner_id.clone(),
            keys: grants.iter().map(ObjectGrant::key).collect(),
            expires_at: time::OffsetDateTime::now_utc().unix_timestamp()
                + function.timeout_secs.min(self.config.max_timeout.as_secs()) as i64
                + 60,
        };
        self.store.put_json(buckets::GRANTS, &key, &grant).await?;
        Ok(key)
    }

    async fn secret_env(
        &self,
        exec: &Execution,
        names: &[String],
    ) -> Result<Vec<(String, String)>> {
        let mut env = Vec::with_capacity(names.len() + 3);
        for name in names {
            let secret = self
                .store
                .find_secret(&exec.owner_id, name)
                .await?
                .ok_or_else(|| Error::NotFound(format!("secret {name} does not exist")))?;
            let value = self.secrets.open(&secret.sealed, &secret.id)?;
            let value = String::from_utf8(value)
                .map_err(|_| Error::Invalid(format!("secret {name} is not UTF-8")))?;
            env.push((name.to_uppercase(), value));
        }
        Ok(env)
    }

    async fn resolve_objects(
        &self,
        exec: &Execution,
        inputs: &[ObjectInput],
    ) -> Result<Vec<ObjectGrant>> {
        let mut grants = Vec::with_capacity(inputs.len());
        for i in inputs {
            let not_found =
                || Error::NotFound(format!("object {}/{} not found", i.function_id, i.name));
            self.store
                .get_function(&i.function_id, Some(&exec.owner_id))
                .await?
                .ok_or_else(not_found)?;
            let meta = match self
                .objects
                .head(&objects_bucket(&i.function_id), &i.name)
                .await
            {
                Err(Error::NotFound(_)) => return Err(not_found()),
                other => other?,
            };
            grants.push(ObjectGrant {
                alias: i.alias.clone(),
                function_id: i.function_id.clone(),
                name: i.name.clone(),
                size: meta.size,
                content_type: meta.content_type,
            });
        }
        Ok(grants)
    }

    /// Places each granted object at `<staging>/<function_id>/<name>`: a hard link
    /// when the backend keeps a local file, else a streamed copy.
    async fn stage(&self, exec: &Execution, grants: &[ObjectGrant]) -> Result<PathBuf> {
        let dir = self
            .config
            .staging_dir
            .join(format!("{}-{}", exec.id, uuid::Uuid::new_v4()));
        for g in grants {
            let target_dir = dir.join(&g.function_id);
            tokio::fs::create_dir_all(&target_dir)
                .await
                .map_err(|e| Error::io("staging dir", e))?;
            let target = target_dir.join(&g.name);
            let bucket = objects_bucket(&g.function_id);
            let linked = match self.objects.local_path(&bucket, &g.name) {
                Some(src) => tokio::fs::hard_link(&src, &target).await.is_ok(),
                None => false,
            };
            if !linked {
                copy_object(self.objects.as_ref(), &bucket, &g.name, &target).await?;
            }
        }
        Ok(dir)
    }
}

async fn copy_object(
    store: &dyn ObjectStore,
    bucket: &str,
    name: &str,
    target: &Path,
) -> Result<()> {
    let (_, mut body) = store.get(bucket, name).await?;
    let mut file = tokio::fs::File::create(target)
        .await
        .map_err(|e| Error::io("stage object", e))?;
    while let Some(chunk) = body.next().await {
        let chunk = chunk.map_err(|e| Error::io("read object", e))?;
        file.write_all(&chunk)
            .await
            .map_err(|e| Error::io("stage object", e))?;
    }
    file.flush().await.map_err(|e| Error::io("stage object", e))
}

/// 256 random bits, URL-safe hex.
fn random_token() -> String {
    use rand::RngCore;
    let mut b = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut b);
    hex::encode(b)
}
