//! `faas-runtime`: the core of the FaaS platform, free of HTTP, Wasmtime and Docker.
//!
//! - [`adapter`]: how functions that are not HTTP handlers answer HTTP requests;
//! - [`addresses`]: which IP addresses the platform's own clients may reach;
//! - [`autoscaler`]: scaling decisions and the loop that applies them;
//! - [`model`]: domain records (users, functions, executions, secrets, objects);
//! - [`ports`]: the traits backends implement (key-value state, work queue, object
//!   store, executor, HTTP handler);
//! - [`embedded`]: the default backend of every storage port (SQLite + files);
//! - [`nats`]: the NATS JetStream backend of every storage port;
//! - [`store`]: typed repositories over the key-value port;
//! - [`cron`]: cron expressions in time zones, the ticks of schedules;
//! - [`retention`]: deletion of finished executions past the operator's retention;
//! - [`worker`]: leases executions and runs them through executors;
//! - [`outcome`]: the one mapping from what an executor saw to an execution's status;
//! - [`input`]: what the platform reads of an execution's input;
//! - [`outbound`]: the policy of guests' outbound HTTP requests;
//! - [`sealing`]: encryption of secrets at rest;
//! - [`trace_context`]: joining spans to a W3C trace through the exporter's hook;
//! - [`conformance`]: the test suites every backend of a port must pass;
//! - [`error`]: the typed error every port returns.

pub mod adapter;
pub mod addresses;
pub mod autoscaler;
pub mod conformance;
pub mod cron;
pub mod embedded;
pub mod error;
pub mod input;
pub mod metrics;
pub mod model;
pub mod nats;
pub mod outbound;
pub mod outcome;
pub mod ports;
pub mod retention;
pub mod sealing;
pub mod store;
pub mod trace_context;
pub mod worker;

pub use error::{Error, Result};
