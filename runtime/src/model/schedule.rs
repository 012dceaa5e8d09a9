//! Schedules: a function run on a cron expression in an IANA time zone. The
//! evaluation of the expression (due ticks, catch-up) is in [`crate::cron`].

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

/// What a schedule does with ticks missed while no API process ran.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum CatchUp {
    /// One run for the latest missed tick (however many were missed).
    #[default]
    Latest,
    /// No run for missed ticks.
    None,
}

/// The alias a schedule runs when none is given.
pub const DEFAULT_ALIAS: &str = "latest";

/// A function's schedule, as stored (bucket `schedules`, by id).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Schedule {
    /// Stable id.
    pub id: String,
    /// The function it runs.
    pub function_id: String,
    /// Owner's user id (the function's owner).
    pub owner_id: String,
    /// 5 fields (minute hour day-of-month month day-of-week) or 6 (seconds first).
    pub cron: String,
    /// IANA time zone the expression is read in (`UTC`, `Europe/Berlin`, ...).
    pub timezone: String,
    /// The input of every execution it makes.
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub input: serde_json::Value,
    /// The alias (or version name) of the function it runs.
    #[serde(default = "default_alias")]
    pub alias: String,
    /// Disabled schedules make no executions.
    pub enabled: bool,
    /// Missed ticks: one run for the latest (`latest`) or none (`none`).
    #[serde(default)]
    pub catch_up: CatchUp,
    /// The last tick handled (run, skipped or refused); ticks after it are due.
    #[serde(with = "time::serde::rfc3339")]
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub last_tick: OffsetDateTime,
    /// Creation time.
    #[serde(with = "time::serde::rfc3339")]
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub created_at: OffsetDateTime,
    /// Last change by its owner.
    #[serde(with = "time::serde::rfc3339")]
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub updated_at: OffsetDateTime,
}

fn default_alias() -> String {
    DEFAULT_ALIAS.to_string()
}

impl Schedule {
    /// The id of the execution this schedule makes for `tick`: a UUID v7 whose
    /// time is the tick's and whose other bits come from a SHA-256 of the schedule
    /// id and the tick, so every API process derives the same id and the store
    /// refuses a second record (one execution per tick, however many processes).
    pub fn tick_execution_id(&self, tick: OffsetDateTime) -> String {
        tick_execution_id(&self.id, tick)
    }
}

/// See [`Schedule::tick_execution_id`].
pub fn tick_execution_id(schedule_id: &str, tick: OffsetDateTime) -> String {
    use sha2::{Digest, Sha256};
    let nanos = tick.unix_timestamp_nanos();
    let mut h = Sha256::new();
    h.update(schedule_id.as_bytes());
    h.update([0]);
    h.update(nanos.to_string().as_bytes());
    let digest = h.finalize();
    let mut rand = [0u8; 10];
    rand.copy_from_slice(&digest[..10]);
    let millis = u64::try_from(nanos / 1_000_000).unwrap_or(0);
    uuid::Builder::from_unix_timestamp_millis(millis, &rand)
        .into_uuid()
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tick_ids_are_stable_per_schedule_and_tick_and_sort_by_tick() {
        let t = OffsetDateTime::from_unix_timestamp(1_800_000_000).unwrap();
        let later = t + time::Duration::seconds(1);
        assert_eq!(tick_execution_id("s1", t), tick_execution_id("s1", t));
        assert_ne!(tick_execution_id("s1", t), tick_execution_id("s2", t));
        assert_ne!(tick_execution_id("s1", t), tick_execution_id("s1", later));
        assert!(tick_execution_id("s1", t) < tick_execution_id("s1", later));
        let id = uuid::Uuid::parse_str(&tick_execution_id("s1", t)).unwrap();
        assert_eq!(id.get_version_num(), 7);
    }
}
