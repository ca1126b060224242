//! A spec harness for congestion controllers: it plays the engine's part —
//! the call order of `tcp/input.rs` and `tcp/timers.rs` — on a bare
//! [`Window`], with explicit time, so that tests script ACKs, losses,
//! timeouts and ECN marks and compare the window with the specification's
//! formulas.
//!
//! Two levels:
//! - [`Driver`]: one hook call per scripted step (`ack`, `loss`, `rto`, …).
//! - [`Flow`]: an ACK-clocked bulk sender over a single bottleneck (FIFO
//!   queue at `rate`, fixed propagation delay), with a delivery-rate
//!   estimator (draft-cheng-iccrg-delivery-rate-estimation §3) and pacing,
//!   for controllers that need round trips and rate samples (HyStart++,
//!   BBR).

use crate::cc::{AckSample, CaState, CcInfo, CongestionControl, CwndEvent, RateSample, Window};
use crate::time::{Duration, Instant};
use std::collections::VecDeque;

pub const MSS: u32 = 1000;

/// Plays the engine's call sequence on a window.
pub struct Driver {
    pub cc: Box<dyn CongestionControl>,
    pub w: Window,
    pub now: Instant,
}

impl Driver {
    /// A connection with `cwnd_segments` of initial window, `init` called.
    pub fn new(mut cc: Box<dyn CongestionControl>, cwnd_segments: u32) -> Self {
        let mut w = Window::new(cwnd_segments * MSS, MSS);
        cc.init(&mut w, Instant::ZERO);
        Driver {
            cc,
            w,
            now: Instant::ZERO,
        }
    }

    pub fn at(&mut self, t: Duration) -> &mut Self {
        self.now = Instant::ZERO + t;
        self
    }

    pub fn set_rtt(&mut self, rtt: Duration) {
        self.w.srtt = Some(rtt);
        self.w.min_rtt = Some(self.w.min_rtt.map_or(rtt, |m| m.min(rtt)));
    }

    /// An ACK of `bytes` new bytes, in the engine's order: `pkts_acked`,
    /// then `cong_avoid` in Open/Disorder (no rate sample here).
    pub fn ack(&mut self, bytes: u32, rtt: Option<Duration>) {
        let prior_in_flight = self.w.bytes_in_flight;
        self.w.snd_una = self.w.snd_una.wrapping_add(bytes);
        self.w.delivered += u64::from(bytes);
        self.w.bytes_in_flight = self.w.bytes_in_flight.saturating_sub(bytes);
        let sample = AckSample {
            acked_bytes: bytes,
            rtt,
            prior_in_flight,
        };
        self.cc.pkts_acked(&self.w, &sample, self.now);
        if matches!(self.w.ca_state, CaState::Open | CaState::Disorder) {
            self.cc.cong_avoid(&mut self.w, &sample, self.now);
        }
    }

    /// One round trip in congestion avoidance: a cwnd's worth of
    /// one-segment ACKs spread evenly over `rtt`, ending at now + rtt.
    pub fn round(&mut self, rtt: Duration) {
        let n = (self.w.cwnd / MSS).max(1);
        let start = self.now;
        for i in 1..=n {
            self.now = start + rtt * i / n;
            self.ack(MSS, Some(rtt));
        }
    }

    fn save_prior(&mut self) {
        self.w.prior_cwnd = self.w.cwnd;
        self.w.prior_ssthresh = self.w.ssthresh;
    }

    /// Fast retransmit with `flight` bytes outstanding: enter Recovery,
    /// take the controller's ssthresh (floored at 2 MSS as the engine
    /// does) and, as PRR ends, set cwnd to it. Returns the ssthresh the
    /// controller answered (before the engine's floor).
    pub fn loss(&mut self, flight: u32) -> u32 {
        self.save_prior();
        self.w.bytes_in_flight = flight;
        self.set_state(CaState::Recovery);
        let ss = self.cc.ssthresh(&self.w, self.now);
        self.w.ssthresh = ss.max(2 * MSS);
        self.w.cwnd = self.w.ssthresh;
        ss
    }

    /// Recovery (or Loss, or CWR) ends.
    pub fn recovered(&mut self) {
        self.set_state(CaState::Open);
    }

    /// A retransmission timeout, in `tcp/timers.rs` order.
    pub fn rto(&mut self, flight: u32) -> u32 {
        self.save_prior();
        self.w.bytes_in_flight = flight;
        let ss = self.cc.ssthresh(&self.w, self.now);
        self.w.ssthresh = ss;
        self.w.cwnd = MSS;
        self.cc.cwnd_event(&mut self.w, CwndEvent::Loss, self.now);
        self.w.cwnd = self.w.cwnd.max(MSS);
        self.set_state(CaState::Loss);
        ss
    }

    /// An ECN-Echo (RFC 3168 §6.1.2): a congestion response without
    /// retransmission, in CWR state.
    pub fn ecn(&mut self, flight: u32) -> u32 {
        self.cc
            .cwnd_event(&mut self.w, CwndEvent::EcnIsCe, self.now);
        self.save_prior();
        self.w.bytes_in_flight = flight;
        self.set_state(CaState::Cwr);
        let ss = self.cc.ssthresh(&self.w, self.now);
        self.w.ssthresh = ss.max(2 * MSS);
        self.w.cwnd = self.w.ssthresh;
        ss
    }

    /// The last congestion response was spurious (F-RTO, D-SACK, Eifel):
    /// Linux `tcp_undo_cwnd_reduction`.
    pub fn undo(&mut self) {
        self.w.cwnd = self.cc.undo_cwnd(&self.w);
        self.w.ssthresh = self.w.ssthresh.max(self.w.prior_ssthresh);
        self.set_state(CaState::Open);
    }

    pub fn set_state(&mut self, s: CaState) {
        if self.w.ca_state != s {
            self.w.ca_state = s;
            self.cc.set_state(&mut self.w, s, self.now);
        }
    }
}

/// A segment in flight, with the delivery-rate estimator's state at send.
#[derive(Debug, Clone, Copy)]
struct Seg {
    end: u32,
    len: u32,
    sent: Instant,
    ack_at: Instant,
    delivered: u64,
    delivered_time: Instant,
    first_tx: Instant,
    app_limited: bool,
    lost: bool,
}

/// The bottleneck: FIFO at `rate` bytes/s, then `rtprop` of propagation
/// (both directions together).
#[derive(Debug, Clone, Copy)]
pub struct Path {
    pub rate: u64,
    pub rtprop: Duration,
}

/// A token-bucket policer in front of the bottleneck: drops what exceeds
/// `rate` bytes/s with a bucket of `burst` bytes.
#[derive(Debug, Clone, Copy)]
pub struct Policer {
    pub rate: u64,
    pub burst: u64,
}

/// The state after one ACK, for tests that read a run like a trace.
#[derive(Debug, Clone)]
pub struct Row {
    pub now: Instant,
    pub mode: Option<&'static str>,
    pub cwnd: u32,
    pub in_flight: u32,
    pub pacing_rate: Option<u64>,
    pub losses: u32,
    pub info: CcInfo,
}

impl Row {
    pub fn get(&self, key: &str) -> f64 {
        self.info
            .fields
            .iter()
            .find(|(k, _)| *k == key)
            .map_or(f64::NAN, |&(_, v)| v)
    }
}

/// An ACK-clocked, optionally paced bulk sender over a [`Path`].
pub struct Flow {
    pub d: Driver,
    pub path: Path,
    queue: VecDeque<Seg>,
    link_free: Instant,
    next_send: Instant,
    delivered_time: Instant,
    first_tx: Instant,
    /// Linux `tp->app_limited`: a delivered mark, 0 when not limited.
    app_limited_until: u64,
    /// Drop every segment whose end sequence is in this list (one-shot).
    pub drop: Vec<u32>,
    pub policer: Option<Policer>,
    /// ACK aggregation (Wi-Fi, cable, LRO/GRO at the receiver): ACKs are
    /// held and released together at multiples of this interval.
    pub ack_aggregation: Option<Duration>,
    tokens: f64,
    tokens_at: Instant,
    /// One row per ACK when `tracing`.
    pub trace: Vec<Row>,
    pub tracing: bool,
    pub rtt_samples: Vec<Duration>,
    pub rate_samples: u32,
}

impl Flow {
    pub fn new(cc: Box<dyn CongestionControl>, path: Path) -> Self {
        let d = Driver::new(cc, 10);
        Flow {
            d,
            path,
            queue: VecDeque::new(),
            link_free: Instant::ZERO,
            next_send: Instant::ZERO,
            delivered_time: Instant::ZERO,
            first_tx: Instant::ZERO,
            app_limited_until: 0,
            drop: Vec::new(),
            policer: None,
            ack_aggregation: None,
            tokens: f64::INFINITY,
            tokens_at: Instant::ZERO,
            trace: Vec::new(),
            tracing: false,
            rtt_samples: Vec::new(),
            rate_samples: 0,
        }
    }

    pub fn now(&self) -> Instant {
        self.d.now
    }

    fn send(&mut self) {
        let now = self.d.now;
        if self.queue.is_empty() {
            // draft-cheng §3.2: a flight starting from idle restarts the
            // sampling interval.
            self.first_tx = now;
            self.delivered_time = now;
        }
        if self.d.w.app_limited && self.app_limited_until == 0 {
            // Linux: tp->app_limited = (delivered + inflight) ? : 1.
            self.app_limited_until =
                (self.d.w.delivered + u64::from(self.d.w.bytes_in_flight)).max(1);
        }
        let len = MSS;
        self.d.w.snd_nxt = self.d.w.snd_nxt.wrapping_add(len);
        let end = self.d.w.snd_nxt;
        let mut lost = if let Some(i) = self.drop.iter().position(|&e| e == end) {
            self.drop.swap_remove(i);
            true
        } else {
            false
        };
        if let Some(p) = self.policer {
            let dt = (now - self.tokens_at).as_secs_f64();
            self.tokens_at = now;
            self.tokens = (self.tokens + dt * p.rate as f64).min(p.burst as f64);
            if self.tokens >= f64::from(len) {
                self.tokens -= f64::from(len);
            } else {
                lost = true;
            }
        }
        let service = Duration::from_micros(u64::from(len) * 1_000_000 / self.path.rate.max(1));
        let depart = self.link_free.max(now) + service;
        if !lost {
            self.link_free = depart;
        }
        let prev = self.queue.back().map_or(Instant::ZERO, |s| s.ack_at);
        let mut ack_at = (depart + self.path.rtprop).max(prev);
        if let Some(q) = self.ack_aggregation {
            let q = (q.as_micros() as u64).max(1);
            ack_at = Instant::from_micros(ack_at.total_micros().div_ceil(q) * q);
        }
        self.queue.push_back(Seg {
            end,
            len,
            sent: now,
            ack_at,
            delivered: self.d.w.delivered,
            delivered_time: self.delivered_time,
            first_tx: self.first_tx,
            app_limited: self.app_limited_until > 0,
            lost,
        });
        self.d.w.bytes_in_flight += len;
        if let Some(rate) = self.d.w.pacing_rate.filter(|&r| r > 0) {
            self.next_send = now + Duration::from_micros(u64::from(len) * 1_000_000 / rate);
        }
    }

    /// Runs until `until`: sends whenever cwnd and pacing allow, processes
    /// ACKs in order. A lost segment is detected (as RACK would) when a
    /// later segment is acknowledged: it leaves the flight as lost and the
    /// ACK's rate sample reports the loss; Recovery is entered and left at
    /// once (a one-ACK episode), enough for the controllers' hooks.
    pub fn run(&mut self, until: Instant) {
        loop {
            let can_send = self.d.w.bytes_in_flight + MSS <= self.d.w.cwnd;
            let send_at = if can_send {
                Some(self.next_send.max(self.d.now))
            } else {
                None
            };
            let ack_at = self.queue.front().map(|s| s.ack_at);
            let (t, is_send) = match (send_at, ack_at) {
                (Some(s), Some(a)) if s <= a => (s, true),
                (Some(s), None) => (s, true),
                (_, Some(a)) => (a, false),
                (None, None) => break,
            };
            if t > until {
                self.d.now = until;
                break;
            }
            self.d.now = t;
            if is_send {
                self.send();
            } else {
                self.ack_front();
            }
        }
    }

    fn ack_front(&mut self) {
        let mut losses = 0;
        while self.queue.front().is_some_and(|s| s.lost) {
            if let Some(s) = self.queue.pop_front() {
                losses += s.len;
                self.d.w.bytes_in_flight -= s.len;
                self.d.w.lost += u64::from(s.len);
            }
        }
        let Some(p) = self.queue.pop_front() else {
            return;
        };
        let now = self.d.now;
        let prior_in_flight = self.d.w.bytes_in_flight + losses;
        self.d.w.bytes_in_flight -= p.len;
        self.d.w.snd_una = p.end;
        self.d.w.delivered += u64::from(p.len);
        self.delivered_time = now;
        if self.app_limited_until > 0 && self.d.w.delivered > self.app_limited_until {
            self.app_limited_until = 0;
            self.d.w.app_limited = false;
        }
        let rtt = now - p.sent;
        self.rtt_samples.push(rtt);
        self.d.set_rtt(rtt);
        // draft-cheng §3.3: the interval is the longer of the send and ACK
        // phases; shorter than min_rtt is not trusted (Linux).
        self.first_tx = p.sent;
        let interval = (p.sent - p.first_tx).max(now - p.delivered_time);
        let min_rtt = self.d.w.min_rtt.unwrap_or(Duration::ZERO);
        let rs = RateSample {
            delivered: self.d.w.delivered - p.delivered,
            interval: if interval < min_rtt {
                Duration::ZERO
            } else {
                interval
            },
            prior_delivered: p.delivered,
            rtt: Some(rtt),
            losses,
            acked_sacked: p.len,
            prior_in_flight,
            is_app_limited: p.app_limited,
        };
        self.rate_samples += 1;
        if losses > 0 {
            self.d.save_prior();
            self.d.set_state(CaState::Recovery);
            let ss = self.d.cc.ssthresh(&self.d.w, now);
            self.d.w.ssthresh = ss.max(2 * MSS);
        }
        let sample = AckSample {
            acked_bytes: p.len,
            rtt: Some(rtt),
            prior_in_flight,
        };
        self.d.cc.pkts_acked(&self.d.w, &sample, now);
        if !self.d.cc.cong_control(&mut self.d.w, &rs, now) {
            if losses > 0 {
                self.d.w.cwnd = self.d.w.ssthresh;
            } else {
                self.d.cc.cong_avoid(&mut self.d.w, &sample, now);
            }
        }
        if losses > 0 {
            self.d.set_state(CaState::Open);
        }
        self.d.w.cwnd = self.d.w.cwnd.max(MSS);
        if self.tracing {
            self.trace.push(Row {
                now,
                mode: self.d.cc.mode(),
                cwnd: self.d.w.cwnd,
                in_flight: self.d.w.bytes_in_flight,
                pacing_rate: self.d.w.pacing_rate,
                losses,
                info: self.d.cc.info(),
            });
        }
    }
}
