//! Why a packet was rejected. Each variant is a drop counter in the stack.

use core::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Error {
    /// The buffer is shorter than the header or the length fields claim.
    Truncated,
    /// IP version is not 4.
    BadVersion,
    /// A header-length field is below the minimum or beyond the packet.
    BadHeaderLength,
    /// A total-length field disagrees with the buffer.
    BadLength,
    /// The checksum does not verify.
    BadChecksum,
    /// A TCP option has a malformed length.
    BadOption,
    /// An impossible combination of TCP flags (SYN+FIN, SYN+RST, FIN+RST).
    BadFlags,
    /// A well-formed packet of a kind we do not handle.
    Unsupported,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Error::Truncated => "truncated packet",
            Error::BadVersion => "bad IP version",
            Error::BadHeaderLength => "bad header length",
            Error::BadLength => "bad length field",
            Error::BadChecksum => "bad checksum",
            Error::BadOption => "malformed option",
            Error::BadFlags => "invalid flag combination",
            Error::Unsupported => "unsupported packet",
        })
    }
}

impl std::error::Error for Error {}

pub type Result<T> = core::result::Result<T, Error>;
