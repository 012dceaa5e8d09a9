//! The error answers an operation can give because of its shape, added to every
//! operation of the document in one place so a new route cannot forget them:
//!
//! - a bearer-secured operation: 401;
//! - an operation with path or query parameters: 400 (`invalid_path`, `invalid_query`);
//! - an operation with a request body: 400 (malformed body or field), 413, and 415
//!   unless it takes any bytes;
//! - an operation that reaches a backend (all but [`NO_BACKEND`]): 503.
//!
//! Route-specific answers (403, 404, 409, 429 ...) stay in the handlers' annotations;
//! an annotation's own description of one of these statuses is kept.

use utoipa::Modify;
use utoipa::openapi::path::{Operation, PathItem};
use utoipa::openapi::schema::Ref;
use utoipa::openapi::{ContentBuilder, OpenApi, RefOr, Response, ResponseBuilder};

/// Paths whose operations reach no backend (they never answer 503).
pub const NO_BACKEND: &[&str] = &["/healthz", "/api/openapi.json"];

/// Content types with which a body is taken as raw bytes (no 415).
const ANY_BYTES: &[&str] = &["*/*", "application/octet-stream"];

/// Adds the shape-derived error answers to every operation.
pub struct CommonErrors;

impl Modify for CommonErrors {
    fn modify(&self, doc: &mut OpenApi) {
        for (path, item) in doc.paths.paths.iter_mut() {
            let backend = !NO_BACKEND.contains(&path.as_str());
            for op in operations(item) {
                for (status, text) in shape_errors(op, backend) {
                    op.responses
                        .responses
                        .entry(status.to_string())
                        .or_insert_with(|| error_response(text));
                }
            }
        }
    }
}

/// The operations of a path.
pub fn operations(item: &mut PathItem) -> impl Iterator<Item = &mut Operation> {
    [
        &mut item.get,
        &mut item.put,
        &mut item.post,
        &mut item.delete,
        &mut item.patch,
        &mut item.head,
        &mut item.options,
        &mut item.trace,
    ]
    .into_iter()
    .filter_map(Option::as_mut)
}

fn shape_errors(op: &Operation, backend: bool) -> Vec<(u16, &'static str)> {
    let mut out = Vec::new();
    let secured = op
        .security
        .as_ref()
        .is_some_and(|s| s.iter().any(|r| *r != Default::default()));
    if secured {
        out.push((
            401,
            "A missing, malformed or expired bearer token, or its user no longer exists (`unauthorized`).",
        ));
    }
    if op.parameters.as_ref().is_some_and(|p| !p.is_empty()) {
        out.push((
            400,
            "A path or query parameter is invalid (`invalid_path`, `invalid_query`).",
        ));
    }
    if let Some(body) = &op.request_body {
        out.push((400, "The body is malformed or a field is invalid."));
        out.push((
            413,
            "The body or one of its fields is too large (`payload_too_large`).",
        ));
        if !body.content.keys().any(|k| ANY_BYTES.contains(&k.as_str())) {
            out.push((
                415,
                "The Content-Type is not one the operation takes (`unsupported_media_type`).",
            ));
        }
    }
    if backend {
        out.push((503, "A backend is unavailable or saturated; retry shortly."));
    }
    out
}

/// A response whose body is the JSON error body.
pub fn error_response(description: &str) -> RefOr<Response> {
    ResponseBuilder::new()
        .description(description)
        .content(
            "application/json",
            ContentBuilder::new()
                .schema(Some(Ref::from_schema_name("ErrorBody")))
                .build(),
        )
        .build()
        .into()
}
