//! Daytona's wire formats.
//!
//! Every format is a zero-copy view (`Packet<T: AsRef<[u8]>>`) whose
//! `new_checked` validates lengths so that no accessor can panic afterwards,
//! plus a `Repr` that `parse`s a view into a small typed struct and `emit`s it
//! back. Nothing here allocates or panics on any input.
#![forbid(unsafe_code)]

pub mod arp;
pub mod checksum;
pub mod error;
pub mod ethernet;
pub mod icmpv4;
pub mod ipv4;
pub mod seq;
pub mod tcp;
pub mod udp;

pub use arp::{ArpPacket, ArpRepr};
pub use checksum::ChecksumMode;
pub use error::{Error, Result};
pub use ethernet::{EtherType, EthernetAddress, EthernetFrame, EthernetRepr};
pub use icmpv4::{DstUnreachable, Icmpv4Packet, Icmpv4Repr};
pub use ipv4::{Ecn, Ipv4Packet, Ipv4Repr, Protocol};
pub use seq::SeqNum;
pub use tcp::{Control, SackBlock, SackBlocks, TcpOptions, TcpPacket, TcpRepr, Timestamps};
pub use udp::{UdpPacket, UdpRepr};
