//! The document agrees with the router and the validators.

use std::collections::BTreeSet;

use serde_json::Value;

use super::{NAME_PATTERN, USERNAME_PATTERN, document};
use crate::routes::executions::{IDEMPOTENCY_KEY_PATTERN, OBJECT_REF_PATTERN};
use crate::state::ApiLimits;

fn doc() -> Value {
    document(&ApiLimits::default())
}

/// (path, method, operation) of every operation.
fn operations(doc: &Value) -> Vec<(String, String, Value)> {
    let mut out = Vec::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for (method, op) in item.as_object().expect("path item") {
            out.push((path.clone(), method.clone(), op.clone()));
        }
    }
    out
}

#[test]
fn every_path_parameter_is_declared() {
    let doc = doc();
    for (path, method, op) in operations(&doc) {
        let in_template: BTreeSet<String> = path
            .split('/')
            .filter_map(|s| s.strip_prefix('{')?.strip_suffix('}').map(String::from))
            .collect();
        let declared: BTreeSet<String> = op["parameters"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|p| p["in"] == "path")
            .map(|p| p["name"].as_str().unwrap_or_default().to_string())
            .collect();
        assert_eq!(in_template, declared, "{method} {path}: path parameters");
    }
}

#[test]
fn every_operation_documents_the_errors_its_shape_allows() {
    let doc = doc();
    for (path, method, op) in operations(&doc) {
        let statuses: BTreeSet<&str> = op["responses"]
            .as_object()
            .expect("responses")
            .keys()
            .map(String::as_str)
            .collect();
        let has = |s: &str| statuses.contains(s);
        let here = format!("{method} {path}");
        if op.get("security").is_some() {
            assert!(has("401"), "{here}: 401");
        }
        if op.get("parameters").is_some() {
            assert!(has("400"), "{here}: 400");
        }
        if let Some(body) = op.get("requestBody") {
            assert!(has("400") && has("413"), "{here}: 400 and 413");
            if body["content"].get("application/json").is_some() {
                assert!(has("415"), "{here}: 415");
            }
        }
        if !super::errors::NO_BACKEND.contains(&path.as_str()) {
            assert!(has("503"), "{here}: 503");
        }
        for (status, response) in op["responses"].as_object().expect("responses") {
            let is_error = status.starts_with('4') || status.starts_with('5');
            if is_error && path != "/readyz" {
                let schema = &response["content"]["application/json"]["schema"]["$ref"];
                assert_eq!(
                    schema, "#/components/schemas/ErrorBody",
                    "{here}: {status} is the error body"
                );
            }
        }
    }
}

/// Every `pattern` of the document, with where it is.
fn patterns(v: &Value, at: &str, out: &mut Vec<(String, String)>) {
    match v {
        Value::Object(o) => {
            for (k, child) in o {
                if k == "pattern"
                    && let Some(p) = child.as_str()
                {
                    out.push((at.to_string(), p.to_string()));
                }
                patterns(child, &format!("{at}/{k}"), out);
            }
        }
        Value::Array(a) => {
            for (i, child) in a.iter().enumerate() {
                patterns(child, &format!("{at}/{i}"), out);
            }
        }
        _ => {}
    }
}

use faas_runtime::outbound::ALLOWED_HOST_PATTERN;

const IMAGE_PATTERN: &str = "^[A-Za-z0-9._][A-Za-z0-9./:_@-]{0,511}$";
const NO_NUL_PATTERN: &str = "^[^\\u0000]*$";

const SAMPLES: &[&str] = &[
    "",
    "a",
    "ab",
    "abc",
    ".abc",
    "_a",
    "-a",
    "a.b_c-d",
    "A9",
    "a b",
    "a/b",
    "a\n",
    "\na",
    "é",
    "ab\u{0}",
    "x:1",
    "x@sha256:00",
    "/x",
    ":x",
    "@x",
    "registry.io:5000/a/b:tag",
    "f1/a.txt",
    "f1/.a",
    "f.1/a",
    "/a",
    "f1/",
    "f1/a/b",
    "f1/a b",
];

fn long_samples() -> Vec<String> {
    let mut out: Vec<String> = SAMPLES.iter().map(|s| s.to_string()).collect();
    for n in [63, 64, 65, 127, 128, 129, 511, 512, 513] {
        out.push("a".repeat(n));
        out.push(format!("f1/{}", "b".repeat(n)));
    }
    out
}

#[test]
fn documented_patterns_agree_with_the_validators() {
    type Check = fn(&str) -> bool;
    let known: &[(&str, Check)] = &[
        (NAME_PATTERN, |s| {
            faas_runtime::model::validate_name("x", s).is_ok()
        }),
        (USERNAME_PATTERN, |s| {
            crate::routes::auth::validate_username(s).is_ok()
        }),
        (IMAGE_PATTERN, |s| {
            crate::routes::functions::validate_image_ref(s).is_ok()
        }),
        (OBJECT_REF_PATTERN, |s| {
            let input = serde_json::json!({"object_inputs": {"a": s}}).to_string();
            faas_runtime::input::parse(&input).is_ok()
        }),
        (NO_NUL_PATTERN, |s| !s.contains('\0')),
        (ALLOWED_HOST_PATTERN, |_| true),
        (IDEMPOTENCY_KEY_PATTERN, |s| {
            let mut headers = axum::http::HeaderMap::new();
            match axum::http::HeaderValue::from_str(s) {
                Ok(v) => headers.insert("idempotency-key", v),
                Err(_) => return false,
            };
            matches!(
                crate::routes::executions::idempotency_key(&headers),
                Ok(Some(_))
            )
        }),
    ];
    let mut found = Vec::new();
    patterns(&doc(), "", &mut found);
    assert!(found.len() >= 8, "patterns found: {found:?}");
    for (at, pattern) in &found {
        assert!(
            known.iter().any(|(p, _)| p == pattern),
            "{at}: pattern {pattern:?} has no validator in this test"
        );
    }
    for (pattern, valid) in known.iter().filter(|(p, _)| *p != ALLOWED_HOST_PATTERN) {
        let re = regex::Regex::new(pattern).expect("pattern compiles");
        for s in long_samples() {
            assert_eq!(
                re.is_match(&s),
                valid(&s),
                "{pattern:?} and its validator disagree on {s:?}"
            );
        }
    }
}

#[test]
fn limits_are_declared_as_the_router_enforces_them() {
    let limits = ApiLimits {
        max_timeout_secs: 77,
        max_memory_mb: 99,
        max_secret_chars: 5,
        ..ApiLimits::default()
    };
    let doc = document(&limits);
    let schemas = &doc["components"]["schemas"];
    for form in ["ImageFunction", "WasmFunctionForm"] {
        let props = &schemas[form]["properties"];
        assert_eq!(props["timeout_secs"]["maximum"], 77);
        assert_eq!(props["timeout_secs"]["default"], 300);
        assert_eq!(props["memory_mb"]["maximum"], 99);
        assert_eq!(props["name"]["maxLength"], 128);
        assert_eq!(props["description"]["maxLength"], 4096);
    }
    assert_eq!(schemas["NewSecret"]["properties"]["value"]["maxLength"], 5);
    assert_eq!(
        schemas["SecretValue"]["properties"]["value"]["maxLength"],
        5
    );
    let list = &doc["paths"]["/api/executions"]["get"]["parameters"];
    let limit = list
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "limit")
        .unwrap();
    assert_eq!(
        (&limit["schema"]["minimum"], &limit["schema"]["maximum"]),
        (&serde_json::json!(1), &serde_json::json!(200))
    );
}

#[test]
fn the_outbound_host_pattern_agrees_with_the_parser() {
    const HOSTS: &[&str] = &[
        // allowed_outbound_hosts entries (the pattern is a subset of the parser: no upper
        // case, bracketed IPs or ports over 9999 here, where the two differ by design)
        "https://api.example.com",
        "http://a",
        "https://*.example.com:443",
        "http://a-b.c.com",
        "https://a.com/x",
        "https://a.com:0",
        "ftp://a.com",
        "https://",
        "https://*.",
        "https://a..b",
        "https://-a.com",
        "http://127.0.0.1:8080",
    ];
    let re = regex::Regex::new(ALLOWED_HOST_PATTERN).expect("pattern compiles");
    for s in HOSTS {
        let parsed = faas_runtime::outbound::validate_hosts(&[s.to_string()]).is_ok();
        assert_eq!(
            re.is_match(s),
            parsed,
            "pattern and parser disagree on {s:?}"
        );
    }
}
