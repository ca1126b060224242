//! TCP header (RFC 9293 §3.1) and options (RFC 9293 §3.2, RFC 7323, RFC 2018).

use crate::checksum::{self, ChecksumMode};
use crate::error::{Error, Result};
use crate::SeqNum;
use std::net::Ipv4Addr;

mod field {
    use core::ops::Range;
    pub const SRC_PORT: Range<usize> = 0..2;
    pub const DST_PORT: Range<usize> = 2..4;
    pub const SEQ: Range<usize> = 4..8;
    pub const ACK: Range<usize> = 8..12;
    pub const DATA_OFF: usize = 12;
    pub const FLAGS: usize = 13;
    pub const WINDOW: Range<usize> = 14..16;
    pub const CHECKSUM: Range<usize> = 16..18;
    pub const URGENT: Range<usize> = 18..20;
    pub const HEADER_MIN: usize = 20;
}

/// TCP flag bits (RFC 9293 §3.1, RFC 3168 §6.1).
pub mod flags {
    pub const FIN: u8 = 0x01;
    pub const SYN: u8 = 0x02;
    pub const RST: u8 = 0x04;
    pub const PSH: u8 = 0x08;
    pub const ACK: u8 = 0x10;
    pub const URG: u8 = 0x20;
    pub const ECE: u8 = 0x40;
    pub const CWR: u8 = 0x80;
}

/// Option kinds (IANA TCP parameters).
mod kind {
    pub const EOL: u8 = 0;
    pub const NOP: u8 = 1;
    pub const MSS: u8 = 2;
    pub const WSCALE: u8 = 3;
    pub const SACK_PERMITTED: u8 = 4;
    pub const SACK: u8 = 5;
    pub const TIMESTAMPS: u8 = 8;
}

fn be16(b: &[u8]) -> u16 {
    u16::from_be_bytes([b[0], b[1]])
}

fn be32(b: &[u8]) -> u32 {
    u32::from_be_bytes([b[0], b[1], b[2], b[3]])
}

/// A zero-copy view of a TCP segment.
#[derive(Debug, Clone)]
pub struct TcpPacket<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> TcpPacket<T> {
    pub fn new_unchecked(buffer: T) -> Self {
        TcpPacket { buffer }
    }

    /// Validates that the fixed header and the data offset fit the buffer.
    pub fn new_checked(buffer: T) -> Result<Self> {
        let p = TcpPacket { buffer };
        let len = p.buffer.as_ref().len();
        if len < field::HEADER_MIN {
            return Err(Error::Truncated);
        }
        let hl = p.header_len();
        if hl < field::HEADER_MIN || hl > len {
            return Err(Error::BadHeaderLength);
        }
        Ok(p)
    }

    pub fn into_inner(self) -> T {
        self.buffer
    }

    pub fn src_port(&self) -> u16 {
        be16(&self.buffer.as_ref()[field::SRC_PORT])
    }
    pub fn dst_port(&self) -> u16 {
        be16(&self.buffer.as_ref()[field::DST_PORT])
    }
    pub fn seq_number(&self) -> SeqNum {
        SeqNum(be32(&self.buffer.as_ref()[field::SEQ]))
    }
    pub fn ack_number(&self) -> SeqNum {
        SeqNum(be32(&self.buffer.as_ref()[field::ACK]))
    }
    /// Header length in bytes (data offset × 4).
    pub fn header_len(&self) -> usize {
        usize::from(self.buffer.as_ref()[field::DATA_OFF] >> 4) * 4
    }
    pub fn flags(&self) -> u8 {
        self.buffer.as_ref()[field::FLAGS]
    }
    pub fn window_len(&self) -> u16 {
        be16(&self.buffer.as_ref()[field::WINDOW])
    }
    pub fn checksum(&self) -> u16 {
        be16(&self.buffer.as_ref()[field::CHECKSUM])
    }
    pub fn urgent_at(&self) -> u16 {
        be16(&self.buffer.as_ref()[field::URGENT])
    }
    pub fn options(&self) -> &[u8] {
        &self.buffer.as_ref()[field::HEADER_MIN..self.header_len()]
    }
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[self.header_len()..]
    }

    /// Verifies the checksum over the pseudo-header and the whole segment.
    pub fn verify_checksum(&self, src: &Ipv4Addr, dst: &Ipv4Addr) -> bool {
        let data = self.buffer.as_ref();
        let ph = checksum::pseudo_header_v4(src, dst, 6, data.len() as u32);
        checksum::combine(&[ph, checksum::sum(data)]) == 0xffff
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> TcpPacket<T> {
    fn buf(&mut self) -> &mut [u8] {
        self.buffer.as_mut()
    }
    pub fn set_src_port(&mut self, v: u16) {
        self.buf()[field::SRC_PORT].copy_from_slice(&v.to_be_bytes());
    }
    pub fn set_dst_port(&mut self, v: u16) {
        self.buf()[field::DST_PORT].copy_from_slice(&v.to_be_bytes());
    }
    pub fn set_seq_number(&mut self, v: SeqNum) {
        self.buf()[field::SEQ].copy_from_slice(&v.0.to_be_bytes());
    }
    pub fn set_ack_number(&mut self, v: SeqNum) {
        self.buf()[field::ACK].copy_from_slice(&v.0.to_be_bytes());
    }
    pub fn set_header_len(&mut self, len: usize) {
        self.buf()[field::DATA_OFF] = ((len / 4) as u8) << 4;
    }
    pub fn set_flags(&mut self, v: u8) {
        self.buf()[field::FLAGS] = v;
    }
    pub fn set_window_len(&mut self, v: u16) {
        self.buf()[field::WINDOW].copy_from_slice(&v.to_be_bytes());
    }
    pub fn set_checksum(&mut self, v: u16) {
        self.buf()[field::CHECKSUM].copy_from_slice(&v.to_be_bytes());
    }
    pub fn set_urgent_at(&mut self, v: u16) {
        self.buf()[field::URGENT].copy_from_slice(&v.to_be_bytes());
    }
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let hl = self.header_len();
        &mut self.buf()[hl..]
    }

    /// Computes and stores the checksum over the whole buffer (header and
    /// payload already written), or leaves it zero for offload.
    pub fn fill_checksum(&mut self, src: &Ipv4Addr, dst: &Ipv4Addr, mode: ChecksumMode) {
        self.set_checksum(0);
        if !mode.enabled() {
            return;
        }
        let data = self.buffer.as_ref();
        let ph = checksum::pseudo_header_v4(src, dst, 6, data.len() as u32);
        let sum = checksum::combine(&[ph, checksum::sum(data)]);
        self.set_checksum(!sum);
    }
}

/// The one control bit a segment may carry besides ACK/PSH/ECE/CWR.
/// SYN+FIN, SYN+RST and FIN+RST are rejected by the parser, so they cannot be
/// represented.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Control {
    #[default]
    None,
    Syn,
    Fin,
    Rst,
}

impl Control {
    /// Sequence space the control bit occupies (SYN and FIN take one).
    pub fn seq_len(self) -> u32 {
        match self {
            Control::Syn | Control::Fin => 1,
            Control::None | Control::Rst => 0,
        }
    }
}

/// One SACK block (RFC 2018 §3): `left` is the first sequence number of the
/// block, `right` the sequence number immediately after its last byte.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SackBlock {
    pub left: SeqNum,
    pub right: SeqNum,
}

/// RFC 7323 §3 timestamps option.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timestamps {
    pub tsval: u32,
    pub tsecr: u32,
}

/// Up to four SACK blocks (RFC 2018 §3: at most 4 fit, 3 with timestamps).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SackBlocks {
    blocks: [Option<SackBlock>; 4],
}

impl SackBlocks {
    pub const MAX: usize = 4;

    /// Appends a block; returns false (and drops it) when already full.
    pub fn push(&mut self, block: SackBlock) -> bool {
        for slot in self.blocks.iter_mut() {
            if slot.is_none() {
                *slot = Some(block);
                return true;
            }
        }
        false
    }

    pub fn len(&self) -> usize {
        self.blocks.iter().filter(|b| b.is_some()).count()
    }

    pub fn is_empty(&self) -> bool {
        self.blocks[0].is_none()
    }

    pub fn iter(&self) -> impl Iterator<Item = SackBlock> + '_ {
        self.blocks.iter().map_while(|b| *b)
    }

    pub fn truncate(&mut self, n: usize) {
        for slot in self.blocks.iter_mut().skip(n) {
            *slot = None;
        }
    }
}

/// The TCP options Daytona understands. Unknown options are skipped by the
/// parser; malformed option lengths make the whole segment invalid.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TcpOptions {
    /// RFC 9293 §3.7.1 maximum segment size (SYN only).
    pub mss: Option<u16>,
    /// RFC 7323 §2 window scale shift count (SYN only). Values above 14 are
    /// kept as received; the engine clamps them (RFC 7323 §2.3).
    pub window_scale: Option<u8>,
    /// RFC 2018 §2 SACK-permitted (SYN only).
    pub sack_permitted: bool,
    /// RFC 2018 §3 SACK blocks.
    pub sack_blocks: SackBlocks,
    /// RFC 7323 §3 timestamps.
    pub timestamps: Option<Timestamps>,
}

/// A parsed TCP segment, high-level.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TcpRepr<'a> {
    pub src_port: u16,
    pub dst_port: u16,
    pub seq: SeqNum,
    /// Present exactly when the ACK bit is set.
    pub ack: Option<SeqNum>,
    pub control: Control,
    pub psh: bool,
    /// RFC 3168 §6.1 ECN-Echo.
    pub ece: bool,
    /// RFC 3168 §6.1 Congestion Window Reduced.
    pub cwr: bool,
    /// The raw (unscaled) window field.
    pub window: u16,
    /// Urgent pointer when URG is set. Daytona does not deliver urgent data
    /// out of band (RFC 6093 recommends against new uses); it is kept in line.
    pub urgent: Option<u16>,
    pub options: TcpOptions,
    pub payload: &'a [u8],
}

impl TcpOptions {
    /// Parses the options area (RFC 9293 §3.2): EOL ends the list, NOP is
    /// skipped, unknown kinds are skipped by their length, and a length
    /// below 2, overrunning the area or wrong for a known kind is an error.
    pub fn parse(mut data: &[u8]) -> Result<TcpOptions> {
        let mut o = TcpOptions::default();
        while let Some(&kind) = data.first() {
            match kind {
                kind::EOL => break,
                kind::NOP => {
                    data = &data[1..];
                    continue;
                }
                _ => {}
            }
            let len = usize::from(*data.get(1).ok_or(Error::BadOption)?);
            if len < 2 || len > data.len() {
                return Err(Error::BadOption);
            }
            let body = &data[2..len];
            match kind {
                kind::MSS => {
                    if len != 4 {
                        return Err(Error::BadOption);
                    }
                    o.mss = Some(be16(body));
                }
                kind::WSCALE => {
                    if len != 3 {
                        return Err(Error::BadOption);
                    }
                    o.window_scale = Some(body[0]);
                }
                kind::SACK_PERMITTED => {
                    if len != 2 {
                        return Err(Error::BadOption);
                    }
                    o.sack_permitted = true;
                }
                kind::SACK => {
                    // RFC 2018 §3: 2 + 8n bytes, n = 1..=4.
                    if (len - 2) % 8 != 0 || !(10..=34).contains(&len) {
                        return Err(Error::BadOption);
                    }
                    for b in body.chunks_exact(8) {
                        o.sack_blocks.push(SackBlock {
                            left: SeqNum(be32(&b[0..4])),
                            right: SeqNum(be32(&b[4..8])),
                        });
                    }
                }
                kind::TIMESTAMPS => {
                    if len != 10 {
                        return Err(Error::BadOption);
                    }
                    o.timestamps = Some(Timestamps {
                        tsval: be32(&body[0..4]),
                        tsecr: be32(&body[4..8]),
                    });
                }
                _ => {}
            }
            data = &data[len..];
        }
        Ok(o)
    }

    /// Bytes the options take on the wire, padded to a multiple of 4.
    pub fn wire_len(&self) -> usize {
        let mut n = 0;
        if self.mss.is_some() {
            n += 4;
        }
        // SACK-permitted and timestamps share 12 bytes as Linux lays them
        // out (SACKOK,TS or NOP,NOP,TS); either alone pads to 4 or 12.
        match (self.sack_permitted, self.timestamps.is_some()) {
            (_, true) => n += 12,
            (true, false) => n += 4,
            (false, false) => {}
        }
        if self.window_scale.is_some() {
            n += 4;
        }
        if !self.sack_blocks.is_empty() {
            n += 4 + 8 * self.sack_blocks.len();
        }
        n
    }

    /// Writes the options in Linux's order; `out` must be `wire_len()` long.
    fn emit(&self, out: &mut [u8]) {
        let mut i = 0;
        let mut put = |bytes: &[u8], i: &mut usize| {
            out[*i..*i + bytes.len()].copy_from_slice(bytes);
            *i += bytes.len();
        };
        if let Some(mss) = self.mss {
            let m = mss.to_be_bytes();
            put(&[kind::MSS, 4, m[0], m[1]], &mut i);
        }
        match (self.sack_permitted, self.timestamps) {
            (sack, Some(ts)) => {
                if sack {
                    put(&[kind::SACK_PERMITTED, 2], &mut i);
                } else {
                    put(&[kind::NOP, kind::NOP], &mut i);
                }
                put(&[kind::TIMESTAMPS, 10], &mut i);
                put(&ts.tsval.to_be_bytes(), &mut i);
                put(&ts.tsecr.to_be_bytes(), &mut i);
            }
            (true, None) => put(&[kind::NOP, kind::NOP, kind::SACK_PERMITTED, 2], &mut i),
            (false, None) => {}
        }
        if let Some(shift) = self.window_scale {
            put(&[kind::NOP, kind::WSCALE, 3, shift], &mut i);
        }
        if !self.sack_blocks.is_empty() {
            let n = self.sack_blocks.len() as u8;
            put(&[kind::NOP, kind::NOP, kind::SACK, 2 + 8 * n], &mut i);
            for b in self.sack_blocks.iter() {
                put(&b.left.0.to_be_bytes(), &mut i);
                put(&b.right.0.to_be_bytes(), &mut i);
            }
        }
    }
}

impl TcpRepr<'static> {
    /// A bare RST: <SEQ=seq><CTL=RST>, or <SEQ=seq><ACK=ack><CTL=RST,ACK>.
    pub fn rst(src_port: u16, dst_port: u16, seq: SeqNum, ack: Option<SeqNum>) -> Self {
        TcpRepr {
            src_port,
            dst_port,
            seq,
            ack,
            control: Control::Rst,
            psh: false,
            ece: false,
            cwr: false,
            window: 0,
            urgent: None,
            options: TcpOptions::default(),
            payload: &[],
        }
    }
}

impl<'a> TcpRepr<'a> {
    /// Sequence space the segment occupies: payload plus SYN/FIN.
    pub fn seq_len(&self) -> u32 {
        self.payload.len() as u32 + self.control.seq_len()
    }

    /// Parses a checked view. `src`/`dst` are the IP addresses for the
    /// pseudo-header checksum.
    pub fn parse<T: AsRef<[u8]> + ?Sized>(
        packet: &TcpPacket<&'a T>,
        src: &Ipv4Addr,
        dst: &Ipv4Addr,
        mode: ChecksumMode,
    ) -> Result<TcpRepr<'a>> {
        let buffer: &'a T = packet.buffer;
        let data: &'a [u8] = buffer.as_ref();
        let packet = TcpPacket::new_checked(data)?;
        if mode.enabled() && !packet.verify_checksum(src, dst) {
            return Err(Error::BadChecksum);
        }
        let f = packet.flags();
        let control = match (
            f & flags::SYN != 0,
            f & flags::FIN != 0,
            f & flags::RST != 0,
        ) {
            (false, false, false) => Control::None,
            (true, false, false) => Control::Syn,
            (false, true, false) => Control::Fin,
            (false, false, true) => Control::Rst,
            // RFC 9293 does not define these combinations; Linux drops them.
            _ => return Err(Error::BadFlags),
        };
        // Ports 0 are reserved and never valid on the wire.
        if packet.src_port() == 0 || packet.dst_port() == 0 {
            return Err(Error::Unsupported);
        }
        let options = TcpOptions::parse(packet.options())?;
        let hl = packet.header_len();
        Ok(TcpRepr {
            src_port: packet.src_port(),
            dst_port: packet.dst_port(),
            seq: packet.seq_number(),
            ack: (f & flags::ACK != 0).then(|| packet.ack_number()),
            control,
            psh: f & flags::PSH != 0,
            ece: f & flags::ECE != 0,
            cwr: f & flags::CWR != 0,
            window: packet.window_len(),
            urgent: (f & flags::URG != 0).then(|| packet.urgent_at()),
            options,
            payload: &data[hl..],
        })
    }

    /// Header length including padded options.
    pub fn header_len(&self) -> usize {
        field::HEADER_MIN + self.options.wire_len()
    }

    /// Header plus payload.
    pub fn buffer_len(&self) -> usize {
        self.header_len() + self.payload.len()
    }

    fn flag_bits(&self) -> u8 {
        let mut f = match self.control {
            Control::None => 0,
            Control::Syn => flags::SYN,
            Control::Fin => flags::FIN,
            Control::Rst => flags::RST,
        };
        if self.ack.is_some() {
            f |= flags::ACK;
        }
        if self.psh {
            f |= flags::PSH;
        }
        if self.ece {
            f |= flags::ECE;
        }
        if self.cwr {
            f |= flags::CWR;
        }
        if self.urgent.is_some() {
            f |= flags::URG;
        }
        f
    }

    /// Writes the header only (not the payload, not the checksum). The
    /// packet buffer must be at least `header_len()` long; call
    /// [`TcpPacket::fill_checksum`] once the payload is in place.
    pub fn emit_header<T: AsRef<[u8]> + AsMut<[u8]>>(&self, packet: &mut TcpPacket<T>) {
        let hl = self.header_len();
        packet.set_src_port(self.src_port);
        packet.set_dst_port(self.dst_port);
        packet.set_seq_number(self.seq);
        packet.set_ack_number(self.ack.unwrap_or(SeqNum(0)));
        packet.set_header_len(hl);
        packet.set_flags(self.flag_bits());
        packet.set_window_len(self.window);
        packet.set_checksum(0);
        packet.set_urgent_at(self.urgent.unwrap_or(0));
        self.options.emit(&mut packet.buf()[field::HEADER_MIN..hl]);
    }

    /// Writes header and payload and fills the checksum. The packet buffer
    /// must be exactly `buffer_len()` long.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(
        &self,
        packet: &mut TcpPacket<T>,
        src: &Ipv4Addr,
        dst: &Ipv4Addr,
        mode: ChecksumMode,
    ) {
        self.emit_header(packet);
        let hl = self.header_len();
        packet.buf()[hl..hl + self.payload.len()].copy_from_slice(self.payload);
        packet.fill_checksum(src, dst, mode);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const SRC: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 1);
    const DST: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 2);

    /// A SYN as Linux sends it: MSS 1460, SACKOK, TS, NOP, WS 7.
    const LINUX_SYN: [u8; 40] = [
        0xa4, 0x10, 0x00, 0x50, // ports 42000 -> 80
        0x12, 0x34, 0x56, 0x78, // seq
        0x00, 0x00, 0x00, 0x00, // ack
        0xa0, 0x02, 0xfa, 0xf0, // doff 10, SYN, window 64240
        0x00, 0x00, 0x00, 0x00, // checksum (filled in test), urgent
        0x02, 0x04, 0x05, 0xb4, 0x04, 0x02, 0x08, 0x0a, 0x00, 0x01, 0x02, 0x03, 0x00, 0x00, 0x00,
        0x00, 0x01, 0x03, 0x03, 0x07,
    ];

    fn with_checksum(mut bytes: Vec<u8>) -> Vec<u8> {
        TcpPacket::new_unchecked(&mut bytes[..]).fill_checksum(&SRC, &DST, ChecksumMode::Compute);
        bytes
    }

    #[test]
    fn parses_a_linux_syn() {
        let bytes = with_checksum(LINUX_SYN.to_vec());
        let p = TcpPacket::new_checked(&bytes[..]).unwrap();
        let r = TcpRepr::parse(&p, &SRC, &DST, ChecksumMode::Verify).unwrap();
        assert_eq!((r.src_port, r.dst_port), (42000, 80));
        assert_eq!(r.control, Control::Syn);
        assert_eq!(r.ack, None);
        assert_eq!(r.window, 64240);
        assert_eq!(r.options.mss, Some(1460));
        assert!(r.options.sack_permitted);
        assert_eq!(
            r.options.timestamps,
            Some(Timestamps {
                tsval: 0x00010203,
                tsecr: 0
            })
        );
        assert_eq!(r.options.window_scale, Some(7));
        // Emitting gives back the same bytes (Linux's option layout).
        let mut out = vec![0u8; r.buffer_len()];
        r.emit(
            &mut TcpPacket::new_unchecked(&mut out[..]),
            &SRC,
            &DST,
            ChecksumMode::Compute,
        );
        assert_eq!(out, bytes);
    }

    #[test]
    fn rejects_bad_checksum_flags_and_options() {
        let mut bytes = with_checksum(LINUX_SYN.to_vec());
        bytes[30] ^= 1;
        let p = TcpPacket::new_checked(&bytes[..]).unwrap();
        assert_eq!(
            TcpRepr::parse(&p, &SRC, &DST, ChecksumMode::Verify),
            Err(Error::BadChecksum)
        );
        assert!(TcpRepr::parse(&p, &SRC, &DST, ChecksumMode::Ignore).is_ok());

        let mut synfin = LINUX_SYN.to_vec();
        synfin[13] = flags::SYN | flags::FIN;
        let synfin = with_checksum(synfin);
        let p = TcpPacket::new_checked(&synfin[..]).unwrap();
        assert_eq!(
            TcpRepr::parse(&p, &SRC, &DST, ChecksumMode::Verify),
            Err(Error::BadFlags)
        );

        // MSS option with length 3.
        let mut bad = LINUX_SYN.to_vec();
        bad[21] = 3;
        let bad = with_checksum(bad);
        let p = TcpPacket::new_checked(&bad[..]).unwrap();
        assert_eq!(
            TcpRepr::parse(&p, &SRC, &DST, ChecksumMode::Verify),
            Err(Error::BadOption)
        );

        // Data offset beyond the buffer.
        let mut short = LINUX_SYN.to_vec();
        short[12] = 0xf0;
        assert_eq!(
            TcpPacket::new_checked(&short[..]).err(),
            Some(Error::BadHeaderLength)
        );
        assert_eq!(
            TcpPacket::new_checked(&short[..10]).err(),
            Some(Error::Truncated)
        );
    }

    #[test]
    fn unknown_options_are_skipped_and_eol_ends_the_list() {
        let o = TcpOptions::parse(&[30, 4, 0xaa, 0xbb, 2, 4, 0x05, 0x00, 0, 99]).unwrap();
        assert_eq!(o.mss, Some(0x0500));
        assert_eq!(TcpOptions::parse(&[30]), Err(Error::BadOption));
        assert_eq!(TcpOptions::parse(&[30, 1]), Err(Error::BadOption));
        assert_eq!(TcpOptions::parse(&[30, 9, 0]), Err(Error::BadOption));
        assert_eq!(
            TcpOptions::parse(&[5, 9, 0, 0, 0, 0, 0, 0, 0]),
            Err(Error::BadOption)
        );
    }

    fn arb_options() -> impl Strategy<Value = TcpOptions> {
        (
            proptest::option::of(any::<u16>()),
            proptest::option::of(0u8..15),
            any::<bool>(),
            proptest::option::of((any::<u32>(), any::<u32>())),
            proptest::collection::vec((any::<u32>(), any::<u32>()), 0..4),
        )
            .prop_map(|(mss, ws, sackok, ts, blocks)| {
                let mut o = TcpOptions {
                    mss,
                    window_scale: ws,
                    sack_permitted: sackok,
                    timestamps: ts.map(|(tsval, tsecr)| Timestamps { tsval, tsecr }),
                    ..TcpOptions::default()
                };
                // Header space: 40 bytes of options at most.
                let room = (40 - o.wire_len()).saturating_sub(4) / 8;
                for (l, r) in blocks.into_iter().take(room) {
                    o.sack_blocks.push(SackBlock {
                        left: SeqNum(l),
                        right: SeqNum(r),
                    });
                }
                o
            })
    }

    proptest! {
        #[test]
        fn parse_emit_round_trip(
            src_port in 1u16.., dst_port in 1u16.., seq in any::<u32>(), ack in proptest::option::of(any::<u32>()),
            control in 0u8..4, psh in any::<bool>(), ece in any::<bool>(), cwr in any::<bool>(),
            window in any::<u16>(), urgent in proptest::option::of(any::<u16>()),
            options in arb_options(), payload in proptest::collection::vec(any::<u8>(), 0..200),
        ) {
            let repr = TcpRepr {
                src_port, dst_port, seq: SeqNum(seq), ack: ack.map(SeqNum),
                control: [Control::None, Control::Syn, Control::Fin, Control::Rst][control as usize],
                psh, ece, cwr, window, urgent, options, payload: &payload,
            };
            let mut buf = vec![0u8; repr.buffer_len()];
            repr.emit(&mut TcpPacket::new_unchecked(&mut buf[..]), &SRC, &DST, ChecksumMode::Compute);
            let p = TcpPacket::new_checked(&buf[..]).unwrap();
            let parsed = TcpRepr::parse(&p, &SRC, &DST, ChecksumMode::Verify).unwrap();
            prop_assert_eq!(parsed, repr);
        }

        #[test]
        fn parse_never_panics(data in proptest::collection::vec(any::<u8>(), 0..120)) {
            if let Ok(p) = TcpPacket::new_checked(&data[..]) {
                let _ = TcpRepr::parse(&p, &SRC, &DST, ChecksumMode::Ignore);
                let _ = TcpRepr::parse(&p, &SRC, &DST, ChecksumMode::Verify);
            }
        }
    }
}
