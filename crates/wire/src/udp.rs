//! UDP (RFC 768).

use crate::checksum::{self, ChecksumMode};
use crate::error::{Error, Result};
use std::net::Ipv4Addr;

pub const HEADER_LEN: usize = 8;

/// A zero-copy view of a UDP datagram.
#[derive(Debug, Clone)]
pub struct UdpPacket<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> UdpPacket<T> {
    /// Validates the length field against the buffer.
    pub fn new_checked(buffer: T) -> Result<Self> {
        let len = buffer.as_ref().len();
        if len < HEADER_LEN {
            return Err(Error::Truncated);
        }
        let p = UdpPacket { buffer };
        let l = usize::from(p.len());
        if l < HEADER_LEN || l > len {
            return Err(Error::BadLength);
        }
        Ok(p)
    }
    fn b(&self) -> &[u8] {
        self.buffer.as_ref()
    }
    pub fn src_port(&self) -> u16 {
        u16::from_be_bytes([self.b()[0], self.b()[1]])
    }
    pub fn dst_port(&self) -> u16 {
        u16::from_be_bytes([self.b()[2], self.b()[3]])
    }
    #[allow(clippy::len_without_is_empty)]
    pub fn len(&self) -> u16 {
        u16::from_be_bytes([self.b()[4], self.b()[5]])
    }
    pub fn checksum(&self) -> u16 {
        u16::from_be_bytes([self.b()[6], self.b()[7]])
    }
    pub fn payload(&self) -> &[u8] {
        &self.b()[HEADER_LEN..usize::from(self.len())]
    }
    /// RFC 768: a zero checksum means none was computed.
    pub fn verify_checksum(&self, src: &Ipv4Addr, dst: &Ipv4Addr) -> bool {
        if self.checksum() == 0 {
            return true;
        }
        let data = &self.b()[..usize::from(self.len())];
        let ph = checksum::pseudo_header_v4(src, dst, 17, data.len() as u32);
        checksum::combine(&[ph, checksum::sum(data)]) == 0xffff
    }
}

/// A parsed UDP header; the payload is borrowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UdpRepr<'a> {
    pub src_port: u16,
    pub dst_port: u16,
    pub payload: &'a [u8],
}

impl<'a> UdpRepr<'a> {
    pub fn parse<T: AsRef<[u8]> + ?Sized>(
        packet: &UdpPacket<&'a T>,
        src: &Ipv4Addr,
        dst: &Ipv4Addr,
        mode: ChecksumMode,
    ) -> Result<UdpRepr<'a>> {
        let buffer: &'a T = packet.buffer;
        let p = UdpPacket::new_checked(buffer.as_ref())?;
        if mode.enabled() && !p.verify_checksum(src, dst) {
            return Err(Error::BadChecksum);
        }
        if p.dst_port() == 0 {
            return Err(Error::Unsupported);
        }
        let data: &'a [u8] = buffer.as_ref();
        Ok(UdpRepr {
            src_port: p.src_port(),
            dst_port: p.dst_port(),
            payload: &data[HEADER_LEN..usize::from(p.len())],
        })
    }

    pub fn buffer_len(&self) -> usize {
        HEADER_LEN + self.payload.len()
    }

    /// Writes header and payload into `buf[..buffer_len()]` with checksum.
    pub fn emit(
        &self,
        buf: &mut [u8],
        src: &Ipv4Addr,
        dst: &Ipv4Addr,
        mode: ChecksumMode,
    ) -> Result<()> {
        let len = u16::try_from(self.buffer_len()).map_err(|_| Error::BadLength)?;
        let b = buf.get_mut(..usize::from(len)).ok_or(Error::Truncated)?;
        b[0..2].copy_from_slice(&self.src_port.to_be_bytes());
        b[2..4].copy_from_slice(&self.dst_port.to_be_bytes());
        b[4..6].copy_from_slice(&len.to_be_bytes());
        b[6..8].copy_from_slice(&[0, 0]);
        b[HEADER_LEN..].copy_from_slice(self.payload);
        if mode.enabled() {
            let ph = checksum::pseudo_header_v4(src, dst, 17, u32::from(len));
            let mut c = !checksum::combine(&[ph, checksum::sum(b)]);
            // RFC 768: a computed zero is sent as all ones.
            if c == 0 {
                c = 0xffff;
            }
            b[6..8].copy_from_slice(&c.to_be_bytes());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const S: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 1);
    const D: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 2);

    proptest! {
        #[test]
        fn round_trip(sp in any::<u16>(), dp in 1u16.., payload in proptest::collection::vec(any::<u8>(), 0..300)) {
            let r = UdpRepr { src_port: sp, dst_port: dp, payload: &payload };
            let mut b = vec![0u8; r.buffer_len()];
            r.emit(&mut b, &S, &D, ChecksumMode::Compute).unwrap();
            let p = UdpPacket::new_checked(&b[..]).unwrap();
            prop_assert_eq!(UdpRepr::parse(&p, &S, &D, ChecksumMode::Verify).unwrap(), r);
        }

        #[test]
        fn never_panics(data in proptest::collection::vec(any::<u8>(), 0..40)) {
            if let Ok(p) = UdpPacket::new_checked(&data[..]) {
                let _ = UdpRepr::parse(&p, &S, &D, ChecksumMode::Verify);
            }
        }
    }

    #[test]
    fn corrupted_datagram_fails_the_checksum() {
        let r = UdpRepr {
            src_port: 5,
            dst_port: 7,
            payload: b"hello",
        };
        let mut b = vec![0u8; r.buffer_len()];
        r.emit(&mut b, &S, &D, ChecksumMode::Compute).unwrap();
        b[9] ^= 0x10;
        let p = UdpPacket::new_checked(&b[..]).unwrap();
        assert_eq!(
            UdpRepr::parse(&p, &S, &D, ChecksumMode::Verify),
            Err(Error::BadChecksum)
        );
    }
}
