//! `faas-agent`: the entrypoint of a warm function container (built by
//! `executors/build.rs` as a static binary, std only, no crates).
//!
//! It waits on stdin for exactly one job, runs it, and exits with its status:
//!
//! ```text
//! u32 (big endian) length of the header, header, stdin bytes
//! header = argc, then argc strings; envc, then envc (name, value) pairs;
//!          the end mark (a string); u64 length of the stdin bytes that follow
//! strings = u32 (big endian) length, then the bytes
//! ```
//!
//! The child gets the agent's own environment (what the engine gave the container:
//! the image's `ENV`, `PATH`, `HOSTNAME`, `HOME`, never a secret) plus the job's
//! variables, the agent's stdout and stderr as its own, and the stdin bytes then EOF.
//!
//! Once the child has exited, the agent writes the end mark to stderr, then the end
//! mark and the exit status as three digits to stdout: everything the child wrote is
//! before them on each stream, so the executor has the whole result without waiting
//! for the engine to notice the container's end. The mark holds a nonce the executor
//! chose for this job, never given to the child, and the agent is not dumpable (the
//! child, with the same uid, cannot read it from `/proc/1`): a guest cannot forge it.
//!
//! The agent exits with the child's code (a signal `n` gives `128 + n`). EOF before
//! a complete job (the executor went away) exits 0 without running anything. The
//! agent never runs a second job: the container ends with it.

use std::io::{Read, Write};
use std::os::unix::process::ExitStatusExt;
use std::process::{Command, ExitCode, Stdio};
use std::sync::atomic::{AtomicI32, Ordering};

/// Largest header accepted (argv and env are far smaller: argv input is <= 64 KiB).
const MAX_HEADER: u32 = 16 << 20;

/// Exit status when the program cannot be started (as shells do).
const CANNOT_RUN: u8 = 127;

/// Exit status of a malformed job.
const BAD_JOB: u8 = 126;

/// Prefix of the agent's own messages on stderr.
const PREFIX: &str = "faas-agent:";

struct Job {
    argv: Vec<String>,
    env: Vec<(String, String)>,
    end_mark: String,
    stdin_len: u64,
}

/// `prctl(2)` option that makes a process non-dumpable.
const PR_SET_DUMPABLE: i32 = 4;

extern "C" {
    fn prctl(option: i32, arg2: u64, arg3: u64, arg4: u64, arg5: u64) -> i32;
    fn signal(signum: i32, handler: usize) -> usize;
    fn kill(pid: i32, sig: i32) -> i32;
}

/// Signals passed on to the program: SIGHUP, SIGINT, SIGQUIT, SIGUSR1, SIGUSR2, SIGTERM.
/// The agent is the container's PID 1, which the kernel shields from signals it does
/// not handle; without this, `docker stop` (or an engine that stops) would never reach
/// the program, as it does in a container without the agent.
const FORWARDED: [i32; 6] = [1, 2, 3, 10, 12, 15];

/// The program's pid once it runs (0 before).
static CHILD: AtomicI32 = AtomicI32::new(0);

/// Passes `sig` on to the program (async-signal-safe: a load and `kill(2)`).
extern "C" fn forward(sig: i32) {
    let pid = CHILD.load(Ordering::SeqCst);
    if pid > 0 {
        // SAFETY: kill(2) with a pid and a signal number; no memory is touched.
        unsafe {
            kill(pid, sig);
        }
    }
}

fn main() -> ExitCode {
    // Not dumpable: a process of the same uid cannot read its memory or its
    // descriptors under /proc/1, where the job's end mark would be.
    // SAFETY: PR_SET_DUMPABLE takes one integer argument and touches no memory.
    unsafe {
        prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
    }
    for sig in FORWARDED {
        // SAFETY: installs `forward`, which only loads an atomic and calls kill(2);
        // the program gets default dispositions back at its exec.
        unsafe {
            signal(sig, forward as extern "C" fn(i32) as usize);
        }
    }
    let mut stdin = std::io::stdin().lock();
    let mut len = [0u8; 4];
    if stdin.read_exact(&mut len).is_err() {
        return ExitCode::SUCCESS;
    }
    let len = u32::from_be_bytes(len);
    if len > MAX_HEADER {
        return fail(BAD_JOB, "the job header is too large");
    }
    let mut header = vec![0u8; len as usize];
    if stdin.read_exact(&mut header).is_err() {
        return ExitCode::SUCCESS;
    }
    let job = match parse(&header) {
        Some(job) if !job.argv.is_empty() => job,
        _ => return fail(BAD_JOB, "malformed job"),
    };
    run(job, stdin)
}

fn run(job: Job, stdin: std::io::StdinLock<'static>) -> ExitCode {
    let mut command = Command::new(&job.argv[0]);
    command
        .args(&job.argv[1..])
        .envs(job.env)
        .stdin(Stdio::piped())
        .stdout(Stdio::inherit())
        .stderr(Stdio::inherit());
    let mut child = match command.spawn() {
        Ok(child) => child,
        Err(err) => {
            let message = format!("cannot run {:?}: {err}", job.argv[0]);
            return fail(CANNOT_RUN, &message);
        }
    };
    CHILD.store(child.id() as i32, Ordering::SeqCst);
    if let Some(mut pipe) = child.stdin.take() {
        // A child that exits without reading breaks the pipe: not an error.
        let _ = std::io::copy(&mut stdin.take(job.stdin_len), &mut pipe);
        drop(pipe);
    }
    let waited = child.wait();
    // Reaped: its pid may be reused, so nothing is passed on any more.
    CHILD.store(0, Ordering::SeqCst);
    let code = match waited {
        Ok(status) => match (status.code(), status.signal()) {
            (Some(code), _) => (code & 0xff) as u8,
            (None, Some(signal)) => (128 + (signal & 0x7f)) as u8,
            (None, None) => CANNOT_RUN,
        },
        Err(err) => return fail(CANNOT_RUN, &format!("waiting for the program: {err}")),
    };
    end(&job.end_mark, code);
    ExitCode::from(code)
}

/// Writes the end mark on stderr, then with `code` on stdout (the executor's signal
/// that the result is complete).
fn end(mark: &str, code: u8) {
    let mut stderr = std::io::stderr().lock();
    let _ = stderr.write_all(mark.as_bytes()).and_then(|()| stderr.flush());
    let mut stdout = std::io::stdout().lock();
    let _ = stdout
        .write_all(format!("{mark}{code:03}").as_bytes())
        .and_then(|()| stdout.flush());
}

fn fail(code: u8, message: &str) -> ExitCode {
    let _ = writeln!(std::io::stderr(), "{PREFIX} {message}");
    ExitCode::from(code)
}

/// Reads the header; `None` when malformed.
fn parse(mut buf: &[u8]) -> Option<Job> {
    let argc = take_u32(&mut buf)?;
    let mut argv = Vec::new();
    for _ in 0..argc {
        argv.push(take_str(&mut buf)?);
    }
    let envc = take_u32(&mut buf)?;
    let mut env = Vec::new();
    for _ in 0..envc {
        let name = take_str(&mut buf)?;
        env.push((name, take_str(&mut buf)?));
    }
    let end_mark = take_str(&mut buf)?;
    let (len, rest) = buf.split_first_chunk::<8>()?;
    rest.is_empty().then_some(Job {
        argv,
        env,
        end_mark,
        stdin_len: u64::from_be_bytes(*len),
    })
}

fn take_u32(buf: &mut &[u8]) -> Option<u32> {
    let (n, rest) = buf.split_first_chunk::<4>()?;
    *buf = rest;
    Some(u32::from_be_bytes(*n))
}

fn take_str(buf: &mut &[u8]) -> Option<String> {
    let len = take_u32(buf)? as usize;
    if buf.len() < len {
        return None;
    }
    let (text, rest) = buf.split_at(len);
    *buf = rest;
    String::from_utf8(text.to_vec()).ok()
}
