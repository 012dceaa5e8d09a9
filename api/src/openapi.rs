//! The OpenAPI document, generated from the handlers' annotations.

use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::error::ApiJson;
use crate::routes::{
    auth, executions, functions, health, objects, quotas, secrets, users, workers,
};

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
    info(title = "FaaS platform API", description = "Functions (wasm and OCI images), executions, objects and secrets."),
    paths(
        auth::register, auth::login, users::list, users::get, quotas::get, quotas::put,
        functions::create, functions::list, functions::get, functions::delete,
        executions::submit, executions::list, executions::get, executions::cancel,
        objects::upload, objects::download, objects::delete, objects::list, objects::capability,
        secrets::create, secrets::list, secrets::get, secrets::update, secrets::delete,
        health::healthz, health::readyz, workers::list,
    ),
    modifiers(&BearerAuth)
)]
pub struct ApiDoc;

/// `GET /api/openapi.json`.
pub async fn serve() -> ApiJson<utoipa::openapi::OpenApi> {
    ApiJson(ApiDoc::openapi())
}
