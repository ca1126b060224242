//! A fixed congestion window, for experiments: the window never grows and
//! never shrinks in response to loss, ECN or timeouts, so what a test
//! measures is the path and the loss-recovery machinery, not a controller.
//!
//! Registered as "fixed" with [`FixedWindow::DEFAULT_SEGMENTS`] segments.
//! Another size is one `register` call:
//!
//! ```
//! use daytona_core::cc::{CcRegistry, FixedWindow};
//! let mut registry = CcRegistry::with_builtin();
//! registry.register("fixed-64", || Box::new(FixedWindow::segments(64)));
//! registry.register("fixed-1m", || Box::new(FixedWindow::bytes(1 << 20)));
//! assert!(registry.build("fixed-64").is_ok());
//! ```
//!
//! The controller writes the window at every hook it is given (init, each
//! ACK, state changes, events, undo) and answers `ssthresh` with the same
//! value. The engine's recovery mechanics (RFC 6582 inflation, PRR, the
//! one-segment loss window after an RTO) may still move cwnd between two
//! hooks; the next ACK puts it back.

use super::{AckSample, CaState, CcInfo, CongestionControl, CwndEvent, RateSample, Window};
use crate::time::Instant;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Size {
    Segments(u32),
    Bytes(u32),
}

/// A constant congestion window.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FixedWindow {
    size: Size,
}

impl Default for FixedWindow {
    fn default() -> Self {
        Self::segments(Self::DEFAULT_SEGMENTS)
    }
}

impl FixedWindow {
    /// The size of the registered "fixed" controller: 10 segments, the
    /// initial window of RFC 6928 (Linux's default), so a "fixed" connection
    /// starts exactly like the others and then stays there.
    pub const DEFAULT_SEGMENTS: u32 = 10;

    /// A window of `n` segments of the current MSS (at least one).
    pub fn segments(n: u32) -> Self {
        FixedWindow {
            size: Size::Segments(n.max(1)),
        }
    }

    /// A window of `n` bytes (at least one MSS when applied).
    pub fn bytes(n: u32) -> Self {
        FixedWindow {
            size: Size::Bytes(n.max(1)),
        }
    }

    /// The window in bytes for a given MSS; never below one MSS.
    pub fn window(&self, mss: u32) -> u32 {
        let mss = mss.max(1);
        match self.size {
            Size::Segments(n) => n.saturating_mul(mss),
            Size::Bytes(b) => b.max(mss),
        }
    }

    fn apply(&self, w: &mut Window) {
        w.cwnd = self.window(w.mss);
    }
}

impl CongestionControl for FixedWindow {
    fn name(&self) -> &'static str {
        "fixed"
    }

    fn init(&mut self, w: &mut Window, _now: Instant) {
        self.apply(w);
    }

    fn ssthresh(&mut self, w: &Window, _now: Instant) -> u32 {
        self.window(w.mss)
    }

    fn cong_avoid(&mut self, w: &mut Window, _ack: &AckSample, _now: Instant) {
        self.apply(w);
    }

    fn has_cong_control(&self) -> bool {
        true
    }

    fn cong_control(&mut self, w: &mut Window, _rs: &RateSample, _now: Instant) -> bool {
        self.apply(w);
        true
    }

    fn set_state(&mut self, w: &mut Window, _state: CaState, _now: Instant) {
        self.apply(w);
    }

    fn cwnd_event(&mut self, w: &mut Window, _ev: CwndEvent, _now: Instant) {
        self.apply(w);
    }

    fn undo_cwnd(&mut self, w: &Window) -> u32 {
        self.window(w.mss)
    }

    fn info(&self) -> CcInfo {
        let (segments, bytes) = match self.size {
            Size::Segments(n) => (f64::from(n), 0.0),
            Size::Bytes(b) => (0.0, f64::from(b)),
        };
        CcInfo {
            fields: vec![("fixed_segments", segments), ("fixed_bytes", bytes)],
        }
    }
}
