//! Congestion control: a public trait shaped after Linux's
//! `struct tcp_congestion_ops`, a registry to build controllers per
//! connection by name, and the controllers that ship with Daytona.
//!
//! The engine keeps the roles apart, as Linux does: loss recovery decides
//! *that* something is lost, the controller decides *how much* may be in
//! flight (`Window::cwnd`, `Window::ssthresh`, `Window::pacing_rate`), and
//! output decides *what* to send. A controller sees a narrow [`Window`] view,
//! never the whole connection.
//!
//! Units: windows are in **bytes** (RFC 5681 style); `Window::mss` gives the
//! current sender MSS for controllers that reason in segments.

use crate::time::{Duration, Instant};
use std::collections::BTreeMap;
use std::fmt;

pub mod bbr;
pub mod cubic;
pub mod fixed;
pub mod hystart;
pub mod minmax;
pub mod newreno;

#[cfg(test)]
mod tests;

pub use bbr::Bbr;
pub use cubic::Cubic;
pub use fixed::FixedWindow;
pub use hystart::HyStartPlusPlus;
pub use newreno::NewReno;

/// Linux's `tcp_ca_state`: where the connection stands in loss recovery.
/// Ordered as in Linux (`Open < Disorder < Cwr < Recovery < Loss`), which
/// controllers rely on ("in recovery or worse" is `>= Recovery`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default, Hash)]
#[cfg_attr(
    feature = "serde",
    derive(serde::Serialize),
    serde(rename_all = "snake_case")
)]
pub enum CaState {
    /// Nothing suspicious.
    #[default]
    Open,
    /// Duplicate ACKs or SACKs seen; not yet in recovery.
    Disorder,
    /// Window reduced for a reason other than loss (ECN, local congestion).
    Cwr,
    /// Fast recovery (RFC 5681 §3.2, RFC 6582 / RFC 6675).
    Recovery,
    /// Retransmission timeout recovery (RFC 5681 §3.1, RFC 6298 §5).
    Loss,
}

/// Linux's `tcp_ca_event`: things a controller may want to react to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CwndEvent {
    /// First transmission when nothing was in flight.
    TxStart,
    /// Congestion window restart after idle (RFC 5681 §4.1).
    CwndRestart,
    /// End of a CWR episode.
    CompleteCwr,
    /// Retransmission timeout.
    Loss,
    /// ECN: an ACK without ECE (RFC 3168).
    EcnNoCe,
    /// ECN: an ACK with ECE (RFC 3168).
    EcnIsCe,
}

/// The narrow view of a connection that a controller reads and writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    /// Congestion window, bytes. The controller writes it.
    pub cwnd: u32,
    /// Slow-start threshold, bytes. The controller writes it.
    pub ssthresh: u32,
    /// Pacing rate in bytes per second, if the controller wants pacing.
    pub pacing_rate: Option<u64>,
    /// Current effective sender MSS, bytes (read-only for the controller).
    /// Controllers that reason in segments (CUBIC, BBR) convert with it.
    pub mss: u32,
    /// Bytes sent and not yet acknowledged or marked lost ("pipe").
    pub bytes_in_flight: u32,
    /// Congestion window before the current recovery episode (for undo).
    pub prior_cwnd: u32,
    /// ssthresh before the current recovery episode (for undo).
    pub prior_ssthresh: u32,
    /// Smoothed RTT, if sampled.
    pub srtt: Option<Duration>,
    /// Minimum RTT seen, if sampled.
    pub min_rtt: Option<Duration>,
    /// Where the connection stands in loss recovery.
    pub ca_state: CaState,
    /// True when the sender was limited by the application, not the window.
    /// BBR sets it during PROBE_RTT (Linux sets `tp->app_limited` there) so
    /// that the low-inflight samples are not taken for the path's bandwidth.
    pub app_limited: bool,
    /// Oldest unacknowledged sequence number (SND.UNA) after the current ACK
    /// was processed. HyStart++ (RFC 9406 §4.2) ends an RTT round when
    /// SND.UNA reaches the `windowEnd` recorded at the round's start.
    /// Default 0: every ACK then looks like a new round and HyStart++ never
    /// collects enough samples to leave slow start early (safe fallback).
    pub snd_una: u32,
    /// Highest sequence number sent plus one (Linux `tp->snd_nxt`, the
    /// engine's `snd_max`: not rewound by a retransmission timeout). Starts
    /// an RTT round in HyStart++ (`windowEnd = SND.NXT`).
    pub snd_nxt: u32,
    /// Total bytes delivered (cumulatively or selectively acknowledged) on
    /// the connection so far, including this ACK (Linux `tp->delivered`,
    /// in bytes). BBR counts round trips and long-term bandwidth with it.
    pub delivered: u64,
    /// Total bytes marked lost on the connection so far, including this ACK
    /// (Linux `tp->lost`, in bytes). BBR's policer detection uses it.
    pub lost: u64,
    /// A per-connection seed for controllers that randomise (BBR's initial
    /// PROBE_BW phase). The engine derives it deterministically, e.g. from
    /// the ISN; default 0. Controllers never use an unseeded generator.
    pub seed: u64,
    /// The current ACK's RTT sample may be inflated by a delayed ACK (Linux
    /// `rs->is_ack_delayed`: the ACK newly acknowledged at most one
    /// segment). BBR then does not let it refresh an expired min_rtt. It
    /// lives here rather than in [`RateSample`] so that adding it did not
    /// change how the engine builds samples.
    pub ack_delayed: bool,
}

impl Window {
    /// A window for a new connection: `initial_cwnd` bytes, ssthresh
    /// "arbitrarily high" (RFC 5681 §3.1).
    pub fn new(initial_cwnd: u32, mss: u32) -> Self {
        Window {
            cwnd: initial_cwnd,
            ssthresh: u32::MAX,
            pacing_rate: None,
            mss,
            bytes_in_flight: 0,
            prior_cwnd: initial_cwnd,
            prior_ssthresh: u32::MAX,
            srtt: None,
            min_rtt: None,
            ca_state: CaState::Open,
            app_limited: false,
            snd_una: 0,
            snd_nxt: 0,
            delivered: 0,
            lost: 0,
            seed: 0,
            ack_delayed: false,
        }
    }

    /// RFC 5681 §3.1: in slow start while cwnd < ssthresh.
    pub fn in_slow_start(&self) -> bool {
        self.cwnd < self.ssthresh
    }
}

/// What one ACK did (Linux's `ack_sample` plus the `cong_avoid` arguments).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct AckSample {
    /// Bytes newly acknowledged cumulatively or selectively by this ACK.
    pub acked_bytes: u32,
    /// RTT measured from this ACK, if any (RFC 6298 / RFC 7323).
    pub rtt: Option<Duration>,
    /// Bytes in flight before this ACK was processed.
    pub prior_in_flight: u32,
}

/// A delivery-rate sample (draft-cheng-iccrg-delivery-rate-estimation),
/// Linux's `rate_sample`.
///
/// Linux passes one to `cong_control` on *every* ACK, also when it holds no
/// valid bandwidth sample (then `rs->delivered < 0`); here an `interval` of
/// zero marks a sample without a rate, whose other fields (`acked_sacked`,
/// `losses`, `prior_in_flight`) still count. BBR needs a sample on every ACK
/// to adjust cwnd by what was acknowledged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RateSample {
    /// Bytes delivered over `interval`.
    pub delivered: u64,
    /// Interval over which `delivered` was measured.
    pub interval: Duration,
    /// Total bytes delivered on the connection before the sampled packet.
    pub prior_delivered: u64,
    /// RTT of the most recently delivered packet.
    pub rtt: Option<Duration>,
    /// Bytes newly marked lost by this ACK.
    pub losses: u32,
    /// Bytes newly acknowledged or SACKed by this ACK.
    pub acked_sacked: u32,
    /// Bytes in flight before this ACK.
    pub prior_in_flight: u32,
    /// The sample was taken while the sender was application-limited.
    pub is_app_limited: bool,
}

impl RateSample {
    /// Delivery rate in bytes per second, if the interval is non-zero.
    pub fn delivery_rate(&self) -> Option<u64> {
        let us = self.interval.as_micros();
        if us == 0 {
            return None;
        }
        u64::try_from(u128::from(self.delivered) * 1_000_000 / us).ok()
    }
}

/// Controller-specific state for `TcpInfo` and events: name/value pairs.
#[derive(Debug, Clone, PartialEq, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct CcInfo {
    pub fields: Vec<(&'static str, f64)>,
}

/// A congestion controller, after Linux's `tcp_congestion_ops`.
///
/// The engine calls, in this order on an ACK: `pkts_acked`, then either
/// `cong_control` (if it returns `true` it fully owns the window) or
/// `cong_avoid` (only in `CaState::Open`/`Disorder` and when the ACK advanced
/// `snd_una`). On entering loss recovery it calls `set_state`, then
/// `ssthresh` and sets `Window::ssthresh` to the result. On discovering a
/// spurious retransmission it calls `undo_cwnd`.
pub trait CongestionControl: fmt::Debug + Send {
    /// The registry name ("newreno", "cubic", …).
    fn name(&self) -> &'static str;

    /// Called once when the connection is established (Linux `init`).
    fn init(&mut self, _w: &mut Window, _now: Instant) {}

    /// The slow-start threshold to use after a loss (Linux `ssthresh`).
    fn ssthresh(&mut self, w: &Window, now: Instant) -> u32;

    /// Grow the window on an ACK that advanced snd_una (Linux `cong_avoid`).
    fn cong_avoid(&mut self, w: &mut Window, ack: &AckSample, now: Instant);

    /// Full control of cwnd and pacing from a rate sample (Linux
    /// `cong_control`). Return `true` if handled; then `cong_avoid` is not
    /// called for this ACK.
    fn cong_control(&mut self, _w: &mut Window, _rs: &RateSample, _now: Instant) -> bool {
        false
    }

    /// True if this controller sets cwnd and pacing itself in
    /// `cong_control` on every ACK, in recovery too (Linux: the ops table
    /// has a `cong_control`). The engine then skips its own window
    /// reduction (PRR, RFC 6582 inflation) as Linux's `tcp_cong_control`
    /// does; it knows before the first ACK, unlike from `cong_control`'s
    /// return value.
    fn has_cong_control(&self) -> bool {
        false
    }

    /// The connection changed `CaState` (Linux `set_state`).
    fn set_state(&mut self, _w: &mut Window, _state: CaState, _now: Instant) {}

    /// Something happened that the controller may react to (Linux `cwnd_event`).
    fn cwnd_event(&mut self, _w: &mut Window, _ev: CwndEvent, _now: Instant) {}

    /// Per-ACK sample, before the window is adjusted (Linux `pkts_acked`).
    fn pkts_acked(&mut self, _w: &Window, _ack: &AckSample, _now: Instant) {}

    /// The window to restore after a spurious loss response (Linux
    /// `undo_cwnd`); default: the larger of the current and prior window.
    fn undo_cwnd(&mut self, w: &Window) -> u32 {
        w.cwnd.max(w.prior_cwnd)
    }

    /// Controller state for `TcpInfo` (Linux `get_info`).
    fn info(&self) -> CcInfo {
        CcInfo::default()
    }

    /// The controller's current mode, for events: the engine compares it
    /// before and after each call and reports a change (e.g. BBR's
    /// "startup" → "drain", CUBIC's "slow_start" → "css"). `None` when the
    /// controller has no modes of its own.
    fn mode(&self) -> Option<&'static str> {
        None
    }
}

/// Builds a fresh controller for one connection.
pub type CcConstructor = fn() -> Box<dyn CongestionControl>;

/// Controllers by name. A researcher adds one file and one `register` call.
#[derive(Clone)]
pub struct CcRegistry {
    by_name: BTreeMap<&'static str, CcConstructor>,
}

impl fmt::Debug for CcRegistry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.by_name.keys()).finish()
    }
}

/// The requested congestion controller is not in the registry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownController {
    pub name: String,
    pub known: Vec<&'static str>,
}

impl fmt::Display for UnknownController {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "unknown congestion controller {:?} (known: {})",
            self.name,
            self.known.join(", ")
        )
    }
}

impl std::error::Error for UnknownController {}

impl CcRegistry {
    /// An empty registry.
    pub fn empty() -> Self {
        CcRegistry {
            by_name: BTreeMap::new(),
        }
    }

    /// The controllers that ship with Daytona.
    pub fn with_builtin() -> Self {
        let mut r = Self::empty();
        r.register("newreno", || Box::new(NewReno::new()));
        r.register("reno", || Box::new(NewReno::new()));
        r.register("cubic", || Box::new(Cubic::new()));
        r.register("bbr", || Box::new(Bbr::new()));
        r.register("fixed", || Box::new(FixedWindow::default()));
        r
    }

    /// Adds (or replaces) a controller.
    pub fn register(&mut self, name: &'static str, ctor: CcConstructor) {
        self.by_name.insert(name, ctor);
    }

    /// Builds a controller by name.
    pub fn build(&self, name: &str) -> Result<Box<dyn CongestionControl>, UnknownController> {
        match self.by_name.get(name) {
            Some(ctor) => Ok(ctor()),
            None => Err(UnknownController {
                name: name.to_string(),
                known: self.names(),
            }),
        }
    }

    /// The registered names, sorted.
    pub fn names(&self) -> Vec<&'static str> {
        self.by_name.keys().copied().collect()
    }

    pub fn contains(&self, name: &str) -> bool {
        self.by_name.contains_key(name)
    }
}

impl Default for CcRegistry {
    fn default() -> Self {
        Self::with_builtin()
    }
}
