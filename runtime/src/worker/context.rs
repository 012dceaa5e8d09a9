//! What one attempt needs besides the record: the function (as the execution's
//! version runs it), the version's env and the decrypted secrets as env vars, the granted objects staged on disk, and the capability grant that
//! lets a container read those objects over `API_BASE_URL`. The grant and the
//! staging directory belong to the attempt's [`AttemptGuard`].
//!
//! Stored objects are never written from here: a stage is a fresh directory of
//! hard links (or copies made with `create_new`, which never opens an existing
//! file), each object staged once however many aliases name it.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use futures::StreamExt;
use tokio::io::AsyncWriteExt;

use super::Worker;
use super::guard::AttemptGuard;
use crate::input::{ObjectInput, parse};
use crate::model::{Execution, Function, FunctionVersion, objects_bucket};
use crate::ports::{ObjectGrant, ObjectStore};
use crate::store::{Grant, grant_key};
use crate::{Error, Result};

/// The resolved context of one attempt.
pub(super) struct Prepared {
    pub function: Function,
    pub env: Vec<(String, String)>,
    pub grants: Vec<ObjectGrant>,
    pub staging: Option<PathBuf>,
}

impl Worker {
    /// Resolves secrets and objects of a claimed attempt of `function`; stages the
    /// objects and writes their grant, both owned by `guard`. `Invalid`/`NotFound`
    /// fail the execution; other errors defer it.
    pub(super) async fn prepare(
        &self,
        exec: &Execution,
        function: Function,
        version: &FunctionVersion,
        guard: &mut AttemptGuard,
    ) -> Result<Prepared> {
        let parsed = parse(&exec.input)?;
        let secrets = self.secret_env(exec, &parsed.secrets).await?;
        // The version's env first; a secret of the same name wins.
        let mut env: Vec<(String, String)> = version
            .env_vars()
            .into_iter()
            .filter(|(k, _)| !secrets.iter().any(|(s, _)| s == k))
            .collect();
        env.extend(secrets);
        let grants = self.resolve_objects(exec, &parsed.objects).await?;
        // Without objects there is nothing to stage or grant: the URL then answers
        // 404 for every object, and no grant record is written.
        let (staging, token) = match grants.is_empty() {
            true => (None, "none".to_string()),
            false => {
                let staging = self.stage(exec, &grants, guard).await?;
                let token = random_token();
                self.grant(exec, &function, &grants, &token, guard).await?;
                (Some(staging), token)
            }
        };
        let base = self.config.api_base_url.trim_end_matches('/');
        env.push((
            "API_BASE_URL".into(),
            format!("{base}/api/exec-objects/{token}"),
        ));
        env.push(("FAAS_EXECUTION_ID".into(), exec.id.clone()));
        env.push(("FAAS_FUNCTION_ID".into(), exec.function_id.clone()));
        env.push(("FAAS_FUNCTION_VERSION".into(), version.version.to_string()));
        Ok(Prepared {
            function,
            env,
            grants,
            staging,
        })
    }

    /// Writes the capability grant of `token`, owned by `guard`.
    async fn grant(
        &self,
        exec: &Execution,
        function: &Function,
        grants: &[ObjectGrant],
        token: &str,
        guard: &mut AttemptGuard,
    ) -> Result<()> {
        let key = grant_key(token);
        let grant = Grant {
            execution_id: exec.id.clone(),
            owner_id: exec.owner_id.clone(),
            keys: grants.iter().map(ObjectGrant::key).collect(),
            expires_at: time::OffsetDateTime::now_utc().unix_timestamp()
                + function.timeout_secs.min(self.config.max_timeout.as_secs()) as i64
                + 60,
        };
        guard.own_grant(key.clone());
        self.store.put_grant(&key, &grant).await
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
            let value = self.secrets.open(&secret.sealed, &secret.id).map_err(|_| {
                Error::Internal(format!(
                    "secret {name} could not be decrypted: the secrets key changed \
                     (FAAS_SECRETS_KEY differs from the key that sealed it)"
                ))
            })?;
            let value = String::from_utf8(value)
                .map_err(|_| Error::Invalid(format!("secret {name} is not UTF-8")))?;
            env.push((name.to_uppercase(), value));
        }
        Ok(env)
    }

    /// The objects `inputs` name, each once (two aliases of one object are one grant).
    async fn resolve_objects(
        &self,
        exec: &Execution,
        inputs: &[ObjectInput],
    ) -> Result<Vec<ObjectGrant>> {
        let mut grants: Vec<ObjectGrant> = Vec::with_capacity(inputs.len());
        let mut seen = HashSet::new();
        for i in inputs {
            if !seen.insert((i.function_id.as_str(), i.name.as_str())) {
                continue;
            }
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

    /// Places each granted object at `<staging>/<function_id>/<name>` in a fresh
    /// directory owned by `guard`: a hard link when the backend keeps a local file,
    /// else a copy into a new file.
    async fn stage(
        &self,
        exec: &Execution,
        grants: &[ObjectGrant],
        guard: &mut AttemptGuard,
    ) -> Result<PathBuf> {
        let root = self.config.staging_dir.join(&self.config.worker_id);
        tokio::fs::create_dir_all(&root)
            .await
            .map_err(|e| Error::io("staging dir", e))?;
        let dir = root.join(format!("{}-{}", exec.id, uuid::Uuid::new_v4()));
        guard.own_staging(dir.clone());
        tokio::fs::create_dir(&dir)
            .await
            .map_err(|e| Error::io("staging dir", e))?;
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

/// Streams an object into `target`, which must not exist yet (`create_new`): a
/// copy never opens, let alone truncates, a file someone else holds.
async fn copy_object(
    store: &dyn ObjectStore,
    bucket: &str,
    name: &str,
    target: &Path,
) -> Result<()> {
    let (_, mut body) = store.get(bucket, name).await?;
    let mut file = tokio::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(target)
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
