//! [`pump`]: a body copied by a task of its own into a small bounded channel, so
//! that the idle timeout also runs while the reader does not read.
//!
//! A body handed to hyper is only polled while hyper can write: a client that
//! stops reading stops the polling, and a timer inside the stream would never
//! fire. The pump reads the source on its own task and waits at most `idle` for
//! room in the channel; when the reader takes nothing for that long, the pump
//! drops the source (the guest's stream) and calls its `on_end` (which frees the
//! concurrency slot),
//! and the reader, if it ever reads again, gets what was already in the channel
//! and then an error: hyper aborts the connection instead of ending the body as
//! if it were complete. The task belongs to the returned stream: dropping the
//! stream aborts it. Its `on_end` hears how the body ended ([`End`]).

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use faas_runtime::ports::ByteStream;
use futures::{Stream, StreamExt};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// Chunks buffered between the source and the reader.
const DEPTH: usize = 4;

/// How a pumped body ended, as its `on_end` hears it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum End {
    /// The source ended: every chunk was handed over.
    Complete,
    /// The source failed with this error (passed on to the reader).
    Failed(String),
    /// The reader took nothing for the idle timeout: the body was cut.
    Cut,
    /// The reader went away before the end.
    ReaderGone,
}

/// `source`, read by a task of its own and cut when the reader leaves a chunk
/// untaken for `idle`. `on_end` is called once, when the source ends or fails,
/// at the cut, or when the reader goes away (the source is dropped first).
/// `what` names the reader in the error and the log.
pub fn pump<F>(source: ByteStream, idle: Duration, on_end: F, what: &'static str) -> ByteStream
where
    F: FnOnce(End) + Send + 'static,
{
    let (tx, rx) = mpsc::channel(DEPTH);
    let cut = Arc::new(AtomicBool::new(false));
    let on_end = OnEnd(Some(on_end));
    let task = tokio::spawn(copy(source, tx, idle, on_end, cut.clone(), what));
    Pumped {
        rx,
        cut,
        idle,
        what,
        task,
        done: false,
    }
    .boxed()
}

/// Calls its function once: with what it is given, or [`End::ReaderGone`] when
/// dropped uncalled (the task was aborted).
struct OnEnd<F: FnOnce(End)>(Option<F>);

impl<F: FnOnce(End)> OnEnd<F> {
    fn call(mut self, end: End) {
        if let Some(f) = self.0.take() {
            f(end);
        }
    }
}

impl<F: FnOnce(End)> Drop for OnEnd<F> {
    fn drop(&mut self) {
        if let Some(f) = self.0.take() {
            f(End::ReaderGone);
        }
    }
}

/// Copies `source` into `tx` until it ends, fails, or the reader stalls.
async fn copy<F: FnOnce(End)>(
    mut source: ByteStream,
    tx: mpsc::Sender<io::Result<Bytes>>,
    idle: Duration,
    on_end: OnEnd<F>,
    cut: Arc<AtomicBool>,
    what: &'static str,
) {
    let end = loop {
        let item = tokio::select! {
            biased;
            () = tx.closed() => break End::ReaderGone,
            item = source.next() => item,
        };
        let Some(item) = item else {
            break End::Complete;
        };
        let failed = item.as_ref().err().map(ToString::to_string);
        match tokio::time::timeout(idle, tx.send(item)).await {
            Ok(Ok(())) => {
                if let Some(e) = failed {
                    break End::Failed(e);
                }
            }
            Ok(Err(_)) => break End::ReaderGone,
            Err(_) => {
                cut.store(true, Ordering::Release);
                tracing::info!(
                    idle_secs = idle.as_secs(),
                    "{what} stopped reading: body cut"
                );
                break End::Cut;
            }
        }
    };
    drop(source);
    on_end.call(end);
}

/// The reader's end of a [`pump`].
struct Pumped {
    rx: mpsc::Receiver<io::Result<Bytes>>,
    cut: Arc<AtomicBool>,
    idle: Duration,
    what: &'static str,
    task: JoinHandle<()>,
    done: bool,
}

impl Stream for Pumped {
    type Item = io::Result<Bytes>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.done {
            return Poll::Ready(None);
        }
        match self.rx.poll_recv(cx) {
            Poll::Ready(None) => {
                self.done = true;
                if self.cut.load(Ordering::Acquire) {
                    let why = format!(
                        "{} took nothing for {} s: the body was cut",
                        self.what,
                        self.idle.as_secs()
                    );
                    return Poll::Ready(Some(Err(io::Error::new(io::ErrorKind::TimedOut, why))));
                }
                Poll::Ready(None)
            }
            other => other,
        }
    }
}

impl Drop for Pumped {
    fn drop(&mut self) {
        self.task.abort();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::TryStreamExt;

    fn chunks(n: usize) -> ByteStream {
        futures::stream::iter((0..n).map(|i| Ok(Bytes::from(vec![i as u8; 10])))).boxed()
    }

    /// An `on_end` that keeps what it heard.
    fn heard() -> (
        Arc<std::sync::Mutex<Option<End>>>,
        impl FnOnce(End) + Send + 'static,
    ) {
        let seen = Arc::new(std::sync::Mutex::new(None));
        let keep = seen.clone();
        (seen, move |end| *keep.lock().unwrap() = Some(end))
    }

    #[tokio::test]
    async fn passes_every_chunk_in_order_and_ends() {
        let (seen, on_end) = heard();
        let all: Vec<Bytes> = pump(chunks(20), Duration::from_secs(1), on_end, "test")
            .try_collect()
            .await
            .unwrap();
        assert_eq!(all.len(), 20);
        assert!(all.iter().enumerate().all(|(i, c)| c[0] == i as u8));
        assert_eq!(*seen.lock().unwrap(), Some(End::Complete));
    }

    #[tokio::test]
    async fn a_reader_that_stops_is_cut_and_told() {
        let (seen, on_end) = heard();
        let endless = futures::stream::repeat_with(|| Ok(Bytes::from_static(b"x"))).boxed();
        let mut body = pump(endless, Duration::from_millis(50), on_end, "test");
        assert!(body.next().await.unwrap().is_ok());
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(*seen.lock().unwrap(), Some(End::Cut), "told at the cut");
        // What was buffered, then the error.
        let mut seen = 0;
        let err = loop {
            match body.next().await {
                Some(Ok(_)) => seen += 1,
                Some(Err(e)) => break e,
                None => panic!("a cut body must not end as if complete"),
            }
        };
        assert!(seen <= DEPTH, "{seen}");
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
        assert!(body.next().await.is_none());
    }

    #[tokio::test]
    async fn dropping_the_reader_ends_the_task_and_tells() {
        let (seen, on_end) = heard();
        let pending = futures::stream::pending().boxed();
        let body = pump(pending, Duration::from_secs(60), on_end, "test");
        tokio::task::yield_now().await;
        drop(body);
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert_eq!(*seen.lock().unwrap(), Some(End::ReaderGone));
    }

    #[tokio::test]
    async fn a_failing_source_fails_the_body() {
        let failing = futures::stream::iter([
            Ok(Bytes::from_static(b"a")),
            Err(io::Error::other("guest trapped")),
        ])
        .boxed();
        let (seen, on_end) = heard();
        let err = pump(failing, Duration::from_secs(1), on_end, "test")
            .try_collect::<Vec<Bytes>>()
            .await
            .unwrap_err();
        assert_eq!(err.to_string(), "guest trapped");
        let told = seen.lock().unwrap().clone();
        assert_eq!(told, Some(End::Failed("guest trapped".into())));
    }
}
