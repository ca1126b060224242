//! Receive-buffer autotuning, after Linux's dynamic right-sizing
//! (`tcp_rcv_space_adjust`, `tcp_rcv_rtt_measure*` in net/ipv4/tcp_input.c;
//! Fisk & Feng, "Dynamic right-sizing in TCP").
//!
//! The receiver estimates the round-trip time on its own side and, once
//! per RTT, compares the bytes the application consumed in that RTT with
//! the previous round's. When the application keeps up and the rate grows,
//! the buffer (and so the advertised window) grows to about twice what one
//! RTT carries plus room for the sender's growth, up to a maximum. The
//! buffer never shrinks, and a connection whose size was set explicitly
//! (`TcpConfig::recv_buffer_max = None`, like `SO_RCVBUF` on Linux) keeps
//! it.

use crate::time::{Duration, Instant};
use daytona_wire::SeqNum;

/// Autotuning state of one connection.
#[derive(Debug, Clone)]
pub(crate) struct RecvAutotune {
    /// Largest buffer autotuning may reach; `None` disables it.
    max: Option<usize>,
    /// Bytes the application consumed in the last measured RTT (Linux
    /// `rcvq_space.space`).
    space: u64,
    /// Bytes consumed when the current measurement started, and when.
    copied_at_start: u64,
    start: Option<Instant>,
    /// Receiver-side RTT estimate (Linux `rcv_rtt_est`).
    rtt: Option<Duration>,
    /// Window-based measurement: the time until `rcv_nxt` passes `win_seq`.
    win_seq: SeqNum,
    win_start: Option<Instant>,
}

impl RecvAutotune {
    pub fn new(max: Option<usize>, initial_space: u64) -> Self {
        RecvAutotune {
            max,
            space: initial_space.max(1),
            copied_at_start: 0,
            start: None,
            rtt: None,
            win_seq: SeqNum::default(),
            win_start: None,
        }
    }

    /// The receiver-side RTT estimate, once there is one.
    pub fn rtt(&self) -> Option<Duration> {
        self.rtt
    }

    /// A sample from the echo of our own timestamp in a full-sized data
    /// segment (Linux `tcp_rcv_rtt_measure_ts`): smoothed with gain 1/8.
    pub fn timestamp_sample(&mut self, sample: Duration) {
        if sample.is_zero() {
            return;
        }
        self.rtt = Some(match self.rtt {
            Some(m) => m - m / 8 + sample / 8,
            None => sample,
        });
    }

    /// Without timestamps (Linux `tcp_rcv_rtt_measure`): the time one
    /// advertised window takes to arrive. It overestimates the RTT when the
    /// sender is not window-limited, so the smallest sample wins.
    pub fn data_arrived(&mut self, now: Instant, rcv_nxt: SeqNum, rcv_wnd: u32) {
        match self.win_start {
            Some(start) if !rcv_nxt.before(self.win_seq) => {
                let sample = now.saturating_since(start);
                if !sample.is_zero() {
                    self.rtt = Some(self.rtt.map_or(sample, |m| m.min(sample)));
                }
            }
            Some(_) => return,
            None => {}
        }
        self.win_seq = rcv_nxt + rcv_wnd;
        self.win_start = Some(now);
    }

    /// Once per receiver RTT: the buffer size the last round asks for, if it
    /// is larger than `capacity` (Linux `tcp_rcv_space_adjust`). `copied` is
    /// the total the application has consumed, `adv_mss` the MSS we
    /// advertised, `limit` what the stack's memory budget allows.
    pub fn adjust(
        &mut self,
        now: Instant,
        copied: u64,
        adv_mss: u32,
        capacity: usize,
        limit: usize,
    ) -> Option<usize> {
        let Some(start) = self.start else {
            self.start = Some(now);
            self.copied_at_start = copied;
            return None;
        };
        let rtt = self.rtt?;
        if now.saturating_since(start) < rtt {
            return None;
        }
        let round = copied.saturating_sub(self.copied_at_start);
        self.start = Some(now);
        self.copied_at_start = copied;
        let max = self.max?;
        if round <= self.space {
            return None;
        }
        // Twice the round plus 16 segments of slack, and, when the round
        // grew, room for the sender's growth in proportion (slow start
        // doubles per RTT).
        let mut win = 2 * round + 16 * u64::from(adv_mss);
        let grow = win.saturating_mul(round - self.space) / self.space;
        win = win.saturating_add(2 * grow);
        self.space = round;
        let target = usize::try_from(win)
            .unwrap_or(usize::MAX)
            .min(max)
            .min(limit);
        (target > capacity).then_some(target)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grows_when_the_application_consumes_more_each_round() {
        let mut a = RecvAutotune::new(Some(4 << 20), 14_480);
        a.timestamp_sample(Duration::from_millis(10));
        let t = |ms| Instant::from_millis(ms);
        assert_eq!(a.adjust(t(0), 0, 1448, 65_536, usize::MAX), None);
        // Too early: less than one RTT since the measurement started.
        assert_eq!(a.adjust(t(5), 50_000, 1448, 65_536, usize::MAX), None);
        // 100 kB in one RTT against 14.5 kB before: 2·100k + 16·1448 =
        // 223,168, plus twice 223,168·85,520/14,480 for the growth.
        let grown = a.adjust(t(10), 100_000, 1448, 65_536, usize::MAX);
        assert_eq!(grown, Some(223_168 + 2 * 1_318_047));
        // The same rate again asks for nothing more.
        assert_eq!(a.adjust(t(20), 200_000, 1448, 4 << 20, usize::MAX), None);
    }

    #[test]
    fn growth_is_proportional_and_respects_the_limits() {
        let mut a = RecvAutotune::new(Some(1 << 30), 100_000);
        a.timestamp_sample(Duration::from_millis(10));
        let t = |ms| Instant::from_millis(ms);
        a.adjust(t(0), 0, 1000, 0, usize::MAX);
        // Round of 150 kB after 100 kB: win = 316,000, grow = 158,000.
        let grown = a.adjust(t(10), 150_000, 1000, 0, usize::MAX);
        assert_eq!(grown, Some(316_000 + 2 * 158_000));
        // The stack's memory budget caps the step.
        let capped = a.adjust(t(20), 450_000, 1000, 0, 500_000);
        assert_eq!(capped, Some(500_000));
    }

    #[test]
    fn a_fixed_buffer_never_grows() {
        let mut a = RecvAutotune::new(None, 1000);
        a.timestamp_sample(Duration::from_millis(1));
        a.adjust(Instant::from_millis(0), 0, 1000, 0, usize::MAX);
        assert_eq!(
            a.adjust(Instant::from_millis(5), 1 << 20, 1000, 0, usize::MAX),
            None
        );
    }

    #[test]
    fn window_samples_keep_the_smallest() {
        let mut a = RecvAutotune::new(None, 1000);
        let s = SeqNum::new(u32::MAX - 100);
        a.data_arrived(Instant::from_millis(0), s, 1000);
        a.data_arrived(Instant::from_millis(3), s + 500, 1000);
        assert_eq!(a.rtt(), None, "the window has not yet arrived");
        a.data_arrived(Instant::from_millis(8), s + 1000, 1000);
        assert_eq!(a.rtt(), Some(Duration::from_millis(8)));
        a.data_arrived(Instant::from_millis(20), s + 2000, 1000);
        assert_eq!(a.rtt(), Some(Duration::from_millis(8)));
        a.data_arrived(Instant::from_millis(25), s + 3000, 1000);
        assert_eq!(a.rtt(), Some(Duration::from_millis(5)));
    }
}
