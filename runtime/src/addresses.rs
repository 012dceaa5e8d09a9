//! Which IP addresses the platform's own clients (callback deliveries, outbound
//! HTTP of guests) may connect to: the one classification of addresses.
//!
//! Refused always: unspecified and "this network" (0.0.0.0/8, `::`), broadcast,
//! multicast, reserved (240.0.0.0/4) and the cloud-metadata addresses
//! (169.254.169.254, 100.100.100.200, fd00:ec2::254). Refused unless the operator
//! allows private addresses: loopback, private (10/8, 172.16/12, 192.168/16,
//! fc00::/7, fec0::/10), link-local (169.254/16, fe80::/10) and shared (CGNAT,
//! 100.64/10) addresses. IPv6 forms that carry an IPv4 address (mapped,
//! compatible, translated, NAT64, 6to4) are judged by it.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// Addresses never reached, whatever the settings.
const METADATA_V4: [Ipv4Addr; 2] = [
    Ipv4Addr::new(169, 254, 169, 254),
    Ipv4Addr::new(100, 100, 100, 200),
];
const METADATA_V6: Ipv6Addr = Ipv6Addr::new(0xfd00, 0x0ec2, 0, 0, 0, 0, 0, 0x0254);

/// What the policy makes of an address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AddressClass {
    /// Reachable.
    Public,
    /// Reachable only when the operator allows private addresses; names the kind.
    Private(&'static str),
    /// Never reachable; names the kind.
    Never(&'static str),
}

/// Whether a client may connect to `ip`; the error says why not, naming
/// `setting` (the operator's switch for private addresses).
pub fn check_ip(ip: IpAddr, allow_private: bool, setting: &str) -> Result<(), String> {
    match classify(ip) {
        AddressClass::Public => Ok(()),
        AddressClass::Private(_) if allow_private => Ok(()),
        AddressClass::Private(kind) => Err(format!(
            "{ip} is a {kind} address (refused unless {setting}=true)"
        )),
        AddressClass::Never(kind) => Err(format!("{ip} is a {kind} address (always refused)")),
    }
}

/// The class of `ip`.
pub fn classify(ip: IpAddr) -> AddressClass {
    match ip {
        IpAddr::V4(v4) => classify_v4(v4),
        IpAddr::V6(v6) => classify_v6(v6),
    }
}

fn classify_v4(ip: Ipv4Addr) -> AddressClass {
    use AddressClass::{Never, Private, Public};
    let [a, b, ..] = ip.octets();
    if METADATA_V4.contains(&ip) {
        Never("cloud-metadata")
    } else if a == 0 {
        Never("unspecified (0.0.0.0/8)")
    } else if ip.is_broadcast() {
        Never("broadcast")
    } else if ip.is_multicast() {
        Never("multicast")
    } else if a >= 240 {
        Never("reserved (240.0.0.0/4)")
    } else if ip.is_loopback() {
        Private("loopback")
    } else if ip.is_private() {
        Private("private")
    } else if ip.is_link_local() {
        Private("link-local")
    } else if a == 100 && (64..128).contains(&b) {
        Private("shared (CGNAT 100.64.0.0/10)")
    } else {
        Public
    }
}

fn classify_v6(ip: Ipv6Addr) -> AddressClass {
    use AddressClass::{Never, Private, Public};
    let s = ip.segments();
    if ip == METADATA_V6 {
        return Never("cloud-metadata");
    }
    if ip.is_unspecified() {
        return Never("unspecified");
    }
    if ip.is_loopback() {
        return Private("loopback");
    }
    if let Some(v4) = embedded_v4(ip) {
        return classify_v4(v4);
    }
    if s[0] & 0xff00 == 0xff00 {
        Never("multicast")
    } else if s[0] & 0xfe00 == 0xfc00 {
        Private("private (unique local)")
    } else if s[0] & 0xffc0 == 0xfe80 {
        Private("link-local")
    } else if s[0] & 0xffc0 == 0xfec0 {
        Private("private (site-local)")
    } else {
        Public
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

/// Whether a client may look `host` up at all: `localhost` names are loopback,
/// refused unless the operator allows private addresses (named by `setting`).
pub fn check_name(host: &str, allow_private: bool, setting: &str) -> Result<(), String> {
    if is_localhost(host) && !allow_private {
        return Err(format!(
            "{host} is a loopback name (refused unless {setting}=true)"
        ));
    }
    Ok(())
}

/// The addresses of `found` (what `host` resolved to) a client may connect to;
/// when none is left, why.
pub fn keep_allowed(
    host: &str,
    found: impl IntoIterator<Item = SocketAddr>,
    allow_private: bool,
    setting: &str,
) -> Result<Vec<SocketAddr>, String> {
    let mut refusal = None;
    let kept: Vec<SocketAddr> = found
        .into_iter()
        .filter(|a| match check_ip(a.ip(), allow_private, setting) {
            Ok(()) => true,
            Err(why) => {
                refusal = Some(why);
                false
            }
        })
        .collect();
    if kept.is_empty() {
        let why = refusal.unwrap_or_else(|| "no address".into());
        return Err(format!("{host} resolves only to refused addresses ({why})"));
    }
    Ok(kept)
}

/// True for `localhost` and `*.localhost` (RFC 6761: always loopback).
pub fn is_localhost(host: &str) -> bool {
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    host == "localhost" || host.ends_with(".localhost")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(ip: &str, allow_private: bool) -> bool {
        check_ip(ip.parse().unwrap(), allow_private, "X").is_err()
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
        let why = check_ip("10.0.0.1".parse().unwrap(), false, "FAAS_X").unwrap_err();
        assert!(
            why.contains("private") && why.contains("FAAS_X=true"),
            "{why}"
        );
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
    fn localhost_names_are_loopback() {
        for name in ["localhost", "LOCALHOST.", "api.localhost"] {
            assert!(is_localhost(name), "{name}");
        }
        assert!(!is_localhost("localhost.example.com"));
        assert!(check_name("api.localhost", false, "X").is_err());
        assert!(check_name("api.localhost", true, "X").is_ok());
        assert!(check_name("example.com", false, "X").is_ok());
    }

    #[test]
    fn resolved_addresses_are_filtered_and_none_left_is_refused() {
        let addrs = |v: &[&str]| -> Vec<SocketAddr> {
            v.iter()
                .map(|a| SocketAddr::new(a.parse().unwrap(), 443))
                .collect()
        };
        let both = addrs(&["127.0.0.1", "93.184.215.14"]);
        assert_eq!(
            keep_allowed("h", both.clone(), false, "X").unwrap(),
            addrs(&["93.184.215.14"])
        );
        assert_eq!(keep_allowed("h", both, true, "X").unwrap().len(), 2);
        let err = keep_allowed("h", addrs(&["10.0.0.8", "::1"]), false, "X").unwrap_err();
        assert!(err.contains("refused addresses"), "{err}");
        assert!(keep_allowed("h", addrs(&["169.254.169.254"]), true, "X").is_err());
        assert!(keep_allowed("h", Vec::new(), true, "X").is_err());
    }
}
