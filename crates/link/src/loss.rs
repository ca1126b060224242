//! Random loss models: independent (Bernoulli) loss and the
//! Gilbert–Elliott two-state model of bursty loss.

use rand::Rng;

/// Gilbert–Elliott bursty loss: a Markov chain between a *good* and a
/// *bad* state, each with its own loss probability. The chain steps once
/// per frame. The mean burst length is `1 / to_good` frames and the
/// stationary share of time in the bad state is
/// `to_bad / (to_bad + to_good)`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GilbertElliott {
    /// Probability of moving good → bad on a frame.
    pub to_bad: f64,
    /// Probability of moving bad → good on a frame.
    pub to_good: f64,
    /// Loss probability in the good state (Gilbert's original model: 0).
    pub loss_good: f64,
    /// Loss probability in the bad state (Gilbert's original model: 1).
    pub loss_bad: f64,
}

impl GilbertElliott {
    /// Gilbert's model: nothing lost in the good state, everything in the
    /// bad one.
    pub fn gilbert(to_bad: f64, to_good: f64) -> Self {
        GilbertElliott {
            to_bad,
            to_good,
            loss_good: 0.0,
            loss_bad: 1.0,
        }
    }

    /// The long-run loss rate the parameters imply.
    pub fn mean_loss(&self) -> f64 {
        let sum = self.to_bad + self.to_good;
        if sum == 0.0 {
            return self.loss_good;
        }
        let bad = self.to_bad / sum;
        bad * self.loss_bad + (1.0 - bad) * self.loss_good
    }

    pub(crate) fn validate(&self) -> Result<(), String> {
        for (name, p) in [
            ("burst to_bad", self.to_bad),
            ("burst to_good", self.to_good),
            ("burst loss_good", self.loss_good),
            ("burst loss_bad", self.loss_bad),
        ] {
            check_probability(name, p)?;
        }
        Ok(())
    }
}

/// `p` must be a probability.
pub(crate) fn check_probability(name: &str, p: f64) -> Result<(), String> {
    if (0.0..=1.0).contains(&p) {
        Ok(())
    } else {
        Err(format!(
            "{name} probability {p} is not within 0..=1 (0%..100%)"
        ))
    }
}

/// The running state of the loss models of one link direction.
#[derive(Debug, Clone, Default)]
pub(crate) struct LossState {
    in_bad_state: bool,
}

impl LossState {
    /// Decides whether the next frame is lost: the Gilbert–Elliott chain
    /// (if any) steps first, then independent loss applies on top.
    pub(crate) fn lose<R: Rng>(
        &mut self,
        rng: &mut R,
        bernoulli: f64,
        burst: Option<&GilbertElliott>,
    ) -> bool {
        if let Some(ge) = burst {
            let flip = if self.in_bad_state {
                ge.to_good
            } else {
                ge.to_bad
            };
            if chance(rng, flip) {
                self.in_bad_state = !self.in_bad_state;
            }
            let p = if self.in_bad_state {
                ge.loss_bad
            } else {
                ge.loss_good
            };
            if chance(rng, p) {
                return true;
            }
        }
        chance(rng, bernoulli)
    }
}

/// True with probability `p`; draws nothing when `p` is zero, so adding a
/// zero-probability impairment does not change a run.
pub(crate) fn chance<R: Rng>(rng: &mut R, p: f64) -> bool {
    p > 0.0 && rng.gen::<f64>() < p
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    #[test]
    fn gilbert_elliott_loses_in_bursts_at_its_mean_rate() {
        let ge = GilbertElliott::gilbert(0.01, 0.25);
        let mut rng = ChaCha8Rng::seed_from_u64(5);
        let mut s = LossState::default();
        let n = 200_000;
        let (mut lost, mut bursts, mut prev) = (0u32, 0u32, false);
        for _ in 0..n {
            let l = s.lose(&mut rng, 0.0, Some(&ge));
            lost += l as u32;
            bursts += (l && !prev) as u32;
            prev = l;
        }
        let rate = f64::from(lost) / f64::from(n);
        assert!((rate - ge.mean_loss()).abs() < 0.006, "rate {rate}");
        // Mean burst length 1/to_good = 4 frames.
        let mean_burst = f64::from(lost) / f64::from(bursts);
        assert!((3.5..4.5).contains(&mean_burst), "burst {mean_burst}");
    }

    #[test]
    fn bad_probabilities_are_named() {
        let ge = GilbertElliott::gilbert(1.5, 0.1);
        assert!(ge.validate().unwrap_err().contains("to_bad"));
        assert!(check_probability("loss", -0.1).is_err());
        assert!(check_probability("loss", f64::NAN).is_err());
    }
}
