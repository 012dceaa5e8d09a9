//! Cancel stops the guest. The owner's cancel writes the record `cancelled`, and the
//! store announces every state change on its completions port
//! ([`crate::ports::Completions`]): in-process in `faas serve`, a core NATS subject
//! between processes. A running attempt races its executor against
//! [`cancelled`]; when the cancel wins, the executor's future is dropped, which
//! stops a wasm guest at its next epoch tick and force-removes a container, and the
//! attempt releases its grant and its slot at once.

use std::future::pending;

use crate::model::ExecutionStatus;
use crate::store::Store;

/// Resolves once execution `id` is cancelled; never if it is not (or if its changes
/// cannot be watched: the attempt then runs to its end, and its write loses to the
/// cancel's, as before).
///
/// It subscribes first and then reads the record once, so a cancel written just
/// before the subscription existed is not missed either.
pub(super) async fn cancelled(store: &Store, id: &str) {
    let mut changes = match store.completions().subscribe(id).await {
        Ok(changes) => changes,
        Err(e) => {
            tracing::debug!(error = %e, "cannot watch for a cancel; the attempt runs to its end");
            return pending().await;
        }
    };
    if let Ok(Some((exec, _))) = store.get_execution(id, None).await
        && exec.status == ExecutionStatus::Cancelled
    {
        return;
    }
    while let Some(status) = changes.next().await {
        if status == ExecutionStatus::Cancelled {
            return;
        }
    }
    pending().await
}
