//! `faas-runtime`: the core of the FaaS platform, free of HTTP, Wasmtime and Docker.
//!
//! - [`model`]: domain records (users, functions, executions, secrets, objects);
//! - [`ports`]: the traits backends implement (key-value state, work queue, object
//!   store, executor);
//! - [`outcome`]: the one mapping from what an executor saw to an execution's status;
//! - [`error`]: the typed error every port returns.

pub mod error;
pub mod model;
pub mod outcome;
pub mod ports;

pub use error::{Error, Result};
