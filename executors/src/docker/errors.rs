//! Maps the engine client's errors to [`faas_runtime::Error`], so no `bollard` type
//! leaves this module tree.

use bollard::errors::Error as EngineError;
use faas_runtime::Error;

/// What the engine's answer means for the caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Answer {
    /// The engine answered with an HTTP error status.
    Refused {
        /// HTTP status.
        status: u16,
        /// The engine's message.
        message: String,
    },
    /// A pull or build stream reported an error (registry faults, bad image).
    Stream(String),
    /// No usable answer: the engine is down, slow or the connection broke.
    Unreachable(String),
}

/// Classifies an engine error.
pub(crate) fn answer(err: EngineError) -> Answer {
    match err {
        EngineError::DockerResponseServerError {
            status_code,
            message,
        } => Answer::Refused {
            status: status_code,
            message,
        },
        EngineError::DockerStreamError { error } => Answer::Stream(error),
        EngineError::RequestTimeoutError => {
            Answer::Unreachable("the docker engine did not answer in time".to_string())
        }
        other => Answer::Unreachable(other.to_string()),
    }
}

/// Maps an engine error to the runtime's error; `context` says what was attempted.
pub(crate) fn to_runtime(context: &str, err: EngineError) -> Error {
    from_answer(context, answer(err))
}

/// Maps a classified answer to the runtime's error.
pub(crate) fn from_answer(context: &str, answer: Answer) -> Error {
    match answer {
        Answer::Refused { status, message } => match status {
            404 => Error::NotFound(format!("{context}: {message}")),
            409 => Error::Conflict(format!("{context}: {message}")),
            400..=499 => Error::Invalid(format!("{context}: {message}")),
            _ => Error::Unavailable(format!(
                "{context}: docker engine error {status}: {message}"
            )),
        },
        Answer::Stream(message) => Error::Unavailable(format!("{context}: {message}")),
        Answer::Unreachable(message) => {
            Error::Unavailable(format!("{context}: docker engine unreachable: {message}"))
        }
    }
}

/// True when the engine said the thing does not exist.
pub(crate) fn is_not_found(err: &EngineError) -> bool {
    matches!(
        err,
        EngineError::DockerResponseServerError {
            status_code: 404,
            ..
        }
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(status: u16) -> EngineError {
        EngineError::DockerResponseServerError {
            status_code: status,
            message: "m".into(),
        }
    }

    #[test]
    fn statuses_map_to_what_the_caller_should_do() {
        assert!(matches!(to_runtime("x", refused(404)), Error::NotFound(_)));
        assert!(matches!(to_runtime("x", refused(409)), Error::Conflict(_)));
        assert!(matches!(to_runtime("x", refused(400)), Error::Invalid(_)));
        let down = to_runtime("x", refused(500));
        assert!(down.is_retryable());
        let timeout = to_runtime("x", EngineError::RequestTimeoutError);
        assert!(matches!(timeout, Error::Unavailable(_)));
        let io = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "refused");
        let err = to_runtime("ping", EngineError::from(io));
        assert!(err.to_string().contains("unreachable"), "{err}");
        assert!(is_not_found(&refused(404)));
        assert!(!is_not_found(&refused(500)));
    }
}
