//! The saved session: `<config dir>/faas/config.json` (`$XDG_CONFIG_HOME`, else
//! `~/.config` on Linux), holding the API's URL and a token, readable only by its
//! owner (mode 0600, in a 0700 directory). FAAS_URL and FAAS_TOKEN override it.

use std::io::Write;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::client::{CliError, CliResult};

/// Overrides the saved URL.
pub const URL_ENV: &str = "FAAS_URL";
/// Overrides the saved token.
pub const TOKEN_ENV: &str = "FAAS_TOKEN";
/// The URL when nothing else names one: `faas serve`'s default address.
pub const DEFAULT_URL: &str = "http://127.0.0.1:8080";

/// What `faas login` keeps.
#[derive(Debug, Default, Clone, Serialize, Deserialize)]
pub struct Saved {
    /// The API's base URL.
    pub url: Option<String>,
    /// The bearer token.
    pub token: Option<String>,
    /// Who logged in.
    pub username: Option<String>,
    /// When the token ends (RFC 3339).
    pub expires_at: Option<String>,
}

/// Where requests go, and with which token.
#[derive(Debug, Clone)]
pub struct Target {
    /// The API's base URL.
    pub url: String,
    /// The bearer token, if any.
    pub token: Option<String>,
}

/// An environment variable, with the empty string as unset (as for every setting).
pub fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

/// The session file's path.
pub fn path() -> CliResult<PathBuf> {
    dirs::config_dir()
        .map(|d| d.join("faas").join("config.json"))
        .ok_or_else(|| CliError::Usage("no config directory: set HOME or XDG_CONFIG_HOME".into()))
}

/// The saved session (empty when none was saved).
pub fn load() -> CliResult<Saved> {
    let path = path()?;
    match std::fs::read(&path) {
        Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| {
            CliError::Usage(format!(
                "{} is not a faas session ({e}): remove it and log in again",
                path.display()
            ))
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Saved::default()),
        Err(e) => Err(CliError::io(format!("read {}", path.display()))(e)),
    }
}

/// Saves the session: written to a 0600 file beside it, then renamed over it.
pub fn save(saved: &Saved) -> CliResult<PathBuf> {
    let path = path()?;
    let dir = path.parent().unwrap_or(std::path::Path::new("."));
    create_private_dir(dir)?;
    let text = serde_json::to_vec_pretty(saved)
        .map_err(|e| CliError::Usage(format!("cannot encode the session: {e}")))?;
    let tmp = dir.join(format!(".config.json.{}", std::process::id()));
    let write = || -> std::io::Result<()> {
        let mut f = private_file(&tmp)?;
        f.write_all(&text)?;
        f.sync_all()?;
        std::fs::rename(&tmp, &path)
    };
    write().map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        CliError::io(format!("write {}", path.display()))(e)
    })?;
    Ok(path)
}

/// Removes the saved session; false when there was none.
pub fn remove() -> CliResult<bool> {
    let path = path()?;
    match std::fs::remove_file(&path) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(CliError::io(format!("remove {}", path.display()))(e)),
    }
}

/// The URL (`flag`, else FAAS_URL, else saved, else the default) and the token
/// (FAAS_TOKEN, else saved, when the saved one is for that URL).
pub fn target(flag: Option<String>) -> CliResult<Target> {
    let saved = load()?;
    let url = flag
        .or_else(|| env(URL_ENV))
        .or_else(|| saved.url.clone())
        .unwrap_or_else(|| DEFAULT_URL.to_string());
    let url = normalize_url(&url)?;
    let saved_token = saved
        .token
        .filter(|_| saved.url.as_deref().map(|u| u.trim_end_matches('/')) == Some(url.as_str()));
    Ok(Target {
        token: env(TOKEN_ENV).or(saved_token),
        url,
    })
}

/// An http(s) URL without a trailing slash.
pub fn normalize_url(url: &str) -> CliResult<String> {
    let url = url.trim().trim_end_matches('/');
    let parsed = reqwest::Url::parse(url)
        .map_err(|e| CliError::Usage(format!("{url:?} is not a URL: {e}")))?;
    if !matches!(parsed.scheme(), "http" | "https") || parsed.host().is_none() {
        return Err(CliError::Usage(format!(
            "{url:?} is not an http:// or https:// URL"
        )));
    }
    Ok(url.to_string())
}

#[cfg(unix)]
fn create_private_dir(dir: &std::path::Path) -> CliResult<()> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(CliError::io(format!("create {}", dir.display())))
}

#[cfg(not(unix))]
fn create_private_dir(dir: &std::path::Path) -> CliResult<()> {
    std::fs::create_dir_all(dir).map_err(CliError::io(format!("create {}", dir.display())))
}

#[cfg(unix)]
fn private_file(path: &std::path::Path) -> std::io::Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
}

#[cfg(not(unix))]
fn private_file(path: &std::path::Path) -> std::io::Result<std::fs::File> {
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_url_is_http_or_https_without_a_trailing_slash() {
        assert_eq!(
            normalize_url("http://127.0.0.1:8080/").unwrap(),
            "http://127.0.0.1:8080"
        );
        assert!(normalize_url("ftp://example").is_err());
        assert!(normalize_url("not a url").is_err());
    }
}
