//! placeholder
//! - [`docker`]: [`docker::DockerExecutor`], image functions in hardened single-use containers.

pub mod docker;
