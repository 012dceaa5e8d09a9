//! `faas`: the composition root of the FaaS platform. It names the concrete
//! backends and executors and wires them into the API and the workers.
//!
//! - [`autoscale`]: `faas autoscaler` (NATS backlog -> worker containers);
//! - [`cli`]: the client commands (`faas login`, `fn`, `invoke`, `exec`, `obj`,
//!   `secret`, `completions`) over the public REST API;
//! - [`backend`]: the storage ports on the embedded backend or NATS;
//! - [`config`]: every setting, as a CLI flag and an environment variable;
//! - [`docker`]: the Docker executor's wiring (gateway listener, reaper);
//! - [`health`]: the health listener of workers and the autoscaler, and the probe
//!   behind `faas healthcheck`;
//! - [`keys`]: the generated JWT and secret-sealing keys of a data directory;
//! - [`metrics`]: the Prometheus recorder and where `GET /metrics` is served;
//! - [`telemetry`]: stderr logs, and OTLP export of the spans when configured;
//! - [`platform`]: [`platform::Platform`], `faas serve` in one process (also used
//!   by the end-to-end tests).

pub mod autoscale;
pub mod backend;
pub mod cli;
pub mod config;
pub mod docker;
pub mod health;
pub mod keys;
pub mod metrics;
pub mod platform;
pub mod telemetry;
