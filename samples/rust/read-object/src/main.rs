//! Sample function: for each `alias -> "<function_id>/<name>"` of
//! `object_inputs`, reads `/objects/<function_id>/<name>` and prints
//! `{"objects":{"<alias>":{"bytes":N,"lines":L,"sha256":"<hex>"}}}`.
//!
//! `lines` counts `\n` bytes, plus one for a non-empty last line without one.
//!
//! For sandbox tests, `direct_inputs.path` names any path to try to read:
//! the output gains `"read_bytes": N` when it can be read, and is
//! `{"error": ...}` when it cannot (e.g. `/etc/passwd` in the Wasm sandbox).
//! Any unreadable object also gives `{"error": "cannot read object <alias>: <reason>"}`.

#[path = "../../common/input.rs"]
mod input;

use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};

fn main() {
    let text = input::read_input();
    let input = input::parse_input(&text).unwrap_or_else(|e| input::fail(&e));
    let mut out = Map::new();

    let mut objects = Map::new();
    match input.get("object_inputs") {
        None | Some(Value::Null) => {}
        Some(Value::Object(map)) => {
            for (alias, key) in map {
                let Some(key) = key.as_str() else {
                    input::fail(&format!("object_inputs.{alias} is not a string"));
                };
                let path = input::object_path(key);
                eprintln!("reading object {alias} at {path}");
                let data = std::fs::read(&path)
                    .unwrap_or_else(|e| input::fail(&format!("cannot read object {alias}: {e}")));
                objects.insert(alias.clone(), describe(&data));
            }
        }
        Some(_) => input::fail("object_inputs is not an object"),
    }
    out.insert("objects".into(), Value::Object(objects));

    if let Some(path) = input.pointer("/direct_inputs/path") {
        let Some(path) = path.as_str() else { input::fail("direct_inputs.path is not a string") };
        eprintln!("trying to read {path}");
        match std::fs::read(path) {
            Ok(data) => {
                eprintln!("read {} bytes from {path}", data.len());
                out.insert("read_bytes".into(), json!(data.len()));
            }
            Err(e) => input::fail(&format!("cannot read {path}: {e}")),
        }
    }

    println!("{}", Value::Object(out));
}

fn describe(data: &[u8]) -> Value {
    let newlines = data.iter().filter(|&&b| b == b'\n').count();
    let lines = newlines + usize::from(data.last().is_some_and(|&b| b != b'\n'));
    json!({
        "bytes": data.len(),
        "lines": lines,
        "sha256": input::hex(&Sha256::digest(data)),
    })
}
