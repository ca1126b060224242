//! CUBIC (RFC 9438) with HyStart++ (RFC 9406) for slow start.
//!
//! The window is a cubic function of the time since the last congestion
//! event, `W_cubic(t) = C·(t − K)³ + W_max` (RFC 9438 §4.2, eq. 1), with a
//! Reno-friendly floor `W_est` (§4.3). The formulas work in segments; the
//! trait's windows are bytes, converted with `Window::mss`. Time `t` is
//! measured from the start of the congestion-avoidance epoch, taken from the
//! `now` argument of the first ACK in congestion avoidance.
//!
//! The engine owns the mechanics of loss recovery: on a congestion event it
//! calls [`CongestionControl::ssthresh`] (here §4.6 and §4.7: the β
//! reduction and fast convergence) and reduces cwnd toward the returned
//! ssthresh itself (PRR, RFC 6937); after a timeout it calls `cwnd_event`
//! with [`CwndEvent::Loss`] (§4.8); on a spurious congestion event it calls
//! `undo_cwnd` (§4.9), which restores the saved state.

use super::hystart::{HyStartPlusPlus, Phase, NON_PACED_L};
use super::{AckSample, CaState, CcInfo, CongestionControl, CwndEvent, Window};
use crate::time::{Duration, Instant};

/// RFC 9438 §5: the parameters, with the RFC's values as defaults.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CubicParams {
    /// C, segments/s³ (RFC 9438 §4.2: 0.4).
    pub c: f64,
    /// β_cubic, the multiplicative decrease factor (RFC 9438 §4.6: 0.7).
    pub beta: f64,
    /// RFC 9438 §4.7 fast convergence (on by default).
    pub fast_convergence: bool,
    /// RFC 9406 HyStart++ for the initial slow start (on by default).
    pub hystart: bool,
}

impl Default for CubicParams {
    fn default() -> Self {
        CubicParams {
            c: 0.4,
            beta: 0.7,
            fast_convergence: true,
            hystart: true,
        }
    }
}

impl CubicParams {
    /// RFC 9438 §4.3: α_cubic = 3·(1 − β_cubic) / (1 + β_cubic), the
    /// additive increase that makes CUBIC as aggressive as Reno on average.
    pub fn alpha(&self) -> f64 {
        3.0 * (1.0 - self.beta) / (1.0 + self.beta)
    }

    /// RFC 9438 §4.2, eq. 1: W_cubic(t) in segments, `t` in seconds.
    pub fn w_cubic(&self, t: f64, k: f64, w_max: f64) -> f64 {
        self.c * (t - k).powi(3) + w_max
    }

    /// RFC 9438 §4.2, eq. 2: K = ∛((W_max − cwnd_epoch) / C), seconds.
    pub fn k(&self, w_max: f64, cwnd_epoch: f64) -> f64 {
        ((w_max - cwnd_epoch) / self.c).cbrt()
    }
}

/// State of the current congestion-avoidance epoch (RFC 9438 §4.1.2).
#[derive(Debug, Clone, Copy, PartialEq)]
struct Epoch {
    /// When the epoch began (the first ACK in congestion avoidance).
    start: Instant,
    /// K, seconds.
    k: f64,
    /// cwnd at the start of the epoch, segments.
    cwnd_epoch: f64,
    /// W_est, segments (§4.3).
    w_est: f64,
}

/// What a congestion event changed, kept for §4.9 undo.
#[derive(Debug, Clone, PartialEq)]
struct Saved {
    cwnd: u32,
    w_max: f64,
    cwnd_prior: f64,
    epoch: Option<Epoch>,
    after_timeout: bool,
    hystart: HyStartPlusPlus,
}

#[derive(Debug, Clone)]
pub struct Cubic {
    params: CubicParams,
    hystart: HyStartPlusPlus,
    /// W_max, segments: the window just before the last reduction, or less
    /// after fast convergence (§4.7).
    w_max: f64,
    /// cwnd_prior, segments: the window at the last congestion event; W_est
    /// switches to α = 1 once it reaches it (§4.3).
    cwnd_prior: f64,
    epoch: Option<Epoch>,
    /// §4.8: the next epoch follows a timeout (K = 0, W_max = cwnd_epoch).
    after_timeout: bool,
    /// Sub-byte growth carried between ACKs, bytes, valid while cwnd is
    /// what this controller last wrote.
    carry: f64,
    last_cwnd: u32,
    /// Time of the last ACK, to shift the epoch over idle periods.
    last_ack: Option<Instant>,
    in_slow_start: bool,
    saved: Option<Saved>,
    congestion_events: u32,
    timeouts: u32,
    undos: u32,
}

impl Default for Cubic {
    fn default() -> Self {
        Self::with_params(CubicParams::default())
    }
}

impl Cubic {
    pub fn new() -> Self {
        Self::default()
    }

    /// A CUBIC with other parameters (e.g. `CubicParams { beta: 0.5, .. }`);
    /// register it under a name of its own to select it per connection.
    pub fn with_params(params: CubicParams) -> Self {
        Cubic {
            params,
            hystart: HyStartPlusPlus::new(),
            w_max: 0.0,
            cwnd_prior: 0.0,
            epoch: None,
            after_timeout: false,
            carry: 0.0,
            last_cwnd: 0,
            last_ack: None,
            in_slow_start: true,
            saved: None,
            congestion_events: 0,
            timeouts: 0,
            undos: 0,
        }
    }

    pub fn params(&self) -> &CubicParams {
        &self.params
    }

    /// W_max in segments.
    pub fn w_max(&self) -> f64 {
        self.w_max
    }

    /// K of the current epoch, seconds (`None` outside congestion avoidance).
    pub fn k(&self) -> Option<f64> {
        self.epoch.map(|e| e.k)
    }

    /// W_est of the current epoch, segments.
    pub fn w_est(&self) -> Option<f64> {
        self.epoch.map(|e| e.w_est)
    }

    pub fn hystart_phase(&self) -> Phase {
        self.hystart.phase()
    }

    /// Starts an epoch at the first ACK in congestion avoidance (§4.2).
    fn start_epoch(&mut self, cwnd_seg: f64, now: Instant) -> Epoch {
        let (k, w_max) = if self.after_timeout || self.w_max <= cwnd_seg {
            // §4.8: after a timeout K = 0 and W_max = cwnd_epoch. The same
            // holds when the window already exceeds W_max (slow start ended
            // without a loss, as after HyStart++): the curve starts at its
            // plateau and probes upward (Linux: origin_point = cwnd).
            (0.0, cwnd_seg)
        } else {
            (self.params.k(self.w_max, cwnd_seg), self.w_max)
        };
        self.w_max = w_max;
        self.after_timeout = false;
        let e = Epoch {
            start: now,
            k,
            cwnd_epoch: cwnd_seg,
            // §4.3 and §4.8: W_est starts at cwnd_epoch.
            w_est: cwnd_seg,
        };
        self.epoch = Some(e);
        e
    }

    /// RFC 9438 §4.2–§4.5: congestion avoidance for `acked` bytes.
    fn congestion_avoidance(&mut self, w: &mut Window, acked: u32, now: Instant) {
        let mss = f64::from(w.mss.max(1));
        if w.cwnd != self.last_cwnd {
            self.carry = 0.0;
        }
        let cwnd_bytes = f64::from(w.cwnd) + self.carry;
        let cwnd = (cwnd_bytes / mss).max(1.0);
        let mut e = match self.epoch {
            Some(e) => e,
            None => self.start_epoch(cwnd, now),
        };
        let t = (now - e.start).as_secs_f64();
        let segments_acked = f64::from(acked) / mss;

        // §4.3: W_est += α_cubic · segments_acked / cwnd, with α_cubic = 1
        // once W_est has reached cwnd_prior.
        let alpha = if e.w_est >= self.cwnd_prior {
            1.0
        } else {
            self.params.alpha()
        };
        e.w_est += alpha * segments_acked / cwnd;
        self.epoch = Some(e);

        let w_cubic_t = self.params.w_cubic(t, e.k, self.w_max);
        let new_cwnd = if w_cubic_t < e.w_est {
            // §4.3: the Reno-friendly region: cwnd = W_est (never lower
            // than it is: a decrease belongs to congestion events only).
            e.w_est.max(cwnd)
        } else {
            // §4.4/§4.5 (concave and convex regions): grow toward
            // target = W_cubic(t + RTT), clamped to [cwnd, 1.5·cwnd] (§4.2),
            // by (target − cwnd)/cwnd per acknowledged segment.
            let rtt = w.srtt.or(w.min_rtt).unwrap_or(Duration::ZERO);
            let target = self
                .params
                .w_cubic(t + rtt.as_secs_f64(), e.k, self.w_max)
                .clamp(cwnd, 1.5 * cwnd);
            cwnd + (target - cwnd) / cwnd * segments_acked
        };
        let bytes = (new_cwnd * mss).min(f64::from(u32::MAX));
        let whole = bytes.floor();
        w.cwnd = (whole as u32).max(w.cwnd);
        self.carry = bytes - whole;
        self.last_cwnd = w.cwnd;
    }
}

impl CongestionControl for Cubic {
    fn name(&self) -> &'static str {
        "cubic"
    }

    /// RFC 9438 §4.6 (multiplicative decrease) and §4.7 (fast convergence),
    /// on a congestion event (loss, ECN-Echo, RTO).
    fn ssthresh(&mut self, w: &Window, _now: Instant) -> u32 {
        let mss = w.mss.max(1);
        // §4.9: keep what is needed to undo a spurious response.
        self.saved = Some(Saved {
            cwnd: w.cwnd,
            w_max: self.w_max,
            cwnd_prior: self.cwnd_prior,
            epoch: self.epoch,
            after_timeout: self.after_timeout,
            hystart: self.hystart.clone(),
        });
        self.congestion_events = self.congestion_events.saturating_add(1);
        let cwnd = f64::from(w.cwnd) / f64::from(mss);
        // §4.7: with fast convergence, a flow whose W_max shrinks releases
        // bandwidth: W_max = cwnd·(1 + β)/2.
        self.w_max = if self.params.fast_convergence && cwnd < self.w_max {
            cwnd * (1.0 + self.params.beta) / 2.0
        } else {
            cwnd
        };
        self.cwnd_prior = cwnd;
        self.epoch = None;
        // RFC 9406 §4.2: a congestion event ends slow start and CSS.
        self.hystart.on_congestion();
        // §4.6: ssthresh = flight_size · β_cubic, at least 2 segments.
        let ssthresh = (f64::from(w.bytes_in_flight) * self.params.beta) as u32;
        ssthresh.max(2 * mss)
    }

    fn cong_avoid(&mut self, w: &mut Window, ack: &AckSample, now: Instant) {
        self.last_ack = Some(now);
        let mut acked = ack.acked_bytes;
        if w.in_slow_start() {
            self.in_slow_start = true;
            if self.params.hystart {
                acked = self.hystart.on_ack(w, acked, ack.rtt);
            } else {
                // Standard slow start (RFC 5681 §3.1), with the same
                // per-ACK limit L as HyStart++ (RFC 9406 §4.2).
                let limit = if w.pacing_rate.is_some() {
                    u32::MAX
                } else {
                    NON_PACED_L.saturating_mul(w.mss.max(1))
                };
                let grow = acked.min(limit).min(w.ssthresh.saturating_sub(w.cwnd));
                w.cwnd = w.cwnd.saturating_add(grow);
                acked -= grow.min(acked);
            }
            if w.in_slow_start() || acked == 0 {
                return;
            }
        }
        self.in_slow_start = false;
        self.congestion_avoidance(w, acked, now);
    }

    fn cwnd_event(&mut self, _w: &mut Window, ev: CwndEvent, now: Instant) {
        match ev {
            CwndEvent::Loss => {
                // §4.8: after a timeout the next epoch has K = 0 and
                // W_max = cwnd_epoch; W_est restarts there too.
                self.after_timeout = true;
                self.epoch = None;
                self.timeouts = self.timeouts.saturating_add(1);
            }
            CwndEvent::TxStart => {
                // Linux `bictcp_cwnd_event`: an idle period does not count
                // as epoch time, or the window would jump when sending
                // resumes; shift the epoch start by the idle time.
                if let (Some(e), Some(last)) = (self.epoch.as_mut(), self.last_ack) {
                    let idle = now - last;
                    if idle > Duration::ZERO {
                        e.start = (e.start + idle).min(now);
                    }
                }
            }
            _ => {}
        }
    }

    fn set_state(&mut self, _w: &mut Window, state: CaState, _now: Instant) {
        if state == CaState::Loss {
            self.epoch = None;
            self.after_timeout = true;
        }
    }

    /// RFC 9438 §4.9: a spurious congestion event restores cwnd, W_max,
    /// K, the epoch start and W_est to their values before it (the engine
    /// restores ssthresh from `Window::prior_ssthresh`).
    fn undo_cwnd(&mut self, w: &Window) -> u32 {
        match self.saved.take() {
            Some(s) => {
                self.undos = self.undos.saturating_add(1);
                self.w_max = s.w_max;
                self.cwnd_prior = s.cwnd_prior;
                self.epoch = s.epoch;
                self.after_timeout = s.after_timeout;
                // A slow start cut short by a congestion event that did not
                // happen resumes where it was, HyStart++ rounds included.
                self.hystart = s.hystart;
                self.carry = 0.0;
                w.cwnd.max(s.cwnd)
            }
            None => w.cwnd.max(w.prior_cwnd),
        }
    }

    fn info(&self) -> CcInfo {
        let mut fields = vec![
            ("w_max_segments", self.w_max),
            ("cwnd_prior_segments", self.cwnd_prior),
            ("congestion_events", f64::from(self.congestion_events)),
            ("timeouts", f64::from(self.timeouts)),
            ("undos", f64::from(self.undos)),
            (
                "hystart_phase",
                match self.hystart.phase() {
                    Phase::SlowStart => 0.0,
                    Phase::Css { .. } => 1.0,
                    Phase::Done => 2.0,
                },
            ),
        ];
        if let Some(e) = self.epoch {
            fields.push(("k_seconds", e.k));
            fields.push(("w_est_segments", e.w_est));
            fields.push(("epoch_start_us", e.start.total_micros() as f64));
        }
        CcInfo { fields }
    }

    fn mode(&self) -> Option<&'static str> {
        Some(if !self.in_slow_start {
            "congestion_avoidance"
        } else if let Phase::Css { .. } = self.hystart.phase() {
            "css"
        } else {
            "slow_start"
        })
    }
}
