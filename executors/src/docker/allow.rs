//! The operator's allow-list of images (`FAAS_ALLOWED_IMAGES`): glob patterns
//! (`*` any run of characters, `?` one character) matched against the image's
//! canonical reference, checked at deploy time (`prepare`) and again before every run.
//!
//! A pattern is spelled out like a reference (`python:3.*` is
//! `docker.io/library/python:3.*`, `team/*` is `docker.io/team/*`) unless it starts
//! with `*`; one without a tag or digest (`registry.local/team/app`) allows every tag
//! of that repository. `*` alone allows every image.

use super::reference::{ImageRef, canonical_repository};

/// Which images functions may use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AllowedImages {
    /// The patterns as the operator wrote them (for messages).
    written: Vec<String>,
    /// The patterns, spelled out.
    canonical: Vec<String>,
}

impl Default for AllowedImages {
    /// Every image.
    fn default() -> Self {
        AllowedImages::parse("*")
    }
}

impl AllowedImages {
    /// Parses a comma-separated list of patterns; blanks are ignored. An empty list
    /// allows nothing.
    pub fn parse(list: &str) -> Self {
        let written: Vec<String> = list
            .split(',')
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .map(str::to_string)
            .collect();
        let canonical = written.iter().map(|p| spell_out(p)).collect();
        AllowedImages { written, canonical }
    }

    /// True when `image` matches a pattern.
    pub fn allows(&self, image: &ImageRef) -> bool {
        self.canonical
            .iter()
            .any(|p| glob(p, image.canonical()) || glob(p, image.repository()))
    }

    /// `Ok` when allowed, else why not (naming the patterns).
    pub fn check(&self, image: &ImageRef) -> Result<(), String> {
        if self.allows(image) {
            return Ok(());
        }
        Err(format!(
            "image {} is not allowed on this platform (FAAS_ALLOWED_IMAGES: {})",
            image.as_str(),
            if self.written.is_empty() {
                "no image".to_string()
            } else {
                self.written.join(", ")
            }
        ))
    }
}

/// A pattern with its registry spelled out, unless it starts with a wildcard.
fn spell_out(pattern: &str) -> String {
    if pattern.starts_with(['*', '?']) {
        return pattern.to_string();
    }
    let (name, rest) = split_name(pattern);
    format!("{}{rest}", canonical_repository(name))
}

/// Splits `name` from `:tag` / `@digest` (a colon before the last slash is a port).
fn split_name(pattern: &str) -> (&str, &str) {
    let end = pattern.find('@').unwrap_or(pattern.len());
    let before = &pattern[..end];
    match before.rfind(':') {
        Some(colon) if !before[colon..].contains('/') => pattern.split_at(colon),
        _ => pattern.split_at(end),
    }
}

/// Matches `text` against a glob of `*` and `?` (iterative, no backtracking blow-up).
fn glob(pattern: &str, text: &str) -> bool {
    let (p, t): (Vec<char>, Vec<char>) = (pattern.chars().collect(), text.chars().collect());
    let (mut pi, mut ti) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some((pi, ti));
            pi += 1;
        } else if let Some((sp, st)) = star {
            pi = sp + 1;
            ti = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn allowed(list: &str, image: &str) -> bool {
        AllowedImages::parse(list).allows(&ImageRef::parse(image).unwrap())
    }

    #[test]
    fn star_allows_everything_and_nothing_allows_nothing() {
        assert!(allowed("*", "ghcr.io/x/y:1"));
        assert!(AllowedImages::default().allows(&ImageRef::parse("alpine").unwrap()));
        assert!(!allowed("", "alpine"));
        assert!(!allowed(" , ", "alpine"));
    }

    #[test]
    fn patterns_match_the_spelled_out_reference() {
        let list = "registry.local/team/*, python:3.*, busybox";
        for ok in [
            "registry.local/team/fn:1",
            "registry.local/team/sub/fn",
            "python:3.12",
            "docker.io/library/python:3.11-slim",
            "busybox",
            "busybox:1.36",
            "library/busybox:latest",
        ] {
            assert!(allowed(list, ok), "{ok} should be allowed");
        }
        for denied in [
            "registry.local/other/fn",
            "registry.local/teamx/fn",
            "python:2.7",
            "python",
            "evil.example/python:3.12",
            "someone/busybox",
            "alpine",
        ] {
            assert!(!allowed(list, denied), "{denied} should be refused");
        }
    }

    #[test]
    fn refusal_names_the_patterns() {
        let list = AllowedImages::parse("registry.local/*,python:3.*");
        let why = list.check(&ImageRef::parse("alpine").unwrap()).unwrap_err();
        assert!(why.contains("registry.local/*, python:3.*"), "{why}");
        assert!(why.contains("alpine"), "{why}");
    }

    #[test]
    fn glob_rules() {
        assert!(glob("a*b?d", "axxxbcd"));
        assert!(!glob("a*b?d", "axxxbd"));
        assert!(glob("**", ""));
        assert!(!glob("a", "ab"));
        let long = "a".repeat(200);
        assert!(!glob(&format!("{}b", "*a".repeat(30)), &long));
    }
}
