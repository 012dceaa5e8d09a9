//! One delivery from lease to ack: claim the execution, run it, record the outcome.

use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use super::Worker;
use super::cancel;
use super::context::Prepared;
use super::defer::{Availability, unclaimed};
use super::guard::AttemptGuard;
use crate::metrics;
use crate::model::{Execution, ExecutionStatus, now};
use crate::outcome::{FinalFields, Limits, classify};
use std::sync::Arc;

use crate::ports::{Delivery, ExecutionRequest, Executor};
use crate::{Error, Result};

/// How long an execution this worker cannot run waits before another worker may
/// lease it.
const PASS_DELAY: Duration = Duration::from_secs(1);

/// The lease renewal of a claimed attempt; stops when dropped.
struct Renewal {
    task: tokio::task::JoinHandle<()>,
    /// Fires when another attempt owns the execution now.
    lost: CancellationToken,
}

impl Drop for Renewal {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// How a claimed attempt's run ended.
enum Ran {
    /// The executor answered.
    Finished(Result<crate::ports::RawOutcome>),
    /// Shutdown, or the lease went to another attempt.
    Stopped,
    /// The owner cancelled the execution: its record is already final.
    Cancelled,
}

/// What became of an attempt.
pub(super) enum Settled {
    /// Recorded a final state (or found one): ack.
    Done,
    /// An infrastructure fault: deliver again later.
    Retry(Error),
    /// Shutdown or lease lost: leave it to the queue.
    Abandoned,
    /// Another worker can run it and this one cannot: hand it back at once.
    Pass,
}

impl Worker {
    pub(super) async fn attempt(&self, delivery: Delivery, stop: CancellationToken) {
        let span = tracing::info_span!("execution", execution.id = %delivery.id, attempt = delivery.attempt, function.id = tracing::field::Empty, trace_id = tracing::field::Empty);
        // Joined to the submitter's trace before it is entered (an exporter cannot
        // re-parent a span that started).
        if let Some(parent) = std::str::from_utf8(&delivery.payload)
            .ok()
            .filter(|p| p.starts_with("00-"))
        {
            crate::trace_context::adopt(&span, parent);
        }
        async {
            let settled = match self.try_attempt(&delivery, &stop).await {
                Ok(s) => s,
                Err(e) => Settled::Retry(e),
            };
            self.settle(&delivery, settled).await;
        }
        .instrument(span)
        .await
    }

    async fn settle(&self, delivery: &Delivery, settled: Settled) {
        let result = match settled {
            Settled::Done => self.queue.ack(delivery).await,
            Settled::Retry(e) => {
                let delay = backoff(delivery.attempt);
                tracing::warn!(error = %e, retry_in_ms = delay.as_millis() as u64, "attempt failed; will retry");
                self.queue.nack(delivery, delay).await
            }
            Settled::Abandoned => self.queue.nack(delivery, Duration::ZERO).await,
            Settled::Pass => self.queue.nack(delivery, PASS_DELAY).await,
        };
        if let Err(e) = result {
            tracing::warn!(error = %e, "could not settle the delivery; the queue will redeliver it");
        }
    }

    async fn try_attempt(&self, d: &Delivery, stop: &CancellationToken) -> Result<Settled> {
        let Some((exec, rev)) = self.store.get_execution(&d.id, None).await? else {
            tracing::warn!("no record for queued execution; dropping the message");
            return Ok(Settled::Done);
        };
        let span = tracing::Span::current();
        span.record("function.id", exec.function_id.as_str());
        if let Some(trace_id) = exec.trace_id() {
            span.record("trace_id", tracing::field::display(trace_id));
        }

        if exec.status.is_final() {
            return Ok(Settled::Done);
        }
        if let Some(msg) = self.out_of_attempts(&exec) {
            let attempt = exec_attempt(&exec);
            return self.finish_with_error(exec, rev, attempt, &msg).await;
        }
        let owner = Some(exec.owner_id.as_str());
        let Some(function) = self.store.get_function(&exec.function_id, owner).await? else {
            let attempt = exec_attempt(&exec);
            let msg = "the function was deleted";
            return self.finish_with_error(exec, rev, attempt, msg).await;
        };
        // Every attempt runs the version recorded at submit (records older than
        // versions: the function's only one, its newest).
        let n = exec
            .function_version
            .unwrap_or(function.versions.latest_version);
        let Some(version) = self.store.get_version(&function, n).await? else {
            let attempt = exec_attempt(&exec);
            let msg = format!("version {n} of the function was deleted");
            return self.finish_with_error(exec, rev, attempt, &msg).await;
        };
        let function = version.apply(&function);
        let executor = match self.executor_for(function.runnable.kind()).await {
            Availability::Ready(e) => e,
            Availability::Elsewhere => return Ok(Settled::Pass),
            Availability::Unavailable(cause) => return self.defer(exec, rev, cause).await,
        };
        let before = exec.clone();
        let Some((exec, rev)) = self.claim(exec, rev).await? else {
            return Ok(Settled::Done);
        };
        // From here on the lease is renewed (staging a large object may take a
        // while) and the guard owns the grant and the staging directory.
        let renewal = self.renew(d.clone());
        let mut guard = AttemptGuard::new(self.store.clone());
        match self.prepare(&exec, function, &version, &mut guard).await {
            Ok(prepared) => {
                self.run_claimed(exec, rev, prepared, guard, renewal, executor, stop)
                    .await
            }
            Err(Error::Invalid(msg)) | Err(Error::NotFound(msg)) => {
                guard.release().await;
                let attempt = exec.attempt;
                self.finish_with_error(exec, rev, attempt, &msg).await
            }
            Err(e) => {
                guard.release().await;
                self.defer(unclaimed(exec, &before), rev, e.to_string())
                    .await
            }
        }
    }

    /// Why `exec` may not run again, once it has used every attempt.
    fn out_of_attempts(&self, exec: &Execution) -> Option<String> {
        (exec.attempt >= self.config.max_attempts).then(|| {
            let last = exec
                .error
                .as_deref()
                .unwrap_or("every attempt was interrupted");
            format!("gave up after {} attempts: {last}", exec.attempt)
        })
    }

    /// Marks the execution `running` as its next attempt; `None` if it became final.
    /// Attempts count runs that started: preparation failures and an unavailable
    /// executor are deferrals instead (see [`Worker::defer`]).
    async fn claim(&self, mut exec: Execution, rev: u64) -> Result<Option<(Execution, u64)>> {
        exec.status = ExecutionStatus::Running;
        exec.attempt += 1;
        exec.started_at = Some(now());
        match self.store.update_execution(&exec, rev).await {
            Ok(rev) => {
                if let Some(started) = exec.started_at {
                    let waited = (started - exec.created_at).max(time::Duration::ZERO);
                    metrics::queue_waited(waited.unsigned_abs());
                }
                Ok(Some((exec, rev)))
            }
            Err(Error::Conflict(_)) => {
                let fresh = self.store.get_execution(&exec.id, None).await?;
                match fresh {
                    Some((e, r)) if !e.status.is_final() => Box::pin(self.claim(e, r)).await,
                    _ => Ok(None),
                }
            }
            Err(e) => Err(e),
        }
    }

    #[allow(clippy::too_many_arguments)]
    async fn run_claimed(
        &self,
        exec: Execution,
        rev: u64,
        prepared: Prepared,
        guard: AttemptGuard,
        renewal: Renewal,
        executor: Arc<dyn Executor>,
        stop: &CancellationToken,
    ) -> Result<Settled> {
        let function = prepared.function.clone();
        let limits = self.limits(&function);
        let request = self.request(&exec, &prepared, limits);
        let started = Instant::now();
        // Biased: a run that ends at its first poll never pays for the cancel watch.
        let ran = tokio::select! {
            biased;
            r = executor.execute(request) => Ran::Finished(r),
            _ = stop.cancelled() => Ran::Stopped,
            _ = renewal.lost.cancelled() => Ran::Stopped,
            _ = cancel::cancelled(&self.store, &exec.id) => Ran::Cancelled,
        };
        drop(renewal);
        let elapsed = started.elapsed();
        guard.release().await;
        let outcome = match ran {
            Ran::Stopped => return Ok(Settled::Abandoned),
            Ran::Cancelled => {
                let ms = elapsed.as_millis() as u64;
                tracing::info!(
                    duration_ms = ms,
                    "cancelled by its owner: the guest was stopped"
                );
                let status = ExecutionStatus::Cancelled;
                metrics::execution_finished(Some(function.runnable.kind()), status, Some(elapsed));
                return Ok(Settled::Done);
            }
            Ran::Finished(Err(e)) if e.is_retryable() => return Ok(Settled::Retry(e)),
            Ran::Finished(Err(e)) => {
                return self
                    .finish_with_error(exec.clone(), rev, exec.attempt, &e.to_string())
                    .await;
            }
            Ran::Finished(Ok(raw)) => raw,
        };
        let fields = classify(&outcome, limits);
        tracing::info!(
            status = fields.status.as_str(),
            duration_ms = elapsed.as_millis() as u64,
            "execution finished"
        );
        let status = fields.status;
        let settled = self.record(exec, rev, fields, elapsed).await?;
        metrics::execution_finished(Some(function.runnable.kind()), status, Some(elapsed));
        Ok(settled)
    }

    fn limits(&self, f: &crate::model::Function) -> Limits {
        Limits {
            timeout_secs: f.timeout_secs.min(self.config.max_timeout.as_secs()).max(1),
            memory_mb: f.memory_mb,
            stdout_cap: self.config.stdout_cap,
            stderr_cap: self.config.stderr_cap,
        }
    }

    fn request(&self, exec: &Execution, p: &Prepared, limits: Limits) -> ExecutionRequest {
        ExecutionRequest {
            execution_id: exec.id.clone(),
            attempt: exec.attempt,
            function: p.function.clone(),
            input: exec.input.clone(),
            env: p.env.clone(),
            objects: p.grants.clone(),
            objects_dir: p.staging.clone(),
            timeout: Duration::from_secs(limits.timeout_secs),
            memory_limit: limits.memory_mb * 1024 * 1024,
            stdout_cap: limits.stdout_cap,
            stderr_cap: limits.stderr_cap,
        }
    }

    /// Renews the lease every third of the ack wait until the [`Renewal`] is dropped.
    fn renew(&self, d: Delivery) -> Renewal {
        let queue = self.queue.clone();
        let every = (queue.ack_wait() / 3).max(Duration::from_millis(100));
        let lost = CancellationToken::new();
        let fired = lost.clone();
        let task = tokio::spawn(async move {
            loop {
                tokio::time::sleep(every).await;
                match queue.extend(&d).await {
                    Ok(()) => {}
                    Err(Error::Conflict(_)) => {
                        tracing::warn!("lease lost: another attempt owns this execution now");
                        fired.cancel();
                        return;
                    }
                    Err(e) => tracing::warn!(error = %e, "lease extension failed"),
                }
            }
        });
        Renewal { task, lost }
    }

    async fn record(
        &self,
        mut exec: Execution,
        rev: u64,
        f: FinalFields,
        elapsed: Duration,
    ) -> Result<Settled> {
        exec.status = f.status;
        exec.output = f.output;
        exec.result = f.result;
        exec.error = f.error;
        exec.exit_code = f.exit_code;
        exec.logs = f.logs;
        exec.completed_at = Some(now());
        exec.duration_ms = Some(elapsed.as_millis() as u64);
        match self.store.update_execution(&exec, rev).await {
            Ok(_) => Ok(Settled::Done),
            Err(Error::Conflict(_)) => {
                tracing::warn!("stale attempt: a newer write won; result discarded");
                Ok(Settled::Done)
            }
            Err(e) => Err(e),
        }
    }

    pub(super) async fn finish_with_error(
        &self,
        mut exec: Execution,
        rev: u64,
        attempt: u32,
        msg: &str,
    ) -> Result<Settled> {
        tracing::info!(error = msg, "execution failed before running");
        exec.attempt = attempt;
        let fields = FinalFields {
            status: ExecutionStatus::Failed,
            output: None,
            result: None,
            error: Some(msg.to_string()),
            exit_code: None,
            logs: None,
        };
        let settled = self.record(exec, rev, fields, Duration::ZERO).await?;
        metrics::execution_finished(None, ExecutionStatus::Failed, None);
        Ok(settled)
    }
}

/// The attempt a record shows when it fails before running (at least 1).
pub(super) fn exec_attempt(e: &Execution) -> u32 {
    e.attempt.max(1)
}

/// 0.5 s, 1 s, 2 s ... capped at 30 s.
fn backoff(attempt: u32) -> Duration {
    let ms = 500u64.saturating_mul(1 << attempt.saturating_sub(1).min(6));
    Duration::from_millis(ms.min(30_000))
}
