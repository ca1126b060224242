//! Human units on the command line; the parsers live in the simulator
//! crate so scenario files and flags read the same units.

pub use daytona_sim::units::*;
