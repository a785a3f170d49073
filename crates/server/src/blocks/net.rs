//! Addresses and CIDR ranges: `203.0.113.9`, `203.0.113.0/24`, `2001:db8::/32`.
//!
//! IPv4-mapped IPv6 addresses (`::ffff:203.0.113.9`, what a dual-stack
//! socket reports for an IPv4 client) are taken as the IPv4 address, so a
//! block of one covers the other.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// An address range: a network address and a prefix length. A single
/// address is a range of `/32` (`/128`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct IpNet {
    addr: IpAddr,
    prefix: u8,
}

/// `addr` with IPv4-mapped IPv6 read as IPv4.
pub fn canonical(addr: IpAddr) -> IpAddr {
    match addr {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
        v4 => v4,
    }
}

fn bits(addr: IpAddr) -> (u128, u8) {
    match addr {
        IpAddr::V4(v4) => (u128::from(u32::from(v4)), 32),
        IpAddr::V6(v6) => (u128::from(v6), 128),
    }
}

fn mask(width: u8, prefix: u8) -> u128 {
    if prefix == 0 {
        return 0;
    }
    let all = if width == 32 {
        u128::from(u32::MAX)
    } else {
        u128::MAX
    };
    all & !(all >> prefix)
}

impl IpNet {
    /// The range of one address.
    pub fn host(addr: IpAddr) -> IpNet {
        let addr = canonical(addr);
        IpNet {
            addr,
            prefix: bits(addr).1,
        }
    }

    /// Whether the range is one address.
    pub fn is_host(&self) -> bool {
        self.prefix == bits(self.addr).1
    }

    /// The first address of the range (the address itself for a host).
    pub fn addr(&self) -> IpAddr {
        self.addr
    }

    pub fn prefix(&self) -> u8 {
        self.prefix
    }

    pub fn contains(&self, addr: IpAddr) -> bool {
        let addr = canonical(addr);
        let (net, width) = bits(self.addr);
        let (other, other_width) = bits(addr);
        width == other_width && (other & mask(width, self.prefix)) == net
    }
}

impl FromStr for IpNet {
    type Err = String;

    /// An address, or `address/prefix` whose host bits are zero (a range
    /// written `203.0.113.7/24` is refused: it is ambiguous).
    fn from_str(text: &str) -> Result<IpNet, String> {
        let text = text.trim();
        let Some((addr, prefix)) = text.split_once('/') else {
            return text
                .parse::<IpAddr>()
                .map(IpNet::host)
                .map_err(|_| format!("`{text}` is not an IP address or CIDR range"));
        };
        let addr = canonical(
            addr.parse::<IpAddr>()
                .map_err(|_| format!("`{text}`: `{addr}` is not an IP address"))?,
        );
        let (value, width) = bits(addr);
        let prefix = prefix
            .parse::<u8>()
            .ok()
            .filter(|p| *p <= width)
            .ok_or_else(|| format!("`{text}`: the prefix length must be 0 to {width}"))?;
        if value & !mask(width, prefix) != 0 {
            return Err(format!(
                "`{text}` has bits set after the /{prefix} prefix; write the network address"
            ));
        }
        Ok(IpNet { addr, prefix })
    }
}

impl fmt::Display for IpNet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_host() {
            write!(f, "{}", self.addr)
        } else {
            write!(f, "{}/{}", self.addr, self.prefix)
        }
    }
}

impl Serialize for IpNet {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for IpNet {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<IpNet, D::Error> {
        let text = String::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// Reads one hop of `X-Forwarded-For` or `X-Real-IP`: an address, maybe
/// with a port (`203.0.113.9:5123`, `[2001:db8::1]:443`).
pub fn parse_hop(text: &str) -> Option<IpAddr> {
    let text = text.trim();
    if let Ok(addr) = text.parse::<IpAddr>() {
        return Some(canonical(addr));
    }
    text.parse::<std::net::SocketAddr>()
        .ok()
        .map(|s| canonical(s.ip()))
}

/// The client of a request that came through proxies: walking
/// `X-Forwarded-For` from the right (the hop the nearest proxy added),
/// the first address not in `trusted`; the leftmost if every hop is
/// trusted. Without `X-Forwarded-For`, `X-Real-IP`. `None` when neither
/// names an address (or the first untrusted hop is unreadable).
pub fn client_address<'a>(
    forwarded_for: impl IntoIterator<Item = &'a str>,
    real_ip: Option<&str>,
    trusted: &[IpNet],
) -> Option<IpAddr> {
    let hops: Vec<&str> = forwarded_for
        .into_iter()
        .flat_map(|value| value.split(','))
        .map(str::trim)
        .filter(|hop| !hop.is_empty())
        .collect();
    if hops.is_empty() {
        return real_ip.and_then(parse_hop);
    }
    let mut leftmost = None;
    for hop in hops.iter().rev() {
        let addr = parse_hop(hop)?;
        if !trusted.iter().any(|net| net.contains(addr)) {
            return Some(addr);
        }
        leftmost = Some(addr);
    }
    leftmost
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn net(text: &str) -> IpNet {
        text.parse().unwrap()
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn ranges_and_hosts() {
        let range = net("203.0.113.0/24");
        assert!(range.contains(ip("203.0.113.0")));
        assert!(range.contains(ip("203.0.113.255")));
        assert!(range.contains(ip("::ffff:203.0.113.7")));
        assert!(!range.contains(ip("203.0.114.1")));
        assert!(!range.contains(ip("2001:db8::1")));
        assert_eq!(range.to_string(), "203.0.113.0/24");
        assert_eq!(net("::ffff:198.51.100.1").to_string(), "198.51.100.1");
        assert_eq!(net("198.51.100.1/32").to_string(), "198.51.100.1");
        let v6 = net("2001:db8::/32");
        assert!(v6.contains(ip("2001:db8:ffff::1")));
        assert!(!v6.contains(ip("2001:db9::1")));
        assert!(net("0.0.0.0/0").contains(ip("8.8.8.8")));
        assert!(!net("0.0.0.0/0").contains(ip("::1")));
        assert!(net("::/0").contains(ip("::1")));
    }

    #[test]
    fn refused() {
        for bad in [
            "203.0.113.7/24",
            "203.0.113.0/33",
            "x/8",
            "nope",
            "",
            "2001:db8::1/129",
        ] {
            assert!(bad.parse::<IpNet>().is_err(), "{bad}");
        }
    }

    #[test]
    fn forwarded_for_first_untrusted_hop_from_the_right() {
        let trusted = [net("10.0.0.0/8"), net("127.0.0.1")];
        // The client forged a first hop; the load balancer (10.1.1.1) and
        // nginx (127.0.0.1) are trusted: the client is what the balancer saw.
        let xff = ["6.6.6.6, 203.0.113.9", "10.1.1.1, 127.0.0.1"];
        assert_eq!(
            client_address(xff, Some("127.0.0.1"), &trusted),
            Some(ip("203.0.113.9"))
        );
        // Nothing trusted: the hop the nearest proxy added.
        assert_eq!(
            client_address(["6.6.6.6, 203.0.113.9"], None, &[]),
            Some(ip("203.0.113.9"))
        );
        // Every hop trusted: the leftmost.
        assert_eq!(
            client_address(["10.0.0.1, 10.0.0.2"], None, &trusted),
            Some(ip("10.0.0.1"))
        );
        assert_eq!(
            client_address([], Some("198.51.100.4:4431"), &trusted),
            Some(ip("198.51.100.4"))
        );
        assert_eq!(
            client_address(["[2001:db8::5]:443"], None, &[]),
            Some(ip("2001:db8::5"))
        );
        assert_eq!(client_address(["unknown"], None, &[]), None);
        assert_eq!(client_address([], None, &[]), None);
    }
}
