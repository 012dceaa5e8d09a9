//! Records of functions served over HTTP: per-function settings and access keys,
//! and [`Trigger`], what started an execution.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

/// Who may call a function's HTTP endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum HttpAccess {
    /// Anyone who knows the URL.
    Public,
    /// Callers presenting one of the function's keys (`Authorization: Bearer <key>`).
    #[default]
    Key,
}

/// What started an execution.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum Trigger {
    /// Submitted through the API (`POST /api/functions/{id}/invoke`, the CLI, ...)
    /// and queued; records older than the field are such.
    #[default]
    Api,
    /// A call of the function's HTTP endpoint (`/fn/...`), served without the queue;
    /// recorded once it ended, never active.
    Http,
}

impl Trigger {
    /// The name used in the API.
    pub fn as_str(self) -> &'static str {
        match self {
            Trigger::Api => "api",
            Trigger::Http => "http",
        }
    }
}

/// A function's HTTP settings; a function without a record is not served.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct HttpSettings {
    /// Served at `/fn/{username}/{function}` (default false).
    pub enabled: bool,
    /// `public` or `key` (default `key`).
    #[serde(default)]
    pub access: HttpAccess,
    /// Hosts the function's guest may send requests to (`wasi:http/outgoing-handler`),
    /// as `scheme://host[:port]`: `https://api.example.com`, `https://*.example.com:443`
    /// (any name below `example.com`). Empty (the default, and then left out of the
    /// JSON): every request is denied. See [`crate::outbound`].
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[cfg_attr(feature = "openapi", schema(schema_with = outbound_hosts_schema))]
    pub allowed_outbound_hosts: Vec<String>,
}

/// The schema of `allowed_outbound_hosts`: its items' pattern is a subset of what
/// [`crate::outbound::validate_hosts`] accepts (lower-case names; it also takes
/// upper case, IP literals in brackets and a trailing `/`).
#[cfg(feature = "openapi")]
fn outbound_hosts_schema() -> utoipa::openapi::schema::Schema {
    use crate::outbound::{ALLOWED_HOST_PATTERN, MAX_ALLOWED_HOSTS, MAX_HOST_ENTRY_CHARS};
    let schema = serde_json::json!({
        "type": "array",
        "maxItems": MAX_ALLOWED_HOSTS,
        "items": {
            "type": "string",
            "maxLength": MAX_HOST_ENTRY_CHARS,
            "pattern": ALLOWED_HOST_PATTERN,
        },
        "example": ["https://api.example.com", "https://*.example.com:443"],
    });
    serde_json::from_value(schema).unwrap_or_default()
}

impl HttpSettings {
    /// Validates the settings and normalises `allowed_outbound_hosts`
    /// ([`crate::outbound::validate_hosts`]); the error says what is wrong.
    pub fn validate(&mut self) -> Result<(), String> {
        self.allowed_outbound_hosts =
            crate::outbound::validate_hosts(&self.allowed_outbound_hosts)?;
        Ok(())
    }
}

/// An access key of a function's endpoint. Only its SHA-256 is kept; the key is
/// shown once, when it is made.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct HttpKey {
    /// Stable id.
    pub id: String,
    /// The function it opens.
    pub function_id: String,
    /// The first characters of the key, to tell keys apart.
    pub prefix: String,
    /// Hex SHA-256 of the key.
    pub sha256: String,
    /// Creation time.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

/// Characters of a key shown as its prefix.
pub const KEY_PREFIX_CHARS: usize = 12;

/// Text every key starts with.
pub const KEY_MARK: &str = "fnk_";

/// A fresh random key (`fnk_` and 43 base64url characters: 256 bits).
pub fn new_key() -> String {
    use base64::Engine as _;
    use rand::RngCore;
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    format!(
        "{KEY_MARK}{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    )
}

/// Hex SHA-256 of a key.
pub fn key_sha256(key: &str) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(key.as_bytes()))
}

/// Equality of two strings in time that depends on their lengths only.
pub fn constant_time_eq(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_random_and_hashed() {
        let (a, b) = (new_key(), new_key());
        assert_ne!(a, b);
        assert!(a.starts_with(KEY_MARK) && a.len() == KEY_MARK.len() + 43);
        assert_eq!(key_sha256(&a), key_sha256(&a));
        assert_ne!(key_sha256(&a), key_sha256(&b));
    }

    #[test]
    fn settings_default_to_disabled_with_keys() {
        let s: HttpSettings = serde_json::from_str(r#"{"enabled": true}"#).unwrap();
        assert_eq!(s.access, HttpAccess::Key);
        assert!(!HttpSettings::default().enabled);
        assert!(serde_json::from_str::<HttpSettings>(r#"{"enabled": 1}"#).is_err());
        assert!(serde_json::from_str::<HttpSettings>(r#"{"enabled": true, "x": 1}"#).is_err());
        assert!(s.allowed_outbound_hosts.is_empty());
    }

    #[test]
    fn outbound_hosts_are_validated_and_normalised() {
        let mut s: HttpSettings = serde_json::from_str(
            r#"{"enabled": true, "allowed_outbound_hosts": ["HTTPS://Api.Example.com:443/"]}"#,
        )
        .unwrap();
        s.validate().unwrap();
        assert_eq!(s.allowed_outbound_hosts, ["https://api.example.com"]);
        s.allowed_outbound_hosts = vec!["https://example.com/x".into()];
        assert!(s.validate().unwrap_err().contains("path"));
    }

    #[test]
    fn constant_time_eq_compares() {
        assert!(constant_time_eq("abc", "abc"));
        assert!(!constant_time_eq("abc", "abd"));
        assert!(!constant_time_eq("abc", "ab"));
    }
}
