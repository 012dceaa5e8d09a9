//! Sample function: prints `{"hello": <direct_inputs.name or "world">, "input": <INPUT>}`.
//! INPUT is echoed as given (key order kept); logs go to stderr.

#[path = "../../common/input.rs"]
mod input;

use serde_json::value::RawValue;

fn main() {
    let text = input::read_input();
    eprintln!("rust-hello called ({} bytes of input)", text.len());
    let text = if text.trim().is_empty() { "{}" } else { text.as_str() };

    let parsed = input::parse_input(text).unwrap_or_else(|e| input::fail(&e));
    let raw: &RawValue = serde_json::from_str(text).unwrap_or_else(|e| input::fail(&e.to_string()));
    let name = parsed
        .pointer("/direct_inputs/name")
        .and_then(|v| v.as_str())
        .unwrap_or("world");
    eprintln!("greeting {name}");

    let name = serde_json::to_string(name).expect("a string serializes");
    println!("{{\"hello\":{},\"input\":{}}}", name, raw.get());
}
