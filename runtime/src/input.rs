//! The execution input (CONTRACT.md §1): what the platform itself reads of it --
//! the `secrets` to inject and the `object_inputs` to grant. `direct_inputs` is
//! the function's business.

use crate::{Error, Result};

/// An `object_inputs` entry: `alias -> "<function_id>/<name>"`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectInput {
    /// The key in `object_inputs`.
    pub alias: String,
    /// Function whose bucket holds the object.
    pub function_id: String,
    /// Object name.
    pub name: String,
}

/// What the platform reads of an input.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ParsedInput {
    /// Secret names, as given.
    pub secrets: Vec<String>,
    /// Objects to grant.
    pub objects: Vec<ObjectInput>,
}

/// Normalises a submitted `input`: a JSON object, or a string holding JSON text.
/// Returns the JSON text handed to the function and the JSON value it holds, so
/// that [`parse_value`] reads it without parsing the text again.
pub fn normalize(input: serde_json::Value) -> Result<(String, serde_json::Value)> {
    match input {
        serde_json::Value::String(s) => {
            let value = serde_json::from_str::<serde_json::Value>(&s)
                .map_err(|e| Error::Invalid(format!("input is a string but not JSON: {e}")))?;
            Ok((s, value))
        }
        serde_json::Value::Object(_) => Ok((input.to_string(), input)),
        _ => Err(Error::Invalid(
            "input must be a JSON object or a string holding JSON".into(),
        )),
    }
}

/// Reads `secrets` and `object_inputs` of an input JSON text (a worker reading a
/// stored record).
pub fn parse(text: &str) -> Result<ParsedInput> {
    let v: serde_json::Value = serde_json::from_str(text)
        .map_err(|e| Error::Invalid(format!("input is not JSON: {e}")))?;
    parse_value(&v)
}

/// Reads `secrets` and `object_inputs` of an input already parsed.
pub fn parse_value(v: &serde_json::Value) -> Result<ParsedInput> {
    let Some(obj) = v.as_object() else {
        return Ok(ParsedInput::default());
    };
    let mut out = ParsedInput::default();
    if let Some(s) = obj.get("secrets") {
        let list = s
            .as_array()
            .ok_or_else(|| Error::Invalid("secrets must be an array of names".into()))?;
        for name in list {
            let name = name
                .as_str()
                .ok_or_else(|| Error::Invalid("secrets must be an array of names".into()))?;
            crate::model::validate_name("secret", name)?;
            if !out.secrets.iter().any(|n| n == name) {
                out.secrets.push(name.to_string());
            }
        }
    }
    if let Some(o) = obj.get("object_inputs") {
        let map = o.as_object().ok_or_else(|| {
            Error::Invalid("object_inputs must map names to \"<function_id>/<object>\"".into())
        })?;
        for (alias, key) in map {
            out.objects.push(object_input(alias, key)?);
        }
    }
    Ok(out)
}

fn object_input(alias: &str, key: &serde_json::Value) -> Result<ObjectInput> {
    let bad = || {
        Error::Invalid(format!(
            "object_inputs.{alias} must be \"<function_id>/<object name>\""
        ))
    };
    let key = key.as_str().ok_or_else(bad)?;
    let (function_id, name) = key.split_once('/').ok_or_else(bad)?;
    if function_id.is_empty() || function_id.contains(['/', '.']) {
        return Err(bad());
    }
    crate::model::validate_name("object", name)?;
    Ok(ObjectInput {
        alias: alias.to_string(),
        function_id: function_id.to_string(),
        name: name.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn normalize_accepts_object_and_json_string_only() {
        let (text, value) = normalize(json!({"a": 1})).unwrap();
        assert_eq!((text.as_str(), value), ("{\"a\":1}", json!({"a": 1})));
        let (text, value) = normalize(json!("{\"a\":1}")).unwrap();
        assert_eq!((text.as_str(), value), ("{\"a\":1}", json!({"a": 1})));
        assert!(normalize(json!("not json")).is_err());
        assert!(normalize(json!(5)).is_err());
        assert!(normalize(json!([1])).is_err());
    }

    #[test]
    fn parse_reads_secrets_and_objects() {
        let p = parse(r#"{"secrets":["api_key","api_key"],"object_inputs":{"doc":"f1/a.txt"}}"#)
            .unwrap();
        assert_eq!(p.secrets, vec!["api_key"]);
        assert_eq!(p.objects[0].function_id, "f1");
        assert_eq!(p.objects[0].name, "a.txt");
        assert!(parse(r#"{"object_inputs":{"doc":"../etc/passwd"}}"#).is_err());
        assert!(parse(r#"{"object_inputs":{"doc":"f1/../../x"}}"#).is_err());
        assert!(parse(r#"{"secrets":"x"}"#).is_err());
    }
}
