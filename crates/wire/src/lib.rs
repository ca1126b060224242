//! Daytona's wire formats.
//!
//! Every format is a zero-copy view (`Packet<T: AsRef<[u8]>>`) whose
//! `new_checked` validates lengths so that no accessor can panic afterwards,
//! plus a `Repr` that `parse`s a view into a small typed struct and `emit`s it
//! back. Nothing here allocates or panics on any input.
#![forbid(unsafe_code)]

pub mod checksum;
pub mod error;
pub mod seq;
pub mod tcp;

pub use checksum::ChecksumMode;
pub use error::{Error, Result};
pub use seq::SeqNum;
pub use tcp::{Control, SackBlock, SackBlocks, TcpOptions, TcpPacket, TcpRepr, Timestamps};
