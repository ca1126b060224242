//! Kathleen Nichols' windowed min/max filter, as in Linux
//! `lib/win_minmax.c`: the best, second-best and third-best samples of a
//! sliding window, in constant space and time. BBR keeps its max-bandwidth
//! filter in one, with time counted in round trips.

/// One sample: the time (any monotonic u32 clock, wrapping) and the value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Sample {
    pub t: u32,
    pub v: u64,
}

/// A windowed running maximum.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct MinMax {
    s: [Sample; 3],
}

impl MinMax {
    /// The current best (maximum) value in the window.
    pub fn get(&self) -> u64 {
        self.s[0].v
    }

    /// Forgets everything: `meas` at `t` is the only sample.
    pub fn reset(&mut self, t: u32, meas: u64) -> u64 {
        let val = Sample { t, v: meas };
        self.s = [val; 3];
        meas
    }

    /// Linux `minmax_running_max`: adds a sample taken at `t`; `win` is the
    /// window length in the same unit as `t`.
    pub fn running_max(&mut self, win: u32, t: u32, meas: u64) -> u64 {
        let val = Sample { t, v: meas };
        if val.v >= self.s[0].v || val.t.wrapping_sub(self.s[2].t) > win {
            // A new best, or nothing left in the window.
            return self.reset(t, meas);
        }
        if val.v >= self.s[1].v {
            self.s[2] = val;
            self.s[1] = val;
        } else if val.v >= self.s[2].v {
            self.s[2] = val;
        }
        self.subwin_update(win, val)
    }

    /// Linux `minmax_subwin_update`: ages the best sample out of the window
    /// and keeps the second and third best spread over its quarters.
    fn subwin_update(&mut self, win: u32, val: Sample) -> u64 {
        let dt = val.t.wrapping_sub(self.s[0].t);
        if dt > win {
            // The best sample left the window: promote the others.
            self.s[0] = self.s[1];
            self.s[1] = self.s[2];
            self.s[2] = val;
            if val.t.wrapping_sub(self.s[0].t) > win {
                self.s[0] = self.s[1];
                self.s[1] = self.s[2];
                self.s[2] = val;
            }
        } else if self.s[1].t == self.s[0].t && dt > win / 4 {
            // A quarter of the window passed without a second choice.
            self.s[2] = val;
            self.s[1] = val;
        } else if self.s[2].t == self.s[1].t && dt > win / 2 {
            // Half of it passed without a third choice.
            self.s[2] = val;
        }
        self.s[0].v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_maximum_of_the_window_and_ages_it_out() {
        let mut m = MinMax::default();
        m.reset(0, 0);
        assert_eq!(m.running_max(10, 0, 100), 100);
        for t in 1..=10 {
            assert_eq!(m.running_max(10, t, 50), 100, "t = {t}");
        }
        // Eleven rounds later the 100 is out of the 10-round window.
        assert_eq!(m.running_max(10, 11, 50), 50);
        assert_eq!(m.running_max(10, 12, 70), 70);
    }

    #[test]
    fn a_second_best_takes_over_when_the_best_expires() {
        let mut m = MinMax::default();
        m.reset(0, 100);
        m.running_max(10, 3, 80);
        m.running_max(10, 6, 60);
        assert_eq!(m.running_max(10, 11, 10), 80);
    }
}
