//! The TCP engine: one [`Connection`] per 4-tuple, driven by segments,
//! timeouts and application calls, with explicit time.

pub mod assembler;
mod autotune;
pub mod config;
pub(crate) mod connection;
mod input;
pub mod isn;
mod output;
mod recovery;
pub mod recv_buffer;
pub mod rtt;
pub mod send_buffer;
pub mod state;
mod timers;

pub use config::{Keepalive, TcpConfig};
pub use connection::{ConnParams, Connection, CookieOptions, IcmpError, Shutdown};
pub use isn::IsnGenerator;
pub use recovery::{AckVerdict, Recovery};
pub use recv_buffer::ReceiveBuffer;
pub use rtt::RttEstimator;
pub use send_buffer::SendBuffer;
pub use state::State;
pub use timers::TimerKind;

#[cfg(test)]
mod tests;
