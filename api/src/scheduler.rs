//! The scheduler: every API process runs it ([`run`]). It keeps the enabled
//! schedules in memory (re-read every [`REFRESH`]), and every [`POLL`] handles
//! each one whose next tick has come: it re-reads the schedule, runs the due
//! ticks ([`faas_runtime::cron::CronSpec::due`]: on-time ticks, and at most one
//! catch-up run for missed ones) through the submit path
//! ([`prepare_at`] and [`start`]: input checks, quotas, record and queue message),
//! then records the last tick handled with a revision check.
//!
//! Exactly one execution per tick, however many processes: the execution's id
//! is derived from the schedule and the tick ([`Schedule::tick_execution_id`]),
//! and the store creates a record only if its id is absent, so a second
//! process's copy is refused. A tick refused by a quota, or whose input no
//! longer passes (a secret deleted), is skipped with a warning and counted in
//! `faas_schedule_ticks_total`, never retried.

use std::time::{Duration, Instant};

use axum::http::StatusCode;
use faas_runtime::cron::CronSpec;
use faas_runtime::metrics::schedule_tick;
use faas_runtime::model::{Execution, Role, Schedule, now};
use time::OffsetDateTime;
use tokio_util::sync::CancellationToken;

use crate::auth::Caller;
use crate::error::ApiResult;
use crate::routes::executions::{prepare_at, start};
use crate::routes::versions::VersionChoice;
use crate::state::AppState;

/// How often due ticks are looked for.
pub const POLL: Duration = Duration::from_millis(250);

/// How often the list of schedules is read again.
pub const REFRESH: Duration = Duration::from_secs(1);

/// Times a tick's handling re-reads a schedule that changed under it.
const RETRIES: usize = 5;

/// Runs due ticks until `stop`.
pub async fn run(state: AppState, stop: CancellationToken) {
    let mut cache: Vec<(Schedule, CronSpec)> = Vec::new();
    let mut read_at: Option<Instant> = None;
    loop {
        tokio::select! {
            _ = tokio::time::sleep(POLL) => {}
            _ = stop.cancelled() => return,
        }
        if read_at.is_none_or(|at| at.elapsed() >= REFRESH) {
            match state.store.all_schedules().await {
                Ok(all) => {
                    cache = enabled(all);
                    read_at = Some(Instant::now());
                }
                Err(e) => tracing::warn!(error = %e, "cannot read the schedules; retrying"),
            }
        }
        let at = now();
        for (s, spec) in cache.iter_mut() {
            if spec.next_after(s.last_tick).is_none_or(|t| t > at) {
                continue;
            }
            match handle(&state, &s.id).await {
                Ok(Some(fresh)) => *s = fresh,
                // Deleted: dropped at the next read of the list.
                Ok(None) => s.enabled = false,
                Err(e) => {
                    tracing::warn!(schedule.id = %s.id, error = %e, "schedule tick not handled; retrying")
                }
            }
        }
        cache.retain(|(s, _)| s.enabled);
    }
}

/// The enabled schedules whose expression parses.
fn enabled(all: Vec<(Schedule, u64)>) -> Vec<(Schedule, CronSpec)> {
    all.into_iter()
        .filter(|(s, _)| s.enabled)
        .filter_map(|(s, _)| match CronSpec::parse(&s.cron, &s.timezone) {
            Ok(spec) => Some((s, spec)),
            Err(e) => {
                tracing::warn!(schedule.id = %s.id, error = %e, "schedule skipped");
                None
            }
        })
        .collect()
}

/// Runs the due ticks of schedule `id` and records the last one handled.
/// Returns the schedule as it is now (`None` once deleted).
async fn handle(state: &AppState, id: &str) -> faas_runtime::Result<Option<Schedule>> {
    for _ in 0..RETRIES {
        let Some((mut s, rev)) = state.store.get_schedule(id, None).await? else {
            return Ok(None);
        };
        if !s.enabled {
            return Ok(Some(s));
        }
        let spec = CronSpec::parse(&s.cron, &s.timezone)?;
        let due = spec.due(s.last_tick, now(), s.catch_up);
        let Some(handled_to) = due.handled_to else {
            return Ok(Some(s));
        };
        for tick in due.run {
            fire(state, &s, tick).await;
        }
        s.last_tick = handled_to;
        match state.store.update_schedule(&s, rev).await {
            Ok(_) => return Ok(Some(s)),
            // Another process (or the owner) changed it: read it again.
            Err(faas_runtime::Error::Conflict(_)) => continue,
            Err(faas_runtime::Error::NotFound(_)) => return Ok(None),
            Err(e) => return Err(e),
        }
    }
    Err(faas_runtime::Error::Conflict(format!(
        "schedule {id} kept changing"
    )))
}

/// Makes the execution of `tick` through the submit path, once per tick.
async fn fire(state: &AppState, s: &Schedule, tick: OffsetDateTime) {
    let id = s.tick_execution_id(tick);
    match state.store.get_execution(&id, None).await {
        Ok(Some(_)) => return schedule_tick("duplicate"),
        Ok(None) => {}
        Err(e) => {
            tracing::warn!(schedule.id = %s.id, error = %e, "tick skipped: store unavailable");
            return schedule_tick("failed");
        }
    }
    let caller = Caller {
        id: s.owner_id.clone(),
        role: Role::User,
    };
    let started = match tick_execution(state, &caller, s, id).await {
        Ok(exec) => start(state, &caller, exec, None).await,
        Err(e) => Err(e),
    };
    match started {
        Ok(started) => {
            schedule_tick("run");
            tracing::info!(schedule.id = %s.id, execution.id = %started.exec.id, "schedule tick queued");
        }
        Err(e) if e.status == StatusCode::CONFLICT => schedule_tick("duplicate"),
        Err(e) if e.status == StatusCode::TOO_MANY_REQUESTS => {
            schedule_tick("quota");
            tracing::warn!(schedule.id = %s.id, owner = %s.owner_id, reason = %e.message, "schedule tick skipped: quota");
        }
        Err(e) => {
            schedule_tick("failed");
            tracing::warn!(schedule.id = %s.id, error = %e.message, code = e.code, "schedule tick skipped");
        }
    }
}

/// The execution a tick makes: the schedule's function and input, checked as a
/// submit's, with the tick's id and the schedule's id.
async fn tick_execution(
    state: &AppState,
    caller: &Caller,
    s: &Schedule,
    id: String,
) -> ApiResult<Execution> {
    // The alias is resolved at every tick: moving it moves what the schedule runs.
    let choice = VersionChoice {
        version: None,
        alias: Some(s.alias.clone()),
    };
    let input = Some(s.input.clone());
    let mut exec = prepare_at(state, caller, &s.function_id, &choice, input, None).await?;
    exec.id = id;
    exec.schedule_id = Some(s.id.clone());
    Ok(exec)
}
