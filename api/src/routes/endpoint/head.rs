//! The head start of a handler's response: its head waits briefly for the first
//! chunks of its body, so that a short response leaves in one write (head and body
//! together) instead of two, and a body already complete by then is sent whole,
//! with its length, without a pump task (the slot is freed at once).
//!
//! A body still streaming after [`WAIT`] (or past [`MAX_GATHERED`] bytes) goes out as
//! it comes, after what was gathered: a guest that sets its response and writes
//! later delays its head by [`WAIT`] at most.

use std::io;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use faas_runtime::ports::ByteStream;
use futures::StreamExt;
use tokio::time::{Instant, timeout_at};

/// How long the head waits for the body's first chunks and its end.
pub const WAIT: Duration = Duration::from_millis(5);

/// Most bytes gathered before the head goes.
pub const MAX_GATHERED: usize = 64 * 1024;

/// A response body after its head start.
pub enum Start {
    /// The whole body (it ended within the wait).
    Whole(Bytes),
    /// What was gathered, then the rest as it comes (or the error that ended it).
    Streaming(ByteStream),
}

/// Gathers the start of `body` for at most `wait`.
pub async fn start(mut body: ByteStream, wait: Duration) -> Start {
    let deadline = Instant::now() + wait;
    let mut got: Vec<io::Result<Bytes>> = Vec::new();
    let mut size = 0usize;
    loop {
        match timeout_at(deadline, body.next()).await {
            Ok(None) => return Start::Whole(whole(got)),
            Ok(Some(Ok(chunk))) => {
                size = size.saturating_add(chunk.len());
                got.push(Ok(chunk));
                if size >= MAX_GATHERED {
                    break;
                }
            }
            Ok(Some(Err(e))) => {
                got.push(Err(e));
                break;
            }
            Err(_) => break,
        }
    }
    Start::Streaming(futures::stream::iter(got).chain(body).boxed())
}

/// The gathered chunks (all of them `Ok`: an error ends the gathering) as one.
fn whole(got: Vec<io::Result<Bytes>>) -> Bytes {
    let mut chunks = got.into_iter().flatten();
    match (chunks.next(), chunks.next()) {
        (None, _) => Bytes::new(),
        (Some(only), None) => only,
        (Some(a), Some(b)) => {
            let mut all = BytesMut::from(&a[..]);
            all.extend_from_slice(&b);
            chunks.for_each(|c| all.extend_from_slice(&c));
            all.freeze()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::TryStreamExt;

    fn chunks(parts: &[&'static str]) -> ByteStream {
        let items: Vec<io::Result<Bytes>> = parts
            .iter()
            .map(|p| Ok(Bytes::from_static(p.as_bytes())))
            .collect();
        futures::stream::iter(items).boxed()
    }

    #[tokio::test]
    async fn a_body_that_ends_within_the_wait_is_whole() {
        match start(chunks(&["hello ", "world"]), WAIT).await {
            Start::Whole(b) => assert_eq!(&b[..], b"hello world"),
            Start::Streaming(_) => panic!("expected the whole body"),
        }
        match start(chunks(&[]), WAIT).await {
            Start::Whole(b) => assert!(b.is_empty()),
            Start::Streaming(_) => panic!("expected an empty whole body"),
        }
    }

    #[tokio::test]
    async fn a_body_still_streaming_keeps_its_start_and_its_rest() {
        let slow = chunks(&["a", "b"])
            .chain(futures::stream::once(async {
                tokio::time::sleep(Duration::from_millis(50)).await;
                Ok(Bytes::from_static(b"c"))
            }))
            .boxed();
        let Start::Streaming(rest) = start(slow, Duration::from_millis(10)).await else {
            panic!("expected a stream");
        };
        let all: Vec<Bytes> = rest.try_collect().await.unwrap();
        assert_eq!(all.concat(), b"abc");
    }

    #[tokio::test]
    async fn a_large_body_streams_after_the_cap() {
        let big = futures::stream::iter(
            (0..100).map(|_| Ok::<_, io::Error>(Bytes::from(vec![7u8; 4096]))),
        )
        .boxed();
        let Start::Streaming(rest) = start(big, WAIT).await else {
            panic!("expected a stream past the cap");
        };
        let all: Vec<Bytes> = rest.try_collect().await.unwrap();
        assert_eq!(all.iter().map(Bytes::len).sum::<usize>(), 100 * 4096);
    }

    #[tokio::test]
    async fn an_error_is_passed_on_after_the_start() {
        let failing = futures::stream::iter([
            Ok(Bytes::from_static(b"a")),
            Err(io::Error::other("guest trapped")),
        ])
        .boxed();
        let Start::Streaming(rest) = start(failing, WAIT).await else {
            panic!("a failed body is never whole");
        };
        let err = rest.try_collect::<Vec<Bytes>>().await.unwrap_err();
        assert_eq!(err.to_string(), "guest trapped");
    }
}
