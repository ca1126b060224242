//! The fault model shared by the simulator and the `Impaired` middleware:
//! propagation delay with jitter, a rate limit with a drop-tail queue,
//! Bernoulli or Gilbert–Elliott loss, duplication, reordering and bit-flip
//! corruption — all from one seeded RNG, so a run is reproducible.

use daytona_core::time::{Duration, Instant};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Impairments of one direction of a link. Probabilities are in [0, 1].
#[derive(Debug, Clone, PartialEq)]
pub struct Impairment {
    /// One-way propagation delay.
    pub delay: Duration,
    /// Uniform extra delay in [0, jitter]; frames are not reordered by it
    /// (each leaves no earlier than the previous one).
    pub jitter: Duration,
    /// Bottleneck rate in bits per second (`None`: infinite).
    pub rate_bps: Option<u64>,
    /// Drop-tail queue limit in bytes in front of the bottleneck.
    pub queue_bytes: Option<usize>,
    /// Independent loss probability.
    pub loss: f64,
    /// Gilbert–Elliott bursts: (p good→bad, p bad→good); in the bad state
    /// every frame is lost.
    pub burst: Option<(f64, f64)>,
    /// Probability a frame is delivered twice.
    pub duplicate: f64,
    /// Probability a frame is held back by `reorder_delay`.
    pub reorder: f64,
    pub reorder_delay: Duration,
    /// Probability one random bit of the frame is flipped.
    pub corrupt: f64,
}

impl Default for Impairment {
    fn default() -> Self {
        Impairment {
            delay: Duration::ZERO,
            jitter: Duration::ZERO,
            rate_bps: None,
            queue_bytes: None,
            loss: 0.0,
            burst: None,
            duplicate: 0.0,
            reorder: 0.0,
            reorder_delay: Duration::from_millis(1),
            corrupt: 0.0,
        }
    }
}

impl Impairment {
    /// Checks every probability is within [0, 1].
    pub fn validate(&self) -> Result<(), String> {
        for (name, p) in [
            ("loss", self.loss),
            ("duplicate", self.duplicate),
            ("reorder", self.reorder),
            ("corrupt", self.corrupt),
        ] {
            if !(0.0..=1.0).contains(&p) || p.is_nan() {
                return Err(format!("{name} probability {p} is not within 0..=1"));
            }
        }
        if let Some((a, b)) = self.burst {
            if !(0.0..=1.0).contains(&a) || !(0.0..=1.0).contains(&b) {
                return Err("burst probabilities must be within 0..=1".into());
            }
        }
        if self.rate_bps == Some(0) {
            return Err("rate must be positive".into());
        }
        Ok(())
    }
}

/// Counters of what the model did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FaultStats {
    pub frames: u64,
    pub lost: u64,
    pub queue_drops: u64,
    pub duplicated: u64,
    pub reordered: u64,
    pub corrupted: u64,
}

/// A seeded fault model for one direction.
#[derive(Debug, Clone)]
pub struct FaultModel {
    pub params: Impairment,
    rng: ChaCha8Rng,
    /// When the bottleneck finishes sending what it has.
    busy_until: Instant,
    /// Latest delivery time handed out (keeps jitter from reordering).
    last_delivery: Instant,
    in_bad_state: bool,
    pub stats: FaultStats,
}

impl FaultModel {
    pub fn new(params: Impairment, seed: u64) -> Self {
        FaultModel {
            params,
            rng: ChaCha8Rng::seed_from_u64(seed),
            busy_until: Instant::ZERO,
            last_delivery: Instant::ZERO,
            in_bad_state: false,
            stats: FaultStats::default(),
        }
    }

    fn chance(&mut self, p: f64) -> bool {
        p > 0.0 && self.rng.gen::<f64>() < p
    }

    /// Decides the fate of one frame sent at `now`: zero, one or two
    /// (delivery time, bytes) pairs.
    pub fn transmit(&mut self, now: Instant, frame: &[u8]) -> Vec<(Instant, Vec<u8>)> {
        self.stats.frames += 1;
        // The bottleneck queue (drop-tail) and serialisation.
        let mut depart = now;
        if let Some(rate) = self.params.rate_bps {
            let start = self.busy_until.max(now);
            if let Some(limit) = self.params.queue_bytes {
                let backlog_us = (start - now).as_micros() as u64;
                let backlog_bytes = backlog_us.saturating_mul(rate) / 8 / 1_000_000;
                if backlog_bytes as usize + frame.len() > limit {
                    self.stats.queue_drops += 1;
                    return Vec::new();
                }
            }
            let tx_us = (frame.len() as u64 * 8).saturating_mul(1_000_000) / rate.max(1);
            self.busy_until = start + Duration::from_micros(tx_us.max(1));
            depart = self.busy_until;
        }
        // Loss: Gilbert–Elliott state, then Bernoulli.
        if let Some((to_bad, to_good)) = self.params.burst {
            let flip = if self.in_bad_state { to_good } else { to_bad };
            if self.chance(flip) {
                self.in_bad_state = !self.in_bad_state;
            }
            if self.in_bad_state {
                self.stats.lost += 1;
                return Vec::new();
            }
        }
        if self.chance(self.params.loss) {
            self.stats.lost += 1;
            return Vec::new();
        }
        let mut at = depart + self.params.delay;
        if !self.params.jitter.is_zero() {
            let j = self
                .rng
                .gen_range(0..=self.params.jitter.as_micros() as u64);
            at += Duration::from_micros(j);
            at = at.max(self.last_delivery);
        }
        let mut bytes = frame.to_vec();
        if !bytes.is_empty() && self.chance(self.params.corrupt) {
            let bit = self.rng.gen_range(0..bytes.len() * 8);
            bytes[bit / 8] ^= 1 << (bit % 8);
            self.stats.corrupted += 1;
        }
        let reordered = self.chance(self.params.reorder);
        if reordered {
            self.stats.reordered += 1;
            at += self.params.reorder_delay;
        } else {
            self.last_delivery = self.last_delivery.max(at);
        }
        let mut out = vec![(at, bytes)];
        if self.chance(self.params.duplicate) {
            self.stats.duplicated += 1;
            out.push((at, frame.to_vec()));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loss_rate_matches_within_six_sigma() {
        let mut m = FaultModel::new(
            Impairment {
                loss: 0.3,
                ..Impairment::default()
            },
            7,
        );
        let n = 10_000u64;
        let delivered: u64 = (0..n)
            .map(|_| m.transmit(Instant::ZERO, &[0; 100]).len() as u64)
            .sum();
        let lost = n - delivered;
        // Binomial: mean 3000, sigma sqrt(n p (1-p)) ≈ 45.8.
        assert!((3000 - 275..=3000 + 275).contains(&lost), "lost {lost}");
    }

    #[test]
    fn rate_limit_serialises_and_queue_drops_tail() {
        let mut m = FaultModel::new(
            Impairment {
                rate_bps: Some(8_000_000), // 1 byte per microsecond
                queue_bytes: Some(3000),
                delay: Duration::from_millis(10),
                ..Impairment::default()
            },
            1,
        );
        let t = Instant::from_secs(1);
        let first = m.transmit(t, &[0; 1000]);
        let second = m.transmit(t, &[0; 1000]);
        assert_eq!(
            first[0].0,
            t + Duration::from_micros(1000) + Duration::from_millis(10)
        );
        assert_eq!(
            second[0].0,
            t + Duration::from_micros(2000) + Duration::from_millis(10)
        );
        // 2000 bytes queued: the third fits the 3000-byte queue, the
        // fourth does not.
        assert_eq!(m.transmit(t, &[0; 1000]).len(), 1);
        assert!(m.transmit(t, &[0; 1000]).is_empty(), "queue full");
        assert_eq!(m.stats.queue_drops, 1);
    }

    #[test]
    fn corruption_flips_exactly_one_bit_and_duplicates_are_identical() {
        let mut m = FaultModel::new(
            Impairment {
                corrupt: 1.0,
                ..Impairment::default()
            },
            3,
        );
        let frame = [0u8; 64];
        let out = m.transmit(Instant::ZERO, &frame);
        let flipped: u32 = out[0].1.iter().map(|b| b.count_ones()).sum();
        assert_eq!(flipped, 1);
        let mut d = FaultModel::new(
            Impairment {
                duplicate: 1.0,
                ..Impairment::default()
            },
            3,
        );
        let out = d.transmit(Instant::ZERO, b"abc");
        assert_eq!(out.len(), 2);
        assert_eq!(out[0].1, out[1].1);
    }

    #[test]
    fn validation_names_the_bad_probability() {
        let bad = Impairment {
            loss: 1.4,
            ..Impairment::default()
        };
        assert!(bad.validate().unwrap_err().contains("loss"));
    }
}
