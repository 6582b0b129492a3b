//! UDP associations (SPEC.md §14.1): one connection per peer address on a shared socket.

use alloc::collections::BTreeMap;

use super::ConnId;

/// A peer's transport address as a fixed-size key: the IPv6 form of its IP address (IPv4 as
/// IPv4-mapped) and its port. Runtimes convert their socket addresses with `From`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PeerAddr(pub [u8; 18]);

impl From<core::net::SocketAddr> for PeerAddr {
    fn from(a: core::net::SocketAddr) -> Self {
        let ip = match a.ip() {
            core::net::IpAddr::V4(v4) => v4.to_ipv6_mapped(),
            core::net::IpAddr::V6(v6) => v6,
        };
        let mut k = [0u8; 18];
        k[..16].copy_from_slice(&ip.octets());
        k[16..].copy_from_slice(&a.port().to_be_bytes());
        PeerAddr(k)
    }
}

/// Where a datagram goes ([`Endpoint::route_datagram`](super::Endpoint::route_datagram)).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Route {
    /// To this association.
    Existing(ConnId),
    /// To a new association just admitted (create its connection and feed it the datagram).
    New(ConnId),
    /// Nowhere: not a HELLO from an unknown address (SPEC.md §14.1: dropped).
    Drop,
    /// Nowhere: a HELLO, but `max_associations` (or another admission limit) is reached; the
    /// peer sees a handshake timeout.
    Full,
}

#[derive(Debug)]
pub(super) struct Assocs {
    map: BTreeMap<PeerAddr, ConnId>,
    max: usize,
}

impl Assocs {
    pub fn new(max: usize) -> Self {
        Assocs { map: BTreeMap::new(), max }
    }
    pub fn get(&self, a: &PeerAddr) -> Option<ConnId> {
        self.map.get(a).copied()
    }
    pub fn is_full(&self) -> bool {
        self.map.len() >= self.max
    }
    pub fn insert(&mut self, a: PeerAddr, id: ConnId) {
        self.map.insert(a, id);
    }
    pub fn remove(&mut self, a: &PeerAddr) -> Option<ConnId> {
        self.map.remove(a)
    }
    pub fn len(&self) -> usize {
        self.map.len()
    }
}
