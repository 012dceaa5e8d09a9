//! Shared by the Rust samples (included with `#[path]`, so each sample stays
//! a standalone crate): how a function receives its input, per the contract.

use std::io::Read;

/// The execution's input JSON text: `argv[1]`, or stdin when argv has no
/// INPUT (the platform omits it for inputs above 64 KiB).
pub fn read_input() -> String {
    if let Some(arg) = std::env::args_os().nth(1) {
        return arg.to_string_lossy().into_owned();
    }
    let mut buf = Vec::new();
    if let Err(e) = std::io::stdin().read_to_end(&mut buf) {
        eprintln!("cannot read stdin: {e}");
    }
    String::from_utf8_lossy(&buf).into_owned()
}

/// Parses the input; an empty input counts as `{}`.
pub fn parse_input(text: &str) -> Result<serde_json::Value, String> {
    if text.trim().is_empty() {
        return Ok(serde_json::Value::Object(Default::default()));
    }
    serde_json::from_str(text).map_err(|e| format!("input is not valid JSON: {e}"))
}

/// Prints `{"error": msg}` (the platform marks the execution failed) and
/// exits 0: the failure is the function's answer, not a crash.
pub fn fail(msg: &str) -> ! {
    eprintln!("error: {msg}");
    println!("{}", serde_json::json!({ "error": msg }));
    std::process::exit(0)
}

/// Lower-case hex of bytes.
#[allow(dead_code)]
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[(b >> 4) as usize] as char);
        s.push(DIGITS[(b & 15) as usize] as char);
    }
    s
}

/// The wasm path of an object named in `object_inputs`:
/// `"<function_id>/<name>"` -> `/objects/<function_id>/<name>`.
#[allow(dead_code)]
pub fn object_path(key: &str) -> String {
    format!("/objects/{}", key.trim_start_matches('/'))
}
