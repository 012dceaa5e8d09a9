//! The address policy of callbacks (the SSRF guard).
//!
//! Refused always: unspecified and "this network" (0.0.0.0/8, `::`), broadcast,
//! multicast, reserved (240.0.0.0/4) and the cloud-metadata addresses
//! (169.254.169.254, 100.100.100.200, fd00:ec2::254). Refused unless the operator
//! allows private callbacks (FAAS_CALLBACK_ALLOW_PRIVATE): loopback, private
//! (10/8, 172.16/12, 192.168/16, fc00::/7, fec0::/10), link-local (169.254/16,
//! fe80::/10) and shared (CGNAT, 100.64/10) addresses. IPv6 forms that carry an
//! IPv4 address (mapped, compatible, translated, NAT64, 6to4) are judged by it.
//!
//! [`check_url`] checks a URL at submit without resolving names (`localhost` and
//! `*.localhost` count as loopback); names are checked address by address when a
//! delivery resolves them ([`super::client`]).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use reqwest::Url;

/// Longest callback URL (bytes).
pub const MAX_URL_BYTES: usize = 2048;

/// Addresses never reached, whatever the settings.
const METADATA_V4: [Ipv4Addr; 2] = [
    Ipv4Addr::new(169, 254, 169, 254),
    Ipv4Addr::new(100, 100, 100, 200),
];
const METADATA_V6: Ipv6Addr = Ipv6Addr::new(0xfd00, 0x0ec2, 0, 0, 0, 0, 0, 0x0254);

/// What the policy makes of an address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Class {
    /// Reachable.
    Public,
    /// Reachable only when private callbacks are allowed; names the kind.
    Private(&'static str),
    /// Never reachable; names the kind.
    Never(&'static str),
}

/// Whether a callback may connect to `ip`; the error says why not.
pub fn check_ip(ip: IpAddr, allow_private: bool) -> Result<(), String> {
    match classify(ip) {
        Class::Public => Ok(()),
        Class::Private(_) if allow_private => Ok(()),
        Class::Private(kind) => Err(format!(
            "{ip} is a {kind} address (refused unless FAAS_CALLBACK_ALLOW_PRIVATE=true)"
        )),
        Class::Never(kind) => Err(format!("{ip} is a {kind} address (always refused)")),
    }
}

fn classify(ip: IpAddr) -> Class {
    match ip {
        IpAddr::V4(v4) => classify_v4(v4),
        IpAddr::V6(v6) => classify_v6(v6),
    }
}

fn classify_v4(ip: Ipv4Addr) -> Class {
    let [a, b, ..] = ip.octets();
    if METADATA_V4.contains(&ip) {
        Class::Never("cloud-metadata")
    } else if a == 0 {
        Class::Never("unspecified (0.0.0.0/8)")
    } else if ip.is_broadcast() {
        Class::Never("broadcast")
    } else if ip.is_multicast() {
        Class::Never("multicast")
    } else if a >= 240 {
        Class::Never("reserved (240.0.0.0/4)")
    } else if ip.is_loopback() {
        Class::Private("loopback")
    } else if ip.is_private() {
        Class::Private("private")
    } else if ip.is_link_local() {
        Class::Private("link-local")
    } else if a == 100 && (64..128).contains(&b) {
        Class::Private("shared (CGNAT 100.64.0.0/10)")
    } else {
        Class::Public
    }
}

fn classify_v6(ip: Ipv6Addr) -> Class {
    let s = ip.segments();
    if ip == METADATA_V6 {
        return Class::Never("cloud-metadata");
    }
    if ip.is_unspecified() {
        return Class::Never("unspecified");
    }
    if ip.is_loopback() {
        return Class::Private("loopback");
    }
    if let Some(v4) = embedded_v4(ip) {
        return classify_v4(v4);
    }
    if s[0] & 0xff00 == 0xff00 {
        Class::Never("multicast")
    } else if s[0] & 0xfe00 == 0xfc00 {
        Class::Private("private (unique local)")
    } else if s[0] & 0xffc0 == 0xfe80 {
        Class::Private("link-local")
    } else if s[0] & 0xffc0 == 0xfec0 {
        Class::Private("private (site-local)")
    } else {
        Class::Public
    }
}

/// The IPv4 address an IPv6 address stands for: IPv4-mapped (`::ffff:a.b.c.d`),
/// -compatible (`::a.b.c.d`), -translated (`::ffff:0:a.b.c.d`), NAT64
/// (`64:ff9b::a.b.c.d`) and 6to4 (`2002:AABB:CCDD::`).
fn embedded_v4(ip: Ipv6Addr) -> Option<Ipv4Addr> {
    let s = ip.segments();
    let low = Ipv4Addr::new((s[6] >> 8) as u8, s[6] as u8, (s[7] >> 8) as u8, s[7] as u8);
    match s {
        [0, 0, 0, 0, 0, 0 | 0xffff, _, _] => Some(low),
        [0, 0, 0, 0, 0xffff, 0, _, _] => Some(low),
        [0x64, 0xff9b, 0, 0, 0, 0, _, _] => Some(low),
        [0x2002, hi, lo, ..] => Some(Ipv4Addr::new(
            (hi >> 8) as u8,
            hi as u8,
            (lo >> 8) as u8,
            lo as u8,
        )),
        _ => None,
    }
}

/// True for `localhost` and `*.localhost` (RFC 6761: always loopback).
pub fn is_localhost(host: &str) -> bool {
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    host == "localhost" || host.ends_with(".localhost")
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

    fn refused(ip: &str, allow_private: bool) -> bool {
        check_ip(ip.parse().unwrap(), allow_private).is_err()
    }

    #[test]
    fn private_classes_are_refused_unless_allowed() {
        for ip in [
            "127.0.0.1",
            "127.255.0.9",
            "10.1.2.3",
            "172.16.0.1",
            "172.31.255.255",
            "192.168.1.1",
            "169.254.10.10",
            "100.64.0.1",
            "100.127.255.254",
            "::1",
            "fc00::1",
            "fd12:3456::1",
            "fe80::1",
            "fec0::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
            "::127.0.0.1",
            "::ffff:0:192.168.0.1",
            "64:ff9b::a00:1",
            "2002:c0a8:101::1",
        ] {
            assert!(refused(ip, false), "{ip} refused by default");
            assert!(!refused(ip, true), "{ip} allowed with the setting");
        }
    }

    #[test]
    fn metadata_multicast_unspecified_and_broadcast_are_always_refused() {
        for ip in [
            "169.254.169.254",
            "100.100.100.200",
            "fd00:ec2::254",
            "::ffff:169.254.169.254",
            "::169.254.169.254",
            "64:ff9b::a9fe:a9fe",
            "2002:a9fe:a9fe::",
            "0.0.0.0",
            "0.1.2.3",
            "::",
            "255.255.255.255",
            "224.0.0.1",
            "239.1.2.3",
            "ff02::1",
            "::ffff:224.0.0.1",
            "240.0.0.1",
        ] {
            assert!(refused(ip, false), "{ip} refused");
            assert!(refused(ip, true), "{ip} refused even with the setting");
        }
    }

    #[test]
    fn public_addresses_pass() {
        for ip in [
            "8.8.8.8",
            "100.63.255.255",
            "100.128.0.1",
            "172.32.0.1",
            "169.253.1.1",
            "2001:4860:4860::8888",
            "::ffff:8.8.8.8",
        ] {
            assert!(!refused(ip, false), "{ip} passes");
        }
    }

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
