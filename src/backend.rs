//! [`Ports`]: the storage ports of a process, on the embedded backend (a data
//! directory) or on NATS JetStream (`NATS_URL`).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use faas_runtime::embedded::{Db, EmbeddedKv, EmbeddedObjects, EmbeddedQueue, QueueConfig};
use faas_runtime::nats::{NatsConfig, connect};
use faas_runtime::ports::{ObjectStore, WorkQueue};
use faas_runtime::sealing::SecretBox;
use faas_runtime::store::Store;

use crate::config::ServeConfig;

/// State, queue and objects of one process.
pub struct Ports {
    /// Typed state.
    pub store: Store,
    /// The execution queue.
    pub queue: Arc<dyn WorkQueue>,
    /// Objects and modules.
    pub objects: Arc<dyn ObjectStore>,
    /// Local directory (compiled modules, staging, generated keys).
    pub data_dir: PathBuf,
    /// True on NATS (several processes share the state).
    pub shared: bool,
}

/// Brings the stored state to this release's schema (refuses a newer one).
async fn migrate(store: &Store) -> anyhow::Result<()> {
    let m = store
        .migrate()
        .await
        .context("check the schema of the stored state")?;
    if m.from != m.to {
        tracing::info!(
            from = m.from,
            to = m.to,
            "stored state at the current schema"
        );
    }
    Ok(())
}

impl Ports {
    /// Opens the backend the configuration names.
    pub async fn open(c: &ServeConfig) -> anyhow::Result<Ports> {
        std::fs::create_dir_all(&c.data_dir).context("create the data directory")?;
        let ack_wait = Duration::from_secs(c.ack_wait_secs.max(1));
        if let Some(url) = &c.nats_url {
            let config = NatsConfig {
                ack_wait,
                max_messages: c.queue_max,
                replicas: c.nats.replicas,
                auth: c.nats.auth(),
                ..NatsConfig::default()
            };
            let nats = connect(url, config).await.with_context(|| {
                format!("connect to NATS at {}", faas_runtime::nats::redact(url))
            })?;
            tracing::info!(url = %faas_runtime::nats::redact(url), "state, queue and objects on NATS JetStream");
            let store = Store::new(Arc::new(nats.kv)).with_completions(Arc::new(nats.completions));
            migrate(&store).await?;
            return Ok(Ports {
                store,
                queue: Arc::new(nats.queue),
                objects: Arc::new(nats.objects),
                data_dir: c.data_dir.clone(),
                shared: true,
            });
        }
        let db = Db::open(&c.data_dir).context("open the data directory")?;
        let store = Store::new(Arc::new(EmbeddedKv::new(db.clone())));
        migrate(&store).await?;
        let queue_config = QueueConfig {
            ack_wait,
            max_messages: c.queue_max,
        };
        Ok(Ports {
            store,
            queue: Arc::new(EmbeddedQueue::open(db.clone(), queue_config).await?),
            objects: Arc::new(EmbeddedObjects::new(db)?),
            data_dir: c.data_dir.clone(),
            shared: false,
        })
    }

    /// The secret-sealing key: configured, or (single process only) generated.
    pub fn secret_box(&self, c: &ServeConfig) -> anyhow::Result<SecretBox> {
        if self.shared && c.secrets_key.is_none() {
            anyhow::bail!(
                "FAAS_SECRETS_KEY (64 hex chars) must be set, the same for every process, when NATS_URL is set"
            );
        }
        Ok(SecretBox::new(&crate::keys::secrets_key(
            c.secrets_key.as_deref(),
            &self.data_dir,
        )?))
    }

    /// The token signing key: configured, or (single process only) generated.
    pub fn jwt_secret(&self, c: &ServeConfig) -> anyhow::Result<Vec<u8>> {
        if self.shared && c.jwt_secret.is_none() {
            anyhow::bail!(
                "JWT_SECRET must be set, the same for every API process, when NATS_URL is set"
            );
        }
        crate::keys::jwt_secret(c.jwt_secret.as_deref(), &self.data_dir)
    }
}
