//! RACK-TLP (RFC 8985): time-based loss detection with an adaptive
//! reordering window, and the tail loss probe.
//!
//! This module keeps RACK's and TLP's state and formulas; the scoreboard
//! does the per-segment marking (`Scoreboard::rack_detect`) and the
//! connection decides when to call what.

use crate::time::{Duration, Instant};
use daytona_wire::SeqNum;

/// RFC 8985 §7.2: the worst-case delayed-ACK time used for a probe when
/// only one segment is in flight.
pub const WC_DEL_ACK: Duration = Duration::from_millis(200);

/// RACK state (RFC 8985 §6.1).
#[derive(Debug, Clone, Default)]
pub struct Rack {
    /// Send time and end of the most recently sent segment delivered so far.
    pub xmit_ts: Option<Instant>,
    pub end_seq: SeqNum,
    /// RTT of that segment.
    pub rtt: Duration,
    /// Minimum RTT seen (from the connection's estimator).
    pub min_rtt: Option<Duration>,
    /// Reordering was observed on this connection.
    pub reordering_seen: bool,
    /// Multiplier of the reordering window, raised by D-SACKs.
    pub reo_wnd_mult: u32,
    /// Recoveries left before the multiplier is reset.
    pub reo_wnd_persist: u32,
    /// A D-SACK round is under way until SND.UNA passes this.
    pub dsack_round: Option<SeqNum>,
}

impl Rack {
    pub fn new() -> Self {
        Rack {
            reo_wnd_mult: 1,
            ..Rack::default()
        }
    }

    /// RFC 8985 §6.2 step 2 (`RACK_update`): a segment sent at `xmit_ts`
    /// and ending at `end` was delivered at `now`. `ambiguous` when it was
    /// retransmitted and the ACK may be for the original (the caller
    /// checks the timestamp echo or the RTT against min_rtt).
    pub fn update(&mut self, now: Instant, xmit_ts: Instant, end: SeqNum, ambiguous: bool) {
        let rtt = now - xmit_ts;
        if ambiguous {
            return;
        }
        let newer = match self.xmit_ts {
            None => true,
            Some(t) => xmit_ts > t || (xmit_ts == t && end.after(self.end_seq)),
        };
        if newer {
            self.rtt = rtt;
            self.xmit_ts = Some(xmit_ts);
            self.end_seq = end;
        }
    }

    /// RFC 8985 §6.2 step 4 (`RACK_update_reo_wnd`) bookkeeping for a
    /// D-SACK: widen the window once per round trip.
    pub fn on_dsack(&mut self, snd_una: SeqNum, snd_max: SeqNum) {
        if let Some(r) = self.dsack_round {
            if snd_una.after_eq(r) {
                self.dsack_round = None;
            }
        }
        if self.dsack_round.is_none() {
            self.dsack_round = Some(snd_max);
            self.reo_wnd_mult = self.reo_wnd_mult.saturating_add(1);
            self.reo_wnd_persist = 16;
        }
    }

    /// Leaving loss recovery: after 16 recoveries without a D-SACK the
    /// window falls back to its base.
    pub fn on_recovery_exit(&mut self) {
        if self.reo_wnd_persist > 0 {
            self.reo_wnd_persist -= 1;
            if self.reo_wnd_persist == 0 {
                self.reo_wnd_mult = 1;
            }
        }
    }

    /// The reordering window (RFC 8985 §6.2 step 4): zero until
    /// reordering is seen if in recovery or DupThresh segments are SACKed,
    /// else min_rtt/4 times the multiplier, capped at SRTT.
    pub fn reo_wnd(
        &self,
        in_recovery: bool,
        sacked_segments: usize,
        srtt: Option<Duration>,
    ) -> Duration {
        if !self.reordering_seen && (in_recovery || sacked_segments >= 3) {
            return Duration::ZERO;
        }
        let base = self.min_rtt.unwrap_or(Duration::ZERO) / 4;
        let wnd = base.saturating_mul(self.reo_wnd_mult);
        match srtt {
            Some(s) => wnd.min(s),
            None => wnd,
        }
    }
}

/// Tail loss probe state (RFC 8985 §7).
#[derive(Debug, Clone, Default)]
pub struct Tlp {
    /// A probe is outstanding; its episode ends when SND.UNA passes this.
    pub end_seq: Option<SeqNum>,
    /// The probe was a retransmission (else new data).
    pub is_retrans: bool,
    /// A D-SACK for the probe arrived: the original was not lost.
    pub dsacked: bool,
}

impl Tlp {
    /// RFC 8985 §7.2: PTO = 2·SRTT, plus the worst-case delayed ACK when one
    /// segment is in flight; 1 s without an RTT sample; never beyond the
    /// RTO deadline.
    pub fn pto(srtt: Option<Duration>, one_segment: bool, rto_left: Option<Duration>) -> Duration {
        let mut pto = match srtt {
            Some(s) => {
                let p = s * 2;
                if one_segment {
                    p + WC_DEL_ACK
                } else {
                    p
                }
            }
            None => Duration::from_secs(1),
        };
        if let Some(left) = rto_left {
            pto = pto.min(left);
        }
        pto
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reordering_window_is_a_quarter_min_rtt_widened_by_dsack() {
        let mut r = Rack::new();
        r.min_rtt = Some(Duration::from_millis(40));
        let srtt = Some(Duration::from_millis(50));
        assert_eq!(r.reo_wnd(false, 0, srtt), Duration::from_millis(10));
        // No reordering seen, in recovery: zero (RFC 8985 §6.2 step 4).
        assert_eq!(r.reo_wnd(true, 0, srtt), Duration::ZERO);
        r.reordering_seen = true;
        r.on_dsack(SeqNum(0), SeqNum(10_000));
        assert_eq!(r.reo_wnd(true, 5, srtt), Duration::from_millis(20));
        // One widening per round trip.
        r.on_dsack(SeqNum(5_000), SeqNum(20_000));
        assert_eq!(r.reo_wnd_mult, 2);
        r.on_dsack(SeqNum(10_000), SeqNum(20_000));
        assert_eq!(r.reo_wnd_mult, 3);
        // Capped at SRTT.
        for i in 0..10 {
            r.on_dsack(SeqNum(30_000 * (i + 1)), SeqNum(30_000 * (i + 2)));
        }
        assert_eq!(r.reo_wnd(true, 5, srtt), Duration::from_millis(50));
        for _ in 0..16 {
            r.on_recovery_exit();
        }
        assert_eq!(r.reo_wnd_mult, 1);
    }

    #[test]
    fn rack_follows_the_most_recently_sent_delivered_segment() {
        let mut r = Rack::new();
        let t = Instant::from_millis;
        r.update(t(100), t(50), SeqNum(2000), false);
        r.update(t(101), t(40), SeqNum(1000), false);
        assert_eq!((r.xmit_ts, r.end_seq), (Some(t(50)), SeqNum(2000)));
        assert_eq!(r.rtt, Duration::from_millis(50));
        r.update(t(102), t(90), SeqNum(3000), true);
        assert_eq!(r.xmit_ts, Some(t(50)), "ambiguous samples are ignored");
    }

    #[test]
    fn probe_timeout_follows_rfc_8985() {
        let s = Some(Duration::from_millis(30));
        assert_eq!(Tlp::pto(s, false, None), Duration::from_millis(60));
        assert_eq!(Tlp::pto(s, true, None), Duration::from_millis(260));
        assert_eq!(Tlp::pto(None, false, None), Duration::from_secs(1));
        let left = Some(Duration::from_millis(45));
        assert_eq!(Tlp::pto(s, false, left), Duration::from_millis(45));
    }
}
