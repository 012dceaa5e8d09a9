//! A `wasi:http/proxy` component: the platform serves it per request at
//! `/fn/<username>/<function>/...` (and `wasmtime serve` runs it unchanged).
//!
//! - `GET /`: a greeting;
//! - `/echo`: the request body streamed back, as it arrives;
//! - `/info`: the method, path and headers the component saw, as JSON;
//! - `/status/<n>`: answers status `n` with an `x-status` header;
//! - `/no-response`: returns without setting a response (the platform answers 500);
//! - `/spin`: never returns (the platform answers 504 at the function's timeout).

use std::io::Write as _;

use wasip2::http::types::{
    Fields, IncomingRequest, Method, OutgoingBody, OutgoingResponse, ResponseOutparam,
};

#[path = "../../common/http.rs"]
mod reply;

use reply::{quote, respond};

wasip2::http::proxy::export!(Hello);

struct Hello;

impl wasip2::exports::http::incoming_handler::Guest for Hello {
    fn handle(request: IncomingRequest, out: ResponseOutparam) {
        let target = request.path_with_query().unwrap_or_else(|| "/".into());
        let path = target.split('?').next().unwrap_or("/").to_string();
        match path.as_str() {
            "/" => respond(out, 200, &[("x-sample", "http-hello")], b"hello from a wasi:http component\n"),
            "/echo" => echo(request, out),
            "/info" => info(&request, &target, out),
            "/no-response" => {}
            "/spin" => spin(),
            p if p.starts_with("/status/") => {
                let code = p["/status/".len()..].parse().unwrap_or(500);
                let text = code.to_string();
                respond(out, code, &[("x-status", &text)], format!("status {text}\n").as_bytes());
            }
            _ => respond(out, 404, &[], b"not found\n"),
        }
    }
}

/// Streams the request body back chunk by chunk.
fn echo(request: IncomingRequest, out: ResponseOutparam) {
    let fields = Fields::new();
    if let Some(kind) = request.headers().get("content-type").into_iter().next() {
        let _ = fields.append("content-type", &kind);
    }
    let response = OutgoingResponse::new(fields);
    let outgoing = response.body().expect("a response has one body");
    ResponseOutparam::set(out, Ok(response));
    let incoming = request.consume().expect("a request has one body");
    let input = incoming.stream().expect("a body has one stream");
    let mut output = outgoing.write().expect("a body has one stream");
    // Until the stream is closed (or fails): what arrives goes out at once.
    while let Ok(chunk) = input.blocking_read(64 * 1024) {
        if output.write_all(&chunk).is_err() {
            return;
        }
    }
    let _ = output.flush();
    drop(output);
    drop(input);
    let _ = OutgoingBody::finish(outgoing, None);
}

/// The request as the component saw it, as JSON (written by hand: no dependencies).
fn info(request: &IncomingRequest, target: &str, out: ResponseOutparam) {
    let method = match request.method() {
        Method::Get => "GET".to_string(),
        Method::Post => "POST".to_string(),
        Method::Put => "PUT".to_string(),
        Method::Delete => "DELETE".to_string(),
        Method::Patch => "PATCH".to_string(),
        Method::Head => "HEAD".to_string(),
        Method::Options => "OPTIONS".to_string(),
        Method::Connect => "CONNECT".to_string(),
        Method::Trace => "TRACE".to_string(),
        Method::Other(m) => m,
    };
    let headers: Vec<String> = request
        .headers()
        .entries()
        .into_iter()
        .map(|(name, value)| {
            format!("{}:{}", quote(&name), quote(&String::from_utf8_lossy(&value)))
        })
        .collect();
    let body = format!(
        "{{\"method\":{},\"path_with_query\":{},\"headers\":{{{}}}}}",
        quote(&method),
        quote(target),
        headers.join(",")
    );
    respond(out, 200, &[("content-type", "application/json")], body.as_bytes());
}

fn spin() {
    let mut n: u64 = 0;
    loop {
        n = std::hint::black_box(n.wrapping_add(1));
    }
}
