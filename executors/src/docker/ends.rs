//! The agent's end marks: once its program has exited, the agent writes a mark (a
//! nonce chosen per job) at the end of stderr, and the mark plus the exit status (three
//! digits) at the end of stdout. Everything the program wrote comes before them, so
//! once both marks are read the result is complete: no need to wait for the engine to
//! notice the container's end (tens of milliseconds on a busy engine).
//!
//! [`Ends`] sits between the attach stream and the capped captures: it passes the
//! program's bytes on, holding back what may be the start of a mark, and drops the
//! marks and anything written after them (a background process the container's end
//! kills anyway).

use super::capture::{Capped, Output};

/// First byte of every mark (rare in output, so the search is cheap).
const LEAD: u8 = 0;
/// Digits of the exit status after the stdout mark.
const DIGITS: usize = 3;

/// The end mark of one job: unguessable by the guest.
#[derive(Debug, Clone)]
pub(crate) struct EndMark(Vec<u8>);

impl EndMark {
    /// A fresh mark (122 random bits).
    pub(crate) fn new() -> Self {
        let nonce = uuid::Uuid::new_v4().simple().to_string();
        let mut mark = vec![LEAD];
        mark.extend_from_slice(b"faas-agent-end:");
        mark.extend_from_slice(nonce.as_bytes());
        EndMark(mark)
    }

    /// The mark's text, for the job header.
    pub(crate) fn as_str(&self) -> &str {
        std::str::from_utf8(&self.0).unwrap_or_default()
    }
}

/// The ends of both streams of one run.
#[derive(Debug)]
pub(crate) struct Ends {
    stdout: Tail,
    stderr: Tail,
}

impl Ends {
    /// Watches for `mark` on both streams.
    pub(crate) fn new(mark: &EndMark) -> Self {
        Ends {
            stdout: Tail::new(mark.0.clone(), DIGITS),
            stderr: Tail::new(mark.0.clone(), 0),
        }
    }

    /// Passes a stdout chunk on to `out`.
    pub(crate) fn stdout(&mut self, chunk: &[u8], out: &mut Output) {
        self.stdout.feed(chunk, &mut out.stdout);
    }

    /// Passes a stderr chunk on to `out`.
    pub(crate) fn stderr(&mut self, chunk: &[u8], out: &mut Output) {
        self.stderr.feed(chunk, &mut out.stderr);
    }

    /// The program's exit status once both marks were read.
    pub(crate) fn code(&self) -> Option<i32> {
        self.stderr.code.and(self.stdout.code)
    }

    /// At the streams' end: what was held back was the program's.
    pub(crate) fn flush(&mut self, out: &mut Output) {
        self.stdout.flush(&mut out.stdout);
        self.stderr.flush(&mut out.stderr);
    }
}

/// One stream's watch for its mark.
#[derive(Debug)]
struct Tail {
    mark: Vec<u8>,
    digits: usize,
    /// Bytes not passed on yet (at most a mark's length once a chunk is handled).
    held: Vec<u8>,
    /// Set once the mark was read (the status, or 0 for a mark without digits).
    code: Option<i32>,
}

impl Tail {
    fn new(mark: Vec<u8>, digits: usize) -> Self {
        Tail {
            mark,
            digits,
            held: Vec::new(),
            code: None,
        }
    }

    fn len(&self) -> usize {
        self.mark.len() + self.digits
    }

    fn feed(&mut self, chunk: &[u8], out: &mut Capped) {
        if self.code.is_some() {
            return;
        }
        self.held.extend_from_slice(chunk);
        if let Some((at, code)) = self.find() {
            out.push(&self.held[..at]);
            self.code = Some(code);
            self.held = Vec::new();
            return;
        }
        // Keep what may be a mark's beginning: from the last LEAD byte among the
        // last `len - 1` bytes.
        let window = self.held.len().saturating_sub(self.len() - 1);
        let keep = self.held[window..]
            .iter()
            .position(|&b| b == LEAD)
            .map_or(self.held.len(), |i| window + i);
        out.push(&self.held[..keep]);
        self.held.drain(..keep);
    }

    /// The first whole mark (with its digits) in `held`: its offset and code.
    fn find(&self) -> Option<(usize, i32)> {
        let len = self.len();
        let mut from = 0;
        while let Some(i) = self.held[from..].iter().position(|&b| b == LEAD) {
            let at = from + i;
            let candidate = self.held.get(at..at + len)?;
            if let Some(code) = self.parse(candidate) {
                return Some((at, code));
            }
            from = at + 1;
        }
        None
    }

    fn parse(&self, candidate: &[u8]) -> Option<i32> {
        let digits = candidate.strip_prefix(self.mark.as_slice())?;
        digits.iter().try_fold(0i32, |n, &d| {
            d.is_ascii_digit().then(|| n * 10 + i32::from(d - b'0'))
        })
    }

    fn flush(&mut self, out: &mut Capped) {
        if self.code.is_none() {
            out.push(&self.held);
            self.held.clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(mark: &EndMark, out_chunks: &[&[u8]], err_chunks: &[&[u8]]) -> (Output, Ends) {
        let mut out = Output::new(1 << 20, 1 << 20);
        let mut ends = Ends::new(mark);
        for c in out_chunks {
            ends.stdout(c, &mut out);
        }
        for c in err_chunks {
            ends.stderr(c, &mut out);
        }
        (out, ends)
    }

    #[test]
    fn marks_split_anywhere_end_the_streams() {
        let mark = EndMark::new();
        let stdout = [
            b"{\"a\":1}\n\0 not a mark".as_slice(),
            mark.0.as_slice(),
            b"042",
        ]
        .concat();
        let stderr = [b"log line\n".as_slice(), mark.0.as_slice()].concat();
        for cut in 0..stdout.len() {
            let (out_a, out_b) = stdout.split_at(cut);
            let (err_a, err_b) = stderr.split_at(cut.min(stderr.len()));
            let (mut out, mut ends) = run(&mark, &[out_a, out_b], &[err_a, err_b]);
            assert_eq!(ends.code(), Some(42), "cut at {cut}");
            ends.flush(&mut out);
            assert_eq!(out.stdout.into_bytes(), b"{\"a\":1}\n\0 not a mark");
            assert_eq!(out.stderr.into_bytes(), b"log line\n");
        }
    }

    #[test]
    fn bytes_after_a_mark_are_dropped() {
        let mark = EndMark::new();
        let stdout = [b"ok".as_slice(), mark.0.as_slice(), b"000late"].concat();
        let stderr = [mark.0.as_slice(), b"late"].concat();
        let (mut out, mut ends) = run(&mark, &[&stdout, b"more"], &[&stderr]);
        assert_eq!(ends.code(), Some(0));
        ends.flush(&mut out);
        assert_eq!(out.stdout.into_bytes(), b"ok");
        assert!(out.stderr.into_bytes().is_empty());
    }

    #[test]
    fn another_jobs_mark_or_half_a_mark_is_output() {
        let mark = EndMark::new();
        let forged = [EndMark::new().0.as_slice(), b"000"].concat();
        let half = &mark.0[..10];
        let (mut out, mut ends) = run(&mark, &[&forged, half], &[half]);
        assert_eq!(ends.code(), None);
        ends.flush(&mut out);
        assert_eq!(out.stdout.into_bytes(), [forged.as_slice(), half].concat());
        assert_eq!(out.stderr.into_bytes(), half);
    }

    #[test]
    fn one_mark_alone_is_not_the_end() {
        let mark = EndMark::new();
        let stdout = [mark.0.as_slice(), b"000"].concat();
        let (_, ends) = run(&mark, &[&stdout], &[b"still writing"]);
        assert_eq!(ends.code(), None);
    }
}
