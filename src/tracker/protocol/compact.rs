//! Compact peer lists: BEP 23's `peers` string of IPv4 entries and BEP 7's `peers6` string of
//! IPv6 entries. Each entry is the address bytes followed by the port, big-endian, with nothing
//! between entries. The server writes these lists and the client reads them, so the format is
//! spelled out once, here.

use std::fmt;
use std::net::{IpAddr, SocketAddr};

/// Which of the two lists: they differ only in the width of the address.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Family {
    /// `peers`: 4 address bytes and 2 port bytes per entry.
    V4,
    /// `peers6`: 16 address bytes and 2 port bytes per entry.
    V6,
}

impl Family {
    /// Bytes of one entry.
    const fn entry_len(self) -> usize {
        match self {
            Family::V4 => 6,
            Family::V6 => 18,
        }
    }
}

/// Addresses encoded and split by family, as a reply carries them.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct CompactPeers {
    /// The `peers` string.
    pub v4: Vec<u8>,
    /// The `peers6` string.
    pub v6: Vec<u8>,
}

/// Encodes each address into the list of its family, keeping their order.
pub(crate) fn encode(addrs: impl IntoIterator<Item = SocketAddr>) -> CompactPeers {
    let mut out = CompactPeers::default();
    for addr in addrs {
        match addr {
            SocketAddr::V4(addr) => {
                out.v4.extend_from_slice(&addr.ip().octets());
                out.v4.extend_from_slice(&addr.port().to_be_bytes());
            }
            SocketAddr::V6(addr) => {
                out.v6.extend_from_slice(&addr.ip().octets());
                out.v6.extend_from_slice(&addr.port().to_be_bytes());
            }
        }
    }
    out
}

/// A compact list whose length is not a whole number of entries.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct UnevenList {
    len: usize,
    entry_len: usize,
}

impl fmt::Display for UnevenList {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "compact peer list of {} bytes is not a multiple of {}",
            self.len, self.entry_len
        )
    }
}

impl std::error::Error for UnevenList {}

/// Decodes a list of `family` entries.
pub(crate) fn decode(data: &[u8], family: Family) -> Result<Vec<SocketAddr>, UnevenList> {
    let width = family.entry_len();
    if !data.len().is_multiple_of(width) {
        return Err(UnevenList {
            len: data.len(),
            entry_len: width,
        });
    }
    Ok(data
        .chunks_exact(width)
        .map(|chunk| {
            let (ip, port) = chunk.split_at(width - 2);
            let ip = match <[u8; 4]>::try_from(ip) {
                Ok(v4) => IpAddr::from(v4),
                Err(_) => IpAddr::from(<[u8; 16]>::try_from(ip).unwrap_or([0; 16])),
            };
            SocketAddr::new(ip, u16::from_be_bytes([port[0], port[1]]))
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(text: &str) -> SocketAddr {
        text.parse().unwrap()
    }

    #[test]
    fn encode_splits_by_family_in_order() {
        let peers = encode([
            addr("10.0.0.1:6881"),
            addr("[::1]:6882"),
            addr("127.0.0.1:80"),
        ]);
        assert_eq!(peers.v4, [10, 0, 0, 1, 0x1a, 0xe1, 127, 0, 0, 1, 0, 80]);
        let mut v6 = vec![0u8; 16];
        v6[15] = 1;
        v6.extend_from_slice(&6882u16.to_be_bytes());
        assert_eq!(peers.v6, v6);
        assert_eq!(encode([]), CompactPeers::default());
    }

    #[test]
    fn decode_reverses_encode() {
        let v4 = [addr("1.2.3.4:1"), addr("255.255.255.255:65535")];
        let v6 = [addr("[2001:db8::7]:51413"), addr("[::]:1")];
        let peers = encode(v4.into_iter().chain(v6));
        assert_eq!(decode(&peers.v4, Family::V4).unwrap(), v4);
        assert_eq!(decode(&peers.v6, Family::V6).unwrap(), v6);
        assert_eq!(decode(&[], Family::V6).unwrap(), []);
    }

    #[test]
    fn decode_refuses_partial_entries() {
        let err = decode(&[1; 7], Family::V4).unwrap_err();
        assert_eq!(
            err.to_string(),
            "compact peer list of 7 bytes is not a multiple of 6"
        );
        // Six bytes are a whole IPv4 entry but a third of an IPv6 one.
        assert!(decode(&[1; 6], Family::V6).is_err());
    }
}
