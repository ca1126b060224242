//! Proportional Rate Reduction (RFC 6937): how much may be sent on each
//! ACK during fast recovery (and ECN's CWR), so the window comes down to
//! ssthresh smoothly instead of halving at once and stalling.

/// PRR state for one recovery episode. All quantities in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Prr {
    /// Bytes delivered to the receiver since recovery began.
    pub delivered: u32,
    /// Bytes sent since recovery began.
    pub out: u32,
    /// FlightSize at the start of recovery (RFC 6937 `RecoverFS`).
    pub recover_fs: u32,
}

impl Prr {
    /// RFC 6937 §3: on entering recovery.
    pub fn start(recover_fs: u32) -> Prr {
        Prr {
            delivered: 0,
            out: 0,
            recover_fs: recover_fs.max(1),
        }
    }

    /// RFC 6937 §3: on every ACK in recovery, the new congestion window
    /// `pipe + sndcnt`, given the bytes this ACK newly delivered.
    pub fn on_ack(&mut self, delivered: u32, pipe: u32, ssthresh: u32, mss: u32) -> u32 {
        self.delivered = self.delivered.saturating_add(delivered);
        let sndcnt = if pipe > ssthresh {
            // Proportional rate reduction.
            let target = (u64::from(self.delivered) * u64::from(ssthresh))
                .div_ceil(u64::from(self.recover_fs));
            target.saturating_sub(u64::from(self.out)) as u32
        } else {
            // PRR-SSRB: slow start back up to ssthresh, at most one MSS
            // beyond what was delivered.
            let limit = self.delivered.saturating_sub(self.out).max(delivered) + mss;
            (ssthresh - pipe).min(limit)
        };
        // Linux `tcp_cwnd_reduction`: the first ACK of an episode always
        // lets the fast retransmission out.
        let sndcnt = if self.out == 0 && delivered > 0 {
            sndcnt.max(mss)
        } else {
            sndcnt
        };
        pipe.saturating_add(sndcnt)
    }

    /// Bytes sent (new data or retransmissions) during recovery.
    pub fn on_send(&mut self, bytes: u32) {
        self.out = self.out.saturating_add(bytes);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MSS: u32 = 1000;

    #[test]
    fn one_loss_in_a_window_of_twenty_sends_about_half_per_ack() {
        // RFC 6937 §5 example: cwnd 20 segments, one loss, ssthresh 10.
        let mut p = Prr::start(20 * MSS);
        let mut pipe = 19 * MSS; // the lost segment left the pipe
        let mut sent = 0;
        for _ in 0..19 {
            let cwnd = p.on_ack(MSS, pipe - MSS, 10 * MSS, MSS);
            pipe -= MSS;
            // Send what the window allows.
            while pipe + MSS <= cwnd {
                pipe += MSS;
                p.on_send(MSS);
                sent += 1;
            }
        }
        // About ssthresh/RecoverFS = 1/2 of the delivered segments went out.
        assert!((9..=10).contains(&sent), "sent {sent}");
        assert!(pipe <= 10 * MSS);
    }

    #[test]
    fn slow_start_reduction_bound_rebuilds_after_heavy_loss() {
        // Pipe fell far below ssthresh: PRR-SSRB grows it by at most
        // delivered + 1 MSS per ACK.
        let mut p = Prr::start(20 * MSS);
        let cwnd = p.on_ack(MSS, 2 * MSS, 10 * MSS, MSS);
        assert_eq!(cwnd, 2 * MSS + 2 * MSS);
    }

    #[test]
    fn first_ack_always_allows_the_fast_retransmission() {
        let mut p = Prr::start(100 * MSS);
        let cwnd = p.on_ack(10, 90 * MSS, 50 * MSS, MSS);
        assert_eq!(cwnd, 91 * MSS);
    }
}
