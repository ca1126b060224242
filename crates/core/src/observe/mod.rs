//! Observability: typed events for every protocol decision and `TcpInfo`
//! snapshots, after Linux's `struct tcp_info`.

pub mod events;
pub mod info;

pub use events::*;
pub use info::*;
