//! `/api/functions`: deploy (JSON for images, multipart for wasm), list, get, delete.

use axum::Extension;
use axum::extract::{FromRequest, Multipart, Request, State};
use axum::http::StatusCode;
use axum::http::header::CONTENT_TYPE;
use axum::response::IntoResponse;
use bytes::{Bytes, BytesMut};
use faas_runtime::model::{
    Function, MODULES_BUCKET, PullPolicy, RuntimeKind, new_id, now, objects_bucket, validate_name,
};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::users::PageQuery;
use crate::auth::Caller;
use crate::error::{ApiError, ApiJson, ApiPath, ApiQuery, ApiResult, ErrorBody};
use crate::state::AppState;

/// An image function to deploy.
#[derive(Deserialize, utoipa::ToSchema)]
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

/// Deploys a function: JSON for an image, multipart (`module` file) for wasm.
#[utoipa::path(post, path = "/api/functions", tag = "functions", security(("bearer" = [])),
    request_body(content((ImageFunction = "application/json"), (WasmFunctionForm = "multipart/form-data"))),
    responses((status = 201, description = "Deployed", body = Function),
        (status = 409, description = "The caller has a function of that name (names compare case-insensitively)", body = ErrorBody),
        (status = 429, description = "A per-user quota is reached (`quota_exceeded`, names the quota; `Retry-After` for rates)", body = ErrorBody),
        (status = 400, description = "Invalid field, module or image reference, a malformed body, or a runtime no process can run now (`runtime_unavailable`, e.g. no Docker engine)", body = ErrorBody),
        (status = 413, description = "The body or the module is too large", body = ErrorBody),
        (status = 503, description = "Too many modules are compiling, or a backend is unavailable", body = ErrorBody)))]
pub async fn create(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    req: Request,
) -> ApiResult<impl IntoResponse> {
    let content_type = req
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    crate::quotas::check_functions(&state, &caller.id).await?;
    let function = if content_type.starts_with("multipart/form-data") {
        let form = Multipart::from_request(req, &state)
            .await
            .map_err(|e| ApiError::bad_request("malformed_multipart", e.body_text()))?;
        deploy_wasm(&state, &caller, form).await?
    } else {
        let ApiJson(body) = ApiJson::<ImageFunction>::from_request(req, &state).await?;
        deploy_image(&state, &caller, body).await?
    };
    tracing::info!(function.id = %function.id, runtime = ?function.runtime, "function deployed");
    Ok((StatusCode::CREATED, ApiJson(function)))
}

fn new_function(
    state: &AppState,
    caller: &Caller,
    name: String,
    description: String,
    timeout: Option<u64>,
    memory: Option<u64>,
    runtime: RuntimeKind,
) -> ApiResult<Function> {
    validate_name("function", &name)?;
    if description.chars().count() > MAX_DESCRIPTION_CHARS {
        return Err(ApiError::bad_request(
            "invalid_description",
            format!("description is limited to {MAX_DESCRIPTION_CHARS} characters"),
        ));
    }
    let l = &state.limits;
    let timeout_secs = timeout.unwrap_or(l.default_timeout_secs);
    if timeout_secs == 0 || timeout_secs > l.max_timeout_secs {
        return Err(ApiError::bad_request(
            "invalid_timeout",
            format!("timeout_secs must be 1-{}", l.max_timeout_secs),
        ));
    }
    let memory_mb = memory.unwrap_or(l.default_memory_mb);
    if !(1..=l.max_memory_mb).contains(&memory_mb) {
        return Err(ApiError::bad_request(
            "invalid_memory",
            format!("memory_mb must be 1-{}", l.max_memory_mb),
        ));
    }
    Ok(Function {
        id: new_id(),
        owner_id: caller.id.clone(),
        name,
        description,
        runtime,
        image_url: None,
        pull_policy: None,
        module_sha256: None,
        module_size: None,
        timeout_secs,
        memory_mb,
        created_at: now(),
    })
}

async fn deploy_image(
    state: &AppState,
    caller: &Caller,
    body: ImageFunction,
) -> ApiResult<Function> {
    let mut f = new_function(
        state,
        caller,
        body.name,
        body.description,
        body.timeout_secs,
        body.memory_mb,
        RuntimeKind::Docker,
    )?;
    validate_image_ref(&body.image_url)?;
    f.image_url = Some(body.image_url);
    f.pull_policy = body.pull_policy;
    match state.executors.get(&RuntimeKind::Docker) {
        Some(docker) => docker
            .prepare(&f, None)
            .await
            .map_err(invalid_as("invalid_image"))?,
        None => ensure_offered(state, RuntimeKind::Docker).await?,
    }
    state.store.create_function(&f).await?;
    Ok(f)
}

/// For a runtime this process has no executor for: a live worker must offer it
/// (`faas api` runs no worker; its workers' heartbeats list their runtimes), else
/// 400 at once with the reason -- a function nothing can run would leave its
/// executions waiting. (Retrying once a worker with that runtime runs succeeds.)
async fn ensure_offered(state: &AppState, runtime: RuntimeKind) -> ApiResult<()> {
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

fn invalid_as(code: &'static str) -> impl Fn(faas_runtime::Error) -> ApiError {
    move |e| match e {
        faas_runtime::Error::Invalid(m) => ApiError::bad_request(code, m),
        other => other.into(),
    }
}

#[derive(Default)]
struct WasmForm {
    name: Option<String>,
    description: String,
    timeout_secs: Option<u64>,
    memory_mb: Option<u64>,
    module: Option<Bytes>,
}

/// Longest text field of a deploy form (bytes: a longest description in 4-byte
/// characters).
const MAX_FORM_FIELD: usize = 4 * MAX_DESCRIPTION_CHARS;

/// A text form field of at most `max` bytes, read without buffering more.
async fn bounded_text(
    field: &mut axum::extract::multipart::Field<'_>,
    max: usize,
) -> ApiResult<String> {
    let name = field.name().unwrap_or("").to_string();
    let mut buf = Vec::new();
    while let Some(chunk) = field
        .chunk()
        .await
        .map_err(|e| ApiError::bad_request("malformed_multipart", e.body_text()))?
    {
        if buf.len() + chunk.len() > max {
            return Err(ApiError::bad_request(
                "invalid_field",
                format!("form field {name:?} is longer than {max} bytes"),
            ));
        }
        buf.extend_from_slice(&chunk);
    }
    String::from_utf8(buf).map_err(|_| {
        ApiError::bad_request("invalid_field", format!("form field {name:?} is not UTF-8"))
    })
}

async fn read_form(state: &AppState, mut form: Multipart) -> ApiResult<WasmForm> {
    let mut out = WasmForm::default();
    let bad = |e: axum::extract::multipart::MultipartError| {
        ApiError::bad_request("malformed_multipart", e.body_text())
    };
    while let Some(mut field) = form.next_field().await.map_err(bad)? {
        let name = field.name().unwrap_or("").to_string();
        if name == "module" {
            let mut buf = BytesMut::new();
            while let Some(chunk) = field.chunk().await.map_err(bad)? {
                if buf.len() + chunk.len() > state.limits.max_module_bytes {
                    return Err(ApiError::too_large(format!(
                        "module is larger than {} bytes",
                        state.limits.max_module_bytes
                    )));
                }
                buf.extend_from_slice(&chunk);
            }
            out.module = Some(buf.freeze());
            continue;
        }
        let text = bounded_text(&mut field, MAX_FORM_FIELD).await?;
        let number = |t: &str| {
            t.trim().parse::<u64>().map_err(|_| {
                ApiError::bad_request("invalid_field", format!("{name} must be a whole number"))
            })
        };
        match name.as_str() {
            "name" => out.name = Some(text),
            "description" => out.description = text,
            "timeout_secs" => out.timeout_secs = Some(number(&text)?),
            "memory_mb" => out.memory_mb = Some(number(&text)?),
            _ => {
                return Err(ApiError::bad_request(
                    "invalid_field",
                    format!("unknown form field {name:?}"),
                ));
            }
        }
    }
    Ok(out)
}

async fn deploy_wasm(state: &AppState, caller: &Caller, form: Multipart) -> ApiResult<Function> {
    let form = read_form(state, form).await?;
    let name = form
        .name
        .ok_or_else(|| ApiError::bad_request("missing_field", "form field `name` is required"))?;
    let module = form.module.ok_or_else(|| {
        ApiError::bad_request("missing_field", "file field `module` (.wasm) is required")
    })?;
    let mut f = new_function(
        state,
        caller,
        name,
        form.description,
        form.timeout_secs,
        form.memory_mb,
        RuntimeKind::Wasm,
    )?;
    let sha = hex::encode(Sha256::digest(&module));
    f.module_sha256 = Some(sha.clone());
    f.module_size = Some(module.len() as u64);
    let wasm = state.executors.get(&RuntimeKind::Wasm).ok_or_else(|| {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "no wasm executor is configured",
        )
    })?;
    wasm.prepare(&f, Some(module.clone()))
        .await
        .map_err(invalid_as("invalid_module"))?;
    let bytes = module.clone();
    let body = futures::stream::once(async move { Ok::<_, std::io::Error>(bytes) });
    state
        .objects
        .put(
            MODULES_BUCKET,
            &sha,
            "application/wasm",
            Box::pin(body),
            u64::MAX,
        )
        .await?;
    state.store.create_function(&f).await?;
    // A delete of the last other function of this module may have removed the
    // bytes between the put and the create: put them back.
    if let Err(faas_runtime::Error::NotFound(_)) = state.objects.head(MODULES_BUCKET, &sha).await {
        let body = futures::stream::once(async move { Ok::<_, std::io::Error>(module) });
        let body = Box::pin(body);
        state
            .objects
            .put(MODULES_BUCKET, &sha, "application/wasm", body, u64::MAX)
            .await?;
    }
    Ok(f)
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

/// Deletes a function and its objects. Its executions' records stay. Its wasm
/// module (shared by every function deployed with the same bytes, any owner) is
/// dropped only when no other function uses it.
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
    state.store.delete_function(&f).await?;
    state.objects.delete_bucket(&objects_bucket(&f.id)).await?;
    if let Some(sha) = &f.module_sha256
        && state.store.module_in_use(sha, &f.id).await?
    {
        tracing::info!(function.id = %f.id, module = %sha, "function deleted; its module is shared and stays");
        return Ok(StatusCode::NO_CONTENT);
    }
    if let Some(executor) = state.executors.get(&f.runtime) {
        executor.forget(&f).await;
    }
    if let Some(sha) = &f.module_sha256 {
        match state.objects.delete(MODULES_BUCKET, sha).await {
            Ok(()) | Err(faas_runtime::Error::NotFound(_)) => {}
            Err(e) => tracing::warn!(module = %sha, error = %e, "cannot remove an unused module"),
        }
    }
    tracing::info!(function.id = %f.id, "function deleted");
    Ok(StatusCode::NO_CONTENT)
}
