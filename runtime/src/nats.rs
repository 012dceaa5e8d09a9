//! The NATS JetStream backend of the storage ports, for deployments with several
//! processes (API servers, workers, the autoscaler) sharing one state.
//!
//! - `link`: the shared client, its connection state and the mapping of
//!   async-nats errors to [`crate::Error`];
//! - [`kv`]: [`NatsKv`], one JetStream key-value bucket per logical bucket;
//! - [`queue`]: [`NatsQueue`], a work-queue stream with one durable pull consumer
//!   shared by every worker;
//! - `leases`: the table through which a [`crate::ports::Delivery`] reaches its
//!   message again (ack, nack, extend);
//! - [`objects`]: [`NatsObjects`], one JetStream object-store bucket per logical
//!   bucket;
//! - `upload`: the streamed, size-limited, hashed upload behind
//!   [`NatsObjects`]'s `put`.
//!
//! - [`completions`]: [`NatsCompletions`], state changes of executions on core
//!   NATS subjects.
//!
//! [`connect`] builds all four on one client. A wrong URL fails at once with
//! [`crate::Error::Unavailable`]; after a successful connect the client reconnects
//! on its own, and calls made while the server is away (or in flight when the
//! connection drops) fail at once with `Unavailable`.
//!
//! Where NATS differs from the embedded backend:
//! - an ack of an expired lease is refused only within the process that leased
//!   the newer delivery; from another process JetStream accepts it. The worker's
//!   revision-checked final write fences stale results;
//! - a message nacked with a delay counts as `in_flight` (JetStream keeps it
//!   ack-pending) until it is redelivered;
//! - a PubAck means the server stored the message; it reaches the disk at the
//!   server's sync interval (run the server with `sync_interval: always` to
//!   survive power loss, not only a crash of the server process).

pub mod completions;
pub mod kv;
mod leases;
mod link;
pub mod objects;
pub mod queue;
mod upload;

use std::time::Duration;

pub use completions::NatsCompletions;
pub use kv::NatsKv;
pub use link::redact;
pub use objects::NatsObjects;
pub use queue::NatsQueue;

use crate::Result;
use link::Link;

/// Names and limits of the JetStream resources the backend uses.
#[derive(Debug, Clone)]
pub struct NatsConfig {
    /// The work-queue stream (default `EXECUTIONS`).
    pub stream: String,
    /// The subject the stream captures (default `faas.executions`).
    pub subject: String,
    /// The durable pull consumer shared by every worker (default `workers`).
    pub consumer: String,
    /// How long a delivery stays invisible without an ack or extension.
    pub ack_wait: Duration,
    /// Most messages the stream holds; enqueue beyond it is `Overloaded`.
    pub max_messages: u64,
    /// How long a message id is remembered to drop duplicate enqueues.
    pub duplicate_window: Duration,
    /// How long one request to the server may take.
    pub request_timeout: Duration,
    /// Replicas of the stream, the key-value buckets and the object stores (1, or
    /// 3 or 5 on a cluster). Applies to resources this process creates.
    pub replicas: usize,
    /// Credentials and TLS of the connection.
    pub auth: NatsAuth,
}

/// How a process proves who it is to NATS, and how it checks the server.
#[derive(Debug, Clone, Default)]
pub struct NatsAuth {
    /// User name (with `password`).
    pub user: Option<String>,
    /// Password of `user`.
    pub password: Option<String>,
    /// Authentication token.
    pub token: Option<String>,
    /// A `.creds` file (JWT and NKey seed).
    pub creds_file: Option<std::path::PathBuf>,
    /// PEM file of the CA that signed the server's certificate (implies TLS).
    pub ca_file: Option<std::path::PathBuf>,
    /// PEM client certificate for mutual TLS (with `client_key`).
    pub client_cert: Option<std::path::PathBuf>,
    /// PEM private key of `client_cert`.
    pub client_key: Option<std::path::PathBuf>,
    /// Refuse a connection without TLS.
    pub require_tls: bool,
}

impl Default for NatsConfig {
    fn default() -> Self {
        NatsConfig {
            stream: "EXECUTIONS".to_string(),
            subject: "faas.executions".to_string(),
            consumer: "workers".to_string(),
            ack_wait: Duration::from_secs(30),
            max_messages: 100_000,
            duplicate_window: Duration::from_secs(120),
            request_timeout: Duration::from_secs(5),
            replicas: 1,
            auth: NatsAuth::default(),
        }
    }
}

/// The three storage ports on one NATS connection.
#[derive(Clone)]
pub struct NatsBackend {
    /// Key-value state.
    pub kv: NatsKv,
    /// The execution queue.
    pub queue: NatsQueue,
    /// Object storage.
    pub objects: NatsObjects,
    /// State-change signals.
    pub completions: NatsCompletions,
}

/// Connects to `url` (e.g. `nats://127.0.0.1:4222`, or several servers of a
/// cluster separated by commas), creates or updates the queue's stream and
/// consumer, and returns the backends sharing the connection.
///
/// Fails fast with `Unavailable` when no server answers at `url`.
pub async fn connect(url: &str, config: NatsConfig) -> Result<NatsBackend> {
    let link = Link::connect(url, &config).await?;
    let kv = NatsKv::new(link.clone());
    let queue = NatsQueue::open(link.clone(), kv.clone(), &config).await?;
    Ok(NatsBackend {
        kv,
        queue,
        objects: NatsObjects::new(link.clone()),
        completions: NatsCompletions::new(link),
    })
}
