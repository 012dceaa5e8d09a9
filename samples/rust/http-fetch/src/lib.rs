//! A `wasi:http/proxy` component that makes a request of its own through
//! `wasi:http/outgoing-handler`.
//!
//! `GET /?url=<percent-encoded URL>[&timeout_ms=<n>]` fetches the URL (GET) and
//! answers 200 `{"status": n, "body": "..."}`, or 502 `{"error": "..."}` with the
//! `wasi:http` error code of the failure (denied, prohibited address, timeout,
//! body too large...). The platform lets a guest reach only the hosts of its
//! function's `allowed_outbound_hosts`.

use wasip2::http::outgoing_handler;
use wasip2::http::types::{
    ErrorCode, Fields, IncomingRequest, IncomingResponse, Method, OutgoingRequest, RequestOptions,
    ResponseOutparam, Scheme,
};
use wasip2::io::streams::StreamError;

#[path = "../../common/http.rs"]
mod reply;

use reply::quote;

wasip2::http::proxy::export!(Fetch);

struct Fetch;

impl wasip2::exports::http::incoming_handler::Guest for Fetch {
    fn handle(request: IncomingRequest, out: ResponseOutparam) {
        let target = request.path_with_query().unwrap_or_default();
        let query = target.split_once('?').map_or("", |(_, q)| q);
        let Some(url) = param(query, "url") else {
            return respond_json(out, 400, &error_json("give ?url=<percent-encoded URL>"));
        };
        let timeout_ms = param(query, "timeout_ms").and_then(|t| t.parse::<u64>().ok());
        match fetch(&url, timeout_ms) {
            Ok((status, body)) => {
                let text = String::from_utf8_lossy(&body);
                let json = format!("{{\"status\":{status},\"body\":{}}}", quote(&text));
                respond_json(out, 200, &json);
            }
            Err(why) => respond_json(out, 502, &error_json(&why)),
        }
    }
}

/// GETs `url`; the status and the whole body, or the error as text.
fn fetch(url: &str, timeout_ms: Option<u64>) -> Result<(u16, Vec<u8>), String> {
    let (scheme, rest) = url.split_once("://").ok_or("the URL has no scheme")?;
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let request = OutgoingRequest::new(Fields::new());
    let scheme = match scheme {
        "http" => Scheme::Http,
        "https" => Scheme::Https,
        other => Scheme::Other(other.to_string()),
    };
    let set = request.set_method(&Method::Get).is_ok()
        && request.set_scheme(Some(&scheme)).is_ok()
        && request.set_authority(Some(authority)).is_ok()
        && request.set_path_with_query(Some(path)).is_ok();
    if !set {
        return Err("the URL is not valid".into());
    }
    let options = timeout_ms.map(|ms| {
        let o = RequestOptions::new();
        let ns = Some(ms.saturating_mul(1_000_000));
        let _ = o.set_connect_timeout(ns);
        let _ = o.set_first_byte_timeout(ns);
        let _ = o.set_between_bytes_timeout(ns);
        o
    });
    let pending = outgoing_handler::handle(request, options).map_err(code)?;
    pending.subscribe().block();
    let response = match pending.get() {
        Some(Ok(Ok(response))) => response,
        Some(Ok(Err(e))) => return Err(code(e)),
        _ => return Err("the response was not ready".into()),
    };
    let status = response.status();
    Ok((status, read_body(&response)?))
}

/// The whole body of `response`, or the error that cut it.
fn read_body(response: &IncomingResponse) -> Result<Vec<u8>, String> {
    let body = response.consume().map_err(|_| "the body was taken")?;
    let stream = body.stream().map_err(|_| "the stream was taken")?;
    let mut bytes = Vec::new();
    loop {
        match stream.blocking_read(64 * 1024) {
            Ok(chunk) => bytes.extend_from_slice(&chunk),
            Err(StreamError::Closed) => break,
            Err(StreamError::LastOperationFailed(e)) => {
                return Err(match wasip2::http::types::http_error_code(&e) {
                    Some(c) => code(c),
                    None => e.to_debug_string(),
                });
            }
        }
    }
    Ok(bytes)
}

fn code(e: ErrorCode) -> String {
    format!("{e:?}")
}

/// The value of `name` in a query string, percent-decoded.
fn param(query: &str, name: &str) -> Option<String> {
    query
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| decode(v))
}

fn decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = || {
            std::str::from_utf8(b.get(i + 1..i + 3)?)
                .ok()
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        };
        match (b[i], hex()) {
            (b'%', Some(v)) => {
                out.push(v);
                i += 3;
            }
            (b'+', _) => {
                out.push(b' ');
                i += 1;
            }
            (c, _) => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn error_json(why: &str) -> String {
    format!("{{\"error\":{}}}", quote(why))
}

fn respond_json(out: ResponseOutparam, status: u16, json: &str) {
    reply::respond(
        out,
        status,
        &[("content-type", "application/json")],
        json.as_bytes(),
    );
}
