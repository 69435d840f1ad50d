//! Which addresses a partner's image URL may lead to: those anyone on the internet could
//! reach. The rules are IANA's special-purpose address registries (IPv4 and IPv6, as of
//! 2025, "Globally Reachable" column), plus multicast and the ranges IANA keeps reserved,
//! and the IPv6 forms that carry an IPv4 address inside (mapped, compatible, NAT64, 6to4,
//! Teredo), which are judged by the address they carry or refused.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// IPv4 blocks that are not globally reachable: the special-purpose registry's entries
/// marked False or N/A, multicast and the reserved block. (address, prefix length)
const NOT_GLOBAL_V4: &[([u8; 4], u8)] = &[
    ([0, 0, 0, 0], 8),       // "this network" (RFC 791)
    ([10, 0, 0, 0], 8),      // private use (RFC 1918)
    ([100, 64, 0, 0], 10),   // shared address space (RFC 6598)
    ([127, 0, 0, 0], 8),     // loopback (RFC 1122)
    ([169, 254, 0, 0], 16),  // link local (RFC 3927)
    ([172, 16, 0, 0], 12),   // private use (RFC 1918)
    ([192, 0, 0, 0], 24),    // IETF protocol assignments (RFC 6890), but see GLOBAL_V4
    ([192, 0, 2, 0], 24),    // documentation TEST-NET-1 (RFC 5737)
    ([192, 88, 99, 0], 24),  // deprecated 6to4 relay anycast (RFC 7526)
    ([192, 168, 0, 0], 16),  // private use (RFC 1918)
    ([198, 18, 0, 0], 15),   // benchmarking (RFC 2544)
    ([198, 51, 100, 0], 24), // documentation TEST-NET-2 (RFC 5737)
    ([203, 0, 113, 0], 24),  // documentation TEST-NET-3 (RFC 5737)
    ([224, 0, 0, 0], 4),     // multicast (RFC 5771)
    ([240, 0, 0, 0], 4),     // reserved (RFC 1112), the limited broadcast address in it
];

/// Entries inside the blocks above that the registry marks globally reachable.
const GLOBAL_V4: &[([u8; 4], u8)] = &[
    ([192, 0, 0, 9], 32),  // port control protocol anycast (RFC 7723)
    ([192, 0, 0, 10], 32), // TURN anycast (RFC 8155)
];

/// IPv6 blocks that are not globally reachable. (address, prefix length)
const NOT_GLOBAL_V6: &[(u128, u8)] = &[
    (0, 96), // ::/96: unspecified, loopback, IPv4-compatible (deprecated, RFC 4291)
    (0x0064_ff9b_0001 << 80, 48), // 64:ff9b:1::/48 local-use IPv4/IPv6 translation (RFC 8215)
    (0x0100 << 112, 64), // 100::/64 discard-only (RFC 6666)
    (0x2001 << 112, 23), // 2001::/23 IETF protocol assignments (RFC 2928), but see GLOBAL_V6
    (0x2001_0db8 << 96, 32), // 2001:db8::/32 documentation (RFC 3849)
    (0x3fff << 112, 20), // 3fff::/20 documentation (RFC 9637)
    (0x5f00 << 112, 16), // 5f00::/16 segment routing SIDs (RFC 9602)
    (0xfc00 << 112, 7), // fc00::/7 unique local (RFC 4193)
    (0xfe80 << 112, 10), // fe80::/10 link-local (RFC 4291)
    (0xfec0 << 112, 10), // fec0::/10 site-local, deprecated (RFC 3879)
    (0xff00 << 112, 8), // ff00::/8 multicast (RFC 4291)
];

/// Entries inside 2001::/23 that the registry marks globally reachable.
const GLOBAL_V6: &[(u128, u8)] = &[
    ((0x2001_0001 << 96) | 1, 128), // 2001:1::1 port control protocol anycast (RFC 7723)
    ((0x2001_0001 << 96) | 2, 128), // 2001:1::2 TURN anycast (RFC 8155)
    (0x2001_0003 << 96, 32),        // 2001:3::/32 AMT (RFC 7450)
    (0x2001_0004_0112 << 80, 48),   // 2001:4:112::/48 AS112-v6 (RFC 7535)
    (0x2001_0020 << 96, 28),        // 2001:20::/28 ORCHIDv2 (RFC 7343)
];

fn in_v4(ip: Ipv4Addr, (network, prefix): ([u8; 4], u8)) -> bool {
    let mask = u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0);
    u32::from(ip) & mask == u32::from(Ipv4Addr::from(network)) & mask
}

fn in_v6(ip: Ipv6Addr, (network, prefix): (u128, u8)) -> bool {
    let mask = u128::MAX.checked_shl(128 - u32::from(prefix)).unwrap_or(0);
    u128::from(ip) & mask == network & mask
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    GLOBAL_V4.iter().any(|&block| in_v4(ip, block))
        || !NOT_GLOBAL_V4.iter().any(|&block| in_v4(ip, block))
}

/// The IPv4 address an IPv6 address carries where the network would deliver to it: mapped
/// (`::ffff:a.b.c.d`), NAT64 (`64:ff9b::a.b.c.d`) and 6to4 (`2002:aabb:ccdd::/48`).
fn embedded_v4(ip: Ipv6Addr) -> Option<Ipv4Addr> {
    let bits = u128::from(ip);
    if let Some(v4) = ip.to_ipv4_mapped() {
        return Some(v4);
    }
    if in_v6(ip, (0x0064_ff9b << 96, 96)) {
        return Some(Ipv4Addr::from(bits as u32));
    }
    if in_v6(ip, (0x2002 << 112, 16)) {
        return Some(Ipv4Addr::from((bits >> 80) as u32));
    }
    None
}

fn is_public_v6(ip: Ipv6Addr) -> bool {
    if let Some(v4) = embedded_v4(ip) {
        return is_public_v4(v4);
    }
    // Teredo (2001::/32) hides its client's address: refused with the rest of 2001::/23.
    GLOBAL_V6.iter().any(|&block| in_v6(ip, block))
        || !NOT_GLOBAL_V6.iter().any(|&block| in_v6(ip, block))
}

/// An address anyone on the internet could reach.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => is_public_v6(v6),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_globally_reachable_addresses_are_public() {
        for private in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.9",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "198.18.0.1",
            "198.19.255.254",
            "192.0.0.8",
            "192.0.2.1",
            "192.88.99.1",
            "198.51.100.7",
            "203.0.113.7",
            "224.0.0.1",
            "240.0.0.1",
            "255.255.255.255",
            "::",
            "::1",
            "::10.0.0.1",
            "::8.8.8.8",
            "::ffff:10.0.0.1",
            "64:ff9b::10.0.0.1",
            "64:ff9b::127.0.0.1",
            "64:ff9b:1::8.8.8.8",
            "2002:0a00:0001::1",
            "2002:7f00:0001::1",
            "2001::1",
            "2001:2::1",
            "2001:db8::1",
            "3fff::1",
            "100::1",
            "5f00::1",
            "fd00::1",
            "fe80::1",
            "fec0::1",
            "ff02::1",
        ] {
            assert!(!is_public(private.parse().unwrap()), "{private}");
        }
        for public in [
            "203.0.114.7",
            "8.8.8.8",
            "198.20.0.1",
            "192.0.0.9",
            "192.0.0.10",
            "2606:4700::1111",
            "::ffff:8.8.8.8",
            "64:ff9b::8.8.8.8",
            "2002:0808:0808::1",
            "2001:1::1",
            "2001:4:112::1",
            "2001:20::1",
        ] {
            assert!(is_public(public.parse().unwrap()), "{public}");
        }
    }
}
