//! Executions: records (large fields spilled, see [`super::spill`]), the owner
//! index, the set of active ones (globally and per owner).

use bytes::Bytes;

use super::records::page;
use super::spill::{self, StoredExecution};
use super::{Page, Store, buckets as b, owner_key};
use crate::model::{CallbackState, Execution, ExecutionStatus, ExecutionSummary};
use crate::ports::{KvWrite, Scan, WorkQueue};
use crate::{Error, Result};

/// Optional filters of an execution listing.
#[derive(Debug, Clone, Default)]
pub struct ExecutionFilter {
    /// Only this function's executions.
    pub function_id: Option<String>,
    /// Only executions in this state.
    pub status: Option<ExecutionStatus>,
}

/// Most index entries examined for one filtered page.
const SCAN_BUDGET: usize = 5_000;

impl Store {
    /// Records a pending execution (record, chunks, indexes) and queues it, as one
    /// unit where the backend can (see [`WorkQueue::enqueue_with`]). Returns the
    /// record's revision.
    pub async fn accept_execution(&self, queue: &dyn WorkQueue, e: &Execution) -> Result<u64> {
        let (writes, at) = self.creation_writes(e, true)?;
        // The message carries the trace context, so the worker's span joins the trace
        // as it starts (requeued messages carry the id: their spans only log it).
        let payload = e.traceparent.clone().unwrap_or_else(|| e.id.clone());
        let revs = queue
            .enqueue_with(writes, &e.id, Bytes::from(payload))
            .await?;
        revs.get(at)
            .copied()
            .ok_or_else(|| Error::Internal("the record's write has no revision".into()))
    }

    /// Records a pending execution without queueing it (tests, tools).
    pub async fn create_execution(&self, e: &Execution) -> Result<u64> {
        let (writes, at) = self.creation_writes(e, true)?;
        let revs = self.kv().apply(writes).await?;
        revs.get(at)
            .copied()
            .ok_or_else(|| Error::Internal("the record's write has no revision".into()))
    }

    /// Records an execution that ended without being queued (a call of a function's
    /// HTTP endpoint): the record, its chunks and the owner's index, no active
    /// marker (it never counts against the active-executions quota). `e` must be final.
    pub async fn record_finished_execution(&self, e: &Execution) -> Result<u64> {
        if !e.status.is_final() {
            return Err(Error::Invalid(format!(
                "execution {} is not final: it cannot be recorded as finished",
                e.id
            )));
        }
        let (writes, at) = self.creation_writes(e, false)?;
        let revs = self.kv().apply(writes).await?;
        revs.get(at)
            .copied()
            .ok_or_else(|| Error::Internal("the record's write has no revision".into()))
    }

    /// The writes that create `e`, in the order that is safe when a cut may stop
    /// them halfway (active markers first, chunks before the record that names
    /// them), and the index of the record's write. `active`: with the active markers.
    fn creation_writes(&self, e: &Execution, active: bool) -> Result<(Vec<KvWrite>, usize)> {
        let (stored, chunks) = spill::split(e, true);
        let mut writes = Vec::new();
        if active {
            writes.push(KvWrite::put(b::EXECUTIONS_ACTIVE, &e.id, Bytes::new()));
            writes.push(KvWrite::put(
                b::EXECUTIONS_ACTIVE_BY_OWNER,
                &owner_key(&e.owner_id, &e.id),
                Bytes::new(),
            ));
        }
        // The delivery entry before the record: a deliverer keeps an entry whose
        // record is not there yet (see `PendingCallback::created_ms`).
        writes.extend(Store::callback_write(e)?);
        writes.extend(chunks);
        let at = writes.len();
        writes.push(KvWrite::create(
            b::EXECUTIONS,
            &e.id,
            super::encode(&stored)?,
        ));
        writes.push(KvWrite::put(
            b::EXECUTIONS_BY_OWNER,
            &owner_key(&e.owner_id, &e.id),
            Bytes::new(),
        ));
        Ok((writes, at))
    }

    /// An execution and its revision, only if `owner` owns it (`None` = any), with
    /// its spilled fields read back.
    pub async fn get_execution(
        &self,
        id: &str,
        owner: Option<&str>,
    ) -> Result<Option<(Execution, u64)>> {
        let Some((stored, rev)) = self.get_stored(id, owner).await? else {
            return Ok(None);
        };
        Ok(Some((self.join(stored).await?, rev)))
    }

    async fn get_stored(
        &self,
        id: &str,
        owner: Option<&str>,
    ) -> Result<Option<(StoredExecution, u64)>> {
        let e: Option<(StoredExecution, u64)> = self.get_json(b::EXECUTIONS, id).await?;
        Ok(e.filter(|(e, _)| owner.is_none_or(|o| o == e.exec.owner_id)))
    }

    async fn join(&self, stored: StoredExecution) -> Result<Execution> {
        let mut e = stored.exec;
        let Some(spill) = stored.spill else {
            return Ok(e);
        };
        let get = |key: String| async move {
            Ok(self
                .kv()
                .get(b::EXECUTION_DATA, &key)
                .await?
                .map(|e| e.value))
        };
        if let Some(blob) = &spill.input {
            e.input = spill::join(blob, get).await?;
        }
        if let Some(blob) = &spill.output {
            let output = spill::join(blob, get).await?;
            if spill.result_from_output {
                e.result = serde_json::from_str(&output).ok();
            }
            e.output = Some(output);
        }
        if let Some(blob) = &spill.logs {
            e.logs = Some(spill::join(blob, get).await?);
        }
        Ok(e)
    }

    /// Writes `e` if it is still at `revision`; drops it from the active sets once
    /// final; announces the new status to waiters ([`Store::completions`]). A losing write removes the chunks it wrote.
    pub async fn update_execution(&self, e: &Execution, revision: u64) -> Result<u64> {
        let (stored, chunks) = spill::split(e, false);
        let written = spill::written_keys(&chunks);
        if !chunks.is_empty() {
            self.kv().apply(chunks).await?;
        }
        let rev = match self
            .update_json(b::EXECUTIONS, &e.id, &stored, revision)
            .await
        {
            Ok(rev) => rev,
            Err(err) => {
                for key in &written {
                    let _ = self.kv().delete(b::EXECUTION_DATA, key).await;
                }
                return Err(err);
            }
        };
        if e.status.is_final() {
            if e.callback
                .as_ref()
                .is_some_and(|c| c.state == CallbackState::Pending)
            {
                self.callbacks_due().notify_one();
            }
            let dropped = self.drop_active(e).await;
            self.completions.publish(&e.id, e.status).await;
            dropped?;
        } else {
            self.completions.publish(&e.id, e.status).await;
        }
        Ok(rev)
    }

    async fn drop_active(&self, e: &Execution) -> Result<()> {
        self.kv()
            .apply(vec![
                KvWrite::delete(b::EXECUTIONS_ACTIVE, &e.id),
                KvWrite::delete(
                    b::EXECUTIONS_ACTIVE_BY_OWNER,
                    &owner_key(&e.owner_id, &e.id),
                ),
            ])
            .await
            .map(drop)
    }

    /// Removes an execution that was never queued (submit rolled back), chunks
    /// and indexes included.
    pub async fn discard_execution(&self, e: &Execution) -> Result<()> {
        let (stored, _) = spill::split(e, false);
        self.drop_active(e).await?;
        self.kv()
            .delete(b::EXECUTIONS_BY_OWNER, &owner_key(&e.owner_id, &e.id))
            .await?;
        self.kv().delete(b::EXECUTIONS, &e.id).await?;
        self.remove_callback_entry(&e.id).await?;
        for key in stored
            .spill
            .as_ref()
            .map(spill::chunk_keys)
            .unwrap_or_default()
        {
            self.kv().delete(b::EXECUTION_DATA, &key).await?;
        }
        Ok(())
    }

    /// Removes the active markers of an id whose record is gone or final
    /// (repairs a cut between two writes).
    pub async fn forget_active(&self, id: &str) -> Result<()> {
        if let Some((stored, _)) = self.get_stored(id, None).await? {
            if !stored.exec.status.is_final() {
                return Err(Error::Conflict(format!("execution {id} is still active")));
            }
            return self.drop_active(&stored.exec).await;
        }
        self.kv().delete(b::EXECUTIONS_ACTIVE, id).await
    }

    /// Ids of executions not yet final, oldest first.
    pub async fn active_executions(&self, limit: usize) -> Result<Vec<String>> {
        let rows = self
            .kv()
            .scan(
                b::EXECUTIONS_ACTIVE,
                Scan {
                    limit,
                    ..Scan::default()
                },
            )
            .await?;
        Ok(rows.into_iter().map(|(k, _)| k).collect())
    }

    /// How many of the owner's executions are queued or running.
    pub async fn count_active(&self, owner: &str) -> Result<u64> {
        self.kv()
            .count(b::EXECUTIONS_ACTIVE_BY_OWNER, &format!("{owner}."))
            .await
    }

    /// Summaries of the owner's executions, newest first, filtered. Spilled fields
    /// are not read: a page costs its records, never their outputs.
    pub async fn list_executions(
        &self,
        owner: &str,
        filter: &ExecutionFilter,
        cursor: Option<&str>,
        limit: usize,
    ) -> Result<Page<ExecutionSummary>> {
        let mut items = Vec::new();
        let mut after = cursor.map(str::to_string);
        let mut examined = 0;
        while items.len() <= limit && examined < SCAN_BUDGET {
            let ids = self
                .index_page(b::EXECUTIONS_BY_OWNER, owner, after.as_deref(), 200)
                .await?;
            let Some(last) = ids.last().cloned() else {
                break;
            };
            examined += ids.len();
            for id in ids {
                if let Some((s, _)) = self.get_stored(&id, Some(owner)).await?
                    && matches(filter, &s.exec)
                {
                    items.push(ExecutionSummary::of(&s.exec, s.sizes()));
                    if items.len() > limit {
                        break;
                    }
                }
            }
            after = Some(last);
        }
        let budget_spent = items.len() <= limit && examined >= SCAN_BUDGET;
        let mut result = page(&mut items, limit, |e| e.id.clone());
        if budget_spent {
            result.next_cursor = after;
        }
        Ok(result)
    }
}

fn matches(filter: &ExecutionFilter, e: &Execution) -> bool {
    filter
        .function_id
        .as_ref()
        .is_none_or(|f| *f == e.function_id)
        && filter.status.is_none_or(|s| s == e.status)
}
