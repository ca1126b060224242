//! ARP for IPv4 over Ethernet (RFC 826). Other hardware or protocol types
//! are `Unsupported`.

use crate::error::{Error, Result};
use crate::ethernet::EthernetAddress;
use std::net::Ipv4Addr;

pub const PACKET_LEN: usize = 28;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Operation {
    Request,
    Reply,
    Unknown(u16),
}

impl From<u16> for Operation {
    fn from(v: u16) -> Self {
        match v {
            1 => Operation::Request,
            2 => Operation::Reply,
            other => Operation::Unknown(other),
        }
    }
}

impl From<Operation> for u16 {
    fn from(o: Operation) -> u16 {
        match o {
            Operation::Request => 1,
            Operation::Reply => 2,
            Operation::Unknown(v) => v,
        }
    }
}

/// A zero-copy view of an ARP packet.
#[derive(Debug, Clone)]
pub struct ArpPacket<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> ArpPacket<T> {
    pub fn new_checked(buffer: T) -> Result<Self> {
        if buffer.as_ref().len() < PACKET_LEN {
            return Err(Error::Truncated);
        }
        Ok(ArpPacket { buffer })
    }

    fn b(&self) -> &[u8] {
        self.buffer.as_ref()
    }
    pub fn hardware_type(&self) -> u16 {
        u16::from_be_bytes([self.b()[0], self.b()[1]])
    }
    pub fn protocol_type(&self) -> u16 {
        u16::from_be_bytes([self.b()[2], self.b()[3]])
    }
    pub fn hardware_len(&self) -> u8 {
        self.b()[4]
    }
    pub fn protocol_len(&self) -> u8 {
        self.b()[5]
    }
    pub fn operation(&self) -> Operation {
        Operation::from(u16::from_be_bytes([self.b()[6], self.b()[7]]))
    }
    fn mac(&self, at: usize) -> EthernetAddress {
        let b = self.b();
        EthernetAddress([b[at], b[at + 1], b[at + 2], b[at + 3], b[at + 4], b[at + 5]])
    }
    fn ip(&self, at: usize) -> Ipv4Addr {
        let b = self.b();
        Ipv4Addr::new(b[at], b[at + 1], b[at + 2], b[at + 3])
    }
}

/// A parsed Ethernet/IPv4 ARP packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ArpRepr {
    pub operation: Operation,
    pub source_hardware_addr: EthernetAddress,
    pub source_protocol_addr: Ipv4Addr,
    pub target_hardware_addr: EthernetAddress,
    pub target_protocol_addr: Ipv4Addr,
}

impl ArpRepr {
    pub fn parse<T: AsRef<[u8]>>(p: &ArpPacket<T>) -> Result<ArpRepr> {
        if p.hardware_type() != 1
            || p.protocol_type() != 0x0800
            || p.hardware_len() != 6
            || p.protocol_len() != 4
        {
            return Err(Error::Unsupported);
        }
        Ok(ArpRepr {
            operation: p.operation(),
            source_hardware_addr: p.mac(8),
            source_protocol_addr: p.ip(14),
            target_hardware_addr: p.mac(18),
            target_protocol_addr: p.ip(24),
        })
    }

    pub fn emit(&self, buf: &mut [u8]) -> Result<()> {
        let b = buf.get_mut(..PACKET_LEN).ok_or(Error::Truncated)?;
        b[0..2].copy_from_slice(&1u16.to_be_bytes());
        b[2..4].copy_from_slice(&0x0800u16.to_be_bytes());
        b[4] = 6;
        b[5] = 4;
        b[6..8].copy_from_slice(&u16::from(self.operation).to_be_bytes());
        b[8..14].copy_from_slice(&self.source_hardware_addr.0);
        b[14..18].copy_from_slice(&self.source_protocol_addr.octets());
        b[18..24].copy_from_slice(&self.target_hardware_addr.0);
        b[24..28].copy_from_slice(&self.target_protocol_addr.octets());
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn round_trip(op in 0u16..4, sh in any::<[u8; 6]>(), sp in any::<u32>(), th in any::<[u8; 6]>(), tp in any::<u32>()) {
            let r = ArpRepr {
                operation: Operation::from(op),
                source_hardware_addr: EthernetAddress(sh), source_protocol_addr: Ipv4Addr::from(sp),
                target_hardware_addr: EthernetAddress(th), target_protocol_addr: Ipv4Addr::from(tp),
            };
            let mut b = [0u8; PACKET_LEN];
            r.emit(&mut b).unwrap();
            prop_assert_eq!(ArpRepr::parse(&ArpPacket::new_checked(&b[..]).unwrap()).unwrap(), r);
        }

        #[test]
        fn never_panics(data in proptest::collection::vec(any::<u8>(), 0..40)) {
            if let Ok(p) = ArpPacket::new_checked(&data[..]) {
                let _ = ArpRepr::parse(&p);
            }
        }
    }

    #[test]
    fn rejects_non_ethernet_ipv4() {
        let mut b = [0u8; PACKET_LEN];
        b[1] = 6; // IEEE 802
        assert_eq!(
            ArpRepr::parse(&ArpPacket::new_checked(&b[..]).unwrap()),
            Err(Error::Unsupported)
        );
    }
}
