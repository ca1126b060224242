//! IPv4 header (RFC 791).
//!
//! Header options are skipped (their length is honoured; their content is
//! not interpreted). Fragments parse normally so that ICMP can quote them;
//! the stack detects them with [`Ipv4Packet::is_fragment`], counts and drops
//! them — Daytona sets DF on everything it sends (RFC 1191 path MTU
//! discovery) and does not reassemble.

use crate::checksum;
use crate::error::{Error, Result};
use std::net::Ipv4Addr;

mod field {
    use core::ops::Range;
    pub const VER_IHL: usize = 0;
    pub const DSCP_ECN: usize = 1;
    pub const LENGTH: Range<usize> = 2..4;
    pub const IDENT: Range<usize> = 4..6;
    pub const FLG_OFF: Range<usize> = 6..8;
    pub const TTL: usize = 8;
    pub const PROTOCOL: usize = 9;
    pub const CHECKSUM: Range<usize> = 10..12;
    pub const SRC: Range<usize> = 12..16;
    pub const DST: Range<usize> = 16..20;
    pub const HEADER_MIN: usize = 20;
}

/// The IP protocol field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Protocol {
    Icmp,
    Tcp,
    Udp,
    Unknown(u8),
}

impl From<u8> for Protocol {
    fn from(v: u8) -> Self {
        match v {
            1 => Protocol::Icmp,
            6 => Protocol::Tcp,
            17 => Protocol::Udp,
            other => Protocol::Unknown(other),
        }
    }
}

impl From<Protocol> for u8 {
    fn from(p: Protocol) -> u8 {
        match p {
            Protocol::Icmp => 1,
            Protocol::Tcp => 6,
            Protocol::Udp => 17,
            Protocol::Unknown(v) => v,
        }
    }
}

/// RFC 3168 §5 ECN codepoints.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Ecn {
    #[default]
    NotEct,
    Ect1,
    Ect0,
    Ce,
}

impl From<u8> for Ecn {
    fn from(v: u8) -> Self {
        match v & 3 {
            0 => Ecn::NotEct,
            1 => Ecn::Ect1,
            2 => Ecn::Ect0,
            _ => Ecn::Ce,
        }
    }
}

impl From<Ecn> for u8 {
    fn from(e: Ecn) -> u8 {
        match e {
            Ecn::NotEct => 0,
            Ecn::Ect1 => 1,
            Ecn::Ect0 => 2,
            Ecn::Ce => 3,
        }
    }
}

fn be16(b: &[u8]) -> u16 {
    u16::from_be_bytes([b[0], b[1]])
}

fn addr(b: &[u8]) -> Ipv4Addr {
    Ipv4Addr::new(b[0], b[1], b[2], b[3])
}

/// A zero-copy view of an IPv4 packet.
#[derive(Debug, Clone)]
pub struct Ipv4Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Ipv4Packet<T> {
    pub fn new_unchecked(buffer: T) -> Self {
        Ipv4Packet { buffer }
    }

    /// Validates version, header length and total length against the
    /// buffer. Bytes beyond the total length (link padding) are ignored.
    pub fn new_checked(buffer: T) -> Result<Self> {
        let p = Ipv4Packet { buffer };
        p.check(false)?;
        Ok(p)
    }

    /// Like `new_checked`, but for a header quoted in an ICMP error, whose
    /// total length may exceed what was quoted (RFC 792).
    pub fn new_quoted(buffer: T) -> Result<Self> {
        let p = Ipv4Packet { buffer };
        p.check(true)?;
        Ok(p)
    }

    fn check(&self, quoted: bool) -> Result<()> {
        let len = self.buffer.as_ref().len();
        if len < field::HEADER_MIN {
            return Err(Error::Truncated);
        }
        if self.version() != 4 {
            return Err(Error::BadVersion);
        }
        let hl = self.header_len();
        if hl < field::HEADER_MIN || hl > len {
            return Err(Error::BadHeaderLength);
        }
        let total = usize::from(self.total_len());
        if total < hl || (!quoted && total > len) {
            return Err(Error::BadLength);
        }
        Ok(())
    }

    pub fn version(&self) -> u8 {
        self.buffer.as_ref()[field::VER_IHL] >> 4
    }
    pub fn header_len(&self) -> usize {
        usize::from(self.buffer.as_ref()[field::VER_IHL] & 0x0f) * 4
    }
    pub fn dscp(&self) -> u8 {
        self.buffer.as_ref()[field::DSCP_ECN] >> 2
    }
    pub fn ecn(&self) -> Ecn {
        Ecn::from(self.buffer.as_ref()[field::DSCP_ECN])
    }
    pub fn total_len(&self) -> u16 {
        be16(&self.buffer.as_ref()[field::LENGTH])
    }
    pub fn ident(&self) -> u16 {
        be16(&self.buffer.as_ref()[field::IDENT])
    }
    pub fn dont_frag(&self) -> bool {
        self.buffer.as_ref()[field::FLG_OFF.start] & 0x40 != 0
    }
    pub fn more_frags(&self) -> bool {
        self.buffer.as_ref()[field::FLG_OFF.start] & 0x20 != 0
    }
    /// Fragment offset in bytes.
    pub fn frag_offset(&self) -> u16 {
        (be16(&self.buffer.as_ref()[field::FLG_OFF]) & 0x1fff) * 8
    }
    /// RFC 791: a fragment has MF set or a non-zero offset.
    pub fn is_fragment(&self) -> bool {
        self.more_frags() || self.frag_offset() != 0
    }
    pub fn ttl(&self) -> u8 {
        self.buffer.as_ref()[field::TTL]
    }
    pub fn protocol(&self) -> Protocol {
        Protocol::from(self.buffer.as_ref()[field::PROTOCOL])
    }
    pub fn checksum(&self) -> u16 {
        be16(&self.buffer.as_ref()[field::CHECKSUM])
    }
    pub fn src_addr(&self) -> Ipv4Addr {
        addr(&self.buffer.as_ref()[field::SRC])
    }
    pub fn dst_addr(&self) -> Ipv4Addr {
        addr(&self.buffer.as_ref()[field::DST])
    }
    pub fn verify_checksum(&self) -> bool {
        checksum::sum(&self.buffer.as_ref()[..self.header_len()]) == 0xffff
    }
    /// The payload, bounded by the total length and the buffer.
    pub fn payload(&self) -> &[u8] {
        let data = self.buffer.as_ref();
        let end = usize::from(self.total_len()).min(data.len());
        &data[self.header_len()..end]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Ipv4Packet<T> {
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let hl = self.header_len();
        let end = usize::from(self.total_len()).min(self.buffer.as_ref().len());
        &mut self.buffer.as_mut()[hl..end]
    }

    pub fn fill_checksum(&mut self) {
        let hl = self.header_len();
        let b = self.buffer.as_mut();
        b[field::CHECKSUM].copy_from_slice(&[0, 0]);
        let c = checksum::checksum(&b[..hl]);
        b[field::CHECKSUM].copy_from_slice(&c.to_be_bytes());
    }
}

/// A parsed IPv4 header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ipv4Repr {
    pub src_addr: Ipv4Addr,
    pub dst_addr: Ipv4Addr,
    pub protocol: Protocol,
    pub payload_len: usize,
    pub hop_limit: u8,
    pub dscp: u8,
    pub ecn: Ecn,
    pub ident: u16,
    pub dont_frag: bool,
}

impl Ipv4Repr {
    /// Header length we emit (no options).
    pub const HEADER_LEN: usize = field::HEADER_MIN;

    /// Parses a checked view, verifying the header checksum unless `verify`
    /// is false.
    pub fn parse<T: AsRef<[u8]>>(packet: &Ipv4Packet<T>, verify: bool) -> Result<Ipv4Repr> {
        packet.check(false)?;
        if verify && !packet.verify_checksum() {
            return Err(Error::BadChecksum);
        }
        Ok(Self::parse_unverified(packet))
    }

    /// Parses a quoted header (ICMP), without checksum or length checks
    /// beyond the view's own.
    pub fn parse_quoted<T: AsRef<[u8]>>(packet: &Ipv4Packet<T>) -> Result<Ipv4Repr> {
        packet.check(true)?;
        Ok(Self::parse_unverified(packet))
    }

    fn parse_unverified<T: AsRef<[u8]>>(packet: &Ipv4Packet<T>) -> Ipv4Repr {
        Ipv4Repr {
            src_addr: packet.src_addr(),
            dst_addr: packet.dst_addr(),
            protocol: packet.protocol(),
            payload_len: usize::from(packet.total_len()) - packet.header_len(),
            hop_limit: packet.ttl(),
            dscp: packet.dscp(),
            ecn: packet.ecn(),
            ident: packet.ident(),
            dont_frag: packet.dont_frag(),
        }
    }

    pub fn buffer_len(&self) -> usize {
        Self::HEADER_LEN + self.payload_len
    }

    /// Writes the 20-byte header (checksum filled) into `buf`, which must be
    /// at least 20 bytes. Fails if the total length does not fit 16 bits.
    pub fn emit(&self, buf: &mut [u8]) -> Result<()> {
        let total = u16::try_from(self.buffer_len()).map_err(|_| Error::BadLength)?;
        let b = buf.get_mut(..field::HEADER_MIN).ok_or(Error::Truncated)?;
        b[field::VER_IHL] = 0x45;
        b[field::DSCP_ECN] = (self.dscp << 2) | u8::from(self.ecn);
        b[field::LENGTH].copy_from_slice(&total.to_be_bytes());
        b[field::IDENT].copy_from_slice(&self.ident.to_be_bytes());
        let flags: u16 = if self.dont_frag { 0x4000 } else { 0 };
        b[field::FLG_OFF].copy_from_slice(&flags.to_be_bytes());
        b[field::TTL] = self.hop_limit;
        b[field::PROTOCOL] = u8::from(self.protocol);
        b[field::SRC].copy_from_slice(&self.src_addr.octets());
        b[field::DST].copy_from_slice(&self.dst_addr.octets());
        Ipv4Packet::new_unchecked(b).fill_checksum();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn options_are_skipped_and_padding_ignored() {
        let repr = Ipv4Repr {
            src_addr: Ipv4Addr::new(198, 18, 0, 1),
            dst_addr: Ipv4Addr::new(198, 18, 0, 2),
            protocol: Protocol::Udp,
            payload_len: 4,
            hop_limit: 64,
            dscp: 0,
            ecn: Ecn::Ce,
            ident: 7,
            dont_frag: true,
        };
        let mut b = vec![0u8; 24];
        repr.emit(&mut b).unwrap();
        // Insert a 4-byte option (NOP x4): IHL 6, total 28.
        let mut with_opt = b[..20].to_vec();
        with_opt.extend_from_slice(&[1, 1, 1, 1]);
        with_opt.extend_from_slice(&[9, 9, 9, 9]);
        with_opt.extend_from_slice(&[0, 0]); // Ethernet padding
        with_opt[0] = 0x46;
        with_opt[2..4].copy_from_slice(&28u16.to_be_bytes());
        Ipv4Packet::new_unchecked(&mut with_opt[..]).fill_checksum();
        let p = Ipv4Packet::new_checked(&with_opt[..]).unwrap();
        assert_eq!(p.payload(), &[9, 9, 9, 9]);
        let parsed = Ipv4Repr::parse(&p, true).unwrap();
        assert_eq!(parsed, repr);
        assert!(!p.is_fragment());
    }

    #[test]
    fn rejects_bad_headers_and_detects_fragments() {
        let mut b = [0u8; 20];
        assert_eq!(
            Ipv4Packet::new_checked(&b[..]).err(),
            Some(Error::BadVersion)
        );
        b[0] = 0x44;
        assert_eq!(
            Ipv4Packet::new_checked(&b[..]).err(),
            Some(Error::BadHeaderLength)
        );
        b[0] = 0x45;
        b[2..4].copy_from_slice(&40u16.to_be_bytes());
        assert_eq!(
            Ipv4Packet::new_checked(&b[..]).err(),
            Some(Error::BadLength)
        );
        b[2..4].copy_from_slice(&20u16.to_be_bytes());
        b[6] = 0x20; // MF
        let p = Ipv4Packet::new_checked(&b[..]).unwrap();
        assert!(p.is_fragment());
        assert_eq!(Ipv4Repr::parse(&p, true), Err(Error::BadChecksum));
    }

    proptest! {
        #[test]
        fn round_trip(src in any::<u32>(), dst in any::<u32>(), proto in any::<u8>(), len in 0usize..2000,
                      ttl in any::<u8>(), dscp in 0u8..64, ecn in 0u8..4, ident in any::<u16>(), df in any::<bool>()) {
            let repr = Ipv4Repr {
                src_addr: Ipv4Addr::from(src), dst_addr: Ipv4Addr::from(dst),
                protocol: Protocol::from(proto), payload_len: len, hop_limit: ttl,
                dscp, ecn: Ecn::from(ecn), ident, dont_frag: df,
            };
            let mut b = vec![0u8; repr.buffer_len()];
            repr.emit(&mut b).unwrap();
            let p = Ipv4Packet::new_checked(&b[..]).unwrap();
            prop_assert_eq!(Ipv4Repr::parse(&p, true).unwrap(), repr);
        }

        #[test]
        fn parse_never_panics(data in proptest::collection::vec(any::<u8>(), 0..80)) {
            if let Ok(p) = Ipv4Packet::new_checked(&data[..]) {
                let _ = Ipv4Repr::parse(&p, true);
                let _ = p.payload();
            }
            if let Ok(p) = Ipv4Packet::new_quoted(&data[..]) {
                let _ = Ipv4Repr::parse_quoted(&p);
                let _ = p.payload();
            }
        }
    }
}
