//! The core's error type: caller misuse, connection failures and resource
//! limits, each precise enough to map onto an errno in the C ABI.

use std::fmt;

/// Errors returned by the stack's API and reported by connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(
    feature = "serde",
    derive(serde::Serialize),
    serde(rename_all = "snake_case")
)]
#[non_exhaustive]
pub enum Error {
    // --- Connection failures (the peer or the path) ---
    /// The peer answered our SYN with RST (ECONNREFUSED).
    ConnectionRefused,
    /// The peer reset an established connection (ECONNRESET).
    ConnectionReset,
    /// Retransmissions or keepalives exhausted (ETIMEDOUT).
    TimedOut,
    /// An ICMP error reported the host or network unreachable (EHOSTUNREACH).
    HostUnreachable,
    /// ICMP reported the network unreachable (ENETUNREACH).
    NetworkUnreachable,
    /// ICMP port/protocol unreachable during connect (ECONNREFUSED per RFC 1122 §4.2.3.9).
    PortUnreachable,
    // --- Caller misuse ---
    /// The handle names no socket (EBADF).
    InvalidHandle,
    /// The operation needs a connected socket (ENOTCONN).
    NotConnected,
    /// The connection is already established or in progress (EISCONN / EALREADY).
    AlreadyConnected,
    /// Writing after shutdown of the write side or close (EPIPE).
    BrokenPipe,
    /// An argument is invalid (EINVAL).
    InvalidArgument,
    /// The address is in use (EADDRINUSE).
    AddrInUse,
    /// The address is not ours (EADDRNOTAVAIL).
    AddrNotAvailable,
    /// Operation would block (EAGAIN).
    WouldBlock,
    /// The operation is not valid for this socket type (EOPNOTSUPP).
    NotSupported,
    // --- Resource limits ---
    /// Connection limit reached (EMFILE-like).
    TooManyConnections,
    /// Buffer memory limit reached (ENOBUFS).
    NoBufferSpace,
    /// No ephemeral port free (EADDRNOTAVAIL).
    NoEphemeralPort,
}

impl Error {
    /// The errno this maps to in the C ABI.
    pub fn errno_name(self) -> &'static str {
        match self {
            Error::ConnectionRefused | Error::PortUnreachable => "ECONNREFUSED",
            Error::ConnectionReset => "ECONNRESET",
            Error::TimedOut => "ETIMEDOUT",
            Error::HostUnreachable => "EHOSTUNREACH",
            Error::NetworkUnreachable => "ENETUNREACH",
            Error::InvalidHandle => "EBADF",
            Error::NotConnected => "ENOTCONN",
            Error::AlreadyConnected => "EISCONN",
            Error::BrokenPipe => "EPIPE",
            Error::InvalidArgument => "EINVAL",
            Error::AddrInUse => "EADDRINUSE",
            Error::AddrNotAvailable | Error::NoEphemeralPort => "EADDRNOTAVAIL",
            Error::WouldBlock => "EAGAIN",
            Error::NotSupported => "EOPNOTSUPP",
            Error::TooManyConnections => "EMFILE",
            Error::NoBufferSpace => "ENOBUFS",
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = match self {
            Error::ConnectionRefused => "connection refused",
            Error::ConnectionReset => "connection reset by peer",
            Error::TimedOut => "connection timed out",
            Error::HostUnreachable => "host unreachable",
            Error::NetworkUnreachable => "network unreachable",
            Error::PortUnreachable => "port unreachable",
            Error::InvalidHandle => "invalid socket handle",
            Error::NotConnected => "socket is not connected",
            Error::AlreadyConnected => "socket is already connected",
            Error::BrokenPipe => "broken pipe: the write side is shut down",
            Error::InvalidArgument => "invalid argument",
            Error::AddrInUse => "address in use",
            Error::AddrNotAvailable => "address not available",
            Error::WouldBlock => "operation would block",
            Error::NotSupported => "operation not supported on this socket",
            Error::TooManyConnections => "connection limit reached",
            Error::NoBufferSpace => "buffer memory limit reached",
            Error::NoEphemeralPort => "no free ephemeral port",
        };
        write!(f, "{s} ({})", self.errno_name())
    }
}

impl std::error::Error for Error {}
