//! Trace-driven links in mahimahi's format: one line per delivery
//! opportunity, each a time in milliseconds from the start of the trace.
//! An opportunity carries up to [`OPPORTUNITY_BYTES`]; the trace repeats
//! with a period of its last timestamp.

use daytona_core::time::{Duration, Instant};

/// Bytes one delivery opportunity carries (mahimahi's MTU-sized
/// opportunity: 1500 bytes of IP plus 4 bytes of framing).
pub const OPPORTUNITY_BYTES: usize = 1504;

/// A parsed mahimahi trace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Trace {
    /// Opportunity times in ms, non-decreasing.
    times_ms: Vec<u64>,
}

impl Trace {
    /// Parses a trace: one non-negative integer (ms) per line, in
    /// non-decreasing order; blank lines are ignored. The last time must
    /// be positive (it is the period).
    pub fn parse(text: &str) -> Result<Trace, String> {
        let mut times_ms = Vec::new();
        for (i, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() {
                continue;
            }
            let t: u64 = line
                .parse()
                .map_err(|_| format!("trace line {}: {line:?} is not a time in ms", i + 1))?;
            if times_ms.last().is_some_and(|&last| t < last) {
                return Err(format!("trace line {}: time {t} goes backwards", i + 1));
            }
            times_ms.push(t);
        }
        match times_ms.last() {
            None => Err("trace has no delivery opportunities".into()),
            Some(0) => Err("trace must end at a time above 0 ms (its period)".into()),
            Some(_) => Ok(Trace { times_ms }),
        }
    }

    /// A constant-rate trace: `per_ms` opportunities every millisecond
    /// for `period_ms` (12 Mbit/s per opportunity per ms).
    pub fn constant(per_ms: usize, period_ms: u64) -> Trace {
        let times_ms = (1..=period_ms.max(1))
            .flat_map(|ms| std::iter::repeat_n(ms, per_ms.max(1)))
            .collect();
        Trace { times_ms }
    }

    /// Repeats after this long.
    pub fn period(&self) -> Duration {
        Duration::from_millis(self.times_ms.last().copied().unwrap_or(1))
    }

    /// Opportunities per period.
    pub fn len(&self) -> usize {
        self.times_ms.len()
    }

    pub fn is_empty(&self) -> bool {
        self.times_ms.is_empty()
    }

    /// Mean capacity in bits per second.
    pub fn mean_rate_bps(&self) -> u64 {
        let bits = (self.times_ms.len() * OPPORTUNITY_BYTES * 8) as u64;
        bits * 1000 / self.times_ms.last().copied().unwrap_or(1).max(1)
    }

    /// The time of opportunity number `k` (counting across repetitions)
    /// for a trace started at `epoch`.
    pub(crate) fn time_of(&self, epoch: Instant, k: u64) -> Instant {
        let n = self.times_ms.len() as u64;
        let period = self.times_ms[self.times_ms.len() - 1];
        let ms = (k / n) * period + self.times_ms[(k % n) as usize];
        epoch + Duration::from_millis(ms)
    }

    /// The first opportunity at or after `t`, starting the search at `k`.
    pub(crate) fn first_at_or_after(&self, epoch: Instant, mut k: u64, t: Instant) -> u64 {
        let n = self.times_ms.len() as u64;
        let period = self.period();
        // Skip whole repetitions first: an idle link may pass many.
        if self.time_of(epoch, k) + period < t {
            let behind = (t - self.time_of(epoch, k)).as_micros() / period.as_micros().max(1);
            k += (behind as u64).saturating_sub(1) * n;
        }
        while self.time_of(epoch, k) < t {
            k += 1;
        }
        k
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_repeats() {
        let t = Trace::parse("1\n1\n3\n\n4\n").unwrap();
        assert_eq!(t.len(), 4);
        assert_eq!(t.period(), Duration::from_millis(4));
        let e = Instant::from_secs(1);
        let ms = |k| (t.time_of(e, k) - e).as_millis();
        assert_eq!(
            [ms(0), ms(1), ms(2), ms(3), ms(4), ms(7)],
            [1, 1, 3, 4, 5, 8]
        );
        // 4 opportunities of 1504 bytes per 4 ms = 12.032 Mbit/s.
        assert_eq!(t.mean_rate_bps(), 12_032_000);
        let k = t.first_at_or_after(e, 0, e + Duration::from_millis(4_001));
        assert_eq!(ms(k), 4_001);
    }

    #[test]
    fn rejects_bad_traces_with_the_line() {
        assert!(Trace::parse("").is_err());
        assert!(Trace::parse("0\n0\n").is_err());
        assert!(Trace::parse("5\n3\n").unwrap_err().contains("line 2"));
        assert!(Trace::parse("1\nx\n").unwrap_err().contains("line 2"));
    }
}
