//! ICMPv4 (RFC 792), with fragmentation-needed's next-hop MTU (RFC 1191 §4)
//! and the quoted header of error messages parsed.

use crate::checksum;
use crate::error::{Error, Result};
use crate::ipv4::{Ipv4Packet, Ipv4Repr};

pub const HEADER_LEN: usize = 8;

/// ICMP message types we name.
pub mod msg_type {
    pub const ECHO_REPLY: u8 = 0;
    pub const DST_UNREACHABLE: u8 = 3;
    pub const ECHO_REQUEST: u8 = 8;
    pub const TIME_EXCEEDED: u8 = 11;
    pub const PARAM_PROBLEM: u8 = 12;
}

/// Destination-unreachable codes (RFC 792, RFC 1122 §3.2.2.1, RFC 1812).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DstUnreachable {
    NetUnreachable,
    HostUnreachable,
    ProtoUnreachable,
    PortUnreachable,
    FragRequired,
    SrcRouteFailed,
    DstNetUnknown,
    DstHostUnknown,
    AdminProhibited,
    Other(u8),
}

impl From<u8> for DstUnreachable {
    fn from(c: u8) -> Self {
        match c {
            0 => Self::NetUnreachable,
            1 => Self::HostUnreachable,
            2 => Self::ProtoUnreachable,
            3 => Self::PortUnreachable,
            4 => Self::FragRequired,
            5 => Self::SrcRouteFailed,
            6 => Self::DstNetUnknown,
            7 => Self::DstHostUnknown,
            13 => Self::AdminProhibited,
            other => Self::Other(other),
        }
    }
}

impl From<DstUnreachable> for u8 {
    fn from(c: DstUnreachable) -> u8 {
        match c {
            DstUnreachable::NetUnreachable => 0,
            DstUnreachable::HostUnreachable => 1,
            DstUnreachable::ProtoUnreachable => 2,
            DstUnreachable::PortUnreachable => 3,
            DstUnreachable::FragRequired => 4,
            DstUnreachable::SrcRouteFailed => 5,
            DstUnreachable::DstNetUnknown => 6,
            DstUnreachable::DstHostUnknown => 7,
            DstUnreachable::AdminProhibited => 13,
            DstUnreachable::Other(v) => v,
        }
    }
}

/// A zero-copy view of an ICMPv4 message.
#[derive(Debug, Clone)]
pub struct Icmpv4Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Icmpv4Packet<T> {
    pub fn new_checked(buffer: T) -> Result<Self> {
        if buffer.as_ref().len() < HEADER_LEN {
            return Err(Error::Truncated);
        }
        Ok(Icmpv4Packet { buffer })
    }
    fn b(&self) -> &[u8] {
        self.buffer.as_ref()
    }
    pub fn msg_type(&self) -> u8 {
        self.b()[0]
    }
    pub fn msg_code(&self) -> u8 {
        self.b()[1]
    }
    pub fn checksum(&self) -> u16 {
        u16::from_be_bytes([self.b()[2], self.b()[3]])
    }
    /// The four bytes after the checksum ("rest of header").
    pub fn rest(&self) -> [u8; 4] {
        let b = self.b();
        [b[4], b[5], b[6], b[7]]
    }
    pub fn data(&self) -> &[u8] {
        &self.b()[HEADER_LEN..]
    }
    pub fn verify_checksum(&self) -> bool {
        checksum::sum(self.b()) == 0xffff
    }
}

/// A parsed ICMPv4 message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Icmpv4Repr<'a> {
    EchoRequest {
        ident: u16,
        seq_no: u16,
        data: &'a [u8],
    },
    EchoReply {
        ident: u16,
        seq_no: u16,
        data: &'a [u8],
    },
    DstUnreachable {
        code: DstUnreachable,
        /// RFC 1191 §4: next-hop MTU for `FragRequired` (0 from old routers).
        next_hop_mtu: u16,
        /// The quoted IP header.
        header: Ipv4Repr,
        /// Bytes quoted after the IP header (at least 8 per RFC 792).
        data: &'a [u8],
    },
    TimeExceeded {
        code: u8,
        header: Ipv4Repr,
        data: &'a [u8],
    },
    /// Another type we do not interpret.
    Other { msg_type: u8, code: u8 },
}

impl<'a> Icmpv4Repr<'a> {
    pub fn parse<T: AsRef<[u8]> + ?Sized>(
        packet: &Icmpv4Packet<&'a T>,
        verify: bool,
    ) -> Result<Icmpv4Repr<'a>> {
        let buffer: &'a T = packet.buffer;
        let bytes: &'a [u8] = buffer.as_ref();
        let p = Icmpv4Packet::new_checked(bytes)?;
        if verify && !p.verify_checksum() {
            return Err(Error::BadChecksum);
        }
        let rest = p.rest();
        let data: &'a [u8] = &bytes[HEADER_LEN..];
        let quoted = || -> Result<(Ipv4Repr, &'a [u8])> {
            let ip = Ipv4Packet::new_quoted(data)?;
            let header = Ipv4Repr::parse_quoted(&ip)?;
            let hl = ip.header_len();
            // RFC 792: at least 64 bits of the original datagram's data.
            if data.len() < hl + 8 {
                return Err(Error::Truncated);
            }
            Ok((header, &data[hl..]))
        };
        Ok(match p.msg_type() {
            msg_type::ECHO_REQUEST | msg_type::ECHO_REPLY => {
                let ident = u16::from_be_bytes([rest[0], rest[1]]);
                let seq_no = u16::from_be_bytes([rest[2], rest[3]]);
                if p.msg_type() == msg_type::ECHO_REQUEST {
                    Icmpv4Repr::EchoRequest {
                        ident,
                        seq_no,
                        data,
                    }
                } else {
                    Icmpv4Repr::EchoReply {
                        ident,
                        seq_no,
                        data,
                    }
                }
            }
            msg_type::DST_UNREACHABLE => {
                let (header, data) = quoted()?;
                Icmpv4Repr::DstUnreachable {
                    code: DstUnreachable::from(p.msg_code()),
                    next_hop_mtu: u16::from_be_bytes([rest[2], rest[3]]),
                    header,
                    data,
                }
            }
            msg_type::TIME_EXCEEDED => {
                let (header, data) = quoted()?;
                Icmpv4Repr::TimeExceeded {
                    code: p.msg_code(),
                    header,
                    data,
                }
            }
            t => Icmpv4Repr::Other {
                msg_type: t,
                code: p.msg_code(),
            },
        })
    }

    /// Bytes this message needs when emitted. Error messages quote
    /// `header` (20 bytes, no options) followed by `data`.
    pub fn buffer_len(&self) -> usize {
        HEADER_LEN
            + match self {
                Icmpv4Repr::EchoRequest { data, .. } | Icmpv4Repr::EchoReply { data, .. } => {
                    data.len()
                }
                Icmpv4Repr::DstUnreachable { data, .. } | Icmpv4Repr::TimeExceeded { data, .. } => {
                    Ipv4Repr::HEADER_LEN + data.len()
                }
                Icmpv4Repr::Other { .. } => 0,
            }
    }

    /// Writes the message with its checksum into `buf[..buffer_len()]`.
    pub fn emit(&self, buf: &mut [u8]) -> Result<()> {
        let len = self.buffer_len();
        let b = buf.get_mut(..len).ok_or(Error::Truncated)?;
        b.fill(0);
        match *self {
            Icmpv4Repr::EchoRequest {
                ident,
                seq_no,
                data,
            }
            | Icmpv4Repr::EchoReply {
                ident,
                seq_no,
                data,
            } => {
                b[0] = if matches!(self, Icmpv4Repr::EchoRequest { .. }) {
                    msg_type::ECHO_REQUEST
                } else {
                    msg_type::ECHO_REPLY
                };
                b[4..6].copy_from_slice(&ident.to_be_bytes());
                b[6..8].copy_from_slice(&seq_no.to_be_bytes());
                b[HEADER_LEN..].copy_from_slice(data);
            }
            Icmpv4Repr::DstUnreachable {
                code,
                next_hop_mtu,
                header,
                data,
            } => {
                b[0] = msg_type::DST_UNREACHABLE;
                b[1] = u8::from(code);
                b[6..8].copy_from_slice(&next_hop_mtu.to_be_bytes());
                Self::emit_quote(&mut b[HEADER_LEN..], &header, data)?;
            }
            Icmpv4Repr::TimeExceeded { code, header, data } => {
                b[0] = msg_type::TIME_EXCEEDED;
                b[1] = code;
                Self::emit_quote(&mut b[HEADER_LEN..], &header, data)?;
            }
            Icmpv4Repr::Other { msg_type, code } => {
                b[0] = msg_type;
                b[1] = code;
            }
        }
        let c = checksum::checksum(b);
        b[2..4].copy_from_slice(&c.to_be_bytes());
        Ok(())
    }

    fn emit_quote(b: &mut [u8], header: &Ipv4Repr, data: &[u8]) -> Result<()> {
        // The quoted header keeps its original total length.
        let mut h = *header;
        h.payload_len = header.payload_len;
        let total =
            u16::try_from(Ipv4Repr::HEADER_LEN + h.payload_len).map_err(|_| Error::BadLength)?;
        let mut tmp = *header;
        tmp.payload_len = 0;
        tmp.emit(b)?;
        b[2..4].copy_from_slice(&total.to_be_bytes());
        let mut ip = Ipv4Packet::new_unchecked(&mut b[..Ipv4Repr::HEADER_LEN]);
        ip.fill_checksum();
        b[Ipv4Repr::HEADER_LEN..Ipv4Repr::HEADER_LEN + data.len()].copy_from_slice(data);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ipv4::{Ecn, Protocol};
    use proptest::prelude::*;
    use std::net::Ipv4Addr;

    fn quoted_header() -> Ipv4Repr {
        Ipv4Repr {
            src_addr: Ipv4Addr::new(198, 18, 0, 1),
            dst_addr: Ipv4Addr::new(198, 18, 0, 2),
            protocol: Protocol::Tcp,
            payload_len: 1460 + 20,
            hop_limit: 64,
            dscp: 0,
            ecn: Ecn::NotEct,
            ident: 0,
            dont_frag: true,
        }
    }

    #[test]
    fn frag_needed_quotes_a_tcp_header_and_carries_the_mtu() {
        let tcp_start = [0x9c, 0x40, 0x00, 0x50, 0x00, 0x00, 0x27, 0x11];
        let r = Icmpv4Repr::DstUnreachable {
            code: DstUnreachable::FragRequired,
            next_hop_mtu: 1280,
            header: quoted_header(),
            data: &tcp_start,
        };
        let mut b = vec![0u8; r.buffer_len()];
        r.emit(&mut b).unwrap();
        let p = Icmpv4Packet::new_checked(&b[..]).unwrap();
        let parsed = Icmpv4Repr::parse(&p, true).unwrap();
        assert_eq!(parsed, r);
        // A message quoting fewer than 8 data bytes is rejected.
        let short = &b[..b.len() - 1];
        let mut short = short.to_vec();
        let c = {
            short[2] = 0;
            short[3] = 0;
            checksum::checksum(&short)
        };
        short[2..4].copy_from_slice(&c.to_be_bytes());
        let p = Icmpv4Packet::new_checked(&short[..]).unwrap();
        assert_eq!(Icmpv4Repr::parse(&p, true), Err(Error::Truncated));
    }

    proptest! {
        #[test]
        fn echo_round_trip(ident in any::<u16>(), seq_no in any::<u16>(), data in proptest::collection::vec(any::<u8>(), 0..100), req in any::<bool>()) {
            let r = if req { Icmpv4Repr::EchoRequest { ident, seq_no, data: &data } } else { Icmpv4Repr::EchoReply { ident, seq_no, data: &data } };
            let mut b = vec![0u8; r.buffer_len()];
            r.emit(&mut b).unwrap();
            prop_assert_eq!(Icmpv4Repr::parse(&Icmpv4Packet::new_checked(&b[..]).unwrap(), true).unwrap(), r);
        }

        #[test]
        fn never_panics(data in proptest::collection::vec(any::<u8>(), 0..80)) {
            if let Ok(p) = Icmpv4Packet::new_checked(&data[..]) {
                let _ = Icmpv4Repr::parse(&p, false);
                let _ = Icmpv4Repr::parse(&p, true);
            }
        }
    }
}
