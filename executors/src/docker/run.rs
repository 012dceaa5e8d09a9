//! One container's run: attach, start, feed stdin, capture the demultiplexed output
//! under its caps, wait for the exit code, and kill at the deadline.
//!
//! A container running the agent ends its streams with the job's end marks
//! ([`ends`](super::ends)): a zero exit status read there is final at once; any other
//! status is confirmed with the engine as before (an OOM kill is only known there).

use std::pin::pin;
use std::time::Duration;

use bollard::Docker;
use bollard::container::{AttachContainerResults, LogOutput};
use bollard::errors::Error as EngineError;
use bollard::query_parameters::AttachContainerOptionsBuilder;
use faas_runtime::ports::{ExecutionRequest, RawOutcome, Termination};
use faas_runtime::{Error, Result};
use futures::StreamExt;
use tokio::io::AsyncWriteExt;
use tokio::time::{Instant, timeout_at};

use super::capture::Output;
use super::ends::{EndMark, Ends};
use super::errors;

/// How a run ended, and whether its container must go before the result is returned.
#[derive(Debug)]
pub(crate) struct Ran {
    /// How the guest stopped.
    pub(crate) termination: Termination,
    /// What it wrote.
    pub(crate) output: Output,
    /// The container was killed (timeout, flood): remove it before answering.
    pub(crate) killed: bool,
}

impl Ran {
    /// The report the runtime classifies.
    pub(crate) fn into_outcome(self) -> RawOutcome {
        let (stdout, stderr) = (self.output.stdout, self.output.stderr);
        RawOutcome {
            termination: self.termination,
            stdout_overflow: stdout.overflowed(),
            stderr_overflow: stderr.overflowed(),
            stdout: stdout.into_bytes(),
            stderr: stderr.into_bytes(),
        }
    }
}

/// How the output pump stopped.
enum Pumped {
    /// Both streams closed: the guest exited (or closed them).
    Eof,
    /// The agent's end marks were read with a zero status: the program succeeded.
    Succeeded,
    /// A stream went far past its cap.
    FarOver,
    /// The connection to the engine broke.
    Broken(EngineError),
}

/// Runs the created container `id` to its end under the request's limits, feeding
/// it `stdin` (INPUT, or the agent's job with its end `mark`); it is killed at
/// `deadline` (the execution's budget, which the pull already used from).
pub(crate) async fn run(
    docker: &Docker,
    id: &str,
    stdin: &[u8],
    mark: Option<&EndMark>,
    request: &ExecutionRequest,
    deadline: Instant,
) -> Result<Ran> {
    let attach = attach(docker, id).await?;
    if let Err(err) = docker.start_container(id, None).await {
        let termination = start_failure(err)?;
        return Ok(Ran {
            termination,
            output: Output::new(request.stdout_cap, request.stderr_cap),
            killed: false,
        });
    }
    finish(docker, id, attach, stdin, mark, request, deadline).await
}

/// Attaches to the created container `id` (stdin, stdout, stderr) before it starts.
pub(crate) async fn attach(docker: &Docker, id: &str) -> Result<AttachContainerResults> {
    let options = AttachContainerOptionsBuilder::default()
        .stdin(true)
        .stdout(true)
        .stderr(true)
        .stream(true)
        .build();
    docker
        .attach_container(id, Some(options))
        .await
        .map_err(|err| errors::to_runtime("attaching to the container", err))
}

/// The end of a run, shared by cold and warm containers: feeds `stdin` (then EOF)
/// to the started container `id` through `attach`, captures its output under the
/// request's caps (up to the agent's end `mark`, if it runs the agent), waits for its
/// exit, and gives up at `deadline`.
pub(crate) async fn finish(
    docker: &Docker,
    id: &str,
    attach: AttachContainerResults,
    stdin: &[u8],
    mark: Option<&EndMark>,
    request: &ExecutionRequest,
    deadline: Instant,
) -> Result<Ran> {
    let mut output = Output::new(request.stdout_cap, request.stderr_cap);
    let mut ends = mark.map(Ends::new);
    let pumped = timeout_at(deadline, pump(attach, stdin, &mut output, ends.as_mut())).await;
    let termination = match pumped {
        Err(_) => Termination::TimedOut,
        Ok(Pumped::Succeeded) => Termination::Exited(0),
        Ok(Pumped::FarOver) => {
            Termination::Trap("output limit exceeded: the container was killed".to_string())
        }
        Ok(Pumped::Broken(err)) => return Err(errors::to_runtime("reading the output", err)),
        Ok(Pumped::Eof) => match timeout_at(deadline, wait_exit(docker, id)).await {
            Err(_) => Termination::TimedOut,
            Ok(code) => exited(docker, id, code?).await?,
        },
    };
    let killed = !matches!(
        termination,
        Termination::Exited(_) | Termination::MemoryExceeded
    );
    Ok(Ran {
        termination,
        output,
        killed,
    })
}

/// Feeds stdin (then EOF) while capturing stdout and stderr, until both close or
/// the end marks give a zero status.
async fn pump(
    attach: AttachContainerResults,
    input: &[u8],
    out: &mut Output,
    mut ends: Option<&mut Ends>,
) -> Pumped {
    let AttachContainerResults {
        output: mut stream,
        input: mut writer,
    } = attach;
    let mut feed = pin!(async move {
        // A guest that exits without reading breaks the pipe: not an error.
        let _ = writer.write_all(input).await;
        let _ = writer.shutdown().await;
    });
    let mut fed = false;
    loop {
        tokio::select! {
            item = stream.next() => match (item, ends.as_deref_mut()) {
                (None, ends) => {
                    if let Some(ends) = ends {
                        ends.flush(out);
                    }
                    return Pumped::Eof;
                }
                (Some(Ok(LogOutput::StdOut { message })), Some(ends)) => ends.stdout(&message, out),
                (Some(Ok(LogOutput::StdErr { message })), Some(ends)) => ends.stderr(&message, out),
                (Some(Ok(LogOutput::StdOut { message })), None) => out.stdout.push(&message),
                (Some(Ok(LogOutput::StdErr { message })), None) => out.stderr.push(&message),
                (Some(Ok(_)), _) => {}
                (Some(Err(err)), _) => return Pumped::Broken(err),
            },
            () = &mut feed, if !fed => fed = true,
        }
        if out.far_over() {
            return Pumped::FarOver;
        }
        if ends.as_ref().and_then(|ends| ends.code()) == Some(0) {
            return Pumped::Succeeded;
        }
    }
}

/// The exit code, once the container stopped.
async fn wait_exit(docker: &Docker, id: &str) -> Result<i64> {
    let mut waits = docker.wait_container(id, None);
    match waits.next().await {
        Some(Ok(status)) => Ok(status.status_code),
        Some(Err(EngineError::DockerContainerWaitError { code, .. })) => Ok(code),
        Some(Err(err)) => Err(errors::to_runtime("waiting for the container", err)),
        None => Err(Error::Unavailable(
            "waiting for the container: the engine closed the wait without a status".to_string(),
        )),
    }
}

/// Exit status of a process killed by SIGKILL, as the OOM killer does.
const SIGKILL_EXIT: i64 = 128 + 9;
/// The engine learns of an OOM kill from an event that may land just after the exit:
/// a SIGKILL exit is re-inspected this many times, this far apart (up to 1 s: a loaded
/// engine was seen to flag it after the 300 ms this used to allow).
const OOM_SETTLE: (u32, Duration) = (20, Duration::from_millis(50));

/// An exit, unless the kernel's OOM killer caused it.
///
/// The engine flags OOM kills only for non-zero exits: a guest whose child was killed
/// but which exits 0 is reported as exited.
///
/// A non-zero exit counts only once the engine confirms it (the inspection): an engine
/// that is stopping (a restart) first stops answering, then stops its containers itself
/// (SIGTERM, then SIGKILL), and the code of such an exit (143, 137) cannot be told from
/// the guest's own failure. The inspection then fails: the result is unknown, so the
/// attempt is an infrastructure fault (`Unavailable`) and runs again, instead of a
/// guest failure recorded for good. A zero exit is the guest's own (it ran to its end).
async fn exited(docker: &Docker, id: &str, code: i64) -> Result<Termination> {
    let tries = match code {
        0 => 0,
        SIGKILL_EXIT => OOM_SETTLE.0,
        _ => 1,
    };
    for attempt in 0..tries {
        if attempt > 0 {
            tokio::time::sleep(OOM_SETTLE.1).await;
        }
        if oom_killed(docker, id).await? {
            return Ok(Termination::MemoryExceeded);
        }
    }
    Ok(Termination::Exited(i32::try_from(code).unwrap_or(i32::MAX)))
}

async fn oom_killed(docker: &Docker, id: &str) -> Result<bool> {
    let inspected = docker
        .inspect_container(id, None)
        .await
        .map_err(|err| errors::to_runtime("inspecting the container", err))?;
    Ok(inspected
        .state
        .and_then(|state| state.oom_killed)
        .unwrap_or(false))
}

/// A refused start (missing executable, unknown user...) is the image's fault; a lost
/// or failing engine is not.
fn start_failure(err: EngineError) -> Result<Termination> {
    match errors::answer(err) {
        errors::Answer::Refused { status, message }
            if status < 500 || message.contains("OCI runtime") =>
        {
            Ok(Termination::Trap(format!(
                "container failed to start: {message}"
            )))
        }
        other => Err(errors::from_answer("starting the container", other)),
    }
}
