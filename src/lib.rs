//! `faas`: the composition root of the FaaS platform. It names the concrete
//! backends and executors and wires them into the API and the workers.
//!
//! - [`config`]: every setting, as a CLI flag and an environment variable;
//! - [`keys`]: the generated JWT and secret-sealing keys of a data directory;
//! - [`platform`]: [`platform::Platform`], `faas serve` in one process (also used
//!   by the end-to-end tests).

pub mod config;
pub mod keys;
pub mod platform;
