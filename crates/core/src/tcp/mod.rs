//! The TCP engine: one [`Connection`] per 4-tuple, driven by segments,
//! timeouts and application calls, with explicit time.

pub mod assembler;
mod autotune;
pub mod config;
pub(crate) mod connection;
mod input;
pub mod isn;
mod loss;
mod output;
mod prr;
mod rack;
mod rate;
mod recovery;
pub mod recv_buffer;
pub mod rtt;
pub mod scoreboard;
pub mod send_buffer;
pub mod state;
mod timers;

pub use config::{EcnMode, Keepalive, TcpConfig};
pub use connection::{ConnParams, Connection, CookieOptions, IcmpError, Shutdown};
pub use isn::IsnGenerator;
pub use recovery::DupAcks;
pub use recv_buffer::ReceiveBuffer;
pub use rtt::RttEstimator;
pub use send_buffer::SendBuffer;
pub use state::State;
pub use timers::TimerKind;

#[cfg(test)]
mod tests;
