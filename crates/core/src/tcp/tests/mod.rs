//! Segment-level scripted tests of the TCP engine, one per behaviour.

mod harness;
mod loss;
mod recovery;
mod state_machine;
mod timers;
mod windows;
