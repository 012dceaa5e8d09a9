//! Schedules of functions (bucket `schedules`, by id) and their index by function
//! (`schedules_by_function`, `<function id>.<schedule id>`). Deleting a function
//! deletes its schedules ([`Store::delete_function`]).

use bytes::Bytes;

use super::{Store, buckets as b, owner_key};
use crate::model::Schedule;
use crate::ports::Scan;
use crate::{Error, Result};

/// Most schedules a function may have.
pub const MAX_SCHEDULES: usize = 100;

impl Store {
    /// Records a new schedule; `Conflict` past [`MAX_SCHEDULES`] for its function.
    pub async fn create_schedule(&self, s: &Schedule) -> Result<()> {
        if self.count_schedules(&s.function_id).await? >= MAX_SCHEDULES as u64 {
            return Err(Error::Conflict(format!(
                "a function has at most {MAX_SCHEDULES} schedules; delete one first"
            )));
        }
        self.create_json(b::SCHEDULES, &s.id, s).await?;
        self.kv()
            .put(
                b::SCHEDULES_BY_FUNCTION,
                &owner_key(&s.function_id, &s.id),
                Bytes::new(),
            )
            .await
            .map(drop)
    }

    /// A schedule and its revision, only if `owner` owns it (`None` = any owner).
    pub async fn get_schedule(
        &self,
        id: &str,
        owner: Option<&str>,
    ) -> Result<Option<(Schedule, u64)>> {
        let s: Option<(Schedule, u64)> = self.get_json(b::SCHEDULES, id).await?;
        Ok(s.filter(|(s, _)| owner.is_none_or(|o| o == s.owner_id)))
    }

    /// The function's schedules, oldest first.
    pub async fn list_schedules(&self, function_id: &str) -> Result<Vec<Schedule>> {
        let mut out = Vec::new();
        for id in self.schedule_ids(function_id).await? {
            if let Some((s, _)) = self.get_schedule(&id, None).await?
                && s.function_id == function_id
            {
                out.push(s);
            }
        }
        Ok(out)
    }

    /// Every schedule of the installation with its revision (the scheduler's view).
    pub async fn all_schedules(&self) -> Result<Vec<(Schedule, u64)>> {
        let rows = self.kv().scan(b::SCHEDULES, Scan::default()).await?;
        let mut out = Vec::with_capacity(rows.len());
        for (key, e) in rows {
            match serde_json::from_slice::<Schedule>(&e.value) {
                Ok(s) => out.push((s, e.revision)),
                Err(err) => {
                    tracing::warn!(schedule.id = %key, error = %err, "unreadable schedule skipped")
                }
            }
        }
        Ok(out)
    }

    /// Rewrites a schedule if it is still at `revision` (`Conflict` otherwise,
    /// `NotFound` when it was deleted).
    pub async fn update_schedule(&self, s: &Schedule, revision: u64) -> Result<u64> {
        self.update_json(b::SCHEDULES, &s.id, s, revision).await
    }

    /// Deletes a schedule and its index entry.
    pub async fn delete_schedule(&self, s: &Schedule) -> Result<()> {
        self.kv().delete(b::SCHEDULES, &s.id).await?;
        self.kv()
            .delete(b::SCHEDULES_BY_FUNCTION, &owner_key(&s.function_id, &s.id))
            .await
    }

    /// Deletes every schedule of a function.
    pub(crate) async fn delete_schedules_of(&self, function_id: &str) -> Result<()> {
        for id in self.schedule_ids(function_id).await? {
            self.kv().delete(b::SCHEDULES, &id).await?;
            self.kv()
                .delete(b::SCHEDULES_BY_FUNCTION, &owner_key(function_id, &id))
                .await?;
        }
        Ok(())
    }

    async fn count_schedules(&self, function_id: &str) -> Result<u64> {
        self.kv()
            .count(b::SCHEDULES_BY_FUNCTION, &format!("{function_id}."))
            .await
    }

    async fn schedule_ids(&self, function_id: &str) -> Result<Vec<String>> {
        let prefix = format!("{function_id}.");
        let rows = self
            .kv()
            .scan(
                b::SCHEDULES_BY_FUNCTION,
                Scan {
                    prefix: prefix.clone(),
                    ..Scan::default()
                },
            )
            .await?;
        Ok(rows
            .into_iter()
            .filter_map(|(k, _)| k.strip_prefix(&prefix).map(str::to_string))
            .collect())
    }
}
