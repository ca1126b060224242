//! The TCP engine: one [`Connection`] per 4-tuple, driven by segments,
//! timeouts and application calls, with explicit time.

pub mod config;
pub mod isn;
pub mod recv_buffer;
pub mod rtt;
pub mod send_buffer;
pub mod state;

pub use config::{Keepalive, TcpConfig};
pub use isn::IsnGenerator;
pub use recv_buffer::ReceiveBuffer;
pub use rtt::RttEstimator;
pub use send_buffer::SendBuffer;
pub use state::State;
