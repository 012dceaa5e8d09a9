//! `/api/function-objects/:function_id[/:name]`: streamed upload (multipart `file`
//! or a raw body), download with the original Content-Type, list, delete; and
//! `/api/exec-objects/:token/...`, the capability URL a running execution uses.

use axum::Extension;
use axum::body::Body;
use axum::extract::{FromRequest, Multipart, Request, State};
use axum::http::header::{
    CACHE_CONTROL, CONTENT_DISPOSITION, CONTENT_LENGTH, CONTENT_SECURITY_POLICY, CONTENT_TYPE,
    X_CONTENT_TYPE_OPTIONS,
};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use faas_runtime::model::{ObjectMeta, objects_bucket, validate_name};
use faas_runtime::ports::BodyStream;
use faas_runtime::worker::grant_key;
use futures::{StreamExt, TryStreamExt};
use serde::{Deserialize, Serialize};

use crate::auth::Caller;
use crate::error::{ApiError, ApiJson, ApiPath, ApiResult, ErrorBody};
use crate::state::AppState;

/// `{"objects": [...]}`.
#[derive(Serialize, utoipa::ToSchema)]
pub struct ObjectList {
    /// Objects by name.
    pub objects: Vec<ObjectMeta>,
}

/// The multipart form of an upload: exactly one part, `file` (documentation only).
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
pub struct ObjectUploadForm {
    /// The object's bytes; the part's Content-Type is kept.
    #[schema(value_type = String, format = Binary)]
    file: Vec<u8>,
}

/// Multipart slack over the object limit before a Content-Length is refused.
const MULTIPART_SLACK: u64 = 64 * 1024;

/// Uploads (or replaces) an object, streaming it to the store.
#[utoipa::path(post, path = "/api/function-objects/{function_id}/{name}", tag = "objects", security(("bearer" = [])),
    params(("function_id" = String, Path, description = "The function's id"), ("name" = String, Path, description = "The object's name (1-128 of `A-Z a-z 0-9 . _ -`, not starting with a dot)", pattern = "^[A-Za-z0-9_-][A-Za-z0-9._-]{0,127}$", min_length = 1, max_length = 128)),
    request_body(description = "The raw bytes (their Content-Type is kept), or a multipart form with a `file` part",
        content((String = "application/octet-stream"), (ObjectUploadForm = "multipart/form-data"))),
    responses((status = 201, description = "Stored (replacing an object of that name)", body = ObjectMeta),
        (status = 429, description = "A per-user quota is reached (`quota_exceeded`, names the quota; `Retry-After` for rates)", body = ErrorBody),
        (status = 400, description = "Invalid name, or a malformed multipart body", body = ErrorBody),
        (status = 404, description = "No such function of the caller's", body = ErrorBody),
        (status = 413, description = "Larger than the operator's object limit", body = ErrorBody)))]
pub async fn upload(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    ApiPath((fid, name)): ApiPath<(String, String)>,
    req: Request,
) -> ApiResult<impl IntoResponse> {
    super::functions::owned(&state, &caller, &fid).await?;
    validate_name("object", &name)?;
    let bucket = objects_bucket(&fid);
    let limit = state.limits.max_object_bytes;
    let room = crate::quotas::object_room(&state, &caller.id, (&bucket, &name)).await?;
    let max = room.map_or(limit, |r| r.min(limit));
    let over = |e: ApiError| match room {
        Some(r) if r < limit && e.status == StatusCode::PAYLOAD_TOO_LARGE => {
            crate::quotas::exceeded("max_object_bytes", r, None)
        }
        _ => e,
    };
    let meta = receive(&state, &bucket, &name, max, req)
        .await
        .map_err(over)?;
    tracing::info!(function.id = %fid, object = %name, size = meta.size, "object stored");
    Ok((StatusCode::CREATED, ApiJson(meta)))
}

/// Longest Content-Type kept with an object.
const MAX_CONTENT_TYPE: usize = 255;

/// Streams the request's body (raw, or a multipart `file` field) into the store.
async fn receive(
    state: &AppState,
    bucket: &str,
    name: &str,
    max: u64,
    req: Request,
) -> ApiResult<ObjectMeta> {
    let declared = header_u64(req.headers(), CONTENT_LENGTH);
    let content_type = content_type_of(
        req.headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok()),
    )?;
    if !content_type.starts_with("multipart/form-data") {
        if declared.is_some_and(|n| n > max) {
            return Err(too_large(max));
        }
        let body: BodyStream<'_> = req
            .into_body()
            .into_data_stream()
            .map_err(std::io::Error::other)
            .boxed();
        return Ok(state
            .objects
            .put(bucket, name, &content_type, body, max)
            .await?);
    }
    if declared.is_some_and(|n| n > max + MULTIPART_SLACK) {
        return Err(too_large(max));
    }
    put_multipart(state, req, bucket, name, max).await
}

/// The Content-Type to keep: given or `application/octet-stream`; at most
/// [`MAX_CONTENT_TYPE`] printable ASCII characters.
fn content_type_of(given: Option<&str>) -> ApiResult<String> {
    let ct = given.unwrap_or("application/octet-stream").trim();
    if ct.len() > MAX_CONTENT_TYPE || !ct.bytes().all(|b| (0x20..0x7f).contains(&b)) {
        return Err(ApiError::bad_request(
            "invalid_content_type",
            format!("Content-Type must be at most {MAX_CONTENT_TYPE} printable ASCII characters"),
        ));
    }
    Ok(if ct.is_empty() {
        "application/octet-stream".into()
    } else {
        ct.to_string()
    })
}

/// Stores the one `file` part of a multipart upload; any other part is refused (400,
/// and an object stored before a trailing part is seen is removed again).
async fn put_multipart(
    state: &AppState,
    req: Request,
    bucket: &str,
    name: &str,
    max: u64,
) -> ApiResult<ObjectMeta> {
    let mut form = Multipart::from_request(req, state)
        .await
        .map_err(|e| ApiError::bad_request("malformed_multipart", e.body_text()))?;
    let bad = |e: axum::extract::multipart::MultipartError| {
        ApiError::bad_request("malformed_multipart", e.body_text())
    };
    let only_file = |part: Option<&str>| {
        ApiError::bad_request(
            "invalid_field",
            format!("unknown form field {part:?}; an upload has one part, `file`"),
        )
    };
    let field = form.next_field().await.map_err(bad)?.ok_or_else(|| {
        ApiError::bad_request("missing_field", "multipart upload needs a `file` field")
    })?;
    if field.name() != Some("file") {
        return Err(only_file(field.name()));
    }
    let ct = content_type_of(field.content_type())?;
    let body: BodyStream<'_> = field.map_err(std::io::Error::other).boxed();
    let meta = state.objects.put(bucket, name, &ct, body, max).await?;
    let trailing = match form.next_field().await {
        Ok(None) => return Ok(meta),
        Ok(Some(field)) => only_file(field.name()),
        Err(e) => bad(e),
    };
    state
        .objects
        .delete(bucket, name)
        .await
        .map_err(object_error)?;
    Err(trailing)
}

fn header_u64(h: &HeaderMap, name: axum::http::HeaderName) -> Option<u64> {
    h.get(name)?.to_str().ok()?.parse().ok()
}

/// A missing object is the API's 404; anything else maps as usual.
fn object_error(e: faas_runtime::Error) -> ApiError {
    match e {
        faas_runtime::Error::NotFound(_) => ApiError::not_found("object"),
        other => other.into(),
    }
}

fn too_large(max: u64) -> ApiError {
    ApiError::too_large(format!("objects are limited to {max} bytes"))
}

/// Downloads an object with its original Content-Type.
#[utoipa::path(get, path = "/api/function-objects/{function_id}/{name}", tag = "objects", security(("bearer" = [])),
    params(("function_id" = String, Path, description = "The function's id"), ("name" = String, Path, description = "The object's name (1-128 of `A-Z a-z 0-9 . _ -`, not starting with a dot)", pattern = "^[A-Za-z0-9_-][A-Za-z0-9._-]{0,127}$", min_length = 1, max_length = 128)),
    responses((status = 200, description = "The bytes, with the Content-Type they were stored with", content_type = "*/*", body = String),
        (status = 404, description = "No such function of the caller's, or no such object", body = ErrorBody)))]
pub async fn download(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    ApiPath((fid, name)): ApiPath<(String, String)>,
) -> ApiResult<Response> {
    super::functions::owned(&state, &caller, &fid).await?;
    stream_object(&state, &fid, &name).await
}

async fn stream_object(state: &AppState, fid: &str, name: &str) -> ApiResult<Response> {
    validate_name("object", name).map_err(|_| ApiError::not_found("object"))?;
    let (meta, body) = state
        .objects
        .get(&objects_bucket(fid), name)
        .await
        .map_err(object_error)?;
    // Never a page on the API's origin: a download, not sniffed, in a sandbox.
    Response::builder()
        .header(CONTENT_TYPE, meta.content_type)
        .header(CONTENT_LENGTH, meta.size)
        .header(
            CONTENT_DISPOSITION,
            format!("attachment; filename=\"{}\"", meta.name),
        )
        .header(X_CONTENT_TYPE_OPTIONS, "nosniff")
        .header(CONTENT_SECURITY_POLICY, "sandbox; default-src 'none'")
        .header(CACHE_CONTROL, "private, no-store")
        .body(Body::from_stream(body))
        .map_err(|e| faas_runtime::Error::Internal(e.to_string()).into())
}

/// Deletes an object.
#[utoipa::path(delete, path = "/api/function-objects/{function_id}/{name}", tag = "objects", security(("bearer" = [])),
    params(("function_id" = String, Path, description = "The function's id"), ("name" = String, Path, description = "The object's name (1-128 of `A-Z a-z 0-9 . _ -`, not starting with a dot)", pattern = "^[A-Za-z0-9_-][A-Za-z0-9._-]{0,127}$", min_length = 1, max_length = 128)),
    responses((status = 204, description = "Deleted"),
        (status = 404, description = "No such function of the caller's, or no such object", body = ErrorBody)))]
pub async fn delete(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    ApiPath((fid, name)): ApiPath<(String, String)>,
) -> ApiResult<StatusCode> {
    super::functions::owned(&state, &caller, &fid).await?;
    validate_name("object", &name).map_err(|_| ApiError::not_found("object"))?;
    state
        .objects
        .delete(&objects_bucket(&fid), &name)
        .await
        .map_err(object_error)?;
    Ok(StatusCode::NO_CONTENT)
}

/// Lists a function's objects.
#[utoipa::path(get, path = "/api/function-objects/{function_id}", tag = "objects", security(("bearer" = [])),
    params(("function_id" = String, Path, description = "The function's id")),
    responses((status = 200, description = "The function's objects", body = ObjectList),
        (status = 404, description = "No such function of the caller's", body = ErrorBody)))]
pub async fn list(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    ApiPath(fid): ApiPath<String>,
) -> ApiResult<ApiJson<ObjectList>> {
    super::functions::owned(&state, &caller, &fid).await?;
    Ok(ApiJson(ObjectList {
        objects: state.objects.list(&objects_bucket(&fid)).await?,
    }))
}

/// Serves an object to a running execution holding a capability token; only the
/// objects its input named, only until it ends. No other header needed.
#[utoipa::path(get, path = "/api/exec-objects/{token}/{function_id}/{name}", tag = "objects",
    params(("token" = String, Path, description = "The running execution's capability token"), ("function_id" = String, Path, description = "The function's id"), ("name" = String, Path, description = "The object's name (1-128 of `A-Z a-z 0-9 . _ -`, not starting with a dot)", pattern = "^[A-Za-z0-9_-][A-Za-z0-9._-]{0,127}$", min_length = 1, max_length = 128)),
    responses((status = 200, description = "The bytes, with the Content-Type they were stored with", content_type = "*/*", body = String),
        (status = 404, description = "No such grant, object, or the grant has ended", body = ErrorBody)))]
pub async fn capability(
    State(state): State<AppState>,
    ApiPath((token, fid, name)): ApiPath<(String, String, String)>,
) -> ApiResult<Response> {
    let grant = state.store.get_grant(&grant_key(&token)).await?;
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let key = format!("{fid}/{name}");
    match grant {
        Some(g) if g.expires_at > now && g.keys.contains(&key) => {
            stream_object(&state, &fid, &name).await
        }
        _ => Err(ApiError::not_found("object")),
    }
}
