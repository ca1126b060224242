//! HyStart++ (RFC 9406): slow start that leaves early, through a
//! Conservative Slow Start (CSS) phase, when the RTT of a round rises —
//! before the queue overflows and a whole window of data is lost.
//!
//! The state is the RFC's variables; [`HyStartPlusPlus::on_ack`] is its §4.2
//! pseudocode for one ACK. It is a building block for controllers (CUBIC
//! uses it); it changes only `Window::cwnd` and, when it ends slow start,
//! `Window::ssthresh`.
//!
//! RTT rounds: a round starts by recording `windowEnd = SND.NXT`
//! (`Window::snd_nxt`) and ends when an ACK moves SND.UNA
//! (`Window::snd_una`) to or past it.

use super::Window;
use crate::time::Duration;

/// RFC 9406 §4.3: lower bound of the RTT increase that triggers CSS.
pub const MIN_RTT_THRESH: Duration = Duration::from_millis(4);
/// RFC 9406 §4.3: upper bound of the RTT increase that triggers CSS.
pub const MAX_RTT_THRESH: Duration = Duration::from_millis(16);
/// RFC 9406 §4.3: the threshold is the last round's min RTT over this.
pub const MIN_RTT_DIVISOR: u32 = 8;
/// RFC 9406 §4.3: RTT samples a round needs before it is judged.
pub const N_RTT_SAMPLE: u32 = 8;
/// RFC 9406 §4.3: CSS grows cwnd at 1/4 of slow start's rate.
pub const CSS_GROWTH_DIVISOR: u32 = 4;
/// RFC 9406 §4.3: rounds spent in CSS before congestion avoidance.
pub const CSS_ROUNDS: u32 = 5;
/// RFC 9406 §4.3: L, the per-ACK growth limit in segments for a sender that
/// does not pace (a pacing sender has no limit).
pub const NON_PACED_L: u32 = 8;

/// Where HyStart++ stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Standard slow start with RTT monitoring.
    SlowStart,
    /// Conservative Slow Start. `rounds` counts round ends seen in CSS; the
    /// round in which CSS began is partial and does not count toward
    /// CSS_ROUNDS, so CSS lasts CSS_ROUNDS full rounds.
    Css { rounds: u32 },
    /// Slow start is over (ended by CSS, a loss or ECN): congestion
    /// avoidance. RFC 9406 §4.3 recommends HyStart++ only for the initial
    /// slow start; later slow starts (after an RTO) are standard.
    Done,
}

/// The RFC 9406 §4.2 state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HyStartPlusPlus {
    phase: Phase,
    /// `windowEnd`: the round ends when SND.UNA reaches it.
    window_end: Option<u32>,
    last_round_min_rtt: Option<Duration>,
    current_round_min_rtt: Option<Duration>,
    css_baseline_min_rtt: Option<Duration>,
    rtt_sample_count: u32,
}

impl Default for HyStartPlusPlus {
    fn default() -> Self {
        HyStartPlusPlus {
            phase: Phase::SlowStart,
            window_end: None,
            last_round_min_rtt: None,
            current_round_min_rtt: None,
            css_baseline_min_rtt: None,
            rtt_sample_count: 0,
        }
    }
}

/// `a` is at or after `b` in sequence space (RFC 9293 §3.4 arithmetic).
fn seq_after_eq(a: u32, b: u32) -> bool {
    (a.wrapping_sub(b) as i32) >= 0
}

impl HyStartPlusPlus {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn phase(&self) -> Phase {
        self.phase
    }

    /// RFC 9406 §4.3: `RttThresh = max(MIN_RTT_THRESH,
    /// min(lastRoundMinRTT / MIN_RTT_DIVISOR, MAX_RTT_THRESH))`.
    pub fn rtt_thresh(last_round_min_rtt: Duration) -> Duration {
        (last_round_min_rtt / MIN_RTT_DIVISOR).clamp(MIN_RTT_THRESH, MAX_RTT_THRESH)
    }

    /// The min RTT of the current round so far.
    pub fn current_round_min_rtt(&self) -> Option<Duration> {
        self.current_round_min_rtt
    }

    /// RFC 9406 §4.2: "If loss or ECN-marking is observed at any time
    /// during standard slow start or CSS, enter congestion avoidance" —
    /// the controller sets ssthresh itself.
    pub fn on_congestion(&mut self) {
        self.phase = Phase::Done;
    }

    /// One ACK in slow start (`w.cwnd < w.ssthresh`): `acked` bytes newly
    /// acknowledged, `rtt` the ACK's RTT sample. Grows cwnd and returns the
    /// acknowledged bytes it did not use because cwnd reached ssthresh,
    /// which the caller counts toward congestion avoidance (as Linux's
    /// `tcp_slow_start` does).
    pub fn on_ack(&mut self, w: &mut Window, acked: u32, rtt: Option<Duration>) -> u32 {
        let mss = w.mss.max(1);
        // RFC 9406 §4.2: L = infinity when paced, 8 otherwise.
        let limit = if w.pacing_rate.is_some() {
            u32::MAX
        } else {
            NON_PACED_L.saturating_mul(mss)
        };
        let mut grow = acked.min(limit);

        if self.phase != Phase::Done {
            // A round ends when the ACK covers the sequence recorded at its
            // start; the next one starts at once.
            let round_over = match self.window_end {
                None => true,
                Some(end) => seq_after_eq(w.snd_una, end),
            };
            if round_over {
                if let Phase::Css { rounds } = self.phase {
                    let rounds = rounds + 1;
                    if rounds > CSS_ROUNDS {
                        // RFC 9406 §4.2: "If CSS_ROUNDS rounds are complete,
                        // enter congestion avoidance by setting the ssthresh
                        // to the current cwnd."
                        self.phase = Phase::Done;
                        w.ssthresh = w.cwnd;
                        return acked;
                    }
                    self.phase = Phase::Css { rounds };
                }
                self.window_end = Some(w.snd_nxt);
                self.last_round_min_rtt = self.current_round_min_rtt;
                self.current_round_min_rtt = None;
                self.rtt_sample_count = 0;
            }
            if let Some(r) = rtt {
                self.current_round_min_rtt =
                    Some(self.current_round_min_rtt.map_or(r, |m| m.min(r)));
                self.rtt_sample_count += 1;
            }
            if let Phase::Css { .. } = self.phase {
                // RFC 9406 §4.2: cwnd += min(N, L·SMSS) / CSS_GROWTH_DIVISOR.
                grow /= CSS_GROWTH_DIVISOR;
            }
        }

        // Standard growth, not past ssthresh (RFC 5681 §3.1).
        let room = w.ssthresh.saturating_sub(w.cwnd);
        let used = grow.min(room);
        w.cwnd = w.cwnd.saturating_add(used);
        let leftover = if used < grow {
            acked.saturating_sub(used)
        } else {
            0
        };

        if self.rtt_sample_count >= N_RTT_SAMPLE {
            if let (Some(cur), Some(last)) = (self.current_round_min_rtt, self.last_round_min_rtt) {
                match self.phase {
                    Phase::SlowStart => {
                        // RFC 9406 §4.2: a delay increase of RttThresh over
                        // the last round ends standard slow start.
                        if cur >= last + Self::rtt_thresh(last) {
                            self.css_baseline_min_rtt = Some(cur);
                            self.phase = Phase::Css { rounds: 0 };
                        }
                    }
                    Phase::Css { .. } => {
                        // RFC 9406 §4.2: the increase was spurious — the RTT
                        // fell below the CSS baseline: resume slow start.
                        if self.css_baseline_min_rtt.is_some_and(|b| cur < b) {
                            self.css_baseline_min_rtt = None;
                            self.phase = Phase::SlowStart;
                        }
                    }
                    Phase::Done => {}
                }
            }
        }
        leftover
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rtt_thresh_is_an_eighth_of_the_last_round_clamped_to_4_16_ms() {
        let t = HyStartPlusPlus::rtt_thresh;
        assert_eq!(t(Duration::from_millis(10)), MIN_RTT_THRESH);
        assert_eq!(t(Duration::from_millis(80)), Duration::from_millis(10));
        assert_eq!(t(Duration::from_millis(400)), MAX_RTT_THRESH);
    }

    #[test]
    fn growth_is_limited_to_eight_segments_per_ack_when_not_paced() {
        let mut h = HyStartPlusPlus::new();
        let mut w = Window::new(10_000, 1000);
        h.on_ack(&mut w, 20_000, None);
        assert_eq!(w.cwnd, 18_000);
        w.pacing_rate = Some(1_000_000);
        h.on_ack(&mut w, 20_000, None);
        assert_eq!(w.cwnd, 38_000);
    }

    #[test]
    fn sequence_comparison_wraps() {
        assert!(seq_after_eq(5, u32::MAX - 5));
        assert!(!seq_after_eq(u32::MAX - 5, 5));
        assert!(seq_after_eq(7, 7));
    }
}
