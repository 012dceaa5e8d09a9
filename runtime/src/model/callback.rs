//! [`Callback`]: what an execution's record shows of its signed callback.

use serde::{Deserialize, Serialize};

/// Where a callback is in its delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum CallbackState {
    /// Not delivered yet: waiting for the execution to end, or for a retry.
    Pending,
    /// The receiver answered 2xx.
    Delivered,
    /// Given up: retried for its whole window, or refused by the address policy.
    Failed,
}

/// The callback of an execution: the URL its final record is POSTed to, and how
/// the delivery went.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Callback {
    /// The URL (http or https) as normalised at submit.
    pub url: String,
    /// `pending`, `delivered` or `failed`.
    pub state: CallbackState,
    /// POSTs made so far.
    pub attempts: u32,
    /// HTTP status of the last attempt; null before the first one or when it got
    /// no answer (timeout, connection error, refused address).
    pub last_status: Option<u16>,
    /// Why the last attempt was not delivered, when it was not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
}

impl Callback {
    /// A callback to `url` not attempted yet.
    pub fn pending(url: String) -> Self {
        Callback {
            url,
            state: CallbackState::Pending,
            attempts: 0,
            last_status: None,
            last_error: None,
        }
    }
}
