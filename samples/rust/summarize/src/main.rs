//! Sample function that uses an object and a secret: for each
//! `alias -> "<function_id>/<name>"` of `object_inputs`, reads
//! `/objects/<function_id>/<name>` and prints
//! `{"objects":{"<alias>":{"bytes":N,"hmac_sha256":"<hex>"}}}`, the HMAC-SHA256
//! of the object's bytes keyed by the value of the first secret in `secrets`
//! (read from its upper-cased env var). Fails with `{"error": ...}` when
//! the secret is missing or an object cannot be read.

#[path = "../../common/input.rs"]
mod input;

use hmac::{Hmac, Mac};
use serde_json::{json, Map, Value};
use sha2::Sha256;

fn main() {
    let text = input::read_input();
    let input = input::parse_input(&text).unwrap_or_else(|e| input::fail(&e));

    let secret_name = match input.pointer("/secrets/0").and_then(Value::as_str) {
        Some(name) => name.to_uppercase(),
        None => input::fail("no secret named: put the key's secret name in \"secrets\""),
    };
    let key = std::env::var_os(&secret_name)
        .unwrap_or_else(|| input::fail(&format!("secret {secret_name} is not set")));
    eprintln!("using secret {secret_name} as the HMAC key");

    let mut objects = Map::new();
    match input.get("object_inputs") {
        Some(Value::Object(map)) if !map.is_empty() => {
            for (alias, object_key) in map {
                let Some(object_key) = object_key.as_str() else {
                    input::fail(&format!("object_inputs.{alias} is not a string"));
                };
                let path = input::object_path(object_key);
                eprintln!("summarizing object {alias} at {path}");
                let data = std::fs::read(&path)
                    .unwrap_or_else(|e| input::fail(&format!("cannot read object {alias}: {e}")));
                let mut mac = Hmac::<Sha256>::new_from_slice(key.as_encoded_bytes())
                    .expect("HMAC takes a key of any length");
                mac.update(&data);
                let tag = mac.finalize().into_bytes();
                objects.insert(
                    alias.clone(),
                    json!({ "bytes": data.len(), "hmac_sha256": input::hex(&tag) }),
                );
            }
        }
        _ => input::fail("no objects named: put at least one in \"object_inputs\""),
    }

    println!("{}", json!({ "objects": objects }));
}
