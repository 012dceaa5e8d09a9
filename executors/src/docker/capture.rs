//! Capped capture of a container's stdout and stderr.
//!
//! Bytes past the cap are counted and dropped; once a stream is *far* over its cap the
//! run loop kills the container instead of draining a flood until the timeout.

/// Extra bytes tolerated past a cap before the container is killed.
const FAR_OVER_SLACK: usize = 1024 * 1024;

/// One capped stream.
#[derive(Debug)]
pub(crate) struct Capped {
    buf: Vec<u8>,
    cap: usize,
    seen: usize,
}

impl Capped {
    /// An empty capture holding at most `cap` bytes.
    pub(crate) fn new(cap: usize) -> Self {
        Capped {
            buf: Vec::with_capacity(cap.min(64 * 1024)),
            cap,
            seen: 0,
        }
    }

    /// Appends what still fits and counts the rest.
    pub(crate) fn push(&mut self, chunk: &[u8]) {
        let room = self.cap.saturating_sub(self.buf.len());
        self.buf.extend_from_slice(&chunk[..chunk.len().min(room)]);
        self.seen = self.seen.saturating_add(chunk.len());
    }

    /// More than `cap` bytes were written.
    pub(crate) fn overflowed(&self) -> bool {
        self.seen > self.cap
    }

    /// So far past the cap that reading on is pointless.
    pub(crate) fn far_over(&self) -> bool {
        self.seen > self.cap.saturating_mul(2).saturating_add(FAR_OVER_SLACK)
    }

    /// The captured bytes (at most the cap).
    pub(crate) fn into_bytes(self) -> Vec<u8> {
        self.buf
    }
}

/// stdout and stderr of one execution.
#[derive(Debug)]
pub(crate) struct Output {
    /// Captured stdout.
    pub(crate) stdout: Capped,
    /// Captured stderr.
    pub(crate) stderr: Capped,
}

impl Output {
    /// Empty captures with the request's caps.
    pub(crate) fn new(stdout_cap: usize, stderr_cap: usize) -> Self {
        Output {
            stdout: Capped::new(stdout_cap),
            stderr: Capped::new(stderr_cap),
        }
    }

    /// Either stream is far over its cap.
    pub(crate) fn far_over(&self) -> bool {
        self.stdout.far_over() || self.stderr.far_over()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_what_fits_and_flags_the_rest() {
        let mut c = Capped::new(4);
        c.push(b"ab");
        assert!(!c.overflowed());
        c.push(b"cd");
        assert!(!c.overflowed());
        c.push(b"e");
        assert!(c.overflowed());
        assert!(!c.far_over());
        c.push(&vec![0; FAR_OVER_SLACK + 8]);
        assert!(c.far_over());
        assert_eq!(c.into_bytes(), b"abcd");
    }

    #[test]
    fn zero_cap_keeps_nothing() {
        let mut c = Capped::new(0);
        c.push(b"x");
        assert!(c.overflowed());
        assert!(c.into_bytes().is_empty());
    }
}
