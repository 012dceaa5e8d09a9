//! Pending callback deliveries: `callbacks/<execution id>` -> [`PendingCallback`].
//!
//! An entry is written with the execution's record at submit (before the client is
//! answered), so a restart never forgets a delivery. A deliverer claims an entry by
//! writing a lease into it at the revision it read (of two processes, one wins),
//! delivers, writes the outcome into the execution's [`Callback`], then removes the
//! entry or reschedules it (still at its lease's revision).

use serde::{Deserialize, Serialize};

use super::{Store, buckets as b};
use crate::model::{Callback, Execution, now};
use crate::ports::{KvWrite, Scan};
use crate::{Error, Result};

/// A delivery to make (or retry) once its execution is final.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PendingCallback {
    /// The execution whose final record is delivered.
    pub execution_id: String,
    /// Its owner (whose callback key signs it).
    pub owner_id: String,
    /// When the entry was written (unix milliseconds).
    pub created_ms: i64,
    /// Not before this time (unix milliseconds).
    pub next_ms: i64,
    /// A deliverer holds the entry until this time (unix milliseconds; 0: free).
    #[serde(default)]
    pub lease_ms: i64,
}

impl PendingCallback {
    /// The entry of a new execution: due at once.
    pub fn of(e: &Execution) -> Self {
        let t = now_ms();
        PendingCallback {
            execution_id: e.id.clone(),
            owner_id: e.owner_id.clone(),
            created_ms: t,
            next_ms: t,
            lease_ms: 0,
        }
    }

    /// True when no deliverer holds it and its time has come.
    pub fn is_due(&self, at_ms: i64) -> bool {
        self.next_ms <= at_ms && self.lease_ms <= at_ms
    }
}

/// The current time in unix milliseconds.
pub fn now_ms() -> i64 {
    (now().unix_timestamp_nanos() / 1_000_000) as i64
}

/// Most revision-checked attempts to write an execution's callback state.
const STATE_ATTEMPTS: usize = 8;

impl Store {
    /// The write of `e`'s pending-delivery entry, if it asks for a callback.
    pub(crate) fn callback_write(e: &Execution) -> Result<Option<KvWrite>> {
        if e.callback.is_none() {
            return Ok(None);
        }
        let entry = super::encode(&PendingCallback::of(e))?;
        Ok(Some(KvWrite::put(b::CALLBACKS, &e.id, entry)))
    }

    /// Entries due at `at_ms` and not leased, with their revisions (at most `limit`).
    pub async fn due_callbacks(
        &self,
        at_ms: i64,
        limit: usize,
    ) -> Result<Vec<(PendingCallback, u64)>> {
        let rows = self.kv().scan(b::CALLBACKS, Scan::default()).await?;
        let mut due = Vec::new();
        for (key, entry) in rows {
            match serde_json::from_slice::<PendingCallback>(&entry.value) {
                Ok(p) if p.is_due(at_ms) => due.push((p, entry.revision)),
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!(key = %key, error = %e, "dropping an unreadable callback entry");
                    self.kv().delete(b::CALLBACKS, &key).await?;
                }
            }
            if due.len() >= limit {
                break;
            }
        }
        Ok(due)
    }

    /// Writes `entry` (its lease or next time changed) if it is still at
    /// `revision`: `Conflict` or `NotFound` when another deliverer got there first.
    pub async fn update_callback_entry(
        &self,
        entry: &PendingCallback,
        revision: u64,
    ) -> Result<u64> {
        self.update_json(b::CALLBACKS, &entry.execution_id, entry, revision)
            .await
    }

    /// Removes the entry of `execution_id` (delivered, given up, or orphaned).
    pub async fn remove_callback_entry(&self, execution_id: &str) -> Result<()> {
        self.kv().delete(b::CALLBACKS, execution_id).await
    }

    /// Applies `change` to the callback of execution `id` (revision-checked, without
    /// touching its other fields nor waking its waiters). Returns the new state;
    /// `None` when the execution is gone or has no callback.
    pub async fn update_callback_state(
        &self,
        id: &str,
        change: impl Fn(&mut Callback),
    ) -> Result<Option<Callback>> {
        for _ in 0..STATE_ATTEMPTS {
            let found: Option<(super::spill::StoredExecution, u64)> =
                self.get_json(b::EXECUTIONS, id).await?;
            let Some((mut stored, rev)) = found else {
                return Ok(None);
            };
            let Some(cb) = stored.exec.callback.as_mut() else {
                return Ok(None);
            };
            change(cb);
            let state = cb.clone();
            match self.update_json(b::EXECUTIONS, id, &stored, rev).await {
                Ok(_) => return Ok(Some(state)),
                Err(Error::Conflict(_)) => continue,
                Err(Error::NotFound(_)) => return Ok(None),
                Err(e) => return Err(e),
            }
        }
        Err(Error::Conflict(format!(
            "execution {id} kept changing while its callback state was written"
        )))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::embedded::{Db, EmbeddedKv};
    use crate::model::{CallbackState, Function};

    fn store(dir: &std::path::Path) -> Store {
        Store::new(Arc::new(EmbeddedKv::new(Db::open(dir).unwrap())))
    }

    fn exec_with_callback() -> Execution {
        let f = Function::fixture("u");
        let mut e = Execution::pending(&f, "{}".into());
        e.callback = Some(Callback::pending("http://127.0.0.1:9/x".into()));
        e
    }

    #[tokio::test]
    async fn an_entry_is_written_with_its_execution_and_leased_once() {
        let dir = tempfile::tempdir().unwrap();
        let s = store(dir.path());
        let e = exec_with_callback();
        s.create_execution(&e).await.unwrap();
        let due = s.due_callbacks(now_ms() + 1, 10).await.unwrap();
        assert_eq!(due.len(), 1);
        let (mut entry, rev) = due[0].clone();
        assert_eq!(entry.execution_id, e.id);
        entry.lease_ms = now_ms() + 60_000;
        s.update_callback_entry(&entry, rev).await.unwrap();
        assert!(matches!(
            s.update_callback_entry(&entry, rev).await,
            Err(Error::Conflict(_))
        ));
        assert!(s.due_callbacks(now_ms(), 10).await.unwrap().is_empty());
        let state = s
            .update_callback_state(&e.id, |c| {
                c.attempts += 1;
                c.state = CallbackState::Delivered;
                c.last_status = Some(204);
            })
            .await
            .unwrap()
            .unwrap();
        assert_eq!(state.state, CallbackState::Delivered);
        let (back, _) = s.get_execution(&e.id, None).await.unwrap().unwrap();
        assert_eq!(back.callback, Some(state));
        s.discard_execution(&e).await.unwrap();
        assert!(s.kv().get(b::CALLBACKS, &e.id).await.unwrap().is_none());
    }
}
