//! Bodies of the functions' endpoints: a request body capped in bytes, and both
//! bodies cut when they stall longer than the idle timeout (a client that stops
//! sending, or a guest that stops writing, frees its slot).

use std::io;
use std::time::Duration;

use faas_runtime::ports::ByteStream;
use futures::StreamExt;

/// The error of a body over its cap.
#[derive(Debug)]
pub struct TooLarge(pub u64);

impl std::fmt::Display for TooLarge {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "the body is larger than {} bytes", self.0)
    }
}

impl std::error::Error for TooLarge {}

/// True when `e` is a [`TooLarge`] error of [`guarded`].
pub fn is_too_large(e: &io::Error) -> bool {
    e.get_ref().is_some_and(|inner| inner.is::<TooLarge>())
}

/// `body`, failing past `max` bytes or after `idle` without a chunk; `hold` is
/// dropped when the stream ends or is dropped.
pub fn guarded<H: Send + 'static>(
    body: ByteStream,
    max: u64,
    idle: Duration,
    hold: H,
) -> ByteStream {
    futures::stream::unfold(Some((body, 0u64, hold)), move |state| async move {
        let (mut body, seen, hold) = state?;
        match tokio::time::timeout(idle, body.next()).await {
            Err(_) => {
                let why = format!("the body stalled for {} s", idle.as_secs());
                Some((Err(io::Error::new(io::ErrorKind::TimedOut, why)), None))
            }
            Ok(None) => None,
            Ok(Some(Ok(chunk))) => {
                let seen = seen.saturating_add(chunk.len() as u64);
                if seen > max {
                    let e = io::Error::new(io::ErrorKind::InvalidData, TooLarge(max));
                    return Some((Err(e), None));
                }
                Some((Ok(chunk), Some((body, seen, hold))))
            }
            Ok(Some(Err(e))) => Some((Err(e), None)),
        }
    })
    .boxed()
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use futures::TryStreamExt;

    fn chunks(n: usize) -> ByteStream {
        futures::stream::iter((0..n).map(|_| Ok(Bytes::from_static(b"0123456789")))).boxed()
    }

    #[tokio::test]
    async fn passes_what_fits_and_refuses_more() {
        let all: Vec<Bytes> = guarded(chunks(3), 30, Duration::from_secs(1), ())
            .try_collect()
            .await
            .unwrap();
        assert_eq!(all.len(), 3);
        let err = guarded(chunks(4), 30, Duration::from_secs(1), ())
            .try_collect::<Vec<Bytes>>()
            .await
            .unwrap_err();
        assert!(is_too_large(&err));
    }

    #[tokio::test]
    async fn a_stalled_body_is_cut() {
        let stalled = futures::stream::pending().boxed();
        let err = guarded(stalled, 10, Duration::from_millis(20), ())
            .try_collect::<Vec<Bytes>>()
            .await
            .unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
    }
}
