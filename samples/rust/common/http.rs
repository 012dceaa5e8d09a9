//! Shared by the Rust `wasi:http/proxy` samples (included with `#[path]`, so each
//! sample stays a standalone crate): setting a whole response, and JSON strings
//! written by hand (no dependencies).
#![allow(dead_code)]

use std::io::Write as _;

use wasip2::http::types::{Fields, OutgoingBody, OutgoingResponse, ResponseOutparam};

/// Sets a response with `headers` and writes `body`.
pub fn respond(out: ResponseOutparam, status: u16, headers: &[(&str, &str)], body: &[u8]) {
    let fields = Fields::new();
    for (name, value) in headers {
        let _ = fields.append(name, value.as_bytes());
    }
    let response = OutgoingResponse::new(fields);
    let _ = response.set_status_code(status);
    let outgoing = response.body().expect("a response has one body");
    ResponseOutparam::set(out, Ok(response));
    let mut stream = outgoing.write().expect("a body has one stream");
    let _ = stream.write_all(body);
    let _ = stream.flush();
    drop(stream);
    let _ = OutgoingBody::finish(outgoing, None);
}

/// `s` as a JSON string.
pub fn quote(s: &str) -> String {
    let mut q = String::with_capacity(s.len() + 2);
    q.push('"');
    for c in s.chars() {
        match c {
            '"' => q.push_str("\\\""),
            '\\' => q.push_str("\\\\"),
            c if (c as u32) < 0x20 => q.push_str(&format!("\\u{:04x}", c as u32)),
            c => q.push(c),
        }
    }
    q.push('"');
    q
}
