//! The ports (traits) through which the platform reaches its state, its queue, its
//! object store, its executors, its HTTP handlers and the validator of deploys. Backends implement them: [`crate::embedded`]
//! (SQLite + files) and [`crate::nats`] (NATS JetStream).

pub mod completions;
pub mod executor;
pub mod http;
pub mod kv;
pub mod objects;
pub mod queue;
pub mod validate;

pub use self::http::{GuestLogs, HttpHandler, HttpOutcome, HttpRequest, HttpResponse};
pub use completions::{Changes, Completions, LocalCompletions};
pub use executor::{ExecutionRequest, Executor, ObjectGrant, RawOutcome, Termination, by_kind};
pub use kv::{Entry, KvStore, KvWrite, Scan};
pub use objects::{BodyStream, ByteStream, ObjectStore};
pub use queue::{Delivery, QueueStats, WorkQueue};
pub use validate::{Upload, Validator};
