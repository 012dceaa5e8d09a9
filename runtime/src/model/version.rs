//! Versions and aliases of a function.
//!
//! Every function has immutable, numbered versions (1, 2, ...): a
//! [`FunctionVersion`] records what one runs. The [`Function`] record keeps the
//! [`VersionIndex`] (which numbers exist, the newest, the aliases) and mirrors the
//! newest version's artifact and limits, so readers that want `latest` (HTTP
//! endpoints) read one record. A function stored before versions existed has no
//! index: it reads as having version 1 = its artifact ([`VersionIndex::normalize`]).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::{Function, PullPolicy, RuntimeKind, validate_name};

/// The alias that always means the newest version.
pub const LATEST: &str = "latest";

/// Most `env` entries of a version.
pub const MAX_ENV_VARS: usize = 64;

/// Longest `env` value, in bytes.
pub const MAX_ENV_VALUE_BYTES: usize = 4096;

/// Most aliases of a function (besides `latest`).
pub const MAX_ALIASES: usize = 100;

/// The versions of a function, kept on its record.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct VersionIndex {
    /// The newest version: what `latest` means.
    #[serde(default)]
    pub latest_version: u64,
    /// The numbers of the versions that exist, ascending.
    #[serde(default)]
    pub versions: Vec<u64>,
    /// Alias name -> version (`latest` is implied and never stored).
    #[serde(default)]
    pub aliases: BTreeMap<String, u64>,
}

impl VersionIndex {
    /// The index of a new function: version 1 only.
    pub fn first() -> Self {
        VersionIndex {
            latest_version: 1,
            versions: vec![1],
            aliases: BTreeMap::new(),
        }
    }

    /// Makes a record stored before versions read as having version 1.
    pub fn normalize(&mut self) {
        if self.latest_version == 0 {
            *self = VersionIndex::first();
        }
    }

    /// True when version `n` exists.
    pub fn has(&self, n: u64) -> bool {
        self.versions.binary_search(&n).is_ok()
    }

    /// The version `alias` points at (`latest`: the newest).
    pub fn resolve(&self, alias: &str) -> Option<u64> {
        match alias {
            LATEST => Some(self.latest_version),
            other => self.aliases.get(other).copied(),
        }
    }

    /// The aliases pointing at `n` (`latest` included).
    pub fn aliases_of(&self, n: u64) -> Vec<String> {
        let mut out: Vec<String> = (n == self.latest_version)
            .then(|| LATEST.to_string())
            .into_iter()
            .collect();
        out.extend(
            self.aliases
                .iter()
                .filter(|(_, v)| **v == n)
                .map(|(k, _)| k.clone()),
        );
        out
    }
}

/// Checks an alias name: as a function name, and not `latest` (which cannot be
/// set or deleted).
pub fn validate_alias(name: &str) -> crate::Result<()> {
    validate_name("alias", name)?;
    if name.eq_ignore_ascii_case(LATEST) {
        return Err(crate::Error::Invalid(
            "`latest` always means the newest version; it cannot be set or deleted".into(),
        ));
    }
    Ok(())
}

/// Checks a version's `env`: names as for secrets, not `API_BASE_URL` nor
/// `FAAS_*` (the platform's), values up to [`MAX_ENV_VALUE_BYTES`], at most
/// [`MAX_ENV_VARS`] entries, no two names equal once upper-cased.
pub fn validate_env(env: &BTreeMap<String, String>) -> crate::Result<()> {
    let invalid = |m: String| Err(crate::Error::Invalid(m));
    if env.len() > MAX_ENV_VARS {
        return invalid(format!("env has at most {MAX_ENV_VARS} entries"));
    }
    let mut seen = std::collections::HashSet::new();
    for (name, value) in env {
        validate_name("env", name)?;
        let upper = name.to_uppercase();
        if upper == "API_BASE_URL" || upper.starts_with("FAAS_") {
            return invalid(format!("env name {name:?} is reserved by the platform"));
        }
        if !seen.insert(upper) {
            return invalid(format!("env names {name:?} twice (names ignore case)"));
        }
        if value.len() > MAX_ENV_VALUE_BYTES {
            return invalid(format!(
                "env value of {name:?} is longer than {MAX_ENV_VALUE_BYTES} bytes"
            ));
        }
        if value.contains('\0') {
            return invalid(format!("env value of {name:?} holds a NUL character"));
        }
    }
    Ok(())
}

/// One immutable version of a function: what it runs and with which limits.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct FunctionVersion {
    /// The function.
    pub function_id: String,
    /// Its number (1-based).
    pub version: u64,
    /// Free text.
    #[serde(default)]
    pub description: String,
    /// `wasm` or `docker`.
    pub runtime: RuntimeKind,
    /// Image reference (docker).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_url: Option<String>,
    /// Pull policy (docker); the operator's default when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pull_policy: Option<PullPolicy>,
    /// Warm containers kept ready (docker); `None`: one while invoked recently.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub warm: Option<u32>,
    /// SHA-256 of the module bytes (wasm).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub module_sha256: Option<String>,
    /// Module size in bytes (wasm).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub module_size: Option<u64>,
    /// Hard timeout of one execution.
    pub timeout_secs: u64,
    /// Memory limit of one execution.
    pub memory_mb: u64,
    /// Non-secret configuration given to the function as env vars (upper-cased
    /// names, like secrets); shown in the clear.
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// Creation time.
    #[serde(with = "time::serde::rfc3339")]
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub created_at: OffsetDateTime,
}

impl FunctionVersion {
    /// Version `n` running what `f`'s record mirrors (a new function's version 1,
    /// or the version 1 of a function stored before versions).
    pub fn of(f: &Function, n: u64) -> Self {
        FunctionVersion {
            function_id: f.id.clone(),
            version: n,
            description: f.description.clone(),
            runtime: f.runtime,
            image_url: f.image_url.clone(),
            pull_policy: f.pull_policy,
            warm: f.warm,
            module_sha256: f.module_sha256.clone(),
            module_size: f.module_size,
            timeout_secs: f.timeout_secs,
            memory_mb: f.memory_mb,
            env: BTreeMap::new(),
            created_at: f.created_at,
        }
    }

    /// `f` as this version runs it: its artifact and limits in place of the
    /// newest version's (what executors are given).
    pub fn apply(&self, f: &Function) -> Function {
        Function {
            runtime: self.runtime,
            image_url: self.image_url.clone(),
            pull_policy: self.pull_policy,
            warm: self.warm,
            module_sha256: self.module_sha256.clone(),
            module_size: self.module_size,
            timeout_secs: self.timeout_secs,
            memory_mb: self.memory_mb,
            ..f.clone()
        }
    }

    /// Makes `f`'s record mirror this version (it became the newest).
    pub fn mirror_into(&self, f: &mut Function) {
        *f = self.apply(f);
    }

    /// The env vars of the version: upper-cased names.
    pub fn env_vars(&self) -> Vec<(String, String)> {
        self.env
            .iter()
            .map(|(k, v)| (k.to_uppercase(), v.clone()))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_without_versions_reads_as_version_one() {
        let mut v = VersionIndex::default();
        v.normalize();
        assert_eq!(v, VersionIndex::first());
        assert_eq!(v.resolve(LATEST), Some(1));
        assert_eq!(v.aliases_of(1), vec!["latest".to_string()]);
    }

    #[test]
    fn latest_and_bad_names_are_refused_as_aliases() {
        assert!(validate_alias("latest").is_err());
        assert!(validate_alias("LATEST").is_err());
        assert!(validate_alias("").is_err());
        assert!(validate_alias("a/b").is_err());
        assert!(validate_alias("prod").is_ok());
    }

    #[test]
    fn env_is_bounded_and_keeps_clear_of_platform_names() {
        let env = |pairs: &[(&str, &str)]| -> BTreeMap<String, String> {
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        };
        assert!(validate_env(&env(&[("greeting", "hi")])).is_ok());
        assert!(validate_env(&env(&[("FAAS_EXECUTION_ID", "x")])).is_err());
        assert!(validate_env(&env(&[("api_base_url", "x")])).is_err());
        assert!(validate_env(&env(&[("a", "x"), ("A", "y")])).is_err());
        assert!(validate_env(&env(&[("bad name", "x")])).is_err());
        let long = "x".repeat(MAX_ENV_VALUE_BYTES + 1);
        assert!(validate_env(&env(&[("a", &long)])).is_err());
        let many: BTreeMap<String, String> = (0..=MAX_ENV_VARS)
            .map(|i| (format!("v{i}"), String::new()))
            .collect();
        assert!(validate_env(&many).is_err());
    }
}
