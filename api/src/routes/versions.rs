//! `/api/functions/{id}/versions` and `/api/functions/{id}/aliases`: immutable,
//! numbered versions of a function and the names that point at them.
//!
//! A new version is validated and compiled like a deploy and becomes `latest`.
//! An alias points where its `PUT` says; rollback is moving it. A version an
//! alias (`latest` included) points at cannot be deleted (409). An alias to a
//! version that does not exist is a 404. Submit and invoke pick a version with
//! [`VersionChoice`].

use std::collections::BTreeMap;

use axum::Extension;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use faas_runtime::model::version::{MAX_ALIASES, MAX_VERSIONS, validate_alias};
use faas_runtime::model::{Function, FunctionVersion, LATEST, PullPolicy};
use serde::{Deserialize, Serialize};

use super::functions::spec::{self, invalid_as};
use super::functions::{env_form_schema, env_schema, owned};
use super::users::PageQuery;
use crate::auth::Caller;
use crate::error::{ApiError, ApiJson, ApiPath, ApiQuery, ApiResult, ErrorBody};
use crate::state::AppState;

/// A new image version (documentation of the JSON body; a `name` is ignored).
#[derive(Deserialize, utoipa::ToSchema)]
#[allow(dead_code)]
pub struct ImageVersion {
    /// OCI image reference, as in a deploy.
    #[schema(
        pattern = "^[A-Za-z0-9._][A-Za-z0-9./:_@-]{0,511}$",
        min_length = 1,
        max_length = 512
    )]
    image_url: String,
    /// Free text (at most 4096 characters).
    #[serde(default)]
    #[schema(max_length = 4096)]
    description: String,
    /// Timeout in seconds (default 300, capped by the operator).
    #[schema(minimum = 1)]
    timeout_secs: Option<u64>,
    /// Memory limit in MiB (default 512, capped by the operator).
    #[schema(minimum = 1)]
    memory_mb: Option<u64>,
    /// `if-not-present` (default), `always` or `never`.
    pull_policy: Option<PullPolicy>,
    /// Warm containers kept ready, 0-8 (default: one while the function was invoked
    /// in the last 10 minutes, none after; 0: always start a container per execution).
    #[schema(minimum = 0, maximum = 8)]
    warm: Option<u32>,
    /// Non-secret configuration of this version.
    #[serde(default)]
    #[schema(schema_with = env_schema)]
    env: BTreeMap<String, String>,
}

/// The multipart form of a new wasm version (documentation only; a `name` is ignored).
#[derive(Deserialize, utoipa::ToSchema)]
#[allow(dead_code)]
pub struct WasmVersionForm {
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

/// A version and the aliases pointing at it.
#[derive(Serialize, utoipa::ToSchema)]
pub struct VersionView {
    /// The version.
    #[serde(flatten)]
    pub version: FunctionVersion,
    /// Aliases pointing at it (`latest` for the newest).
    pub aliases: Vec<String>,
}

/// `{"versions": [...]}`, oldest first, a page at a time.
#[derive(Serialize, utoipa::ToSchema)]
pub struct VersionList {
    /// The page's versions, oldest first.
    pub versions: Vec<VersionView>,
    /// The newest (`latest`).
    pub latest_version: u64,
    /// Cursor of the next page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

/// Where an alias points.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AliasTarget {
    /// An existing version (404 otherwise).
    #[schema(minimum = 1, maximum = 1_000_000_000_000_000_u64)]
    pub version: u64,
}

/// An alias.
#[derive(Serialize, utoipa::ToSchema)]
pub struct Alias {
    /// Its name.
    pub name: String,
    /// The version it points at.
    pub version: u64,
}

/// `{"aliases": [...]}`, `latest` first.
#[derive(Serialize, utoipa::ToSchema)]
pub struct AliasList {
    /// Every alias, `latest` included.
    pub aliases: Vec<Alias>,
}

/// Which version a submit or an invoke runs: `version` or `alias`, at most one;
/// neither means `latest`.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct VersionChoice {
    /// A version number.
    pub version: Option<u64>,
    /// An alias (`latest` is the newest version).
    pub alias: Option<String>,
}

impl VersionChoice {
    /// The version of `f` chosen: 400 for both or version 0, 404 for a version or
    /// alias `f` does not have.
    pub fn resolve(&self, f: &Function) -> ApiResult<u64> {
        match (self.version, self.alias.as_deref()) {
            (Some(_), Some(_)) => Err(ApiError::bad_request(
                "invalid_version",
                "give `version` or `alias`, not both",
            )),
            (Some(0), None) => Err(ApiError::bad_request(
                "invalid_version",
                "versions are numbered from 1",
            )),
            (Some(n), None) if f.versions.has(n) => Ok(n),
            (Some(n), None) => Err(not_found(&format!("version {n}"))),
            (None, Some(alias)) => f
                .versions
                .resolve(alias)
                .ok_or_else(|| not_found(&format!("alias {alias:?}"))),
            (None, None) => Ok(f.versions.latest_version),
        }
    }
}

fn not_found(what: &str) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "not_found",
        format!("{what} not found"),
    )
}

/// A version number of a path: 400 unless a whole number from 1; a number past
/// any version there can be is simply not found (404).
fn parse_version(text: &str) -> ApiResult<u64> {
    let digits = !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit());
    match text.parse::<u64>() {
        Ok(n) if n > 0 && digits => Ok(n),
        Err(_) if digits => Err(not_found(&format!("version {text}"))),
        _ => Err(ApiError::bad_request(
            "invalid_version",
            format!("{text:?} is not a version number (1, 2, ...)"),
        )),
    }
}

fn view(f: &Function, v: FunctionVersion) -> VersionView {
    let aliases = f.versions.aliases_of(v.version);
    VersionView {
        version: v,
        aliases,
    }
}

/// Makes the next version of a function, validated and compiled like a deploy
/// (JSON for an image, multipart with a `module` for wasm); it becomes `latest`.
#[utoipa::path(post, path = "/api/functions/{id}/versions", tag = "versions", security(("bearer" = [])),
    params(("id" = String, Path, description = "The function's id")),
    request_body(content((ImageVersion = "application/json"), (WasmVersionForm = "multipart/form-data"))),
    responses((status = 201, description = "The new version, now `latest`", body = VersionView),
        (status = 400, description = "Invalid field, env, module or image reference, or a malformed body", body = ErrorBody),
        (status = 404, description = "No such function of the caller's", body = ErrorBody),
        (status = 409, description = "The function has as many versions as it may keep (1000; delete old ones)", body = ErrorBody),
        (status = 413, description = "The body or the module is too large", body = ErrorBody),
        (status = 503, description = "Too many modules are compiling, or a backend is unavailable", body = ErrorBody)))]
pub async fn create(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    ApiPath(id): ApiPath<String>,
    req: Request,
) -> ApiResult<impl IntoResponse> {
    let f = owned(&state, &caller, &id).await?;
    if f.versions.versions.len() >= MAX_VERSIONS {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "conflict",
            format!("a function keeps at most {MAX_VERSIONS} versions; delete old ones first"),
        ));
    }
    let (_, spec) = spec::read(&state, req).await?;
    let (v, module) = spec::build(&state, &f, spec).await?;
    let (f, v) = state.store.add_version(&f.id, &caller.id, v).await?;
    spec::keep_module(&state, &v, module).await?;
    tracing::info!(function.id = %f.id, version = v.version, "function version made");
    Ok((StatusCode::CREATED, ApiJson(view(&f, v))))
}

/// Lists a function's versions, oldest first, a page at a time (a function keeps
/// at most [`MAX_VERSIONS`]).
#[utoipa::path(get, path = "/api/functions/{id}/versions", tag = "versions", security(("bearer" = [])),
    params(("id" = String, Path, description = "The function's id"), PageQuery),
    responses((status = 200, description = "A page of its versions", body = VersionList),
        (status = 400, description = "A malformed cursor or limit (`invalid_query`)", body = ErrorBody),
        (status = 404, description = "No such function of the caller's", body = ErrorBody)))]
pub async fn list(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    ApiPath(id): ApiPath<String>,
    ApiQuery(q): ApiQuery<PageQuery>,
) -> ApiResult<ApiJson<VersionList>> {
    let f = owned(&state, &caller, &id).await?;
    let limit = super::page_limit(q.limit)?;
    let after = match q.cursor.as_deref() {
        None => None,
        Some(c) => Some(c.parse::<u64>().map_err(|_| {
            ApiError::bad_request("invalid_query", "cursor is not one this listing gave")
        })?),
    };
    let (versions, next) = state.store.list_versions_page(&f, after, limit).await?;
    Ok(ApiJson(VersionList {
        versions: versions.into_iter().map(|v| view(&f, v)).collect(),
        latest_version: f.versions.latest_version,
        next_cursor: next.map(|n| n.to_string()),
    }))
}

/// One version of a function.
#[utoipa::path(get, path = "/api/functions/{id}/versions/{version}", tag = "versions", security(("bearer" = [])),
    params(("id" = String, Path, description = "The function's id"),
        ("version" = u64, Path, minimum = 1, maximum = 1_000_000_000_000_000_u64, description = "The version number (1, 2, ...)")),
    responses((status = 200, description = "The version", body = VersionView),
        (status = 400, description = "Not a version number", body = ErrorBody),
        (status = 404, description = "No such function of the caller's, or no such version", body = ErrorBody)))]
pub async fn get(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    ApiPath((id, version)): ApiPath<(String, String)>,
) -> ApiResult<ApiJson<VersionView>> {
    let f = owned(&state, &caller, &id).await?;
    let n = parse_version(&version)?;
    let v = state
        .store
        .get_version(&f, n)
        .await?
        .ok_or_else(|| not_found(&format!("version {n}")))?;
    Ok(ApiJson(view(&f, v)))
}

/// Deletes a version no alias points at (`latest` points at the newest).
/// Executions of it that have not started yet fail.
#[utoipa::path(delete, path = "/api/functions/{id}/versions/{version}", tag = "versions", security(("bearer" = [])),
    params(("id" = String, Path, description = "The function's id"),
        ("version" = u64, Path, minimum = 1, maximum = 1_000_000_000_000_000_u64, description = "The version number (1, 2, ...)")),
    responses((status = 204, description = "Deleted"),
        (status = 400, description = "Not a version number", body = ErrorBody),
        (status = 404, description = "No such function of the caller's, or no such version", body = ErrorBody),
        (status = 409, description = "An alias (`latest` included) points at the version", body = ErrorBody)))]
pub async fn delete(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    ApiPath((id, version)): ApiPath<(String, String)>,
) -> ApiResult<StatusCode> {
    let f = owned(&state, &caller, &id).await?;
    let n = parse_version(&version)?;
    let v = state.store.delete_version(&f.id, &caller.id, n).await?;
    super::functions::release_module(&state, &f, &v, Some(n)).await?;
    tracing::info!(function.id = %f.id, version = n, "function version deleted");
    Ok(StatusCode::NO_CONTENT)
}

/// Lists a function's aliases, `latest` first.
#[utoipa::path(get, path = "/api/functions/{id}/aliases", tag = "versions", security(("bearer" = [])),
    params(("id" = String, Path, description = "The function's id")),
    responses((status = 200, description = "Its aliases", body = AliasList),
        (status = 404, description = "No such function of the caller's", body = ErrorBody)))]
pub async fn list_aliases(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<ApiJson<AliasList>> {
    let f = owned(&state, &caller, &id).await?;
    let latest = Alias {
        name: LATEST.into(),
        version: f.versions.latest_version,
    };
    let others = f.versions.aliases.iter().map(|(name, &version)| Alias {
        name: name.clone(),
        version,
    });
    Ok(ApiJson(AliasList {
        aliases: std::iter::once(latest).chain(others).collect(),
    }))
}

/// Where an alias points (`latest`: the newest version).
#[utoipa::path(get, path = "/api/functions/{id}/aliases/{alias}", tag = "versions", security(("bearer" = [])),
    params(("id" = String, Path, description = "The function's id"),
        ("alias" = String, Path, pattern = "^[A-Za-z0-9_-][A-Za-z0-9._-]{0,127}$", description = "The alias")),
    responses((status = 200, description = "The alias", body = Alias),
        (status = 404, description = "No such function of the caller's, or no such alias", body = ErrorBody)))]
pub async fn get_alias(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    ApiPath((id, alias)): ApiPath<(String, String)>,
) -> ApiResult<ApiJson<Alias>> {
    let f = owned(&state, &caller, &id).await?;
    let version = f
        .versions
        .resolve(&alias)
        .ok_or_else(|| not_found(&format!("alias {alias:?}")))?;
    Ok(ApiJson(Alias {
        name: alias,
        version,
    }))
}

/// Points an alias at a version, making it if new (rollback: point it back).
#[utoipa::path(put, path = "/api/functions/{id}/aliases/{alias}", tag = "versions", security(("bearer" = [])),
    request_body = AliasTarget,
    params(("id" = String, Path, description = "The function's id"),
        ("alias" = String, Path, pattern = "^[A-Za-z0-9_-][A-Za-z0-9._-]{0,127}$", description = "The alias (named as functions are; not `latest`)")),
    responses((status = 200, description = "The alias as it now points", body = Alias),
        (status = 400, description = "An invalid alias name, `latest`, version 0, too many aliases, or a malformed body", body = ErrorBody),
        (status = 404, description = "No such function of the caller's, or no such version", body = ErrorBody)))]
pub async fn put_alias(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    ApiPath((id, alias)): ApiPath<(String, String)>,
    ApiJson(target): ApiJson<AliasTarget>,
) -> ApiResult<ApiJson<Alias>> {
    owned(&state, &caller, &id).await?;
    validate_alias(&alias).map_err(invalid_as("invalid_alias"))?;
    let n = target.version;
    if n == 0 {
        return Err(ApiError::bad_request(
            "invalid_version",
            "versions are numbered from 1",
        ));
    }
    let f = state
        .store
        .change_function(&id, &caller.id, |f| {
            if !f.versions.has(n) {
                return Err(faas_runtime::Error::NotFound(format!(
                    "version {n} not found"
                )));
            }
            let is_new = !f.versions.aliases.contains_key(&alias);
            if is_new && f.versions.aliases.len() >= MAX_ALIASES {
                return Err(faas_runtime::Error::Invalid(format!(
                    "a function has at most {MAX_ALIASES} aliases"
                )));
            }
            f.versions.aliases.insert(alias.clone(), n);
            Ok(())
        })
        .await?;
    tracing::info!(function.id = %f.id, alias = %alias, version = n, "alias set");
    Ok(ApiJson(Alias {
        name: alias,
        version: n,
    }))
}

/// Deletes an alias (not `latest`).
#[utoipa::path(delete, path = "/api/functions/{id}/aliases/{alias}", tag = "versions", security(("bearer" = [])),
    params(("id" = String, Path, description = "The function's id"),
        ("alias" = String, Path, pattern = "^[A-Za-z0-9_-][A-Za-z0-9._-]{0,127}$", description = "The alias")),
    responses((status = 204, description = "Deleted"),
        (status = 400, description = "An invalid alias name, or `latest`", body = ErrorBody),
        (status = 404, description = "No such function of the caller's, or no such alias", body = ErrorBody)))]
pub async fn delete_alias(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    ApiPath((id, alias)): ApiPath<(String, String)>,
) -> ApiResult<StatusCode> {
    owned(&state, &caller, &id).await?;
    validate_alias(&alias).map_err(invalid_as("invalid_alias"))?;
    state
        .store
        .change_function(&id, &caller.id, |f| {
            match f.versions.aliases.remove(&alias) {
                Some(_) => Ok(()),
                None => Err(faas_runtime::Error::NotFound(format!(
                    "alias {alias:?} not found"
                ))),
            }
        })
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
