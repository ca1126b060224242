//! A deterministic discrete-event network: real Daytona stacks exchanging
//! frames over simulated links, on a virtual clock, with seeded
//! impairments. The same seed and scenario always give the same run.
//!
//! This is the foundation the full simulator (dumbbells, AQM, traces,
//! plots) grows from; today it runs point-to-point topologies and the
//! [`transfer`] workload.
#![forbid(unsafe_code)]

mod net;
mod transfer;

pub use net::{HostId, Sim, SimError};
pub use transfer::{transfer, TransferReport, TransferSpec};
