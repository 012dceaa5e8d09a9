//! The one error type of the runtime's ports.

/// What went wrong, phrased as what the caller should do about it.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The thing does not exist (or is not the caller's).
    #[error("not found: {0}")]
    NotFound(String),
    /// A concurrent change won, or the thing already exists.
    #[error("conflict: {0}")]
    Conflict(String),
    /// The request is malformed; retrying will not help.
    #[error("invalid: {0}")]
    Invalid(String),
    /// A payload is over its size limit.
    #[error("too large: {0}")]
    TooLarge(String),
    /// A queue or store is full; retry later.
    #[error("overloaded: {0}")]
    Overloaded(String),
    /// A backend cannot be reached right now; retry later.
    #[error("unavailable: {0}")]
    Unavailable(String),
    /// A wait ran out of time.
    #[error("timed out: {0}")]
    Timeout(String),
    /// A bug or a corrupted record; not the caller's fault.
    #[error("internal: {0}")]
    Internal(String),
}

impl Error {
    /// True when the same call may succeed later (infrastructure faults).
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            Error::Unavailable(_) | Error::Timeout(_) | Error::Overloaded(_)
        )
    }

    /// Wraps an unexpected I/O error.
    pub fn io(context: &str, err: std::io::Error) -> Self {
        Error::Unavailable(format!("{context}: {err}"))
    }
}

impl From<serde_json::Error> for Error {
    fn from(err: serde_json::Error) -> Self {
        Error::Internal(format!("corrupt record: {err}"))
    }
}

/// Result with the runtime's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
