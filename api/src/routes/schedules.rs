//! `/api/functions/{id}/schedules`: a function run on a cron expression in an
//! IANA time zone. The ticks are run by every API process's
//! [`crate::scheduler`]; this module only keeps the schedules.

use axum::Extension;
use axum::extract::State;
use axum::http::StatusCode;
use faas_runtime::cron::CronSpec;
use faas_runtime::model::schedule::DEFAULT_ALIAS;
use faas_runtime::model::{CatchUp, Schedule, new_id, now, validate_name};
use serde::{Deserialize, Serialize};

use super::executions::prepare;
use super::functions::owned;
use crate::auth::Caller;
use crate::error::{ApiError, ApiJson, ApiPath, ApiResult, ErrorBody};
use crate::state::AppState;

/// A new schedule.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewSchedule {
    /// 5 fields (`minute hour day-of-month month day-of-week`) or 6 (seconds
    /// first), e.g. `*/5 * * * *` or `*/10 * * * * *`; names (`MON`, `JAN`), ranges,
    /// lists, steps, `L`, `#` and `W`.
    #[schema(example = "0 9 * * MON-FRI")]
    pub cron: String,
    /// IANA time zone the expression is read in (default `UTC`).
    #[schema(example = "Europe/Berlin")]
    pub timezone: Option<String>,
    /// The input of every execution (default `{}`), checked like a submit's.
    #[schema(schema_with = super::executions::input_schema)]
    pub input: Option<serde_json::Value>,
    /// The alias of the function to run (default `latest`).
    #[schema(pattern = "^[A-Za-z0-9_-][A-Za-z0-9._-]{0,127}$")]
    pub alias: Option<String>,
    /// Whether it runs (default `true`).
    pub enabled: Option<bool>,
    /// Ticks missed while no API process ran: one run for the latest (`latest`,
    /// default) or none (`none`).
    pub catch_up: Option<CatchUp>,
}

/// A change of a schedule: only the fields given change.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SchedulePatch {
    /// Enable or disable. Enabling does not catch up the ticks of the disabled time.
    pub enabled: Option<bool>,
    /// A new expression (ticks count from the change).
    pub cron: Option<String>,
    /// A new time zone (ticks count from the change).
    pub timezone: Option<String>,
    /// A new input.
    #[schema(schema_with = super::executions::input_schema)]
    pub input: Option<serde_json::Value>,
    /// A new alias.
    #[schema(pattern = "^[A-Za-z0-9_-][A-Za-z0-9._-]{0,127}$")]
    pub alias: Option<String>,
    /// A new catch-up policy.
    pub catch_up: Option<CatchUp>,
}

/// A schedule as answered: the record and its next tick.
#[derive(Serialize, utoipa::ToSchema)]
pub struct ScheduleView {
    /// The schedule.
    #[serde(flatten)]
    pub schedule: Schedule,
    /// The next tick (absent while disabled).
    #[schema(format = DateTime)]
    pub next_run_at: Option<String>,
}

impl From<Schedule> for ScheduleView {
    fn from(schedule: Schedule) -> Self {
        let next = CronSpec::parse(&schedule.cron, &schedule.timezone)
            .ok()
            .filter(|_| schedule.enabled)
            .and_then(|spec| spec.next_after(schedule.last_tick.max(now())));
        ScheduleView {
            schedule,
            next_run_at: next.map(super::rfc3339),
        }
    }
}

/// `{"schedules": [...]}`.
#[derive(Serialize, utoipa::ToSchema)]
pub struct ScheduleList {
    /// The function's schedules, oldest first.
    pub schedules: Vec<ScheduleView>,
}

/// The expression and zone checked together (400 `invalid_schedule` with the reason).
fn check_cron(cron: &str, timezone: &str) -> ApiResult<()> {
    CronSpec::parse(cron, timezone)
        .map(drop)
        .map_err(|e| ApiError::bad_request("invalid_schedule", strip(e)))
}

fn check_alias(alias: &str) -> ApiResult<()> {
    validate_name("alias", alias).map_err(|e| ApiError::bad_request("invalid_schedule", strip(e)))
}

fn strip(e: faas_runtime::Error) -> String {
    match e {
        faas_runtime::Error::Invalid(m) => m,
        other => other.to_string(),
    }
}

/// Checks an input as a submit of the function would (size, secrets, objects).
async fn check_input(
    state: &AppState,
    caller: &Caller,
    function_id: &str,
    input: &serde_json::Value,
) -> ApiResult<()> {
    prepare(state, caller, function_id, Some(input.clone()), None)
        .await
        .map(drop)
}

/// Makes a schedule of one of the caller's functions.
#[utoipa::path(post, path = "/api/functions/{id}/schedules", tag = "schedules", security(("bearer" = [])),
    params(("id" = String, Path, description = "The function's id")),
    request_body = NewSchedule,
    responses((status = 201, description = "Made", body = ScheduleView),
        (status = 400, description = "An invalid expression, time zone, alias or input (`invalid_schedule` with the reason; `invalid_input`, `unknown_secret` as for a submit)", body = ErrorBody),
        (status = 404, description = "No such function of the caller's", body = ErrorBody),
        (status = 409, description = "The function has 100 schedules", body = ErrorBody),
        (status = 413, description = "The input is larger than the operator's limit", body = ErrorBody)))]
pub async fn create(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    ApiPath(id): ApiPath<String>,
    ApiJson(body): ApiJson<NewSchedule>,
) -> ApiResult<(StatusCode, ApiJson<ScheduleView>)> {
    let f = owned(&state, &caller, &id).await?;
    let timezone = body.timezone.unwrap_or_else(|| "UTC".into());
    check_cron(&body.cron, &timezone)?;
    let alias = body.alias.unwrap_or_else(|| DEFAULT_ALIAS.into());
    check_alias(&alias)?;
    crate::routes::versions::VersionChoice {
        version: None,
        alias: Some(alias.clone()),
    }
    .resolve(&f)?;
    let input = body.input.unwrap_or_else(|| serde_json::json!({}));
    check_input(&state, &caller, &f.id, &input).await?;
    let at = now();
    let s = Schedule {
        id: new_id(),
        function_id: f.id.clone(),
        owner_id: f.owner_id.clone(),
        cron: body.cron.trim().to_string(),
        timezone,
        input,
        alias,
        enabled: body.enabled.unwrap_or(true),
        catch_up: body.catch_up.unwrap_or_default(),
        last_tick: at,
        created_at: at,
        updated_at: at,
    };
    state.store.create_schedule(&s).await?;
    tracing::info!(schedule.id = %s.id, function.id = %f.id, cron = %s.cron, "schedule made");
    Ok((StatusCode::CREATED, ApiJson(s.into())))
}

/// The function's schedules.
#[utoipa::path(get, path = "/api/functions/{id}/schedules", tag = "schedules", security(("bearer" = [])),
    params(("id" = String, Path, description = "The function's id")),
    responses((status = 200, description = "Its schedules, oldest first", body = ScheduleList),
        (status = 404, description = "No such function of the caller's", body = ErrorBody)))]
pub async fn list(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<ApiJson<ScheduleList>> {
    let f = owned(&state, &caller, &id).await?;
    let schedules = state.store.list_schedules(&f.id).await?;
    Ok(ApiJson(ScheduleList {
        schedules: schedules.into_iter().map(ScheduleView::from).collect(),
    }))
}

/// The caller's schedule `schedule_id` of function `id`, with its revision.
async fn owned_schedule(
    state: &AppState,
    caller: &Caller,
    id: &str,
    schedule_id: &str,
) -> ApiResult<(Schedule, u64)> {
    let f = owned(state, caller, id).await?;
    if !super::functions::is_id(schedule_id) {
        return Err(ApiError::not_found("schedule"));
    }
    state
        .store
        .get_schedule(schedule_id, Some(&caller.id))
        .await?
        .filter(|(s, _)| s.function_id == f.id)
        .ok_or_else(|| ApiError::not_found("schedule"))
}

/// One of the function's schedules.
#[utoipa::path(get, path = "/api/functions/{id}/schedules/{schedule_id}", tag = "schedules", security(("bearer" = [])),
    params(("id" = String, Path, description = "The function's id"),
        ("schedule_id" = String, Path, description = "The schedule's id")),
    responses((status = 200, description = "The schedule", body = ScheduleView),
        (status = 404, description = "No such function or schedule of the caller's", body = ErrorBody)))]
pub async fn get(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    ApiPath((id, schedule_id)): ApiPath<(String, String)>,
) -> ApiResult<ApiJson<ScheduleView>> {
    let (s, _) = owned_schedule(&state, &caller, &id, &schedule_id).await?;
    Ok(ApiJson(s.into()))
}

/// Changes a schedule (enable, disable, expression, zone, input, alias, catch-up).
#[utoipa::path(patch, path = "/api/functions/{id}/schedules/{schedule_id}", tag = "schedules", security(("bearer" = [])),
    params(("id" = String, Path, description = "The function's id"),
        ("schedule_id" = String, Path, description = "The schedule's id")),
    request_body = SchedulePatch,
    responses((status = 200, description = "The schedule now", body = ScheduleView),
        (status = 400, description = "An invalid expression, time zone, alias or input", body = ErrorBody),
        (status = 404, description = "No such function or schedule of the caller's", body = ErrorBody),
        (status = 409, description = "The schedule kept changing; retry", body = ErrorBody)))]
pub async fn patch(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    ApiPath((id, schedule_id)): ApiPath<(String, String)>,
    ApiJson(body): ApiJson<SchedulePatch>,
) -> ApiResult<ApiJson<ScheduleView>> {
    if let Some(input) = &body.input {
        check_input(&state, &caller, &id, input).await?;
    }
    if let Some(alias) = &body.alias {
        check_alias(alias)?;
    }
    for _ in 0..5 {
        let (mut s, rev) = owned_schedule(&state, &caller, &id, &schedule_id).await?;
        apply(&mut s, &body)?;
        match state.store.update_schedule(&s, rev).await {
            Ok(_) => return Ok(ApiJson(s.into())),
            // A tick was handled meanwhile: apply the change to the new record.
            Err(faas_runtime::Error::Conflict(_)) => continue,
            Err(faas_runtime::Error::NotFound(_)) => return Err(ApiError::not_found("schedule")),
            Err(e) => return Err(e.into()),
        }
    }
    Err(ApiError::new(
        StatusCode::CONFLICT,
        "conflict",
        "the schedule kept changing; retry",
    ))
}

/// Applies a checked patch. Ticks count from now after an enable, a new
/// expression or a new zone (no catch-up for time it was off or different).
fn apply(s: &mut Schedule, p: &SchedulePatch) -> ApiResult<()> {
    let at = now();
    let cron = p
        .cron
        .as_deref()
        .map_or(s.cron.clone(), |c| c.trim().to_string());
    let timezone = p.timezone.clone().unwrap_or_else(|| s.timezone.clone());
    check_cron(&cron, &timezone)?;
    let enables = p.enabled == Some(true) && !s.enabled;
    if enables || cron != s.cron || timezone != s.timezone {
        s.last_tick = at;
    }
    s.cron = cron;
    s.timezone = timezone;
    if let Some(enabled) = p.enabled {
        s.enabled = enabled;
    }
    if let Some(input) = &p.input {
        s.input = input.clone();
    }
    if let Some(alias) = &p.alias {
        s.alias = alias.clone();
    }
    if let Some(catch_up) = p.catch_up {
        s.catch_up = catch_up;
    }
    s.updated_at = at;
    Ok(())
}

/// Deletes a schedule: ticks after this answer make no execution.
#[utoipa::path(delete, path = "/api/functions/{id}/schedules/{schedule_id}", tag = "schedules", security(("bearer" = [])),
    params(("id" = String, Path, description = "The function's id"),
        ("schedule_id" = String, Path, description = "The schedule's id")),
    responses((status = 204, description = "Deleted"),
        (status = 404, description = "No such function or schedule of the caller's", body = ErrorBody)))]
pub async fn delete(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    ApiPath((id, schedule_id)): ApiPath<(String, String)>,
) -> ApiResult<StatusCode> {
    let (s, _) = owned_schedule(&state, &caller, &id, &schedule_id).await?;
    state.store.delete_schedule(&s).await?;
    tracing::info!(schedule.id = %s.id, "schedule deleted");
    Ok(StatusCode::NO_CONTENT)
}
