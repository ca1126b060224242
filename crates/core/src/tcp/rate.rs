//! Delivery-rate estimation (draft-cheng-iccrg-delivery-rate-estimation,
//! Linux `tcp_rate.c`): every segment carries a snapshot of the
//! connection's delivery state when it was sent; every ACK turns the
//! newest delivered segment's snapshot into a rate sample.

use super::scoreboard::{AckSummary, TxSnapshot};
use crate::time::{Duration, Instant};

/// The connection's delivery state (draft §3.1: `C.delivered`,
/// `C.delivered_time`, `C.first_tx_time`, `C.app_limited`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateEstimator {
    pub delivered: u64,
    pub delivered_time: Instant,
    pub first_tx_time: Instant,
    /// Non-zero while application-limited: the `delivered` count at which
    /// the limited period's data is all acknowledged (draft §3.4).
    pub app_limited_until: u64,
}

/// One rate sample (draft §3.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sample {
    pub delivered: u64,
    pub interval: Duration,
    pub prior_delivered: u64,
    pub is_app_limited: bool,
    /// The interval is shorter than the minimum RTT: too short to trust
    /// (Linux discards it).
    pub valid: bool,
}

impl RateEstimator {
    pub fn new(now: Instant) -> Self {
        RateEstimator {
            delivered: 0,
            delivered_time: now,
            first_tx_time: now,
            app_limited_until: 0,
        }
    }

    /// Draft §3.2 (`OnPacketSent`): the snapshot for a segment sent now.
    pub fn on_send(&mut self, now: Instant, nothing_in_flight: bool) -> TxSnapshot {
        if nothing_in_flight {
            self.first_tx_time = now;
            self.delivered_time = now;
        }
        TxSnapshot {
            delivered: self.delivered,
            delivered_time: self.delivered_time,
            first_tx_time: self.first_tx_time,
            app_limited: self.app_limited_until != 0,
        }
    }

    /// Draft §3.4: the sender ran out of data to send while the window had
    /// room: samples until this flight is delivered are app-limited.
    pub fn on_app_limited(&mut self, in_flight: u32) {
        self.app_limited_until = (self.delivered + u64::from(in_flight)).max(1);
    }

    /// Draft §3.3 (`UpdateRateSample` and `GenerateRateSample`) for one ACK.
    pub fn on_ack(
        &mut self,
        now: Instant,
        acked: &AckSummary,
        min_rtt: Option<Duration>,
    ) -> Option<Sample> {
        if acked.delivered_bytes == 0 {
            return None;
        }
        self.delivered += u64::from(acked.delivered_bytes);
        self.delivered_time = now;
        if self.app_limited_until != 0 && self.delivered > self.app_limited_until {
            self.app_limited_until = 0;
        }
        let p = acked.rate_from?;
        let send_elapsed = p.xmit_time.saturating_since(p.snapshot.first_tx_time);
        let ack_elapsed = now.saturating_since(p.snapshot.delivered_time);
        self.first_tx_time = p.xmit_time;
        // Draft §3.3: the longer of the two phases, so ACK compression
        // cannot inflate the rate.
        let interval = send_elapsed.max(ack_elapsed);
        let valid = !interval.is_zero() && min_rtt.is_none_or(|m| interval >= m);
        Some(Sample {
            delivered: self.delivered - p.snapshot.delivered,
            interval,
            prior_delivered: p.snapshot.delivered,
            is_app_limited: p.snapshot.app_limited,
            valid,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tcp::scoreboard::Scoreboard;
    use daytona_wire::SeqNum;

    #[test]
    fn a_steady_flight_measures_the_bottleneck_rate() {
        // 10 segments of 1000 bytes sent at once, ACKed 1 ms apart after a
        // 50 ms RTT: 1000 bytes/ms = 1 MB/s once the pipe is measured.
        let t0 = Instant::from_secs(1);
        let mut r = RateEstimator::new(t0);
        let mut b = Scoreboard::new();
        for i in 0..10u32 {
            let snap = r.on_send(t0, i == 0);
            b.push(SeqNum(i * 1000), 1000, false, t0, snap);
        }
        let mut last = None;
        for i in 1..=10u32 {
            let now = t0 + Duration::from_millis(49 + u64::from(i));
            let mut s = AckSummary::default();
            b.ack(SeqNum(i * 1000), &mut s);
            last = r.on_ack(now, &s, Some(Duration::from_millis(50)));
        }
        let s = last.unwrap();
        assert_eq!(s.delivered, 10_000);
        assert_eq!(s.interval, Duration::from_millis(59));
        assert!(s.valid);
        assert!(!s.is_app_limited);
    }

    #[test]
    fn samples_of_an_app_limited_flight_are_marked() {
        let t0 = Instant::from_secs(1);
        let mut r = RateEstimator::new(t0);
        let mut b = Scoreboard::new();
        r.on_app_limited(0);
        let snap = r.on_send(t0, true);
        b.push(SeqNum(0), 100, false, t0, snap);
        let mut s = AckSummary::default();
        b.ack(SeqNum(100), &mut s);
        let sample = r.on_ack(t0 + Duration::from_millis(10), &s, None).unwrap();
        assert!(sample.is_app_limited);
        // Delivered past the mark: no longer limited.
        assert_eq!(r.app_limited_until, 0);
    }
}
