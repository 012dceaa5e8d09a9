//! An image function as the platform runs it: INPUT is argv[1] (or stdin above
//! 64 KiB), secrets are upper-cased env vars, objects are fetched with a plain
//! `GET $API_BASE_URL/<function_id>/<name>` (no header: the URL is a capability).
//! Prints `{"hello", "secrets": {NAME: length}, "objects": {alias: {bytes, first_line}},
//! "api_base_url"}`.

use std::io::{Read, Write};
use std::net::TcpStream;

use serde_json::{json, Map, Value};

fn input() -> String {
    if let Some(arg) = std::env::args().nth(1) {
        return arg;
    }
    let mut s = String::new();
    let _ = std::io::stdin().read_to_string(&mut s);
    s
}

/// GET over HTTP/1.0 without a client library (the image has nothing else).
fn http_get(url: &str) -> Result<Vec<u8>, String> {
    let rest = url.strip_prefix("http://").ok_or("API_BASE_URL must be http://")?;
    let (host, path) = rest.split_once('/').map(|(h, p)| (h, format!("/{p}"))).unwrap_or((rest, "/".into()));
    let mut conn = TcpStream::connect(host).map_err(|e| format!("connect {host}: {e}"))?;
    write!(conn, "GET {path} HTTP/1.0\r\nHost: {host}\r\n\r\n").map_err(|e| e.to_string())?;
    let mut raw = Vec::new();
    conn.read_to_end(&mut raw).map_err(|e| e.to_string())?;
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n").ok_or("malformed HTTP response")?;
    let head = String::from_utf8_lossy(&raw[..split]).to_string();
    if !head.starts_with("HTTP/1.1 200") && !head.starts_with("HTTP/1.0 200") {
        return Err(head.lines().next().unwrap_or("no status").to_string());
    }
    Ok(raw[split + 4..].to_vec())
}

fn main() {
    let text = input();
    let parsed: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
    eprintln!("static-fn called with {} bytes of input", text.len());
    let name = parsed.pointer("/direct_inputs/name").and_then(Value::as_str).unwrap_or("world");
    let mut secrets = Map::new();
    for s in parsed["secrets"].as_array().into_iter().flatten().filter_map(Value::as_str) {
        let var = s.to_uppercase();
        secrets.insert(var.clone(), json!(std::env::var(&var).map(|v| v.len()).ok()));
    }
    let base = std::env::var("API_BASE_URL").unwrap_or_default();
    let mut objects = Map::new();
    for (alias, key) in parsed["object_inputs"].as_object().into_iter().flatten() {
        let key = key.as_str().unwrap_or_default();
        match http_get(&format!("{base}/{key}")) {
            Ok(body) => {
                let first = String::from_utf8_lossy(&body).lines().next().unwrap_or("").to_string();
                objects.insert(alias.clone(), json!({"bytes": body.len(), "first_line": first}));
            }
            Err(e) => {
                println!("{}", json!({"error": format!("cannot read object {alias}: {e}")}));
                return;
            }
        }
    }
    // The capability URL is printed on purpose (the tests check it is void afterwards).
    println!("{}", json!({"hello": name, "secrets": secrets, "objects": objects, "api_base_url": base}));
}
