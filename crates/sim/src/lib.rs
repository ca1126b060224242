//! A deterministic discrete-event network simulator: real Daytona stacks
//! exchanging frames over simulated links, on a virtual clock, with seeded
//! impairments. The same seed and scenario always give the same run.
//!
//! - [`Sim`]: hosts (stacks), routers and one-way links, each link a
//!   [`daytona_link::FaultModel`] (rate or mahimahi trace, drop-tail or
//!   CoDel queue, loss, reordering, duplication, corruption, delay).
//! - [`workload`]: bulk, request/response and on/off flows with start
//!   times, checked byte for byte, with per-flow samples of `TcpInfo`.
//! - [`scenario`]: point-to-point and dumbbell topologies from a TOML file
//!   or from code, run to a [`scenario::ScenarioReport`].
//! - [`transfer`]: one bulk transfer over a point-to-point link.
#![forbid(unsafe_code)]

mod net;
pub mod scenario;
pub mod stream;
mod transfer;
pub mod units;
pub mod workload;

pub use net::{Captured, HostId, LinkId, LogEntry, NetStats, Sim, SimError};
pub use transfer::{transfer, TransferReport, TransferSpec};
