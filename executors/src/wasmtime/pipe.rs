//! A capped in-memory stdout/stderr: keeps what fits under the cap, records an
//! overflow, and traps the guest on the first byte past the cap (a guest spewing
//! 100 MB stops at the cap instead of burning its whole timeout).

use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};

use bytes::Bytes;
use tokio::io::AsyncWrite;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamError};

/// Largest write permit handed to the guest at once.
const PERMIT: usize = 1 << 20;

/// The trap raised when a guest writes past a cap.
#[derive(Debug, Clone)]
pub(crate) struct OutputLimit {
    /// `stdout` or `stderr`.
    pub(crate) stream: &'static str,
    /// The cap in bytes.
    pub(crate) cap: usize,
}

impl std::fmt::Display for OutputLimit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} limit of {} bytes exceeded", self.stream, self.cap)
    }
}

impl std::error::Error for OutputLimit {}

#[derive(Debug, Default)]
struct Captured {
    bytes: Vec<u8>,
    overflow: bool,
}

/// One captured output stream; clones share the same buffer.
#[derive(Debug, Clone)]
pub(crate) struct CappedPipe {
    inner: Arc<Mutex<Captured>>,
    limit: OutputLimit,
}

impl CappedPipe {
    /// An empty pipe named `stream` keeping at most `cap` bytes.
    pub(crate) fn new(stream: &'static str, cap: usize) -> Self {
        CappedPipe {
            inner: Arc::default(),
            limit: OutputLimit { stream, cap },
        }
    }

    fn lock(&self) -> MutexGuard<'_, Captured> {
        // A panic while holding this lock cannot leave the buffer inconsistent.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Keeps what fits; `false` when some bytes did not.
    fn push(&self, data: &[u8]) -> bool {
        let mut c = self.lock();
        let room = self.limit.cap.saturating_sub(c.bytes.len());
        let fits = data.len() <= room;
        c.bytes.extend_from_slice(&data[..data.len().min(room)]);
        c.overflow |= !fits;
        fits
    }

    /// Writes `data` as the guest's output (a typed component's result).
    pub(crate) fn put(&self, data: &[u8]) {
        self.push(data);
    }

    /// What was captured, and whether more was written than the cap.
    pub(crate) fn take(&self) -> (Vec<u8>, bool) {
        let mut c = self.lock();
        (std::mem::take(&mut c.bytes), c.overflow)
    }

    /// True once more was written than the cap.
    pub(crate) fn overflowed(&self) -> bool {
        self.lock().overflow
    }

    /// The limit this pipe enforces.
    pub(crate) fn limit(&self) -> &OutputLimit {
        &self.limit
    }

    fn trap(&self) -> StreamError {
        StreamError::Trap(wasmtime::Error::new(self.limit.clone()))
    }
}

impl IsTerminal for CappedPipe {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for CappedPipe {
    fn async_stream(&self) -> Box<dyn AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }

    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(self.clone())
    }
}

#[async_trait::async_trait]
impl OutputStream for CappedPipe {
    fn write(&mut self, bytes: Bytes) -> Result<(), StreamError> {
        if self.push(&bytes) {
            Ok(())
        } else {
            Err(self.trap())
        }
    }

    fn flush(&mut self) -> Result<(), StreamError> {
        Ok(())
    }

    fn check_write(&mut self) -> Result<usize, StreamError> {
        if self.overflowed() {
            Err(self.trap())
        } else {
            Ok(PERMIT)
        }
    }
}

#[async_trait::async_trait]
impl Pollable for CappedPipe {
    async fn ready(&mut self) {}
}

impl AsyncWrite for CappedPipe {
    fn poll_write(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        if self.push(buf) {
            Poll::Ready(Ok(buf.len()))
        } else {
            Poll::Ready(Err(std::io::Error::other(self.limit.clone())))
        }
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_what_fits_and_flags_the_rest() {
        let mut p = CappedPipe::new("stdout", 4);
        assert!(OutputStream::write(&mut p, Bytes::from_static(b"ab")).is_ok());
        assert!(OutputStream::write(&mut p, Bytes::from_static(b"cdef")).is_err());
        assert!(p.check_write().is_err());
        assert_eq!(p.take(), (b"abcd".to_vec(), true));
    }

    #[test]
    fn exactly_the_cap_is_no_overflow() {
        let mut p = CappedPipe::new("stderr", 4);
        assert!(OutputStream::write(&mut p, Bytes::from_static(b"abcd")).is_ok());
        assert_eq!(p.take(), (b"abcd".to_vec(), false));
    }
}
