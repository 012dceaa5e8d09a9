//! `/api/functions`: deploy (JSON for images, multipart for wasm), list, get,
//! delete; [`spec`] reads and builds what a deploy or a new version runs.

pub(crate) mod spec;

use std::collections::BTreeMap;

use axum::Extension;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use faas_runtime::model::version::{MAX_ENV_VALUE_BYTES, MAX_ENV_VARS};
use faas_runtime::model::{
    Function, FunctionVersion, MODULES_BUCKET, PullPolicy, Runnable, RuntimeKind, VersionIndex,
    new_id, now, objects_bucket, validate_name,
};
use faas_runtime::ports::Upload;
use serde::{Deserialize, Serialize};

use super::users::PageQuery;
use crate::auth::Caller;
use crate::error::{ApiError, ApiJson, ApiPath, ApiQuery, ApiResult, ErrorBody};
use crate::state::AppState;

/// An image function to deploy (documentation of the JSON body).
#[derive(Deserialize, utoipa::ToSchema)]
#[allow(dead_code)]
pub struct ImageFunction {
    /// Name (1-128 of `A-Z a-z 0-9 . _ -`, not starting with a dot).
    #[schema(
        pattern = "^[A-Za-z0-9_-][A-Za-z0-9._-]{0,127}$",
        min_length = 1,
        max_length = 128
    )]
    pub name: String,
    /// OCI image reference (1-512 of `A-Z a-z 0-9 . / : _ - @`, starting with a
    /// letter, digit, `.` or `_`); an engine may refuse more.
    #[schema(
        pattern = "^[A-Za-z0-9._][A-Za-z0-9./:_@-]{0,511}$",
        min_length = 1,
        max_length = 512
    )]
    pub image_url: String,
    /// Free text (at most 4096 characters).
    #[serde(default)]
    #[schema(max_length = 4096)]
    pub description: String,
    /// Timeout in seconds (default 300, capped by the operator).
    #[schema(minimum = 1)]
    pub timeout_secs: Option<u64>,
    /// Memory limit in MiB (default 512, capped by the operator).
    #[schema(minimum = 1)]
    pub memory_mb: Option<u64>,
    /// `if-not-present` (default), `always` or `never`.
    pub pull_policy: Option<PullPolicy>,
    /// Warm containers kept ready, 0-8 (default: one while the function was invoked
    /// in the last 10 minutes, none after; 0: always start a container per execution).
    #[schema(minimum = 0, maximum = 8)]
    pub warm: Option<u32>,
    /// Non-secret configuration of version 1, given to the function as env vars.
    #[serde(default)]
    #[schema(schema_with = env_schema)]
    pub env: BTreeMap<String, String>,
}

/// The schema of a version's `env`.
pub(crate) fn env_schema() -> utoipa::openapi::schema::Schema {
    let schema = serde_json::json!({
        "type": "object",
        "description": format!("Non-secret configuration given to the function as env vars \
            (names upper-cased, as secrets; a secret of the same name wins), listed in the clear. \
            Names as for secrets (not `API_BASE_URL` nor `FAAS_*`, no two equal ignoring case), \
            values up to {MAX_ENV_VALUE_BYTES} bytes, at most {MAX_ENV_VARS} entries."),
        "maxProperties": MAX_ENV_VARS,
        "propertyNames": {"pattern": crate::openapi::NAME_PATTERN},
        "additionalProperties": {"type": "string", "maxLength": MAX_ENV_VALUE_BYTES},
    });
    serde_json::from_value(schema).unwrap_or_default()
}

/// The schema of a form's `env`: JSON text of an [`env_schema`] object.
pub(crate) fn env_form_schema() -> utoipa::openapi::schema::Schema {
    let schema = serde_json::json!({
        "type": "string",
        "description": format!("JSON text of an object: non-secret configuration given to \
            the function as env vars (names as for secrets, values up to \
            {MAX_ENV_VALUE_BYTES} bytes, at most {MAX_ENV_VARS} entries)."),
    });
    serde_json::from_value(schema).unwrap_or_default()
}

/// The multipart form of a wasm deploy; no other part is taken (documentation only).
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
pub struct WasmFunctionForm {
    /// Name (1-128 of `A-Z a-z 0-9 . _ -`, not starting with a dot).
    #[schema(
        pattern = "^[A-Za-z0-9_-][A-Za-z0-9._-]{0,127}$",
        min_length = 1,
        max_length = 128
    )]
    name: String,
    /// Free text (at most 4096 characters).
    #[schema(max_length = 4096)]
    description: Option<String>,
    /// Timeout in seconds (default 300, capped by the operator).
    #[schema(minimum = 1)]
    timeout_secs: Option<u64>,
    /// Memory limit in MiB (default 512, capped by the operator).
    #[schema(minimum = 1)]
    memory_mb: Option<u64>,
    /// The `.wasm` module or component (at most the operator's module limit).
    #[schema(value_type = String, format = Binary)]
    module: Vec<u8>,
    /// Non-secret configuration as JSON text, e.g. `{"GREETING":"hi"}`.
    #[schema(schema_with = env_form_schema)]
    env: Option<String>,
}

/// Longest function description, in characters.
pub const MAX_DESCRIPTION_CHARS: usize = 4096;

/// `{"functions": [...]}`.
#[derive(Serialize, utoipa::ToSchema)]
pub struct FunctionList {
    /// The page, newest first.
    pub functions: Vec<Function>,
    /// Cursor of the next page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

/// Deploys a function (its version 1): JSON for an image, multipart (`module`
/// file) for wasm.
#[utoipa::path(post, path = "/api/functions", tag = "functions", security(("bearer" = [])),
    request_body(content((ImageFunction = "application/json"), (WasmFunctionForm = "multipart/form-data"))),
    responses((status = 201, description = "Deployed", body = Function),
        (status = 409, description = "The caller has a function of that name (names compare case-insensitively)", body = ErrorBody),
        (status = 429, description = "A per-user quota is reached (`quota_exceeded`, names the quota; `Retry-After` for rates)", body = ErrorBody),
        (status = 400, description = "Invalid field, env, module or image reference, a malformed body, or a runtime no process can run now (`runtime_unavailable`, e.g. no Docker engine)", body = ErrorBody),
        (status = 413, description = "The body or the module is too large", body = ErrorBody),
        (status = 503, description = "Too many modules are compiling, or a backend is unavailable", body = ErrorBody)))]
pub async fn create(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    req: Request,
) -> ApiResult<impl IntoResponse> {
    crate::quotas::check_functions(&state, &caller.id).await?;
    let (name, spec) = spec::read(&state, req).await?;
    let name = name.ok_or_else(|| match spec.upload {
        Upload::Wasm(_) => ApiError::bad_request("missing_field", "form field `name` is required"),
        Upload::Image(_) => ApiError::bad_request("malformed_json", "missing field `name`"),
    })?;
    validate_name("function", &name)?;
    let mut function = Function {
        id: new_id(),
        owner_id: caller.id.clone(),
        name,
        description: spec.description.clone(),
        runnable: Runnable::Wasm(Default::default()),
        timeout_secs: 0,
        memory_mb: 0,
        created_at: now(),
        versions: VersionIndex::first(),
    };
    let (mut version, module) = spec::build(&state, &function, spec).await?;
    version.version = 1;
    version.mirror_into(&mut function);
    function.created_at = version.created_at;
    state.store.create_function(&function).await?;
    if let Err(e) = state.store.create_version(&version).await {
        let _ = state.store.delete_function(&function).await;
        return Err(e.into());
    }
    spec::keep_module(&state, &version, module).await?;
    tracing::info!(function.id = %function.id, runtime = function.runnable.kind().as_str(), "function deployed");
    Ok((StatusCode::CREATED, ApiJson(function)))
}

/// For a runtime this process has no executor for: a live worker must offer it
/// (`faas api` runs no worker; its workers' heartbeats list their runtimes), else
/// 400 at once with the reason -- a function nothing can run would leave its
/// executions waiting. (Retrying once a worker with that runtime runs succeeds.)
pub(crate) async fn ensure_offered(state: &AppState, runtime: RuntimeKind) -> ApiResult<()> {
    if faas_runtime::worker::presence::offered(&state.store, runtime).await? {
        return Ok(());
    }
    let name = runtime.as_str();
    Err(ApiError::new(
        StatusCode::BAD_REQUEST,
        "runtime_unavailable",
        format!(
            "no {name} executor is available: no running worker can run {name} functions \
             (for docker: no Docker engine, or FAAS_DOCKER=off)"
        ),
    ))
}

/// A basic syntax check of an image reference (the Docker executor checks more).
pub(crate) fn validate_image_ref(r: &str) -> ApiResult<()> {
    let ok = !r.is_empty()
        && r.len() <= 512
        && !r.starts_with(['-', '/', ':', '@'])
        && r.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"./:_-@".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(ApiError::bad_request(
            "invalid_image",
            format!("{r:?} is not a valid image reference"),
        ))
    }
}

/// Lists the caller's functions, newest first.
#[utoipa::path(get, path = "/api/functions", tag = "functions", params(PageQuery), security(("bearer" = [])),
    responses((status = 200, description = "A page of the caller's functions", body = FunctionList)))]
pub async fn list(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    ApiQuery(q): ApiQuery<PageQuery>,
) -> ApiResult<ApiJson<FunctionList>> {
    let page = state
        .store
        .list_functions(&caller.id, q.cursor.as_deref(), super::page_limit(q.limit)?)
        .await?;
    Ok(ApiJson(FunctionList {
        functions: page.items,
        next_cursor: page.next_cursor,
    }))
}

/// True for text shaped like an id (at most 64 of `[A-Za-z0-9-]`): anything else
/// names nothing and is not looked up.
pub fn is_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= 64 && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

/// The caller's function.
pub async fn owned(state: &AppState, caller: &Caller, id: &str) -> ApiResult<Function> {
    if !is_id(id) {
        return Err(ApiError::not_found("function"));
    }
    state
        .store
        .get_function(id, Some(&caller.id))
        .await?
        .ok_or_else(|| ApiError::not_found("function"))
}

/// One of the caller's functions.
#[utoipa::path(get, path = "/api/functions/{id}", tag = "functions", security(("bearer" = [])),
    params(("id" = String, Path, description = "The function's id")),
    responses((status = 200, description = "The function", body = Function),
        (status = 404, description = "No such function of the caller's", body = ErrorBody)))]
pub async fn get(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<ApiJson<Function>> {
    Ok(ApiJson(owned(&state, &caller, &id).await?))
}

/// Deletes a function with its versions, aliases and objects. Its executions'
/// records stay. Its wasm modules (shared by every function and version deployed
/// with the same bytes, any owner) are dropped only when nothing else uses them.
#[utoipa::path(delete, path = "/api/functions/{id}", tag = "functions", security(("bearer" = [])),
    params(("id" = String, Path, description = "The function's id")),
    responses((status = 204, description = "Deleted with its objects"),
        (status = 404, description = "No such function of the caller's", body = ErrorBody)))]
pub async fn delete(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<StatusCode> {
    let f = owned(&state, &caller, &id).await?;
    let versions = state.store.list_versions(&f).await?;
    state.store.delete_function(&f).await?;
    if let Some(docker) = state.executors.get(&RuntimeKind::Docker) {
        // Its warm containers (in this process; other workers' go at their next sweep).
        docker.forget(&f).await;
    }
    state.objects.delete_bucket(&objects_bucket(&f.id)).await?;
    for v in &versions {
        release_module(&state, &f, v, None).await?;
    }
    tracing::info!(function.id = %f.id, "function deleted");
    Ok(StatusCode::NO_CONTENT)
}

/// After `v` of `f` (`version`: only that one, else the whole function) stopped
/// existing: drops its wasm module and compiled artifact unless something else
/// runs the same bytes (any owner).
pub(crate) async fn release_module(
    state: &AppState,
    f: &Function,
    v: &FunctionVersion,
    version: Option<u64>,
) -> ApiResult<()> {
    let Some(sha) = v.runnable.module_sha256() else {
        return Ok(());
    };
    if state.store.module_in_use(sha, &f.id, version).await? {
        tracing::info!(function.id = %f.id, module = %sha, "the module is shared and stays");
        return Ok(());
    }
    if let Some(executor) = state.executors.get(&v.runnable.kind()) {
        executor.forget(&v.apply(f)).await;
    }
    match state.objects.delete(MODULES_BUCKET, sha).await {
        Ok(()) | Err(faas_runtime::Error::NotFound(_)) => {}
        Err(e) => tracing::warn!(module = %sha, error = %e, "cannot remove an unused module"),
    }
    Ok(())
}
