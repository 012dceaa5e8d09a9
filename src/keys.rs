//! Keys a data directory keeps when the operator gives none: the token signing key
//! and the secret-sealing key, generated once and stored with mode 0600.

use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;

use anyhow::{Context, bail};

/// The JWT key: `configured` if given (>= 32 bytes), else `<dir>/jwt.secret`.
pub fn jwt_secret(configured: Option<&str>, dir: &Path) -> anyhow::Result<Vec<u8>> {
    if let Some(s) = configured {
        if s.len() < 32 {
            bail!(
                "JWT_SECRET is {} bytes; it must be at least 32 bytes (e.g. `openssl rand -hex 32`)",
                s.len()
            );
        }
        return Ok(s.as_bytes().to_vec());
    }
    let key = load_or_create(&dir.join("jwt.secret"), "JWT signing key")?;
    Ok(hex::encode(key).into_bytes())
}

/// The secret-sealing key: `configured` (64 hex chars) if given, else `<dir>/secrets.key`.
pub fn secrets_key(configured: Option<&str>, dir: &Path) -> anyhow::Result<[u8; 32]> {
    if let Some(s) = configured {
        let bytes = hex::decode(s.trim()).context("FAAS_SECRETS_KEY must be 64 hex characters")?;
        return bytes
            .try_into()
            .map_err(|_| anyhow::anyhow!("FAAS_SECRETS_KEY must be 64 hex characters (32 bytes)"));
    }
    load_or_create(&dir.join("secrets.key"), "secret-sealing key")
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
