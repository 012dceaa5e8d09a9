//! What a deploy or a new version asks for ([`Spec`]: JSON for an image,
//! multipart for a wasm module), and how it becomes a validated, compiled
//! [`FunctionVersion`] ([`build`]): the process's [`Validator`] checks the
//! upload -- no executor is involved.

use std::collections::BTreeMap;

use axum::extract::{FromRequest, Multipart, Request};
use axum::http::StatusCode;
use axum::http::header::CONTENT_TYPE;
use bytes::{Bytes, BytesMut};
use faas_runtime::model::version::validate_env;
use faas_runtime::model::{
    Function, FunctionVersion, ImageSpec, MAX_WARM, MODULES_BUCKET, PullPolicy, Runnable,
    RuntimeKind, now,
};
use faas_runtime::ports::{Upload, Validator};
use serde::Deserialize;

use super::MAX_DESCRIPTION_CHARS;
use crate::error::{ApiError, ApiJson, ApiResult};
use crate::state::AppState;

/// A deploy or new-version request, read but not yet validated.
pub(crate) struct Spec {
    pub description: String,
    pub timeout_secs: Option<u64>,
    pub memory_mb: Option<u64>,
    pub env: BTreeMap<String, String>,
    pub upload: Upload,
}

/// The JSON body of an image deploy or version.
#[derive(Deserialize)]
struct ImageBody {
    name: Option<String>,
    image_url: String,
    #[serde(default)]
    description: String,
    timeout_secs: Option<u64>,
    memory_mb: Option<u64>,
    pull_policy: Option<PullPolicy>,
    warm: Option<u32>,
    #[serde(default)]
    env: BTreeMap<String, String>,
}

/// Longest text field of a form (bytes: a longest description in 4-byte
/// characters).
const MAX_FORM_FIELD: usize = 4 * MAX_DESCRIPTION_CHARS;

/// Longest `env` form field: 64 values of 4 KiB, escaped, with their names.
const MAX_ENV_FIELD: usize = 1024 * 1024;

/// Reads the request: multipart for wasm, else JSON for an image. Returns the
/// `name` given (deploys need one; a new version ignores it) and the spec.
pub(crate) async fn read(state: &AppState, req: Request) -> ApiResult<(Option<String>, Spec)> {
    let content_type = req
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    if content_type.starts_with("multipart/form-data") {
        let form = Multipart::from_request(req, state)
            .await
            .map_err(|e| ApiError::bad_request("malformed_multipart", e.body_text()))?;
        return read_form(state, form).await;
    }
    let ApiJson(b) = ApiJson::<ImageBody>::from_request(req, state).await?;
    let spec = Spec {
        description: b.description,
        timeout_secs: b.timeout_secs,
        memory_mb: b.memory_mb,
        env: b.env,
        upload: Upload::Image(ImageSpec {
            image_url: b.image_url,
            pull_policy: b.pull_policy,
            warm: b.warm,
        }),
    };
    Ok((b.name, spec))
}

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

async fn read_module(
    state: &AppState,
    field: &mut axum::extract::multipart::Field<'_>,
) -> ApiResult<Bytes> {
    let mut buf = BytesMut::new();
    while let Some(chunk) = field
        .chunk()
        .await
        .map_err(|e| ApiError::bad_request("malformed_multipart", e.body_text()))?
    {
        if buf.len() + chunk.len() > state.limits.max_module_bytes {
            return Err(ApiError::too_large(format!(
                "module is larger than {} bytes",
                state.limits.max_module_bytes
            )));
        }
        buf.extend_from_slice(&chunk);
    }
    Ok(buf.freeze())
}

async fn read_form(state: &AppState, mut form: Multipart) -> ApiResult<(Option<String>, Spec)> {
    let (mut name, mut module) = (None, None);
    let mut spec = Spec {
        description: String::new(),
        timeout_secs: None,
        memory_mb: None,
        env: BTreeMap::new(),
        upload: Upload::Wasm(Bytes::new()),
    };
    let bad = |e: axum::extract::multipart::MultipartError| {
        ApiError::bad_request("malformed_multipart", e.body_text())
    };
    while let Some(mut field) = form.next_field().await.map_err(bad)? {
        let field_name = field.name().unwrap_or("").to_string();
        if field_name == "module" {
            module = Some(read_module(state, &mut field).await?);
            continue;
        }
        let max = match field_name.as_str() {
            "env" => MAX_ENV_FIELD,
            _ => MAX_FORM_FIELD,
        };
        let text = bounded_text(&mut field, max).await?;
        let invalid = |what: &str| {
            ApiError::bad_request("invalid_field", format!("{field_name} must be {what}"))
        };
        let number = |t: &str| {
            t.trim()
                .parse::<u64>()
                .map_err(|_| invalid("a whole number"))
        };
        match field_name.as_str() {
            "name" => name = Some(text),
            "description" => spec.description = text,
            "timeout_secs" => spec.timeout_secs = Some(number(&text)?),
            "memory_mb" => spec.memory_mb = Some(number(&text)?),
            "env" => {
                spec.env = serde_json::from_str(&text)
                    .map_err(|_| invalid("a JSON object of string values"))?
            }
            _ => {
                return Err(ApiError::bad_request(
                    "invalid_field",
                    format!("unknown form field {field_name:?}"),
                ));
            }
        }
    }
    let module = module.ok_or_else(|| {
        ApiError::bad_request("missing_field", "file field `module` (.wasm) is required")
    })?;
    spec.upload = Upload::Wasm(module);
    Ok((name, spec))
}

/// Validates `spec` as a version of `base` (the function, or the one being
/// deployed) with the process's validator, checks that a worker can run it and
/// stores a wasm module. The version's number is left 0.
pub(crate) async fn build(
    state: &AppState,
    base: &Function,
    spec: Spec,
) -> ApiResult<(FunctionVersion, Option<Bytes>)> {
    let mut v = limits(state, base, &spec)?;
    let kind = spec.upload.kind();
    if let Upload::Image(image) = &spec.upload {
        super::validate_image_ref(&image.image_url)?;
        if image.warm.is_some_and(|n| n > MAX_WARM) {
            return Err(ApiError::bad_request(
                "invalid_warm",
                format!("warm must be 0-{MAX_WARM}"),
            ));
        }
    }
    let module = match &spec.upload {
        Upload::Wasm(bytes) => Some(bytes.clone()),
        Upload::Image(_) => None,
    };
    v.runnable = validator(state)?
        .validate(spec.upload)
        .await
        .map_err(invalid_as(invalid_code(kind)))?;
    if !state.executors.contains_key(&kind) {
        super::ensure_offered(state, kind).await?;
    }
    if let Some(module) = &module {
        put_module(state, &v, module.clone()).await?;
    }
    Ok((v, module))
}

/// The process's validator; a listener without one (capabilities only) takes
/// no deploys.
fn validator(state: &AppState) -> ApiResult<&dyn Validator> {
    state.validator.as_deref().ok_or_else(|| {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "this listener takes no deploys",
        )
    })
}

/// The error code of a refused upload of `kind`.
fn invalid_code(kind: RuntimeKind) -> &'static str {
    match kind {
        RuntimeKind::Wasm => "invalid_module",
        RuntimeKind::Docker => "invalid_image",
    }
}

/// A version of `base` with the checked description, limits and env of `spec`;
/// what it runs is filled in by [`build`].
fn limits(state: &AppState, base: &Function, spec: &Spec) -> ApiResult<FunctionVersion> {
    if spec.description.chars().count() > MAX_DESCRIPTION_CHARS {
        return Err(ApiError::bad_request(
            "invalid_description",
            format!("description is limited to {MAX_DESCRIPTION_CHARS} characters"),
        ));
    }
    let l = &state.limits;
    let timeout_secs = spec.timeout_secs.unwrap_or(l.default_timeout_secs);
    if timeout_secs == 0 || timeout_secs > l.max_timeout_secs {
        return Err(ApiError::bad_request(
            "invalid_timeout",
            format!("timeout_secs must be 1-{}", l.max_timeout_secs),
        ));
    }
    let memory_mb = spec.memory_mb.unwrap_or(l.default_memory_mb);
    if !(1..=l.max_memory_mb).contains(&memory_mb) {
        return Err(ApiError::bad_request(
            "invalid_memory",
            format!("memory_mb must be 1-{}", l.max_memory_mb),
        ));
    }
    validate_env(&spec.env).map_err(invalid_as("invalid_env"))?;
    Ok(FunctionVersion {
        function_id: base.id.clone(),
        version: 0,
        description: spec.description.clone(),
        runnable: Runnable::Wasm(Default::default()),
        timeout_secs,
        memory_mb,
        env: spec.env.clone(),
        created_at: now(),
    })
}

async fn put_module(state: &AppState, v: &FunctionVersion, module: Bytes) -> ApiResult<()> {
    let Some(sha) = v.runnable.module_sha256() else {
        return Ok(());
    };
    let body = futures::stream::once(async move { Ok::<_, std::io::Error>(module) });
    state
        .objects
        .put(
            MODULES_BUCKET,
            sha,
            "application/wasm",
            Box::pin(body),
            u64::MAX,
        )
        .await?;
    Ok(())
}

/// After the version is recorded: a delete of the last other user of its module
/// may have removed the bytes between their put and the record; put them back.
pub(crate) async fn keep_module(
    state: &AppState,
    v: &FunctionVersion,
    module: Option<Bytes>,
) -> ApiResult<()> {
    let (Some(sha), Some(module)) = (v.runnable.module_sha256(), module) else {
        return Ok(());
    };
    if let Err(faas_runtime::Error::NotFound(_)) = state.objects.head(MODULES_BUCKET, sha).await {
        put_module(state, v, module).await?;
    }
    Ok(())
}

/// Maps a runtime `Invalid` to a 400 with `code`.
pub(crate) fn invalid_as(code: &'static str) -> impl Fn(faas_runtime::Error) -> ApiError {
    move |e| match e {
        faas_runtime::Error::Invalid(m) => ApiError::bad_request(code, m),
        other => other.into(),
    }
}
