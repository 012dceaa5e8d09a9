//! Sample function: for each name in `secrets`, reads the env var of the
//! upper-cased name and prints
//! `{"secrets":{"<NAME>":{"present":true,"length":N,"sha256":"<hex>"}},"env_keys":[...]}`
//! (`{"present":false}` for a missing one). The value itself is never printed.
//! `env_keys` is the sorted list of every env var name the function sees, so
//! tests can check that nothing else leaks in.

#[path = "../../common/input.rs"]
mod input;

use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};

fn main() {
    let text = input::read_input();
    let input = input::parse_input(&text).unwrap_or_else(|e| input::fail(&e));

    let names: Vec<String> = match input.get("secrets") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(items)) => items
            .iter()
            .map(|v| match v.as_str() {
                Some(s) => s.to_string(),
                None => input::fail("secrets must be a list of strings"),
            })
            .collect(),
        Some(_) => input::fail("secrets must be a list of strings"),
    };

    let mut secrets = Map::new();
    for name in names {
        let var = name.to_uppercase();
        let entry = match std::env::var_os(&var) {
            Some(value) => {
                let bytes = value.as_encoded_bytes();
                eprintln!("secret {var}: present, {} bytes", bytes.len());
                json!({
                    "present": true,
                    "length": bytes.len(),
                    "sha256": input::hex(&Sha256::digest(bytes)),
                })
            }
            None => {
                eprintln!("secret {var}: missing");
                json!({ "present": false })
            }
        };
        secrets.insert(var, entry);
    }

    let mut env_keys: Vec<String> = std::env::vars_os()
        .map(|(k, _)| k.to_string_lossy().into_owned())
        .collect();
    env_keys.sort();

    println!("{}", json!({ "secrets": secrets, "env_keys": env_keys }));
}
