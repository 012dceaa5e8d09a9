//! Image references (`[registry[:port]/]path[:tag][@digest]`), checked with the
//! grammar of the distribution project's `reference` package, so that `prepare()` can
//! refuse a malformed `image_url` with a reason before anything reaches the engine.

use faas_runtime::{Error, Result};

/// The registry an unqualified reference (`alpine`, `user/app`) names.
pub const DEFAULT_REGISTRY: &str = "docker.io";

/// Longest repository name the engine accepts.
const MAX_NAME_LEN: usize = 255;
/// Longest tag the engine accepts.
const MAX_TAG_LEN: usize = 128;

/// A parsed, valid image reference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageRef {
    /// The text as given.
    original: String,
    /// Registry host (with port), when the reference names one.
    domain: Option<String>,
    /// `name:tag`, `name@digest` or `name:latest` when neither was given.
    pull: String,
    /// The repository with its registry spelled out (`docker.io/library/alpine`).
    repository: String,
    /// `repository` with the tag and digest (`docker.io/library/alpine:latest`).
    canonical: String,
}

impl ImageRef {
    /// Parses and validates `text`; `Invalid` says what is wrong.
    pub fn parse(text: &str) -> Result<Self> {
        let invalid = |why: &str| Error::Invalid(format!("image reference {text:?}: {why}"));
        if text.is_empty() {
            return Err(invalid("is empty"));
        }
        if text.trim() != text || text.contains(char::is_whitespace) {
            return Err(invalid("contains whitespace"));
        }
        let (rest, digest) = match text.split_once('@') {
            Some((rest, digest)) => (rest, Some(digest)),
            None => (text, None),
        };
        if let Some(digest) = digest {
            check_digest(digest).map_err(|why| invalid(&why))?;
        }
        let (name, tag) = split_tag(rest);
        if let Some(tag) = tag {
            check_tag(tag).map_err(|why| invalid(&why))?;
        }
        let domain = check_name(name).map_err(|why| invalid(&why))?;
        let pull = if tag.is_some() || digest.is_some() {
            text.to_string()
        } else {
            format!("{text}:latest")
        };
        let repository = canonical_repository(name);
        let mut canonical = repository.clone();
        match (tag, digest) {
            (None, None) => canonical.push_str(":latest"),
            (tag, digest) => {
                if let Some(tag) = tag {
                    canonical.push_str(&format!(":{tag}"));
                }
                if let Some(digest) = digest {
                    canonical.push_str(&format!("@{digest}"));
                }
            }
        }
        Ok(ImageRef {
            original: text.to_string(),
            domain,
            pull,
            repository,
            canonical,
        })
    }

    /// The repository, registry spelled out: `alpine` is `docker.io/library/alpine`.
    pub fn repository(&self) -> &str {
        &self.repository
    }

    /// The whole reference spelled out (`docker.io/library/alpine:latest`): two
    /// references to the same image compare equal in this form.
    pub fn canonical(&self) -> &str {
        &self.canonical
    }

    /// The reference as given (what the engine resolves locally).
    pub fn as_str(&self) -> &str {
        &self.original
    }

    /// The reference to pull: never a bare name, which would pull every tag.
    pub fn pull_ref(&self) -> &str {
        &self.pull
    }

    /// The registry host to authenticate against, normalised like the engine does.
    pub fn registry(&self) -> &str {
        self.domain.as_deref().unwrap_or(DEFAULT_REGISTRY)
    }
}

/// Normalises a configured registry address (`https://index.docker.io/v1/`,
/// `registry.example.com:5000`) to the host compared with [`ImageRef::registry`].
pub fn normalize_registry(server: &str) -> String {
    let host = server
        .trim()
        .trim_start_matches("https://")
        .trim_start_matches("http://");
    let host = host.split('/').next().unwrap_or(host).to_ascii_lowercase();
    match host.as_str() {
        "" | "index.docker.io" | "registry-1.docker.io" | "registry.hub.docker.com" => {
            DEFAULT_REGISTRY.to_string()
        }
        _ => host,
    }
}

/// Splits `name[:tag]`; a colon before the last slash belongs to a registry port.
fn split_tag(rest: &str) -> (&str, Option<&str>) {
    match rest.rfind(':') {
        Some(colon) if !rest[colon..].contains('/') => (&rest[..colon], Some(&rest[colon + 1..])),
        _ => (rest, None),
    }
}

fn check_digest(digest: &str) -> std::result::Result<(), String> {
    let (algorithm, hex) = digest
        .split_once(':')
        .ok_or_else(|| "digest must be <algorithm>:<hex>".to_string())?;
    let algorithm_ok = !algorithm.is_empty()
        && algorithm
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"+._-".contains(&b));
    if !algorithm_ok {
        return Err(format!("digest algorithm {algorithm:?} is malformed"));
    }
    let hex_ok = hex.len() >= 32 && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
    if !hex_ok || (algorithm == "sha256" && hex.len() != 64) {
        return Err("digest is not a valid lowercase hex hash".to_string());
    }
    Ok(())
}

fn check_tag(tag: &str) -> std::result::Result<(), String> {
    let mut bytes = tag.bytes();
    let first_ok = bytes
        .next()
        .is_some_and(|b| b.is_ascii_alphanumeric() || b == b'_');
    let rest_ok = bytes.all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b));
    if first_ok && rest_ok && tag.len() <= MAX_TAG_LEN {
        Ok(())
    } else {
        Err(format!(
            "tag {tag:?} must be 1-128 characters of [A-Za-z0-9_.-], not starting with . or -"
        ))
    }
}

/// Checks `[domain/]path`; returns the domain when there is one.
fn check_name(name: &str) -> std::result::Result<Option<String>, String> {
    if name.is_empty() {
        return Err("repository name is empty".to_string());
    }
    if name.len() > MAX_NAME_LEN {
        return Err(format!("repository name is over {MAX_NAME_LEN} characters"));
    }
    let (domain, path) = match name.split_once('/') {
        Some((first, rest)) if looks_like_domain(first) => (Some(first), rest),
        _ => (None, name),
    };
    if let Some(domain) = domain {
        check_domain(domain)?;
    }
    for component in path.split('/') {
        check_component(component)?;
    }
    Ok(domain.map(str::to_ascii_lowercase))
}

/// `name` (no tag, no digest) with its registry and, on Docker Hub, `library/` spelled
/// out, as the engine names it. Also applied to allow-list patterns.
pub(crate) fn canonical_repository(name: &str) -> String {
    let (domain, path) = match name.split_once('/') {
        Some((first, rest)) if looks_like_domain(first) => (normalize_registry(first), rest),
        _ => (DEFAULT_REGISTRY.to_string(), name),
    };
    if domain == DEFAULT_REGISTRY && !path.contains('/') {
        format!("{domain}/library/{path}")
    } else {
        format!("{domain}/{path}")
    }
}

/// The engine's rule: a first component with `.` or `:`, or `localhost`, is a host.
fn looks_like_domain(first: &str) -> bool {
    first.contains('.') || first.contains(':') || first == "localhost"
}

fn check_domain(domain: &str) -> std::result::Result<(), String> {
    let (host, port) = match domain.strip_prefix('[') {
        Some(v6) => match v6.split_once(']') {
            Some((addr, after)) if addr.parse::<std::net::Ipv6Addr>().is_ok() => {
                (None, after.strip_prefix(':'))
            }
            _ => return Err(format!("registry {domain:?} is not a valid IPv6 address")),
        },
        None => match domain.split_once(':') {
            Some((host, port)) => (Some(host), Some(port)),
            None => (Some(domain), None),
        },
    };
    if let Some(port) = port
        && (port.is_empty() || port.len() > 5 || !port.bytes().all(|b| b.is_ascii_digit()))
    {
        return Err(format!("registry port {port:?} is not a number"));
    }
    let labels_ok = host.is_none_or(|h| h.split('.').all(valid_label));
    if labels_ok {
        Ok(())
    } else {
        Err(format!("registry host {domain:?} is malformed"))
    }
}

fn valid_label(label: &str) -> bool {
    let b = label.as_bytes();
    !b.is_empty()
        && b[0].is_ascii_alphanumeric()
        && b[b.len() - 1].is_ascii_alphanumeric()
        && b.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'-')
}

/// `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*`
fn check_component(component: &str) -> std::result::Result<(), String> {
    if component.bytes().any(|b| b.is_ascii_uppercase()) {
        return Err("repository name must be lowercase".to_string());
    }
    let b = component.as_bytes();
    let alnum = |c: u8| c.is_ascii_lowercase() || c.is_ascii_digit();
    let mut i = 0;
    let mut ok = !b.is_empty() && alnum(b[0]);
    while ok && i < b.len() {
        if alnum(b[i]) {
            i += 1;
            continue;
        }
        let start = i;
        while i < b.len() && !alnum(b[i]) {
            i += 1;
        }
        let sep = &component[start..i];
        let sep_ok = sep == "." || sep == "_" || sep == "__" || sep.bytes().all(|c| c == b'-');
        ok = sep_ok && i < b.len();
    }
    if ok {
        Ok(())
    } else {
        Err(format!(
            "path component {component:?} must be lowercase letters and digits \
             separated by '.', '_', '__' or '-'"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DIGEST: &str = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    #[test]
    fn accepts_common_references() {
        for ok in [
            "alpine",
            "alpine:3.20",
            "library/alpine",
            "ghcr.io/org/app:v1.2.3",
            "localhost:5000/fn",
            "localhost/fn_x",
            "registry.example.com:443/a/b/c:latest",
            "my-app__x.y",
            "[::1]:5000/fn:1",
        ] {
            assert!(ImageRef::parse(ok).is_ok(), "{ok} should parse");
        }
        let pinned = format!("alpine@{DIGEST}");
        assert_eq!(ImageRef::parse(&pinned).unwrap().pull_ref(), pinned);
    }

    #[test]
    fn refuses_malformed_references_with_a_reason() {
        for (bad, why) in [
            ("", "empty"),
            ("Alpine", "lowercase"),
            ("alpine:", "tag"),
            ("alpine:-x", "tag"),
            ("a b", "whitespace"),
            ("alpine@sha256:xyz", "digest"),
            ("alpine@nodigest", "digest"),
            ("a//b", "path component"),
            ("a-/b", "path component"),
            ("host:port/x", "port"),
            ("-bad.host/x", "registry host"),
        ] {
            match ImageRef::parse(bad) {
                Err(Error::Invalid(msg)) => assert!(msg.contains(why), "{bad}: {msg}"),
                other => panic!("{bad} should be invalid, got {other:?}"),
            }
        }
    }

    #[test]
    fn pull_ref_and_registry() {
        let r = ImageRef::parse("alpine").unwrap();
        assert_eq!(r.pull_ref(), "alpine:latest");
        assert_eq!(r.registry(), "docker.io");
        let r = ImageRef::parse("localhost:5000/fn").unwrap();
        assert_eq!(r.pull_ref(), "localhost:5000/fn:latest");
        assert_eq!(r.registry(), "localhost:5000");
        assert_eq!(
            normalize_registry("https://index.docker.io/v1/"),
            "docker.io"
        );
        assert_eq!(
            normalize_registry("Reg.Example.com:5000"),
            "reg.example.com:5000"
        );
    }

    #[test]
    fn canonical_forms_spell_out_the_registry() {
        let r = ImageRef::parse("alpine").unwrap();
        assert_eq!(r.repository(), "docker.io/library/alpine");
        assert_eq!(r.canonical(), "docker.io/library/alpine:latest");
        let r = ImageRef::parse("docker.io/library/alpine:latest").unwrap();
        assert_eq!(r.canonical(), "docker.io/library/alpine:latest");
        let r = ImageRef::parse("user/app:1").unwrap();
        assert_eq!(r.canonical(), "docker.io/user/app:1");
        let r = ImageRef::parse(&format!("localhost:5000/fn:2@{DIGEST}")).unwrap();
        assert_eq!(r.repository(), "localhost:5000/fn");
        assert_eq!(r.canonical(), format!("localhost:5000/fn:2@{DIGEST}"));
    }
}
