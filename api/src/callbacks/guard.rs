//! The address policy of callbacks (the SSRF guard): the classification of
//! [`faas_runtime::addresses`] (metadata, multicast, unspecified... always
//! refused; loopback, private, link-local and CGNAT refused unless the operator
//! allows private callbacks, FAAS_CALLBACK_ALLOW_PRIVATE).
//!
//! [`check_url`] checks a URL at submit without resolving names (`localhost` and
//! `*.localhost` count as loopback); names are checked address by address when a
//! delivery resolves them ([`super::client`]).

use std::net::IpAddr;

use faas_runtime::addresses;
use reqwest::Url;

use faas_runtime::addresses::is_localhost;

/// Longest callback URL (bytes).
pub const MAX_URL_BYTES: usize = 2048;

/// The operator's switch for private callback addresses.
const SETTING: &str = "FAAS_CALLBACK_ALLOW_PRIVATE";

/// Whether a callback may connect to `ip` ([`addresses::check_ip`]); the error
/// says why not.
pub fn check_ip(ip: IpAddr, allow_private: bool) -> Result<(), String> {
    addresses::check_ip(ip, allow_private, SETTING)
}

/// Whether a delivery may look `host` up ([`addresses::check_name`]).
pub fn check_name(host: &str, allow_private: bool) -> Result<(), String> {
    addresses::check_name(host, allow_private, SETTING)
}

/// The resolved addresses of `host` a delivery may connect to
/// ([`addresses::keep_allowed`]).
pub fn keep_allowed(
    host: &str,
    found: Vec<std::net::SocketAddr>,
    allow_private: bool,
) -> Result<Vec<std::net::SocketAddr>, String> {
    addresses::keep_allowed(host, found, allow_private, SETTING)
}

/// Checks a callback URL without resolving anything: at most [`MAX_URL_BYTES`],
/// no whitespace or control characters, `http` or `https` with a host, and a host
/// that is an IP literal (in any notation the parser normalises, such as
/// `0x7f.1`) or a `localhost` name only when the policy allows it. Returns the
/// URL as normalised by the parser.
pub fn check_url(raw: &str, allow_private: bool) -> Result<Url, String> {
    if raw.len() > MAX_URL_BYTES {
        return Err(format!("is longer than {MAX_URL_BYTES} bytes"));
    }
    if raw.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err("contains whitespace or control characters".into());
    }
    let url = Url::parse(raw).map_err(|e| format!("is not a valid URL ({e})"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(format!(
            "has scheme {:?}; only http and https",
            url.scheme()
        ));
    }
    let host = url
        .host_str()
        .filter(|h| !h.is_empty())
        .ok_or("has no host")?;
    let literal = host.trim_start_matches('[').trim_end_matches(']');
    if let Ok(ip) = literal.parse::<IpAddr>() {
        check_ip(ip, allow_private)?;
    } else if is_localhost(host) && !allow_private {
        return Err(format!(
            "names {host}, a loopback name (refused unless FAAS_CALLBACK_ALLOW_PRIVATE=true)"
        ));
    }
    if url.as_str().len() > MAX_URL_BYTES {
        return Err(format!(
            "is longer than {MAX_URL_BYTES} bytes once normalised"
        ));
    }
    Ok(url)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_checked_without_resolving_names() {
        let ok = |u: &str| check_url(u, false).map(|u| u.to_string());
        assert_eq!(ok("http://example.com/x").unwrap(), "http://example.com/x");
        assert!(ok("https://hooks.example.org:8443/a?b=c").is_ok());
        for bad in [
            "ftp://example.com/",
            "file:///etc/passwd",
            "example.com/x",
            "http://",
            "http:// example.com/",
            "http://example.com/\n",
            "http://127.0.0.1:8080/",
            "http://2130706433/",
            "http://0x7f.1/",
            "http://0177.0.0.1/",
            "http://[::1]/",
            "http://[::ffff:7f00:1]/",
            "http://localhost/",
            "http://LOCALHOST./",
            "http://api.localhost:3000/",
            "http://169.254.169.254/latest/meta-data/",
        ] {
            assert!(ok(bad).is_err(), "{bad:?} refused");
        }
        let long = format!("http://example.com/{}", "a".repeat(MAX_URL_BYTES));
        assert!(ok(&long).is_err());
        let allowed = |u: &str| check_url(u, true).is_ok();
        assert!(allowed("http://127.0.0.1:8080/hook"));
        assert!(allowed("http://localhost/"));
        assert!(!allowed("http://169.254.169.254/"));
        assert!(!allowed("http://[fd00:ec2::254]/"));
        assert!(!allowed("http://0xa9fea9fe/"));
    }
}
