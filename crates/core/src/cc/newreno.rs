//! NewReno's window growth (RFC 5681 §3.1) with appropriate byte counting
//! (RFC 3465). The fast-recovery mechanics of RFC 6582 live in the
//! connection's loss recovery; this controller decides only the window.

use super::{AckSample, CcInfo, CongestionControl, Window};
use crate::time::Instant;

/// RFC 3465 §2.2: L, the slow-start byte-counting limit, in segments.
const ABC_LIMIT_SEGMENTS: u32 = 2;

#[derive(Debug, Clone, Default)]
pub struct NewReno {
    /// Bytes acknowledged since cwnd last grew in congestion avoidance.
    bytes_acked: u32,
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
        (w.bytes_in_flight / 2).max(2 * w.mss)
    }

    fn cong_avoid(&mut self, w: &mut Window, ack: &AckSample, _now: Instant) {
        let mss = w.mss.max(1);
        let mut acked = ack.acked_bytes;
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

    fn info(&self) -> CcInfo {
        CcInfo {
            fields: vec![("ca_bytes_acked", f64::from(self.bytes_acked))],
        }
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
