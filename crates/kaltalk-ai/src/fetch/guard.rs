//! The SSRF guard: which IP addresses an outbound fetch may connect to.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::FetchPolicy;

/// What kind of non-public address an IP is, which decides the setting that can allow it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Class {
    Loopback,
    /// RFC 1918, CGNAT, unique-local and site-local IPv6: the LAN an operator may
    /// deliberately open to the crawler (an intranet wiki).
    Private,
    /// Never allowed. Link-local is where cloud metadata services live
    /// (169.254.169.254, fd00:ec2::254 aside) and no documentation site does; the rest
    /// either isn't routable or reaches this host by another name (0.0.0.0).
    Always,
}

/// Why `ip` may not be fetched under `policy`, as a phrase that completes "10.0.0.5 is …",
/// or `None` when it may.
pub fn is_forbidden(ip: IpAddr, policy: &FetchPolicy) -> Option<&'static str> {
    let (class, what) = match ip {
        IpAddr::V4(v4) => classify_v4(v4)?,
        IpAddr::V6(v6) => classify_v6(v6)?,
    };
    match class {
        Class::Loopback if policy.allow_loopback => None,
        Class::Private if policy.allow_private => None,
        _ => Some(what),
    }
}

fn classify_v4(ip: Ipv4Addr) -> Option<(Class, &'static str)> {
    let [a, b, c, _] = ip.octets();
    let found = match (a, b, c) {
        (127, _, _) => (Class::Loopback, "a loopback address"),
        (10, _, _) | (192, 168, _) => (Class::Private, "a private address"),
        (172, 16..=31, _) => (Class::Private, "a private address"),
        (100, 64..=127, _) => (Class::Private, "a shared (carrier-grade NAT) address"),
        (169, 254, _) => (Class::Always, "a link-local address"),
        // 0.0.0.0 reaches this very host on Linux.
        (0, _, _) => (Class::Always, "an unspecified address"),
        (255, 255, 255) if ip == Ipv4Addr::BROADCAST => (Class::Always, "a broadcast address"),
        (224..=239, _, _) => (Class::Always, "a multicast address"),
        (240..=255, _, _) => (Class::Always, "a reserved address"),
        (192, 0, 2) | (198, 51, 100) | (203, 0, 113) => (Class::Always, "a documentation address"),
        (198, 18..=19, _) => (Class::Always, "a benchmarking address"),
        (192, 0, 0) | (192, 88, 99) => (Class::Always, "a reserved address"),
        _ => return None,
    };
    Some(found)
}

fn classify_v6(ip: Ipv6Addr) -> Option<(Class, &'static str)> {
    let seg = ip.segments();
    if ip.is_loopback() {
        return Some((Class::Loopback, "a loopback address"));
    }
    if ip.is_unspecified() {
        return Some((Class::Always, "an unspecified address"));
    }
    // ::ffff:a.b.c.d reaches the IPv4 address itself: judge it as that.
    if let Some(v4) = ip.to_ipv4_mapped() {
        return classify_v4(v4);
    }
    // NAT64 (RFC 6052) translates to the embedded IPv4 address.
    if seg[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        return classify_v4(embedded_v4(seg[6], seg[7]));
    }
    // 6to4 tunnels to the IPv4 address in bits 16..48.
    if seg[0] == 0x2002 {
        return classify_v4(embedded_v4(seg[1], seg[2]));
    }
    let found = match seg[0] {
        0xfc00..=0xfdff => (Class::Private, "a private address"),
        0xfec0..=0xfeff => (Class::Private, "a private address"),
        0xfe80..=0xfebf => (Class::Always, "a link-local address"),
        0xff00..=0xffff => (Class::Always, "a multicast address"),
        0x2001 if seg[1] == 0x0db8 => (Class::Always, "a documentation address"),
        0x3fff if seg[1] <= 0x0fff => (Class::Always, "a documentation address"),
        // NAT64 local use (RFC 8215) goes to whatever the local translator reaches.
        0x0064 if seg[1] == 0xff9b && seg[2] == 1 => (Class::Private, "a private address"),
        // IETF protocol assignments (Teredo, benchmarking, ORCHID, …): no web servers.
        0x2001 if seg[1] < 0x0200 => (Class::Always, "a reserved address"),
        // The public IPv6 internet is 2000::/3; the rest (IPv4-compatible ::a.b.c.d,
        // discard 100::/64, unallocated space) is not a place to fetch from.
        0x2000..=0x3fff => return None,
        _ => (Class::Always, "a reserved address"),
    };
    Some(found)
}

fn embedded_v4(high: u16, low: u16) -> Ipv4Addr {
    let [a, b] = high.to_be_bytes();
    let [c, d] = low.to_be_bytes();
    Ipv4Addr::new(a, b, c, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(allow_loopback: bool, allow_private: bool) -> FetchPolicy {
        FetchPolicy {
            allow_loopback,
            allow_private,
            ..FetchPolicy::default()
        }
    }

    fn verdict(ip: &str, policy: &FetchPolicy) -> Option<&'static str> {
        let ip: IpAddr = ip
            .parse()
            .unwrap_or_else(|_| panic!("bad test address {ip}"));
        is_forbidden(ip, policy)
    }

    #[test]
    fn public_addresses_pass() {
        let strict = policy(false, false);
        for ip in [
            "1.1.1.1",
            "8.8.8.8",
            "93.184.216.34",
            "172.15.255.255",
            "172.32.0.1",
            "100.63.255.255",
            "100.128.0.1",
            "192.169.0.1",
            "169.253.1.1",
            "198.17.255.255",
            "198.20.0.1",
            "223.255.255.254",
            "2606:4700:4700::1111",
            "2001:4860:4860::8888",
            "2a00:1450:4001:81b::200e",
            "::ffff:8.8.8.8",
            "64:ff9b::808:808",
            "2002:808:808::1",
        ] {
            assert_eq!(verdict(ip, &strict), None, "{ip}");
        }
    }

    #[test]
    fn non_public_addresses_are_refused_by_default() {
        let strict = policy(false, false);
        for (ip, why) in [
            ("127.0.0.1", "a loopback address"),
            ("127.255.255.254", "a loopback address"),
            ("::1", "a loopback address"),
            ("10.0.0.5", "a private address"),
            ("172.16.0.1", "a private address"),
            ("172.31.255.255", "a private address"),
            ("192.168.1.1", "a private address"),
            ("100.64.0.1", "a shared (carrier-grade NAT) address"),
            ("100.127.255.255", "a shared (carrier-grade NAT) address"),
            ("fc00::1", "a private address"),
            ("fd12:3456:789a::1", "a private address"),
            ("fec0::1", "a private address"),
            ("169.254.169.254", "a link-local address"),
            ("169.254.0.1", "a link-local address"),
            ("fe80::1", "a link-local address"),
            ("febf::1", "a link-local address"),
            ("0.0.0.0", "an unspecified address"),
            ("0.1.2.3", "an unspecified address"),
            ("::", "an unspecified address"),
            ("255.255.255.255", "a broadcast address"),
            ("224.0.0.1", "a multicast address"),
            ("239.255.255.250", "a multicast address"),
            ("ff02::1", "a multicast address"),
            ("240.0.0.1", "a reserved address"),
            ("192.0.0.8", "a reserved address"),
            ("192.0.2.1", "a documentation address"),
            ("198.51.100.7", "a documentation address"),
            ("203.0.113.9", "a documentation address"),
            ("2001:db8::1", "a documentation address"),
            ("3fff::1", "a documentation address"),
            ("198.18.0.1", "a benchmarking address"),
            ("2001::1", "a reserved address"),
            ("::127.0.0.1", "a reserved address"),
            ("100::1", "a reserved address"),
            ("4000::1", "a reserved address"),
        ] {
            assert_eq!(verdict(ip, &strict), Some(why), "{ip}");
        }
    }

    #[test]
    fn ipv4_embedded_in_ipv6_is_judged_as_ipv4() {
        let strict = policy(false, false);
        for (ip, why) in [
            ("::ffff:127.0.0.1", "a loopback address"),
            ("::ffff:10.0.0.5", "a private address"),
            ("::ffff:169.254.169.254", "a link-local address"),
            ("::ffff:0.0.0.0", "an unspecified address"),
            ("64:ff9b::a00:5", "a private address"),
            ("64:ff9b::a9fe:a9fe", "a link-local address"),
            ("2002:7f00:1::", "a loopback address"),
            ("2002:c0a8:101::1", "a private address"),
        ] {
            assert_eq!(verdict(ip, &strict), Some(why), "{ip}");
        }
    }

    #[test]
    fn settings_open_only_their_own_class() {
        let loopback = policy(true, false);
        assert_eq!(verdict("127.0.0.1", &loopback), None);
        assert_eq!(verdict("::1", &loopback), None);
        assert_eq!(verdict("::ffff:127.0.0.1", &loopback), None);
        assert_eq!(verdict("10.0.0.5", &loopback), Some("a private address"));
        assert_eq!(
            verdict("169.254.169.254", &loopback),
            Some("a link-local address")
        );

        let private = policy(false, true);
        for ip in [
            "10.0.0.5",
            "192.168.0.10",
            "100.64.1.1",
            "fd00::5",
            "::ffff:172.20.0.2",
        ] {
            assert_eq!(verdict(ip, &private), None, "{ip}");
        }
        assert_eq!(verdict("127.0.0.1", &private), Some("a loopback address"));

        // Even with everything a setting can open, these stay shut.
        let open = policy(true, true);
        for ip in [
            "169.254.169.254",
            "fe80::1",
            "0.0.0.0",
            "::",
            "255.255.255.255",
            "224.0.0.251",
            "192.0.2.1",
            "::ffff:169.254.169.254",
        ] {
            assert!(verdict(ip, &open).is_some(), "{ip}");
        }
    }
}
