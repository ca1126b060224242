//! Daytona's sans-IO protocol engine.
//!
//! No clock, no syscalls, no threads: time is an argument (`now: Instant`),
//! bytes come in through `handle_*` calls and go out through `poll_*` calls.
//! The same engine runs under the runtime thread, inside the simulator and
//! under scripted tests.
#![forbid(unsafe_code)]

pub mod cc;
pub mod error;
pub mod observe;
pub mod stack;
pub mod tcp;
pub mod time;

pub use error::Error;
pub use time::{Duration, Instant};
