//! The policy of guests' outbound HTTP requests (`wasi:http/outgoing-handler`).
//!
//! A function may call only the hosts of its `allowed_outbound_hosts` (none by
//! default): entries such as `https://api.example.com` or
//! `https://*.example.com:443`, each a scheme (`http` or `https`), a host (a
//! name, an IP literal, or `*.` and a name: any name below it, not the name
//! itself) and a port (the scheme's when left out). Names and schemes match in
//! any letter case. [`AllowedHost::parse`] validates and normalises an entry;
//! [`validate_hosts`] a whole list as the API takes it.
//!
//! Whatever the list says, every address a name resolves to is checked at
//! connect time by [`crate::addresses`] (private ones only with
//! [`OutboundLimits::allow_private`]), and each request is bounded in time and
//! response size by the operator's [`OutboundLimits`].

use std::fmt;
use std::net::IpAddr;
use std::time::Duration;

/// Most entries of a function's `allowed_outbound_hosts`.
pub const MAX_ALLOWED_HOSTS: usize = 32;

/// Longest entry of `allowed_outbound_hosts` (characters).
pub const MAX_HOST_ENTRY_CHARS: usize = 255;

/// The documented pattern of an `allowed_outbound_hosts` entry: a subset of what
/// [`AllowedHost::parse`] accepts (lower-case names, ports up to 9999; the parser
/// also takes upper case, IP literals in brackets, any port and a trailing `/`).
pub const ALLOWED_HOST_PATTERN: &str = "^https?://(\\*\\.)?[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*(:[1-9][0-9]{0,3})?$";

/// The operator's switch for private outbound addresses.
pub const ALLOW_PRIVATE_SETTING: &str = "FAAS_OUTBOUND_ALLOW_PRIVATE";

/// The schemes of outbound requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutboundScheme {
    /// Plain HTTP (default port 80).
    Http,
    /// HTTP over TLS (default port 443).
    Https,
}

impl OutboundScheme {
    /// The scheme named `name` (any letter case).
    pub fn parse(name: &str) -> Option<Self> {
        if name.eq_ignore_ascii_case("http") {
            Some(OutboundScheme::Http)
        } else if name.eq_ignore_ascii_case("https") {
            Some(OutboundScheme::Https)
        } else {
            None
        }
    }

    /// The port used when none is given.
    pub fn default_port(self) -> u16 {
        match self {
            OutboundScheme::Http => 80,
            OutboundScheme::Https => 443,
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            OutboundScheme::Http => "http",
            OutboundScheme::Https => "https",
        }
    }
}

/// The host part of an entry.
#[derive(Debug, Clone, PartialEq, Eq)]
enum HostPattern {
    /// This name or IP literal only (lower case; IPs in canonical form).
    Exact(String),
    /// Any name ending in `.<suffix>` (lower case).
    Below(String),
}

/// One entry of `allowed_outbound_hosts`, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AllowedHost {
    scheme: OutboundScheme,
    host: HostPattern,
    port: u16,
}

impl AllowedHost {
    /// Parses `scheme://host[:port]` (a lone trailing `/` is allowed); the error
    /// says what is wrong.
    pub fn parse(entry: &str) -> Result<Self, String> {
        if entry.chars().count() > MAX_HOST_ENTRY_CHARS {
            return Err(format!("is longer than {MAX_HOST_ENTRY_CHARS} characters"));
        }
        if entry.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err("contains whitespace or control characters".into());
        }
        let (scheme, rest) = entry
            .split_once("://")
            .ok_or("is not of the form scheme://host[:port]")?;
        let scheme = OutboundScheme::parse(scheme)
            .ok_or_else(|| format!("has scheme {scheme:?}; only http and https"))?;
        let rest = rest.strip_suffix('/').unwrap_or(rest);
        if let Some(c) = rest
            .chars()
            .find(|c| matches!(c, '/' | '?' | '#' | '@' | '\\'))
        {
            return Err(format!(
                "has {c:?} after the host; give scheme://host[:port] only (no path, query or user)"
            ));
        }
        let (host, port) = split_port(rest)?;
        let port = match port {
            Some(p) => p
                .parse::<u16>()
                .ok()
                .filter(|p| *p != 0)
                .ok_or_else(|| format!("has port {p:?}; a port is 1 to 65535"))?,
            None => scheme.default_port(),
        };
        let host = match host.strip_prefix("*.") {
            Some(suffix) => HostPattern::Below(name(suffix)?),
            None => match literal(host) {
                Some(ip) => HostPattern::Exact(ip.to_string()),
                None => HostPattern::Exact(name(host)?),
            },
        };
        Ok(AllowedHost { scheme, host, port })
    }

    /// True when a request to `scheme://host:port` is allowed by this entry
    /// (`host` as in a URI: a name in any case, or an IP literal, IPv6 in brackets).
    pub fn matches(&self, scheme: OutboundScheme, host: &str, port: u16) -> bool {
        if scheme != self.scheme || port != self.port {
            return false;
        }
        let host = match literal(host) {
            Some(ip) => ip.to_string(),
            None => host.trim_end_matches('.').to_ascii_lowercase(),
        };
        match &self.host {
            HostPattern::Exact(h) => *h == host,
            HostPattern::Below(suffix) => host
                .strip_suffix(suffix.as_str())
                .is_some_and(|label| label.len() > 1 && label.ends_with('.')),
        }
    }
}

/// The normalised form: lower case, the port only when it is not the scheme's.
impl fmt::Display for AllowedHost {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}://", self.scheme.as_str())?;
        match &self.host {
            HostPattern::Exact(h) if h.contains(':') => write!(f, "[{h}]")?,
            HostPattern::Exact(h) => write!(f, "{h}")?,
            HostPattern::Below(s) => write!(f, "*.{s}")?,
        }
        if self.port != self.scheme.default_port() {
            write!(f, ":{}", self.port)?;
        }
        Ok(())
    }
}

/// `host` and the text of its port, if any (`[v6]:port` or `name:port`).
fn split_port(rest: &str) -> Result<(&str, Option<&str>), String> {
    if rest.starts_with('[') {
        let end = rest.find(']').ok_or("has an unclosed [")?;
        let after = &rest[end + 1..];
        return match after.strip_prefix(':') {
            Some(p) => Ok((&rest[..=end], Some(p))),
            None if after.is_empty() => Ok((&rest[..=end], None)),
            None => Err(format!("has {after:?} after the host")),
        };
    }
    match rest.split_once(':') {
        Some((h, p)) if p.contains(':') => Err(format!(
            "has more than one ':' in {h}:{p} (an IPv6 address goes in brackets)"
        )),
        Some((h, p)) => Ok((h, Some(p))),
        None => Ok((rest, None)),
    }
}

/// The IP literal `host` stands for (IPv6 in brackets).
fn literal(host: &str) -> Option<IpAddr> {
    match host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        Some(v6) => v6.parse().ok().filter(IpAddr::is_ipv6),
        None => host.parse().ok().filter(IpAddr::is_ipv4),
    }
}

/// A DNS name, lower case without a trailing dot: labels of letters, digits,
/// `-` and `_`, at most 63 characters each, 253 in all.
fn name(host: &str) -> Result<String, String> {
    let lower = host.trim_end_matches('.').to_ascii_lowercase();
    let bad = || format!("has host {host:?}, not a host name, IP address or *.name");
    if lower.is_empty() || lower.len() > 253 {
        return Err(bad());
    }
    for label in lower.split('.') {
        let ok = !label.is_empty()
            && label.len() <= 63
            && !label.starts_with('-')
            && !label.ends_with('-')
            && label
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if !ok {
            return Err(bad());
        }
    }
    Ok(lower)
}

/// Validates a function's `allowed_outbound_hosts` and returns it normalised
/// (duplicates dropped, order kept); the error names the first bad entry.
pub fn validate_hosts(entries: &[String]) -> Result<Vec<String>, String> {
    if entries.len() > MAX_ALLOWED_HOSTS {
        return Err(format!(
            "allowed_outbound_hosts has {} entries; at most {MAX_ALLOWED_HOSTS}",
            entries.len()
        ));
    }
    let mut normalised: Vec<String> = Vec::with_capacity(entries.len());
    for entry in entries {
        let host = AllowedHost::parse(entry)
            .map_err(|why| format!("allowed_outbound_hosts entry {entry:?} {why}"))?
            .to_string();
        if !normalised.contains(&host) {
            normalised.push(host);
        }
    }
    Ok(normalised)
}

/// The operator's bounds of every outbound request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboundLimits {
    /// Loopback, private, link-local and CGNAT addresses may be reached
    /// (FAAS_OUTBOUND_ALLOW_PRIVATE); cloud-metadata ones never.
    pub allow_private: bool,
    /// Longest name resolution plus connection (and TLS handshake).
    pub connect_timeout: Duration,
    /// Longest wait for the response's head once the request is sent.
    pub first_byte_timeout: Duration,
    /// Longest pause within the response body.
    pub between_bytes_timeout: Duration,
    /// Largest response body; more fails the body with `HTTP-response-body-size`.
    pub max_response_bytes: u64,
    /// Requests one guest instance has in flight at once (connection limit).
    pub max_in_flight: usize,
}

impl Default for OutboundLimits {
    fn default() -> Self {
        OutboundLimits {
            allow_private: false,
            connect_timeout: Duration::from_secs(10),
            first_byte_timeout: Duration::from_secs(30),
            between_bytes_timeout: Duration::from_secs(30),
            max_response_bytes: 16 * 1024 * 1024,
            max_in_flight: 16,
        }
    }
}

/// What one function's guest may call, and how.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OutboundPolicy {
    /// The hosts it may call (none: every request is denied).
    pub hosts: Vec<AllowedHost>,
    /// The operator's bounds.
    pub limits: OutboundLimits,
}

impl OutboundPolicy {
    /// The policy of a function whose list is `entries` (as stored: validated
    /// when set; an entry that no longer parses is skipped with a warning).
    pub fn new(entries: &[String], limits: OutboundLimits) -> Self {
        let hosts = entries
            .iter()
            .filter_map(|e| match AllowedHost::parse(e) {
                Ok(h) => Some(h),
                Err(why) => {
                    tracing::warn!(entry = %e, %why, "stored outbound host skipped");
                    None
                }
            })
            .collect();
        OutboundPolicy { hosts, limits }
    }

    /// True when one of the entries allows `scheme://host:port`.
    pub fn allows(&self, scheme: OutboundScheme, host: &str, port: u16) -> bool {
        self.hosts.iter().any(|h| h.matches(scheme, host, port))
    }
}

#[cfg(test)]
mod tests {
    use super::OutboundScheme::{Http, Https};
    use super::*;

    fn host(entry: &str) -> AllowedHost {
        AllowedHost::parse(entry).unwrap_or_else(|e| panic!("{entry}: {e}"))
    }

    /// Asserts what `entry` allows: `(scheme, host, port, allowed)`.
    fn check(entry: &str, cases: &[(OutboundScheme, &str, u16, bool)]) {
        let h = host(entry);
        for &(scheme, name, port, allowed) in cases {
            let got = h.matches(scheme, name, port);
            assert_eq!(got, allowed, "{entry} vs {scheme:?} {name} {port}");
        }
    }

    #[test]
    fn exact_hosts_match_scheme_host_and_port() {
        check(
            "https://api.example.com",
            &[
                (Https, "api.example.com", 443, true),
                (Https, "API.Example.COM", 443, true),
                (Https, "api.example.com.", 443, true),
                (Http, "api.example.com", 443, false),
                (Https, "api.example.com", 8443, false),
                (Https, "x.api.example.com", 443, false),
                (Https, "example.com", 443, false),
            ],
        );
        assert_eq!(
            host("HTTP://Api.Example.com:8080/").to_string(),
            "http://api.example.com:8080"
        );
        check(
            "HTTP://Api.Example.com:8080/",
            &[
                (Http, "api.example.com", 8080, true),
                (Http, "api.example.com", 80, false),
            ],
        );
    }

    #[test]
    fn wildcards_match_names_below_not_the_name_itself() {
        assert_eq!(
            host("https://*.example.com:443").to_string(),
            "https://*.example.com"
        );
        check(
            "https://*.example.com:443",
            &[
                (Https, "api.example.com", 443, true),
                (Https, "a.b.EXAMPLE.com", 443, true),
                (Https, "example.com", 443, false),
                (Https, "badexample.com", 443, false),
                (Https, ".example.com", 443, false),
                (Https, "api.example.com", 80, false),
                (Http, "api.example.com", 443, false),
                (Https, "api.example.com.evil.org", 443, false),
            ],
        );
    }

    #[test]
    fn ip_literals_match_in_canonical_form() {
        check(
            "http://127.0.0.1:8080",
            &[
                (Http, "127.0.0.1", 8080, true),
                (Http, "127.0.0.2", 8080, false),
            ],
        );
        assert_eq!(
            host("http://[0:0::1]:9000").to_string(),
            "http://[::1]:9000"
        );
        check(
            "http://[0:0::1]:9000",
            &[(Http, "[::1]", 9000, true), (Http, "[::2]", 9000, false)],
        );
    }

    #[test]
    fn bad_entries_are_refused_with_a_reason() {
        for (entry, why) in [
            ("ftp://example.com", "scheme"),
            ("example.com", "scheme://host"),
            ("https://example.com/path", "no path"),
            ("https://example.com?q=1", "no path"),
            ("https://user@example.com", "no path"),
            ("https://example.com:0", "port"),
            ("https://example.com:99999", "port"),
            ("https://example.com:http", "port"),
            ("https://", "host"),
            ("https://*.", "host"),
            ("https://*", "host"),
            ("https://a.*.example.com", "host"),
            ("https://exa mple.com", "whitespace"),
            ("https://-bad.example.com", "host"),
            ("https://::1", "brackets"),
            ("https://[::1", "unclosed"),
            ("https://[::1]x", "after the host"),
            ("https://[127.0.0.1]", "host"),
        ] {
            let err = AllowedHost::parse(entry).unwrap_err();
            assert!(err.contains(why), "{entry}: {err}");
        }
        let long = format!("https://{}.com", "a".repeat(MAX_HOST_ENTRY_CHARS));
        assert!(AllowedHost::parse(&long).unwrap_err().contains("longer"));
    }

    #[test]
    fn lists_are_bounded_normalised_and_deduplicated() {
        let list = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let got = validate_hosts(&list(&[
            "https://API.example.com:443/",
            "https://api.example.com",
            "http://*.Example.org",
        ]))
        .unwrap();
        assert_eq!(got, ["https://api.example.com", "http://*.example.org"]);
        let many: Vec<String> = (0..=MAX_ALLOWED_HOSTS)
            .map(|i| format!("https://h{i}.example.com"))
            .collect();
        assert!(validate_hosts(&many).unwrap_err().contains("at most"));
        let err = validate_hosts(&list(&["https://ok.example", "gopher://x"])).unwrap_err();
        assert!(err.contains("gopher://x"), "{err}");
    }

    #[test]
    fn the_policy_denies_unless_an_entry_allows() {
        assert!(!OutboundPolicy::default().allows(Https, "example.com", 443));
        let entries = vec!["https://*.example.com".to_string(), "bad".to_string()];
        let p = OutboundPolicy::new(&entries, OutboundLimits::default());
        assert_eq!(p.hosts.len(), 1);
        assert!(p.allows(Https, "api.example.com", 443));
        assert!(!p.allows(Https, "api.example.net", 443));
    }
}
