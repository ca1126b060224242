//! RFC 6298 round-trip time estimation and retransmission timeout, with a
//! windowed minimum RTT (Linux `tcp_min_rtt_wlen`, 5 minutes).

use crate::time::{Duration, Instant};

/// RFC 6298 §2: clock granularity G. Our clock is microseconds; Linux uses
/// one jiffy. One millisecond keeps RTO above SRTT on very fast paths.
const G: Duration = Duration::from_millis(1);
/// Linux `tcp_min_rtt_wlen`: the min-RTT filter window.
const MIN_RTT_WINDOW: Duration = Duration::from_secs(300);

/// A windowed minimum over time: the three best samples in the window
/// (Kathleen Nichols' algorithm, as in Linux `lib/win_minmax.c`).
#[derive(Debug, Clone, Copy, Default)]
struct WindowedMin {
    /// (time, value) — best, second best, third best.
    s: [(Instant, Duration); 3],
    valid: bool,
}

impl WindowedMin {
    fn reset(&mut self, now: Instant, v: Duration) {
        self.s = [(now, v); 3];
        self.valid = true;
    }

    fn update(&mut self, now: Instant, v: Duration, window: Duration) -> Duration {
        if !self.valid || v <= self.s[0].1 || now - self.s[2].0 > window {
            self.reset(now, v);
            return v;
        }
        if v <= self.s[1].1 {
            self.s[1] = (now, v);
            self.s[2] = (now, v);
        } else if v <= self.s[2].1 {
            self.s[2] = (now, v);
        }
        // Expire the best sample once it is older than the window, and let
        // the sub-window samples move up.
        let dt = now - self.s[0].0;
        if dt > window {
            self.s[0] = self.s[1];
            self.s[1] = self.s[2];
            self.s[2] = (now, v);
            if now - self.s[0].0 > window {
                self.s[0] = self.s[1];
                self.s[1] = self.s[2];
                self.s[2] = (now, v);
            }
        } else if self.s[1].0 == self.s[0].0 && dt > window / 4 {
            self.s[1] = (now, v);
            self.s[2] = (now, v);
        } else if self.s[2].0 == self.s[1].0 && dt > window / 2 {
            self.s[2] = (now, v);
        }
        self.s[0].1
    }
}

/// RFC 6298 estimator.
#[derive(Debug, Clone)]
pub struct RttEstimator {
    srtt: Option<Duration>,
    rttvar: Duration,
    latest: Option<Duration>,
    base_rto: Duration,
    min_rto: Duration,
    max_rto: Duration,
    backoff: u32,
    min_rtt: WindowedMin,
}

impl RttEstimator {
    /// RFC 6298 §2.1: before any sample, RTO = `initial_rto` (1 s).
    pub fn new(initial_rto: Duration, min_rto: Duration, max_rto: Duration) -> Self {
        RttEstimator {
            srtt: None,
            rttvar: Duration::ZERO,
            latest: None,
            base_rto: initial_rto.clamp(min_rto, max_rto.max(min_rto)),
            min_rto,
            max_rto: max_rto.max(min_rto),
            backoff: 0,
            min_rtt: WindowedMin::default(),
        }
    }

    /// Feeds one RTT measurement (RFC 6298 §2.2, §2.3).
    pub fn sample(&mut self, rtt: Duration, now: Instant) {
        self.latest = Some(rtt);
        match self.srtt {
            None => {
                // §2.2: SRTT <- R, RTTVAR <- R/2.
                self.srtt = Some(rtt);
                self.rttvar = rtt / 2;
            }
            Some(srtt) => {
                // §2.3: RTTVAR <- 3/4 RTTVAR + 1/4 |SRTT - R'|,
                //       SRTT <- 7/8 SRTT + 1/8 R'.
                let delta = srtt.abs_diff(rtt);
                self.rttvar = (self.rttvar * 3 + delta) / 4;
                self.srtt = Some((srtt * 7 + rtt) / 8);
            }
        }
        let srtt = self.srtt.unwrap_or(rtt);
        // §2.3: RTO <- SRTT + max(G, K*RTTVAR), K = 4; §2.4/§2.5 bounds.
        let rto = srtt + G.max(self.rttvar * 4);
        self.base_rto = rto.clamp(self.min_rto, self.max_rto);
        self.min_rtt.update(now, rtt, MIN_RTT_WINDOW);
    }

    pub fn srtt(&self) -> Option<Duration> {
        self.srtt
    }

    pub fn rttvar(&self) -> Duration {
        self.rttvar
    }

    pub fn latest(&self) -> Option<Duration> {
        self.latest
    }

    /// The minimum RTT over the last 5 minutes.
    pub fn min_rtt(&self) -> Option<Duration> {
        self.min_rtt.valid.then_some(self.min_rtt.s[0].1)
    }

    /// The RTO without backoff.
    pub fn base_rto(&self) -> Duration {
        self.base_rto
    }

    /// The current RTO: base doubled per backoff (RFC 6298 §5.5), at most max.
    pub fn rto(&self) -> Duration {
        let factor = 1u32 << self.backoff.min(20);
        self.base_rto.saturating_mul(factor).min(self.max_rto)
    }

    /// RFC 6298 §5.5: double the timer.
    pub fn backoff(&mut self) {
        self.backoff = self.backoff.saturating_add(1);
    }

    pub fn reset_backoff(&mut self) {
        self.backoff = 0;
    }

    pub fn backoff_count(&self) -> u32 {
        self.backoff
    }

    /// RFC 6298 §5.7: with no sample yet, restart from `rto` (3 s after a
    /// lost SYN).
    pub fn reset_initial(&mut self, rto: Duration) {
        if self.srtt.is_none() {
            self.base_rto = rto.clamp(self.min_rto, self.max_rto);
        }
    }

    pub fn set_min_rto(&mut self, min: Duration) {
        self.min_rto = min;
        self.base_rto = self.base_rto.max(min);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(v: u64) -> Duration {
        Duration::from_millis(v)
    }

    #[test]
    fn first_and_later_samples_follow_rfc6298() {
        let mut r = RttEstimator::new(ms(1000), ms(200), ms(120_000));
        assert_eq!(r.rto(), ms(1000));
        r.sample(ms(100), Instant::ZERO);
        assert_eq!(r.srtt(), Some(ms(100)));
        assert_eq!(r.rttvar(), ms(50));
        // 100 + 4*50 = 300 ms.
        assert_eq!(r.rto(), ms(300));
        r.sample(ms(200), Instant::from_secs(1));
        // RTTVAR = 3/4*50 + 1/4*100 = 62.5; SRTT = 7/8*100 + 1/8*200 = 112.5
        assert_eq!(r.rttvar(), Duration::from_micros(62_500));
        assert_eq!(r.srtt(), Some(Duration::from_micros(112_500)));
        assert_eq!(r.rto(), Duration::from_micros(112_500 + 250_000));
        assert_eq!(r.min_rtt(), Some(ms(100)));
    }

    #[test]
    fn rto_is_clamped_and_backs_off() {
        let mut r = RttEstimator::new(ms(1000), ms(200), ms(2000));
        r.sample(ms(1), Instant::ZERO);
        assert_eq!(r.rto(), ms(200));
        r.backoff();
        assert_eq!(r.rto(), ms(400));
        r.backoff();
        r.backoff();
        r.backoff();
        assert_eq!(r.rto(), ms(2000));
        assert_eq!(r.backoff_count(), 4);
        r.reset_backoff();
        assert_eq!(r.rto(), ms(200));
    }

    #[test]
    fn min_rtt_expires_after_the_window() {
        let mut r = RttEstimator::new(ms(1000), ms(200), ms(120_000));
        r.sample(ms(10), Instant::ZERO);
        r.sample(ms(50), Instant::from_secs(100));
        assert_eq!(r.min_rtt(), Some(ms(10)));
        r.sample(ms(40), Instant::from_secs(400));
        assert_eq!(r.min_rtt(), Some(ms(40)));
    }

    #[test]
    fn syn_timeout_uses_three_seconds_until_a_sample() {
        let mut r = RttEstimator::new(ms(1000), ms(200), ms(120_000));
        r.reset_initial(Duration::from_secs(3));
        assert_eq!(r.rto(), ms(3000));
        r.sample(ms(100), Instant::ZERO);
        r.reset_initial(Duration::from_secs(3));
        assert_eq!(r.rto(), ms(300));
    }
}
