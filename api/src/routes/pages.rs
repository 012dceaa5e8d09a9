//! The pages served from the binary, each three files of `api/assets/`: the web
//! console at `/` (a client of the public API only) and, at `GET /api/docs`, a
//! reference of the API rendered from `/api/openapi.json` with a form to try each
//! operation. No asset from another host, no inline script (a
//! Content-Security-Policy says so), the token never in a URL.

use axum::http::HeaderValue;
use axum::http::header::{
    CACHE_CONTROL, CONTENT_SECURITY_POLICY, CONTENT_TYPE, X_CONTENT_TYPE_OPTIONS,
};
use axum::response::{IntoResponse, Response};

/// What the page may load and run: this server only.
pub const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

const DOCS_PAGE: &str = include_str!("../../assets/docs/index.html");
const DOCS_SCRIPT: &str = include_str!("../../assets/docs/docs.js");
const DOCS_STYLE: &str = include_str!("../../assets/docs/docs.css");
const CONSOLE_PAGE: &str = include_str!("../../assets/console/index.html");
const CONSOLE_SCRIPT: &str = include_str!("../../assets/console/console.js");
const CONSOLE_STYLE: &str = include_str!("../../assets/console/console.css");

const HTML: &str = "text/html; charset=utf-8";
const JS: &str = "text/javascript; charset=utf-8";
const CSS: &str = "text/css; charset=utf-8";

fn asset(content_type: &'static str, body: &'static str) -> Response {
    let mut res = body.into_response();
    let h = res.headers_mut();
    h.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP));
    h.insert(X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    res
}

/// The reference page.
#[utoipa::path(get, path = "/api/docs", tag = "health",
    responses((status = 200, description = "An HTML reference of this API, rendered from /api/openapi.json", content_type = "text/html", body = String)))]
pub async fn docs_page() -> Response {
    asset(HTML, DOCS_PAGE)
}

/// The reference page's script.
pub async fn docs_script() -> Response {
    asset(JS, DOCS_SCRIPT)
}

/// The reference page's style sheet.
pub async fn docs_style() -> Response {
    asset(CSS, DOCS_STYLE)
}

/// The web console.
#[utoipa::path(get, path = "/", tag = "health",
    responses((status = 200, description = "The web console: log in, functions, invoke, executions, objects, secrets, admin", content_type = "text/html", body = String)))]
pub async fn console_page() -> Response {
    asset(HTML, CONSOLE_PAGE)
}

/// The console's script.
pub async fn console_script() -> Response {
    asset(JS, CONSOLE_SCRIPT)
}

/// The console's style sheet.
pub async fn console_style() -> Response {
    asset(CSS, CONSOLE_STYLE)
}
