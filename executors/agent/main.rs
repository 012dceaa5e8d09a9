//! `faas-agent`: the entrypoint of a warm function container (built by
//! `executors/build.rs` as a static binary, std only, no crates).
//!
//! It waits on stdin for exactly one job, runs it, and exits with its status:
//!
//! ```text
//! u32 (big endian) length of the header, header, stdin bytes
//! header = argc, then argc strings; envc, then envc (name, value) pairs;
//!          u64 length of the stdin bytes that follow
//! strings = u32 (big endian) length, then the bytes
//! ```
//!
//! The child gets the agent's own environment (what the engine gave the container:
//! the image's `ENV`, `PATH`, `HOSTNAME`, `HOME`, never a secret) plus the job's
//! variables, the agent's stdout and stderr as its own, and the stdin bytes then EOF.
//! The agent exits with the child's code (a signal `n` gives `128 + n`). EOF before
//! a complete job (the executor went away) exits 0 without running anything. The
//! agent never runs a second job: the container ends with it.

use std::io::{Read, Write};
use std::os::unix::process::ExitStatusExt;
use std::process::{Command, ExitCode, Stdio};

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
    stdin_len: u64,
}

fn main() -> ExitCode {
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
    if let Some(mut pipe) = child.stdin.take() {
        // A child that exits without reading breaks the pipe: not an error.
        let _ = std::io::copy(&mut stdin.take(job.stdin_len), &mut pipe);
        drop(pipe);
    }
    match child.wait() {
        Ok(status) => match (status.code(), status.signal()) {
            (Some(code), _) => ExitCode::from((code & 0xff) as u8),
            (None, Some(signal)) => ExitCode::from((128 + (signal & 0x7f)) as u8),
            (None, None) => ExitCode::from(CANNOT_RUN),
        },
        Err(err) => fail(CANNOT_RUN, &format!("waiting for the program: {err}")),
    }
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
    let (len, rest) = buf.split_first_chunk::<8>()?;
    rest.is_empty().then_some(Job {
        argv,
        env,
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
