//! Executions: records, owner index, the set of active ones.

use bytes::Bytes;

use super::records::page;
use super::{Page, Store, buckets as b, owner_key};
use crate::Result;
use crate::model::{Execution, ExecutionStatus};
use crate::ports::Scan;

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
    /// Creates a pending execution with its index entries.
    pub async fn create_execution(&self, e: &Execution) -> Result<u64> {
        let rev = self.create_json(b::EXECUTIONS, &e.id, e).await?;
        self.kv()
            .put(
                b::EXECUTIONS_BY_OWNER,
                &owner_key(&e.owner_id, &e.id),
                Bytes::new(),
            )
            .await?;
        self.kv()
            .put(b::EXECUTIONS_ACTIVE, &e.id, Bytes::new())
            .await?;
        Ok(rev)
    }

    /// An execution and its revision, only if `owner` owns it (`None` = any).
    pub async fn get_execution(
        &self,
        id: &str,
        owner: Option<&str>,
    ) -> Result<Option<(Execution, u64)>> {
        let e: Option<(Execution, u64)> = self.get_json(b::EXECUTIONS, id).await?;
        Ok(e.filter(|(e, _)| owner.is_none_or(|o| o == e.owner_id)))
    }

    /// Writes `e` if it is still at `revision`; drops it from the active set once final.
    pub async fn update_execution(&self, e: &Execution, revision: u64) -> Result<u64> {
        let rev = self.update_json(b::EXECUTIONS, &e.id, e, revision).await?;
        if e.status.is_final() {
            self.kv().delete(b::EXECUTIONS_ACTIVE, &e.id).await?;
        }
        Ok(rev)
    }

    /// Removes an execution that was never queued (submit rolled back).
    pub async fn discard_execution(&self, e: &Execution) -> Result<()> {
        self.kv().delete(b::EXECUTIONS_ACTIVE, &e.id).await?;
        self.kv()
            .delete(b::EXECUTIONS_BY_OWNER, &owner_key(&e.owner_id, &e.id))
            .await?;
        self.kv().delete(b::EXECUTIONS, &e.id).await
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

    /// The owner's executions, newest first, filtered.
    pub async fn list_executions(
        &self,
        owner: &str,
        filter: &ExecutionFilter,
        cursor: Option<&str>,
        limit: usize,
    ) -> Result<Page<Execution>> {
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
                if let Some((e, _)) = self.get_execution(&id, Some(owner)).await?
                    && matches(filter, &e)
                {
                    items.push(e);
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
