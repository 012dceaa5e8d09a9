//! Signed callbacks: when an execution submitted with a `callback_url` ends, its
//! final record is POSTed there, signed with its owner's key.
//!
//! - [`guard`]: the address policy (SSRF guard) and the check of a URL at submit;
//! - [`sign`]: the `Faas-Signature` header;
//! - [`client`]: the HTTP client (guarded resolver, no proxy, no redirects, 5 s,
//!   at most 64 KiB of an answer read);
//! - [`deliverer`]: the task of every API process that claims, delivers and retries.

pub mod client;
pub mod deliverer;
pub mod guard;
pub mod sign;

pub use deliverer::{DeliveryConfig, run};
