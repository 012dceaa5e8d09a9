//! Keys a data directory keeps when the operator gives none: the token signing key
//! and the secret-sealing key, generated once and stored with mode 0600. Configured
//! keys that are known placeholders or degenerate (too short, one repeated byte,
//! a handful of distinct bytes) are refused.

use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;

use anyhow::{Context, bail};

/// How to make a real key, for the refusals.
const GENERATE: &str = "generate one with `openssl rand -hex 32`";

/// Values that shipped as examples: whoever copied them runs with a published key.
const PLACEHOLDERS: &[&str] = &[
    "change-me-to-at-least-32-bytes-of-random-data",
    "change-me",
    "changeme",
    "replace-me",
    "your-secret",
];

/// Fewest distinct bytes a configured key must have (`openssl rand -hex 32` has ~16).
const MIN_DISTINCT_BYTES: usize = 8;

/// The JWT key: `configured` if given (>= 32 bytes, not a placeholder, not
/// degenerate), else `<dir>/jwt.secret`.
pub fn jwt_secret(configured: Option<&str>, dir: &Path) -> anyhow::Result<Vec<u8>> {
    if let Some(s) = configured {
        if s.len() < 32 {
            bail!(
                "JWT_SECRET is {} bytes; it must be at least 32 bytes: {GENERATE}",
                s.len()
            );
        }
        let lower = s.to_ascii_lowercase();
        if PLACEHOLDERS.iter().any(|p| lower.contains(p)) {
            bail!("JWT_SECRET is an example placeholder: {GENERATE}");
        }
        refuse_degenerate("JWT_SECRET", s.as_bytes())?;
        return Ok(s.as_bytes().to_vec());
    }
    let key = load_or_create(&dir.join("jwt.secret"), "JWT signing key")?;
    Ok(hex::encode(key).into_bytes())
}

/// The secret-sealing key: `configured` (64 hex chars) if given, else `<dir>/secrets.key`.
pub fn secrets_key(configured: Option<&str>, dir: &Path) -> anyhow::Result<[u8; 32]> {
    if let Some(s) = configured {
        let bytes = hex::decode(s.trim())
            .with_context(|| format!("FAAS_SECRETS_KEY must be 64 hex characters: {GENERATE}"))?;
        let key: [u8; 32] = bytes.try_into().map_err(|_| {
            anyhow::anyhow!("FAAS_SECRETS_KEY must be 64 hex characters (32 bytes): {GENERATE}")
        })?;
        refuse_degenerate("FAAS_SECRETS_KEY", &key)?;
        return Ok(key);
    }
    load_or_create(&dir.join("secrets.key"), "secret-sealing key")
}

/// Refuses a key made of one repeated byte (all zeros) or of only a few distinct bytes.
fn refuse_degenerate(name: &str, key: &[u8]) -> anyhow::Result<()> {
    let distinct = key.iter().collect::<std::collections::HashSet<_>>().len();
    if distinct < MIN_DISTINCT_BYTES {
        bail!(
            "{name} is degenerate ({distinct} distinct byte values, e.g. all zeros); it must be random: {GENERATE}"
        );
    }
    Ok(())
}

fn load_or_create(path: &Path, what: &str) -> anyhow::Result<[u8; 32]> {
    if let Ok(text) = std::fs::read_to_string(path) {
        let bytes =
            hex::decode(text.trim()).with_context(|| format!("{} is corrupt", path.display()))?;
        return bytes
            .try_into()
            .map_err(|_| anyhow::anyhow!("{} is corrupt", path.display()));
    }
    let key = faas_runtime::sealing::SecretBox::generate_key();
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("create {}", path.display()))?;
    file.write_all(hex::encode(key).as_bytes())?;
    file.sync_all()?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    tracing::info!(path = %path.display(), "generated a new {what} (mode 0600); keep it with the data");
    Ok(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refusal(r: anyhow::Result<impl std::fmt::Debug>) -> String {
        let e = r.expect_err("refused");
        let text = format!("{e:#}");
        assert!(text.contains("openssl rand -hex 32"), "says how: {text}");
        text
    }

    #[test]
    fn the_old_example_jwt_secret_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let old = "change-me-to-at-least-32-bytes-of-random-data";
        assert!(refusal(jwt_secret(Some(old), dir.path())).contains("placeholder"));
    }

    #[test]
    fn the_old_example_all_zero_secrets_key_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let zeros = "0".repeat(64);
        assert!(refusal(secrets_key(Some(&zeros), dir.path())).contains("degenerate"));
    }

    #[test]
    fn degenerate_and_short_keys_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        refusal(jwt_secret(Some(&"a".repeat(64)), dir.path()));
        refusal(jwt_secret(Some(&"ab".repeat(32)), dir.path()));
        refusal(jwt_secret(Some("too-short-0123456789"), dir.path()));
        refusal(secrets_key(Some(&"ff".repeat(32)), dir.path()));
        refusal(secrets_key(Some(&"0102".repeat(16)), dir.path()));
        refusal(secrets_key(Some("abcd"), dir.path()));
        refusal(secrets_key(Some(&"zz".repeat(32)), dir.path()));
    }

    #[test]
    fn random_keys_are_accepted() {
        let dir = tempfile::tempdir().unwrap();
        let hex64 = hex::encode(faas_runtime::sealing::SecretBox::generate_key());
        assert_eq!(
            jwt_secret(Some(&hex64), dir.path()).unwrap(),
            hex64.as_bytes()
        );
        secrets_key(Some(&hex64), dir.path()).unwrap();
        let fixture = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";
        secrets_key(Some(fixture), dir.path()).unwrap();
    }
}
