//! NewReno's window growth (RFC 5681 §3.1) with appropriate byte counting
//! (RFC 3465). The fast-recovery mechanics of RFC 6582 live in the
//! connection's loss recovery; this controller decides only the window.

use super::{AckSample, CcInfo, CongestionControl, CwndEvent, Window};
use crate::time::Instant;

/// RFC 3465 §2.2: L, the slow-start byte-counting limit, in segments.
const ABC_LIMIT_SEGMENTS: u32 = 2;

#[derive(Debug, Clone, Default)]
pub struct NewReno {
    /// Bytes acknowledged since cwnd last grew in congestion avoidance.
    bytes_acked: u32,
    /// Whether the last ACK found the window in slow start (for `mode`).
    in_congestion_avoidance: bool,
    /// Congestion events answered (`ssthresh` calls: loss, ECN, RTO).
    congestion_events: u32,
    /// Retransmission timeouts seen (`CwndEvent::Loss`).
    timeouts: u32,
    /// ECN-Echo events seen (`CwndEvent::EcnIsCe`).
    ecn_echoes: u32,
    /// Spurious responses undone (`undo_cwnd`).
    undos: u32,
}

impl NewReno {
    pub fn new() -> Self {
        Self::default()
    }
}

impl CongestionControl for NewReno {
    fn name(&self) -> &'static str {
        "newreno"
    }

    /// RFC 5681 §3.1 eq. (4): ssthresh = max(FlightSize / 2, 2·SMSS).
    fn ssthresh(&mut self, w: &Window, _now: Instant) -> u32 {
        self.bytes_acked = 0;
        self.congestion_events = self.congestion_events.saturating_add(1);
        (w.bytes_in_flight / 2).max(2 * w.mss)
    }

    fn cong_avoid(&mut self, w: &mut Window, ack: &AckSample, _now: Instant) {
        let mss = w.mss.max(1);
        let mut acked = ack.acked_bytes;
        self.in_congestion_avoidance = !w.in_slow_start();
        if w.in_slow_start() {
            // RFC 3465 §2.2: cwnd += min(N, L·SMSS), without passing
            // ssthresh; what is left over counts toward congestion avoidance
            // (as Linux's tcp_slow_start returns leftover ACKs).
            let grow = acked.min(ABC_LIMIT_SEGMENTS * mss);
            let room = w.ssthresh.saturating_sub(w.cwnd);
            let used = grow.min(room);
            w.cwnd = w.cwnd.saturating_add(used);
            acked = if used < grow { acked - used } else { 0 };
            if acked == 0 {
                return;
            }
        }
        // RFC 5681 §3.1 / RFC 3465 §2.1: one SMSS per cwnd's worth of bytes
        // acknowledged, i.e. about one segment per round trip.
        self.bytes_acked = self.bytes_acked.saturating_add(acked);
        while self.bytes_acked >= w.cwnd && w.cwnd > 0 {
            self.bytes_acked -= w.cwnd;
            w.cwnd = w.cwnd.saturating_add(mss);
        }
    }

    fn cwnd_event(&mut self, _w: &mut Window, ev: CwndEvent, _now: Instant) {
        match ev {
            CwndEvent::Loss => self.timeouts = self.timeouts.saturating_add(1),
            CwndEvent::EcnIsCe => self.ecn_echoes = self.ecn_echoes.saturating_add(1),
            _ => {}
        }
    }

    /// Linux `tcp_reno_undo_cwnd`: the larger of the current window and the
    /// one before the reduction.
    fn undo_cwnd(&mut self, w: &Window) -> u32 {
        self.undos = self.undos.saturating_add(1);
        w.cwnd.max(w.prior_cwnd)
    }

    fn info(&self) -> CcInfo {
        CcInfo {
            fields: vec![
                ("ca_bytes_acked", f64::from(self.bytes_acked)),
                ("congestion_events", f64::from(self.congestion_events)),
                ("timeouts", f64::from(self.timeouts)),
                ("ecn_echoes", f64::from(self.ecn_echoes)),
                ("undos", f64::from(self.undos)),
            ],
        }
    }

    fn mode(&self) -> Option<&'static str> {
        Some(if self.in_congestion_avoidance {
            "congestion_avoidance"
        } else {
            "slow_start"
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slow_start_counts_at_most_two_segments_per_ack() {
        let mut c = NewReno::new();
        let mut w = Window::new(10 * 1000, 1000);
        let ack = AckSample {
            acked_bytes: 5000,
            ..AckSample::default()
        };
        c.cong_avoid(&mut w, &ack, Instant::ZERO);
        assert_eq!(w.cwnd, 12_000);
    }

    #[test]
    fn slow_start_stops_at_ssthresh_and_carries_over() {
        let mut c = NewReno::new();
        let mut w = Window::new(9_500, 1000);
        w.ssthresh = 10_000;
        let ack = AckSample {
            acked_bytes: 2000,
            ..AckSample::default()
        };
        c.cong_avoid(&mut w, &ack, Instant::ZERO);
        assert_eq!(w.cwnd, 10_000);
        assert_eq!(c.bytes_acked, 1500);
    }

    #[test]
    fn ssthresh_halves_flight_with_a_floor_of_two_segments() {
        let mut c = NewReno::new();
        let mut w = Window::new(10_000, 1000);
        w.bytes_in_flight = 10_000;
        assert_eq!(c.ssthresh(&w, Instant::ZERO), 5_000);
        w.bytes_in_flight = 1_000;
        assert_eq!(c.ssthresh(&w, Instant::ZERO), 2_000);
    }
}
