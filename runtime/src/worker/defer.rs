//! Deferrals: an execution whose preparation failed (a store fault, a secret that
//! no longer opens) or whose executor is not ready is handed back without using an
//! attempt -- but only so often. Each deferral is counted on the record (with its
//! cause in `error`); at `max_deferrals` the execution fails with that cause, so
//! nothing waits `pending` forever.

use std::sync::Arc;

use super::Worker;
use super::attempt::{Settled, exec_attempt};
use super::presence;
use crate::model::{Execution, RuntimeKind};
use crate::ports::Executor;
use crate::{Error, Result};

/// Whether this worker can run a runtime now.
pub(super) enum Availability {
    /// Its executor is here and ready.
    Ready(Arc<dyn Executor>),
    /// Not here, but a live worker offers it: let that one take it.
    Elsewhere,
    /// No executor can run it now; the text says why.
    Unavailable(String),
}

/// `claimed` put back as it was before the claim (`before`): not running, the
/// attempt not used.
pub(super) fn unclaimed(mut claimed: Execution, before: &Execution) -> Execution {
    claimed.status = before.status;
    claimed.attempt = before.attempt;
    claimed.started_at = before.started_at;
    claimed
}

impl Worker {
    /// The executor of `runtime` if it is ready here; else where it may be.
    pub(super) async fn executor_for(&self, runtime: RuntimeKind) -> Availability {
        let name = runtime.as_str();
        if let Some(executor) = self.executors.get(&runtime) {
            return match executor.ready().await {
                Ok(()) => Availability::Ready(executor.clone()),
                Err(e) => {
                    Availability::Unavailable(format!("no {name} executor is available: {e}"))
                }
            };
        }
        match presence::offered_elsewhere(&self.store, runtime, &self.config.worker_id).await {
            Ok(true) => Availability::Elsewhere,
            Ok(false) => Availability::Unavailable(format!(
                "no {name} executor is available: no running worker offers {name} functions"
            )),
            Err(e) => Availability::Unavailable(format!(
                "no {name} executor on this worker, and the others cannot be listed: {e}"
            )),
        }
    }

    /// Counts one deferral of `exec` for `cause` and hands it back for later, or
    /// fails it when it has been deferred `max_deferrals` times.
    pub(super) async fn defer(
        &self,
        mut exec: Execution,
        rev: u64,
        cause: String,
    ) -> Result<Settled> {
        let tries = exec.deferrals.saturating_add(1);
        if tries >= self.config.max_deferrals.max(1) {
            let msg = format!("{cause} (gave up after {tries} tries)");
            let attempt = exec_attempt(&exec);
            return self.finish_with_error(exec, rev, attempt, &msg).await;
        }
        tracing::info!(cause = %cause, deferrals = tries, "execution deferred");
        exec.deferrals = tries;
        exec.error = Some(cause.clone());
        match self.store.update_execution(&exec, rev).await {
            Ok(_) | Err(Error::Conflict(_)) => Ok(Settled::Retry(Error::Unavailable(cause))),
            Err(e) => Err(e),
        }
    }
}
