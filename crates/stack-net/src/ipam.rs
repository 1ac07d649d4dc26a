//! IP address management: pure decisions over plain data (no kernel access).
//!
//! Subnets come from a pool, skipping any that overlap a host route or another
//! network; addresses are the lowest free host address of a subnet, except that
//! a container gets its previous address back when it is still free.

use std::collections::BTreeSet;
use std::fmt;
use std::net::Ipv4Addr;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::error::{NetError, Result};

/// An IPv4 prefix in canonical form (host bits zero).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Subnet {
    network: Ipv4Addr,
    prefix: u8,
}

impl Subnet {
    /// A subnet from any address inside it; host bits are cleared.
    pub fn new(addr: Ipv4Addr, prefix: u8) -> Result<Self> {
        if prefix > 32 {
            return Err(NetError::InvalidSubnet(format!("{addr}/{prefix}")));
        }
        let network = Ipv4Addr::from(u32::from(addr) & mask(prefix));
        Ok(Self { network, prefix })
    }

    pub fn network(&self) -> Ipv4Addr {
        self.network
    }

    pub fn prefix(&self) -> u8 {
        self.prefix
    }

    fn first(&self) -> u32 {
        u32::from(self.network)
    }

    fn last(&self) -> u32 {
        self.first() | !mask(self.prefix)
    }

    pub fn broadcast(&self) -> Ipv4Addr {
        Ipv4Addr::from(self.last())
    }

    pub fn contains(&self, ip: Ipv4Addr) -> bool {
        u32::from(ip) & mask(self.prefix) == self.first()
    }

    pub fn overlaps(&self, other: &Subnet) -> bool {
        self.first() <= other.last() && other.first() <= self.last()
    }

    /// True when `ip` is neither the network nor the broadcast address.
    pub fn is_host(&self, ip: Ipv4Addr) -> bool {
        self.contains(ip) && (self.prefix >= 31 || (ip != self.network && ip != self.broadcast()))
    }

    /// The conventional gateway: the first host address (`.1` of a /24).
    pub fn default_gateway(&self) -> Ipv4Addr {
        Ipv4Addr::from(self.first() + 1)
    }

    /// The `prefix`-sized subnets inside this one, in address order.
    pub fn split(&self, prefix: u8) -> impl Iterator<Item = Subnet> + '_ {
        let step: u64 = 1u64 << (32 - u32::from(prefix.max(self.prefix)));
        let count: u64 = if prefix < self.prefix {
            0
        } else {
            1u64 << (prefix - self.prefix)
        };
        (0..count).map(move |i| Subnet {
            network: Ipv4Addr::from((u64::from(self.first()) + i * step) as u32),
            prefix,
        })
    }
}

fn mask(prefix: u8) -> u32 {
    if prefix == 0 {
        0
    } else {
        u32::MAX << (32 - u32::from(prefix))
    }
}

impl fmt::Display for Subnet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.network, self.prefix)
    }
}

impl FromStr for Subnet {
    type Err = NetError;

    fn from_str(s: &str) -> Result<Self> {
        let bad = || NetError::InvalidSubnet(s.to_string());
        let (addr, prefix) = s.split_once('/').ok_or_else(bad)?;
        let addr: Ipv4Addr = addr.parse().map_err(|_| bad())?;
        let prefix: u8 = prefix.parse().map_err(|_| bad())?;
        let subnet = Subnet::new(addr, prefix)?;
        if subnet.network != addr {
            return Err(bad());
        }
        Ok(subnet)
    }
}

impl TryFrom<String> for Subnet {
    type Error = NetError;
    fn try_from(s: String) -> Result<Self> {
        s.parse()
    }
}

impl From<Subnet> for String {
    fn from(s: Subnet) -> String {
        s.to_string()
    }
}

/// The first `prefix`-sized subnet of the pool that overlaps nothing in `used`
/// (host routes and the subnets of existing networks).
pub fn pick_subnet(pool: &[Subnet], prefix: u8, used: &[Subnet]) -> Result<Subnet> {
    pool.iter()
        .flat_map(|p| p.split(prefix))
        .find(|candidate| !used.iter().any(|u| u.overlaps(candidate)))
        .ok_or_else(|| NetError::SubnetPoolExhausted {
            pool: pool
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(","),
            prefix,
        })
}

/// Checks an explicitly configured subnet against what is already in use.
pub fn check_subnet(subnet: Subnet, used: &[(Subnet, String)]) -> Result<()> {
    match used.iter().find(|(u, _)| u.overlaps(&subnet)) {
        Some((_, what)) => Err(NetError::SubnetOverlap {
            subnet,
            other: what.clone(),
        }),
        None => Ok(()),
    }
}

/// Chooses a container address in `subnet`.
///
/// `requested` (the stack file's `ipv4_address`) must be free or it is an error;
/// otherwise `previous` (the container's last address) is reused when free, and
/// failing that the lowest free host address is taken.
pub fn pick_address(
    subnet: Subnet,
    network_name: &str,
    taken: &BTreeSet<Ipv4Addr>,
    requested: Option<Ipv4Addr>,
    previous: Option<Ipv4Addr>,
) -> Result<Ipv4Addr> {
    if let Some(address) = requested {
        if !subnet.is_host(address) {
            return Err(NetError::AddressOutsideSubnet { address, subnet });
        }
        if taken.contains(&address) {
            return Err(NetError::AddressInUse {
                address,
                network: network_name.to_string(),
            });
        }
        return Ok(address);
    }
    if let Some(address) = previous.filter(|a| subnet.is_host(*a) && !taken.contains(a)) {
        return Ok(address);
    }
    (subnet.first()..=subnet.last())
        .map(Ipv4Addr::from)
        .find(|a| subnet.is_host(*a) && !taken.contains(a))
        .ok_or(NetError::AddressPoolExhausted(subnet))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(x: &str) -> Subnet {
        x.parse().unwrap()
    }

    #[test]
    fn parse_and_display_round_trip() {
        assert_eq!(s("10.1.2.0/24").to_string(), "10.1.2.0/24");
        assert!("10.1.2.3/24".parse::<Subnet>().is_err());
        assert!("10.1.2.0/33".parse::<Subnet>().is_err());
        assert!("nonsense".parse::<Subnet>().is_err());
        assert_eq!(
            Subnet::new("10.1.2.3".parse().unwrap(), 24).unwrap(),
            s("10.1.2.0/24")
        );
    }

    #[test]
    fn overlap_and_contains() {
        assert!(s("10.0.0.0/8").overlaps(&s("10.5.0.0/16")));
        assert!(s("10.5.0.0/16").overlaps(&s("10.0.0.0/8")));
        assert!(!s("10.1.0.0/24").overlaps(&s("10.1.1.0/24")));
        assert!(s("0.0.0.0/0").overlaps(&s("192.168.0.0/24")));
        assert!(s("10.1.0.0/24").contains("10.1.0.255".parse().unwrap()));
        assert!(!s("10.1.0.0/24").is_host("10.1.0.255".parse().unwrap()));
        assert!(!s("10.1.0.0/24").is_host("10.1.0.0".parse().unwrap()));
    }

    #[test]
    fn subnet_skips_used_ranges() {
        let pool = [s("10.200.0.0/16")];
        let used = [s("10.200.0.0/23"), s("10.200.3.0/24")];
        assert_eq!(pick_subnet(&pool, 24, &used).unwrap(), s("10.200.2.0/24"));
        assert_eq!(pick_subnet(&pool, 24, &[]).unwrap(), s("10.200.0.0/24"));
    }

    #[test]
    fn subnet_pool_exhausted_is_an_error() {
        let pool = [s("10.200.0.0/23")];
        let used = [s("10.0.0.0/8")];
        let err = pick_subnet(&pool, 24, &used).unwrap_err();
        assert!(err.to_string().contains("no free subnet"), "{err}");
    }

    #[test]
    fn explicit_subnet_overlap_names_the_other() {
        let used = [(s("10.9.0.0/16"), "route 10.9.0.0/16 dev eth1".to_string())];
        let err = check_subnet(s("10.9.3.0/24"), &used).unwrap_err();
        assert!(err.to_string().contains("route 10.9.0.0/16"), "{err}");
        assert!(check_subnet(s("10.8.3.0/24"), &used).is_ok());
    }

    #[test]
    fn address_lowest_free_then_previous_then_requested() {
        let ip = |x: &str| x.parse::<Ipv4Addr>().unwrap();
        let net = s("10.1.0.0/29");
        let mut taken: BTreeSet<Ipv4Addr> = [ip("10.1.0.1"), ip("10.1.0.2")].into();
        assert_eq!(
            pick_address(net, "n", &taken, None, None).unwrap(),
            ip("10.1.0.3")
        );
        let prev = ip("10.1.0.5");
        assert_eq!(
            pick_address(net, "n", &taken, None, Some(prev)).unwrap(),
            prev
        );
        taken.insert(prev);
        assert_eq!(
            pick_address(net, "n", &taken, None, Some(prev)).unwrap(),
            ip("10.1.0.3")
        );
        let req = ip("10.1.0.6");
        assert_eq!(
            pick_address(net, "n", &taken, Some(req), Some(prev)).unwrap(),
            req
        );
        assert!(matches!(
            pick_address(net, "n", &taken, Some(ip("10.1.0.2")), None),
            Err(NetError::AddressInUse { .. })
        ));
        assert!(matches!(
            pick_address(net, "n", &taken, Some(ip("10.1.0.7")), None),
            Err(NetError::AddressOutsideSubnet { .. })
        ));
    }

    #[test]
    fn address_pool_exhausted_is_an_error() {
        let net = s("10.1.0.0/30");
        let taken: BTreeSet<Ipv4Addr> = ["10.1.0.1", "10.1.0.2"]
            .iter()
            .map(|a| a.parse().unwrap())
            .collect();
        assert!(matches!(
            pick_address(net, "n", &taken, None, None),
            Err(NetError::AddressPoolExhausted(_))
        ));
    }
}
