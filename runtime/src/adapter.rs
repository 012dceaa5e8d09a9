//! The HTTP adapter: how a function that is not an HTTP handler (a command module,
//! a `wasi:cli/command` or `faas:function` component, an image) answers a request
//! to `/fn/{username}/{function}`.
//!
//! The request becomes the INPUT `{"http": {"method", "path", "query", "headers",
//! "body"}}` (the body as text, or base64 with `"body_base64": true` when it is
//! not UTF-8). A completed run answers 200 with its stdout (`application/json`
//! when it parses); a result `{"http_response": {"status", "headers", "body"}}`
//! sets the response explicitly. A failed run answers 500, a timed-out one 504,
//! with the error JSON.

use base64::Engine as _;
use bytes::Bytes;
use serde_json::{Map, Value, json};

use crate::model::ExecutionStatus;
use crate::outcome::FinalFields;

/// The INPUT of a run answering the request `head` with `body`.
pub fn input(head: &::http::request::Parts, body: &[u8]) -> String {
    let mut headers = Map::new();
    for (name, value) in &head.headers {
        let value = String::from_utf8_lossy(value.as_bytes()).into_owned();
        match headers.get_mut(name.as_str()) {
            Some(Value::String(joined)) => {
                joined.push_str(", ");
                joined.push_str(&value);
            }
            _ => {
                headers.insert(name.as_str().to_string(), Value::String(value));
            }
        }
    }
    let mut http = json!({
        "method": head.method.as_str(),
        "path": head.uri.path(),
        "query": head.uri.query().unwrap_or(""),
        "headers": headers,
    });
    match std::str::from_utf8(body) {
        Ok(text) => http["body"] = Value::String(text.to_string()),
        Err(_) => {
            let encoded = base64::engine::general_purpose::STANDARD.encode(body);
            http["body"] = Value::String(encoded);
            http["body_base64"] = Value::Bool(true);
        }
    }
    json!({ "http": http }).to_string()
}

/// The response to send for a run that ended with `fields`.
pub fn response(fields: &FinalFields) -> ::http::Response<Bytes> {
    match fields.status {
        ExecutionStatus::Completed => completed(fields),
        ExecutionStatus::TimedOut => error(504, "timed_out", fields.error.as_deref()),
        _ => error(500, "function_failed", fields.error.as_deref()),
    }
}

/// A JSON error answer `{"error": code, "message": text}`.
pub fn error(status: u16, code: &str, message: Option<&str>) -> ::http::Response<Bytes> {
    let body = json!({"error": code, "message": message.unwrap_or("the function failed")});
    build(status, &[], Some(JSON), Bytes::from(body.to_string()))
        .unwrap_or_else(|| ::http::Response::new(Bytes::new()))
}

const JSON: &str = "application/json";
const TEXT: &str = "text/plain; charset=utf-8";

fn completed(fields: &FinalFields) -> ::http::Response<Bytes> {
    if let Some(explicit) = fields
        .result
        .as_ref()
        .and_then(|r| r.get("http_response"))
        .and_then(Value::as_object)
    {
        return explicit_response(explicit)
            .unwrap_or_else(|why| error(500, "bad_response", Some(&why)));
    }
    let output = fields.output.clone().unwrap_or_default();
    let kind = if fields.result.is_some() { JSON } else { TEXT };
    build(200, &[], Some(kind), Bytes::from(output))
        .unwrap_or_else(|| ::http::Response::new(Bytes::new()))
}

/// `{"status", "headers", "body", "body_base64"}` as a response.
fn explicit_response(r: &Map<String, Value>) -> Result<::http::Response<Bytes>, String> {
    let status = match r.get("status") {
        None => 200,
        Some(v) => v
            .as_u64()
            .filter(|s| (100..=599).contains(s))
            .ok_or("http_response.status must be a number 100-599")? as u16,
    };
    let mut headers = Vec::new();
    if let Some(h) = r.get("headers") {
        let h = h
            .as_object()
            .ok_or("http_response.headers must be an object")?;
        for (name, value) in h {
            let value = match value {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            headers.push((name.clone(), value));
        }
    }
    let base64 = r
        .get("body_base64")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let (body, kind) = match r.get("body") {
        None | Some(Value::Null) => (Bytes::new(), None),
        Some(Value::String(s)) if base64 => {
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(s)
                .map_err(|_| "http_response.body is not base64")?;
            (Bytes::from(bytes), None)
        }
        Some(Value::String(s)) => (Bytes::from(s.clone()), Some(TEXT)),
        Some(other) => (Bytes::from(other.to_string()), Some(JSON)),
    };
    build(status, &headers, kind, body).ok_or_else(|| "http_response has an invalid header".into())
}

/// A response; `kind` is the content type unless `headers` name one.
fn build(
    status: u16,
    headers: &[(String, String)],
    kind: Option<&str>,
    body: Bytes,
) -> Option<::http::Response<Bytes>> {
    let mut b = ::http::Response::builder().status(status);
    let named = headers
        .iter()
        .any(|(n, _)| n.eq_ignore_ascii_case("content-type"));
    if let (Some(kind), false) = (kind, named) {
        b = b.header(::http::header::CONTENT_TYPE, kind);
    }
    for (name, value) in headers {
        b = b.header(name.as_str(), value.as_str());
    }
    b.body(body).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(status: ExecutionStatus, output: &str, error: Option<&str>) -> FinalFields {
        FinalFields {
            status,
            output: Some(output.to_string()),
            result: serde_json::from_str(output).ok(),
            error: error.map(str::to_string),
            exit_code: Some(0),
            logs: None,
        }
    }

    #[test]
    fn the_request_becomes_the_input() {
        let req = ::http::Request::builder()
            .method("POST")
            .uri("/a/b?x=1")
            .header("x-one", "1")
            .header("x-one", "2")
            .body(())
            .unwrap();
        let (head, ()) = req.into_parts();
        let v: Value = serde_json::from_str(&input(&head, b"hi")).unwrap();
        assert_eq!(v["http"]["method"], "POST");
        assert_eq!(v["http"]["path"], "/a/b");
        assert_eq!(v["http"]["query"], "x=1");
        assert_eq!(v["http"]["headers"]["x-one"], "1, 2");
        assert_eq!(v["http"]["body"], "hi");
        assert!(v["http"].get("body_base64").is_none());
        let v: Value = serde_json::from_str(&input(&head, &[0xff, 0])).unwrap();
        assert_eq!(v["http"]["body"], "/wA=");
        assert_eq!(v["http"]["body_base64"], true);
    }

    #[test]
    fn outcomes_become_responses() {
        let r = response(&fields(ExecutionStatus::Completed, "{\"a\":1}", None));
        assert_eq!(r.status(), 200);
        assert_eq!(r.headers()["content-type"], JSON);
        let r = response(&fields(ExecutionStatus::Completed, "hello", None));
        assert_eq!(r.headers()["content-type"], TEXT);
        assert_eq!(r.body(), "hello");
        let r = response(&fields(ExecutionStatus::Failed, "", Some("boom")));
        assert_eq!(r.status(), 500);
        assert!(String::from_utf8_lossy(r.body()).contains("boom"));
        let r = response(&fields(ExecutionStatus::TimedOut, "", Some("late")));
        assert_eq!(r.status(), 504);
    }

    #[test]
    fn an_http_response_result_sets_the_response() {
        let out = r#"{"http_response": {"status": 201, "headers": {"x-a": "b"}, "body": "made"}}"#;
        let r = response(&fields(ExecutionStatus::Completed, out, None));
        assert_eq!(r.status(), 201);
        assert_eq!(r.headers()["x-a"], "b");
        assert_eq!(r.body(), "made");
        let out = r#"{"http_response": {"body": {"k": 1}}}"#;
        let r = response(&fields(ExecutionStatus::Completed, out, None));
        assert_eq!(
            (r.status().as_u16(), r.body().as_ref()),
            (200, &b"{\"k\":1}"[..])
        );
        assert_eq!(r.headers()["content-type"], JSON);
        let out = r#"{"http_response": {"status": 7}}"#;
        let r = response(&fields(ExecutionStatus::Completed, out, None));
        assert_eq!(r.status(), 500);
    }
}
