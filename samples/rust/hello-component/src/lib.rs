//! Sample function as a component of the `faas:function/function` world
//! (`wit/function.wit` at the repository root).
//!
//! `handle(input)` returns `ok({"hello": <direct_inputs.name or "world">, "lang": "rust"})`,
//! or `err(...)` when the input is not JSON. When `object_inputs` names
//! objects, it also lists them through the `objects` import and reads each,
//! adding `"objects": {"<key>": {"size": N, "content_type": "...", "read_bytes": N}}`.

wit_bindgen::generate!({
    path: "../../../wit",
    world: "function",
});

use faas::function::objects::{self, ObjectError};
use serde_json::{json, Map, Value};

/// The most this sample reads of one object.
const MAX_BYTES: u64 = 16 * 1024 * 1024;

struct Component;

impl Guest for Component {
    fn handle(input: String) -> Result<String, String> {
        eprintln!("rust-hello-component called ({} bytes of input)", input.len());
        let parsed: Value = if input.trim().is_empty() {
            json!({})
        } else {
            serde_json::from_str(&input).map_err(|e| format!("input is not valid JSON: {e}"))?
        };
        let name = parsed
            .pointer("/direct_inputs/name")
            .and_then(Value::as_str)
            .unwrap_or("world");
        let mut out = json!({ "hello": name, "lang": "rust" });

        let wants_objects = parsed
            .get("object_inputs")
            .and_then(Value::as_object)
            .is_some_and(|m| !m.is_empty());
        if wants_objects {
            let mut listed = Map::new();
            for info in objects::list_objects() {
                let read_bytes = match objects::read(&info.key, MAX_BYTES) {
                    Ok(data) => json!(data.len()),
                    Err(ObjectError::NotFound) => json!("not-found"),
                    Err(ObjectError::TooLarge(n)) => json!(format!("too-large({n})")),
                    Err(ObjectError::Unavailable(why)) => json!(format!("unavailable: {why}")),
                };
                listed.insert(
                    info.key.clone(),
                    json!({ "size": info.size, "content_type": info.content_type, "read_bytes": read_bytes }),
                );
            }
            out["objects"] = Value::Object(listed);
        }
        Ok(out.to_string())
    }
}

export!(Component);
