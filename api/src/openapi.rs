//! The OpenAPI document, generated from the handlers' annotations.
//!
//! - [`ApiDoc`]: the paths and schemas; [`errors::CommonErrors`] adds to every
//!   operation the error answers its shape implies (401, 400, 413, 415, 503);
//! - [`document`]: the document as served, with the operator's limits (timeout,
//!   memory, secret size) written into the schemas so they agree with validation.
//!
//! Name patterns used in annotations are the ones [`NAME_PATTERN`] and
//! [`USERNAME_PATTERN`] spell; a unit test checks they agree with the validators.

pub mod errors;

use errors::CommonErrors;

use axum::extract::State;
use serde_json::{Value, json};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::error::{ApiJson, ErrorBody};
use crate::routes::{
    auth, callback_key, endpoint, executions, functions, health, http_settings, invoke, me,
    metrics, objects, pages, quotas, schedules, secrets, users, versions, workers,
};
use crate::state::{ApiLimits, AppState};

/// Names of functions, objects and secrets (`faas_runtime::model::validate_name`).
pub const NAME_PATTERN: &str = "^[A-Za-z0-9_-][A-Za-z0-9._-]{0,127}$";

/// Usernames (`routes::auth::validate_username`).
pub const USERNAME_PATTERN: &str = "^[A-Za-z0-9._-]{3,64}$";

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        let components = doc.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .build(),
            ),
        );
    }
}

/// The platform's API description.
#[derive(OpenApi)]
#[openapi(
    info(title = "FaaS platform API", description = "Functions (wasm and OCI images), executions, objects and secrets. Every error is `{\"error\": code, \"message\": text}`."),
    paths(
        auth::register, auth::login, auth::logout_all, users::list, users::create, users::get,
        users::logout_all, quotas::get, quotas::put,
        me::get, me::change_password,
        functions::create, functions::list, functions::get, functions::delete,
        versions::create, versions::list, versions::get, versions::delete,
        versions::list_aliases, versions::get_alias, versions::put_alias, versions::delete_alias,
        executions::submit, executions::list, executions::get, executions::cancel,
        executions::retry,
        executions::wait::events, invoke::invoke, callback_key::get, callback_key::rotate,
        objects::upload, objects::download, objects::delete, objects::list, objects::capability,
        secrets::create, secrets::list, secrets::get, secrets::update, secrets::delete,
        health::healthz, health::readyz, metrics::metrics, pages::docs_page, pages::console_page, serve, workers::list,
        http_settings::get, http_settings::put, http_settings::create_key,
        http_settings::list_keys, http_settings::delete_key, endpoint::call, endpoint::call_rest,
        schedules::create, schedules::list, schedules::get, schedules::patch, schedules::delete,
    ),
    components(schemas(ErrorBody)),
    modifiers(&BearerAuth, &CommonErrors)
)]
pub struct ApiDoc;

/// The document as served: [`ApiDoc`] with the operator's `limits` in the schemas.
pub fn document(limits: &ApiLimits) -> Value {
    let mut doc = serde_json::to_value(ApiDoc::openapi()).unwrap_or_else(|_| json!({}));
    let schemas = "/components/schemas";
    for form in [
        "ImageFunction",
        "WasmFunctionForm",
        "ImageVersion",
        "WasmVersionForm",
    ] {
        let props = format!("{schemas}/{form}/properties");
        set(
            &mut doc,
            &format!("{props}/timeout_secs"),
            &[
                ("minimum", json!(1)),
                ("maximum", json!(limits.max_timeout_secs)),
                ("default", json!(limits.default_timeout_secs)),
            ],
        );
        set(
            &mut doc,
            &format!("{props}/memory_mb"),
            &[
                ("minimum", json!(1)),
                ("maximum", json!(limits.max_memory_mb)),
                ("default", json!(limits.default_memory_mb)),
            ],
        );
    }
    for body in ["NewSecret", "SecretValue"] {
        set(
            &mut doc,
            &format!("{schemas}/{body}/properties/value"),
            &[("maxLength", json!(limits.max_secret_chars))],
        );
    }
    for op in [
        "/paths/~1api~1functions~1{id}~1invoke/post",
        "/paths/~1api~1executions~1{id}/get",
    ] {
        if let Some(Value::Array(params)) = doc.pointer_mut(&format!("{op}/parameters")) {
            for p in params.iter_mut().filter(|p| p["name"] == "wait") {
                if let Some(Value::Object(s)) = p.get_mut("schema") {
                    s.insert("maximum".into(), json!(limits.max_wait_secs));
                }
            }
        }
    }
    // An upload may have no body: that is an empty object.
    let upload = "/paths/~1api~1function-objects~1{function_id}~1{name}/post/requestBody";
    if let Some(Value::Object(body)) = doc.pointer_mut(upload) {
        body.remove("required");
    }
    doc
}

fn set(doc: &mut Value, pointer: &str, pairs: &[(&str, Value)]) {
    if let Some(Value::Object(o)) = doc.pointer_mut(pointer) {
        for (k, v) in pairs {
            o.insert((*k).to_string(), v.clone());
        }
    }
}

/// This document (OpenAPI 3.1).
#[utoipa::path(get, path = "/api/openapi.json", tag = "health",
    responses((status = 200, description = "The OpenAPI document", body = Object)))]
pub async fn serve(State(state): State<AppState>) -> ApiJson<Value> {
    ApiJson(document(&state.limits))
}

#[cfg(test)]
mod tests;
