//! IPv4 CIDR blocks: just enough to validate a VPC and its subnets.

use std::fmt;
use std::net::Ipv4Addr;
use std::str::FromStr;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    pub network: Ipv4Addr,
    pub prefix: u8,
}

impl Cidr {
    fn mask(self) -> u32 {
        if self.prefix == 0 {
            0
        } else {
            u32::MAX << (32 - self.prefix)
        }
    }

    fn first(self) -> u32 {
        u32::from(self.network)
    }

    fn last(self) -> u32 {
        self.first() | !self.mask()
    }

    pub fn contains(self, other: Cidr) -> bool {
        other.prefix >= self.prefix && other.first() & self.mask() == self.first()
    }

    pub fn overlaps(self, other: Cidr) -> bool {
        self.first() <= other.last() && other.first() <= self.last()
    }

    /// RFC 1918 private space, where a VPC belongs.
    pub fn is_private(self) -> bool {
        ["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"]
            .iter()
            .any(|p| p.parse::<Cidr>().is_ok_and(|p| p.contains(self)))
    }
}

impl FromStr for Cidr {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (addr, prefix) = s.split_once('/').ok_or_else(|| {
            format!("`{s}` is not a CIDR block: expected an address/prefix such as 10.42.0.0/16")
        })?;
        let network: Ipv4Addr = addr
            .parse()
            .map_err(|_| format!("`{addr}` is not an IPv4 address"))?;
        let prefix: u8 = prefix
            .parse()
            .ok()
            .filter(|p| *p <= 32)
            .ok_or_else(|| format!("`/{prefix}` is not a prefix length between 0 and 32"))?;
        let cidr = Cidr { network, prefix };
        if cidr.first() & cidr.mask() != cidr.first() {
            let base = Ipv4Addr::from(cidr.first() & cidr.mask());
            return Err(format!(
                "`{s}` has host bits set: the block starts at {base}/{prefix}"
            ));
        }
        Ok(cidr)
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.network, self.prefix)
    }
}

impl serde::Serialize for Cidr {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_relates_blocks() {
        let vpc: Cidr = "10.42.0.0/16".parse().unwrap();
        let a: Cidr = "10.42.1.0/24".parse().unwrap();
        let b: Cidr = "10.42.1.128/25".parse().unwrap();
        let outside: Cidr = "10.43.0.0/24".parse().unwrap();
        assert!(vpc.contains(a) && vpc.contains(b) && !vpc.contains(outside));
        assert!(a.overlaps(b) && !a.overlaps(outside));
        assert!(vpc.is_private());
        assert!(!"8.8.8.0/24".parse::<Cidr>().unwrap().is_private());
        assert!(
            "10.42.0.1/16"
                .parse::<Cidr>()
                .unwrap_err()
                .contains("host bits")
        );
        assert!("10.42.0.0/33".parse::<Cidr>().is_err());
        assert!("10.42.0.0".parse::<Cidr>().is_err());
    }
}
