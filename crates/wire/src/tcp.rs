//! TCP header (RFC 9293 §3.1) and options (RFC 9293 §3.2, RFC 7323, RFC 2018).
//!
//! SKELETON: the types below are the agreed interface; parse/emit are being
//! implemented (see the wire helper's task).

use crate::SeqNum;

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
    pub fn len(self) -> u32 {
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

impl TcpRepr<'_> {
    /// Sequence space the segment occupies: payload plus SYN/FIN.
    pub fn seq_len(&self) -> u32 {
        self.payload.len() as u32 + self.control.len()
    }
}
