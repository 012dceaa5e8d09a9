//! Per-user quotas: limits (the operator's defaults, overridden per user by an
//! admin) and the checks that enforce them, with usage for `GET /api/me`.
//!
//! Counts come from the shared store, so every API process enforces the same
//! limits: active executions (an index of the store; read at most
//! [`ACTIVE_TTL`] old plus this process's own submissions since), functions,
//! secrets and stored object bytes. The submission rate is a token bucket per
//! user in each API process.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::http::StatusCode;
use faas_runtime::model::{Quotas, objects_bucket};
use serde::Serialize;

use crate::error::{ApiError, ApiResult};
use crate::state::AppState;

/// How old a cached count of a user's active executions, or a cached read of
/// their overrides, may be (an admin's change applies within it).
pub const ACTIVE_TTL: Duration = Duration::from_secs(1);

/// Most users whose rate buckets and counts a process keeps.
const MAX_TRACKED: usize = 100_000;

/// The operator's default quotas (`0` = no limit).
pub fn defaults() -> Quotas {
    Quotas {
        max_active_executions: Some(1_000),
        submissions_per_minute: Some(1_200),
        max_object_bytes: Some(1024 * 1024 * 1024),
        max_functions: Some(100),
        max_secrets: Some(100),
    }
}

/// In-process state of the checks: rate buckets and cached active counts.
#[derive(Default)]
pub struct Meter {
    buckets: Mutex<HashMap<String, (f64, Instant)>>,
    active: Mutex<HashMap<String, (Instant, u64)>>,
    overrides: Mutex<HashMap<String, (Instant, Quotas)>>,
}

/// A user's limits and what they use.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct QuotaView {
    /// Effective limits (`0` = no limit).
    pub limits: Quotas,
    /// Current use.
    pub usage: Usage,
}

/// What a user uses now.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Usage {
    /// Executions queued or running.
    pub active_executions: u64,
    /// Bytes of stored objects.
    pub object_bytes: u64,
    /// Functions.
    pub functions: u64,
    /// Secrets.
    pub secrets: u64,
}

/// The user's effective limits (overrides read at most [`ACTIVE_TTL`] ago).
pub async fn limits(state: &AppState, user_id: &str) -> ApiResult<Quotas> {
    let cached = {
        let map = state
            .meter
            .overrides
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        map.get(user_id)
            .filter(|(at, _)| at.elapsed() < ACTIVE_TTL)
            .map(|(_, q)| *q)
    };
    let overrides = match cached {
        Some(q) => q,
        None => {
            let q = state.store.get_quotas(user_id).await?;
            let mut map = state
                .meter
                .overrides
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            if map.len() >= MAX_TRACKED {
                map.retain(|_, (at, _)| at.elapsed() < ACTIVE_TTL);
            }
            map.insert(user_id.to_string(), (Instant::now(), q));
            q
        }
    };
    Ok(overrides.or(state.limits.quotas))
}

/// Limits and usage of a user.
pub async fn view(state: &AppState, user_id: &str) -> ApiResult<QuotaView> {
    Ok(QuotaView {
        limits: limits(state, user_id).await?,
        usage: Usage {
            active_executions: state.store.count_active(user_id).await?,
            object_bytes: object_bytes(state, user_id, None).await?,
            functions: state.store.count_functions(user_id).await?,
            secrets: state.store.count_secrets(user_id).await?,
        },
    })
}

/// 429 `quota_exceeded` naming the quota.
pub fn exceeded(name: &str, limit: u64, retry_after: Option<u64>) -> ApiError {
    let mut e = ApiError::new(
        StatusCode::TOO_MANY_REQUESTS,
        "quota_exceeded",
        format!("quota {name} ({limit}) is reached"),
    );
    e.retry_after = retry_after;
    e
}

fn limit_of(v: Option<u64>) -> Option<u64> {
    v.filter(|n| *n > 0)
}

/// Checks the submission rate and the active executions before a submit; counts
/// the submission.
pub async fn check_submit(state: &AppState, user_id: &str) -> ApiResult<()> {
    let q = limits(state, user_id).await?;
    if let Some(rate) = limit_of(q.submissions_per_minute) {
        state.meter.take_token(user_id, rate)?;
    }
    if let Some(max) = limit_of(q.max_active_executions) {
        let active = state.meter.active(state, user_id).await?;
        if active >= max {
            return Err(exceeded("max_active_executions", max, Some(1)));
        }
        state.meter.count_submit(user_id);
    }
    Ok(())
}

/// Checks the function count before a deploy.
pub async fn check_functions(state: &AppState, user_id: &str) -> ApiResult<()> {
    let q = limits(state, user_id).await?;
    if let Some(max) = limit_of(q.max_functions)
        && state.store.count_functions(user_id).await? >= max
    {
        return Err(exceeded("max_functions", max, None));
    }
    Ok(())
}

/// Checks the secret count before a new secret.
pub async fn check_secrets(state: &AppState, user_id: &str) -> ApiResult<()> {
    let q = limits(state, user_id).await?;
    if let Some(max) = limit_of(q.max_secrets)
        && state.store.count_secrets(user_id).await? >= max
    {
        return Err(exceeded("max_secrets", max, None));
    }
    Ok(())
}

/// Bytes an upload of `bucket/name` may have under the object quota (the object
/// it replaces does not count), or `None` without a quota.
pub async fn object_room(
    state: &AppState,
    user_id: &str,
    replacing: (&str, &str),
) -> ApiResult<Option<u64>> {
    let q = limits(state, user_id).await?;
    let Some(max) = limit_of(q.max_object_bytes) else {
        return Ok(None);
    };
    let used = object_bytes(state, user_id, Some(replacing)).await?;
    Ok(Some(max.saturating_sub(used)))
}

/// Bytes of the user's objects, without `skip` (bucket, name).
async fn object_bytes(
    state: &AppState,
    user_id: &str,
    skip: Option<(&str, &str)>,
) -> ApiResult<u64> {
    let mut total = 0;
    let mut cursor = None;
    loop {
        let page = state
            .store
            .list_functions(user_id, cursor.as_deref(), 200)
            .await?;
        for f in &page.items {
            let bucket = objects_bucket(&f.id);
            for o in state.objects.list(&bucket).await? {
                if skip != Some((bucket.as_str(), o.name.as_str())) {
                    total += o.size;
                }
            }
        }
        match page.next_cursor {
            Some(c) => cursor = Some(c),
            None => return Ok(total),
        }
    }
}

impl Meter {
    /// Takes one token of the user's bucket (`rate` per minute, a minute's worth
    /// at most); 429 with the seconds until the next token when it is empty.
    fn take_token(&self, user_id: &str, rate: u64) -> ApiResult<()> {
        let mut map = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        if map.len() >= MAX_TRACKED && !map.contains_key(user_id) {
            let full = Duration::from_secs(60);
            map.retain(|_, (_, at)| at.elapsed() < full);
        }
        let now = Instant::now();
        let cap = rate as f64;
        let (tokens, at) = map.entry(user_id.to_string()).or_insert((cap, now));
        *tokens = (*tokens + at.elapsed().as_secs_f64() * cap / 60.0).min(cap);
        *at = now;
        if *tokens < 1.0 {
            let wait = ((1.0 - *tokens) * 60.0 / cap).ceil().max(1.0) as u64;
            return Err(exceeded("submissions_per_minute", rate, Some(wait)));
        }
        *tokens -= 1.0;
        Ok(())
    }

    async fn active(&self, state: &AppState, user_id: &str) -> ApiResult<u64> {
        let cached = {
            let map = self.active.lock().unwrap_or_else(|p| p.into_inner());
            map.get(user_id)
                .filter(|(at, _)| at.elapsed() < ACTIVE_TTL)
                .map(|(_, n)| *n)
        };
        if let Some(n) = cached {
            return Ok(n);
        }
        let n = state.store.count_active(user_id).await?;
        let mut map = self.active.lock().unwrap_or_else(|p| p.into_inner());
        if map.len() >= MAX_TRACKED {
            map.retain(|_, (at, _)| at.elapsed() < ACTIVE_TTL);
        }
        map.insert(user_id.to_string(), (Instant::now(), n));
        Ok(n)
    }

    /// Drops what this process cached of a user (after an override changes).
    pub fn forget(&self, user_id: &str) {
        let mut map = self.overrides.lock().unwrap_or_else(|p| p.into_inner());
        map.remove(user_id);
    }

    fn count_submit(&self, user_id: &str) {
        let mut map = self.active.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((_, n)) = map.get_mut(user_id) {
            *n += 1;
        }
    }
}
