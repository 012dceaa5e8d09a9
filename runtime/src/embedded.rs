//! The embedded backend: every port on one SQLite database in WAL mode plus a
//! directory of object files. `faas serve` needs nothing installed.
//!
//! - [`db`]: the shared connection and its schema;
//! - [`kv`]: [`EmbeddedKv`], revisioned buckets;
//! - [`queue`]: [`EmbeddedQueue`], leases with visibility timeouts;
//! - [`objects`]: [`EmbeddedObjects`], files written through a temp file and renamed.
//!
//! One process owns a data directory (an exclusive lock file enforces it), so leases
//! still held at start-up belong to a dead process and are released at once.

pub mod db;
pub mod kv;
pub mod objects;
pub mod queue;

pub use db::Db;
pub use kv::EmbeddedKv;
pub use objects::EmbeddedObjects;
pub use queue::{EmbeddedQueue, QueueConfig};
