//! A small JSON API as a `wasi:http/proxy` component, served per request at
//! `/fn/<username>/<function>/...`:
//!
//! - `GET /`: what the API offers;
//! - `GET /greet?name=<name>`: `{"greeting": "hello, <name>"}`;
//! - `POST /sum` with `{"numbers": [..]}`: `{"sum": n, "count": n}`;
//! - anything else: a JSON 404; a malformed body: a JSON 400.

use serde_json::{Value, json};
use wasip2::http::types::{IncomingRequest, Method, ResponseOutparam};

#[path = "../../common/http.rs"]
mod reply;

wasip2::http::proxy::export!(Api);

struct Api;

/// Largest request body read (bytes).
const MAX_BODY: usize = 1 << 20;

impl wasip2::exports::http::incoming_handler::Guest for Api {
    fn handle(request: IncomingRequest, out: ResponseOutparam) {
        let target = request.path_with_query().unwrap_or_else(|| "/".into());
        let (path, query) = target.split_once('?').unwrap_or((target.as_str(), ""));
        let (status, body) = match (request.method(), path) {
            (Method::Get, "/") => (200, json!({"routes": ["GET /greet?name=", "POST /sum"]})),
            (Method::Get, "/greet") => {
                let name = query
                    .split('&')
                    .find_map(|p| p.strip_prefix("name="))
                    .filter(|n| !n.is_empty())
                    .unwrap_or("world");
                (200, json!({"greeting": format!("hello, {name}")}))
            }
            (Method::Post, "/sum") => sum(&request),
            _ => (404, json!({"error": "not_found", "message": format!("no route {path}")})),
        };
        let json = [("content-type", "application/json")];
        reply::respond(out, status, &json, body.to_string().as_bytes());
    }
}

fn sum(request: &IncomingRequest) -> (u16, Value) {
    let bad = |m: &str| (400, json!({"error": "bad_request", "message": m}));
    let Some(bytes) = read_body(request) else {
        return bad("the body is unreadable or larger than 1 MiB");
    };
    let numbers = serde_json::from_slice::<Value>(&bytes)
        .ok()
        .and_then(|v| v.get("numbers").and_then(Value::as_array).cloned());
    let Some(numbers) = numbers else {
        return bad("expected {\"numbers\": [...]}");
    };
    let values: Option<Vec<f64>> = numbers.iter().map(Value::as_f64).collect();
    match values {
        Some(v) => (200, json!({"sum": v.iter().sum::<f64>(), "count": v.len()})),
        None => bad("numbers must be numbers"),
    }
}

fn read_body(request: &IncomingRequest) -> Option<Vec<u8>> {
    let incoming = request.consume().ok()?;
    let stream = incoming.stream().ok()?;
    let mut bytes = Vec::new();
    while let Ok(chunk) = stream.blocking_read(64 * 1024) {
        bytes.extend_from_slice(&chunk);
        if bytes.len() > MAX_BODY {
            return None;
        }
    }
    Some(bytes)
}

